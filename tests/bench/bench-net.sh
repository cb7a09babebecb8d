#!/bin/sh
# SPDX-License-Identifier: MIT
# Network benchmark (issue 3 "Performance"; not run by CI). One random file
# (1 GiB by default) moved over 127.0.0.1 in the same invocation by:
#
#   (a) nginx -> curl | b2sum -l 256            download + verify
#   (b) aria2c BitTorrent, 1 seeder -> 1 leecher  (opentracker, 1 MiB pieces)
#   (c) nvx: nvxd A -> nvxd B, time of `nvx fetch ID` on B
#           (encrypted, verified chunk by chunk, stored)
#   (d) swarm: 1 seeder + 4 fetchers at once, time until all four hold a
#       verified copy: nvx, aria2c (1 seed + 4 leechers), 4 parallel curl|b2sum
#   (e) nvxd resident memory: idle, and peak while serving to 4 fetchers
#       (VmRSS sampled every 50 ms and VmHWM from /proc/PID/status)
#
# Prints medians of RUNS runs with min and max, MB/s (10^6 bytes/s), and the
# ratios nvx/(a) (target >= 1.2, issue 9) and nvx/(b) (target >= 3).
#
# Usage: tests/bench/bench-net.sh [SIZE_MB]     (default 1024)
# Environment:
#   BUILD      meson build dir with cli/nvx and daemon/nvxd (default: build)
#   NVX, NVXD  the binaries (default: $BUILD/cli/nvx, $BUILD/daemon/nvxd)
#   RUNS       runs per measurement (default 5)
#   PARTS      which parts to run, any of "a b c d e" (default all)
#   BENCH_DIR  scratch directory (default: a new one under $TMPDIR; removed)
#   KEEP_LOGS  a directory: copy the server and client logs there before cleanup
# Needs (Debian): nginx-light (or nginx), curl, aria2, mktorrent,
# opentracker, coreutils (b2sum, timeout), iproute2 (ss), procps (ps).
# Every server listens on 127.0.0.1 only and runs under `timeout`; the EXIT
# trap stops each one by its process id.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-net-lib.sh"

SIZE_MB=${1:-1024}
BUILD=${BUILD:-build}
NVX=${NVX:-$BUILD/cli/nvx}
NVXD=${NVXD:-$BUILD/daemon/nvxd}
RUNS=${RUNS:-5}
PARTS=${PARTS:-a b c d e}
# Bounds: one client run, and the wait for a server to come up.
CLIENT_LIMIT=${CLIENT_LIMIT:-300}
START_LIMIT=${START_LIMIT:-30}

want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- Tools ------------------------------------------------------------------

missing=""
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $1($2)"; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || missing="$missing nginx(nginx-light)"
need curl curl
need aria2c aria2
need mktorrent mktorrent
need opentracker opentracker
need b2sum coreutils
need timeout coreutils
need ss iproute2
need ps procps
if [ -n "$missing" ]; then
    echo "bench-net: missing tools:$missing" >&2
    echo "bench-net: install them with: apt-get install nginx-light curl aria2 mktorrent opentracker coreutils iproute2 procps" >&2
    exit 1
fi
have_nvx=1
why_no_nvx=""
if [ ! -x "$NVX" ]; then
    have_nvx=0
    why_no_nvx="$NVX not built (meson setup $BUILD && ninja -C $BUILD)"
elif [ ! -x "$NVXD" ]; then
    have_nvx=0
    why_no_nvx="$NVXD not built (meson setup $BUILD && ninja -C $BUILD)"
fi
NVX=$(cd "$(dirname "$NVX")" && pwd)/$(basename "$NVX")
NVXD=$(cd "$(dirname "$NVXD")" 2>/dev/null && pwd)/$(basename "$NVXD") || true

# ---- Scratch directory and cleanup --------------------------------------------

DIR=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/nvx-bench-net.XXXXXX")}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cleanup() {
    stop_all
    if [ -n "${KEEP_LOGS:-}" ]; then
        mkdir -p "$KEEP_LOGS"
        find "$DIR" -maxdepth 3 -name '*.log' -exec cp {} "$KEEP_LOGS/" \; 2>/dev/null || true
    fi
    chmod -R u+w "$DIR" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# nginx workers and opentracker drop to an unprivileged user: let them in.
