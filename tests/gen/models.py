"""kiln's own test models, in the ONNX backend-test layout.

    /usr/bin/python3 tests/gen/models.py OUTDIR [NAME...]

writes OUTDIR/NAME/model.onnx and test_data_set_{0,1}/{input,output}_K.pb
for each model (all when no NAME is given).  Weights and inputs come from
fixed seeds.  Each model is a graph builder written in the style of one
exporter plus a numpy reference written straight from the math (float64):
the reference outputs are that reference's, not the graph's.  Every model
is checked with onnx.checker and evaluated once with npref.py (a tiny
numpy interpreter) to make sure the graph means what the reference computes.

Data sets: 0 is batch 2, sequence 16, row 1 padded (last 5 mask entries 0);
1 is batch 1, sequence 7.  Only onnx.helper and numpy are used.
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.mapping import TENSOR_TYPE_TO_NP_TYPE

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import case_io  # noqa: E402
import npref  # noqa: E402

F32_MIN = float(np.finfo(np.float32).min)
VOCAB, HID, HEADS, FFN, MAXPOS = 1024, 64, 4, 256, 512
_erf = np.vectorize(math.erf, otypes=[np.float64])


# ---- graph builder ------------------------------------------------------

class Builder:
    """Collects nodes and initializers.  Inputs of op() that are not names
    become Constant nodes (int -> int64, float -> float32, as exporters
    write them)."""

    def __init__(self, params):
        self.params, self.nodes, self.inits, self.vinfo = params, [], {}, []
        self.count = 0

    def _name(self, base):
        self.count += 1
        return "/%s_%d" % (base, self.count)

    def p(self, name):
        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(self.params[name], name)
        return name

    def const(self, v):
        if isinstance(v, str):
            return v
        a = np.asarray(v)
        if a.dtype.kind == "f":
            a = a.astype(np.float32)
        elif a.dtype.kind in "iu":
            a = a.astype(np.int64)
        out = self._name("Constant")
        self.nodes.append(helper.make_node("Constant", [], [out], name=out,
                          value=numpy_helper.from_array(a)))
        return out

    def op(self, op_type, *inputs, outs=1, **attrs):
        names = [self._name(op_type) for _ in range(outs)]
        ins = ["" if i is None else self.const(i) for i in inputs]
        self.nodes.append(helper.make_node(op_type, ins, names, name=names[0], **attrs))
        return names[0] if outs == 1 else names

    def info(self, name, dims, elem=TensorProto.FLOAT):
        self.vinfo.append(helper.make_tensor_value_info(name, elem, dims))

    def model(self, name, inputs, outputs, opset):
        """inputs/outputs: (name, elem_type, dims); outputs are renamed
        with Identity-free renaming of the producing node's output."""
        rename = {}
        for (oname, _, _), src in zip(outputs, self._outsrc):
            rename[src] = oname
        for n in self.nodes:
            n.output[:] = [rename.get(o, o) for o in n.output]
            n.input[:] = [rename.get(i, i) for i in n.input]
        g = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(*i) for i in inputs],
            [helper.make_tensor_value_info(*o) for o in outputs],
            initializer=list(self.inits.values()), value_info=self.vinfo)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="kiln-tests-gen")
        m.ir_version = 8
        return m

    def outputs(self, *names):
        self._outsrc = names


# ---- parameters ---------------------------------------------------------

def linear_p(P, rng, name, nin, nout, std=0.1, trans=False):
    w = rng.normal(0, std, (nout, nin) if trans else (nin, nout))
    P[name + ".weight"] = w.astype(np.float32)
    P[name + ".bias"] = rng.normal(0, 0.05, nout).astype(np.float32)


def ln_p(P, rng, name, n):
    P[name + ".weight"] = (1 + rng.normal(0, 0.1, n)).astype(np.float32)
    P[name + ".bias"] = rng.normal(0, 0.1, n).astype(np.float32)


def layer_p(P, rng, pre, width, ffn, attn_in=None, std=(0.1, 0.1, 0.1)):
    """std: of the attention's, the first and the second FFN linear's weights."""
    for t in ("query", "key", "value"):
        linear_p(P, rng, pre + ".attn." + t, width, width, std=std[0])
    linear_p(P, rng, pre + ".attn.output", width, width, std=std[0])
    ln_p(P, rng, pre + ".ln1", width)
    linear_p(P, rng, pre + ".ffn1", width, ffn, std=std[1])
    linear_p(P, rng, pre + ".ffn2", ffn, width, std=std[2])
    ln_p(P, rng, pre + ".ln2", width)


def emb_p(P, rng, name, n, width, std=0.5):
    P[name] = rng.normal(0, std, (n, width)).astype(np.float32)


# ---- numpy reference pieces (float64) -----------------------------------

