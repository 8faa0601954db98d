"""Quantize/DequantizeLinear, int8 Add/Mul and int8 pools (fp32 GEMM / Conv: test_kernels_fp32.py).

Every kernel is compared with a plain numpy reference written here. Where the
kernels document their float arithmetic (the requantization formulas) the
reference replays it in float32 and the results must match bit for bit; a
float64 reference checks the maths itself. Every test runs on every ISA this
CPU offers, so SIMD tables face the same bar.
A few single-node onnxruntime models pin the ONNX semantics.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, settings
from onnx import helper, numpy_helper

import pyrt
from pyrt import _kernels
from pyrt import kernels as K
from pyrt._kernels import ffi, lib
from pyrt.kernels import QParams

F32 = np.float32
HYPO = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

CTX = _kernels.default_context().ptr


pytestmark = pytest.mark.usefixtures("every_isa")  # conftest.py: each test on every ISA


def rand_q(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def last_error() -> str:
    return ffi.string(lib.pyrt_last_error()).decode()


def run_ort(nodes, inputs: dict, outputs: list, inits=(), opset: int = 21, ms: bool = False):
    """Run a tiny graph in onnxruntime; inputs maps name -> array."""
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape
            )
            for name, value in inputs.items()
        ],
        [onnx.ValueInfoProto(name=name) for name in outputs],  # types inferred
        [numpy_helper.from_array(np.asarray(v), name) for name, v in inits],
    )
    opsets = [helper.make_opsetid("", opset)]
    if ms:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 10
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(outputs, inputs)


# ---- QuantizeLinear / DequantizeLinear --------------------------------------


def expand_param(p: np.ndarray, shape: tuple, axis: int, block: int) -> np.ndarray:
    """ONNX broadcast of a scale / zero point to the data's shape."""
    p = np.asarray(p)
    if p.size == 1:
        return np.broadcast_to(p.reshape(()), shape)
    axis %= len(shape)
    if block:
        p = np.repeat(p, block, axis=axis)
        return p[tuple(slice(0, d) for d in shape)]
    view = [1] * len(shape)
    view[axis] = -1
    return np.broadcast_to(p.reshape(view), shape)


def quantize_ref(x, scale, zero, axis, block, dtype):
    info = np.iinfo(dtype)
    s = expand_param(np.asarray(scale, F32), x.shape, axis, block)
    z = (
        expand_param(zero, x.shape, axis, block).astype(F32)
        if zero is not None
        else np.zeros(x.shape, F32)
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        v = np.rint(x.astype(F32) / s) + z
    v = np.where(np.isnan(v), z, v)
    return np.clip(v, info.min, info.max).astype(dtype)


def dequantize_ref(x, scale, zero, axis, block):
    s = expand_param(np.asarray(scale, F32), x.shape, axis, block)
    z = expand_param(zero, x.shape, axis, block).astype(np.int64) if zero is not None else 0
    return (x.astype(np.int64) - z).astype(F32) * s


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_per_tensor_ties_saturation_nan_inf(dtype):
    info = np.iinfo(dtype)
    scale = np.array(0.25, F32)
    # exact halves (ties go to even), saturation both ways, NaN, +-Inf, -0.0
    x = np.array(
        [
            0.125,
            0.375,
            -0.125,
            -0.375,
            0.625,
            1.0,
            1e9,
            -1e9,
            np.nan,
            np.inf,
            -np.inf,
            -0.0,
            3.4e38,
        ],
        F32,
    )
    for zp in (info.min, 0, 3, info.max):
        zero = np.array(zp, dtype)
        y = K.quantize(x, scale, zero)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, quantize_ref(x, scale, zero, 1, 0, dtype))
        assert y[8] == zp  # NaN -> zero point
        assert y[9] == info.max and y[10] == info.min
    y = K.quantize(np.array([0.125, 0.375, 0.625], F32), scale, np.array(0, dtype))
    np.testing.assert_array_equal(y, [0, 2, 2])
    # no zero point: output dtype from the argument
    y = K.quantize(x, scale, None, dtype=dtype)
    np.testing.assert_array_equal(y, quantize_ref(x, scale, None, 1, 0, dtype))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize(
    "shape,axis,block,scale_shape",
    [
        ((), 1, 0, ()),
        ((7,), 0, 0, (7,)),
        ((3, 5), 1, 0, (5,)),
        ((3, 5), -2, 0, (3,)),
        ((2, 3, 4, 5), 1, 0, (3,)),
        ((2, 3, 4, 5), -1, 0, (5,)),
        ((2, 3, 4, 5), 0, 0, (1,)),  # one value: per tensor
        ((4, 6), 1, 3, (4, 2)),  # blocked
        ((4, 7), 1, 3, (4, 3)),  # blocked, last block short
        ((7, 4), 0, 2, (4, 4)),
        ((2, 5, 3), -2, 4, (2, 2, 3)),
        ((2, 5, 3), 1, 9, (2, 1, 3)),  # block longer than the axis
        ((3, 4), 1, 2, (1,)),  # blocked but one scale: per tensor (as ONNX)
    ],
)
def test_quantize_dequantize_layouts(dtype, shape, axis, block, scale_shape):
    rng = np.random.default_rng(len(shape) * 10 + block)
    x = (rng.standard_normal(shape) * 40).astype(F32)
    scale = rng.uniform(0.05, 0.5, scale_shape).astype(F32)
    zero = rand_q(rng, scale_shape, dtype)
    q = K.quantize(x, scale, zero, axis, block)
    assert q.shape == x.shape and q.dtype == dtype
    np.testing.assert_array_equal(q, quantize_ref(x, scale, zero, axis, block, dtype))
    d = K.dequantize(q, scale, zero, axis, block)
    assert d.dtype == F32 and d.shape == x.shape
    np.testing.assert_array_equal(d, dequantize_ref(q, scale, zero, axis, block))
    d = K.dequantize(q, scale, None, axis, block)
    np.testing.assert_array_equal(d, dequantize_ref(q, scale, None, axis, block))


