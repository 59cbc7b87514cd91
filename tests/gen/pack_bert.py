"""A BERT-style encoder for the padding-free batch test (tests/scripts/remove_padding.sh).

    /usr/bin/python3 tests/gen/pack_bert.py OUTDIR

writes OUTDIR/model.onnx: the TorchScript exporter's form of models.py
(2 layers, hidden 64, 4 heads, FFN 256) with an extra f32 input
`hidden_bias` [batch, sequence, 64] added after the embeddings (a second
entry into the packed region), and three outputs: the final hidden states
[batch, sequence, 64], a pooler (tanh(dense(hidden[:, 0]))) [batch, 64]
and a QA head split into start/end logits [batch, sequence].  Input sets
OUTDIR/set_K/input_J.pb with masks of mixed lengths (length 1, full rows,
an empty row, lengths spread over 1..S), and OUTDIR/set_K/lens.txt the
lengths; OUTDIR/bad_K/ inputs whose mask is not right-padded (bad_0) or
not 0/1 (bad_1), and one whose mask is wider than the ids (bad_2).
"""
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models as M  # noqa: E402

HID, HEADS, FFN, LAYERS, VOCAB, MAXPOS = 64, 4, 256, 2, 512, 64


def params(seed):
    P, rng = M.bert_params(seed, LAYERS, MAXPOS, VOCAB, HID, FFN, std=(0.1, 0.1, 0.06))
    M.linear_p(P, rng, "pool", HID, HID, std=0.1)
    M.linear_p(P, rng, "qa", HID, 2, std=0.3)
    return P


def model():
    b = M.Builder(params(11))
    ids, mask, tt, hb = "input_ids", "attention_mask", "token_type_ids", "hidden_bias"
    seq = b.op("Unsqueeze", b.op("Gather", b.op("Shape", ids), np.int64(1), axis=0), [0])
    pos = b.op("Slice", np.arange(MAXPOS, dtype=np.int64)[None], [0], seq, [1], [1])
    e = b.op("Add", b.op("Gather", b.p("emb.word"), ids), b.op("Gather", b.p("emb.type"), tt))
    x = M.g_ln(b, b.op("Add", e, b.op("Gather", b.p("emb.pos"), pos)), "emb.ln")
    x = b.op("Add", x, hb)
    am = M.g_ext_mask(b, mask, M.F32_MIN)
    for i in range(LAYERS):
        x = M.g_layer(b, x, "l%d" % i, am, HEADS, HID // HEADS, "shape")
    cls = b.op("Gather", x, np.int64(0), axis=1)
    pooled = b.op("Tanh", M.g_lin(b, cls, "pool"))
    start, end = b.op("Split", M.g_lin(b, x, "qa"), [1, 1], axis=-1, outs=2)
    start = b.op("Squeeze", start, [-1])
    end = b.op("Squeeze", end, [-1])
    b.outputs(x, pooled, start, end)
    I64, F = TensorProto.INT64, TensorProto.FLOAT
    ins = [(n, I64, ["batch", "sequence"]) for n in (ids, mask, tt)]
    ins.append((hb, F, ["batch", "sequence", HID]))
    return b.model("pack_bert", ins,
                   [("last_hidden_state", F, ["batch", "sequence", HID]),
                    ("pooler_output", F, ["batch", HID]),
                    ("start_logits", F, ["batch", "sequence"]),
                    ("end_logits", F, ["batch", "sequence"])], 14)


def inputs(rng, lens, S, mask=None):
    B = len(lens)
    ids = rng.integers(0, VOCAB, (B, S)).astype(np.int64)
    if mask is None:
        mask = (np.arange(S)[None] < np.array(lens)[:, None]).astype(np.int64)
    tt = (np.arange(S) >= S // 2).astype(np.int64)[None].repeat(B, 0)
    hb = (rng.standard_normal((B, S, HID)) * 0.1).astype(np.float32)
    return [("input_ids", ids), ("attention_mask", mask), ("token_type_ids", tt), ("hidden_bias", hb)]


def write(d, arrays):
    os.makedirs(d, exist_ok=True)
    for k, (name, a) in enumerate(arrays):
        with open(os.path.join(d, "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(a, name).SerializeToString())


SETS = [
    ([24, 1, 13, 7], 24),          # mixed, one of length 1
    ([16, 16], 16),                # all full
    ([5, 0, 9], 9),                # an empty row
    ([1], 1),                      # one token
    (list(range(1, 33, 2)), 32),   # 16 rows, lengths 1, 3, .., 31
]


def main(out):
    import onnx
    m = model()
    M.check_graph(m)
    os.makedirs(out, exist_ok=True)
    onnx.save(m, os.path.join(out, "model.onnx"))
    rng = np.random.default_rng(12)
    for k, (lens, S) in enumerate(SETS):
        d = os.path.join(out, "set_%d" % k)
        write(d, inputs(rng, lens, S))
        with open(os.path.join(d, "lens.txt"), "w") as f:
            f.write(" ".join(map(str, lens)) + "\n")
    hole = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 0, 0]], np.int64)
    write(os.path.join(out, "bad_0"), inputs(rng, [6, 3], 6, hole))
    two = np.array([[1, 1, 2, 0, 0, 0], [1, 1, 1, 1, 0, 0]], np.int64)
    write(os.path.join(out, "bad_1"), inputs(rng, [3, 4], 6, two))
    wide = inputs(rng, [6, 3], 6)
    wide[1] = ("attention_mask", np.ones((2, 7), np.int64))
    write(os.path.join(out, "bad_2"), wide)
    print("pack_bert: %d nodes, %d input sets" % (len(m.graph.node), len(SETS)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: pack_bert.py OUTDIR")
    main(sys.argv[1])
