# relays.sh: the relays the delivery benchmarks start (sourced by bench-e2e.sh and bench-memory.sh,
# after lib.sh): mxrelayd, and a private Postfix instance with an OpenDKIM milter for signed runs.
# shellcheck shell=bash
#
# The sourcing script sets: WORK (work directory), ROUTE (static | mx), SINK_ADDR and CHECK_ADDR
# (the sinks for bench.test and check.bench.test), DNS_PORT (nsd, ROUTE=mx only), KEYS (the
# directory dkim_keys made), MX_EXTRA and PF_EXTRA (arrays of extra configuration lines), and the
# paths POSTFIX, POSTCONF, OPENDKIM.
#
# Both relays deliver bench.test to SINK_ADDR:25 and check.bench.test to CHECK_ADDR:25. With
# ROUTE=static through a static route, no DNS at all (mxrelayd: route; Postfix: transport_maps to
# [IP]:25); with ROUTE=mx by the MX records nsd serves. A signed run (DKIM ed25519 or rsa) signs
# the mail from example.com with selector "sel" and the key in KEYS: mxrelayd itself, Postfix
# through OpenDKIM (milter). Both sign relaxed/relaxed with the same header fields:
# OpenDKIM is given mxrelayd's list of signed and oversigned fields (dkim/signer.h).

MX_DIR="" MX_CG="" MX_PID="" MX_PORT=""
MX_USER=$(getent passwd mxrelay >/dev/null && echo mxrelay || echo nobody)

# mx_override: drop the lines of stdin whose key a --mx-set line sets (that line is appended)
mx_override() {
	local keys="" line
	for line in "${MX_EXTRA[@]}"; do
		line=${line%%=*}; line=${line//[[:space:]]/}
		keys+=" $line"
	done
	awk -v keys="$keys" 'BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) drop[k[i]] = 1 }
		{ key = $0; sub(/[ \t]*=.*/, "", key); sub(/^[ \t]+/, "", key) }
		!(key in drop) || /^[ \t]*#/ { print }'
}

# mx_start BINARY DKIM: a fresh mxrelayd in $WORK/mxrelayd; DKIM: none, ed25519 or rsa (selector
# sel), or dual (RSA as sel, Ed25519 as sele: two signatures per message)
mx_start() {
	local bin=$1 dkim=$2
	MX_DIR="$WORK/mxrelayd"
	rm -rf "$MX_DIR"
	mkdir -p "$MX_DIR/data"
	chmod 755 "$MX_DIR"
	chmod 700 "$MX_DIR/data"
	chown "$MX_USER" "$MX_DIR/data"
	MX_PORT=$(pick_port)
	{ cat <<EOF
# mxrelayd for the delivery benchmarks: relay for 127.0.0.0/8, plain SMTP, durable spool on disk,
# delivering to the sinks on loopback (hence allow_private_mx).
hostname = mxbench.localdomain
data_dir = $MX_DIR/data
user = $MX_USER
relay_from = 127.0.0.0/8
max_connections = 1000
max_connections_per_ip = 200
log = stderr
allow_private_mx = yes
address_family = ipv4
# mxrelayd's defaults, stated (bench-e2e.sh's header has Postfix's equivalents).
domain_concurrency_start = 5
domain_concurrency = 20
delivery_concurrency = 100
rcpts_per_transaction = 50
max_inflight = 200
EOF
	if [ "$ROUTE" = static ]; then
		# no DNS: nothing answers on port 53, and mxrelayd never asks
		echo "dns_servers = 127.0.0.1:53"
		echo "route = bench.test $SINK_ADDR:25"
		echo "route = check.bench.test $CHECK_ADDR:25"
	else
		echo "dns_servers = 127.0.0.1:$DNS_PORT"
		echo "smtp_port = 25"
	fi
	# TLS reports are mailed from a signed domain, as in a real signing setup (else a start-up
	# warning, which the benchmark counts as a problem)
	[ "$dkim" = none ] || echo "tlsrpt_from = tlsrpt-noreply@example.com"
	case "$dkim" in
	none) ;;
	dual) echo "dkim_key = example.com sel $MX_DIR/rsa.pem"
	      echo "dkim_key = example.com sele $MX_DIR/ed25519.pem" ;;
	*) echo "dkim_key = example.com sel $MX_DIR/$dkim.pem" ;;
	esac
	} | mx_override >"$MX_DIR/mxrelay.conf"
	case "$dkim" in
	none) ;;
	dual) install -m 600 "$KEYS/rsa.pem" "$KEYS/ed25519.pem" "$MX_DIR/" ;;
	*) install -m 600 "$KEYS/$dkim.pem" "$MX_DIR/" ;;
	esac
	printf '%s\n' "${MX_EXTRA[@]}" >>"$MX_DIR/mxrelay.conf"
	printf '\n[listener bench]\naddress = 127.0.0.1:%s\ntls = none\n' "$MX_PORT" >>"$MX_DIR/mxrelay.conf"
	mx_launch "$bin"
}