def test_dequantize_int32_extremes():
    x = np.array([np.iinfo(np.int32).min, -1, 0, 1, np.iinfo(np.int32).max], np.int32)
    scale = np.array(0.5, F32)
    for zp in (0, np.iinfo(np.int32).max, np.iinfo(np.int32).min, -7):
        zero = np.array(zp, np.int32)
        y = K.dequantize(x, scale, zero)
        # the difference is exact (int64), then rounded once to float32
        np.testing.assert_array_equal(y, dequantize_ref(x, scale, zero, 1, 0))
    x2 = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    scale2 = np.array([0.5, 1.0, 2.0], F32)
    zero2 = np.array([1, -2, 3], np.int32)
    np.testing.assert_array_equal(
        K.dequantize(x2, scale2, zero2, 0), dequantize_ref(x2, scale2, zero2, 0, 0)
    )


def test_quantize_empty_and_fortran_order():
    assert K.quantize(np.zeros((0, 3), F32), np.array(1.0, F32), None).shape == (0, 3)
    assert K.dequantize(np.zeros((2, 0), np.int8), np.array(1.0, F32), None).shape == (2, 0)
    rng = np.random.default_rng(5)
    x = np.asfortranarray(rng.standard_normal((4, 5)).astype(F32))
    scale = np.array([0.1, 0.2, 0.3, 0.4, 0.5], F32)
    np.testing.assert_array_equal(
        K.quantize(x, scale, None, axis=1, dtype=np.int8),
        quantize_ref(x, scale, None, 1, 0, np.int8),
    )


def test_quantize_rejects_bad_parameters():
    x = np.ones((2, 3), F32)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(pyrt.KernelError, match="scale"):
            K.quantize(x, np.array(bad, F32), None)
        with pytest.raises(pyrt.KernelError, match="scale"):
            K.dequantize(np.ones((2, 3), np.uint8), np.array(bad, F32), None)
    with pytest.raises(pyrt.KernelError, match=r"scale\[2\]"):
        K.quantize(x, np.array([1.0, 1.0, 0.0], F32), None, axis=1)
    with pytest.raises(pyrt.KernelError, match=r"scale\[3\]"):
        K.dequantize(np.ones((2, 4), np.int8), np.array([[1, 1], [1, np.nan]], F32), None, 1, 2)
    with pytest.raises(pyrt.KernelError):
        K.quantize(x, np.ones(2, F32), None, axis=1)  # per-axis length
    with pytest.raises(pyrt.KernelError):
        K.quantize(x, np.ones((2, 3), F32), None, axis=1)  # 2-D scale without block
    with pytest.raises(pyrt.KernelError):
        K.quantize(x, np.ones((2, 1), F32), None, axis=1, block_size=2)  # needs [2, 2]
    with pytest.raises(pyrt.KernelError):
        K.quantize(x, np.ones(3, F32), None, axis=2)
    with pytest.raises(pyrt.KernelError):
        K.quantize(x, np.ones(3, F32), None, axis=1, block_size=-1)
    with pytest.raises(pyrt.KernelError):
        K.quantize(x, np.ones(3, F32), np.zeros(2, np.uint8), axis=1)  # zero point size
    with pytest.raises(pyrt.KernelError, match="unsupported"):
        K.quantize(x, np.array(1.0, F32), np.array(0, np.int16))
    with pytest.raises(pyrt.KernelError, match="unsupported"):
        K.quantize(x, np.array(1.0, F32), None, dtype=np.uint16)
    with pytest.raises(pyrt.KernelError, match="unsupported"):
        K.dequantize(np.ones(3, np.uint16), np.array(1.0, F32), None)
    with pytest.raises(pyrt.KernelError, match="unsupported"):
        K.dequantize(np.ones(3, np.int64), np.array(1.0, F32), None)
    with pytest.raises(pyrt.KernelError):
        K.dequantize(np.ones(3, np.uint8), np.array(1.0, F32), np.array(0, np.int8))