def r_ln(x, P, pre, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * P[pre + ".weight"] + P[pre + ".bias"]


def r_lin(x, P, pre):
    return x @ P[pre + ".weight"] + P[pre + ".bias"]


def r_gelu(x):
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def r_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def r_attend(q, k, v, heads, add_mask):
    """q [B,Sq,W], k/v [B,Sk,W], add_mask [B,Sk] added to every score."""
    B, Sq, W = q.shape
    dh = W // heads
    q, k, v = (t.reshape(B, -1, heads, dh) for t in (q, k, v))
    s = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh) + add_mask[:, None, None, :]
    return np.einsum("bhqk,bkhd->bqhd", r_softmax(s), v).reshape(B, Sq, W)


def r_layer(x, P, pre, heads, add_mask):
    a = r_attend(*(r_lin(x, P, pre + ".attn." + t) for t in ("query", "key", "value")),
                 heads, add_mask)
    h = r_ln(r_lin(a, P, pre + ".attn.output") + x, P, pre + ".ln1")
    f = r_lin(r_gelu(r_lin(h, P, pre + ".ffn1")), P, pre + ".ffn2")
    return r_ln(f + h, P, pre + ".ln2")


def r_bert_embed(P, ids, tt):
    S = ids.shape[1]
    e = P["emb.word"][ids] + P["emb.type"][tt] + P["emb.pos"][np.arange(S)][None]
    return r_ln(e, P, "emb.ln")


# ---- graph pieces, TorchScript-exporter style (opset 14) ----------------

def g_ln(b, x, pre):
    """LayerNorm decomposed as the opset-14 exporter writes it."""
    d = b.op("Sub", x, b.op("ReduceMean", x, axes=[-1]))
    v = b.op("ReduceMean", b.op("Pow", d, 2.0), axes=[-1])
    y = b.op("Div", d, b.op("Sqrt", b.op("Add", v, 1e-12)))
    return b.op("Add", b.op("Mul", y, b.p(pre + ".weight")), b.p(pre + ".bias"))


def g_lin(b, x, pre):
    return b.op("Add", b.p(pre + ".bias"), b.op("MatMul", x, b.p(pre + ".weight")))


def g_gelu_erf(b, x):
    e = b.op("Erf", b.op("Div", x, 1.4142135381698608))
    return b.op("Mul", b.op("Mul", x, b.op("Add", e, 1.0)), 0.5)


def g_dim(b, x, i):
    """Unsqueeze(Gather(Shape(x), i)): one element of a torch size list."""
    return b.op("Unsqueeze", b.op("Gather", b.op("Shape", x), np.int64(i), axis=0), [0])


def g_attend(b, q, k, v, add_mask, heads, dh, style):
    """Head split, scores, softmax, context, head merge.  style "shape":
    reshape targets from Shape->Gather->Unsqueeze->Concat chains; "zero":
    Reshape with 0 (copy this dim) entries."""
    def split(t):
        if style == "shape":
            shp = b.op("Concat", g_dim(b, t, 0), g_dim(b, t, 1), [heads], [dh], axis=0)
        else:
            shp = [0, 0, heads, dh]
        return b.op("Reshape", t, shp)
    qh = b.op("Transpose", split(q), perm=[0, 2, 1, 3])
    kt = b.op("Transpose", split(k), perm=[0, 2, 3, 1])
    vh = b.op("Transpose", split(v), perm=[0, 2, 1, 3])
    s = b.op("Div", b.op("MatMul", qh, kt), float(math.sqrt(dh)))
    p = b.op("Softmax", b.op("Add", s, add_mask), axis=-1)
    c = b.op("Transpose", b.op("MatMul", p, vh), perm=[0, 2, 1, 3])
    if style == "shape":
        shp = b.op("Concat", g_dim(b, c, 0), g_dim(b, c, 1), [-1], axis=0)
    else:
        shp = [0, 0, -1]
    return b.op("Reshape", c, shp)


def g_layer(b, x, pre, add_mask, heads, dh, style):
    q, k, v = (g_lin(b, x, pre + ".attn." + t) for t in ("query", "key", "value"))
    a = g_lin(b, g_attend(b, q, k, v, add_mask, heads, dh, style), pre + ".attn.output")
    h = g_ln(b, b.op("Add", a, x), pre + ".ln1")
    f = g_lin(b, g_gelu_erf(b, g_lin(b, h, pre + ".ffn1")), pre + ".ffn2")
    return g_ln(b, b.op("Add", f, h), pre + ".ln2")


def g_ext_mask(b, mask, minval):
    """(1 - mask[:, None, None, :]) * minval, as the exporter writes it."""
    m = b.op("Unsqueeze", b.op("Unsqueeze", mask, [1]), [2])
    return b.op("Mul", b.op("Sub", 1.0, b.op("Cast", m, to=TensorProto.FLOAT)), minval)


