# SPDX-License-Identifier: MIT
# Helpers for bench-net.sh (sourced, POSIX sh). Not run on its own.
#
# Every server this file starts runs under `timeout` (SERVER_LIFE seconds), so
# even a benchmark killed with SIGKILL leaves nothing behind for long; the
# EXIT trap of the caller stops them earlier, each by its own process id.

# Seconds since the epoch with nanoseconds.
now() { date +%s.%N; }

# secs START END: elapsed seconds, 4 decimals.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", b - a }'; }

# stats FILE: "median min max" of the numbers in FILE (one a line); the
# median of an even count is the mean of the middle two.
stats() {
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan nan"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f %.3f %.3f\n", m, v[1], v[NR] }'
}

# mbps BYTES SECS: decimal MB/s.
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f\n", b / 1e6 / s; else print "nan" }'; }

# ratio A B: A / B with two decimals ("n/a" when either is missing).
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || a == "nan" || b == "nan" || b + 0 == 0) print "n/a"
        else printf "%.2f\n", a / b }'
}

# note MESSAGE: one progress line on stderr.
note() { echo "bench-net: $*" >&2; }

# port_free PORT: true when nothing listens on 127.0.0.1:PORT (TCP or UDP).
port_free() {
    ! ss -Hltun 2>/dev/null | awk '{ print $5 }' | grep -Eq "(^|:)$1\$"
}

# pick_port: prints a free port in 20000..59999, different from every port
# picked before in this run (PICKED holds them).
PICKED=""
pick_port() {
    p=$((20000 + ($$ * 7 + $(date +%N | sed 's/^0*//;s/^$/0/')) % 40000))
    n=0
    while [ $n -lt 1000 ]; do
        case " $PICKED " in
        *" $p "*) ;;
        *) if port_free $p; then PICKED="$PICKED $p"; echo $p; return 0; fi ;;
        esac
        p=$((p + 1))
        [ $p -ge 60000 ] && p=20000
        n=$((n + 1))
    done
    return 1
}

# wait_port PORT SECONDS: waits until 127.0.0.1:PORT accepts a TCP
# connection. Returns 1 on timeout.
wait_port() {
    end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt $end ]; do
        if ss -Hltn 2>/dev/null | awk '{ print $4 }' | grep -Eq "^127\.0\.0\.1:$1\$"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# spawn LOGFILE CMD...: starts CMD in the background under `timeout` and
# records the pid (of timeout; TERM is passed on to CMD) in SPAWNED. Sets
# LAST_PID.
SPAWNED=""
SERVER_LIFE=${SERVER_LIFE:-3600}
spawn() {
    log=$1
    shift
    timeout -k 5 "$SERVER_LIFE" "$@" > "$log" 2>&1 &
    LAST_PID=$!
    SPAWNED="$SPAWNED $LAST_PID"
}

# child_of PID: the (first) child process of PID, i.e. the server that a
# `timeout` wrapper runs. Waits up to 5 s for it to appear.
child_of() {
    n=0
    while [ $n -lt 50 ]; do
        c=$(ps -o pid= --ppid "$1" 2>/dev/null | awk 'NR == 1 { print $1 }')
        if [ -n "$c" ]; then
            echo "$c"
            return 0
        fi
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}

# stop PID...: TERM, then KILL after 5 s, each process by its id; removes
# them from SPAWNED.
stop() {
    for p in "$@"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "$@"; do
        n=0
        while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
        SPAWNED=$(echo "$SPAWNED" | tr ' ' '\n' | grep -vx "$p" | tr '\n' ' ')
    done
}

# stop_all: stops everything spawn() started (the EXIT trap calls it).
stop_all() {
    # shellcheck disable=SC2086
    [ -n "$(echo $SPAWNED)" ] && stop $SPAWNED
    SPAWNED=""
}

# vm PID FIELD: a field of /proc/PID/status in KiB (VmRSS, VmHWM), or "".
vm() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }

# kib_mib KIB: KiB as MiB with one decimal.
kib_mib() { awk -v k="$1" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f\n", k / 1024 }'; }
