#!/usr/bin/env python3
"""
The source tree's shape, checked: which folder may include which (the layers
of mta/ARCHITECTURE.md), file and function sizes, and include cycles between
files. Run from anywhere:  python3 test/layout/check_layout.py [--report]

--report prints files and lines per folder, the call cycles between files
and the includes that point up a layer, and exits 0; without it the rules
are enforced (no call cycle either) and any breach is listed with exit 1. --root DIR checks
another tree (test/layout/test_check_layout.py builds broken ones).
"""
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if "--root" in sys.argv:  # another tree (the self-test's)
    ROOT = os.path.abspath(sys.argv[sys.argv.index("--root") + 1])
SRC_DIRS = ["mta", "dkim", "dns", "spool", "tools"]
MAX_FILE_LINES = 800
MAX_FUNC_LINES = 60

# Folder -> the folders its files may include (besides itself). Lower layers first.
ALLOWED = {
    "spool": [],
    "dns": [],
    "dkim": [],
    "mta/shared": [],
    "mta": ["mta/shared", "spool", "dns", "dkim"],
    "mta/delivery": ["mta", "mta/shared", "spool", "dns", "dkim"],
    "mta/intake": ["mta", "mta/shared", "mta/delivery", "spool", "dkim"],
    "mta/smtpd": ["mta", "mta/shared", "mta/intake", "spool", "dkim"],
    "mta/control": ["mta", "mta/shared", "mta/intake", "mta/delivery", "spool", "dkim"],
    "tools": ["mta/shared", "spool", "dns", "dkim"],
}
# Headers of a lower folder that only the top (main.c) may include.
TOP_ONLY = {"mta/main.c", "mta/reload.c"}  # reload.c: main.c's reload path, split out
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
FUNC_START = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*\(")


def sources():
    for top in SRC_DIRS:
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, n), ROOT)


def folder(path):
    return os.path.dirname(path)


def includes(path, text):
    out = []
    for inc in INCLUDE.findall(text):
        cand = inc if os.path.exists(os.path.join(ROOT, inc)) else os.path.join(folder(path), inc)
        if os.path.exists(os.path.join(ROOT, cand)):
            out.append(os.path.normpath(cand))
    return out


def functions(text):
    """(name, first line, length) of each function: house style puts the
    name at column 0 and the braces of the body at column 0."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FUNC_START.match(lines[i])
        if m and not lines[i].rstrip().endswith(";"):
            j = i
            while j < len(lines) and lines[j] != "{" and not lines[j].rstrip().endswith(";"):
                j += 1
            if j < len(lines) and lines[j] == "{":
                k = j + 1
                while k < len(lines) and lines[k] != "}":
                    k += 1
                out.append((m.group(0)[:-1].strip(), i + 1, k - j + 1))
                i = k
        i += 1
    return out


def cycles(graph):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, res, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                res.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return res


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)


def unit_graph(files, texts):
    """File-level call graph between .c files: a.c -> b.c when a.c names a
    function that b.c defines without static (calls, callbacks, tables)."""
    owner = {}
    for f in files:
        if not f.endswith(".c"):
            continue
        lines = texts[f].split("\n")
        for name, line, _ in functions(texts[f]):
            prev = lines[line - 2] if line >= 2 else ""
            if not prev.startswith("static") and name != "main":
                owner.setdefault(name, f)
    graph = {}
    for f in files:
        if not f.endswith(".c"):
            continue
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", strip_comments(texts[f])))
        graph[f] = {owner[w] for w in words if w in owner and owner[w] != f}
    return graph


def main():
    report = "--report" in sys.argv
    files = list(sources())
    texts = {f: open(os.path.join(ROOT, f), encoding="utf-8", errors="replace").read() for f in files}
    incs = {f: includes(f, texts[f]) for f in files}
    problems = []

    per_folder = {}
    for f in files:
        n = texts[f].count("\n")
        c = per_folder.setdefault(folder(f), [0, 0])
        c[0] += 1
        c[1] += n
        if n > MAX_FILE_LINES:
            problems.append(f"{f}: {n} lines (at most {MAX_FILE_LINES})")
        for name, line, length in functions(texts[f]):
            if length > MAX_FUNC_LINES:
                problems.append(f"{f}:{line}: {name}() is {length} lines (at most {MAX_FUNC_LINES})")

    upward = []
    for f in files:
        src = folder(f)
        for h in incs[f]:
            dst = folder(h)
            if dst == src or f in TOP_ONLY:
                continue
            if dst not in ALLOWED.get(src, []):
                upward.append(f"{f} -> {h}")
    problems += [f"include against the layers: {u}" for u in upward]

    circles = cycles(unit_graph(files, texts))
    folder_graph = {}
    for f in files:
        for h in incs[f]:
            if folder(h) != folder(f) and f not in TOP_ONLY:
                folder_graph.setdefault(folder(f), set()).add(folder(h))
    folder_circles = cycles(folder_graph)
    problems += [f"folders include each other: {' '.join(c)}" for c in folder_circles]
    problems += [f"files call each other in a circle: {' '.join(c)}" for c in circles]

    if report:
        print("files and lines per folder:")
        for d in sorted(per_folder):
            print(f"  {d:14} {per_folder[d][0]:3} files {per_folder[d][1]:6} lines")
        print(f"call cycles between .c files: {len(circles)}")
        for c in circles:
            print("  " + " ".join(c))
        print(f"includes against the layers: {len(upward)}")
        for u in upward:
            print("  " + u)
        big = [p for p in problems if "lines (at most" in p]
        print(f"files or functions over the size limits: {len(big)}")
        for p in big:
            print("  " + p)
        return 0
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layout problem(s); see mta/ARCHITECTURE.md")
        return 1
    print(f"layout ok: {len(files)} files, no include against the layers, no call cycle, "
          "sizes within limits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
