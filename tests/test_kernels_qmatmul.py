"""int8 GEMM, Conv2D (incl. depthwise) and requantize against plain numpy references.

Every test runs on every ISA this CPU offers, so SIMD tables are held to the
scalar reference bit for bit. Integer outputs must match exactly.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pyrt
from pyrt import _kernels
from pyrt import kernels as K
from pyrt._kernels import ffi, lib

pytestmark = pytest.mark.usefixtures("every_isa")  # conftest.py: each test on every ISA


# ---- references (numpy only, no kernel calls) ------------------------------------


def rand_q(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def wrap32(acc: np.ndarray) -> np.ndarray:
    """ONNX accumulates in int32: reduce an int64 result modulo 2**32."""
    return acc.astype(np.int64).astype(np.int32)


def stage_ref(acc: np.ndarray, out: K.OutputStage, channel_axis: int) -> np.ndarray:
    """The documented output stage on int32 acc; scale indexed along channel_axis."""
    dtype = np.dtype(out.dtype)
    if dtype == np.int32:
        return acc.astype(np.int32)
    scale = np.asarray(out.scale, np.float32).reshape(-1)
    shape = [1] * acc.ndim
    if scale.size > 1:
        shape[channel_axis] = scale.size
    scale = scale.reshape(shape)
    with np.errstate(over="ignore"):  # inf saturates, as in C
        v = acc.astype(np.float32) * scale  # float32 product, as in C
    if dtype == np.float32:
        return v
    info = np.iinfo(dtype)
    lo = info.min if out.qmin is None else out.qmin
    hi = info.max if out.qmax is None else out.qmax
    v = np.rint(v) + np.float32(out.zero_point)  # half to even
    return np.clip(v, lo, hi).astype(dtype)


def gemm_ref(w, w_zero, bias, x, x_zero) -> np.ndarray:
    wz = w.astype(np.int64) - np.asarray(w_zero, np.int64).reshape(-1, 1)
    acc = wz @ (x.astype(np.int64) - x_zero)
    if bias is not None:
        acc += np.asarray(bias, np.int64).reshape(-1, 1)
    return wrap32(acc)


def conv_ref(x, w, w_zero, bias, x_zero, groups, strides, dilations, pads) -> np.ndarray:
    """Direct NCHW convolution in int64 over an input padded with x_zero."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(
        x.astype(np.int64),
        [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])],
        constant_values=x_zero,
    )
    xp -= x_zero
    wz = w.astype(np.int64) - np.asarray(w_zero, np.int64).reshape(-1, 1, 1, 1)
    oh = (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    acc = np.zeros((n, o, oh, ow), np.int64)
    og = o // groups
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilations[0], kx * dilations[1]
            patch = xp[
                :,
                :,
                y0 : y0 + strides[0] * (oh - 1) + 1 : strides[0],
                x0 : x0 + strides[1] * (ow - 1) + 1 : strides[1],
            ]
            for g in range(groups):
                acc[:, g * og : (g + 1) * og] += np.einsum(
                    "nchw,oc->nohw",
                    patch[:, g * cg : (g + 1) * cg],
                    wz[g * og : (g + 1) * og, :, ky, kx],
                )
    if bias is not None:
        acc += np.asarray(bias, np.int64).reshape(1, -1, 1, 1)
    return wrap32(acc)


def zero_point(rng: np.random.Generator, dtype, kind: str):
    info = np.iinfo(dtype)
    if kind == "min":
        return int(info.min)
    if kind == "max":
        return int(info.max)
    return int(rng.integers(info.min, info.max + 1))


def random_stage(
    rng: np.random.Generator, out_dtype, channels: int, per_channel: bool, acc_span: float
):
    """An output stage whose scale maps typical accumulators onto ~the dtype range."""
    dtype = np.dtype(out_dtype)
    n = channels if per_channel else 1
    scale = (rng.uniform(0.5, 2.0, n) * 200.0 / max(acc_span, 1.0)).astype(np.float32)
    if dtype in (np.dtype(np.uint8), np.dtype(np.int8)):
        info = np.iinfo(dtype)
        zero = int(rng.integers(info.min, info.max + 1))
        lo = int(rng.integers(info.min, zero + 1))
        hi = int(rng.integers(zero, info.max + 1))
        return K.OutputStage(dtype, scale, zero, lo, hi)
    return K.OutputStage(dtype, scale)


# ---- requantize ------------------------------------------------------------------


def test_requantize_ties_round_half_to_even():
    acc = np.array([[1, 3, 5, 7, -1, -3, -5, 0, 2**23 + 1]], np.int32)
    y = K.requantize(acc, 1, K.OutputStage(np.int8, np.float32(0.5), 0))
    np.testing.assert_array_equal(y, [[0, 2, 2, 4, 0, -2, -2, 0, 127]])
    y = K.requantize(acc[:, :8], 1, K.OutputStage(np.uint8, np.float32(0.5), 10))
    np.testing.assert_array_equal(y, [[10, 12, 12, 14, 10, 8, 8, 10]])
    # ties before the zero point is added: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, -3.5 -> -4
    acc = np.array([[5, 7, -5, -7]], np.int32)
    y = K.requantize(acc, 1, K.OutputStage(np.int8, np.float32(0.5), -3))
    np.testing.assert_array_equal(y, [[-1, 1, -5, -7]])
    # per-channel ties: row 0 scale 0.25 (10 -> 2.5 -> 2, 6 -> 1.5 -> 2), row 1 scale 0.5
    acc = np.array([[10, 6, -10], [3, 5, -1]], np.int32)
    out = K.OutputStage(np.int8, np.array([0.25, 0.5], np.float32), 0)
    np.testing.assert_array_equal(K.requantize(acc, 2, out), [[2, 2, -2], [2, 2, 0]])


@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.int32, np.float32])
def test_requantize_per_channel_any_rank(out_dtype):
    rng = np.random.default_rng(11)
    acc = rng.integers(-(2**31), 2**31, (2, 3, 7)).astype(np.int32)
    acc[0, 0, :3] = [2**31 - 1, -(2**31), 0]
    out = random_stage(rng, out_dtype, 3, True, 2.0**31)
    y = K.requantize(acc, 3, out)
    assert y.shape == acc.shape and y.dtype == np.dtype(out_dtype)
    # rows are (n, c) pairs: channel of row r is r % 3, i.e. axis 1 here
    ref = stage_ref(acc, out, 1)
    np.testing.assert_array_equal(y, ref)
    # 2-D view with channels = rows % 3, and a 1-D (single row) acc
    y2 = K.requantize(acc.reshape(6, 7), 3, out)
    np.testing.assert_array_equal(y2, ref.reshape(6, 7))
    one = K.OutputStage(out_dtype, np.asarray(out.scale).reshape(-1)[0])
    np.testing.assert_array_equal(K.requantize(acc[0, 0], 1, one), stage_ref(acc[0, 0], one, 0))