chmod 755 "$DIR"

IN=$DIR/www/input.bin
mkdir -p "$DIR/www"
note "writing $SIZE_MB MiB of random bytes to $IN"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$IN"
chmod 644 "$IN"
BYTES=$(stat -c %s "$IN")
SUM=$(b2sum -l 256 "$IN" | cut -d' ' -f1)
note "b2sum -l 256: $SUM ($BYTES bytes, $RUNS runs each)"

# Result lines, printed together at the end.
REPORT=$DIR/report.txt
: > "$REPORT"
# row LABEL SAMPLEFILE: "label  median s (min..max)  MB/s" into the report
# and the median throughput into $ROW_MBPS.
row() {
    set -- "$1" $(stats "$2")
    ROW_MBPS=$(mbps "$BYTES" "$2")
    printf '%-44s %8.3f s  (min %.3f, max %.3f)  %6s MB/s\n' "$1" "$2" "$3" "$4" "$ROW_MBPS" \
        >> "$REPORT"
}
# swarm_row LABEL SAMPLEFILE: time only (4 copies).
swarm_row() {
    set -- "$1" $(stats "$2")
    ROW_SECS=$2
    printf '%-44s %8.3f s  (min %.3f, max %.3f)  %6s MB/s aggregate\n' "$1" "$2" "$3" "$4" \
        "$(mbps $((BYTES * 4)) "$2")" >> "$REPORT"
}
say() { echo "$*" >> "$REPORT"; }

# fresh_pages: this VM's balloon driver hands free memory back to the host
# a few seconds after it is freed, and the first touch of such a page costs
# about 1 s/GiB more (a page-cache write of 1 GiB measured 1.3-1.5 s after a
# pause, 0.3 s without). Which client meets such pages depends on timing, so
# every timed client starts right after a 1 GiB scratch copy is written and
# deleted: all of them run on memory the guest holds, as on a real machine.
fresh_pages() {
    cp "$IN" "$DIR/scratch.bin"
    rm -f "$DIR/scratch.bin"
}

# timed OUTFILE CMD...: runs CMD (which bounds itself: every client runs
# under timeout) after fresh_pages, appends its wall time to OUTFILE.
timed() {
    out=$1
    shift
    fresh_pages
    t0=$(now)
    "$@"
    t1=$(now)
    secs "$t0" "$t1" >> "$out"
}

# ---- (a) nginx -> curl | b2sum -------------------------------------------------

NGINX_MBPS=""
CURL4_SECS=""
start_nginx() {
    NGINX_PORT=$(pick_port)
    mkdir -p "$DIR/nginx"
    sed -e "s|@DIR@|$DIR|g" -e "s|@PORT@|$NGINX_PORT|g" "$here/bench-net-nginx.conf.in" \
        > "$DIR/nginx/nginx.conf"
    spawn "$DIR/nginx/stdout.log" "$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf"
    NGINX_PID=$LAST_PID
    if ! wait_port "$NGINX_PORT" "$START_LIMIT"; then
        cat "$DIR/nginx/stdout.log" "$DIR/nginx/error.log" >&2 2>/dev/null || true
        echo "bench-net: nginx did not start on 127.0.0.1:$NGINX_PORT" >&2
        exit 1
    fi
    URL=http://127.0.0.1:$NGINX_PORT/input.bin
}

# curl_b2 OUTSUMFILE: one verified download; the hash goes to OUTSUMFILE.
curl_b2() {
    curl -sSf "$URL" | b2sum -l 256 | cut -d' ' -f1 > "$1"
}
check_sum() {
    got=$(cat "$1")
    if [ "$got" != "$SUM" ]; then
        echo "bench-net: $2: wrong hash $got" >&2
        exit 1
    fi
}

if want a || want d; then
    start_nginx
    note "nginx on 127.0.0.1:$NGINX_PORT"