def test_quantize_lib_null_and_overflowing_layout():
    layout = ffi.new("pyrt_quant_layout *")
    layout.outer = layout.axis_len = layout.inner = layout.block = 1
    x = np.ones(1, F32)
    s = np.ones(1, F32)
    y = np.empty(1, np.uint8)
    xp, sp, yp = _kernels.ptr(x, "float *"), _kernels.ptr(s, "float *"), _kernels.ptr(y)
    assert lib.pyrt_quantize(CTX, ffi.NULL, xp, sp, ffi.NULL, lib.PYRT_U8, yp) == lib.PYRT_ERR_ARG
    assert (
        lib.pyrt_quantize(CTX, layout, xp, ffi.NULL, ffi.NULL, lib.PYRT_U8, yp) == lib.PYRT_ERR_ARG
    )
    assert lib.pyrt_quantize(CTX, layout, xp, sp, ffi.NULL, lib.PYRT_F32, yp) == lib.PYRT_ERR_ARG
    assert (
        lib.pyrt_dequantize(CTX, layout, ffi.NULL, lib.PYRT_U8, sp, ffi.NULL, xp)
        == lib.PYRT_ERR_ARG
    )
    assert lib.pyrt_dequantize(CTX, layout, yp, lib.PYRT_F32, sp, ffi.NULL, xp) == lib.PYRT_ERR_ARG
    layout.outer, layout.stride_outer = 3, 2**62  # scale index would overflow
    assert lib.pyrt_quantize(CTX, layout, xp, sp, ffi.NULL, lib.PYRT_U8, yp) == lib.PYRT_ERR_SHAPE
    layout.outer, layout.stride_outer, layout.stride_inner = 1, 0, -1  # negative stride
    assert lib.pyrt_quantize(CTX, layout, xp, sp, ffi.NULL, lib.PYRT_U8, yp) == lib.PYRT_ERR_ARG
    layout.stride_inner, layout.block = 0, 0
    assert lib.pyrt_quantize(CTX, layout, xp, sp, ffi.NULL, lib.PYRT_U8, yp) == lib.PYRT_ERR_ARG


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize(
    "shape,axis,block,scale_shape",
    [((4, 6), 1, 3, (4, 2)), ((5, 4), 0, 2, (3, 4)), ((2, 3, 4), 1, 0, (3,)), ((3, 4), 1, 0, ())],
)
def test_quant_dequant_match_onnxruntime(dtype, shape, axis, block, scale_shape):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) * 30).astype(F32)
    x.flat[0] = 1e6  # saturate
    scale = rng.uniform(0.1, 0.4, scale_shape).astype(F32)
    zero = rand_q(rng, scale_shape, dtype)
    attrs = {"axis": axis, "block_size": block} if block else {"axis": axis}
    q_node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], **attrs)
    dq_node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], **attrs)
    q_ref, d_ref = run_ort([q_node, dq_node], {"x": x}, ["q", "d"], [("s", scale), ("z", zero)])
    q = K.quantize(x, scale, zero, axis, block)
    np.testing.assert_array_equal(q, q_ref)
    np.testing.assert_array_equal(K.dequantize(q, scale, zero, axis, block), d_ref)


# ---- int8 Add / Mul ------------------------------------------------------------


def qbinary_ref(op, a, qa, b, qb, qy, qmin, qmax):
    """The documented float32 arithmetic, replayed with numpy (separate roundings)."""
    sa, sb, sy = F32(qa.scale), F32(qb.scale), F32(qy.scale)
    va = a.astype(F32) - F32(qa.zero_point)
    vb = b.astype(F32) - F32(qb.zero_point)
    if op == "add":
        v = va * (sa / sy) + vb * (sb / sy)
    else:
        v = (va * vb) * (sa * sb / sy)
    v = np.rint(v) + F32(qy.zero_point)
    return np.clip(v, qmin, qmax).astype(qy.dtype)