def test_requantize_saturates_extremes_without_ub():
    acc = np.array([[2**31 - 1, -(2**31), 1, -1]], np.int32)
    for scale in (np.float32(3e38), np.float32(1.0), np.float32(1e-30)):
        for dtype in (np.uint8, np.int8):
            out = K.OutputStage(dtype, scale, 7 if dtype == np.uint8 else -7)
            np.testing.assert_array_equal(K.requantize(acc, 1, out), stage_ref(acc, out, 0))
    # fused ReLU6-style clamp
    out = K.OutputStage(np.uint8, np.float32(1.0), 10, 10, 70)
    np.testing.assert_array_equal(K.requantize(acc, 1, out), [[70, 10, 11, 10]])


def test_requantize_empty_and_bad_arguments():
    y = K.requantize(np.zeros((0, 4), np.int32), 2, K.OutputStage(np.uint8, 0.5))
    assert y.shape == (0, 4) and y.dtype == np.uint8
    acc = np.zeros((2, 2), np.int32)
    with pytest.raises(pyrt.KernelError, match="int32"):
        K.requantize(acc.astype(np.int64), 1, K.OutputStage(np.uint8, 0.5))
    with pytest.raises(pyrt.KernelError, match="scale"):
        K.requantize(acc, 1, K.OutputStage(np.uint8, 0.0))
    with pytest.raises(pyrt.KernelError, match="scale"):
        K.requantize(acc, 1, K.OutputStage(np.float32, np.inf))
    with pytest.raises(pyrt.KernelError, match="scale"):
        K.requantize(acc, 2, K.OutputStage(np.uint8, np.array([0.5, -1.0], np.float32)))
    with pytest.raises(pyrt.KernelError, match="2 values|expected 1 or 3"):
        K.requantize(acc, 3, K.OutputStage(np.uint8, np.ones(2, np.float32)))
    with pytest.raises(pyrt.KernelError, match="clamp"):
        K.requantize(acc, 1, K.OutputStage(np.int8, 0.5, 0, 5, 4))
    with pytest.raises(pyrt.KernelError, match="qmax"):
        K.requantize(acc, 1, K.OutputStage(np.int8, 0.5, 0, -128, 128))
    with pytest.raises(pyrt.KernelError, match="zero_point"):
        K.requantize(acc, 1, K.OutputStage(np.uint8, 0.5, -1))
    with pytest.raises(pyrt.KernelError, match="dtype"):
        K.requantize(acc, 1, K.OutputStage(np.float64, 0.5))
    with pytest.raises(pyrt.KernelError, match="channels"):
        K.requantize(acc, 0, K.OutputStage(np.uint8, 0.5))


# ---- QGemm -----------------------------------------------------------------------

