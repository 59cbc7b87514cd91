"""A BERT-like encoder for the int8 accuracy test (tests/scripts/quantize.sh).

    /usr/bin/python3 tests/gen/quant_bert.py OUTDIR

writes OUTDIR/model.onnx (4 layers, hidden 256, 4 heads, FFN 1024, the
TorchScript exporter's form of models.py, output: the final hidden states
[batch, sequence, 256]) and OUTDIR/in/input_K.pb (batch 2, sequence 48, the
second row padded after 30 tokens).  Weights are random (fixed seed) with
the spread of a trained BERT's (std 0.04 for 256 inputs), so activations have
realistic ranges; kiln's fp32 build is the reference the int8 build is
compared against.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models as M  # noqa: E402

HID, HEADS, FFN, LAYERS, VOCAB, MAXPOS = 256, 4, 1024, 4, 1024, 128


def params(seed):
    return M.bert_params(seed, LAYERS, MAXPOS, VOCAB, HID, FFN, std=(0.04, 0.04, 0.03))[0]


def model():
    P = params(7)
    b = M.Builder(P)
    ids, mask, tt = "input_ids", "attention_mask", "token_type_ids"
    seq = b.op("Unsqueeze", b.op("Gather", b.op("Shape", ids), np.int64(1), axis=0), [0])
    pos = b.op("Slice", np.arange(MAXPOS, dtype=np.int64)[None], [0], seq, [1], [1])
    e = b.op("Add", b.op("Gather", b.p("emb.word"), ids), b.op("Gather", b.p("emb.type"), tt))
    x = M.g_ln(b, b.op("Add", e, b.op("Gather", b.p("emb.pos"), pos)), "emb.ln")
    am = M.g_ext_mask(b, mask, M.F32_MIN)
    for i in range(LAYERS):
        x = M.g_layer(b, x, "l%d" % i, am, HEADS, HID // HEADS, "shape")
    b.outputs(x)
    I64, F = TensorProto.INT64, TensorProto.FLOAT
    return b.model("quant_bert", [(n, I64, ["batch", "sequence"]) for n in (ids, mask, tt)],
                   [("last_hidden_state", F, ["batch", "sequence", HID])], 14)


def inputs():
    rng = np.random.default_rng(8)
    B, S = 2, 48
    ids = rng.integers(0, VOCAB, (B, S)).astype(np.int64)
    mask = np.ones((B, S), np.int64)
    mask[1, 30:] = 0
    tt = (np.arange(S) >= S // 2).astype(np.int64)[None].repeat(B, 0)
    return [("input_ids", ids), ("attention_mask", mask), ("token_type_ids", tt)]


def main(out):
    import onnx
    m = model()
    M.check_graph(m)
    os.makedirs(os.path.join(out, "in"), exist_ok=True)
    onnx.save(m, os.path.join(out, "model.onnx"))
    for k, (name, a) in enumerate(inputs()):
        with open(os.path.join(out, "in", "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(a, name).SerializeToString())
    print("quant_bert: %d nodes" % len(m.graph.node))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: quant_bert.py OUTDIR")
    main(sys.argv[1])
