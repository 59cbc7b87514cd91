"""Attention with its heads folded into the batch (issue 12): 3-D
[B*N, S, D] views of the heads, 3-D scores, Softmax on the last axis, the
context unfolded back, as BART/Whisper eager attention and SDPA's math form
are exported (also with a KV cache); time-major attention (fairseq's
[S, B*N, D] fold, XLNet's [S, B, N, D] split) with a key-padding mask
applied in each way exporters write it; and near misses whose folds are
not the heads they claim.

    /usr/bin/python3 tests/gen/attn_layout_forms.py OUTDIR [NAME...]

writes OUTDIR/NAME/model.onnx, test_data_set_{0,1}/{input,output}_K.pb and
OUTDIR/NAME/expect: "attention A" (A KlnAttention nodes at -O2; a near
miss has A = 0 and keeps its Softmax), then optional lines "layout L" (the
fused op's layout attribute), "packed 1" (it reads Q, K and V from one
packed projection) and "explain TEXT" (`kiln dump -O2
--explain=attention` prints TEXT: why a near miss did not fuse).
tests/scripts/attn_layout_forms.sh checks them.

The references are numpy in float32 written from the math (standard
multi-head attention for the forms that must fuse) or, for a near miss,
from what its graph computes (every graph is also run through npref.py
and must agree with its reference).  Data sets: 0 is batch 2, sequence 7,
row 1 left-padded (its first 3 keys masked); 1 is batch 1, sequence 5;
the time-major padding forms (tm*) have their own (tm_feeds: every row
padded differently, one set with batch == sequence).
"""
import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attn_data  # noqa: E402
import case_io  # noqa: E402
import npref  # noqa: E402
from models import Builder, check_graph, close  # noqa: E402

F32_MIN = float(np.finfo(np.float32).min)
NEG_INF = float("-inf")
W, N = 16, 2            # width, heads
D = W // N              # head size
SCALE = D ** -0.5


def params(seed, k_bias=True):
    return attn_data.params(seed, W, k_bias)


def feeds_sets(time_major=False):
    return attn_data.feeds_sets(9, W, time_major=time_major)


# ---- graph pieces ---------------------------------------------------------

def lin(b, x, t, P):
    y = b.op("MatMul", x, b.p(t + ".w"))
    return b.op("Add", y, b.p(t + ".b")) if t + ".b" in P else y


class Dims:
    """The batch and sequence sizes as 1-D int64 values, written as the
    TorchScript exporter does (Gather of Shape, Unsqueeze) or as the dynamo
    exporter does (Shape with start/end)."""

    def __init__(self, b, x, dynamo, time_major=False):
        bi, si = (1, 0) if time_major else (0, 1)
        if dynamo:
            self.B = b.op("Shape", x, start=bi, end=bi + 1)
            self.S = b.op("Shape", x, start=si, end=si + 1)
        else:
            sh = b.op("Shape", x)
            self.B = b.op("Unsqueeze", b.op("Gather", sh, np.int64(bi), axis=0), [0])
            self.S = b.op("Unsqueeze", b.op("Gather", sh, np.int64(si), axis=0), [0])
        self.BN = b.op("Mul", self.B, [N])


def split_heads(b, t, dm, perm=(0, 2, 1, 3)):
    """_shape(): t.view(bsz, -1, N, D).transpose(1, 2): [B, N, S, D]"""
    return b.op("Transpose", b.op("Reshape", t, b.op("Concat", dm.B, [-1, N, D], axis=0)),
                perm=list(perm))


def fold(b, t4, dm, seq=None):
    """.reshape(bsz * N, -1, D) (proj_shape), or with the length given"""
    return b.op("Reshape", t4, b.op("Concat", dm.BN, [-1] if seq is None else seq, [D], axis=0))


def unfold_merge(b, c, dm):
    """attn_output.view(bsz, N, tgt, D).transpose(1, 2).reshape(bsz, tgt, W)"""
    c4 = b.op("Reshape", c, b.op("Concat", dm.B, [N], dm.S, [D], axis=0))
    c = b.op("Transpose", c4, perm=[0, 2, 1, 3])
    return b.op("Reshape", c, b.op("Concat", dm.B, dm.S, [W], axis=0))


