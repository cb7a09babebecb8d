#!/bin/sh
# SPDX-License-Identifier: MIT
# Dedup benchmark (issue 2): two GGUF files that differ only in one metadata
# string value of a different length. Prints, over 5 runs (different tensor
# data and different length changes), the median/min/max fraction of the
# second file's bytes found in chunks of the first:
#   auto   tensor-aware chunking (the target: >= 99%)
#   cdc    plain content-defined chunking
#   fixed  fixed 64 KiB pieces (the baseline)
# measured by tests/bench/bench-dedup.c at the library level and, when the
# nvx binary is built, end to end through `nvx add --chunker auto|fixed`.
#
# usage: tests/bench/bench-dedup.sh [BUILD_DIR] [MIB]   (default: build, 64)
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
mib=${2:-64}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/nvx-bench-dedup.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

die() {
    echo "bench-dedup: $*" >&2
    exit 1
}

[ -f "$build/libcas/libcas.a" ] || die "no $build/libcas/libcas.a: build first (meson setup $build && ninja -C $build)"
rtlib=$(ls "$build"/runtime/libnvxrt*.a 2>/dev/null | tr '\n' ' ')
[ -n "$rtlib" ] || die "no runtime library in $build/runtime: build first"
${CC:-cc} -O2 -std=c17 -D_POSIX_C_SOURCE=200809L -I"$src" "$src/tests/bench/bench-dedup.c" \
    "$build/libcas/libcas.a" $rtlib $(pkg-config --libs libsodium libb2) -llmdb -lm -lpthread \
    -o "$work/bench-dedup" || die "cannot build bench-dedup.c"

# Model generator: rt-tools' nvx-mkmodel when built, else the python fallback.
mkmodel() { # OUT SEED NAME
    if [ -x "$build/tests/tools/nvx-mkmodel" ] && [ -n "${NVX_MKMODEL_ARGS:-}" ]; then
        # shellcheck disable=SC2086
        "$build/tests/tools/nvx-mkmodel" $NVX_MKMODEL_ARGS --seed "$2" --name "$3" -o "$1"
    else
        python3 "$src/tests/bench/mkgguf.py" "$1" --seed "$2" --name "$3" --mib "$mib"
    fi
}

nvx=$build/cli/nvx
use_cli=0
[ -x "$nvx" ] && use_cli=1

# Fraction of B's bytes in chunks of A from two `nvx info --json --chunks`.
cli_fraction() { # JSON_A JSON_B
    python3 - "$1" "$2" <<'PY'
import json, sys
def chunks(path):
    doc = json.load(open(path))
    def find(o):
        if isinstance(o, dict):
            if 'chunks' in o and isinstance(o['chunks'], list):
                return o['chunks']
            for v in o.values():
                r = find(v)
                if r is not None:
                    return r
        return None
    return find(doc) or []
a = {c['id'] for c in chunks(sys.argv[1])}
b = chunks(sys.argv[2])
total = sum(c['len'] for c in b)
print('%.6f' % (sum(c['len'] for c in b if c['id'] in a) / total if total else 0))
PY
}

cli_run() { # MODE A B -> fraction or "n/a"
    store=$work/store-$1
    rm -rf "$store"
    ida=$("$nvx" --store "$store" add -q --chunker "$1" "$2" 2>/dev/null) || { echo n/a; return; }
    idb=$("$nvx" --store "$store" add -q --chunker "$1" "$3" 2>/dev/null) || { echo n/a; return; }
    "$nvx" --store "$store" info "$ida" --json --chunks >"$work/a.json" 2>/dev/null || { echo n/a; return; }
    "$nvx" --store "$store" info "$idb" --json --chunks >"$work/b.json" 2>/dev/null || { echo n/a; return; }
    cli_fraction "$work/a.json" "$work/b.json" 2>/dev/null || echo n/a
}

: >"$work/results"
for run in 1 2 3 4 5; do
    # Length changes of 1, 7, 33, 64 and 100 bytes: some move the tensor data
    # by one alignment unit, some by several, one (+1) may not move it.
    case $run in 1) extra=x ;; 2) extra=-v2.1.0 ;; 3) extra=-finetuned-on-a-new-dataset-2026 ;;
    4) extra=$(printf '%064d' 0) ;; 5) extra=$(printf '%0100d' 7) ;; esac
    mkmodel "$work/a.gguf" "$run" "bench-model"
    mkmodel "$work/b.gguf" "$run" "bench-model$extra"
    sa=$(wc -c <"$work/a.gguf")
    sb=$(wc -c <"$work/b.gguf")
    "$work/bench-dedup" "$work/a.gguf" "$work/b.gguf" >"$work/lib.txt"
    while read -r mode frac _ _; do
        echo "lib-$mode $frac" >>"$work/results"
    done <"$work/lib.txt"
    if [ $use_cli = 1 ]; then
        for mode in auto fixed; do
            echo "nvx-$mode $(cli_run $mode "$work/a.gguf" "$work/b.gguf")" >>"$work/results"
        done
    fi
    echo "run $run: files $sa and $sb bytes (+$((sb - sa))), $(tr '\n' ' ' <"$work/lib.txt")" >&2
done

python3 - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    if v != 'n/a':
        rows.setdefault(k, []).append(float(v))
print('dedup: fraction of the 2nd GGUF\'s bytes in chunks of the 1st (5 runs)')
print('%-10s %9s %9s %9s' % ('chunking', 'median', 'min', 'max'))
for k in ('lib-auto', 'lib-cdc', 'lib-fixed', 'nvx-auto', 'nvx-fixed'):
    v = rows.get(k)
    if not v:
        if k.startswith('nvx'):
            print('%-10s  (nvx not built or failed)' % k)
        continue
    print('%-10s %8.3f%% %8.3f%% %8.3f%%' % (k, 100 * statistics.median(v), 100 * min(v), 100 * max(v)))
a, f = rows.get('lib-auto'), rows.get('lib-fixed')
if a and f:
    print('auto vs fixed 64 KiB: %.3f%% vs %.3f%% (median); target auto >= 99%%: %s' % (
        100 * statistics.median(a), 100 * statistics.median(f),
        'met' if min(a) >= 0.99 else 'NOT met'))
PY