QT = [np.uint8, np.int8]


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("ta", QT)
@pytest.mark.parametrize("tb", QT)
@pytest.mark.parametrize("ty", QT)
def test_qbinary_dtype_mix(op, ta, tb, ty):
    rng = np.random.default_rng(7)
    a, b = rand_q(rng, (3, 700), ta), rand_q(rng, (3, 700), tb)  # > one 256 chunk
    qa = QParams(0.02, int(rand_q(rng, (), ta)), np.dtype(ta))
    qb = QParams(0.05, int(rand_q(rng, (), tb)), np.dtype(tb))
    qy = QParams(0.07 if op == "add" else 0.3, int(rand_q(rng, (), ty)), np.dtype(ty))
    info = np.iinfo(ty)
    y = K.qbinary(op, a, qa, b, qb, qy)
    assert y.dtype == ty and y.shape == a.shape
    np.testing.assert_array_equal(y, qbinary_ref(op, a, qa, b, qb, qy, info.min, info.max))
    # the float maths is right to within a rounding step
    real = (a.astype(np.float64) - qa.zero_point) * np.float64(F32(qa.scale))
    real_b = (b.astype(np.float64) - qb.zero_point) * np.float64(F32(qb.scale))
    r = real + real_b if op == "add" else real * real_b
    exact = np.clip(r / np.float64(F32(qy.scale)) + qy.zero_point, info.min, info.max)
    assert np.max(np.abs(y - exact)) <= 0.5 + 1e-3


@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize(
    "sa,sb",
    [((2, 3, 4), (4,)), ((2, 1, 4), (1, 3, 1)), ((), (5,)), ((1,), ()), ((3, 1), (3, 7)), ((), ())],
)
def test_qbinary_broadcast_and_clamp(op, sa, sb):
    rng = np.random.default_rng(8)
    a, b = rand_q(rng, sa, np.uint8), rand_q(rng, sb, np.int8)
    qa = QParams(0.1, 128, np.dtype(np.uint8))
    qb = QParams(0.2, -3, np.dtype(np.int8))
    qy = QParams(0.15, 10, np.dtype(np.uint8))
    y = K.qbinary(op, a, qa, b, qb, qy, qmin=10, qmax=200)  # fused ReLU + cap
    ea, eb = np.broadcast_arrays(a, b)
    assert y.shape == ea.shape
    np.testing.assert_array_equal(y, qbinary_ref(op, ea, qa, eb, qb, qy, 10, 200))
    assert y.min() >= 10 and y.max() <= 200


def test_qbinary_saturation_and_ties():
    # scales chosen so that results land exactly on .5: ties go to even
    qa = QParams(0.5, 0, np.dtype(np.int8))
    qb = QParams(0.5, 0, np.dtype(np.int8))
    qy = QParams(1.0, 0, np.dtype(np.int8))
    a = np.array([1, 3, -1, -3, 127, -128, 127], np.int8)
    b = np.array([0, 0, 0, 0, 127, -128, -128], np.int8)
    y = K.qbinary("add", a, qa, b, qb, qy)
    np.testing.assert_array_equal(y, [0, 2, 0, -2, 127, -128, 0])
    qy = QParams(0.01, 0, np.dtype(np.int8))
    y = K.qbinary("mul", a, qa, b, qb, qy)
    np.testing.assert_array_equal(y, qbinary_ref("mul", a, qa, b, qb, qy, -128, 127))
    assert y[4] == 127 and y[5] == 127 and y[6] == -128


@pytest.mark.parametrize("dtype", QT)
def test_qbinary_add_matches_onnxruntime(dtype):
    rng = np.random.default_rng(9)
    a, b = rand_q(rng, (2, 3, 8, 8), dtype), rand_q(rng, (1, 3, 1, 8), dtype)
    za, zb, zy = (int(v) for v in rand_q(rng, 3, dtype))
    qa, qb, qy = (
        QParams(0.031, za, np.dtype(dtype)),
        QParams(0.017, zb, np.dtype(dtype)),
        QParams(0.043, zy, np.dtype(dtype)),
    )
    node = helper.make_node(
        "QLinearAdd",
        ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"],
        ["y"],
        domain="com.microsoft",
    )
    inits = [
        ("sa", np.array(qa.scale, F32)),
        ("za", np.array(za, dtype)),
        ("sb", np.array(qb.scale, F32)),
        ("zb", np.array(zb, dtype)),
        ("sy", np.array(qy.scale, F32)),
        ("zy", np.array(zy, dtype)),
    ]
    (ref,) = run_ort([node], {"a": a, "b": b}, ["y"], inits, opset=13, ms=True)
    y = K.qbinary("add", a, qa, b, qb, qy)
    # onnxruntime uses its own fixed-point/float path: allow one step, rarely
    diff = np.abs(y.astype(np.int32) - ref.astype(np.int32))
    assert diff.max() <= 1 and np.mean(diff) < 0.05