def pad_bias(b, mask):
    """HF's expanded padding mask: (1 - mask[:, None, None, :]) * finfo.min"""
    m = b.op("Cast", b.op("Unsqueeze", mask, [1, 2]), to=TensorProto.FLOAT)
    return b.op("Mul", b.op("Sub", 1.0, m), F32_MIN)


def masked(b, s, dm, mask):
    """attn_weights.view(bsz, N, tgt, src) + mask, .view(bsz * N, tgt, src)"""
    s4 = b.op("Reshape", s, b.op("Concat", dm.B, [N], dm.S, dm.S, axis=0))
    s4 = b.op("Add", s4, pad_bias(b, mask))
    return b.op("Reshape", s4, b.op("Concat", dm.BN, dm.S, dm.S, axis=0))


def finish(b, name, y, opset, syms, time_major=False, mask=True):
    b.outputs(y)
    bn, sn = syms
    xd = [sn, bn, W] if time_major else [bn, sn, W]
    ins = [("x", TensorProto.FLOAT, xd)]
    if mask:
        ins.append(("attention_mask", TensorProto.INT64, [bn, sn]))
    return b.model(name, ins, [("y", TensorProto.FLOAT, xd)], opset)


# ---- numpy references (float32) -----------------------------------------

def r_lin(x, P, t):
    y = x @ P[t + ".w"]
    return (y + P[t + ".b"] if t + ".b" in P else y).astype(np.float32)


def r_heads(t):
    B, S, _ = t.shape
    return t.reshape(B, S, N, D).transpose(0, 2, 1, 3)


def r_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def r_pad(mask):
    return ((np.float32(1) - mask[:, None, None, :].astype(np.float32)) *
            np.float32(F32_MIN)).astype(np.float32)


def r_mha(P, x, mask=None, qs=SCALE, ks=1.0):
    """multi-head attention on x [B, S, W]: Q scaled by qs, K by ks"""
    q = (r_heads(r_lin(x, P, "q")) * np.float32(qs)).astype(np.float32)
    k = (r_heads(r_lin(x, P, "k")) * np.float32(ks)).astype(np.float32)
    v = r_heads(r_lin(x, P, "v"))
    s = (q @ k.transpose(0, 1, 3, 2)).astype(np.float32)
    if mask is not None:
        s = (s + r_pad(mask)).astype(np.float32)
    B, _, S, _ = q.shape
    c = (r_softmax(s) @ v).transpose(0, 2, 1, 3).reshape(B, S, W)
    return r_lin(c, P, "o")


# ---- the forms ------------------------------------------------------------

def bart_eager(dynamo=False, k_bias=True, mask=True):
    """BART/MBART/Whisper eager attention (transformers' BartAttention):
    q_proj(x) * scaling, _shape() into [B, N, S, D], every side folded to
    [B*N, S, D] (proj_shape), bmm(q, k.transpose(1, 2)), the padding mask
    added on the scores viewed [B, N, Sq, Sk], softmax(dim=-1), bmm with v,
    unfolded back.  TorchScript (opset 14) or dynamo (opset 18, s18/s41)
    style; k_bias=False, mask=False is Whisper's encoder (k_proj has no
    bias)."""
    P = params(21, k_bias)
    b = Builder(P)
    x = "x"
    dm = Dims(b, x, dynamo)
    q = b.op("Mul", lin(b, x, "q", P), float(SCALE))
    q3 = fold(b, split_heads(b, q, dm), dm, dm.S if dynamo else None)
    k3 = fold(b, split_heads(b, lin(b, x, "k", P), dm), dm)
    v3 = fold(b, split_heads(b, lin(b, x, "v", P), dm), dm)
    s = b.op("MatMul", q3, b.op("Transpose", k3, perm=[0, 2, 1]))
    if mask:
        s = masked(b, s, dm, "attention_mask")
    p = b.op("Softmax", s, axis=-1)
    y = lin(b, unfold_merge(b, b.op("MatMul", p, v3), dm), "o", P)

    def ref(P, x, attention_mask=None):
        return [r_mha(P, x, attention_mask)]
    name = ("bart_eager" if k_bias else "whisper_encoder") + ("_dynamo" if dynamo else "")
    syms = ("s18", "s41") if dynamo else ("batch", "seq")
    return finish(b, name, y, 18 if dynamo else 14, syms, mask=mask), P, ref, feeds_sets(), {}


