"""SIMD elementwise kernels and NHWC pools: bit-exact against the scalar table.

Every SIMD table (`_kernels.isa_available()`) runs quantize / dequantize,
int8 Add / Mul (flat and broadcast) and the pools on sizes around its vector
widths (16, 32, 64 lanes) with tails, extreme zero points and scales,
saturation, ties and NaN / Inf, and must equal the scalar reference bit for
bit. NHWC pools must equal the NCHW ones transposed (and numpy / onnxruntime
through them); thread counts 1, 2 and 3 must give identical results.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import pyrt
from pyrt import _kernels
from pyrt import kernels as K
from pyrt._kernels import ffi, lib
from pyrt.kernels import QParams

F32 = np.float32
QT = [np.uint8, np.int8]
SIMD = [isa for isa in _kernels.isa_available() if isa != "scalar"]
SCALAR = _kernels.Context("scalar")
CONTEXTS = {isa: _kernels.Context(isa) for isa in _kernels.isa_available()}
THREADED = {
    (isa, n): _kernels.Context(isa, threads=n) for isa in _kernels.isa_available() for n in (2, 3)
}
SIZES = [1, 7, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 127, 129, 300]
CHANNELS = [1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 130]

every_simd = pytest.mark.parametrize("isa", SIMD or ["scalar"])


def rand_q(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def qparams(dtype, scale: float, zero: int) -> QParams:
    return QParams(scale, zero, np.dtype(dtype))


def extreme_zeros(dtype) -> list[int]:
    info = np.iinfo(dtype)
    return [info.min, 0, info.max]


def same(isa: str, fn, *args, **kwargs):
    """fn(*args, ctx=...) on `isa` equals it on the scalar table, bit for bit; returns it."""
    ref = fn(*args, ctx=SCALAR, **kwargs)
    got = fn(*args, ctx=CONTEXTS[isa], **kwargs)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    if ref.dtype == F32:
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32))
    else:
        np.testing.assert_array_equal(got, ref)
    return ref


def same_threads(isa: str, fn, *args, **kwargs):
    """fn(*args, ctx=...) gives the same result on 1, 2 and 3 threads of `isa`."""
    one = fn(*args, ctx=CONTEXTS[isa], **kwargs)
    for n in (2, 3):
        np.testing.assert_array_equal(fn(*args, ctx=THREADED[(isa, n)], **kwargs), one)


# ---- QuantizeLinear / DequantizeLinear --------------------------------------------


def special_floats(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Normal values, exact ties (k + 0.5) * scale, +-0, NaN, +-Inf, huge, denormal."""
    with np.errstate(over="ignore"):  # huge scales: Inf inputs too
        x = (rng.standard_normal(n) * 100 * scale).astype(F32)
    picks = [
        np.nan,
        np.inf,
        -np.inf,
        -0.0,
        0.0,
        3.4e38,
        -3.4e38,
        1e-45,
        0.5 * scale,
        1.5 * scale,
        2.5 * scale,
        -0.5 * scale,
        -1.5 * scale,
        127.5 * scale,
        -128.5 * scale,
        255.5 * scale,
    ]
    at = rng.integers(0, n, min(n, 3 * len(picks)))
    with np.errstate(over="ignore"):
        x[at] = np.resize(np.array(picks, F32), at.size)
    return x


@every_simd
@pytest.mark.parametrize("dtype", QT)
def test_quantize_per_tensor_bit_exact(isa, dtype):
    rng = np.random.default_rng(1)
    for n in SIZES:
        for scale in (0.0123, 1.0, 1e-30, 3e38):
            for zp in extreme_zeros(dtype):
                x = special_floats(rng, n, scale)
                zero = np.array(zp, dtype)
                y = same(isa, K.quantize, x, np.array(scale, F32), zero)
                assert np.all(y[np.isnan(x)] == zp)


def near_ties(scale: float) -> np.ndarray:
    """Floats within a few ulps of (k + 0.5) * scale: x / scale lands on either side
    of a tie, so x * (1 / scale) or a fused step would round some differently."""
    k = np.arange(-140, 140, dtype=np.float64) + 0.5
    base = (k * scale).astype(F32)
    steps = [base]
    for _ in range(3):
        steps = [np.nextafter(steps[0], F32(-np.inf)), *steps, np.nextafter(steps[-1], F32(np.inf))]
    return np.concatenate(steps)


