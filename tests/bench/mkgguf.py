#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes a synthetic GGUF v3 file for the dedup benchmark.

Fallback used by bench-dedup.sh while tests/tools/nvx-mkmodel is absent.
Tensor data depends only on --seed, so two files made with the same seed and
a different --name differ only in that metadata string (whose length may
change, which moves every tensor's absolute offset by a multiple of the
alignment).

usage: mkgguf.py OUT --seed N --name STR [--mib SIZE] [--layers N]
"""
import argparse
import random
import struct

ALIGN = 32
GGML_F32 = 0


def gguf_str(s):
    b = s.encode()
    return struct.pack('<Q', len(b)) + b


def kv_str(key, val):
    return gguf_str(key) + struct.pack('<I', 8) + gguf_str(val)


def kv_u32(key, val):
    return gguf_str(key) + struct.pack('<I', 4) + struct.pack('<I', val)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--name', default='bench-model')
    ap.add_argument('--mib', type=int, default=64)
    ap.add_argument('--layers', type=int, default=8)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    # Per layer: four square matrices and two norms; plus embeddings/output.
    # About 16 * dim^2 * (layers + 2) bytes in all; dim a multiple of 32.
    dim = int((a.mib * 1024 * 1024 / (16 * (a.layers + 2))) ** 0.5) // 32 * 32
    dim = max(dim, 32)
    tensors = [('token_embd.weight', [dim, 4 * dim])]
    for i in range(a.layers):
        for w in ('attn_q', 'attn_k', 'attn_v', 'attn_output'):
            tensors.append(('blk.%d.%s.weight' % (i, w), [dim, dim]))
        tensors.append(('blk.%d.attn_norm.weight' % i, [dim]))
        tensors.append(('blk.%d.ffn_norm.weight' % i, [dim]))
    tensors.append(('output_norm.weight', [dim]))
    tensors.append(('output.weight', [dim, 4 * dim]))

    kvs = [kv_str('general.architecture', 'llama'), kv_str('general.name', a.name),
           kv_u32('llama.embedding_length', dim), kv_u32('llama.block_count', a.layers),
           kv_u32('general.alignment', ALIGN)]
    infos = b''
    off = 0
    sizes = []
    for name, dims in tensors:
        n = 1
        for d in dims:
            n *= d
        size = 4 * n
        infos += gguf_str(name) + struct.pack('<I', len(dims))
        infos += b''.join(struct.pack('<Q', d) for d in dims)
        infos += struct.pack('<IQ', GGML_F32, off)
        sizes.append(size)
        off += (size + ALIGN - 1) // ALIGN * ALIGN
    head = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs)) + b''.join(kvs) + infos
    head += b'\0' * (-len(head) % ALIGN)
    with open(a.out, 'wb') as f:
        f.write(head)
        for size in sizes:
            f.write(rng.randbytes(size))
            f.write(b'\0' * (-size % ALIGN))


if __name__ == '__main__':
    main()