def bert_params(seed, layers=2, pos=MAXPOS, vocab=VOCAB, hid=HID, ffn=FFN, std=(0.1, 0.1, 0.1)):
    """A BERT encoder's embeddings and layers (also pack_bert.py's and
    quant_bert.py's, with their sizes); the generator, to draw more."""
    rng = np.random.default_rng(seed)
    P = {}
    emb_p(P, rng, "emb.word", vocab, hid)
    emb_p(P, rng, "emb.pos", pos, hid)
    emb_p(P, rng, "emb.type", 2, hid)
    ln_p(P, rng, "emb.ln", hid)
    for i in range(layers):
        layer_p(P, rng, "l%d" % i, hid, ffn, std=std)
    return P, rng


# ---- models -------------------------------------------------------------

def text_sets(seed):
    """The two data sets' text inputs (ids, mask, token types)."""
    rng = np.random.default_rng(seed)
    sets = []
    for B, S in ((2, 16), (1, 7)):
        ids = rng.integers(0, VOCAB, (B, S)).astype(np.int64)
        mask = np.ones((B, S), np.int64)
        if B == 2:
            mask[1, -5:] = 0
        tt = (np.arange(S) >= S // 2).astype(np.int64)[None].repeat(B, 0)
        sets.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})
    return sets