@every_simd
@pytest.mark.parametrize("dtype", QT)
def test_quantize_near_ties_bit_exact(isa, dtype):
    for scale in (0.0123, 0.1, 0.3, 1.7, 0.05 / 3):
        x = near_ties(scale)
        s = np.array(scale, F32)
        y = same(isa, K.quantize, x, s, np.array(0, dtype))
        want = np.clip(np.rint(x / F32(scale)), np.iinfo(dtype).min, np.iinfo(dtype).max)
        np.testing.assert_array_equal(y, want.astype(dtype))


@every_simd
@pytest.mark.parametrize("dtype", QT)
def test_quantize_dequantize_per_axis_and_blocked(isa, dtype):
    rng = np.random.default_rng(2)
    for shape, axis, block, scale_shape in (
        ((2, 5, 37), 1, 0, (5,)),  # runs of 37 with one scale
        ((3, 67), 0, 0, (3,)),
        ((4, 33), 1, 8, (4, 5)),  # blocked: per-element parameters
        ((2, 3, 4, 17), -1, 0, (17,)),  # last axis: runs of 1
    ):
        x = special_floats(rng, int(np.prod(shape)), 0.1).reshape(shape)
        scale = rng.uniform(0.01, 0.5, scale_shape).astype(F32)
        zero = rand_q(rng, scale_shape, dtype)
        zero.flat[0] = np.iinfo(dtype).max
        q = same(isa, K.quantize, x, scale, zero, axis, block)
        same(isa, K.dequantize, q, scale, zero, axis, block)


@every_simd
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32])
def test_dequantize_bit_exact(isa, dtype):
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    for n in SIZES:
        x = rng.integers(info.min, info.max, n, endpoint=True).astype(dtype)
        x[:2] = [info.min, info.max][: min(n, 2)]
        for zp in (info.min, 0, info.max):
            for scale in (0.037, 1e-38, 3e38):
                zero = np.array(zp, dtype)
                same(isa, K.dequantize, x, np.array(scale, F32), zero)


@pytest.mark.parametrize("isa", _kernels.isa_available())
def test_quantize_threads_identical(isa):
    rng = np.random.default_rng(4)
    x = special_floats(rng, 100_003, 0.05)
    scale, zero = np.array(0.05, F32), np.array(3, np.int8)
    same_threads(isa, K.quantize, x, scale, zero)
    q = K.quantize(x, scale, zero)
    same_threads(isa, K.dequantize, q, scale, zero)
    xa = x[:99_990].reshape(3, 33_330)  # per-axis rows longer than a task
    sa, za = np.array([0.1, 0.2, 0.3], F32), np.array([0, 255, 7], np.uint8)
    same_threads(isa, K.quantize, xa, sa, za, axis=0)
    xb = x[:100_000].reshape(50_000, 2)  # many short rows
    same_threads(isa, K.quantize, xb, sa[:2], za[:2], axis=1)


# ---- int8 Add / Mul --------------------------------------------------------------


def qbinary_ref(op, a, qa, b, qb, qy, qmin, qmax):
    """qbinary_scalar.c's float32 arithmetic replayed with numpy, b broadcast."""
    sa, sb, sy = F32(qa.scale), F32(qb.scale), F32(qy.scale)
    va = a.astype(F32) - F32(qa.zero_point)
    vb = b.astype(F32) - F32(qb.zero_point)
    with np.errstate(over="ignore"):
        v = va * (sa / sy) + vb * (sb / sy) if op == "add" else (va * vb) * (sa * sb / sy)
    return np.clip(np.rint(v) + F32(qy.zero_point), qmin, qmax).astype(qy.dtype)


BINARY_SCALES = [(0.02, 0.05, 0.07), (0.5, 0.5, 1.0), (1.0, 1.0, 1e-3), (1e-3, 2e-3, 1.0)]