def sdpa_3d():
    """SDPA's math form on 3-D views (dynamo, opset 18): the scale split as
    sqrt(scale) on Q (on its [B, N, S, D] heads, before the fold) and on
    K (on its 3-D view, before the transpose); an additive mask."""
    P = params(22)
    b = Builder(P)
    x = "x"
    dm = Dims(b, x, True)
    sq = float(np.sqrt(SCALE))
    q3 = fold(b, b.op("Mul", split_heads(b, lin(b, x, "q", P), dm), sq), dm)
    k3 = b.op("Mul", fold(b, split_heads(b, lin(b, x, "k", P), dm), dm), sq)
    v3 = fold(b, split_heads(b, lin(b, x, "v", P), dm), dm)
    s = masked(b, b.op("MatMul", q3, b.op("Transpose", k3, perm=[0, 2, 1])), dm, "attention_mask")
    p = b.op("Softmax", s, axis=-1)
    y = lin(b, unfold_merge(b, b.op("MatMul", p, v3), dm), "o", P)

    def ref(P, x, attention_mask):
        return [r_mha(P, x, attention_mask, qs=sq, ks=sq)]
    return finish(b, "sdpa_3d_dynamo", y, 18, ("s18", "s41")), P, ref, feeds_sets(), {}


def time_major_fold():
    """Time-major input x [S, B, W] whose heads are split [S, B, N, D],
    transposed (1, 2, 0, 3) to [B, N, S, D] and folded batch-first; the
    context unfolded to [B, N, S, D], transposed (2, 0, 1, 3) back to
    [S, B, N, D] and reshaped [S, B, W]: layout 1 from a batch-first fold."""
    P = params(23)
    b = Builder(P)
    x = "x"
    dm = Dims(b, x, False, time_major=True)

    def heads(t):
        t4 = b.op("Reshape", t, b.op("Concat", [-1], dm.B, [N, D], axis=0))
        return fold(b, b.op("Transpose", t4, perm=[1, 2, 0, 3]), dm)
    q3 = heads(b.op("Mul", lin(b, x, "q", P), float(SCALE)))
    k3, v3 = heads(lin(b, x, "k", P)), heads(lin(b, x, "v", P))
    s = b.op("MatMul", q3, b.op("Transpose", k3, perm=[0, 2, 1]))
    p = b.op("Softmax", s, axis=2)
    c4 = b.op("Reshape", b.op("MatMul", p, v3), b.op("Concat", dm.B, [N], dm.S, [D], axis=0))
    c = b.op("Transpose", c4, perm=[2, 0, 1, 3])
    y = lin(b, b.op("Reshape", c, b.op("Concat", dm.S, dm.B, [W], axis=0)), "o", P)

    def ref(P, x):
        return [r_mha(P, x.transpose(1, 0, 2)).transpose(1, 0, 2)]
    return (finish(b, "time_major_fold", y, 14, ("batch", "seq"), time_major=True, mask=False),
            P, ref, feeds_sets(True), {"layout": 1})