fi
if want a; then
    note "(a) nginx -> curl | b2sum"
    : > "$DIR/t.curl"
    i=1
    while [ $i -le "$RUNS" ]; do
        timed "$DIR/t.curl" timeout -k 5 "$CLIENT_LIMIT" sh -c "curl -sSf '$URL' | b2sum -l 256 | cut -d' ' -f1 > '$DIR/sum.curl'"
        check_sum "$DIR/sum.curl" "curl run $i"
        i=$((i + 1))
    done
    row "(a) nginx -> curl | b2sum -l 256" "$DIR/t.curl"
    NGINX_MBPS=$ROW_MBPS
fi

# ---- (b) aria2c BitTorrent -------------------------------------------------------

ARIA_MBPS=""
ARIA_COMMON="--interface=127.0.0.1 --disable-ipv6=true --enable-dht=false --enable-dht6=false
 --bt-enable-lpd=false --enable-peer-exchange=false --seed-ratio=0 --quiet=true
 --console-log-level=warn --summary-interval=0 --file-allocation=none"
start_bt() {
    TRACKER_PORT=$(pick_port)
    SEED_PORT=$(pick_port)
    mkdir -p "$DIR/seed" "$DIR/tracker"
    ln "$IN" "$DIR/seed/input.bin"
    note "mktorrent (1 MiB pieces)"
    mktorrent -l 20 -a "http://127.0.0.1:$TRACKER_PORT/announce" -o "$DIR/input.torrent" \
        "$DIR/seed/input.bin" > "$DIR/mktorrent.log" 2>&1
    INFOHASH=$(aria2c -S "$DIR/input.torrent" | awk '/^Info Hash:/ { print $3 }')
    # Debian's opentracker serves whitelisted info-hashes only and reads the
    # whitelist after it changed root into -d, so -w is relative to that.
    echo "$INFOHASH" > "$DIR/tracker/whitelist.txt"
    chmod 755 "$DIR/tracker"
    chmod 644 "$DIR/tracker/whitelist.txt"
    ot_user=""
    [ "$(id -u)" = 0 ] && ot_user="-u nobody"
    # shellcheck disable=SC2086
    spawn "$DIR/tracker/opentracker.log" opentracker -i 127.0.0.1 -p "$TRACKER_PORT" \
        -P "$TRACKER_PORT" -d "$DIR/tracker" $ot_user -w /whitelist.txt
    if ! wait_port "$TRACKER_PORT" "$START_LIMIT"; then
        cat "$DIR/tracker/opentracker.log" >&2
        echo "bench-net: opentracker did not start on 127.0.0.1:$TRACKER_PORT" >&2
        exit 1
    fi
    # shellcheck disable=SC2086
    spawn "$DIR/seed/aria2c.log" aria2c $ARIA_COMMON --dir="$DIR/seed" \
        --listen-port="$SEED_PORT" --seed-time=$((SERVER_LIFE / 60)) \
        --bt-seed-unverified=true "$DIR/input.torrent"
    ARIA_SEED_PID=$LAST_PID
    if ! wait_port "$SEED_PORT" "$START_LIMIT"; then
        cat "$DIR/seed/aria2c.log" >&2
        echo "bench-net: aria2c seeder did not start on 127.0.0.1:$SEED_PORT" >&2
        exit 1
    fi
    note "opentracker on 127.0.0.1:$TRACKER_PORT, aria2c seeder on 127.0.0.1:$SEED_PORT, info-hash $INFOHASH"
}

# leech DIR PORT: one aria2c leecher, exits when every piece is verified.
leech() {
    mkdir -p "$1"
    # shellcheck disable=SC2086
    timeout -k 5 "$CLIENT_LIMIT" aria2c $ARIA_COMMON --dir="$1" --listen-port="$2" \
        --seed-time=0 "$DIR/input.torrent" > "$1.log" 2>&1
}
check_leech() {
    if [ "$(stat -c %s "$1/input.bin" 2>/dev/null || echo 0)" != "$BYTES" ]; then
        cat "$1.log" >&2
        echo "bench-net: aria2c leecher in $1 did not finish" >&2
        exit 1
    fi
}

