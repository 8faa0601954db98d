"""numpy implementations of ONNX operators: what runs where no int8 kernel does.

Each function takes the node (for attributes, opset and error messages) and the
input arrays (None for an omitted optional input) and returns one array per
node output. Float math stays in float32 as onnxruntime computes it (float16
and bfloat16 are widened to float32 and narrowed back; float64 stays float64),
and every result has the dtype the ONNX spec gives it.

Where the spec leaves a choice open, the choice onnxruntime's CPU provider
makes is copied (for example Resize-10/Upsample nearest rounding, Range's
accumulated float steps, ConvTranspose SAME_UPPER padding). Anything that the
model gets wrong raises ModelError naming the node and the field; attribute
values pyrt cannot run raise UnsupportedOpError naming the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import ModelError, PyrtError, UnsupportedOpError


class NodeView(Protocol):
    """What an op needs from a node: pyrt.graph.Node satisfies it."""

    name: str
    op_type: str
    opset: int
    attrs: dict[str, Any]
    outputs: list[str]

    def attr(self, name: str, default: Any = None) -> Any: ...


Inputs = list[np.ndarray | None]
OpFn = Callable[[NodeView, Inputs], list[np.ndarray]]
FLOAT_OPS: dict[str, OpFn] = {}
_MIN_INPUTS: dict[str, int] = {}


def op(*names: str, inputs: int = 1) -> Callable[[OpFn], OpFn]:
    """Registers fn under names; `inputs` is how many leading inputs are required."""

    def register(fn: OpFn) -> OpFn:
        for name in names:
            FLOAT_OPS[name] = fn
            _MIN_INPUTS[name] = inputs
        return fn

    return register


def _label(node: NodeView) -> str:
    return f"{node.op_type} node '{node.name}'"


def fail(node: NodeView, message: str) -> ModelError:
    return ModelError(f"{_label(node)}: {message}")


def unsupported(node: NodeView, message: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"{_label(node)}: {message}")


# numpy raises these for shapes, indices and values a malformed model gives it
_NUMPY_ERRORS = (ValueError, IndexError, TypeError, ZeroDivisionError, OverflowError)


# Ops whose largest array can outgrow their inputs by their attributes (pads, strides,
# output_shape) or their equation: each sizer gives that array's bytes before the op runs.
SizerFn = Callable[[NodeView, Inputs], int]
_SIZERS: dict[str, SizerFn] = {}


def sized(*names: str) -> Callable[[SizerFn], SizerFn]:
    def register(fn: SizerFn) -> SizerFn:
        for name in names:
            _SIZERS[name] = fn
        return fn

    return register


def largest_allocation(node: NodeView, inputs: Inputs) -> int | None:
    """Bytes of the largest array the op would allocate; None for ops whose arrays never
    outgrow their inputs, or when the inputs do not fit (the op itself reports that)."""
    sizer = _SIZERS.get(node.op_type)
    if sizer is None:
        return None
    try:
        return sizer(node, inputs)
    except (PyrtError, *_NUMPY_ERRORS):
        return None


def run_float_op(
    node: NodeView, inputs: Sequence[np.ndarray | None], memory_limit: int | None = None
) -> list[np.ndarray]:
    """Runs one default-domain node in numpy; raises UnsupportedOpError for unknown ops,
    and ModelError, before allocating it, for an array over memory_limit bytes."""
    fn = FLOAT_OPS.get(node.op_type)
    if fn is None:
        raise UnsupportedOpError(f"{_label(node)}: operator is not supported")
    args = list(inputs)
    for i in range(_MIN_INPUTS[node.op_type]):
        if i >= len(args) or args[i] is None:
            raise fail(node, f"required input {i} is missing")
    if memory_limit is not None:
        need = largest_allocation(node, args)
        if need is not None and need > memory_limit:
            raise fail(
                node,
                f"with inputs {_shapes(args)} it needs an array of {need} bytes, over the "
                f"memory limit of {memory_limit} bytes",
            )
    try:
        with np.errstate(all="ignore"):
            outs = fn(node, args)
    except PyrtError:
        raise
    except _NUMPY_ERRORS as exc:
        raise fail(node, f"cannot compute with inputs {_shapes(args)}: {exc}") from exc
    wanted = max(len(node.outputs), 1)
    if len(outs) < wanted:
        raise fail(node, f"has {len(node.outputs)} outputs, the operator produces {len(outs)}")
    return [np.asarray(o) for o in outs[:wanted]]


def _shapes(args: Inputs) -> str:
    return ", ".join("None" if a is None else f"{a.dtype}{list(a.shape)}" for a in args)


# ---- attribute and input helpers -------------------------------------------------


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _sattr(node: NodeView, name: str, default: str) -> str:
    return _str(node.attr(name, default))


def _iattr(node: NodeView, name: str, default: int) -> int:
    value = node.attr(name, default)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise fail(node, f"attribute '{name}' must be an int, got {value!r}") from exc


def _fattr(node: NodeView, name: str, default: float) -> float:
    value = node.attr(name, default)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise fail(node, f"attribute '{name}' must be a float, got {value!r}") from exc


def _intsattr(node: NodeView, name: str, default: list[int] | None = None) -> list[int] | None:
    value = node.attr(name, None)
    if value is None:
        return default
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise fail(node, f"attribute '{name}' must be a list of ints, got {value!r}") from exc


def _opt(inputs: Inputs, i: int) -> np.ndarray | None:
    return inputs[i] if len(inputs) > i else None


def _ints(node: NodeView, value: np.ndarray | None, what: str) -> list[int] | None:
    if value is None:
        return None
    if value.dtype.kind not in "iub":
        raise fail(node, f"input '{what}' must be an integer tensor, got {value.dtype}")
    if value.ndim > 1:
        raise fail(node, f"input '{what}' must be 1-D, got shape {list(value.shape)}")
    return [int(v) for v in value.reshape(-1)]


def _scalar(node: NodeView, value: np.ndarray, what: str) -> Any:
    if value.size != 1:
        raise fail(node, f"input '{what}' must hold one value, got shape {list(value.shape)}")
    return value.reshape(-1)[0]


def _axis(node: NodeView, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise fail(node, f"{what} {axis} is out of range for a rank-{rank} input")
    return axis + rank if axis < 0 else axis


def _axes(node: NodeView, axes: Sequence[int], rank: int, what: str = "axes") -> list[int]:
    out = [_axis(node, int(a), rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise fail(node, f"{what} {list(axes)} repeat an axis")
    return out


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype.name == "bfloat16"


def _work(node: NodeView, x: np.ndarray, what: str = "input") -> np.ndarray:
    """x as the float array onnxruntime computes in: float32 unless it is float64."""
    if not _is_float(x.dtype):
        raise fail(node, f"{what} must be a floating-point tensor, got {x.dtype}")
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


def _work_itemsize(x: np.ndarray) -> int:
    """Bytes per element of x as the ops compute with it (floats as _work makes them)."""
    return (8 if x.dtype == np.float64 else 4) if _is_float(x.dtype) else x.dtype.itemsize


def _mean(
    x: np.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False, dtype=None
) -> np.ndarray:
    """np.mean's sum-then-divide, without its warning for an empty reduction (NaN all the
    same: 0 / 0 under run_float_op's errstate)."""
    if dtype is None and x.dtype.kind in "biu":
        dtype = np.float64  # as np.mean accumulates integers
    axes = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    count = math.prod(x.shape[a] for a in axes)
    return np.true_divide(np.sum(x, axis=axis, keepdims=keepdims, dtype=dtype), count)


def _like(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(y).astype(x.dtype, copy=False)


def _dtype_of(node: NodeView, code: int, what: str) -> np.dtype:
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(int(code)))
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(node, f"attribute '{what}' = {code} is not an ONNX tensor type") from exc
    if dtype.kind not in "biufO" and dtype.name != "bfloat16":
        raise unsupported(node, f"attribute '{what}' = {code} ({dtype.name}) is not supported")
    return dtype


# ---- elementwise: unary ----------------------------------------------------------

_ERF_P = [
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
]


def erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1e-7: Maclaurin series below 0.5, Chebyshev-fitted erfc above."""
    a = np.abs(np.asarray(x, np.float64))
    y = np.empty_like(a)
    small = a < 0.5
    # series: 2/sqrt(pi) * sum (-1)^n a^(2n+1) / (n! (2n+1)); 12 terms are exact at 0.5
    s = a[small]
    term, acc, sq = s.copy(), np.zeros_like(s), s * s
    for n in range(12):
        acc += term / (2 * n + 1)
        term = -term * sq / (n + 1)
    y[small] = acc * (2 / math.sqrt(math.pi))
    # Numerical Recipes erfcc: fractional error < 1.2e-7
    b = a[~small]
    t = 1 / (1 + 0.5 * b)
    poly = np.zeros_like(b)
    for c in reversed(_ERF_P[1:]):
        poly = (poly + c) * t
    y[~small] = 1 - t * np.exp(-b * b + _ERF_P[0] + poly)
    return np.copysign(y, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(x, np.zeros((), x.dtype))


def _kernel_unary(op: str, fallback: Callable[[np.ndarray], np.ndarray]):
    """float32 through pyrt's C kernel (onnxruntime's x86 arithmetic, bit for bit: what a
    QDQ lookup table built from this op must reproduce), other dtypes in numpy."""

    def run(x: np.ndarray) -> np.ndarray:
        if x.dtype != np.float32:
            return fallback(x)
        from .kernels import funary  # the kernels module imports this one

        return funary(op, x)

    return run


_FLOAT_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Exp": np.exp,
    "Log": np.log,
    "Sqrt": np.sqrt,
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.round,  # half to even, like std::nearbyint
    "Reciprocal": lambda x: np.ones((), x.dtype) / x,
    "Sin": np.sin,
    "Cos": np.cos,
    "Tan": np.tan,
    "Asin": np.arcsin,
    "Acos": np.arccos,
    "Atan": np.arctan,
    "Sinh": np.sinh,
    "Cosh": np.cosh,
    "Asinh": np.arcsinh,
    "Acosh": np.arccosh,
    "Atanh": np.arctanh,
    "Tanh": _kernel_unary("tanh", np.tanh),
    "Erf": _kernel_unary("erf", erf),
    "Sigmoid": _kernel_unary("sigmoid", _sigmoid),
    "Softplus": _softplus,
    "Softsign": lambda x: x / (1 + np.abs(x)),
    "Mish": lambda x: x * np.tanh(_softplus(x)),
}


@op(*_FLOAT_UNARY)
def float_unary(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    return [_like(_FLOAT_UNARY[node.op_type](_work(node, x)), x)]


@op("Abs", "Neg", "Sign", "Relu")
def numeric_unary(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if x.dtype.kind not in "iuf" and not _is_float(x.dtype):
        raise fail(node, f"input must be numeric, got {x.dtype}")
    w = _work(node, x) if _is_float(x.dtype) else x
    if node.op_type == "Abs":
        y = np.abs(w)
    elif node.op_type == "Neg":
        y = np.negative(w)
    elif node.op_type == "Sign":
        y = np.sign(w)
    else:
        y = np.maximum(w, np.zeros((), w.dtype))
    return [_like(y, x)]


@op("Identity")
def identity(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    return [inputs[0]]


@op("Not")
def logical_not(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    return [np.logical_not(_bool(node, inputs[0]))]


@op("BitwiseNot")
def bitwise_not(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    return [np.invert(_integer(node, inputs[0]))]


@op("IsNaN")
def is_nan(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    return [np.isnan(_work(node, inputs[0]))]


@op("IsInf")
def is_inf(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = _work(node, inputs[0])
    pos = bool(_iattr(node, "detect_positive", 1))
    neg = bool(_iattr(node, "detect_negative", 1))
    return [(np.isposinf(x) & pos) | (np.isneginf(x) & neg)]


def _bool(node: NodeView, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.bool_:
        raise fail(node, f"input must be a bool tensor, got {x.dtype}")
    return x


def _integer(node: NodeView, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "iu":
        raise fail(node, f"input must be an integer tensor, got {x.dtype}")
    return x


# ---- elementwise: activations with attributes -------------------------------------


def _activation(node: NodeView, x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]):
    return [_like(fn(_work(node, x)), x)]


def _f32(node: NodeView, name: str, default: float, like: np.ndarray) -> np.ndarray:
    return np.asarray(_fattr(node, name, default), like.dtype if _is_float(like.dtype) else None)


@op("LeakyRelu")
def leaky_relu(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    def fn(x):
        a = _f32(node, "alpha", 0.01, x)
        return np.where(x >= 0, x, a * x)

    return _activation(node, inputs[0], fn)


@op("Elu")
def elu(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    def fn(x):
        a = _f32(node, "alpha", 1.0, x)
        return np.where(x >= 0, x, a * np.expm1(x))

    return _activation(node, inputs[0], fn)


@op("Celu")
def celu(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    def fn(x):
        a = _f32(node, "alpha", 1.0, x)
        if a == 0:
            raise fail(node, "attribute 'alpha' must not be 0")
        return np.maximum(x, 0) + np.minimum(0, a * np.expm1(x / a))

    return _activation(node, inputs[0], fn)


@op("Selu")
def selu(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    def fn(x):
        a = _f32(node, "alpha", 1.67326319217681884765625, x)
        g = _f32(node, "gamma", 1.05070102214813232421875, x)
        return np.where(x > 0, g * x, g * (a * np.exp(x) - a))

    return _activation(node, inputs[0], fn)


@op("ThresholdedRelu")
def thresholded_relu(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    def fn(x):
        return np.where(x > _f32(node, "alpha", 1.0, x), x, np.zeros((), x.dtype))

    return _activation(node, inputs[0], fn)


@op("HardSigmoid")
def hard_sigmoid(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    def fn(x):
        a, b = _f32(node, "alpha", 0.2, x), _f32(node, "beta", 0.5, x)
        return np.clip(a * x + b, 0, 1)

    return _activation(node, inputs[0], fn)


@op("HardSwish")
def hard_swish(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    def fn(x):
        return x * np.clip(x * np.asarray(1 / 6, x.dtype) + np.asarray(0.5, x.dtype), 0, 1)

    return _activation(node, inputs[0], fn)


@op("Shrink")
def shrink(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    lambd, bias = _fattr(node, "lambd", 0.5), _fattr(node, "bias", 0.0)
    w = _work(node, x) if _is_float(x.dtype) else x.astype(np.float64)
    y = np.where(w < -lambd, w + bias, np.where(w > lambd, w - bias, 0))
    return [_like(y, x)]


@op("Gelu")
def gelu(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    approximate = _sattr(node, "approximate", "none")
    if approximate not in ("none", "tanh"):
        raise fail(node, f"attribute 'approximate' is '{approximate}', expected 'none' or 'tanh'")

    def fn(x):
        if approximate == "tanh":
            c = np.asarray(math.sqrt(2 / math.pi), x.dtype)
            inner = c * (x + np.asarray(0.044715, x.dtype) * x * x * x)
            return np.asarray(0.5, x.dtype) * x * (1 + np.tanh(inner))
        return (0.5 * x * (1 + erf(x / math.sqrt(2)))).astype(x.dtype)

    return _activation(node, inputs[0], fn)


@op("PRelu", inputs=2)
def prelu(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, slope = inputs[0], inputs[1]
    _broadcast_into(node, slope.shape, x.shape, "slope")
    if _is_float(x.dtype):
        w = _work(node, x)
        y = np.where(w >= 0, w, w * slope.astype(w.dtype))
    else:
        y = np.where(x >= 0, x, x * slope)
    return [_like(y, x)]


def _broadcast_into(node: NodeView, small: tuple, big: tuple, what: str) -> None:
    """small must broadcast to big without changing it (unidirectional broadcast)."""
    try:
        ok = np.broadcast_shapes(small, big) == tuple(big)
    except ValueError:
        ok = False
    if not ok:
        raise fail(node, f"{what} of shape {list(small)} does not broadcast to {list(big)}")


@op("Clip")
def clip(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if node.opset < 11:
        lo: Any = node.attr("min", None)
        hi: Any = node.attr("max", None)
    else:
        lo, hi = _opt(inputs, 1), _opt(inputs, 2)
        lo = None if lo is None else _scalar(node, lo, "min")
        hi = None if hi is None else _scalar(node, hi, "max")
    y = x
    if lo is not None:
        y = np.maximum(y, np.asarray(lo).astype(x.dtype))
    if hi is not None:
        y = np.minimum(y, np.asarray(hi).astype(x.dtype))
    return [_like(y, x)]


# ---- elementwise: binary and variadic ----------------------------------------------


def _same_type(node: NodeView, a: np.ndarray, b: np.ndarray) -> None:
    if a.dtype != b.dtype:
        raise fail(node, f"inputs have different types {a.dtype} and {b.dtype}")


def _bcast(node: NodeView, *arrays: np.ndarray) -> None:
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError as exc:
        shapes = [list(a.shape) for a in arrays]
        raise fail(node, f"input shapes {shapes} do not broadcast") from exc


_ARITH = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}


@op(*_ARITH, inputs=2)
def arith(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = inputs[0], inputs[1]
    _same_type(node, a, b)
    _bcast(node, a, b)
    if _is_float(a.dtype):
        return [_like(_ARITH[node.op_type](_work(node, a), _work(node, b)), a)]
    return [_like(_ARITH[node.op_type](a, b), a)]


@op("Div", inputs=2)
def div(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = inputs[0], inputs[1]
    _same_type(node, a, b)
    _bcast(node, a, b)
    if _is_float(a.dtype):
        return [_like(_work(node, a) / _work(node, b), a)]
    if a.dtype.kind not in "iu":
        raise fail(node, f"inputs must be numeric, got {a.dtype}")
    if np.any(b == 0):
        raise fail(node, "integer division by zero")
    q = a // b  # floors; C truncates toward zero
    fix = (a % b != 0) & ((a < 0) != (b < 0))
    return [_like(q + fix.astype(q.dtype), a)]


@op("Mod", inputs=2)
def mod(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = inputs[0], inputs[1]
    _same_type(node, a, b)
    _bcast(node, a, b)
    use_fmod = _iattr(node, "fmod", 0)
    if _is_float(a.dtype):
        if not use_fmod:
            raise fail(node, "attribute 'fmod' must be 1 for floating-point inputs")
        return [_like(np.fmod(_work(node, a), _work(node, b)), a)]
    if np.any(b == 0):
        raise fail(node, "integer modulo by zero")
    return [_like(np.fmod(a, b) if use_fmod else np.mod(a, b), a)]


@op("Pow", inputs=2)
def power(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = inputs[0], inputs[1]
    _bcast(node, a, b)
    if _is_float(a.dtype):
        w = _work(node, a)
        return [_like(np.power(w, b.astype(w.dtype)), a)]
    if b.dtype.kind in "iu" and not np.any(b < 0):
        return [_like(np.power(a.astype(np.int64), b.astype(np.int64)), a)]
    return [_like(np.trunc(np.power(a.astype(np.float64), b.astype(np.float64))), a)]


_COMPARE = {
    "Equal": np.equal,
    "Less": np.less,
    "Greater": np.greater,
    "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal,
}


@op(*_COMPARE, inputs=2)
def compare(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = inputs[0], inputs[1]
    _same_type(node, a, b)
    _bcast(node, a, b)
    return [np.asarray(_COMPARE[node.op_type](a, b), np.bool_)]


_LOGICAL = {"And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}
_BITWISE = {"BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or, "BitwiseXor": np.bitwise_xor}


@op(*_LOGICAL, inputs=2)
def logical(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = _bool(node, inputs[0]), _bool(node, inputs[1])
    _bcast(node, a, b)
    return [_LOGICAL[node.op_type](a, b)]


@op(*_BITWISE, inputs=2)
def bitwise(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = _integer(node, inputs[0]), _integer(node, inputs[1])
    _same_type(node, a, b)
    _bcast(node, a, b)
    return [_BITWISE[node.op_type](a, b)]


@op("BitShift", inputs=2)
def bit_shift(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = _integer(node, inputs[0]), _integer(node, inputs[1])
    _same_type(node, a, b)
    _bcast(node, a, b)
    direction = _sattr(node, "direction", "")
    bits = a.dtype.itemsize * 8
    big = b >= bits  # C++ shifts past the width are undefined; onnxruntime gives 0
    shift = np.where(big, 0, b).astype(a.dtype)
    if direction == "LEFT":
        y = np.left_shift(a, shift)
    elif direction == "RIGHT":
        y = np.right_shift(a, shift)
    else:
        raise fail(node, f"attribute 'direction' is '{direction}', expected 'LEFT' or 'RIGHT'")
    return [np.where(big, np.zeros((), a.dtype), y).astype(a.dtype)]


@op("Max", "Min", "Sum", "Mean")
def variadic(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    arrays = [x for x in inputs if x is not None]
    first = arrays[0]
    for x in arrays[1:]:
        _same_type(node, first, x)
    _bcast(node, *arrays)
    work = [_work(node, x) for x in arrays] if _is_float(first.dtype) else arrays
    fn = {"Max": np.maximum, "Min": np.minimum, "Sum": np.add, "Mean": np.add}[node.op_type]
    y = work[0]
    for x in work[1:]:
        y = fn(y, x)
    if len(work) == 1:
        y = np.array(y)
    if node.op_type == "Mean":
        y = y / np.asarray(len(work), y.dtype) if _is_float(y.dtype) else y // len(work)
    return [_like(y, first)]


@op("Where", inputs=3)
def where(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    c, x, y = _bool(node, inputs[0]), inputs[1], inputs[2]
    _same_type(node, x, y)
    _bcast(node, c, x, y)
    return [np.where(c, x, y).astype(x.dtype, copy=False)]


# ---- softmax family ----------------------------------------------------------------


def softmax_along(x: np.ndarray, axis: int, log: bool) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    s = np.sum(e, axis=axis, keepdims=True)
    return (shifted - np.log(s)) if log else e / s


@op("Softmax", "LogSoftmax", "Hardmax")
def softmax(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    w = _work(node, x)
    rank = max(x.ndim, 1)
    axis = _axis(node, _iattr(node, "axis", -1 if node.opset >= 13 else 1), rank)
    shape = w.shape
    if node.opset < 13:  # coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])]
        w = w.reshape(math.prod(shape[:axis]), math.prod(shape[axis:]))
        axis = 1
    if node.op_type == "Hardmax":
        idx = np.expand_dims(np.argmax(w, axis=axis), axis)
        y = np.zeros_like(w)
        np.put_along_axis(y, idx, 1, axis=axis)
    else:
        y = softmax_along(w, axis, node.op_type == "LogSoftmax")
    return [_like(y.reshape(shape), x)]


# ---- casts -----------------------------------------------------------------------------


@op("Cast")
def cast(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    to = node.attr("to", None)
    if to is None:
        raise fail(node, "attribute 'to' is missing")
    return [_cast(node, inputs[0], _dtype_of(node, to, "to"))]


@op("CastLike", inputs=2)
def cast_like(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    return [_cast(node, inputs[0], inputs[1].dtype)]


def _cast(node: NodeView, x: np.ndarray, to: np.dtype) -> np.ndarray:
    if x.dtype == to:
        return x
    if to.kind == "O":
        return _to_strings(x)
    if x.dtype.kind in "OUS":
        return _from_strings(node, x, to)
    if _is_float(x.dtype) and to.kind in "iu":
        # static_cast truncates toward zero; NaN and out-of-range are undefined in C++
        return np.trunc(x.astype(np.float64)).astype(to)
    if _is_float(x.dtype) and to == np.bool_:
        return x != 0
    return x.astype(to)


def _to_strings(x: np.ndarray) -> np.ndarray:
    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            if np.isnan(v):
                return "NaN"
            if np.isinf(v):
                return "INF" if v > 0 else "-INF"
            return ("%.17g" if x.dtype == np.float64 else "%.8g") % float(v)
        if isinstance(v, (bool, np.bool_)):
            return "1" if v else "0"
        return str(v)

    out = np.empty(x.shape, dtype=object)
    for i, v in np.ndenumerate(x):
        out[i] = fmt(v)
    return out


def _from_strings(node: NodeView, x: np.ndarray, to: np.dtype) -> np.ndarray:
    out = np.empty(x.shape, np.float64 if to.kind != "iu" else np.int64)
    for i, v in np.ndenumerate(x):
        s = _str(v).strip()
        try:
            if to.kind in "iu":
                out[i] = int(s)
            else:
                low = s.lower()
                out[i] = (
                    math.inf
                    if low in ("inf", "+inf", "infinity")
                    else -math.inf
                    if low in ("-inf", "-infinity")
                    else float(s)
                )
        except ValueError as exc:
            raise fail(node, f"string '{s}' is not a number") from exc
    return out.astype(to)


# ---- matrix products ---------------------------------------------------------------------


@op("MatMul", inputs=2)
def matmul(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b = inputs[0], inputs[1]
    _same_type(node, a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise fail(node, f"inputs must have rank >= 1, got shapes {list(a.shape)}, {list(b.shape)}")
    ka, kb = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise fail(node, f"shapes {list(a.shape)} and {list(b.shape)} do not multiply")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError as exc:
        raise fail(node, f"batch dims of {list(a.shape)} and {list(b.shape)} differ") from exc
    if _is_float(a.dtype):
        return [_like(np.matmul(_work(node, a), _work(node, b)), a)]
    return [np.matmul(a, b).astype(a.dtype)]


@op("Gemm", inputs=2)
def gemm(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    a, b, c = inputs[0], inputs[1], _opt(inputs, 2)
    _same_type(node, a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise fail(node, f"A and B must be 2-D, got {list(a.shape)} and {list(b.shape)}")
    fa = a.T if _iattr(node, "transA", 0) else a
    fb = b.T if _iattr(node, "transB", 0) else b
    if fa.shape[1] != fb.shape[0]:
        raise fail(node, f"A' {list(fa.shape)} and B' {list(fb.shape)} do not multiply")
    alpha, beta = _fattr(node, "alpha", 1.0), _fattr(node, "beta", 1.0)
    if _is_float(a.dtype):
        wa, wb = _work(node, fa), _work(node, fb)
        y = np.matmul(wa, wb)
        if alpha != 1.0:
            y = y * np.asarray(alpha, y.dtype)
    else:
        y = np.matmul(fa, fb)
        if alpha != 1.0:
            y = y * a.dtype.type(alpha)
    if c is not None:
        _broadcast_into(node, c.shape, y.shape, "C")
        cw = _work(node, c) if _is_float(c.dtype) else c
        y = y + (cw * np.asarray(beta, y.dtype) if beta != 1.0 else cw.astype(y.dtype))
    return [_like(y, a)]


def _einsum_output_elements(equation: str, shapes: Sequence[tuple[int, ...]]) -> int:
    """Elements of an einsum's output, from the equation and the operands' shapes."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"{len(terms)} operands in the equation, {len(shapes)} given")
    dims: dict[str, int] = {}
    ellipses, seen = [], []
    for term, shape in zip(terms, shapes):
        head, dots, tail = term.partition("...")
        broadcast = len(shape) - len(head) - len(tail)
        if broadcast < 0 or (broadcast and not dots):
            raise ValueError(f"term '{term}' does not fit shape {list(shape)}")
        ellipses.append(shape[len(head) : len(head) + broadcast])
        for letter, d in zip(head + tail, (*shape[: len(head)], *shape[len(shape) - len(tail) :])):
            dims[letter] = d if dims.get(letter, 1) == 1 else dims[letter]
            seen.append(letter)
    out = rhs.replace("...", "") if arrow else [c for c in set(seen) if seen.count(c) == 1]
    return math.prod(np.broadcast_shapes(*ellipses)) * math.prod(dims.get(c, 1) for c in out)