def past_kv_3d():
    """BART's decoder self-attention with a KV cache (TorchScript): K and
    V are Concat(past, new) of [B, N, S, D] heads along the sequence, then
    folded [B*N, P+S, D] with Q's [B*N, S, D]; no mask (Sq != Sk)."""
    P = params(25)
    b = Builder(P)
    x = "x"
    dm = Dims(b, x, False)
    q3 = fold(b, split_heads(b, b.op("Mul", lin(b, x, "q", P), float(SCALE)), dm), dm)
    k3 = fold(b, b.op("Concat", "past_key", split_heads(b, lin(b, x, "k", P), dm), axis=2), dm)
    v3 = fold(b, b.op("Concat", "past_value", split_heads(b, lin(b, x, "v", P), dm), axis=2), dm)
    p = b.op("Softmax", b.op("MatMul", q3, b.op("Transpose", k3, perm=[0, 2, 1])), axis=-1)
    y = lin(b, unfold_merge(b, b.op("MatMul", p, v3), dm), "o", P)
    b.outputs(y)
    m = b.model("past_kv_3d", [("x", TensorProto.FLOAT, ["batch", "seq", W]),
                               ("past_key", TensorProto.FLOAT, ["batch", N, "past", D]),
                               ("past_value", TensorProto.FLOAT, ["batch", N, "past", D])],
                [("y", TensorProto.FLOAT, ["batch", "seq", W])], 14)

    def ref(P, x, past_key, past_value):
        q = (r_heads(r_lin(x, P, "q") * np.float32(SCALE))).astype(np.float32)
        k = np.concatenate([past_key, r_heads(r_lin(x, P, "k"))], axis=2)
        v = np.concatenate([past_value, r_heads(r_lin(x, P, "v"))], axis=2)
        B, _, S, _ = q.shape
        c = (r_softmax((q @ k.transpose(0, 1, 3, 2)).astype(np.float32)) @ v)
        return [r_lin(c.transpose(0, 2, 1, 3).reshape(B, S, W), P, "o")]
    rng = np.random.default_rng(10)
    sets = feeds_sets()
    for f, pl in zip(sets, (3, 4)):
        B = f["x"].shape[0]
        f["past_key"] = rng.normal(0, 1, (B, N, pl, D)).astype(np.float32)
        f["past_value"] = rng.normal(0, 1, (B, N, pl, D)).astype(np.float32)
    return m, P, ref, sets, {}


def near_miss(kind):
    """bart_eager with one fold that is not the heads it claims:
      fold_nb: Q's heads transposed (2, 0, 1, 3) to [N, B, S, D] before the
        fold, so Q's rows are n*B + b while K's and V's are b*N + n (a query
        meets another batch's keys);
      transpose_sh: Q transposed (0, 2, 3, 1), [B, N, D, S], and reshaped
        [B*N, S, D]: head size and sequence mixed;
      merge_nb: the context unfolded as [N, B, S, D] and transposed
        (1, 2, 0, 3): batches and heads mixed in the output."""
    P = params(24)
    b = Builder(P)
    x = "x"
    dm = Dims(b, x, False)
    q = b.op("Mul", lin(b, x, "q", P), float(SCALE))
    if kind == "fold_nb":
        q3 = fold(b, split_heads(b, q, dm, (2, 0, 1, 3)), dm)
    elif kind == "transpose_sh":
        q3 = fold(b, split_heads(b, q, dm, (0, 2, 3, 1)), dm, dm.S)
    else:
        q3 = fold(b, split_heads(b, q, dm), dm)
    k3 = fold(b, split_heads(b, lin(b, x, "k", P), dm), dm)
    v3 = fold(b, split_heads(b, lin(b, x, "v", P), dm), dm)
    s = masked(b, b.op("MatMul", q3, b.op("Transpose", k3, perm=[0, 2, 1])), dm, "attention_mask")
    c = b.op("MatMul", b.op("Softmax", s, axis=-1), v3)
    if kind == "merge_nb":
        c4 = b.op("Reshape", c, b.op("Concat", [N], dm.B, dm.S, [D], axis=0))
        c = b.op("Reshape", b.op("Transpose", c4, perm=[1, 2, 0, 3]),
                 b.op("Concat", dm.B, dm.S, [W], axis=0))
    else:
        c = unfold_merge(b, c, dm)
    y = lin(b, c, "o", P)

    def ref(P, x, attention_mask):
        B, S, _ = x.shape
        q = (r_lin(x, P, "q") * np.float32(SCALE)).astype(np.float32).reshape(B, S, N, D)
        q3 = {"fold_nb": lambda: q.transpose(2, 0, 1, 3),
              "transpose_sh": lambda: q.transpose(0, 2, 3, 1)}.get(
                  kind, lambda: q.transpose(0, 2, 1, 3))().reshape(B * N, S, D)
        k3 = r_heads(r_lin(x, P, "k")).reshape(B * N, S, D)
        v3 = r_heads(r_lin(x, P, "v")).reshape(B * N, S, D)
        s = (q3 @ k3.transpose(0, 2, 1)).astype(np.float32).reshape(B, N, S, S)
        s = (s + r_pad(attention_mask)).astype(np.float32).reshape(B * N, S, S)
        c = (r_softmax(s) @ v3).astype(np.float32)
        if kind == "merge_nb":
            c = c.reshape(N, B, S, D).transpose(1, 2, 0, 3).reshape(B, S, W)
        else:
            c = c.reshape(B, N, S, D).transpose(0, 2, 1, 3).reshape(B, S, W)
        return [r_lin(c, P, "o")]
    return finish(b, "nearmiss_" + kind, y, 14, ("batch", "seq")), P, ref, feeds_sets(), {}


