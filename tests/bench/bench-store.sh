#!/bin/sh
# SPDX-License-Identifier: MIT
# Store benchmark (issues 2 and 15): nvx add / verify / export of a random
# file (1 GiB by default), each beside its baseline measured in the same
# invocation, medians of RUNS runs with min and max:
#
#   add (durable)  vs  b2sum -l 256 FILE          and  cp FILE STOREDIR && sync
#   verify         vs  b2sum -l 256 FILE
#   export         vs  cp FILE OUT
#   peak RSS of nvx add (GNU time %M)
#
# So that a slow disk can be told from a slow code path it also prints, from
# the same run: the disk's own write speed (dd of the input, O_DIRECT and
# buffered, each with fdatasync), the CPU seconds per GiB of every command, and
# which hash path (nvx add|verify|export --stats: "avx512 x8" or "libsodium x1") and write mode
# (O_DIRECT or buffered) each nvx command used.
#
# Fresh pages and returned pages. On these VMs free memory goes back to the
# host a few seconds after it is freed, and a write into such pages costs
# about 1.4 s/GiB more (first touch). cp and export both write 1 GiB of new
# page cache, so both are measured twice: right after a 1 GiB file was
# deleted (pages still held: "fresh") and after COLD_PAUSE seconds (10) of
# idling ("returned"). Neither is arranged away; both ratios are printed.
#
# Usage: tests/bench/bench-store.sh [BUILD_DIR]   (default: build)
# Environment: NVX (binary, default BUILD_DIR/cli/nvx), SIZE_MB (1024),
# RUNS (5), COLD_PAUSE (10; 0 skips the returned-pages round), BENCH_DIR
# (scratch directory, default a new one under $TMPDIR).
# Warm cache: the input is read once before timing; every add goes into a
# fresh store so it writes (and syncs) all bytes.
set -eu

BUILD=${1:-build}
NVX=${NVX:-$BUILD/cli/nvx}
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-5}
COLD_PAUSE=${COLD_PAUSE:-10}

if [ ! -x "$NVX" ]; then
    echo "bench-store: $NVX not found: build first (meson setup $BUILD && ninja -C $BUILD)" >&2
    exit 1
fi
if [ ! -x /usr/bin/time ]; then
    echo "bench-store: /usr/bin/time is missing (peak RSS): installing the Debian package 'time'" >&2
    if ! { apt-get install -y time >/dev/null 2>&1 || sudo apt-get install -y time >/dev/null 2>&1; }; then
        echo "bench-store: could not install 'time': run 'apt-get install time' as root" >&2
        exit 1
    fi
fi
for t in b2sum cp sync awk dd; do
    command -v $t >/dev/null || { echo "bench-store: $t is missing (coreutils)" >&2; exit 1; }
done

DIR=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/nvx-bench-store.XXXXXX")}
mkdir -p "$DIR"
trap 'chmod -R u+w "$DIR" 2>/dev/null; rm -rf "$DIR"' EXIT INT TERM
IN=$DIR/input.bin
echo "bench-store: writing $SIZE_MB MiB of random bytes to $IN"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$IN"
sync
cat "$IN" > /dev/null
BYTES=$(stat -c %s "$IN")

now() { date +%s.%N; }
# secs START END
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", b - a }'; }


