"""Attention forms of other exporters (issue 12), each a small model in the
ONNX backend-test layout with references computed in numpy:

    /usr/bin/python3 tests/gen/attn_forms.py OUTDIR [NAME...]

writes OUTDIR/NAME/model.onnx, test_data_set_{0,1}/{input,output}_K.pb and
OUTDIR/NAME/expect: "attention A causal C" (what -O2 must fuse: A
KlnAttention nodes, C of them with the causal flag; a near miss has A = 0
and keeps its Softmax).  tests/scripts/attn_forms.sh compiles and checks
them at -O0 and -O2.

Further lines of expect, when present: "kv K" (K of them read grouped K/V
heads: kv_num_heads) and "explain TEXT" (`kiln dump -O2
--explain=attention` prints TEXT: the reason a near miss did not fuse) and
"mask M" (M of them take a key-padding mask input) and "left OP N" (N
nodes of op OP are left at -O2).

The references are numpy in float32, written from the math in the order
the exporters compute (scores, mask applied as the exporter does, softmax),
so rows whose keys are all masked give what the graph gives (NaN for a
-inf mask, the float minimum's rounding otherwise).  Every graph is also
evaluated with npref.py to make sure it means what the reference computes.

Data sets: 0 is batch 2, sequence 7, row 1 left-padded (its first 3 keys
masked, so its first 3 queries see no key under a causal mask); 1 is batch
1, sequence 5, nothing padded.  key_bias_and_pad* have their own
(key_bias_pad_sets: every row padded differently, one set with batch ==
sequence).
"""
import math
import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attn_data  # noqa: E402
import case_io  # noqa: E402
import npref  # noqa: E402
from models import Builder, check_graph, close  # noqa: E402
from onnx import numpy_helper  # noqa: E402

F32_MIN = float(np.finfo(np.float32).min)
W, H = 16, 2
D = W // H
NEG_INF = float("-inf")


def params(seed):
    return attn_data.params(seed, W)


def feeds_sets(mem=False):
    return attn_data.feeds_sets(5, W, mem=mem)


# ---- graph pieces ---------------------------------------------------------

def lin(b, x, t):
    return b.op("Add", b.op("MatMul", x, b.p(t + ".w")), b.p(t + ".b"))


def seq_len(b, x):
    return b.op("Gather", b.op("Shape", x), np.int64(1), axis=0)


def heads(b, t):
    return b.op("Transpose", b.op("Reshape", t, [0, 0, H, D]), perm=[0, 2, 1, 3])


def merge(b, p, v):
    c = b.op("Transpose", b.op("MatMul", p, v), perm=[0, 2, 1, 3])
    return lin(b, b.op("Reshape", c, [0, 0, W]), "o")


def pad_bias(b, mask, fill):
    """(1 - mask[:, None, None, :]) * fill"""
    m = b.op("Unsqueeze", mask, [1, 2])
    return b.op("Mul", b.op("Sub", 1.0, b.op("Cast", m, to=TensorProto.FLOAT)), fill)


def qkv(b, x, kv=None):
    kv = x if kv is None else kv
    q, k, v = heads(b, lin(b, x, "q")), heads(b, lin(b, kv, "k")), heads(b, lin(b, kv, "v"))
    kt = b.op("Transpose", k, perm=[0, 1, 3, 2])       # k.transpose(-1, -2)
    return q, kt, v


def finish(b, name, y, opset, mem=False, syms=("batch", "seq")):
    """syms: the batch and sequence dim names (the dynamo exporter's are
    s18, s41, ...)"""
    b.outputs(y)
    bn, sn = syms
    ins = [("x", TensorProto.FLOAT, [bn, sn, W])]
    if mem:
        ins.append(("memory", TensorProto.FLOAT, [bn, "mlen", W]))
    ins.append(("attention_mask", TensorProto.INT64, [bn, sn]))
    return b.model(name, ins, [("y", TensorProto.FLOAT, [bn, sn, W])], opset)


# ---- numpy references (float32) -----------------------------------------

def r_lin(x, P, t):
    return (x @ P[t + ".w"] + P[t + ".b"]).astype(np.float32)


def r_heads(t):
    B, S, _ = t.shape
    return t.reshape(B, S, H, D).transpose(0, 2, 1, 3)


def r_softmax(s):
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(s - s.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def r_pad(mask, fill):
    with np.errstate(invalid="ignore", over="ignore"):
        return ((np.float32(1) - mask[:, None, None, :].astype(np.float32)) *
                np.float32(fill)).astype(np.float32)


def r_scores(P, x, kv=None):
    kv = x if kv is None else kv
    q, k, v = r_heads(r_lin(x, P, "q")), r_heads(r_lin(kv, P, "k")), r_heads(r_lin(kv, P, "v"))
    return (q @ k.transpose(0, 1, 3, 2)).astype(np.float32), v


def r_out(P, p, v):
    B, _, S, _ = p.shape
    c = (p @ v).transpose(0, 2, 1, 3).reshape(B, S, W)
    return r_lin(c, P, "o")


def r_tril(S, t=0):
    """bool [S, S]: k - q <= t"""
    r = np.arange(S)
    return r[None, :] - r[:, None] <= t


def add32(a, b):
    with np.errstate(invalid="ignore", over="ignore"):
        return (a + b).astype(np.float32)


# ---- the forms ------------------------------------------------------------

def causal_gpt2(window=0):
    """GPT-2 (TorchScript): Where(k <= q (+window), scores / sqrt(d), min)
    from Range/LessOrEqual, then + the padding bias."""
    P, b = params(1), None
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    s = b.op("Div", b.op("MatMul", q, kt), float(math.sqrt(D)))
    r = b.op("Range", np.int64(0), seq_len(b, x), np.int64(1))
    rq = b.op("Unsqueeze", r, [1])
    if window:
        rq = b.op("Add", rq, np.int64(window))
    cond = b.op("Unsqueeze", b.op("LessOrEqual", b.op("Unsqueeze", r, [0]), rq), [0, 1])
    s = b.op("Where", cond, s, F32_MIN)
    s = b.op("Add", s, pad_bias(b, mask, F32_MIN))
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        s, v = r_scores(P, x)
        s = (s / np.float32(math.sqrt(D))).astype(np.float32)
        s = np.where(r_tril(x.shape[1], window), s, np.float32(F32_MIN)).astype(np.float32)
        s = add32(s, r_pad(attention_mask, F32_MIN))
        return [r_out(P, r_softmax(s), v)]
    return finish(b, "causal_gpt2", y, 14), P, ref, feeds_sets()


def const_causal(fill=-1e4, rank=2, masked=False, flip=False):
    """A static-length export at opset 13 (no Trilu): its causal mask folded
    to a constant bool [S, S] (rank 4: [1, 1, S, S]) around the scaled
    scores, Where(tril, scores, fill) or masked_fill(triu(1), fill) as
    Where(~tril, fill, scores) (masked), then + the padding bias; flip: one
    entry of the constant wrong (query 4 sees key 5), a near miss.  Both
    data sets have sequence 7 (set 1: batch 1, nothing padded)."""
    S = 7
    P, b = params(1), None
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    s = b.op("Div", b.op("MatMul", q, kt), float(math.sqrt(D)))
    keep = r_tril(S)
    if flip:
        keep[4, 5] = True
    c = (~keep if masked else keep).reshape((1, 1, S, S) if rank == 4 else (S, S))
    s = b.op("Where", c, fill, s) if masked else b.op("Where", c, s, fill)
    s = b.op("Add", s, pad_bias(b, mask, F32_MIN))
    y = merge(b, b.op("Softmax", s, axis=-1), v)
    name = "const_causal"

    def ref(P, x, attention_mask):
        s, v = r_scores(P, x)
        s = (s / np.float32(math.sqrt(D))).astype(np.float32)
        s = np.where(keep, s, np.float32(fill)).astype(np.float32)
        s = add32(s, r_pad(attention_mask, F32_MIN))
        return [r_out(P, r_softmax(s), v)]
    s0 = feeds_sets()[0]
    s1 = {"x": s0["x"][:1] * np.float32(-0.5), "attention_mask": np.ones((1, S), np.int64)}
    return finish(b, name, y, 13, syms=("batch", S)), P, ref, [s0, s1]


def causal_bart(dynamo=False):
    """BART decoder (TorchScript): mask = full([S, S], min) zeroed where
    k < q + 1 (Range, Reshape, Less, Where), expanded to [B, 1, S, S] and
    added to the expanded padding mask; q scaled before Q K^T.  dynamo: as
    the dynamo exporter writes _make_causal_mask (opset 18, dims s18/s41):
    full() as an Expand of the constant, the lengths as Shape(start, end),
    the padding mask inverted and masked_fill'ed: Where(bool(1 - m), min,
    1 - m)."""
    P = params(2)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    q = b.op("Mul", q, float(D ** -0.5))
    s = b.op("MatMul", q, kt)
    if dynamo:
        S1 = b.op("Shape", x, start=1, end=2)
        B1 = b.op("Shape", x, start=0, end=1)
        S = b.op("Squeeze", S1, [0])
        full = b.op("Expand", np.array(F32_MIN, np.float32), b.op("Concat", S1, S1, axis=0))
        r = b.op("Range", np.int64(0), S, np.int64(1))
        cond = b.op("Less", r, b.op("Reshape", b.op("Add", r, np.int64(1)),
                                    b.op("Concat", S1, [1], axis=0)))
    else:
        S = seq_len(b, x)
        S1 = b.op("Unsqueeze", S, [0])
        full = b.op("ConstantOfShape", b.op("Concat", S1, S1, axis=0),
                    value=numpy_helper.from_array(np.array([F32_MIN], np.float32)))
        r = b.op("Range", np.int64(0), S, np.int64(1))
        cond = b.op("Less", r, b.op("Reshape", b.op("Add", r, np.int64(1)), [-1, 1]))
        B1 = b.op("Unsqueeze", b.op("Gather", b.op("Shape", x), np.int64(0), axis=0), [0])
    causal = b.op("Where", cond, 0.0, full)
    shp4 = b.op("Concat", B1, [1], S1, S1, axis=0)
    c4 = b.op("Expand", b.op("Unsqueeze", causal, [0, 1]), shp4)
    if dynamo:
        m4 = b.op("Expand", b.op("Unsqueeze", mask, [1, 2]), shp4)
        inv = b.op("Sub", 1.0, b.op("Cast", m4, to=TensorProto.FLOAT))
        p4 = b.op("Where", b.op("Cast", inv, to=TensorProto.BOOL), F32_MIN, inv)
    else:
        p4 = b.op("Expand", pad_bias(b, mask, F32_MIN), shp4)
    s = b.op("Add", s, b.op("Add", c4, p4))
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        qh = (r_heads(r_lin(x, P, "q")) * np.float32(D ** -0.5)).astype(np.float32)
        k, v = r_heads(r_lin(x, P, "k")), r_heads(r_lin(x, P, "v"))
        s = (qh @ k.transpose(0, 1, 3, 2)).astype(np.float32)
        S = x.shape[1]
        c = np.where(r_tril(S), np.float32(0), np.float32(F32_MIN)).astype(np.float32)
        comb = add32(c[None, None], r_pad(attention_mask, F32_MIN))
        return [r_out(P, r_softmax(add32(s, comb)), v)]
    if dynamo:
        return finish(b, "causal_bart_dynamo", y, 18, syms=("s18", "s41")), P, ref, feeds_sets()
    return finish(b, "causal_bart", y, 14), P, ref, feeds_sets()


def causal_trilu(k=1):
    """torch.triu(full([S, S], -inf), 1) added before the scale, and a
    boolean padding mask as Where(mask, 0, -inf): a padded row's first
    queries see only -inf, NaN as the graph gives."""
    P = params(3)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    S1 = b.op("Unsqueeze", seq_len(b, x), [0])
    full = b.op("ConstantOfShape", b.op("Concat", S1, S1, axis=0),
                value=numpy_helper.from_array(np.array([NEG_INF], np.float32)))
    tri = b.op("Trilu", full, np.int64(k), upper=1)
    s = b.op("Mul", b.op("Add", b.op("MatMul", q, kt), tri), float(D ** -0.5))
    mb = b.op("Cast", b.op("Unsqueeze", mask, [1, 2]), to=TensorProto.BOOL)
    s = b.op("Add", s, b.op("Where", mb, 0.0, NEG_INF))
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        s, v = r_scores(P, x)
        S = x.shape[1]
        tri = np.where(r_tril(S, k - 1), np.float32(0), np.float32(NEG_INF)).astype(np.float32)
        s = (add32(s, tri) * np.float32(D ** -0.5)).astype(np.float32)
        pm = np.where(attention_mask[:, None, None, :] != 0, np.float32(0), np.float32(NEG_INF))
        return [r_out(P, r_softmax(add32(s, pm.astype(np.float32))), v)]
    name = "causal_trilu" if k == 1 else "nearmiss_trilu_k%d" % k
    return finish(b, name, y, 17), P, ref, feeds_sets()


def nearmiss_cross_causal():
    """A k <= q Where over cross-attention scores (queries from x, keys
    from a longer memory): the edge the kernel knows is k <= q + Sk - Sq,
    so this must not fuse."""
    P = params(4)
    b = Builder(P)
    x, mem, mask = "x", "memory", "attention_mask"
    q, kt, v = qkv(b, x, mem)
    s = b.op("Div", b.op("MatMul", q, kt), float(math.sqrt(D)))
    rq = b.op("Unsqueeze", b.op("Range", np.int64(0), seq_len(b, x), np.int64(1)), [1])
    rk = b.op("Range", np.int64(0), seq_len(b, mem), np.int64(1))
    cond = b.op("LessOrEqual", rk, rq)
    s = b.op("Where", cond, s, F32_MIN)
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, memory, attention_mask):
        s, v = r_scores(P, x, memory)
        s = (s / np.float32(math.sqrt(D))).astype(np.float32)
        Sq, Sk = x.shape[1], memory.shape[1]
        cond = np.arange(Sk)[None, :] <= np.arange(Sq)[:, None]
        s = np.where(cond, s, np.float32(F32_MIN)).astype(np.float32)
        return [r_out(P, r_softmax(s), v)]
    return finish(b, "nearmiss_cross_causal", y, 14, mem=True), P, ref, feeds_sets(mem=True)


