#!/usr/bin/env python3
"""Writes the synthetic seeds of bench/fuzz.sh into SEEDS/<harness>/: small complete inputs
that ../shared has no file for (its models are too large to be GGUF seeds whole, it has no
.cimatrix, its safetensors files are megabytes). Usage: make_seeds.py SEEDS"""
import json
import struct
import sys


def gguf_string(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b


def kv(key, value_type, payload):
    return gguf_string(key) + struct.pack('<i', value_type) + payload


def array(elem_type, items):
    return struct.pack('<iQ', elem_type, len(items)) + b''.join(items)


def gguf(kvs):
    """GGUF v3 with the given metadata and one F32 tensor [4, 2] (alignment 32)."""
    info = gguf_string('token_embd.weight') + struct.pack('<I', 2) + struct.pack('<qq', 4, 2)
    info += struct.pack('<IQ', 0, 0)  # type F32, offset 0
    head = b'GGUF' + struct.pack('<Iqq', 3, 1, len(kvs)) + b''.join(kvs) + info
    head += bytes(-len(head) % 32)
    return head + struct.pack('<8f', *range(8))


U32, I32, F32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9


def spm_vocab():
    tokens = ['<unk>', '<s>', '</s>', '<0x41>', '\u2581', '\u2581a', 'a', 'b', 'ab', '<|user|>']
    types = [2, 3, 3, 6, 1, 1, 1, 1, 1, 4]
    return gguf([
        kv('general.architecture', STRING, gguf_string('llama')),
        kv('tokenizer.ggml.model', STRING, gguf_string('llama')),
        kv('tokenizer.ggml.tokens', ARRAY, array(STRING, [gguf_string(t) for t in tokens])),
        kv('tokenizer.ggml.scores', ARRAY, array(F32, [struct.pack('<f', -i) for i in range(len(tokens))])),
        kv('tokenizer.ggml.token_type', ARRAY, array(I32, [struct.pack('<i', t) for t in types])),
        kv('tokenizer.ggml.bos_token_id', U32, struct.pack('<I', 1)),
        kv('tokenizer.ggml.eos_token_id', U32, struct.pack('<I', 2)),
        kv('tokenizer.ggml.add_bos_token', BOOL, b'\x01')])


def bpe_vocab():
    tokens = ['a', 'b', 'ab', '\u0120', '\u0120a', '<|endoftext|>', 'H', 'e', 'l', 'o', 'He', 'll']
    merges = ['a b', '\u0120 a', 'H e', 'l l']
    return gguf([
        kv('general.architecture', STRING, gguf_string('llama')),
        kv('tokenizer.ggml.model', STRING, gguf_string('gpt2')),
        kv('tokenizer.ggml.pre', STRING, gguf_string('llama3')),
        kv('tokenizer.ggml.tokens', ARRAY, array(STRING, [gguf_string(t) for t in tokens])),
        kv('tokenizer.ggml.token_type', ARRAY,
           array(I32, [struct.pack('<i', 3 if t.startswith('<|') else 1) for t in tokens])),
        kv('tokenizer.ggml.merges', ARRAY, array(STRING, [gguf_string(m) for m in merges])),
        kv('tokenizer.ggml.bos_token_id', U32, struct.pack('<I', 5)),
        kv('tokenizer.ggml.eos_token_id', U32, struct.pack('<I', 5))])


def cimatrix():
    """A dense entry, the output, and an expert entry of 8 experts x 4 values."""
    def entry(key, n):
        return gguf_string(key) + struct.pack('<Q', n) + struct.pack('<%df' % n, *[0.5 + i for i in range(n)])
    return struct.pack('<Q', 3) + entry('model.layers.0.self_attn.q_proj', 4) + entry('lm_head', 4) + \
        entry('model.layers.1.block_sparse_moe.experts.w1', 32)


def safetensors():
    header = {"__metadata__": {"format": "pt"},
              "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
              "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
              "c": {"dtype": "F16", "shape": [1, 1], "data_offsets": [22, 24]}}
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + bytes(range(24))


def main():
    seeds = sys.argv[1]
    for path, data in [('gguf/spm-vocab.gguf', spm_vocab()), ('gguf/bpe-vocab.gguf', bpe_vocab()),
                       ('imatrix/seed.cimatrix', cimatrix()), ('safetensors/small.safetensors', safetensors())]:
        with open(f'{seeds}/{path}', 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