@every_simd
@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("ta,tb,ty", [(np.uint8, np.uint8, np.uint8), (np.int8, np.uint8, np.int8)])
def test_qbinary_flat_bit_exact(isa, op, ta, tb, ty):
    rng = np.random.default_rng(5)
    for n in SIZES:
        a, b = rand_q(rng, n, ta), rand_q(rng, n, tb)
        for i, (sa, sb, sy) in enumerate(BINARY_SCALES):
            za, zb, zy = (extreme_zeros(t)[(i + k) % 3] for k, t in enumerate((ta, tb, ty)))
            qa, qb, qy = qparams(ta, sa, za), qparams(tb, sb, zb), qparams(ty, sy, zy)
            info = np.iinfo(ty)
            for lo, hi in ((info.min, info.max), (int(zy) // 2, int(info.max) - 3)):
                y = same(isa, K.qbinary, op, a, qa, b, qb, qy, lo, hi)
                np.testing.assert_array_equal(y, qbinary_ref(op, a, qa, b, qb, qy, lo, hi))


@every_simd
@pytest.mark.parametrize("op", ["add", "mul"])
def test_qbinary_every_code_pair(isa, op):
    """All 65536 (a, b) code pairs under several scale triples: a fused multiply-add or
    another order of the float steps would round some pair differently."""
    a = np.repeat(np.arange(256, dtype=np.uint8), 256)
    b = np.tile(np.arange(256, dtype=np.uint8), 256).view(np.int8)
    rng = np.random.default_rng(13)
    # add: ma ~ 100000.375 and mb = 100000 make va * ma and vb * mb large and,
    # for va = -vb, cancelling to a small sum that the products' roundings decide
    triples = [(1.0000037, 1.0, 1e-5), (0.5000013, 0.5, 1e-5)]
    for _ in range(3):
        sa, sb = rng.uniform(0.001, 0.1, 2)
        sy = rng.uniform(0.05, 0.5) if op == "add" else rng.uniform(0.01, 3) * sa * sb * 100
        triples.append((sa, sb, sy))
    for sa, sb, sy in triples:
        qa, qb = qparams(np.uint8, sa, int(rng.integers(0, 256))), qparams(np.int8, sb, -7)
        qy = qparams(np.int8, sy, int(rng.integers(-128, 128)))
        y = same(isa, K.qbinary, op, a, qa, b, qb, qy)
        np.testing.assert_array_equal(y, qbinary_ref(op, a, qa, b, qb, qy, -128, 127))


def test_qbinary_ties_round_to_even_everywhere():
    q = qparams(np.int8, 0.5, 0)
    a = np.tile(np.array([1, 3, -1, -3, 5, -5, 127, -128], np.int8), 9)
    b = np.zeros_like(a)
    for isa in _kernels.isa_available():
        y = K.qbinary("add", a, q, b, q, qparams(np.int8, 1.0, 0), ctx=CONTEXTS[isa])
        np.testing.assert_array_equal(y[:8], [0, 2, 0, -2, 2, -2, 64, -64])


BROADCASTS = [
    # a shape, b shape: SE (NHWC and NCHW), per-channel vector, scalar, general
    ((2, 5, 7, 33), (2, 1, 1, 33)),
    ((1, 4, 4, 64), (1, 1, 1, 64)),
    ((2, 17, 5, 5), (2, 17, 1, 1)),
    ((3, 65), (65,)),
    ((129,), ()),
    ((2, 3, 40), (1,)),
    ((4, 1, 7), (4, 3, 1)),  # both broadcast: expanded in Python
    ((3, 1, 5), (3, 4, 5)),  # broadcast first operand
    ((2, 3, 4, 5), (3, 1, 5)),  # two broadcast runs: expanded in Python
]


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("op", ["add", "mul"])
@pytest.mark.parametrize("sa,sb", BROADCASTS)
def test_qbinary_broadcast(isa, op, sa, sb):
    rng = np.random.default_rng(6)
    a, b = rand_q(rng, sa, np.uint8), rand_q(rng, sb, np.int8)
    qa, qb = qparams(np.uint8, 0.03, 255), qparams(np.int8, 0.04, -128)
    qy = qparams(np.uint8, 0.05 if op == "add" else 0.2, 0)
    y = same(isa, K.qbinary, op, a, qa, b, qb, qy, 0, 250)
    ea, eb = np.broadcast_arrays(a, b)
    np.testing.assert_array_equal(y, qbinary_ref(op, ea, qa, eb, qb, qy, 0, 250))


def test_broadcast_split():
    assert K.broadcast_split((2, 5, 7, 33), (2, 1, 1, 33)) == (2, 35, 33)
    assert K.broadcast_split((2, 17, 5, 5), (2, 17, 1, 1)) == (34, 25, 1)
    assert K.broadcast_split((3, 65), (65,)) == (1, 3, 65)
    assert K.broadcast_split((4, 6), ()) == (1, 24, 1)
    assert K.broadcast_split((4, 6), (4, 6)) == (24, 1, 1)
    assert K.broadcast_split((2, 1, 3), (1, 1, 3)) == (1, 2, 3)
    assert K.broadcast_split((2, 3, 4), (3, 1)) is None
    assert K.broadcast_split((2, 3), (1, 2, 3)) is None


@pytest.mark.parametrize("isa", _kernels.isa_available())
def test_qbinary_threads_identical(isa):
    rng = np.random.default_rng(7)
    qa, qb, qy = qparams(np.uint8, 0.02, 9), qparams(np.uint8, 0.03, 250), qparams(np.int8, 0.04, 1)
    for sa, sb in (
        ((100_001,), (100_001,)),
        ((2, 56, 56, 24), (2, 1, 1, 24)),
        ((3, 40_000), (3, 1)),
    ):
        a, b = rand_q(rng, sa, np.uint8), rand_q(rng, sb, np.uint8)
        for op in ("add", "mul"):
            same_threads(isa, K.qbinary, op, a, qa, b, qb, qy)


def test_qbinary_broadcast_rejects_bad_arguments():
    q = K._qparams(qparams(np.uint8, 0.1, 0))
    a = np.ones(8, np.uint8)
    p = _kernels.ptr(a)
    ctx = SCALAR.ptr
    for outer, middle, inner in ((0, 1, 1), (1, -1, 8), (1, 1, 0), (2**40, 2**40, 2**40)):
        assert lib.pyrt_qbinary_broadcast(
            ctx, lib.PYRT_ADD, outer, middle, inner, p, q, p, q, p, q, 0, 255
        ) == (lib.PYRT_ERR_ARG)
        assert "outer" in ffi.string(lib.pyrt_last_error()).decode()
    assert lib.pyrt_qbinary_broadcast(ctx, 5, 1, 2, 4, p, q, p, q, p, q, 0, 255) == lib.PYRT_ERR_ARG
    assert (
        lib.pyrt_qbinary_broadcast(ffi.NULL, 0, 1, 2, 4, p, q, p, q, p, q, 0, 255)
        == lib.PYRT_ERR_ARG
    )


# ---- pools: NHWC against NCHW, SIMD against scalar ---------------------------------


def nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


POOLS = [
    # input [N, C, H, W], kernel, strides, pads (top, left, bottom, right), dilations
    ((1, 1, 7, 7), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((2, 3, 8, 6), (2, 3), (2, 1), (0, 1, 1, 2), (1, 1)),
    ((1, 2, 9, 10), (3, 2), (3, 2), (2, 1, 0, 1), (2, 3)),
    ((1, 17, 5, 5), (5, 5), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((1, 4, 6, 11), (3, 3), (3, 4), (2, 0, 2, 2), (1, 1)),
    ((1, 1, 2, 2), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((1, 5, 18, 19), (16, 17), (1, 1), (0, 1, 0, 0), (1, 1)),  # > 255 taps: int16 sums flush
    ((1, 2, 3, 2100), (2, 3), (1, 1), (1, 1, 0, 1), (1, 1)),  # NCHW rows in two column chunks
    ((1, 2, 2, 2100), (1, 1030), (1, 16), (0, 5, 0, 0), (1, 2)),  # a span past NCHW's chunks
]


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("dtype", QT)
def test_maxpool_nhwc_equals_nchw(isa, dtype):
    rng = np.random.default_rng(8)
    for shape, kernel, strides, pads, dil in POOLS:
        for channels in (shape[1], *CHANNELS):
            x = rand_q(rng, (shape[0], channels, *shape[2:]), dtype)
            for ceil_mode in (False, True):
                args = (kernel, strides, pads, dil, ceil_mode)
                ref = K.qmaxpool2d(x, *args, ctx=SCALAR)
                got = K.qmaxpool2d(nhwc(x), *args, ctx=CONTEXTS[isa], layout="nhwc")
                np.testing.assert_array_equal(got, nhwc(ref))
                np.testing.assert_array_equal(K.qmaxpool2d(x, *args, ctx=CONTEXTS[isa]), ref)
            low = np.full(x.shape, np.iinfo(dtype).min, dtype)  # padding never wins
            got = K.qmaxpool2d(nhwc(low), *args, ctx=CONTEXTS[isa], layout="nhwc")
            assert np.all(got == low.min())


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("tx,ty", [(np.uint8, np.uint8), (np.int8, np.uint8), (np.uint8, np.int8)])
def test_avgpool_nhwc_equals_nchw(isa, tx, ty):
    rng = np.random.default_rng(9)
    for i, (shape, kernel, strides, pads, dil) in enumerate(POOLS):
        for channels in (shape[1], *CHANNELS[i::3]):
            x = rand_q(rng, (shape[0], channels, *shape[2:]), tx)
            qx = qparams(tx, 0.05, extreme_zeros(tx)[i % 3])
            qy = qparams(ty, (0.04, 0.001, 1.0)[i % 3], extreme_zeros(ty)[(i + 1) % 3])
            for ceil_mode in (False, True):
                for cip in (False, True):
                    args = (qx, qy, kernel, strides, pads, ceil_mode, cip, dil)
                    ref = K.qavgpool2d(x, *args, ctx=SCALAR)
                    got = K.qavgpool2d(nhwc(x), *args, ctx=CONTEXTS[isa], layout="nhwc")
                    np.testing.assert_array_equal(got, nhwc(ref))


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("tx,ty", [(np.uint8, np.uint8), (np.int8, np.int8), (np.int8, np.uint8)])
def test_globalavgpool_nhwc_nchw_bit_exact(isa, tx, ty):
    rng = np.random.default_rng(10)
    for hw in ((1, 1), (7, 7), (1, 33), (8, 8), (9, 15), (17, 31)):
        for channels in CHANNELS:
            x = rand_q(rng, (2, channels, *hw), tx)
            for zx, zy, sy in ((extreme_zeros(tx)[0], 0, 0.02), (extreme_zeros(tx)[2], 3, 1e-3)):
                qx, qy = qparams(tx, 0.03, zx), qparams(ty, sy, extreme_zeros(ty)[1] + zy)
                ref = same(isa, K.qglobalavgpool, x, qx, qy)
                got = K.qglobalavgpool(nhwc(x), qx, qy, ctx=CONTEXTS[isa], layout="nhwc")
                assert got.shape == (2, 1, 1, channels)
                np.testing.assert_array_equal(got, nhwc(ref))
                # and the numpy statement of the definition
                total = (x.astype(np.int64) - zx).reshape(2, channels, -1).sum(-1)
                m = F32(qx.scale) / (F32(qy.scale) * F32(hw[0] * hw[1]))
                info = np.iinfo(ty)
                want = np.rint(total.astype(F32) * m) + F32(qy.zero_point)
                want = np.clip(want, info.min, info.max)
                np.testing.assert_array_equal(ref.reshape(want.shape), want)


@every_simd
@pytest.mark.parametrize("dtype", QT)
def test_avgpools_extreme_codes_over_many_taps(isa, dtype):
    """Windows of 272 and 527 taps of the extreme codes: the largest partial sums."""
    info = np.iinfo(dtype)
    qx, qy = qparams(dtype, 0.05, 0), qparams(np.uint8, 0.04, 0)
    for code in (info.min, info.max):
        x = np.full((1, 37, 18, 31), code, dtype)
        args = (qx, qy, (16, 17), (1, 7), (0, 0, 0, 0))
        same(isa, K.qavgpool2d, nhwc(x), *args, layout="nhwc")
        same(isa, K.qglobalavgpool, nhwc(x), qx, qy, layout="nhwc")
        same(isa, K.qglobalavgpool, x, qx, qy)


@pytest.mark.parametrize("isa", _kernels.isa_available())
def test_pools_threads_identical(isa):
    rng = np.random.default_rng(11)
    x = rand_q(rng, (2, 64, 40, 40), np.uint8)  # ResNet-stem-like, small
    xh = nhwc(x)
    qx, qy = qparams(np.uint8, 0.05, 7), qparams(np.uint8, 0.04, 3)
    for layout, t in (("nchw", x), ("nhwc", xh)):
        same_threads(isa, K.qmaxpool2d, t, (3, 3), (2, 2), (1, 1, 1, 1), layout=layout)
        same_threads(isa, K.qavgpool2d, t, qx, qy, (3, 3), (1, 1), (1, 1, 1, 1), layout=layout)
        same_threads(isa, K.qglobalavgpool, t, qx, qy, layout=layout)
    one = nhwc(rand_q(rng, (1, 1280, 10, 10), np.int8))  # one image: channel chunks
    q8 = qparams(np.int8, 0.05, -3)
    same_threads(isa, K.qglobalavgpool, one, q8, q8, layout="nhwc")


def _ort_qlinear(op: str, x: np.ndarray, qx: QParams, qy: QParams, **attrs) -> np.ndarray:
    import onnxruntime as ort

    node = helper.make_node(
        op, ["x", "sx", "zx", "sy", "zy"], ["y"], domain="com.microsoft", **attrs
    )
    inits = [
        helper.make_tensor("sx", 1, [], [qx.scale]),
        helper.make_tensor("zx", helper.np_dtype_to_tensor_dtype(qx.dtype), [], [qx.zero_point]),
        helper.make_tensor("sy", 1, [], [qy.scale]),
        helper.make_tensor("zy", helper.np_dtype_to_tensor_dtype(qy.dtype), [], [qy.zero_point]),
    ]
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)],
        [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(qy.dtype), None)],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 10
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["y"], {"x": x})[0]


def test_nhwc_pools_close_to_onnxruntime_channels_last():
    rng = np.random.default_rng(12)
    x = rand_q(rng, (1, 9, 9, 40), np.uint8)
    qx, qy = qparams(np.uint8, 0.05, 120), qparams(np.uint8, 0.03, 100)
    ref = _ort_qlinear(
        "QLinearAveragePool",
        x,
        qx,
        qy,
        kernel_shape=[3, 3],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        channels_last=1,
    )
    y = K.qavgpool2d(x, qx, qy, (3, 3), (2, 2), (1, 1, 1, 1), layout="nhwc")
    assert y.shape == ref.shape
    assert np.max(np.abs(y.astype(np.int32) - ref.astype(np.int32))) <= 1
    ref = _ort_qlinear("QLinearGlobalAveragePool", x, qx, qy, channels_last=1)
    y = K.qglobalavgpool(x, qx, qy, layout="nhwc")
    assert y.shape == ref.shape
    assert np.max(np.abs(y.astype(np.int32) - ref.astype(np.int32))) <= 1


def test_pools_reject_bad_layouts():
    x = np.zeros((1, 4, 4, 2), np.uint8)
    q = qparams(np.uint8, 0.1, 0)
    with pytest.raises(pyrt.KernelError, match="layout"):
        K.qmaxpool2d(x, (2, 2), (1, 1), (0, 0, 0, 0), layout="nchwc")
    with pytest.raises(pyrt.KernelError, match=r"\[N, H, W, C\]"):
        K.qavgpool2d(x[0], q, q, (2, 2), (1, 1), (0, 0, 0, 0), layout="nhwc")
    with pytest.raises(pyrt.KernelError, match="layout"):
        K.qglobalavgpool(x, q, q, layout="hwc")
    s = K._pool_shape(x, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), False, "nhwc")
    s.layout = 2
    y = np.empty(32, np.uint8)
    assert lib.pyrt_qmaxpool2d(SCALAR.ptr, s, _kernels.ptr(x), 0, _kernels.ptr(y)) == (
        lib.PYRT_ERR_ARG
    )
    assert "layout" in ffi.string(lib.pyrt_last_error()).decode()
    qp = K._qparams(q)
    xp, yp = _kernels.ptr(x), _kernels.ptr(y)
    for batch, hw, c in ((0, 16, 2), (1, 0, 2), (1, 16, 0), (2**40, 2**20, 2**20)):
        assert lib.pyrt_qglobalavgpool_nhwc(SCALAR.ptr, batch, hw, c, xp, qp, yp, qp) == (
            lib.PYRT_ERR_ARG
        )
    assert lib.pyrt_qglobalavgpool_nhwc(SCALAR.ptr, 1, 16, 2, xp, ffi.NULL, yp, qp) == (
        lib.PYRT_ERR_ARG
    )


