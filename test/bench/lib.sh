# lib.sh: shell functions shared by the benchmarks in test/bench/ (sourced, not run).
# shellcheck shell=bash
#
# The sourcing script sets PROG (its name, for messages) before sourcing, and later sets the
# globals some functions read: CPU_FROM (auto|proc) for cg_init, CLK_TCK for cpu_usec without
# cgroups, PF_DIR for the Postfix helpers, MX_DIR and HAVE_SQLITE for mx_queued.

die() { echo "$PROG: $*" >&2; exit 2; }
note() { echo "$PROG: $*" >&2; }

# ---- CPU accounting: one cgroup per relay run ----------------------------------------------------
CG_MODE=proc
CG_ROOT=""

# cg_init: pick the accounting (cgroup v2, else v1 cpuacct, else /proc unless CPU_FROM=proc) and
# create this benchmark's cgroup root (CG_ROOT; removed by the caller's teardown)
cg_init() {
	local cg2 cg1
	cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	cg1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpuacct(,|$)/ { print $2; exit }' /proc/mounts)
	if [ "$CPU_FROM" = proc ]; then
		:
	elif [ -n "$cg2" ] && mkdir "$cg2/mxrelay-bench.$$" 2>/dev/null; then
		CG_MODE=v2; CG_ROOT="$cg2/mxrelay-bench.$$"
	elif [ -n "$cg1" ] && mkdir "$cg1/mxrelay-bench.$$" 2>/dev/null; then
		CG_MODE=v1; CG_ROOT="$cg1/mxrelay-bench.$$"
	fi
}

# cg_make NAME: an empty cgroup for one relay run; prints its path
cg_make() {
	[ "$CG_MODE" = proc ] && return 0
	local d="$CG_ROOT/$1"
	mkdir -p "$d"
	echo "$d"
}

# cg_enter CG: move the current (sub)shell into cgroup CG; what it starts from now on stays there
cg_enter() {
	[ -z "$1" ] || echo "$BASHPID" >"$1/cgroup.procs"
}

# proc_cpu_ticks PID: utime+stime+cutime+cstime of PID plus utime+stime of its live children
proc_cpu_ticks() {
	local pid=$1 total=0 f rest
	f=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo 0; return; }
	rest=${f##*) }
	# fields after comm: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17)
	total=$(echo "$rest" | awk '{ print $12 + $13 + $14 + $15 }')
	local c
	for c in /proc/[0-9]*/stat; do
		f=$(cat "$c" 2>/dev/null) || continue
		rest=${f##*) }
		set -- $rest
		[ "$2" = "$pid" ] || continue
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}

# cpu_usec CG PID: CPU microseconds used so far by the relay (cgroup CG, or process tree of PID)
cpu_usec() {
	local cg=$1 pid=$2
	case "$CG_MODE" in
	v2) awk '$1 == "usage_usec" { print $2 }' "$cg/cpu.stat" ;;
	v1) echo $(( $(cat "$cg/cpuacct.usage") / 1000 )) ;;
	proc) echo $(( $(proc_cpu_ticks "$pid") * 1000000 / CLK_TCK )) ;;
	esac
}

# cg_procs CG: pids still in the cgroup
cg_procs() { [ -n "$1" ] && [ -f "$1/cgroup.procs" ] && cat "$1/cgroup.procs" || true; }

# cg_drain CG: wait (up to 10 s) for the cgroup to empty, then kill what is left (only processes
# we started live there), then remove it
cg_drain() {
	local cg=$1 p
	[ -n "$cg" ] && [ -d "$cg" ] || return 0
	for _ in $(seq 100); do
		[ -z "$(cg_procs "$cg")" ] && break
		sleep 0.1
	done
	if [ -n "$(cg_procs "$cg")" ]; then
		for p in $(cg_procs "$cg"); do kill -KILL "$p" 2>/dev/null || true; done
		for _ in $(seq 50); do [ -z "$(cg_procs "$cg")" ] && break; sleep 0.1; done
	fi
	rmdir "$cg" 2>/dev/null || true
}

