#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Lints man pages for what renders wrong without a warning from groff.

Usage: check-man.py PAGE...

- Alternating font macros (.BI .BR .IB .IR .RB .RI) join their arguments
  with no space: `.IR avg . The data is synced` renders
  "avg.Thedataissynced". An argument that ends in a letter or digit
  followed by one that starts with one is such a run-together pair.
- Every page named in a .BR NAME (SECTION) cross-reference among the
  pages given, or marked external below, must exist: a reference to a
  missing nvxd(8) is how the old nvx.1 went wrong.
Exits 1 naming file and line for each problem.
"""
import os
import re
import sys

ALTERNATING = {".BI", ".BR", ".IB", ".IR", ".RB", ".RI"}
# Pages of other packages that nvx's pages may name.
EXTERNAL = {"minisign(1)", "b2sum(1)", "systemctl(1)", "systemd.unit(5)",
            "systemd.exec(5)", "sysusers.d(5)", "groupadd(8)", "usermod(8)",
            "unix(7)", "signal(7)", "journalctl(1)", "gpasswd(1)"}


def args_of(line):
    """Splits a request line's arguments as groff does ("" is a quote)."""
    out, i, n = [], 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        if i >= n:
            break
        if line[i] == '"':
            i += 1
            buf = ""
            while i < n:
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        buf += '"'
                        i += 2
                        continue
                    i += 1
                    break
                buf += line[i]
                i += 1
            out.append(buf)
        else:
            j = i
            while j < n and line[j] != " ":
                j += 1
            out.append(line[i:j])
            i = j
    return out


def visible(arg):
    """The argument without font escapes (\\fB, \\fR, \\fI, \\fP, \\f(XX)."""
    arg = re.sub(r"\\f(\(..|\[[^\]]*\]|.)", "", arg)
    # Other escapes (\(lq, \-, \&) print punctuation or nothing: never a letter.
    return re.sub(r"\\(\(..|\[[^\]]*\]|.)", "\0", arg)


def main():
    problems = 0
    pages = {os.path.basename(p).rsplit(".", 1)[0] + "(" +
             os.path.basename(p).rsplit(".", 1)[1] + ")" for p in sys.argv[1:]}
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        for no, line in enumerate(lines, 1):
            words = line.split(" ", 1)
            if words[0] not in ALTERNATING or len(words) < 2:
                continue
            a = [visible(x) for x in args_of(words[1])]
            for prev, cur in zip(a, a[1:]):
                if prev and cur and prev[-1].isalnum() and cur[0].isalnum():
                    print(f"{path}:{no}: '{prev}' and '{cur}' run together "
                          f"(alternating {words[0]}): quote the words or use .I/.B")
                    problems += 1
            if words[0] == ".BR" and len(a) >= 2 and re.fullmatch(r"\(\d\)[,.]?", a[1]):
                ref = a[0] + a[1].rstrip(",.")
                if ref not in pages and ref not in EXTERNAL:
                    print(f"{path}:{no}: refers to {ref}, which is not among the pages")
                    problems += 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