def past_kv(causal=True):
    """A decoder step with a KV cache (GPT-2 with past, TorchScript): K, V =
    Concat(past, new) along S of [B, H, S, D] (also the present outputs),
    Sq = S != Sk = P + S; causal: Where(k <= q + P, scores, min) with the
    query positions Range(P, P + S) (P read by Shape/Gather from the past);
    causal="buffer": GPT-2's sliced causal buffer instead (gpt2_buffer),
    rows Sk - Sq .. Sk of the constant."""
    P_ = params(5)
    b = Builder(P_)
    x, mask, pk, pv = "x", "attention_mask", "past_key", "past_value"
    q = heads(b, lin(b, x, "q"))
    kc = b.op("Concat", pk, heads(b, lin(b, x, "k")), axis=2)
    vc = b.op("Concat", pv, heads(b, lin(b, x, "v")), axis=2)
    s = b.op("Div", b.op("MatMul", q, b.op("Transpose", kc, perm=[0, 1, 3, 2])),
             float(math.sqrt(D)))
    if causal == "buffer":
        # GPT-2's causal buffer sliced (gpt2_buffer) with Sk = P + S
        P_["bias"] = np.tril(np.ones((64, 64), np.uint8)).reshape(1, 1, 64, 64)
        ql = b.op("Gather", b.op("Shape", q), np.int64(-2), axis=0)
        kl = b.op("Gather", b.op("Shape", kc), np.int64(-2), axis=0)
        kl1 = b.op("Unsqueeze", kl, [0])
        starts = b.op("Concat", b.op("Unsqueeze", b.op("Sub", kl, ql), [0]), [0], axis=0)
        cm = b.op("Slice", b.p("bias"), starts, b.op("Concat", kl1, kl1, axis=0), [2, 3])
        s = b.op("Where", b.op("Cast", cm, to=TensorProto.BOOL), s, F32_MIN)
    elif causal:
        past = b.op("Gather", b.op("Shape", pk), np.int64(2), axis=0)
        tot = b.op("Add", past, seq_len(b, x))
        rq = b.op("Unsqueeze", b.op("Range", past, tot, np.int64(1)), [1])
        rk = b.op("Range", np.int64(0), tot, np.int64(1))
        cond = b.op("Unsqueeze", b.op("LessOrEqual", rk, rq), [0, 1])
        s = b.op("Where", cond, s, F32_MIN)
    s = b.op("Add", s, pad_bias(b, mask, F32_MIN))
    y = merge(b, b.op("Softmax", s, axis=-1), vc)
    b.outputs(y, kc, vc)
    hs = ["batch", H, "past", D]
    hso = ["batch", H, "total", D]
    m = b.model({True: "past_kv", False: "past_kv_nocausal"}.get(causal, "gpt2_buffer_past"),
                [("x", TensorProto.FLOAT, ["batch", "seq", W]),
                 ("past_key", TensorProto.FLOAT, hs), ("past_value", TensorProto.FLOAT, hs),
                 ("attention_mask", TensorProto.INT64, ["batch", "total"])],
                [("y", TensorProto.FLOAT, ["batch", "seq", W]),
                 ("present_key", TensorProto.FLOAT, hso),
                 ("present_value", TensorProto.FLOAT, hso)], 14)

    def ref(P, x, past_key, past_value, attention_mask):
        q = r_heads(r_lin(x, P, "q"))
        k = np.concatenate([past_key, r_heads(r_lin(x, P, "k"))], axis=2)
        v = np.concatenate([past_value, r_heads(r_lin(x, P, "v"))], axis=2)
        s = ((q @ k.transpose(0, 1, 3, 2)).astype(np.float32) /
             np.float32(math.sqrt(D))).astype(np.float32)
        Sq, Sk = x.shape[1], k.shape[2]
        if causal:
            cond = np.arange(Sk)[None, :] <= np.arange(Sk - Sq, Sk)[:, None]
            s = np.where(cond, s, np.float32(F32_MIN)).astype(np.float32)
        s = add32(s, r_pad(attention_mask, F32_MIN))
        return [r_out(P, r_softmax(s), v), k, v]

    rng = np.random.default_rng(9)
    sets = []
    for B, S, Pl, pad in ((2, 3, 4, 2), (1, 1, 5, 0)):
        mk = np.ones((B, Pl + S), np.int64)
        if B > 1:
            mk[1, :pad] = 0
        sets.append({"x": rng.normal(0, 1, (B, S, W)).astype(np.float32),
                     "past_key": rng.normal(0, 1, (B, H, Pl, D)).astype(np.float32),
                     "past_value": rng.normal(0, 1, (B, H, Pl, D)).astype(np.float32),
                     "attention_mask": mk})
    return m, P_, ref, sets


