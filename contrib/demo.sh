#!/bin/sh
# SPDX-License-Identifier: MIT
# The README demo (run by `contrib/nvx-dev demo`): makes a small synthetic
# model (random weights, byte vocabulary: it needs no download, and its text
# is gibberish by design), publishes it on one store, checks and runs it.
# Usage: contrib/demo.sh BUILD_DIR
set -eu
build=$(cd "${1:-build}" && pwd)
nvx="$build/cli/nvx"
mkmodel="$build/tests/tools/nvx-mkmodel"
work=$(mktemp -d "${TMPDIR:-/tmp}/nvx-demo-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }

step "make a small model: $work/demo.gguf"
"$mkmodel" -o "$work/demo.gguf" --dim 128 --layers 4 --name nvx-demo --seed 7

a="$work/store-a"
step "add it to store A (tensor-aware chunking)"
id=$("$nvx" --store "$a" add "$work/demo.gguf" --pin --name demo | tee /dev/stderr | awk 'END { print $NF }')
"$nvx" --store "$a" info demo

step "sign it with a fresh key and trust that key"
NVX_PASSPHRASE= "$nvx" --store "$a" key new --key "$work/demo.key" --unencrypted
"$nvx" --store "$a" sign "$id" --key "$work/demo.key"
"$nvx" --store "$a" trust add "$work/demo.pub" demo-publisher

step "verify every chunk and signature"
"$nvx" --store "$a" verify "$id"

step "export and compare bit for bit"
"$nvx" --store "$a" export "$id" -o "$work/copy.gguf"
cmp "$work/demo.gguf" "$work/copy.gguf" && echo "identical: $(wc -c <"$work/copy.gguf") bytes"

step "run it (greedy, 24 tokens)"
"$nvx" --store "$a" run "$id" -p "hello" -n 24 -t 0 --stats
echo
step "done"
