#!/bin/sh
# SPDX-License-Identifier: MIT
# Swarm benchmark (issue 10; not run by CI, needs root): one seeder and
# FETCHERS fetchers, each in its own network namespace on one bridge, each
# node's uplink capped with tbf at RATE_MBIT. All fetchers start at once and
# are told only the seeder's address. Per tool, in the same invocation:
#
#   nvx     nvxd everywhere, `nvx fetch ID` on each fetcher (peer exchange
#           and HAVE announcements let fetchers trade)
#   aria2c  BitTorrent: opentracker + mktorrent (1 MiB pieces), aria2c
#           seeder and leechers (leechers keep seeding once complete)
#   curl    nginx on the seeder, `curl | b2sum -l 256` on each fetcher
#
# Prints for each tool the median (min-max over RUNS runs) of the time until
# the last fetcher holds a verified copy, that time over the ideal
# (size / uplink: a swarm can do no better), the copies the seeder uploaded
# (bytes sent by its interface / size) and the CPU seconds per GiB delivered
# (all the tool's processes: daemons read from /proc before they stop,
# clients through /usr/bin/time). CHURN=1 kills the seeder once it has
# uploaded CHURN_AT copies (1.1; its interface's bytes, headers included);
# every fetcher must still complete. A tool whose swarm finishes before its
# seeder uploaded that much says so (the kill did not happen).
#
# The kernel here has tbf but no netem, so links have no added delay: the
# figures are for bandwidth-bound swarms. Addresses are 198.18.0.0/24
# (RFC 2544, benchmarking) inside namespaces this script creates; the bridge
# lives in a namespace of its own, so no packet reaches the host's network.
#
# Usage: tests/bench/bench-swarm.sh              (as root)
# Environment: FETCHERS (8), SIZE_MB (256), RATE_MBIT (50), RUNS (3),
#   TOOLS ("nvx aria2c curl"), CHURN (0), BUILD (build), KEEP_LOGS (dir).
# Needs (Debian): iproute2, nginx-light, curl, aria2, mktorrent,
# opentracker, coreutils, time.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-net-lib.sh"
note() { echo "bench-swarm: $*" >&2; }

FETCHERS=${FETCHERS:-8}
SIZE_MB=${SIZE_MB:-256}
RATE_MBIT=${RATE_MBIT:-50}
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-nvx aria2c curl}
CHURN=${CHURN:-0}
CHURN_AT=${CHURN_AT:-1.1}
CHURN_MILLI=$(awk -v c="$CHURN_AT" 'BEGIN { printf "%d", c * 1000 }')
BUILD=${BUILD:-build}
NVX=$(cd "$(dirname "${NVX:-$BUILD/cli/nvx}")" && pwd)/nvx
NVXD=$(cd "$(dirname "${NVXD:-$BUILD/daemon/nvxd}")" && pwd)/nvxd
BYTES=$((SIZE_MB * 1024 * 1024))
IDEAL=$(awk -v b=$BYTES -v r=$RATE_MBIT 'BEGIN { printf "%.3f", b * 8 / (r * 1e6) }')
LIMIT=$(awk -v i="$IDEAL" -v n="$FETCHERS" 'BEGIN { printf "%d", i * (n + 4) + 120 }')
TAG=nvxsw$$
BR_NS=$TAG-br

[ "$(id -u)" = 0 ] || { echo "bench-swarm: needs root (network namespaces)" >&2; exit 1; }
for t in ip tc nginx curl aria2c mktorrent opentracker b2sum /usr/bin/time; do
    command -v $t >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] ||
        { echo "bench-swarm: $t missing (apt-get install iproute2 nginx-light curl aria2 mktorrent opentracker time)" >&2; exit 1; }
