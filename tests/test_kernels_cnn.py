"""Kernels of the CNN ops outside convolutions: pyrt_channel_affine (BatchNormalization,
fp32 and on int8 codes), pyrt_copy_rows (Concat / Split), pyrt_avgpool2d_f32, and the
lookup table (pyrt_lut8: requantizing copies before Concat, elementwise ops). Each
against numpy, every SIMD table bit for bit against the scalar one, bad arguments
refused."""

from __future__ import annotations

import numpy as np
import pytest

from pyrt import _kernels
from pyrt import kernels as K
from pyrt._kernels import Context
from pyrt.errors import KernelError

SIMD = [isa for isa in _kernels.isa_available() if isa != "scalar"]


def codes(rng, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def affine_reference(x, a, b, axis, lo, hi, x_zero=0, y_dtype=None, y_zero=0):
    """float64 numpy of the definition: fma is exact in float64 for these operands (a
    float32 product is exact there, the sum then rounds once more: a tie at most)."""
    shape = [1] * x.ndim
    shape[axis] = -1
    a64, b64 = a.astype(np.float64).reshape(shape), b.astype(np.float64).reshape(shape)
    v = (x.astype(np.float64) - x_zero) * a64 + b64
    if x.dtype == np.float32:
        return np.clip(v.astype(np.float32), lo, hi)
    info = np.iinfo(y_dtype)
    return np.clip(np.rint(v) + y_zero, max(lo, info.min), min(hi, info.max)).astype(y_dtype)


# shapes around the 8- and 16-lane tails, NHWC (axis last, inner 1) and NCHW (axis 1)
SHAPES = [((3, 1), -1), ((5, 7), -1), ((2, 16), -1), ((4, 33), -1), ((1, 3, 2, 17), -1),
          ((1, 5, 3, 7), 1), ((2, 3, 4, 4), 1), ((1, 2, 1, 1), 1)]  # fmt: skip


DTYPE_PAIRS = [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8), (np.int8, np.uint8)]


@pytest.mark.parametrize("shape, axis", SHAPES)
@pytest.mark.parametrize("x_dtype, y_dtype", DTYPE_PAIRS)
def test_int8_affine_matches_numpy_and_scalar(shape, axis, x_dtype, y_dtype):
    rng = np.random.default_rng(sum(shape))
    x = codes(rng, shape, x_dtype)
    c = shape[axis]
    a = (rng.standard_normal(c) * 0.5).astype(np.float32)
    b = (rng.standard_normal(c) * 20).astype(np.float32)
    info = np.iinfo(y_dtype)
    for x_zero, y_zero, lo, hi in [
        (int(np.iinfo(x_dtype).min), int(info.max), -np.inf, np.inf),  # extreme zero points
        (3, int(info.min) + 7, info.min + 10, info.max - 20),  # a narrowed clamp (Relu6)
    ]:
        args = (a, b, axis, lo, hi, x_zero, y_dtype, y_zero)
        scalar = K.channel_affine(x, *args, ctx=Context("scalar"))
        want = affine_reference(x, *args)
        assert np.abs(scalar.astype(np.int64) - want).max() <= 1
        assert np.mean(scalar == want) > 0.99
        for isa in SIMD:
            np.testing.assert_array_equal(K.channel_affine(x, *args, ctx=Context(isa)), scalar)


@pytest.mark.parametrize("shape, axis", SHAPES)
def test_fp32_affine_matches_numpy_and_scalar(shape, axis):
    rng = np.random.default_rng(sum(shape) + 1)
    x = rng.standard_normal(shape).astype(np.float32) * 3
    x.reshape(-1)[::7] = np.nan  # NaN passes the clamp, as onnxruntime's Relu
    c = shape[axis]
    a, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    for lo, hi in [(-np.inf, np.inf), (0.0, np.inf), (0.0, 6.0)]:
        scalar = K.channel_affine(x, a, b, axis, lo, hi, ctx=Context("scalar"))
        want = affine_reference(x, a, b, axis % x.ndim, lo, hi)
        np.testing.assert_allclose(scalar, want, rtol=1e-6, atol=1e-6)
        assert np.array_equal(np.isnan(scalar), np.isnan(x))
        for isa in SIMD:
            got = K.channel_affine(x, a, b, axis, lo, hi, ctx=Context(isa))
            np.testing.assert_array_equal(got, scalar)


