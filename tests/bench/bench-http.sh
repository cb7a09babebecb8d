#!/bin/sh
# SPDX-License-Identifier: MIT
# The HTTP API's speed (not part of CI):
#   tests/bench/bench-http.sh [BUILD_DIR]
# (1) Generation: time to first token and tokens/s of greedy text through
#     POST /api/generate, POST /api/chat and POST /v1/chat/completions
#     against `nvx run` on the same store model, same prompt and token
#     count, in this invocation (target: >= 0.95x). "cold" requests find
#     the model unloaded (keep_alive 0 before), so each checks and loads
#     it as nvx run does; "warm" ones find it loaded. The cases alternate
#     round by round (bench-http.c, bench_gen) so that a shared machine's
#     load falls on all of them alike. MODEL has no chat template (generate
#     only); CHAT_MODEL (realarch phi3, with one) runs all three.
# (2) GET /api/tags under CLIENTS (50) keep-alive clients: answers/s,
#     against nginx (one worker, like nvxd's one loop) serving a static
#     file holding the same bytes as the /api/tags answer.
# Env: MODEL (default ../shared/models/realarch/llama-gqa-Q4_K_M.gguf),
# CHAT_MODEL (../shared/models/realarch/phi3-Q4_K_M.gguf),
# RUNS (5), N (64 new tokens), CLIENTS (50), SECONDS (5 per load run).
# 127.0.0.1 only. Needs nginx for (2) (apt-get install nginx-light).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
model=${MODEL:-$root/../shared/models/realarch/llama-gqa-Q4_K_M.gguf}
chat_model=${CHAT_MODEL:-$root/../shared/models/realarch/phi3-Q4_K_M.gguf}
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
echo "prompt \"$prompt\", $n new tokens, $runs rounds, load before: $(cut -d' ' -f1-3 /proc/loadavg)," \
    "$(nproc) cores"

# No DHT, UPnP or discovery: nothing but 127.0.0.1 (the DHT's default
# bootstrap routers are public hosts).
"$build/daemon/nvxd" --store "$tmp/store" --listen none --no-discovery --no-dht --no-upnp \
    --http 127.0.0.1:0 2>"$tmp/nvxd.log" &
nvxd_pid=$!
i=0
while ! grep -q "HTTP API on http://" "$tmp/nvxd.log"; do
    i=$((i + 1))
    [ $i -lt 500 ] || { cat "$tmp/nvxd.log" >&2; exit 1; }
    sleep 0.02
done
api=$(sed -n 's|.*HTTP API on http://\([0-9.:]*\).*|\1|p' "$tmp/nvxd.log" | head -n 1)

ratios() { # file, the API rows it has
    f=$1
    shift
    for a in "$@"; do
        for t in cold warm; do
            awk -v k="${a}_$t" '{ v[$1] = $2 } END {
                printf "ratio %-16s tokens/s %.2fx, first token %.2fx (API / nvx run; first token: nvx run ms / API ms)\n",
                    k, v[k "_tokens_per_s"] / v["run_tokens_per_s"], v["run_ttft_ms"] / v[k "_ttft_ms"]
            }' "$f"
        done
    done
}

# (1) the model of the original measurement: no chat template, so
# /api/generate only. Medians (min, max) of the rounds.
echo "== generation, $(basename "$model") ($id)"
"$tmp/bench-http" gen "$nvx" "$tmp/store" "$id" "$api" bench "$prompt" "$n" "$runs" 0 |
    tee "$tmp/gen"
ratios "$tmp/gen" generate
if [ -f "$chat_model" ]; then
    cid=$("$nvx" --store "$tmp/store" add -q --pin --name chat "$chat_model")
    echo "== generation and chat, $(basename "$chat_model") ($cid)"
    "$tmp/bench-http" gen "$nvx" "$tmp/store" "$cid" "$api" chat "$prompt" "$n" "$runs" 1 |
        tee "$tmp/chat"
    ratios "$tmp/chat" generate chat openai_chat
else
    echo "== chat: $chat_model not found (set CHAT_MODEL): skipped"
fi
echo "target: tokens/s and first token >= 0.95x; load after: $(cut -d' ' -f1-3 /proc/loadavg)"

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