def sdpa(guard=True, dynamo=False):
    """scaled_dot_product_attention as exported: Q and K^T each scaled by
    1/sqrt(sqrt(d)), K^T as Reshape -> Transpose(0,2,1) -> Reshape over a
    3-D [B*H, S, D] view, the boolean mask as Where(m, 0, -inf), the IsNaN
    guard.  Data set 0's second row is fully padded: every score row is
    -inf, NaN probabilities, 0 after the guard (NaN without it).  dynamo:
    the math form of the dynamo exporter (torchlib, opset 18, dims s18/s41,
    no guard): the scale sqrt(1 / sqrt(D)) computed from Shape(q)[-1], K^T's
    shapes sliced from Shape(k)."""
    P = params(6)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, k, v = heads(b, lin(b, x, "q")), heads(b, lin(b, x, "k")), heads(b, lin(b, x, "v"))
    sc = float(1.0 / math.sqrt(math.sqrt(D)))
    B1 = b.op("Unsqueeze", b.op("Gather", b.op("Shape", x), np.int64(0), axis=0), [0])
    S1 = b.op("Unsqueeze", seq_len(b, x), [0])
    if dynamo:
        ks = b.op("Shape", k)
        last = b.op("Slice", ks, [-1], [2 ** 63 - 1])
        second = b.op("Slice", ks, [-2], [-1])
        first = b.op("Slice", ks, [0], [-2])
        k3 = b.op("Reshape", k, b.op("Concat", [-1], second, last, axis=0))
        kt = b.op("Reshape", b.op("Transpose", k3, perm=[0, 2, 1]),
                  b.op("Concat", first, last, second, axis=0))
        emb = b.op("Cast", b.op("Shape", q, start=-1), to=TensorProto.FLOAT)
        sq = b.op("Sqrt", b.op("Div", 1.0, b.op("Sqrt", emb)))
        s = b.op("MatMul", b.op("Mul", q, sq), b.op("Mul", kt, sq))
    else:
        k3 = b.op("Reshape", k, b.op("Concat", [-1], S1, [D], axis=0))
        kt = b.op("Reshape", b.op("Transpose", k3, perm=[0, 2, 1]),
                  b.op("Concat", B1, [H], [D], S1, axis=0))
        s = b.op("MatMul", b.op("Mul", q, sc), b.op("Mul", kt, sc))
    mb = b.op("Cast", b.op("Unsqueeze", mask, [1, 2]), to=TensorProto.BOOL)
    s = b.op("Add", s, b.op("Where", mb, 0.0, NEG_INF))
    p = b.op("Softmax", s, axis=-1)
    if guard:
        p = b.op("Where", b.op("IsNaN", p), 0.0, p)
    y = merge(b, p, v)

    def ref(P, x, attention_mask):
        q, k, v = (r_heads(r_lin(x, P, t)) for t in ("q", "k", "v"))
        s = ((q * np.float32(sc)) @ (k.transpose(0, 1, 3, 2) * np.float32(sc))).astype(np.float32)
        pm = np.where(attention_mask[:, None, None, :] != 0, np.float32(0), np.float32(NEG_INF))
        p = r_softmax(add32(s, pm.astype(np.float32)))
        if guard:
            p = np.where(np.isnan(p), np.float32(0), p)
        return [r_out(P, p, v)]
    sets = feeds_sets()
    sets[0]["attention_mask"][1, :] = 0
    if dynamo:
        return finish(b, "sdpa_dynamo", y, 18, syms=("s18", "s41")), P, ref, sets
    return finish(b, "sdpa" if guard else "sdpa_noguard", y, 17), P, ref, sets


def keras_einsum():
    """Keras MultiHeadAttention through tf2onnx: Einsum projections
    abc,cde->abde into [B, S, H, D], the query scaled, key-major scores
    aecd,abcd->acbe (the einsum pass makes them Transpose(MatMul(Kh, Q^T))),
    an additive padding mask, context acbe,aecd->abcd, output
    abcd,cde->abe."""
    P = params(7)
    P3 = dict(P)
    for t in ("q", "k", "v"):
        P3[t + ".w3"] = P[t + ".w"].reshape(W, H, D)
        P3[t + ".b3"] = P[t + ".b"].reshape(H, D)
    P3["o.w3"] = P["o.w"].reshape(H, D, W)
    b = Builder(P3)
    x, mask = "x", "attention_mask"

    def proj(t):
        return b.op("Add", b.op("Einsum", x, b.p(t + ".w3"), equation="abc,cde->abde"),
                    b.p(t + ".b3"))
    q = b.op("Mul", proj("q"), float(1.0 / math.sqrt(D)))
    k, v = proj("k"), proj("v")
    s = b.op("Einsum", k, q, equation="aecd,abcd->acbe")
    s = b.op("Add", s, pad_bias(b, mask, -1e9))
    p = b.op("Softmax", s, axis=-1)
    c = b.op("Einsum", p, v, equation="acbe,aecd->abcd")
    y = b.op("Add", b.op("Einsum", c, b.p("o.w3"), equation="abcd,cde->abe"), b.p("o.b"))

    def ref(P, x, attention_mask):
        q, k, v = (r_heads(r_lin(x, P, t)) for t in ("q", "k", "v"))
        q = (q * np.float32(1.0 / math.sqrt(D))).astype(np.float32)
        s = add32((q @ k.transpose(0, 1, 3, 2)).astype(np.float32), r_pad(attention_mask, -1e9))
        return [r_out(P, r_softmax(s), v)]
    return finish(b, "keras_einsum", y, 14), P, ref, feeds_sets()


def fairseq(fill=NEG_INF):
    """fairseq MultiheadAttention (TorchScript), time-major: x [S, B, W];
    q scaled, heads viewed [S, B*H, D] and transposed to [B*H, S, D];
    scores [B*H, Sq, Sk] reshaped to [B, H, Sq, Sk] around
    masked_fill(key_padding_mask, fill), Softmax over axis 2 of the 3-D
    scores, context transposed back to [Sq, B*H, D] and reshaped to
    [Sq, B, W].  A fill that is not -inf (or the float minimum) is a near
    miss: replacing a score is not adding a bias."""
    P = params(8)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    B = b.op("Unsqueeze", b.op("Gather", b.op("Shape", x), np.int64(1), axis=0), [0])
    BH = b.op("Mul", B, [H])

    def view(t):
        return b.op("Transpose", b.op("Reshape", t, b.op("Concat", [-1], BH, [D], axis=0)),
                    perm=[1, 0, 2])
    q = view(b.op("Mul", lin(b, x, "q"), float(D ** -0.5)))
    k, v = view(lin(b, x, "k")), view(lin(b, x, "v"))
    s = b.op("MatMul", q, b.op("Transpose", k, perm=[0, 2, 1]))
    Sq = b.op("Unsqueeze", b.op("Gather", b.op("Shape", x), np.int64(0), axis=0), [0])
    s4 = b.op("Reshape", s, b.op("Concat", B, [H], Sq, Sq, axis=0))
    kpm = b.op("Unsqueeze", b.op("Equal", mask, np.int64(0)), [1, 2])
    s4 = b.op("Where", kpm, fill, s4)
    s = b.op("Reshape", s4, b.op("Concat", BH, Sq, Sq, axis=0))
    p = b.op("Softmax", s, axis=2)
    c = b.op("Transpose", b.op("MatMul", p, v), perm=[1, 0, 2])
    y = lin(b, b.op("Reshape", c, b.op("Concat", Sq, B, [W], axis=0)), "o")
    b.outputs(y)
    m = b.model("fairseq" if fill == NEG_INF else "nearmiss_fairseq_fill",
                [("x", TensorProto.FLOAT, ["seq", "batch", W]),
                 ("attention_mask", TensorProto.INT64, ["batch", "seq"])],
                [("y", TensorProto.FLOAT, ["seq", "batch", W])], 14)

    def ref(P, x, attention_mask):
        xb = x.transpose(1, 0, 2)
        q = (r_heads(r_lin(xb, P, "q")) * np.float32(D ** -0.5)).astype(np.float32)
        k, v = r_heads(r_lin(xb, P, "k")), r_heads(r_lin(xb, P, "v"))
        s = (q @ k.transpose(0, 1, 3, 2)).astype(np.float32)
        s = np.where(attention_mask[:, None, None, :] == 0, np.float32(fill), s)
        return [r_out(P, r_softmax(s.astype(np.float32)), v).transpose(1, 0, 2)]
    sets = feeds_sets()
    for f in sets:
        f["x"] = np.ascontiguousarray(f["x"].transpose(1, 0, 2))
    return m, P, ref, sets


def sdpa_causal():
    """scaled_dot_product_attention(is_causal=True) as the dynamo exporter
    decomposes it: ones([L, S], bool).tril() negated into Where(., -inf,
    0), added to the scaled scores, then the IsNaN guard."""
    P = params(10)
    b = Builder(P)
    x = "x"
    q, kt, v = qkv(b, x)
    S1 = b.op("Unsqueeze", seq_len(b, x), [0])
    ones = b.op("ConstantOfShape", b.op("Concat", S1, S1, axis=0),
                value=numpy_helper.from_array(np.array([True])))
    tri = b.op("Trilu", ones, upper=0)
    bias = b.op("Where", b.op("Not", tri), NEG_INF, 0.0)
    s = b.op("Add", b.op("Mul", b.op("MatMul", q, kt), float(D ** -0.5)), bias)
    p = b.op("Softmax", s, axis=-1)
    y = merge(b, b.op("Where", b.op("IsNaN", p), 0.0, p), v)

    def ref(P, x, attention_mask):
        s, v = r_scores(P, x)
        s = (s * np.float32(D ** -0.5)).astype(np.float32)
        bias = np.where(r_tril(x.shape[1]), np.float32(0), np.float32(NEG_INF))
        p = r_softmax(add32(s, bias.astype(np.float32)))
        return [r_out(P, np.where(np.isnan(p), np.float32(0), p), v)]
    return finish(b, "sdpa_causal", y, 17), P, ref, feeds_sets()