# timed NAME CMD...: appends wall seconds to $DIR/t.NAME, CPU seconds (user +
# system of the command and its children, GNU time) to $DIR/c.NAME and peak
# RSS (KiB) to $DIR/r.NAME; the command's stdout is left in $DIR/out.one.
timed() {
    name=$1; shift
    t0=$(now)
    /usr/bin/time -f "%U %S %M" -o "$DIR/time.one" "$@" > "$DIR/out.one" 2> "$DIR/err.one" || {
        echo "bench-store: $* failed: $(tail -n 1 "$DIR/err.one")" >&2; exit 1; }
    t1=$(now)
    secs "$t0" "$t1" >> "$DIR/t.$name"
    awk '{ printf "%.2f\n", $1 + $2 }' "$DIR/time.one" >> "$DIR/c.$name"
    awk '{ print $3 }' "$DIR/time.one" >> "$DIR/r.$name"
    grep '^nvx: stats: ' "$DIR/err.one" | sed 's/^nvx: stats: //' >> "$DIR/s.$name" || true
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
i=1
while [ $i -le "$RUNS" ]; do
    echo "bench-store: run $i/$RUNS" >&2
    # b2sum baseline (hash only, from the page cache).
    timed b2 b2sum -l 256 "$IN"

    # cp + sync baseline: the same bytes written durably into the store's disk.
    rm -rf "$DIR/cpdir"; mkdir -p "$DIR/cpdir"; sync
    timed cpsync sh -c 'cp "$1" "$2" && sync' sh "$IN" "$DIR/cpdir/"
    rm -rf "$DIR/cpdir"; sync

    # The disk itself: O_DIRECT and buffered writes of the input, synced.
    timed dddirect dd if="$IN" of="$DIR/dd.out" bs=4M oflag=direct conv=fdatasync status=none
    rm -f "$DIR/dd.out"; sync
    timed ddbuf dd if="$IN" of="$DIR/dd.out" bs=4M conv=fdatasync status=none
    rm -f "$DIR/dd.out"; sync

    # nvx add into a fresh store (durable: synced before the index commits).
    chmod -R u+w "$DIR/store" 2>/dev/null || true
    rm -rf "$DIR/store"; sync
    timed add "$NVX" --store "$DIR/store" -q add --stats "$IN"
    ID=$(tail -n 1 "$DIR/out.one")

    # nvx verify (the data file is cold: add wrote it with O_DIRECT).
    timed verify "$NVX" --store "$DIR/store" -q verify --stats "$ID"

    # export vs cp (neither syncs) into fresh pages: each runs right after a
    # 1 GiB file was deleted (a scratch copy for cp).
    rm -f "$DIR/out.exp" "$DIR/out.cp"
    cp "$IN" "$DIR/out.scratch"; rm -f "$DIR/out.scratch"; sync
    timed cp cp "$IN" "$DIR/out.cp"
    rm -f "$DIR/out.cp"; sync
    timed export "$NVX" --store "$DIR/store" -q export --stats "$ID" -o "$DIR/out.exp"
    cmp -s "$IN" "$DIR/out.exp" || { echo "bench-store: export differs from the input" >&2; exit 1; }
    rm -f "$DIR/out.exp"; sync

    # The same two into pages the host has taken back (idle COLD_PAUSE s).
    if [ "$COLD_PAUSE" -gt 0 ]; then
        sleep "$COLD_PAUSE"
        timed cpcold cp "$IN" "$DIR/out.cp"
        rm -f "$DIR/out.cp"; sync
        sleep "$COLD_PAUSE"
        timed exportcold "$NVX" --store "$DIR/store" -q export --stats "$ID" -o "$DIR/out.exp"
        rm -f "$DIR/out.exp"; sync
    fi
    i=$((i + 1))
done
ADD=$DIR/t.add; B2=$DIR/t.b2; CPS=$DIR/t.cpsync; VER=$DIR/t.verify; EXP=$DIR/t.export
CP=$DIR/t.cp; RSS=$DIR/r.add

# stats FILE -> "median min max" (seconds)
stats() { sort -g "$1" | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'; }
# line LABEL FILE: throughput median (min..max) in MB/s, and the median CPU
# seconds (user + system) of the same runs, which other load does not skew.
line() {
    cpu=$(stats "$(echo "$2" | sed 's|/t\.|/c.|')" | cut -d' ' -f1)
    set -- "$1" $(stats "$2")
    awk -v l="$1" -v b="$BYTES" -v m="$2" -v lo="$3" -v hi="$4" -v c="$cpu" 'BEGIN {
        printf "  %-30s %6.0f MB/s  (min %4.0f, max %4.0f; median %.2f s, CPU %.2f s)\n", l,
               b / m / 1e6, b / hi / 1e6, b / lo / 1e6, m, c }'
}
ratio() { # ratio LABEL FILE_NVX FILE_BASE TARGET: throughput ratio of medians
    set -- "$1" "$(stats "$2" | cut -d' ' -f1)" "$(stats "$3" | cut -d' ' -f1)" "$4"
    awk -v l="$1" -v a="$2" -v b="$3" -v t="$4" 'BEGIN {
        r = b / a; printf "  %-44s %.2fx  (target %s: %s)\n", l, r, t, (r >= t + 0 ? "met" : "NOT met") }'
}