# ---- ports -----------------------------------------------------------------------------------
# nsd_conf FILE DIR PORT ZONE ZONEFILE: an nsd.conf for one zone on 127.0.0.1@PORT, state and
# logs in DIR, no response rate limiting (Postfix asks for every delivery, see bench-e2e.sh).
nsd_conf() {
	cat >"$1" <<EOF
server:
	ip-address: 127.0.0.1@$3
	port: $3
	do-ip6: no
	server-count: 1
	username: ""
	chroot: ""
	database: ""
	zonesdir: "$2"
	zonelistfile: "$2/zone.list"
	xfrdfile: "$2/xfrd.state"
	pidfile: "$2/nsd.pid"
	logfile: "$2/nsd.log"
	hide-version: yes
	verbosity: 0
	rrl-ratelimit: 0
remote-control:
	control-enable: no
zone:
	name: $4
	zonefile: "$5"
EOF
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# pick_port: a free port for a listener, below the kernel's ephemeral range: a port in that range
# may be the local end of an outgoing connection (thousands per run, many in TIME_WAIT), which
# nothing answers on but which makes the listener's bind() fail with EADDRINUSE
pick_port() {
	local p lo base=20000 span=40000
	lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
	if [ "${lo:-0}" -gt 12000 ]; then
		base=10000 span=$((lo - 10000))
	fi
	for _ in $(seq 200); do
		p=$((base + RANDOM % span))
		port_free "$p" && { echo "$p"; return; }
	done
	die "no free port on 127.0.0.1"
}

# wait_banner PORT SECS [HOST]: wait until a 220 banner is read on HOST:PORT (default 127.0.0.1)
wait_banner() {
	local port=$1 secs=$2 host=${3:-127.0.0.1} line
	for _ in $(seq $((secs * 10))); do
		# (a bare 'exec 3<>... 2>/dev/null' would send the script's stderr to /dev/null for good)
		if { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
			line=""
			read -r -t 5 line <&3 || true
			printf 'QUIT\r\n' >&3 2>/dev/null || true
			exec 3<&- 3>&-
			case "$line" in 220*) return 0 ;; esac
		fi
		sleep 0.1
	done
	return 1
}

# pf_prepare TITLE: a fresh private Postfix instance directory under $WORK, a free port in
# PF_PORT, and the part of main.cf both benchmarks share (relay for 127.0.0.0/8, no local
# delivery, nothing slow and irrelevant). The caller appends its own lines to main.cf.
pf_prepare() {
	PF_DIR="$WORK/postfix"
	rm -rf "$PF_DIR"
	mkdir -p "$PF_DIR/conf" "$PF_DIR/queue" "$PF_DIR/data"
	chmod 755 "$PF_DIR" "$PF_DIR/conf"
	[ -n "$PF_OWNER" ] && chown "$PF_OWNER" "$PF_DIR/data"
	PF_PORT=$(pick_port)
	: >"$PF_DIR/conf/main.cf"
	local daemon_dir meta_dir shlib_dir
	daemon_dir=$("$POSTCONF" -c "$PF_DIR/conf" -d -h daemon_directory 2>/dev/null)
	meta_dir=$("$POSTCONF" -c "$PF_DIR/conf" -d -h meta_directory 2>/dev/null)
	shlib_dir=$("$POSTCONF" -c "$PF_DIR/conf" -d -h shlib_directory 2>/dev/null)
	cat >"$PF_DIR/conf/main.cf" <<EOF
# Private Postfix instance for $1
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
daemon_directory = $daemon_dir
meta_directory = $meta_dir
shlib_directory = $shlib_dir
myhostname = pfbench.localdomain
mydomain = localdomain
myorigin = \$myhostname
# Relay only: no local delivery, no local domains.
mydestination =
relay_domains =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# No reverse DNS of clients, no per-client limits (127.0.0.1 is exempt from them anyway).
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_banner = \$myhostname ESMTP
biff = no
EOF
}

# ---- Postfix and mxrelayd helpers --------------------------------------------------------------
pf_run_quiet() {
	# Postfix commands print their errors on stderr only when it is a terminal; give them one.
	if command -v script >/dev/null; then
		script -qec "$(printf '%q ' "$@")" /dev/null
	else
		"$@"
	fi
}

pf_master_pid() { head -1 "$PF_DIR/queue/pid/master.pid" 2>/dev/null | tr -d ' ' || true; }

# messages sitting in the Postfix queue (any queue directory)
pf_queued() {
	local n=0 q
	for q in incoming active deferred hold maildrop; do
		[ -d "$PF_DIR/queue/$q" ] && n=$((n + $(find "$PF_DIR/queue/$q" -type f | wc -l)))
	done
	echo "$n"
}

# messages in the mxrelayd spool: prints a number, or "?" when it cannot tell
mx_queued() {
	local db="$MX_DIR/data/spool.db" t
	[ "$HAVE_SQLITE" = 1 ] && [ -f "$db" ] || { echo "?"; return; }
	t=$(sqlite3 "file:$db?mode=ro" "SELECT name FROM sqlite_master WHERE type='table' AND name IN ('message','messages','msg') LIMIT 1" 2>/dev/null) || t=""
	[ -n "$t" ] || { echo "?"; return; }
	sqlite3 "file:$db?mode=ro" "SELECT count(*) FROM $t" 2>/dev/null || echo "?"
}

# ---- figures ---------------------------------------------------------------------------------
# median FORMAT NUMBERS...: the median, printed with FORMAT ("-" when there are no numbers)
median() {
	local f=$1; shift
	[ $# -gt 0 ] || { echo "-"; return; }
	printf '%s\n' "$@" | sort -g | awk -v f="$f" '{ v[NR] = $1 }
		END { printf f "\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {   # ratio A B -> A/B with 2 decimals, or "-"
	awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else printf "-" }'
}

# busy_pct "cpu LINE BEFORE" "cpu LINE AFTER": time not idle (nor waiting for I/O) as a
# percentage of all CPU time
busy_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x); split(b, y); tot = 0
		for (i = 2; i <= n; i++) tot += y[i] - x[i]
		idle = (y[5] - x[5]) + (y[6] - x[6])
		printf "%.0f", (tot > 0 ? 100 * (tot - idle) / tot : 0) }'
}