def test_qbinary_rejects_bad_arguments():
    u8 = np.dtype(np.uint8)
    q = QParams(0.1, 0, u8)
    a = np.ones(4, np.uint8)
    with pytest.raises(pyrt.KernelError, match="op"):
        K.qbinary("sub", a, q, a, q, q)
    with pytest.raises(pyrt.KernelError):
        K.qbinary("add", a, q, np.ones(3, np.uint8), q, q)
    with pytest.raises(pyrt.KernelError):
        K.qbinary("add", a.astype(np.int8), q, a, q, q)
    with pytest.raises(pyrt.KernelError, match="unsupported"):
        K.qbinary("add", a, q, a, q, QParams(0.1, 0, np.dtype(np.int16)))
    for bad in (0.0, -0.1, np.nan, np.inf):
        with pytest.raises(pyrt.KernelError, match="scale"):
            K.qbinary("add", a, QParams(bad, 0, u8), a, q, q)
    with pytest.raises(pyrt.KernelError, match="zero point"):
        K.qbinary("add", a, QParams(0.1, 300, u8), a, q, q)
    with pytest.raises(pyrt.KernelError, match="clamp"):
        K.qbinary("add", a, q, a, q, q, qmin=5, qmax=4)
    with pytest.raises(pyrt.KernelError, match="clamp"):
        K.qbinary("add", a, q, a, q, q, qmin=-1)
    with pytest.raises(pyrt.KernelError, match="infinite"):
        K.qbinary("add", a, QParams(1e30, 0, u8), a, q, QParams(1e-30, 0, u8))
    with pytest.raises(pyrt.KernelError, match="infinite"):
        K.qbinary("mul", a, QParams(1e20, 0, u8), a, QParams(1e20, 0, u8), q)
    p = K._qparams(q)
    ap = _kernels.ptr(a)
    assert lib.pyrt_qbinary(CTX, lib.PYRT_ADD, 4, ap, ffi.NULL, ap, p, ap, p, 0, 255) == (
        lib.PYRT_ERR_ARG
    )
    assert lib.pyrt_qbinary(CTX, lib.PYRT_ADD, 4, ffi.NULL, p, ap, p, ap, p, 0, 255) == (
        lib.PYRT_ERR_ARG
    )
    assert lib.pyrt_qbinary(CTX, lib.PYRT_MUL, 0, ap, p, ap, p, ap, p, 0, 255) == lib.PYRT_ERR_ARG
    assert lib.pyrt_qbinary(CTX, 7, 4, ap, p, ap, p, ap, p, 0, 255) == lib.PYRT_ERR_ARG


# ---- int8 pooling --------------------------------------------------------------


def ref_pool_size(n, k, s, p0, p1, d, ceil_mode):
    """Independent statement of the rule: floor/ceil, then drop a last window that
    starts in the end padding."""
    span = d * (k - 1) + 1
    q = (n + p0 + p1 - span) / s
    out = (math.ceil(q) if ceil_mode else math.floor(q)) + 1
    if ceil_mode and (out - 1) * s - p0 >= n:
        out -= 1
    return out


def window_taps(o, s, p0, k, d, lo, hi):
    return [o * s - p0 + j * d for j in range(k) if lo <= o * s - p0 + j * d < hi]


def pool_ref(
    x, kind, kernel, strides, pads, dilations, ceil_mode, count_include_pad=False, qx=None, qy=None
):
    n, c, h, w = x.shape
    oh = ref_pool_size(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode)
    ow = ref_pool_size(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode)
    out = np.zeros(
        (n, c, oh, ow), np.float64 if kind == "favg" else x.dtype if kind == "max" else qy.dtype
    )
    for oy in range(oh):
        rows = window_taps(oy, strides[0], pads[0], kernel[0], dilations[0], 0, h)
        prow = window_taps(oy, strides[0], pads[0], kernel[0], dilations[0], -pads[0], h + pads[2])
        for ox in range(ow):
            cols = window_taps(ox, strides[1], pads[1], kernel[1], dilations[1], 0, w)
            pcol = window_taps(
                ox, strides[1], pads[1], kernel[1], dilations[1], -pads[1], w + pads[3]
            )
            win = x[:, :, rows][:, :, :, cols]
            count = len(prow) * len(pcol) if count_include_pad else len(rows) * len(cols)
            if kind == "max":
                out[:, :, oy, ox] = win.max(axis=(2, 3))
            elif kind == "favg":
                out[:, :, oy, ox] = win.sum(axis=(2, 3)) / count
            else:
                total = (win.astype(np.int64) - qx.zero_point).sum(axis=(2, 3))
                m = F32(qx.scale) / (F32(qy.scale) * F32(count))
                v = np.rint(total.astype(F32) * m) + F32(qy.zero_point)
                info = np.iinfo(qy.dtype)
                out[:, :, oy, ox] = np.clip(v, info.min, info.max)
    return out


