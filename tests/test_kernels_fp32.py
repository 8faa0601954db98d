"""fp32 GEMM and Conv2D (NHWC, depthwise) against numpy, and every SIMD tile against scalar.

The kernels document one arithmetic for every ISA (kernels.h: fma over k
ascending from the bias, then the clamp). numpy has no fma, so the scalar
kernel is checked against a float64 reference within a rounding bound, and
every SIMD table must then reproduce the scalar results bit for bit, on
shapes around their tile edges (MR, NR, the K block) and for 1, 2 and 3
threads. A single-node onnxruntime model pins the ONNX Conv semantics.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

import pyrt
from pyrt import _kernels
from pyrt import kernels as K
from pyrt._kernels import ffi, lib

F32 = np.float32
SIMD = [isa for isa in _kernels.isa_available() if isa != "scalar"]
CONTEXTS: dict[tuple[str, int], _kernels.Context] = {}


def ctx(isa: str, threads: int = 1) -> _kernels.Context:
    if (isa, threads) not in CONTEXTS:
        CONTEXTS[isa, threads] = _kernels.Context(isa, threads)
    return CONTEXTS[isa, threads]


def last_error() -> str:
    return ffi.string(lib.pyrt_last_error()).decode()


def assert_close(y, ref, bound):
    """|y - ref| within a float32 rounding bound of the float64 reference."""
    assert y.shape == ref.shape
    assert np.all(np.abs(y - ref) <= 1e-5 * bound + 1e-30), np.abs(y - ref).max()


def assert_same_everywhere(run, reference):
    """run(ctx) gives `reference` (the scalar result) bit for bit on every ISA and thread count."""
    for isa in ["scalar", *SIMD]:
        for threads in (1, 2, 3):
            np.testing.assert_array_equal(run(ctx(isa, threads)), reference, f"{isa} x{threads}")


# ---- fp32 GEMM --------------------------------------------------------------


def gemm_ref64(w, x_rows, bias, lo, hi):
    """clamp(x @ w.T + bias) in float64, and the bound |x| @ |w|.T + |bias| for its error."""
    w64, x64 = w.astype(np.float64), x_rows.astype(np.float64)
    ref = x64 @ w64.T
    bound = np.abs(x64) @ np.abs(w64).T
    if bias is not None:
        ref += bias
        bound += np.abs(bias)
    return np.clip(ref, lo, hi), bound


def random_gemm(rng, m, n, k, with_bias=True):
    w = rng.standard_normal((n, k)).astype(F32)
    x = rng.standard_normal((m, k)).astype(F32)
    bias = rng.standard_normal(n).astype(F32) if with_bias else None
    return w, x, bias


@pytest.mark.parametrize(
    "m,n,k", [(1, 1, 1), (7, 3, 5), (9, 130, 300), (33, 17, 1), (200, 64, 27), (3, 50, 1030)]
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_sgemm_scalar_matches_numpy(m, n, k, with_bias):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    w, x, bias = random_gemm(rng, m, n, k, with_bias)
    gemm = K.Gemm(w, bias)
    y = gemm.rows(x, ctx("scalar"))
    assert y.dtype == F32 and y.shape == (m, n)
    ref, bound = gemm_ref64(w, x, bias, -np.inf, np.inf)
    assert_close(y, ref, bound)
    np.testing.assert_array_equal(gemm(x.T, ctx("scalar")), y.T)  # the [K, N] orientation


# Around every tile's MR (4, 6, 14), NR (8, 16, 32) and K block (128, 256).
EDGE_M = [1, 3, 4, 5, 6, 7, 13, 14, 15, 29, 61]
EDGE_N = [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 65]
EDGE_K = [1, 2, 127, 128, 129, 255, 256, 257, 600]


@pytest.mark.skipif(not SIMD, reason="this CPU offers no SIMD table")
@pytest.mark.parametrize("k", EDGE_K)
def test_sgemm_tiles_bit_exact_with_scalar(k):
    rng = np.random.default_rng(k)
    for i, (m, n) in enumerate((m, n) for m in EDGE_M for n in EDGE_N):
        if (i + k) % 3:  # a third of the M x N grid per K, every M and N seen
            continue
        w, x, bias = random_gemm(rng, m, n, k, with_bias=i % 2 == 0)
        lo, hi = (-0.5, 1.5) if i % 4 == 0 else (-np.inf, np.inf)
        gemm = K.Gemm(w, bias, lo=lo, hi=hi)
        expect = gemm.rows(x, ctx("scalar"))
        for isa in SIMD:
            np.testing.assert_array_equal(gemm.rows(x, ctx(isa)), expect, f"{isa} {m}x{n}x{k}")


def test_sgemm_rows_4k_apart_bit_exact():
    """Rows 4 KiB apart (K 1024, K 4608 im2col) make the driver copy K blocks of A first."""
    rng = np.random.default_rng(8)
    w, x, bias = random_gemm(rng, 29, 40, 1024)
    gemm = K.Gemm(w, bias)
    expect = gemm.rows(x, ctx("scalar"))
    assert_close(expect, *gemm_ref64(w, x, bias, -np.inf, np.inf))
    assert_same_everywhere(lambda c: gemm.rows(x, c), expect)
    for cin, kernel, stride in ((1024, 1, 2), (512, 3, 1)):
        x, w, bias = random_conv(rng, (1, cin, 5, 4), 20, (kernel, kernel), 1)
        pads = (kernel // 2,) * 4
        conv = K.Conv2d(w, bias, groups=1, strides=(stride,) * 2, dilations=(1, 1), pads=pads)
        y = conv(x, ctx("scalar"))
        ref, bound = conv_ref64(x, w, bias, 1, (stride,) * 2, (1, 1), pads)
        assert_close(y, ref, bound)
        assert_same_everywhere(lambda c, conv=conv, x=x: conv(x, c), y)


def test_sgemm_threads_and_isas_identical():
    rng = np.random.default_rng(5)
    w, x, bias = random_gemm(rng, 157, 70, 300)
    gemm = K.Gemm(w, bias, lo=0.0)
    expect = gemm.rows(x, ctx("scalar"))
    ref, bound = gemm_ref64(w, x, bias, 0.0, np.inf)
    assert_close(expect, ref, bound)
    assert_same_everywhere(lambda c: gemm.rows(x, c), expect)


def test_sgemm_clamp_and_special_values():
    rng = np.random.default_rng(1)
    w, x, bias = random_gemm(rng, 21, 6, 40)
    gemm = K.Gemm(w, bias, lo=-0.5, hi=6.0)
    y = gemm.rows(x, ctx("scalar"))
    ref, bound = gemm_ref64(w, x, bias, -0.5, 6.0)
    assert_close(y, ref, bound)
    assert y.min() == -0.5 and y.max() <= 6.0
    x[4, 3] = np.inf  # Inf and NaN flow through, the clamp passes NaN
    x[7, 5] = np.nan
    y = gemm.rows(x, ctx("scalar"))
    assert np.isnan(y[7]).all() and not np.isnan(np.delete(y, 7, axis=0)).any()
    assert_same_everywhere(lambda c: gemm.rows(x, c), y)


def test_sgemm_rows_into_given_output():
    rng = np.random.default_rng(6)
    w, x, bias = random_gemm(rng, 10, 5, 8)
    gemm = K.Gemm(w, bias)
    y = np.full((10, 5), 7.0, F32)
    assert gemm.rows(x, y=y) is y
    np.testing.assert_array_equal(y, gemm.rows(x))
    with pytest.raises(pyrt.KernelError, match="C-contiguous"):
        gemm.rows(x, y=np.empty((5, 10), F32))
    assert gemm.rows(np.empty((0, 8), F32)).shape == (0, 5)


def test_sgemm_strided_rows_through_lib():
    rng = np.random.default_rng(2)
    m, n, k, lda, ldy = 13, 5, 11, 20, 17
    w = rng.standard_normal((n, k)).astype(F32)
    abuf = rng.standard_normal((m, lda)).astype(F32)
    c = _kernels.default_context().ptr
    packed = K._aligned_buffer(lib.pyrt_sgemm_packed_size(c, n, k))
    _kernels.check(lib.pyrt_sgemm_pack(c, n, k, _kernels.ptr(w, "float *"), _kernels.ptr(packed)))
    ybuf = np.full((m, ldy), 7.0, F32)
    status = lib.pyrt_sgemm(
        c,
        m,
        n,
        k,
        _kernels.ptr(abuf, "float *"),
        lda,
        _kernels.ptr(packed),
        ffi.NULL,
        -math.inf,
        math.inf,
        _kernels.ptr(ybuf, "float *"),
        ldy,
    )
    assert status == lib.PYRT_OK, last_error()
    np.testing.assert_array_equal(ybuf[:, :n], K.Gemm(w, None).rows(abuf[:, :k]))
    assert np.all(ybuf[:, n:] == 7.0)  # columns past N untouched


def test_sgemm_rejects_bad_arguments():
    w = np.ones((4, 6), F32)
    with pytest.raises(pyrt.KernelError):
        K.Gemm(np.ones(4, F32), None)
    with pytest.raises(pyrt.KernelError):
        K.Gemm(w, np.ones(3, F32))
    with pytest.raises(pyrt.KernelError):
        K.Gemm(w, None)(np.ones((5, 2), F32))
    with pytest.raises(pyrt.KernelError):
        K.Gemm(w, None).rows(np.ones((2, 5), F32))
    with pytest.raises(pyrt.KernelError, match="clamp"):
        K.Gemm(w, None, lo=np.nan)
    with pytest.raises(pyrt.KernelError, match="clamp"):
        K.Gemm(w, None, lo=1.0, hi=0.0)
    c = _kernels.default_context().ptr
    packed = K._aligned_buffer(lib.pyrt_sgemm_packed_size(c, 4, 6))
    _kernels.check(lib.pyrt_sgemm_pack(c, 4, 6, _kernels.ptr(w, "float *"), _kernels.ptr(packed)))
    x = np.ones((3, 6), F32)
    y = np.empty((3, 5), F32)
    xp, yp, pp = _kernels.ptr(x, "float *"), _kernels.ptr(y, "float *"), _kernels.ptr(packed)
    clamp = (ffi.NULL, -math.inf, math.inf)
    assert lib.pyrt_sgemm(c, 3, 5, 6, xp, 6, pp, *clamp, yp, 5) == lib.PYRT_ERR_PACK  # N=4 pack
    assert "packed as 4 x 6" in last_error()
    assert lib.pyrt_sgemm(c, 3, 4, 6, xp, 6, ffi.NULL, *clamp, yp, 4) == lib.PYRT_ERR_ARG
    assert lib.pyrt_sgemm(c, 3, 4, 6, xp, 6, pp, *clamp, ffi.NULL, 4) == lib.PYRT_ERR_ARG
    assert lib.pyrt_sgemm(c, 0, 4, 6, xp, 6, pp, *clamp, yp, 4) == lib.PYRT_ERR_ARG
    assert lib.pyrt_sgemm(c, 3, 4, 6, xp, 5, pp, *clamp, yp, 4) == lib.PYRT_ERR_ARG  # lda < K
    assert lib.pyrt_sgemm(c, 3, 4, 6, xp, 6, pp, ffi.NULL, 1.0, 0.0, yp, 4) == lib.PYRT_ERR_ARG
    assert "clamp" in last_error()
    garbage = np.zeros_like(packed)
    assert lib.pyrt_sgemm(c, 3, 4, 6, xp, 6, _kernels.ptr(garbage), *clamp, yp, 4) == (
        lib.PYRT_ERR_PACK
    )
    assert lib.pyrt_sgemm_packed_size(c, 0, 3) == 0
    assert lib.pyrt_sgemm_pack(c, 4, -1, _kernels.ptr(w, "float *"), pp) == lib.PYRT_ERR_ARG


def test_sgemm_pack_of_another_isa_is_refused():
    if not SIMD:
        pytest.skip("this CPU offers no SIMD table")
    w = np.ones((4, 6), F32)
    a, b = ctx("scalar").ptr, ctx(SIMD[-1]).ptr
    packed = K._aligned_buffer(max(lib.pyrt_sgemm_packed_size(a, 4, 6), 1 << 12))
    _kernels.check(lib.pyrt_sgemm_pack(a, 4, 6, _kernels.ptr(w, "float *"), _kernels.ptr(packed)))
    x, y = np.ones((2, 6), F32), np.empty((2, 4), F32)
    status = lib.pyrt_sgemm(
        b, 2, 4, 6, _kernels.ptr(x, "float *"), 6, _kernels.ptr(packed), ffi.NULL,
        -math.inf, math.inf, _kernels.ptr(y, "float *"), 4,
    )  # fmt: skip
    assert status == lib.PYRT_ERR_PACK and "another ISA" in last_error()


# ---- fp32 Conv2d ------------------------------------------------------------


def out_size(n: int, k: int, s: int, d: int, p0: int, p1: int) -> int:
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def conv_ref64(x, w, bias, groups, strides, dilations, pads, lo=-np.inf, hi=np.inf):
    """NCHW convolution in float64 with zero padding, and the bound for its rounding error."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    x, w = x.astype(np.float64), w.astype(np.float64)
    xp = np.pad(x, [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])])
    oh = out_size(h, kh, strides[0], dilations[0], pads[0], pads[2])
    ow = out_size(wd, kw, strides[1], dilations[1], pads[1], pads[3])
    y = np.zeros((n, o, oh, ow))
    bound = np.zeros((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        for ci in range(cg):
            for ky in range(kh):
                for kx in range(kw):
                    ys, xs = ky * dilations[0], kx * dilations[1]
                    patch = xp[
                        :,
                        g * cg + ci,
                        ys : ys + strides[0] * (oh - 1) + 1 : strides[0],
                        xs : xs + strides[1] * (ow - 1) + 1 : strides[1],
                    ]
                    wv = w[g * og : (g + 1) * og, ci, ky, kx]
                    y[:, g * og : (g + 1) * og] += wv[None, :, None, None] * patch[:, None]
                    bound[:, g * og : (g + 1) * og] += np.abs(
                        wv[None, :, None, None] * patch[:, None]
                    )
    if bias is not None:
        y += bias[None, :, None, None]
        bound += np.abs(bias)[None, :, None, None]
    return np.clip(y, lo, hi), bound


def random_conv(rng, x_shape, out_c, kernel, groups, with_bias=True):
    x = rng.standard_normal(x_shape).astype(F32)
    w = rng.standard_normal((out_c, x_shape[1] // groups, *kernel)).astype(F32)
    bias = rng.standard_normal(out_c).astype(F32) if with_bias else None
    return x, w, bias


CONV_CASES = [
    # x shape (NCHW), out_c, kernel, groups, strides, dilations, pads
    ((1, 3, 9, 11), 8, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1)),
    ((2, 4, 7, 6), 6, (3, 2), 2, (2, 1), (1, 2), (0, 2, 1, 0)),
    ((1, 8, 10, 10), 8, (3, 3), 8, (1, 1), (1, 1), (1, 1, 1, 1)),  # depthwise
    ((2, 6, 9, 8), 6, (3, 3), 6, (2, 2), (1, 1), (0, 1, 1, 0)),  # depthwise stride 2
    ((1, 37, 8, 9), 37, (5, 3), 37, (1, 2), (2, 1), (4, 2, 3, 0)),  # depthwise odd C, dilated
    ((1, 4, 8, 9), 8, (3, 3), 4, (1, 1), (1, 1), (1, 1, 1, 1)),  # channel multiplier 2: GEMM
    ((1, 5, 6, 7), 7, (1, 1), 1, (1, 1), (1, 1), (0, 0, 0, 0)),  # 1x1 direct
    ((2, 6, 5, 4), 4, (1, 1), 2, (1, 1), (1, 1), (0, 0, 0, 0)),  # grouped 1x1 direct
    ((1, 5, 9, 7), 3, (1, 1), 1, (2, 3), (1, 1), (1, 0, 0, 2)),  # 1x1 strided, padded
    ((1, 2, 4, 5), 3, (3, 3), 1, (1, 1), (1, 1), (5, 0, 3, 7)),  # pads > kernel
    ((1, 1, 1, 1), 1, (1, 1), 1, (1, 1), (1, 1), (0, 0, 0, 0)),  # 1x1 everything
    ((1, 3, 1, 1), 2, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1)),  # 1x1 image, padded
    ((1, 1, 12, 12), 5, (3, 3), 1, (3, 3), (2, 2), (2, 1, 0, 3)),
    ((1, 64, 3, 60), 33, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1)),  # K 576: K blocks
    ((1, 3, 2, 2), 3, (5, 5), 3, (1, 1), (1, 1), (2, 2, 2, 2)),  # depthwise, no interior
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv2d_matches_numpy_and_scalar(case):
    x_shape, out_c, kernel, groups, strides, dilations, pads = case
    rng = np.random.default_rng(sum(x_shape) + out_c)
    for with_bias in (True, False):
        x, w, bias = random_conv(rng, x_shape, out_c, kernel, groups, with_bias)
        conv = K.Conv2d(w, bias, groups=groups, strides=strides, dilations=dilations, pads=pads)
        y = conv(x, ctx("scalar"))
        ref, bound = conv_ref64(x, w, bias, groups, strides, dilations, pads)
        assert_close(y, ref, bound)
        assert_same_everywhere(lambda c, conv=conv, x=x: conv(x, c), y)


def test_conv2d_nhwc_is_the_kernel_layout():
    rng = np.random.default_rng(7)
    x, w, bias = random_conv(rng, (2, 6, 7, 5), 10, (3, 3), 2)
    conv = K.Conv2d(w, bias, groups=2, strides=(2, 1), dilations=(1, 1), pads=(1, 0, 1, 2))
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = conv.nhwc(x_nhwc)
    np.testing.assert_array_equal(y, conv(x).transpose(0, 2, 3, 1))
    out = np.empty_like(y)
    assert conv.nhwc(x_nhwc, y=out) is out
    np.testing.assert_array_equal(out, y)
    with pytest.raises(pyrt.KernelError, match="C-contiguous"):
        conv.nhwc(x_nhwc, y=np.empty(y.shape[::-1], F32))
    assert conv.nhwc(np.empty((0, 7, 5, 6), F32)).shape == (0, *y.shape[1:])


@pytest.mark.parametrize("channels", [1, 3, 8, 17, 33, 64, 100])
def test_depthwise_channels_vectorised_bit_exact(channels):
    rng = np.random.default_rng(channels)
    x, w, bias = random_conv(rng, (1, channels, 6, 7), channels, (3, 3), channels)
    conv = K.Conv2d(
        w, bias, groups=channels, strides=(1, 2), dilations=(1, 1), pads=(1, 1, 1, 1), hi=0.5
    )
    y = conv(x, ctx("scalar"))
    ref, bound = conv_ref64(x, w, bias, channels, (1, 2), (1, 1), (1, 1, 1, 1), hi=0.5)
    assert_close(y, ref, bound)
    assert_same_everywhere(lambda c: conv(x, c), y)


@pytest.mark.parametrize("groups", [1, 4])
def test_conv2d_fused_clamp(groups):
    rng = np.random.default_rng(3)
    x, w, b = random_conv(rng, (1, 4, 6, 6), 4, (3, 3), groups)
    conv = K.Conv2d(
        w, b, groups=groups, strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1), lo=0.0, hi=6.0
    )
    y = conv(x)
    ref, bound = conv_ref64(x, w, b, groups, (1, 1), (1, 1), (1, 1, 1, 1), 0.0, 6.0)
    assert_close(y, ref, bound)
    assert y.min() == 0.0


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 2),
    cg=st.integers(1, 3),
    og=st.integers(1, 3),
    groups=st.integers(1, 3),
    h=st.integers(1, 9),
    wd=st.integers(1, 9),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    pads=st.tuples(*[st.integers(0, 4)] * 4),
    seed=st.integers(0, 2**16),
)
def test_conv2d_random_shapes(n, cg, og, groups, h, wd, kh, kw, sh, sw, dh, dw, pads, seed):
    oh = out_size(h, kh, sh, dh, pads[0], pads[2])
    ow = out_size(wd, kw, sw, dw, pads[1], pads[3])
    rng = np.random.default_rng(seed)
    x, w, b = random_conv(rng, (n, cg * groups, h, wd), og * groups, (kh, kw), groups)
    kwargs = {"groups": groups, "strides": (sh, sw), "dilations": (dh, dw), "pads": pads}
    if oh <= 0 or ow <= 0:
        with pytest.raises(pyrt.KernelError):
            K.Conv2d(w, b, **kwargs)(x)
        return
    conv = K.Conv2d(w, b, **kwargs)
    y = conv(x, ctx("scalar"))
    ref, bound = conv_ref64(x, w, b, groups, (sh, sw), (dh, dw), pads)
    assert_close(y, ref, bound)
    for isa in SIMD:
        np.testing.assert_array_equal(conv(x, ctx(isa, 2)), y, isa)