if want b || want d; then
    start_bt
fi
if want b; then
    note "(b) aria2c 1 seeder -> 1 leecher"
    : > "$DIR/t.aria"
    i=1
    while [ $i -le "$RUNS" ]; do
        port=$(pick_port)
        timed "$DIR/t.aria" leech "$DIR/leech" "$port"
        check_leech "$DIR/leech"
        rm -rf "$DIR/leech" "$DIR/leech.log"
        i=$((i + 1))
    done
    row "(b) aria2c BitTorrent 1 seed -> 1 leecher" "$DIR/t.aria"
    ARIA_MBPS=$ROW_MBPS
fi

# ---- nvx helpers -----------------------------------------------------------------

# nvxd_start NAME: starts nvxd with store $DIR/NAME on a free port; sets
# NVXD_PID (the timeout wrapper), NVXD_REAL (nvxd itself), NVXD_PORT.
nvxd_start() {
    NVXD_PORT=$(pick_port)
    mkdir -p "$DIR/$1"
    # No LAN discovery, no DHT: every packet of this benchmark stays on 127.0.0.1.
    spawn "$DIR/$1.nvxd.log" "$NVXD" --store "$DIR/$1" --listen "127.0.0.1:$NVXD_PORT" \
        --no-discovery --no-upnp --http off --no-dht
    NVXD_PID=$LAST_PID
    NVXD_REAL=$(child_of "$NVXD_PID") || NVXD_REAL=""
    end=$(($(date +%s) + START_LIMIT))
    while ! "$NVX" --store "$DIR/$1" status --json > /dev/null 2>&1; do
        if [ "$(date +%s)" -ge $end ] || ! kill -0 "$NVXD_PID" 2>/dev/null; then
            cat "$DIR/$1.nvxd.log" >&2
            echo "bench-net: nvxd for $1 did not come up (control socket) within ${START_LIMIT}s" >&2
            exit 1
        fi
        sleep 0.1
    done
    wait_port "$NVXD_PORT" "$START_LIMIT" || {
        echo "bench-net: nvxd for $1 does not listen on 127.0.0.1:$NVXD_PORT" >&2
        exit 1
    }
}

# nvx_fetch NAME: `nvx fetch ID` into store NAME (bounded).
nvx_fetch() {
    timeout -k 5 "$CLIENT_LIMIT" "$NVX" --store "$DIR/$1" -q fetch "$MODEL_ID" \
        > "$DIR/$1.fetch.log" 2>&1
}
# nvx_check NAME: the fetched copy verifies (untimed); stops the benchmark
# with the fetch log otherwise.
nvx_check() {
    if ! "$NVX" --store "$DIR/$1" -q verify "$MODEL_ID" > "$DIR/$1.verify.log" 2>&1; then
        cat "$DIR/$1.fetch.log" "$DIR/$1.verify.log" >&2
        echo "bench-net: the copy fetched into $1 does not verify" >&2
        exit 1
    fi
}
# nvx_drop NAME: removes the model from store NAME so the next run fetches
# every byte again.
nvx_drop() {
    "$NVX" --store "$DIR/$1" -q rm --force "$MODEL_ID" > /dev/null
    "$NVX" --store "$DIR/$1" -q gc > /dev/null
}

NVX_MBPS=""
NVX4_SECS=""
RSS_IDLE=""
RSS_IDLE_PEERS=""
RSS_PEAK=""
RSS_HWM=""
if { want c || want d || want e; } && [ $have_nvx = 0 ]; then
    note "nvx parts skipped: $why_no_nvx"
fi
if { want c || want d || want e; } && [ $have_nvx = 1 ]; then
    note "nvx add on A"
    mkdir -p "$DIR/A"
    MODEL_ID=$("$NVX" --store "$DIR/A" -q add --pin "$IN") # pinned: nvxd serves pinned models
    note "model id $MODEL_ID"
    # add writes with O_DIRECT; read the data file once (nvx verify) so that
    # nvxd, like nginx and aria2c, serves from the page cache.
    "$NVX" --store "$DIR/A" -q verify "$MODEL_ID" > /dev/null
