"""numpy-facing wrappers of the C kernels: the only Python code that calls `lib`.

Prepared ops (QConv2d, QGemm, Conv2d, Gemm) pack their weights once per
kernel table and are then called with activations only. Free functions cover
the stateless kernels. Every call runs on a Context (ctx=None: the default
one, see _kernels.set_isa). Everything here takes and returns numpy arrays;
inputs are made C-contiguous as needed, outputs are freshly allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels import Context, check, default_context, dtype_code, ffi, lib, ptr
from .errors import KernelError

QTYPES = (np.dtype(np.uint8), np.dtype(np.int8))


@dataclass(frozen=True)
class QParams:
    """Quantization of one tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int
    dtype: np.dtype


@dataclass
class OutputStage:
    """What happens to int32 accumulators (see pyrt_output_stage in kernels.h).

    dtype uint8/int8: requantize with `scale` (1 or per channel), `zero_point`
    and clamp to [qmin, qmax] (defaults: the dtype's range); int32: raw;
    float32: acc * scale.
    """

    dtype: np.dtype
    scale: np.ndarray | float = 1.0
    zero_point: int = 0
    qmin: int | None = None
    qmax: int | None = None


# ---- matrix products: QGemm, QConv2d, Gemm, Conv2d, requantize ------------


def _aligned_buffer(nbytes: int) -> np.ndarray:
    """A zeroed byte buffer whose data starts on a 64-byte boundary."""
    raw = np.zeros(nbytes + 64, np.uint8)
    offset = (-raw.ctypes.data) % 64
    return raw[offset : offset + nbytes]


def _ctx(ctx: Context | None) -> Context:
    return ctx if ctx is not None else default_context()


class _Packed:
    """Weights packed once per kernel table: the ISA of the context a call runs on."""

    _packs: dict

    def _weights(self, ctx: Context) -> np.ndarray:
        packed = self._packs.get(ctx.isa)
        if packed is None:
            packed = self._packs[ctx.isa] = self._pack(ctx)
        return packed

    def _pack(self, ctx: Context) -> np.ndarray:
        raise NotImplementedError


def _stage(out: OutputStage, channels: int) -> tuple:
    """A pyrt_output_stage (and the arrays it points into, kept alive)."""
    dtype = np.dtype(out.dtype)
    if dtype not in (*QTYPES, np.dtype(np.int32), np.dtype(np.float32)):
        raise KernelError(f"output dtype must be uint8, int8, int32 or float32, got {dtype}")
    scale = np.ascontiguousarray(np.asarray(out.scale, np.float32).reshape(-1))
    if scale.size not in (1, channels):
        raise KernelError(f"output scale has {scale.size} values, expected 1 or {channels}")
    stage = ffi.new("pyrt_output_stage *")
    stage.out_dtype = dtype_code(dtype)
    stage.per_channel = int(scale.size > 1)
    stage.scale = ptr(scale, "float *")
    if dtype in QTYPES:
        info = np.iinfo(dtype)
        fields = {
            "zero_point": int(out.zero_point),
            "qmin": info.min if out.qmin is None else int(out.qmin),
            "qmax": info.max if out.qmax is None else int(out.qmax),
        }
        for name, value in fields.items():  # before cffi sees an out-of-range int
            if not info.min <= value <= info.max:
                raise KernelError(f"output {name} {value} outside [{info.min}, {info.max}]")
            setattr(stage, name, value)
    if channels >= 1:  # let C validate it now rather than on the first call
        probe = np.zeros(1, np.int32)
        ctx = default_context().ptr
        if lib.pyrt_requantize(ctx, 1, 1, channels, ptr(probe, "int32_t *"), stage, ptr(probe)):
            message = ffi.string(lib.pyrt_last_error()).decode()
            raise KernelError(message.replace("requantize:", "output stage:", 1))
    return stage, scale


def _zero_points(w_zero: np.ndarray | int, n: int) -> tuple[np.ndarray, int]:
    zero = np.ascontiguousarray(np.asarray(w_zero, np.int32).reshape(-1))
    if zero.size not in (1, n):
        raise KernelError(f"weight zero point has {zero.size} values, expected 1 or {n}")
    return zero, int(zero.size > 1)


def _bias(bias: np.ndarray | None, n: int, dtype) -> np.ndarray | None:
    if bias is None:
        return None
    bias = np.ascontiguousarray(np.asarray(bias).reshape(-1), dtype=dtype)
    if bias.size != n:
        raise KernelError(f"bias has {bias.size} values, expected {n}")
    return bias


def requantize(
    acc: np.ndarray, channels: int, out: OutputStage, ctx: Context | None = None
) -> np.ndarray:
    """int32 accumulators -> out.dtype, same shape.

    acc is viewed as [rows, cols]: the last axis is cols, all leading axes
    flatten to rows (a 1-D or 0-D acc is one row); the channel of row r is
    r % channels, e.g. NCHW accumulators reshaped to [N, C, H*W] with C channels.
    """
    acc = np.asarray(acc)
    if acc.dtype != np.int32:
        raise KernelError(f"requantize: accumulators must be int32, got {acc.dtype}")
    if channels < 1:
        raise KernelError(f"requantize: channels must be >= 1, got {channels}")
    acc = np.ascontiguousarray(acc)
    stage, scale = _stage(out, channels)
    y = np.empty(acc.shape, out.dtype)
    if acc.size == 0:
        return y
    cols = acc.shape[-1] if acc.ndim else 1
    rows = acc.size // cols
    check(
        lib.pyrt_requantize(
            _ctx(ctx).ptr, rows, cols, channels, ptr(acc, "int32_t *"), stage, ptr(y)
        )
    )
    return y


def _int32(name: str, value) -> int:
    """value as a Python int that fits a C int32, else KernelError."""
    try:
        v = int(value)
    except (TypeError, ValueError) as e:
        raise KernelError(f"{name} must be an integer, got {value!r}") from e
    if v != value or not -(2**31) <= v < 2**31:
        raise KernelError(f"{name} must be an int32 integer, got {value!r}")
    return v


def _x_params(x_dtype: np.dtype, x_zero: int, op: str) -> tuple[np.dtype, int]:
    x_dtype = np.dtype(x_dtype)
    if x_dtype not in QTYPES:
        raise KernelError(f"{op} input dtype must be uint8/int8, got {x_dtype}")
    info = np.iinfo(x_dtype)
    zero = _int32(f"{op} x_zero", x_zero)
    if not info.min <= zero <= info.max:
        raise KernelError(f"{op} x_zero {zero} outside [{info.min}, {info.max}]")
    return x_dtype, zero


def _int_bias(bias: np.ndarray | None, n: int, op: str) -> np.ndarray | None:
    """int32 bias of n values; integer input that does not fit int32 is refused."""
    if bias is None:
        return None
    bias = np.asarray(bias)
    if bias.dtype.kind not in "iu":
        raise KernelError(f"{op} bias must be an integer array, got {bias.dtype}")
    if bias.size and (bias.min() < -(2**31) or bias.max() >= 2**31):
        raise KernelError(f"{op} bias values do not fit int32")
    return _bias(bias, n, np.int32)


