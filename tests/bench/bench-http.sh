#!/bin/sh
# SPDX-License-Identifier: MIT
# The HTTP API's speed (not part of CI):
#   tests/bench/bench-http.sh [BUILD_DIR]
# (1) Generation: time to first token and tokens/s of greedy text through
#     POST /api/generate against `nvx run` on the same store model, same
#     prompt and token count, in this invocation (target: tokens/s ratio
#     >= 0.95). "cold" requests unload the model after each one
#     (keep_alive 0), so each checks and loads the model as nvx run does;
#     "warm" ones find it loaded.
# (2) GET /api/tags under CLIENTS (50) keep-alive clients: answers/s,
#     against nginx (one worker, like nvxd's one loop) serving a static
#     file holding the same bytes as the /api/tags answer.
# Env: MODEL (default ../shared/models/realarch/llama-gqa-Q4_K_M.gguf),
# RUNS (5), N (64 new tokens), CLIENTS (50), SECONDS (5 per load run).
# 127.0.0.1 only. Needs nginx for (2) (apt-get install nginx-light).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
model=${MODEL:-$root/../shared/models/realarch/llama-gqa-Q4_K_M.gguf}
runs=${RUNS:-5}
n=${N:-64}
clients=${CLIENTS:-50}
secs=${SECONDS_PER_RUN:-${SECONDS_:-5}}
prompt="Once upon a time"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nvx-bench-http.XXXXXX")
nvxd_pid=
nginx_pid=
cleanup() {
    [ -n "$nvxd_pid" ] && kill "$nvxd_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
[ -f "$model" ] || { echo "bench-http: $model not found: set MODEL" >&2; exit 1; }

${CC:-cc} -std=c17 -O2 -o "$tmp/bench-http" "$here/bench-http.c"
nvx="$build/cli/nvx"
id=$("$nvx" --store "$tmp/store" add -q --pin --name bench "$model")
echo "model $(basename "$model") ($id), prompt \"$prompt\", $n new tokens, $runs runs," \
    "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"

"$build/daemon/nvxd" --store "$tmp/store" --listen none --no-discovery --http 127.0.0.1:0 \
    2>"$tmp/nvxd.log" &
nvxd_pid=$!
i=0
while ! grep -q "HTTP API on http://" "$tmp/nvxd.log"; do
    i=$((i + 1))
    [ $i -lt 500 ] || { cat "$tmp/nvxd.log" >&2; exit 1; }
    sleep 0.02
done
api=$(sed -n 's|.*HTTP API on http://\([0-9.:]*\).*|\1|p' "$tmp/nvxd.log" | head -n 1)

echo "== generation: medians (min, max)"
"$tmp/bench-http" run "$nvx" "$tmp/store" "$id" "$prompt" "$n" "$runs" | tee "$tmp/gen"
"$tmp/bench-http" api "$api" bench "$prompt" "$n" "$runs" 0 | tee -a "$tmp/gen"
"$tmp/bench-http" api "$api" bench "$prompt" "$n" "$runs" 300 | tee -a "$tmp/gen"
awk '{ v[$1] = $2 } END {
    printf "ratio tokens/s api warm / nvx run: %.2fx (target >= 0.95)\n",
        v["api_warm_tokens_per_s"] / v["run_tokens_per_s"]
    printf "ratio tokens/s api cold / nvx run: %.2fx\n", v["api_cold_tokens_per_s"] / v["run_tokens_per_s"]
    printf "ratio first token nvx run / api cold: %.2fx, nvx run / api warm: %.2fx (> 1: the API is faster)\n",
        v["run_ttft_ms"] / v["api_cold_ttft_ms"], v["run_ttft_ms"] / v["api_warm_ttft_ms"]
}' "$tmp/gen"

echo "== GET /api/tags, $clients keep-alive clients, $secs s per run"
if ! command -v nginx >/dev/null 2>&1; then
    "$tmp/bench-http" load "$api" /api/tags "$clients" "$secs" "$runs"
    echo "nginx not found (apt-get install nginx-light): no baseline"
    exit 0
fi
mkdir -p "$tmp/www" "$tmp/nginx"
chmod 755 "$tmp" "$tmp/www" # nginx workers run as another user when started by root
curl -s "http://$api/api/tags" >"$tmp/www/tags.json"
port=$((20000 + $$ % 20000))
cat >"$tmp/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60;
    default_type application/json;
    client_body_temp_path $tmp/nginx/b; proxy_temp_path $tmp/nginx/p;
    fastcgi_temp_path $tmp/nginx/f; uwsgi_temp_path $tmp/nginx/u; scgi_temp_path $tmp/nginx/s;
    server { listen 127.0.0.1:$port; root $tmp/www; }
}
CONF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/stderr" &
nginx_pid=$!
i=0
while ! curl -sf "http://127.0.0.1:$port/tags.json" >/dev/null; do
    i=$((i + 1))
    [ $i -lt 500 ] || { cat "$tmp/nginx/stderr" >&2; exit 1; }
    sleep 0.02
done
echo "body: $(wc -c <"$tmp/www/tags.json") bytes"
printf "nvxd  " && "$tmp/bench-http" load "$api" /api/tags "$clients" "$secs" "$runs" | tee "$tmp/load"
printf "nginx " && "$tmp/bench-http" load "127.0.0.1:$port" /tags.json "$clients" "$secs" "$runs" |
    sed 's/^/nginx_/' | tee -a "$tmp/load"
awk '{ v[$1] = $2 } END { printf "ratio requests/s nvxd / nginx: %.2fx\n", v["requests_per_s"] / v["nginx_requests_per_s"] }' "$tmp/load"