def test_conv2d_matches_onnxruntime():
    rng = np.random.default_rng(4)
    for group, w_shape in ((6, (6, 1, 3, 3)), (2, (4, 3, 3, 2))):
        x = rng.standard_normal((1, 6, 11, 9)).astype(F32)
        w = rng.standard_normal(w_shape).astype(F32)
        b = rng.standard_normal(w_shape[0]).astype(F32)
        attrs = {"group": group, "strides": [2, 1], "dilations": [1, 2], "pads": [1, 2, 0, 1]}
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)],
            "g",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
            [onnx.ValueInfoProto(name="y")],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 10
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (ref,) = sess.run(["y"], {"x": x})
        y = K.Conv2d(w, b, groups=group, strides=(2, 1), dilations=(1, 2), pads=(1, 2, 0, 1))(x)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_conv2d_rejects_bad_arguments():
    w = np.ones((4, 2, 3, 3), F32)
    conv = K.Conv2d(w, None, groups=1, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0))
    with pytest.raises(pyrt.KernelError):
        conv(np.ones((1, 3, 5, 5), F32))  # wrong channels
    with pytest.raises(pyrt.KernelError):
        conv.nhwc(np.ones((1, 5, 5, 3), F32))
    with pytest.raises(pyrt.KernelError):
        conv(np.ones((1, 2, 2, 5), F32))  # kernel larger than the input
    with pytest.raises(pyrt.KernelError):
        K.Conv2d(w, None, groups=3, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0))
    with pytest.raises(pyrt.KernelError):
        K.Conv2d(w, None, groups=1, strides=(0, 1), dilations=(1, 1), pads=(0, 0, 0, 0))
    with pytest.raises(pyrt.KernelError):
        K.Conv2d(w, None, groups=1, strides=(1, 1), dilations=(1, 1), pads=(0, -1, 0, 0))
    with pytest.raises(pyrt.KernelError, match="clamp"):
        K.Conv2d(w, None, groups=1, strides=(1, 1), dilations=(1, 1), pads=(0,) * 4, lo=1, hi=0)


