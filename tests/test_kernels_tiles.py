"""Every SIMD kernel table bit-exact against the scalar table (XNNPACK's per-kernel tester).

For each ISA this CPU offers besides scalar, the same packed op runs on a scalar
Context and on that ISA's Context, and the outputs must be identical, over the
shapes where tiles break: M, N and K around every tile's MR, NR and K group
(scalar 4x16x1, AVX2 6x16x2, AVX-VNNI 6x16x4, AVX512-VNNI 8x32x4 and their
multiples), 1x1 and KxK convolutions with strides, dilations, asymmetric pads and
groups, depthwise with odd channel counts, u8/s8 activations and weights with
extreme per-channel zero points (the row-sum path), outputs at both clamps,
accumulators that wrap int32, per-tensor and per-channel scales, all output
dtypes, and 1, 2 or 3 threads. The numpy references live in
test_kernels_qmatmul.py (which runs on every ISA too).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrt import _kernels
from pyrt import kernels as K

SIMD = [isa for isa in _kernels.isa_available() if isa != "scalar"]
pytestmark = pytest.mark.skipif(not SIMD, reason="this CPU offers only the scalar table")

OUT_DTYPES = (np.uint8, np.int8, np.int32, np.float32)
QTYPES = (np.uint8, np.int8)
SCALAR = _kernels.Context("scalar")
CONTEXTS = {isa: _kernels.Context(isa) for isa in SIMD}


def rand_q(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def zero_points(rng: np.random.Generator, dtype, n: int, kind: int) -> np.ndarray | int:
    """Kind 0: 0; 1: the dtype's min; 2: its max; 3: random per channel incl. both ends."""
    info = np.iinfo(dtype)
    if kind == 0:
        return 0
    if kind == 1:
        return int(info.min)
    if kind == 2:
        return int(info.max)
    z = rng.integers(info.min, info.max + 1, n)
    z[:: max(n // 2, 1)] = info.min
    z[-1] = info.max
    return z


def stage(rng: np.random.Generator, dtype, channels: int, per_channel: bool, span: float):
    """An output stage mapping accumulators of about +-span onto a bit more than the range,
    so that outputs hit both clamps; with a ReLU-like narrowed clamp for u8/s8."""
    n = channels if per_channel else 1
    scale = (rng.uniform(0.5, 2.0, n) * 300.0 / max(span, 1.0)).astype(np.float32)
    dtype = np.dtype(dtype)
    if dtype not in QTYPES:
        return K.OutputStage(dtype, scale)
    info = np.iinfo(dtype)
    zero = int(rng.integers(info.min, info.max + 1))
    lo = int(rng.integers(info.min, zero + 1))
    hi = int(rng.integers(zero, info.max + 1)) if rng.random() < 0.5 else int(info.max)
    return K.OutputStage(dtype, scale, zero, lo, hi)


def assert_same(isa: str, got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if not np.array_equal(got.view(np.uint8), want.view(np.uint8)):
        bad = np.argwhere(got != want)
        raise AssertionError(
            f"{isa} != scalar for {what}: {len(bad)} of {got.size} differ, first at "
            f"{bad[0].tolist()}: {got[tuple(bad[0])]} vs {want[tuple(bad[0])]}"
        )


def gemm_case(rng, m, n, k, i, *, big_bias=False):
    """A QGemm case; `i` rotates dtypes, zero points, scales and output dtype."""
    x_dtype, w_dtype = QTYPES[i % 2], QTYPES[(i // 2) % 2]
    out_dtype = OUT_DTYPES[(i // 4) % 4]
    w = rand_q(rng, (n, k), w_dtype)
    w_zero = zero_points(rng, w_dtype, n, i % 4)
    x_zero = zero_points(rng, x_dtype, 1, (i // 3) % 3)
    bias = rng.integers(-(2**20), 2**20, n)
    if big_bias:  # int32 sums that wrap
        bias[::2] = 2**31 - 1 - rng.integers(0, 100, bias[::2].shape)
        bias[1::2] = -(2**31) + rng.integers(0, 100, bias[1::2].shape)
    span = 128.0 * 128.0 * k**0.5 * 2
    out = stage(rng, out_dtype, n, bool(i % 3), span)
    q = K.QGemm(w, w_zero, bias, x_dtype, x_zero, out)
    return q, rand_q(rng, (m, k), x_dtype)


# Tile edges: MR in {4, 6, 8}, NR in {16, 32}, K groups 1, 2, 4, band edges.
MS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 17, 25)
NS = (1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65)
KS = (1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 31, 33, 64, 65)


@pytest.mark.parametrize("isa", SIMD)
def test_qgemm_tile_edges(isa):
    rng = np.random.default_rng(11)
    ctx = CONTEXTS[isa]
    for i, (n, k) in enumerate(itertools.product(NS, KS)):
        q, x = gemm_case(rng, max(MS), n, k, i)
        for m in MS[i % 3 :: 3] + (max(MS),):  # every M for some (N, K)
            rows = np.ascontiguousarray(x[:m])
            assert_same(isa, q.rows(rows, ctx), q.rows(rows, SCALAR), f"qgemm m={m} n={n} k={k}")


@pytest.mark.parametrize("isa", SIMD)
def test_qgemm_wraps_and_saturates_like_scalar(isa):
    rng = np.random.default_rng(12)
    for i, (m, n, k) in enumerate([(9, 33, 17), (8, 32, 64), (13, 65, 300), (25, 16, 1)]):
        for j in range(4):
            q, x = gemm_case(rng, m, n, k, 4 * i + j, big_bias=True)
            x[:, : k // 2] = np.iinfo(x.dtype).max  # large sums of one sign
            assert_same(isa, q.rows(x, CONTEXTS[isa]), q.rows(x, SCALAR), f"wrap {m}x{n}x{k}")


@pytest.mark.parametrize("isa", SIMD)
def test_qgemm_extreme_scales_like_scalar(isa):
    """Products past int32 and past float (scale up to 3e38: +-inf) clamp like scalar."""
    rng = np.random.default_rng(14)
    for scale in (1e4, 1e9, 3e38, 1e-30):
        for dtype in (np.uint8, np.int8):
            info = np.iinfo(dtype)
            zero = int(rng.integers(info.min, info.max + 1))
            out = K.OutputStage(dtype, np.float32(scale), zero, int(info.min), int(info.max))
            w = rand_q(rng, (40, 33), np.int8)
            q = K.QGemm(w, 0, rng.integers(-(2**20), 2**20, 40), np.uint8, 3, out)
            x = rand_q(rng, (11, 33), np.uint8)
            assert_same(isa, q.rows(x, CONTEXTS[isa]), q.rows(x, SCALAR), f"scale {scale}")


@pytest.mark.parametrize("isa", SIMD)
def test_qgemm_large_k_and_bands(isa):
    """K beyond any unroll, M large enough for several bands and threads, and small M
    with K off the K group (rows packed once for all panel chunks)."""
    rng = np.random.default_rng(13)
    shapes = [(3, 40, 4608), (700, 72, 576), (1000, 24, 147), (97, 520, 96), (5, 130, 301)]
    for i, (m, n, k) in enumerate(shapes):
        q, x = gemm_case(rng, m, n, k, i)
        want = q.rows(x, SCALAR)
        for threads in (1, 2, 3):
            got = q.rows(x, _kernels.Context(isa, threads))
            assert_same(isa, got, want, f"qgemm {m}x{n}x{k} threads={threads}")


def conv_case(rng, *, n, c, h, w, o, groups, kernel, strides, dilations, pads, i):
    x_dtype, w_dtype = QTYPES[i % 2], QTYPES[(i // 2) % 2]
    out_dtype = OUT_DTYPES[(i // 4) % 4]
    weights = rand_q(rng, (o, c // groups, *kernel), w_dtype)
    w_zero = zero_points(rng, w_dtype, o, (i + 1) % 4)
    x_zero = zero_points(rng, x_dtype, 1, i % 3)
    bias = rng.integers(-(2**20), 2**20, o)
    if i % 5 == 4:
        bias[::3] = 2**31 - 1  # wraps
    taps = c // groups * kernel[0] * kernel[1]
    out = stage(rng, out_dtype, o, bool(i % 3), 128.0 * 128.0 * taps**0.5 * 2)
    conv = K.QConv2d(
        weights,
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
    return conv, rand_q(rng, (n, h, w, c), x_dtype)


CONVS = [
    # (c, h, w, o, groups, kernel, strides, dilations, pads)
    (3, 9, 11, 17, 1, (7, 7), (2, 2), (1, 1), (3, 3, 3, 3)),  # a stem
    (16, 6, 7, 33, 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),  # direct 1x1
    (17, 7, 6, 31, 1, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0)),  # strided 1x1 (im2col)
    (13, 8, 8, 65, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (8, 9, 10, 16, 1, (3, 3), (2, 1), (2, 1), (0, 2, 1, 0)),  # asymmetric pads, dilation
    (5, 7, 9, 9, 1, (2, 3), (1, 2), (1, 2), (1, 0, 0, 2)),
    (12, 6, 6, 18, 3, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # groups
    (32, 5, 5, 64, 4, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),  # grouped 1x1
    (64, 4, 4, 40, 1, (3, 3), (1, 1), (1, 1), (0, 0, 0, 0)),
]


@pytest.mark.parametrize("isa", SIMD)
def test_qconv2d_like_scalar(isa):
    rng = np.random.default_rng(14)
    for i, (spec, batch) in enumerate(itertools.product(CONVS, (1, 2))):
        c, h, w, o, groups, kernel, strides, dilations, pads = spec
        for j in range(2):
            conv, x = conv_case(
                rng,
                n=batch,
                c=c,
                h=h,
                w=w,
                o=o,
                groups=groups,
                kernel=kernel,
                strides=strides,
                dilations=dilations,
                pads=pads,
                i=2 * i + j,
            )
            assert_same(isa, conv.nhwc(x, CONTEXTS[isa]), conv.nhwc(x, SCALAR), f"conv {spec}")


DEPTHWISE = [
    # (c, h, w, kernel, strides, dilations, pads)
    (1, 5, 5, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (7, 6, 9, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    (8, 7, 7, (3, 3), (1, 1), (1, 1), (0, 0, 0, 0)),
    (9, 5, 8, (3, 3), (2, 2), (1, 1), (0, 1, 1, 0)),
    (15, 9, 6, (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),
    (16, 6, 6, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2)),
    (17, 4, 11, (1, 3), (1, 2), (1, 1), (0, 1, 0, 1)),
    (31, 3, 3, (2, 2), (1, 1), (1, 1), (1, 0, 0, 1)),
    (33, 9, 9, (7, 7), (2, 2), (1, 1), (3, 3, 3, 3)),
    (40, 4, 5, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
    (96, 6, 6, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1)),
]


@pytest.mark.parametrize("isa", SIMD)
def test_depthwise_like_scalar(isa):
    rng = np.random.default_rng(15)
    for i, (spec, batch) in enumerate(itertools.product(DEPTHWISE, (1, 2))):
        c, h, w, kernel, strides, dilations, pads = spec
        for j in range(4):
            conv, x = conv_case(
                rng,
                n=batch,
                c=c,
                h=h,
                w=w,
                o=c,
                groups=c,
                kernel=kernel,
                strides=strides,
                dilations=dilations,
                pads=pads,
                i=4 * i + j,
            )
            want = conv.nhwc(x, SCALAR)
            assert_same(isa, conv.nhwc(x, CONTEXTS[isa]), want, f"depthwise {spec}")
            if j == 0:
                for threads in (2, 3):
                    got = conv.nhwc(x, _kernels.Context(isa, threads))
                    assert_same(isa, got, want, f"depthwise {spec} threads={threads}")


@pytest.mark.parametrize("isa", SIMD)
def test_conv_threads_identical(isa):
    rng = np.random.default_rng(16)
    conv, x = conv_case(
        rng,
        n=2,
        c=24,
        h=15,
        w=13,
        o=40,
        groups=1,
        kernel=(3, 3),
        strides=(1, 1),
        dilations=(1, 1),
        pads=(1, 1, 1, 1),
        i=3,
    )
    want = conv.nhwc(x, SCALAR)
    for threads in (1, 2, 3):
        assert_same(isa, conv.nhwc(x, _kernels.Context(isa, threads)), want, f"threads={threads}")


@pytest.mark.parametrize("isa", SIMD)
def test_conv_band_in_panel_chunks(isa):
    """Few output pixels, many channels: few bands of im2col rows, each split into panel
    chunks, so that with threads A is packed once up front by all of them (rows not
    aligned to tiles), with weights within and beyond the L2 bound, every zero-point kind
    (the row sums packed with A) and s8 activations (the flip)."""
    rng = np.random.default_rng(18)
    shapes = [(96, 5, 4, 200), (256, 4, 4, 288), (40, 6, 7, 130)]
    for i, (c, h, w, o) in enumerate(shapes * 4):
        conv, x = conv_case(
            rng,
            n=1,
            c=c,
            h=h,
            w=w,
            o=o,
            groups=1,
            kernel=(3, 3),
            strides=(1, 1),
            dilations=(1, 1),
            pads=(1, 1, 1, 1),
            i=i,
        )
        want = conv.nhwc(x, SCALAR)
        for threads in (1, 2, 3):
            got = conv.nhwc(x, _kernels.Context(isa, threads))
            assert_same(isa, got, want, f"conv {c}x{h}x{w}->{o} i={i} threads={threads}")


@pytest.mark.parametrize("isa", SIMD)
def test_requantize_like_scalar(isa):
    rng = np.random.default_rng(17)
    for i, (rows, cols) in enumerate(itertools.product((1, 3, 7), (1, 7, 8, 9, 15, 16, 17, 33))):
        acc = rng.integers(-(2**31), 2**31, (rows, cols)).astype(np.int32)
        acc.flat[::3] = rng.integers(-600, 600, acc.flat[::3].shape)  # near the ties
        channels = rows if i % 2 else 1
        for out_dtype in OUT_DTYPES:
            out = stage(rng, out_dtype, channels, channels > 1, 1000.0)
            if np.dtype(out_dtype) in QTYPES and i % 3 == 0:
                out.scale = np.float32(0.5)  # exact ties: half to even
            want = K.requantize(acc, channels, out, SCALAR)
            got = K.requantize(acc, channels, out, CONTEXTS[isa])
            assert_same(isa, got, want, f"requantize {rows}x{cols} {np.dtype(out_dtype)}")


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 80),
    k=st.integers(1, 80),
    i=st.integers(0, 63),
    seed=st.integers(0, 2**31),
)
def test_qgemm_property(m, n, k, i, seed):
    rng = np.random.default_rng(seed)
    q, x = gemm_case(rng, m, n, k, i, big_bias=i % 7 == 0)
    want = q.rows(x, SCALAR)
    for isa in SIMD:
        assert_same(isa, q.rows(x, CONTEXTS[isa]), want, f"qgemm {m}x{n}x{k} case {i}")