def tm_feeds():
    """Data sets of the time-major padding forms, x [S, B, W]
    (attn_data.varied_pad_sets: every batch row padded differently, one set
    with batch == sequence)."""
    return attn_data.varied_pad_sets(31, W, time_major=True)


def time_major_mask(heads, kind, dynamo=False):
    """Time-major self-attention, x [S, B, W], with a key-padding mask from
    attention_mask [B, S] (1 = keep) on the scores.  heads "3d": fairseq's
    fold, Transpose(Reshape(t, [S, B*N, D]), (1, 0, 2)), 3-D scores (mask
    on the scores viewed [B, N, Sq, Sk], or on the 3-D scores with the
    mask repeated per head), Softmax on axis 2, context Transpose(1, 0, 2)
    and Reshape [S, B, W]; "4d": XLNet's split, Transpose(Reshape(t,
    [S, B, N, D]), (1, 2, 0, 3)), 4-D scores, context Transpose(2, 0, 1, 3)
    and Reshape [S, B, W].  kind: "inf" / "min" masked_fill(pad, -inf /
    finfo.min) with pad [B, 1, 1, Sk] (after the head split); "add" the
    additive (1 - mask)[:, None, None, :] * finfo.min; "fill3d" (3d only)
    masked_fill(pad, -inf) on the 3-D scores, pad repeated to [B*N, 1, Sk]
    (before the head split: a near miss, not fused, with its reason);
    "and_pad" (4d only) Where(And(k <= q, mask),
    scores, -inf), transformers' and_masks(causal, padding): the causal
    flag plus the padding mask as a bias (layout 1 takes no key-padding
    mask input), which kiln once read as [Sq, Sk] instead of [B, 1, 1, Sk]
    (a run-time error, or with batch == sequence a wrong answer).  TorchScript
    (opset 14, Gather of Shape) or dynamo (opset 18, Shape start/end)."""
    P = params(32)
    b = Builder(P)
    x, mask = "x", "attention_mask"
    dm = Dims(b, x, dynamo, time_major=True)

    def view(t):
        if heads == "3d":
            return b.op("Transpose", b.op("Reshape", t, b.op("Concat", [-1], dm.BN, [D], axis=0)),
                        perm=[1, 0, 2])
        return b.op("Transpose", b.op("Reshape", t, b.op("Concat", [-1], dm.B, [N, D], axis=0)),
                    perm=[1, 2, 0, 3])
    q = view(b.op("Mul", lin(b, x, "q", P), float(SCALE)))
    k, v = view(lin(b, x, "k", P)), view(lin(b, x, "v", P))
    kt = b.op("Transpose", k, perm=[0, 2, 1] if heads == "3d" else [0, 1, 3, 2])
    s = b.op("MatMul", q, kt)
    pad4 = b.op("Unsqueeze", b.op("Equal", mask, np.int64(0)), [1, 2])    # [B, 1, 1, Sk]
    fill = {"inf": NEG_INF, "min": F32_MIN}.get(kind, NEG_INF)

    def on4(s4):
        if kind == "add":
            return b.op("Add", s4, pad_bias(b, mask))
        if kind == "and_pad":
            S = b.op("Squeeze", dm.S, [0])
            qi = b.op("Unsqueeze", b.op("Range", np.int64(0), S, np.int64(1)), [1])
            ki = b.op("Unsqueeze", b.op("Range", np.int64(0), S, np.int64(1)), [0])
            keep = b.op("And", b.op("LessOrEqual", ki, qi),
                        b.op("Unsqueeze", b.op("Cast", mask, to=TensorProto.BOOL), [1, 2]))
            return b.op("Where", keep, s4, fill)
        return b.op("Where", pad4, fill, s4)
    if heads == "4d":
        s = on4(s)
        p = b.op("Softmax", s, axis=-1)
        c = b.op("Transpose", b.op("MatMul", p, v), perm=[2, 0, 1, 3])
    else:
        if kind == "fill3d":
            rep = b.op("Reshape", b.op("Expand", pad4, b.op("Concat", dm.B, [N, 1], [1], axis=0)),
                       b.op("Concat", dm.BN, [1], [-1], axis=0))
            s = b.op("Where", rep, fill, s)
        else:
            s4 = b.op("Reshape", s, b.op("Concat", dm.B, [N], dm.S, dm.S, axis=0))
            s = b.op("Reshape", on4(s4), b.op("Concat", dm.BN, dm.S, dm.S, axis=0))
        p = b.op("Softmax", s, axis=2)
        c = b.op("Transpose", b.op("MatMul", p, v), perm=[1, 0, 2])
    y = lin(b, b.op("Reshape", c, b.op("Concat", dm.S, dm.B, [W], axis=0)), "o", P)

    def ref(P, x, attention_mask):
        xb = x.transpose(1, 0, 2)
        B, S, _ = xb.shape
        qh = (r_heads(r_lin(xb, P, "q") * np.float32(SCALE))).astype(np.float32)
        kh, vh = r_heads(r_lin(xb, P, "k")), r_heads(r_lin(xb, P, "v"))
        sc = (qh @ kh.transpose(0, 1, 3, 2)).astype(np.float32)
        padded = attention_mask[:, None, None, :] == 0
        if kind == "add":
            sc = (sc + r_pad(attention_mask)).astype(np.float32)
        elif kind == "and_pad":
            causal = np.tril(np.ones((S, S), bool))[None, None]
            sc = np.where(causal & ~padded, sc, np.float32(fill)).astype(np.float32)
        else:
            sc = np.where(padded, np.float32(fill), sc).astype(np.float32)
        c = (r_softmax(sc) @ vh).transpose(0, 2, 1, 3).reshape(B, S, W)
        return [r_lin(c, P, "o").transpose(1, 0, 2)]
    name = ("nearmiss_" if kind == "fill3d" else "") + "tm%s_%s%s" % (
        heads, kind, "_dynamo" if dynamo else "")
    syms = ("s18", "s41") if dynamo else ("batch", "seq")
    return (finish(b, name, y, 18 if dynamo else 14, syms, time_major=True), P, ref,
            tm_feeds(), {"layout": 1})