SHAPES = [(1, 1, 1), (1, 129, 1), (3, 7, 5), (4, 128, 8), (5, 1, 300), (17, 130, 33), (23, 300, 77)]


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("w_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("zeros", ["random", "min", "max"])
def test_qgemm_int32_accumulators(x_dtype, w_dtype, m, n, k, zeros):
    rng = np.random.default_rng([m, n, k, len(zeros)])
    w, x = rand_q(rng, (m, k), w_dtype), rand_q(rng, (k, n), x_dtype)
    x_zero = zero_point(rng, x_dtype, zeros)
    w_zero = np.array([zero_point(rng, w_dtype, zeros) for _ in range(m)], np.int32)
    bias = rng.integers(-(2**20), 2**20, m).astype(np.int32)
    for wz, b in ((w_zero, bias), (int(w_zero[0]), None), (0 if w_dtype == np.int8 else 128, bias)):
        y = K.QGemm(w, wz, b, x_dtype, x_zero, K.OutputStage(np.int32))(x)
        assert y.dtype == np.int32 and y.shape == (m, n)
        np.testing.assert_array_equal(y, gemm_ref(w, wz, b, x, x_zero))


@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.float32])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize(
    "x_dtype,w_dtype", [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)]
)
def test_qgemm_output_stages(out_dtype, per_channel, x_dtype, w_dtype):
    rng = np.random.default_rng(7)
    m, n, k = 19, 150, 45
    w, x = rand_q(rng, (m, k), w_dtype), rand_q(rng, (k, n), x_dtype)
    w_zero = (
        rand_q(rng, m, w_dtype).astype(np.int32) if per_channel else int(rand_q(rng, 1, w_dtype)[0])
    )
    x_zero = int(rand_q(rng, 1, x_dtype)[0])
    bias = rng.integers(-5000, 5000, m).astype(np.int32)
    acc = gemm_ref(w, w_zero, bias, x, x_zero)
    out = random_stage(rng, out_dtype, m, per_channel, float(np.abs(acc).max()))
    y = K.QGemm(w, w_zero, bias, x_dtype, x_zero, out)(x)
    assert y.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(y, stage_ref(acc, out, 0))
    if np.dtype(out_dtype) != np.float32:  # the clamp was exercised
        assert (y == out.qmin).any() or (y == out.qmax).any()


def test_qgemm_saturates_and_wraps_like_int32():
    # K * 255 * 255 > 2**31: the int32 accumulator wraps (ONNX semantics)
    k = 40000
    w = np.full((2, k), 127, np.int8)
    w[1] = -128
    x = np.full((k, 3), 255, np.uint8)
    y = K.QGemm(w, 0, None, np.uint8, 0, K.OutputStage(np.int32))(x)
    np.testing.assert_array_equal(y, gemm_ref(w, 0, None, x, 0))
    assert y[0, 0] == np.int64(127 * 255 * k).astype(np.int32)
    # with both zero points nonzero the corrections wrap the same way
    w_zero = np.array([-128, 127], np.int32)
    y = K.QGemm(
        w, w_zero, np.array([2**31 - 1, -(2**31)], np.int32), np.uint8, 255, K.OutputStage(np.int32)
    )(x)
    np.testing.assert_array_equal(y, gemm_ref(w, w_zero, [2**31 - 1, -(2**31)], x, 255))
    # saturation of the requantized output
    out = K.OutputStage(np.int8, np.float32(1.0), 0)
    y = K.QGemm(w[:, :100], 0, None, np.uint8, 0, out)(x[:100])
    np.testing.assert_array_equal(y, [[127] * 3, [-128] * 3])


def test_qgemm_strided_and_noncontiguous_input():
    rng = np.random.default_rng(3)
    w, x = rand_q(rng, (6, 9), np.int8), rand_q(rng, (9, 40), np.uint8)
    g = K.QGemm(w, 3, None, np.uint8, 100, K.OutputStage(np.int32))
    np.testing.assert_array_equal(g(x[:, ::2]), gemm_ref(w, 3, None, x[:, ::2], 100))
    np.testing.assert_array_equal(g(np.asfortranarray(x)), gemm_ref(w, 3, None, x, 100))
    assert g(np.zeros((9, 0), np.uint8)).shape == (6, 0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 140),
    k=st.integers(1, 40),
    x_s8=st.booleans(),
    w_s8=st.booleans(),
    per_channel=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_qgemm_property(m, n, k, x_s8, w_s8, per_channel, seed):
    rng = np.random.default_rng(seed)
    x_dtype, w_dtype = (np.int8 if x_s8 else np.uint8), (np.int8 if w_s8 else np.uint8)
    w, x = rand_q(rng, (m, k), w_dtype), rand_q(rng, (k, n), x_dtype)
    w_zero = rand_q(rng, m, w_dtype).astype(np.int32)
    x_zero = int(rand_q(rng, 1, x_dtype)[0])
    acc = gemm_ref(w, w_zero, None, x, x_zero)
    out = random_stage(rng, np.uint8, m, per_channel, float(np.abs(acc).max()))
    y = K.QGemm(w, w_zero, None, x_dtype, x_zero, out)(x)
    np.testing.assert_array_equal(y, stage_ref(acc, out, 0))


