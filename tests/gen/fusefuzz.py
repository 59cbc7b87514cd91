"""Fusion fuzzer: random instances of the forms kiln's -O2 fusions rewrite,
compared with ONNX Runtime.

    /usr/bin/python3 tests/gen/fusefuzz.py OUTDIR --kiln BUILD/kiln \
        [--seed S] [--count N] [--first I] [--only FORM,...] [--keep]
        [--modes O0,O2] [--seconds T]

Case I of seed S (alone: --first I --count 1) is one instance of a form:
  attention  self- or cross-attention (ViLBERT/LXMERT: queries and keys of
             other lengths and widths), heads 1-16, head dims 1-80, seq
             1-200, batch 1-5; Q/K/V from one packed projection (Split or
             Slice) or three; K transposed in one Transpose or two;
             MatMul or Einsum (BHSD or BSHD); scale by Div, Mul, q
             pre-scaled, q and k each by d^-1/4, or none; masks absent, [B,S]
             int64 (Mul by the fill, or Where), float additive [B,1,1,S] or
             [B,1,S,S], causal (Trilu, a sliced buffer, an additive triu),
             a padding Where below a causal Where (same or other fill),
             fills -inf / -1e4 / -1e9 / finfo.min, rows all padded; dims static
             or symbolic
  layernorm  LayerNormalization (opset 17+) or decomposed (ReduceMean, Sub,
             Pow or Mul, Sqrt, Div or Reciprocal), eps inside or outside the
             Sqrt, axes last one or last two, residual Add or not, bias or
             not; also RMSNorm (T5 / LLaMA); near misses: eps outside the
             Sqrt, two axes, the scale before the normalisation LN(x * g)
  gelu       erf (three orders), tanh (Pow or Mul cube), x*sigmoid(1.702x),
             the Gelu op (opset 20), a bias Add or a MatMul+Add before,
             near misses (a wrong constant)
  gemm       MatMul + Add (2-D/3-D/4-D A, bias [N], [1,N], [1,1,N], an
             input [N] unsqueezed; near misses [M,N], [B,1,N] with B > 1,
             scalar), Gemm (transA/transB, alpha, beta, C [N], [1,N], [M,N],
             [M,1], scalar), B a graph input
  embed      word + position + token type Gathers (position ids from
             Range, a Slice of a constant buffer, RoBERTa's CumSum of the
             mask, an input, or constants arange(S) as [1,S], [S] or every
             row of [B,S]; near miss: constant ids that differ per row),
             then a LayerNorm
  dynsym     (only with --only) the embeddings and an attention of a dynamo
             export whose inputs have dim symbols of their own, the head
             split's [B, S] from Shape(token_type_ids) (head count -1) or
             the hidden states; second data set: each symbol resized alone
A case with symbolic dims has a second data set at other sizes (its
inputs cut or cyclically extended along those dims).  Each case is
compiled by kiln at -O0 and at -O2 --stats (which fusions fired is
recorded: the summary gives per form how often the fusion that form is
made for fired, the fire rate per variant, and every fusion that fired),
and, when its key mask is right-padded, at -O2 --remove-padding (mode rp:
data set 0, padded positions not compared); run, and compared with ONNX
Runtime (graph optimizations off, tests/gen/difffuzz_ort.mjs) within
|got - ref| <=
atol * max(1, max|ref|) + rtol * |ref| (per form; NaN equal to NaN).  A
kiln refusal must be one line; a crash, hang, several-line message, run
failure where ONNX Runtime ran, or mismatch is a finding (exit 1), kept
in OUTDIR/cases/NAME for `kiln check`.  Forms kiln documents it does not
fuse (a padding Where below a causal Where of another fill, Gemm
alpha/beta, ...) are near
misses: compared, not counted as "to fuse"; a near miss that names the
fusions it must not take (a bias that is not one row, LN(x * g), ids that
differ per row, ...) and takes one is a finding too.  The summary lists
the cases made to fuse whose fusion did not fire ("not fused:").
Tolerances: an all-masked row under an added -1e4 keeps scores rounded to
ulp(1e4) (atol 5e-4); a LayerNorm of inputs far from 0 loses eps*mean.
"""
import json
import math
import os
import random
import shutil
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from case_io import write_inputs  # noqa: E402
from difffuzz import fuzz_args, ort_run, ort_usable, run_sets, sh  # noqa: E402

F32 = np.float32
F32_MIN = float(np.finfo(np.float32).min)


class G:
    """A small graph builder: op() takes value names or numpy constants."""

    def __init__(self, rng, opset):
        self.rng, self.opset = rng, opset
        self.nodes, self.inits, self.inputs, self.feeds = [], [], [], {}
        self.n = 0
        self.tags = []          # what this instance varies, for the summary
        self.forbid = []        # fusions that must not fire (a near miss): a finding if one does
        self.np = np.random.default_rng(rng.getrandbits(32))

    def name(self, p):
        self.n += 1
        return "%s%d" % (p, self.n)

    def const(self, arr, dt=None):
        arr = np.asarray(arr, dtype=dt)
        if arr.dtype == np.float64:
            arr = arr.astype(F32)
        n = self.name("c")
        self.inits.append(numpy_helper.from_array(arr, n))
        return n

    def inp(self, arr, dims):
        n = self.name("in")
        self.inputs.append((n, arr.dtype, dims))
        self.feeds[n] = arr
        return n

    def op(self, op, *ins, nout=1, **attrs):
        names = [i if isinstance(i, str) else self.const(i) for i in ins]
        outs = [self.name("v") for _ in range(nout)]
        self.nodes.append(helper.make_node(op, names, outs, name=self.name(op.lower() + "_"), **attrs))
        return outs if nout > 1 else outs[0]

    def reduce_mean(self, x, axes):
        if self.opset >= 18:
            return self.op("ReduceMean", x, np.array(axes, np.int64), keepdims=1)
        return self.op("ReduceMean", x, axes=axes, keepdims=1)

    def unsqueeze(self, x, axes):
        if self.opset >= 13:
            return self.op("Unsqueeze", x, np.array(axes, np.int64))
        return self.op("Unsqueeze", x, axes=axes)

    def split(self, x, sizes, axis):
        if self.opset >= 13:
            return self.op("Split", x, np.array(sizes, np.int64), nout=len(sizes), axis=axis)
        return self.op("Split", x, nout=len(sizes), axis=axis, split=sizes)

    def slice(self, x, starts, ends, axes):
        return self.op("Slice", x, np.array(starts, np.int64), ends if isinstance(ends, str) else
                       np.array(ends, np.int64), np.array(axes, np.int64))

    def dim(self, x, k):
        """Shape(x)[k] as a [1] int64 tensor."""
        return self.op("Gather", self.op("Shape", x), np.array([k], np.int64), axis=0)

    def model(self, outputs):
        ins = [helper.make_tensor_value_info(n, {np.dtype(F32): TensorProto.FLOAT,
                                                 np.dtype(np.int64): TensorProto.INT64,
                                                 np.dtype(np.int32): TensorProto.INT32,
                                                 np.dtype(bool): TensorProto.BOOL}[np.dtype(dt)], dims)
               for n, dt, dims in self.inputs]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
        g = helper.make_graph(self.nodes, "fusefuzz", ins, outs, initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)], producer_name="fusefuzz")
        m.ir_version = 8
        return m

    def pick(self, tag, choices, weights=None):
        v = self.rng.choices(choices, weights)[0] if weights else self.rng.choice(choices)
        self.tags.append("%s=%s" % (tag, v))
        return v

    def weight(self, *shape, scale=None):
        fan = shape[0] if shape else 1
        return (self.np.standard_normal(shape) * (scale if scale is not None else 1 / math.sqrt(fan))).astype(F32)