mx_log_count() { grep -cE "$1" "$MX_DIR/mxrelayd.log" 2>/dev/null || true; }
mx_problems() {
	grep -E 'level=(err|warn) |status=(deferred|bounced)|event=(connect_failed|bounce|load_failed|spool_error|dkim_failed|unsigned)' \
		"$MX_DIR/mxrelayd.log" 2>/dev/null || true
}

# ---- OpenDKIM: the milter that signs for Postfix ------------------------------------------------
OD_PID="" OD_PORT=""
OD_USER=$(getent passwd opendkim >/dev/null && echo opendkim || echo "")

# od_start ALG CG: OpenDKIM signing mail from example.com with KEYS/ALG.pem, in cgroup CG (the
# Postfix instance's: its CPU is the relay's). It listens where OD_SOCKET says: unix (the default,
# as Debian's opendkim.conf has it: a socket file, OD_MILTER is Postfix's name for it) or inet
# (127.0.0.1:OD_PORT). Over TCP, libmilter's small writes meet Nagle's algorithm and delayed ACKs:
# Postfix + OpenDKIM then delivered 108 msgs/s at concurrency 10 where the unix socket gave 272
# (both CPU-bound near 300 at concurrency 50): the unix socket is the peer at its best.
OD_SOCKET=${OD_SOCKET:-unix}
OD_MILTER=""
od_start() {
	local alg=$1 cg=$2 d="$PF_DIR/opendkim" sock
	mkdir -p "$d"
	chmod 755 "$d"
	install -m 600 "$KEYS/$alg.pem" "$d/key.pem"
	[ -n "$OD_USER" ] && chown -R "$OD_USER" "$d"
	OD_PORT=$(pick_port)
	if [ "$OD_SOCKET" = unix ]; then
		sock="local:$d/milter.sock" OD_MILTER="unix:$d/milter.sock"
	else
		sock="inet:$OD_PORT@127.0.0.1" OD_MILTER="inet:127.0.0.1:$OD_PORT"
	fi
	cat >"$d/opendkim.conf" <<EOF
# OpenDKIM for the delivery benchmarks: sign what Postfix relays from example.com, as mxrelayd does
Mode                    s
Domain                  example.com
Selector                sel
KeyFile                 $d/key.pem
SignatureAlgorithm      $alg-sha256
Canonicalization        relaxed/relaxed
SignHeaders             From,Subject,Date,To,Cc,Message-ID,Reply-To,In-Reply-To,References,MIME-Version,Content-Type,Content-Transfer-Encoding,List-Id,List-Help,List-Unsubscribe,List-Subscribe,List-Post,List-Owner,List-Archive
OversignHeaders         From,Subject,Date,To,Message-ID,MIME-Version,Content-Type
InternalHosts           127.0.0.0/8
Socket                  $sock
# the socket file must be writable by Postfix's smtpd
UMask                   000
PidFile                 $d/opendkim.pid
${OD_USER:+UserID                  $OD_USER}
# the key lives under /var/tmp, whose sticky world-writable parent OpenDKIM calls unsafe
RequireSafeKeys         false
Background              false
Syslog                  false
On-Default              tempfail
EOF
	(cg_enter "$cg" && exec "$OPENDKIM" -f -x "$d/opendkim.conf") >"$d/opendkim.log" 2>&1 &
	OD_PID=$!
	for _ in $(seq 100); do
		if [ "$OD_SOCKET" = unix ]; then
			[ -S "$d/milter.sock" ] && return 0
		elif { exec 3<>"/dev/tcp/127.0.0.1/$OD_PORT"; } 2>/dev/null; then
			exec 3<&- 3>&-
			return 0
		fi
		kill -0 "$OD_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$d/opendkim.log" >&2
	die "opendkim does not listen on $sock"
}

od_stop() {
	[ -n "$OD_PID" ] || return 0
	kill -TERM "$OD_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$OD_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$OD_PID" 2>/dev/null || true
	wait "$OD_PID" 2>/dev/null || true
	OD_PID=""
}

# ---- Postfix: a private instance, delivering -----------------------------------------------------
PF_DIR="" PF_CG="" PF_PORT="" PF_RUNNING=0
PF_OWNER=$(getent passwd postfix >/dev/null && echo postfix || echo "")