# ---- plan entries (kernels/src/plan/plan.c) ----------------------------------------


def test_plan_entries_for_broadcast_qbinary_and_nhwc_global_pool():
    """pyrt_plan_qbinary_broadcast / pyrt_plan_qglobalavgpool_nhwc run the kernels on arena
    offsets exactly as the direct calls do."""
    rng = np.random.default_rng(14)
    a = rand_q(rng, (2, 7, 7, 40), np.uint8)
    b = rand_q(rng, (2, 1, 1, 40), np.uint8)
    qa, qb, qy = (
        qparams(np.uint8, 0.02, 9),
        qparams(np.uint8, 0.03, 200),
        qparams(np.uint8, 0.05, 4),
    )
    pa, pb, py = (K._qparams(q) for q in (qa, qb, qy))
    arena = np.zeros(a.size + b.size + a.size + 2 * 40, np.uint8)
    ao, bo, yo, go = 0, a.size, a.size + b.size, 2 * a.size + b.size
    arena[ao:bo], arena[bo:yo] = a.ravel(), b.ravel()
    plan = ffi.new("pyrt_plan **")
    _kernels.check(lib.pyrt_plan_create(plan))
    plan = ffi.gc(plan[0], lib.pyrt_plan_destroy)
    first = lib.pyrt_plan_qbinary_broadcast(
        plan, lib.PYRT_MUL, 2, 49, 40, ao, pa, bo, pb, yo, py, 0, 255
    )
    second = lib.pyrt_plan_qglobalavgpool_nhwc(plan, 2, 49, 40, yo, py, go, pa)
    assert (first, second) == (0, 1)
    for ctx in (SCALAR, *CONTEXTS.values(), *THREADED.values()):
        arena[yo:] = 0
        _kernels.check(lib.pyrt_plan_run(ctx.ptr, plan, 0, 2, _kernels.ptr(arena), ffi.NULL))
        y = K.qbinary("mul", a, qa, b, qb, qy, ctx=SCALAR)
        np.testing.assert_array_equal(arena[yo:go].reshape(a.shape), y)
        g = K.qglobalavgpool(y, qy, qa, ctx=SCALAR, layout="nhwc")
        np.testing.assert_array_equal(arena[go:].reshape(g.shape), g)
    assert lib.pyrt_plan_qglobalavgpool_nhwc(plan, 2, 49, 40, 0, ffi.NULL, 0, pa) < 0
    bad = lib.pyrt_plan_qbinary_broadcast(plan, 0, 0, 1, 1, ao, pa, bo, pb, yo, py, 0, 255)
    failed = ffi.new("int32_t *")
    assert lib.pyrt_plan_run(SCALAR.ptr, plan, bad, bad + 1, _kernels.ptr(arena), failed) == (
        lib.PYRT_ERR_ARG
    )
    assert failed[0] == bad


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_transpose_matches_numpy(isa, dtype):
    """The NCHW <-> NHWC transposes (batch x [rows, cols] -> [cols, rows]), including the
    few-row interleave of an image's channels."""
    rng = np.random.default_rng(3)
    for batch, rows, cols in [
        (1, 3, 50),
        (2, 3, 7),
        (2, 4, 33),
        (1, 1, 9),
        (1, 2, 5),
        (3, 5, 64),
        (1, 33, 70),
        (2, 64, 1),
    ]:
        x = rng.integers(0, 255, (batch, rows, cols)).astype(dtype)
        y = np.zeros((batch, cols, rows), dtype)
        rc = lib.pyrt_transpose(
            CONTEXTS[isa].ptr,
            x.itemsize,
            batch,
            rows,
            cols,
            ffi.cast("void *", x.ctypes.data),
            ffi.cast("void *", y.ctypes.data),
        )
        assert rc == lib.PYRT_OK
        np.testing.assert_array_equal(y, x.transpose(0, 2, 1))