class QGemm(_Packed):
    """Integer matrix product with the output stage fused; weights W[M, K], rows = channels.

    acc[m, n] = sum_k (w[m, k] - w_zero[m]) * (x[k, n] - x_zero) + bias[m]
    (int32, wrapping like ONNX), then `out` (see OutputStage) per channel m.
    `gemm(x)` takes x[K, N] and returns W @ x [M, N]; `rows(x)` takes x[R, K]
    and returns (W @ x.T).T [R, M] without transposing: the C orientation.
    """

    def __init__(
        self,
        w: np.ndarray,
        w_zero: np.ndarray | int,
        bias: np.ndarray | None,
        x_dtype: np.dtype,
        x_zero: int,
        out: OutputStage,
    ):
        w = np.asarray(w)
        if w.ndim != 2 or w.dtype not in QTYPES:
            raise KernelError(f"QGemm weights must be 2-D uint8/int8, got {w.dtype} {w.shape}")
        self.m, self.k = w.shape
        self.w = np.ascontiguousarray(w)
        self.zero, self.zero_per_row = _zero_points(w_zero, self.m)
        self.bias = _int_bias(bias, self.m, "QGemm")
        self.x_dtype, self.x_zero = _x_params(x_dtype, x_zero, "QGemm")
        self.out = out
        self.stage, self.scale = _stage(out, self.m)
        self._packs = {}
        self._weights(default_context())  # packing errors surface here

    def _pack(self, ctx: Context) -> np.ndarray:
        packed = _aligned_buffer(lib.pyrt_qgemm_packed_size(ctx.ptr, self.m, self.k))
        check(
            lib.pyrt_qgemm_pack(
                ctx.ptr,
                self.m,
                self.k,
                ptr(self.w),
                dtype_code(self.w.dtype),
                ptr(self.zero, "int32_t *"),
                self.zero_per_row,
                ptr(packed),
            )
        )
        return packed

    def __call__(self, x: np.ndarray, ctx: Context | None = None) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] != self.k or x.dtype != self.x_dtype:
            raise KernelError(
                f"QGemm input must be {self.x_dtype} [{self.k}, N], got {x.dtype} {list(x.shape)}"
            )
        return self.rows(np.ascontiguousarray(x.T), ctx).T

    def rows(
        self,
        x: np.ndarray,
        ctx: Context | None = None,
        y: np.ndarray | None = None,
        x_zero: int | None = None,
        scale: np.ndarray | None = None,
    ):
        """x[R, K] (rows C-contiguous) -> y[R, M]; y may be given (C-contiguous, right shape);
        x_zero replaces the constructor's input zero point for this call, scale (M floats)
        the scale of its float32 output stage."""
        x_zero, stage, kept = _call_params(self, x_zero, scale, self.m, "QGemm")
        if x.ndim != 2 or x.shape[1] != self.k or x.dtype != self.x_dtype:
            raise KernelError(
                f"QGemm rows must be {self.x_dtype} [R, {self.k}], got {x.dtype} {list(x.shape)}"
            )
        r = x.shape[0]
        if r >= 2**31:
            raise KernelError(f"QGemm: {r} rows do not fit int32")
        if y is None:
            y = np.empty((r, self.m), self.out.dtype)
        if r == 0:
            return y
        ctx = _ctx(ctx)
        packed = self._weights(ctx)
        x = np.ascontiguousarray(x)
        check(
            lib.pyrt_qgemm(
                ctx.ptr,
                r,
                self.m,
                self.k,
                ptr(x),
                dtype_code(x.dtype),
                x_zero,
                self.k,
                ptr(packed),
                ptr(self.bias, "int32_t *"),
                stage,
                ptr(y),
                self.m,
            )
        )
        return y


def _call_params(
    op, x_zero: int | None, scale: np.ndarray | None, channels: int, name: str
) -> tuple:
    """(x_zero, stage, kept arrays) of one call of a packed int8 op: its own, or the input
    zero point and the float32 output stage's scale known only at run time."""
    if x_zero is None:
        x_zero = op.x_zero
    else:
        _, x_zero = _x_params(op.x_dtype, x_zero, name)
    if scale is None:
        return x_zero, op.stage, None
    if op.out.dtype != np.float32:
        raise KernelError(f"{name}: a per-call scale needs a float32 output stage")
    stage, kept = _stage(OutputStage(np.dtype(np.float32), scale), channels)
    return x_zero, stage, kept


def _conv_shape(w_shape: tuple, x_shape: tuple, groups: int, strides, dilations, pads):
    s = ffi.new("pyrt_conv2d_shape *")
    s.batch, s.in_c, s.in_h, s.in_w = (_int32("conv input dim", d) for d in x_shape)
    s.out_c, s.groups = _int32("conv out_c", w_shape[0]), groups
    s.kernel_h, s.kernel_w = _int32("conv kernel", w_shape[2]), _int32("conv kernel", w_shape[3])
    s.stride_h, s.stride_w = strides
    s.dilation_h, s.dilation_w = dilations
    s.pad_top, s.pad_left, s.pad_bottom, s.pad_right = pads
    return s


class _Conv:
    """Shared shape handling of the int8 and fp32 convolutions (NCHW)."""

    def __init__(self, w: np.ndarray, groups: int, strides, dilations, pads):
        if w.ndim != 4:
            raise KernelError(f"conv weights must be [O, I/groups, kh, kw], got {list(w.shape)}")
        groups = _int32("conv groups", groups)
        if groups < 1 or w.shape[0] % groups:
            raise KernelError(
                f"conv: {w.shape[0]} output channels do not split into {groups} groups"
            )
        for name, value, n in (
            ("strides", strides, 2),
            ("dilations", dilations, 2),
            ("pads", pads, 4),
        ):
            if len(value) != n:
                raise KernelError(f"conv {name} must have {n} values, got {list(value)}")
        self.w = np.ascontiguousarray(w)
        self.groups = groups
        self.strides = tuple(_int32("conv stride", v) for v in strides)
        self.dilations = tuple(_int32("conv dilation", v) for v in dilations)
        self.pads = tuple(_int32("conv pad", v) for v in pads)
        self.in_c = w.shape[1] * groups
        self._nhwc_shapes: dict[tuple, object] = {}

    def shape(self, x_shape: tuple):
        if len(x_shape) != 4 or x_shape[1] != self.in_c:
            raise KernelError(f"conv input must be [N, {self.in_c}, H, W], got {list(x_shape)}")
        s = _conv_shape(self.w.shape, x_shape, self.groups, self.strides, self.dilations, self.pads)
        check(lib.pyrt_conv2d_infer(s))
        return s

    def nhwc_shape(self, x_shape: tuple):
        """The C shape of an NHWC input [N, H, W, C] (raises KernelError if it does not fit).

        Built once per input shape: callers must not change it.
        """
        s = self._nhwc_shapes.get(x_shape)
        if s is None:
            if len(x_shape) != 4:
                raise KernelError(f"conv input must be [N, H, W, {self.in_c}], got {list(x_shape)}")
            n, h, w, c = x_shape
            s = self._nhwc_shapes[x_shape] = self.shape((n, c, h, w))
        return s

    def pack_shape(self):
        spans = [max(d, 1) * (k - 1) + 1 for k, d in zip(self.w.shape[2:], self.dilations)]
        return self.shape((1, self.in_c, *spans))


class QConv2d(_Conv, _Packed):
    """int8 convolution with packed weights and the output stage fused.

    Same integer semantics as QGemm with output channels as rows; padding
    reads x_zero (real 0.0). The kernels work in NHWC (`nhwc`); calling the
    object takes and returns NCHW, transposing around them. Depthwise
    (groups == C == O) runs a direct kernel, everything else the GEMM driver.
    """

    def __init__(
        self,
        w: np.ndarray,
        w_zero: np.ndarray | int,
        bias: np.ndarray | None,
        *,
        groups: int,
        strides: tuple[int, int],
        dilations: tuple[int, int],
        pads: tuple[int, int, int, int],
        x_dtype: np.dtype,
        x_zero: int,
        out: OutputStage,
    ):
        w = np.asarray(w)
        super().__init__(w, groups, strides, dilations, pads)
        if w.dtype not in QTYPES:
            raise KernelError(f"QConv2d weights must be uint8/int8, got {w.dtype}")
        out_c = w.shape[0]
        self.zero, self.zero_per_row = _zero_points(w_zero, out_c)
        self.bias = _int_bias(bias, out_c, "QConv2d")
        self.x_dtype, self.x_zero = _x_params(x_dtype, x_zero, "QConv2d")
        self.out = out
        self.stage, self.scale = _stage(out, out_c)
        self.w_nhwc = np.ascontiguousarray(self.w.transpose(0, 2, 3, 1))
        self._packs = {}
        self._weights(default_context())  # packing errors surface here

    def _pack(self, ctx: Context) -> np.ndarray:
        s = self.pack_shape()
        packed = _aligned_buffer(lib.pyrt_qconv2d_packed_size(ctx.ptr, s))
        check(
            lib.pyrt_qconv2d_pack(
                ctx.ptr,
                s,
                ptr(self.w_nhwc),
                dtype_code(self.w.dtype),
                ptr(self.zero, "int32_t *"),
                self.zero_per_row,
                ptr(packed),
            )
        )
        return packed

    def __call__(
        self,
        x: np.ndarray,
        ctx: Context | None = None,
        x_zero: int | None = None,
        scale: np.ndarray | None = None,
    ) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4:
            raise KernelError(f"conv input must be [N, {self.in_c}, H, W], got {list(x.shape)}")
        y = self.nhwc(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), ctx, None, x_zero, scale)
        return y.transpose(0, 3, 1, 2)

    def nhwc(
        self,
        x: np.ndarray,
        ctx: Context | None = None,
        y: np.ndarray | None = None,
        x_zero: int | None = None,
        scale: np.ndarray | None = None,
    ) -> np.ndarray:
        """x [N, H, W, C] -> y [N, OH, OW, O]; y may be given (C-contiguous, right shape);
        x_zero and scale as QGemm.rows's."""
        if x.dtype != self.x_dtype:
            raise KernelError(f"QConv2d input must be {self.x_dtype}, got {x.dtype}")
        x_zero, stage, kept = _call_params(self, x_zero, scale, self.w.shape[0], "QConv2d")
        if x.ndim == 4 and x.shape[0] == 0:  # empty batch: shape only
            s = self.nhwc_shape((1, *x.shape[1:]))
            return np.empty((0, s.out_h, s.out_w, s.out_c), self.out.dtype)
        s = self.nhwc_shape(x.shape)
        ctx = _ctx(ctx)
        packed = self._weights(ctx)
        x = np.ascontiguousarray(x)
        if y is None:
            y = np.empty((s.batch, s.out_h, s.out_w, s.out_c), self.out.dtype)
        check(
            lib.pyrt_qconv2d(
                ctx.ptr,
                s,
                ptr(packed),
                ptr(x),
                dtype_code(x.dtype),
                x_zero,
                ptr(self.bias, "int32_t *"),
                stage,
                ptr(y),
            )
        )
        return y


