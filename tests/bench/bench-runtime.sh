#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds and runs the runtime speed benchmark (not part of CI):
#   tests/bench/bench-runtime.sh [MODEL|synthetic] [RUNS] [REPEATS]
#   tests/bench/bench-runtime.sh vs-llama.cpp [RUNS]
# MODEL defaults to ../shared/models/aidreams260K.bin; "synthetic" times a
# 15M-parameter random model built in memory (see bench-runtime.c). Builds with the same
# flags as the library (-O2, -ffp-contract=off), without -march=native: the
# SIMD path is chosen at run time.
#
# vs-llama.cpp: nvx beside llama.cpp as npm users get it (node-llama-cpp
# 3.21.1, prebuilt binaries, installed into $SCRATCH/node_modules; never by
# the test command) on a synthetic model of stories110M's shape (dim 768,
# 12 layers, 12 heads, hidden 2048, vocab 32000, random weights) that
# `nvx quantize` turns into F32, Q8_0, Q4_0 and Q4_K_M GGUF files. Per type
# and thread count (1, 2), RUNS (3) runs of each engine, alternating: the
# same prompt (about 60 tokens) in one batch, then N_GEN (64) greedy
# tokens; both use an F16 KV cache and a 512-token context. Prints medians
# of prompt and generation tokens/s (wall clock) and peak RSS, the
# nvx/llama.cpp ratio per row, the load average beside each row, and which
# CPU kernels each side ran. llama.cpp's RSS is the node process's peak
# minus what node held before loading llama.cpp. It first checks that
# llama.cpp loads and runs the files `nvx quantize` writes, including the
# shared realarch qwen2 Q8_0 file requantized to Q4_K_M and Q6_K.
# Env: BUILD_DIR (build), SCRATCH (${TMPDIR:-/tmp}/nvx-bench-llamacpp, kept
# between runs: the npm install and the models are reused), N_GEN, TYPES
# ("f32 q8_0 q4_0 q4_k_m"), THREADS ("1 2").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=$root/../shared/models
CC=${CC:-cc}
arch_src=
case $(uname -m) in
x86_64) arch_src=$root/runtime/kernels-x86.c ;;
aarch64) arch_src=$root/runtime/kernels-arm.c ;;
esac
out=${TMPDIR:-/tmp}/nvx-bench-runtime.$$
$CC -std=c17 -O2 -ffp-contract=off -D_POSIX_C_SOURCE=200809L -I"$root" -o "$out" \
    "$here/bench-runtime.c" "$root"/runtime/types.c "$root"/runtime/gguf.c \
    "$root"/runtime/llama2c.c "$root"/runtime/layout.c "$root"/runtime/kernels.c \
    "$root"/runtime/kquant.c "$root"/runtime/arch.c "$root"/runtime/model.c \
    "$root"/runtime/model-forward.c "$root"/runtime/model-file.c $arch_src -lm
trap 'rm -f "$out"' EXIT

if [ "${1:-}" != vs-llama.cpp ]; then
    "$out" "${1:-$shared/aidreams260K.bin}" "${2:-7}" "${3:-20}"
    exit 0
fi