def dims_of(g, shape, names):
    """Input dims: symbolic names where names[k] is a name and the form is
    dynamic (tag dyn), else the static sizes."""
    if not g.dyn:
        return list(shape)
    return [nm if nm else s for s, nm in zip(shape, names)]


# ---------------------------------------------------------------- attention
def attention(g):
    rng = g.rng
    g.dyn = g.pick("dims", ["static", "symbolic"]) == "symbolic"
    cross = g.pick("kind", ["self", "self", "cross"]) == "cross"
    H = rng.choice([1, 2, 3, 4, 8, 12, 16])
    D = rng.choice([1, 2, 3, 5, 7, 8, 16, 31, 32, 64, 80])
    B = rng.randint(1, 5)
    lens = [1, 2, 3, 5, 7, 16, 33, 64, 128, 200]
    Sq = rng.choice(lens)
    Sk = rng.choice(lens) if cross else Sq
    while B * H * Sq * Sk * D > 6e6 and (Sq > 1 or Sk > 1):     # bounded work per case
        Sq, Sk = max(1, Sq // 2), max(1, Sk // 2) if cross else max(1, Sq // 2)
        if not cross:
            Sk = Sq
    W = H * D
    g.heads = H
    Wx = W if W <= 128 and rng.random() < 0.5 else rng.choice([4, 8, 16, 24, 64])
    Wy = rng.choice([4, 8, 12, 32]) if cross else Wx
    g.tags.append("H=%d D=%d B=%d Sq=%d Sk=%d" % (H, D, B, Sq, Sk))
    x = g.inp(g.np.standard_normal((B, Sq, Wx)).astype(F32), dims_of(g, (B, Sq, Wx), ["batch", "seq", None]))
    y = g.inp(g.np.standard_normal((B, Sk, Wy)).astype(F32),
              dims_of(g, (B, Sk, Wy), ["batch", "kseq", None])) if cross else x
    bias = rng.random() < 0.85

    def lin(t, wi, wo):
        r = g.op("MatMul", t, g.weight(wi, wo))
        return g.op("Add", r, g.weight(wo, scale=0.1)) if bias else r

    proj = g.pick("proj", ["packed", "three"]) if not cross else g.pick("proj", ["three", "packed_kv"])
    if proj == "packed":
        qkv = lin(x, Wx, 3 * W)
        if rng.random() < 0.6:
            q, k, v = g.split(qkv, [W, W, W], -1 if rng.random() < 0.5 else 2)
        else:
            q, k, v = (g.slice(qkv, [i * W], [(i + 1) * W], [-1]) for i in range(3))
    elif proj == "packed_kv":
        q = lin(x, Wx, W)
        k, v = g.split(lin(y, Wy, 2 * W), [W, W], -1)
    else:
        q, k, v = lin(x, Wx, W), lin(y, Wy, W), lin(y, Wy, W)
    scale = g.pick("scale", ["div", "mul", "pre_q", "split", "none"], [3, 3, 2, 2, 1])
    s = 1 / math.sqrt(D)
    if scale == "pre_q":
        q = g.op("Mul", q, np.array(s, F32)) if rng.random() < 0.5 else g.op("Div", q, np.array(math.sqrt(D), F32))
    elif scale == "split":
        q = g.op("Mul", q, np.array(D ** -0.25, F32))
        k = g.op("Mul", k, np.array(D ** -0.25, F32))
    shape4 = np.array([0, 0, H, D] if rng.random() < 0.7 else [0, -1, H, D], np.int64)
    qh, kh, vh = (g.op("Reshape", t, shape4) for t in (q, k, v))     # [B, S, H, D]
    form = g.pick("matmul", ["matmul", "matmul"] + (["einsum_bhsd", "einsum_bshd"] if g.opset >= 12 else []))
    if form == "einsum_bshd":
        scores = g.op("Einsum", qh, kh, equation="bqhd,bkhd->bhqk")
    else:
        qt = g.op("Transpose", qh, perm=[0, 2, 1, 3])
        vt = g.op("Transpose", vh, perm=[0, 2, 1, 3])
        if form == "einsum_bhsd":
            scores = g.op("Einsum", qt, g.op("Transpose", kh, perm=[0, 2, 1, 3]), equation="bhqd,bhkd->bhqk")
        elif g.pick("kT", ["one", "two"]) == "one":
            scores = g.op("MatMul", qt, g.op("Transpose", kh, perm=[0, 2, 3, 1]))
        else:
            scores = g.op("MatMul", qt, g.op("Transpose", g.op("Transpose", kh, perm=[0, 2, 1, 3]),
                                              perm=[0, 1, 3, 2]))
    if scale == "div":
        scores = g.op("Div", scores, np.array(math.sqrt(D), F32))
    elif scale == "mul":
        scores = g.op("Mul", scores, np.array(s, F32))
    scores, where_fill = attn_mask(g, scores, x, y, B, Sq, Sk, cross)
    p = g.op("Softmax", scores, axis=g.rng.choice([-1, 3]))
    if form == "einsum_bshd":
        ctx = g.op("Einsum", p, vh, equation="bhqk,bkhd->bqhd")
    else:
        if form == "einsum_bhsd":
            ctx = g.op("Einsum", p, vt, equation="bhqk,bhkd->bhqd")
        else:
            ctx = g.op("MatMul", p, vt)
        ctx = g.op("Transpose", ctx, perm=[0, 2, 1, 3])
    out = g.op("Reshape", ctx, np.array([0, 0, W] if rng.random() < 0.7 else [0, -1, W], np.int64))
    if rng.random() < 0.7:
        out = lin(out, W, Wx)
    # wrong-answer-prone rows: every key of some query masked gives NaN
    # (-inf) or uniform weights, both sides alike
    # a padding Where of a finite fill fuses in replace mode (mask_replace);
    # below a causal Where only with the causal Where's own fill
    near = "order=pad_first" in g.tags      # (kiln: "a bias is added before the causal Where")
    near = near or "causal_fill=other" in g.tags or \
        ("mask=pad_where_causal" in g.tags and where_fill <= -2.0 ** 110)
    # a causal Where of a finite fill fuses only where its condition is
    # proved causal: a constant (opset < 14, or static dims folded) is not
    cwhere = any(t in g.tags for t in ("mask=causal_trilu", "mask=causal_buffer", "mask=pad_where_causal",
                                       "order=causal_first"))
    near = near or (cwhere and where_fill is not None and where_fill > -2.0 ** 110 and
                    (g.opset < 14 or "dims=static" in g.tags))
    g.tags.append("near_miss=%d" % near)
    # a row whose keys are all masked by an added -1e4 holds scores rounded
    # to ulp(1e4) = 2^-10: the order kiln and ONNX Runtime scale and add
    # in moves its weights by up to that (-1e9 and finfo.min wipe the
    # scores out: uniform on both sides)
    atol = 5e-4 if "fill=-10000.0" in g.tags else 2e-5
    return [out], [] if near else ["attention"], (1e-4, atol)


def attn_mask(g, scores, x, y, B, Sq, Sk, cross):
    rng = g.rng
    kinds = ["none", "int_mul", "int_where", "float_b11s", "float_b1ss", "float_bias"] + ([] if cross else
                                                                            ["causal_trilu", "causal_buffer",
                                                                             "causal_triu_add", "causal_pad",
                                                                             "pad_where_causal"])
    kind = g.pick("mask", kinds)
    fill = g.pick("fill", [float("-inf"), -1e4, F32_MIN, -1e9]) if kind != "none" else None
    if kind in ("int_mul", "causal_pad") and fill == float("-inf"):
        fill = F32_MIN  # (1 - m) * -inf is NaN where m is 1: exporters use Where for -inf
        g.tags[-1] = "fill=%r" % fill

    right = not cross and g.pick("padding", ["any", "right"]) == "right"

    def pad_mask(dt=np.int64):
        m = np.ones((B, Sk), dt)
        for b in range(B):
            r = rng.random()
            if right:       # ones first in every row: --remove-padding takes it
                if r < 0.5:
                    m[b, rng.randint(0, Sk):] = 0
            elif r < 0.25:
                m[b, :rng.randint(0, Sk)] = 0       # left padding
            elif r < 0.5:
                m[b, rng.randint(0, Sk):] = 0       # right padding
            elif r < 0.6:
                m[b, :] = 0                         # a row all padded
        return m

    if kind == "none":
        return scores, None
    if kind == "pad_where_causal":
        # a padding Where, then a causal Where above it (annotated-transformer's
        # masked_fill twice): the same fill, or another one (a near miss)
        mv = pad_mask(np.int64)
        m = g.inp(mv, dims_of(g, mv.shape, ["batch", "seq"]))
        if right:
            g.rp_mask = mv
        cond = g.op("Equal", g.unsqueeze(m, [1, 2]), np.array(0, np.int64))
        scores = g.op("Where", cond, np.array(fill, F32), scores)
        cf = fill if g.pick("causal_fill", ["same", "same", "other"]) == "same" else \
            (-1e4 if fill == float("-inf") else float("-inf"))
        scores, _ = attn_mask_causal(g, scores, x, Sq, "causal_" + rng.choice(["trilu", "buffer"]), cf)
        return scores, fill
    pad_first = kind == "causal_pad" and g.pick("order", ["causal_first", "causal_first", "pad_first"]) == "pad_first"
    if kind == "causal_pad" and not pad_first:
        # GPT-2: the causal Where, then the padding mask added
        scores, causal_fill = attn_mask_causal(g, scores, x, Sq, "causal_" + rng.choice(["trilu", "buffer"]), fill)
        kind = "int_mul"
    else:
        causal_fill = None
    if kind in ("int_mul", "int_where", "causal_pad"):
        mdt = np.dtype(g.pick("mask_dtype", ["int64", "int64", "int32", "float32", "bool"]))
        mv = pad_mask(mdt)
        m = g.inp(mv, dims_of(g, mv.shape, ["batch", "kseq" if cross else "seq"]))
        if right:
            g.rp_mask = mv
        m4 = g.unsqueeze(m, [1, 2])
        if kind == "int_where":
            cond = g.op("Not", m4) if mdt == bool else g.op("Equal", m4, np.array(0, mdt))
            scores = g.op("Where", cond, np.array(fill, F32), scores)
        else:
            mf = m4 if mdt == F32 else g.op("Cast", m4, to=TensorProto.FLOAT)
            scores = g.op("Add", scores, g.op("Mul", g.op("Sub", np.array(1.0, F32), mf), np.array(fill, F32)))
        if kind == "int_mul":
            return scores, causal_fill
        if kind == "int_where":
            return scores, fill
        kind = "causal_trilu"
    if kind in ("float_b11s", "float_b1ss"):
        shape = (B, 1, 1, Sk) if kind == "float_b11s" else (B, 1, Sq, Sk)
        keep = g.np.random(shape) < 0.7
        if rng.random() < 0.3:
            keep[0] = False     # everything of batch 0 masked
        mv = np.where(keep, 0.0, fill).astype(F32)
        return g.op("Add", scores, g.inp(mv, dims_of(g, shape, ["batch", None, None if kind == "float_b11s" else
                                                                 "seq", "kseq" if cross else "seq"]))), None
    if kind == "float_bias":
        # a bias broadcast over batch or heads (T5's position bias [1, H, S, S],
        # ALiBi, a shared mask [1, 1, 1, S]), a constant or an input
        H = g.heads
        shape = g.pick("bias_shape", [(1, 1, 1, Sk), (1, 1, Sq, Sk), (1, H, Sq, Sk), (B, H, Sq, Sk),
                                      (Sq, Sk), (Sk,)])
        mv = (g.np.standard_normal(shape) * 2).astype(F32)
        mv[g.np.random(shape) < 0.2] = fill
        if rng.random() < 0.5:
            return g.op("Add", scores, g.const(mv)), None
        names = {4: ["batch" if shape[0] == B and B > 1 else None, None, None, None], 2: [None, None], 1: [None]}
        return g.op("Add", scores, g.inp(mv, dims_of(g, shape, names[len(shape)]))), None
    return attn_mask_causal(g, scores, x, Sq, kind, fill)


def attn_mask_causal(g, scores, x, S, kind, fill):
    """A causal mask of self-attention (Sq == Sk == S): the scores and the
    fill of a Where (None for an additive mask)."""
    rng = g.rng
    if kind == "causal_buffer":      # GPT-2: a [1, 1, max, max] bool buffer sliced to [S, S]
        mx = max(S, 8) + rng.choice([0, 3])
        buf = np.tril(np.ones((mx, mx), bool))[None, None]
        n = g.dim(x, 1)
        cond = g.slice(g.const(buf), [0, 0], g.op("Concat", n, n, axis=0), [2, 3])
        return g.op("Where", cond, scores, np.array(fill, F32)), fill
    if kind == "causal_triu_add":    # LLaMA: triu(full(fill), 1) added
        n = g.dim(x, 1)
        full = g.op("ConstantOfShape", g.op("Concat", n, n, axis=0),
                    value=numpy_helper.from_array(np.array([fill], F32), "value"))
        if g.opset < 14:
            return g.op("Add", scores, g.const(np.triu(np.full((S, S), fill, F32), 1))), None
        return g.op("Add", scores, g.op("Trilu", full, np.array(1, np.int64), upper=1)), None
    # causal_trilu: tril(ones) as a bool condition
    if g.opset < 14:
        cond = g.const(np.tril(np.ones((S, S), bool)))
    else:
        n = g.dim(x, 1)
        ones = g.op("ConstantOfShape", g.op("Concat", n, n, axis=0),
                    value=numpy_helper.from_array(np.array([1], np.int64), "value"))
        cond = g.op("Cast", g.op("Trilu", ones, upper=0), to=TensorProto.BOOL)
    return g.op("Where", cond, scores, np.array(fill, F32)), fill


# ---------------------------------------------------------------- layer norm
def ln_decomposed(g, x, axes, eps, gamma, beta, eps_out=False):
    mean = g.reduce_mean(x, axes)
    d = g.op("Sub", x, mean)
    sq = g.op("Pow", d, np.array(2.0, F32)) if g.rng.random() < 0.6 else g.op("Mul", d, d)
    var = g.reduce_mean(sq, axes)
    if eps_out:
        den = g.op("Add", g.op("Sqrt", var), np.array(eps, F32))
    else:
        den = g.op("Sqrt", g.op("Add", var, np.array(eps, F32)))
    y = g.op("Div", d, den) if g.rng.random() < 0.6 else g.op("Mul", d, g.op("Reciprocal", den))
    if gamma is not None:
        y = g.op("Mul", y, gamma) if g.rng.random() < 0.7 else g.op("Mul", gamma, y)
    if beta is not None:
        y = g.op("Add", y, beta)
    return y


def layernorm(g):
    rng = g.rng
    g.dyn = g.pick("dims", ["static", "symbolic"]) == "symbolic"
    rank = rng.choice([2, 3, 3, 4])
    W = rng.choice([1, 2, 3, 7, 16, 32, 64, 100, 128, 768])
    shape = tuple(rng.randint(1, 4) for _ in range(rank - 1)) + (W,)
    mu = g.pick("mean", [0.0, 0.0, 5.0, 300.0])
    x = g.inp((g.np.standard_normal(shape) + mu).astype(F32), dims_of(g, shape, ["n%d" % i for i in range(rank - 1)]
                                                                  + [None]))
    if g.pick("residual", [0, 1]):
        r = g.inp(g.np.standard_normal(shape).astype(F32), dims_of(g, shape, ["n%d" % i for i in range(rank - 1)]
                                                                   + [None]))
        x = g.op("Add", x, r) if rng.random() < 0.6 else g.op("Add", r, x)
    eps = g.pick("eps", [1e-5, 1e-12, 1e-6, 0.1])
    two = not g.dyn and rank >= 3 and rng.random() < 0.2
    ns = shape[-2:] if two else shape[-1:]
    g.tags.append("axes=%s" % ("last2" if two else "last"))
    gamma = g.weight(*ns, scale=1.0) + 1
    beta = g.weight(*ns, scale=1.0) if g.pick("beta", [0, 1, 1]) else None
    form = g.pick("form", ["op", "decomposed", "decomposed", "eps_outside", "rmsnorm", "scale_first"])
    if form == "op" and g.opset < 17:
        form = "decomposed"
        g.tags[-1] = "form=decomposed"
    if form == "op":
        ins = [x, g.const(gamma)] + ([g.const(beta)] if beta is not None else [])
        y = g.op("LayerNormalization", *ins, axis=-2 if two else -1, epsilon=eps)
        fus = ["layernorm", "skip_layernorm"]
    elif form == "rmsnorm":
        ms = g.reduce_mean(g.op("Pow", x, np.array(2.0, F32)) if rng.random() < 0.5 else g.op("Mul", x, x),
                           [-2, -1] if two else [-1])
        inv = g.op("Reciprocal", g.op("Sqrt", g.op("Add", ms, np.array(eps, F32))))
        y = g.op("Mul", g.op("Mul", x, inv), gamma)
        fus = ["rmsnorm", "skip_rmsnorm"]
    elif form == "scale_first":
        # near miss: LN(x * gamma) (gamma before the normalisation, none
        # after), not LN(x) * gamma
        y = ln_decomposed(g, g.op("Mul", x, gamma), [-2, -1] if two else [-1], eps, None, beta)
        fus = []
    else:
        y = ln_decomposed(g, x, [-2, -1] if two else [-1], eps, gamma, beta, eps_out=form == "eps_outside")
        fus = ["layernorm", "skip_layernorm"] if form == "decomposed" else []
    if two or form in ("eps_outside", "scale_first"):
        # (over two axes, eps outside the Sqrt, the scale first: no LayerNorm
        # over the last axis; an RMSNorm of x - mean may fire for scale_first)
        fus = []
        g.forbid = ["layernorm", "skip_layernorm"] + (["rmsnorm", "skip_rmsnorm"] if two else [])
    # a mean far from 0 costs digits in any fp32 order of the sums (the
    # mean's rounding, ~eps*mu, moves every x - mean); E[x^2] - E[x]^2
    # would cost eps*mu^2, far above this
    return [y], fus, (1e-4, 2e-5 * (1 + mu / 30))


# ---------------------------------------------------------------- GELU
def gelu(g):
    rng = g.rng
    g.dyn = g.pick("dims", ["static", "symbolic"]) == "symbolic"
    N = rng.choice([1, 3, 8, 17, 64, 256])
    shape = tuple(rng.randint(1, 4) for _ in range(rng.randint(0, 2))) + (rng.randint(1, 9), N)
    names = ["n%d" % i for i in range(len(shape) - 1)] + [None]
    pre = g.pick("before", ["none", "bias", "linear"])
    if pre == "linear":
        K = rng.choice([4, 16, 33])
        xin = g.inp((g.np.standard_normal(shape[:-1] + (K,)) * 2).astype(F32), dims_of(g, shape[:-1] + (K,), names))
        x = g.op("Add", g.op("MatMul", xin, g.weight(K, N)), g.weight(N, scale=0.5))
    else:
        x = g.inp((g.np.standard_normal(shape) * 2.5).astype(F32), dims_of(g, shape, names))
        if pre == "bias":
            x = g.op("Add", x, g.weight(N, scale=0.5))
    form = g.pick("form", ["erf_a", "erf_b", "erf_c", "tanh_pow", "tanh_mul", "quick", "op", "near_miss"])
    half, one = np.array(0.5, F32), np.array(1.0, F32)
    if form == "op" and g.opset < 20:
        form = "erf_a"
        g.tags[-1] = "form=erf_a"
    fus = ["gelu", "bias_gelu"]
    if form in ("erf_a", "near_miss"):
        e = g.op("Erf", g.op("Div", x, np.array(math.sqrt(2), F32)))
        y = g.op("Mul", g.op("Mul", x, half if form == "erf_a" else np.array(0.6, F32)), g.op("Add", e, one))
        if form == "near_miss":
            fus = []
    elif form == "erf_b":
        e = g.op("Erf", g.op("Mul", x, np.array(1 / math.sqrt(2), F32)))
        y = g.op("Mul", x, g.op("Mul", g.op("Add", e, one), half))
    elif form == "erf_c":
        e = g.op("Erf", g.op("Mul", x, np.array(1 / math.sqrt(2), F32)))
        y = g.op("Mul", g.op("Mul", half, g.op("Add", one, e)), x)
    elif form in ("tanh_pow", "tanh_mul"):
        cube = g.op("Pow", x, np.array(3.0, F32)) if form == "tanh_pow" else g.op("Mul", x, g.op("Mul", x, x))
        inner = g.op("Mul", g.op("Add", x, g.op("Mul", cube, np.array(0.044715, F32))),
                     np.array(math.sqrt(2 / math.pi), F32))
        y = g.op("Mul", g.op("Mul", half, x), g.op("Add", one, g.op("Tanh", inner)))
    elif form == "quick":
        y = g.op("Mul", x, g.op("Sigmoid", g.op("Mul", x, np.array(1.702, F32))))
        fus = ["quick_gelu"]
    else:
        y = g.op("Gelu", x, approximate=rng.choice(["none", "tanh"]))
    return [y], fus, (1e-4, 1e-5)


# ---------------------------------------------------------------- GEMM
def gemm(g):
    rng = g.rng
    g.dyn = g.pick("dims", ["static", "symbolic"]) == "symbolic"
    M, K, N = rng.choice([1, 2, 5, 16, 33]), rng.choice([1, 3, 16, 64, 200]), rng.choice([1, 4, 17, 64, 96])
    form = g.pick("form", ["matmul_add", "matmul_add", "matmul", "gemm_op", "b_input"])
    if form == "gemm_op":
        ta, tb = rng.randint(0, 1), rng.randint(0, 1)
        a = g.inp(g.np.standard_normal((K, M) if ta else (M, K)).astype(F32),
                  dims_of(g, (K, M) if ta else (M, K), [None, "m"] if ta else ["m", None]))
        b = g.const(g.weight(*((N, K) if tb else (K, N))))
        ins = [a, b]
        at = {"transA": ta, "transB": tb}
        if rng.random() < 0.8:
            cs = rng.choice([(N,), (1, N), (), (M, N), (M, 1)])
            if g.dyn and cs and cs[0] == M and len(cs) == 2:
                cs = (N,)
            ins.append(g.const(g.weight(*cs, scale=1.0)))
        if rng.random() < 0.4:
            at["alpha"] = rng.choice([0.5, -1.0, 2.0])
        if rng.random() < 0.4:
            at["beta"] = rng.choice([0.0, 0.5, 2.0])
        g.tags.append("ta=%d tb=%d C=%s alpha=%s beta=%s" % (ta, tb, cs if len(ins) > 2 else "-",
                                                            at.get("alpha", 1), at.get("beta", 1)))
        # kiln's KlnGemm takes alpha = beta = 1 and C a row bias ([N] or [1, N])
        row = len(ins) < 3 or cs in ((N,), (1, N)) or (M == 1 and cs in ((M, N), (M, 1) if N == 1 else (M, N)))
        near = at.get("alpha", 1) != 1 or (len(ins) > 2 and (at.get("beta", 1) != 1 or not row))
        g.tags.append("near_miss=%d" % near)
        g.forbid = ["gemm_onnx"] if near else []
        return [g.op("Gemm", *ins, **at)], [] if near else ["gemm_onnx"], (1e-4, 1e-5)
    lead = tuple(rng.randint(1, 3) for _ in range(g.pick("rankA", [2, 3, 3, 4]) - 2))
    sa = lead + (M, K)
    a = g.inp(g.np.standard_normal(sa).astype(F32), dims_of(g, sa, ["b%d" % i for i in range(len(lead))] + ["m", None]))
    if form == "b_input":
        b = g.inp(g.weight(K, N), [K, N])
    else:
        b = g.const(g.weight(K, N))
    y = g.op("MatMul", a, b)
    fus = ["gemm_nobias"]
    if form != "matmul":
        bs = g.pick("bias", ["N", "N", "1N", "11N", "unsq_in", "MN", "B1N", "scalar"])
        if bs == "B1N" and (not lead or lead[0] == 1):
            bs = "MN"
            g.tags[-1] = "bias=MN"
        shape = {"N": (N,), "1N": (1, N), "11N": (1, 1, N), "MN": (M, N), "scalar": (),
                 "B1N": lead[:1] + (1, N)}.get(bs)
        if bs == "unsq_in":     # an input [N] unsqueezed to [1, N]
            bias = g.unsqueeze(g.inp(g.weight(N, scale=1.0), [N]), [0])
        else:
            bias = g.const(g.weight(*shape, scale=1.0))
        y = g.op("Add", y, bias) if rng.random() < 0.7 else g.op("Add", bias, y)
        # kiln takes a row bias: [N], or [1, .., N] of no higher rank than
        # the product; one that differs along the rows ([M, N], [B, 1, N]
        # with B > 1), a scalar, or one that broadcasts the product to a
        # higher rank leaves the Add (and gemm_nobias takes the MatMul)
        row = bs in ("N", "1N", "unsq_in") or (bs == "11N" and len(sa) >= 3) or (bs == "MN" and M == 1)
        fus = ["gemm"] if row else ["gemm_nobias"]
        g.forbid = [] if row else ["gemm", "bias_gelu"]
    if form == "b_input":
        fus = []
    return [y], fus, (1e-4, 1e-5)


# ---------------------------------------------------------------- embeddings
def embed(g):
    rng = g.rng
    g.dyn = g.pick("dims", ["static", "symbolic"]) == "symbolic"
    B, S = rng.randint(1, 4), rng.choice([1, 2, 5, 16, 40])
    V, W = rng.choice([7, 30, 100]), rng.choice([4, 16, 32, 64, 96])
    pad = 1
    ids = g.np.integers(0, V, (B, S)).astype(np.int64)
    posk = g.pick("pos", ["range", "slice", "cumsum", "input", "none", "const", "const_rows"])
    if posk.startswith("const"):
        # constant position ids (folded with their Gather to a constant term)
        g.dyn = False
        g.tags[0] = "dims=static"
        if posk == "const_rows" and B == 1:     # near miss: ids that differ per batch row
            B = 2
            ids = g.np.integers(0, V, (B, S)).astype(np.int64)
    maxp = S + pad + 1 + rng.choice([0, 5])
    if posk == "cumsum":
        for b in range(B):
            if rng.random() < 0.5:
                ids[b, rng.randint(1, S) if S > 1 else 1:] = pad     # right padding with pad ids
    idn = g.inp(ids, dims_of(g, (B, S), ["batch", "seq"]))
    e = g.op("Gather", g.weight(V, W, scale=1.0), idn, axis=0)
    if posk == "range":
        n = g.op("Squeeze", g.dim(idn, 1), np.array([0], np.int64)) if g.opset >= 13 else \
            g.op("Squeeze", g.dim(idn, 1), axes=[0])
        pos = g.unsqueeze(g.op("Range", np.array(0, np.int64), n, np.array(1, np.int64)), [0])
    elif posk == "slice":
        buf = g.const(np.arange(maxp, dtype=np.int64)[None])
        pos = g.slice(buf, [0], g.dim(idn, 1), [1])
    elif posk == "cumsum":       # RoBERTa: cumsum(mask) * mask + padding_idx
        m = g.op("Cast", g.op("Not", g.op("Equal", idn, np.array(pad, np.int64))), to=TensorProto.INT32)
        cs = g.op("CumSum", m, np.array(1, np.int64))
        pos = g.op("Add", g.op("Cast", g.op("Mul", cs, m), to=TensorProto.INT64), np.array(pad, np.int64))
    elif posk == "const":       # arange(S): [1, S], [S] or every row of [B, S]
        shape = g.pick("pos_shape", ["1S", "S", "BS"])
        pv = np.arange(S, dtype=np.int64)
        pos = g.const(pv[None] if shape == "1S" else pv if shape == "S" else np.tile(pv, (B, 1)))
    elif posk == "const_rows":
        pv = np.tile(np.arange(S, dtype=np.int64), (B, 1))
        pv[-1] = (pv[-1] + 1) % S if S > 1 else 1     # the last row shifted: not the same positions
        pos = g.const(pv)
    elif posk == "input":
        pv = np.tile(np.arange(S, dtype=np.int64), (B, 1))
        pos = g.inp(pv, dims_of(g, (B, S), ["batch", "seq"]))
    if posk != "none":
        pe = g.op("Gather", g.weight(maxp, W, scale=1.0), pos, axis=0)
        e = g.op("Add", e, pe) if rng.random() < 0.7 else g.op("Add", pe, e)
    tt = g.pick("types", [0, 1, 1])
    if tt:
        tt = g.inp(g.np.integers(0, 2, (B, S)).astype(np.int64), dims_of(g, (B, S), ["batch", "seq"]))
        e = g.op("Add", e, g.op("Gather", g.weight(2, W, scale=1.0), tt, axis=0))
    gamma, beta = g.weight(W, scale=1.0) + 1, g.weight(W, scale=0.5)
    if g.opset >= 17 and rng.random() < 0.5:
        y = g.op("LayerNormalization", e, gamma, beta, axis=-1, epsilon=1e-12)
    else:
        y = ln_decomposed(g, e, [-1], 1e-12, g.const(gamma), g.const(beta))
    fus = ["embed_layernorm"]
    if posk == "none" and not tt:
        fus = []        # one Gather alone is no sum of embeddings
    if posk == "const_rows":
        # the folded term [B, S, H] differs along the batch: no position term
        fus = []
        g.forbid = ["embed_layernorm"]
    return [y], fus, (1e-4, 2e-5)


# ---------------------------------------------------------------- dynsym
def dynsym(g):
    """A BERT embedding + attention block as the dynamo exporter writes it
    when each input gets dim symbols of its own (input_ids [s0, s1],
    token_type_ids [s4, s5], attention_mask [s2, s3]): the position ids a
    Slice by Shape(token_type_ids)[1], the head split's [B, S] from
    Shape(token_type_ids) with the head count -1 (as the real export) or
    from the hidden states with a constant head count.  The second data
    set resizes every symbol on its own: sizes that broadcast (input_ids of
    batch 1 under token_type_ids of batch 3) must match ONNX Runtime at -O2
    as at -O0; others are refused."""
    rng = g.rng
    g.dyn = True
    B, S = rng.randint(1, 4), rng.choice([1, 2, 5, 16, 33])
    H, D, V = rng.choice([1, 2, 4]), rng.choice([2, 4, 8, 16]), rng.choice([7, 30, 100])
    W = H * D
    g.tags.append("H=%d D=%d B=%d S=%d" % (H, D, B, S))
    ids = g.inp(g.np.integers(0, V, (B, S)).astype(np.int64), ["s0", "s1"])
    tt = g.inp(g.np.integers(0, 2, (B, S)).astype(np.int64), ["s4", "s5"])
    maxp = S + 8
    pos = g.slice(g.const(np.arange(maxp, dtype=np.int64)[None]), [0], g.dim(tt, 1), [1])
    e = g.op("Add", g.op("Gather", g.weight(V, W, scale=1.0), ids, axis=0),
             g.op("Gather", g.weight(2, W, scale=1.0), tt, axis=0))
    e = g.op("Add", e, g.op("Gather", g.weight(maxp, W, scale=1.0), pos, axis=0))
    gamma, beta = g.weight(W, scale=1.0) + 1, g.weight(W, scale=0.5)
    if g.opset >= 17 and rng.random() < 0.5:
        x = g.op("LayerNormalization", e, gamma, beta, axis=-1, epsilon=1e-12)
    else:
        x = ln_decomposed(g, e, [-1], 1e-12, g.const(gamma), g.const(beta))

    def lin(t):
        return g.op("Add", g.op("MatMul", t, g.weight(W, W)), g.weight(W, scale=0.1))
    src = g.pick("split_from", ["token_type_ids", "hidden"])
    b0, b1 = (g.dim(tt, 0), g.dim(tt, 1)) if src == "token_type_ids" else (g.dim(x, 0), g.dim(x, 1))
    heads = [-1, D] if src == "token_type_ids" else [H, D]
    shp = g.op("Concat", b0, b1, np.array(heads, np.int64), axis=0)
    qh, kh, vh = (g.op("Reshape", lin(x), shp) for _ in range(3))
    scores = g.op("MatMul", g.op("Transpose", qh, perm=[0, 2, 1, 3]), g.op("Transpose", kh, perm=[0, 2, 3, 1]))
    scores = g.op("Mul", scores, np.array(1 / math.sqrt(D), F32))
    if g.pick("mask", ["yes", "yes", "no"]) == "yes":
        mv = np.ones((B, S), np.int64)
        for b in range(B):
            if S > 1 and rng.random() < 0.5:
                mv[b, rng.randint(1, S - 1):] = 0
        mask = g.inp(mv, ["s2", "s3"])
        mb = g.unsqueeze(g.op("Cast", mask, to=TensorProto.BOOL), [1, 2])
        scores = g.op("Add", scores, g.op("Where", mb, np.array(0.0, F32), np.array(F32_MIN, F32)))
    p = g.op("Softmax", scores, axis=-1)
    ctx = g.op("Transpose", g.op("MatMul", p, g.op("Transpose", vh, perm=[0, 2, 1, 3])), perm=[0, 2, 1, 3])
    out = g.op("Reshape", ctx, g.op("Concat", b0, b1, np.array([-1], np.int64), axis=0))
    return [lin(out)], ["embed_layernorm", "attention"], (1e-4, 2e-5)


FORMS = {"attention": (attention, 5), "layernorm": (layernorm, 2), "gelu": (gelu, 2),
         "gemm": (gemm, 2), "embed": (embed, 2)}
# forms made only when --only names them (the default mix, and so what a
# seed makes, stays as it was); fusefuzz.sh runs them on their own
ONLY_FORMS = {"dynsym": (dynsym, 1)}
# the fusions a form's instances may fire, expected or not (the fire rate
# per variant counts these)
FORM_FUS = {"attention": ["attention"], "layernorm": ["layernorm", "skip_layernorm", "rmsnorm", "skip_rmsnorm"],
            "gelu": ["gelu", "bias_gelu", "quick_gelu"], "gemm": ["gemm_onnx", "gemm", "gemm_nobias"],
            "embed": ["embed_layernorm"], "dynsym": ["embed_layernorm", "attention", "layernorm"]}


def make_case(seed, i, only):
    rng = random.Random(seed * 7919 + i)
    table = dict(FORMS, **ONLY_FORMS) if only else FORMS
    forms = [f for f in table if not only or f in only]
    form = rng.choices(forms, [table[f][1] for f in forms])[0]
    opset = rng.choice([11, 13, 14, 17, 17, 18, 20])
    g = G(rng, opset)
    g.dyn = False
    g.rp_mask = None    # a right-padded [B, S] key mask: the case also runs with --remove-padding
    outs, fus, tol = table[form][0](g)
    return form, g, outs, fus, tol


# ---------------------------------------------------------------- running
def compare(ref, got, tol):
    """None when got matches ref within tol = (rtol, atol relative to the
    output's magnitude), else why not."""
    (r, rt), (gv, gt) = ref, got
    if rt != gt:
        return "dtype %d, ONNX Runtime %d" % (gt, rt)
    if r.shape != gv.shape:
        return "shape %s, ONNX Runtime %s" % (list(gv.shape), list(r.shape))
    r64, g64 = r.astype(np.float64), gv.astype(np.float64)
    fin = np.isfinite(r64)
    mag = max(1.0, float(np.abs(r64[fin]).max())) if fin.any() else 1.0
    rtol, atol = tol
    same = (r64 == g64) | (np.isnan(r64) & np.isnan(g64))
    with np.errstate(invalid="ignore"):
        err = np.abs(r64 - g64)
        close = err <= atol * mag + rtol * np.abs(r64)
    bad = np.argwhere(~(same | close))
    if len(bad):
        i = tuple(bad[0])
        worst = float(np.nanmax(np.where(same, 0, err))) if (~same).any() else float("nan")
        return "%d of %d values differ, first at %s: %r, ONNX Runtime %r (max err %.3g, |ref| max %.3g)" % (
            len(bad), r.size, list(i), gv[i], r[i], worst, mag)
    return None


def kiln_case(kiln, d, mode, work, timeout, tol, rp_mask=None):
    """(status, detail, fusions): status ok, refused, or a finding.  Mode
    rp: -O2 --remove-padding, whose outputs [B, S, ...] are zero where
    rp_mask is 0 (those positions are not compared)."""
    so = os.path.join(work, "m.so")
    cmd = [kiln, "compile", os.path.join(d, "model.onnx"), "-o", so, "-O0" if mode == "O0" else "-O2"]
    if mode != "O0":
        cmd.append("--stats")
    if mode == "rp":
        cmd.append("--remove-padding")
    rc, out, err = sh(cmd, timeout)
    err = err.strip()
    if rc == 1 and err and "\n" not in err:
        return "refused", err, {}
    if rc != 0:
        return "compile_" + ("crash" if rc != 1 else "message"), "exit %s: %s" % (rc, err[-300:]), {}
    fus = {}
    if mode != "O0":
        fus = json.loads(out.strip().splitlines()[-1]).get("fusions", {})
    # (rp: set 0 only, whose mask is the right-padded one)
    sets = ["test_data_set_0"] if mode == "rp" else sorted(n for n in os.listdir(d) if n.startswith("test_data_set_"))

    def check(ref, got):
        if mode == "rp" and ref[0].shape[:2] == rp_mask.shape and got[0].shape == ref[0].shape:
            keep = rp_mask.astype(bool).reshape(rp_mask.shape + (1,) * (ref[0].ndim - 2))
            got = (np.where(keep, got[0], ref[0]), got[1])
        return compare(ref, got, tol)
    return run_sets(kiln, so, d, sets, work, timeout, check) + (fus,)


def second_sizes(g):
    """Data set 1 of a case with symbolic dims: every symbol at another
    size (half, 1, or a few more), each input cut or cyclically extended
    along its symbolic axes (ids, masks and positions keep their kind; a
    position that leaves its table makes ONNX Runtime refuse the set,
    which is then dropped).  None when the case has no symbol."""
    syms = sorted({dm for _, _, dims in g.inputs for dm in dims if isinstance(dm, str)})
    if not syms:
        return None
    old = {}
    for n, _, dims in g.inputs:
        for ax, dm in enumerate(dims):
            if isinstance(dm, str):
                old[dm] = g.feeds[n].shape[ax]
    new = {sy: g.rng.choice([1, max(1, old[sy] // 2), old[sy] + 1, old[sy] + 3]) for sy in syms}
    feeds = {}
    for n, _, dims in g.inputs:
        a = g.feeds[n]
        for ax, dm in enumerate(dims):
            if isinstance(dm, str):
                a = np.take(a, np.arange(new[dm]) % a.shape[ax], axis=ax)
        feeds[n] = a
    return feeds


def main():
    ap = fuzz_args("O0,O2,rp", "rp: -O2 --remove-padding (right-padded masks)", "comma-separated forms", 20)
    ap.add_argument("--verbose", action="store_true", help="one line per case")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    only = set(x for x in a.only.split(",") if x)
    cases_dir, work = os.path.join(a.outdir, "cases"), os.path.join(a.outdir, "work")
    os.makedirs(cases_dir, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    stats = {}          # form -> [cases, compared, made to fuse, fused, mismatched, refused]
    tagstats = {}       # (form, tag) -> [compared, fired, made to fuse, fused as made to, near misses]
    missed = []         # cases made to fuse where the fusion did not fire
    fcount = {}         # form -> fusion -> cases where it fired at -O2
    findings, refusals = [], {}
    counts = {"generated": 0, "ort_refused": 0}
    i, end = a.first, a.first + a.count
    while i < end and not (a.seconds and time.time() - t0 > a.seconds):
        batch = []
        for j in range(i, min(end, i + a.batch)):
            form, g, outs, fus, tol = make_case(a.seed, j, only)
            d = os.path.join(cases_dir, "f%d_%d" % (a.seed, j))
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            m = g.model(outs)
            onnx.save(m, os.path.join(d, "model.onnx"))
            write_inputs(os.path.join(d, "test_data_set_0"), m, g.feeds)
            f2 = second_sizes(g)
            if f2 is not None:
                write_inputs(os.path.join(d, "test_data_set_1"), m, f2)
            batch.append((j, form, g, fus, tol, d))
        i += a.batch
        counts["generated"] += len(batch)
        ort_run([b[-1] for b in batch], a.ort_modules, a.timeout * len(batch))
        for j, form, g, fus, tol, d in batch:
            st = stats.setdefault(form, [0, 0, 0, 0, 0, 0])
            st[0] += 1
            if not ort_usable(d):
                counts["ort_refused"] += 1
                print("ONNX Runtime refused %s: %s" % (os.path.basename(d), open(os.path.join(
                    d, "test_data_set_0", "ort_error")).read().strip()[:200]) if os.path.exists(
                    os.path.join(d, "test_data_set_0", "ort_error")) else "", flush=True)
                if not a.keep:
                    shutil.rmtree(d)
                continue
            st[1] += 1
            bad, fired, any_fired = False, None, False
            for mode in modes:
                if mode == "rp" and g.rp_mask is None:
                    continue
                s, det, got = kiln_case(a.kiln, d, mode, work, a.timeout, tol, g.rp_mask)
                if mode == "rp":
                    rp = stats.setdefault("rp", [0, 0])
                    rp[0] += 1
                    rp[1] += 1 if got.get("pack_tokens") else 0
                if mode == "O2":
                    wrong = [f for f in g.forbid if got.get(f)]
                    if wrong and s == "ok":
                        s, det = "near_miss_fused", "a near miss fused as %s" % ", ".join(wrong)
                    fired = any(got.get(f) for f in fus) if fus else None
                    any_fired = any(got.get(f) for f in FORM_FUS[form])
                    for f in got:
                        fcount.setdefault(form, {}).setdefault(f, 0)
                        fcount[form][f] += 1
                if s == "refused":
                    st[5] += 1
                    refusals.setdefault(det.split("model.onnx: ", 1)[-1][:120], os.path.basename(d))
                    break
                if s != "ok":
                    line = "%s %s %s %s opset %d [%s]: %s" % (os.path.basename(d), form, mode, s, g.opset,
                                                               " ".join(g.tags), det)
                    findings.append(line)
                    print("FINDING " + line, flush=True)
                    st[4] += 1
                    bad = True
                    break
            if fus:
                st[2] += 1
            if fired:
                st[3] += 1
            for t in g.tags:
                if "=" in t and " " not in t:
                    ts = tagstats.setdefault((form, t), [0, 0, 0, 0, 0])
                    ts[0] += 1
                    ts[1] += 1 if any_fired else 0
                    ts[2] += 1 if fus else 0
                    ts[3] += 1 if fired else 0
                    ts[4] += 1 if g.forbid else 0
            if fus and not fired and not bad:
                missed.append("%s %s opset %d [%s]" % (os.path.basename(d), form, g.opset, " ".join(g.tags)))
            if a.verbose:
                print("%s %s opset %d fused=%s any=%s [%s]" % (os.path.basename(d), form, g.opset, fired, any_fired,
                                                             " ".join(g.tags)))
            if not bad and not a.keep:
                shutil.rmtree(d)
        print("fusefuzz: %d cases, %d findings, %.0f s" % (counts["generated"], len(findings), time.time() - t0),
              flush=True)
    print("\nform        cases  compared  to_fuse  fused  mismatched  refused")
    for f in sorted(stats):
        if f != "rp":
            print("%-10s %6d %9d %8d %6d %11d %8d" % (f, *stats[f]))
    for f in sorted(fcount):
        print("%-10s fusions fired (cases): %s" % (f, ", ".join("%s %d" % kv for kv in sorted(fcount[f].items()))))
    if "rp" in stats:
        print("--remove-padding: %d cases, pack_tokens fired in %d" % tuple(stats["rp"]))
    print("\nfusion fire rate per variant: any of the form's fusions / all cases (near misses "
          "included); the fusion the case is made for / cases made to fuse; near misses (each "
          "fused as one of its forbidden fusions is a finding):")
    for (f, t), (n, k, nf, kf, nm) in sorted(tagstats.items()):
        print("  %-10s %-28s %4d/%-4d  made %4d/%-4d  near %4d%s" % (f, t, k, n, kf, nf, nm,
                                                                   "  <- never" if k == 0 else ""))
    for line in missed[:20]:
        print("not fused: " + line)
    for k, d in sorted(refusals.items()):
        print("kiln refused: %s  (e.g. %s)" % (k, d))
    print("%(generated)d cases, %(ort_refused)d refused by ONNX Runtime" % counts)
    print("fusefuzz: seed %d, cases %d..%d: %d findings" % (a.seed, a.first, min(i, end) - 1, len(findings)))
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
