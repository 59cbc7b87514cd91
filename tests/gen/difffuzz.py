"""Differential fuzzer: kiln against ONNX Runtime on small random graphs.

    /usr/bin/python3 tests/gen/difffuzz.py OUTDIR --kiln BUILD/kiln \
        [--seed S] [--count N] [--first I] [--ort-modules DIR] [--keep]
        [--modes O0,O2,baked] [--seconds T]

Case I of seed S (reproducible alone with --first I --count 1) is a graph
of 1-5 nodes drawn from the ops kiln imports (`kiln ops --json`), with
random valid attributes of the op's ONNX version (opsets 11-20), random
shapes (size-1 and 0-sized dims included), dtypes and values (NaN, inf,
-0, negative indices, out-of-range Slice bounds, ...).  About half the
cases declare their inputs' dims symbolic and get a second data set at
other sizes.  ONNX Runtime (tests/gen/difffuzz_ort.mjs, graph
optimizations off) writes the references; a case it refuses is dropped.
kiln compiles each case at every mode (-O0, -O2, and "baked": the inputs
of data set 0 made initializers, so that constant folding evaluates the
graph), runs it and compares: integers and bools exactly, floats within
atol + rtol*|ref| (NaN equal to NaN), dtypes and shapes exactly.  kiln may
refuse a graph (exit 1, one line); a crash, a hang, a message of several
lines or a run that fails where ONNX Runtime ran are findings too.

The summary: per op family how many graphs held it, ran on both sides and
how many mismatched; then one line per finding, with the case folder
(kept under OUTDIR/cases/ when it failed, or with --keep) so that
`kiln check OUTDIR/cases/NAME` reproduces it.  Exit status 1 when there
was a finding.  tests/gen/difffuzz_known.txt lists findings that are
ONNX Runtime's or the spec's, not kiln's (see there); they are reported
but do not fail the run.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from case_io import write_inputs  # noqa: E402

F32, F64, F16 = np.dtype("float32"), np.dtype("float64"), np.dtype("float16")
I8, U8, I16, U16 = np.dtype("int8"), np.dtype("uint8"), np.dtype("int16"), np.dtype("uint16")
I32, U32, I64, U64 = np.dtype("int32"), np.dtype("uint32"), np.dtype("int64"), np.dtype("uint64")
BOOL = np.dtype("bool")
ONNX_DT = {F32: TensorProto.FLOAT, F64: TensorProto.DOUBLE, F16: TensorProto.FLOAT16,
           I8: TensorProto.INT8, U8: TensorProto.UINT8, I16: TensorProto.INT16,
           U16: TensorProto.UINT16, I32: TensorProto.INT32, U32: TensorProto.UINT32,
           I64: TensorProto.INT64, U64: TensorProto.UINT64, BOOL: TensorProto.BOOL}
NP_DT = {v: k for k, v in ONNX_DT.items()}
FLT = [F32, F32, F32, F64]
SINT = [I32, I64, I64, I8]
ARITH = [F32, F32, F64, I32, I64, I64, U8, I8]
ALL = [F32, F64, F16, I8, U8, I16, U16, I32, U32, I64, U64, BOOL]
I64_MAX, I64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


class Skip(Exception):
    """This op cannot be built here (no fitting operand, opset): try another."""


class Case:
    def __init__(self, rng, opset):
        self.rng, self.opset = rng, opset
        self.nodes, self.inits, self.inputs = [], [], []   # inputs: [name, dtype, shape, kind, fixed]
        self.vals = {}      # name -> (dtype, shape or None)
        self.consts = set()
        self.used = set()
        self.ops = []
        self.n = 0
        self.tol = 1.0      # multiplies the float tolerances
        self.spec_undefined = False

    # ---- values
    def name(self, p):
        self.n += 1
        return "%s%d" % (p, self.n)

    def shape(self, rmin=0, rmax=4, zero=0.04):
        r = self.rng.randint(rmin, rmax)
        return tuple(0 if self.rng.random() < zero else self.rng.choice([1, 1, 2, 3, 4, 5]) for _ in range(r))

    def data(self, dt, shape, kind="any"):
        rng = np.random.default_rng(self.rng.getrandbits(32))
        if dt == BOOL:
            return rng.random(shape) < 0.5
        if dt.kind == "f":
            if kind.startswith("cast:"):    # finite, inside the integer type kind[5:]
                info = np.iinfo(np.dtype(kind[5:]))
                lim = min(float(np.finfo(dt).max), 3e4 if info.bits > 16 else 1e9)
                a = rng.uniform(max(info.min, -lim), min(info.max, lim), shape)
                if a.size and self.rng.random() < 0.3:
                    a.reshape(-1)[0] = self.rng.choice([-0.0, 0.5, -0.5, 0.999, -1.999])
                # (clipped after the rounding to dt, which may round up)
                return np.clip(a.astype(dt), max(info.min, -lim), min(info.max, lim)).astype(dt)
            if kind == "pos":
                a = rng.uniform(0.1, 3.0, shape)
            elif kind == "ties":
                a = rng.integers(-3, 4, shape) * 0.5
            elif kind == "small":
                a = rng.uniform(-2, 2, shape)
            else:
                a = rng.standard_normal(shape) * 2.5
            a = a.astype(dt)
            if kind in ("any", "special", "masked", "masked_nonan") and a.size and \
                    self.rng.random() < (0.12 if kind == "any" else 0.6):
                flat = a.reshape(-1)
                # masked: no +inf (a softmax of +inf is inf - inf, undefined)
                # masked_nonan: no NaN either (ONNX Runtime's LogSoftmax, known 13)
                pool = [-np.inf, -0.0, 0.0, 0.5, -2.5] + ([np.nan] if kind != "masked_nonan" else []) + \
                    ([np.inf] if not kind.startswith("masked") else [])
                for _ in range(self.rng.randint(1, 3)):
                    flat[self.rng.randrange(flat.size)] = self.rng.choice(pool)
            return a
        info = np.iinfo(dt)
        if kind == "pos":
            lo, hi = 1, min(info.max, 9)
        elif kind == "small" or kind == "ties":
            lo, hi = max(info.min, -4), min(info.max, 4)
        elif kind == "wide":
            lo, hi = info.min, info.max
        elif kind == "q7":
            lo, hi = -64, 64
        else:
            lo, hi = max(info.min, -30), min(info.max, 30)
        return rng.integers(lo, hi, shape, dtype=dt, endpoint=True)

    def inp(self, dt, shape, kind="any", fixed=False):
        n = self.name("in")
        self.inputs.append([n, dt, tuple(shape), kind, fixed])
        self.vals[n] = (dt, tuple(shape))
        return n

    def const(self, arr, dt=None):
        arr = np.asarray(arr, dtype=dt)
        n = self.name("c")
        self.inits.append(numpy_helper.from_array(arr, n))
        self.vals[n] = (arr.dtype, arr.shape)
        self.consts.add(n)
        return n

    def pick(self, dts, rmin=0, rmax=4, kind="any", fresh=0.35, shape=None):
        """A value of one of dtypes dts (a computed one or an input) with
        rank in [rmin, rmax], or a new graph input."""
        cands = [n for n, (dt, s) in self.vals.items()
                 if n not in self.consts and dt in dts and s is not None and rmin <= len(s) <= rmax
                 and kind in ("any", "special", "masked") and (shape is None or s == shape)]
        if cands and self.rng.random() > fresh:
            # prefer values nothing reads yet, so that the graph is connected
            free = [c for c in cands if c not in self.used]
            return self.rng.choice(free or cands)
        if shape is None:
            shape = self.shape(rmin, rmax)
        return self.inp(self.rng.choice(dts), shape, kind)

    def dt(self, n):
        return self.vals[n][0]

    def sh(self, n):
        return self.vals[n][1]

    def bshape(self, s):
        """A shape that broadcasts with s (either way)."""
        s = list(s)
        r = self.rng.random()
        if r < 0.3:
            s = s[self.rng.randint(0, len(s)):]
        s = [1 if self.rng.random() < 0.3 else d for d in s]
        if self.rng.random() < 0.15 and len(s) < 4:
            s = [self.rng.choice([1, 2])] + s
        return tuple(s)

    def like(self, n, dts=None, kind="any", bcast=True):
        """An operand to combine with n: same dtype (or one of dts), a
        broadcast-compatible shape."""
        dt = self.rng.choice(dts) if dts else self.dt(n)
        s = self.bshape(self.sh(n)) if bcast else self.sh(n)
        for m, (mdt, ms) in self.vals.items():
            if m != n and m not in self.consts and mdt == dt and ms == s and self.rng.random() < 0.4 and kind == "any":
                return m
        if self.rng.random() < 0.2:
            return self.const(self.data(dt, s, kind))
        return self.inp(dt, s, kind)

    # ---- nodes
    def add(self, op, ins, nout=1, **attrs):
        outs = [self.name("v") for _ in range(nout)]
        self.nodes.append(helper.make_node(op, ins, outs, name=self.name(op.lower() + "_"), **attrs))
        self.used.update(i for i in ins if i)
        self.ops.append(op)
        self.infer(outs)
        return outs if nout > 1 else outs[0]

    def model(self, outputs=None, dims=None):
        """The ONNX model; dims: input name -> list of dims (ints or names)."""
        ins = [helper.make_tensor_value_info(n, ONNX_DT[dt], (dims or {}).get(n, list(s)))
               for n, dt, s, _, _ in self.inputs]
        outs = [helper.make_tensor_value_info(o, ONNX_DT[self.vals[o][0]], None) for o in (outputs or [])]
        g = helper.make_graph(self.nodes, "difffuzz", ins, outs, initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)],
                              producer_name="difffuzz")
        m.ir_version = 8
        return m

    def infer(self, outs):
        try:
            # onnx 1.12's data propagation crashes on Shape's start/end
            prop = not any(n.op_type == "Shape" and n.attribute for n in self.nodes)
            m = shape_inference.infer_shapes(self.model(), strict_mode=True, data_prop=prop)
        except Exception as e:   # an invalid node: the generator's bug or an opset gap
            raise Skip("shape inference: %s" % str(e).splitlines()[0])
        vi = {v.name: v for v in m.graph.value_info}
        for o in outs:
            if o not in vi:
                raise Skip("no type for " + o)
            tt = vi[o].type.tensor_type
            shape = None
            if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
                shape = tuple(d.dim_value for d in tt.shape.dim)
            self.vals[o] = (NP_DT[tt.elem_type], shape)

    def axes(self, r, k=None, neg=True, sort=False):
        k = self.rng.randint(1, r) if k is None else k
        ax = self.rng.sample(range(r), k)
        if sort:
            ax.sort()
        return [a - r if neg and self.rng.random() < 0.5 else a for a in ax]

    def idx_const(self, vals, dtype=None):
        return self.const(np.array(vals, dtype=dtype or self.rng.choice([I64, I64, I32])))

    def ints(self, vals, dtype=I64):
        """An int vector operand: usually an initializer, sometimes a graph
        input fed the same values (its shape fixed, not symbolic)."""
        arr = np.array(vals, dtype=dtype)
        if self.rng.random() < 0.15:
            n = self.inp(dtype, arr.shape, "fixed", fixed=True)
            self.inputs[-1].append(arr)
            return n
        return self.const(arr)


# ---------------------------------------------------------------- op generators
UNARY_FLT = ["Exp", "Log", "Sqrt", "Reciprocal", "Sigmoid", "Tanh", "Erf", "Cos", "Sin",
             "Floor", "Ceil", "Round", "Softplus", "LeakyRelu", "Elu", "HardSigmoid", "Gelu"]


def g_unary_flt(c):
    op = c.rng.choice(UNARY_FLT)
    if op == "Gelu" and c.opset < 20:
        raise Skip("Gelu needs opset 20")
    x = c.pick(FLT, kind="special" if c.rng.random() < 0.3 else "any")
    at = {}
    if op == "LeakyRelu" or op == "Elu":
        at["alpha"] = c.rng.choice([0.01, 0.3, 1.0, 2.5, -0.5])
    if op == "HardSigmoid":
        at = {"alpha": c.rng.choice([0.2, 0.5, 1.0]), "beta": c.rng.choice([0.5, 0.1, 0.0])}
    if op == "Gelu":
        at["approximate"] = c.rng.choice(["none", "tanh"])
    c.add(op, [x], **at)


def g_unary_snum(c):
    op = c.rng.choice(["Abs", "Neg", "Relu", "Sign"])
    x = c.pick([F32, F64, I8, I32, I64])
    c.add(op, [x])


def g_isx(c):
    op = c.rng.choice(["IsNaN", "IsInf", "Not"])
    if op == "Not":
        c.add(op, [c.pick([BOOL])])
        return
    x = c.pick(FLT, kind="special")
    at = {}
    if op == "IsInf":
        at = {"detect_negative": c.rng.randint(0, 1), "detect_positive": c.rng.randint(0, 1)}
    c.add(op, [x], **at)


def g_binary(c):
    op = c.rng.choice(["Add", "Sub", "Mul", "Div", "Div", "Pow", "Mod", "Mod"])
    if op == "Pow":
        a = c.pick([F32, F32, F64, I32, I64], kind="small")
        # an integer power that overflows, is negative, or of a negative
        # base to a fraction is undefined (ONNX Runtime: through double)
        if c.dt(a).kind == "f":
            # "ties": whole and half exponents, so that negative bases meet
            # odd, even and fractional powers
            b = c.like(a, dts=[F32, I64, I32, c.dt(a)], kind=c.rng.choice(["small", "ties"]))
        else:
            b = c.like(a, dts=[I64, I32, c.dt(a)], kind="pos")
        c.tol = 10.0
    elif op == "Mod":
        a = c.pick([F32, F64, I32, I64, I64, I8, U8, I16])
        fmod = 1 if c.dt(a).kind == "f" else c.rng.randint(0, 1)
        b = c.like(a, kind="pos")
        if c.rng.random() < 0.5:   # negative divisors too
            b = c.add("Neg", [b]) if c.dt(b) in (F32, F64, I8, I32, I64) else b
        c.add(op, [a, b], fmod=fmod)
        return
    elif op == "Div":
        a = c.pick(ARITH)
        b = c.like(a, kind="pos" if c.dt(a).kind != "f" else "any")
        if c.dt(a).kind == "i" and c.rng.random() < 0.5 and c.dt(b) in (I8, I32, I64):
            b = c.add("Neg", [b])
    else:
        a = c.pick(ARITH)
        b = c.like(a)
    ab = [a, b] if c.rng.random() < 0.7 else [b, a]
    if op == "Pow":
        ab = [a, b]
    c.add(op, ab)


def g_compare(c):
    op = c.rng.choice(["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor"])
    if op in ("And", "Or", "Xor"):
        a = c.pick([BOOL])
    else:
        if op in ("LessOrEqual", "GreaterOrEqual") and c.opset < 12:
            raise Skip("opset")
        a = c.pick([F32, I32, I64, BOOL] if op == "Equal" else [F32, F64, I32, I64], kind="ties")
    b = c.like(a, kind="ties")
    c.add(op, [a, b])


def g_variadic(c):
    op = c.rng.choice(["Max", "Min", "Sum", "Mean"])
    a = c.pick(FLT if op == "Mean" else [F32, F64, I32, I64])
    ins = [a] + [c.like(a) for _ in range(c.rng.randint(0, 2))]
    c.rng.shuffle(ins)
    c.add(op, ins)


def g_where(c):
    x = c.pick(ALL[:1] + [I64, I32, BOOL, F32])
    y = c.like(x)
    cond = c.like(x, dts=[BOOL])
    c.add("Where", [cond, x, y])


def g_clip(c):
    x = c.pick([F32, F64, I32, I64, I8, U8], kind="special")
    dt = c.dt(x)
    lo = c.data(dt, (), "small")
    hi = c.data(dt, (), "small")
    if lo > hi and c.rng.random() < 0.7:
        lo, hi = hi, lo
    ins = [x, c.const(lo) if c.rng.random() < 0.7 else "", c.const(hi) if c.rng.random() < 0.7 else ""]
    while ins and ins[-1] == "":
        ins.pop()
    c.add("Clip", ins)


def g_cast(c):
    src = c.rng.choice(ALL)
    to = c.rng.choice(ALL)
    f2i = src.kind == "f" and to.kind in "iu"
    if f2i and c.rng.random() < 0.7:
        # float to integer of NaN, inf or a value out of range is undefined:
        # mostly finite values inside the target's range
        x = c.inp(src, c.shape(), "cast:" + to.str)
    else:
        x = c.pick([src], kind="special" if src.kind == "f" else "wide")
        if c.dt(x).kind == "f" and to.kind in "iu":
            c.spec_undefined = True
    if c.rng.random() < 0.2 and c.opset >= 15:
        like = c.const(np.zeros((), to))
        c.add("CastLike", [x, like])
    else:
        c.add("Cast", [x], to=ONNX_DT[to])


def g_identity(c):
    x = c.pick(ALL)
    if c.rng.random() < 0.5:
        c.add("Identity", [x])
    else:
        ins = [x]
        if c.rng.random() < 0.5 and c.dt(x).kind == "f" and c.opset >= 12:
            ins.append(c.const(np.array(0.3, c.dt(x))))
        c.add("Dropout", ins, nout=1)


REDUCE = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare"]


def g_reduce(c):
    op = c.rng.choice(REDUCE)
    x = c.pick([F32, F32, F64, I32, I64], rmin=0, kind="small")
    r = len(c.sh(x))
    at = {}
    if c.rng.random() < 0.7:
        at["keepdims"] = c.rng.randint(0, 1)
    input_form = c.opset >= 18 or (op == "ReduceSum" and c.opset >= 13)
    choice = c.rng.random()
    ax = c.axes(r) if r and choice < 0.75 else []
    ins = [x]
    if input_form:
        if ax or choice < 0.9:
            if ax or c.rng.random() < 0.5:
                ins.append(c.ints(ax))
        if c.rng.random() < 0.4:
            at["noop_with_empty_axes"] = c.rng.randint(0, 1)
    elif ax:
        at["axes"] = ax
    if 0 in c.sh(x):    # ONNX Runtime: a wrong shape (difffuzz_known.txt)
        raise Skip("reduce of nothing")
    c.add(op, ins, **at)


def g_arg(c):
    op = c.rng.choice(["ArgMax", "ArgMin"])
    x = c.pick([F32, F64, I32, I64, I8, U8], rmin=1, kind="ties")
    r = len(c.sh(x))
    ax = c.rng.randrange(-r, r)
    if 0 in c.sh(x):    # ONNX Runtime: the input's shape (difffuzz_known.txt)
        raise Skip("arg of nothing")
    at = {"axis": ax}
    if c.rng.random() < 0.6:
        at["keepdims"] = c.rng.randint(0, 1)
    if c.opset >= 12 and c.rng.random() < 0.6:
        at["select_last_index"] = c.rng.randint(0, 1)
    c.add(op, [x], **at)


def g_cumsum(c):
    x = c.pick([F32, F64, I32, I64], rmin=1)
    r = len(c.sh(x))
    ax = c.const(np.array(c.rng.randrange(-r, r), c.rng.choice([I32, I64])))
    at = {k: c.rng.randint(0, 1) for k in ("exclusive", "reverse") if c.rng.random() < 0.7}
    c.add("CumSum", [x, ax], **at)


def g_softmax(c):
    op = c.rng.choice(["Softmax", "LogSoftmax"])
    # LogSoftmax: a fresh input without NaN (difffuzz_known.txt 13)
    x = c.pick(FLT, rmin=1, kind="masked" if op == "Softmax" else "masked_nonan")
    r = len(c.sh(x))
    at = {}
    if c.rng.random() < 0.8:
        at["axis"] = c.rng.randrange(-r, r)
    c.add(op, [x], **at)


def g_layernorm(c):
    if c.opset < 17:
        raise Skip("opset")
    x = c.pick([F32], rmin=1)
    r = len(c.sh(x))
    ax = c.rng.randrange(-r, r)
    ns = c.sh(x)[ax % r:]
    ins = [x, c.const(c.data(F32, ns))]
    if c.rng.random() < 0.6:
        ins.append(c.const(c.data(F32, ns)))
    at = {"axis": ax}
    if c.rng.random() < 0.5:
        at["epsilon"] = c.rng.choice([1e-5, 1e-12, 0.1])
    c.add("LayerNormalization", ins, **at)


def g_matmul(c):
    m, k, n = (c.rng.choice([1, 2, 3, 5]) for _ in range(3))
    batch = c.shape(0, 2, zero=0.02)
    form = c.rng.random()
    sa = (k,) if form < 0.15 else batch + (m, k)
    sb = (k,) if 0.15 <= form < 0.3 else c.bshape(batch) + (k, n)
    if c.rng.random() < 0.3:
        sa, sb = c.bshape(batch) + sa[-2:] if len(sa) > 1 else sa, sb
    dt = c.rng.choice([F32, F32, F64, I32, I64])
    a = c.pick([dt], shape=sa)
    b = c.pick([dt], shape=sb) if c.rng.random() < 0.5 else c.const(c.data(dt, sb))
    c.add("MatMul", [a, b])


def g_gemm(c):
    m, k, n = (c.rng.choice([1, 2, 3, 4]) for _ in range(3))
    ta, tb = c.rng.randint(0, 1), c.rng.randint(0, 1)
    a = c.pick([F32], shape=(k, m) if ta else (m, k))
    b = c.pick([F32], shape=(n, k) if tb else (k, n)) if c.rng.random() < 0.5 else \
        c.const(c.data(F32, (n, k) if tb else (k, n)))
    ins = [a, b]
    if c.rng.random() < 0.7:
        ins.append(c.const(c.data(F32, c.rng.choice([(), (n,), (1, n), (m, 1), (m, n)]))))
    at = {}
    if ta:
        at["transA"] = 1
    if tb:
        at["transB"] = 1
    if c.rng.random() < 0.4:
        at["alpha"] = c.rng.choice([0.5, 2.0, -1.0])
    if c.rng.random() < 0.4:
        at["beta"] = c.rng.choice([0.0, 0.5, 3.0])
    c.add("Gemm", ins, **at)


EINSUM = ["ij,jk->ik", "bij,bjk->bik", "ij->ji", "bhqd,bhkd->bhqk", "i,i->", "ij->", "ij,ij->ij",
          "ij->i", "bid,bjd->bij", "ibnd,jbnd->bnij", "bnij,jbnd->ibnd", "ij,j->i", "i,j->ij",
          "abc->cab", "ijk,ik->ij", "...ij,...jk->...ik", "bij->bj", "ii->i", "ii->", "ij,kj->ik"]


def g_einsum(c):
    eq = c.rng.choice(EINSUM)
    lhs, _ = eq.split("->")
    size = {ch: c.rng.choice([1, 2, 3, 4]) for ch in "abcdhijknqr"}
    ell = c.shape(0, 2, zero=0)
    ins = []
    for term in lhs.split(","):
        s = (ell if "..." in term else ()) + tuple(size[ch] for ch in term.replace("...", ""))
        ins.append(c.pick(FLT, shape=s) if c.rng.random() < 0.6 else c.const(c.data(F32, s)))
    dts = {c.dt(i) for i in ins}
    if len(dts) > 1:
        ins = [c.add("Cast", [i], to=TensorProto.FLOAT) if c.dt(i) != F32 else i for i in ins]
    c.add("Einsum", ins, equation=eq)


def g_einsum_rand(c):
    """A random valid equation: 1-3 operands of rank 0-4, a letter repeated
    in a term (a diagonal), "..." broadcast across operands, an explicit
    output (any subset and order, letters summed away) or the implicit one."""
    pool = c.rng.sample("abcdefijkxyz", c.rng.randint(1, 6))
    size = {ch: c.rng.choice([1, 2, 3, 4]) for ch in pool}
    nin = c.rng.choice([1, 2, 2, 2, 3])
    ell = c.rng.random() < 0.3
    ell_rank = c.rng.randint(0, 2)
    terms, shapes = [], []
    for _ in range(nin):
        letters = [c.rng.choice(pool) for _ in range(c.rng.randint(0, 3))]
        if letters and c.rng.random() < 0.15:
            letters.insert(c.rng.randrange(len(letters) + 1), c.rng.choice(letters))   # diagonal
        has_ell = ell and c.rng.random() < 0.8
        pos = c.rng.randint(0, len(letters))
        er = c.rng.randint(0, ell_rank) if has_ell else 0
        edims = [c.rng.choice([1, 2]) for _ in range(er)]
        shape = [size[ch] for ch in letters[:pos]] + (edims if has_ell else []) + [size[ch] for ch in letters[pos:]]
        terms.append("".join(letters[:pos]) + ("..." if has_ell else "") + "".join(letters[pos:]))
        shapes.append(tuple(shape))
    if ell:     # "..." dims broadcast right-aligned: make each pair 1 or the same size
        ed = [2] * ell_rank
        for k, t in enumerate(terms):
            if "..." in t:
                pos = t.index("...")
                er = len(shapes[k]) - len(t.replace("...", ""))
                sh_ = list(shapes[k])
                for j in range(er):
                    if sh_[pos + j] != 1:
                        sh_[pos + j] = ed[ell_rank - er + j]
                shapes[k] = tuple(sh_)
    used = sorted(set("".join(terms).replace(".", "")))
    anyell = any("..." in t for t in terms)
    if c.rng.random() < 0.25:
        eq = ",".join(terms)
    else:
        out = c.rng.sample(used, c.rng.randint(0, len(used)))
        if anyell:
            out.insert(c.rng.randint(0, len(out)), "...")
        eq = ",".join(terms) + "->" + "".join(out)
    dt = c.rng.choice([F32, F32, F32, F64, F64, I64])    # (kiln refuses integer Einsum in one line)
    ins = [c.pick([dt], shape=s, kind="small") if c.rng.random() < 0.7 else c.const(c.data(dt, s, "small"))
           for s in shapes]
    c.add("Einsum", ins, equation=eq)


def g_shape(c):
    x = c.pick(ALL)
    if c.rng.random() < 0.3:
        c.add("Size", [x])
        return
    at = {}
    r = len(c.sh(x))
    if c.opset >= 15 and c.rng.random() < 0.6:
        at["start"] = c.rng.randint(-r - 2, r + 2)
        if c.rng.random() < 0.6:
            at["end"] = c.rng.randint(-r - 2, r + 2)
    s = c.add("Shape", [x], **at)
    if c.rng.random() < 0.5 and r and not at:    # use it as data, as exporters do
        # (onnx 1.12's data propagation crashes on an empty shape vector)
        c.add(c.rng.choice(["Mul", "Add"]), [s, c.const(np.array(c.rng.randint(1, 3), I64))])


def factor_shape(c, total, rank):
    dims = []
    left = total
    for _ in range(rank - 1):
        ds = [d for d in range(1, left + 1) if left % d == 0] if left else [0, 1, 2]
        d = c.rng.choice(ds)
        dims.append(d)
        left = left // d if d else left
    dims.append(left if all(dims) or not dims else c.rng.choice([0, 3]))
    return dims


def g_reshape(c):
    x = c.pick(ALL, rmin=0)
    s = c.sh(x)
    total = int(np.prod(s))
    if total == 0:
        raise Skip("reshape of empty")
    dims = factor_shape(c, total, c.rng.randint(0, 4))
    if dims and c.rng.random() < 0.4:
        dims[c.rng.randrange(len(dims))] = -1
    for i in range(min(len(dims), len(s))):       # 0 copies the input's dim
        if dims[i] == s[i] and c.rng.random() < 0.4 and -1 not in dims[:i] + dims[i + 1:] or \
                dims[i] == s[i] and c.rng.random() < 0.2:
            dims[i] = 0
    c.add("Reshape", [x, c.ints(dims)])


def g_flatten(c):
    x = c.pick(ALL)
    r = len(c.sh(x))
    c.add("Flatten", [x], axis=c.rng.randint(-r, r))


def g_squeeze(c):
    op = c.rng.choice(["Squeeze", "Unsqueeze"])
    x = c.pick(ALL)
    s = c.sh(x)
    if op == "Squeeze":
        ones = [i for i, d in enumerate(s) if d == 1]
        ax = None
        if ones and c.rng.random() < 0.7:
            ax = c.rng.sample(ones, c.rng.randint(1, len(ones)))
            ax = [a - len(s) if c.rng.random() < 0.5 else a for a in ax]
    else:
        ro = len(s) + c.rng.randint(1, 2)
        ax = c.axes(ro, ro - len(s))
    if ax is None:
        c.add(op, [x])
    elif c.opset >= 13:
        c.add(op, [x, c.ints(ax)])
    else:
        c.add(op, [x], axes=ax)


def g_transpose(c):
    x = c.pick(ALL, rmin=1)
    r = len(c.sh(x))
    if c.rng.random() < 0.2:
        c.add("Transpose", [x])
    else:
        c.add("Transpose", [x], perm=c.rng.sample(range(r), r))


def g_expand(c):
    x = c.pick(ALL)
    s = list(c.sh(x))
    t = [c.rng.choice([d, d, 1]) if d != 1 else c.rng.choice([1, 2, 3]) for d in s]
    t = [c.rng.choice([1, 2, 3]) for _ in range(c.rng.randint(0, 2))] + t
    if c.rng.random() < 0.3 and t:     # a shorter shape: broadcast the other way
        t = t[c.rng.randint(0, len(t)):]
    c.add("Expand", [x, c.ints(t)])


def g_concat(c):
    x = c.pick(ALL, rmin=1)
    s = c.sh(x)
    r = len(s)
    ax = c.rng.randrange(-r, r)
    ins = [x]
    for _ in range(c.rng.randint(0, 2)):
        t = list(s)
        t[ax] = c.rng.choice([0, 1, 2, 3])
        # an empty constant keeps its dims at the second size, and ONNX
        # Runtime does not check an empty input's dims (difffuzz_known.txt)
        const = c.rng.random() < 0.3 and 0 not in t
        ins.append(c.const(c.data(c.dt(x), tuple(t))) if const else c.inp(c.dt(x), tuple(t)))
    c.rng.shuffle(ins)
    c.add("Concat", ins, axis=ax)


def g_split(c):
    x = c.pick(ALL, rmin=1)
    s = c.sh(x)
    r = len(s)
    ax = c.rng.randrange(-r, r)
    d = s[ax]
    form = c.rng.random()
    if form < 0.3 and c.opset >= 18:
        n = c.rng.randint(1, max(1, min(d, 4)) if d else 1)
        if d == 0:
            raise Skip("num_outputs on an empty dim")
        c.add("Split", [x], nout=n, axis=ax, num_outputs=n)
        return
    if form < 0.5 and d:
        ns = [n for n in (1, 2, 3) if d % n == 0]
        n = c.rng.choice(ns)
        c.add("Split", [x], nout=n, axis=ax)
        return
    parts = []
    left = d
    while left > 0 and len(parts) < 3:
        p = c.rng.randint(0, left)
        parts.append(p)
        left -= p
    parts.append(left)
    if c.opset >= 13:
        c.add("Split", [x, c.ints(parts)], nout=len(parts), axis=ax)
    else:
        c.add("Split", [x], nout=len(parts), axis=ax, split=parts)


def g_slice(c):
    x = c.pick(ALL, rmin=1)
    s = c.sh(x)
    r = len(s)
    ax = c.axes(r)
    starts, ends, steps = [], [], []
    for a in ax:
        d = s[a]
        st = c.rng.choice([1, 1, 1, -1, 2, -2, 3])
        pool = [0, 1, d, d - 1, -1, -d, -d - 1, d + 3, I64_MAX, I64_MIN, -2]
        starts.append(c.rng.choice(pool))
        # ONNX Runtime reads an end of INT_MAX with a negative step as "to
        # the front" (-1), the spec clamps it to d - 1 (difffuzz_known.txt)
        ends.append(c.rng.choice(pool[:8] + [I64_MIN] if st < 0 else pool))
        steps.append(st)
    dt = c.rng.choice([I64, I64, I32])
    if dt == I32:
        clip = np.iinfo(np.int32)
        starts = [int(np.clip(v, clip.min, clip.max)) for v in starts]
        ends = [int(np.clip(v, clip.min, clip.max)) for v in ends]
    ins = [x, c.ints(starts, dt), c.ints(ends, dt)]
    form = c.rng.random()
    if form < 0.8 or any(st != 1 for st in steps):
        ins.append(c.ints(ax, dt))
        if any(st != 1 for st in steps) or c.rng.random() < 0.5:
            ins.append(c.ints(steps, dt))
    elif sorted(ax) != list(range(len(ax))):
        ins.append(c.ints(ax, dt))
    c.add("Slice", ins)


def g_gather(c):
    op = c.rng.choice(["Gather", "Gather", "GatherElements", "GatherND"])
    x = c.pick(ALL, rmin=1)
    s = c.sh(x)
    r = len(s)
    dt = c.rng.choice([I64, I32])
    rng = np.random.default_rng(c.rng.getrandbits(32))
    if op == "Gather":
        ax = c.rng.randrange(-r, r)
        d = s[ax]
        ish = c.shape(0, 2, zero=0.05)
        if d == 0 and int(np.prod(ish)) != 0:
            raise Skip("gather from empty")
        idx = rng.integers(-d, d, ish) if d else np.zeros(ish)
        c.add(op, [x, c.const(idx.astype(dt)) if c.rng.random() < 0.8 else c.ints(idx, dt)], axis=ax)
    elif op == "GatherElements":
        ax = c.rng.randrange(-r, r)
        ish = [c.rng.randint(1, dd) if dd else 0 for dd in s]
        ish[ax] = c.rng.randint(0, 4)
        d = s[ax]
        if d == 0 and int(np.prod(ish)):
            raise Skip("gather from empty")
        idx = rng.integers(-d, d, ish) if d else np.zeros(ish)
        c.add(op, [x, c.const(idx.astype(dt))], axis=ax)
    else:
        b = c.rng.randint(0, r - 1)
        k = c.rng.randint(1, r - b)
        ish = list(s[:b]) + list(c.shape(0, 2, zero=0)) + [k]
        idx = np.zeros(ish, np.int64)
        for j in range(k):
            d = s[b + j]
            if d == 0:
                raise Skip("gathernd from empty")
            idx[..., j] = rng.integers(-d, d, ish[:-1])
        at = {"batch_dims": b} if b or c.rng.random() < 0.3 else {}
        c.add(op, [x, c.const(idx.astype(I64))], **at)


def g_tile(c):
    x = c.pick(ALL)
    r = len(c.sh(x))
    c.add("Tile", [x, c.ints([c.rng.choice([0, 1, 1, 2, 3]) for _ in range(r)])])


def g_range(c):
    dt = c.rng.choice([F32, I64, I32, I16, F64])
    if dt.kind == "f":
        st, lim, de = (round(c.rng.uniform(-5, 5), 2) for _ in range(3))
        de = de if abs(de) > 0.3 else 0.5
    else:
        st, lim = c.rng.randint(-8, 8), c.rng.randint(-8, 8)
        de = c.rng.choice([1, 2, 3, -1, -2])
    ins = []
    for v in (st, lim, de):
        a = np.array(v, dt)
        if c.rng.random() < 0.3:
            n = c.inp(dt, (), "fixed", fixed=True)
            c.inputs[-1].append(a)
            ins.append(n)
        else:
            ins.append(c.const(a))
    c.add("Range", ins)


def g_const_of_shape(c):
    op = c.rng.choice(["ConstantOfShape", "EyeLike", "OneHot", "Trilu", "Trilu"])
    if op == "ConstantOfShape":
        s = c.ints(list(c.shape(0, 3)))
        at = {}
        if c.rng.random() < 0.8:
            dt = c.rng.choice([F32, I64, I32, BOOL, F64, I8, U8])
            at["value"] = numpy_helper.from_array(c.data(dt, (1,), "small"), "value")
        c.add(op, [s], **at)
    elif op == "EyeLike":
        x = c.pick([F32, I64, I32, BOOL], rmin=2, rmax=2)
        at = {"k": c.rng.randint(-3, 3)} if c.rng.random() < 0.7 else {}
        if c.rng.random() < 0.5:
            at["dtype"] = ONNX_DT[c.rng.choice([F32, I64, I32, BOOL, F64])]
        c.add(op, [x], **at)
    elif op == "OneHot":
        depth = c.rng.randint(1, 5)
        idx = c.pick([I64, I32, F32], rmax=2, kind="small")
        dv = c.const(np.array(depth, c.rng.choice([I64, F32, I32])))
        vdt = c.rng.choice([F32, I64, I32])
        vals = c.const(c.data(vdt, (2,), "small"))
        r = len(c.sh(idx))
        c.add(op, [idx, dv, vals], axis=c.rng.randint(-r - 1, r))
    else:
        if c.opset < 14:
            raise Skip("opset")
        x = c.pick(ALL, rmin=2)
        ins = [x]
        if c.rng.random() < 0.7:
            ins.append(c.ints(c.rng.randint(-4, 4)))
        at = {"upper": c.rng.randint(0, 1)} if c.rng.random() < 0.7 else {}
        c.add(op, ins, **at)


def g_quant(c):
    op = c.rng.choice(["QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger"])
    if op == "DynamicQuantizeLinear":
        # a fresh input: NaN/inf have no quantization (kiln refuses them at
        # run time), all zeros a scale of 0 (difffuzz_known.txt)
        c.add(op, [c.inp(F32, c.shape(zero=0), "small")], nout=3)
        return
    if op == "MatMulInteger":
        m, k, n = (c.rng.choice([1, 2, 3, 4]) for _ in range(3))
        adt, bdt = c.rng.choice([U8, I8]), c.rng.choice([U8, I8])
        a = c.pick([adt], shape=(m, k), kind="wide")
        # ONNX Runtime's AVX2 u8 x s8 kernel saturates pair sums to int16
        # (difffuzz_known.txt): 7-bit weights there
        bk = "q7" if adt == U8 and bdt == I8 else "wide"
        b = c.const(c.data(bdt, (k, n), bk))
        ins = [a, b]
        if c.rng.random() < 0.5:
            ins += [c.const(c.data(adt, (), "wide")), c.const(c.data(bdt, (), bk))]
        c.add(op, ins)
        return
    x = c.pick([F32] if op == "QuantizeLinear" else [U8, I8], kind="wide", rmin=1)
    r = len(c.sh(x))
    qdt = c.rng.choice([U8, I8]) if op == "QuantizeLinear" else c.dt(x)
    at = {}
    if c.rng.random() < 0.3 and c.opset >= 13:
        ax = c.rng.randrange(-r, r)
        at["axis"] = ax
        ss = (c.sh(x)[ax],)
    else:
        ss = ()
    scale = c.const((np.random.default_rng(c.rng.getrandbits(32)).uniform(0.01, 0.5, ss)).astype(F32))
    ins = [x, scale]
    if c.rng.random() < 0.7:
        ins.append(c.const(c.data(qdt, ss, "wide")))
    c.add(op, ins, **at)


def g_pad(c):
    """Pad-11+ in every mode: negative pads (crops) in constant and edge
    mode, a constant_value, axes (18+); wrap (19+) no wider than the axis
    and reflect narrower than it (ONNX Runtime differs past that, or
    refuses: README Known limits), no edge/reflect/wrap on an empty axis."""
    modes = ["constant", "constant", "reflect", "edge"] + (["wrap"] if c.opset >= 19 else [])
    mode = c.rng.choice(modes)
    x = c.pick(ALL, rmin=1)
    s = c.sh(x)
    r = len(s)
    if mode != "constant" and 0 in s:
        raise Skip("pad of an empty axis")
    ax = c.axes(r) if c.opset >= 18 and c.rng.random() < 0.4 else None
    which = list(range(r)) if ax is None else [a % r for a in ax]
    pads = [[], []]
    for a in which:
        d = s[a]
        for side in pads:
            if mode == "reflect":
                side.append(c.rng.randint(0, d - 1))
            elif mode == "wrap":   # (a second data set may shrink d to 2)
                side.append(c.rng.randint(0, min(d, 2)))
            else:   # crops (done before the padding) that leave 0 or more
                side.append(max(c.rng.choice([0, 0, 1, 2, 3, -1, -d // 2]), -d))
                d += min(side[-1], 0)
    ins = [x, c.ints(pads[0] + pads[1])]
    if mode == "constant" and c.rng.random() < 0.5:
        ins.append(c.const(c.data(c.dt(x), (), "small")))
    if ax is not None:
        ins += [""] * (3 - len(ins)) + [c.ints(ax, c.rng.choice([I64, I32]))]
    at = {"mode": mode} if mode != "constant" or c.rng.random() < 0.5 else {}
    c.add("Pad", ins, **at)


def g_scatternd(c):
    """ScatterND-11+: index tuples of 1..rank, negative ones included,
    distinct without a reduction (duplicates: the order is unspecified),
    repeated with add/mul (16+) and max/min (18+)."""
    reds = ["none"] + (["add", "mul"] if c.opset >= 16 else []) + (["max", "min"] if c.opset >= 18 else [])
    red = c.rng.choice(reds)
    x = c.pick([F32, F64, I32, I64] if red != "none" else ALL, rmin=1, kind="small")
    s = c.sh(x)
    r = len(s)
    k = c.rng.randint(1, r)
    if 0 in s[:k]:
        raise Skip("scatternd into empty")
    ish = c.shape(0, 2, zero=0)
    n = int(np.prod(ish))
    space = int(np.prod(s[:k]))
    if red == "none" and n > space:
        raise Skip("more updates than slices")
    rng = np.random.default_rng(c.rng.getrandbits(32))
    flat = rng.choice(space, n, replace=red != "none")
    idx = np.stack(np.unravel_index(flat, s[:k]), -1).reshape(tuple(ish) + (k,)) if n else \
        np.zeros(tuple(ish) + (k,), np.int64)
    neg = rng.random(idx.shape) < 0.3
    idx = np.where(neg, idx - np.array(s[:k]), idx)
    ush = tuple(ish) + tuple(s[k:])
    upd = c.pick([c.dt(x)], shape=ush, kind="small", fresh=0.6) if c.rng.random() < 0.7 else \
        c.const(c.data(c.dt(x), ush, "small"))
    at = {"reduction": red} if red != "none" or (c.opset >= 16 and c.rng.random() < 0.3) else {}
    c.add("ScatterND", [x, c.ints(idx.astype(np.int64)), upd], **at)


def g_topk(c):
    """TopK-11: K from 0 to the axis length, largest or smallest, sorted;
    values without NaN (its order among numbers differs between kiln and
    ONNX Runtime: README Known limits)."""
    x = c.pick([F32, F64, I32, I64], rmin=1, kind="small")
    s = c.sh(x)
    if 0 in s:
        raise Skip("topk of nothing (difffuzz_known.txt 14)")
    ax = c.rng.randrange(-len(s), len(s))
    kk = c.rng.randint(0, s[ax])
    at = {"axis": ax} if ax != -1 or c.rng.random() < 0.5 else {}
    if c.rng.random() < 0.5:
        at["largest"] = c.rng.randint(0, 1)
    c.add("TopK", [x, c.ints([kk])], nout=2, **at)


FAMILIES = {
    "unary": (g_unary_flt, 6), "unary_int": (g_unary_snum, 3), "isnan_inf_not": (g_isx, 2),
    "binary": (g_binary, 8), "compare": (g_compare, 4), "variadic": (g_variadic, 3),
    "where": (g_where, 2), "clip": (g_clip, 2), "cast": (g_cast, 5), "identity": (g_identity, 1),
    "reduce": (g_reduce, 7), "argmax": (g_arg, 3), "cumsum": (g_cumsum, 2), "softmax": (g_softmax, 3),
    "layernorm": (g_layernorm, 2), "matmul": (g_matmul, 4), "gemm": (g_gemm, 2), "einsum": (g_einsum, 3), "einsum_rand": (g_einsum_rand, 3),
    "shape": (g_shape, 2), "reshape": (g_reshape, 3), "flatten": (g_flatten, 1),
    "squeeze": (g_squeeze, 3), "transpose": (g_transpose, 3), "expand": (g_expand, 3),
    "concat": (g_concat, 3), "split": (g_split, 3), "slice": (g_slice, 5), "gather": (g_gather, 5),
    "tile": (g_tile, 2), "range": (g_range, 2), "constant_like": (g_const_of_shape, 3),
    "quant": (g_quant, 2), "pad": (g_pad, 3), "scatternd": (g_scatternd, 2), "topk": (g_topk, 2),
}
FAM_OF_OP = {}


def make_case(seed, i, only=None):
    rng = random.Random(seed * 1000003 + i)
    opset = rng.choice([11, 12, 13, 13, 14, 15, 16, 17, 17, 18, 18, 19, 20, 20])
    c = Case(rng, opset)
    fams = [f for f in FAMILIES if not only or f in only]
    weights = [FAMILIES[f][1] for f in fams]
    want = rng.randint(1, 5)
    tries = 0
    famset = []
    while len(c.nodes) < want and tries < 40:
        tries += 1
        f = rng.choices(fams, weights)[0]
        snap = (list(c.nodes), list(c.inits), [list(x) for x in c.inputs], dict(c.vals),
                set(c.consts), set(c.used), list(c.ops), c.tol, c.spec_undefined)
        try:
            FAMILIES[f][0](c)
            famset.append(f)
        except Skip:
            (c.nodes, c.inits, c.inputs, c.vals, c.consts, c.used, c.ops, c.tol, c.spec_undefined) = snap
    if not c.nodes:
        return None
    produced = [o for n in c.nodes for o in n.output]
    outs = [o for o in produced if o not in c.used]
    if not outs:
        outs = [produced[-1]]
    c.outputs = outs
    c.families = sorted(set(famset))
    return c


def feeds_for(c, dims=None):
    """Input arrays; dims: input name -> concrete shape for the second set."""
    f = {}
    for item in c.inputs:
        n, dt, s, kind, fixed = item[:5]
        if fixed:
            f[n] = item[5]
        else:
            f[n] = c.data(dt, (dims or {}).get(n, s), kind)
    return f


def write_case(c, d, dyn):
    """model.onnx + test_data_set_0 (+ _1 at other sizes when dyn)."""
    os.makedirs(d, exist_ok=True)
    symdims, second = {}, {}
    if dyn:
        remap = {}
        # ONNX Runtime does not check an empty tensor's dims against the
        # others' (Concat): with one, every dim > 1 becomes a symbol, so
        # that the second size stays consistent
        empty = any(0 in x[2] for x in c.inputs if not x[4])
        for n, dt, s, kind, fixed in (x[:5] for x in c.inputs):
            if fixed:
                continue
            sym, new = [], []
            for v in s:
                if v > 1 and (empty or c.rng.random() < 0.8):
                    sym.append("s%d" % v)
                    remap.setdefault(v, c.rng.choice([v2 for v2 in (2, 3, 4, 5, 6, 7) if v2 != v]))
                    new.append(remap[v])
                else:
                    sym.append(v)
                    new.append(v)
            symdims[n] = sym
            second[n] = tuple(new)
    m = c.model(c.outputs, symdims)
    onnx.save(m, os.path.join(d, "model.onnx"))
    sets = [feeds_for(c)]
    if dyn and any(second[n] != tuple(s) for n, _, s, _, f in (x[:5] for x in c.inputs) if not f):
        sets.append(feeds_for(c, second))
    for k, f in enumerate(sets):
        write_inputs(os.path.join(d, "test_data_set_%d" % k), m, f)
    with open(os.path.join(d, "meta.json"), "w") as fh:
        json.dump({"ops": c.ops, "families": c.families, "opset": c.opset, "tol": c.tol,
                   "spec_undefined": c.spec_undefined, "dyn": bool(dyn)}, fh)


def bake_case(src, dst):
    """dst: src's model with data set 0's inputs as initializers (src's
    ONNX Runtime outputs as the references)."""
    m = onnx.load(os.path.join(src, "model.onnx"))
    ds = os.path.join(src, "test_data_set_0")
    g = m.graph
    for k, v in enumerate(g.input):
        t = onnx.TensorProto()
        with open(os.path.join(ds, "input_%d.pb" % k), "rb") as f:
            t.ParseFromString(f.read())
        t.name = v.name
        g.initializer.append(t)
    del g.input[:]
    os.makedirs(os.path.join(dst, "test_data_set_0"), exist_ok=True)
    onnx.save(m, os.path.join(dst, "model.onnx"))
    for name in os.listdir(ds):
        if name.startswith("output_"):
            shutil.copy(os.path.join(ds, name), os.path.join(dst, "test_data_set_0", name))


# ---------------------------------------------------------------- running
def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t), t.data_type


def compare(ref, got, tol):
    """None when got matches ref, else why not."""
    (r, rt), (g, gt) = ref, got
    if rt != gt:
        return "dtype %s, ONNX Runtime %s" % (TensorProto.DataType.Name(gt), TensorProto.DataType.Name(rt))
    if r.shape != g.shape:
        return "shape %s, ONNX Runtime %s" % (list(g.shape), list(r.shape))
    if r.dtype.kind != "f":
        bad = np.argwhere(r != g)
        if len(bad):
            i = tuple(bad[0])
            return "%d values differ, first at %s: %s, ONNX Runtime %s" % (len(bad), list(i), g[i], r[i])
        return None
    r64, g64 = r.astype(np.float64), g.astype(np.float64)
    atol, rtol = (1e-4 * tol, 1e-3 * tol) if r.dtype != F16 else (1e-2 * tol, 1e-2 * tol)
    same = (r64 == g64) | (np.isnan(r64) & np.isnan(g64))
    with np.errstate(invalid="ignore"):
        close = np.abs(r64 - g64) <= atol + rtol * np.abs(r64)
    bad = np.argwhere(~(same | close))
    if len(bad):
        i = tuple(bad[0])
        return "%d values differ, first at %s: %r, ONNX Runtime %r" % (len(bad), list(i), g[i], r[i])
    return None


def sh(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return "timeout", "", "timed out after %ds" % timeout


def kiln_mode(kiln, d, mode, work, timeout):
    """Compiles case d at mode and runs its data sets: (status, detail)
    where status is ok, refused, or a finding (crash, mismatch, ...)."""
    src = d
    if mode == "baked":
        src = os.path.join(work, "baked")
        shutil.rmtree(src, ignore_errors=True)
        bake_case(d, src)
    so = os.path.join(work, "m.so")
    opt = "-O0" if mode == "O0" else "-O2"
    rc, _, err = sh([kiln, "compile", os.path.join(src, "model.onnx"), "-o", so, opt], timeout)
    err = err.strip()
    if rc == 1 and err and "\n" not in err:
        return "refused", err
    if rc != 0:
        return "compile_" + ("crash" if rc != 1 else "message"), "exit %s: %s" % (rc, err[-300:])
    meta = json.load(open(os.path.join(d, "meta.json")))
    sets = sorted(n for n in os.listdir(src) if n.startswith("test_data_set_"))
    return run_sets(kiln, so, src, sets, work, timeout, lambda ref, got: compare(ref, got, meta["tol"]))


def run_sets(kiln, so, src, sets, work, timeout, check):
    """Runs the compiled so on the data sets of case folder src, checking
    each output against the set's output_K.pb with check(ref, got) (None:
    matches, else why not): (status, detail), status ok or a finding."""
    od = os.path.join(work, "out")
    for s in sets:
        sd = os.path.join(src, s)
        shutil.rmtree(od, ignore_errors=True)
        rc, _, err = sh([kiln, "run", so, "--inputs", sd, "--outputs", od, "--threads=1"], timeout)
        err = err.strip()
        if rc != 0:
            kind = "run_failed" if rc == 1 and "\n" not in err else "run_crash"
            return kind, "%s: exit %s: %s" % (s, rc, err[-300:])
        k = 0
        while os.path.exists(os.path.join(sd, "output_%d.pb" % k)):
            gp = os.path.join(od, "output_%d.pb" % k)
            if not os.path.exists(gp):
                return "mismatch", "%s: output %d missing" % (s, k)
            why = check(load_pb(os.path.join(sd, "output_%d.pb" % k)), load_pb(gp))
            if why:
                return "mismatch", "%s output %d: %s" % (s, k, why)
            k += 1
    return "ok", ""


def ort_run(dirs, modules, timeout):
    env = dict(os.environ, NODE_PATH=modules)
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run(["node", os.path.join(here, "difffuzz_ort.mjs")], input="\n".join(dirs) + "\n",
                       capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode == 0:
        return
    if p.returncode > 0:
        sys.exit("difffuzz: ONNX Runtime runner failed: " + p.stderr.strip()[-500:])
    # killed by a signal: a case took ONNX Runtime down (difffuzz_known.txt
    # 14); one by one, and the case that does it counts as refused
    if len(dirs) > 1:
        for d in dirs:
            ort_run([d], modules, timeout)
        return
    for s in os.listdir(dirs[0]):
        if s.startswith("test_data_set_"):
            with open(os.path.join(dirs[0], s, "ort_error"), "w") as f:
                f.write("ONNX Runtime's runner died of signal %d\n" % -p.returncode)


def ort_usable(d):
    """Drop the data sets ONNX Runtime refused; False when none is left."""
    ok = False
    for s in sorted(os.listdir(d)):
        if s.startswith("test_data_set_"):
            if os.path.exists(os.path.join(d, s, "ort_error")):
                if s == "test_data_set_0":
                    return False
                shutil.rmtree(os.path.join(d, s))
            else:
                ok = True
    return ok


def fuzz_args(modes, modes_help, only_help, batch):
    """The options difffuzz and fusefuzz share."""
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=0, help="stop starting batches after this long")
    ap.add_argument("--modes", default=modes, help=modes_help)
    ap.add_argument("--only", default="", help=only_help)
    here = os.path.dirname(os.path.abspath(__file__))
    # absolute: node resolves it from the runner script's folder
    ap.add_argument("--ort-modules", type=os.path.abspath,
                    default=os.environ.get("KILN_ORT_NODE_MODULES") or
                    os.path.join(here, "..", "..", "bench", "node_modules"),
                    help="the node_modules folder holding onnxruntime-node")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--batch", type=int, default=batch)
    return ap


def main():
    ap = fuzz_args("O0,O2,baked", None, "comma-separated op families", 40)
    ap.add_argument("--known", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "difffuzz_known.txt"))
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    only = set(x for x in a.only.split(",") if x)
    known = []
    if os.path.exists(a.known):
        for line in open(a.known):
            line = line.split("#", 1)[0].strip()
            if line:
                known.append(line)
    cases_dir = os.path.join(a.outdir, "cases")
    work = os.path.join(a.outdir, "work")
    os.makedirs(cases_dir, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    stats = {}      # family -> [graphs, compared, mismatched]
    counts = {"generated": 0, "ort_refused": 0, "compared": 0, "refused": 0}
    findings, known_hits, refusals = [], [], {}
    i = a.first
    end = a.first + a.count
    while i < end and not (a.seconds and time.time() - t0 > a.seconds):
        batch = []
        for j in range(i, min(end, i + a.batch)):
            c = make_case(a.seed, j, only)
            if c is None:
                continue
            d = os.path.join(cases_dir, "s%d_%d" % (a.seed, j))
            shutil.rmtree(d, ignore_errors=True)
            write_case(c, d, c.rng.random() < 0.5)
            batch.append((j, c, d))
        i += a.batch
        counts["generated"] += len(batch)
        ort_run([d for _, _, d in batch], a.ort_modules, a.timeout * len(batch))
        for j, c, d in batch:
            for f in c.families:
                stats.setdefault(f, [0, 0, 0])[0] += 1
            if not ort_usable(d):
                counts["ort_refused"] += 1
                if not a.keep:
                    shutil.rmtree(d)
                continue
            counts["compared"] += 1
            bad = False
            for f in c.families:
                stats[f][1] += 1
            for mode in modes:
                st, det = kiln_mode(a.kiln, d, mode, work, a.timeout)
                if st == "ok":
                    continue
                if st == "refused":
                    counts["refused"] += 1
                    # grouped by the message after the node: "(Op): why"
                    key = det.split("model.onnx: ", 1)[-1]
                    key = re.sub(r"node '[^']*' ", "", key)[:100]
                    refusals.setdefault(key, d)
                    break       # the other modes refuse it too
                name = os.path.basename(d)
                meta = json.load(open(os.path.join(d, "meta.json")))
                line = "%s %s %s [%s] opset %d%s: %s" % (name, mode, st, " ".join(meta["ops"]), meta["opset"],
                                                          " dyn" if meta["dyn"] else "", det)
                if meta["spec_undefined"] and st == "mismatch":
                    known_hits.append(line + " (float->int Cast of NaN/inf/out-of-range: undefined)")
                elif st == "run_failed" and det.startswith("test_data_set_1:"):
                    # the second sizes contradict a dim the graph fixes, in a
                    # way ONNX Runtime does not check (difffuzz_known.txt 2, 11)
                    known_hits.append(line + " (refused at the second sizes where ONNX Runtime ran)")
                elif any(k in line for k in known):
                    known_hits.append(line)
                else:
                    findings.append(line)
                    print("FINDING " + line, flush=True)
                    bad = True
                for f in c.families:
                    stats[f][2] += 1
                break
            if not bad and not a.keep:
                shutil.rmtree(d)
        print("difffuzz: %d cases, %d compared, %d findings, %.0f s" %
              (counts["generated"], counts["compared"], len(findings), time.time() - t0), flush=True)
    print("\nfamily            graphs  compared  mismatched")
    for f in sorted(stats):
        print("%-16s %7d %9d %11d" % (f, *stats[f]))
    print("\n%(generated)d graphs, %(ort_refused)d refused by ONNX Runtime, %(compared)d compared, "
          "%(refused)d refused by kiln" % counts)
    for k, d in sorted(refusals.items()):
        print("kiln refused: %s  (e.g. %s)" % (k, os.path.basename(d)))
    for line in known_hits:
        print("known: " + line)
    print("difffuzz: seed %d, cases %d..%d: %d findings" % (a.seed, a.first, min(i, end) - 1, len(findings)))
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