# ---- QConv2d ---------------------------------------------------------------------

CONV_CASES = [
    # (N, C, H, W, O, groups, (kh, kw), strides, dilations, pads (t, l, b, r))
    (1, 3, 8, 8, 4, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (2, 4, 9, 7, 6, 2, (3, 3), (2, 1), (1, 1), (0, 1, 2, 0)),
    (1, 8, 10, 11, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # depthwise
    (2, 6, 12, 9, 6, 6, (5, 5), (2, 2), (2, 1), (3, 0, 1, 4)),  # depthwise, strided, dilated
    (1, 4, 7, 7, 12, 4, (3, 3), (1, 2), (1, 1), (1, 1, 1, 1)),  # channel multiplier 3
    (1, 5, 6, 6, 7, 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),  # 1x1 direct
    (3, 6, 5, 4, 4, 2, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),  # 1x1 direct, groups, batch
    (1, 5, 9, 8, 3, 1, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0)),  # 1x1 strided
    (1, 3, 6, 6, 2, 1, (1, 1), (1, 1), (1, 1), (1, 2, 0, 1)),  # 1x1 padded
    (1, 2, 3, 3, 3, 1, (3, 3), (1, 1), (1, 1), (5, 5, 5, 5)),  # pads larger than input
    (2, 2, 2, 3, 3, 1, (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),  # kernel larger than input
    (1, 3, 1, 1, 2, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # 1x1 image
    (1, 1, 1, 1, 1, 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),  # everything 1
    (1, 2, 15, 13, 5, 1, (3, 2), (3, 2), (2, 3), (2, 1, 0, 3)),
    (2, 4, 8, 8, 4, 4, (3, 3), (3, 3), (1, 1), (0, 0, 0, 0)),  # depthwise stride 3, no pad
    (1, 1, 5, 5, 1, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # single channel: not depthwise
]


def run_conv(case, x_dtype, w_dtype, zeros, out_dtype=np.int32, per_channel=True, seed=0):
    n, c, h, wd, o, groups, (kh, kw), strides, dilations, pads = case
    rng = np.random.default_rng([seed, n, c, h, wd, o, groups, kh, kw, len(zeros)])
    x = rand_q(rng, (n, c, h, wd), x_dtype)
    w = rand_q(rng, (o, c // groups, kh, kw), w_dtype)
    x_zero = zero_point(rng, x_dtype, zeros)
    if per_channel:
        w_zero = np.array([zero_point(rng, w_dtype, zeros) for _ in range(o)], np.int32)
    else:
        w_zero = zero_point(rng, w_dtype, zeros)
    bias = rng.integers(-(2**16), 2**16, o).astype(np.int32)
    acc = conv_ref(x, w, w_zero, bias, x_zero, groups, strides, dilations, pads)
    out = random_stage(rng, out_dtype, o, per_channel, float(np.abs(acc).max()))
    conv = K.QConv2d(
        w,
        w_zero,
        bias,
        groups=groups,
        strides=strides,
        dilations=dilations,
        pads=pads,
        x_dtype=x_dtype,
        x_zero=x_zero,
        out=out,
    )
    return conv(x), stage_ref(acc, out, 1), conv, x


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize(
    "x_dtype,w_dtype",
    [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8), (np.int8, np.uint8)],
)
@pytest.mark.parametrize("zeros", ["random", "min", "max"])
def test_qconv2d_int32_matches_numpy(case, x_dtype, w_dtype, zeros):
    y, ref, _, _ = run_conv(case, x_dtype, w_dtype, zeros)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("case", CONV_CASES[:5] + CONV_CASES[6:7])
@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.float32])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qconv2d_output_stages(case, out_dtype, per_channel):
    y, ref, _, _ = run_conv(case, np.uint8, np.int8, "random", out_dtype, per_channel, seed=5)
    assert y.dtype == np.dtype(out_dtype)
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize(
    "case",
    [
        (1, 128, 12, 70, 3, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # one output row per band
        (2, 128, 40, 37, 4, 2, (3, 3), (1, 1), (1, 1), (2, 0, 1, 3)),  # several bands, ragged last
        (1, 4, 30, 30, 8, 1, (7, 7), (2, 2), (1, 1), (3, 3, 3, 3)),
    ],
)
def test_qconv2d_banded_im2col(case):
    y, ref, _, _ = run_conv(case, np.uint8, np.int8, "random", np.uint8, True, seed=9)
    np.testing.assert_array_equal(y, ref)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 2),
    cg=st.integers(1, 3),
    og=st.integers(1, 3),
    groups=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    pads=st.tuples(*[st.integers(0, 4)] * 4),
    s8=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_qconv2d_property(n, cg, og, groups, h, w, kh, kw, sh, sw, dh, dw, pads, s8, seed):
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    assume(h + pads[0] + pads[2] >= span_h and w + pads[1] + pads[3] >= span_w)
    case = (n, cg * groups, h, w, og * groups, groups, (kh, kw), (sh, sw), (dh, dw), pads)
    y, ref, _, _ = run_conv(
        case, np.int8 if s8 else np.uint8, np.int8, "random", np.uint8, True, seed
    )
    np.testing.assert_array_equal(y, ref)


def test_qconv2d_empty_batch_and_noncontiguous_input():
    case = (2, 4, 6, 6, 4, 2, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1))
    y, ref, conv, x = run_conv(case, np.uint8, np.int8, "random")
    assert conv(x[:0]).shape == (0, 4, 6, 6)
    np.testing.assert_array_equal(conv(x[::-1]), ref[::-1])


def test_qconv2d_threads_share_one_pack():
    case = (1, 8, 16, 16, 16, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1))
    _, ref, conv, x = run_conv(case, np.uint8, np.int8, "random", np.uint8)
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(10):
            results.append(conv(x))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40
    for y in results:
        np.testing.assert_array_equal(y, ref)


def test_packs_once_per_kernel_table():
    """A prepared op packs its weights for each table it runs on, once, and gives the same
    result on every one (the pack records its table and tile shape)."""
    case = (1, 4, 6, 6, 4, 4, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1))
    y, ref, conv, x = run_conv(case, np.uint8, np.int8, "random")
    gemm = K.QGemm(np.ones((2, 3), np.int8), 0, None, np.uint8, 0, K.OutputStage(np.int32))
    for name in _kernels.isa_available():
        ctx = _kernels.Context(name)
        np.testing.assert_array_equal(conv(x, ctx), ref)
        np.testing.assert_array_equal(gemm(np.ones((3, 2), np.uint8), ctx), np.full((2, 2), 3))
        first = conv._packs[name]
        conv(x, ctx)
        assert conv._packs[name] is first
    assert set(conv._packs) == set(gemm._packs) == set(_kernels.isa_available())


