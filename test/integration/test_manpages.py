#!/usr/bin/python3
"""The manual pages in docs/man: clean for mandoc -Tlint, groff -ww and
man --warnings; complete against what the programs accept (every key of the
configuration parser in mxrelay.conf(5), in the right section; every
command, sub-command and option of `mxrelayctl --help` in mxrelayctl(8);
every option of `mxrelayd --help` and `mxrelay-sendmail --help` in their
pages); and installed by `cmake --install` where man(1) finds them.

Each check is first shown to catch a broken input (a page with a lint
error, a key or command left out), so a check that cannot fail fails."""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clihelp  # noqa: E402
import mxtest  # noqa: E402

MAN = os.path.join(mxtest.SRC, "docs", "man")
PAGES = {"mxrelayd.8": "man8", "mxrelayctl.8": "man8", "mxrelay-sendmail.1": "man1",
         "mxrelay.conf.5": "man5"}
KEYS_C = os.path.join(mxtest.SRC, "mta", "shared", "config_keys.c")
ENV = dict(os.environ, LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat", MANWIDTH="80")


def tool(name, package):
    exe = shutil.which(name)
    assert exe, f"{name} not installed (package {package}, tools/install-deps.sh --test)"
    return exe


def page(name):
    return os.path.join(MAN, name)


# ---- lint -------------------------------------------------------------------

def lint(path):
    """Every complaint of the three formatters about one page, as lines."""
    out = []
    p = mxtest.run([tool("mandoc", "mandoc"), "-Tlint", "-Wwarning", path], timeout=30, env=ENV)
    out += [f"mandoc: {ln}" for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    if p.returncode != 0 and not out:
        out.append(f"mandoc -Tlint exited {p.returncode}")
    p = mxtest.run([tool("groff", "groff-base"), "-mandoc", "-ww", "-z", path], timeout=30,
                   env=ENV)
    out += [f"groff: {ln}" for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    p = mxtest.run([tool("man", "man-db"), "--warnings", "-l", path], timeout=30, env=ENV,
                   quiet=True)
    out += [f"man: {ln}" for ln in p.stderr.splitlines() if ln.strip()]
    if p.returncode != 0 or not p.stdout.strip():
        out.append(f"man -l exited {p.returncode} and printed {len(p.stdout)} bytes")
    return out


def test_lint_catches_a_broken_page():
    bad = mxtest.write_file(os.path.join(mxtest.tmpdir(), "bad.8"),
                            ".Dd December 6, 2026\n.Dt BAD 8\n.Os\n.Sh NAME\n.Nm bad\n"
                            ".Nd a broken page\n.Sh DESCRIPTION\n.Bl -tag -width Ds\n"
                            ".It Fl x\nno end of list\n.Zz unknown macro\n")
    problems = lint(bad)
    assert any(p.startswith("mandoc:") for p in problems), problems
    assert any(p.startswith("groff:") for p in problems), problems


def test_pages_lint_clean():
    problems = []
    for name in PAGES:
        problems += [f"{name}: {p}" for p in lint(page(name))]
    assert not problems, "\n".join(problems)


# ---- rendering, for the checks by content ------------------------------------

def render(path):
    """The page as text, wide enough that no option or key is split."""
    p = mxtest.run([tool("mandoc", "mandoc"), "-Tascii", "-Owidth=250", path], timeout=30,
                   env=ENV, quiet=True, check=0)
    return re.sub(r".\x08", "", p.stdout)


def sections(text):
    """{".Sh title": text, ".Ss title": text} of a rendered page."""
    out, key = {}, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z0-9 ,.-]*$", line):
            key = "Sh " + line.strip()
        elif re.match(r"^   \S", line):
            key = "Ss " + line.strip()
        if key:
            out[key] = out.get(key, "") + line + "\n"
    return out


def has_option(text, opt):
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", text) is not None


def missing_options(text, options):
    return [o for o in options if not has_option(text, o)]


# ---- mxrelay.conf(5): every key of the parser --------------------------------

def parser_keys():
    """{key: "global"|"listener"} from config_keys.c's table, each entry checked against
    the parser itself: the key is known, and its scope is what mxrelayd -n says."""
    src = open(KEYS_C).read()
    m = re.search(r"const struct config_key config_keys\[\] = \{\n(.*?)\n\};", src, re.S)
    assert m, f"no config_keys[] table in {KEYS_C}"
    keys = {}
    for line in m.group(1).splitlines():
        if not line.strip() or line.strip().startswith(("/*", "*", "//")):
            continue
        e = re.match(r'^\s*([A-Z]+)\("([a-z0-9_]+)",', line)
        assert e, f"cannot read this entry of config_keys[] (update test_manpages.py): {line!r}"
        keys[e.group(2)] = "listener" if e.group(1).startswith("L") else "global"
    return keys


def scope_by_parser(key):
    """What mxrelayd -n makes of KEY: "global", "listener" or "unknown". The parser checks a
    key's scope before its value: a global key inside a section and a listener key before
    the first section are refused for that alone, an unknown key anywhere."""
    def probe(text):
        conf = mxtest.write_file(os.path.join(mxtest.tmpdir(), "k.conf"), text)
        p = mxtest.run([mxtest.MXRELAYD, "-n", "-c", conf], timeout=15, quiet=True)
        return p.stderr.replace(conf, "FILE")

    inside = probe(f"[listener x]\n{key} =\n")
    if f"FILE:2: {key}: unknown key" in inside:
        return "unknown"
    if f"FILE:2: {key}: global key inside [listener x]" in inside:
        return "global"
    if f"FILE:1: {key}: only allowed inside a [listener NAME] section" in probe(f"{key} =\n"):
        return "listener"
    return "neither (inside a section: " + inside.strip() + ")"


def documented_keys(path):
    """{key: section} of every list entry of GLOBAL KEYS and LISTENER KEYS whose head
    starts with .Cm KEY (in an .It line, or each line of an .It Xo ... .Xc head)."""
    out, sh, in_head = {}, None, False
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith(".Sh "):
            sh = line[4:].strip().strip('"')
            continue
        if sh not in ("GLOBAL KEYS", "LISTENER KEYS"):
            continue
        if line == ".It Xo":
            in_head = True
            continue
        if line == ".Xc":
            in_head = False
            continue
        m = re.match(r"^\.It Cm ([a-z0-9_]+)", line) or \
            (in_head and re.match(r"^\.Cm ([a-z0-9_]+)", line))
        if m:
            assert m.group(1) not in out, f"{m.group(1)} described twice in {path}"
            out[m.group(1)] = "listener" if sh == "LISTENER KEYS" else "global"
    return out


def key_problems(parsed, documented):
    out = []
    for k, scope in sorted(parsed.items()):
        if k not in documented:
            out.append(f"{k} ({scope} key) is not described in mxrelay.conf.5")
        elif documented[k] != scope:
            out.append(f"{k} is a {scope} key but described under the {documented[k]} keys")
    for k in sorted(set(documented) - set(parsed)):
        out.append(f"{k} is described in mxrelay.conf.5 but the parser does not know it")
    return out


def test_parser_keys_read_right():
    keys = parser_keys()
    assert len(keys) >= 80, f"only {len(keys)} keys read from {KEYS_C}"
    said = {k: scope_by_parser(k) for k in keys}
    wrong = [f"{k}: the table says {s}, mxrelayd -n says {said[k]}"
             for k, s in sorted(keys.items()) if said[k] != s]
    assert not wrong, "\n".join(wrong)
    # and the probe tells an unknown key from a known one
    assert scope_by_parser("no_such_key_here") == "unknown"


def test_every_config_key_documented():
    parsed, documented = parser_keys(), documented_keys(page("mxrelay.conf.5"))
    problems = key_problems(parsed, documented)
    assert not problems, "\n".join(problems)
    # the comparison catches a key left out, a stray one and one in the wrong section
    some = sorted(parsed)[len(parsed) // 2]
    fewer = {k: v for k, v in documented.items() if k != some}
    assert key_problems(parsed, fewer) == [f"{some} ({parsed[some]} key) is not described "
                                           "in mxrelay.conf.5"]
    assert key_problems(parsed, dict(documented, not_a_key="global"))
    assert key_problems(parsed, dict(documented, address="global"))


def test_conf_page_keys_render():
    # each key's head renders as "KEY = VALUE" in its section (no markup lost)
    text = sections(render(page("mxrelay.conf.5")))
    glob = "".join(v for k, v in text.items() if k.startswith("Ss ") or k == "Sh GLOBAL KEYS")
    lis = text.get("Sh LISTENER KEYS", "")
    for k, scope in parser_keys().items():
        body = lis if scope == "listener" else glob
        assert re.search(r"(?m)^\s+(?:\S.*, )?" + re.escape(k) + r" = ", body), \
            f"{k} = ... not found in the rendered {scope} keys"


# ---- mxrelayctl(8): every command, sub-command and option --------------------

def ctl_problems(cmds, top_opts, text):
    sec = sections(text)
    out = []
    synopsis = sec.get("Sh SYNOPSIS", "")
    out += [f"option {o} of mxrelayctl not in SYNOPSIS" for o in missing_options(synopsis, top_opts)]
    for cmd, info in cmds.items():
        body = sec.get("Ss " + cmd)
        if body is None:
            out.append(f"command {cmd}: no subsection '{cmd}' under COMMANDS")
            continue
        heads = [re.sub(r"^mxrelayctl " + re.escape(cmd) + " ", "", ln.strip())
                 for ln in body.splitlines()]
        for sub in info["subs"]:
            if not any(h == sub or h.startswith(sub + " ") for h in heads):
                out.append(f"sub-command {cmd} {sub}: no entry in subsection '{cmd}'")
        out += [f"option {o} of {cmd} not in subsection '{cmd}'"
                for o in missing_options(body, info["options"])]
    return out


def test_every_mxrelayctl_command_documented():
    cmds, top = clihelp.commands(), clihelp.top_options()
    assert {"passwd", "dkim", "queue"} <= set(cmds), cmds
    assert "keygen" in cmds["dkim"]["subs"] and "list" in cmds["queue"]["subs"], cmds
    assert "--senders" in cmds["passwd"]["options"] and "-h" in top, (cmds, top)
    text = render(page("mxrelayctl.8"))
    problems = ctl_problems(cmds, top, text)
    assert not problems, "\n".join(problems)
    # a command, a sub-command or an option the page lacks is caught
    more = dict(cmds, frobnicate={"subs": [], "options": []})
    assert ctl_problems(more, top, text) == ["command frobnicate: no subsection 'frobnicate' "
                                             "under COMMANDS"]
    more = dict(cmds, queue={"subs": cmds["queue"]["subs"] + ["explode"],
                             "options": cmds["queue"]["options"] + ["--everything"]})
    assert len(ctl_problems(more, top, text)) == 2, ctl_problems(more, top, text)


# ---- mxrelayd(8), mxrelay-sendmail(1): every option ---------------------------

def test_every_mxrelayd_option_documented():
    opts = clihelp.options_of([mxtest.MXRELAYD])
    assert {"-c", "--config", "-n", "--check"} <= set(opts), opts
    text = render(page("mxrelayd.8"))
    assert not missing_options(text, opts), missing_options(text, opts)
    assert missing_options(text, ["--frobnicate"]) == ["--frobnicate"]


def test_every_sendmail_option_documented():
    opts = clihelp.options_of([clihelp.SENDMAIL])
    assert {"-t", "-i", "-f", "-F", "-C", "-oi", "-bm"} <= set(opts), opts
    text = render(page("mxrelay-sendmail.1"))
    assert not missing_options(text, opts), missing_options(text, opts)


# ---- installation ---------------------------------------------------------------

def build_dir():
    d = os.path.dirname(os.path.dirname(os.path.abspath(mxtest.MXRELAYD)))
    assert os.path.exists(os.path.join(d, "cmake_install.cmake")), \
        f"no CMake build tree at {d} (from MXRELAYD={mxtest.MXRELAYD})"
    return d


def test_install_puts_pages_where_man_finds_them():
    prefix = os.path.join(mxtest.tmpdir(), "prefix")
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    mxtest.run(["cmake", "--install", build_dir(), "--prefix", prefix], timeout=120, env=env,
               check=0)
    mandir = os.path.join(prefix, "share", "man")
    for name, sub in PAGES.items():
        got = os.path.join(mandir, sub, name)
        assert os.path.isfile(got), f"{got} not installed"
        assert open(got).read() == open(page(name)).read(), f"{got} differs from docs/man"
    comp = os.path.join(prefix, "share", "bash-completion", "completions", "mxrelayctl")
    assert open(comp).read() == \
        open(os.path.join(mxtest.SRC, "tools", "completion", "mxrelayctl.bash")).read()
    mailq = os.path.join(mandir, "man1", "mailq.1")
    assert os.path.islink(mailq) and os.readlink(mailq) == "mxrelay-sendmail.1", \
        f"{mailq} is not a link to mxrelay-sendmail.1"
    for section, name in (("5", "mxrelay.conf"), ("8", "mxrelayd"), ("8", "mxrelayctl"),
                          ("1", "mxrelay-sendmail"), ("1", "mailq")):
        p = mxtest.run([tool("man", "man-db"), "--warnings", "-M", mandir, section, name],
                       timeout=30, env=ENV, quiet=True)
        assert p.returncode == 0 and name in p.stdout.lower() and not p.stderr.strip(), \
            f"man -M {mandir} {section} {name}: exit {p.returncode} {p.stderr}"


if __name__ == "__main__":
    mxtest.main()