done
[ -x "$NVX" ] && [ -x "$NVXD" ] || { echo "bench-swarm: build nvx first (ninja -C $BUILD)" >&2; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-swarm.XXXXXX")
cleanup() {
    stop_all
    for i in $(seq 0 "$FETCHERS"); do ip netns del "$TAG-$i" 2>/dev/null || true; done
    ip netns del "$BR_NS" 2>/dev/null || true
    [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp -r "$DIR"/*.log "$DIR"/logs "$KEEP_LOGS"/ 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

# ---- network: node i is 198.18.0.(i+1), node 0 seeds ------------------------
ip netns add "$BR_NS"
ip -n "$BR_NS" link add br0 type bridge
ip -n "$BR_NS" link set br0 up
for i in $(seq 0 "$FETCHERS"); do
    ns=$TAG-$i
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "${TAG}a$i" netns "$ns" type veth peer name "b$i" netns "$BR_NS"
    ip -n "$ns" link set "${TAG}a$i" name eth0
    ip -n "$ns" addr add "198.18.0.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$BR_NS" link set "b$i" master br0 up
    # The node's uplink: what leaves its namespace.
    tc -n "$ns" qdisc add dev eth0 root tbf rate "${RATE_MBIT}mbit" burst 64kb latency 100ms
done
SEED_IP=198.18.0.1
inns() { n=$1; shift; ip netns exec "$TAG-$n" "$@"; }
tx_bytes() { ip -n "$TAG-0" -s link show dev eth0 | awk '/TX:/ { getline; print $1; exit }'; }
# cpu_of PID...: utime + stime (s) of processes still running.
cpu_of() {
    for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null || true; done |
        awk -v hz="$(getconf CLK_TCK)" '{ s += $14 + $15 } END { printf "%.2f\n", s / hz }'
}

note "$FETCHERS fetchers + 1 seeder, ${SIZE_MB} MiB, uplinks ${RATE_MBIT} Mbit/s (ideal ${IDEAL} s), runs $RUNS, churn $CHURN at $CHURN_AT copies"
chmod 755 "$DIR" # nginx's workers and opentracker run as nobody
head -c $BYTES /dev/urandom > "$DIR/input.bin"
chmod 644 "$DIR/input.bin"
WANT_SUM=$(b2sum -l 256 "$DIR/input.bin" | cut -d' ' -f1)
mkdir -p "$DIR/logs"

# run_fetchers CMD: runs "CMD i" for each fetcher at once (in its namespace)
# and writes each finish time to $DIR/done.i; churn kills $SEED_KILL once
# the seeder uploaded 1.1 copies. Sets T_LAST (seconds to the last one).
run_fetchers() {
    rm -f "$DIR"/done.*
    TX0=$(tx_bytes)
    t0=$(now)
    pids=""
    for i in $(seq 1 "$FETCHERS"); do
        ( if "$@" "$i" > "$DIR/logs/fetch.$i.log" 2>&1; then now > "$DIR/done.$i"; fi ) &
        pids="$pids $!"
    done
    killed=0
    deadline=$(($(date +%s) + LIMIT))
    while [ "$(ls "$DIR"/done.* 2>/dev/null | wc -l)" -lt "$FETCHERS" ]; do
        alive=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 1 ] || break
        if [ "$(date +%s)" -ge $deadline ]; then
            note "fetchers still running after ${LIMIT} s: stopping them"
            for p in $pids; do pkill -KILL -P "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
            break
        fi
        if [ "$CHURN" = 1 ] && [ $killed = 0 ] &&
            [ $(( ($(tx_bytes) - TX0) * 1000 )) -ge $((BYTES * CHURN_MILLI)) ]; then
            note "churn: killing the seeder at $CHURN_AT copies uploaded"
            SEED_CPU=$(cpu_of $SEED_KILL)
            kill -KILL $SEED_KILL 2>/dev/null || true
            killed=1
        fi
        sleep 0.2
    done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    TX=$(( $(tx_bytes) - TX0 ))
    if [ "$CHURN" = 1 ] && [ $killed = 0 ]; then
        note "churn: the swarm finished before the seeder uploaded $CHURN_AT copies (not killed)"
    fi
    n=$(ls "$DIR"/done.* 2>/dev/null | wc -l)
    if [ "$n" -lt "$FETCHERS" ]; then
        note "only $n of $FETCHERS fetchers completed: see the logs"
        tail -n 5 "$DIR"/logs/fetch.*.log >&2
        T_LAST=nan
        return 1
    fi
    T_LAST=$(cat "$DIR"/done.* | sort -g | tail -n 1 | awk -v a="$t0" '{ printf "%.2f\n", $1 - a }')
}

record() { # tool
    echo "$T_LAST" >> "$DIR/t.$1"
    awk -v b=$TX -v s=$BYTES 'BEGIN { printf "%.2f\n", b / s }' >> "$DIR/copies.$1"
    awk -v c="$CPU" -v n=$FETCHERS -v s=$BYTES 'BEGIN { printf "%.2f\n", c / (n * s / 1073741824) }' >> "$DIR/cpu.$1"
    note "$1: last fetcher after $T_LAST s, seeder sent $(tail -n 1 "$DIR/copies.$1") copies, $(tail -n 1 "$DIR/cpu.$1") CPU s/GiB"
}

# ---- nvx ----------------------------------------------------------------------
nvx_fetch_in() {
    inns "$1" "$NVX" --store "$DIR/nvx.$1" -q fetch "$MODEL_ID"
}
nvx_round() {
    PIDS=""
    for i in $(seq 0 "$FETCHERS"); do
        rm -rf "$DIR/nvx.$i"
        mkdir -p "$DIR/nvx.$i"
    done
    MODEL_ID=$("$NVX" --store "$DIR/nvx.0" -q add --pin "$DIR/input.bin")
    "$NVX" --store "$DIR/nvx.0" -q verify "$MODEL_ID" > /dev/null # page cache, as nginx
    for i in $(seq 0 "$FETCHERS"); do
        peer=""
        [ "$i" -gt 0 ] && peer="--peer $SEED_IP:4747"
        # shellcheck disable=SC2086
        spawn "$DIR/logs/nvxd.$i.log" ip netns exec "$TAG-$i" "$NVXD" --store "$DIR/nvx.$i" \
            --listen "198.18.0.$((i + 1)):4747" --no-discovery --no-upnp $peer
        PIDS="$PIDS $(child_of "$LAST_PID")"
        [ "$i" = 0 ] && SEED_KILL=$(echo $PIDS)
    done
    for i in $(seq 1 "$FETCHERS"); do
        end=$(($(date +%s) + 30))
        until "$NVX" --store "$DIR/nvx.$i" --json peers 2>/dev/null | grep -q '"connected"'; do
            [ "$(date +%s)" -lt $end ] || { note "fetcher $i never reached the seeder"; exit 1; }
            sleep 0.1
        done
    done
    SEED_CPU=""
    ok=1
    run_fetchers nvx_fetch_in || ok=0
    # shellcheck disable=SC2086
    CPU=$(awk -v a="$(cpu_of $PIDS)" -v b="${SEED_CPU:-0}" 'BEGIN { print a + b }')
    for i in $(seq 1 "$FETCHERS"); do
        "$NVX" --store "$DIR/nvx.$i" -q verify "$MODEL_ID" > /dev/null ||
            { note "nvx copy $i does not verify"; ok=0; }
    done
    stop_all
    [ $ok = 1 ] && record nvx
}

# ---- aria2c -----------------------------------------------------------------------
ARIA="--disable-ipv6=true --enable-dht=false --enable-dht6=false --bt-enable-lpd=false
 --enable-peer-exchange=true --seed-ratio=0 --console-log-level=warn --summary-interval=0
 --file-allocation=none --bt-max-peers=55 --max-overall-upload-limit=0"
aria_fetch_in() {
    # Exits once the copy is complete and verified; the leecher started by
    # aria_round keeps seeding it.
    until [ -f "$DIR/aria.$1/input.bin.done" ]; do sleep 0.1; done
}
aria_round() {
    PIDS=""
    rm -rf "$DIR"/aria.* "$DIR/tracker"
    mkdir -p "$DIR/aria.0" "$DIR/tracker"
    ln "$DIR/input.bin" "$DIR/aria.0/input.bin"
    mktorrent -l 20 -a "http://$SEED_IP:6969/announce" -o "$DIR/input.torrent" \
        "$DIR/aria.0/input.bin" > "$DIR/logs/mktorrent.log" 2>&1
    INFOHASH=$(aria2c -S "$DIR/input.torrent" | awk '/^Info Hash:/ { print $3 }')
    echo "$INFOHASH" > "$DIR/tracker/whitelist.txt"
    chmod 755 "$DIR/tracker"
    chmod 644 "$DIR/tracker/whitelist.txt"
    spawn "$DIR/logs/opentracker.log" ip netns exec "$TAG-0" opentracker -i "$SEED_IP" -p 6969 \
        -P 6969 -d "$DIR/tracker" -u nobody -w /whitelist.txt
    PIDS="$PIDS $(child_of "$LAST_PID")"
    printf '#!/bin/sh\ndate +%%s.%%N > "$3.done"\n' > "$DIR/aria-done.sh"
    chmod +x "$DIR/aria-done.sh"
    # shellcheck disable=SC2086
    spawn "$DIR/logs/aria.0.log" ip netns exec "$TAG-0" aria2c $ARIA --dir="$DIR/aria.0" \
        --listen-port=6881 --seed-time=600 --bt-seed-unverified=true "$DIR/input.torrent"
    SEED_KILL=$(child_of "$LAST_PID")
    PIDS="$PIDS $SEED_KILL"
    sleep 1
    SEED_CPU=""
    for i in $(seq 1 "$FETCHERS"); do
        mkdir -p "$DIR/aria.$i"
        # shellcheck disable=SC2086
        spawn "$DIR/logs/aria.$i.log" ip netns exec "$TAG-$i" aria2c $ARIA --dir="$DIR/aria.$i" \
            --listen-port=6881 --seed-time=600 --on-bt-download-complete="$DIR/aria-done.sh" \
            "$DIR/input.torrent"
        PIDS="$PIDS $(child_of "$LAST_PID")"
    done
    ok=1
    run_fetchers aria_fetch_in || ok=0
    # shellcheck disable=SC2086
    CPU=$(awk -v a="$(cpu_of $PIDS)" -v b="${SEED_CPU:-0}" 'BEGIN { print a + b }')
    stop_all
    for i in $(seq 1 "$FETCHERS"); do
        [ "$(b2sum -l 256 "$DIR/aria.$i/input.bin" | cut -d' ' -f1)" = "$WANT_SUM" ] ||
            { note "aria2c copy $i differs"; ok=0; }
    done
    [ $ok = 1 ] && record aria2c
}

# ---- curl from nginx ------------------------------------------------------------
curl_fetch_in() {
    /usr/bin/time -a -o "$DIR/curl.cpu" -f "%U %S" ip netns exec "$TAG-$1" sh -c \
        "curl -sS --fail http://$SEED_IP:8080/input.bin | b2sum -l 256 > '$DIR/curl.sum.$1'"
}
curl_round() {
    mkdir -p "$DIR/www" "$DIR/nginx"
    chmod 755 "$DIR/www"
    ln -f "$DIR/input.bin" "$DIR/www/input.bin"
    cat > "$DIR/nginx/nginx.conf" <<EOF
daemon off; worker_processes 1; pid $DIR/nginx/nginx.pid; error_log $DIR/logs/nginx.err;
events {}
http { access_log off; sendfile on;
  server { listen $SEED_IP:8080; root $DIR/www; } }
EOF
    spawn "$DIR/logs/nginx.log" ip netns exec "$TAG-0" nginx -c "$DIR/nginx/nginx.conf"
    NGINX_PID=$(child_of "$LAST_PID")
    SEED_KILL=$NGINX_PID
    sleep 1
    : > "$DIR/curl.cpu"
    SEED_CPU=""
    ok=1
    run_fetchers curl_fetch_in || ok=0
    workers=$(ps -o pid= --ppid "$NGINX_PID" 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086
    CPU=$(awk -v a="$(cpu_of $NGINX_PID $workers)" -v b="${SEED_CPU:-0}" \
        '{ c += $1 + $2 } END { print a + b + c }' "$DIR/curl.cpu")
    stop_all
    for i in $(seq 1 "$FETCHERS"); do
        [ "$(cut -d' ' -f1 "$DIR/curl.sum.$i" 2>/dev/null)" = "$WANT_SUM" ] ||
            { note "curl copy $i differs"; ok=0; }
    done
    [ $ok = 1 ] && record curl
}

r=1
while [ $r -le "$RUNS" ]; do
    for t in $TOOLS; do
        note "run $r: $t"
        case $t in
        nvx) nvx_round || true ;;
        aria2c) aria_round || true ;;
        curl) curl_round || true ;;
        esac
    done
    r=$((r + 1))
done

echo
echo "swarm: $FETCHERS fetchers + 1 seeder, $SIZE_MB MiB, ${RATE_MBIT} Mbit/s uplinks, ideal $IDEAL s, churn $CHURN (at $CHURN_AT copies), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-28s %-22s %-22s %s\n' tool "last verified s (min-max)" "x ideal (median)" "seeder copies (med)" "CPU s/GiB (med)"
for t in $TOOLS; do
    [ -s "$DIR/t.$t" ] || { printf '%-8s failed\n' "$t"; continue; }
    set -- $(stats "$DIR/t.$t")
    printf '%-8s %-28s %-22s %-22s %s\n' "$t" "$1 ($2-$3)" "$(ratio "$1" "$IDEAL")" \
        "$(stats "$DIR/copies.$t" | cut -d' ' -f1)" "$(stats "$DIR/cpu.$t" | cut -d' ' -f1)"
done
