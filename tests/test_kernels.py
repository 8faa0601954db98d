"""Every kernel against an independent numpy reference, on every ISA this CPU runs."""

from __future__ import annotations

import numpy as np
import pytest

import pyrt
from pyrt import _kernels
from pyrt import kernels as K
from pyrt._kernels import ffi, lib

ISAS = _kernels.isa_available()


@pytest.fixture(params=ISAS, autouse=True)
def isa(request):
    before = _kernels.isa()
    _kernels.set_isa(request.param)
    yield request.param
    _kernels.set_isa(before)


def rand_q(rng, shape, dtype):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def requant_ref(acc: np.ndarray, scale: np.ndarray, zero: int, lo: int, hi: int) -> np.ndarray:
    """float32 product, round half to even, add zero, clamp — the documented output stage."""
    v = np.rint(acc.astype(np.float32) * scale.astype(np.float32)) + np.float32(zero)
    return np.clip(v, lo, hi)


def conv_ref(x, w, x_zero, w_zero, groups, strides, dilations, pads):
    """Direct int64 NCHW convolution; padding holds x_zero (real 0)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    acc = np.int64 if x.dtype.kind in "iu" else np.float64
    xp = np.pad(x.astype(acc) - x_zero, [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])])
    wz = w.astype(acc) - np.asarray(w_zero, acc).reshape(-1, 1, 1, 1)
    oh = (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    y = np.zeros((n, o, oh, ow), acc)
    og = o // groups
    for ky in range(kh):
        for kx in range(kw):
            ys, xs = ky * dilations[0], kx * dilations[1]
            patch = xp[
                :,
                :,
                ys : ys + strides[0] * (oh - 1) + 1 : strides[0],
                xs : xs + strides[1] * (ow - 1) + 1 : strides[1],
            ]
            for g in range(groups):
                y[:, g * og : (g + 1) * og] += np.einsum(
                    "nchw,oc->nohw",
                    patch[:, g * cg : (g + 1) * cg],
                    wz[g * og : (g + 1) * og, :, ky, kx],
                )
    return y


@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("w_dtype", [np.int8, np.uint8])
@pytest.mark.parametrize(
    "m,n,k", [(1, 1, 1), (3, 7, 5), (17, 130, 33), (64, 257, 300), (5, 1, 1000)]
)
def test_qgemm_int32_matches_numpy(x_dtype, w_dtype, m, n, k):
    rng = np.random.default_rng(m * 1000 + n + k)
    w, x = rand_q(rng, (m, k), w_dtype), rand_q(rng, (k, n), x_dtype)
    w_zero = rand_q(rng, m, w_dtype).astype(np.int32)
    x_zero = int(rand_q(rng, (), x_dtype))
    bias = rng.integers(-(2**20), 2**20, m).astype(np.int32)
    y = K.QGemm(w, w_zero, bias, x_dtype, x_zero, K.OutputStage(np.int32))(x)
    ref = (w.astype(np.int64) - w_zero[:, None]) @ (x.astype(np.int64) - x_zero) + bias[:, None]
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("out_dtype", [np.uint8, np.int8, np.float32])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qgemm_output_stages(out_dtype, per_channel):
    rng = np.random.default_rng(1)
    m, n, k = 9, 31, 70
    w, x = rand_q(rng, (m, k), np.int8), rand_q(rng, (k, n), np.uint8)
    scale = rng.uniform(1e-4, 1e-2, m if per_channel else 1).astype(np.float32)
    acc = w.astype(np.int64) @ (x.astype(np.int64) - 7)
    if out_dtype == np.float32:
        out = K.OutputStage(np.float32, scale)
        ref = acc.astype(np.float32) * scale.reshape(-1, 1)
    else:
        info = np.iinfo(out_dtype)
        zero = int(info.min) + 100
        lo, hi = info.min + 20, info.max - 3  # a fused Clip
        out = K.OutputStage(out_dtype, scale, zero, lo, hi)
        ref = requant_ref(acc, scale.reshape(-1, 1), zero, lo, hi)
    y = K.QGemm(w, 0, None, np.uint8, 7, out)(x)
    np.testing.assert_array_equal(y, ref.astype(out_dtype))


def test_requantize_rounds_half_to_even_and_saturates():
    acc = np.array([[1, 3, 5, -1, -3, 1000, -1000]], np.int32)
    y = K.requantize(acc, 1, K.OutputStage(np.int8, np.float32(0.5), 0))
    np.testing.assert_array_equal(y, [[0, 2, 2, 0, -2, 127, -128]])
    y = K.requantize(acc, 1, K.OutputStage(np.uint8, np.float32(0.5), 128, 128, 255))  # ReLU
    np.testing.assert_array_equal(y, [[128, 130, 130, 128, 128, 255, 128]])


def test_requantize_per_channel_rows():
    rng = np.random.default_rng(2)
    acc = rng.integers(-50000, 50000, (6, 40)).astype(np.int32)
    scale = rng.uniform(1e-3, 1e-2, 3).astype(np.float32)
    y = K.requantize(acc, 3, K.OutputStage(np.uint8, scale, 120))
    ref = requant_ref(acc, np.tile(scale, 2).reshape(-1, 1), 120, 0, 255)
    np.testing.assert_array_equal(y, ref.astype(np.uint8))


CONV_CASES = [
    # (N, C, H, W, O, groups, k, strides, dilations, pads)
    (1, 3, 8, 8, 4, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (2, 8, 9, 11, 16, 2, (3, 2), (2, 1), (1, 2), (1, 2, 0, 3)),
    (1, 6, 7, 7, 6, 6, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # depthwise
    (1, 6, 10, 9, 6, 6, (5, 5), (2, 2), (2, 1), (4, 0, 1, 3)),  # depthwise, odd
    (1, 4, 5, 5, 8, 4, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # channel multiplier 2
    (1, 16, 6, 6, 8, 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),  # 1x1 direct
    (1, 3, 2, 2, 5, 1, (5, 5), (1, 1), (1, 1), (3, 3, 3, 3)),  # kernel > input, big pads
    (1, 1, 1, 1, 1, 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("x_dtype", [np.uint8, np.int8])
def test_qconv2d_matches_numpy(case, x_dtype):
    n, c, h, wd, o, groups, k, strides, dilations, pads = case
    rng = np.random.default_rng(sum(case[:6]))
    x = rand_q(rng, (n, c, h, wd), x_dtype)
    w = rand_q(rng, (o, c // groups, *k), np.int8)
    w_zero = rng.integers(-5, 5, o).astype(np.int32)
    x_zero = int(rand_q(rng, (), x_dtype))
    bias = rng.integers(-1000, 1000, o).astype(np.int32)
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
        out=K.OutputStage(np.int32),
    )
    ref = conv_ref(x, w, x_zero, w_zero, groups, strides, dilations, pads) + bias.reshape(
        1, -1, 1, 1
    )
    np.testing.assert_array_equal(conv(x), ref)
    scale = rng.uniform(1e-4, 1e-3, o).astype(np.float32)
    conv8 = K.QConv2d(
        w,
        w_zero,
        bias,
        groups=groups,
        strides=strides,
        dilations=dilations,
        pads=pads,
        x_dtype=x_dtype,
        x_zero=x_zero,
        out=K.OutputStage(np.uint8, scale, 128),
    )
    expect = requant_ref(ref, scale.reshape(1, -1, 1, 1), 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(conv8(x), expect)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_fp32_matches_numpy(case):
    n, c, h, wd, o, groups, k, strides, dilations, pads = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((o, c // groups, *k)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    y = K.Conv2d(w, b, groups=groups, strides=strides, dilations=dilations, pads=pads, lo=-1.0)(x)
    ref = conv_ref(
        x.astype(np.float64), w.astype(np.float64), 0, 0, groups, strides, dilations, pads
    )
    ref = np.maximum(ref + b.reshape(1, -1, 1, 1), -1.0)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (5, 300, 17), (33, 9, 129)])
def test_sgemm_matches_numpy(m, n, k):
    rng = np.random.default_rng(m + n + k)
    w, x, b = (rng.standard_normal(s).astype(np.float32) for s in ((m, k), (k, n), (m,)))
    y = K.Gemm(w, b, hi=1.5)(x)
    ref = np.minimum(w.astype(np.float64) @ x + b[:, None], 1.5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_per_tensor_ties_saturation_nan(dtype):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e9, -1e9, np.inf, -np.inf, np.nan], np.float32)
    zero = np.array(3, dtype)
    y = K.quantize(x, np.array(1.0, np.float32), zero)
    info = np.iinfo(dtype)
    expect = np.clip(np.array([0, 2, 2, 0, -2, 1e9, -1e9, 1e9, -1e9, 0]) + 3, info.min, info.max)
    np.testing.assert_array_equal(y, expect.astype(dtype))


def test_quantize_dequantize_per_axis_and_blocked():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 5)).astype(np.float32)
    scale = rng.uniform(0.01, 0.1, 6).astype(np.float32)
    zero = rng.integers(-10, 10, 6).astype(np.int8)
    y = K.quantize(x, scale, zero, axis=1)
    ref = np.clip(np.rint(x / scale[:, None]) + zero[:, None], -128, 127)
    np.testing.assert_array_equal(y, ref)
    back = K.dequantize(y, scale, zero, axis=1)
    np.testing.assert_array_equal(
        back, ((y.astype(np.int64) - zero[:, None]) * scale[:, None]).astype(np.float32)
    )
    # blocked along axis 1 with block 4: scale [2, 2, 5]
    bscale = rng.uniform(0.01, 0.1, (2, 2, 5)).astype(np.float32)
    bzero = rng.integers(0, 255, (2, 2, 5)).astype(np.uint8)
    full_s, full_z = np.repeat(bscale, 4, axis=1)[:, :6], np.repeat(bzero, 4, axis=1)[:, :6]
    yq = K.quantize(x, bscale, bzero, axis=1, block_size=4)
    np.testing.assert_array_equal(yq, np.clip(np.rint(x / full_s) + full_z, 0, 255))
    np.testing.assert_array_equal(
        K.dequantize(yq, bscale, bzero, axis=1, block_size=4),
        ((yq.astype(np.int64) - full_z) * full_s).astype(np.float32),
    )


def test_dequantize_int32():
    x = np.array([2**31 - 1, -(2**31), 0, 5], np.int32)
    y = K.dequantize(x, np.array(0.5, np.float32), np.array(-3, np.int32))
    np.testing.assert_array_equal(y, ((x.astype(np.int64) + 3) * 0.5).astype(np.float32))


@pytest.mark.parametrize("op", ["add", "mul"])
def test_qbinary_broadcast_and_clamp(op):
    rng = np.random.default_rng(4)
    a, b = rand_q(rng, (2, 3, 4, 5), np.uint8), rand_q(rng, (3, 1, 5), np.int8)
    qa, qb = K.QParams(0.02, 120, np.dtype(np.uint8)), K.QParams(0.05, -3, np.dtype(np.int8))
    qy = K.QParams(0.04, 10, np.dtype(np.uint8))
    y = K.qbinary(op, a, qa, b, qb, qy, qmin=12, qmax=250)
    fa, fb = np.float32(a.astype(np.float32) - 120), np.float32(b.astype(np.float32) + 3)
    if op == "add":
        v = fa * (np.float32(0.02) / np.float32(0.04)) + fb * (np.float32(0.05) / np.float32(0.04))
    else:
        v = fa * fb * (np.float32(0.02) * np.float32(0.05) / np.float32(0.04))
    ref = np.clip(np.rint(v) + 10, 12, 250)
    np.testing.assert_array_equal(y, ref.astype(np.uint8))


def pool_ref(x, kernel, strides, pads, ceil_mode, fn, count_include_pad=False):
    n, c, h, w = x.shape
    oh = K.pool_output_size(h, kernel[0], strides[0], pads[0], pads[2], 1, ceil_mode)
    ow = K.pool_output_size(w, kernel[1], strides[1], pads[1], pads[3], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * strides[0] - pads[0], j * strides[1] - pads[1]
            ys, xs = (
                slice(max(y0, 0), min(y0 + kernel[0], h)),
                slice(max(x0, 0), min(x0 + kernel[1], w)),
            )
            win = x[:, :, ys, xs].astype(np.float64)
            if fn == "max":
                y[:, :, i, j] = win.max(axis=(2, 3))
            else:
                if count_include_pad:
                    cy = min(y0 + kernel[0], h + pads[2]) - max(y0, -pads[0])
                    cx = min(x0 + kernel[1], w + pads[3]) - max(x0, -pads[1])
                    count = cy * cx
                else:
                    count = win.shape[2] * win.shape[3]
                y[:, :, i, j] = win.sum(axis=(2, 3)) / count
    return y


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 1, 1), (1, 0, 2, 1)])
def test_qmaxpool_qavgpool(ceil_mode, pads):
    rng = np.random.default_rng(5)
    x = rand_q(rng, (2, 3, 9, 8), np.int8)
    kernel, strides = (3, 3), (2, 2)
    y = K.qmaxpool2d(x, kernel, strides, pads, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(y, pool_ref(x, kernel, strides, pads, ceil_mode, "max"))
    qx, qy = K.QParams(0.1, -5, np.dtype(np.int8)), K.QParams(0.07, 3, np.dtype(np.int8))
    for include in (False, True):
        y = K.qavgpool2d(x, qx, qy, kernel, strides, pads, ceil_mode, include)
        mean = pool_ref(x.astype(np.int64) + 5, kernel, strides, pads, ceil_mode, "avg", include)
        ref = np.clip(np.rint(mean * 0.1 / 0.07) + 3, -128, 127)
        assert np.abs(y.astype(np.int64) - ref).max() <= 1  # float32 rounding of the mean
        assert np.mean(y == ref) > 0.97


def test_qglobalavgpool():
    rng = np.random.default_rng(6)
    x = rand_q(rng, (2, 5, 7, 3), np.uint8)
    qx, qy = K.QParams(0.02, 128, np.dtype(np.uint8)), K.QParams(0.01, 100, np.dtype(np.uint8))
    y = K.qglobalavgpool(x, qx, qy)
    mean = (x.astype(np.int64) - 128).sum(axis=(2, 3), keepdims=True) / 21
    ref = np.clip(np.rint(mean * 2) + 100, 0, 255)
    assert y.shape == (2, 5, 1, 1)
    assert np.abs(y.astype(np.int64) - ref).max() <= 1


# ---- argument checking in C -----------------------------------------------------


def test_c_entry_points_reject_null_and_bad_dims():
    assert (
        lib.pyrt_qgemm(1, 1, 1, ffi.NULL, ffi.NULL, 0, 0, 1, ffi.NULL, ffi.NULL, ffi.NULL, 1) != 0
    )
    assert "NULL" in ffi.string(lib.pyrt_last_error()).decode()
    assert lib.pyrt_qgemm_pack(0, 5, ffi.NULL, 1, ffi.NULL, 0, ffi.NULL) != 0
    assert lib.pyrt_quantize(ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, 0, ffi.NULL) != 0
    s = ffi.new(
        "pyrt_conv2d_shape *",
        dict(
            batch=1,
            in_c=3,
            in_h=2,
            in_w=2,
            out_c=4,
            groups=1,
            kernel_h=5,
            kernel_w=5,
            stride_h=1,
            stride_w=1,
            dilation_h=1,
            dilation_w=1,
        ),
    )
    assert lib.pyrt_conv2d_infer(s) == lib.PYRT_ERR_SHAPE  # no output
    s.stride_h = 0
    assert lib.pyrt_conv2d_infer(s) == lib.PYRT_ERR_ARG


def test_wrappers_raise_kernel_errors():
    w = np.zeros((4, 3, 3, 3), np.int8)
    with pytest.raises(pyrt.KernelError, match="no output|leaves no output"):
        K.QConv2d(
            w,
            0,
            None,
            groups=1,
            strides=(1, 1),
            dilations=(1, 1),
            pads=(0, 0, 0, 0),
            x_dtype=np.uint8,
            x_zero=0,
            out=K.OutputStage(np.int32),
        )(np.zeros((1, 3, 2, 2), np.uint8))
    with pytest.raises(pyrt.KernelError, match="scale"):
        K.quantize(np.zeros(3, np.float32), np.array(0.0, np.float32), None)
    with pytest.raises(pyrt.KernelError, match="zero point"):
        K.QGemm(np.zeros((2, 2), np.uint8), 300, None, np.uint8, 0, K.OutputStage(np.int32))
    with pytest.raises(pyrt.KernelError, match="scale"):
        K.QGemm(
            np.zeros((2, 2), np.int8),
            0,
            None,
            np.uint8,
            0,
            K.OutputStage(np.uint8, np.float32(np.nan)),
        )(np.zeros((2, 1), np.uint8))


def test_packed_weights_refuse_another_shape():
    g = K.QGemm(np.ones((3, 4), np.int8), 0, None, np.uint8, 0, K.OutputStage(np.int32))
    x = np.ones((5, 2), np.uint8)
    y = np.empty((3, 2), np.int32)
    stage, _ = K._stage(K.OutputStage(np.int32), 3)
    rc = lib.pyrt_qgemm(
        3,
        2,
        5,
        _kernels.ptr(g.packed),
        _kernels.ptr(x),
        0,
        0,
        2,
        ffi.NULL,
        stage,
        _kernels.ptr(y),
        2,
    )
    assert rc == lib.PYRT_ERR_PACK
