# bash completion for mxrelayctl(8)
#
# Installed as PREFIX/share/bash-completion/completions/mxrelayctl, where
# bash-completion loads it on first use; without that package:
#   source tools/completion/mxrelayctl.bash
# Completes commands, sub-commands and options (the lists below follow
# `mxrelayctl --help` and `mxrelayctl COMMAND --help`;
# test/integration/test_completion.py fails when they drift apart), and
# values it can find without side effects: the domains of the dkim_key lines
# and the users of the credentials file when they are readable, and queue ids
# from `mxrelayctl queue list` when the control socket answers (at most 2 s,
# errors discarded). It needs nothing from the bash-completion package.

_mxrelayctl_commands="passwd dkim dns audit stats queue tls m365"

# The sub-commands of command $1 (none: the command takes arguments directly).
_mxrelayctl_subcommands()
{
	case $1 in
	dkim) echo "keygen rotate" ;;
	dns) echo "spf dmarc dkim check spf-eval" ;;
	audit) echo "import-exo plan" ;;
	queue) echo "list show summary flush hold release delete bounce bounce-digest" ;;
	tls) echo "report send-reports" ;;
	esac
}

# The options of command $1, sub-command $2.
_mxrelayctl_options()
{
	case "$1 $2" in
	"passwd "*) echo "-f --file --senders --disable --enable --sunset --stdin --no-password" ;;
	"dkim keygen") echo "--type --bits --out -c --config" ;;
	"dkim rotate") echo "-c --config --selector --type --retire-after --check --status --abort" ;;
	"dns spf") echo "--ip4 --ip6 --current -c --config" ;;
	"dns dmarc") echo "--rua -c --config" ;;
	"dns dkim") echo "-c --config" ;;
	"dns check") echo "--all -c --config --ip4 --ip6 --port25 --json" ;;
	"dns spf-eval") echo "-c --config --helo --record --trace" ;;
	"audit import-exo") echo "-c --config" ;;
	"audit plan") echo "-c --config --json" ;;
	"audit "*) echo "-c --config --since --json" ;;
	"stats "*) echo "-c --config --json" ;;
	"queue "*) echo "-c --config --socket --json --limit" ;;
	"tls report") echo "-c --config --since --json" ;;
	"tls send-reports") echo "-c --config -s --socket --day" ;;
	"m365 "*) echo "-c --config --by-ip --by-cert --plan --domain" ;;
	esac
	echo "--help"
}

# Options that take a value (the next word).
_mxrelayctl_takes_value()
{
	case $1 in
	-c | --config | -f | --file | -s | --socket | --senders | --sunset | --limit | --type | \
		--bits | --out | --selector | --retire-after | --ip4 | --ip6 | --current | --rua | \
		--port25 | --helo | --record | --since | --day | --domain) return 0 ;;
	esac
	return 1
}

# The value of option $1 (or $2) among the words before the cursor.
_mxrelayctl_optval()
{
	local i
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} == "$1" || ${COMP_WORDS[i]} == "$2" ]]; then
			local v=${COMP_WORDS[i + 1]}
			# shellcheck disable=SC2088 # the ~/ typed on the line, not expanded by bash here
			[[ $v == "~/"* ]] && v=$HOME/${v#"~/"}
			printf '%s\n' "$v"
			return 0
		fi
	done
	return 1
}

_mxrelayctl_conf()
{
	_mxrelayctl_optval -c --config || echo /etc/mxrelay/mxrelay.conf
}

# "key = value" of the configuration (the last one wins, as in mxrelayd)
_mxrelayctl_confval()
{
	local conf
	conf=$(_mxrelayctl_conf)
	[[ -r $conf ]] || return 0
	sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" -- "$conf" 2>/dev/null | tail -n 1
}

# The domains of the configuration's dkim_key lines, when it is readable.
_mxrelayctl_domains()
{
	local conf
	conf=$(_mxrelayctl_conf)
	[[ -r $conf ]] || return 0
	sed -n 's/^[[:space:]]*dkim_key[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' \
		-- "$conf" 2>/dev/null | sort -u
}

