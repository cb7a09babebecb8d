#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that no file of daemon/ calls back into a file that calls it.

Maps every nvx_/nvx__ function to the daemon/*.c file that defines it, then
builds the graph of calls between files (comments and strings stripped) and
fails naming each cycle. Upward news must travel through hooks and ops
tables (ARCHITECTURE.md, "Direction of calls in daemon/"), which this does
not see: a call through a function pointer is not an edge.

usage: check-calls.py DAEMON_DIR [-v]   (-v: print every file's callees)
"""
import collections
import glob
import os
import re
import sys


def strip(src):
    """Comments and string and character literals out, in one pass: a
    "tcp://" inside a string is not a comment, a quote in a comment opens
    no string."""
    tok = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    return tok.sub(lambda m: ' ' if m.group(0)[0] == '/' else '""', src)


def graph(d):
    srcs = {os.path.basename(f): strip(open(f).read()) for f in sorted(glob.glob(os.path.join(d, '*.c')))}
    defs = {}
    for f, s in srcs.items():
        for m in re.finditer(r'^(nvx_\w*)\(', s, re.M):
            defs.setdefault(m.group(1), f)
    g = collections.defaultdict(dict)
    for f, s in srcs.items():
        for m in re.finditer(r'\b(nvx_\w*)\s*\(', s):
            to = defs.get(m.group(1))
            if to and to != f:
                g[f].setdefault(to, set()).add(m.group(1))
    return srcs, g


def cycles(files, g):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
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
                out.append(sorted(comp))

    for v in files:
        if v not in index:
            visit(v)
    return out


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    srcs, g = graph(sys.argv[1])
    if '-v' in sys.argv:
        for f in sorted(g):
            print(f, '->', ', '.join(sorted(g[f])))
    bad = cycles(sorted(srcs), g)
    for comp in bad:
        print('cycle:', ' '.join(comp))
        for a in comp:
            for b in comp:
                if b in g.get(a, {}):
                    print('   %s -> %s: %s' % (a, b, ', '.join(sorted(g[a][b]))))
    if not bad:
        print('%d files, no cycles' % len(srcs))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