POOL_CASES = [
    # x shape, kernel, strides, pads, dilations
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((2, 3, 8, 6), (2, 3), (2, 1), (0, 1, 1, 2), (1, 1)),
    ((1, 2, 9, 10), (3, 2), (3, 2), (2, 1, 0, 1), (2, 3)),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((1, 2, 5, 5), (5, 5), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((1, 4, 6, 11), (3, 3), (3, 4), (2, 0, 2, 2), (1, 1)),
    ((1, 1, 2, 2), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dtype", QT)
def test_qmaxpool2d_matches_numpy(case, ceil_mode, dtype):
    x_shape, kernel, strides, pads, dilations = case
    rng = np.random.default_rng(sum(x_shape))
    x = rand_q(rng, x_shape, dtype)
    y = K.qmaxpool2d(x, kernel, strides, pads, dilations, ceil_mode)
    ref = pool_ref(x, "max", kernel, strides, pads, dilations, ceil_mode)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ref)
    # padding never wins, even against the lowest code
    low = np.full(x_shape, np.iinfo(dtype).min, dtype)
    assert np.all(K.qmaxpool2d(low, kernel, strides, pads, dilations, ceil_mode) == low.min())


@pytest.mark.parametrize("case", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_qavgpool2d_matches_numpy(case, ceil_mode, count_include_pad):
    x_shape, kernel, strides, pads, dilations = case
    rng = np.random.default_rng(sum(x_shape) + 1)
    for tx, ty in ((np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)):
        x = rand_q(rng, x_shape, tx)
        qx = QParams(0.05, int(rand_q(rng, (), tx)), np.dtype(tx))
        qy = QParams(0.04, int(rand_q(rng, (), ty)), np.dtype(ty))
        y = K.qavgpool2d(
            x, qx, qy, kernel, strides, pads, ceil_mode, count_include_pad, dilations=dilations
        )
        ref = pool_ref(
            x, "avg", kernel, strides, pads, dilations, ceil_mode, count_include_pad, qx, qy
        )
        assert y.dtype == ty
        np.testing.assert_array_equal(y, ref)


def test_qavgpool_ties_and_saturation():
    x = np.array([[[[1, 2], [3, 4]]]], np.uint8)  # mean 2.5 -> 2 (even), then 3.5 -> 4
    q = QParams(1.0, 0, np.dtype(np.uint8))
    assert K.qavgpool2d(x, q, q, (2, 2), (1, 1), (0, 0, 0, 0))[0, 0, 0, 0] == 2
    x = np.array([[[[2, 3], [4, 5]]]], np.uint8)
    assert K.qavgpool2d(x, q, q, (2, 2), (1, 1), (0, 0, 0, 0))[0, 0, 0, 0] == 4
    big = np.full((1, 1, 3, 3), 255, np.uint8)
    y = K.qavgpool2d(big, q, QParams(0.5, 0, np.dtype(np.int8)), (3, 3), (1, 1), (0, 0, 0, 0))
    assert y[0, 0, 0, 0] == 127


@pytest.mark.parametrize("tx,ty", [(np.uint8, np.uint8), (np.int8, np.uint8), (np.int8, np.int8)])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 7, 7), (1, 5, 1, 300), (1, 2, 3)])
def test_qglobalavgpool_matches_numpy(tx, ty, shape):
    rng = np.random.default_rng(10)
    x = rand_q(rng, shape, tx)
    qx = QParams(0.03, int(rand_q(rng, (), tx)), np.dtype(tx))
    qy = QParams(0.02, int(rand_q(rng, (), ty)), np.dtype(ty))
    y = K.qglobalavgpool(x, qx, qy)
    assert y.shape == (*shape[:2], *([1] * (len(shape) - 2))) and y.dtype == ty
    total = (x.astype(np.int64) - qx.zero_point).reshape(shape[0], shape[1], -1).sum(-1)
    hw = int(np.prod(shape[2:]))
    m = F32(qx.scale) / (F32(qy.scale) * F32(hw))
    info = np.iinfo(ty)
    ref = np.clip(np.rint(total.astype(F32) * m) + F32(qy.zero_point), info.min, info.max)
    np.testing.assert_array_equal(y.reshape(ref.shape), ref)