def _conv_shape(x_shape, w_shape, groups=1):
    """pyrt_conv2d_shape of an NCHW input shape and ONNX weight shape."""
    s = ffi.new("pyrt_conv2d_shape *")
    s.batch, s.in_c, s.in_h, s.in_w = x_shape
    s.out_c, s.groups = w_shape[0], groups
    s.kernel_h, s.kernel_w = w_shape[2], w_shape[3]
    s.stride_h = s.stride_w = s.dilation_h = s.dilation_w = 1
    _kernels.check(lib.pyrt_conv2d_infer(s))
    return s


def test_conv2d_lib_null_and_pack_mismatch():
    # depthwise 3x1 and 1x3 weights have the same size: the header must tell them apart
    c = _kernels.default_context().ptr
    a = _conv_shape((1, 4, 5, 5), (4, 1, 3, 1), groups=4)
    b = _conv_shape((1, 4, 5, 5), (4, 1, 1, 3), groups=4)
    w = np.ones((4, 3, 1, 1), F32)
    packed = K._aligned_buffer(lib.pyrt_conv2d_packed_size(c, a))
    _kernels.check(lib.pyrt_conv2d_pack(c, a, _kernels.ptr(w, "float *"), _kernels.ptr(packed)))
    x = np.ones((1, 5, 5, 4), F32)
    y = np.empty((1, 5, 5, 4), F32)
    xp, yp, pp = _kernels.ptr(x, "float *"), _kernels.ptr(y, "float *"), _kernels.ptr(packed)
    assert lib.pyrt_conv2d(c, a, pp, xp, ffi.NULL, -1e30, 1e30, yp) == lib.PYRT_OK
    assert lib.pyrt_conv2d(c, b, pp, xp, ffi.NULL, -1e30, 1e30, yp) == lib.PYRT_ERR_PACK
    assert lib.pyrt_conv2d(c, a, pp, ffi.NULL, ffi.NULL, -1e30, 1e30, yp) == lib.PYRT_ERR_ARG
    assert lib.pyrt_conv2d(c, ffi.NULL, pp, xp, ffi.NULL, -1e30, 1e30, yp) == lib.PYRT_ERR_ARG
    assert lib.pyrt_conv2d(c, a, pp, xp, ffi.NULL, 1.0, -1.0, yp) == lib.PYRT_ERR_ARG
    assert lib.pyrt_conv2d_pack(c, a, ffi.NULL, pp) == lib.PYRT_ERR_ARG
    a.out_h += 1  # caller's output size must be the real one
    assert lib.pyrt_conv2d(c, a, pp, xp, ffi.NULL, -1e30, 1e30, yp) == lib.PYRT_ERR_SHAPE
    garbage = np.zeros_like(packed)
    assert lib.pyrt_conv2d(c, b, _kernels.ptr(garbage), xp, ffi.NULL, -1e30, 1e30, yp) == (
        lib.PYRT_ERR_PACK
    )