# ---- bad arguments ---------------------------------------------------------------


def conv_kwargs(**over):
    kw = dict(
        groups=1,
        strides=(1, 1),
        dilations=(1, 1),
        pads=(0, 0, 0, 0),
        x_dtype=np.uint8,
        x_zero=0,
        out=K.OutputStage(np.int32),
    )
    kw.update(over)
    return kw


def test_qgemm_wrapper_rejects_bad_arguments():
    w = np.zeros((3, 4), np.int8)
    out = K.OutputStage(np.int32)
    bad = [
        (lambda: K.QGemm(w.astype(np.int16), 0, None, np.uint8, 0, out), "uint8/int8"),
        (lambda: K.QGemm(w[0], 0, None, np.uint8, 0, out), "2-D"),
        (lambda: K.QGemm(np.zeros((0, 4), np.int8), 0, None, np.uint8, 0, out), "> 0"),
        (lambda: K.QGemm(w, 128, None, np.uint8, 0, out), "zero point"),
        (lambda: K.QGemm(w.view(np.uint8), -1, None, np.uint8, 0, out), "zero point"),
        (lambda: K.QGemm(w, [0, 1], None, np.uint8, 0, out), "zero point has 2"),
        (lambda: K.QGemm(w, 0, np.zeros(2, np.int32), np.uint8, 0, out), "bias has 2"),
        (lambda: K.QGemm(w, 0, np.zeros(3, np.float32), np.uint8, 0, out), "integer"),
        (lambda: K.QGemm(w, 0, np.array([2**40, 0, 0]), np.uint8, 0, out), "int32"),
        (lambda: K.QGemm(w, 0, None, np.float32, 0, out), "uint8/int8"),
        (lambda: K.QGemm(w, 0, None, np.uint8, 256, out), "x_zero"),
        (lambda: K.QGemm(w, 0, None, np.int8, 128, out), "x_zero"),
        (lambda: K.QGemm(w, 0, None, np.uint8, 0, K.OutputStage(np.uint8, -1.0)), "scale"),
        (lambda: K.QGemm(w, 0, None, np.uint8, 0, K.OutputStage(np.uint8, np.ones(2))), "scale"),
        (lambda: K.QGemm(w, 0, None, np.uint8, 0, K.OutputStage(np.uint8, 1.0, 0, 9, 3)), "clamp"),
    ]
    for make, match in bad:
        with pytest.raises(pyrt.KernelError, match=match):
            make()
    g = K.QGemm(w, 0, None, np.uint8, 0, out)
    for x in (np.zeros((5, 2), np.uint8), np.zeros((4, 2), np.int8), np.zeros(4, np.uint8)):
        with pytest.raises(pyrt.KernelError, match="QGemm input"):
            g(x)