def test_affine_is_identical_for_any_thread_count():
    rng = np.random.default_rng(5)
    x = codes(rng, (1, 64, 64, 48), np.uint8)
    a, b = rng.standard_normal(48).astype(np.float32), rng.standard_normal(48).astype(np.float32)
    one = K.channel_affine(x, a, b, -1, x_zero=128, ctx=Context(None, 1))
    for threads in (2, 3):
        np.testing.assert_array_equal(
            K.channel_affine(x, a, b, -1, x_zero=128, ctx=Context(None, threads)), one
        )


def test_affine_refuses_bad_arguments():
    ctx = Context("scalar")
    x, a, b = np.zeros((2, 4), np.uint8), np.ones(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(KernelError, match="non-finite"):
        K.channel_affine(x, np.array([1, np.inf, 1, 1], np.float32), b, -1, ctx=ctx)
    with pytest.raises(KernelError, match="4 channels"):
        K.channel_affine(x, a[:3], b[:3], -1, ctx=ctx)
    with pytest.raises(KernelError, match="zero point"):
        K.channel_affine(x, a, b, -1, x_zero=300, ctx=ctx)
    with pytest.raises(KernelError, match="clamp"):
        K.channel_affine(x.astype(np.float32), a, b, -1, lo=1.0, hi=0.0, ctx=ctx)
    with pytest.raises(KernelError, match="not supported"):
        K.channel_affine(x.astype(np.int32), a, b, -1, ctx=ctx)


@pytest.mark.parametrize("threads", [1, 2])
def test_copy_rows_is_a_strided_copy(threads):
    rng = np.random.default_rng(threads)
    x = rng.integers(0, 256, 1000).astype(np.uint8)
    y = np.zeros(2000, np.uint8)
    K.copy_rows(x, 30, y, 50, 20, 17, Context(None, threads))
    want = np.zeros_like(y)
    for r in range(20):
        want[r * 50 : r * 50 + 17] = x[r * 30 : r * 30 + 17]
    np.testing.assert_array_equal(y, want)
    big_x = rng.integers(0, 256, 3 * 70000).astype(np.uint8)  # threaded across a row
    big_y = np.zeros(3 * 80000, np.uint8)
    K.copy_rows(big_x, 70000, big_y, 80000, 3, 70000, Context(None, threads))
    np.testing.assert_array_equal(big_y.reshape(3, -1)[:, :70000], big_x.reshape(3, -1))


def test_copy_rows_refuses_bad_arguments():
    x, y = np.zeros(100, np.uint8), np.zeros(100, np.uint8)
    with pytest.raises(KernelError, match="strides"):
        K.copy_rows(x, 5, y, 10, 3, 10)  # rows overlap their neighbours
    with pytest.raises(KernelError, match="must be > 0"):
        K.copy_rows(x, 10, y, 10, 0, 5)


def avgpool_reference(x, k, s, pads, include_pad, ceil):
    """NCHW AveragePool in float64 over the taps inside the input (or the padded one)."""
    n, c, h, w = x.shape
    out = [
        (d + pads[i] + pads[i + 2] - k[i] + (s[i] - 1 if ceil else 0)) // s[i] + 1
        for i, d in enumerate((h, w))
    ]
    y = np.zeros((n, c, *out))
    for oy in range(out[0]):
        for ox in range(out[1]):
            y0, x0 = oy * s[0] - pads[0], ox * s[1] - pads[1]
            ys, xs = slice(max(y0, 0), min(y0 + k[0], h)), slice(max(x0, 0), min(x0 + k[1], w))
            count = (ys.stop - ys.start) * (xs.stop - xs.start)
            if include_pad:
                count = (min(y0 + k[0], h + pads[2]) - y0) * (min(x0 + k[1], w + pads[3]) - x0)
            y[:, :, oy, ox] = x[:, :, ys, xs].astype(np.float64).sum(axis=(2, 3)) / count
    return y


@pytest.mark.parametrize(
    "k, s, pads, include_pad, ceil",
    [((3, 3), (2, 2), (1, 1, 1, 1), False, False), ((2, 2), (2, 2), (0, 0, 0, 0), False, False),
     ((3, 3), (1, 1), (1, 1, 1, 1), True, False), ((3, 3), (2, 2), (0, 0, 0, 0), False, True),
     ((3, 2), (2, 1), (1, 0, 1, 1), True, False)],
)  # fmt: skip
def test_fp32_avgpool_matches_numpy_in_both_layouts(k, s, pads, include_pad, ceil):
    x = np.random.default_rng(3).standard_normal((2, 19, 9, 8)).astype(np.float32)
    want = avgpool_reference(x, k, s, pads, include_pad, ceil)
    nchw = K.avgpool2d_f32(x, k, s, pads, ceil, include_pad)
    np.testing.assert_allclose(nchw, want, rtol=1e-5, atol=1e-6)
    nhwc = K.avgpool2d_f32(x.transpose(0, 2, 3, 1), k, s, pads, ceil, include_pad, layout="nhwc")
    np.testing.assert_array_equal(nhwc.transpose(0, 3, 1, 2), nchw)  # one definition


@pytest.mark.parametrize("n", [1, 31, 32, 33, 63, 64, 65, 200, 4099])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_lut8_every_table_is_the_lookup(n, dtype):
    rng = np.random.default_rng(n)
    table = rng.integers(0, 256, 256).astype(np.uint8)
    x = codes(rng, n, dtype)
    want = table[x.view(np.uint8)].view(dtype)
    for isa in _kernels.isa_available():
        np.testing.assert_array_equal(K.lut8(x, table, Context(isa)), want)


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 33])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_transpose_of_few_and_many_rows(rows, dtype):
    """NCHW -> NHWC of an image (3 rows), a channel shuffle (2 or 4), any other count."""
    x = np.random.default_rng(rows).standard_normal((2, rows, 45)).astype(dtype)
    for isa in _kernels.isa_available():
        y = np.empty((2, 45, rows), dtype)
        _kernels.check(
            _kernels.lib.pyrt_transpose(
                Context(isa).ptr, x.itemsize, 2, rows, 45, _kernels.ptr(x), _kernels.ptr(y)
            )
        )
        np.testing.assert_array_equal(y, x.transpose(0, 2, 1))


