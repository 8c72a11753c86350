#!/usr/bin/python3
"""Bash completion for mxrelayctl (tools/completion/mxrelayctl.bash), run by a
real bash the way readline calls it (COMP_WORDS, COMP_CWORD, then the
function `complete -p mxrelayctl` names): commands, sub-commands and options
read from the program's own help (every one that `mxrelayctl --help` and each
`COMMAND --help` name must complete, and a program with other commands gets
those); option values; users of a readable credentials file; domains of the
dkim_key lines; queue ids from a running mxrelayd, and nothing, quietly and
quickly, when none answers."""

import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clihelp  # noqa: E402
import mxtest  # noqa: E402

SCRIPT = os.path.join(mxtest.SRC, "tools", "completion", "mxrelayctl.bash")
DRIVER = r'''
source "$1" || exit 90
shift
spec=$(complete -p mxrelayctl) || exit 91
fn=$(sed -n 's/.*-F \([^ ]*\) .*/\1/p' <<<"$spec")
[ -n "$fn" ] || exit 92
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
"$fn" mxrelayctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(*words, prog=None):
    """COMPREPLY for the command line `mxrelayctl WORDS...` with the cursor at the end of
    the last word, as a sorted list. Completion must print nothing on stderr."""
    bash = shutil.which("bash")
    assert bash, "bash not installed"
    argv = [bash, "--norc", "--noprofile", "-c", DRIVER, "driver", SCRIPT,
            prog or mxtest.MXRELAYCTL] + list(words)
    p = mxtest.run(argv, timeout=20, quiet=True)
    mxtest.note(f"# complete {' '.join(words)!r} -> {p.stdout.split()}")
    assert p.returncode == 0, f"completion driver exited {p.returncode}: {p.stderr}"
    assert not p.stderr.strip(), f"completion wrote to stderr: {p.stderr}"
    return sorted(w for w in p.stdout.split("\n") if w)


def test_commands():
    cmds = clihelp.commands()
    assert complete("q") == ["queue"]
    assert complete("") == sorted(cmds), f"{complete('')} != {sorted(cmds)}"
    assert complete("d") == ["dkim", "dns"]
    assert set(clihelp.top_options()) <= set(complete("-"))
    assert complete("frobnicate", "") == []


def test_subcommands_and_options_of_every_command():
    cmds = clihelp.commands()
    missing = []
    for cmd, info in cmds.items():
        subs = complete(cmd, "")
        missing += [f"{cmd} {s}" for s in info["subs"] if s not in subs]
        # an option may belong to any sub-command of cmd (help lists them together)
        offered = set(complete(cmd, "-"))
        for s in info["subs"]:
            offered |= set(complete(cmd, s, "-"))
        missing += [f"{cmd} ... {o}" for o in info["options"] if o not in offered]
    assert not missing, "not completed: " + ", ".join(missing)
    assert complete("queue", "") == sorted(cmds["queue"]["subs"])
    assert complete("queue", "b") == ["bounce", "bounce-digest"]
    assert complete("dkim", "rotate", "--s") == ["--selector", "--status"]
    assert complete("queue", "-c", "x.conf", "--js") == ["--json"]
    if "log-reopen" in cmds and "reload" in cmds:  # one help for both: each its own options
        assert "--if-running" in complete("log-reopen", "-")
        assert "--if-running" not in complete("reload", "-")
    # the sub-command is found after options and their values
    assert complete("queue", "--socket", "/x", "--json", "s") == ["show", "summary"]


def test_option_values():
    assert complete("dkim", "keygen", "example.com", "s1", "--type", "") == ["ed25519", "rsa"]
    assert complete("dkim", "rotate", "example.com", "--type", "") == ["both", "ed25519", "rsa"]
    assert complete("passwd", "scanner", "--sunset", "") == ["none"]
    tmp = mxtest.tmpdir()
    mxtest.write_file(os.path.join(tmp, "relay.conf"), "# x\n")
    assert complete("stats", "-c", os.path.join(tmp, "rel")) == [os.path.join(tmp, "relay.conf")]


def test_users_from_credentials_file():
    tmp = mxtest.tmpdir()
    creds = mxtest.write_file(os.path.join(tmp, "passwd"),
                              "# user:hash:state:senders\n"
                              "scanner:$y$j9T$x:enabled:scans@example.com\n"
                              "crm:$y$j9T$y:disabled:@example.com\n"
                              "copier3:$y$j9T$z:enabled:c3@example.com:sunset=2027-03-31\n",
                              mode=0o600)
    assert complete("passwd", "-f", creds, "") == ["copier3", "crm", "scanner"]
    assert complete("passwd", "-f", creds, "c") == ["copier3", "crm"]
    # the file named by the configuration's credentials key
    conf = mxtest.write_file(os.path.join(tmp, "m.conf"), f"credentials = {creds}\n")
    assert complete("passwd", "-c", conf, "s") == ["scanner"]
    # only the user is completed, not its options' values
    assert complete("passwd", "-f", creds, "scanner", "") == []
    assert complete("passwd", "-f", os.path.join(tmp, "missing"), "") == []


def test_domains_from_dkim_keys():
    tmp = mxtest.tmpdir()
    conf = mxtest.write_file(os.path.join(tmp, "m.conf"),
                             "dkim_key = example.com s1 /k/a.pem\n"
                             "  dkim_key=example.com s2 /k/b.pem\n"
                             "dkim_key = branch.example s1 /k/c.pem\n"
                             "#dkim_key = retired.example s0 /k/d.pem\n")
    assert complete("dkim", "rotate", "-c", conf, "") == ["branch.example", "example.com"]
    assert complete("dns", "check", "-c", conf, "e") == ["example.com"]
    assert complete("m365", "-c", conf, "--domain", "") == ["branch.example", "example.com"]


def test_queue_ids_from_running_daemon():
    d = mxtest.Daemon()
    d.start()
    qids = []
    for i in range(2):
        s = d.connect()
        qids.append(s.mail("sender@example.com", [f"rcpt{i}@example.net"],
                           mxtest.message(subject=f"m{i}")))
        s.quit()
    d.wait_log(r"event=delivery .*status=deferred", timeout=20)
    assert complete("queue", "-c", d.conf_path, "show", "") == sorted(qids)
    k = next(i for i in range(1, 17) if qids[0][:i] != qids[1][:i])  # the ids are sequential
    assert complete("queue", "-c", d.conf_path, "hold", qids[1][:k]) == [qids[1]]
    sock = os.path.join(d.data_dir, "control.sock")
    # and ALL where this mxrelayctl takes it (queue --help says so)
    everything = ["ALL"] if re.search(r"\bALL\b", clihelp.help_text([mxtest.MXRELAYCTL, "queue"])) \
        else []
    assert complete("queue", "--socket", sock, "bounce", "") == sorted(qids + everything)
    assert complete("queue", "-c", d.conf_path, "cat", "") == sorted(qids)
    assert complete("queue", "-c", d.conf_path, "list", "") == []
    # no daemon: nothing offered, nothing printed, no wait
    d.stop()
    t0 = time.monotonic()
    assert complete("queue", "-c", d.conf_path, "show", "") == []
    assert complete("queue", "--socket", "/nonexistent/control.sock", "delete", "") == everything
    assert time.monotonic() - t0 < 5
    # a program that cannot be run is no error either
    assert complete("queue", "show", "", prog="/nonexistent/mxrelayctl") == []


def test_names_come_from_the_programs_help():
    # a mxrelayctl with another command set: the completion follows its help, not a list
    tmp = mxtest.tmpdir()
    fake = mxtest.write_file(os.path.join(tmp, "mxrelayctl"), """#!/bin/sh
if [ "$1" = --help ]; then cat <<'EOF'
usage: mxrelayctl COMMAND [ARGS...]
       mxrelayctl -h | --help      this help

commands:
  queue [-c FILE] list | delete ALL | ID...
  mxrelayctl frobnicate twiddle [--wibble N] [-c FILE]
      twiddle the frob; see queue --json
  mxrelayctl frobnicate knob [--knob-only]
EOF
elif [ "$1" = frobnicate ] && [ "$2" = --help ]; then cat <<'EOF'
usage:
  mxrelayctl frobnicate twiddle [--wibble N] [-c FILE]
      twiddle the frob; see queue --json
  mxrelayctl frobnicate knob [--knob-only]
EOF
elif [ "$1" = queue ] && [ "$2" = --help ]; then cat <<'EOF'
usage:
  queue [-c FILE] list | delete ALL | ID...
      list      the queue
      delete    remove messages
EOF
else exit 2; fi
""", mode=0o755)
    assert complete("", prog=fake) == ["frobnicate", "queue"]
    assert complete("-", prog=fake) == ["--help", "-h"]
    assert complete("frobnicate", "", prog=fake) == ["knob", "twiddle"]
    # a sub-command's own usage block; not the options of another command it names
    assert complete("frobnicate", "twiddle", "-", prog=fake) == ["--help", "--wibble", "-c"]
    assert complete("frobnicate", "knob", "-", prog=fake) == ["--help", "--knob-only"]
    assert complete("queue", "delete", "", prog=fake) == ["ALL"]
    assert complete("queue", "", prog=fake) == ["delete", "list"]


def test_loaded_by_name_from_install_folder():
    # bash-completion loads completions/NAME for command NAME: the file must register
    # itself for mxrelayctl alone and define no other command's completion
    bash = shutil.which("bash")
    p = mxtest.run([bash, "--norc", "--noprofile", "-c", f'source "{SCRIPT}"; complete -p'],
                   timeout=20, check=0)
    specs = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(specs) == 1 and re.match(r"complete -F \S+ mxrelayctl$", specs[0]), specs


if __name__ == "__main__":
    mxtest.main()