def test_qconv2d_wrapper_rejects_bad_arguments():
    w = np.zeros((4, 2, 3, 3), np.int8)
    bad = [
        (lambda: K.QConv2d(w[0], 0, None, **conv_kwargs()), r"\[O, I/groups"),
        (lambda: K.QConv2d(w.astype(np.float32), 0, None, **conv_kwargs()), "uint8/int8"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(groups=3)), "groups"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(groups=0)), "groups"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(strides=(1,))), "strides"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(pads=(0, 0))), "pads"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(strides=(0, 1))), "strides"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(dilations=(1, -1))), "dilation"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(pads=(0, -1, 0, 0))), "pads"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(pads=(2**31, 0, 0, 0))), "int32"),
        (lambda: K.QConv2d(w, np.zeros(3, np.int32), None, **conv_kwargs()), "zero point has 3"),
        (lambda: K.QConv2d(w, np.array([0, 0, 0, 200]), None, **conv_kwargs()), "zero point 200"),
        (lambda: K.QConv2d(w, 0, np.zeros(5, np.int32), **conv_kwargs()), "bias has 5"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(x_zero=-1)), "x_zero"),
        (lambda: K.QConv2d(w, 0, None, **conv_kwargs(out=K.OutputStage(np.int8, np.nan))), "scale"),
    ]
    for make, match in bad:
        with pytest.raises(pyrt.KernelError, match=match):
            make()
    conv = K.QConv2d(w, 0, None, **conv_kwargs())
    with pytest.raises(pyrt.KernelError, match="no output"):
        conv(np.zeros((1, 2, 2, 5), np.uint8))  # 3x3 kernel on a 2-row image, no pads
    with pytest.raises(pyrt.KernelError, match=r"\[N, 2, H, W\]"):
        conv(np.zeros((1, 3, 5, 5), np.uint8))
    with pytest.raises(pyrt.KernelError, match=r"\[N, 2, H, W\]"):
        conv(np.zeros((2, 5, 5), np.uint8))
    with pytest.raises(pyrt.KernelError, match="input must be uint8"):
        conv(np.zeros((1, 2, 5, 5), np.int8))


def stage(dtype=np.int32, scale=1.0):
    return K._stage(K.OutputStage(dtype, scale), 1)