# steal_pct "cpu LINE BEFORE" "cpu LINE AFTER": steal time as a percentage of all CPU time
steal_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x); split(b, y); tot = 0
		for (i = 2; i <= n; i++) tot += y[i] - x[i]
		printf "%.1f", (tot > 0 ? 100 * (y[9] - x[9]) / tot : 0) }'
}

# ---- DKIM keys and checks ------------------------------------------------------------------------
# dkim_keys DIR: an RSA-2048 and an Ed25519 key (PKCS#8 PEM, mode 0600) as DIR/rsa.pem and
# DIR/ed25519.pem, and the TXT record values of their public halves in DIR/rsa.txt, DIR/ed25519.txt
dkim_keys() {
	local d=$1
	mkdir -p "$d"
	chmod 755 "$d"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa.pem" 2>/dev/null &&
		openssl genpkey -algorithm ED25519 -out "$d/ed25519.pem" 2>/dev/null ||
		die "openssl genpkey failed"
	chmod 600 "$d/rsa.pem" "$d/ed25519.pem"
	# RFC 6376 3.6.1: p= is the SubjectPublicKeyInfo for RSA; RFC 8463 4.2: the raw 32 bytes
	printf 'v=DKIM1; k=rsa; p=%s' "$(openssl pkey -in "$d/rsa.pem" -pubout -outform DER | base64 -w0)" >"$d/rsa.txt"
	printf 'v=DKIM1; k=ed25519; p=%s' "$(openssl pkey -in "$d/ed25519.pem" -pubout -outform DER |
		tail -c 32 | base64 -w0)" >"$d/ed25519.txt"
}

