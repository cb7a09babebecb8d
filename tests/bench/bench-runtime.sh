#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds and runs the runtime speed benchmark (not part of CI):
#   tests/bench/bench-runtime.sh [MODEL|synthetic] [RUNS] [REPEATS]
# MODEL defaults to ../shared/models/aidreams260K.bin; "synthetic" times a
# 15M-parameter random model built in memory (see bench-runtime.c). Builds with the same
# flags as the library (-O2, -ffp-contract=off), without -march=native: the
# SIMD path is chosen at run time.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
model=${1:-$root/../shared/models/aidreams260K.bin}
out=${TMPDIR:-/tmp}/nvx-bench-runtime.$$
CC=${CC:-cc}
arch_src=
case $(uname -m) in
x86_64) arch_src=$root/runtime/kernels-x86.c ;;
aarch64) arch_src=$root/runtime/kernels-arm.c ;;
esac
$CC -std=c17 -O2 -ffp-contract=off -D_POSIX_C_SOURCE=200809L -I"$root" -o "$out" \
    "$here/bench-runtime.c" "$root"/runtime/types.c "$root"/runtime/gguf.c \
    "$root"/runtime/llama2c.c "$root"/runtime/layout.c "$root"/runtime/kernels.c \
    "$root"/runtime/model.c "$root"/runtime/model-forward.c \
    "$root"/runtime/model-file.c $arch_src -lm
trap 'rm -f "$out"' EXIT
"$out" "$model" "${2:-7}" "${3:-20}"
