#!/usr/bin/env python3
"""
The layout check must be able to fail: small trees, each with one breach
(an include against the layers, a file or a function over the limits, two
files calling each other), must each be refused, and a clean tree passed.
"""
import os
import shutil
import subprocess
import sys
import tempfile

CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_layout.py")


def func(name, lines):
    body = "".join(f"\tx += {i};\n" for i in range(lines - 2))
    return f"int\n{name}(int x)\n{{\n{body}\treturn x;\n}}\n"


def tree(files):
    root = tempfile.mkdtemp(prefix="layout.")
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    return root


def run(root, keep=False):
    r = subprocess.run([sys.executable, CHECK, "--root", root], capture_output=True, text=True)
    if not keep:
        shutil.rmtree(root)
    return r


CLEAN = {
    "mta/shared/util.h": "int util(int x);\n",
    "mta/shared/util.c": '#include "mta/shared/util.h"\n' + func("util", 10),
    "mta/smtpd/cmd.c": '#include "mta/shared/util.h"\n' + func("cmd", 20),
    "tools/ctl.c": '#include "mta/shared/util.h"\n' + func("ctl", 20),
}

BROKEN = {
    "shared includes the daemon": {"mta/shared/util.c": '#include "mta/smtpd/smtpd.h"\n',
                                   "mta/smtpd/smtpd.h": "\n"},
    "tools include the daemon": {"tools/ctl.c": '#include "mta/smtpd/smtpd.h"\n',
                                 "mta/smtpd/smtpd.h": "\n"},
    "delivery includes smtpd": {"mta/delivery/d.c": '#include "mta/smtpd/smtpd.h"\n',
                                "mta/smtpd/smtpd.h": "\n"},
    "function over 60 lines": {"mta/smtpd/cmd.c": func("cmd", 61)},
    "file over 800 lines": {"dns/big.c": "/* x */\n" * 801},
    "two files call each other": {"mta/smtpd/a.c": func("ping", 5).replace("return x;", "return pong(x);"),
                                  "mta/smtpd/b.c": func("pong", 5).replace("return x;", "return ping(x);")},
}


def main():
    failures = 0
    r = run(tree(CLEAN))
    if r.returncode != 0:
        print(f"FAIL clean tree refused:\n{r.stdout}{r.stderr}")
        failures += 1
    for label, extra in BROKEN.items():
        files = dict(CLEAN)
        files.update(extra)
        r = run(tree(files))
        if r.returncode != 1:
            print(f"FAIL {label}: exit {r.returncode}, expected 1\n{r.stdout}{r.stderr}")
            failures += 1
        else:
            print(f"ok {label}: {r.stdout.splitlines()[0]}")
    r = run(os.path.join(os.path.dirname(CHECK), "..", ".."), keep=True)
    print(r.stdout.strip())
    if r.returncode != 0:
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
