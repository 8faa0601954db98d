"""pyrt.ops_float against onnxruntime: one single-node model per case."""

from __future__ import annotations

import tracemalloc
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pyrt.errors import ModelError, UnsupportedOpError
from pyrt.ops_float import FLOAT_OPS, largest_allocation, run_float_op

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(1234)
I64_MAX = np.iinfo(np.int64).max
I64_MIN = np.iinfo(np.int64).min


@dataclass
class View:
    """The NodeView the executor hands ops, built from a NodeProto."""

    name: str
    op_type: str
    opset: int
    attrs: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    @classmethod
    def of(cls, node: onnx.NodeProto, opset: int) -> View:
        attrs = {}
        for a in node.attribute:
            value = helper.get_attribute_value(a)
            if isinstance(value, onnx.TensorProto):
                value = numpy_helper.to_array(value)
            attrs[a.name] = value
        return cls(node.name, node.op_type, opset, attrs, list(node.output))


def f32(*shape: int, lo: float = -3.0, hi: float = 3.0) -> np.ndarray:
    return RNG.uniform(lo, hi, shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _value_info(name: str, array: np.ndarray) -> onnx.ValueInfoProto:
    elem = helper.np_dtype_to_tensor_dtype(array.dtype)
    return helper.make_tensor_value_info(name, elem, list(array.shape))


def run_both(
    op_type: str,
    inputs: list[np.ndarray | None],
    opset: int = 17,
    outputs: int | list[str] = 1,
    **attrs: Any,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(pyrt's outputs, onnxruntime's outputs) of one node; skipped outputs are dropped."""
    inputs = [None if x is None else np.asarray(x) for x in inputs]
    in_names = ["" if x is None else f"x{i}" for i, x in enumerate(inputs)]
    out_names = [f"y{i}" for i in range(outputs)] if isinstance(outputs, int) else outputs
    node = helper.make_node(op_type, in_names, out_names, name="n", **attrs)
    ours = run_float_op(View.of(node, opset), list(inputs))
    assert len(ours) == len(out_names)
    kept = [(name, y) for name, y in zip(out_names, ours) if name]
    graph = helper.make_graph(
        [node],
        "g",
        [_value_info(n, x) for n, x in zip(in_names, inputs) if x is not None],
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(y.dtype), None)
            for n, y in kept
        ],
    )
    opsets = [helper.make_opsetid("", opset)]
    ir_version = helper.find_min_ir_version_for(opsets) if opset >= 7 else 3
    model = helper.make_model(graph, opset_imports=opsets, ir_version=ir_version)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    feeds = {n: x for n, x in zip(in_names, inputs) if x is not None}
    theirs = session.run([n for n, _ in kept], feeds)
    return [y for _, y in kept], theirs


def check(
    op_type: str,
    inputs: list[np.ndarray | None],
    opset: int = 17,
    outputs: int | list[str] = 1,
    tol: float = 1e-5,
    **attrs: Any,
) -> None:
    ours, theirs = run_both(op_type, inputs, opset, outputs, **attrs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        b = np.asarray(b)
        assert a.dtype == b.dtype, f"output {i}: dtype {a.dtype} != onnxruntime {b.dtype}"
        assert a.shape == b.shape, f"output {i}: shape {a.shape} != onnxruntime {b.shape}"
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"output {i}")


def case(op_type: str, inputs: list, opset: int = 17, id: str = "", **kw: Any):
    return pytest.param(op_type, inputs, opset, kw, id=f"{op_type}-{opset}-{id}".rstrip("-"))


def _run_cases(cases: list) -> Any:
    return pytest.mark.parametrize("op_type,inputs,opset,kw", cases)


# ---- elementwise ----------------------------------------------------------------------

X = f32(2, 3, 4, 5)
POS = f32(2, 3, 4, lo=0.05, hi=4)
TIES = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51, 3.7], np.float32)
ERF_X = np.concatenate([np.linspace(-4, 4, 81), [1e-4, -1e-3, 0.4999, 0.5001, 10]]).astype(
    np.float32
)

UNARY = [
    case("Exp", [X], 13),
    case("Log", [POS], 13),
    case("Sqrt", [POS], 13),
    case("Floor", [X], 13),
    case("Ceil", [X], 13),
    case("Round", [TIES], 11),
    case("Reciprocal", [POS], 13),
    case("Sin", [X], 7),
    case("Cos", [X], 7),
    case("Tan", [f32(20, lo=-1.2, hi=1.2)], 7),
    case("Asin", [f32(20, lo=-0.99, hi=0.99)], 7),
    case("Acos", [f32(20, lo=-0.99, hi=0.99)], 7),
    case("Atan", [X], 7),
    case("Sinh", [X], 9),
    case("Cosh", [X], 9),
    case("Asinh", [X], 9),
    case("Acosh", [f32(20, lo=1, hi=5)], 9),
    case("Atanh", [f32(20, lo=-0.95, hi=0.95)], 9),
    case("Tanh", [X], 13),
    case("Erf", [ERF_X], 13),
    case("Sigmoid", [f32(100, lo=-20, hi=20)], 13),
    case("Softplus", [f32(100, lo=-20, hi=20)], 1),
    case("Softsign", [X], 1),
    case("Mish", [X], 18),
    case("Abs", [X], 13),
    case("Abs", [np.array([-5, 0, 7], np.int32)], 13, "int"),
    case("Neg", [np.array([-5, 0, 7], np.int8)], 13, "int"),
    case("Sign", [np.array([-2.0, 0.0, 3.0, -0.0], np.float32)], 13),
    case("Relu", [X], 14),
    case("Relu", [np.array([-5, 0, 7], np.int8)], 14, "int8"),
    case("Relu", [X.astype(np.float16)], 14, "fp16"),
    case("Sigmoid", [X.astype(np.float16)], 13, "fp16"),
    case("Exp", [X.astype(np.float64)], 13, "fp64"),
    case("Softmax", [X.astype(np.float16)], 13, "fp16", tol=1e-3),
    case(
        "LayerNormalization",
        [X.astype(np.float16), f32(5).astype(np.float16)],
        17,
        "fp16",
        tol=3e-3,
    ),
    case("Identity", [X], 16),
    case("Not", [X > 0], 1),
    case("IsNaN", [np.array([np.nan, 1, np.inf], np.float32)], 13),
    case("IsInf", [np.array([np.nan, 1, np.inf, -np.inf], np.float32)], 10),
    case("IsInf", [np.array([1, np.inf, -np.inf], np.float32)], 10, "neg", detect_positive=0),
    case("IsInf", [np.array([1, np.inf, -np.inf], np.float32)], 10, "pos", detect_negative=0),
    case("BitwiseNot", [np.array([0, 5, -7], np.int16)], 18),
    case("LeakyRelu", [X], 16, alpha=0.2),
    case("Elu", [X], 6, alpha=0.7),
    case("Celu", [X], 12, alpha=1.5),
    case("Selu", [X], 6),
    case("Selu", [X], 6, "attrs", alpha=2.0, gamma=0.5),
    case("ThresholdedRelu", [X], 10, alpha=0.5),
    case("HardSigmoid", [X], 6, alpha=0.3, beta=0.4),
    case("HardSwish", [X * 3], 14),
    case("Shrink", [X], 9, lambd=1.0, bias=0.5),
    case("Gelu", [X], 20),
    case("Gelu", [X], 20, "tanh", approximate="tanh"),
    case("PRelu", [X, f32(3, 1, 1)], 16),
    case("PRelu", [X, f32(5)], 9, "last"),
    case("Clip", [X], 6, min=-1.0, max=0.5),
    case("Clip", [X], 6, "default"),
    case("Clip", [X, np.float32(-1), np.float32(0.5)], 13),
    case("Clip", [X, np.float32(-1)], 13, "min"),
    case("Clip", [X, None, np.float32(0.5)], 13, "max"),
    case("Clip", [np.arange(-5, 5, dtype=np.int32), np.int32(-2), np.int32(3)], 12, "int"),
]


@_run_cases(UNARY)
def test_unary(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, **kw)


A = f32(2, 3, 4)
B = f32(3, 1)
IA = np.array([[-7, 7, -8, 9], [5, -5, 0, 1]], np.int32)
IB = np.array([2, 3, -3, -2], np.int32)

BINARY = [
    case("Add", [A, B], 14),
    case("Sub", [A, B], 14),
    case("Mul", [A, B], 14),
    case("Div", [A, B + 4], 14),
    case("Add", [IA, IB], 14, "int"),
    case("Mul", [np.array([100, -100], np.int8), np.array([3, 3], np.int8)], 14, "wrap"),
    case("Div", [IA, IB], 14, "int"),
    case("Div", [IA.astype(np.int64), IB.astype(np.int64)], 14, "int64"),
    case("Add", [A.astype(np.float16), B.astype(np.float16)], 14, "fp16", tol=2e-3),
    case("Mod", [IA, IB], 13),
    case("Mod", [IA, IB], 13, "fmod", fmod=1),
    case("Mod", [A, B + 4], 13, "float", fmod=1),
    case("Pow", [POS, f32(4, lo=-2, hi=2)], 15),
    case("Pow", [A, np.array(2, np.int64)], 15, "int_exp"),
    case("Pow", [np.array([2, 3, -4], np.int32), np.array([3, 2, 3], np.int32)], 15, "int"),
    case("Equal", [IA, IB], 13),
    case("Less", [A, B], 13),
    case("Greater", [A, B], 13),
    case("LessOrEqual", [IA, IB], 16),
    case("GreaterOrEqual", [A, B], 16),
    case("And", [A > 0, B > 0], 7),
    case("Or", [A > 0, B > 0], 7),
    case("Xor", [A > 0, B > 0], 7),
    case("BitwiseAnd", [IA, IB], 18),
    case("BitwiseOr", [IA, IB], 18),
    case("BitwiseXor", [IA, IB], 18),
    case(
        "BitShift",
        [np.array([1, 2, 255], np.uint8), np.array([1, 3, 4], np.uint8)],
        11,
        direction="LEFT",
    ),
    case(
        "BitShift",
        [np.array([16, 255, 7], np.uint32), np.array([2, 3, 1], np.uint32)],
        11,
        "right",
        direction="RIGHT",
    ),
    case("Max", [A, B, f32(4)], 13),
    case("Min", [A, B, f32(4)], 13),
    case("Sum", [A, B, f32(4)], 13),
    case("Mean", [A, B, f32(4)], 13),
    case("Max", [A], 13, "one"),
    case("Max", [IA, IB], 13, "int"),
    case("Where", [A > 0, A, B], 16),
]


@_run_cases(BINARY)
def test_binary(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, **kw)


SOFTMAX = [
    case(op, [X], opset, f"axis{axis}", axis=axis)
    for op in ("Softmax", "LogSoftmax", "Hardmax")
    for opset in (11, 13)
    for axis in (1, -1)
] + [case("Softmax", [X], 11, "default"), case("Softmax", [X], 13, "default")]


@_run_cases(SOFTMAX)
def test_softmax(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, **kw)


CASTS = [
    (np.array([-2.7, -0.5, 0.5, 2.7, 100.9], np.float32), TensorProto.INT32),
    (np.array([0.0, 1.9, 200.5, 255.0], np.float32), TensorProto.UINT8),
    (np.array([-100.7, 0, 126.9], np.float32), TensorProto.INT8),
    (np.array([-2.7, 0, 0.1, np.nan], np.float32), TensorProto.BOOL),
    (np.array([-3, 0, 7], np.int32), TensorProto.FLOAT),
    (np.array([True, False]), TensorProto.FLOAT),
    (np.array([300, -129, 5], np.int64), TensorProto.INT8),
    (np.array([1e-3, 65504, 1.1], np.float32), TensorProto.FLOAT16),
    (np.array([1.5, -2.25], np.float32), TensorProto.DOUBLE),
    (np.array([1.123456789, -2.5e10], np.float64), TensorProto.FLOAT),
    (np.array([3, 0, -1], np.int32), TensorProto.BOOL),
    (np.array([250, 3], np.uint8), TensorProto.INT64),
    (np.array(["1.5", "-2", "1e3", "inf", "-INF"], dtype=object), TensorProto.FLOAT),
    (np.array(["15", "-2"], dtype=object), TensorProto.INT32),
    (np.array([1.5, -2.0, 1e10, 0.1], np.float32), TensorProto.STRING),
    (np.array([15, -2], np.int64), TensorProto.STRING),
]


@pytest.mark.parametrize("x,to", CASTS, ids=[f"{x.dtype}-{t}" for x, t in CASTS])
@pytest.mark.parametrize("opset", [13, 19])
def test_cast(x, to, opset):
    check("Cast", [x], opset, to=to)


def test_cast_like():
    check("CastLike", [np.array([-2.7, 2.7], np.float32), np.zeros(1, np.int32)], 15)


# ---- matrix products and convolution --------------------------------------------------

MATMUL = [
    case("MatMul", [f32(3, 4), f32(4, 5)], 13),
    case("MatMul", [f32(2, 1, 3, 4), f32(3, 4, 5)], 13, "batched"),
    case("MatMul", [f32(4), f32(2, 4, 5)], 13, "vec"),
    case("MatMul", [f32(2, 3, 4), f32(4)], 13, "vec2"),
    case("MatMul", [np.arange(12, dtype=np.int32).reshape(3, 4), np.ones((4, 2), np.int32)], 13),
    case("Gemm", [f32(3, 4), f32(4, 5)], 13),
    case("Gemm", [f32(4, 3), f32(5, 4), f32(5)], 13, "trans", transA=1, transB=1),
    case("Gemm", [f32(3, 4), f32(4, 5), f32(3, 1)], 13, "ab", alpha=0.5, beta=2.0),
    case("Gemm", [f32(3, 4), f32(4, 5), np.float32(1.5)], 13, "scalar"),
    case("Gemm", [f32(3, 4), f32(4, 5), f32(3, 5)], 11, "full", beta=-1.0),
    case("Einsum", [f32(2, 3, 4), f32(2, 4, 5)], 12, equation="bij,bjk->bik"),
    case("Einsum", [f32(3, 4)], 12, "transpose", equation="ij->ji"),
    case("Einsum", [f32(3, 3)], 12, "diag", equation="ii->i"),
    case("Einsum", [f32(2, 3), f32(3, 4), f32(4)], 12, "three", equation="ij,jk,k->i"),
]


@_run_cases(MATMUL)
def test_matmul(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, **kw)


CONV = [
    case("Conv", [f32(2, 3, 7, 8), f32(4, 3, 3, 3), f32(4)], 11),
    case("Conv", [f32(1, 3, 9, 9), f32(4, 3, 3, 2)], 11, "spd", strides=[2, 1], pads=[1, 0, 2, 1]),
    case("Conv", [f32(1, 2, 9, 9), f32(4, 2, 3, 3)], 11, "dil", dilations=[2, 3], pads=[1] * 4),
    case("Conv", [f32(1, 4, 6, 6), f32(6, 2, 3, 3), f32(6)], 11, "group", group=2),
    case("Conv", [f32(1, 6, 6, 6), f32(6, 1, 3, 3)], 11, "dw", group=6, pads=[1] * 4),
    case(
        "Conv", [f32(1, 2, 7, 8), f32(3, 2, 3, 3)], 11, "su", auto_pad="SAME_UPPER", strides=[2, 2]
    ),
    case(
        "Conv", [f32(1, 2, 7, 8), f32(3, 2, 4, 4)], 11, "sl", auto_pad="SAME_LOWER", strides=[2, 3]
    ),
    case("Conv", [f32(1, 2, 7, 8), f32(3, 2, 3, 3)], 11, "valid", auto_pad="VALID", strides=[2, 2]),
    case("Conv", [f32(2, 3, 10), f32(4, 3, 3), f32(4)], 11, "1d", strides=[2], pads=[1, 1]),
    case("Conv", [f32(1, 2, 4, 5, 6), f32(3, 2, 2, 3, 2)], 11, "3d", pads=[1, 0, 1, 0, 1, 1]),
    case("Conv", [f32(1, 2, 5, 5), f32(3, 2, 3, 3)], 11, "kshape", kernel_shape=[3, 3]),
    case("ConvTranspose", [f32(2, 3, 4, 5), f32(3, 2, 3, 3), f32(2)], 11),
    case(
        "ConvTranspose",
        [f32(1, 2, 4, 4), f32(2, 3, 3, 3)],
        11,
        "sp",
        strides=[2, 3],
        pads=[1, 0, 1, 2],
    ),
    case(
        "ConvTranspose",
        [f32(1, 2, 4, 4), f32(2, 3, 3, 3)],
        11,
        "op",
        strides=[2, 2],
        output_padding=[1, 0],
    ),
    case(
        "ConvTranspose",
        [f32(1, 4, 3, 3), f32(4, 2, 3, 3), f32(4)],
        11,
        "group",
        group=2,
        strides=[2, 2],
    ),
    case("ConvTranspose", [f32(1, 2, 3, 4), f32(2, 2, 3, 3)], 11, "dil", dilations=[2, 1]),
    case(
        "ConvTranspose",
        [f32(1, 2, 3, 3), f32(2, 2, 3, 3)],
        11,
        "oshape",
        strides=[2, 2],
        output_shape=[6, 7],
    ),
    case(
        "ConvTranspose",
        [f32(1, 2, 3, 3), f32(2, 2, 4, 4)],
        11,
        "oshape-su",
        strides=[2, 2],
        output_shape=[5, 6],
        auto_pad="SAME_UPPER",
    ),
    case(
        "ConvTranspose",
        [f32(1, 2, 3, 4), f32(2, 2, 4, 3)],
        11,
        "su",
        strides=[2, 2],
        auto_pad="SAME_UPPER",
    ),
    case(
        "ConvTranspose",
        [f32(1, 2, 3, 4), f32(2, 2, 4, 3)],
        11,
        "sl",
        strides=[2, 2],
        auto_pad="SAME_LOWER",
    ),
    case(
        "ConvTranspose",
        [f32(1, 2, 3, 4), f32(2, 2, 3, 3)],
        11,
        "valid",
        strides=[2, 2],
        auto_pad="VALID",
    ),
    case("ConvTranspose", [f32(2, 3, 5), f32(3, 2, 3)], 11, "1d", strides=[3], pads=[1, 1]),
]


@_run_cases(CONV)
def test_conv(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, tol=1e-4, **kw)


P = f32(2, 3, 7, 8)
POOL = [
    case("MaxPool", [P], 12, kernel_shape=[3, 3]),
    case("MaxPool", [P], 12, "spd", kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1]),
    case("MaxPool", [P], 12, "ceil", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    case(
        "MaxPool",
        [P],
        12,
        "ceilpad",
        kernel_shape=[2, 2],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        ceil_mode=1,
    ),
    case("MaxPool", [P], 12, "dil", kernel_shape=[2, 2], dilations=[2, 3]),
    case("MaxPool", [P], 12, "su", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    case("MaxPool", [P], 12, "sl", kernel_shape=[2, 2], strides=[2, 3], auto_pad="SAME_LOWER"),
    case(
        "MaxPool", [P], 12, "idx", outputs=2, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
    ),
    case("MaxPool", [P], 12, "idxso", outputs=2, kernel_shape=[2, 2], storage_order=1),
    case(
        "MaxPool",
        [f32(1, 1, 8, 8)],
        12,
        "ceildrop",
        kernel_shape=[3, 3],
        strides=[3, 3],
        pads=[1, 1, 1, 1],
        ceil_mode=1,
    ),
    case(
        "MaxPool",
        [f32(1, 2, 9, 9)],
        12,
        "sudil",
        kernel_shape=[3, 3],
        dilations=[2, 2],
        strides=[2, 1],
        auto_pad="SAME_UPPER",
    ),
    case(
        "AveragePool",
        [f32(1, 2, 9, 9)],
        19,
        "sldil",
        kernel_shape=[3, 2],
        dilations=[2, 2],
        strides=[2, 1],
        auto_pad="SAME_LOWER",
    ),
    case(
        "AveragePool",
        [f32(1, 1, 8, 8)],
        19,
        "ceildrop",
        kernel_shape=[3, 3],
        strides=[3, 3],
        pads=[1, 1, 1, 1],
        ceil_mode=1,
    ),
    case(
        "AveragePool",
        [f32(1, 2, 9, 9)],
        19,
        "dilceil",
        kernel_shape=[3, 3],
        dilations=[2, 2],
        pads=[1, 2, 1, 1],
        strides=[2, 2],
        ceil_mode=1,
        count_include_pad=1,
    ),
    case(
        "MaxPool",
        [f32(1, 2, 9, 9)],
        12,
        "dilceil",
        outputs=2,
        kernel_shape=[3, 3],
        dilations=[2, 2],
        pads=[1, 2, 1, 1],
        strides=[2, 2],
        ceil_mode=1,
    ),
    case("MaxPool", [f32(1, 2, 9)], 12, "1d", kernel_shape=[3], strides=[2], pads=[1, 1]),
    case(
        "MaxPool",
        [np.arange(-40, 40, dtype=np.int8).reshape(1, 2, 5, 8)],
        12,
        "int8",
        kernel_shape=[2, 2],
        pads=[1, 1, 0, 0],
    ),
    case(
        "MaxPool",
        [np.arange(80, dtype=np.uint8).reshape(1, 2, 5, 8)],
        12,
        "uint8",
        kernel_shape=[3, 3],
        strides=[2, 2],
    ),
    case("AveragePool", [P], 11, kernel_shape=[3, 3]),
    case("AveragePool", [P], 11, "pad", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    case(
        "AveragePool", [P], 11, "incl", kernel_shape=[3, 3], pads=[1, 2, 1, 0], count_include_pad=1
    ),
    case("AveragePool", [P], 11, "ceil", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    case(
        "AveragePool",
        [P],
        11,
        "ceilincl",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        ceil_mode=1,
        count_include_pad=1,
    ),
    case("AveragePool", [P], 11, "su", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    case("AveragePool", [P], 11, "sl", kernel_shape=[2, 2], auto_pad="SAME_LOWER"),
    case("AveragePool", [P], 19, "dil", kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1]),
    case("AveragePool", [f32(1, 2, 4, 5, 6)], 11, "3d", kernel_shape=[2, 2, 3]),
    case("LpPool", [P], 11, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    case("LpPool", [P], 18, "p1", kernel_shape=[2, 2], p=1, strides=[2, 2], ceil_mode=1),
    case("GlobalAveragePool", [P], 1),
    case("GlobalMaxPool", [P], 1),
    case("GlobalLpPool", [P], 2, p=3),
    case("GlobalAveragePool", [f32(2, 3, 4, 5, 2)], 1, "3d"),
]
# 1-D and 3-D windows: every attribute the 2-D cases exercise, and the indices output
P1, P3 = f32(2, 3, 11), f32(2, 2, 7, 6, 5)
POOL_ND = [
    case("MaxPool", [P1], 12, "1d-spd", kernel_shape=[3], strides=[2], pads=[1, 2], dilations=[2]),
    case("MaxPool", [P1], 12, "1d-ceil", kernel_shape=[2], strides=[3], pads=[1, 0], ceil_mode=1),
    case("MaxPool", [P1], 12, "1d-su", kernel_shape=[4], strides=[2], auto_pad="SAME_UPPER"),
    case("MaxPool", [P1], 12, "1d-idx", outputs=2, kernel_shape=[3], strides=[2], pads=[1, 1]),
    case("MaxPool", [P3], 12, "3d", kernel_shape=[2, 3, 2], strides=[2, 1, 2], pads=[1, 0, 1] * 2),
    case("MaxPool", [P3], 12, "3d-dil", kernel_shape=[2, 2, 2], dilations=[2, 1, 2], ceil_mode=1),
    case(
        "MaxPool",
        [P3],
        12,
        "3d-sl",
        kernel_shape=[3, 2, 2],
        strides=[2, 2, 1],
        auto_pad="SAME_LOWER",
    ),
    case(
        "MaxPool",
        [P3],
        12,
        "3d-idx",
        outputs=2,
        kernel_shape=[3, 3, 2],
        strides=[2, 2, 2],
        pads=[1, 1, 0, 1, 1, 1],
    ),
    case(
        "MaxPool",
        [np.arange(-60, 60, dtype=np.int8).reshape(2, 3, 20)],
        12,
        "1d-int8",
        kernel_shape=[3],
        strides=[2],
    ),
    case("AveragePool", [P1], 11, "1d", kernel_shape=[3], strides=[2], pads=[1, 1]),
    case("AveragePool", [P1], 11, "1d-incl", kernel_shape=[3], pads=[2, 1], count_include_pad=1),
    case(
        "AveragePool", [P1], 11, "1d-ceil", kernel_shape=[4], strides=[3], pads=[1, 2], ceil_mode=1
    ),
    case("AveragePool", [P1], 19, "1d-dil", kernel_shape=[3], dilations=[2], pads=[1, 1]),
    case(
        "AveragePool",
        [P3],
        11,
        "3d-pad",
        kernel_shape=[3, 2, 3],
        strides=[2, 1, 2],
        pads=[1, 1, 1, 1, 0, 2],
    ),
    case(
        "AveragePool",
        [P3],
        11,
        "3d-incl-ceil",
        kernel_shape=[2, 3, 2],
        strides=[2, 2, 2],
        pads=[1, 1, 0, 0, 1, 1],
        count_include_pad=1,
        ceil_mode=1,
    ),
    case(
        "AveragePool",
        [P3],
        11,
        "3d-su",
        kernel_shape=[3, 3, 3],
        strides=[2, 2, 2],
        auto_pad="SAME_UPPER",
    ),
    case("AveragePool", [P3], 19, "3d-dil", kernel_shape=[2, 2, 2], dilations=[2, 2, 1]),
    case("LpPool", [P1], 18, "1d", kernel_shape=[3], strides=[2], pads=[1, 1], p=3),
    case("LpPool", [P3], 18, "3d", kernel_shape=[2, 2, 3], p=2),
    case("GlobalMaxPool", [P1], 1, "1d"),
    case("GlobalAveragePool", [P1], 1, "1d"),
]


@_run_cases(POOL + POOL_ND)
def test_pool(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, **kw)


C3 = [f32(3), f32(3), f32(3), f32(3, lo=0.1, hi=2)]
NORM = [
    case("BatchNormalization", [X, *C3], 15),
    case("BatchNormalization", [X, *C3], 9, "eps", epsilon=0.1),
    case("BatchNormalization", [f32(2, 3), *C3], 15, "2d"),
    case("InstanceNormalization", [X, f32(3), f32(3)], 6, epsilon=1e-3),
    case("LayerNormalization", [X, f32(5), f32(5)], 17),
    case("LayerNormalization", [X, f32(3, 4, 5)], 17, "axis1", outputs=3, axis=1),
    case(
        "LayerNormalization",
        [X, f32(4, 5), f32(4, 5)],
        17,
        "outs",
        outputs=["y", "", "inv"],
        axis=-2,
        epsilon=0.1,
    ),
    case("GroupNormalization", [f32(2, 6, 4, 3), f32(3), f32(3)], 18, num_groups=3),
    case("GroupNormalization", [f32(2, 6, 4, 3), f32(6), f32(6)], 21, num_groups=2, epsilon=0.1),
    case("LRN", [X], 13, size=3),
    case("LRN", [X], 13, "5", size=5, alpha=0.01, beta=0.5, bias=2.0),
    case("LRN", [X], 13, "wide", size=7, alpha=0.1),  # wider than the 3 channels
    case("MeanVarianceNormalization", [X], 13),
    case("MeanVarianceNormalization", [X], 13, "axes", axes=[1, 2]),
]


@_run_cases(NORM)
def test_norm(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, tol=2e-5, **kw)


# ---- reductions -----------------------------------------------------------------------

REDUCERS = [
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceSumSquare",
    "ReduceLogSum",
    "ReduceLogSumExp",
]
R = f32(2, 3, 4, lo=0.2, hi=1.5)
REDUCE = []
for _op in REDUCERS:
    _new = 13 if _op == "ReduceSum" else 18
    REDUCE += [
        case(_op, [R], 11, "attr", axes=[1, -1]),
        case(_op, [R], 11, "keep0", axes=[0], keepdims=0),
        case(_op, [R], 11, "all"),
        case(_op, [R, i64(-2)], _new, "input"),
        case(_op, [R, i64(0, 2)], _new, "keep0", keepdims=0),
        case(_op, [R], _new, "none"),
        case(_op, [R, np.zeros(0, np.int64)], _new, "empty"),
        case(_op, [R, np.zeros(0, np.int64)], _new, "noop", noop_with_empty_axes=1),
        case(_op, [R - 1, np.zeros(0, np.int64)], _new, "noopneg", noop_with_empty_axes=1),
    ]
REDUCE += [
    case("ReduceSum", [np.arange(24, dtype=np.int32).reshape(2, 3, 4), i64(1)], 13, "int"),
    case("ReduceMax", [np.arange(24, dtype=np.int8).reshape(2, 3, 4), i64(1)], 18, "int8"),
    case("ReduceLogSumExp", [f32(3, 4, lo=50, hi=90), i64(1)], 18, "big"),
]

TIE = np.array([[1, 3, 3, 0], [2, 2, 1, 2]], np.float32)
REDUCE += [
    case(op, [TIE], 13, f"{k}{last}", axis=1, keepdims=k, select_last_index=last)
    for op in ("ArgMax", "ArgMin")
    for k in (0, 1)
    for last in (0, 1)
] + [case("ArgMax", [R], 11, "neg", axis=-2)]
REDUCE += [
    case("TopK", [R, i64(2)], 11, outputs=2, axis=1),
    case("TopK", [R, i64(3)], 11, "small", outputs=2, largest=0),
    case("TopK", [np.array([[1, 3, 3, 0, 3]], np.float32), i64(3)], 11, "ties", outputs=2),
    case(
        "TopK",
        [np.array([[1, 3, 3, 0, 3]], np.int32), i64(2)],
        11,
        "tiesmall",
        outputs=2,
        largest=0,
    ),
    case("TopK", [R], 9, "attr", outputs=2, k=2, axis=0),
    case("CumSum", [R, np.array(1, np.int32)], 14),
    case("CumSum", [R, i64(-1)], 14, "excl", exclusive=1),
    case("CumSum", [R, i64(0)], 14, "rev", reverse=1),
    case("CumSum", [np.arange(10, dtype=np.int64), i64(0)], 14, "both", exclusive=1, reverse=1),
]


@_run_cases(REDUCE)
def test_reduce(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, **kw)


# ---- shape and data movement ------------------------------------------------------------

S = f32(2, 3, 4, 5)
SHAPE = [
    case("Shape", [S], 13),
    case("Shape", [S], 15, "start", start=1),
    case("Shape", [S], 15, "range", start=-3, end=-1),
    case("Shape", [S], 15, "clamp", start=-10, end=10),
    case("Size", [S], 13),
    case("Reshape", [S, i64(0, -1, 5)], 13),
    case("Reshape", [S, i64(2, 0, 20)], 14),
    case("Reshape", [np.zeros((0, 3), np.float32), i64(3, 0)], 14, "allowzero", allowzero=1),
    case("Reshape", [S, i64(-1)], 13, "flat"),
    case("Flatten", [S], 13),
    case("Flatten", [S], 13, "0", axis=0),
    case("Flatten", [S], 13, "neg", axis=-1),
    case("Flatten", [S], 13, "4", axis=4),
    case("Transpose", [S], 13),
    case("Transpose", [S], 13, "perm", perm=[0, 2, 3, 1]),
    case("Squeeze", [f32(1, 3, 1, 2)], 11),
    case("Squeeze", [f32(1, 3, 1, 2)], 11, "attr", axes=[-2]),
    case("Squeeze", [f32(1, 3, 1, 2), i64(0, 2)], 13),
    case("Unsqueeze", [f32(3, 2)], 11, axes=[0, -1]),
    case("Unsqueeze", [f32(3, 2), i64(1, -1, 0)], 13),
    case("Unsqueeze", [np.float32(3), i64(0)], 13, "scalar"),
    case("Concat", [f32(2, 3), f32(2, 1), f32(2, 0)], 13, axis=-1),
    case("Concat", [f32(2, 3), f32(1, 3)], 4, "0", axis=0),
    case("Split", [f32(6, 4)], 11, outputs=3),
    case("Split", [f32(6, 4)], 11, "attr", outputs=2, axis=1, split=[1, 3]),
    case("Split", [f32(6, 4), i64(2, 0, 4)], 13, "input", outputs=3),
    case("Split", [f32(7, 4)], 18, "num", outputs=3, num_outputs=3),
    case("Split", [f32(6, 4), np.zeros(0, np.int64)], 13, "emptysplit", outputs=2),
    case("Split", [f32(6, 4)], 18, "even", outputs=2, num_outputs=2, axis=-1),
    case("Slice", [S], 9, starts=[1, -3], ends=[I64_MAX, -1], axes=[1, 3]),
    case("Slice", [S, i64(0, 1), i64(2, 3)], 13, "defaults"),
    case("Slice", [S, i64(-1, 4), i64(I64_MIN, 0), i64(2, -1), i64(-1, -2)], 13, "negstep"),
    case("Slice", [S, i64(10, -100), i64(-100, 100), i64(1, 2), i64(-1, 1)], 13, "clamp"),
    case("Slice", [S, i64(1), i64(I64_MAX), i64(-1), i64(2)], 13, "step2"),
    case("Slice", [S, i64(-2), i64(-3), i64(2), i64(-1)], 13, "stepneg1"),
    case("Slice", [S, i64(3), i64(1), i64(0)], 13, "empty"),
    case("Gather", [S, i64(2, -1, 0)], 13, axis=1),
    case("Gather", [S, np.array(-2, np.int64)], 13, "scalar", axis=-1),
    case("Gather", [S, np.array([[0, 1], [1, -2]], np.int32)], 13, "2d"),
    case("GatherElements", [f32(3, 4), np.array([[0, -1, 2], [1, 0, 3]], np.int64)], 13, axis=1),
    case("GatherND", [f32(2, 3, 4), np.array([[0, 1], [1, -1]], np.int64)], 13),
    case(
        "GatherND",
        [f32(2, 3, 4), np.array([[[1], [0]], [[2], [2]]], np.int64)],
        13,
        "b1",
        batch_dims=1,
    ),
    case("ScatterND", [f32(4, 3), i64(1, 3, 0).reshape(3, 1), f32(3, 3)], 13),
    case(
        "ScatterND", [f32(4, 3), i64(1, 1, 0).reshape(3, 1), f32(3, 3)], 16, "add", reduction="add"
    ),
    case(
        "ScatterND", [f32(4, 3), i64(1, 2, 0, 0).reshape(2, 2), f32(2)], 18, "max", reduction="max"
    ),
    case(
        "ScatterElements", [f32(3, 4), np.array([[0, 2], [3, -1]], np.int64), f32(2, 2)], 13, axis=1
    ),
    case(
        "ScatterElements",
        [f32(3, 4), np.array([[0, 0], [1, 0]], np.int64), f32(2, 2)],
        16,
        "mul",
        reduction="mul",
    ),
    case("Expand", [f32(3, 1), i64(2, 1, 4)], 13),
    case("Expand", [f32(2, 3), i64(3)], 13, "small"),
    case("Tile", [f32(2, 3), i64(2, 3)], 13),
    case("Pad", [S, i64(0, 1, 2, 0, 0, 2, 1, 3), np.float32(1.5)], 13),
    case("Pad", [S, i64(0, 1, 2, 3, 0, 2, 1, 1)], 13, "reflect", mode="reflect"),
    case("Pad", [S, i64(0, 3, 2, 5, 0, 2, 4, 1)], 13, "edge", mode="edge"),
    case("Pad", [S, i64(2, 1, 3, 4), None, i64(-1, 1)], 18, "axes"),
    case("Pad", [S, i64(0, 0, 1, 2, 0, 0, 0, 3)], 19, "wrap", mode="wrap"),
    case("Pad", [S, i64(0, -1, 2, 0, 0, 1, -2, 0)], 13, "neg"),
    case(
        "Pad",
        [np.arange(12, dtype=np.int32).reshape(3, 4), i64(1, 1, 1, 1), np.int32(-7)],
        13,
        "int",
    ),
    case("Pad", [S], 2, "attr", pads=[0, 1, 0, 1, 0, 0, 1, 0], value=2.0),
    case("Pad", [S], 2, "attrreflect", pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="reflect"),
    case("Identity", [S], 13),
    case("Dropout", [S], 12, outputs=2),
    case("Dropout", [S, np.float32(0.3), np.array(False)], 13, "ratio", outputs=2),
    case("Dropout", [S], 7, "7", outputs=2),
    case("Dropout", [S], 10, "10", outputs=2),
    case("DepthToSpace", [f32(2, 8, 3, 2)], 13, blocksize=2),
    case("DepthToSpace", [f32(2, 8, 3, 2)], 13, "crd", blocksize=2, mode="CRD"),
    case("SpaceToDepth", [f32(2, 3, 4, 6)], 13, blocksize=2),
    case("Trilu", [f32(2, 4, 5)], 14),
    case("Trilu", [f32(4, 5), i64(1)], 14, "k", upper=1),
    case("Trilu", [f32(4, 5), i64(-1)], 14, "lower", upper=0),
    case("OneHot", [i64(0, 2, -1, 5), np.float32(4), np.array([0, 3], np.float32)], 11),
    case(
        "OneHot", [np.array([[0, 2], [1, -4]], np.int64), i64(4), i64(-1, 1)], 11, "axis0", axis=0
    ),
    case("NonZero", [np.array([[1, 0, 2], [0, 0, 3]], np.float32)], 13),
    case("NonZero", [np.array([True, False, True])], 13, "bool"),
    case("NonZero", [np.array(2.0, np.float32)], 13, "scalar"),
    case("Compress", [f32(3, 4), np.array([True, False, True])], 11, axis=0),
    case("Compress", [f32(3, 4), np.array([True, False, True, True])], 11, "axis1", axis=-1),
    case("Compress", [f32(3, 2), np.array([False, True, True])], 11, "flat"),
    case("EyeLike", [f32(3, 4)], 9, k=1),
    case("EyeLike", [f32(4, 3)], 9, "dtype", k=-1, dtype=TensorProto.INT32),
]


@_run_cases(SHAPE)
def test_shape_ops(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, **kw)


def _scalar(v, dtype):
    return np.array(v, dtype)


RANGES = [
    (0.0, 1.0, 0.1, np.float32),
    (5.0, -3.0, -0.7, np.float32),
    (1.0, 1.0, 1.0, np.float32),
    (0.5, 100.0, 0.3, np.float32),
    (-3, 10, 4, np.int32),
    (10, -3, -3, np.int64),
    (0, 5, -1, np.int64),
    (0.0, 1.0, 0.1, np.float64),
]


@pytest.mark.parametrize("start,limit,delta,dtype", RANGES)
def test_range(start, limit, delta, dtype):
    check("Range", [_scalar(start, dtype), _scalar(limit, dtype), _scalar(delta, dtype)], 11)


CONSTANTS = [
    {"value": numpy_helper.from_array(f32(2, 3))},
    {"value": numpy_helper.from_array(np.array([1, 2], np.int8))},
    {"value_float": 2.5},
    {"value_floats": [1.0, 2.5]},
    {"value_int": 7},
    {"value_ints": [1, -2, 3]},
    {"value_string": "abc"},
    {"value_strings": ["a", "bc"]},
]


@pytest.mark.parametrize("attrs", CONSTANTS, ids=lambda a: next(iter(a)))
def test_constant(attrs):
    check("Constant", [], 13, **attrs)


@pytest.mark.parametrize(
    "shape,value",
    [
        (i64(2, 3), None),
        (i64(2, 0, 3), None),
        (np.zeros(0, np.int64), numpy_helper.from_array(np.array([5], np.int32))),
        (i64(4), numpy_helper.from_array(np.array([1.5], np.float64))),
    ],
)
def test_constant_of_shape(shape, value):
    attrs = {} if value is None else {"value": value}
    check("ConstantOfShape", [shape], 9, **attrs)


# ---- Resize -----------------------------------------------------------------------------

IMG = f32(1, 2, 4, 5)
CTMS = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "tf_half_pixel_for_nn"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
RESIZE_SCALES = [
    np.array([1, 1, 2.0, 3.0], np.float32),
    np.array([1, 1, 0.6, 0.5], np.float32),
    np.array([1, 1, 1.7, 0.8], np.float32),
]
RESIZE = (
    [
        case(
            "Resize",
            [IMG, None, sc],
            13,
            f"{ctm}-{nm}-{i}",
            coordinate_transformation_mode=ctm,
            mode="nearest",
            nearest_mode=nm,
        )
        for ctm in CTMS
        for nm in NEAREST
        for i, sc in enumerate(RESIZE_SCALES)
        if ctm != "tf_half_pixel_for_nn"
    ]
    + [
        case(
            "Resize",
            [IMG, np.zeros(0, np.float32), sc],
            11,
            f"{ctm}-{nm}-{i}",
            coordinate_transformation_mode=ctm,
            mode="nearest",
            nearest_mode=nm,
        )
        for ctm in ("tf_half_pixel_for_nn",)
        for nm in NEAREST
        for i, sc in enumerate(RESIZE_SCALES)
    ]
    + [
        case(
            "Resize",
            [IMG, None, sc],
            13,
            f"linear-{ctm}-{i}",
            coordinate_transformation_mode=ctm,
            mode="linear",
        )
        for ctm in ("half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel")
        for i, sc in enumerate(RESIZE_SCALES)
    ]
    + [
        case(
            "Resize",
            [IMG, None, sc],
            19,
            f"sym-{mode}-{i}",
            coordinate_transformation_mode="half_pixel_symmetric",
            mode=mode,
        )
        for mode in ("nearest", "linear")
        for i, sc in enumerate(RESIZE_SCALES)
    ]
    + [
        case(
            "Resize",
            [IMG, None, sc],
            13,
            f"cubic-{ctm}-{i}",
            coordinate_transformation_mode=ctm,
            mode="cubic",
        )
        for ctm in ("half_pixel", "asymmetric", "align_corners")
        for i, sc in enumerate(RESIZE_SCALES)
    ]
    + [
        case(
            "Resize",
            [IMG, None, RESIZE_SCALES[1]],
            13,
            "cubic-excl",
            mode="cubic",
            cubic_coeff_a=-0.5,
            exclude_outside=1,
        ),
        case(
            "Resize",
            [IMG, None, RESIZE_SCALES[0]],
            13,
            "cubic-excl-up",
            mode="cubic",
            exclude_outside=1,
        ),
        case("Resize", [IMG, None, None, i64(1, 2, 7, 3)], 13, "sizes"),
        case("Resize", [IMG, None, None, i64(1, 2, 7, 3)], 13, "sizes-linear", mode="linear"),
        case(
            "Resize",
            [IMG, np.array([0, 0, 0.2, 0.3, 1, 1, 0.9, 0.8], np.float32), None, i64(1, 2, 5, 6)],
            13,
            "crop-linear",
            mode="linear",
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        case(
            "Resize",
            [IMG, np.array([0, 0, -0.2, 0.3, 1, 1, 1.3, 0.8], np.float32), None, i64(1, 2, 5, 6)],
            13,
            "crop-extra",
            mode="linear",
            extrapolation_value=-9.0,
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        case(
            "Resize",
            [IMG, np.array([0, 0, -0.2, 0.3, 1, 1, 1.3, 0.8], np.float32), None, i64(1, 2, 5, 6)],
            13,
            "crop-nearest",
            mode="nearest",
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        case("Resize", [IMG, None, np.array([2.0, 1.5], np.float32)], 18, "axes", axes=[2, 3]),
        case(
            "Resize", [IMG, None, None, i64(7, 3)], 18, "axes-sizes", axes=[-2, -1], mode="linear"
        ),
        case(
            "Resize",
            [IMG, None, None, i64(8, 8)],
            18,
            "notlarger",
            axes=[2, 3],
            keep_aspect_ratio_policy="not_larger",
        ),
        case(
            "Resize",
            [IMG, None, None, i64(8, 8)],
            18,
            "notsmaller",
            axes=[2, 3],
            keep_aspect_ratio_policy="not_smaller",
        ),
        case(
            "Resize", [IMG, None, RESIZE_SCALES[0]], 18, "antialias-up", mode="linear", antialias=1
        ),
        case("Resize", [IMG, RESIZE_SCALES[0]], 10, "10-nearest"),
        case("Resize", [IMG, RESIZE_SCALES[1]], 10, "10-nearest-down"),
        case("Resize", [IMG, RESIZE_SCALES[2]], 10, "10-linear", mode="linear"),
        case("Resize", [f32(2, 3, 4), None, np.array([1, 2.0, 0.7], np.float32)], 13, "3d-nearest"),
        case(
            "Resize",
            [np.arange(40, dtype=np.uint8).reshape(1, 2, 4, 5), None, RESIZE_SCALES[2]],
            13,
            "uint8-nearest",
        ),
        case(
            "Resize",
            [np.arange(40, dtype=np.uint8).reshape(1, 2, 4, 5) * 6, None, RESIZE_SCALES[2]],
            13,
            "uint8-linear",
            mode="linear",
        ),
        case(
            "Resize",
            [IMG, np.array([0, 0, 0.1, 0.2, 1, 1, 0.7, 0.9], np.float32), None, i64(1, 2, 5, 5)],
            13,
            "crop-cubic",
            mode="cubic",
            extrapolation_value=3.0,
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        case(
            "Resize",
            [f32(2, 3, 4), None, np.array([1, 2.0, 0.7], np.float32)],
            13,
            "3d-linear",
            mode="linear",
        ),
        case(
            "Resize",
            [f32(1, 2, 4, 5, 2), None, np.array([1, 1, 2.0, 0.7, 1.5], np.float32)],
            13,
            "5d-linear",
            mode="linear",
        ),
        case(
            "Resize",
            [f32(1, 3, 4, 2), None, np.array([1, 2.0, 1.5, 1], np.float32)],
            13,
            "nhwc-linear",
            mode="linear",
        ),
        case(
            "Resize",
            [f32(3, 4), None, np.array([2.0, 0.7], np.float32)],
            13,
            "2d-cubic",
            mode="cubic",
            coordinate_transformation_mode="pytorch_half_pixel",
        ),
        case("Upsample", [IMG], 7, "7", scales=[1.0, 1.0, 2.0, 3.0]),
        case("Upsample", [IMG], 7, "7-linear", scales=[1.0, 1.0, 2.0, 1.5], mode="linear"),
        case("Upsample", [IMG, np.array([1, 1, 2.5, 2], np.float32)], 9, "9"),
        case("Upsample", [IMG, np.array([1, 1, 2.5, 2], np.float32)], 9, "9-linear", mode="linear"),
    ]
)


@_run_cases(RESIZE)
def test_resize(op_type, inputs, opset, kw):
    check(op_type, inputs, opset, **kw)


# ---- errors -----------------------------------------------------------------------------


def ours(op_type: str, inputs: list, opset: int = 17, outputs: int = 1, **attrs: Any):
    out_names = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op_type, [f"x{i}" for i in range(len(inputs))], out_names, "bad")
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    return run_float_op(
        View.of(node, opset), [None if x is None else np.asarray(x) for x in inputs]
    )


ERRORS = [
    ("Reshape", [S, i64(7, -1)], {}, "cannot reshape"),
    ("Reshape", [S, i64(-1, -1)], {}, "more than one -1"),
    ("Conv", [f32(1, 3, 5, 5), f32(4, 2, 3, 3)], {}, "group"),
    ("Conv", [f32(1, 3, 2, 2), f32(4, 3, 3, 3)], {}, "does not fit"),
    ("Concat", [f32(2, 3), f32(3, 2)], {"axis": 0}, "differ off axis"),
    ("Gemm", [f32(2, 3), f32(2, 3)], {}, "do not multiply"),
    ("MatMul", [f32(2, 3), f32(2, 3)], {}, "do not multiply"),
    ("Add", [f32(2, 3), f32(4)], {}, "do not broadcast"),
    ("Pad", [S, np.zeros(8, np.int64)], {"mode": "mirror"}, "'mode' is 'mirror'"),
    ("Gather", [S, i64(5)], {}, "out of range"),
    ("Transpose", [S], {"perm": [0, 1, 1, 2]}, "perm"),
    ("Split", [f32(7, 2)], {"outputs": 2}, "split evenly"),
    ("Squeeze", [f32(2, 3), i64(0)], {}, "cannot squeeze"),
    ("Slice", [S, i64(0), i64(1), i64(0), i64(0)], {}, "steps"),
    ("Softmax", [S], {"axis": 4}, "axis 4"),
    ("Einsum", [f32(2, 3)], {"equation": "ij,jk->ik"}, "equation"),
    ("Mod", [f32(3), f32(3)], {}, "fmod"),
    ("Resize", [IMG, None, np.array([1, 1, 2], np.float32)], {}, "scales"),
    ("Resize", [IMG], {}, "scales and sizes"),
    ("Conv", [f32(1, 3, 5, 5)], {}, "required input 1"),
    ("Div", [np.array([1], np.int32), np.array([0], np.int32)], {}, "division by zero"),
    ("Cast", [f32(2)], {"to": 999}, "'to'"),
    ("DepthToSpace", [f32(1, 3, 2, 2)], {"blocksize": 2}, "blocksize"),
    ("TopK", [f32(2, 3), i64(4)], {}, "k = 4"),
]


@pytest.mark.parametrize("op_type,inputs,attrs,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_model_errors(op_type, inputs, attrs, match):
    with pytest.raises(ModelError, match=match) as info:
        ours(op_type, inputs, **attrs)
    assert f"{op_type} node 'bad'" in str(info.value)
    assert type(info.value) is ModelError


UNSUPPORTED = [
    ("Resize", [IMG, None, RESIZE_SCALES[1]], {"mode": "linear", "antialias": 1}, "antialias"),
    (
        "Resize",
        [IMG, None, RESIZE_SCALES[1]],
        {"coordinate_transformation_mode": "tf_something"},
        "tf_something",
    ),
    ("Resize", [IMG, None, RESIZE_SCALES[1]], {"nearest_mode": "nearest_odd"}, "nearest_odd"),
    ("BatchNormalization", [X, *C3], {"training_mode": 1}, "training_mode"),
    ("NoSuchOp", [X], {}, "not supported"),
    ("Cast", [f32(2)], {"to": TensorProto.FLOAT8E4M3FN}, "float8"),
]


@pytest.mark.parametrize("op_type,inputs,attrs,match", UNSUPPORTED, ids=[e[0] for e in UNSUPPORTED])
def test_unsupported(op_type, inputs, attrs, match):
    with pytest.raises(UnsupportedOpError, match=match) as info:
        ours(op_type, inputs, **attrs)
    assert f"{op_type} node 'bad'" in str(info.value)


def test_lrn_window_far_wider_than_the_channels():
    """A size of 2^40 sums every channel, as size C would: no window of 2^40 is built."""
    x = f32(1, 3, 4, 4)
    huge = ours("LRN", [x], 13, size=1 << 40, alpha=1.0)[0]
    wide = ours("LRN", [x], 13, size=5, alpha=float(5 / (1 << 40)))[0]
    np.testing.assert_allclose(huge, wide, rtol=1e-6)


LIMIT = 32 << 20
# inputs of a few kB whose attributes or equation ask for gigabytes
OVER_THE_CAP = [
    ("Einsum", [f32(1 << 15), f32(1 << 15)], {"equation": "i,j->ij"}),
    ("Einsum", [f32(1 << 8, 4), f32(4, 1 << 8), f32(1 << 8)], {"equation": "ab,bc,d->acd"}),
    ("Einsum", [f32(2, 1 << 14), f32(1 << 14, 1)], {"equation": "...i,j..."}),
    ("ConvTranspose", [f32(1, 2, 4, 4), f32(2, 2, 3, 3)], {"strides": [1 << 12, 1 << 12]}),
    ("ConvTranspose", [f32(1, 2, 4, 4), f32(2, 2, 3, 3)], {"output_shape": [1 << 13, 1 << 13]}),
    ("ConvTranspose", [f32(1, 2, 64, 64), f32(2, 64, 16, 16)], {}),  # the per-tap products
    ("Conv", [f32(1, 2, 4, 4), f32(2, 2, 3, 3)], {"pads": [1 << 12] * 4}),
    ("Conv", [f32(1, 4, 64, 64), f32(4, 4, 33, 33)], {"pads": [16] * 4}),  # the im2col matrix
    ("MaxPool", [f32(1, 2, 4, 4)], {"kernel_shape": [2, 2], "pads": [1 << 12] * 4}),
    ("AveragePool", [f32(1, 1, 4)], {"kernel_shape": [1], "strides": [1], "pads": [1 << 23] * 2}),
    ("LpPool", [f32(1, 2, 64, 64, 64)], {"kernel_shape": [4, 4, 4]}),  # every tap in float64
]


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    "op_type,inputs,attrs", OVER_THE_CAP, ids=[f"{c[0]}-{i}" for i, c in enumerate(OVER_THE_CAP)]
)
def test_arrays_over_the_memory_limit_are_refused_before_allocating(op_type, inputs, attrs):
    node = helper.make_node(op_type, [f"x{i}" for i in range(len(inputs))], ["y"], "big", **attrs)
    view = View.of(node, 19)

    def run():
        with pytest.raises(ModelError, match="big.*over the memory limit of 33554432 bytes"):
            run_float_op(view, inputs, memory_limit=LIMIT)

    assert _peak(run) < LIMIT // 4


@pytest.mark.parametrize(
    "op_type,inputs,attrs",
    [
        ("Einsum", [f32(64, 32), f32(32, 64)], {"equation": "ij,jk"}),
        ("Einsum", [f32(2, 3, 64), f32(64, 64)], {"equation": "...i,ij->...j"}),
        ("ConvTranspose", [f32(1, 2, 8, 8), f32(2, 3, 3, 3)], {"strides": [2, 2]}),
        ("Conv", [f32(1, 3, 16, 16), f32(4, 3, 3, 3)], {"pads": [1] * 4}),
        ("MaxPool", [f32(1, 3, 16, 16)], {"kernel_shape": [3, 3], "pads": [1] * 4}),
        ("AveragePool", [f32(1, 3, 16, 16, 4)], {"kernel_shape": [2, 2, 2]}),
    ],
)
def test_arrays_under_the_memory_limit_are_sized_closely(op_type, inputs, attrs):
    """The estimate covers what the op allocates and is not wildly above it."""
    node = helper.make_node(op_type, [f"x{i}" for i in range(len(inputs))], ["y"], "n", **attrs)
    view = View.of(node, 19)
    need = largest_allocation(view, inputs)
    peak = _peak(lambda: run_float_op(view, inputs, memory_limit=need))
    largest_output = max(y.nbytes for y in run_float_op(view, inputs))
    assert largest_output <= need <= 16 * max(peak, 1)


@pytest.mark.parametrize(
    "op_type,x,attrs",
    [
        ("ReduceMean", np.zeros((2, 0), np.float32), {"axes": [1]}),
        ("GlobalAveragePool", np.zeros((1, 2, 0, 3), np.float32), {}),
        ("InstanceNormalization", np.zeros((1, 2, 0), np.float32), {}),
    ],
)
def test_means_over_nothing_warn_nothing(op_type, x, attrs):
    """The mean of no values (undefined in ONNX) is NaN, without numpy's RuntimeWarning:
    warnings are process-wide, and a malformed model's must not reach the caller's log."""
    extra = [np.ones(2, np.float32)] * 2 if op_type == "InstanceNormalization" else []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ours(op_type, [x, *extra], 13, **attrs)[0]
    assert y.dtype == np.float32 and (y.size == 0 or np.isnan(y).all())


def test_max_pool_indices_shape_and_dtype():
    y, idx = ours("MaxPool", [P], 12, outputs=2, kernel_shape=[2, 2])
    assert idx.dtype == np.int64 and idx.shape == y.shape
    np.testing.assert_array_equal(P.reshape(-1)[idx], y)


def test_erf_accuracy():
    import math

    from pyrt.ops_float import erf

    x = np.linspace(-6, 6, 20001)
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), want, rtol=0, atol=2e-7)
    tiny = np.array([1e-8, 1e-5, -3e-4])
    np.testing.assert_allclose(erf(tiny), [math.erf(v) for v in tiny], rtol=1e-12)


BRIEF_OPS = """Resize Upsample Slice Gather GatherElements ScatterND Concat Reshape Flatten
    Transpose Expand Tile Cast Shape Size Constant ConstantOfShape Range Identity Dropout
    Where Equal Less Greater LessOrEqual GreaterOrEqual Not And Or Xor Add Sub Mul Div Pow
    Mod Max Min Sum Mean Neg Abs Reciprocal Sqrt Exp Log Floor Ceil Round Sign Erf Sin Cos
    Tanh Sigmoid HardSigmoid HardSwish Relu LeakyRelu PRelu Elu Selu Celu Softplus Softsign
    Mish Gelu ThresholdedRelu Clip Softmax LogSoftmax MatMul Gemm Conv ConvTranspose MaxPool
    AveragePool LpPool GlobalAveragePool GlobalMaxPool BatchNormalization
    InstanceNormalization LayerNormalization GroupNormalization LRN ReduceMean ReduceSum
    ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSumExp ReduceSumSquare ArgMax
    ArgMin TopK CumSum Einsum DepthToSpace SpaceToDepth Squeeze Unsqueeze Trilu OneHot
    NonZero IsNaN IsInf Pad Split"""


def test_float_ops_registry_covers_brief():
    wanted = BRIEF_OPS.split()
    assert [w for w in wanted if w not in FLOAT_OPS] == []