@pytest.mark.parametrize("shape", [(1, 3, 50000), (3, 3, 30001), (1, 33, 4001), (70, 5, 1000)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_transpose_threads(shape, dtype):
    """Large enough to be threaded: pieces of columns of one image (not whole cache lines
    at the end), several matrices, many small matrices; any thread count, same bytes."""
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    want = x.transpose(0, 2, 1)
    for threads in (1, 2, 3):
        y = np.empty(want.shape, dtype)
        _kernels.check(
            _kernels.lib.pyrt_transpose(
                Context(None, threads).ptr, x.itemsize, *shape, _kernels.ptr(x), _kernels.ptr(y)
            )
        )
        np.testing.assert_array_equal(y, want, err_msg=f"threads={threads}")


@pytest.mark.parametrize("channels", [1, 7, 16, 35, 300])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_fp32_pools_are_bit_exact_across_tables(channels, layout):
    """The fp32 max / average pools (pool_f32.h, vectorized by each ISA's compiler flags)
    give the scalar table's bits, NaN and infinities included."""
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((2, channels, 7, 6)).astype(np.float32)
    x.reshape(-1)[::11] = np.nan
    x.reshape(-1)[5::13] = -np.inf
    if layout == "nhwc":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    args = ((3, 3), (2, 1), (1, 1, 1, 0), True)
    ref_max = K.qmaxpool2d(x, *args[:3], ceil_mode=True, ctx=Context("scalar"), layout=layout)
    ref_avg = K.avgpool2d_f32(x, *args, ctx=Context("scalar"), layout=layout)
    for isa in SIMD:
        got = K.qmaxpool2d(x, *args[:3], ceil_mode=True, ctx=Context(isa), layout=layout)
        np.testing.assert_array_equal(got, ref_max)
        got = K.avgpool2d_f32(x, *args, ctx=Context(isa), layout=layout)
        np.testing.assert_array_equal(got, ref_avg)