fi

# ---- (c) nvx 1 -> 1 ----------------------------------------------------------------

if want c && [ $have_nvx = 1 ]; then
    note "(c) nvx: nvxd A -> nvxd B"
    nvxd_start A
    A_PID=$NVXD_PID
    A_PORT=$NVXD_PORT
    nvxd_start B
    B_PID=$NVXD_PID
    B_REAL=$NVXD_REAL
    "$NVX" --store "$DIR/B" peer add "127.0.0.1:$A_PORT" > /dev/null
    : > "$DIR/t.nvx"
    i=1
    while [ $i -le "$RUNS" ]; do
        timed "$DIR/t.nvx" nvx_fetch B || {
            cat "$DIR/B.fetch.log" "$DIR/B.nvxd.log" >&2
            echo "bench-net: nvx fetch failed (run $i)" >&2
            exit 1
        }
        nvx_check B
        nvx_drop B
        i=$((i + 1))
    done
    B_HWM=$(vm "$B_REAL" VmHWM)
    row "(c) nvx fetch nvxd -> nvxd" "$DIR/t.nvx"
    NVX_MBPS=$ROW_MBPS
    stop "$A_PID" "$B_PID"
fi

# ---- (d) swarm: 1 seeder + 4 fetchers, and (e) memory ----------------------------

if want d || want e; then
    if want d; then
        note "(d) swarm: 4 parallel curl | b2sum"
        : > "$DIR/t.curl4"
        i=1
        while [ $i -le "$RUNS" ]; do
            t0=$(now)
            cpids=""
            for k in 1 2 3 4; do
                timeout -k 5 "$CLIENT_LIMIT" sh -c "curl -sSf '$URL' | b2sum -l 256 | cut -d' ' -f1 > '$DIR/sum.c$k'" &
                cpids="$cpids $!"
            done
            for p in $cpids; do wait "$p" || true; done
            secs "$t0" "$(now)" >> "$DIR/t.curl4"
            for k in 1 2 3 4; do check_sum "$DIR/sum.c$k" "parallel curl $k run $i"; done
            i=$((i + 1))
        done
        note "(d) swarm: aria2c 1 seed + 4 leechers"
        : > "$DIR/t.aria4"
        i=1
        while [ $i -le "$RUNS" ]; do
            ports=""
            for k in 1 2 3 4; do ports="$ports $(pick_port)"; done
            t0=$(now)
            lpids=""
            k=1
            for port in $ports; do
                leech "$DIR/leech$k" "$port" &
                lpids="$lpids $!"
                k=$((k + 1))
            done
            for p in $lpids; do wait "$p" || true; done
            secs "$t0" "$(now)" >> "$DIR/t.aria4"
            for k in 1 2 3 4; do
                check_leech "$DIR/leech$k"
                rm -rf "$DIR/leech$k" "$DIR/leech$k.log"
            done
            i=$((i + 1))
        done
        ARIA_SEED_HWM=$(vm "$(child_of "$ARIA_SEED_PID")" VmHWM)
    fi
    if [ $have_nvx = 1 ]; then
        note "(d)/(e) swarm: nvx 1 seeder + 4 fetchers"
        # A fresh seeder, so its VmHWM covers only start-up, idle and serving.
        nvxd_start A
        A_PID=$NVXD_PID
        A_REAL=$NVXD_REAL
        A_PORT=$NVXD_PORT
        sleep 2
        RSS_IDLE=$(vm "$A_REAL" VmRSS)
        F_PIDS=""
        for k in 1 2 3 4; do
            nvxd_start "F$k"
            F_PIDS="$F_PIDS $NVXD_PID"
            "$NVX" --store "$DIR/F$k" peer add "127.0.0.1:$A_PORT" > /dev/null
        done
        sleep 2
        RSS_IDLE_PEERS=$(vm "$A_REAL" VmRSS)
        # Sample the seeder's VmRSS every 50 ms while the fetchers run.
        (while kill -0 "$A_REAL" 2>/dev/null; do vm "$A_REAL" VmRSS; sleep 0.05; done) \
            > "$DIR/rss.samples" &
        SAMPLER=$!
        SPAWNED="$SPAWNED $SAMPLER"
        : > "$DIR/t.nvx4"
        i=1
        while [ $i -le "$RUNS" ]; do
            t0=$(now)
            fpids=""
            for k in 1 2 3 4; do
                nvx_fetch "F$k" &
                fpids="$fpids $!"
            done
            ok=1
            for p in $fpids; do wait "$p" || ok=0; done
            t1=$(now)
            for k in 1 2 3 4; do nvx_check "F$k"; done
            [ $ok = 1 ] || {
                echo "bench-net: an nvx fetch in the swarm failed (run $i)" >&2
                exit 1
            }
            secs "$t0" "$t1" >> "$DIR/t.nvx4"
            if [ $i -lt "$RUNS" ]; then
                for k in 1 2 3 4; do nvx_drop "F$k"; done
            fi
            i=$((i + 1))
        done
        RSS_HWM=$(vm "$A_REAL" VmHWM)
        stop "$SAMPLER"
        RSS_PEAK=$(sort -n "$DIR/rss.samples" | tail -n 1)
        # shellcheck disable=SC2086
        stop "$A_PID" $F_PIDS
    fi
    if want d; then
        [ $have_nvx = 1 ] && swarm_row "(d) nvx: 1 nvxd seeder + 4 nvxd fetchers" "$DIR/t.nvx4" &&
            NVX4_SECS=$ROW_SECS
        swarm_row "(d) aria2c: 1 seed + 4 leechers" "$DIR/t.aria4"
        ARIA4_SECS=$ROW_SECS
        swarm_row "(d) 4 parallel curl | b2sum from nginx" "$DIR/t.curl4"
        CURL4_SECS=$ROW_SECS
    fi