def gqa(kind):
    """Grouped-query attention, 4 query heads over 2 K/V heads of size 4,
    K and V repeated to 4 heads with Tile as exporters write repeat_kv:
    "tile": Reshape(Tile(Unsqueeze(kv, 2), [1, 1, 2, 1, 1]), [B, 4, S, 4]);
    "tile_seq": Reshape(Tile(kv, [1, 1, 2, 1]), [B, 4, S, 4]) (the tiled
    sequence axis is [2, S] in flat order: both give head h = kv head
    h / 2, repeat_interleave, the kernel's kv_num_heads); "tile_block":
    Tile(kv, [1, 2, 1, 1]) (torch's Tensor.repeat: head h = kv head h % 2,
    kv_num_heads with kv_tiled); "concat": Concat(kv, kv) on the heads
    (also h % 2).  Near miss "mixed": K tiled as a block, V repeated head by
    head: no one mapping reads both, nothing fuses."""
    HQ, HKV, DH = 4, 2, 4
    rng = np.random.default_rng(11)
    P = {"q.w": rng.normal(0, 0.3, (W, HQ * DH)).astype(np.float32),
         "q.b": rng.normal(0, 0.1, HQ * DH).astype(np.float32),
         "o.w": rng.normal(0, 0.3, (HQ * DH, W)).astype(np.float32),
         "o.b": rng.normal(0, 0.1, W).astype(np.float32)}
    for t in ("k", "v"):
        P[t + ".w"] = rng.normal(0, 0.3, (W, HKV * DH)).astype(np.float32)
        P[t + ".b"] = rng.normal(0, 0.1, HKV * DH).astype(np.float32)
    b = Builder(P)
    x, mask = "x", "attention_mask"

    def split(t, h):
        return b.op("Transpose", b.op("Reshape", t, [0, 0, h, DH]), perm=[0, 2, 1, 3])
    B1 = b.op("Unsqueeze", b.op("Gather", b.op("Shape", x), np.int64(0), axis=0), [0])
    S1 = b.op("Unsqueeze", seq_len(b, x), [0])
    shp = b.op("Concat", B1, [HQ], S1, [DH], axis=0)

    def repeat(t):
        if kind == "tile":
            return b.op("Reshape", b.op("Tile", b.op("Unsqueeze", t, [2]), [1, 1, HQ // HKV, 1, 1]),
                        shp)
        if kind == "tile_seq":
            return b.op("Reshape", b.op("Tile", t, [1, 1, HQ // HKV, 1]), shp)
        if kind == "concat":
            return b.op("Concat", t, t, axis=1)
        return b.op("Tile", t, [1, HQ // HKV, 1, 1])
    q = split(lin(b, x, "q"), HQ)
    k, v = repeat(split(lin(b, x, "k"), HKV)), repeat(split(lin(b, x, "v"), HKV))
    if kind == "mixed":
        v = b.op("Reshape", b.op("Tile", b.op("Unsqueeze", split(lin(b, x, "v"), HKV), [2]),
                                 [1, 1, HQ // HKV, 1, 1]), shp)
    s = b.op("Mul", b.op("MatMul", q, b.op("Transpose", k, perm=[0, 1, 3, 2])), float(DH ** -0.5))
    s = b.op("Add", s, pad_bias(b, mask, F32_MIN))
    c = b.op("Transpose", b.op("MatMul", b.op("Softmax", s, axis=-1), v), perm=[0, 2, 1, 3])
    y = lin(b, b.op("Reshape", c, [0, 0, HQ * DH]), "o")

    def ref(P, x, attention_mask):
        def hs(t, h):
            B_, S_, _ = t.shape
            return t.reshape(B_, S_, h, DH).transpose(0, 2, 1, 3)
        q = hs(r_lin(x, P, "q"), HQ)
        k, v = hs(r_lin(x, P, "k"), HKV), hs(r_lin(x, P, "v"), HKV)
        if kind in ("tile_block", "concat"):
            k, v = np.tile(k, (1, 2, 1, 1)), np.tile(v, (1, 2, 1, 1))
        elif kind == "mixed":
            k, v = np.tile(k, (1, 2, 1, 1)), np.repeat(v, 2, axis=1)
        else:
            k, v = np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1)
        s = ((q @ k.transpose(0, 1, 3, 2)).astype(np.float32) *
             np.float32(DH ** -0.5)).astype(np.float32)
        p = r_softmax(add32(s, r_pad(attention_mask, F32_MIN)))
        B_, _, S_, _ = p.shape
        c = (p @ v).astype(np.float32).transpose(0, 2, 1, 3).reshape(B_, S_, HQ * DH)
        return [r_lin(c, P, "o")]
    name = "gqa_" + kind if kind != "mixed" else "nearmiss_gqa_mixed"
    return finish(b, name, y, 14), P, ref, feeds_sets()


def split_scale(kind="sqrt"):
    """Scales before the 4-D head splits: "sqrt" Q and K each times
    d**-0.25 as [B, S, W] projections (SDPA's split scale, then Reshape/
    Transpose); "q" Q alone times d**-0.5 (the exporters' q_proj(x) *
    scaling).  Both Muls join the attention's scale (no Mul left).  Near
    miss "vector": Q times a [W] vector (not one number): kept as a Mul,
    the attention reads its product."""
    P = params(12)
    P["qscale"] = np.linspace(0.2, 0.5, W).astype(np.float32)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    c = {"sqrt": D ** -0.25, "q": D ** -0.5, "vector": None}[kind]
    qp, kp = lin(b, x, "q"), lin(b, x, "k")
    if kind == "vector":
        qp = b.op("Mul", qp, b.p("qscale"))
    else:
        qp = b.op("Mul", qp, float(c))
    if kind == "sqrt":
        kp = b.op("Mul", float(c), kp)
    q, k, v = heads(b, qp), heads(b, kp), heads(b, lin(b, x, "v"))
    s = b.op("MatMul", q, b.op("Transpose", k, perm=[0, 1, 3, 2]))
    if kind == "vector":
        s = b.op("Mul", s, float(D ** -0.5))
    s = b.op("Add", s, pad_bias(b, mask, F32_MIN))
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        qp, kp = r_lin(x, P, "q"), r_lin(x, P, "k")
        if kind == "vector":
            qp = (qp * P["qscale"]).astype(np.float32)
        else:
            qp = (qp * np.float32(c)).astype(np.float32)
        if kind == "sqrt":
            kp = (kp * np.float32(c)).astype(np.float32)
        s = (r_heads(qp) @ r_heads(kp).transpose(0, 1, 3, 2)).astype(np.float32)
        if kind == "vector":
            s = (s * np.float32(D ** -0.5)).astype(np.float32)
        p = r_softmax(add32(s, r_pad(attention_mask, F32_MIN)))
        return [r_out(P, p, r_heads(r_lin(x, P, "v")))]
    name = "nearmiss_split_scale_vector" if kind == "vector" else "split_scale_" + kind
    return finish(b, name, y, 14), P, ref, feeds_sets()


def gpt2_buffer(wrong=None, dynamo=False, fill=F32_MIN):
    """GPT-2 as the TorchScript exporter writes it: a constant causal
    buffer bias = tril(ones(N, N)) viewed [1, 1, N, N] (uint8, N = 64 max
    positions), Slice(bias, [Sk - Sq, 0], [Sk, Sk], axes [2, 3]) with the
    bounds from Shape/Gather/Sub of the key and query lengths, Cast to
    bool, Where(mask, scores / sqrt(d), finfo.min), then the padding bias.
    Near misses: wrong="entry" (one entry above the diagonal set: not
    lower-triangular), wrong="offset" (the rows sliced one further: Sk - Sq +
    1 to Sk + 1, so k <= q + 1).  dynamo: as the dynamo exporter writes it
    (opset 18, dims s18/s41): a bool buffer, the lengths as Shape(start,
    end) slices, one Slice per axis, no Cast.  fill: the Where's (with
    -10000, older transformers' masked_bias, a non-causal buffer is no mask
    either; with the float minimum it is the bias Where(c, 0, min))."""
    N = 64
    P = params(12)
    buf = np.tril(np.ones((N, N), np.uint8))
    if wrong == "entry":
        buf[3, 5] = 1
    P["bias"] = buf.reshape(1, 1, N, N).astype(bool if dynamo else np.uint8)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    s = b.op("Div", b.op("MatMul", q, kt), float(math.sqrt(D)))
    k = b.op("Transpose", kt, perm=[0, 1, 3, 2])
    if dynamo:
        ql = b.op("Shape", q, start=2, end=3)
        kl = b.op("Shape", k, start=2, end=3)
        rows = b.op("Slice", b.p("bias"), b.op("Sub", kl, ql), kl, [2], [1])
        s = b.op("Where", b.op("Slice", rows, [0], kl, [3], [1]), s, fill)
        s = b.op("Add", s, pad_bias(b, mask, F32_MIN))
        y = merge(b, b.op("Softmax", s, axis=-1), v)
    else:
        ql = b.op("Gather", b.op("Shape", q), np.int64(-2), axis=0)
        kl = b.op("Gather", b.op("Shape", k), np.int64(-2), axis=0)
        start, end = b.op("Sub", kl, ql), kl
        if wrong == "offset":
            start, end = b.op("Add", start, np.int64(1)), b.op("Add", kl, np.int64(1))
        kl1 = b.op("Unsqueeze", kl, [0])
        starts = b.op("Concat", b.op("Unsqueeze", start, [0]), [0], axis=0)
        ends = b.op("Concat", b.op("Unsqueeze", end, [0]), kl1, axis=0)
        cm = b.op("Slice", b.p("bias"), starts, ends, [2, 3], [1, 1])
        s = b.op("Where", b.op("Cast", cm, to=TensorProto.BOOL), s, fill)
        s = b.op("Add", s, pad_bias(b, mask, F32_MIN))
        y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        s, v = r_scores(P, x)
        s = (s / np.float32(math.sqrt(D))).astype(np.float32)
        S = x.shape[1]
        off = 1 if wrong == "offset" else 0
        cm = P["bias"][0, 0, off:S + off, :S] != 0
        s = np.where(cm, s, np.float32(fill)).astype(np.float32)
        s = add32(s, r_pad(attention_mask, F32_MIN))
        return [r_out(P, r_softmax(s), v)]
    name = "gpt2_buffer" if wrong is None else "nearmiss_gpt2_buffer_" + wrong
    if wrong == "entry" and fill == F32_MIN:
        name = "gpt2_buffer_entry_bias"
    if dynamo:
        return finish(b, name + "_dynamo", y, 18, syms=("s18", "s41")), P, ref, feeds_sets()
    return finish(b, name, y, 14), P, ref, feeds_sets()


def pad_sets():
    """feeds_sets with set 0's second row fully padded (every key masked)
    and set 1's first 2 keys padded."""
    sets = feeds_sets()
    sets[0]["attention_mask"][1, :] = 0
    sets[1]["attention_mask"][0, :2] = 0
    return sets


def distilbert(fill=F32_MIN, spelling="equal"):
    """DistilBERT's padding mask as a Where around the scores (q divided by
    sqrt(d) before Q K^T): spelling "equal" as the TorchScript exporter
    writes (mask == 0).view(B, 1, 1, Sk).expand_as(scores) masked_fill'ed
    (Equal, Reshape to a Concat of Shape/Gather, Expand to Shape(scores));
    "not_cast": ~mask.bool() unsqueezed; "equal4": (mask[:, None, None, :]
    == 0) (the kernel's mask squeezed from it); "one_minus": (1 - mask) cast to
    bool; "keep": Where(mask.bool(), scores, fill) as the dynamo exporter
    writes it (opset 18, dims s18/s41).  A fill that is not -inf or the
    float minimum (-10000, or a positive one) fuses in replace mode
    (mask_replace): the kernel sets a masked key's score to the fill, so a
    fully padded row (data set 0, row 1) is uniform as in the graph."""
    P = params(13)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    s = b.op("MatMul", b.op("Div", q, float(math.sqrt(D))), kt)
    if spelling == "equal":
        B1 = b.op("Unsqueeze", b.op("Gather", b.op("Shape", x), np.int64(0), axis=0), [0])
        S1 = b.op("Unsqueeze", seq_len(b, x), [0])
        cond = b.op("Reshape", b.op("Equal", mask, np.int64(0)), b.op("Concat", B1, [1], [1], S1, axis=0))
        s = b.op("Where", b.op("Expand", cond, b.op("Shape", s)), fill, s)
    elif spelling in ("not_cast", "other_batch"):
        cond = b.op("Not", b.op("Cast", b.op("Unsqueeze", mask, [1, 2]), to=TensorProto.BOOL))
        s = b.op("Where", cond, fill, s)
    elif spelling == "equal4":
        cond = b.op("Equal", b.op("Unsqueeze", mask, [1, 2]), np.int64(0))
        s = b.op("Where", cond, fill, s)
    elif spelling == "one_minus":
        inv = b.op("Sub", 1.0, b.op("Cast", mask, to=TensorProto.FLOAT))
        cond = b.op("Unsqueeze", b.op("Cast", inv, to=TensorProto.BOOL), [1, 2])
        s = b.op("Where", cond, fill, s)
    else:
        cond = b.op("Unsqueeze", b.op("Cast", mask, to=TensorProto.BOOL), [1, 2])
        s = b.op("Where", cond, s, fill)
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        q, k, v = (r_heads(r_lin(x, P, t)) for t in ("q", "k", "v"))
        q = (q / np.float32(math.sqrt(D))).astype(np.float32)
        s = (q @ k.transpose(0, 1, 3, 2)).astype(np.float32)
        s = np.where(attention_mask[:, None, None, :] == 0, np.float32(fill), s).astype(np.float32)
        return [r_out(P, r_softmax(s), v)]
    name = "distilbert_" + spelling
    if spelling == "other_batch":
        # the mask declared with a batch of its own: the Where's result is
        # [max(batch, mbatch), ..]; the kernel's mask is the condition
        # expanded to [batch, Sk] (set 2: a mask of batch 1 broadcast)
        m, P, ref, sets = finish(b, "distilbert_other_batch", y, 14), P, ref, pad_sets()
        m.graph.input[1].type.tensor_type.shape.dim[0].dim_param = "mbatch"
        s2 = {"x": sets[0]["x"], "attention_mask": sets[0]["attention_mask"][:1].copy()}
        s2["attention_mask"][0, 5:] = 0
        return m, P, ref, sets + [s2]
    if fill != F32_MIN:
        name = "distilbert_fill_%s" % ("pos" if fill > 0 else "%g" % -fill)
    if spelling == "keep":
        return finish(b, name, y, 18, syms=("s18", "s41")), P, ref, pad_sets()
    return finish(b, name, y, 14), P, ref, pad_sets()


def ort_gpt2_past(wrong=None):
    """ONNX Runtime's GPT-2 attention with past (its gpt2 model generator):
    K, V = Concat(past, new) along -2, the causal mask a uint8 [1, 1, N, N]
    lower-triangular table sliced rows Sk - Sq .. Sk, columns 0 .. Sk with
    the lengths read by Shape -> Slice -> Squeeze, Cast to bool and applied
    with Where(c, scores, -10000), plus the additive f32 padding mask
    (1 - mask) * -10000.  Data set 0's second row is fully padded (its
    causal keys get -20000, in the graph and in the kernel).  wrong="entry":
    the table has one entry above the diagonal set, a near miss (not
    causal, and -10000 is no fill a Where mask can be added with)."""
    N = 32
    P_ = params(14)
    buf = np.tril(np.ones((N, N), np.uint8))
    if wrong == "entry":
        buf[2, 4] = 1
    P_["undir_mask"] = buf.reshape(1, 1, N, N)
    b = Builder(P_)
    x, mask, pk, pv = "x", "input_mask", "past_key", "past_value"
    q = heads(b, lin(b, x, "q"))
    kc = b.op("Concat", pk, heads(b, lin(b, x, "k")), axis=-2)
    vc = b.op("Concat", pv, heads(b, lin(b, x, "v")), axis=-2)
    s = b.op("Div", b.op("MatMul", q, b.op("Transpose", kc, perm=[0, 1, 3, 2])),
             float(math.sqrt(D)))

    def length(t):
        return b.op("Squeeze", b.op("Slice", b.op("Shape", t), [-2], [-1], [0]), [0])
    ql, kl = length(q), length(kc)
    kl1 = b.op("Unsqueeze", kl, [0])
    rows = b.op("Slice", b.p("undir_mask"), b.op("Unsqueeze", b.op("Sub", kl, ql), [0]), kl1,
                [2], [1])
    cm = b.op("Cast", b.op("Slice", rows, [0], kl1, [3], [1]), to=TensorProto.BOOL)
    s = b.op("Where", cm, s, -10000.0)
    m4 = b.op("Unsqueeze", b.op("Reshape", mask, [0, -1]), [1, 2])
    s = b.op("Add", s, b.op("Mul", b.op("Sub", 1.0, m4), -10000.0))
    y = merge(b, b.op("Softmax", s, axis=3), vc)
    b.outputs(y, kc, vc)
    hs = ["batch", H, "past", D]
    hso = ["batch", H, "total", D]
    name = "ort_gpt2_past" if wrong is None else "nearmiss_ort_gpt2_past_" + wrong
    m = b.model(name,
                [("x", TensorProto.FLOAT, ["batch", "seq", W]),
                 ("past_key", TensorProto.FLOAT, hs), ("past_value", TensorProto.FLOAT, hs),
                 ("input_mask", TensorProto.FLOAT, ["batch", "total"])],
                [("y", TensorProto.FLOAT, ["batch", "seq", W]),
                 ("present_key", TensorProto.FLOAT, hso),
                 ("present_value", TensorProto.FLOAT, hso)], 14)

    def ref(P, x, past_key, past_value, input_mask):
        q = r_heads(r_lin(x, P, "q"))
        k = np.concatenate([past_key, r_heads(r_lin(x, P, "k"))], axis=2)
        v = np.concatenate([past_value, r_heads(r_lin(x, P, "v"))], axis=2)
        s = ((q @ k.transpose(0, 1, 3, 2)).astype(np.float32) /
             np.float32(math.sqrt(D))).astype(np.float32)
        Sq, Sk = x.shape[1], k.shape[2]
        cond = P["undir_mask"][0, 0, Sk - Sq:Sk, :Sk] != 0
        s = np.where(cond, s, np.float32(-10000)).astype(np.float32)
        pad = ((np.float32(1) - input_mask[:, None, None, :]) * np.float32(-10000)).astype(np.float32)
        return [r_out(P, r_softmax(add32(s, pad)), v), k, v]

    rng = np.random.default_rng(9)
    sets = []
    for B, S, Pl, pad in ((2, 3, 4, -1), (2, 1, 5, 2)):
        mk = np.ones((B, Pl + S), np.float32)
        mk[1, :] = 0 if pad < 0 else 1
        mk[1, :max(pad, 0)] = 0
        sets.append({"x": rng.normal(0, 1, (B, S, W)).astype(np.float32),
                     "past_key": rng.normal(0, 1, (B, H, Pl, D)).astype(np.float32),
                     "past_value": rng.normal(0, 1, (B, H, Pl, D)).astype(np.float32),
                     "input_mask": mk})
    return m, P_, ref, sets


def hf_mask(style="eager", fill=None, reverse=False):
    """transformers' masking_utils (sdpa_mask for torch < 2.6, as the
    TorchScript exporter sees it): causal = kv_arange[None, :] <=
    cache_position[:, None] expanded to [B, 1, Sq, Sk], And the padding mask
    mask.bool()[:, None, None, :]; then style "eager": eager_mask's
    Where(m, 0, finfo.min), sliced [..., :Sk] and added to the scaled
    scores; "sdpa_dynamo": the dynamo exporter (opset 18, dims s18/s41,
    the iotas vmap'ed to [1, 1, Sq, 1] / [1, 1, 1, Sk], lengths as
    Shape(start, end)) with SDPA's bool mask as Where(m, 0, -inf) added;
    "where": Where(m, scores, fill) around the scores; "vmap" / "vmap_where"
    (torch >= 2.6, and_masks under vmap, dynamo): m = And(And(true,
    q >= k), padding) with the iotas reshaped to [1, 1, Sq, 1] / [1, 1, 1,
    Sk], added as Where(m, 0, fill) / around the scores (reverse: k >= q, a
    near miss that stays a bias).  Data set 0's second
    row is left-padded: its first 3 queries see no key (uniform with the
    float minimum, NaN with -inf).  With -inf the kernel's causal flag and
    key-padding mask replace m; with the float minimum m stays whole (the
    bias Where(m, 0, min)).  A -10000 fill around the scores is a near
    miss (it replaces the scores, and m is no key-padding condition)."""
    P = params(15)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    s = b.op("Mul", b.op("MatMul", q, kt), float(D ** -0.5))
    dyn = style in ("sdpa_dynamo", "vmap", "vmap_where")
    if style.startswith("vmap"):
        # torch >= 2.6: and_masks under vmap, from a true scalar:
        # And(And(true, kv <= q), pad), no Expand
        S1 = b.op("Shape", x, start=1, end=2)
        S = b.op("Squeeze", S1, [0])
        cp = b.op("Reshape", b.op("Range", np.int64(0), S, np.int64(1)), [1, 1, -1, 1])
        kv = b.op("Reshape", b.op("Range", np.int64(0), S, np.int64(1)), [1, 1, 1, -1])
        causal = b.op("GreaterOrEqual", cp, kv) if not reverse else b.op("GreaterOrEqual", kv, cp)
        c4 = b.op("And", np.array(True), causal)
    elif dyn:
        S1 = b.op("Shape", x, start=1, end=2)
        B1 = b.op("Shape", x, start=0, end=1)
        S = b.op("Squeeze", S1, [0])
        cp = b.op("Reshape", b.op("Range", np.int64(0), S, np.int64(1)), [1, 1, -1, 1])
        kv = b.op("Reshape", b.op("Range", np.int64(0), S, np.int64(1)), [1, 1, 1, -1])
        c4 = b.op("Expand", b.op("LessOrEqual", kv, cp), b.op("Concat", B1, [1], S1, S1, axis=0))
    else:
        S = seq_len(b, x)
        S1 = b.op("Unsqueeze", S, [0])
        B1 = b.op("Unsqueeze", b.op("Gather", b.op("Shape", x), np.int64(0), axis=0), [0])
        cp = b.op("Range", np.int64(0), S, np.int64(1))
        kv = b.op("Range", np.int64(0), S, np.int64(1))
        causal = b.op("LessOrEqual", b.op("Unsqueeze", kv, [0]), b.op("Unsqueeze", cp, [1]))
        c4 = b.op("Expand", b.op("Unsqueeze", causal, [0, 1]), b.op("Concat", B1, [1], [1], [1], axis=0))
    m = b.op("And", c4, b.op("Unsqueeze", b.op("Cast", mask, to=TensorProto.BOOL), [1, 2]))
    if style == "eager":
        fill = F32_MIN
        bias = b.op("Where", m, 0.0, fill)
        sk = b.op("Unsqueeze", b.op("Gather", b.op("Shape", kt), np.int64(3), axis=0), [0])
        s = b.op("Add", s, b.op("Slice", bias, [0], sk, [3], [1]))
    elif dyn and style != "vmap_where":
        fill = NEG_INF if fill is None else fill
        s = b.op("Add", s, b.op("Where", m, 0.0, fill))
    else:
        fill = F32_MIN if fill is None else fill
        s = b.op("Where", m, s, fill)
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        s, v = r_scores(P, x)
        s = (s * np.float32(D ** -0.5)).astype(np.float32)
        tri = r_tril(x.shape[1]) if not reverse else r_tril(x.shape[1]).T
        mm = tri[None, None] & (attention_mask[:, None, None, :] != 0)
        if style in ("where", "vmap_where"):
            s = np.where(mm, s, np.float32(fill)).astype(np.float32)
        else:
            s = add32(s, np.where(mm, np.float32(0), np.float32(fill)).astype(np.float32))
        return [r_out(P, r_softmax(s), v)]
    name = "hf_mask_" + style
    if style == "where" and fill == NEG_INF:
        name = "hf_mask_where_inf"
    elif fill is not None and style == "where" and fill != F32_MIN:
        name = "nearmiss_hf_mask_where_fill"
    elif style.startswith("vmap"):
        name += "_min" if fill == F32_MIN else ""
        name = "nearmiss_" + name + "_reversed" if reverse else name
    if dyn:
        return finish(b, name, y, 18, syms=("s18", "s41")), P, ref, feeds_sets()
    return finish(b, name, y, 14), P, ref, feeds_sets()


def key_bias_pad_sets():
    """Data sets of key_bias_and_pad (attn_data.varied_pad_sets: every batch
    row padded differently, one set with batch == sequence) with a per-key
    bias key_bias [B, S] ~ N(0, 1)."""
    return attn_data.varied_pad_sets(41, W, key_bias=True)


def key_bias_and_pad(dynamo=False):
    """A batch-major (layout 0) attention whose Where(And(causal, pad),
    scores, -inf) mask (transformers' and_masks) cannot become the kernel's
    key-padding mask input: a per-key bias input key_bias [Bk, S] (a batch
    symbol of its own) is added to the scaled scores, and the padding
    condition pad = And(mask.bool(), key_bias > -inf) is [max(B, Bk),
    S], so the scores and pad have batch max(B, Bk), not K's B.  The rewrite
    keeps the causal flag and falls back to the bias Where(pad, 0, -inf)
    with pad, the [B, Sk] source of the And, unsqueezed to [B, 1, 1, Sk]
    (AttnMatch.wcond_bk; read as [Sq, Sk] it broke batch != sequence and
    was silently wrong when batch == sequence).  TorchScript (opset 14,
    Gather of Shape, Range/LessOrEqual) or dynamo (opset 18, Shape
    start/end, the iotas reshaped to [1, 1, Sq, 1] / [1, 1, 1, Sk])."""
    P = params(42)
    b = Builder(P)
    x, mask, kb = "x", "attention_mask", "key_bias"
    q, kt, v = qkv(b, x)
    s = b.op("Mul", b.op("MatMul", q, kt), float(D ** -0.5))
    s = b.op("Add", s, b.op("Unsqueeze", kb, [1, 2]))
    if dynamo:
        S = b.op("Squeeze", b.op("Shape", x, start=1, end=2), [0])
        qi = b.op("Reshape", b.op("Range", np.int64(0), S, np.int64(1)), [1, 1, -1, 1])
        ki = b.op("Reshape", b.op("Range", np.int64(0), S, np.int64(1)), [1, 1, 1, -1])
        causal = b.op("GreaterOrEqual", qi, ki)
    else:
        S = seq_len(b, x)
        qi = b.op("Unsqueeze", b.op("Range", np.int64(0), S, np.int64(1)), [1])
        ki = b.op("Unsqueeze", b.op("Range", np.int64(0), S, np.int64(1)), [0])
        causal = b.op("Unsqueeze", b.op("LessOrEqual", ki, qi), [0, 1])
    pad = b.op("And", b.op("Cast", mask, to=TensorProto.BOOL), b.op("Greater", kb, NEG_INF))
    keep = b.op("And", causal, b.op("Unsqueeze", pad, [1, 2]))
    y = merge(b, b.op("Softmax", b.op("Where", keep, s, NEG_INF), axis=-1), v)

    def ref(P, x, attention_mask, key_bias):
        s, v = r_scores(P, x)
        s = add32((s * np.float32(D ** -0.5)).astype(np.float32), key_bias[:, None, None, :])
        mm = r_tril(x.shape[1])[None, None] & (attention_mask[:, None, None, :] != 0) & \
            (key_bias > np.float32(NEG_INF))[:, None, None, :]
        s = np.where(mm, s, np.float32(NEG_INF)).astype(np.float32)
        return [r_out(P, r_softmax(s), v)]
    name = "key_bias_and_pad" + ("_dynamo" if dynamo else "")
    bn, sn, kbn = ("s18", "s41", "s77") if dynamo else ("batch", "seq", "kbatch")
    b.outputs(y)
    m = b.model(name, [("x", TensorProto.FLOAT, [bn, sn, W]),
                       ("attention_mask", TensorProto.INT64, [bn, sn]),
                       ("key_bias", TensorProto.FLOAT, [kbn, sn])],
                [("y", TensorProto.FLOAT, [bn, sn, W])], 18 if dynamo else 14)
    return m, P, ref, key_bias_pad_sets()


def conformer(fill=NEG_INF, post="same", own_batch=False):
    """experimental-experiment's conformer attention (the foreign graph
    attention_pattern_1_std_static, dynamo): a bool key mask [B, S, S] per
    query, Unsqueeze(1), Cast to int64, Equal 0 -> c; Where(c, fill, scores
    * scale + pos_bias) with a [1, H, S, S] position bias input below it;
    Softmax; then Where(c, 0, p), the mask applied again so a query that
    sees no key gets 0 instead of NaN.  Near misses: post="reversed"
    (Where(c, p, 0): zeroes the kept keys), fill the float minimum (a fully
    masked row is uniform, the Where makes it 0: no NaN guard), own_batch
    (the mask's batch a symbol of its own: the Where broadcasts the scores
    with a mask that is not a key-padding mask)."""
    P = params(16)
    b = Builder(P)
    x, km, pb = "x", "key_mask", "pos_bias"
    q, kt, v = qkv(b, x)
    c = b.op("Equal", b.op("Cast", b.op("Unsqueeze", km, [1]), to=TensorProto.INT64), np.int64(0))
    s = b.op("Add", b.op("Mul", b.op("MatMul", q, kt), float(D ** -0.5)), pb)
    s = b.op("Where", c, fill, s)
    p = b.op("Softmax", s, axis=-1)
    p = b.op("Where", c, 0.0, p) if post == "same" else b.op("Where", c, p, 0.0)
    y = merge(b, p, v)
    b.outputs(y)
    name = "conformer" if post == "same" and fill == NEG_INF else \
        "nearmiss_conformer_" + ("reversed" if post != "same" else "fill_min")
    name = "nearmiss_conformer_other_batch" if own_batch else name
    m = b.model(name, [("x", TensorProto.FLOAT, ["s0", "s1", W]),
                       ("key_mask", TensorProto.BOOL, ["s9" if own_batch else "s0", "s1", "s1"]),
                       ("pos_bias", TensorProto.FLOAT, [1, H, "s1", "s1"])],
                [("y", TensorProto.FLOAT, ["s0", "s1", W])], 18)

    def ref(P, x, key_mask, pos_bias):
        s, v = r_scores(P, x)
        s = add32((s * np.float32(D ** -0.5)).astype(np.float32), pos_bias)
        c = ~key_mask[:, None]
        s = np.where(c, np.float32(fill), s).astype(np.float32)
        p = r_softmax(s)
        p = np.where(c, np.float32(0), p) if post == "same" else np.where(c, p, np.float32(0))
        return [r_out(P, p.astype(np.float32), v)]

    rng = np.random.default_rng(17)
    sets = []
    for B, S in ((2, 7), (1, 5)):
        km = rng.integers(0, 4, (B, S, S)) > 0
        if B > 1:
            km[1, 4, :] = False   # a query that sees no key
        sets.append({"x": rng.normal(0, 1, (B, S, W)).astype(np.float32), "key_mask": km,
                     "pos_bias": rng.normal(0, 1, (1, H, S, S)).astype(np.float32)})
    return m, P, ref, sets


def finite_fill(kind):
    """Where masks with a finite fill around the scores (the fused
    attention's replace mode, mask_replace): a masked key's score becomes
    the fill, so data set 0's fully padded row is uniform over its keys.
    kind "masked_fill_1e9": annotated-transformer's scores / sqrt(d) then
    masked_fill(mask[:, None, None, :] == 0, -1e9); "where_1e4":
    torch.where(mask.bool()[:, None, None, :], scores, -1e4) after the
    scale; "fill_65504": masked_fill with -65504 (half-precision safe);
    "before_scale": the Where of -1e4 on the raw Q K^T, then * d^-0.5 (the
    kernel's fill is -1e4 * d^-0.5); "bias_below": a per-head bias added
    below the Where; "pad_causal": the padding Where then a causal Where,
    both -1e9; "causal_pad": a causal Where of -inf below a -1e4 padding
    Where.  Near misses: "pad_causal_other" (padding -1e4 below a causal
    Where of -inf: the kernel cannot replace in that order), "bias_above"
    (a per-head bias added above the Where), "fill_tensor" (the fill is
    -1000 * the sequence length, computed, not a constant), "fill_per_head" (a [1, H, 1, 1]
    constant fill)."""
    P = params(21)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    hb = np.array([0.5, -1.25], np.float32).reshape(1, H, 1, 1)
    fills = {"masked_fill_1e9": -1e9, "fill_65504": -65504.0, "pad_causal": -1e9}
    fill = fills.get(kind, -1e4)
    pad = b.op("Equal", b.op("Unsqueeze", mask, [1, 2]), np.int64(0))
    s = b.op("MatMul", q, kt)
    if kind != "before_scale":
        s = b.op("Div", s, float(math.sqrt(D)))
    if kind == "bias_below":
        s = b.op("Add", s, hb)
    if kind == "causal_pad":
        S = seq_len(b, x)
        r = b.op("Range", np.int64(0), S, np.int64(1))
        tri = b.op("LessOrEqual", b.op("Unsqueeze", r, [0]), b.op("Unsqueeze", r, [1]))
        s = b.op("Where", b.op("Unsqueeze", tri, [0, 1]), s, NEG_INF)
    if kind == "where_1e4":
        s = b.op("Where", b.op("Not", pad), s, fill)
    elif kind == "fill_tensor":
        s = b.op("Where", pad, b.op("Mul", b.op("Cast", seq_len(b, x), to=TensorProto.FLOAT), -1e3), s)
    elif kind == "fill_per_head":
        s = b.op("Where", pad, np.array([-1e4, -1e9], np.float32).reshape(1, H, 1, 1), s)
    else:
        s = b.op("Where", pad, fill, s)
    if kind == "before_scale":
        s = b.op("Mul", s, float(D ** -0.5))
    if kind == "bias_above":
        s = b.op("Add", s, hb)
    cfill = {"pad_causal": -1e9, "pad_causal_other": NEG_INF}.get(kind)
    if cfill is not None:
        S = seq_len(b, x)
        r = b.op("Range", np.int64(0), S, np.int64(1))
        tri = b.op("LessOrEqual", b.op("Unsqueeze", r, [0]), b.op("Unsqueeze", r, [1]))
        s = b.op("Where", b.op("Unsqueeze", tri, [0, 1]), s, cfill)
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        s, v = r_scores(P, x)
        if kind != "before_scale":
            s = (s / np.float32(math.sqrt(D))).astype(np.float32)
        if kind == "bias_below":
            s = add32(s, hb)
        tri = r_tril(x.shape[1])[None, None]
        if kind == "causal_pad":
            s = np.where(tri, s, np.float32(NEG_INF)).astype(np.float32)
        padded = attention_mask[:, None, None, :] == 0
        if kind == "fill_tensor":
            f = np.float32(-1e3 * x.shape[1])
        elif kind == "fill_per_head":
            f = np.array([-1e4, -1e9], np.float32).reshape(1, H, 1, 1)
        else:
            f = np.float32(fill)
        s = np.where(padded, f, s).astype(np.float32)
        if kind == "before_scale":
            s = (s * np.float32(D ** -0.5)).astype(np.float32)
        if kind == "bias_above":
            s = add32(s, hb)
        if cfill is not None:
            s = np.where(tri, s, np.float32(cfill)).astype(np.float32)
        return [r_out(P, r_softmax(s), v)]
    near = kind in ("pad_causal_other", "bias_above", "fill_tensor", "fill_per_head")
    name = ("nearmiss_fill_" if near else "fill_") + kind
    return finish(b, name, y, 14), P, ref, pad_sets()


def two_pad_wheres():
    """Two key-padding Wheres of -inf around the scores: mask == 0, then
    (mask * key index) == 2 (key 2 where it is not padded) above it.  The
    kernel takes one key mask: the upper one becomes the bias Where (kiln
    once kept only the upper one's mask, dropping the lower)."""
    P = params(22)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    q, kt, v = qkv(b, x)
    s = b.op("Div", b.op("MatMul", q, kt), float(math.sqrt(D)))
    s = b.op("Where", b.op("Equal", b.op("Unsqueeze", mask, [1, 2]), np.int64(0)), NEG_INF, s)
    kidx = b.op("Range", np.int64(0), seq_len(b, x), np.int64(1))
    two = b.op("Equal", b.op("Mul", mask, kidx), np.int64(2))
    s = b.op("Where", b.op("Unsqueeze", two, [1, 2]), NEG_INF, s)
    y = merge(b, b.op("Softmax", s, axis=-1), v)

    def ref(P, x, attention_mask):
        s, v = r_scores(P, x)
        s = (s / np.float32(math.sqrt(D))).astype(np.float32)
        s = np.where(attention_mask[:, None, None, :] == 0, np.float32(NEG_INF), s)
        k2 = (attention_mask * np.arange(x.shape[1])[None, :]) == 2
        s = np.where(k2[:, None, None, :], np.float32(NEG_INF), s).astype(np.float32)
        return [r_out(P, r_softmax(s), v)]
    sets = feeds_sets()
    return finish(b, "two_pad_wheres", y, 14), P, ref, sets


# name -> (builder, attention fused, of them causal[, more]); more:
# "kv": how many fused attentions read grouped K/V heads (kv_num_heads),
# "mask": how many take a key-padding mask input,
# "left": "OP N", N plain OP nodes left at -O2 (a scale absorbed or kept),
# "explain": text `--explain=attention` must print (a near miss's reason),
# "replace": how many replace the masked scores (mask_replace = 1)
FORMS = {
    "fill_masked_fill_1e9": (lambda: finite_fill("masked_fill_1e9"), 1, 0, {"mask": 1, "replace": 1}),
    "fill_where_1e4": (lambda: finite_fill("where_1e4"), 1, 0, {"mask": 1, "replace": 1}),
    "fill_fill_65504": (lambda: finite_fill("fill_65504"), 1, 0, {"mask": 1, "replace": 1}),
    "fill_before_scale": (lambda: finite_fill("before_scale"), 1, 0, {"mask": 1, "replace": 1,
                                                                       "left": "Mul 0"}),
    "fill_bias_below": (lambda: finite_fill("bias_below"), 1, 0, {"mask": 1, "replace": 1}),
    "fill_pad_causal": (lambda: finite_fill("pad_causal"), 1, 1, {"mask": 1, "replace": 1}),
    "fill_causal_pad": (lambda: finite_fill("causal_pad"), 1, 1, {"mask": 1, "replace": 1}),
    "two_pad_wheres": (two_pad_wheres, 1, 0, {"mask": 1}),
    "nearmiss_fill_pad_causal_other": (lambda: finite_fill("pad_causal_other"), 0, 0, {
        "explain": "a mask Where below the causal Where of another fill"}),
    "nearmiss_fill_bias_above": (lambda: finite_fill("bias_above"), 0, 0, {
        "explain": "Where around the scores of fill -10000 (it replaces the masked scores): a "
                   "bias is added above it"}),
    "nearmiss_fill_fill_tensor": (lambda: finite_fill("fill_tensor"), 0, 0, {
        "explain": "Where around the scores: neither branch is a constant fill"}),
    "nearmiss_fill_fill_per_head": (lambda: finite_fill("fill_per_head"), 0, 0, {
        "explain": "Where around the scores: neither branch is a constant fill"}),
    "const_causal": (const_causal, 1, 1),
    "const_causal_4d_masked": (lambda: const_causal(-1e9, rank=4, masked=True), 1, 1),
    "const_causal_min": (lambda: const_causal(F32_MIN, masked=True), 1, 1),
    "const_causal_inf": (lambda: const_causal(NEG_INF, rank=4), 1, 1),
    "nearmiss_const_causal_flip": (lambda: const_causal(flip=True), 0, 0, {
        "explain": "not causal (the constant mask is not a causal band: an entry differs); its "
                   "fill -10000 replaces scores"}),
    "causal_gpt2": (causal_gpt2, 1, 1),
    "causal_bart": (causal_bart, 1, 1),
    "causal_bart_dynamo": (lambda: causal_bart(dynamo=True), 1, 1),
    "causal_trilu": (causal_trilu, 1, 1),
    "nearmiss_window": (lambda: rename(causal_gpt2(1), "nearmiss_window"), 0, 0, {
        "explain": "at Where '/Where_35': Where around the scores: the condition keeps "
                   "k - q <= 1, not the causal"}),
    "nearmiss_trilu_k2": (lambda: causal_trilu(2), 1, 0),
    "nearmiss_cross_causal": (nearmiss_cross_causal, 0, 0, {
        "explain": "at Where '/Where_35': Where around the scores: the condition keeps "
                   "k - q <= 0, not the causal"}),
    "past_kv": (past_kv, 1, 1),
    "past_kv_nocausal": (lambda: past_kv(False), 1, 0),
    "sdpa": (sdpa, 1, 0),
    "sdpa_noguard": (lambda: sdpa(False), 1, 0),
    "sdpa_dynamo": (lambda: sdpa(False, dynamo=True), 1, 0),
    "keras_einsum": (keras_einsum, 1, 0),
    "sdpa_causal": (sdpa_causal, 1, 1),
    "fairseq": (fairseq, 1, 0),
    "nearmiss_fairseq_fill": (lambda: fairseq(-1e4), 0, 0, {
        "explain": "at Where '/Where_45': time-major 3-D scores: masked_fill with -10000, not "
                   "-inf"}),
    "gqa_tile": (lambda: gqa("tile"), 1, 0, {"kv": 1}),
    "gqa_tile_seq": (lambda: gqa("tile_seq"), 1, 0, {"kv": 1}),
    "gqa_tile_block": (lambda: gqa("tile_block"), 1, 0, {"kv": 1}),
    "gqa_concat": (lambda: gqa("concat"), 1, 0, {"kv": 1}),
    "nearmiss_gqa_mixed": (lambda: gqa("mixed"), 0, 0, {
        "explain": "K's 2 heads are repeated as a whole (tiled), V's head by head"}),
    "split_scale_sqrt": (lambda: split_scale("sqrt"), 1, 0, {"left": "Mul 0"}),
    "split_scale_q": (lambda: split_scale("q"), 1, 0, {"left": "Mul 0"}),
    "nearmiss_split_scale_vector": (lambda: split_scale("vector"), 1, 0, {"left": "Mul 1"}),
    "gpt2_buffer": (gpt2_buffer, 1, 1),
    "gpt2_buffer_past": (lambda: past_kv("buffer"), 1, 1),
    "gpt2_buffer_dynamo": (lambda: gpt2_buffer(dynamo=True), 1, 1),
    "gpt2_buffer_entry_bias": (lambda: gpt2_buffer("entry"), 1, 0),
    "nearmiss_gpt2_buffer_entry": (lambda: gpt2_buffer("entry", fill=-1e4), 0, 0, {
        "explain": "at Where '/Where_41': Where around the scores: not causal (the sliced "
                   "buffer is not a band (lower-triangular)"}),
    "distilbert_equal": (distilbert, 1, 0, {"mask": 1}),
    "distilbert_not_cast": (lambda: distilbert(spelling="not_cast"), 1, 0, {"mask": 1}),
    "distilbert_equal4": (lambda: distilbert(spelling="equal4"), 1, 0, {"mask": 1}),
    "distilbert_one_minus": (lambda: distilbert(spelling="one_minus"), 1, 0, {"mask": 1}),
    "distilbert_keep": (lambda: distilbert(spelling="keep"), 1, 0, {"mask": 1}),
    "distilbert_fill_10000": (lambda: distilbert(-1e4), 1, 0, {"mask": 1, "replace": 1}),
    "distilbert_fill_pos": (lambda: distilbert(1e4), 1, 0, {"mask": 1, "replace": 1}),
    "distilbert_other_batch": (lambda: distilbert(spelling="other_batch"), 1, 0, {"mask": 1}),
    "ort_gpt2_past": (ort_gpt2_past, 1, 1, {"mask": 0}),
    "nearmiss_ort_gpt2_past_entry": (lambda: ort_gpt2_past("entry"), 0, 0, {
        "explain": "the condition is not a causal mask: the sliced buffer is not a band "
                   "(lower-triangular): an entry differs"}),
    "hf_mask_eager": (hf_mask, 1, 0, {"mask": 0}),
    "hf_mask_sdpa_dynamo": (lambda: hf_mask("sdpa_dynamo"), 1, 1, {"mask": 1}),
    "hf_mask_where": (lambda: hf_mask("where"), 1, 0, {"mask": 0}),
    "hf_mask_where_inf": (lambda: hf_mask("where", NEG_INF), 1, 1, {"mask": 1}),
    "nearmiss_hf_mask_where_fill": (lambda: hf_mask("where", -1e4), 0, 0, {
        "explain": "its fill -10000 replaces scores: only a [batch, 1, 1, keys] padding "
                   "condition can"}),
    "hf_mask_vmap": (lambda: hf_mask("vmap"), 1, 1, {"mask": 1}),
    "hf_mask_vmap_where": (lambda: hf_mask("vmap_where", NEG_INF), 1, 1, {"mask": 1}),
    "hf_mask_vmap_min": (lambda: hf_mask("vmap", F32_MIN), 1, 0, {"mask": 0}),
    "nearmiss_hf_mask_vmap_reversed": (lambda: hf_mask("vmap", reverse=True), 1, 0, {"mask": 0}),
    "key_bias_and_pad": (key_bias_and_pad, 1, 1, {"mask": 0, "explain": "fused as KlnAttention"}),
    "key_bias_and_pad_dynamo": (lambda: key_bias_and_pad(dynamo=True), 1, 1, {"mask": 0, "explain": "fused as KlnAttention"}),
    "conformer": (conformer, 1, 0),
    "nearmiss_conformer_reversed": (lambda: conformer(post="reversed"), 0, 0, {
        "explain": "the probabilities pass Where(c, 0, p): it zeroes where the mask Where keeps "
                   "the score"}),
    # (refused first for the position bias below a Where of a finite fill:
    # the kernel would add both, finfo.min + finfo.min = -inf)
    "nearmiss_conformer_fill_min": (lambda: conformer(F32_MIN), 0, 0, {
        "explain": "a bias is added below the mask Where of fill -3.40282e+38"}),
    "nearmiss_conformer_other_batch": (lambda: conformer(own_batch=True), 0, 0, {
        "explain": "the condition has a batch of its own and is not a [batch, 1, 1, keys] "
                   "padding mask"}),
    "nearmiss_gpt2_buffer_offset": (lambda: gpt2_buffer("offset"), 0, 0, {
        "explain": "at Where '/Where_45': Where around the scores: the condition is not a "
                   "causal mask: the buffer is not sliced as the causal block"}),
}


def rename(t, name):
    t[0].graph.name = name
    return t


def generate(name, outdir):
    fn, natt, ncausal = FORMS[name][:3]
    more = FORMS[name][3] if len(FORMS[name]) > 3 else {}
    m, P, ref, sets = fn()
    check_graph(m)
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "expect"), "w") as f:
        f.write("attention %d causal %d\n" % (natt, ncausal))
        for key in ("kv", "mask", "replace", "left", "explain"):
            if key in more:
                f.write("%s %s\n" % (key, more[key]))
    refs = []
    for si, feeds in enumerate(sets):
        outs = ref(P, **feeds)
        with np.errstate(invalid="ignore", over="ignore"):
            got = npref.run(m, feeds)
        for o, r, gv in zip(m.graph.output, outs, got):
            same_nan = np.array_equal(np.isnan(gv), np.isnan(r))
            if not same_nan or not close(np.nan_to_num(gv, nan=7.0), np.nan_to_num(r, nan=7.0)):
                sys.exit("attn_forms.py: %s set %d output %s: graph (npref) and numpy "
                         "reference disagree" % (name, si, o.name))
        refs.append(outs)
    case_io.write_case(d, m, sets, refs, np.float32)
    nan = any(np.isnan(np.asarray(r)).any() for outs in refs for r in outs)
    print("%s: %d nodes, opset %d, expect attention %d causal %d%s" %
          (name, len(m.graph.node), m.opset_import[0].version, natt, ncausal,
           ", NaN rows in the reference" if nan else ""))


def main(argv):
    case_io.form_main(argv, FORMS, generate)


if __name__ == "__main__":
    main(sys.argv)