# pf_start DKIM: a fresh Postfix instance (with OpenDKIM unless DKIM is none)
pf_start() {
	local dkim=$1 line
	pf_prepare "bench-e2e.sh: an outbound relay for 127.0.0.0/8 delivering to the sinks."
	cat >>"$PF_DIR/conf/main.cf" <<EOF
# Enough smtpd and cleanup processes for concurrency 50; smtp has its own maxproc (master.cf).
default_process_limit = 200
relayhost =
default_transport = smtp
smtp_tls_security_level = may
# Postfix's defaults, stated: 5 sessions per destination at first, up to 20; on-demand cache.
initial_destination_concurrency = 5
default_destination_concurrency_limit = 20
default_destination_recipient_limit = 50
smtp_connection_cache_on_demand = yes
# Log to a file in the work directory (postlogd's CPU counts, like mxrelayd's own logging).
maillog_file_prefixes = $PF_DIR
maillog_file = $PF_DIR/maillog
EOF
	if [ "$ROUTE" = static ]; then
		cat >>"$PF_DIR/conf/main.cf" <<EOF
# Static route, no DNS: [IP] means no MX and no address lookup.
transport_maps = inline:{ bench.test=smtp:[$SINK_ADDR]:25, check.bench.test=smtp:[$CHECK_ADDR]:25 }
smtp_host_lookup = native
smtp_dns_support_level = disabled
EOF
	else
		cat >>"$PF_DIR/conf/main.cf" <<EOF
# Direct to the recipient domain's MX, found in DNS (the private nsd).
smtp_host_lookup = dns
smtp_dns_support_level = enabled
EOF
	fi
	PF_CG=$(cg_make "postfix")
	if [ "$dkim" != none ]; then
		od_start "$dkim" "$PF_CG"
		cat >>"$PF_DIR/conf/main.cf" <<EOF
# OpenDKIM signs in the SMTP session (milter); a milter failure is a 4xx, never unsigned mail.
smtpd_milters = $OD_MILTER
milter_default_action = tempfail
milter_protocol = 6
EOF
	fi
	# --pf-set: edit in place (a repeated main.cf entry would make every daemon log a warning)
	for line in "${PF_EXTRA[@]}"; do
		"$POSTCONF" -c "$PF_DIR/conf" -e "$line" || die "--pf-set '$line': postconf -e failed"
	done
	cat >"$PF_DIR/conf/master.cf" <<EOF
# No chroot (Debian's default master.cf chroots smtpd, smtp and friends): a chroot would need
# copies of /etc files inside the queue directory and does not change the work done per message.
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
# 100 outgoing sessions at most, like mxrelayd's delivery_concurrency default.
smtp      unix  -       -       n       -       100     smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	# PF_MASTER_EXTRA (optional array): more master.cf lines, e.g. tlsproxy for bench-tls.sh
	[ -z "${PF_MASTER_EXTRA+set}" ] || printf '%s\n' "${PF_MASTER_EXTRA[@]}" >>"$PF_DIR/conf/master.cf"
	PF_RUNNING=1
	if ! (cg_enter "$PF_CG" && pf_run_quiet "$POSTFIX" -c "$PF_DIR/conf" start) >"$PF_DIR/start.log" 2>&1; then
		cat "$PF_DIR/start.log" >&2
		die "postfix -c $PF_DIR/conf start failed"
	fi
	wait_banner "$PF_PORT" 15 || { tail -20 "$PF_DIR/maillog" >&2 || true; die "Postfix does not answer on 127.0.0.1:$PF_PORT"; }
}

pf_stop() {
	[ "$PF_RUNNING" = 1 ] || return 0
	local m; m=$(pf_master_pid)
	"$POSTFIX" -c "$PF_DIR/conf" stop >/dev/null 2>&1 || true
	od_stop
	cg_drain "$PF_CG"
	if [ -z "$PF_CG" ] && [ -n "$m" ]; then   # no cgroup: wait for our master, then insist
		for _ in $(seq 100); do kill -0 "$m" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$m" 2>/dev/null || true
	fi
	PF_CG="" PF_RUNNING=0
}

# pf_log_count REGEX: matching lines in Postfix's log
pf_log_count() { grep -cE "$1" "$PF_DIR/maillog" 2>/dev/null || true; }
# pf_problems: log lines that mean something went wrong (deferral, bounce, warning, error)
pf_problems() {
	grep -E 'status=(deferred|bounced|expired)|: (warning|error|fatal|panic): |milter-reject' "$PF_DIR/maillog" 2>/dev/null || true
}