def test_c_entry_points_reject_null_and_bad_packs():
    ctx = _kernels.default_context().ptr
    w = np.ones((2, 3), np.int8)  # [N][K]
    size = lib.pyrt_qgemm_packed_size(ctx, 2, 3)
    assert size > 0 and lib.pyrt_qgemm_packed_size(ctx, 0, 3) == 0
    assert lib.pyrt_qgemm_packed_size(ctx, 2**30, 2**30) == 0  # refused as too large
    assert lib.pyrt_qgemm_packed_size(ffi.NULL, 2, 3) == 0
    packed = K._aligned_buffer(size)
    p = _kernels.ptr

    def pack(*args):
        return lib.pyrt_qgemm_pack(ctx, 2, 3, *args, p(packed))

    assert pack(ffi.NULL, lib.PYRT_S8, ffi.NULL, 0) == lib.PYRT_ERR_ARG
    assert pack(p(w), 7, ffi.NULL, 0) == lib.PYRT_ERR_ARG
    # a failed pack (bad zero point) leaves the buffer unusable (fresh) or untouched
    z = np.array([300], np.int32)
    assert pack(p(w), lib.PYRT_S8, p(z, "int32_t *"), 0) == lib.PYRT_ERR_ARG
    a = np.ones((4, 3), np.uint8)  # [M][K]
    y = np.zeros((4, 2), np.int32)
    st32, _ = stage()

    def gemm(
        m=4,
        n=2,
        k=3,
        a_ptr=None,
        a_dtype=lib.PYRT_U8,
        a_zero=0,
        lda=3,
        packed_ptr=None,
        out=st32,
        y_ptr=None,
        ldy=2,
        context=ctx,
    ):
        return lib.pyrt_qgemm(
            context,
            m,
            n,
            k,
            p(a) if a_ptr is None else a_ptr,
            a_dtype,
            a_zero,
            lda,
            p(packed) if packed_ptr is None else packed_ptr,
            ffi.NULL,
            out,
            p(y) if y_ptr is None else y_ptr,
            ldy,
        )

    assert gemm() == lib.PYRT_ERR_PACK
    assert pack(p(w), lib.PYRT_S8, ffi.NULL, 0) == lib.PYRT_OK
    assert gemm() == lib.PYRT_OK
    np.testing.assert_array_equal(y, np.full((4, 2), 3))
    assert gemm(context=ffi.NULL) == lib.PYRT_ERR_ARG
    assert gemm(a_ptr=ffi.NULL) == lib.PYRT_ERR_ARG
    assert gemm(y_ptr=ffi.NULL) == lib.PYRT_ERR_ARG
    assert gemm(packed_ptr=ffi.NULL) == lib.PYRT_ERR_ARG
    assert gemm(out=ffi.NULL) == lib.PYRT_ERR_ARG
    assert gemm(m=0) == lib.PYRT_ERR_ARG
    assert gemm(lda=2) == lib.PYRT_ERR_ARG
    assert gemm(a_dtype=lib.PYRT_S32) == lib.PYRT_ERR_ARG
    assert gemm(a_zero=256) == lib.PYRT_ERR_ARG
    assert gemm(k=2, lda=3) == lib.PYRT_ERR_PACK
    assert gemm(n=1) == lib.PYRT_ERR_PACK
    bad_out = ffi.new("pyrt_output_stage *", dict(out_dtype=9))
    assert gemm(out=bad_out) == lib.PYRT_ERR_ARG
    null_scale = ffi.new("pyrt_output_stage *", dict(out_dtype=lib.PYRT_U8, qmax=255))
    assert gemm(out=null_scale) == lib.PYRT_ERR_ARG
    garbage = np.full(size, 7, np.uint8)
    assert gemm(packed_ptr=p(garbage)) == lib.PYRT_ERR_PACK
    assert "qgemm" in ffi.string(lib.pyrt_last_error()).decode()
    other = [n for n in _kernels.isa_available() if n != _kernels.isa()]
    if other:  # a pack made for one table is refused by another
        assert gemm(context=_kernels.Context(other[0]).ptr) == lib.PYRT_ERR_PACK

    acc = np.zeros((2, 2), np.int32)
    rq = lib.pyrt_requantize
    assert rq(ctx, 2, 2, 1, ffi.NULL, st32, p(y)) == lib.PYRT_ERR_ARG
    assert rq(ctx, 2, 2, 1, p(acc, "int32_t *"), ffi.NULL, p(y)) == lib.PYRT_ERR_ARG
    assert rq(ctx, 2, 2, 0, p(acc, "int32_t *"), st32, p(y)) == lib.PYRT_ERR_ARG
    assert rq(ctx, -1, 2, 1, p(acc, "int32_t *"), st32, p(y)) == lib.PYRT_ERR_ARG
    assert rq(ffi.NULL, 2, 2, 1, p(acc, "int32_t *"), st32, p(y)) == lib.PYRT_ERR_ARG


def conv_shape(**over) -> object:
    fields = dict(
        batch=1,
        in_c=2,
        in_h=5,
        in_w=5,
        out_c=4,
        groups=1,
        kernel_h=3,
        kernel_w=3,
        stride_h=1,
        stride_w=1,
        dilation_h=1,
        dilation_w=1,
    )
    fields.update(over)
    return ffi.new("pyrt_conv2d_shape *", fields)