# The users of the credentials file (-f, else the configuration's, else the default).
_mxrelayctl_users()
{
	local f
	f=$(_mxrelayctl_optval -f --file) || f=$(_mxrelayctl_confval credentials)
	[[ -n $f ]] || f=/etc/mxrelay/passwd
	[[ -r $f ]] || return 0
	sed -n 's/^\([^#:[:space:]][^:]*\):.*/\1/p' -- "$f" 2>/dev/null
}

# The control socket mxrelayctl would use: --socket, else the configuration's
# control_socket, else DATA_DIR/control.sock (data_dir's default: ./var/mxrelay).
_mxrelayctl_socket()
{
	local v
	_mxrelayctl_optval --socket && return 0
	v=$(_mxrelayctl_confval control_socket)
	if [[ -z $v ]]; then
		v=$(_mxrelayctl_confval data_dir)
		v=${v:-./var/mxrelay}/control.sock
	fi
	printf '%s\n' "$v"
}

# Queue ids from the running daemon, only when its socket is there; nothing (and no
# message) when it does not answer within 2 s.
_mxrelayctl_qids()
{
	local prog=${COMP_WORDS[0]} sock
	# shellcheck disable=SC2088 # the ~/ typed on the line, not expanded by bash here
	[[ $prog == "~/"* ]] && prog=$HOME/${prog#"~/"}
	command -v -- "$prog" >/dev/null 2>&1 || return 0
	sock=$(_mxrelayctl_socket)
	[[ -S $sock ]] || return 0
	timeout 2 "$prog" queue --socket "$sock" list --limit 1000 </dev/null 2>/dev/null |
		sed -n 's/^\([0-9A-Fa-f]\{16\}\) .*/\1/p'
}

# What to offer for a positional argument of command $1, sub-command $2.
_mxrelayctl_argument()
{
	case "$1 $2" in
	"passwd ") _mxrelayctl_users ;;
	"dkim keygen" | "dkim rotate" | "dns spf" | "dns dmarc" | "dns dkim" | "dns check")
		_mxrelayctl_domains ;;
	"queue show" | "queue flush" | "queue hold" | "queue release" | "queue delete" | \
		"queue bounce")
		_mxrelayctl_qids ;;
	"audit import-exo") return 1 ;; # a file
	esac
	return 0
}

_mxrelayctl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd="" sub="" npos=0 i w subs
	COMPREPLY=()

	# the command, its sub-command and how many arguments came after them
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $w == -* ]]; then
			_mxrelayctl_takes_value "$w" && ((i++))
			continue
		fi
		if [[ -z $cmd ]]; then
			cmd=$w
			subs=$(_mxrelayctl_subcommands "$cmd")
		elif [[ -z $sub && -n $subs && " $subs " == *" $w "* ]]; then
			sub=$w
		else
			((npos++))
		fi
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "-h --help -V --version" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$_mxrelayctl_commands" -- "$cur")
		fi
		return 0
	fi
	if [[ $COMP_CWORD -ge 2 ]] && _mxrelayctl_takes_value "$prev"; then
		case $prev in
		-c | --config | -f | --file | -s | --socket | --out)
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			;;
		--type)
			if [[ $sub == rotate ]]; then
				mapfile -t COMPREPLY < <(compgen -W "rsa ed25519 both" -- "$cur")
			else
				mapfile -t COMPREPLY < <(compgen -W "rsa ed25519" -- "$cur")
			fi
			;;
		--sunset) mapfile -t COMPREPLY < <(compgen -W "none" -- "$cur") ;;
		--domain) mapfile -t COMPREPLY < <(compgen -W "$(_mxrelayctl_domains)" -- "$cur") ;;
		esac
		return 0
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_mxrelayctl_options "$cmd" "$sub")" -- "$cur")
		return 0
	fi
	if [[ -n $subs && -z $sub && $npos -eq 0 ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
		return 0
	fi
	# queue commands take several ids; the others one argument
	if [[ $npos -gt 0 && $cmd != queue ]]; then
		return 0
	fi
	local words
	if ! words=$(_mxrelayctl_argument "$cmd" "$sub"); then
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
	fi
	mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
	return 0
}

complete -F _mxrelayctl mxrelayctl
