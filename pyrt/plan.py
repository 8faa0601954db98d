"""Stage plan: turn nodes into steps, weights packed once.

A Step is a node made ready to run: its kernel object built (weights packed
once, here), its inputs and outputs named, and the values it is the last
user of listed so the runner can drop them early.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from onnx import helper

from . import kernels as K
from ._kernels import Context, default_context, dtype_code, ffi, lib, ptr
from .errors import KernelError, ModelError, UnsupportedOpError
from .graph import SUBGRAPH, Graph, Node
from .ops_float import FLOAT_OPS, run_float_op
from .patterns import (
    INT8,
    Matcher,
    conv_pads,
    int_attr_list,
    real_const,
    valid_scale,
    window_attrs,
)
from .plan_attention import attention_fn
from .plan_float import float_step_args
from .validate import QUANT_DTYPES, validate_quant_node


@dataclass
class Step:
    """fn runs the step on numpy arrays (the interpreter). emit, when set, adds the same
    work as C plan entries (program.py): emit(emitter, input slots, output slots) -> bool,
    False where it cannot (it then runs through fn); arena_inputs are the input positions
    it reads from the arena (constants there are copied into it)."""

    node: Node
    kind: str  # "int8", "fp32", "quant" (Q/DQ), "numpy", "layout"
    fn: Callable[..., list[np.ndarray]]
    release: list[str] = field(default_factory=list)
    emit: Callable | None = None
    arena_inputs: tuple[int, ...] = (0,)

    @property
    def inputs(self) -> list[str]:
        return self.node.inputs

    @property
    def outputs(self) -> list[str]:
        return self.node.outputs


# ---- Q / DQ ---------------------------------------------------------------


def _quant_axis(node: Node, x_ndim: int, scale: np.ndarray) -> tuple[int, int]:
    """(axis, block) for kernels.quantize/dequantize, validated against x."""
    block = int(node.attr("block_size", 0))
    axis = int(node.attr("axis", 1))
    if scale.size == 1 and block == 0:
        return 0, 0
    if not -x_ndim <= axis < x_ndim:
        raise ModelError(f"{node.label}: axis {axis} is out of range for a rank-{x_ndim} input")
    return axis % x_ndim, block


def _q_zero(node: Node, g: Graph) -> tuple[np.ndarray | None, np.dtype]:
    zero_name = node.inputs[2] if len(node.inputs) > 2 else ""
    zero = g.constants.get(zero_name) if zero_name else None
    if zero is not None:
        return zero, zero.dtype
    if zero_name:
        dtype = g.dtype(zero_name)
        return None, dtype if dtype is not None else np.dtype(np.uint8)
    out_type = int(node.attr("output_dtype", 0))
    if out_type and out_type not in QUANT_DTYPES:
        raise UnsupportedOpError(f"{node.label}: output_dtype {out_type} is not supported")
    return None, np.dtype(QUANT_DTYPES.get(out_type, np.uint8))


def _broadcast_param(p: np.ndarray, x: np.ndarray, axis: int, block: int) -> np.ndarray:
    if p.size == 1:
        return p.reshape(())
    if block:
        return np.repeat(p, block, axis=axis)[tuple(slice(0, d) for d in x.shape)]
    shape = [1] * x.ndim
    shape[axis] = -1
    return p.reshape(shape)


def quantize_step(node: Node, g: Graph, ctx: Context) -> Step:
    zero_const, dtype = _q_zero(node, g)

    def run(x, scale, zero=None):
        valid_scale(node, scale)
        zero = zero if zero is not None else zero_const
        if zero is not None and zero.dtype != dtype:
            raise ModelError(f"{node.label}: zero point dtype {zero.dtype}, expected {dtype}")
        axis, block = _quant_axis(node, x.ndim, scale)
        x = x.astype(np.float32, copy=False)
        if dtype in INT8:
            return [K.quantize(x, scale.astype(np.float32), zero, axis, block, dtype, ctx)]
        info = np.iinfo(dtype)  # wider types: same math in numpy
        z = _broadcast_param(zero, x, axis, block).astype(np.float64) if zero is not None else 0.0
        with np.errstate(invalid="ignore", over="ignore"):
            q = np.rint(x / _broadcast_param(scale.astype(np.float32), x, axis, block))
        y = np.nan_to_num(q, nan=0.0) + z  # NaN -> the zero point, as the int8 kernel does
        return [np.clip(y, info.min, info.max).astype(dtype)]

    def emit(em, ins, outs) -> bool:
        x, scale, zero = _quant_operands(node, g, ins)
        if x is None or x.array.dtype != np.float32 or dtype not in INT8 or x.array.size == 0:
            return False
        zero = zero if zero is not None else zero_const
        if zero is not None and zero.dtype != dtype:
            return False
        layout, scale, zero = _quant_entry_args(em, node, x.array, scale, zero)
        em.add(
            lib.pyrt_plan_quantize(
                em.plan,
                layout,
                x.offset,
                ptr(scale, "float *"),
                ptr(zero),
                dtype_code(dtype),
                outs[0].offset,
            )
        )
        return True

    return Step(node, "quant", run, emit=emit)


def _quant_operands(node: Node, g: Graph, ins: list):
    """(x slot, constant scale, constant zero or None) of a Q/DQ node, or x None if the
    scale or zero point is not a constant."""
    scale = g.constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
    zero_name = node.inputs[2] if len(node.inputs) > 2 else ""
    zero = g.constants.get(zero_name) if zero_name else None
    if scale is None or (zero_name and zero is None):
        return None, None, None
    return ins[0], scale, zero


def _quant_entry_args(em, node: Node, x: np.ndarray, scale: np.ndarray, zero):
    """The layout, scale and zero point arrays of a Q/DQ plan entry, kept alive by em."""
    scale = np.ascontiguousarray(scale, np.float32)
    axis, block = _quant_axis(node, x.ndim, scale)
    layout = K._quant_layout(x, scale, axis, block)
    zero = K._zero_like(zero, scale)
    em.keep(scale, zero, layout)
    return layout, scale, zero


def dequantize_step(node: Node, g: Graph, ctx: Context) -> Step:
    """DequantizeLinear in float32; output takes output_dtype (opset 23+) or the scale type."""
    out_type = int(node.attr("output_dtype", 0))
    out_dtype = np.dtype(helper.tensor_dtype_to_np_dtype(out_type)) if out_type else None

    def run(x, scale, zero=None):
        valid_scale(node, scale)
        if zero is not None and zero.dtype != x.dtype:
            raise ModelError(
                f"{node.label}: zero point dtype {zero.dtype} differs from data {x.dtype}"
            )
        axis, block = _quant_axis(node, x.ndim, scale)
        if x.dtype in (*INT8, np.dtype(np.int32)):
            y = K.dequantize(x, scale.astype(np.float32), zero, axis, block, ctx)
        elif x.dtype.kind in "iu":
            z = (
                _broadcast_param(zero, x, axis, block).astype(np.float64)
                if zero is not None
                else 0.0
            )
            s = _broadcast_param(scale.astype(np.float32), x, axis, block)
            y = ((x.astype(np.float64) - z).astype(np.float32) * s).astype(np.float32)
        else:
            raise UnsupportedOpError(f"{node.label}: dequantizing {x.dtype} is not supported")
        want = out_dtype or scale.dtype
        return [y if want == y.dtype else y.astype(want)]

    def emit(em, ins, outs) -> bool:
        x, scale, zero = _quant_operands(node, g, ins)
        if x is None or outs[0].array.dtype != np.float32 or x.array.size == 0:
            return False
        if x.array.dtype not in (*INT8, np.dtype(np.int32)):
            return False
        if zero is not None and zero.dtype != x.array.dtype:
            return False
        layout, scale, zero = _quant_entry_args(em, node, x.array, scale, zero)
        em.add(
            lib.pyrt_plan_dequantize(
                em.plan,
                layout,
                x.offset,
                dtype_code(x.array.dtype),
                ptr(scale, "float *"),
                ptr(zero),
                outs[0].offset,
            )
        )
        return True

    return Step(node, "quant", run, emit=emit)


# ---- integer ops ------------------------------------------------------------


def _static_probe(g: Graph | None, name: str, rank: int) -> tuple[int, ...] | None:
    """The input shape known at load (a symbolic batch taken as 1), to check geometry early."""
    shape = g.shape(name) if g is not None else None
    if shape is None or len(shape) != rank:
        return None
    dims = [
        d if isinstance(d, int) and d > 0 else 1 if i == 0 else None for i, d in enumerate(shape)
    ]
    return None if None in dims else tuple(dims)


def _conv_guard(node: Node, conv, g: Graph | None, conv1d: bool, itemsize: int) -> Callable:
    """Checks the geometry against the input shape known at load; at run time, refuses an
    output over the memory limit before allocating it."""
    probe = _static_probe(g, node.inputs[0], 3 if conv1d else 4)
    if probe is not None:
        conv.shape((*probe[:2], 1, probe[2]) if conv1d else probe)  # KernelError -> ModelError
    limit = g.memory_limit if g is not None else None

    def check(x: np.ndarray) -> None:
        if limit is None or x.ndim != 4:
            return
        s = conv.shape(x.shape)
        count = s.batch * s.out_c * s.out_h * s.out_w
        if count * itemsize > limit:
            raise ModelError(
                f"{node.label}: output [{s.batch}, {s.out_c}, {s.out_h}, {s.out_w}] would "
                f"pass the memory limit of {limit} bytes"
            )

    return check


def qconv_step(node: Node, g: Graph | None, ctx: Context) -> Step:
    a = node.attrs
    conv = K.QConv2d(
        a["w"],
        a["w_zero"],
        a["bias"],
        groups=a["group"],
        strides=a["strides"],
        dilations=a["dilations"],
        pads=a["pads"],
        x_dtype=a["x_dtype"],
        x_zero=a["x_zero"] or 0,
        out=a["out"],
    )
    conv._weights(ctx)  # packed at load for the session's kernel table
    check = _conv_guard(node, conv, g, a["conv1d"], np.dtype(a["out"].dtype).itemsize)
    if a["x_zero"] is None:  # zero point (and scale) read at run time
        return _dynamic_qconv_step(node, conv, check, ctx)

    def entry(plan, s, packed, x: int, y: int) -> int:
        return lib.pyrt_plan_qconv2d(
            plan, s, packed, dtype_code(conv.x_dtype), conv.x_zero,
            ptr(conv.bias, "int32_t *"), conv.stage, x, y,
        )  # fmt: skip

    return conv_step(node, "int8", conv, check, a["conv1d"], bool(a.get("nhwc")), ctx, entry)


def _runtime_params(node: Node, x: np.ndarray, x_zero, scale) -> tuple[int, np.ndarray | None]:
    """The input zero point (one value of x's dtype) and output scale a quantize_dynamic
    op reads at run time."""
    if x_zero is None or x_zero.size != 1 or x_zero.dtype != x.dtype:
        got = "none" if x_zero is None else f"{x_zero.dtype} {list(x_zero.shape)}"
        raise ModelError(
            f"{node.label}: the input zero point must be one {x.dtype} value, got {got}"
        )
    if scale is not None:
        scale = scale.astype(np.float32, copy=False).reshape(-1)
        if "w_scale" in node.attrs:  # the graph's Mul(input scale, weight scale)
            scale = scale * node.attrs["w_scale"]
    return int(x_zero.reshape(-1)[0]), scale


def _dynamic_qconv_step(node: Node, conv, check: Callable, ctx: Context) -> Step:
    nhwc = bool(node.attrs.get("nhwc"))

    def run(x, x_zero=None, scale=None):
        zero, scale = _runtime_params(node, x, x_zero, scale)
        if nhwc:
            check(x.transpose(0, 3, 1, 2))
            return [conv.nhwc(x, ctx, None, zero, scale)]
        return [conv(_checked(check, x), ctx, zero, scale)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if not nhwc or x.ndim != 4 or x.dtype != conv.x_dtype or x.shape[0] == 0:
            return False
        scale = _dynamic_entry_args(em, node, x, ins)
        if scale is None:
            return False
        s = conv.nhwc_shape(x.shape)
        packed = conv._weights(em.ctx)
        em.keep(s, packed)
        em.add(
            lib.pyrt_plan_qconv2d_dynamic(
                em.plan, s, ptr(packed), dtype_code(x.dtype), ins[1].offset,
                ptr(conv.bias, "int32_t *"), conv.stage, *scale, ins[0].offset, outs[0].offset,
            )
        )  # fmt: skip
        return True

    return Step(node, "int8", run, emit=emit, arena_inputs=tuple(range(len(node.inputs))))


def conv_step(node: Node, kind: str, conv, check: Callable, conv1d: bool, nhwc: bool,
              ctx: Context, entry: Callable) -> Step:  # fmt: skip
    """The step of a prepared int8 or fp32 convolution: 1-D ones as 1 x W, NCHW ones
    through the transposing wrapper, NHWC ones (layout.py) on the kernel directly and in
    the C plan, where entry(plan, shape, packed, x, y) appends the kernel's entry."""
    if conv1d:
        return Step(
            node, kind, lambda x, *_: [conv(_checked(check, x[:, :, None, :]), ctx)[:, :, 0, :]]
        )
    if not nhwc:
        return Step(node, kind, lambda x, *_: [conv(_checked(check, x), ctx)])

    def run(x, *_):
        if x.ndim == 4:
            check(x.transpose(0, 3, 1, 2))
        return [conv.nhwc(x, ctx)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.ndim != 4 or x.dtype != conv.x_dtype or x.shape[0] == 0:
            return False
        s = conv.nhwc_shape(x.shape)
        packed = conv._weights(em.ctx)
        em.keep(s, packed)
        em.add(entry(em.plan, s, ptr(packed), ins[0].offset, outs[0].offset))
        return True

    return Step(node, kind, run, emit=emit)


def _checked(check: Callable, x: np.ndarray) -> np.ndarray:
    check(x)
    return x


def qmatmul_step(node: Node, g: Graph | None, ctx: Context) -> Step:
    a = node.attrs
    n, k = a["w"].shape
    shape = g.shape(node.inputs[0]) if g is not None else None
    if shape and not a["trans_a"] and isinstance(shape[-1], int) and shape[-1] != k:
        raise ModelError(f"{node.label}: input has {shape[-1]} columns, weights expect {k}")
    dynamic = a["x_zero"] is None  # the zero point is the second input, known at run time
    gemm = K.QGemm(a["w"], a["w_zero"], a["bias"], a["x_dtype"], a["x_zero"] or 0, a["out"])
    gemm._weights(ctx)

    def run(x, x_zero=None, scale=None):
        if a["trans_a"]:
            x = x.T
        if x.shape[-1] != k:
            raise ModelError(f"{node.label}: input has {x.shape[-1]} columns, weights expect {k}")
        zero = None
        if dynamic:
            zero, scale = _runtime_params(node, x, x_zero, scale)
        y = gemm.rows(np.ascontiguousarray(x.reshape(-1, k)), ctx, x_zero=zero, scale=scale)
        return [y.reshape(*x.shape[:-1], n)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if a["trans_a"] or x.ndim < 1 or x.shape[-1] != k or x.dtype != gemm.x_dtype:
            return False
        rows = x.size // k
        if rows == 0 or rows >= 2**31:
            return False
        packed = gemm._weights(em.ctx)
        em.keep(packed)
        if dynamic:
            scale = _dynamic_entry_args(em, node, x, ins)
            if scale is None:
                return False
            em.add(
                lib.pyrt_plan_qgemm_dynamic(
                    em.plan, rows, n, k, ins[0].offset, dtype_code(x.dtype), ins[1].offset, k,
                    ptr(packed), ptr(gemm.bias, "int32_t *"), gemm.stage, *scale,
                    outs[0].offset, n,
                )
            )  # fmt: skip
            return True
        em.add(
            lib.pyrt_plan_qgemm(
                em.plan,
                rows,
                n,
                k,
                ins[0].offset,
                dtype_code(x.dtype),
                gemm.x_zero,
                k,
                ptr(packed),
                ptr(gemm.bias, "int32_t *"),
                gemm.stage,
                outs[0].offset,
                n,
            )
        )
        return True

    return Step(node, "int8", run, emit=emit, arena_inputs=tuple(range(len(node.inputs))))


def _dynamic_entry_args(em, node: Node, x: np.ndarray, ins) -> tuple | None:
    """(scale offset, weight scales, count) of a quantize_dynamic plan entry, or None when
    the zero point or scale is not the one value / vector the entry reads."""
    zero = ins[1].array
    if zero.size != 1 or zero.dtype != x.dtype:
        return None
    if len(ins) < 3 or ins[2] is None:
        return -1, ffi.NULL, 0
    scale = ins[2].array
    if scale.dtype != np.float32 or not scale.flags.c_contiguous:
        return None
    w_scale = node.attrs.get("w_scale")
    if w_scale is None:
        return ins[2].offset, ffi.NULL, scale.size
    if scale.size != 1:
        return None
    em.keep(w_scale)
    return ins[2].offset, ptr(w_scale, "float *"), w_scale.size


def dynamic_quantize_step(node: Node, ctx: Context) -> Step:
    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.dtype != np.float32 or x.size == 0 or None in outs[:3] or len(outs) < 3:
            return False
        em.add(
            lib.pyrt_plan_dynamic_quantize(
                em.plan, x.size, ins[0].offset, outs[0].offset, outs[1].offset, outs[2].offset
            )
        )
        return True

    return Step(node, "quant", lambda x: list(K.dynamic_quantize(x, ctx)), emit=emit)


def qlut_step(node: Node) -> Step:
    table = node.attrs["table"]

    def emit(em, ins, outs) -> bool:
        if ins[0].array.size == 0:
            return False
        em.add(
            lib.pyrt_plan_lut8(
                em.plan, ins[0].array.size, ptr(table), ins[0].offset, outs[0].offset
            )
        )
        return True

    return Step(node, "int8", lambda x: [table[x.view(np.uint8)]], emit=emit)


def layout_step(node: Node, ctx: Context) -> Step:
    """ToNHWC / ToNCHW: the transposes at the borders of NHWC regions (layout.py)."""
    to_nhwc = node.op_type == "ToNHWC"

    def dims(x: np.ndarray) -> tuple[int, int, int]:
        n, a, b, c = x.shape  # NCHW [n][C][H*W] -> [n][H*W][C], or NHWC back
        return (n, a, b * c) if to_nhwc else (n, a * b, c)

    def run(x):
        perm = (0, 2, 3, 1) if to_nhwc else (0, 3, 1, 2)
        return [np.ascontiguousarray(x.transpose(perm))]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.ndim != 4 or x.size == 0 or x.itemsize not in (1, 4):
            return False
        em.add(
            lib.pyrt_plan_transpose(em.plan, x.itemsize, *dims(x), ins[0].offset, outs[0].offset)
        )
        return True

    return Step(node, "layout", run, emit=emit)


def integer_exact_step(node: Node, memory_limit: int) -> Callable:
    dtype = node.attrs["int_dtype"]

    def run(*inputs):
        outs = run_float_op(node, list(inputs), memory_limit)
        return [o.astype(dtype) if o.dtype != dtype and o.dtype.kind == "f" else o for o in outs]

    return run


def _check_pool(node: Node, g: Graph | None, w: dict) -> None:
    """A pooling window that leaves no output on the input shape known at load."""
    probe = _static_probe(g, node.inputs[0], 4)
    if probe is None:
        return
    for i, name in enumerate(("height", "width")):
        size = K.pool_output_size(
            probe[2 + i],
            w["kernel"][i],
            w["strides"][i],
            w["pads"][i],
            w["pads"][i + 2],
            w["dilations"][i],
            w["ceil_mode"],
        )
        if size <= 0:
            raise ModelError(
                f"{node.label}: kernel_shape {list(w['kernel'])} leaves no output {name} on "
                f"input shape {list(probe)}"
            )


def pyrt_step(node: Node, g: Graph | None, ctx: Context) -> Step:
    a = node.attrs
    if node.op_type == "QConv":
        return qconv_step(node, g, ctx)
    if node.op_type == "QMatMul":
        return qmatmul_step(node, g, ctx)
    if node.op_type == "QLut":
        return qlut_step(node)
    if node.op_type in ("ToNHWC", "ToNCHW"):
        return layout_step(node, ctx)
    if node.op_type == "QBinary":
        return qbinary_step(node, ctx)
    if node.op_type in ("QAffine", "Affine"):
        return affine_step(node, ctx)
    if node.op_type == "ChannelShuffle":
        return channel_shuffle_step(node, g)
    if node.op_type in ("QMaxPool", "QAvgPool"):
        _check_pool(node, g, a)
    layout = "nhwc" if a.get("nhwc") else "nchw"
    if node.op_type == "QMaxPool":
        return Step(
            node, "int8", lambda x: [_maxpool(a, x, ctx, layout)], emit=_emit_maxpool(a, layout)
        )
    if node.op_type == "QAvgPool":

        def avgpool(x):
            return [
                K.qavgpool2d(
                    x,
                    a["qx"],
                    a["qy"],
                    a["kernel"],
                    a["strides"],
                    a["pads"],
                    a["ceil_mode"],
                    a["count_include_pad"],
                    a["dilations"],
                    ctx,
                    layout,
                )
            ]

        def emit_avg(em, ins, outs) -> bool:
            x = ins[0].array
            if x.ndim != 4 or x.size == 0 or outs[0].array.size == 0:
                return False
            s = K._pool_shape(
                x, a["kernel"], a["strides"], a["pads"], a["dilations"], a["ceil_mode"], layout
            )
            s.count_include_pad = int(a["count_include_pad"])
            qx, qy = K._qparams(a["qx"]), K._qparams(a["qy"])
            em.keep(s, qx, qy)
            em.add(lib.pyrt_plan_qavgpool2d(em.plan, s, ins[0].offset, qx, outs[0].offset, qy))
            return True

        return Step(node, "int8", avgpool, emit=emit_avg)
    if node.op_type == "QGlobalAvgPool":

        def emit_gap(em, ins, outs) -> bool:
            x = ins[0].array
            if x.ndim < 3 or x.size == 0:
                return False
            qx, qy = K._qparams(a["qx"]), K._qparams(a["qy"])
            em.keep(qx, qy)
            if layout == "nhwc":
                n, c = x.shape[0], x.shape[-1]
                em.add(
                    lib.pyrt_plan_qglobalavgpool_nhwc(
                        em.plan, n, x.size // (n * c), c, ins[0].offset, qx, outs[0].offset, qy
                    )
                )
                return True
            rows, hw = x.shape[0] * x.shape[1], x.size // (x.shape[0] * x.shape[1])
            em.add(
                lib.pyrt_plan_qglobalavgpool(
                    em.plan, rows, hw, ins[0].offset, qx, outs[0].offset, qy
                )
            )
            return True

        return Step(
            node,
            "int8",
            lambda x: [K.qglobalavgpool(x, a["qx"], a["qy"], ctx, layout)],
            emit=emit_gap,
        )
    raise AssertionError(f"unknown fused op {node.op_type}")


def qbinary_step(node: Node, ctx: Context) -> Step:
    a = node.attrs

    def run(x, y):
        return [K.qbinary(a["op"], x, a["qa"], y, a["qb"], a["qy"], a["qmin"], a["qmax"], ctx)]

    def emit(em, ins, outs) -> bool:
        first, second, qa, qb = ins[0], ins[1], a["qa"], a["qb"]
        if first.array.size < second.array.size:  # Add and Mul commute bit for bit
            first, second, qa, qb = second, first, qb, qa
        if first.array.dtype != qa.dtype or second.array.dtype != qb.dtype:
            return False
        split = broadcast_split(first.array.shape, second.array.shape)
        if split is None or outs[0].array.shape != first.array.shape or first.array.size == 0:
            return False
        params = K._qparams(qa), K._qparams(qb), K._qparams(a["qy"])
        em.keep(*params)
        op = lib.PYRT_ADD if a["op"] == "add" else lib.PYRT_MUL
        em.add(
            lib.pyrt_plan_qbinary_broadcast(
                em.plan,
                op,
                *split,
                first.offset,
                params[0],
                second.offset,
                params[1],
                outs[0].offset,
                params[2],
                a["qmin"],
                a["qmax"],
            )
        )
        return True

    return Step(node, "int8", run, emit=emit, arena_inputs=(0, 1))


def broadcast_split(full: tuple, small: tuple) -> tuple[int, int, int] | None:
    """(outer, middle, inner) with full = [outer][middle][inner] and small broadcasting as
    [outer][1][inner] (pyrt_qbinary_broadcast), or None if small broadcasts otherwise."""
    if len(small) > len(full):
        return None
    small = (1,) * (len(full) - len(small)) + tuple(small)
    differ = [d for d in range(len(full)) if small[d] != full[d]]
    if any(small[d] != 1 for d in differ):
        return None
    if not differ:
        return 1, 1, math.prod(full)
    i, j = differ[0], differ[-1] + 1
    if j - i != len(differ):
        return None
    return math.prod(full[:i]), math.prod(full[i:j]), math.prod(full[j:])


def _maxpool(w: dict, x: np.ndarray, ctx: Context, layout: str) -> np.ndarray:
    return K.qmaxpool2d(
        x, w["kernel"], w["strides"], w["pads"], w["dilations"], w["ceil_mode"], ctx, layout
    )


def _emit_maxpool(w: dict, layout: str) -> Callable:
    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.ndim != 4 or x.size == 0 or outs[0].array.size == 0:
            return False
        s = K._pool_shape(
            x, w["kernel"], w["strides"], w["pads"], w["dilations"], w["ceil_mode"], layout
        )
        em.keep(s)
        em.add(
            lib.pyrt_plan_qmaxpool2d(em.plan, s, ins[0].offset, dtype_code(x.dtype), outs[0].offset)
        )
        return True

    return emit


# ---- CNN data movement and per-channel ops ---------------------------------


def _movement_emit(step: Step, g: Graph) -> None:
    """Concat, Split and one-axis unit-step Slice (any axis, any layout: layout.py remaps
    the axis of NHWC ones) as strided row copies in the C plan; the interpreter keeps
    numpy's, which checks shapes."""
    op = step.node.op_type
    if op == "Concat":
        step.emit = _emit_concat(step.node)
        step.arena_inputs = tuple(range(len(step.node.inputs)))
    elif op == "Split":
        step.emit = _emit_split(step.node)
    elif op == "Slice" and step.node.opset >= 10:
        step.emit = _emit_slice(step.node, g)


def _emit_slice(node: Node, g: Graph) -> Callable | None:
    names = [*node.inputs[1:5], "", ""][:4]
    values = [g.constants.get(n) if n else None for n in names]
    starts, ends, axes, steps = (None if v is None else v.reshape(-1) for v in values)
    if starts is None or ends is None or starts.size != 1 or (names[2] and axes is None):
        return None
    if (names[3] and steps is None) or (steps is not None and int(steps[0]) != 1):
        return None
    axis = int(axes[0]) if axes is not None else 0

    def emit(em, ins, outs) -> bool:
        x, y = ins[0].array, outs[0].array
        if y.size == 0 or not -x.ndim <= axis < x.ndim:
            return False
        a = axis % x.ndim
        start = int(starts[0]) + (x.shape[a] if starts[0] < 0 else 0)
        start = min(max(start, 0), x.shape[a])
        rows, stride = _rows(x.shape, a, x.itemsize)
        _, nbytes = _rows(y.shape, a, y.itemsize)
        at = start * (stride // x.shape[a])
        if at + nbytes > stride:
            return False
        em.add(
            lib.pyrt_plan_copy_rows(
                em.plan, rows, nbytes, ins[0].offset + at, stride, outs[0].offset, nbytes
            )
        )
        return True

    return emit


def _rows(shape: tuple, axis: int, itemsize: int) -> tuple[int, int]:
    """(rows, bytes per row) of an array cut at `axis`: [prod(shape[:axis])][the rest]."""
    return math.prod(shape[:axis]), math.prod(shape[axis:]) * itemsize


def _emit_concat(node: Node) -> Callable:
    def emit(em, ins, outs) -> bool:
        y = outs[0].array
        if y.size == 0 or y.ndim == 0:
            return False
        axis = int(node.attr("axis", 0)) % y.ndim
        rows, stride = _rows(y.shape, axis, y.itemsize)
        chunks = [_rows(s.array.shape, axis, y.itemsize)[1] for s in ins]
        if any(s.array.dtype != y.dtype for s in ins) or sum(chunks) != stride:
            return False
        at = outs[0].offset
        for slot, nbytes in zip(ins, chunks):
            if nbytes:
                em.add(
                    lib.pyrt_plan_copy_rows(em.plan, rows, nbytes, slot.offset, nbytes, at, stride)
                )
            at += nbytes
        return True

    return emit


def _emit_split(node: Node) -> Callable:
    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.size == 0 or x.ndim == 0:
            return False
        axis = int(node.attr("axis", 0)) % x.ndim
        rows, stride = _rows(x.shape, axis, x.itemsize)
        chunks = [_rows(s.array.shape, axis, x.itemsize)[1] for s in outs]
        if sum(chunks) != stride:
            return False
        at = ins[0].offset
        for slot, nbytes in zip(outs, chunks):
            if nbytes:
                em.add(
                    lib.pyrt_plan_copy_rows(em.plan, rows, nbytes, at, stride, slot.offset, nbytes)
                )
            at += nbytes
        return True

    return emit


def affine_step(node: Node, ctx: Context) -> Step:
    """QAffine (patterns.match_batchnorm: DQ -> BatchNormalization -> Q on the codes) and
    Affine (fuse_float_batchnorms: fp32 BatchNormalization, Relu / Clip fused): one
    per-channel y = x * a + b over axis 1, or the last axis in NHWC."""
    a = node.attrs
    quantized = node.op_type == "QAffine"

    def params(x: np.ndarray) -> tuple:
        axis = x.ndim - 1 if a.get("nhwc") else 1
        if x.ndim < 2 or x.shape[axis] != a["a"].size:
            raise ModelError(
                f"{node.label}: input shape {list(x.shape)} does not have {a['a'].size} "
                f"channels on axis {axis}"
            )
        if quantized:
            dt, qx, qy = x.dtype, a["qx"], a["qy"]
            if dt != qx.dtype:
                raise ModelError(f"{node.label}: input is {dt}, expected {qx.dtype}")
            return axis, qx.zero_point, qy.dtype, qy.zero_point, a["qmin"], a["qmax"]
        return axis, 0, np.dtype(np.float32), 0, *a["clamp"]

    def run(x, *_):
        axis, xz, ydt, yz, lo, hi = params(x)
        return [K.channel_affine(x, a["a"], a["b"], axis, lo, hi, xz, ydt, yz, ctx)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.size == 0:
            return False
        axis, xz, ydt, yz, lo, hi = params(x)
        outer, inner = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1 :])
        em.add(
            lib.pyrt_plan_channel_affine(
                em.plan, outer, x.shape[axis], inner, ins[0].offset, dtype_code(x.dtype), xz,
                ptr(a["a"], "float *"), ptr(a["b"], "float *"), outs[0].offset,
                dtype_code(ydt), yz, float(lo), float(hi),
            )
        )  # fmt: skip
        return True

    return Step(node, "int8" if quantized else "fp32", run, emit=emit)


def channel_shuffle_step(node: Node, g: Graph) -> Step:
    """ShuffleNet's Reshape [N, g, C/g, ...] -> Transpose(0, 2, 1, ...) -> Reshape on NHWC
    data (layout.py): y[p][i * g + j] = x[p][j * C/g + i] for every pixel p, a transpose of
    [g][C/g] per pixel."""
    groups = node.attrs["groups"]
    kind = "int8" if g.dtype(node.inputs[0]) in INT8 else "fp32"

    def dims(x: np.ndarray) -> tuple[int, int, int]:
        c = x.shape[-1]
        if x.ndim != 4 or c % groups:
            raise ModelError(
                f"{node.label}: {c} channels do not shuffle in {groups} groups "
                f"(input {list(x.shape)})"
            )
        return x.size // c, groups, c // groups

    def run(x):
        pixels, rows, cols = dims(x)
        y = x.reshape(pixels, rows, cols).transpose(0, 2, 1)
        return [np.ascontiguousarray(y).reshape(x.shape)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.size == 0 or x.itemsize not in (1, 4):
            return False
        em.add(
            lib.pyrt_plan_transpose(em.plan, x.itemsize, *dims(x), ins[0].offset, outs[0].offset)
        )
        return True

    return Step(node, kind, run, emit=emit)


def float_avgpool_step(node: Node, window: dict, ctx: Context) -> Step:
    """fp32 AveragePool, NCHW or NHWC (layout.py) on pyrt_avgpool2d_f32."""
    layout = "nhwc" if node.attrs.get("nhwc") else "nchw"
    include_pad = bool(node.attr("count_include_pad", 0))

    def run(x):
        if x.ndim != 4:
            raise ModelError(f"{node.label}: input must be 4-D, got {list(x.shape)}")
        return [
            K.avgpool2d_f32(
                x, window["kernel"], window["strides"], window["pads"], window["ceil_mode"],
                include_pad, window["dilations"], ctx, layout,
            )
        ]  # fmt: skip

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.ndim != 4 or x.dtype != np.float32 or x.size == 0 or outs[0].array.size == 0:
            return False
        s = K._pool_shape(
            x, window["kernel"], window["strides"], window["pads"], window["dilations"],
            window["ceil_mode"], layout,
        )  # fmt: skip
        s.count_include_pad = int(include_pad)
        em.keep(s)
        em.add(lib.pyrt_plan_avgpool2d_f32(em.plan, s, ins[0].offset, outs[0].offset))
        return True

    return Step(node, "fp32", run, emit=emit)


# ---- fp32 ops with constant weights -----------------------------------------


def float_conv_params(node: Node, g: Graph) -> dict | None:
    """A Conv that the fp32 kernels run (constant float32 weights, constant or no bias,
    pads known at load): its weights and geometry as 2-D; None for numpy."""
    if node.domain not in ("", "ai.onnx") or node.op_type != "Conv":
        return None
    w = g.constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
    bias = g.constants.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if w is None or w.ndim not in (3, 4) or w.dtype != np.float32:
        return None
    if len(node.inputs) > 2 and node.inputs[2] and bias is None:
        return None
    nd = w.ndim - 2
    strides = int_attr_list(node, "strides", nd, 1)
    dilations = int_attr_list(node, "dilations", nd, 1)
    shape = g.shape(node.inputs[0])
    pads = conv_pads(node, shape[2:] if shape else None, list(w.shape[2:]), strides, dilations)
    if pads is None:
        return None
    if nd == 1:
        w = w[:, :, None, :]
        strides, dilations, pads = [1, *strides], [1, *dilations], [0, pads[0], 0, pads[1]]
    return dict(
        w=np.ascontiguousarray(w),
        bias=bias,
        groups=int(node.attr("group", 1)),
        strides=tuple(strides),
        dilations=tuple(dilations),
        pads=tuple(pads),
        conv1d=nd == 1,
    )


def float_conv_step(node: Node, g: Graph, ctx: Context) -> Step | None:
    p = float_conv_params(node, g)
    if p is None:
        return None
    lo, hi = node.attrs.get("clamp", (-np.inf, np.inf))  # a fused Relu / Clip
    conv = K.Conv2d(
        p["w"],
        p["bias"],
        groups=p["groups"],
        strides=p["strides"],
        dilations=p["dilations"],
        pads=p["pads"],
        lo=lo,
        hi=hi,
    )
    conv._weights(ctx)
    check = _conv_guard(node, conv, g, p["conv1d"], 4)

    def entry(plan, s, packed, x: int, y: int) -> int:
        return lib.pyrt_plan_conv2d(
            plan, s, packed, ptr(conv.bias, "float *"), conv.lo, conv.hi, x, y
        )

    nhwc = bool(node.attrs.get("nhwc"))
    return conv_step(node, "fp32", conv, check, p["conv1d"], nhwc, ctx, entry)


def float_gemm_step(node: Node, g: Graph, ctx: Context) -> Step | None:
    """MatMul / Gemm with a constant 2-D fp32 weight: y = x @ W + bias."""
    w = g.constants.get(node.inputs[1])
    if w is None or w.ndim != 2 or w.dtype != np.float32:
        return None
    gemm = node.op_type == "Gemm"
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    trans_a = gemm and bool(node.attr("transA", 0))
    w = w if gemm and node.attr("transB", 0) else w.T  # rows = output features
    n, k = w.shape
    bias = None
    if gemm and len(node.inputs) > 2 and node.inputs[2] and beta != 0:
        c = g.constants.get(node.inputs[2])
        if c is None or c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1):
            return None
        bias = (beta * np.broadcast_to(c.reshape(-1), (n,))).astype(np.float32)
    lo, hi = node.attrs.get("clamp", (-np.inf, np.inf))
    kernel = K.Gemm(np.ascontiguousarray(alpha * w, dtype=np.float32), bias, lo, hi)
    kernel._weights(ctx)

    def run(x, *_):
        if trans_a:
            x = x.T
        if x.shape[-1] != k:
            raise ModelError(f"{node.label}: input has {x.shape[-1]} columns, weights expect {k}")
        y = kernel.rows(np.ascontiguousarray(x.reshape(-1, k), dtype=np.float32), ctx)
        return [y.reshape(*x.shape[:-1], n)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if trans_a or x.ndim < 1 or x.shape[-1] != k or x.dtype != np.float32:
            return False
        rows = x.size // k
        if rows == 0 or rows >= 2**31:
            return False
        packed = kernel._weights(em.ctx)
        em.keep(packed)
        em.add(
            lib.pyrt_plan_sgemm(
                em.plan,
                rows,
                n,
                k,
                ins[0].offset,
                k,
                ptr(packed),
                ptr(kernel.bias, "float *"),
                kernel.lo,
                kernel.hi,
                outs[0].offset,
                n,
            )
        )
        return True

    return Step(node, "fp32", run, emit=emit)


def fuse_float_convs(g: Graph) -> None:
    """fp32 Convs with constant weights absorb what follows them alone, as onnxruntime's
    optimizer does: a BatchNormalization (inference form, constant statistics) folds into
    the weights and bias; then a Relu or a Clip with constant bounds becomes the kernel's
    clamp. The absorbed nodes go; the report lists them as fused."""
    outputs = {t.name for t in g.outputs}
    matcher = Matcher(g)
    drop: set[str] = set()
    for node in g.nodes:
        if float_conv_params(node, g) is None or "clamp" in node.attrs:
            continue
        fused = [node.name]
        follower = matcher.sole_consumer(node.outputs[0])
        if follower is not None and _fold_batchnorm(g, node, follower):
            fused.append(follower.name)
            drop.add(follower.name)
            node.outputs = [follower.outputs[0]]
            follower = matcher.sole_consumer(follower.outputs[0])
        bounds = _float_clamp(matcher, follower)
        if bounds is not None and node.outputs[0] not in outputs:
            node.attrs["clamp"] = bounds
            fused.append(follower.name)
            drop.add(follower.name)
            node.outputs = [follower.outputs[0]]
        if len(fused) > 1:
            node.attrs["fused"] = fused
    if drop:
        g.nodes = [n for n in g.nodes if n.name not in drop]
        g.reindex()
    fuse_float_batchnorms(g)


def _float_clamp(matcher: Matcher, node: Node | None) -> tuple[float, float] | None:
    """The bounds of a Relu, or of a Clip with constant, ordered bounds; else None."""
    if node is None or node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "Relu":
        return 0.0, np.inf
    bounds = matcher.clip_bounds(node) if node.op_type == "Clip" else None
    if bounds is None or np.isnan(bounds).any() or bounds[0] > bounds[1]:
        return None
    return bounds


def _batchnorm_f32(matcher: Matcher, node: Node) -> tuple[np.ndarray, np.ndarray]:
    """(k, shift) of an inference BatchNormalization in onnxruntime's float32 steps:
    k = 1 / sqrt(var + epsilon) * scale, shift = bias - mean * k."""
    f32 = np.float32
    gamma, beta, mean, var = (
        real_const(matcher, i).astype(f32).reshape(-1) for i in node.inputs[1:]
    )
    inv_std = f32(1) / np.sqrt(var + f32(node.attr("epsilon", 1e-5)))
    k = inv_std * gamma
    return k, beta - mean * k


def fuse_float_batchnorms(g: Graph) -> None:
    """fp32 BatchNormalizations no Conv absorbed (DenseNet's BN-ReLU before each conv)
    become one per-channel Affine step (pyrt_channel_affine: y = x * k + shift, with k and
    shift in float32 as onnxruntime's BatchNormalization computes them, so the result is
    its bit for bit), a following Relu / Clip its clamp."""
    outputs = {t.name for t in g.outputs}
    matcher = Matcher(g)
    drop: set[str] = set()
    for i, node in enumerate(g.nodes):
        if node.op_type != "BatchNormalization" or node.domain not in ("", "ai.onnx"):
            continue
        shape = g.shape(node.inputs[0])
        if g.dtype(node.inputs[0]) != np.float32:
            continue
        if shape is None or len(shape) < 2 or not isinstance(shape[1], int):
            continue
        if matcher.batchnorm(node, shape[1]) is None:
            continue
        k, shift = _batchnorm_f32(matcher, node)
        attrs = dict(a=k, b=shift, clamp=(-np.inf, np.inf), fused=[node.name])
        follower = matcher.sole_consumer(node.outputs[0])
        bounds = _float_clamp(matcher, follower)
        out = node.outputs[0]
        if bounds is not None and out not in outputs:
            attrs["clamp"] = (float(bounds[0]), float(bounds[1]))
            attrs["fused"].append(follower.name)
            drop.add(follower.name)
            out = follower.outputs[0]
        g.nodes[i] = Node(node.name, "Affine", "pyrt", [node.inputs[0]], [out], attrs, 0)
    g.nodes = [n for n in g.nodes if n.name not in drop]
    g.reindex()


def _fold_batchnorm(g: Graph, conv: Node, bn: Node) -> bool:
    """Folds an inference BatchNormalization that reads conv's output into conv's weights."""
    if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
        return False
    if (
        bn.attr("training_mode", 0)
        or len(bn.inputs) != 5
        or conv.outputs[0] in {t.name for t in g.outputs}
    ):
        return False
    if len(bn.outputs) > 1 and any(bn.outputs[1:]):
        return False
    params = [g.constants.get(i) for i in bn.inputs[1:]]
    w = g.constants[conv.inputs[1]]
    if any(p is None or p.size != w.shape[0] for p in params):
        return False
    gamma, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
    scale = gamma / np.sqrt(var + float(bn.attr("epsilon", 1e-5)))
    bias = g.constants.get(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else None
    b = bias.astype(np.float64) if bias is not None else np.zeros(w.shape[0])
    w_name, b_name = f"{conv.inputs[1]}#bn:{bn.name}", f"{conv.name}#bias:{bn.name}"
    g.constants[w_name] = (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
    g.constants[b_name] = ((b - mean) * scale + beta).astype(np.float32)
    conv.inputs = [conv.inputs[0], w_name, b_name]
    return True


# ---- building -----------------------------------------------------------


def integer_product(node: Node) -> Callable:
    """ConvInteger / MatMulInteger with a non-constant operand: exact in float64."""

    def run(x, w, x_zero=None, w_zero=None):
        xz = x.astype(np.float64) - (x_zero.astype(np.float64) if x_zero is not None else 0)
        wz = w.astype(np.float64)
        if w_zero is not None:
            shape = (
                [-1] + [1] * (w.ndim - 1)
                if node.op_type == "ConvInteger" and w_zero.size > 1
                else w_zero.shape
            )
            wz = wz - w_zero.astype(np.float64).reshape(shape)
        float_node = Node(
            node.name,
            "Conv" if node.op_type == "ConvInteger" else "MatMul",
            "",
            node.inputs[:2],
            node.outputs,
            node.attrs,
            13,
        )
        y = run_float_op(float_node, [xz, wz])[0] if node.op_type == "ConvInteger" else xz @ wz
        return [np.rint(y).astype(np.int32)]

    return run


def _requested_elements(node: Node, args: list) -> int | None:
    """Elements a shape-producing op is about to allocate, from its inputs alone."""
    op, x = node.op_type, args[0] if args else None

    def ints(i: int) -> list[int] | None:
        value = args[i] if len(args) > i else None
        return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]

    if op == "ConstantOfShape":
        return math.prod(max(d, 0) for d in ints(0) or [])
    if op == "Expand" and ints(1) is not None:
        dims = ints(1)
        shape = [1] * (len(dims) - x.ndim) + list(x.shape) if len(dims) > x.ndim else list(x.shape)
        dims = [1] * (len(shape) - len(dims)) + dims
        return math.prod(max(a, b) for a, b in zip(shape, dims))
    if op == "Tile" and ints(1) is not None:
        return x.size * math.prod(max(r, 0) for r in ints(1))
    if op == "Range":
        start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in args[:3])
        return int(max(0, math.ceil((limit - start) / delta))) if delta else 0
    if op == "Pad" and node.opset >= 11 and ints(1) is not None:
        pads = ints(1)
        half = len(pads) // 2
        return math.prod(
            d + max(pads[i], 0) + max(pads[i + half], 0) if i < half else d
            for i, d in enumerate(x.shape)
        )
    if op in ("Resize", "Upsample"):
        sizes = ints(3) if op == "Resize" and len(args) > 3 else None
        if sizes:
            return math.prod(sizes)
        scales = args[2] if op == "Resize" and len(args) > 2 else args[1] if len(args) > 1 else None
        if scales is not None and np.asarray(scales).size == x.ndim:
            return math.prod(
                int(d * float(s)) for d, s in zip(x.shape, np.asarray(scales).reshape(-1))
            )
    return None


GROWING_OPS = {
    "ConstantOfShape",
    "Expand",
    "Tile",
    "Range",
    "Pad",
    "Resize",
    "Upsample",
    "OneHot",
}
# Ops whose output takes the broadcast shape of their inputs: [N, 1] + [1, M] is N * M.
BROADCAST_OPS = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Where",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "BitShift",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "PRelu",
    "QBinary",
}


def _requested_bytes(node: Node, args: list) -> int | None:
    """Bytes an op is about to allocate for its output, from its inputs' shapes alone."""
    op = node.op_type
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    if op in BROADCAST_OPS or op == "MatMul":
        if not arrays:
            return None
        try:
            if op == "MatMul":
                a, b = (x.shape for x in arrays[:2]) if len(arrays) > 1 else ((), ())
                if len(a) < 2 or len(b) < 2:
                    return None
                shape = (*np.broadcast_shapes(a[:-2], b[:-2]), a[-2], b[-1])
            else:
                shape = np.broadcast_shapes(*(x.shape for x in arrays))
        except ValueError:
            return None  # the op reports the mismatch itself
        return math.prod(shape) * max(x.itemsize for x in arrays)
    if op == "OneHot" and len(args) > 1 and args[1] is not None:
        depth = float(np.asarray(args[1]).reshape(-1)[0]) if np.asarray(args[1]).size else 0.0
        return int(np.asarray(args[0]).size * max(depth, 0.0)) * 8 if np.isfinite(depth) else None
    count = _requested_elements(node, args)
    return None if count is None else count * 8


def guard_memory(node: Node, fn: Callable, limit: int) -> Callable:
    """Refuses an op whose output would pass the memory limit, before allocating it."""

    def run(*args):
        need = _requested_bytes(node, list(args))
        if need is not None and need > limit:
            raise ModelError(
                f"{node.label}: output of about {need} bytes would pass the memory limit "
                f"of {limit} bytes"
            )
        return fn(*args)

    return run


def make_step(node: Node, g: Graph, ctx: Context | None = None) -> Step:
    ctx = ctx if ctx is not None else default_context()
    try:
        step = _make_step(node, g, ctx)
    except KernelError as exc:  # weights or geometry the kernels refuse: a model error
        raise ModelError(f"{node.label}: {exc}") from exc
    if (
        node.op_type in GROWING_OPS or node.op_type in BROADCAST_OPS or node.op_type == "MatMul"
    ) and (node.domain in ("", "ai.onnx") or node.op_type == "QBinary"):
        step.fn = guard_memory(node, step.fn, g.memory_limit)
    return step


def _make_step(node: Node, g: Graph, ctx: Context) -> Step:
    op = node.op_type
    if (found := attention_fn(node, ctx)) is not None:  # pyrt/plan_attention.py
        kind, fn, emit = found
        return Step(node, kind, fn, emit=emit, arena_inputs=tuple(range(len(node.inputs))))
    if (args := float_step_args(node, g, ctx)) is not None:  # pyrt/plan_float.py
        return Step(node, **args)
    if node.domain == "pyrt":
        return pyrt_step(node, g, ctx)
    if "int_dtype" in node.attrs:
        step = Step(node, "int8", integer_exact_step(node, g.memory_limit))
        if node.op_type in RESHAPES:
            step.emit = _emit_copy
        _movement_emit(step, g)
        return step
    if node.domain not in ("", "ai.onnx"):
        raise UnsupportedOpError(f"{node.label}: domain '{node.domain}' is not supported")
    if op == "QuantizeLinear":
        validate_quant_node(node, g)
        return quantize_step(node, g, ctx)
    if op == "DequantizeLinear":
        validate_quant_node(node, g)
        return dequantize_step(node, g, ctx)
    if op == "DynamicQuantizeLinear":
        return dynamic_quantize_step(node, ctx)
    if op in ("ConvInteger", "MatMulInteger"):
        return Step(node, "numpy", integer_product(node))
    if op == "Conv":
        step = float_conv_step(node, g, ctx)
        if step is not None:
            return step
    if op in ("Gemm", "MatMul"):
        step = float_gemm_step(node, g, ctx)
        if step is not None:
            return step
    if op == "MaxPool" and not (len(node.outputs) > 1 and node.outputs[1]):
        window = window_attrs(node, g.shape(node.inputs[0]))
        layout = "nhwc" if node.attrs.get("nhwc") else "nchw"  # layout.py
        dtype = g.dtype(node.inputs[0])
        if window is not None and (dtype in INT8 or dtype == np.float32):
            return Step(
                node,
                "int8" if dtype in INT8 else "fp32",
                lambda x: [_maxpool(window, x, ctx, layout)],
                emit=_emit_maxpool(window, layout),
            )
    if op == "AveragePool" and g.dtype(node.inputs[0]) == np.float32:
        window = window_attrs(node, g.shape(node.inputs[0]))
        if window is not None:
            return float_avgpool_step(node, window, ctx)
    if op == "GlobalAveragePool" and node.attrs.get("nhwc"):
        return Step(node, "fp32", lambda x: [K.globalavgpool_f32(x, ctx)], emit=_emit_float_gap)
    if op not in FLOAT_OPS:
        raise UnsupportedOpError(f"{node.label}: operator {op} is not supported")
    step = Step(node, "numpy", lambda *inputs: run_float_op(node, list(inputs), g.memory_limit))
    if op in RESHAPES and node.outputs:
        step.emit = _emit_copy
    _movement_emit(step, g)
    return step


# Ops whose output is their first input's bytes under another shape.
RESHAPES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"}


def _emit_float_gap(em, ins, outs) -> bool:
    x = ins[0].array
    if x.ndim != 4 or x.dtype != np.float32 or x.size == 0:
        return False
    n, h, w, c = x.shape
    em.add(
        lib.pyrt_plan_globalavgpool_f32_nhwc(em.plan, n, h * w, c, ins[0].offset, outs[0].offset)
    )
    return True


def _emit_copy(em, ins, outs) -> bool:
    x, y = ins[0].array, outs[0].array
    if x.dtype != y.dtype or x.size != y.size:
        return False
    em.add(lib.pyrt_plan_copy(em.plan, x.nbytes, ins[0].offset, outs[0].offset))
    return True


SPECIAL_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "ConvInteger",
    "MatMulInteger",
}


def check_supported(g: Graph) -> None:
    """Every unsupported node at once, before any work."""
    bad = [
        n
        for n in g.nodes
        if n.domain != "pyrt"
        and "int_dtype" not in n.attrs
        and (
            n.domain not in ("", "ai.onnx")
            or (n.op_type not in FLOAT_OPS and n.op_type not in SPECIAL_OPS)
            or SUBGRAPH in n.attrs
        )
    ]
    if bad:
        listing = ", ".join(
            f"{n.op_type}{'(' + n.domain + ')' if n.domain else ''} '{n.name}'" for n in bad
        )
        raise UnsupportedOpError(f"{len(bad)} unsupported node(s): {listing}")


def build_steps(g: Graph, ctx: Context) -> list[Step]:
    check_supported(g)
    steps = [make_step(n, g, ctx) for n in g.nodes]
    keep = {t.name for t in g.outputs}
    last_use: dict[str, int] = {}
    for idx, step in enumerate(steps):
        for name in step.inputs:
            if name:
                last_use[name] = idx
    for name, idx in last_use.items():
        if name not in keep and name not in g.constants:
            steps[idx].release.append(name)
    return steps
