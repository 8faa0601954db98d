"""int8 depthwise convolution: every SIMD table bit-exact with the scalar one.

The SIMD depthwise kernels have two weight paths (symmetric weights, every zero
point 0: four taps per vpdpbusd lane; asymmetric: 16-bit w - w_zero) and several
channel blockings (64 channels of one pixel per zmm, or 32 of two, 16 of four),
interior groups of output pixels that step through the input and border ones that
read a row of zero points, and a faster path for 3x3 filters. The cases walk over
those edges: channels around 16 / 32 / 64 and odd, kernels 1x1 to 7x7, strides 1 and
2, dilation, asymmetric and large pads, 1-pixel images, u8 / s8 activations and
weights (u8 weights with zero point 128 are symmetric too), per-tensor and
per-channel zero points and scales, extreme zero points, outputs at both clamps,
accumulators that wrap int32, every output dtype, and threads. The scalar kernel
itself is checked against numpy.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pyrt import _kernels
from pyrt import kernels as K

SIMD = [isa for isa in _kernels.isa_available() if isa != "scalar"]
SCALAR = _kernels.Context("scalar")
OUT_DTYPES = (np.uint8, np.int8, np.int32, np.float32)


def rand_q(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def weight_zero(rng, w_dtype, c: int, kind: str):
    """symmetric: 0 (s8) or 128 (u8), per tensor or per channel; else asymmetric."""
    info = np.iinfo(w_dtype)
    mid = 0 if w_dtype == np.int8 else 128
    if kind == "symmetric":
        return mid
    if kind == "symmetric-per-channel":
        return np.full(c, mid)
    if kind == "min":
        return int(info.min)
    if kind == "max":
        return int(info.max)
    z = rng.integers(info.min, info.max + 1, c)  # per channel, one of them 0 / 128
    z[0] = mid
    return z


def stage(rng, dtype, c: int, per_channel: bool, span: float) -> K.OutputStage:
    """Maps accumulators of about +-span onto a bit more than the range (both clamps)."""
    scale = (rng.uniform(0.5, 2.0, c if per_channel else 1) * 300.0 / max(span, 1.0)).astype(
        np.float32
    )
    dtype = np.dtype(dtype)
    if dtype not in (np.uint8, np.int8):
        return K.OutputStage(dtype, scale)
    info = np.iinfo(dtype)
    zero = int(rng.integers(info.min, info.max + 1))
    lo = int(rng.integers(info.min, zero + 1))
    return K.OutputStage(dtype, scale, zero, lo, info.max)


def case(rng, *, c, h, w, kernel, strides, dilations, pads, i, w_kind, batch=1):
    """A depthwise QConv2d and its input; `i` rotates dtypes, zero points and outputs."""
    x_dtype = (np.uint8, np.int8)[i % 2]
    w_dtype = (np.int8, np.uint8)[(i // 2) % 2]
    out_dtype = OUT_DTYPES[(i // 4) % 4]
    weights = rand_q(rng, (c, 1, *kernel), w_dtype)
    info = np.iinfo(x_dtype)
    x_zero = (int(info.min), int(info.max), int(rng.integers(info.min, info.max + 1)))[i % 3]
    bias = rng.integers(-(2**20), 2**20, c)
    if i % 5 == 4:  # sums that wrap int32
        bias[::3] = 2**31 - 1 - rng.integers(0, 50, bias[::3].shape)
    taps = kernel[0] * kernel[1]
    out = stage(rng, out_dtype, c, bool(i % 3), 128.0 * 128.0 * taps**0.5 * 2)
    conv = K.QConv2d(
        weights,
        weight_zero(rng, w_dtype, c, w_kind),
        bias,
        groups=c,
        strides=strides,
        dilations=dilations,
        pads=pads,
        x_dtype=x_dtype,
        x_zero=x_zero,
        out=out,
    )
    x = rand_q(rng, (batch, h, w, c), x_dtype)
    if i % 7 == 3:  # long runs at the extremes: large sums of one sign
        x[..., : c // 2] = info.max
    return conv, x


def assert_same(isa: str, got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if not np.array_equal(got.view(np.uint8), want.view(np.uint8)):
        bad = np.argwhere(got != want)
        raise AssertionError(
            f"{isa} != scalar for {what}: {len(bad)} of {got.size} differ, first at "
            f"{bad[0].tolist()}: {got[tuple(bad[0])]} vs {want[tuple(bad[0])]}"
        )


W_KINDS = ("symmetric", "symmetric-per-channel", "min", "max", "per-channel")

# channels: around the 16-channel lanes, the 32 / 16 tails and 64-channel blocks
CHANNELS = (1, 3, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 49, 63, 64, 65, 80, 96, 112, 144, 200)

GEOMETRIES = [
    # (h, w, kernel, strides, dilations, pads)
    (7, 9, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    (8, 7, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    (9, 8, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1)),  # TF-style "same" for stride 2
    (6, 10, (3, 3), (1, 1), (1, 1), (0, 0, 0, 0)),
    (5, 6, (3, 3), (1, 2), (1, 1), (2, 0, 1, 3)),
    (6, 7, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2)),
    (1, 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),  # one pixel: every tap but one padding
    (2, 1, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1)),
    (1, 5, (1, 3), (1, 1), (1, 1), (0, 1, 0, 1)),
    (6, 6, (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),
    (9, 9, (5, 5), (2, 2), (1, 1), (1, 2, 2, 1)),
    (4, 5, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
    (5, 4, (2, 2), (1, 1), (1, 1), (1, 0, 0, 1)),
    (3, 4, (2, 3), (1, 1), (1, 2), (0, 1, 1, 0)),
    (8, 8, (7, 7), (2, 2), (1, 1), (3, 3, 3, 3)),
    (3, 12, (3, 1), (1, 2), (1, 1), (1, 0, 1, 0)),
    (4, 4, (3, 3), (1, 1), (1, 1), (4, 4, 4, 4)),  # pads wider than the filter
    (7, 8, (3, 3), (2, 1), (1, 1), (1, 1, 1, 1)),  # stride_h 2: single output rows
    (6, 9, (3, 3), (1, 1), (1, 1), (0, 2, 2, 0)),
    (5, 3, (3, 3), (1, 2), (1, 1), (2, 3, 0, 1)),
]


@pytest.mark.parametrize("isa", SIMD)
@pytest.mark.parametrize("geometry", range(len(GEOMETRIES)))
def test_depthwise_like_scalar(isa, geometry):
    h, w, kernel, strides, dilations, pads = GEOMETRIES[geometry]
    rng = np.random.default_rng(100 + geometry)
    ctx = _kernels.Context(isa)
    for i, c in enumerate(CHANNELS):
        for j, w_kind in enumerate(W_KINDS):
            if (i + j) % 2 and c not in (16, 32, 64, 96, 144):  # half the grid, all kinds
                continue
            conv, x = case(
                rng,
                c=c,
                h=h,
                w=w,
                kernel=kernel,
                strides=strides,
                dilations=dilations,
                pads=pads,
                i=5 * i + j,
                w_kind=w_kind,
            )
            what = f"c={c} {GEOMETRIES[geometry]} w {w_kind} x {x.dtype} -> {conv.out.dtype}"
            assert_same(isa, conv.nhwc(x, ctx), conv.nhwc(x, SCALAR), what)


# MobileNetV2's depthwise layers (smaller images, same channels and strides)
MOBILENET = [(32, 1), (96, 2), (144, 1), (144, 2), (192, 1), (192, 2), (384, 1), (576, 1), (960, 1)]


@pytest.mark.parametrize("isa", SIMD)
def test_mobilenet_shapes_every_dtype(isa):
    rng = np.random.default_rng(7)
    ctx = _kernels.Context(isa)
    for (c, s), i in itertools.product(MOBILENET, range(8)):
        size = 15 if c < 200 else 7
        conv, x = case(
            rng,
            c=c,
            h=size,
            w=size + 1,
            kernel=(3, 3),
            strides=(s, s),
            dilations=(1, 1),
            pads=(1, 1, 1, 1),
            i=i,
            w_kind=W_KINDS[i % 2],
            batch=1 + i % 2,
        )
        assert_same(isa, conv.nhwc(x, ctx), conv.nhwc(x, SCALAR), f"c={c} s={s} i={i}")


@pytest.mark.parametrize("isa", SIMD)
def test_threads_identical(isa):
    rng = np.random.default_rng(8)
    for c, s, w_kind in [(32, 1, "symmetric"), (144, 2, "symmetric"), (40, 1, "per-channel")]:
        conv, x = case(
            rng,
            c=c,
            h=13,
            w=11,
            kernel=(3, 3),
            strides=(s, s),
            dilations=(1, 1),
            pads=(1, 1, 1, 1),
            i=0,
            w_kind=w_kind,
            batch=2,
        )
        want = conv.nhwc(x, SCALAR)
        for threads in (1, 2, 3):
            got = conv.nhwc(x, _kernels.Context(isa, threads))
            assert_same(isa, got, want, f"c={c} s={s} threads={threads}")


def numpy_depthwise(conv: K.QConv2d, x: np.ndarray) -> np.ndarray:
    """int64 reference of the accumulators (wrapped to int32) for an NHWC input."""
    n, h, w, c = x.shape
    kh, kw = conv.w.shape[2:]
    (sh, sw), (dh, dw) = conv.strides, conv.dilations
    top, left, bottom, right = conv.pads
    xp = np.full((n, h + top + bottom, w + left + right, c), conv.x_zero, np.int64)
    xp[:, top : top + h, left : left + w] = x
    zero = np.broadcast_to(conv.zero.astype(np.int64), (c,))
    wt = conv.w[:, 0].astype(np.int64) - zero[:, None, None]  # [c][kh][kw]
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    acc = np.zeros((n, oh, ow, c), np.int64)
    for ky, kx in itertools.product(range(kh), range(kw)):
        patch = xp[
            :,
            ky * dh : ky * dh + sh * (oh - 1) + 1 : sh,
            kx * dw : kx * dw + sw * (ow - 1) + 1 : sw,
        ]
        acc += (patch - conv.x_zero) * wt[:, ky, kx]
    acc += np.asarray(conv.bias, np.int64)
    return ((acc + 2**31) % 2**32 - 2**31).astype(np.int32)


def test_scalar_matches_numpy():
    rng = np.random.default_rng(9)
    for i, (c, geometry) in enumerate(itertools.product((1, 17, 64), GEOMETRIES[:8])):
        h, w, kernel, strides, dilations, pads = geometry
        conv, x = case(
            rng,
            c=c,
            h=h,
            w=w,
            kernel=kernel,
            strides=strides,
            dilations=dilations,
            pads=pads,
            i=8 + i % 4,  # int32 output (raw accumulators), u8 / s8 x and weights
            w_kind=W_KINDS[i % len(W_KINDS)],
        )
        assert conv.out.dtype == np.int32
        np.testing.assert_array_equal(conv.nhwc(x, SCALAR), numpy_depthwise(conv, x), f"{geometry}")


@pytest.mark.parametrize("isa", SIMD)
def test_output_stage_extremes(isa):
    """Scales up to 1e9: acc * scale far outside int32 on both sides, zero points at the
    dtype's ends and narrow clamps (the SIMD epilogue saturates in several steps)."""
    rng = np.random.default_rng(10)
    ctx = _kernels.Context(isa)
    for c, out_dtype in itertools.product((16, 64, 80), (np.uint8, np.int8)):
        info = np.iinfo(out_dtype)
        for zero, lo, hi in [
            (int(info.min), int(info.min), int(info.max)),
            (int(info.max), int(info.min), int(info.max)),
            (0, int(info.min) + 3, int(info.max) - 5),
            (int(info.max), int(info.max), int(info.max)),
        ]:
            scale = 10.0 ** rng.uniform(-3, 9, c)
            out = K.OutputStage(out_dtype, scale.astype(np.float32), zero, lo, hi)
            w = rand_q(rng, (c, 1, 3, 3), np.int8)
            conv = K.QConv2d(
                w,
                0,
                rng.integers(-(2**31), 2**31, c),
                groups=c,
                strides=(1, 1),
                dilations=(1, 1),
                pads=(1, 1, 1, 1),
                x_dtype=np.uint8,
                x_zero=int(rng.integers(0, 256)),
                out=out,
            )
            x = rand_q(rng, (1, 5, 6, c), np.uint8)
            assert_same(isa, conv.nhwc(x, ctx), conv.nhwc(x, SCALAR), f"c={c} {out}")