@pytest.mark.parametrize(
    "n,k,s,p0,p1,d",
    [
        (7, 3, 2, 1, 1, 1),
        (8, 3, 2, 0, 0, 1),
        (6, 2, 2, 0, 1, 1),
        (10, 3, 3, 2, 0, 2),
        (5, 5, 3, 0, 0, 1),
        (9, 4, 4, 3, 3, 1),
        (1, 1, 1, 0, 0, 1),
        (4, 3, 3, 0, 2, 1),
    ],
)
def test_pool_output_size(n, k, s, p0, p1, d):
    for ceil_mode in (False, True):
        assert K.pool_output_size(n, k, s, p0, p1, d, ceil_mode) == ref_pool_size(
            n, k, s, p0, p1, d, ceil_mode
        )
    assert K.pool_output_size(2, 5, 1, 0, 0, 1, False) <= 0
    with pytest.raises(pyrt.KernelError):
        K.pool_output_size(5, 0, 1, 0, 0, 1, False)


POOL_ORT_CASES = [
    # x shape, kernel, strides, pads (top, left, bottom, right), dilations
    ((1, 2, 7, 8), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((1, 2, 8, 7), (2, 2), (2, 2), (0, 0, 1, 1), (1, 1)),
    ((1, 3, 10, 9), (3, 2), (3, 2), (1, 0, 2, 1), (1, 1)),
    ((1, 2, 9, 9), (2, 3), (2, 3), (1, 2, 1, 0), (2, 2)),
    ((2, 1, 6, 6), (4, 4), (3, 3), (2, 2, 3, 3), (1, 1)),
]


def _ort_pool(op, x, kernel, strides, pads, dilations, ceil_mode, **extra):
    attrs = {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "pads": [pads[0], pads[1], pads[2], pads[3]],
        "ceil_mode": int(ceil_mode),
        **extra,
    }
    if dilations != (1, 1):
        attrs["dilations"] = list(dilations)
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    return run_ort([node], {"x": x}, ["y"], opset=19)[0]


@pytest.mark.parametrize("case", POOL_ORT_CASES, ids=[str(i) for i in range(len(POOL_ORT_CASES))])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pools_match_onnxruntime(case, ceil_mode):
    x_shape, kernel, strides, pads, dilations = case
    rng = np.random.default_rng(11)
    for dtype in QT:
        x = rand_q(rng, x_shape, dtype)
        ref = _ort_pool("MaxPool", x, kernel, strides, pads, dilations, ceil_mode)
        y = K.qmaxpool2d(x, kernel, strides, pads, dilations, ceil_mode)
        assert y.shape == ref.shape
        np.testing.assert_array_equal(y, ref)
    # AveragePool geometry (window clipping, counts) on floats: onnxruntime vs the
    # numpy reference the int8 kernel is held to exactly
    xf = rng.standard_normal(x_shape).astype(F32)
    for cip in (0, 1):
        ref = _ort_pool(
            "AveragePool", xf, kernel, strides, pads, dilations, ceil_mode, count_include_pad=cip
        )
        mine = pool_ref(xf, "favg", kernel, strides, pads, dilations, ceil_mode, bool(cip))
        assert mine.shape == ref.shape
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-6)


def test_qavgpool_close_to_onnxruntime_qlinear():
    rng = np.random.default_rng(12)
    x = rand_q(rng, (1, 4, 9, 9), np.uint8)
    node = helper.make_node(
        "QLinearAveragePool",
        ["x", "sx", "zx", "sy", "zy"],
        ["y"],
        domain="com.microsoft",
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        count_include_pad=0,
    )
    inits = [
        ("sx", np.array(0.05, F32)),
        ("zx", np.array(120, np.uint8)),
        ("sy", np.array(0.03, F32)),
        ("zy", np.array(100, np.uint8)),
    ]
    (ref,) = run_ort([node], {"x": x}, ["y"], inits, opset=13, ms=True)
    y = K.qavgpool2d(
        x,
        QParams(0.05, 120, np.dtype(np.uint8)),
        QParams(0.03, 100, np.dtype(np.uint8)),
        (3, 3),
        (2, 2),
        (1, 1, 1, 1),
    )
    assert y.shape == ref.shape
    assert np.max(np.abs(y.astype(np.int32) - ref.astype(np.int32))) <= 1