fi

# ---- Report -------------------------------------------------------------------------

echo
echo "bench-net: $SIZE_MB MiB random file over 127.0.0.1, medians of $RUNS runs (min, max)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $have_nvx = 1 ]; then
    echo "nvx: $("$NVXD" --version 2>/dev/null | head -n 1), tree $(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown)"
fi
cat "$REPORT"
if want c; then
    if [ -n "$NVX_MBPS" ]; then
        echo "ratio nvx / (a) curl|b2sum:  $(ratio "$NVX_MBPS" "$NGINX_MBPS")   (target >= 1.2)"
        echo "ratio nvx / (b) aria2c:      $(ratio "$NVX_MBPS" "$ARIA_MBPS")   (target >= 3)"
        echo "nvxd fetcher (B) VmHWM:      $(kib_mib "${B_HWM:-}") MiB"
    else
        echo "(c) nvx: not measured: ${why_no_nvx:-see above}"
    fi
fi
if want d; then
    if [ -n "$NVX4_SECS" ]; then
        echo "swarm time aria2c / nvx:     $(ratio "$ARIA4_SECS" "$NVX4_SECS")   (> 1: nvx faster)"
        echo "swarm time curl / nvx:       $(ratio "$CURL4_SECS" "$NVX4_SECS")"
    else
        echo "(d) nvx swarm: not measured: ${why_no_nvx:-see above}"
    fi
    echo "aria2c seeder VmHWM:         $(kib_mib "${ARIA_SEED_HWM:-}") MiB"
fi
if want e; then
    if [ -n "$RSS_IDLE" ]; then
        echo "nvxd seeder VmRSS idle:      $(kib_mib "$RSS_IDLE") MiB, with 4 peers connected $(kib_mib "$RSS_IDLE_PEERS") MiB   (target <= 8)"
        echo "nvxd seeder serving 4 peers: peak sampled VmRSS $(kib_mib "$RSS_PEAK") MiB, VmHWM $(kib_mib "$RSS_HWM") MiB   (target <= 48)"
    else
        echo "(e) nvxd memory: not measured: ${why_no_nvx:-see above}"
    fi
fi