# name -> (builder, attention fused[, more]); more: "explain": text
# `--explain=attention` must print (a near miss's reason); "packed": the
# fused op reads one packed Q/K/V projection (Q's scale before its head
# split joined the attention's)
PACKED = {"packed": 1}
FORMS = {
    "bart_eager": (bart_eager, 1, PACKED),
    "bart_eager_dynamo": (lambda: bart_eager(dynamo=True), 1, PACKED),
    "whisper_encoder": (lambda: bart_eager(k_bias=False, mask=False), 1, PACKED),
    "whisper_encoder_dynamo": (lambda: bart_eager(dynamo=True, k_bias=False, mask=False), 1,
                               PACKED),
    "sdpa_3d_dynamo": (sdpa_3d, 1, PACKED),
    "time_major_fold": (time_major_fold, 1, PACKED),
    "past_kv_3d": (past_kv_3d, 1),
    "nearmiss_fold_nb": (lambda: near_miss("fold_nb"), 0, {
        "explain": "Q path (3-D heads): Reshape '/Reshape_23' folds dim 1 of '/Transpose_19' "
                   "into the batch, which is not a static head count"}),
    "nearmiss_transpose_sh": (lambda: near_miss("transpose_sh"), 0, {
        "explain": "Q path (3-D heads): Reshape '/Reshape_22' is not [B, N, S, D] -> "
                   "[B*N, S, D]"}),
    "nearmiss_merge_nb": (lambda: near_miss("merge_nb"), 0, {
        "explain": "the 3-D context: Reshape '/Reshape_64' is not [B*N, Sq, Dv] -> "
                   "[B, N, Sq, Dv] with Q's batch and 2 heads"}),
    "tm3d_inf": (lambda: time_major_mask("3d", "inf", False), 1),
    "tm3d_inf_dynamo": (lambda: time_major_mask("3d", "inf", True), 1),
    "tm3d_min": (lambda: time_major_mask("3d", "min", False), 1),
    "tm3d_min_dynamo": (lambda: time_major_mask("3d", "min", True), 1),
    "tm3d_add": (lambda: time_major_mask("3d", "add", False), 1),
    "tm3d_add_dynamo": (lambda: time_major_mask("3d", "add", True), 1),
    "nearmiss_tm3d_fill3d": (lambda: time_major_mask("3d", "fill3d", False), 0, {
        "explain": "time-major 3-D scores: '/Where_49' masks or biases the 3-D scores "
                   "[B*H, Sq, Sk] themselves, not their [B, H, Sq, Sk] view"}),
    "nearmiss_tm3d_fill3d_dynamo": (lambda: time_major_mask("3d", "fill3d", True), 0, {
        "explain": "time-major 3-D scores: '/Where_42' masks or biases the 3-D scores "
                   "[B*H, Sq, Sk] themselves, not their [B, H, Sq, Sk] view"}),
    "tm4d_inf": (lambda: time_major_mask("4d", "inf", False), 1),
    "tm4d_inf_dynamo": (lambda: time_major_mask("4d", "inf", True), 1),
    "tm4d_min": (lambda: time_major_mask("4d", "min", False), 1),
    "tm4d_min_dynamo": (lambda: time_major_mask("4d", "min", True), 1),
    "tm4d_add": (lambda: time_major_mask("4d", "add", False), 1),
    "tm4d_add_dynamo": (lambda: time_major_mask("4d", "add", True), 1),
    "tm4d_and_pad": (lambda: time_major_mask("4d", "and_pad", False), 1),
    "tm4d_and_pad_dynamo": (lambda: time_major_mask("4d", "and_pad", True), 1),
}


