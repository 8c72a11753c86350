# bash completion for mxrelayctl(8)
#
# Installed as PREFIX/share/bash-completion/completions/mxrelayctl, where
# bash-completion loads it on first use; without that package:
#   source tools/completion/mxrelayctl.bash
# Commands, sub-commands and options are read from the program's own help
# (`mxrelayctl --help`, `mxrelayctl COMMAND --help`, as bash-completion's
# _parse_help does; once per shell), so they always match the binary being
# completed. Values come from what can be read without side effects: the
# domains of the configuration's dkim_key lines and the users of the
# credentials file when they are readable, and queue ids from `mxrelayctl
# queue list` when the control socket exists (at most 2 s, errors
# discarded). test/integration/test_completion.py runs it in a real bash.
# It needs nothing from the bash-completion package.

declare -gA _mxrelayctl_cache 2>/dev/null

# The program on the command line, as a path bash can run; 1 when there is none.
_mxrelayctl_prog()
{
	local prog=${COMP_WORDS[0]}
	# shellcheck disable=SC2088 # the ~/ typed on the line, not expanded by bash here
	[[ $prog == "~/"* ]] && prog=$HOME/${prog#"~/"}
	command -v -- "$prog" 2>/dev/null
}

# The help text of command $1 ("" for mxrelayctl's own), cached.
_mxrelayctl_help()
{
	local prog key
	prog=$(_mxrelayctl_prog) || return 0
	key="$prog|$1"
	if [[ -z ${_mxrelayctl_cache[$key]+set} ]]; then
		if [[ -n $1 ]]; then
			_mxrelayctl_cache[$key]=$(timeout 2 "$prog" "$1" --help </dev/null 2>/dev/null)
		else
			_mxrelayctl_cache[$key]=$(timeout 2 "$prog" --help </dev/null 2>/dev/null)
		fi
	fi
	printf '%s\n' "${_mxrelayctl_cache[$key]}"
}

# The commands: the first word of each usage line after "commands:".
_mxrelayctl_commands()
{
	_mxrelayctl_help "" | sed -nE '/^commands:$/,$ s/^  (mxrelayctl )?([a-z][a-z0-9-]*)([[:space:]].*)?$/\2/p' |
		awk '!seen[$0]++'
}

# The sub-commands of command $1: "  CMD SUB ..." usage lines and the
# "      SUB   what it does" list some commands print.
_mxrelayctl_subcommands()
{
	[[ $1 =~ ^[a-z0-9-]+$ ]] || return 0
	_mxrelayctl_help "$1" |
		sed -nE "s/^  (mxrelayctl )?$1 ([a-z][a-z0-9-]*)([[:space:]].*)?\$/\\2/p
			s/^ {4,}([a-z][a-z0-9-]*) {2,}[^ ].*/\\1/p" | awk '!seen[$0]++'
}

# The options of command $1, sub-command $2: those of the sub-command's own
# usage block when it has one, else all of the command's; not the options
# of other commands its text mentions ("for audit plan and m365 --plan").
_mxrelayctl_options()
{
	local text others
	if [[ -z $1 ]]; then # mxrelayctl's own: those before its list of commands
		_mxrelayctl_help "" | sed '/^commands:$/,$d' |
			grep -oE '(^|[][[:space:]|(,])--?[[:alnum:]][[:alnum:]-]*' | sed -E 's/^[^-]//'
		return 0
	fi
	[[ $1 =~ ^[a-z0-9-]+$ && $2 =~ ^[a-z0-9-]*$ ]] || return 0
	# only the usage blocks of this command (reload's help shows log-reopen's too)
	text=$(_mxrelayctl_help "$1" | awk -v c="$1" 'BEGIN { keep = 1 }
		match($0, /^  (mxrelayctl )?[a-z][a-z0-9-]*/) {
			w = substr($0, RSTART, RLENGTH); sub(/^  (mxrelayctl )?/, "", w); keep = (w == c)
		}
		keep')
	if [[ -n $2 ]] && grep -qE "^  (mxrelayctl )?$1 $2( |\$)" <<<"$text"; then
		text=$(awk -v h="^  (mxrelayctl )?$1 $2( |\$)" \
			'$0 ~ h { p = 1; print; next } /^  [^ ]/ { p = 0 } p' <<<"$text")
	fi
	others=$(_mxrelayctl_commands | grep -vxF -- "$1" | paste -sd '|' -)
	[[ -n $others ]] &&
		text=$(sed -E "s/(^|[^[:alnum:]_-])($others) +--?[[:alnum:]][[:alnum:]-]*/\\1/g" <<<"$text")
	grep -oE '(^|[][[:space:]|(,])--?[[:alnum:]][[:alnum:]-]*' <<<"$text" |
		sed -E 's/^[^-]//' | awk '!seen[$0]++'
	echo "--help"
}

# Options that take a value (the next word): those written "-x VALUE" in the
# help, and the long forms the programs also accept.
_mxrelayctl_takes_value()
{
	case $1 in
	-c | --config | -f | --file | -s | --socket | --senders | --sunset | --limit | --type | \
		--bits | --out | --selector | --retire-after | --ip4 | --ip6 | --current | --rua | \
		--port25 | --helo | --record | --since | --day | --year | --domain | --from | --to | \
		--delete) return 0 ;;
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
	local prog sock
	prog=$(_mxrelayctl_prog) || return 0
	sock=$(_mxrelayctl_socket)
	[[ -S $sock ]] || return 0
	timeout 2 "$prog" queue --socket "$sock" list --limit 1000 </dev/null 2>/dev/null |
		sed -n 's/^\([0-9A-Fa-f]\{16\}\) .*/\1/p'
}

# What to offer for a positional argument of command $1, sub-command $2;
# 1: a file name.
_mxrelayctl_argument()
{
	case "$1 $2" in
	"passwd ") _mxrelayctl_users ;;
	"dkim keygen" | "dkim rotate" | "dns spf" | "dns dmarc" | "dns dkim" | "dns check")
		_mxrelayctl_domains ;;
	"queue show" | "queue cat") _mxrelayctl_qids ;;
	"queue flush" | "queue hold" | "queue release" | "queue delete" | "queue bounce")
		# the whole queue at once, where this mxrelayctl takes it
		grep -qw ALL <<<"$(_mxrelayctl_help queue)" && echo ALL
		_mxrelayctl_qids
		;;
	"audit import-exo" | "backup " | "report ") return 1 ;;
	esac
	return 0
}

_mxrelayctl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local cmd="" sub="" npos=0 i w subs="" words
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
		elif [[ -z $sub && -n $subs ]] && grep -qxF -- "$w" <<<"$subs"; then
			sub=$w
		else
			((npos++))
		fi
	done

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			words=$(_mxrelayctl_options "" "")
		else
			words=$(_mxrelayctl_commands)
		fi
		mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
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
				words="rsa ed25519 both"
			else
				words="rsa ed25519"
			fi
			mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
			;;
		--sunset) mapfile -t COMPREPLY < <(compgen -W "none" -- "$cur") ;;
		--delete) mapfile -t COMPREPLY < <(compgen -W "$(_mxrelayctl_users)" -- "$cur") ;;
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
	if ! words=$(_mxrelayctl_argument "$cmd" "$sub"); then
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
	fi
	mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
	return 0
}

complete -F _mxrelayctl mxrelayctl