def bert_qa(own_mask=False):
    """own_mask: attention_mask has symbols of its own ([mbatch, msequence])
    and is Cast to float before its Unsqueezes, so the fused attentions'
    mask is the Cast's result, not the graph input (their run-time
    messages name attention_mask all the same)."""
    P, rng = bert_params(101)
    linear_p(P, rng, "qa", HID, 2, std=0.3)
    b = Builder(P)
    ids, mask, tt = "input_ids", "attention_mask", "token_type_ids"
    # position ids: Slice of a constant [1, MAXPOS] table by the length
    seq = b.op("Unsqueeze", b.op("Gather", b.op("Shape", ids), np.int64(1), axis=0), [0])
    pos = b.op("Slice", np.arange(MAXPOS, dtype=np.int64)[None], [0], seq, [1], [1])
    e = b.op("Add", b.op("Gather", b.p("emb.word"), ids), b.op("Gather", b.p("emb.type"), tt))
    x = g_ln(b, b.op("Add", e, b.op("Gather", b.p("emb.pos"), pos)), "emb.ln")
    if own_mask:
        mf = b.op("Cast", mask, to=TensorProto.FLOAT)
        am = b.op("Mul", b.op("Sub", 1.0, b.op("Unsqueeze", mf, [1, 2])), F32_MIN)
    else:
        am = g_ext_mask(b, mask, F32_MIN)
    for i in range(2):
        x = g_layer(b, x, "l%d" % i, am, HEADS, HID // HEADS, "shape")
    logits = g_lin(b, x, "qa")
    st, en = b.op("Split", logits, [1, 1], axis=-1, outs=2)
    b.outputs(b.op("Squeeze", st, [-1]), b.op("Squeeze", en, [-1]))
    I64, F = TensorProto.INT64, TensorProto.FLOAT
    dims = {mask: ["mbatch", "sequence"]} if own_mask else {}
    m = b.model("bert_qa_own_mask" if own_mask else "bert_qa",
                [(n, I64, dims.get(n, ["batch", "sequence"])) for n in (ids, mask, tt)],
                [("start_logits", F, ["batch", "sequence"]),
                 ("end_logits", F, ["batch", "sequence"])], 14)

    def ref(P, input_ids, attention_mask, token_type_ids):
        x = r_bert_embed(P, input_ids, token_type_ids)
        am = (1.0 - attention_mask) * F32_MIN
        for i in range(2):
            x = r_layer(x, P, "l%d" % i, HEADS, am)
        lg = r_lin(x, P, "qa")
        return [lg[..., 0], lg[..., 1]]
    return m, P, ref, text_sets(102)


def bert_cls_dynamo(own_syms=False, tt_heads=False):
    """own_syms: every input has dim symbols of its own (input_ids [s0, s1],
    attention_mask [s2, s3], token_type_ids [s4, s5]), as dynamo exports
    may write them even though the sizes agree at run time.  tt_heads (with
    own_syms): the head splits and merges take [B, S] from
    Shape(token_type_ids) and the head count as -1, as the real export does
    (../shared/models/bert-dynamo), so the head count is known only once
    -O2 assumes the embeddings' broadcast extent is token_type_ids'."""
    P, rng = bert_params(201)
    linear_p(P, rng, "pooler", HID, HID, trans=True)
    linear_p(P, rng, "cls", HID, 2, std=0.3, trans=True)
    b = Builder(P)
    ids, mask, tt = "input_ids", "attention_mask", "token_type_ids"
    seq = b.op("Shape", tt, start=1, end=2)
    P["position_ids"] = np.arange(MAXPOS, dtype=np.int64)[None]
    pos = b.op("Slice", b.p("position_ids"), [0], seq, [1], [1])
    e = b.op("Add", b.op("Gather", b.p("emb.word"), ids, axis=0),
             b.op("Gather", b.p("emb.type"), tt, axis=0))
    e = b.op("Add", e, b.op("Gather", b.p("emb.pos"), pos, axis=0))
    b.info(e, ["s0", "s1", HID])

    def ln(x, pre):
        return b.op("LayerNormalization", x, b.p(pre + ".weight"), b.p(pre + ".bias"),
                    axis=-1, epsilon=1e-12, stash_type=1)

    def lin(x, pre):
        return b.op("Add", b.op("MatMul", x, b.p(pre + ".weight")), b.p(pre + ".bias"))
    x = ln(e, "emb.ln")
    b.info(x, ["s0", "s1", HID])
    mb = b.op("Unsqueeze", b.op("Cast", mask, to=TensorProto.BOOL), [1, 2])
    am = b.op("Where", mb, 0.0, F32_MIN)
    b.info(am, ["s2", 1, 1, "s1"])
    dh = HID // HEADS
    for i in range(2):
        pre = "l%d." % i
        if tt_heads:
            s0, s1 = b.op("Shape", tt, start=0, end=1), b.op("Shape", tt, start=1, end=2)
            shp = b.op("Concat", s0, s1, [-1, dh], axis=0)
        else:
            s0, s1 = b.op("Shape", x, start=0, end=1), b.op("Shape", x, start=1, end=2)
            shp = b.op("Concat", s0, s1, [HEADS, dh], axis=0)
        q, k, v = (b.op("Reshape", lin(x, pre + "attn." + t), shp, allowzero=1)
                   for t in ("query", "key", "value"))
        s = b.op("MatMul", b.op("Transpose", q, perm=[0, 2, 1, 3]),
                 b.op("Transpose", k, perm=[0, 2, 3, 1]))
        p = b.op("Softmax", b.op("Add", b.op("Mul", s, 1.0 / math.sqrt(dh)), am), axis=-1)
        c = b.op("MatMul", p, b.op("Transpose", v, perm=[0, 2, 1, 3]))
        c = b.op("Reshape", b.op("Transpose", c, perm=[0, 2, 1, 3]),
                 b.op("Concat", s0, s1, [-1 if tt_heads else HID], axis=0), allowzero=1)
        h = ln(b.op("Add", lin(c, pre + "attn.output"), x), pre + "ln1")
        f = lin(b.op("Gelu", lin(h, pre + "ffn1"), approximate="none"), pre + "ffn2")
        x = ln(b.op("Add", f, h), pre + "ln2")
        b.info(x, ["s0", "s1", HID])
    cls = b.op("Gather", x, np.int64(0), axis=1)
    pooled = b.op("Tanh", b.op("Gemm", cls, b.p("pooler.weight"), b.p("pooler.bias"), transB=1))
    logits = b.op("Gemm", pooled, b.p("cls.weight"), b.p("cls.bias"), transB=1)
    flat = b.op("Reshape", x, [-1, HID], allowzero=0)
    b.info(flat, ["s0*s1", HID])
    tok = b.op("Gemm", flat, b.p("cls.weight"), b.p("cls.bias"), transB=1)
    b.outputs(logits, tok)
    I64, F = TensorProto.INT64, TensorProto.FLOAT
    syms = ([["s0", "s1"], ["s2", "s3"], ["s4", "s5"]] if own_syms else
            [["s0", "s1"], ["s2", "s1"], ["s0", "s1"]])
    name = "bert_dynamo_tt_heads" if tt_heads else "bert_dynamo_own_syms"
    m = b.model(name if own_syms else "bert_cls_dynamo",
                [(n, I64, d) for n, d in zip((ids, mask, tt), syms)],
                [("logits", F, ["s0", 2]), ("token_logits", F, ["s0*s1", 2])], 20)

    def ref(P, input_ids, attention_mask, token_type_ids):
        x = r_bert_embed(P, input_ids, token_type_ids)
        am = np.where(attention_mask != 0, 0.0, F32_MIN)
        for i in range(2):
            x = r_layer(x, P, "l%d" % i, HEADS, am)
        pooled = np.tanh(x[:, 0] @ P["pooler.weight"].T + P["pooler.bias"])
        cls = lambda t: t @ P["cls.weight"].T + P["cls.bias"]  # noqa: E731
        return [cls(pooled), cls(x.reshape(-1, HID))]
    return m, P, ref, text_sets(202)


def xlnet():
    """XLNet two-stream relative attention (content h, query g), Einsum
    based, 2 layers; LayerNormalization at opset 17."""
    rng = np.random.default_rng(301)
    P, D, N, dh, L = {}, HID, HEADS, HID // HEADS, 2
    emb_p(P, rng, "word", VOCAB, D)
    P["mask_emb"] = rng.normal(0, 0.5, (1, 1, D)).astype(np.float32)
    P["inv_freq"] = (1 / 10000 ** (np.arange(0, D, 2.0) / D)).astype(np.float32)
    for i in range(L):
        for t in ("q", "k", "v", "o", "r"):
            P["l%d.%s" % (i, t)] = rng.normal(0, 0.1, (D, N, dh)).astype(np.float32)
        P["l%d.r_w_bias" % i] = rng.normal(0, 0.1, (N, dh)).astype(np.float32)
        P["l%d.r_r_bias" % i] = rng.normal(0, 0.1, (N, dh)).astype(np.float32)
        ln_p(P, rng, "l%d.ln_a" % i, D)
        linear_p(P, rng, "l%d.ff1" % i, D, FFN)
        linear_p(P, rng, "l%d.ff2" % i, FFN, D)
        ln_p(P, rng, "l%d.ln_f" % i, D)
    b = Builder(P)
    ids, mask = "input_ids", "attention_mask"
    F = TensorProto.FLOAT
    h = b.op("Transpose", b.op("Gather", b.p("word"), ids), perm=[1, 0, 2])   # [S,B,D]
    g = b.op("Expand", b.p("mask_emb"), b.op("Shape", h))
    shp = b.op("Shape", ids)
    bsz = b.op("Gather", shp, [0], axis=0)
    qlen = b.op("Gather", shp, np.int64(1), axis=0)
    fq = b.op("Cast", qlen, to=F)
    pos_seq = b.op("Range", fq, b.op("Neg", fq), -1.0)                        # [2S]
    sinus = b.op("Einsum", pos_seq, b.p("inv_freq"), equation="i,d->id")
    pos = b.op("Concat", b.op("Sin", sinus), b.op("Cos", sinus), axis=-1)
    pos = b.op("Expand", b.op("Unsqueeze", pos, [1]), b.op("Concat", [1], bsz, [1], axis=0))
    # masks [B,1,1,S] (content) and [B,1,S,S] (query: also not itself)
    pad = b.op("Sub", 1.0, b.op("Cast", mask, to=F))
    cmask = b.op("Unsqueeze", pad, [1, 2])
    ar = b.op("Range", np.int64(0), qlen, np.int64(1))
    eye = b.op("Cast", b.op("Equal", b.op("Unsqueeze", ar, [1]), b.op("Unsqueeze", ar, [0])), to=F)
    qmask = b.op("Cast", b.op("Greater", b.op("Add", cmask, eye), 0.0), to=F)

    def rel_shift(x):
        xs = b.op("Shape", x)
        d = [b.op("Gather", xs, [j], axis=0) for j in range(4)]
        x = b.op("Reshape", x, b.op("Concat", d[0], d[1], d[3], d[2], axis=0))
        x = b.op("Slice", x, [1], [2 ** 62], [2])
        x = b.op("Reshape", x, b.op("Concat", d[0], d[1], d[2], b.op("Sub", d[3], [1]), axis=0))
        return b.op("Gather", x, ar, axis=3)

    def ln(x, pre):
        return b.op("LayerNormalization", x, b.p(pre + ".weight"), b.p(pre + ".bias"),
                    axis=-1, epsilon=1e-12)
    for i in range(L):
        pre = "l%d." % i
        proj = lambda x, w: b.op("Einsum", x, b.p(pre + w), equation="ibh,hnd->ibnd")  # noqa
        k_h, v_h, k_r = proj(h, "k"), proj(h, "v"), proj(pos, "r")

        def rel_attn(x, m):
            q = proj(x, "q")
            ac = b.op("Einsum", b.op("Add", q, b.p(pre + "r_w_bias")), k_h,
                      equation="ibnd,jbnd->bnij")
            bd = b.op("Einsum", b.op("Add", q, b.p(pre + "r_r_bias")), k_r,
                      equation="ibnd,jbnd->bnij")
            s = b.op("Mul", b.op("Add", ac, rel_shift(bd)), 1 / math.sqrt(dh))
            p = b.op("Softmax", b.op("Sub", s, b.op("Mul", m, 1e30)), axis=3)
            vec = b.op("Einsum", p, v_h, equation="bnij,jbnd->ibnd")
            o = b.op("Einsum", vec, b.p(pre + "o"), equation="ibnd,hnd->ibh")
            return ln(b.op("Add", o, x), pre + "ln_a")

        def ff(x):
            y = g_lin(b, g_gelu_erf(b, g_lin(b, x, pre + "ff1")), pre + "ff2")
            return ln(b.op("Add", y, x), pre + "ln_f")
        h, g = ff(rel_attn(h, cmask)), ff(rel_attn(g, qmask))
    b.outputs(b.op("Transpose", h, perm=[1, 0, 2]), b.op("Transpose", g, perm=[1, 0, 2]))
    I64 = TensorProto.INT64
    m = b.model("xlnet", [(ids, I64, ["batch", "sequence"]), (mask, I64, ["batch", "sequence"])],
                [("output_h", F, ["batch", "sequence", D]),
                 ("output_g", F, ["batch", "sequence", D])], 17)

    def ref(P, input_ids, attention_mask):
        B, S = input_ids.shape
        h = P["word"][input_ids].transpose(1, 0, 2)
        g = np.broadcast_to(P["mask_emb"], h.shape)
        pos_seq = np.arange(S, -S, -1.0)
        ang = pos_seq[:, None] * P["inv_freq"][None]
        pos = np.concatenate([np.sin(ang), np.cos(ang)], -1)                 # [2S, D]
        pad = (attention_mask == 0)[:, None, None, :]                        # [B,1,1,S]
        qm = pad | np.eye(S, dtype=bool)[None, None]
        # relative distance i - j sits at row S - (i - j) of pos
        rel = S - np.arange(S)[:, None] + np.arange(S)[None]
        for i in range(L):
            pre = "l%d." % i
            k_h = np.einsum("ibh,hnd->ibnd", h, P[pre + "k"])
            v_h = np.einsum("ibh,hnd->ibnd", h, P[pre + "v"])
            k_r = np.einsum("ph,hnd->pnd", pos, P[pre + "r"])[rel]           # [i,j,n,d]

            def attn(x, m):
                q = np.einsum("ibh,hnd->ibnd", x, P[pre + "q"])
                ac = np.einsum("ibnd,jbnd->bnij", q + P[pre + "r_w_bias"], k_h)
                bd = np.einsum("ibnd,ijnd->bnij", q + P[pre + "r_r_bias"], k_r)
                s = (ac + bd) / math.sqrt(dh) - 1e30 * m
                o = np.einsum("bnij,jbnd->ibnd", r_softmax(s), v_h)
                return r_ln(np.einsum("ibnd,hnd->ibh", o, P[pre + "o"]) + x, P, pre + "ln_a")

            def ff(x):
                y = r_lin(r_gelu(r_lin(x, P, pre + "ff1")), P, pre + "ff2")
                return r_ln(y + x, P, pre + "ln_f")
            h, g = ff(attn(h, pad)), ff(attn(g, qm))
        return [h.transpose(1, 0, 2), g.transpose(1, 0, 2)]
    sets = [{k: s[k] for k in (ids, mask)} for s in text_sets(302)]
    return m, P, ref, sets


def vilbert():
    """ViLBERT: text stream (64) and region stream (48), one single-stream
    layer each, then co-attention both ways at width 64; opset 14, head
    splits with Reshape [0, 0, heads, dh]."""
    rng = np.random.default_rng(401)
    P, VW, VF = {}, 48, 96
    emb_p(P, rng, "emb.word", VOCAB, HID)
    emb_p(P, rng, "emb.pos", MAXPOS, HID)
    ln_p(P, rng, "emb.ln", HID)
    linear_p(P, rng, "v.feat", 32, VW, std=0.3)
    linear_p(P, rng, "v.box", 5, VW, std=0.3)
    ln_p(P, rng, "v.ln", VW)
    layer_p(P, rng, "t0", HID, FFN)
    layer_p(P, rng, "v0", VW, VF)
    for name, nin in (("co.tq", HID), ("co.tk", HID), ("co.tv", HID),
                      ("co.vq", VW), ("co.vk", VW), ("co.vv", VW)):
        linear_p(P, rng, name, nin, HID)
    linear_p(P, rng, "co.to", HID, HID)
    linear_p(P, rng, "co.vo", HID, VW)
    for s, w, f in (("ct", HID, FFN), ("cv", VW, VF)):
        ln_p(P, rng, s + ".ln1", w)
        linear_p(P, rng, s + ".ffn1", w, f)
        linear_p(P, rng, s + ".ffn2", f, w)
        ln_p(P, rng, s + ".ln2", w)
    b = Builder(P)
    F, I64 = TensorProto.FLOAT, TensorProto.INT64
    ids, mask, feat, box, vmask = ("input_ids", "attention_mask", "region_features",
                                   "boxes", "image_attention_mask")
    # text embeddings: positions from Range over the length
    S = b.op("Gather", b.op("Shape", ids), np.int64(1), axis=0)
    pos = b.op("Unsqueeze", b.op("Range", np.int64(0), S, np.int64(1)), [0])
    t = b.op("Add", b.op("Gather", b.p("emb.word"), ids), b.op("Gather", b.p("emb.pos"), pos))
    t = g_ln(b, t, "emb.ln")
    v = g_ln(b, b.op("Add", g_lin(b, feat, "v.feat"), g_lin(b, box, "v.box")), "v.ln")
    tm, vm = g_ext_mask(b, mask, -10000.0), g_ext_mask(b, vmask, -10000.0)
    t = g_layer(b, t, "t0", tm, HEADS, HID // HEADS, "zero")
    v = g_layer(b, v, "v0", vm, HEADS, VW // HEADS, "zero")
    dh = HID // HEADS
    ct = g_attend(b, g_lin(b, t, "co.tq"), g_lin(b, v, "co.vk"), g_lin(b, v, "co.vv"),
                  vm, HEADS, dh, "zero")
    cv = g_attend(b, g_lin(b, v, "co.vq"), g_lin(b, t, "co.tk"), g_lin(b, t, "co.tv"),
                  tm, HEADS, dh, "zero")

    def tail(x, c, o, s):
        h = g_ln(b, b.op("Add", g_lin(b, c, o), x), s + ".ln1")
        f = g_lin(b, g_gelu_erf(b, g_lin(b, h, s + ".ffn1")), s + ".ffn2")
        return g_ln(b, b.op("Add", f, h), s + ".ln2")
    b.outputs(tail(t, ct, "co.to", "ct"), tail(v, cv, "co.vo", "cv"))
    m = b.model("vilbert",
                [(ids, I64, ["batch", "sequence"]), (mask, I64, ["batch", "sequence"]),
                 (feat, F, ["batch", "regions", 32]), (box, F, ["batch", "regions", 5]),
                 (vmask, I64, ["batch", "regions"])],
                [("text_out", F, ["batch", "sequence", HID]),
                 ("region_out", F, ["batch", "regions", VW])], 14)

    def ref(P, input_ids, attention_mask, region_features, boxes, image_attention_mask):
        S = input_ids.shape[1]
        t = r_ln(P["emb.word"][input_ids] + P["emb.pos"][:S][None], P, "emb.ln")
        v = r_ln(r_lin(region_features, P, "v.feat") + r_lin(boxes, P, "v.box"), P, "v.ln")
        tm, vm = (1.0 - attention_mask) * -10000.0, (1.0 - image_attention_mask) * -10000.0
        t, v = r_layer(t, P, "t0", HEADS, tm), r_layer(v, P, "v0", HEADS, vm)
        ct = r_attend(r_lin(t, P, "co.tq"), r_lin(v, P, "co.vk"), r_lin(v, P, "co.vv"), HEADS, vm)
        cv = r_attend(r_lin(v, P, "co.vq"), r_lin(t, P, "co.tk"), r_lin(t, P, "co.tv"), HEADS, tm)

        def tail(x, c, o, s):
            h = r_ln(r_lin(c, P, o) + x, P, s + ".ln1")
            return r_ln(r_lin(r_gelu(r_lin(h, P, s + ".ffn1")), P, s + ".ffn2") + h, P, s + ".ln2")
        return [tail(t, ct, "co.to", "ct"), tail(v, cv, "co.vo", "cv")]
    sets = []
    rng = np.random.default_rng(402)
    for s, R in zip(text_sets(403), (6, 4)):
        B = s["input_ids"].shape[0]
        vmask = np.ones((B, R), np.int64)
        if B == 2:
            vmask[1, -2:] = 0
        boxes = np.concatenate([rng.uniform(0, 1, (B, R, 4)), rng.uniform(0, 0.5, (B, R, 1))], -1)
        sets.append({"input_ids": s["input_ids"], "attention_mask": s["attention_mask"],
                     "region_features": rng.normal(0, 1, (B, R, 32)).astype(np.float32),
                     "boxes": boxes.astype(np.float32), "image_attention_mask": vmask})
    return m, P, ref, sets


def ops_zoo():
    """Small graphs over the less common ops kiln lists, one output each."""
    b = Builder({})
    F, I64 = TensorProto.FLOAT, TensorProto.INT64
    x, idx = "x", "idx"
    outs = {}
    outs["gather_elements"] = b.op("GatherElements", x, idx, axis=1)
    outs["gather_nd"] = b.op("GatherND", x, [[0, 1], [0, 5], [0, 0]])
    outs["cumsum"] = b.op("CumSum", x, np.int64(1))
    outs["cumsum_rev_excl"] = b.op("CumSum", x, np.int64(-1), exclusive=1, reverse=1)
    gram = b.op("MatMul", b.op("Transpose", x, perm=[1, 0]), x)                  # [6,6]
    outs["eyelike_trilu"] = b.op("Add", b.op("EyeLike", gram, k=1),
                                 b.op("Trilu", gram, np.int64(-1), upper=0))
    outs["onehot"] = b.op("OneHot", idx, np.int64(8), [0.0, 2.0], axis=1)        # [B,8,6]
    sq = b.op("Sqrt", x)
    outs["where_isnan"] = b.op("Where", b.op("IsNaN", sq), -1.0, sq)
    outs["expand"] = b.op("Expand", b.op("Unsqueeze", x, [1]), [1, 3, 1])
    outs["tile"] = b.op("Tile", x, [2, 3])
    outs["argmax_last"] = b.op("ArgMax", b.op("Floor", x), axis=1, keepdims=0,
                               select_last_index=1)
    b.outputs(*outs.values())
    out_decl = [("gather_elements", F, ["batch", 6]), ("gather_nd", F, [3]),
                ("cumsum", F, ["batch", 6]), ("cumsum_rev_excl", F, ["batch", 6]),
                ("eyelike_trilu", F, [6, 6]), ("onehot", F, ["batch", 8, 6]),
                ("where_isnan", F, ["batch", 6]), ("expand", F, ["batch", 3, 6]),
                ("tile", F, ["2*batch", 18]), ("argmax_last", I64, ["batch"])]
    m = b.model("ops_zoo", [(x, F, ["batch", 6]), (idx, I64, ["batch", 6])], out_decl, 14)

    def ref(P, x, idx):
        B = x.shape[0]
        rows = np.arange(B)[:, None]
        gram = x.T @ x
        sq = np.sqrt(np.maximum(x, 0))
        fl = np.floor(x)
        last = np.array([max(j for j in range(6) if fl[r, j] == fl[r].max()) for r in range(B)])
        onehot = np.zeros((B, 8, 6))
        for r in range(B):
            for j in range(6):
                onehot[r, idx[r, j] % 8, j] = 2.0
        rev_excl = np.array([[x[r, j + 1:].sum() for j in range(6)] for r in range(B)])
        return [x[rows, idx % 6], x[0, [1, 5, 0]], np.cumsum(x, 1), rev_excl,
                np.eye(6, k=1) + np.tril(gram, -1), onehot,
                np.where(x < 0, -1.0, sq), np.repeat(x[:, None, :], 3, 1),
                np.tile(x, (2, 3)), last.astype(np.int64)]
    rng = np.random.default_rng(501)
    sets = []
    for B in (2, 1):
        xv = (rng.normal(0, 2, (B, 6))).astype(np.float32)
        xv[0, 2] = xv[0, 4] = np.float32(3.5)   # an ArgMax tie after Floor
        sets.append({"x": xv, "idx": rng.integers(-6, 6, (B, 6)).astype(np.int64)})
    return m, {}, ref, sets


MODELS = {"bert_qa": bert_qa, "bert_cls_dynamo": bert_cls_dynamo,
          "bert_dynamo_own_syms": lambda: bert_cls_dynamo(own_syms=True),
          "bert_dynamo_tt_heads": lambda: bert_cls_dynamo(own_syms=True, tt_heads=True),
          "bert_qa_own_mask": lambda: bert_qa(own_mask=True),
          "xlnet": xlnet,
          "vilbert": vilbert, "ops_zoo": ops_zoo}


# ---- writing and checking -----------------------------------------------

def check_graph(m):
    """onnx.checker; onnx 1.12 knows opsets up to 17 and no Gelu, so an
    opset-20 model is checked as a copy at 17 with Gelu swapped for Tanh."""
    if m.opset_import[0].version > onnx.defs.onnx_opset_version():
        m2 = onnx.ModelProto()
        m2.CopyFrom(m)
        m2.opset_import[0].version = onnx.defs.onnx_opset_version()
        for n in m2.graph.node:
            if n.op_type == "Gelu":
                n.op_type = "Tanh"
                del n.attribute[:]
        m = m2
    onnx.checker.check_model(m, full_check=True)


def close(got, want):
    """kiln check's tolerance: 1e-4 + 1e-3 * |ref| (ints and bools exact)."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    if want.dtype.kind != "f":
        return bool((got == want).all())
    return bool((np.abs(got.astype(np.float64) - want) <= 1e-4 + 1e-3 * np.abs(want)).all())


def generate(name, outdir):
    m, P, ref, sets = MODELS[name]()
    check_graph(m)
    P64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in P.items()}
    refs = []
    for si, feeds in enumerate(sets):
        f64 = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in feeds.items()}
        outs = [np.asarray(o).astype(TENSOR_TYPE_TO_NP_TYPE[d.type.tensor_type.elem_type])
                for o, d in zip(ref(P64, **f64), m.graph.output)]
        got = npref.run(m, feeds)
        for o, r, gv in zip(m.graph.output, outs, got):
            if not close(gv, r):
                err = np.abs(gv.astype(np.float64) - r).max() if gv.shape == r.shape else gv.shape
                sys.exit("models.py: %s set %d output %s: graph (npref) and numpy reference "
                         "disagree (max err %s)" % (name, si, o.name, err))
        refs.append(outs)
    case_io.write_case(os.path.join(outdir, name), m, sets, refs)
    print("%s: %d nodes, opset %d, %d test sets" %
          (name, len(m.graph.node), m.opset_import[0].version, len(sets)))


def main(argv):
    case_io.form_main(argv, MODELS, generate, "model")


if __name__ == "__main__":
    main(sys.argv)
