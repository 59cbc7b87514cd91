"""A tiny numpy interpreter for ONNX graphs: test tooling only.

models.py uses it once per generated model to check that the graph means
what the model's numpy reference computes (the references are written
independently, straight from the math).  It supports just the ops the
generated models use, with the semantics of the opsets they use (axes as
inputs from opset 13 on, ReduceMean axes as an attribute before 18).
"""
import math

import numpy as np
from onnx import helper, numpy_helper
from onnx.mapping import TENSOR_TYPE_TO_NP_TYPE

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _attrs(node):
    at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in at.items()}


def _axes(x, axes):
    return tuple(int(a) % x.ndim for a in axes)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _slice(x, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        idx[int(a) % x.ndim] = slice(int(s), int(e), int(st))
    return x[tuple(idx)]


def _reshape(x, shape, allowzero=0):
    shape = [int(s) for s in shape]
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _layernorm(x, scale, bias=None, axis=-1, epsilon=1e-5, **_):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + np.float32(epsilon)) * scale
    return y if bias is None else y + bias


def _gelu(x, approximate="none"):
    if approximate != "none":
        raise NotImplementedError("npref: Gelu approximate=" + approximate)
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype)


def _gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    a = a.T if transA else a
    b = b.T if transB else b
    y = np.float32(alpha) * (a @ b)
    return y if c is None else y + np.float32(beta) * c


def _split(x, split=None, axis=0):
    points = np.cumsum([int(s) for s in split])[:-1]
    return tuple(np.split(x, points, axis=axis))


def _squeeze(x, axes=None):
    return np.squeeze(x, axis=None if axes is None else _axes(x, axes))


def _unsqueeze(x, axes):
    rank = x.ndim + len(axes)
    for a in sorted(int(a) % rank for a in axes):
        x = np.expand_dims(x, a)
    return x


def _shape(x, start=0, end=None):
    return np.array(x.shape[start:end], dtype=np.int64)


def _reduce_mean(x, axes=None, keepdims=1):
    axes = None if axes is None else _axes(x, axes)
    return x.mean(axis=axes, keepdims=bool(keepdims))


def _gather_elements(x, idx, axis=0):
    return np.take_along_axis(x, np.where(idx < 0, idx + x.shape[axis], idx), axis=axis)


def _gather_nd(x, idx, batch_dims=0):
    assert batch_dims == 0
    k = idx.shape[-1]
    flat = idx.reshape(-1, k)
    out = np.stack([x[tuple(i)] for i in flat])
    return out.reshape(idx.shape[:-1] + x.shape[k:])


def _cumsum(x, axis, exclusive=0, reverse=0):
    a = int(axis) % x.ndim
    y = np.flip(x, a) if reverse else x
    c = np.cumsum(y, axis=a, dtype=x.dtype)
    if exclusive:
        c = c - y
    return np.flip(c, a) if reverse else c


def _onehot(ind, depth, values, axis=-1):
    d = int(depth.reshape(-1)[0])
    ind = np.where(ind < 0, ind + d, ind).astype(np.int64)
    hot = np.arange(d) == ind[..., None]
    out = np.where(hot, values[1], values[0])
    return np.moveaxis(out, -1, axis % out.ndim)


def _trilu(x, k=None, upper=1):
    k = 0 if k is None else int(k.reshape(-1)[0])
    return np.triu(x, k) if upper else np.tril(x, k)


def _argmax(x, axis=0, keepdims=1, select_last_index=0):
    if select_last_index:
        y = x.shape[axis] - 1 - np.argmax(np.flip(x, axis), axis=axis)
    else:
        y = np.argmax(x, axis=axis)
    y = y.astype(np.int64)
    return np.expand_dims(y, axis) if keepdims else y


def _cast(x, to):
    return x.astype(TENSOR_TYPE_TO_NP_TYPE[to])


def _const_of_shape(shape, value=None):
    v = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value)
    return np.full(tuple(int(s) for s in shape), v.reshape(-1)[0], dtype=v.dtype)


