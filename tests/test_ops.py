"""Single operators against onnxruntime: ONNX's quantization ops at every opset that
defines them, onnxruntime's com.microsoft QOperator ops, and QDQ patterns."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import pyrt
from pyrt.check import _ort_session

RNG = np.random.default_rng(0)
MS = "com.microsoft"


def model(
    nodes,
    inputs: dict,
    inits: dict,
    outputs: list[str],
    opset: int = 17,
    ms: bool = False,
    out_dtype=np.uint8,
):
    """A one-graph model; output types from shape inference, else out_dtype."""

    def info(name, value):
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape
        )

    graph = helper.make_graph(
        nodes,
        "op",
        [info(k, v) for k, v in inputs.items()],
        [],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(MS, 1)] if ms else [])
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 11 if opset >= 25 else 10 if opset >= 21 else 8
    inferred = onnx.shape_inference.infer_shapes(m)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    fallback = helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype))
    for name in outputs:
        m.graph.output.append(
            helper.make_tensor_value_info(name, types.get(name) or fallback, None)
        )
    return m


def both(m, feeds):
    ours = pyrt.run(m, feeds)
    ref = _ort_session(m, optimized=False).run(None, feeds)
    return ours, ref


def assert_close_codes(ours, ref, steps=1, exact=0.99):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    diff = np.abs(ours.astype(np.int64) - ref.astype(np.int64))
    assert diff.max() <= steps, diff.max()
    assert np.mean(diff == 0) >= exact


def q(shape, dtype):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max + 1, shape).astype(dtype)


# ---- QuantizeLinear / DequantizeLinear ------------------------------------------


def quant_params(form, x_shape, dtype):
    if form == "tensor":
        return np.float32(0.05), np.array(q((), dtype)), {}
    if form == "axis":
        n = x_shape[1]
        return (RNG.uniform(0.01, 0.1, n).astype(np.float32), q(n, dtype), {"axis": 1})
    shape = list(x_shape)
    shape[1] = -(-shape[1] // 2)
    return (
        RNG.uniform(0.01, 0.1, shape).astype(np.float32),
        q(shape, dtype),
        {"axis": 1, "block_size": 2},
    )


CASES = [
    (10, "tensor"),
    (13, "tensor"),
    (13, "axis"),
    (19, "axis"),
    (21, "axis"),
    (21, "block"),
    (23, "block"),
    (24, "axis"),
    (25, "block"),
]


@pytest.mark.parametrize("opset,form", CASES)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_linear(opset, form, dtype):
    x = (RNG.standard_normal((2, 5, 3)) * 4).astype(np.float32)
    x[0, 0, :3] = [0.025, 0.075, -0.025]  # ties at scale 0.05
    scale, zero, attrs = quant_params(form, x.shape, dtype)
    m = model(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], **attrs)],
        {"x": x},
        {"s": scale, "z": zero},
        ["y"],
        opset,
    )
    ours, ref = both(m, {"x": x})
    np.testing.assert_array_equal(ours[0], ref[0])


@pytest.mark.parametrize("opset,form", CASES)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_dequantize_linear(opset, form, dtype):
    x = (
        q((2, 5, 3), dtype)
        if dtype != np.int32
        else RNG.integers(-(2**20), 2**20, (2, 5, 3)).astype(dtype)
    )
    scale, zero, attrs = quant_params(form, x.shape, np.int8 if dtype == np.int32 else dtype)
    zero = zero.astype(dtype) if dtype != np.int32 else np.zeros_like(zero, np.int32)

    def dq_model(opset):
        node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], **attrs)
        return model([node], {"x": x}, {"s": scale, "z": zero}, ["y"], opset)

    ours = pyrt.run(dq_model(opset), {"x": x})
    # onnxruntime takes int32 per-axis only from opset 21; the meaning is the same before
    ref_opset = 21 if dtype == np.int32 and form != "tensor" and opset < 21 else opset
    ref = _ort_session(dq_model(ref_opset), optimized=False).run(None, {"x": x})
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-6)


def test_quantize_nan_and_inf_saturate():
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0], np.float32)
    m = model(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
        {"x": x},
        {"s": np.float32(0.1), "z": np.uint8(7)},
        ["y"],
        13,
    )
    np.testing.assert_array_equal(pyrt.run(m, x)[0], [7, 255, 0, 255, 0, 7])  # NaN -> zero point


# ---- QOperator ops (ONNX domain) ----------------------------------------------


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("w_dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("group", [1, 2, 8])
def test_qlinearconv(x_dtype, w_dtype, group):
    x = q((1, 8, 9, 7), x_dtype)
    # 7-bit weights: onnxruntime's own u8 x s8 kernel saturates on full-range ones
    w = RNG.integers(-63, 64, (8, 8 // group, 3, 3))
    w = (w + 128 if w_dtype == np.uint8 else w).astype(w_dtype)
    wz = np.full(8, 128 if w_dtype == np.uint8 else 0, w_dtype)
    inits = {
        "xs": np.float32(0.02),
        "xz": np.array(q((), x_dtype)),
        "w": w,
        "ws": RNG.uniform(0.001, 0.01, 8).astype(np.float32),
        "wz": wz,
        "ys": np.float32(0.05),
        "yz": np.array(q((), x_dtype)),
        "b": RNG.integers(-500, 500, 8).astype(np.int32),
    }
    node = helper.make_node(
        "QLinearConv",
        ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
        ["y"],
        group=group,
        pads=[1, 0, 2, 1],
        strides=[2, 1],
    )
    ours = pyrt.run(model([node], {"x": x}, inits, ["y"], 10), {"x": x})
    if x_dtype == np.int8 and w_dtype == np.uint8:
        # onnxruntime has no s8 x u8 QLinearConv: give it the same real weights as s8
        inits["w"] = (w.astype(np.int16) - 128).astype(np.int8)
        inits["wz"] = (wz.astype(np.int16) - 128).astype(np.int8)
    ref = _ort_session(model([node], {"x": x}, inits, ["y"], 10), optimized=False).run(
        None, {"x": x}
    )
    assert_close_codes(ours[0], ref[0], steps=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("const_b", [True, False])
@pytest.mark.parametrize("opset", [10, 21])
def test_qlinearmatmul(dtype, const_b, opset):
    a, b = q((2, 3, 16), dtype), RNG.integers(-63, 64, (16, 5)).astype(np.int8)
    inits = {
        "as": np.float32(0.03),
        "az": np.array(q((), dtype)),
        "bs": np.float32(0.02),
        "bz": np.int8(0),
        "ys": np.float32(0.2),
        "yz": np.array(q((), dtype)),
    }
    feeds = {"a": a}
    (inits if const_b else feeds)["b"] = b
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    ours, ref = both(model([node], feeds, inits, ["y"], opset), feeds)
    # constant B runs the int8 kernel; two activations run in float: a tie may round apart
    assert_close_codes(ours[0], ref[0], exact=0.99 if const_b else 0.9)


@pytest.mark.parametrize("w_dtype", [np.uint8, np.int8])
def test_conv_and_matmul_integer(w_dtype):
    x = q((1, 4, 6, 6), np.uint8)
    w = q((6, 4, 3, 3), np.uint8)
    inits = {"w": w, "xz": np.uint8(9), "wz": np.uint8(130)}
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1])
    ours, ref = both(model([node], {"x": x}, inits, ["y"], 10), {"x": x})
    np.testing.assert_array_equal(ours[0], ref[0])
    a = q((3, 7, 20), np.uint8)
    b = RNG.integers(-63, 64, (20, 6)) + (128 if w_dtype == np.uint8 else 0)  # 7-bit, as above
    b = b.astype(w_dtype)
    for const in (True, False):
        feeds, inits = {"a": a}, {"az": np.uint8(5), "bz": np.array(q((), w_dtype))}
        (inits if const else feeds)["b"] = b
        node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
        ours, ref = both(model([node], feeds, inits, ["y"], 10), feeds)
        np.testing.assert_array_equal(ours[0], ref[0])


# ---- com.microsoft QOperator ops ------------------------------------------------


def qparams(prefix, dtype):
    return {f"{prefix}s": np.float32(RNG.uniform(0.01, 0.1)), f"{prefix}z": np.array(q((), dtype))}


@pytest.mark.parametrize("op", ["QLinearAdd", "QLinearMul"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_ms_qlinear_binary(op, dtype):
    a, b = q((2, 3, 4, 5), dtype), q((3, 1, 5), dtype)
    inits = {**qparams("a", dtype), **qparams("b", dtype), **qparams("y", dtype)}
    node = helper.make_node(op, ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"], domain=MS)
    m = model([node], {"a": a, "b": b}, inits, ["y"], 13, ms=True, out_dtype=dtype)
    ours, ref = both(m, {"a": a, "b": b})
    assert_close_codes(ours[0], ref[0])


def test_ms_qlinear_concat_sigmoid_leakyrelu():
    a, b = q((1, 3, 4, 4), np.uint8), q((1, 5, 4, 4), np.uint8)
    inits = {**qparams("a", np.uint8), **qparams("b", np.uint8), **qparams("y", np.uint8)}
    nodes = [
        helper.make_node(
            "QLinearConcat",
            ["ys", "yz", "a", "as", "az", "b", "bs", "bz"],
            ["c"],
            axis=1,
            domain=MS,
        ),
        helper.make_node("QLinearSigmoid", ["c", "ys", "yz", "as", "az"], ["s"], domain=MS),
        helper.make_node(
            "QLinearLeakyRelu", ["c", "ys", "yz", "bs", "bz"], ["l"], alpha=0.1, domain=MS
        ),
    ]
    feeds = {"a": a, "b": b}
    ours, ref = both(model(nodes, feeds, inits, ["c", "s", "l"], 13, ms=True), feeds)
    for o, r in zip(ours, ref):
        assert_close_codes(o, r)


@pytest.mark.parametrize("spatial", [(9,), (7, 5), (5, 6, 4)], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("channels_last", [0, 1])
def test_ms_qlinear_pools(channels_last, spatial):
    nd = len(spatial)
    x = q((1, 6, *spatial), np.uint8)
    if channels_last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    inits = {**qparams("x", np.uint8), **qparams("y", np.uint8)}
    nodes = [
        helper.make_node(
            "QLinearAveragePool",
            ["x", "xs", "xz", "ys", "yz"],
            ["a"],
            kernel_shape=[3] * nd,
            strides=[2] * nd,
            pads=[1] * (2 * nd),
            channels_last=channels_last,
            domain=MS,
        ),
        helper.make_node(
            "QLinearGlobalAveragePool",
            ["x", "xs", "xz", "ys", "yz"],
            ["g"],
            channels_last=channels_last,
            domain=MS,
        ),
    ]
    ours, ref = both(model(nodes, {"x": x}, inits, ["a", "g"], 13, ms=True), {"x": x})
    for o, r in zip(ours, ref):
        assert_close_codes(o, r, exact=0.95)


@pytest.mark.parametrize("with_y", [True, False])
def test_ms_qgemm(with_y):
    a = q((4, 16), np.uint8)
    inits = {
        "as": np.float32(0.02),
        "az": np.uint8(100),
        "b": RNG.integers(-63, 64, (8, 16)).astype(np.int8),
        "bs": RNG.uniform(0.01, 0.02, 8).astype(np.float32),
        "bz": np.zeros(8, np.int8),
        "c": RNG.integers(-1000, 1000, 8).astype(np.int32),
        "ys": np.float32(0.1),
        "yz": np.uint8(128),
    }
    ins = ["a", "as", "az", "b", "bs", "bz", "c"] + (["ys", "yz"] if with_y else [])
    node = helper.make_node("QGemm", ins, ["y"], transB=1, alpha=1.0, domain=MS)
    out_dtype = np.uint8 if with_y else np.float32
    ours, ref = both(
        model([node], {"a": a}, inits, ["y"], 13, ms=True, out_dtype=out_dtype), {"a": a}
    )
    if with_y:
        assert_close_codes(ours[0], ref[0])
    else:
        np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5, atol=1e-4)


def test_dynamic_quantization_matmul_integer(tmp_path):
    from onnxruntime.quantization import quantize_dynamic

    w = RNG.standard_normal((32, 16)).astype(np.float32)
    x = RNG.standard_normal((4, 32)).astype(np.float32)
    fp32 = model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"x": x}, {"w": w}, ["y"], 13)
    onnx.save(fp32, tmp_path / "f.onnx")
    quantize_dynamic(tmp_path / "f.onnx", tmp_path / "q.onnx")
    m = onnx.load(tmp_path / "q.onnx")
    assert any(n.op_type == "DynamicQuantizeLinear" for n in m.graph.node)
    ours, ref = both(m, {"x": x})
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-4, atol=1e-4)


# ---- QDQ patterns -----------------------------------------------------------------


def qdq_model(op_nodes, x_shape, out_name="y", extra_inits=None, extra_inputs=None, opset=17):
    """input -> Q -> DQ -> ops -> Q -> DQ -> output, u8 activations."""
    x = RNG.standard_normal(x_shape).astype(np.float32)
    inits = {
        "s": np.float32(0.03),
        "z": np.uint8(128),
        "so": np.float32(0.04),
        "zo": np.uint8(120),
        **(extra_inits or {}),
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        *op_nodes,
        helper.make_node("QuantizeLinear", [out_name, "so", "zo"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "so", "zo"], ["out"]),
    ]
    feeds = {"x": x, **(extra_inputs or {})}
    return model(nodes, feeds, inits, ["out"], opset), feeds


def weight_dq(name, shape, axis=0):
    w = RNG.integers(-127, 128, shape).astype(np.int8)
    n = shape[axis]
    inits = {
        f"{name}_q": w,
        f"{name}_s": RNG.uniform(0.005, 0.02, n).astype(np.float32),
        f"{name}_z": np.zeros(n, np.int8),
    }
    node = helper.make_node(
        "DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [name], axis=axis
    )
    return node, inits


def _conv():
    dq, inits = weight_dq("w", (6, 4, 3, 3))
    inits["b"] = RNG.standard_normal(6).astype(np.float32)
    return (
        [
            dq,
            helper.make_node("Conv", ["xd", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        (1, 4, 7, 7),
        inits,
    )


def _matmul():
    dq, inits = weight_dq("w", (12, 5), axis=1)
    return [dq, helper.make_node("MatMul", ["xd", "w"], ["y"])], (2, 3, 12), inits


def _gemm():
    dq, inits = weight_dq("w", (5, 12))
    inits["b"] = RNG.standard_normal(5).astype(np.float32)
    return (
        [dq, helper.make_node("Gemm", ["xd", "w", "b"], ["y"], transB=1, alpha=0.5)],
        (3, 12),
        inits,
    )


def _unary(op, **attrs):
    return lambda: ([helper.make_node(op, ["xd"], ["y"], **attrs)], (1, 3, 5, 5), {})


PATTERNS = {
    "conv_relu": (_conv, "int8"),
    "matmul": (_matmul, "int8"),
    "gemm": (_gemm, "int8"),
    "add": (lambda: ([helper.make_node("Add", ["xd", "xd"], ["y"])], (1, 3, 4, 4), {}), "int8"),
    "mul": (lambda: ([helper.make_node("Mul", ["xd", "xd"], ["y"])], (1, 3, 4, 4), {}), "int8"),
    "avgpool": (
        _unary(
            "AveragePool",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
            count_include_pad=1,
            ceil_mode=1,
        ),
        "int8",
    ),
    "maxpool": (_unary("MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), "int8"),
    "gap": (_unary("GlobalAveragePool"), "int8"),
    "sigmoid": (_unary("Sigmoid"), "int8"),
    "hardswish": (_unary("HardSwish"), "int8"),
    "leakyrelu": (_unary("LeakyRelu", alpha=0.2), "int8"),
    "transpose": (_unary("Transpose", perm=[0, 2, 3, 1]), "int8"),
    "flatten": (_unary("Flatten", axis=2), "int8"),
    "softmax": (_unary("Softmax", axis=1), "numpy"),
    "resize": (
        lambda: (
            [helper.make_node("Resize", ["xd", "", "sc"], ["y"], mode="nearest")],
            (1, 2, 3, 3),
            {"sc": np.array([1, 1, 2, 2], np.float32)},
        ),
        "int8",
    ),
    "concat": (
        lambda: ([helper.make_node("Concat", ["xd", "xd"], ["y"], axis=1)], (1, 2, 3, 3), {}),
        "int8",
    ),
}


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_qdq_patterns(name):
    build, expected = PATTERNS[name]
    nodes, shape, inits = build()
    m, feeds = qdq_model(nodes, shape, extra_inits=inits)
    ours, ref = both(m, feeds)
    np.testing.assert_allclose(ours[0], ref[0], atol=0.04 + 1e-6)  # at most one output step
    assert np.mean(np.isclose(ours[0], ref[0], atol=1e-6)) >= 0.9  # others: rounding ties
    anchor = [r for r in pyrt.Session(m).report() if r.op_type == nodes[-1].op_type]
    assert anchor and anchor[0].ran_as == expected, anchor