runs=${2:-3}
build=${BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
nvx=$build/cli/nvx
scratch=${SCRATCH:-${TMPDIR:-/tmp}/nvx-bench-llamacpp}
n_gen=${N_GEN:-64}
prompt="Once upon a time, there was a little girl named Lily who lived in a small house near \
the forest. Every day she went out to play with her friends, and every evening her mother told \
her a story about the stars, the moon and the animals that lived in the woods behind the house."
for tool in node npm python3 /usr/bin/time; do
    command -v $tool >/dev/null || {
        echo "bench-runtime: $tool is missing: apt-get install nodejs npm python3 time" >&2
        exit 1
    }
done
[ -x "$nvx" ] || {
    echo "bench-runtime: no $nvx: build first (meson setup build && ninja -C build)" >&2
    exit 1
}
mkdir -p "$scratch"
if [ ! -f "$scratch/node_modules/node-llama-cpp/package.json" ] ||
    ! grep -q '"version": "3.21.1"' "$scratch/node_modules/node-llama-cpp/package.json"; then
    echo "installing node-llama-cpp 3.21.1 into $scratch (prebuilt llama.cpp)"
    (cd "$scratch" && npm i -E --no-audit --no-fund node-llama-cpp@3.21.1 >npm.log 2>&1) || {
        echo "bench-runtime: npm install failed, see $scratch/npm.log" >&2
        exit 1
    }
fi
cp "$here/llamacpp-run.mjs" "$scratch/"
llama() { (cd "$scratch" && node llamacpp-run.mjs "$@"); }

# The models: a llama2.c checkpoint with the llama 2 vocabulary, converted
# and quantized by nvx (made once per scratch folder).
if [ ! -f "$scratch/f32.gguf" ]; then
    echo "writing the synthetic 110M-parameter model"
    "$out" write-110m "$scratch/s110m.bin"
    "$nvx" quantize "$scratch/s110m.bin" --tokenizer "$shared/llama2-tokenizer.bin" \
        --type f32 -o "$scratch/f32.gguf.tmp" --eval 0 >/dev/null
    rm -f "$scratch/s110m.bin"
    mv "$scratch/f32.gguf.tmp" "$scratch/f32.gguf"
fi
for t in ${TYPES:-f32 q8_0 q4_0 q4_k_m}; do
    [ $t = f32 ] || [ -f "$scratch/$t.gguf" ] ||
        "$nvx" quantize "$scratch/f32.gguf" --type $t -o "$scratch/$t.gguf" --eval 0 >/dev/null
done

# Does llama.cpp load what nvx quantize writes? The bench models, and the
# realarch round trip of issue 12 (qwen2 Q8_0 -> Q4_K_M, Q6_K).
echo "== llama.cpp loads nvx quantize's files (8 greedy tokens from each engine)"
check() { # FILE PROMPT
    ids=$(llama check "$1" "$2" 8) || {
        echo "FAIL: llama.cpp cannot load $1" >&2
        exit 1
    }
    ntext=$("$nvx" run "$1" --prompt "$2" -n 8 -t 0 2>/dev/null | tr '\n' ' ')
    printf '%-20s loads. greedy, nvx: %s\n%-20s        llama.cpp: %s%s\n' "$(basename "$1")" \
        "$ntext" "" "$2" \
        "$(echo "$ids" | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])')"
}
qw=$shared/realarch/qwen2-gqa-Q8_0.gguf
if [ -f "$qw" ]; then
    for t in q4_k_m q6_k; do
        "$nvx" quantize "$qw" --type $t -o "$scratch/qwen2-$t.gguf" --eval 0 2>/dev/null >/dev/null
        check "$scratch/qwen2-$t.gguf" "Once upon a time, in a small village,"
    done
fi
for t in ${TYPES:-f32 q8_0 q4_0 q4_k_m}; do
    check "$scratch/$t.gguf" "Once upon a time"
done

# One run of nvx: prints "pp tg rss_kib pp_cpu tg_cpu kernels". Its output
# is parsed after it exited, not through a pipe: a parser starting beside it
# would take one of the 2 cores during the prompt (about 0.1 s of work at 2
# threads) and halve the second thread's share.
nvx_run() { # FILE THREADS
    /usr/bin/time -f "rss %M" "$nvx" run "$1" --prompt "$prompt" -n "$n_gen" -t 0 \
        --threads "$2" --kv f16 --stats 2>"$scratch/nvx.err" >/dev/null || true
    python3 -c '
import re, sys
t = sys.stdin.read()
m = re.search(r"(\S+) kernels.*prompt ([0-9.]+) tok/s, generation ([0-9.]+) tok/s; "
              r"per CPU second: prompt ([0-9.]+), generation ([0-9.]+)", t)
r = re.search(r"rss (\d+)", t)
if not m or not r:
    sys.exit("nvx run failed: " + t)
print(m.group(2), m.group(3), r.group(1), m.group(4), m.group(5), m.group(1))' <"$scratch/nvx.err"
}
# One run of llama.cpp: prints "pp tg rss_kib pp_cpu tg_cpu" and leaves its system info
# in $scratch/system_info.
llama_run() { # FILE THREADS
    llama bench "$1" "$2" "$prompt" "$n_gen" 1 >"$scratch/llama.out" || true
    python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
run, tail = rows[0], rows[-1]
open(sys.argv[1], "w").write(tail["system_info"])
print(run["pp"], run["tg"], tail["rss_kib"] - tail["base_kib"], run["pp_cpu"], run["tg_cpu"])' \
        "$scratch/system_info" <"$scratch/llama.out"
}

echo
echo "== nvx vs llama.cpp (node-llama-cpp 3.21.1), synthetic 110M model, prompt ~60 tokens,"
echo "   $n_gen generated, medians of $runs alternating runs; tok/s wall clock, RSS MiB;"
echo "   cpu: the ratio of tokens per CPU second (all threads), which load on a shared"
echo "   machine distorts less (at 2 threads it also counts spinning workers)"
printf '%-7s %3s | %8s %8s %6s %6s | %8s %8s %6s %6s | %7s %7s %6s | %s\n' type thr "nvx tg" \
    "lcpp tg" ratio cpu "nvx pp" "lcpp pp" ratio cpu "nvx MiB" "lcpp" ratio "load (1 min)"
for t in ${TYPES:-f32 q8_0 q4_0 q4_k_m}; do
    for th in ${THREADS:-1 2}; do
        f=$scratch/$t.gguf
        rm -f "$scratch/rows"
        i=0
        while [ $i -lt "$runs" ]; do
            echo "nvx $(nvx_run "$f" "$th")" >>"$scratch/rows"
            echo "lcpp $(llama_run "$f" "$th")" >>"$scratch/rows"
            i=$((i + 1))
        done
        load=$(cut -d' ' -f1 /proc/loadavg)
        python3 - "$scratch/rows" "$t" "$th" "$load" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(who, k):
    return st.median(float(r[k + 1]) for r in rows if r[0] == who)
n = [med("nvx", k) for k in range(5)]
l = [med("lcpp", k) for k in range(5)]
kern = [r[6] for r in rows if r[0] == "nvx"][0]
print("%-7s %3s | %8.2f %8.2f %5.2fx %5.2fx | %8.1f %8.1f %5.2fx %5.2fx | %7.0f %7.0f %5.2fx | "
      "%s (nvx %s)" % (sys.argv[2], sys.argv[3], n[1], l[1], n[1] / l[1], n[4] / l[4], n[0], l[0],
                      n[0] / l[0], n[3] / l[3], n[2] / 1024, l[2] / 1024, n[2] / l[2], sys.argv[4],
                      kern))
EOF
    done
done
echo
echo "nvx kernels: named per row (runtime/kernels-*.c, chosen at run time)"
echo "llama.cpp system info: $(cat "$scratch/system_info")"