def generate(name, outdir):
    fn, natt = FORMS[name][:2]
    more = FORMS[name][2] if len(FORMS[name]) > 2 else {}
    m, P, ref, sets, info = fn()
    more = dict(more, **info)
    check_graph(m)
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "expect"), "w") as f:
        f.write("attention %d\n" % natt)
        if natt:
            f.write("layout %d\n" % more.get("layout", 0))
        if "explain" in more:
            f.write("explain %s\n" % more["explain"])
        if "packed" in more:
            f.write("packed %d\n" % more["packed"])
    names = [i.name for i in m.graph.input]
    sets = [{k: v for k, v in feeds.items() if k in names} for feeds in sets]
    refs = []
    for si, feeds in enumerate(sets):
        outs = ref(P, **feeds)
        got = npref.run(m, feeds)
        for o, r, gv in zip(m.graph.output, outs, got):
            if not close(gv, r):
                sys.exit("attn_layout_forms.py: %s set %d output %s: graph (npref) and numpy "
                         "reference disagree" % (name, si, o.name))
        refs.append(outs)
    case_io.write_case(d, m, sets, refs, np.float32)
    print("%s: %d nodes, opset %d, expect attention %d" %
          (name, len(m.graph.node), m.opset_import[0].version, natt))


def main(argv):
    case_io.form_main(argv, FORMS, generate)


if __name__ == "__main__":
    main(sys.argv)