def _clamp(lo: float, hi: float) -> tuple[float, float]:
    lo, hi = float(lo), float(hi)
    if np.isnan(lo) or np.isnan(hi) or lo > hi:
        raise KernelError(f"clamp [{lo}, {hi}] is not a range")
    return lo, hi


def _out(y: np.ndarray | None, shape: tuple, dtype, op: str) -> np.ndarray:
    """The caller's output buffer (checked) or a fresh one."""
    if y is None:
        return np.empty(shape, dtype)
    if y.shape != tuple(shape) or y.dtype != dtype or not y.flags.c_contiguous:
        raise KernelError(
            f"{op}: y must be C-contiguous {np.dtype(dtype)} {list(shape)}, "
            f"got {y.dtype} {list(y.shape)}"
        )
    return y


class Gemm(_Packed):
    """fp32 matrix product with bias and clamp fused; weights W[M, K], rows = output features.

    y = clamp(W @ x + bias, lo, hi), each output summed by fma over k
    ascending from the bias (see kernels.h: the same bits on every ISA).
    Calling the object takes x[K, N] and returns [M, N]; `rows(x)` takes
    x[R, K] and returns [R, M] without transposing: the C orientation.
    """

    def __init__(
        self, w: np.ndarray, bias: np.ndarray | None, lo: float = -np.inf, hi: float = np.inf
    ):
        w = np.asarray(w)
        if w.ndim != 2:
            raise KernelError(f"Gemm weights must be 2-D, got {list(w.shape)}")
        self.w = np.ascontiguousarray(w, dtype=np.float32)
        self.m, self.k = w.shape
        self.bias = _bias(bias, self.m, np.float32)
        self.lo, self.hi = _clamp(lo, hi)
        self._packs = {}
        self._weights(default_context())

    def _pack(self, ctx: Context) -> np.ndarray:
        packed = _aligned_buffer(lib.pyrt_sgemm_packed_size(ctx.ptr, self.m, self.k))
        check(lib.pyrt_sgemm_pack(ctx.ptr, self.m, self.k, ptr(self.w, "float *"), ptr(packed)))
        return packed

    def __call__(self, x: np.ndarray, ctx: Context | None = None) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[0] != self.k:
            raise KernelError(f"Gemm input must be [{self.k}, N], got {list(x.shape)}")
        return self.rows(np.ascontiguousarray(x.T, dtype=np.float32), ctx).T

    def rows(
        self, x: np.ndarray, ctx: Context | None = None, y: np.ndarray | None = None
    ) -> np.ndarray:
        """x[R, K] -> y[R, M]; y may be given (C-contiguous float32, right shape)."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.k:
            raise KernelError(f"Gemm rows must be [R, {self.k}], got {list(x.shape)}")
        r = x.shape[0]
        if r >= 2**31:
            raise KernelError(f"Gemm: {r} rows do not fit int32")
        y = _out(y, (r, self.m), np.float32, "Gemm")
        if r == 0:
            return y
        ctx = _ctx(ctx)
        packed = self._weights(ctx)
        x = np.ascontiguousarray(x, dtype=np.float32)
        check(
            lib.pyrt_sgemm(
                ctx.ptr,
                r,
                self.m,
                self.k,
                ptr(x, "float *"),
                self.k,
                ptr(packed),
                ptr(self.bias, "float *"),
                self.lo,
                self.hi,
                ptr(y, "float *"),
                self.m,
            )
        )
        return y


class Conv2d(_Conv, _Packed):
    """fp32 convolution with packed weights, bias and clamp fused.

    Weights are ONNX's [O, I/groups, kh, kw]. The kernels work in NHWC
    (`nhwc`); calling the object takes and returns NCHW, transposing around
    them. Depthwise (groups == C == O) runs a direct kernel vectorised over
    channels, everything else the GEMM driver.
    """

    x_dtype = np.dtype(np.float32)

    def __init__(
        self,
        w: np.ndarray,
        bias: np.ndarray | None,
        *,
        groups: int,
        strides: tuple[int, int],
        dilations: tuple[int, int],
        pads: tuple[int, int, int, int],
        lo: float = -np.inf,
        hi: float = np.inf,
    ):
        w = np.asarray(w, np.float32)
        super().__init__(w, groups, strides, dilations, pads)
        self.bias = _bias(bias, w.shape[0], np.float32)
        self.lo, self.hi = _clamp(lo, hi)
        self.w_nhwc = np.ascontiguousarray(self.w.transpose(0, 2, 3, 1))
        self._packs = {}
        self._weights(default_context())

    def _pack(self, ctx: Context) -> np.ndarray:
        s = self.pack_shape()
        packed = _aligned_buffer(lib.pyrt_conv2d_packed_size(ctx.ptr, s))
        check(lib.pyrt_conv2d_pack(ctx.ptr, s, ptr(self.w_nhwc, "float *"), ptr(packed)))
        return packed

    def __call__(self, x: np.ndarray, ctx: Context | None = None) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4:
            raise KernelError(f"conv input must be [N, {self.in_c}, H, W], got {list(x.shape)}")
        y = self.nhwc(np.ascontiguousarray(x.transpose(0, 2, 3, 1), dtype=np.float32), ctx)
        return y.transpose(0, 3, 1, 2)

    def nhwc(
        self, x: np.ndarray, ctx: Context | None = None, y: np.ndarray | None = None
    ) -> np.ndarray:
        """x [N, H, W, C] -> y [N, OH, OW, O]; y may be given (C-contiguous float32)."""
        x = np.asarray(x)
        if x.ndim == 4 and x.shape[0] == 0:  # empty batch: shape only
            s = self.nhwc_shape((1, *x.shape[1:]))
            return _out(y, (0, s.out_h, s.out_w, s.out_c), np.float32, "Conv2d")
        s = self.nhwc_shape(x.shape)
        y = _out(y, (s.batch, s.out_h, s.out_w, s.out_c), np.float32, "Conv2d")
        ctx = _ctx(ctx)
        packed = self._weights(ctx)
        x = np.ascontiguousarray(x, dtype=np.float32)
        check(
            lib.pyrt_conv2d(
                ctx.ptr,
                s,
                ptr(packed),
                ptr(x, "float *"),
                ptr(self.bias, "float *"),
                self.lo,
                self.hi,
                ptr(y, "float *"),
            )
        )
        return y


# ---- elementwise and pooling: quantize, dequantize, qbinary, pools --------


def _quant_layout(x: np.ndarray, scale: np.ndarray, axis: int, block_size: int):
    """pyrt_quant_layout for ONNX per-tensor, per-axis or blocked parameters."""
    layout = ffi.new("pyrt_quant_layout *")
    shape = x.shape if x.ndim else (1,)
    if int(block_size) != block_size or block_size < 0:
        raise KernelError(f"block_size must be an integer >= 0, got {block_size}")
    block_size = int(block_size)
    if scale.size == 1:  # one value: per tensor, whatever axis / block_size say (as ONNX)
        layout.outer, layout.axis_len, layout.inner, layout.block = 1, 1, max(x.size, 1), 1
        return layout
    if not -len(shape) <= axis < len(shape):
        raise KernelError(f"axis {axis} is out of range for a rank-{x.ndim} tensor")
    axis %= len(shape)
    outer, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1 :]))
    layout.outer, layout.axis_len, layout.inner = outer, shape[axis], inner
    if block_size:
        want = list(shape)
        want[axis] = -(-shape[axis] // block_size)
        if scale.ndim != len(shape) or list(scale.shape) != want:
            raise KernelError(f"blocked scale must have shape {want}, got {list(scale.shape)}")
        layout.block = block_size
        layout.stride_outer, layout.stride_axis, layout.stride_inner = want[axis] * inner, inner, 1
    else:
        if scale.ndim != 1 or scale.size != shape[axis]:
            raise KernelError(
                f"per-axis scale must have {shape[axis]} values (axis {axis}), "
                f"got shape {list(scale.shape)}"
            )
        layout.block, layout.stride_axis = 1, 1
    return layout


def _zero_like(zero_point: np.ndarray | None, scale: np.ndarray) -> np.ndarray | None:
    if zero_point is None:
        return None
    zero = np.ascontiguousarray(zero_point)
    if zero.size != scale.size:
        raise KernelError(f"zero point has {zero.size} values, scale {scale.size}")
    return zero


def quantize(
    x: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    axis: int = 1,
    block_size: int = 0,
    dtype: np.dtype = np.uint8,
    ctx: Context | None = None,
) -> np.ndarray:
    """QuantizeLinear: saturate(rint(x / scale) + zero); NaN -> zero point."""
    scale = np.ascontiguousarray(scale, dtype=np.float32)
    if zero_point is not None:
        zero_point = np.asarray(zero_point)
    dtype = np.dtype(zero_point.dtype if zero_point is not None else dtype)
    if dtype not in QTYPES:
        raise KernelError(
            f"quantize to {dtype} is not supported by the kernels (unsupported dtype)"
        )
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(np.shape(x))  # keeps 0-d
    y = np.empty(x.shape, dtype)
    if x.size == 0:
        return y
    layout = _quant_layout(x, scale, axis, block_size)
    zero = _zero_like(zero_point, scale)
    check(
        lib.pyrt_quantize(
            _ctx(ctx).ptr,
            layout,
            ptr(x, "float *"),
            ptr(scale, "float *"),
            ptr(zero),
            dtype_code(dtype),
            ptr(y),
        )
    )
    return y


def dynamic_quantize(
    x: np.ndarray, ctx: Context | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DynamicQuantizeLinear: (uint8 y, float32 scale, uint8 zero point), the range taken
    over x and 0, in float32 as ONNX defines it (see pyrt_dynamic_quantize)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty(x.shape, np.uint8)
    scale, zero = np.ones((), np.float32), np.zeros((), np.uint8)
    if x.size:
        check(
            lib.pyrt_dynamic_quantize(
                _ctx(ctx).ptr, x.size, ptr(x, "float *"), ptr(y), ptr(scale, "float *"), ptr(zero)
            )
        )
    return y, scale, zero


def dequantize(
    x: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    axis: int = 1,
    block_size: int = 0,
    ctx: Context | None = None,
) -> np.ndarray:
    """DequantizeLinear: (x - zero) * scale for uint8, int8 or int32 x."""
    x = np.ascontiguousarray(x).reshape(np.shape(x))  # keeps 0-d
    if x.dtype not in (*QTYPES, np.dtype(np.int32)):
        raise KernelError(
            f"dequantize of {x.dtype} is not supported by the kernels (unsupported dtype)"
        )
    scale = np.ascontiguousarray(scale, dtype=np.float32)
    zero = _zero_like(zero_point, scale)
    if zero is not None and zero.dtype != x.dtype:
        raise KernelError(f"zero point is {zero.dtype}, data is {x.dtype}")
    y = np.empty(x.shape, np.float32)
    if x.size == 0:
        return y
    layout = _quant_layout(x, scale, axis, block_size)
    check(
        lib.pyrt_dequantize(
            _ctx(ctx).ptr,
            layout,
            ptr(x),
            dtype_code(x.dtype),
            ptr(scale, "float *"),
            ptr(zero),
            ptr(y, "float *"),
        )
    )
    return y


def _qparams(q: QParams):
    if np.dtype(q.dtype) not in QTYPES:
        raise KernelError(f"quantized tensors must be uint8/int8 (unsupported dtype {q.dtype})")
    p = ffi.new("pyrt_qparams *")
    p.dtype, p.scale, p.zero_point = dtype_code(q.dtype), float(q.scale), int(q.zero_point)
    return p


def broadcast_split(shape: tuple, small: tuple) -> tuple[int, int, int] | None:
    """(outer, middle, inner) when `small` broadcasts to `shape` as [outer, 1, inner].

    The form pyrt_qbinary_broadcast takes: dims equal to `shape`'s, then dims
    of 1 that broadcast, then equal dims again (size-1 dims of `shape` fit
    anywhere). None when `small` broadcasts in more than one run of dims.
    """
    if len(small) > len(shape):
        return None
    padded = (1,) * (len(shape) - len(small)) + tuple(small)
    sizes, state = [1, 1, 1], 0  # outer, middle, inner; state = where we are
    for full, mine in zip(shape, padded):
        if full == 1:
            continue
        if mine == full:
            state = 2 if state == 1 else state
        elif mine == 1:
            if state == 2:
                return None
            state = 1
        else:
            return None
        sizes[state] *= full
    return sizes[0], sizes[1], sizes[2]


def qbinary(
    op: str,
    a: np.ndarray,
    qa: QParams,
    b: np.ndarray,
    qb: QParams,
    qy: QParams,
    qmin: int | None = None,
    qmax: int | None = None,
    ctx: Context | None = None,
) -> np.ndarray:
    """Q_y(DQ_a(a) op DQ_b(b)) for op "add" or "mul", numpy broadcasting.

    When one operand broadcasts to the other as [outer, 1, inner] (a
    Squeeze-Excite scale, a per-channel vector, a scalar) the kernel
    broadcasts it; other broadcasts are expanded here first.
    """
    codes = {"add": lib.PYRT_ADD, "mul": lib.PYRT_MUL}
    if op not in codes:
        raise KernelError(f"qbinary op must be 'add' or 'mul', got {op!r}")
    params = [_qparams(qa), _qparams(qb), _qparams(qy)]  # validates the dtypes
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != qa.dtype or b.dtype != qb.dtype:
        raise KernelError(
            f"qbinary: inputs are {a.dtype}/{b.dtype}, params say {qa.dtype}/{qb.dtype}"
        )
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError as exc:
        raise KernelError(f"qbinary: shapes {a.shape} and {b.shape} do not broadcast") from exc
    if a.shape != shape:  # Add and Mul commute exactly: let b be the broadcast one
        a, b = b, a
        params[0], params[1] = params[1], params[0]
    split = broadcast_split(shape, b.shape) if a.shape == shape else None
    if split is None:
        a, b = np.broadcast_arrays(a, b)
        split = (1, 1, max(a.size, 1))
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    info = np.iinfo(qy.dtype)
    y = np.empty(shape, qy.dtype)
    if y.size == 0:
        return y
    check(
        lib.pyrt_qbinary_broadcast(
            _ctx(ctx).ptr,
            codes[op],
            *split,
            ptr(a),
            params[0],
            ptr(b),
            params[1],
            ptr(y),
            params[2],
            info.min if qmin is None else int(qmin),
            info.max if qmax is None else int(qmax),
        )
    )
    return y


def pool_output_size(
    in_size: int,
    kernel: int,
    stride: int,
    pad_begin: int,
    pad_end: int,
    dilation: int,
    ceil_mode: bool,
) -> int:
    """ONNX pooling output size; with ceil_mode a window starting in the end padding is dropped.

    This is onnxruntime's rule (and PyTorch's). 0 or less means no output.
    """
    if kernel < 1 or stride < 1 or dilation < 1 or pad_begin < 0 or pad_end < 0:
        raise KernelError(
            f"pooling needs kernel, stride, dilation >= 1 and pads >= 0, got kernel {kernel} "
            f"stride {stride} dilation {dilation} pads {pad_begin}, {pad_end}"
        )
    span = dilation * (kernel - 1) + 1
    room = in_size + pad_begin + pad_end - span
    if room < 0:
        return 0
    out = (-(-room // stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= in_size + pad_begin:
        out -= 1
    return out


LAYOUTS = ("nchw", "nhwc")


def _layout(layout: str) -> int:
    if layout not in LAYOUTS:
        raise KernelError(f"pooling layout must be 'nchw' or 'nhwc', got {layout!r}")
    return LAYOUTS.index(layout)  # PYRT_NCHW 0, PYRT_NHWC 1


def _pool_shape(
    x: np.ndarray, kernel, strides, pads, dilations, ceil_mode: bool, layout: str = "nchw"
):
    code = _layout(layout)
    if x.ndim != 4:
        dims = "[N, C, H, W]" if code == 0 else "[N, H, W, C]"
        raise KernelError(f"pooling input must be {dims}, got {list(x.shape)}")
    for name, value, n in (
        ("kernel", kernel, 2),
        ("strides", strides, 2),
        ("pads", pads, 4),
        ("dilations", dilations, 2),
    ):
        if len(value) != n:
            raise KernelError(f"pooling {name} needs {n} values, got {list(value)}")
    s = ffi.new("pyrt_pool2d_shape *")
    n, c, h, w = x.shape if code == 0 else (x.shape[0], x.shape[3], *x.shape[1:3])
    s.batch, s.channels, s.in_h, s.in_w = n, c, h, w
    s.layout = code
    s.kernel_h, s.kernel_w = kernel
    s.stride_h, s.stride_w = strides
    s.dilation_h, s.dilation_w = dilations
    s.pad_top, s.pad_left, s.pad_bottom, s.pad_right = pads
    s.out_h = pool_output_size(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode)
    s.out_w = pool_output_size(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode)
    return s


def _pool_output(s, dtype) -> np.ndarray:
    oh, ow = max(s.out_h, 0), max(s.out_w, 0)
    shape = (s.batch, s.channels, oh, ow) if s.layout == 0 else (s.batch, oh, ow, s.channels)
    return np.empty(shape, dtype)


def qmaxpool2d(
    x: np.ndarray,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int] = (1, 1),
    ceil_mode: bool = False,
    ctx: Context | None = None,
    layout: str = "nchw",
) -> np.ndarray:
    """MaxPool on int8 codes or float32 values; x and y are [N, C, H, W] or, with layout
    "nhwc", [N, H, W, C]."""
    x = np.ascontiguousarray(x)
    if x.dtype not in (*QTYPES, np.dtype(np.float32)):
        raise KernelError(f"qmaxpool2d input must be uint8/int8/float32, got {x.dtype}")
    s = _pool_shape(x, kernel, strides, pads, dilations, ceil_mode, layout)
    y = _pool_output(s, x.dtype)
    check(lib.pyrt_qmaxpool2d(_ctx(ctx).ptr, s, ptr(x), dtype_code(x.dtype), ptr(y)))
    return y


def qavgpool2d(
    x: np.ndarray,
    qx: QParams,
    qy: QParams,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    dilations: tuple[int, int] = (1, 1),
    ctx: Context | None = None,
    layout: str = "nchw",
) -> np.ndarray:
    """AveragePool requantized from qx to qy; layout as for qmaxpool2d."""
    x = np.ascontiguousarray(x)
    if x.dtype != qx.dtype:
        raise KernelError(f"qavgpool2d input is {x.dtype}, params say {qx.dtype}")
    s = _pool_shape(x, kernel, strides, pads, dilations, ceil_mode, layout)
    s.count_include_pad = int(count_include_pad)
    y = _pool_output(s, qy.dtype)
    check(lib.pyrt_qavgpool2d(_ctx(ctx).ptr, s, ptr(x), _qparams(qx), ptr(y), _qparams(qy)))
    return y


def avgpool2d_f32(
    x: np.ndarray,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    ceil_mode: bool = False,
    count_include_pad: bool = False,
    dilations: tuple[int, int] = (1, 1),
    ctx: Context | None = None,
    layout: str = "nchw",
) -> np.ndarray:
    """fp32 AveragePool (the sum of the taps inside the input over the window's count);
    layout as for qmaxpool2d."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    s = _pool_shape(x, kernel, strides, pads, dilations, ceil_mode, layout)
    s.count_include_pad = int(count_include_pad)
    y = _pool_output(s, np.float32)
    check(lib.pyrt_avgpool2d_f32(_ctx(ctx).ptr, s, ptr(x, "float *"), ptr(y, "float *")))
    return y


def qglobalavgpool(
    x: np.ndarray, qx: QParams, qy: QParams, ctx: Context | None = None, layout: str = "nchw"
) -> np.ndarray:
    """[N, C, spatial...] -> [N, C, 1, ...]: mean over every spatial element.

    With layout "nhwc": [N, spatial..., C] -> [N, 1, ..., C].
    """
    x = np.ascontiguousarray(x)
    nhwc = _layout(layout) == 1
    if x.ndim < 3 or x.dtype != qx.dtype:
        dims = "[N, ..., C]" if nhwc else "[N, C, ...]"
        raise KernelError(
            f"qglobalavgpool input must be {qx.dtype} {dims}, got {x.dtype} {list(x.shape)}"
        )
    ctx_ptr = _ctx(ctx).ptr
    if nhwc:
        n, c, hw = x.shape[0], x.shape[-1], int(np.prod(x.shape[1:-1]))
        y = np.empty((n, *([1] * (x.ndim - 2)), c), qy.dtype)
        check(
            lib.pyrt_qglobalavgpool_nhwc(
                ctx_ptr, n, hw, c, ptr(x), _qparams(qx), ptr(y), _qparams(qy)
            )
        )
        return y
    rows, hw = x.shape[0] * x.shape[1], int(np.prod(x.shape[2:]))
    y = np.empty((*x.shape[:2], *([1] * (x.ndim - 2))), qy.dtype)
    check(lib.pyrt_qglobalavgpool(ctx_ptr, rows, hw, ptr(x), _qparams(qx), ptr(y), _qparams(qy)))
    return y


def globalavgpool_f32(x: np.ndarray, ctx: Context | None = None) -> np.ndarray:
    """fp32 GlobalAveragePool of an NHWC tensor [N, H, W, C] -> [N, 1, 1, C]."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise KernelError(f"globalavgpool_f32 input must be [N, H, W, C], got {list(x.shape)}")
    n, h, w, c = x.shape
    y = np.empty((n, 1, 1, c), np.float32)
    if y.size and h * w:
        check(
            lib.pyrt_globalavgpool_f32_nhwc(
                _ctx(ctx).ptr, n, h * w, c, ptr(x, "float *"), ptr(y, "float *")
            )
        )
    return y


def channel_affine(
    x: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    axis: int,
    lo: float = -np.inf,
    hi: float = np.inf,
    x_zero: int = 0,
    y_dtype: np.dtype | type | None = None,
    y_zero: int = 0,
    ctx: Context | None = None,
) -> np.ndarray:
    """Per-channel y = x * a[c] + b[c] over axis `axis` (kernels.h: pyrt_channel_affine):
    float32 -> float32 clamped to [lo, hi], or int8 codes -> int8 codes (x_zero, y_zero,
    rounding half to even, clamped to [lo, hi] or the dtype's range)."""
    x = np.ascontiguousarray(x)
    f32 = x.dtype == np.float32
    y_dtype = np.dtype(np.float32 if f32 else y_dtype if y_dtype is not None else x.dtype)
    if not (f32 or x.dtype in QTYPES) or (y_dtype == np.float32) != f32:
        raise KernelError(f"channel_affine: {x.dtype} -> {y_dtype} is not supported")
    if not -x.ndim <= axis < x.ndim:
        raise KernelError(f"channel_affine: axis {axis} out of range for rank {x.ndim}")
    axis %= x.ndim
    c = x.shape[axis]
    a = np.ascontiguousarray(a, np.float32).reshape(-1)
    b = np.ascontiguousarray(b, np.float32).reshape(-1)
    if a.size != c or b.size != c:
        raise KernelError(f"channel_affine: {a.size} and {b.size} parameters for {c} channels")
    if not f32:
        info = np.iinfo(y_dtype)
        lo, hi = max(float(lo), info.min), min(float(hi), info.max)
    y = np.empty(x.shape, y_dtype)
    if y.size:
        outer, inner = int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis + 1 :]))
        check(
            lib.pyrt_channel_affine(
                _ctx(ctx).ptr, outer, c, inner, ptr(x), dtype_code(x.dtype), int(x_zero),
                ptr(a, "float *"), ptr(b, "float *"), ptr(y), dtype_code(y_dtype),
                int(y_zero), float(lo), float(hi),
            )
        )  # fmt: skip
    return y