# dkim_check FILE MODE KEYS: FILE (a message, CRLF or LF ends) is signed as mxrelayd or OpenDKIM
# sign for the benchmarks in MODE: ed25519 or rsa, one signature with selector sel; dual, two (sel
# RSA, sele Ed25519). Each is by example.com, relaxed/relaxed, of the right algorithm, and verifies
# with python3-dkim against the key records dkim_keys wrote in KEYS. Prints the problem; nothing
# when all is well.
dkim_check() {
	/usr/bin/python3 - "$@" <<'PYEOF' 2>&1
import re, sys
import dkim
path, mode, keys = sys.argv[1:4]
data = open(path, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
want = {"sel": mode} if mode != "dual" else {"sel": "rsa", "sele": "ed25519"}
recs = {f"{s}._domainkey.example.com".encode(): open(f"{keys}/{a}.txt", "rb").read().strip()
        for s, a in want.items()}
def dnsfunc(name, timeout=5):
    return recs.get(name.rstrip(b".").lower())
sigs = [v for k, v in dkim.rfc822_parse(data)[0] if k.lower() == b"dkim-signature"]
if len(sigs) != len(want):
    print(f"{len(sigs)} DKIM-Signature fields, expected {len(want)}"); sys.exit(0)
for i, sig in enumerate(sigs):
    tags = dict((k.strip().decode(), re.sub(rb"\s+", b"", v).decode()) for k, _, v in
                (t.partition(b"=") for t in sig.split(b";") if b"=" in t))
    alg = want.get(tags.get("s"))
    need = {"a": f"{alg}-sha256", "c": "relaxed/relaxed", "d": "example.com"}
    for k, v in need.items():
        if alg is None or tags.get(k) != v:
            print(f"signature {i}: s={tags.get('s')} {k}={tags.get(k)}, expected {v}"); sys.exit(0)
    if not dkim.DKIM(data).verify(idx=i, dnsfunc=dnsfunc):
        print(f"signature {i} (s={tags['s']}) does not verify (python3-dkim)"); sys.exit(0)
PYEOF
}

# mxrelayd BIN with $MX_DIR/mxrelay.conf (checked with -n first) in a cgroup of its own,
# listening on 127.0.0.1:$MX_PORT; sets MX_PID and MX_CG. mx_stop ends it and drains the cgroup.
mx_launch() {
	local bin=$1
	if ! "$bin" -n -c "$MX_DIR/mxrelay.conf" >"$MX_DIR/check.log" 2>&1; then
		cat "$MX_DIR/check.log" >&2
		die "mxrelayd -n rejects the benchmark configuration"
	fi
	MX_CG=$(cg_make "mxrelayd")
	(cg_enter "$MX_CG" && exec "$bin" -c "$MX_DIR/mxrelay.conf") >"$MX_DIR/mxrelayd.log" 2>&1 &
	MX_PID=$!
	if ! wait_banner "$MX_PORT" 15; then
		tail -20 "$MX_DIR/mxrelayd.log" >&2 || true
		die "mxrelayd does not answer on 127.0.0.1:$MX_PORT"
	fi
}

mx_stop() {
	[ -n "$MX_PID" ] || return 0
	if kill -0 "$MX_PID" 2>/dev/null; then
		kill -TERM "$MX_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$MX_PID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$MX_PID" 2>/dev/null && { note "mxrelayd ignored SIGTERM for 10 s; killing it"; kill -KILL "$MX_PID" 2>/dev/null || true; }
	fi
	wait "$MX_PID" 2>/dev/null || true
	MX_PID=""
	cg_drain "$MX_CG"
	MX_CG=""
}
