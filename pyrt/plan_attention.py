"""Steps of the fused ops pyrt/patterns_attention.py makes (hooked into plan._make_step):
each is the step's kind, its function of the node's inputs (the interpreter) and its
`emit` (the same work as C plan entries, program.py), None where a step has none.

MaskChain runs in numpy (once per inference, on the [batch, seq] mask).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import kernels as K
from ._kernels import Context, dtype_code, lib, ptr
from .errors import KernelError, ModelError
from .graph import Node
from .ops_float import run_float_op

ATTENTION_OPS = (
    "Attention",
    "QBatchMatMul",
    "BatchMatMul",
    "Softmax",
    "LayerNorm",
    "BiasAct",
    "MaskChain",
)


def attention_fn(node: Node, ctx: Context) -> tuple[str, Callable, Callable | None] | None:
    """(kind, fn, emit) for a fused op of patterns_attention on the session's context, None
    for any other node."""
    if node.domain != "pyrt" or node.op_type not in ATTENTION_OPS:
        return None
    a = node.attrs
    quantized = node.op_type == "QBatchMatMul" or any(
        a.get(k) is not None for k in ("qx", "qy", "qr", "quant")
    )
    kind = "int8" if quantized else "numpy" if node.op_type == "MaskChain" else "fp32"
    if node.op_type == "Attention":
        return (kind, *_attention(node, ctx))
    if node.op_type == "QBatchMatMul":
        return kind, *_qbatch_matmul(node, ctx)
    if node.op_type == "MaskChain":
        return kind, _chain(node), None
    if node.op_type == "BatchMatMul":
        return kind, *_batch_matmul(ctx)
    if node.op_type == "Softmax":
        return kind, *_softmax(node, ctx)
    if node.op_type == "LayerNorm":
        return kind, *_layernorm(node, ctx)
    return kind, *_activation(node, ctx)


# ---- views: the fused attention's head splitting and merging ------------------------


def _view(x: np.ndarray, move: tuple, copy: bool) -> np.ndarray:
    """One Reshape / Transpose / Squeeze / Unsqueeze / Flatten / Gather (scalar index)
    on x as a numpy view; copy False raises AttributeError where a view cannot do it."""
    node, consts = move
    op = node.op_type
    if op == "Transpose":
        perm = node.attr("perm", None)
        return x.transpose(list(perm) if perm is not None else None)
    if op == "Gather":
        axis = int(node.attr("axis", 0))
        axis = axis + x.ndim if axis < 0 else axis
        index = int(consts[0])
        if not -x.shape[axis] <= index < x.shape[axis]:
            raise ModelError(f"{node.label}: index {index} out of range for {x.shape}")
        return x[(slice(None),) * axis + (index,)]
    shape = _moved_shape(x.shape, node, consts)
    if copy:
        return x.reshape(shape)
    view = x.view()
    view.shape = shape  # AttributeError if the strides do not allow it
    return view


def _axes(node: Node, consts: list) -> list[int] | None:
    if consts and consts[0] is not None:
        return [int(v) for v in np.asarray(consts[0]).reshape(-1)]
    axes = node.attr("axes", None)
    return None if axes is None else [int(v) for v in axes]


def _moved_shape(shape: tuple, node: Node, consts: list) -> tuple:
    op = node.op_type
    if op == "Reshape":
        target = [int(v) for v in np.asarray(consts[0]).reshape(-1)]
        keep_zero = int(node.attr("allowzero", 0))
        target = [shape[i] if v == 0 and not keep_zero else v for i, v in enumerate(target)]
        if -1 in target:
            known = int(np.prod([v for v in target if v != -1]))
            target[target.index(-1)] = int(np.prod(shape)) // known if known else 0
        return tuple(target)
    if op == "Flatten":
        axis = int(node.attr("axis", 1))
        axis = axis + len(shape) if axis < 0 else axis
        return (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    axes = _axes(node, consts)
    if op == "Squeeze":
        if axes is None:
            return tuple(d for d in shape if d != 1)
        drop = {a + len(shape) if a < 0 else a for a in axes}
        return tuple(d for i, d in enumerate(shape) if i not in drop)
    rank = len(shape) + len(axes)  # Unsqueeze
    put = {a + rank if a < 0 else a for a in axes}
    dims = iter(shape)
    return tuple(1 if i in put else next(dims) for i in range(rank))


def _shapes(shape: tuple, moves: list) -> list[tuple]:
    """The shapes of the tensors before and after each of `moves` (Reshape-like or
    Transpose) applied to a tensor of `shape`."""
    shapes = [tuple(shape)]
    for node, consts in moves:
        if node.op_type == "Transpose":
            perm = node.attr("perm", None)
            perm = list(perm) if perm is not None else list(range(len(shape)))[::-1]
            shapes.append(tuple(shapes[-1][p] for p in perm))
        else:
            shapes.append(_moved_shape(shapes[-1], node, consts))
    return shapes


def _apply(x: np.ndarray, moves: list, copy: bool) -> np.ndarray:
    for move in moves:
        x = _view(x, move, copy)
    return x


def _inverse(y: np.ndarray, moves: list, shape: tuple) -> np.ndarray | None:
    """The view of y (the tensor after `moves`) as the tensor of `shape` before them, or
    None where strides cannot express it."""
    shapes = _shapes(shape, moves)
    try:
        for move, before in zip(reversed(moves), reversed(shapes[:-1])):
            perm = move[0].attr("perm", None)
            if move[0].op_type == "Transpose":
                perm = list(perm) if perm is not None else list(range(len(before)))[::-1]
                y = y.transpose(np.argsort(perm))
            else:
                view = y.view()
                view.shape = before
                y = view
    except AttributeError:
        return None
    return y


def _stand_in(shape: tuple, dtype) -> np.ndarray:
    """A C-contiguous stand-in for an arena tensor of `shape`: views of it give the strides
    and offsets the tensor has. Its memory is real but never initialised or used (numpy
    reads it only when a failed in-place reshape copies)."""
    return np.empty(shape, dtype)


def _address(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]


def _four(x: np.ndarray) -> np.ndarray:
    return x.reshape((1,) * (4 - x.ndim) + x.shape) if x.ndim < 4 else x


def _logical(sources: list[np.ndarray], moves: list, copy: bool):
    """q, k (its rows: the graph's Kᵀ swapped back), v as 4-D kernel operands, and the
    shape of the graph's P·V output (numpy matmul broadcasting of the batch dims)."""
    q, kt, v = (_apply(s, m, copy) for s, m in zip(sources, moves))
    lead = np.broadcast_shapes(q.shape[:-2], kt.shape[:-2], v.shape[:-2])
    return _four(q), _four(kt).swapaxes(-1, -2), _four(v), (*lead, q.shape[-2], v.shape[-1])


def _strides(x: np.ndarray, shape: tuple, base: np.ndarray, rows: bool, mask: bool = False):
    """Element strides of view x broadcast to 4-D `shape` (kernels.attention_strides)
    and its byte offset from base, or None where the kernel cannot read it in place."""
    x = np.broadcast_to(x, shape)
    strides = K.attention_strides(x, rows, mask)
    return None if strides is None else (strides, _address(x) - _address(base))


def _attention(node: Node, ctx: Context) -> tuple[Callable, Callable]:
    a = node.attrs
    quant: K.AttentionQuant | None = a["quant"]
    moves, out_moves = a["moves"], a["out_moves"]
    out_dtype = np.dtype(np.float32) if quant is None else np.dtype(quant.out.dtype)
    want = (
        [np.dtype(np.float32)] * 3
        if quant is None
        else [np.dtype(quant.q.dtype), np.dtype(quant.k.dtype), np.dtype(quant.v.dtype)]
    )

    def run(qs, ks, vs, mask=None):
        q, k, v, shape = _logical([qs, ks, vs], moves, True)
        y = np.empty(_shapes(shape, out_moves)[-1], out_dtype)
        view = _inverse(y, out_moves, shape)
        if view is not None:
            K.attention(q, k, v, mask, a["x_div"], quant, _four(view), ctx, a["x_mul"])
            return [y]
        o = np.empty(shape, out_dtype)
        K.attention(q, k, v, mask, a["x_div"], quant, _four(o), ctx, a["x_mul"])
        return [np.ascontiguousarray(_apply(o, out_moves, True))]

    def emit(em, ins, outs) -> bool:
        try:  # shapes that do not fit (ValueError) or need copies (AttributeError): fn
            return _emit(em, ins, outs)
        except (AttributeError, ValueError):
            return False

    def _emit(em, ins, outs) -> bool:
        bases = [_stand_in(s.array.shape, s.array.dtype) for s in ins[:3]]
        if [b.dtype for b in bases] != want:
            return False
        q, k, v, shape = _logical(bases, moves, False)
        y_base = _stand_in(outs[0].array.shape, out_dtype)
        view = _inverse(y_base, out_moves, shape) if outs[0].array.dtype == out_dtype else None
        if view is None or view.shape != shape:
            return False
        b, h = np.broadcast_shapes(q.shape[:2], k.shape[:2], v.shape[:2])
        (sq, d), (sk, dv) = q.shape[2:], v.shape[2:]
        if min(b, h, sq, d, sk, dv) == 0:
            return False
        shapes = ((b, h, sq, d), (b, h, sk, d), (b, h, sk, dv), (b, h, sq, dv))
        parts = [
            _strides(x, s, base, rows)
            for x, s, base, rows in zip(
                (q, k, v, _four(view)), shapes, [*bases, y_base], (True, False, False, True)
            )
        ]
        mask = None
        if len(ins) > 3 and ins[3] is not None:
            m_base = _stand_in(ins[3].array.shape, ins[3].array.dtype)
            if m_base.dtype != np.float32 or m_base.ndim > 4:
                return False
            mask = _strides(m_base, (b, h, sq, sk), m_base, True, mask=True)
            if mask is None:
                return False
        if any(p is None for p in parts):
            return False
        args, kept = K.attention_args(
            shapes[:3],
            tuple(want),
            (*(p[0] for p in parts[:3]), parts[3][0][:3], None if mask is None else mask[0][:3]),
            a["x_div"],
            quant,
            a["x_mul"],
        )
        em.keep(args, kept)
        offsets = [s.offset + p[1] for s, p in zip([*ins[:3], outs[0]], parts)]
        em.add(
            lib.pyrt_plan_attention(
                em.plan,
                args,
                *offsets[:3],
                -1 if mask is None else ins[3].offset + mask[1],
                offsets[3],
            )
        )
        return True

    return run, emit


# ---- the steps around attention -----------------------------------------------------


def _rows(x: np.ndarray) -> tuple[int, int] | None:
    """(rows, cols) of a float-row kernel over the last axis, None if empty."""
    if x.ndim < 1 or x.size == 0 or x.shape[-1] >= 2**31:
        return None
    return x.size // x.shape[-1], x.shape[-1]


def _want(q: K.QParams | None) -> np.dtype:
    return np.dtype(np.float32) if q is None else np.dtype(q.dtype)


def _matmul_layout(xa: np.ndarray, xb: np.ndarray, y: np.ndarray) -> tuple | None:
    """(batch, M, N, K, stride_a, lda, stride_b, ldb_k, ldb_n) of pyrt_qmatmul /
    pyrt_smatmul for y = xa @ xb as the arena holds them (C-contiguous; broadcast batch
    dims as 0 strides), or None where those strides cannot express it."""
    if xa.ndim < 2 or xb.ndim < 2 or y.size == 0:
        return None
    (m, k), n = xa.shape[-2:], xb.shape[-1]
    batch = y.shape[:-2]
    if k == 0 or y.shape[-2:] != (m, n) or xb.shape[-2] != k:
        return None
    views = []
    for x, rows, cols in ((xa, m, k), (xb, k, n)):
        try:
            view = np.broadcast_to(_stand_in(x.shape, x.dtype), (*batch, rows, cols)).view()
            view.shape = (-1, rows, cols)
        except (AttributeError, ValueError):
            return None
        views.append([st // x.itemsize for st in view.strides])
    (sa, la, one), (sb, lbk, lbn) = views
    count = y.size // (m * n)
    if one != 1 or la < k or min(sa, sb, lbk, lbn) < 0 or max(count, m, n, k) >= 2**31:
        return None
    return count, m, n, k, sa, la, sb, lbk, lbn


def _qbatch_matmul(node: Node, ctx: Context) -> tuple[Callable, Callable]:
    a = node.attrs
    qa, qb, out = a["qa"], a["qb"], a["out"]
    stage = K._stage(out, 1) if np.asarray(out.scale).size == 1 else None

    def run(x, y):
        return [K.qmatmul(x, qa.zero_point, y, qb.zero_point, out, ctx)]

    def emit(em, ins, outs) -> bool:
        xa, xb, y = ins[0].array, ins[1].array, outs[0].array
        if stage is None or xa.dtype != qa.dtype or xb.dtype != qb.dtype:
            return False
        layout = _matmul_layout(xa, xb, y) if y.dtype == np.dtype(out.dtype) else None
        if layout is None:
            return False
        count, m, n, k, sa, la, sb, lbk, lbn = layout
        em.keep(stage)
        em.add(
            lib.pyrt_plan_qmatmul(
                em.plan,
                count,
                m,
                n,
                k,
                ins[0].offset,
                dtype_code(qa.dtype),
                qa.zero_point,
                sa,
                la,
                ins[1].offset,
                dtype_code(qb.dtype),
                qb.zero_point,
                sb,
                lbk,
                lbn,
                stage[0],
                outs[0].offset,
                m * n,
                n,
            )
        )
        return True

    return run, emit


def _batch_matmul(ctx: Context) -> tuple[Callable, Callable]:
    def emit(em, ins, outs) -> bool:
        xa, xb, y = ins[0].array, ins[1].array, outs[0].array
        if not xa.dtype == xb.dtype == y.dtype == np.float32:
            return False
        layout = _matmul_layout(xa, xb, y)
        if layout is None:
            return False
        count, m, n, k, sa, la, sb, lbk, lbn = layout
        em.add(
            lib.pyrt_plan_smatmul(
                em.plan,
                count,
                m,
                n,
                k,
                ins[0].offset,
                sa,
                la,
                ins[1].offset,
                sb,
                lbk,
                lbn,
                outs[0].offset,
                m * n,
                n,
            )
        )
        return True

    return (lambda x, y: [K.smatmul(x, y, ctx)]), emit


def _softmax(node: Node, ctx: Context) -> tuple[Callable, Callable]:
    a = node.attrs
    qx, qy = K._io(a["qx"]), K._io(a["qy"])

    def run(x, mask=None):
        return [K.softmax(x, a["qx"], a["qy"], a["x_div"], mask, ctx, a["x_mul"])]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        shape = _rows(x)
        if shape is None or x.dtype != _want(a["qx"]) or outs[0].array.dtype != _want(a["qy"]):
            return False
        mask, per = -1, 1
        if len(ins) > 1 and ins[1] is not None:
            m = ins[1].array
            layout = K.mask_layout(m.shape, x.shape) if m.dtype == np.float32 else None
            if layout is None:
                return False
            mask, per = ins[1].offset, layout
        em.keep(qx, qy)
        em.add(
            lib.pyrt_plan_softmax(
                em.plan,
                *shape,
                ins[0].offset,
                qx,
                a["x_mul"],
                a["x_div"],
                mask,
                per,
                outs[0].offset,
                qy,
            )
        )
        return True

    return run, emit


def _layernorm(node: Node, ctx: Context) -> tuple[Callable, Callable]:
    a = node.attrs
    float_out, quant_out, sum_out = (bool(o) for o in node.outputs)
    qx, qr = K._io(a["qx"]), K._io(a["qr"])
    qy = K._io(a["qy"] if quant_out else None)

    def run(x: np.ndarray, residual: np.ndarray | None = None) -> list:
        if residual is not None and residual.shape != x.shape:
            full = np.broadcast_shapes(x.shape, residual.shape)
            x = np.broadcast_to(x, full)
        outs = K.layernorm(
            x,
            a["gamma"],
            a["beta"],
            a["epsilon"],
            qx=a["qx"],
            bias=a["bias"],
            residual=residual,
            qr=a["qr"],
            qy=a["qy"] if quant_out else None,
            float_out=float_out,
            sum_out=sum_out,
            ctx=ctx,
        )
        it = iter(outs)
        return [next(it) if wanted else None for wanted in (float_out, quant_out, sum_out)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        shape = _rows(x)
        if shape is None or x.dtype != _want(a["qx"]):
            return False
        cols = shape[1]
        try:
            vectors = [
                K._row_vector(v, cols, name)
                for v, name in ((a["gamma"], "gamma"), (a["beta"], "beta"), (a["bias"], "bias"))
            ]
        except KernelError:
            return False
        residual = -1
        if len(ins) > 1 and ins[1] is not None:
            r = ins[1].array
            if r.shape != x.shape or r.dtype != _want(a["qr"]):
                return False
            residual = ins[1].offset
        slots = [outs[i] if i < len(outs) and node.outputs[i] else None for i in range(3)]
        if any(s is not None and s.array.shape != x.shape for s in slots):
            return False
        gamma, beta, bias = vectors
        em.keep(qx, qr, qy, *vectors)
        em.add(
            lib.pyrt_plan_layernorm(
                em.plan,
                *shape,
                ins[0].offset,
                qx,
                ptr(bias, "float *"),
                residual,
                qr,
                ptr(gamma, "float *"),
                ptr(beta, "float *"),
                a["epsilon"],
                *(-1 if s is None else s.offset for s in slots[:2]),
                qy,
                -1 if slots[2] is None else slots[2].offset,
            )
        )
        return True

    return run, emit


def _activation(node: Node, ctx: Context) -> tuple[Callable, Callable]:
    a = node.attrs
    qx, qy = K._io(a["qx"]), K._io(a["qy"])

    def run(x):
        return [K.activation(x, a["act"], a["qx"], a["bias"], a["qy"], ctx)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        shape = _rows(x)
        if shape is None or x.dtype != _want(a["qx"]) or outs[0].array.dtype != _want(a["qy"]):
            return False
        try:
            bias = K._row_vector(a["bias"], shape[1], "bias")
        except KernelError:
            return False
        em.keep(qx, qy, bias)
        em.add(
            lib.pyrt_plan_activation(
                em.plan,
                *shape,
                ins[0].offset,
                qx,
                ptr(bias, "float *"),
                K.ACTIVATIONS[a["act"]],
                outs[0].offset,
                qy,
            )
        )
        return True

    return run, emit


def _chain(node: Node) -> Callable:
    """The nodes of a MaskChain in order, on the mask and the chain's constants."""
    names = node.inputs

    def run(*inputs: np.ndarray) -> list:
        values = dict(zip(names, inputs))
        for n in node.attrs["nodes"]:
            outs = run_float_op(n, [values[i] if i else None for i in n.inputs])
            values.update(zip(n.outputs, outs))
        return [values[node.outputs[0]]]

    return run