def _eyelike(x, dtype=None, k=0):
    t = x.dtype if dtype is None else TENSOR_TYPE_TO_NP_TYPE[dtype]
    return np.eye(x.shape[0], x.shape[1], k=k, dtype=t)


def _fused_matmul(a, b, alpha=1.0, transA=0, transB=0, transBatchA=0, transBatchB=0):
    """com.microsoft FusedMatMul as ONNX Runtime's contrib spec defines it:
    alpha * op(A) @ op(B), transA/transB swapping the last two axes."""
    if transBatchA or transBatchB:
        raise NotImplementedError("npref: FusedMatMul with transBatchA/transBatchB")
    if transA:
        a = np.swapaxes(a, -1, -2)
    if transB:
        b = np.swapaxes(b, -1, -2)
    return (np.matmul(a, b) * np.float32(alpha)).astype(a.dtype)


def _same(f):
    """Elementwise op keeping the first input's dtype (numpy promotes)."""
    return lambda *xs: np.asarray(f(*xs)).astype(xs[0].dtype)


OPS = {
    "Identity": lambda x: x,
    "Add": _same(np.add), "Sub": _same(np.subtract), "Mul": _same(np.multiply),
    "Div": lambda a, b: (a / b).astype(a.dtype) if a.dtype.kind == "f" else a // b,
    "Pow": _same(np.power),
    "Sqrt": np.sqrt, "Floor": np.floor, "Tanh": np.tanh, "Cos": np.cos, "Sin": np.sin, "Exp": np.exp,
    "Neg": np.negative, "Not": np.logical_not, "IsNaN": np.isnan,
    "Erf": lambda x: _erf(x).astype(x.dtype),
    "Equal": np.equal, "Less": np.less, "Greater": np.greater,
    "LessOrEqual": np.less_equal, "GreaterOrEqual": np.greater_equal,
    "And": np.logical_and, "Or": np.logical_or,
    "Where": np.where,
    "MatMul": np.matmul, "Gemm": _gemm, "FusedMatMul": _fused_matmul,
    "Einsum": lambda *xs, equation: np.einsum(equation, *xs),
    "Softmax": lambda x, axis=-1: _softmax(x, axis),
    "ReduceMean": _reduce_mean,
    "LayerNormalization": _layernorm, "Gelu": _gelu,
    "Shape": _shape,
    "Gather": lambda x, i, axis=0: np.take(x, np.where(i < 0, i + x.shape[axis], i), axis=axis),
    "GatherElements": _gather_elements, "GatherND": _gather_nd,
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze,
    "Concat": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "Slice": _slice, "Reshape": _reshape,
    "Transpose": lambda x, perm=None: np.transpose(x, perm),
    "Split": _split, "Cast": _cast,
    "Range": lambda s, e, d: np.arange(s, e, d, dtype=np.result_type(s)),
    "ConstantOfShape": _const_of_shape,
    "Expand": lambda x, s: x * np.ones(tuple(int(v) for v in s), dtype=x.dtype),
    "Tile": lambda x, r: np.tile(x, tuple(int(v) for v in r)),
    "CumSum": _cumsum, "OneHot": _onehot, "Trilu": _trilu, "ArgMax": _argmax,
    "EyeLike": _eyelike,
}


def run(model, feeds):
    """Evaluates model's graph on feeds (name -> array); returns the outputs
    in graph order."""
    g = model.graph
    env = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    env.update(feeds)
    for node in g.node:
        at = _attrs(node)
        if node.op_type == "Constant":
            out = (numpy_helper.to_array(at["value"]),)
        else:
            if node.op_type not in OPS:
                raise NotImplementedError("npref: no op " + node.op_type)
            ins = [env[i] if i else None for i in node.input]
            while ins and ins[-1] is None:
                ins.pop()
            with np.errstate(invalid="ignore"):   # NaNs are meant (IsNaN)
                out = OPS[node.op_type](*ins, **at)
            out = out if isinstance(out, tuple) else (out,)
        for name, v in zip(node.output, out):
            env[name] = np.asarray(v)
    return [env[o.name] for o in g.output]