def test_conv2d_infer():
    s = conv_shape(pad_top=1, pad_left=2, pad_bottom=0, pad_right=3, stride_w=2, dilation_h=2)
    assert lib.pyrt_conv2d_infer(s) == lib.PYRT_OK
    assert (s.out_h, s.out_w) == ((5 + 1 - 4 - 1) // 1 + 1, (5 + 5 - 2 - 1) // 2 + 1)
    assert lib.pyrt_conv2d_infer(ffi.NULL) == lib.PYRT_ERR_ARG
    for field, value, code in [
        ("batch", 0, lib.PYRT_ERR_ARG),
        ("in_c", -1, lib.PYRT_ERR_ARG),
        ("groups", 0, lib.PYRT_ERR_ARG),
        ("groups", 3, lib.PYRT_ERR_SHAPE),  # in_c 2 % 3
        ("out_c", 3, None),  # out_c 3 % groups 1 is fine
        ("kernel_h", 0, lib.PYRT_ERR_ARG),
        ("stride_w", 0, lib.PYRT_ERR_ARG),
        ("dilation_h", -2, lib.PYRT_ERR_ARG),
        ("pad_left", -1, lib.PYRT_ERR_ARG),
        ("kernel_w", 6, lib.PYRT_ERR_SHAPE),  # no output
        ("dilation_w", 3, lib.PYRT_ERR_SHAPE),  # span 7 > 5
    ]:
        s = conv_shape(**{field: value})
        rc = lib.pyrt_conv2d_infer(s)
        assert rc == (code or lib.PYRT_OK), (field, value)
    s = conv_shape(in_c=4, out_c=6, groups=2)
    assert lib.pyrt_conv2d_infer(s) == lib.PYRT_OK
    s = conv_shape(in_c=4, out_c=6, groups=4)
    assert lib.pyrt_conv2d_infer(s) == lib.PYRT_ERR_SHAPE  # out_c % groups
    # extents that would overflow int32 index arithmetic are refused, not UB
    for over in (
        dict(pad_top=2**31 - 1, pad_bottom=2**31 - 1, stride_h=2**30),
        dict(dilation_w=2**30, kernel_w=3, pad_left=2**31 - 1, pad_right=2**31 - 1),
        dict(in_h=2**31 - 1, stride_h=2**31 - 1),
    ):
        assert lib.pyrt_conv2d_infer(conv_shape(**over)) == lib.PYRT_ERR_SHAPE


def test_qconv2d_c_entry_checks_pack_and_shape():
    p = _kernels.ptr
    ctx = _kernels.default_context().ptr
    s = conv_shape(pad_top=1, pad_left=1, pad_bottom=1, pad_right=1)
    assert lib.pyrt_conv2d_infer(s) == lib.PYRT_OK
    size = lib.pyrt_qconv2d_packed_size(ctx, s)
    assert size > 0 and lib.pyrt_qconv2d_packed_size(ctx, ffi.NULL) == 0
    packed = K._aligned_buffer(size)
    w = np.ones((4, 2, 3, 3), np.int8)
    x = np.ones((1, 2, 5, 5), np.uint8)
    y = np.zeros((1, 4, 5, 5), np.int32)
    st32, _ = stage()
    assert (
        lib.pyrt_qconv2d_pack(ctx, s, ffi.NULL, lib.PYRT_S8, ffi.NULL, 0, p(packed))
        == lib.PYRT_ERR_ARG
    )
    bad_zero = np.array([0, 0, 0, 999], np.int32)
    assert (
        lib.pyrt_qconv2d_pack(ctx, s, p(w), lib.PYRT_S8, p(bad_zero, "int32_t *"), 1, p(packed))
        == lib.PYRT_ERR_ARG
    )

    def conv(shape=s, packed_ptr=None, x_ptr=None, y_ptr=None, out=st32):
        return lib.pyrt_qconv2d(
            ctx,
            shape,
            p(packed) if packed_ptr is None else packed_ptr,
            p(x) if x_ptr is None else x_ptr,
            lib.PYRT_U8,
            0,
            ffi.NULL,
            out,
            p(y) if y_ptr is None else y_ptr,
        )

    assert conv() == lib.PYRT_ERR_PACK
    assert lib.pyrt_qconv2d_pack(ctx, s, p(w), lib.PYRT_S8, ffi.NULL, 0, p(packed)) == lib.PYRT_OK
    assert conv() == lib.PYRT_OK
    # a pack refused up front leaves the buffer as it was ...
    rc = lib.pyrt_qconv2d_pack(ctx, s, p(w), lib.PYRT_S8, p(bad_zero, "int32_t *"), 1, p(packed))
    assert rc == lib.PYRT_ERR_ARG
    assert "channel 3" in ffi.string(lib.pyrt_last_error()).decode()
    assert conv() == lib.PYRT_OK
    # ... one that fails half way leaves nothing usable behind
    assert lib.pyrt_qconv2d_pack(ctx, s, p(w), 7, ffi.NULL, 0, p(packed)) == lib.PYRT_ERR_ARG
    assert conv() == lib.PYRT_ERR_PACK
    assert lib.pyrt_qconv2d_pack(ctx, s, p(w), lib.PYRT_S8, ffi.NULL, 0, p(packed)) == lib.PYRT_OK
    assert conv() == lib.PYRT_OK
    assert conv(packed_ptr=ffi.NULL) == lib.PYRT_ERR_ARG
    assert conv(x_ptr=ffi.NULL) == lib.PYRT_ERR_ARG
    assert conv(y_ptr=ffi.NULL) == lib.PYRT_ERR_ARG
    assert conv(shape=ffi.NULL) == lib.PYRT_ERR_ARG
    assert conv(out=ffi.NULL) == lib.PYRT_ERR_ARG
    wrong = conv_shape(pad_top=1, pad_left=1, pad_bottom=1, pad_right=1)
    wrong.out_h, wrong.out_w = 5, 4  # out_w does not follow from the other fields
    assert conv(shape=wrong) == lib.PYRT_ERR_SHAPE
    other = conv_shape(in_c=4, groups=2, pad_top=1, pad_left=1, pad_bottom=1, pad_right=1)
    assert lib.pyrt_conv2d_infer(other) == lib.PYRT_OK
    assert conv(shape=other) == lib.PYRT_ERR_PACK  # packed for groups 1
    gemm_pack = K._aligned_buffer(lib.pyrt_qgemm_packed_size(ctx, 4, 18))
    assert (
        lib.pyrt_qgemm_pack(ctx, 4, 18, p(w), lib.PYRT_S8, ffi.NULL, 0, p(gemm_pack)) == lib.PYRT_OK
    )
    assert conv(packed_ptr=p(gemm_pack)) == lib.PYRT_ERR_PACK  # a GEMM pack is not a conv pack