def test_pools_reject_bad_arguments():
    x = np.zeros((1, 1, 4, 4), np.uint8)
    q = QParams(0.1, 0, np.dtype(np.uint8))
    # a window lying entirely in the padding (pads >= kernel) has no value
    with pytest.raises(pyrt.KernelError, match="padding"):
        K.qmaxpool2d(x, (2, 2), (1, 1), (2, 0, 0, 0))
    with pytest.raises(pyrt.KernelError, match="padding"):
        K.qavgpool2d(x, q, q, (2, 2), (1, 1), (0, 0, 0, 3), count_include_pad=True)
    with pytest.raises(pyrt.KernelError):
        K.qmaxpool2d(x, (5, 5), (1, 1), (0, 0, 0, 0))  # no output
    with pytest.raises(pyrt.KernelError):
        K.qmaxpool2d(x, (0, 2), (1, 1), (0, 0, 0, 0))
    with pytest.raises(pyrt.KernelError):
        K.qmaxpool2d(x, (2, 2), (1, 1), (0, 0, 0))
    with pytest.raises(pyrt.KernelError):
        K.qmaxpool2d(x.astype(np.int32), (2, 2), (1, 1), (0, 0, 0, 0))
    with pytest.raises(pyrt.KernelError):
        K.qmaxpool2d(x[0], (2, 2), (1, 1), (0, 0, 0, 0))
    with pytest.raises(pyrt.KernelError):
        K.qavgpool2d(x.astype(np.int8), q, q, (2, 2), (1, 1), (0, 0, 0, 0))
    with pytest.raises(pyrt.KernelError, match="overflows"):
        K.qavgpool2d(
            x, QParams(1e30, 0, q.dtype), QParams(1e-30, 0, q.dtype), (2, 2), (1, 1), (0,) * 4
        )
    with pytest.raises(pyrt.KernelError, match="scale"):
        K.qglobalavgpool(x, q, QParams(0.0, 0, q.dtype))
    with pytest.raises(pyrt.KernelError):
        K.qglobalavgpool(x[0, 0], q, q)
    # through lib: NULLs, and an output size the caller got wrong
    s = K._pool_shape(x, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False)
    y = np.empty((1, 1, 3, 3), np.uint8)
    xp, yp = _kernels.ptr(x), _kernels.ptr(y)
    assert lib.pyrt_qmaxpool2d(CTX, ffi.NULL, xp, lib.PYRT_U8, yp) == lib.PYRT_ERR_ARG
    assert lib.pyrt_qmaxpool2d(CTX, s, ffi.NULL, lib.PYRT_U8, yp) == lib.PYRT_ERR_ARG
    assert lib.pyrt_qmaxpool2d(CTX, s, xp, lib.PYRT_S32, yp) == lib.PYRT_ERR_ARG
    assert lib.pyrt_qavgpool2d(CTX, s, xp, ffi.NULL, yp, K._qparams(q)) == lib.PYRT_ERR_ARG
    assert (
        lib.pyrt_qglobalavgpool(CTX, 0, 4, xp, K._qparams(q), yp, K._qparams(q)) == lib.PYRT_ERR_ARG
    )
    s.out_h = 3  # the third window would start past the input
    assert lib.pyrt_qmaxpool2d(CTX, s, xp, lib.PYRT_U8, yp) == lib.PYRT_ERR_SHAPE
    assert "padd" in last_error()


def _dynamic_reference(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """DynamicQuantizeLinear as ONNX defines it, in float32 numpy."""
    f32 = np.float32
    finite = x[~np.isnan(x)]
    lo = min(f32(0), finite.min()) if finite.size else f32(0)
    hi = max(f32(0), finite.max()) if finite.size else f32(0)
    scale = f32((hi - lo) / f32(255)) if hi > lo else f32(1)
    zero = np.uint8(np.rint(np.clip(f32(0) - lo / scale, f32(0), f32(255))))
    q = np.rint(x / scale) + f32(zero)
    q = np.where(np.isnan(q), f32(zero), np.clip(q, 0, 255))
    return q.astype(np.uint8), scale, zero


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("n", [1, 7, 8, 15, 16, 17, 31, 32, 33, 1000, 4099])
@pytest.mark.parametrize("kind", ["mixed", "positive", "negative", "zeros", "nan"])
def test_dynamic_quantize_matches_onnx_and_onnxruntime(isa, n, kind):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    x = {"positive": np.abs(x), "negative": -np.abs(x), "zeros": 0 * x}.get(kind, x)
    if kind == "nan":
        x[:: max(1, n // 3)] = np.nan
    y, scale, zero = K.dynamic_quantize(x, _kernels.Context(isa))
    want = _dynamic_reference(x)
    np.testing.assert_array_equal(y, want[0])
    assert (scale, zero) == want[1:] and scale.dtype == np.float32 and zero.dtype == np.uint8
    if kind != "nan":  # onnxruntime lets a NaN into the range
        node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
        graph = helper.make_graph(
            [node],
            "dql",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [n])],
            [
                helper.make_tensor_value_info(v, t, None)
                for v, t in zip("ysz", (onnx.TensorProto.UINT8, onnx.TensorProto.FLOAT, 2))
            ],
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        theirs = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})
        np.testing.assert_array_equal(y, theirs[0])
        assert scale == theirs[1] and zero == theirs[2]


def test_dynamic_quantize_refuses_an_overflowing_range():
    with pytest.raises(pyrt.KernelError, match="overflows float"):
        K.dynamic_quantize(np.array([-3e38, 3e38], np.float32))