def lut8(x: np.ndarray, table: np.ndarray, ctx: Context | None = None) -> np.ndarray:
    """y = table[x] for u8 / s8 codes read as bytes (a 256-entry uint8 table)."""
    x = np.ascontiguousarray(x)
    table = np.ascontiguousarray(table, np.uint8)
    if x.dtype not in QTYPES or table.shape != (256,):
        raise KernelError(f"lut8: codes must be uint8/int8 and the table 256 bytes, got {x.dtype}")
    y = np.empty_like(x)
    if x.size:
        check(lib.pyrt_lut8(_ctx(ctx).ptr, x.size, ptr(table, "uint8_t *"), ptr(x), ptr(y)))
    return y


def copy_rows(
    x: np.ndarray, x_stride: int, y: np.ndarray, y_stride: int, rows: int, nbytes: int,
    ctx: Context | None = None,
) -> None:  # fmt: skip
    """Row r's nbytes bytes at x + r * x_stride go to y + r * y_stride (byte offsets into
    the contiguous buffers x and y, which must hold every row): Concat / Split copies."""
    if not (x.flags.c_contiguous and y.flags.c_contiguous and y.flags.writeable):
        raise KernelError("copy_rows: x and y must be C-contiguous, y writable")
    last = (rows - 1) * max(x_stride, 0) + nbytes, (rows - 1) * max(y_stride, 0) + nbytes
    if rows > 0 and nbytes > 0 and (last[0] > x.nbytes or last[1] > y.nbytes):
        raise KernelError("copy_rows: the rows pass the end of x or y")
    check(lib.pyrt_copy_rows(_ctx(ctx).ptr, rows, nbytes, ptr(x), x_stride, ptr(y), y_stride))