@sized("Einsum")
def _einsum_bytes(node: NodeView, inputs: Inputs) -> int:
    """The output; numpy's optimized contraction keeps every intermediate within the
    largest of the operands and the output (einsum_path's default memory limit)."""
    arrays = [x for x in inputs if x is not None]
    elements = _einsum_output_elements(_sattr(node, "equation", ""), [x.shape for x in arrays])
    return elements * max(_work_itemsize(x) for x in arrays)


@op("Einsum")
def einsum(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    equation = _sattr(node, "equation", "")
    arrays = [x for x in inputs if x is not None]
    if not equation:
        raise fail(node, "attribute 'equation' is missing")
    work = [_work(node, x) for x in arrays] if _is_float(arrays[0].dtype) else arrays
    try:
        y = np.einsum(equation.replace(" ", ""), *work, optimize=len(work) > 2)
    except ValueError as exc:
        raise fail(node, f"equation '{equation}' does not fit {_shapes(arrays)}: {exc}") from exc
    return [_like(y, arrays[0])]


# ---- convolution -----------------------------------------------------------------------------


def _spatial_attrs(node: NodeView, nd: int) -> tuple[list[int], list[int]]:
    strides = _intsattr(node, "strides", [1] * nd) or [1] * nd
    dilations = _intsattr(node, "dilations", [1] * nd) or [1] * nd
    if len(strides) != nd or any(s < 1 for s in strides):
        raise fail(node, f"attribute 'strides' {strides} must hold {nd} positive values")
    if len(dilations) != nd or any(d < 1 for d in dilations):
        raise fail(node, f"attribute 'dilations' {dilations} must hold {nd} positive values")
    return strides, dilations


def _auto_pad(node: NodeView) -> str:
    auto_pad = _sattr(node, "auto_pad", "NOTSET") or "NOTSET"
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise fail(
            node,
            f"attribute 'auto_pad' is '{auto_pad}', "
            "expected NOTSET, SAME_UPPER, SAME_LOWER or VALID",
        )
    return auto_pad


def window_pads(
    node: NodeView,
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    dilated_same: bool = True,
) -> list[int]:
    """[begin..., end...] from pads or auto_pad, as Conv and the pools compute them."""
    nd = len(kernel)
    auto_pad = _auto_pad(node)
    if auto_pad == "NOTSET":
        pads = _intsattr(node, "pads", [0] * (2 * nd)) or [0] * (2 * nd)
        if len(pads) != 2 * nd or any(p < 0 for p in pads):
            raise fail(node, f"attribute 'pads' {pads} must hold {2 * nd} non-negative values")
        return pads
    if auto_pad == "VALID":
        return [0] * (2 * nd)
    begin, end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        target = -(-size // s)
        # onnxruntime's pools pad for the undilated kernel (its Conv rejects dilated SAME)
        span = (k - 1) * d + 1 if dilated_same else k
        total = max(0, (target - 1) * s + span - size)
        head = (total + 1) // 2 if auto_pad == "SAME_LOWER" else total // 2
        begin.append(head)
        end.append(total - head)
    return begin + end


def _out_sizes(
    node: NodeView,
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    ceil_mode: bool = False,
) -> list[int]:
    nd = len(kernel)
    out = []
    for i in range(nd):
        span = dilations[i] * (kernel[i] - 1) + 1
        room = spatial[i] + pads[i] + pads[i + nd] - span
        if room < 0:
            raise fail(
                node,
                f"kernel {list(kernel)} (dilations {list(dilations)}) does not fit input "
                f"{list(spatial)} padded by {list(pads)}",
            )
        size = (-(-room // strides[i]) if ceil_mode else room // strides[i]) + 1
        # a window that would start in the end padding is dropped
        if ceil_mode and (size - 1) * strides[i] >= spatial[i] + pads[i]:
            size -= 1
        out.append(size)
    return out


def _pad_widths(
    spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    out_sizes: Sequence[int],
) -> list[tuple[int, int]]:
    """(before, after) padding per spatial axis: pads, then up to the extent windows reach."""
    nd = len(kernel)
    widths = []
    for i in range(nd):
        span = dilations[i] * (kernel[i] - 1) + 1
        need = (out_sizes[i] - 1) * strides[i] + span
        widths.append((pads[i], max(0, need - spatial[i] - pads[i])))
    return widths


def _padded_elements(x: np.ndarray, kernel, strides, dilations, pads, out_sizes) -> int:
    """Elements of x once _windows has padded it."""
    widths = _pad_widths(x.shape[2:], kernel, strides, dilations, pads, out_sizes)
    return x.shape[0] * x.shape[1] * math.prod(d + a + b for d, (a, b) in zip(x.shape[2:], widths))


def _windows(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    out_sizes: Sequence[int],
    fill: Any,
) -> np.ndarray:
    """Strided view [N, C, out..., k...] of x padded with fill, one entry per window tap."""
    nd = len(kernel)
    widths = _pad_widths(x.shape[2:], kernel, strides, dilations, pads, out_sizes)
    width = [(0, 0), (0, 0), *widths]
    padded = np.pad(x, width, constant_values=fill) if any(w != (0, 0) for w in width) else x
    spans = [dilations[i] * (kernel[i] - 1) + 1 for i in range(nd)]
    view = np.lib.stride_tricks.sliding_window_view(padded, spans, axis=tuple(range(2, 2 + nd)))
    index: tuple = (slice(None), slice(None))
    index += tuple(slice(0, (out_sizes[i] - 1) * strides[i] + 1, strides[i]) for i in range(nd))
    index += tuple(slice(None, None, dilations[i]) for i in range(nd))
    return view[index]


def _conv_geometry(node: NodeView, x: np.ndarray, w: np.ndarray):
    """Checked Conv geometry: (group, kernel, strides, dilations, pads, out_sizes)."""
    if x.ndim < 3 or w.ndim != x.ndim:
        raise fail(node, f"X {list(x.shape)} and W {list(w.shape)} must have the same rank >= 3")
    nd = x.ndim - 2
    group = _iattr(node, "group", 1)
    if group < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise fail(
            node,
            f"X {list(x.shape)} does not fit W {list(w.shape)} with group {group} "
            f"(expected C = W[1] * group and M divisible by group)",
        )
    kernel = list(w.shape[2:])
    declared = _intsattr(node, "kernel_shape")
    if declared is not None and declared != kernel:
        raise fail(node, f"attribute 'kernel_shape' {declared} differs from W's {kernel}")
    strides, dilations = _spatial_attrs(node, nd)
    pads = window_pads(node, x.shape[2:], kernel, strides, dilations)
    out_sizes = _out_sizes(node, x.shape[2:], kernel, strides, dilations, pads)
    return group, kernel, strides, dilations, pads, out_sizes


@sized("Conv")
def _conv_bytes(node: NodeView, inputs: Inputs) -> int:
    """The padded input, the im2col matrix [N * out, C * k] or the output, the largest."""
    x, w = inputs[0], inputs[1]
    _, kernel, strides, dilations, pads, out_sizes = _conv_geometry(node, x, w)
    padded = _padded_elements(x, kernel, strides, dilations, pads, out_sizes)
    rows = x.shape[0] * math.prod(out_sizes)
    largest = max(padded, rows * x.shape[1] * math.prod(kernel), rows * w.shape[0])
    return largest * _work_itemsize(x)


@op("Conv", inputs=2)
def conv(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, w, b = inputs[0], inputs[1], _opt(inputs, 2)
    group, kernel, strides, dilations, pads, out_sizes = _conv_geometry(node, x, w)
    nd = len(kernel)
    if b is not None and b.shape != (w.shape[0],):
        raise fail(node, f"B has shape {list(b.shape)}, expected [{w.shape[0]}]")
    wx = _work(node, x, "X")
    ww = _work(node, w, "W").astype(wx.dtype)
    win = _windows(wx, kernel, strides, dilations, pads, out_sizes, 0)
    n, m = x.shape[0], w.shape[0]
    cg, mg = w.shape[1], m // group
    k = math.prod(kernel)
    o = math.prod(out_sizes)
    # im2col: [group, N * out, C/group * k] @ [group, C/group * k, M/group]
    win = win.reshape(n, group, cg, *out_sizes, *kernel)
    order = (1, 0, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd))
    cols = np.ascontiguousarray(win.transpose(order)).reshape(group, n * o, cg * k)
    wmat = ww.reshape(group, mg, cg * k).transpose(0, 2, 1)
    y = np.matmul(cols, wmat)  # [group, N * out, M/group]
    y = y.reshape(group, n, o, mg).transpose(1, 0, 3, 2).reshape(n, m, *out_sizes)
    if b is not None:
        y = y + _work(node, b, "B").astype(y.dtype).reshape(1, m, *([1] * nd))
    return [_like(y, x)]


def _conv_transpose_geometry(node: NodeView, x: np.ndarray, w: np.ndarray):
    """Checked ConvTranspose geometry: (group, kernel, strides, dilations, full, heads,
    outs): the full output extent, where the kept output starts in it, and its size."""
    if x.ndim < 3 or w.ndim != x.ndim:
        raise fail(node, f"X {list(x.shape)} and W {list(w.shape)} must have the same rank >= 3")
    nd = x.ndim - 2
    group = _iattr(node, "group", 1)
    if group < 1 or x.shape[1] != w.shape[0] or w.shape[0] % group:
        raise fail(
            node,
            f"X {list(x.shape)} does not fit W {list(w.shape)} with group {group} "
            f"(expected C = W[0], divisible by group)",
        )
    kernel = list(w.shape[2:])
    declared = _intsattr(node, "kernel_shape")
    if declared is not None and declared != kernel:
        raise fail(node, f"attribute 'kernel_shape' {declared} differs from W's {kernel}")
    strides, dilations = _spatial_attrs(node, nd)
    out_pad = _intsattr(node, "output_padding", [0] * nd) or [0] * nd
    if len(out_pad) != nd:
        raise fail(node, f"attribute 'output_padding' {out_pad} must hold {nd} values")
    in_sizes = x.shape[2:]
    full = [
        strides[i] * (in_sizes[i] - 1) + out_pad[i] + dilations[i] * (kernel[i] - 1) + 1
        for i in range(nd)
    ]
    auto_pad = _auto_pad(node)
    output_shape = _intsattr(node, "output_shape")
    if output_shape is not None:
        if len(output_shape) == nd + 2:
            output_shape = output_shape[2:]
        if len(output_shape) != nd:
            raise fail(node, f"attribute 'output_shape' {output_shape} must hold {nd} values")
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        outs = output_shape or [in_sizes[i] * strides[i] for i in range(nd)]
        heads = []
        for i in range(nd):
            total = full[i] - outs[i]
            # the odd pixel goes at the end for SAME_UPPER, at the start otherwise (also NOTSET)
            heads.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    else:
        pads = [0] * (2 * nd) if auto_pad == "VALID" else _intsattr(node, "pads", [0] * (2 * nd))
        if pads is None or len(pads) != 2 * nd or any(p < 0 for p in pads):
            raise fail(node, f"attribute 'pads' {pads} must hold {2 * nd} non-negative values")
        heads = pads[:nd]
        outs = [full[i] - pads[i] - pads[i + nd] for i in range(nd)]
    if any(s <= 0 for s in outs):
        raise fail(node, f"output spatial shape {outs} is empty")
    return group, kernel, strides, dilations, full, heads, outs


def _crop_pads(
    full: Sequence[int], heads: Sequence[int], outs: Sequence[int]
) -> list[tuple[int, int]]:
    """Zeros to add around the full ConvTranspose output where the kept part runs past it."""
    return [(max(0, -lo), max(0, lo + n - f)) for f, lo, n in zip(full, heads, outs)]


@sized("ConvTranspose")
def _conv_transpose_bytes(node: NodeView, inputs: Inputs) -> int:
    """The per-tap products [N * in, M * k] or the (padded) full output, the larger."""
    x, w = inputs[0], inputs[1]
    group, kernel, _, _, full, heads, outs = _conv_transpose_geometry(node, x, w)
    n, m = x.shape[0], w.shape[1] * group
    cols = n * math.prod(x.shape[2:]) * m * math.prod(kernel)
    extent = [f + a + b for f, (a, b) in zip(full, _crop_pads(full, heads, outs))]
    return max(cols, n * m * math.prod(extent)) * _work_itemsize(x)


@op("ConvTranspose", inputs=2)
def conv_transpose(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, w, b = inputs[0], inputs[1], _opt(inputs, 2)
    group, kernel, strides, dilations, full, heads, outs = _conv_transpose_geometry(node, x, w)
    nd, in_sizes = len(kernel), x.shape[2:]
    m = w.shape[1] * group
    if b is not None and b.shape != (m,):
        raise fail(node, f"B has shape {list(b.shape)}, expected [{m}]")
    wx = _work(node, x, "X")
    ww = _work(node, w, "W").astype(wx.dtype)
    n, cg, mg = x.shape[0], x.shape[1] // group, w.shape[1]
    # cols[g, n, mg, k..., in...] = sum_c W[g, c, mg, k...] * X[n, g, c, in...]
    xg = wx.reshape(n, group, cg, -1).transpose(1, 0, 3, 2)  # [g, n, in, cg]
    wg = ww.reshape(group, 1, cg, mg * math.prod(kernel))  # [g, 1, cg, mg * k]
    cols = np.matmul(xg, wg).reshape(group, n, *in_sizes, mg, *kernel)
    y = np.zeros((n, group, mg, *full), wx.dtype)
    for kidx in np.ndindex(*kernel):
        tap = cols[(slice(None), slice(None), *([slice(None)] * nd), slice(None), *kidx)]
        tap = np.moveaxis(tap, -1, 2).transpose(1, 0, 2, *range(3, 3 + nd))  # [n, g, mg, in...]
        index = [slice(None), slice(None), slice(None)]
        for i in range(nd):
            start = kidx[i] * dilations[i]
            index.append(slice(start, start + strides[i] * (in_sizes[i] - 1) + 1, strides[i]))
        y[tuple(index)] += tap
    y = y.reshape(n, m, *full)
    crop_pad = _crop_pads(full, heads, outs)  # heads may be negative or run past full
    if any(p != (0, 0) for p in crop_pad):
        y = np.pad(y, [(0, 0), (0, 0), *crop_pad])
    index = tuple(
        slice(heads[i] + crop_pad[i][0], heads[i] + crop_pad[i][0] + outs[i]) for i in range(nd)
    )
    y = y[(slice(None), slice(None), *index)]
    if b is not None:
        y = y + _work(node, b, "B").astype(y.dtype).reshape(1, m, *([1] * nd))
    return [_like(y, x)]


# ---- pooling -------------------------------------------------------------------------------


def _pool_setup(node: NodeView, x: np.ndarray):
    if x.ndim < 3:
        raise fail(node, f"input must have rank >= 3 (N, C, spatial...), got {list(x.shape)}")
    nd = x.ndim - 2
    kernel = _intsattr(node, "kernel_shape")
    if kernel is None or len(kernel) != nd or any(k < 1 for k in kernel):
        raise fail(node, f"attribute 'kernel_shape' {kernel} must hold {nd} positive values")
    strides, dilations = _spatial_attrs(node, nd)
    pads = window_pads(node, x.shape[2:], kernel, strides, dilations, dilated_same=False)
    ceil_mode = bool(_iattr(node, "ceil_mode", 0))
    out_sizes = _out_sizes(node, x.shape[2:], kernel, strides, dilations, pads, ceil_mode)
    return nd, kernel, strides, dilations, pads, out_sizes


@sized("MaxPool", "AveragePool", "LpPool")
def _pool_bytes(node: NodeView, inputs: Inputs) -> int:
    """The padded input or the output; LpPool and MaxPool's indices copy every window tap
    (in float64 or int64)."""
    x = inputs[0]
    _, kernel, strides, dilations, pads, out_sizes = _pool_setup(node, x)
    padded = _padded_elements(x, kernel, strides, dilations, pads, out_sizes)
    out = x.shape[0] * x.shape[1] * math.prod(out_sizes)
    if node.op_type == "LpPool" or (len(node.outputs) > 1 and node.outputs[1]):
        return max(padded, out * math.prod(kernel)) * 8
    return max(padded * _work_itemsize(x), out * 8)  # AveragePool sums in float64


@op("MaxPool")
def max_pool(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    nd, kernel, strides, dilations, pads, out_sizes = _pool_setup(node, x)
    if x.dtype.kind in "iu":
        fill: Any = np.iinfo(x.dtype).min
        work = x
    else:
        work = _work(node, x)
        fill = -np.inf
    win = _windows(work, kernel, strides, dilations, pads, out_sizes, fill)
    axes = tuple(range(-nd, 0))
    y = _like(win.max(axis=axes), x)
    if len(node.outputs) < 2 or not node.outputs[1]:
        return [y]
    # Indices: flat offset of the maximum in the unpadded input, first maximum wins
    order = _iattr(node, "storage_order", 0)
    spatial = x.shape[2:]
    if order == 1:
        if nd != 2:
            raise unsupported(node, "storage_order 1 is supported for 2-D pooling only")
        h, w = spatial
        flat = (np.arange(w)[None, :] * h + np.arange(h)[:, None]).astype(np.int64)
    else:
        flat = np.arange(math.prod(spatial), dtype=np.int64).reshape(spatial)
    base = np.arange(x.shape[0] * x.shape[1], dtype=np.int64) * math.prod(spatial)
    offsets = base.reshape(x.shape[0], x.shape[1], *([1] * nd)) + flat
    owin = _windows(offsets, kernel, strides, dilations, pads, out_sizes, -1)
    shape = win.shape[: 2 + nd] + (-1,)
    arg = np.argmax(win.reshape(shape), axis=-1)
    idx = np.take_along_axis(owin.reshape(shape), arg[..., None], axis=-1)[..., 0]
    return [y, idx.astype(np.int64)]


@op("AveragePool", "LpPool")
def avg_pool(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    nd, kernel, strides, dilations, pads, out_sizes = _pool_setup(node, x)
    w = _work(node, x)
    axes = tuple(range(-nd, 0))
    win = _windows(w, kernel, strides, dilations, pads, out_sizes, 0)
    if node.op_type == "LpPool":
        p = _iattr(node, "p", 2)
        if p < 1:
            raise fail(node, f"attribute 'p' is {p}, expected >= 1")
        acc = np.sum(np.abs(win.astype(np.float64)) ** p, axis=axes)
        return [_like(acc ** (1.0 / p), x)]
    total = win.sum(axis=axes, dtype=np.float64)
    ones = np.ones((1, 1, *x.shape[2:]), np.float64)
    if _iattr(node, "count_include_pad", 0):
        # the padded extent counts, taps past it (from ceil_mode) do not
        padded = np.pad(ones, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)])
        padded[...] = 1
        counts = _windows(padded, kernel, strides, dilations, [0] * (2 * nd), out_sizes, 0)
    else:
        counts = _windows(ones, kernel, strides, dilations, pads, out_sizes, 0)
    count = counts.sum(axis=axes)
    return [_like(total / np.maximum(count, 1), x)]


@op("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if x.ndim < 2:
        raise fail(node, f"input must have rank >= 2 (N, C, ...), got {list(x.shape)}")
    axes = tuple(range(2, x.ndim))
    if node.op_type == "GlobalMaxPool":
        w = x if x.dtype.kind in "iu" else _work(node, x)
        return [_like(np.max(w, axis=axes, keepdims=True), x)]
    w = _work(node, x)
    if node.op_type == "GlobalLpPool":
        p = _iattr(node, "p", 2)
        y = np.sum(np.abs(w.astype(np.float64)) ** p, axis=axes, keepdims=True) ** (1.0 / p)
        return [_like(y, x)]
    return [_like(_mean(w, axes, True, np.float64), x)]


# ---- normalization -------------------------------------------------------------------------


def _channel(node: NodeView, v: np.ndarray, x: np.ndarray, what: str, dtype: np.dtype):
    if v.shape == (x.shape[1],):
        return v.astype(dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if v.ndim >= 1 and v.shape == x.shape[1 : 1 + v.ndim]:  # BatchNormalization spatial=0
        return v.astype(dtype).reshape(1, *v.shape, *([1] * (x.ndim - 1 - v.ndim)))
    raise fail(node, f"{what} has shape {list(v.shape)}, expected [{x.shape[1]}]")


@op("BatchNormalization", inputs=5)
def batch_norm(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, scale, bias, mean, var = inputs[:5]
    if _iattr(node, "training_mode", 0):
        raise unsupported(node, "training_mode 1 is not supported (inference only)")
    if x.ndim < 2:
        raise fail(node, f"X must have rank >= 2, got {list(x.shape)}")
    w = _work(node, x)
    eps = _fattr(node, "epsilon", 1e-5)
    s = _channel(node, scale, x, "scale", w.dtype)
    b = _channel(node, bias, x, "B", w.dtype)
    mu = _channel(node, mean, x, "input_mean", w.dtype)
    v = _channel(node, var, x, "input_var", w.dtype)
    y = (w - mu) / np.sqrt(v + np.asarray(eps, w.dtype)) * s + b
    return [_like(y, x)]


@op("InstanceNormalization", inputs=3)
def instance_norm(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, scale, bias = inputs[0], inputs[1], inputs[2]
    if x.ndim < 3:
        raise fail(node, f"input must have rank >= 3, got {list(x.shape)}")
    w = _work(node, x)
    axes = tuple(range(2, x.ndim))
    eps = _fattr(node, "epsilon", 1e-5)
    mean = _mean(w, axes, True, np.float64)
    var = _mean((w - mean) ** 2, axes, True)
    s = _channel(node, scale, x, "scale", np.float64)
    b = _channel(node, bias, x, "B", np.float64)
    return [_like((w - mean) / np.sqrt(var + eps) * s + b, x)]


@op("LayerNormalization", inputs=2)
def layer_norm(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, scale, bias = inputs[0], inputs[1], _opt(inputs, 2)
    axis = _axis(node, _iattr(node, "axis", -1), max(x.ndim, 1))
    norm_shape = x.shape[axis:]
    _broadcast_into(node, scale.shape, norm_shape, "Scale")
    if bias is not None:
        _broadcast_into(node, bias.shape, norm_shape, "B")
    w = _work(node, x).astype(np.float64)
    axes = tuple(range(axis, x.ndim))
    mean = _mean(w, axes, True)
    var = _mean((w - mean) ** 2, axes, True)
    inv = 1 / np.sqrt(var + _fattr(node, "epsilon", 1e-5))
    y = (w - mean) * inv * scale.astype(np.float64)
    if bias is not None:
        y = y + bias.astype(np.float64)
    stash = np.float32 if _iattr(node, "stash_type", 1) == 1 else x.dtype
    return [_like(y, x), mean.astype(stash), inv.astype(stash)]


@op("GroupNormalization", inputs=3)
def group_norm(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, scale, bias = inputs[0], inputs[1], inputs[2]
    groups = _iattr(node, "num_groups", 0)
    if x.ndim < 2 or groups < 1 or x.shape[1] % groups:
        raise fail(
            node,
            f"attribute 'num_groups' {groups} must be >= 1 and divide C of {list(x.shape)}",
        )
    c = x.shape[1]
    per_group = node.opset < 21
    want = groups if per_group else c
    if scale.shape != (want,) or bias.shape != (want,):
        raise fail(
            node,
            f"scale {list(scale.shape)} and bias {list(bias.shape)} must be [{want}] "
            f"(opset {node.opset})",
        )
    w = _work(node, x).astype(np.float64)
    g = w.reshape(x.shape[0], groups, -1)
    mean = _mean(g, 2, True)
    var = _mean((g - mean) ** 2, 2, True)
    g = (g - mean) / np.sqrt(var + _fattr(node, "epsilon", 1e-5))
    y = g.reshape(x.shape)
    s, b = scale.astype(np.float64), bias.astype(np.float64)
    if per_group:
        s, b = np.repeat(s, c // groups), np.repeat(b, c // groups)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return [_like(y * s.reshape(shape) + b.reshape(shape), x)]


@op("LRN")
def lrn(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    size = _iattr(node, "size", 0)
    if size < 1:
        raise fail(node, f"attribute 'size' is {size}, expected >= 1")
    if x.ndim < 3:
        raise fail(node, f"input must have rank >= 3, got {list(x.shape)}")
    alpha, beta = _fattr(node, "alpha", 1e-4), _fattr(node, "beta", 0.75)
    bias = _fattr(node, "bias", 1.0)
    w = _work(node, x).astype(np.float64)
    # channels past either end add nothing: a window wider than C pads by C - 1 at most
    c = x.shape[1]
    before, after = min((size - 1) // 2, max(c - 1, 0)), min(size // 2, max(c - 1, 0))
    sq = np.pad(w * w, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
    window = sum(sq[:, i : i + c] for i in range(before + after + 1))
    return [_like(w / (bias + alpha / size * window) ** beta, x)]


@op("MeanVarianceNormalization")
def mvn(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    axes = _axes(node, _intsattr(node, "axes", [0, 2, 3]) or [], x.ndim)
    w = _work(node, x).astype(np.float64)
    mean = _mean(w, tuple(axes), True)
    var = _mean((w - mean) ** 2, tuple(axes), True)
    return [_like((w - mean) / (np.sqrt(var) + 1e-9), x)]


# ---- reductions --------------------------------------------------------------------------


def _logsumexp(x: np.ndarray, axis: tuple, keepdims: bool) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis)


_REDUCE: dict[str, Callable[..., np.ndarray]] = {
    "ReduceMean": _mean,
    "ReduceSum": np.sum,
    "ReduceMax": np.max,
    "ReduceMin": np.min,
    "ReduceProd": np.prod,
    "ReduceL1": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "ReduceL2": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    "ReduceSumSquare": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
    "ReduceLogSum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "ReduceLogSumExp": _logsumexp,
}


@op(*_REDUCE)
def reduce(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    axes_as_input = node.opset >= (13 if node.op_type == "ReduceSum" else 18)
    if axes_as_input:
        axes = _ints(node, _opt(inputs, 1), "axes")
    else:
        axes = _intsattr(node, "axes")
    keep = bool(_iattr(node, "keepdims", 1))
    if not axes and axes_as_input and _iattr(node, "noop_with_empty_axes", 0):
        # reduce over no axis: the elementwise part still applies (ReduceSumSquare squares),
        # as onnxruntime and the ONNX reference do
        axes_t: tuple[int, ...] = ()
        keep = True
    else:
        axes_t = tuple(_axes(node, axes or range(x.ndim), x.ndim))
    if node.op_type in ("ReduceMax", "ReduceMin") and any(x.shape[a] == 0 for a in axes_t):
        raise fail(node, f"cannot take the {node.op_type[6:].lower()} of an empty axis")
    if _is_float(x.dtype):
        work = _work(node, x)
        if node.op_type not in ("ReduceMax", "ReduceMin"):
            work = work.astype(np.float64)  # sums accumulate more exactly than float32 does
    else:
        work = x
    y = _REDUCE[node.op_type](work, axis=axes_t, keepdims=keep)
    if x.dtype.kind in "iu" and node.op_type == "ReduceMean":
        y = np.trunc(y)
    return [_like(y, x)]


@op("ArgMax", "ArgMin")
def arg_reduce(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    axis = _axis(node, _iattr(node, "axis", 0), max(x.ndim, 1))
    if x.shape[axis] == 0:
        raise fail(node, f"axis {axis} is empty")
    fn = np.argmax if node.op_type == "ArgMax" else np.argmin
    if _iattr(node, "select_last_index", 0):
        y = x.shape[axis] - 1 - fn(np.flip(x, axis), axis=axis)
    else:
        y = fn(x, axis=axis)
    if _iattr(node, "keepdims", 1):
        y = np.expand_dims(y, axis)
    return [np.asarray(y, np.int64)]


@op("TopK")
def topk(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if node.opset < 10:
        k = _iattr(node, "k", -1)
    else:
        kin = _opt(inputs, 1)
        if kin is None:
            raise fail(node, "input 'K' is missing")
        k = int(_scalar(node, kin, "K"))
    axis = _axis(node, _iattr(node, "axis", -1), max(x.ndim, 1))
    if not 0 <= k <= x.shape[axis]:
        raise fail(node, f"k = {k} is out of range for axis {axis} of size {x.shape[axis]}")
    largest = _iattr(node, "largest", 1)
    if largest:  # descending, ties keep the lower index first
        key = -x if _is_float(x.dtype) else np.invert(x)
    else:
        key = x
    order = np.argsort(key, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


@op("CumSum", inputs=2)
def cumsum(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    axis = _axis(node, int(_scalar(node, _integer(node, inputs[1]), "axis")), max(x.ndim, 1))
    reverse, exclusive = _iattr(node, "reverse", 0), _iattr(node, "exclusive", 0)
    work = _work(node, x) if _is_float(x.dtype) else x
    y = np.flip(work, axis) if reverse else work
    out = np.cumsum(y, axis=axis, dtype=y.dtype)
    if exclusive:
        zero = np.zeros_like(np.take(out, [0], axis=axis))
        out = np.concatenate([zero, np.take(out, np.arange(out.shape[axis] - 1), axis=axis)], axis)
    out = np.flip(out, axis) if reverse else out
    return [_like(out, x)]


# ---- shape and data movement -------------------------------------------------------------


@op("Shape")
def shape(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    dims = np.array(inputs[0].shape, np.int64)
    start = _iattr(node, "start", 0)
    end = node.attr("end", None)
    return [dims[start : None if end is None else int(end)]]


@op("Size")
def size(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    return [np.array(inputs[0].size, np.int64)]


@op("Reshape")
def reshape(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if node.opset < 5:
        target = _intsattr(node, "shape")
    else:
        target = _ints(node, _opt(inputs, 1), "shape")
    if target is None:
        raise fail(node, "the target shape is missing")
    allowzero = _iattr(node, "allowzero", 0)
    if target.count(-1) > 1:
        raise fail(node, f"shape {target} has more than one -1")
    if any(d < -1 for d in target):
        raise fail(node, f"shape {target} has a negative dimension")
    if allowzero and -1 in target and 0 in target:
        raise fail(node, f"shape {target} has both 0 and -1 while allowzero is 1")
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= x.ndim:
                raise fail(node, f"shape {target} copies dim {i} of a rank-{x.ndim} input")
            d = x.shape[i]
        out.append(d)
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or x.size % known:
            raise fail(node, f"cannot reshape {list(x.shape)} to {target}")
        out[out.index(-1)] = x.size // known
    if math.prod(out) != x.size:
        raise fail(node, f"cannot reshape {list(x.shape)} ({x.size} elements) to {target}")
    return [x.reshape(out)]


@op("Flatten")
def flatten(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    axis = _iattr(node, "axis", 1)
    if not -x.ndim <= axis <= x.ndim:
        raise fail(node, f"axis {axis} is out of range for a rank-{x.ndim} input")
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


@op("Transpose")
def transpose(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    perm = _intsattr(node, "perm")
    if perm is None:
        return [x.transpose()]
    if sorted(perm) != list(range(x.ndim)):
        raise fail(node, f"attribute 'perm' {perm} is not a permutation of {x.ndim} axes")
    return [x.transpose(perm)]


@op("Squeeze")
def squeeze(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if node.opset >= 13:
        axes = _ints(node, _opt(inputs, 1), "axes")
    else:
        axes = _intsattr(node, "axes")
    if axes is None:
        return [x.reshape([d for d in x.shape if d != 1])]
    axes = _axes(node, axes, x.ndim)
    if any(x.shape[a] != 1 for a in axes):
        raise fail(node, f"cannot squeeze axes {axes} of shape {list(x.shape)}")
    return [np.squeeze(x, axis=tuple(axes))]


@op("Unsqueeze")
def unsqueeze(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if node.opset >= 13:
        axes = _ints(node, _opt(inputs, 1), "axes")
    else:
        axes = _intsattr(node, "axes")
    if axes is None:
        raise fail(node, "axes are missing")
    rank = x.ndim + len(axes)
    axes = sorted(_axes(node, axes, rank))
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return [x.reshape(shape)]


@op("Concat")
def concat(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    arrays = [x for x in inputs if x is not None]
    if node.attr("axis", None) is None:
        raise fail(node, "attribute 'axis' is missing")
    first = arrays[0]
    if first.ndim == 0:
        raise fail(node, "inputs must have rank >= 1")
    axis = _axis(node, _iattr(node, "axis", 0), first.ndim)
    for a in arrays[1:]:
        _same_type(node, first, a)
        if a.ndim != first.ndim or any(
            a.shape[i] != first.shape[i] for i in range(a.ndim) if i != axis
        ):
            shapes = [list(v.shape) for v in arrays]
            raise fail(node, f"input shapes {shapes} differ off axis {axis}")
    return [np.concatenate(arrays, axis=axis)]


@op("Split")
def split(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    axis = _axis(node, _iattr(node, "axis", 0), max(x.ndim, 1))
    dim = x.shape[axis]
    n = len(node.outputs)
    if node.opset >= 13:
        given = _opt(inputs, 1)
        sizes = _ints(node, given, "split") if given is not None and given.size else None
    else:
        sizes = _intsattr(node, "split")
    num_outputs = node.attr("num_outputs", None)
    if sizes is not None and num_outputs is not None:
        raise fail(node, "give the 'split' input or the 'num_outputs' attribute, not both")
    if sizes is None:
        if num_outputs is not None:  # opset 18: the last chunk may be smaller
            parts = int(num_outputs)
            if parts < 1 or parts != n:
                raise fail(node, f"attribute 'num_outputs' {parts} differs from {n} outputs")
            step = -(-dim // parts)
            sizes = [max(0, min(step, dim - i * step)) for i in range(parts)]
        else:
            if n < 1 or dim % n:
                raise fail(node, f"axis {axis} of size {dim} does not split evenly into {n}")
            sizes = [dim // n] * n
    if len(sizes) != n or any(s < 0 for s in sizes) or sum(sizes) != dim:
        raise fail(node, f"split sizes {sizes} must be {n} non-negative values adding up to {dim}")
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@op("Slice")
def slice_(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if node.opset < 10:
        starts, ends = _intsattr(node, "starts"), _intsattr(node, "ends")
        axes, steps = _intsattr(node, "axes"), None
    else:
        starts = _ints(node, _opt(inputs, 1), "starts")
        ends = _ints(node, _opt(inputs, 2), "ends")
        axes = _ints(node, _opt(inputs, 3), "axes")
        steps = _ints(node, _opt(inputs, 4), "steps")
    if starts is None or ends is None:
        raise fail(node, "starts and ends are required")
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise fail(
            node,
            f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length",
        )
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, _axes(node, axes, x.ndim), steps):
        if st == 0:
            raise fail(node, "steps must not be 0")
        dim = x.shape[a]
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        index[a] = slice(s, None if e < 0 else e, st)
    return [x[tuple(index)]]


def _wrap_indices(node: NodeView, idx: np.ndarray, dim: int, what: str = "indices"):
    if idx.dtype.kind not in "iu":
        raise fail(node, f"{what} must be an integer tensor, got {idx.dtype}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        raise fail(node, f"{what} out of range [{-dim}, {dim - 1}]")
    return np.where(idx < 0, idx + dim, idx)


@op("Gather", inputs=2)
def gather(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, idx = inputs[0], inputs[1]
    if x.ndim == 0:
        raise fail(node, "data must have rank >= 1")
    axis = _axis(node, _iattr(node, "axis", 0), x.ndim)
    return [np.take(x, _wrap_indices(node, idx, x.shape[axis]), axis=axis)]


@op("GatherElements", inputs=2)
def gather_elements(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, idx = inputs[0], inputs[1]
    axis = _axis(node, _iattr(node, "axis", 0), max(x.ndim, 1))
    if idx.ndim != x.ndim:
        raise fail(node, f"indices rank {idx.ndim} differs from data rank {x.ndim}")
    if any(idx.shape[i] > x.shape[i] for i in range(x.ndim) if i != axis):
        raise fail(node, f"indices {list(idx.shape)} exceed data {list(x.shape)} off axis {axis}")
    wrapped = _wrap_indices(node, idx, x.shape[axis])
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = wrapped
    return [x[tuple(grid)]]


@op("GatherND", inputs=2)
def gather_nd(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, idx = inputs[0], inputs[1]
    b = _iattr(node, "batch_dims", 0)
    if idx.ndim < 1 or x.ndim < 1 or b < 0 or b >= min(x.ndim, idx.ndim):
        raise fail(node, f"batch_dims {b} does not fit data {x.ndim}-D and indices {idx.ndim}-D")
    k = idx.shape[-1]
    if x.shape[:b] != idx.shape[:b] or k > x.ndim - b:
        raise fail(node, f"indices {list(idx.shape)} do not fit data {list(x.shape)}")
    batch = math.prod(x.shape[:b])
    data = x.reshape(batch, *x.shape[b:])
    ind = idx.reshape(batch, -1, k).astype(np.int64)
    cols = [_wrap_indices(node, ind[..., j], data.shape[1 + j]) for j in range(k)]
    out = data[(np.arange(batch)[:, None], *cols)]
    return [out.reshape(*idx.shape[:-1], *x.shape[b + k :])]


def _scatter_reduce(node: NodeView, out: np.ndarray, index: tuple, updates: np.ndarray) -> None:
    reduction = _sattr(node, "reduction", "none")
    if reduction == "none":
        out[index] = updates
    elif reduction in ("add", "mul", "max", "min"):
        ufunc = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}
        ufunc[reduction].at(out, index, updates)
    else:
        raise fail(node, f"attribute 'reduction' is '{reduction}', expected none/add/mul/max/min")


@op("ScatterND", inputs=3)
def scatter_nd(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, idx, updates = inputs[0], inputs[1], inputs[2]
    k = idx.shape[-1] if idx.ndim else 0
    if idx.ndim < 1 or k > x.ndim or updates.shape != idx.shape[:-1] + x.shape[k:]:
        raise fail(
            node,
            f"indices {list(idx.shape)} and updates {list(updates.shape)} do not fit data "
            f"{list(x.shape)}",
        )
    out = x.copy()
    cols = tuple(_wrap_indices(node, idx[..., j].reshape(-1), x.shape[j]) for j in range(k))
    _scatter_reduce(node, out, cols, updates.reshape(-1, *x.shape[k:]))
    return [out]


@op("ScatterElements", "Scatter", inputs=3)
def scatter_elements(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, idx, updates = inputs[0], inputs[1], inputs[2]
    axis = _axis(node, _iattr(node, "axis", 0), max(x.ndim, 1))
    if idx.shape != updates.shape or idx.ndim != x.ndim:
        raise fail(
            node,
            f"indices {list(idx.shape)} and updates {list(updates.shape)} must match, "
            f"with the rank of data {list(x.shape)}",
        )
    grid = list(np.indices(idx.shape))
    grid[axis] = _wrap_indices(node, idx, x.shape[axis])
    out = x.copy()
    _scatter_reduce(node, out, tuple(grid), updates)
    return [out]


@op("Expand", inputs=2)
def expand(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    target = _ints(node, inputs[1], "shape") or []
    try:
        out = np.broadcast_shapes(x.shape, tuple(target))
    except ValueError as exc:
        raise fail(node, f"cannot expand {list(x.shape)} to {target}") from exc
    return [np.array(np.broadcast_to(x, out))]


@op("Tile", inputs=2)
def tile(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    repeats = _ints(node, inputs[1], "repeats") or []
    if len(repeats) != x.ndim or any(r < 0 for r in repeats):
        raise fail(node, f"repeats {repeats} must hold {x.ndim} non-negative values")
    return [np.tile(x, repeats)]


@op("Pad")
def pad(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    mode = _sattr(node, "mode", "constant")
    if node.opset < 11:
        pads = _intsattr(node, "pads")
        value: Any = _fattr(node, "value", 0.0)
        axes = None
    else:
        pads = _ints(node, _opt(inputs, 1), "pads")
        cv = _opt(inputs, 2)
        value = cv.reshape(-1)[0] if cv is not None and cv.size else 0
        axes = _ints(node, _opt(inputs, 3), "axes")
    if pads is None:
        raise fail(node, "pads are missing")
    axes = list(range(x.ndim)) if axes is None else _axes(node, axes, x.ndim)
    if len(pads) != 2 * len(axes):
        raise fail(node, f"pads {pads} must hold {2 * len(axes)} values")
    width = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        width[a] = (pads[i], pads[i + len(axes)])
    if any(b < 0 or e < 0 for b, e in width):  # negative pads crop
        if any(-min(b, 0) - min(e, 0) > x.shape[i] for i, (b, e) in enumerate(width)):
            raise fail(node, f"negative pads {pads} crop more than shape {list(x.shape)}")
        x = x[tuple(slice(-min(b, 0), x.shape[i] + min(e, 0)) for i, (b, e) in enumerate(width))]
        width = [(max(b, 0), max(e, 0)) for b, e in width]
    if mode == "constant":
        return [np.pad(x, width, constant_values=np.asarray(value).astype(x.dtype))]
    if mode not in ("reflect", "edge", "wrap"):
        raise fail(node, f"attribute 'mode' is '{mode}', expected constant, reflect, edge or wrap")
    for i, (b, e) in enumerate(width):
        if (b or e) and x.shape[i] == 0:
            raise fail(node, f"{mode} padding of empty axis {i}")
        if mode == "reflect" and max(b, e) >= x.shape[i] and (b or e):
            raise fail(node, f"reflect pads {pads} must be smaller than shape {list(x.shape)}")
    return [np.pad(x, width, mode=mode)]


@op("Constant", inputs=0)
def constant(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    attrs = node.attrs
    if "value" in attrs:
        value = attrs["value"]
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        return [np.asarray(value)]
    if "value_float" in attrs:
        return [np.array(attrs["value_float"], np.float32)]
    if "value_floats" in attrs:
        return [np.array(attrs["value_floats"], np.float32).reshape(-1)]
    if "value_int" in attrs:
        return [np.array(attrs["value_int"], np.int64)]
    if "value_ints" in attrs:
        return [np.array(attrs["value_ints"], np.int64).reshape(-1)]
    if "value_string" in attrs:
        return [np.array(_str(attrs["value_string"]), dtype=object)]
    if "value_strings" in attrs:
        return [np.array([_str(s) for s in attrs["value_strings"]], dtype=object).reshape(-1)]
    if "sparse_value" in attrs:
        raise unsupported(node, "attribute 'sparse_value' is not supported")
    raise fail(node, "no value attribute (value, value_float(s), value_int(s), value_string(s))")


@op("ConstantOfShape")
def constant_of_shape(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    value = node.attr("value", None)
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    if value.size != 1:
        raise fail(node, f"attribute 'value' must hold one element, got {value.size}")
    dims = _ints(node, inputs[0], "input") or []
    if any(d < 0 for d in dims):
        raise fail(node, f"shape {dims} has a negative dimension")
    return [np.full(dims, value.reshape(-1)[0], dtype=value.dtype)]


@op("EyeLike")
def eye_like(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if x.ndim != 2:
        raise fail(node, f"input must be 2-D, got {list(x.shape)}")
    code = node.attr("dtype", None)
    dtype = x.dtype if code is None else _dtype_of(node, code, "dtype")
    return [np.eye(x.shape[0], x.shape[1], _iattr(node, "k", 0), dtype=dtype)]


@op("Range", inputs=3)
def range_(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    start, limit, delta = (_scalar(node, v, n) for v, n in zip(inputs, ("start", "limit", "delta")))
    dtype = inputs[0].dtype
    if inputs[1].dtype != dtype or inputs[2].dtype != dtype:
        raise fail(node, "start, limit and delta must have the same type")
    if delta == 0:
        raise fail(node, "delta must not be 0")
    if _is_float(dtype):
        # onnxruntime: n = ceil((limit - start) / delta), values by repeated addition
        n = max(0, math.ceil(float(np.asarray(limit - start, dtype)) / float(delta)))
        steps = np.full(n, delta, dtype)
        if n:
            steps[0] = start
        return [np.add.accumulate(steps, dtype=dtype) if n else steps]
    n = max(0, -(-(int(limit) - int(start)) // int(delta)))
    return [(int(start) + np.arange(n, dtype=np.int64) * int(delta)).astype(dtype)]


@op("Dropout")
def dropout(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    training = _opt(inputs, 2)
    ratio = _opt(inputs, 1)
    training_on = training is not None and bool(_scalar(node, training, "training_mode"))
    if training_on and (ratio is None or float(_scalar(node, ratio, "ratio")) != 0):
        raise unsupported(node, "training_mode true (random dropout) is not supported")
    mask_dtype = np.bool_ if node.opset >= 10 else x.dtype
    # onnxruntime fills the inference mask with ones from opset 12, with zeros before it
    fill = np.ones if node.opset >= 12 else np.zeros
    return [x, fill(x.shape, mask_dtype)]


@op("DepthToSpace")
def depth_to_space(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    b = _iattr(node, "blocksize", 0)
    mode = _sattr(node, "mode", "DCR")
    if x.ndim != 4 or b < 1 or x.shape[1] % (b * b):
        raise fail(
            node, f"input {list(x.shape)} must be 4-D with C divisible by blocksize^2 ({b}^2)"
        )
    n, c, h, w = x.shape
    if mode == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        raise fail(node, f"attribute 'mode' is '{mode}', expected DCR or CRD")
    return [y.reshape(n, c // (b * b), h * b, w * b)]


@op("SpaceToDepth")
def space_to_depth(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    b = _iattr(node, "blocksize", 0)
    if x.ndim != 4 or b < 1 or x.shape[2] % b or x.shape[3] % b:
        raise fail(node, f"input {list(x.shape)} must be 4-D with H, W divisible by {b}")
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return [y.reshape(n, c * b * b, h // b, w // b)]


@op("Trilu")
def trilu(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if x.ndim < 2:
        raise fail(node, f"input must have rank >= 2, got {list(x.shape)}")
    kin = _opt(inputs, 1)
    k = 0 if kin is None else int(_scalar(node, kin, "k"))
    return [np.triu(x, k) if _iattr(node, "upper", 1) else np.tril(x, k)]


@op("OneHot", inputs=3)
def one_hot(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    idx, depth_in, values = inputs[0], inputs[1], inputs[2]
    depth = int(_scalar(node, depth_in, "depth"))
    if depth < 1:
        raise fail(node, f"depth is {depth}, expected >= 1")
    if values.size != 2:
        raise fail(node, f"values must hold [off, on], got shape {list(values.shape)}")
    axis = _axis(node, _iattr(node, "axis", -1), idx.ndim + 1)
    ind = np.trunc(idx).astype(np.int64) if _is_float(idx.dtype) else idx.astype(np.int64)
    ind = np.where(ind < 0, ind + depth, ind)
    hot = np.expand_dims(ind, -1) == np.arange(depth)
    hot = np.moveaxis(hot, -1, axis)
    off, on = values.reshape(-1)
    return [np.where(hot, on, off).astype(values.dtype)]


@op("NonZero")
def nonzero(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    if x.ndim == 0:  # onnxruntime treats a scalar as shape [1]
        return [np.zeros((1, int(bool(x))), np.int64)]
    return [np.array(np.nonzero(x), np.int64).reshape(x.ndim, -1)]


@op("Compress", inputs=2)
def compress(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x, cond = inputs[0], _bool(node, inputs[1])
    if cond.ndim != 1:
        raise fail(node, f"condition must be 1-D, got {list(cond.shape)}")
    axis = node.attr("axis", None)
    if axis is None:
        flat = x.reshape(-1)
        return [flat[: cond.size][cond[: flat.size]]]
    axis = _axis(node, int(axis), x.ndim)
    n = min(cond.size, x.shape[axis])
    return [np.compress(cond[:n], x, axis=axis)]


# ---- Resize / Upsample ---------------------------------------------------------------------

_F32 = np.float32
_CTMS = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
)
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _round_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + _F32(0.5))


@op("Resize", "Upsample")
def resize(node: NodeView, inputs: Inputs) -> list[np.ndarray]:
    x = inputs[0]
    rank = x.ndim
    mode = _sattr(node, "mode", "nearest")
    if mode in ("bilinear", "trilinear"):
        mode = "linear"
    if mode not in ("nearest", "linear", "cubic"):
        raise fail(node, f"attribute 'mode' is '{mode}', expected nearest, linear or cubic")
    legacy = node.op_type == "Upsample" or node.opset < 11
    roi = scales = sizes = None
    axes = list(range(rank))
    if legacy:
        if mode == "cubic":
            raise fail(node, "mode 'cubic' needs Resize opset 11 or newer")
        if node.op_type == "Upsample" and node.opset < 9:
            scales = _attr_floats(node, "scales")
        else:
            s = _opt(inputs, 1)
            scales = None if s is None else [float(v) for v in s.reshape(-1)]
        if scales is None:
            raise fail(node, "scales are missing")
        if node.op_type == "Upsample" and any(s < 1 for s in scales):
            raise fail(node, f"scales {scales} must be >= 1")
        ctm, nearest_mode = "asymmetric", "simple"
    else:
        r, s, z = _opt(inputs, 1), _opt(inputs, 2), _opt(inputs, 3)
        roi = None if r is None or r.size == 0 else [float(v) for v in r.reshape(-1)]
        scales = None if s is None or s.size == 0 else [float(v) for v in s.reshape(-1)]
        sizes = None if z is None or z.size == 0 else _ints(node, z, "sizes")
        ctm = _sattr(node, "coordinate_transformation_mode", "half_pixel")
        nearest_mode = _sattr(node, "nearest_mode", "round_prefer_floor")
        if ctm not in _CTMS:
            raise unsupported(node, f"coordinate_transformation_mode '{ctm}' is not supported")
        if mode == "nearest" and nearest_mode not in _NEAREST_MODES:
            raise unsupported(node, f"nearest_mode '{nearest_mode}' is not supported")
        attr_axes = _intsattr(node, "axes")
        if attr_axes is not None:
            axes = _axes(node, attr_axes, rank)
        if _iattr(node, "exclude_outside", 0) and mode != "cubic":
            raise fail(node, "attribute 'exclude_outside' is 1 while mode is not cubic")
    if (scales is None) == (sizes is None):
        raise fail(node, "exactly one of the scales and sizes inputs must be given")
    in_dims = list(x.shape)
    out_dims = list(in_dims)
    full_scales = [1.0] * rank
    if scales is not None:
        if len(scales) != len(axes):
            raise fail(node, f"scales {scales} must hold {len(axes)} values")
        if any(not s > 0 for s in scales):
            raise fail(node, f"scales {scales} must be positive")
        for a, s in zip(axes, scales):
            full_scales[a] = float(_F32(s))
            out_dims[a] = int(_F32(s) * _F32(in_dims[a]))
    else:
        assert sizes is not None
        if len(sizes) != len(axes) or any(d < 0 for d in sizes):
            raise fail(node, f"sizes {sizes} must hold {len(axes)} non-negative values")
        policy = _sattr(node, "keep_aspect_ratio_policy", "stretch")
        ratios = [
            _F32(d) / _F32(in_dims[a]) if in_dims[a] else _F32(1) for a, d in zip(axes, sizes)
        ]
        if policy == "stretch":
            for a, d, q in zip(axes, sizes, ratios):
                out_dims[a], full_scales[a] = d, float(q)
        elif policy in ("not_larger", "not_smaller"):
            q = min(ratios) if policy == "not_larger" else max(ratios)
            for a in axes:
                full_scales[a] = float(q)
                out_dims[a] = int(_round_away(_F32(q) * _F32(in_dims[a])))
        else:
            raise fail(
                node,
                f"attribute 'keep_aspect_ratio_policy' is '{policy}', "
                "expected stretch, not_larger or not_smaller",
            )
    if any(in_dims[a] == 0 and out_dims[a] != 0 for a in range(rank)):
        raise fail(node, f"cannot resize empty input {in_dims} to {out_dims}")
    antialias = not legacy and _iattr(node, "antialias", 0) and mode != "nearest"
    if antialias and any(full_scales[a] < 1 for a in range(rank)):
        raise unsupported(node, "antialias 1 with downscaling is not supported")
    roi_full = [0.0] * rank + [1.0] * rank
    if ctm == "tf_crop_and_resize":
        if roi is None or len(roi) != 2 * len(axes):
            raise fail(node, f"roi {roi} must hold {2 * len(axes)} values for tf_crop_and_resize")
        for i, a in enumerate(axes):
            roi_full[a], roi_full[a + rank] = roi[i], roi[i + len(axes)]
    extrapolation = _fattr(node, "extrapolation_value", 0.0)
    cubic_a = _fattr(node, "cubic_coeff_a", -0.75)
    exclude = bool(_iattr(node, "exclude_outside", 0)) if not legacy else False

    floating = _is_float(x.dtype)
    y = x if (mode == "nearest" or not floating) else _work(node, x)
    if mode != "nearest" and not floating:
        y = x.astype(np.float32)
    for a in range(rank):
        # an axis of scale 1 is copied, as onnxruntime does (even when roi crops it)
        if out_dims[a] == in_dims[a] and full_scales[a] == 1.0:
            continue
        coords = _source_coords(
            ctm, out_dims[a], in_dims[a], full_scales[a], roi_full[a], roi_full[a + rank]
        )
        outside = (coords < 0) | (coords > in_dims[a] - 1)
        if mode == "nearest":
            idx = _nearest_index(nearest_mode, coords, full_scales[a] < 1)
            y = np.take(y, np.clip(idx, 0, in_dims[a] - 1), axis=a)
        else:
            y = _interpolate(y, a, coords, in_dims[a], mode, cubic_a, exclude)
        if ctm == "tf_crop_and_resize" and outside.any():
            shape = [1] * rank
            shape[a] = -1
            y = np.where(outside.reshape(shape), np.asarray(extrapolation).astype(y.dtype), y)
    if mode != "nearest" and not floating:  # onnxruntime static_casts: truncation
        info = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
        y = np.trunc(y) if info is None else np.clip(np.trunc(y), info.min, info.max)
    return [_like(y, x)]


def _attr_floats(node: NodeView, name: str) -> list[float] | None:
    value = node.attr(name, None)
    return None if value is None else [float(v) for v in np.asarray(value).reshape(-1)]


def _source_coords(
    ctm: str, out_len: int, in_len: int, scale: float, roi_start: float, roi_end: float
) -> np.ndarray:
    """Input coordinate of each output index, in float32 like onnxruntime."""
    o = np.arange(out_len, dtype=_F32)
    s = _F32(scale)
    half = _F32(0.5)
    if ctm == "asymmetric":
        return o / s
    if ctm == "half_pixel":
        return (o + half) / s - half
    if ctm == "pytorch_half_pixel":
        return (o + half) / s - half if out_len > 1 else np.zeros(out_len, _F32)
    if ctm == "tf_half_pixel_for_nn":
        return (o + half) / s
    if ctm == "align_corners":
        if out_len == 1:
            return np.zeros(out_len, _F32)
        return o * _F32(in_len - 1) / _F32(out_len - 1)
    if ctm == "half_pixel_symmetric":
        adjustment = _F32(out_len) / (s * _F32(in_len))
        offset = _F32(in_len) / _F32(2) * (_F32(1) - adjustment)
        return offset + (o + half) / s - half
    # tf_crop_and_resize
    start, end = _F32(roi_start), _F32(roi_end)
    if out_len > 1:
        span = _F32(in_len - 1)
        return start * span + (o * (end - start) * span) / _F32(out_len - 1)
    return np.full(out_len, 0.5 * (roi_start + roi_end) * (in_len - 1), _F32)


def _nearest_index(mode: str, x: np.ndarray, downsampling: bool) -> np.ndarray:
    if mode == "simple":  # Resize-10 and Upsample
        v = np.ceil(x) if downsampling else np.trunc(x)
    elif mode == "round_prefer_floor":
        v = np.where(x == np.trunc(x) + _F32(0.5), np.floor(x), _round_away(x))
    elif mode == "round_prefer_ceil":
        v = _round_away(x)
    elif mode == "floor":
        v = np.floor(x)
    else:
        v = np.ceil(x)
    return v.astype(np.int64)


def _interpolate(
    y: np.ndarray,
    axis: int,
    coords: np.ndarray,
    in_len: int,
    mode: str,
    cubic_a: float,
    exclude_outside: bool,
) -> np.ndarray:
    shape = [1] * y.ndim
    shape[axis] = -1
    if mode == "linear":
        c = np.clip(coords, 0, in_len - 1)
        lo = np.minimum(c.astype(np.int64), in_len - 1)
        hi = np.minimum(lo + 1, in_len - 1)
        frac = (c - lo).astype(y.dtype).reshape(shape)
        a, b = np.take(y, lo, axis=axis), np.take(y, hi, axis=axis)
        return a + (b - a) * frac
    # cubic: four taps around floor(x), edge-clamped; exclude_outside renormalizes
    base = np.floor(coords).astype(np.int64)
    t = (coords - base).astype(np.float64)
    a = cubic_a
    weights = [
        ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
        ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
        ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a,
    ]
    taps = [base + k for k in (-1, 0, 1, 2)]
    if exclude_outside:
        weights = [np.where((p >= 0) & (p < in_len), w, 0.0) for p, w in zip(taps, weights)]
        total = sum(weights)
        weights = [w / total for w in weights]
    out = None
    for p, w in zip(taps, weights):
        term = np.take(y, np.clip(p, 0, in_len - 1), axis=axis) * w.astype(y.dtype).reshape(shape)
        out = term if out is None else out + term
    assert out is not None
    return out
