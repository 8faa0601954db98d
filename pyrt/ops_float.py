"""numpy implementations of ONNX operators: what runs where no kernel does.

Each function takes the node (for attributes, opset and error messages) and
the input arrays (None for an omitted optional input) and returns the list
of outputs. Float math stays in float32, as onnxruntime computes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from onnx import helper

from .errors import ModelError, UnsupportedOpError


class NodeView(Protocol):
    name: str
    op_type: str
    opset: int
    attrs: dict[str, Any]
    outputs: list[str]

    def attr(self, name: str, default: Any = None) -> Any: ...


OpFn = Callable[[NodeView, list[np.ndarray | None]], list[np.ndarray]]
FLOAT_OPS: dict[str, OpFn] = {}


def op(*names: str):
    def register(fn: OpFn) -> OpFn:
        for name in names:
            FLOAT_OPS[name] = fn
        return fn

    return register


def fail(node: NodeView, message: str) -> ModelError:
    return ModelError(f"{node.op_type} node '{node.name}': {message}")


def run_float_op(node: NodeView, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    fn = FLOAT_OPS.get(node.op_type)
    if fn is None:
        raise UnsupportedOpError(f"{node.op_type} node '{node.name}': operator is not supported")
    return fn(node, inputs)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _axis(node: NodeView, axis: int, rank: int, what: str = "axis") -> int:
    if not -max(rank, 1) <= axis < max(rank, 1):
        raise fail(node, f"{what} {axis} is out of range for rank {rank}")
    return axis % max(rank, 1)


def _ints(value: np.ndarray | None) -> list[int] | None:
    return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]


# ---- elementwise ------------------------------------------------------------

_UNARY = {
    "Relu": lambda x: np.maximum(x, 0).astype(x.dtype),
    "Abs": np.abs,
    "Neg": np.negative,
    "Exp": np.exp,
    "Log": np.log,
    "Sqrt": np.sqrt,
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.round,
    "Sign": np.sign,
    "Sin": np.sin,
    "Cos": np.cos,
    "Tan": np.tan,
    "Tanh": np.tanh,
    "Reciprocal": lambda x: (1 / x).astype(x.dtype),
    "Sigmoid": lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype),
    "Softsign": lambda x: x / (1 + np.abs(x)),
    "Softplus": lambda x: np.logaddexp(x, 0).astype(x.dtype),
    "Not": np.logical_not,
    "IsNaN": np.isnan,
    "Erf": None,
    "Mish": lambda x: (x * np.tanh(np.logaddexp(x, 0))).astype(x.dtype),
    "Identity": lambda x: x,
    "Asin": np.arcsin,
    "Acos": np.arccos,
    "Atan": np.arctan,
    "Sinh": np.sinh,
    "Cosh": np.cosh,
}


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


_UNARY["Erf"] = _erf


@op(*_UNARY)
def unary(node, inputs):
    with np.errstate(all="ignore"):
        return [np.asarray(_UNARY[node.op_type](inputs[0]))]


@op("IsInf")
def is_inf(node, inputs):
    x = inputs[0]
    pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    return [(np.isposinf(x) & bool(pos)) | (np.isneginf(x) & bool(neg))]


_BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Pow": None,
    "Equal": np.equal,
    "Less": np.less,
    "Greater": np.greater,
    "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal,
    "And": np.logical_and,
    "Or": np.logical_or,
    "Xor": np.logical_xor,
    "BitShift": None,
}


@op(*[k for k, v in _BINARY.items() if v is not None])
def binary(node, inputs):
    a, b = inputs
    with np.errstate(all="ignore"):
        out = _BINARY[node.op_type](a, b)
    if out.dtype != a.dtype and out.dtype != np.bool_:
        out = out.astype(a.dtype)
    return [out]


@op("Div")
def div(node, inputs):
    a, b = inputs
    if a.dtype.kind in "iu":
        if np.any(b == 0):
            raise fail(node, "integer division by zero")
        return [(np.trunc(a.astype(np.float64) / b)).astype(a.dtype)]
    with np.errstate(all="ignore"):
        return [(a / b).astype(a.dtype)]


@op("Pow")
def power(node, inputs):
    a, b = inputs
    with np.errstate(all="ignore"):
        return [np.power(a, b.astype(a.dtype) if a.dtype.kind == "f" else b).astype(a.dtype)]


@op("Mod")
def mod(node, inputs):
    a, b = inputs
    if a.dtype.kind in "iu" and np.any(b == 0):
        raise fail(node, "integer modulo by zero")
    with np.errstate(all="ignore"):
        out = np.fmod(a, b) if node.attr("fmod", 0) else np.mod(a, b)
    return [out.astype(a.dtype)]


@op("Max", "Min", "Sum", "Mean")
def variadic(node, inputs):
    fn = {"Max": np.maximum, "Min": np.minimum, "Sum": np.add, "Mean": np.add}[node.op_type]
    out = inputs[0]
    for x in inputs[1:]:
        out = fn(out, x)
    if node.op_type == "Mean":
        out = out / np.array(len(inputs), out.dtype)
    return [np.asarray(out).astype(inputs[0].dtype)]


@op("Where")
def where(node, inputs):
    return [np.where(*inputs)]


@op("Clip")
def clip(node, inputs):
    x = inputs[0]
    if node.opset < 11:
        lo, hi = node.attr("min", -np.inf), node.attr("max", np.inf)
    else:
        lo = inputs[1] if len(inputs) > 1 and inputs[1] is not None else None
        hi = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    out = x
    if lo is not None:
        out = np.maximum(out, np.asarray(lo, x.dtype))
    if hi is not None:
        out = np.minimum(out, np.asarray(hi, x.dtype))
    return [out.astype(x.dtype)]


def _f(node, x, fn):
    with np.errstate(all="ignore"):
        return [np.asarray(fn(x.astype(np.float32))).astype(x.dtype)]


@op("LeakyRelu")
def leaky_relu(node, inputs):
    a = np.float32(node.attr("alpha", 0.01))
    return _f(node, inputs[0], lambda x: np.where(x >= 0, x, a * x))


@op("Elu")
def elu(node, inputs):
    a = np.float32(node.attr("alpha", 1.0))
    return _f(node, inputs[0], lambda x: np.where(x >= 0, x, a * (np.exp(x) - 1)))


@op("Celu")
def celu(node, inputs):
    a = np.float32(node.attr("alpha", 1.0))
    return _f(node, inputs[0], lambda x: np.maximum(x, 0) + np.minimum(0, a * (np.exp(x / a) - 1)))


@op("Selu")
def selu(node, inputs):
    a = np.float32(node.attr("alpha", 1.67326319217681884765625))
    g = np.float32(node.attr("gamma", 1.05070102214813232421875))
    return _f(node, inputs[0], lambda x: g * np.where(x > 0, x, a * (np.exp(x) - 1)))


@op("ThresholdedRelu")
def thresholded_relu(node, inputs):
    a = np.float32(node.attr("alpha", 1.0))
    return _f(node, inputs[0], lambda x: np.where(x > a, x, 0))


@op("HardSigmoid")
def hard_sigmoid(node, inputs):
    a, b = np.float32(node.attr("alpha", 0.2)), np.float32(node.attr("beta", 0.5))
    return _f(node, inputs[0], lambda x: np.clip(a * x + b, 0, 1))


@op("HardSwish")
def hard_swish(node, inputs):
    return _f(node, inputs[0], lambda x: x * np.clip(x / np.float32(6) + np.float32(0.5), 0, 1))


@op("Gelu")
def gelu(node, inputs):
    if _s(node.attr("approximate", "none")) == "tanh":
        c = np.float32(math.sqrt(2 / math.pi))
        return _f(node, inputs[0], lambda x: 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x**3))))
    return _f(node, inputs[0], lambda x: 0.5 * x * (1 + _erf(x / np.float32(math.sqrt(2)))))


@op("PRelu")
def prelu(node, inputs):
    x, slope = inputs
    return [np.where(x >= 0, x, x * slope).astype(x.dtype)]


@op("Softmax", "LogSoftmax")
def softmax(node, inputs):
    x = inputs[0]
    default = -1 if node.opset >= 13 else 1
    axis = _axis(node, node.attr("axis", default), x.ndim)
    if node.opset < 13:  # coerce to 2-D at axis
        shape = x.shape
        x = x.reshape(int(np.prod(shape[:axis])), -1)
        out = softmax_along(x, 1, node.op_type == "LogSoftmax")
        return [out.reshape(shape)]
    return [softmax_along(x, axis, node.op_type == "LogSoftmax")]


def softmax_along(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    s = np.sum(e, axis=axis, keepdims=True)
    return (shifted - np.log(s)).astype(x.dtype) if log else (e / s).astype(x.dtype)


@op("Cast")
def cast(node, inputs):
    to = helper.tensor_dtype_to_np_dtype(node.attr("to"))
    x = inputs[0]
    with np.errstate(all="ignore"):
        if x.dtype.kind == "f" and np.dtype(to).kind in "iu":
            return [np.trunc(x).astype(to)]
        if x.dtype.kind in "OUS":
            return [x.astype(np.float64).astype(to)]
        return [x.astype(to)]


@op("CastLike")
def cast_like(node, inputs):
    return [inputs[0].astype(inputs[1].dtype)]


# ---- matrix products and convolution ----------------------------------------


@op("MatMul")
def matmul(node, inputs):
    a, b = inputs
    try:
        return [np.matmul(a, b).astype(np.result_type(a, b))]
    except ValueError as exc:
        raise fail(node, f"shapes {a.shape} and {b.shape} do not multiply") from exc


@op("Gemm")
def gemm(node, inputs):
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    a = a.T if node.attr("transA", 0) else a
    b = b.T if node.attr("transB", 0) else b
    y = np.float32(node.attr("alpha", 1.0)) * (a @ b)
    if c is not None:
        y = y + np.float32(node.attr("beta", 1.0)) * c
    return [y.astype(a.dtype)]


def _pads(node, spatial: tuple, kernel: list[int], strides: list[int], dilations: list[int]):
    nd = len(kernel)
    auto_pad = _s(node.attr("auto_pad", "NOTSET"))
    if auto_pad in ("NOTSET", ""):
        pads = list(node.attr("pads", [0] * (2 * nd)))
        if len(pads) != 2 * nd:
            raise fail(node, f"pads needs {2 * nd} values, got {pads}")
        return pads
    if auto_pad == "VALID":
        return [0] * (2 * nd)
    begin, end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin + end


def _windows(x: np.ndarray, kernel, strides, dilations, pads, fill, ceil_mode=False):
    """View [N, C, out..., k...] of the padded input, one entry per window position."""
    nd = len(kernel)
    spatial = x.shape[2:]
    out_sizes, extra = [], []
    for i in range(nd):
        span = dilations[i] * (kernel[i] - 1) + 1
        room = spatial[i] + pads[i] + pads[i + nd] - span
        if room < 0:
            raise ModelError(f"window {kernel} does not fit input {list(spatial)} with pads {pads}")
        out = (-(-room // strides[i]) if ceil_mode else room // strides[i]) + 1
        if ceil_mode and (out - 1) * strides[i] >= spatial[i] + pads[i]:
            out -= 1
        out_sizes.append(out)
        extra.append(max(0, (out - 1) * strides[i] + span - (spatial[i] + pads[i] + pads[i + nd])))
    width = [(0, 0), (0, 0)] + [(pads[i], pads[i + nd] + extra[i]) for i in range(nd)]
    padded = np.pad(x, width, constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(
        padded,
        [dilations[i] * (kernel[i] - 1) + 1 for i in range(nd)],
        axis=tuple(range(2, 2 + nd)),
    )
    index = (slice(None), slice(None))
    index += tuple(slice(0, (out_sizes[i] - 1) * strides[i] + 1, strides[i]) for i in range(nd))
    index += tuple(slice(None, None, dilations[i]) for i in range(nd))
    return view[index]


@op("Conv")
def conv(node, inputs):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    nd = w.ndim - 2
    group = int(node.attr("group", 1))
    if x.ndim != w.ndim or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise fail(
            node, f"input {list(x.shape)} does not fit weights {list(w.shape)} with group {group}"
        )
    strides = list(node.attr("strides", [1] * nd))
    dilations = list(node.attr("dilations", [1] * nd))
    pads = _pads(node, x.shape[2:], list(w.shape[2:]), strides, dilations)
    win = _windows(x, list(w.shape[2:]), strides, dilations, pads, 0)
    cin, cout = w.shape[1], w.shape[0] // group
    outs = []
    spatial_axes = "".join(chr(ord("p") + i) for i in range(nd))
    kernel_axes = "".join(chr(ord("h") + i) for i in range(nd))
    expr = f"nc{spatial_axes}{kernel_axes},oc{kernel_axes}->no{spatial_axes}"
    for g in range(group):
        xs = win[:, g * cin : (g + 1) * cin]
        ws = w[g * cout : (g + 1) * cout]
        outs.append(np.einsum(expr, xs, ws, optimize=True))
    y = np.concatenate(outs, axis=1)
    if b is not None:
        y = y + b.reshape(1, -1, *([1] * nd))
    return [y.astype(x.dtype)]


@op("ConvTranspose")
def conv_transpose(node, inputs):
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    nd = x.ndim - 2
    group = int(node.attr("group", 1))
    strides = list(node.attr("strides", [1] * nd))
    dilations = list(node.attr("dilations", [1] * nd))
    out_pad = list(node.attr("output_padding", [0] * nd))
    kernel = list(w.shape[2:])
    if _s(node.attr("auto_pad", "NOTSET")) not in ("NOTSET", "") or node.attr("output_shape"):
        raise UnsupportedOpError(
            f"ConvTranspose node '{node.name}': auto_pad/output_shape not supported"
        )
    pads = list(node.attr("pads", [0] * (2 * nd)))
    cin_g, cout_g = x.shape[1] // group, w.shape[1]
    full = [
        (x.shape[2 + i] - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 + out_pad[i]
        for i in range(nd)
    ]
    y = np.zeros((x.shape[0], cout_g * group, *full), np.float64)
    for g in range(group):
        xg = x[:, g * cin_g : (g + 1) * cin_g].astype(np.float64)
        wg = w[g * cin_g : (g + 1) * cin_g].astype(np.float64)
        for kidx in np.ndindex(*kernel):
            contrib = np.tensordot(xg, wg[(slice(None), slice(None), *kidx)], axes=([1], [0]))
            contrib = np.moveaxis(contrib, -1, 1)
            index = [slice(None), slice(g * cout_g, (g + 1) * cout_g)]
            for i in range(nd):
                start = kidx[i] * dilations[i]
                index.append(
                    slice(start, start + (x.shape[2 + i] - 1) * strides[i] + 1, strides[i])
                )
            y[tuple(index)] += contrib
    crop = tuple(slice(pads[i], full[i] - pads[i + nd]) for i in range(nd))
    y = y[(slice(None), slice(None), *crop)]
    if b is not None:
        y = y + b.reshape(1, -1, *([1] * nd))
    return [y.astype(x.dtype)]


# ---- pooling and normalization -----------------------------------------------


@op("MaxPool", "AveragePool", "LpPool")
def pool(node, inputs):
    x = inputs[0]
    if node.op_type == "MaxPool" and len(node.outputs) > 1 and node.outputs[1]:
        raise UnsupportedOpError(f"MaxPool node '{node.name}': the Indices output is not supported")
    nd = x.ndim - 2
    kernel = list(node.attr("kernel_shape", []))
    if len(kernel) != nd:
        raise fail(node, f"kernel_shape {kernel} does not match a rank-{x.ndim} input")
    strides = list(node.attr("strides", [1] * nd))
    dilations = list(node.attr("dilations", [1] * nd))
    pads = _pads(node, x.shape[2:], kernel, strides, dilations)
    ceil_mode = bool(node.attr("ceil_mode", 0))
    axes = tuple(range(-nd, 0))
    if node.op_type == "MaxPool":
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        return [_windows(x, kernel, strides, dilations, pads, fill, ceil_mode).max(axis=axes)]
    if node.op_type == "LpPool":
        p = node.attr("p", 2)
        win = _windows(x.astype(np.float64), kernel, strides, dilations, pads, 0, ceil_mode)
        return [(np.sum(np.abs(win) ** p, axis=axes) ** (1.0 / p)).astype(x.dtype)]
    win = _windows(x.astype(np.float64), kernel, strides, dilations, pads, 0, ceil_mode)
    ones = np.ones((1, 1, *x.shape[2:]))
    if node.attr("count_include_pad", 0):
        # count the padded extent, not what ceil_mode adds past it
        padded = np.pad(
            ones, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)], constant_values=1
        )
        counts = _windows(padded, kernel, strides, dilations, [0] * (2 * nd), 0, ceil_mode)
        counts = counts[(slice(None), slice(None), *[slice(0, s) for s in win.shape[2 : 2 + nd]])]
    else:
        counts = _windows(ones, kernel, strides, dilations, pads, 0, ceil_mode)
    return [(win.sum(axis=axes) / np.maximum(counts.sum(axis=axes), 1)).astype(x.dtype)]


@op("GlobalAveragePool", "GlobalMaxPool")
def global_pool(node, inputs):
    x = inputs[0]
    axes = tuple(range(2, x.ndim))
    fn = np.mean if node.op_type == "GlobalAveragePool" else np.max
    return [fn(x, axis=axes, keepdims=True).astype(x.dtype)]


@op("BatchNormalization")
def batch_norm(node, inputs):
    x, scale, bias, mean, var = inputs[:5]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    eps = np.float32(node.attr("epsilon", 1e-5))
    inv = scale / np.sqrt(var + eps)
    y = (x - mean.reshape(shape)) * inv.reshape(shape) + bias.reshape(shape)
    return [y.astype(x.dtype)]


@op("InstanceNormalization")
def instance_norm(node, inputs):
    x, scale, bias = inputs
    axes = tuple(range(2, x.ndim))
    eps = node.attr("epsilon", 1e-5)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean) / np.sqrt(var + eps) * scale.reshape(shape) + bias.reshape(shape)
    return [y.astype(x.dtype)]


@op("LayerNormalization")
def layer_norm(node, inputs):
    x, scale = inputs[0], inputs[1]
    bias = inputs[2] if len(inputs) > 2 else None
    axis = _axis(node, node.attr("axis", -1), x.ndim)
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + np.float32(node.attr("epsilon", 1e-5)))
    y = (x - mean) * inv * scale
    if bias is not None:
        y = y + bias
    return [y.astype(x.dtype), mean.astype(np.float32), inv.astype(np.float32)][: len(node.outputs)]


@op("LRN")
def lrn(node, inputs):
    x = inputs[0]
    size = int(node.attr("size"))
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
    sq = np.pad(
        x.astype(np.float64) ** 2, [(0, 0), ((size - 1) // 2, size // 2)] + [(0, 0)] * (x.ndim - 2)
    )
    window = sum(sq[:, i : i + x.shape[1]] for i in range(size))
    return [(x / (bias + alpha / size * window) ** beta).astype(x.dtype)]


# ---- reductions -------------------------------------------------------------

_REDUCE = {
    "ReduceMean": np.mean,
    "ReduceSum": np.sum,
    "ReduceMax": np.max,
    "ReduceMin": np.min,
    "ReduceProd": np.prod,
    "ReduceL1": lambda x, **k: np.sum(np.abs(x), **k),
    "ReduceL2": lambda x, **k: np.sqrt(np.sum(np.square(x), **k)),
    "ReduceSumSquare": lambda x, **k: np.sum(np.square(x), **k),
    "ReduceLogSum": lambda x, **k: np.log(np.sum(x, **k)),
    "ReduceLogSumExp": lambda x, **k: np.log(np.sum(np.exp(x), **k)),
}


@op(*_REDUCE)
def reduce(node, inputs):
    x = inputs[0]
    axes_from_input = node.op_type == "ReduceSum" and node.opset >= 13 or node.opset >= 18
    axes = _ints(inputs[1]) if axes_from_input and len(inputs) > 1 else node.attr("axes")
    keep = bool(node.attr("keepdims", 1))
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.ndim))
    axes = tuple(_axis(node, int(a), x.ndim, "axes") for a in axes)
    with np.errstate(all="ignore"):
        return [np.asarray(_REDUCE[node.op_type](x, axis=axes, keepdims=keep)).astype(x.dtype)]


@op("ArgMax", "ArgMin")
def arg_reduce(node, inputs):
    x = inputs[0]
    axis = _axis(node, node.attr("axis", 0), x.ndim)
    fn = np.argmax if node.op_type == "ArgMax" else np.argmin
    if node.attr("select_last_index", 0):
        flipped = np.flip(x, axis)
        out = x.shape[axis] - 1 - fn(flipped, axis=axis)
    else:
        out = fn(x, axis=axis)
    if node.attr("keepdims", 1):
        out = np.expand_dims(out, axis)
    return [out.astype(np.int64)]


@op("TopK")
def topk(node, inputs):
    x, k = inputs[0], int(np.asarray(inputs[1]).reshape(-1)[0])
    axis = _axis(node, node.attr("axis", -1), x.ndim)
    if not 0 <= k <= x.shape[axis]:
        raise fail(node, f"k={k} is out of range for axis size {x.shape[axis]}")
    largest = node.attr("largest", 1)
    order = np.argsort(-x if largest else x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


@op("CumSum")
def cumsum(node, inputs):
    x, axis = inputs[0], int(np.asarray(inputs[1]).reshape(-1)[0])
    axis = _axis(node, axis, x.ndim)
    y = np.flip(x, axis) if node.attr("reverse", 0) else x
    out = np.cumsum(y, axis=axis)
    if node.attr("exclusive", 0):
        out = out - y
    out = np.flip(out, axis) if node.attr("reverse", 0) else out
    return [out.astype(x.dtype)]


# ---- shape and data movement ------------------------------------------------


@op("Shape")
def shape(node, inputs):
    dims = np.array(inputs[0].shape, np.int64)
    start, end = node.attr("start", 0), node.attr("end", None)
    return [dims[start:end]]


@op("Size")
def size(node, inputs):
    return [np.array(inputs[0].size, np.int64)]


@op("Reshape")
def reshape(node, inputs):
    x, shape_in = inputs[0], _ints(inputs[1]) if len(inputs) > 1 else list(node.attr("shape"))
    allowzero = node.attr("allowzero", 0)
    target = [
        x.shape[i] if d == 0 and not allowzero and i < x.ndim else d for i, d in enumerate(shape_in)
    ]
    try:
        return [x.reshape(target)]
    except ValueError as exc:
        raise fail(node, f"cannot reshape {list(x.shape)} to {shape_in}") from exc


@op("Flatten")
def flatten(node, inputs):
    x = inputs[0]
    axis = node.attr("axis", 1)
    if not -x.ndim <= axis <= x.ndim:
        raise fail(node, f"axis {axis} is out of range for rank {x.ndim}")
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


@op("Transpose")
def transpose(node, inputs):
    x = inputs[0]
    perm = node.attr("perm")
    if perm is not None and sorted(perm) != list(range(x.ndim)):
        raise fail(node, f"perm {list(perm)} is not a permutation of rank {x.ndim}")
    return [np.transpose(x, perm)]


@op("Squeeze")
def squeeze(node, inputs):
    x = inputs[0]
    axes = _ints(inputs[1]) if node.opset >= 13 and len(inputs) > 1 else node.attr("axes")
    if axes is None:
        return [np.squeeze(x)]
    axes = tuple(_axis(node, a, x.ndim, "axes") for a in axes)
    if any(x.shape[a] != 1 for a in axes):
        raise fail(node, f"cannot squeeze axes {axes} of shape {list(x.shape)}")
    return [np.squeeze(x, axis=axes)]


@op("Unsqueeze")
def unsqueeze(node, inputs):
    x = inputs[0]
    axes = _ints(inputs[1]) if node.opset >= 13 else node.attr("axes")
    rank = x.ndim + len(axes)
    axes = sorted(_axis(node, a, rank, "axes") for a in axes)
    for a in axes:
        x = np.expand_dims(x, a)
    return [x]


@op("Concat")
def concat(node, inputs):
    arrays = [x for x in inputs if x is not None]
    axis = _axis(node, node.attr("axis"), arrays[0].ndim)
    try:
        return [np.concatenate(arrays, axis=axis)]
    except ValueError as exc:
        raise fail(node, f"shapes {[list(a.shape) for a in arrays]} do not concatenate") from exc


@op("Split")
def split(node, inputs):
    x = inputs[0]
    axis = _axis(node, node.attr("axis", 0), x.ndim)
    n = len(node.outputs)
    sizes = _ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else node.attr("split")
    if sizes is None:
        parts = node.attr("num_outputs", n)
        step = -(-x.shape[axis] // parts)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(parts)]
    if sum(sizes) != x.shape[axis]:
        raise fail(node, f"split sizes {list(sizes)} do not add up to {x.shape[axis]}")
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@op("Slice")
def slice_(node, inputs):
    x = inputs[0]
    if node.opset < 10:
        starts, ends, axes, steps = node.attr("starts"), node.attr("ends"), node.attr("axes"), None
    else:
        starts, ends = _ints(inputs[1]), _ints(inputs[2])
        axes = _ints(inputs[3]) if len(inputs) > 3 else None
        steps = _ints(inputs[4]) if len(inputs) > 4 else None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise fail(node, "steps must not be 0")
        a = _axis(node, a, x.ndim, "axes")
        dim = x.shape[a]
        s = max(-dim - 1, min(s, dim)) if st < 0 else max(-dim, min(s, dim))
        e = max(-dim - 1, min(e, dim))
        index[a] = slice(s, e if not (st < 0 and e == -dim - 1) else None, st)
    return [x[tuple(index)]]


@op("Gather")
def gather(node, inputs):
    x, idx = inputs
    axis = _axis(node, node.attr("axis", 0), x.ndim)
    dim = x.shape[axis]
    if np.any(idx < -dim) or np.any(idx >= dim):
        raise fail(node, f"indices out of range for axis size {dim}")
    return [np.take(x, np.where(idx < 0, idx + dim, idx), axis=axis)]


@op("GatherElements")
def gather_elements(node, inputs):
    x, idx = inputs
    axis = _axis(node, node.attr("axis", 0), x.ndim)
    dim = x.shape[axis]
    if np.any(idx < -dim) or np.any(idx >= dim):
        raise fail(node, f"indices out of range for axis size {dim}")
    return [np.take_along_axis(x, np.where(idx < 0, idx + dim, idx), axis=axis)]


@op("Expand")
def expand(node, inputs):
    x, shape_in = inputs[0], _ints(inputs[1])
    try:
        target = np.broadcast_shapes(x.shape, tuple(shape_in))
    except ValueError as exc:
        raise fail(node, f"cannot expand {list(x.shape)} to {shape_in}") from exc
    return [np.array(np.broadcast_to(x, target))]


@op("Tile")
def tile(node, inputs):
    return [np.tile(inputs[0], _ints(inputs[1]))]


@op("Pad")
def pad(node, inputs):
    x = inputs[0]
    mode = _s(node.attr("mode", "constant"))
    if node.opset < 11:
        pads, value, axes = list(node.attr("pads")), node.attr("value", 0.0), None
    else:
        pads = _ints(inputs[1])
        value = (
            inputs[2].reshape(-1)[0]
            if len(inputs) > 2 and inputs[2] is not None and inputs[2].size
            else 0
        )
        axes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else None
    axes = list(range(x.ndim)) if axes is None else [_axis(node, a, x.ndim, "axes") for a in axes]
    if len(pads) != 2 * len(axes):
        raise fail(node, f"pads has {len(pads)} values, expected {2 * len(axes)}")
    width = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        width[a] = (pads[i], pads[i + len(axes)])
    if any(b < 0 or e < 0 for b, e in width):  # negative pads crop
        index = tuple(slice(-min(b, 0), x.shape[i] + min(e, 0)) for i, (b, e) in enumerate(width))
        x = x[index]
        width = [(max(b, 0), max(e, 0)) for b, e in width]
    if mode == "constant":
        return [np.pad(x, width, constant_values=np.asarray(value).astype(x.dtype))]
    if mode in ("reflect", "edge", "wrap"):
        return [np.pad(x, width, mode=mode)]
    raise fail(node, f"unknown mode '{mode}'")


@op("Constant")
def constant(node, inputs):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            value = node.attrs[key]
            dtype = np.float32 if "float" in key else np.int64 if "int" in key else None
            return [np.array(value, dtype=dtype)]
    raise UnsupportedOpError(f"Constant node '{node.name}': value kind not supported")


@op("ConstantOfShape")
def constant_of_shape(node, inputs):
    value = node.attr("value", np.zeros(1, np.float32))
    return [np.full(_ints(inputs[0]), value.reshape(-1)[0], dtype=value.dtype)]


@op("Range")
def range_(node, inputs):
    start, limit, delta = (np.asarray(v).reshape(()) for v in inputs)
    if delta == 0:
        raise fail(node, "delta must not be 0")
    return [np.arange(start, limit, delta).astype(start.dtype)]


@op("Dropout")
def dropout(node, inputs):
    x = inputs[0]
    return [x, np.ones(x.shape, np.bool_)][: len(node.outputs)]


@op("DepthToSpace")
def depth_to_space(node, inputs):
    x = inputs[0]
    b = node.attr("blocksize")
    n, c, h, w = x.shape
    if _s(node.attr("mode", "DCR")) == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return [y.reshape(n, c // (b * b), h * b, w * b)]


@op("SpaceToDepth")
def space_to_depth(node, inputs):
    x = inputs[0]
    b = node.attr("blocksize")
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return [y.reshape(n, c * b * b, h // b, w // b)]


@op("Einsum")
def einsum(node, inputs):
    return [np.einsum(_s(node.attr("equation")), *inputs).astype(inputs[0].dtype)]


@op("NonZero")
def nonzero(node, inputs):
    return [np.array(np.nonzero(inputs[0]), np.int64)]


@op("Resize", "Upsample")
def resize(node, inputs):
    x = inputs[0]
    mode = _s(node.attr("mode", "nearest"))
    if node.op_type == "Upsample" or node.opset < 11:
        scales = np.asarray(inputs[1] if len(inputs) > 1 else node.attr("scales"), np.float32)
        sizes = None
        ctm = "asymmetric"
        nearest_mode = "floor"
    else:
        scales = inputs[2] if len(inputs) > 2 and inputs[2] is not None and inputs[2].size else None
        sizes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else None
        ctm = _s(node.attr("coordinate_transformation_mode", "half_pixel"))
        nearest_mode = _s(node.attr("nearest_mode", "round_prefer_floor"))
    if sizes is None:
        if scales is None:
            raise fail(node, "needs scales or sizes")
        sizes = [int(math.floor(d * float(s))) for d, s in zip(x.shape, scales)]
        scales = [float(s) for s in scales]
    else:
        scales = [s / d for s, d in zip(sizes, x.shape)]
    if mode not in ("nearest", "linear"):
        raise UnsupportedOpError(f"Resize node '{node.name}': mode '{mode}' is not supported")
    out = x
    for axis in range(x.ndim):
        if sizes[axis] == x.shape[axis] and scales[axis] == 1.0:
            continue
        coords = _source_coords(node, ctm, sizes[axis], x.shape[axis], scales[axis])
        if mode == "nearest":
            idx = _nearest(nearest_mode, coords, x.shape[axis])
            out = np.take(out, idx, axis=axis)
        else:
            coords = np.clip(coords, 0, x.shape[axis] - 1)
            lo = np.floor(coords).astype(np.int64)
            hi = np.minimum(lo + 1, x.shape[axis] - 1)
            frac = (coords - lo).astype(np.float32)
            shape = [1] * out.ndim
            shape[axis] = -1
            frac = frac.reshape(shape)
            out = np.take(out, lo, axis=axis) * (1 - frac) + np.take(out, hi, axis=axis) * frac
    return [out.astype(x.dtype)]


def _source_coords(node, ctm: str, out_len: int, in_len: int, scale: float) -> np.ndarray:
    o = np.arange(out_len, dtype=np.float64)
    if ctm == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if ctm == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out_len > 1 else np.zeros(out_len)
    if ctm == "align_corners":
        return o * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros(out_len)
    if ctm == "asymmetric":
        return o / scale
    if ctm == "half_pixel_symmetric":
        adj = out_len / (scale * in_len)
        center = in_len / 2
        return center * (1 - adj) + (o + 0.5) / scale - 0.5
    raise UnsupportedOpError(
        f"Resize node '{node.name}': coordinate_transformation_mode '{ctm}' is not supported"
    )


def _nearest(mode: str, coords: np.ndarray, in_len: int) -> np.ndarray:
    if mode == "round_prefer_floor":
        idx = np.where(coords - np.floor(coords) == 0.5, np.floor(coords), np.round(coords))
    elif mode == "round_prefer_ceil":
        idx = np.where(coords - np.floor(coords) == 0.5, np.ceil(coords), np.round(coords))
    elif mode == "floor":
        idx = np.floor(coords)
    else:
        idx = np.ceil(coords)
    return np.clip(idx, 0, in_len - 1).astype(np.int64)
