"""clihelp: what the programs say they accept, read from their --help text.

it.test_manpages checks the manual pages against it and it.test_completion
the bash completion, so a command, sub-command or option added to a
program's help without a page entry or a completion fails those tests.

commands():          {command: {"subs": [...], "options": [...]}} of mxrelayctl
                     (from `mxrelayctl --help` and each `mxrelayctl COMMAND --help`)
top_options():       the options of `mxrelayctl --help` itself (-h, --help, -V, ...)
options_of(argv):    the options named in `argv --help` (mxrelayd, mxrelay-sendmail)
"""

import os
import re
import subprocess

import mxtest

SENDMAIL = os.environ.get("MXRELAY_SENDMAIL") or os.path.join(mxtest.SRC, "build", "tools",
                                                               "mxrelay-sendmail")
# an option: one or two dashes, a letter or digit, then letters, digits and dashes,
# at the start of a word (after a blank, "[", "|", "(" or ",")
OPTION = re.compile(r"(?:^|(?<=[\s\[|(,]))(--?[A-Za-z0-9][A-Za-z0-9-]*)")
COMMAND_LINE = re.compile(r"^  (?:mxrelayctl )?([a-z][a-z0-9-]*)(?=\s|$)")
# "  dkim keygen DOMAIN": a lower-case word after the command is a sub-command
SUB_LINE = r"^  (?:mxrelayctl )?{cmd} ([a-z][a-z0-9-]*)(?=\s|$)"
# an indented list of sub-commands ("      list      messages, oldest first")
SUB_ITEM = re.compile(r"^ {4,}([a-z][a-z0-9-]*) {2,}\S")


def help_text(argv):
    """stdout of `argv --help`, which must exit 0."""
    p = mxtest.run(list(argv) + ["--help"], timeout=20, quiet=True)
    assert p.returncode == 0, f"{' '.join(argv)} --help exited {p.returncode}: {p.stderr}"
    assert p.stdout.strip(), f"{' '.join(argv)} --help printed nothing"
    return p.stdout


def options_in(text, foreign=()):
    """Options named in a help text, in order, without repeats; not those that follow the
    name of a command in foreign ("for audit plan and m365 --plan" in audit's help)."""
    out = []
    if foreign:
        other = "|".join(re.escape(c) for c in foreign)
        text = re.sub(r"(?<![\w-])(?:" + other + r")\s+--?[A-Za-z0-9][A-Za-z0-9-]*", "", text)
    for line in text.splitlines():
        for o in OPTION.findall(line):
            # "-qINTERVAL": option -q with a value written in capitals
            o = re.sub(r"(?<=^-[a-z])[A-Z]{2,}$", "", o)
            if o not in out:
                out.append(o)
    return out


def options_of(argv):
    return options_in(help_text(argv))


def _command_names(text):
    names, seen_commands = [], False
    for line in text.splitlines():
        if line.strip() == "commands:":
            seen_commands = True
            continue
        m = COMMAND_LINE.match(line) if seen_commands else None
        if m and m.group(1) not in names:
            names.append(m.group(1))
    assert names, "no commands found in mxrelayctl --help:\n" + text
    return names


def _subcommands(cmd, text):
    subs = []
    line_re = re.compile(SUB_LINE.format(cmd=re.escape(cmd)))
    for line in text.splitlines():
        m = line_re.match(line) or SUB_ITEM.match(line)
        if m and m.group(1) not in subs:
            subs.append(m.group(1))
    return subs


def own_blocks(cmd, text):
    """The lines of cmd's help that are about cmd: a help may also show the usage of a
    command that goes with it (`reload --help` shows log-reopen's too)."""
    keep, out = True, []
    for line in text.splitlines():
        m = COMMAND_LINE.match(line)
        if m:
            keep = m.group(1) == cmd
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def commands():
    top = help_text([mxtest.MXRELAYCTL])
    out, names = {}, _command_names(top)
    for cmd in names:
        text = own_blocks(cmd, help_text([mxtest.MXRELAYCTL, cmd]))
        out[cmd] = {"subs": _subcommands(cmd, text),
                    "options": options_in(text, [c for c in names if c != cmd])}
    return out


def top_options():
    """The options of mxrelayctl itself: those named before its list of commands."""
    top = help_text([mxtest.MXRELAYCTL])
    return options_in(top.split("\ncommands:", 1)[0])