# ---- int8 products of two activations and the ops around attention ---------


def _batched(x: np.ndarray, batch: tuple, rows: int, cols: int) -> tuple[np.ndarray, list[int]]:
    """x broadcast to batch + (rows, cols), viewed as [B, rows, cols] without copying
    where numpy can; returns the view and its element strides."""
    x = np.broadcast_to(x, (*batch, rows, cols)).reshape(-1, rows, cols)
    if x.strides[0] % x.itemsize or x.strides[1] % x.itemsize or x.strides[2] % x.itemsize:
        x = np.ascontiguousarray(x)
    if min(x.strides) < 0:
        x = np.ascontiguousarray(x)
    return x, [s // x.itemsize for s in x.strides]


def _matmul_shape(op: str, a: np.ndarray, b: np.ndarray) -> tuple[tuple, int, int, int]:
    """(batch shape, M, K, N) of a matmul of two tensors (numpy broadcasting)."""
    if a.ndim < 2 or b.ndim < 2:
        raise KernelError(f"{op} needs 2-D or more, got {list(a.shape)} x {list(b.shape)}")
    m, k = a.shape[-2:]
    if b.shape[-2] != k:
        raise KernelError(f"{op}: {list(a.shape)} x {list(b.shape)} do not multiply")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError as exc:
        raise KernelError(f"{op}: batch dims of {a.shape} and {b.shape} differ") from exc
    return batch, m, k, b.shape[-1]


def _matmul_operands(op: str, a, b, batch: tuple, count: int, m: int, k: int, n: int):
    """(a, a's element strides, b, b's) as [count][rows][cols] views for the C matmul:
    sizes checked against int32, a copied when its rows are not contiguous."""
    for dim, name in ((count, "batch"), (m, "M"), (n, "N"), (k, "K")):
        if dim >= 2**31:
            raise KernelError(f"{op}: {name} {dim} does not fit int32")
    a3, sa = _batched(a, batch, m, k)
    if sa[2] != 1 or sa[1] < k:
        a3, sa = _batched(np.ascontiguousarray(a3), (count,), m, k)
    b3, sb = _batched(b, batch, k, n)
    return a3, sa, b3, sb


def qmatmul(
    a: np.ndarray,
    a_zero: int,
    b: np.ndarray,
    b_zero: int,
    out: OutputStage,
    ctx: Context | None = None,
) -> np.ndarray:
    """int8 MatMul of two tensors (numpy matmul broadcasting; both at least 2-D):
    acc = sum_k (a - a_zero)(b - b_zero) in int32, then `out` (channel = column)."""
    a, b = np.asarray(a), np.asarray(b)
    batch, m, k, n = _matmul_shape("qmatmul", a, b)
    (a_dtype, az), (b_dtype, bz) = (
        _x_params(a.dtype, a_zero, "qmatmul a"),
        _x_params(b.dtype, b_zero, "qmatmul b"),
    )
    y = np.empty((*batch, m, n), out.dtype)
    if y.size == 0 or k == 0:
        if y.size and k == 0:
            y[...] = requantize(np.zeros(y.shape, np.int32), 1, out, ctx)
        return y
    count = y.size // (m * n)
    stage, _scale = _stage(out, n)
    a3, sa, b3, sb = _matmul_operands("qmatmul", a, b, batch, count, m, k, n)
    check(
        lib.pyrt_qmatmul(
            _ctx(ctx).ptr,
            count,
            m,
            n,
            k,
            ffi.cast("void *", a3.ctypes.data),
            dtype_code(a_dtype),
            az,
            sa[0],
            sa[1],
            ffi.cast("void *", b3.ctypes.data),
            dtype_code(b_dtype),
            bz,
            sb[0],
            sb[1],
            sb[2],
            stage,
            ptr(y),
            m * n,
            n,
        )
    )
    return y


def _io(q: QParams | None):
    """pyrt_qparams of a float-row kernel operand: None is plain float32."""
    if q is None:
        p = ffi.new("pyrt_qparams *")
        p.dtype, p.scale, p.zero_point = lib.PYRT_F32, 1.0, 0
        return p
    return _qparams(q)


def _rows_in(x: np.ndarray, q: QParams | None, op: str) -> np.ndarray:
    want = np.dtype(np.float32) if q is None else np.dtype(q.dtype)
    x = np.ascontiguousarray(x)
    if x.dtype != want or x.ndim < 1:
        raise KernelError(f"{op} input must be {want} with >= 1 dims, got {x.dtype} {x.shape}")
    if x.shape[-1] >= 2**31:
        raise KernelError(f"{op}: last axis {x.shape[-1]} does not fit int32")
    return x


def _row_vector(v: np.ndarray | None, cols: int, name: str) -> np.ndarray | None:
    if v is None:
        return None
    v = np.asarray(v, np.float32)
    if v.size not in (1, cols):
        raise KernelError(f"{name} has {v.size} values, the last axis {cols}")
    return np.ascontiguousarray(np.broadcast_to(v.reshape(-1), (cols,)))


def softmax(
    x: np.ndarray,
    qx: QParams | None = None,
    qy: QParams | None = None,
    x_div: float = 1.0,
    mask: np.ndarray | None = None,
    ctx: Context | None = None,
    x_mul: float = 1.0,
) -> np.ndarray:
    """Softmax over the last axis of Q?(DQ?(x) * x_mul / x_div + mask); mask broadcasts
    to x (an attention mask [B, 1, 1, S] on scores [B, H, S, S] is not materialised)."""
    x = _rows_in(x, qx, "softmax")
    y = np.empty(x.shape, np.float32 if qy is None else qy.dtype)
    if x.size == 0:
        return y
    cols = x.shape[-1]
    rows = x.size // cols
    m, per = None, 1
    if mask is not None:
        m, per = _mask_rows(np.asarray(mask, np.float32), x.shape)
    check(
        lib.pyrt_softmax(
            _ctx(ctx).ptr,
            rows,
            cols,
            ptr(x),
            _io(qx),
            float(x_mul),
            float(x_div),
            ptr(m, "float *"),
            per,
            ptr(y),
            _io(qy),
        )
    )
    return y


def mask_layout(mask_shape: tuple, shape: tuple) -> int | None:
    """rows_per_mask when a C-contiguous mask of mask_shape is, as it is, the
    [rows / per][cols] mask rows pyrt_softmax reads for x of `shape` (its leading dims
    are x's, then dims of 1: batch, then heads and queries), else None."""
    if len(mask_shape) > len(shape) or (mask_shape and mask_shape[-1] != shape[-1]):
        return None
    m = (1,) * (len(shape) - len(mask_shape)) + tuple(mask_shape)
    lead = len(shape) - 1
    while lead > 0 and m[lead - 1] == 1:
        lead -= 1  # m's dims [lead, -1) are all 1: one mask row per many x rows
    if tuple(m[:lead]) != tuple(shape[:lead]) or m[-1] != shape[-1]:
        return None
    return int(np.prod(shape[lead:-1], dtype=np.int64))


def _mask_rows(mask: np.ndarray, shape: tuple) -> tuple[np.ndarray, int]:
    """A mask broadcast to `shape` as [rows / per][cols] rows and per: as it is where
    mask_layout allows, else fully materialised."""
    try:
        full = np.broadcast_shapes(mask.shape, shape)
    except ValueError as exc:
        raise KernelError(f"softmax: mask {mask.shape} does not broadcast to {shape}") from exc
    if full != tuple(shape):
        raise KernelError(f"softmax: mask {mask.shape} would broadcast x {shape} to {full}")
    cols = shape[-1]
    per = mask_layout(mask.shape, shape)
    if per is not None:
        return np.ascontiguousarray(mask).reshape(-1, cols), per
    return np.ascontiguousarray(np.broadcast_to(mask, shape).reshape(-1, cols)), 1


def layernorm(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray | None,
    epsilon: float,
    qx: QParams | None = None,
    bias: np.ndarray | None = None,
    residual: np.ndarray | None = None,
    qr: QParams | None = None,
    qy: QParams | None = None,
    float_out: bool = True,
    sum_out: bool = False,
    ctx: Context | None = None,
) -> list[np.ndarray]:
    """LayerNormalization over the last axis of DQ?(x) (+ bias) (+ DQ?(residual)); returns
    [float result] if float_out, then [its quantization] if qy is given, then [the
    sum DQ?(x) (+ bias) (+ DQ?(residual))] if sum_out."""
    x = _rows_in(x, qx, "layernorm")
    cols = x.shape[-1]
    y = np.empty(x.shape, np.float32) if float_out else None
    yq = np.empty(x.shape, qy.dtype) if qy is not None else None
    total = np.empty(x.shape, np.float32) if sum_out else None
    if y is None and yq is None:
        raise KernelError("layernorm: no output requested")
    if x.size == 0:
        return [o for o in (y, yq, total) if o is not None]
    if residual is not None:
        residual = _rows_in(np.broadcast_to(residual, x.shape), qr, "layernorm residual")
    g = _row_vector(gamma, cols, "gamma")
    b = _row_vector(beta, cols, "beta")
    bb = _row_vector(bias, cols, "bias")
    check(
        lib.pyrt_layernorm(
            _ctx(ctx).ptr,
            x.size // cols,
            cols,
            ptr(x),
            _io(qx),
            ptr(bb, "float *"),
            ptr(residual),
            _io(qr),
            ptr(g, "float *"),
            ptr(b, "float *"),
            float(epsilon),
            ptr(y, "float *"),
            ptr(yq),
            _io(qy),
            ptr(total, "float *"),
        )
    )
    return [o for o in (y, yq, total) if o is not None]


ACTIVATIONS = {"identity": 0, "gelu": 1, "gelu_tanh": 2}


def activation(
    x: np.ndarray,
    act: str,
    qx: QParams | None = None,
    bias: np.ndarray | None = None,
    qy: QParams | None = None,
    ctx: Context | None = None,
) -> np.ndarray:
    """act(DQ?(x) (+ bias over the last axis)), quantized with qy if given;
    act: "identity", "gelu" (Erf form) or "gelu_tanh"."""
    if act not in ACTIVATIONS:
        raise KernelError(f"activation must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    x = _rows_in(x, qx, "activation")
    y = np.empty(x.shape, np.float32 if qy is None else qy.dtype)
    if x.size == 0:
        return y
    cols = x.shape[-1]
    b = _row_vector(bias, cols, "bias")
    check(
        lib.pyrt_activation(
            _ctx(ctx).ptr,
            x.size // cols,
            cols,
            ptr(x),
            _io(qx),
            ptr(b, "float *"),
            ACTIVATIONS[act],
            ptr(y),
            _io(qy),
        )
    )
    return y


def smatmul(a: np.ndarray, b: np.ndarray, ctx: Context | None = None) -> np.ndarray:
    """fp32 MatMul of two tensors (numpy matmul broadcasting; both at least 2-D) on the
    fp32 GEMM's arithmetic: each batch matrix of b is packed per call."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    batch, m, k, n = _matmul_shape("smatmul", a, b)
    y = np.empty((*batch, m, n), np.float32)
    if y.size == 0 or k == 0:
        y[...] = 0.0
        return y
    count = y.size // (m * n)
    a3, sa, b3, sb = _matmul_operands("smatmul", a, b, batch, count, m, k, n)
    check(
        lib.pyrt_smatmul(
            _ctx(ctx).ptr,
            count,
            m,
            n,
            k,
            ffi.cast("float *", a3.ctypes.data),
            sa[0],
            sa[1],
            ffi.cast("float *", b3.ctypes.data),
            sb[0],
            sb[1],
            sb[2],
            ptr(y, "float *"),
            m * n,
            n,
        )
    )
    return y


# ---- fused attention -------------------------------------------------------


@dataclass(frozen=True)
class AttentionQuant:
    """What an int8 attention quantizes, as the unfused QDQ graph does: the operands'
    zero points (q, k, v; their scales are folded into the stages), Q·Kᵀ's output
    stage and how the softmax reads it (scores_q None: float scores), the softmax
    output's quantization (probs: the P codes P·V reads) and P·V's output stage."""

    q: QParams
    k: QParams
    v: QParams
    scores: OutputStage
    scores_q: QParams | None
    probs: QParams
    out: OutputStage


def attention_strides(x: np.ndarray, rows: bool, mask: bool = False) -> list[int] | None:
    """Element strides of a 4-D attention operand (batch, head, row, column) as
    pyrt_attention reads it in place, or None: non-negative; with `rows` (read as GEMM
    rows) contiguous columns and rows apart, or a mask's repeated row. Dims of size 1
    take the stride that fits (numpy's is arbitrary there)."""
    item = x.itemsize
    if any(s % item for s in x.strides):
        return None
    st = [s // item if n > 1 else 0 for s, n in zip(x.strides, x.shape)]
    if x.shape[3] == 1:
        st[3] = 1
    if x.shape[2] == 1:
        st[2] = x.shape[3]
    if min(st) < 0:
        return None
    if rows and (st[3] != 1 or (st[2] < x.shape[3] and not (mask and st[2] == 0))):
        return None
    return st


def _operand(x: np.ndarray, shape: tuple, rows: bool = True, mask: bool = False):
    """x broadcast to [B, H, rows, cols] and its element strides (attention_strides), a
    contiguous copy where the kernel cannot read x as it is."""
    x = np.broadcast_to(x, shape)
    strides = attention_strides(x, rows, mask)
    if strides is None:
        x = np.ascontiguousarray(x)
        strides = attention_strides(x, rows, mask)
    return x, strides


def attention_args(
    shapes: tuple[tuple, ...],
    dtypes: tuple,
    strides: tuple[list[int], ...],
    x_div: float,
    quant: AttentionQuant | None,
    x_mul: float = 1.0,
) -> tuple:
    """pyrt_attention_args (data pointers NULL) for q [B, H, Sq, D], k [B, H, Sk, D],
    v [B, H, Sk, Dv], y [B, H, Sq, Dv] and an optional mask, with element strides
    (batch, head, row, column) each (y and mask: batch, head, row; mask None for none);
    returns (args, kept objects)."""
    (b, h, sq, d), (_, _, sk, _), (_, _, _, dv) = shapes[0], shapes[1], shapes[2]
    a = ffi.new("pyrt_attention_args *")
    a.batch, a.heads, a.q_len, a.kv_len, a.head_dim, a.v_dim = b, h, sq, sk, d, dv
    zeros = (None, None, None) if quant is None else (quant.q, quant.k, quant.v)
    for field_, dtype, stride, qp in zip((a.q, a.k, a.v), dtypes, strides, zeros):
        field_.dtype = dtype_code(dtype)
        field_.zero_point = 0 if qp is None else int(qp.zero_point)
        field_.stride = stride
    a.y_stride = strides[3]
    if strides[4] is not None:
        a.mask_stride = strides[4]
    a.x_mul, a.x_div = float(x_mul), float(x_div)
    kept: list = []
    if quant is None:
        a.out.out_dtype = lib.PYRT_F32
        a.scores_q.dtype = a.probs.dtype = lib.PYRT_F32
        return a, kept
    scores, scores_scale = _stage(quant.scores, 1)
    out, out_scale = _stage(quant.out, 1)
    a.scores, a.out = scores[0], out[0]
    a.scores_q = _io(quant.scores_q)[0]
    a.probs = _qparams(quant.probs)[0]
    kept += [scores, scores_scale, out, out_scale]
    return a, kept


def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    x_div: float = 1.0,
    quant: AttentionQuant | None = None,
    y: np.ndarray | None = None,
    ctx: Context | None = None,
    x_mul: float = 1.0,
) -> np.ndarray:
    """softmax(Q·Kᵀ * x_mul / x_div + mask)·V per (batch, head): q [B, H, Sq, D], k [B, H, Sk, D]
    (K's rows: the graph's Kᵀ with its last two axes swapped), v [B, H, Sk, Dv], all
    4-D (batch dims broadcast), float32 (quant None) or the codes quant describes;
    mask broadcasts to [B, H, Sq, Sk]. Writes y (a [B, H, Sq, Dv] array, any view
    with contiguous rows) or a new array; the scores are tiled, never materialised."""
    q, k, v = np.asarray(q), np.asarray(k), np.asarray(v)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise KernelError(f"attention needs 4-D q, k, v, got {q.shape}, {k.shape}, {v.shape}")
    try:
        b, h = np.broadcast_shapes(q.shape[:2], k.shape[:2], v.shape[:2])
    except ValueError as exc:
        raise KernelError(f"attention: batch dims of {q.shape}, {k.shape}, {v.shape}") from exc
    sq, d = q.shape[2:]
    sk, dv = v.shape[2:]
    if k.shape[2:] != (sk, d):
        raise KernelError(f"attention: k {k.shape} does not fit q {q.shape} and v {v.shape}")
    want = (
        [np.dtype(np.float32)] * 3
        if quant is None
        else [quant.q.dtype, quant.k.dtype, quant.v.dtype]
    )
    for name, x, dtype in (("q", q, want[0]), ("k", k, want[1]), ("v", v, want[2])):
        if x.dtype != np.dtype(dtype):
            raise KernelError(f"attention: {name} must be {np.dtype(dtype)}, got {x.dtype}")
    out_dtype = np.dtype(np.float32) if quant is None else np.dtype(quant.out.dtype)
    if y is None:
        y = np.empty((b, h, sq, dv), out_dtype)
    if y.shape != (b, h, sq, dv) or y.dtype != out_dtype:
        raise KernelError(
            f"attention: y must be {out_dtype} {(b, h, sq, dv)}, got {y.dtype} {y.shape}"
        )
    if y.size == 0:
        return y
    if sk == 0 or d == 0:
        raise KernelError(f"attention: no keys or an empty head ({k.shape})")
    for dim, name in ((b * h * sq, "batch x heads x queries"), (sk, "keys"), (d, "head size")):
        if dim >= 2**31:
            raise KernelError(f"attention: {name} {dim} does not fit int32")
    ops = [_operand(x, (b, h, *x.shape[2:]), rows=x is q) for x in (q, k, v)]
    target, y_strides = y, attention_strides(y, rows=True)
    if y_strides is None:
        target = np.empty(y.shape, y.dtype)
        y_strides = attention_strides(target, rows=True)
    y_strides = y_strides[:3]
    m, m_strides = None, None
    if mask is not None:
        mask = np.asarray(mask, np.float32)
        try:
            full = np.broadcast_shapes(mask.shape, (b, h, sq, sk))
        except ValueError:
            full = None
        if full != (b, h, sq, sk):
            raise KernelError(
                f"attention: mask {mask.shape} does not broadcast to the scores {(b, h, sq, sk)}"
            )
        m, m_strides = _operand(mask, (b, h, sq, sk), mask=True)
        m_strides = m_strides[:3]
    ctx = _ctx(ctx)
    args, _kept = attention_args(
        ((b, h, sq, d), (b, h, sk, d), (b, h, sk, dv)),
        tuple(x.dtype for x, _ in ops),
        (*(s for _, s in ops), y_strides, m_strides),
        x_div,
        quant,
        x_mul,
    )
    args.q.data, args.k.data, args.v.data = (ffi.cast("void *", x.ctypes.data) for x, _ in ops)
    args.mask = ffi.NULL if m is None else ffi.cast("float *", m.ctypes.data)
    args.y = ffi.cast("void *", target.ctypes.data)
    check(lib.pyrt_attention(ctx.ptr, args))
    if target is not y:
        y[...] = target
    return y


# ---- fp32 elementwise (kernels/src/felem/) -----------------------------------

UNARY_OPS = {
    "relu": lib.PYRT_RELU,
    "leaky_relu": lib.PYRT_LEAKY_RELU,
    "clip": lib.PYRT_CLIP,
    "sigmoid": lib.PYRT_SIGMOID,
    "hard_sigmoid": lib.PYRT_HARD_SIGMOID,
    "hard_swish": lib.PYRT_HARD_SWISH,
    "tanh": lib.PYRT_TANH,
    "elu": lib.PYRT_ELU,
    "softplus": lib.PYRT_SOFTPLUS,
    "swish": lib.PYRT_SWISH,
    "erf": lib.PYRT_ERF,
}
BINARY_OPS = {"add": lib.PYRT_ADD, "sub": lib.PYRT_SUB, "mul": lib.PYRT_MUL, "div": lib.PYRT_DIV}


def _float_in(x: np.ndarray, op: str) -> np.ndarray:
    x = np.ascontiguousarray(x)
    if x.dtype != np.float32:
        raise KernelError(f"{op}: inputs must be float32, got {x.dtype}")
    return x


def funary(
    op: str, x: np.ndarray, alpha: float = 0.0, beta: float = 0.0, ctx: Context | None = None
) -> np.ndarray:
    """An fp32 activation of x (UNARY_OPS; formulas in kernels/src/felem/felem_scalar.c):
    alpha is LeakyRelu's slope, Elu's scale, HardSigmoid's / HardSwish's slope (beta its
    offset), Clip's [alpha, beta]."""
    if op not in UNARY_OPS:
        raise KernelError(f"funary op must be one of {sorted(UNARY_OPS)}, got {op!r}")
    x = _float_in(x, op)
    y = np.empty_like(x)
    if x.size:
        check(
            lib.pyrt_funary(
                _ctx(ctx).ptr,
                UNARY_OPS[op],
                x.size,
                ptr(x, "float *"),
                float(alpha),
                float(beta),
                ptr(y, "float *"),
            )
        )
    return y


def fbinary_split(a: tuple, b: tuple) -> tuple[tuple[int, int, int], bool] | None:
    """((outer, middle, inner), b_first) for pyrt_fbinary_broadcast: the operand of the
    full shape is the kernel's a, the other broadcasts as [outer, 1, inner] (b_first:
    it was the op's first operand). None for other broadcasts."""
    try:
        full = np.broadcast_shapes(a, b)
    except ValueError:
        return None
    if tuple(a) == full:
        split = broadcast_split(full, b)
        return None if split is None else (split, False)
    if tuple(b) == full:
        split = broadcast_split(full, a)
        return None if split is None else (split, True)
    return None


def fbinary(op: str, a: np.ndarray, b: np.ndarray, ctx: Context | None = None) -> np.ndarray:
    """a op b in fp32 for op "add", "sub", "mul" or "div", numpy broadcasting: the kernel
    broadcasts an [outer, 1, inner] operand (Squeeze-Excite scales, per-channel vectors,
    scalars) itself; other broadcasts are expanded here first."""
    if op not in BINARY_OPS:
        raise KernelError(f"fbinary op must be one of {sorted(BINARY_OPS)}, got {op!r}")
    a, b = _float_in(a, op), _float_in(b, op)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError as exc:
        raise KernelError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast") from exc
    y = np.empty(shape, np.float32)
    if y.size == 0:
        return y
    found = fbinary_split(a.shape, b.shape)
    if found is None:
        a, b = (np.ascontiguousarray(v) for v in np.broadcast_arrays(a, b))
        found = (1, 1, y.size), False
    split, b_first = found
    full, small = (b, a) if b_first else (a, b)
    check(
        lib.pyrt_fbinary_broadcast(
            _ctx(ctx).ptr,
            BINARY_OPS[op],
            *split,
            ptr(full, "float *"),
            ptr(small, "float *"),
            int(b_first),
            ptr(y, "float *"),
        )
    )
    return y