# cpu LABEL NAME: CPU seconds per GiB (median) of the runs of NAME
cpu() {
    stats "$DIR/c.$2" | awk -v l="$1" -v b="$BYTES" '{ printf "  %-30s %5.2f CPU s/GiB\n", l, $1 / (b / 1073741824) }'
}
# path NAME: the hash path and write mode nvx --stats reported (all runs)
path() {
    sed 's/.*hash \([^,]*\), writes \(.*\)/hash \1, writes \2/' "$DIR/s.$1" | sort | uniq -c |
        awk '{ $1 = ""; sub(/^ /, ""); print }' | paste -sd ';' -
}

echo
echo "nvx store benchmark: $((BYTES / 1048576)) MiB random file, $RUNS runs, $(nproc) cores, $NVX"
echo "  load average at start / end: $LOAD0 / $(cut -d' ' -f1-3 /proc/loadavg) (other work skews the ratios)"
echo "  CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), flags:$(grep -m1 -o -w 'avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/^/ /')"
echo "  nvx add:    $(path add)"
echo "  nvx verify: $(path verify)"
echo "  nvx export: $(path export)"
echo "throughput (median, min, max):"
line "nvx add (durable)" "$ADD"
line "b2sum -l 256" "$B2"
line "cp FILE STOREDIR && sync" "$CPS"
line "disk: dd O_DIRECT+fdatasync" "$DIR/t.dddirect"
line "disk: dd buffered+fdatasync" "$DIR/t.ddbuf"
line "nvx verify" "$VER"
line "nvx export (fresh pages)" "$EXP"
line "cp FILE OUT (fresh pages)" "$CP"
if [ "$COLD_PAUSE" -gt 0 ]; then
    line "nvx export (returned pages)" "$DIR/t.exportcold"
    line "cp FILE OUT (returned pages)" "$DIR/t.cpcold"
fi
echo "CPU per GiB (user + system, median):"
cpu "nvx add" add
cpu "b2sum -l 256" b2
cpu "nvx verify" verify
cpu "nvx export (fresh pages)" export
cpu "cp (fresh pages)" cp
if [ "$COLD_PAUSE" -gt 0 ]; then
    cpu "nvx export (returned pages)" exportcold
    cpu "cp (returned pages)" cpcold
fi
echo "ratios (throughput of medians):"
ratio "add / b2sum" "$ADD" "$B2" 1.0
ratio "add / (cp && sync) [disk-bound target]" "$ADD" "$CPS" 0.91
ratio "verify / b2sum" "$VER" "$B2" 1.5
ratio "export / cp (fresh pages)" "$EXP" "$CP" 0.8
if [ "$COLD_PAUSE" -gt 0 ]; then
    ratio "export / cp (returned pages)" "$DIR/t.exportcold" "$DIR/t.cpcold" 0.8
fi
set -- $(sort -n "$RSS" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[1], v[NR] }')
echo "  peak RSS of nvx add: median $(($1 / 1024)) MiB (min $(($2 / 1024)), max $(($3 / 1024))); target <= 64 MiB"
