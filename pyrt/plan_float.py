"""Steps of fp32 elementwise ops on the C kernels (kernels/src/felem/), hooked into
plan._make_step: activations (pyrt_funary) and Add / Sub / Mul / Div whose second
operand broadcasts as [outer, 1, inner] (pyrt_fbinary_broadcast: Squeeze-Excite scales,
per-channel vectors, scalars, equal shapes), and the pyrt Swish op of
patterns_float.py. They work on whichever layout layout.py gave their inputs (an NHWC
tensor's [N, 1, 1, C] scale is a per-image vector). Inputs of another dtype run in numpy
(ops_float); C plan entries only for float32 and broadcasts the kernel takes.
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from ._kernels import Context, lib
from .errors import ModelError
from .graph import Graph, Node
from .ops_float import run_float_op

F32 = np.dtype(np.float32)
FLT_MAX = float(np.finfo(np.float32).max)
BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
# op -> (kernel op, ((attribute, default) for alpha, beta))
UNARY: dict[str, tuple[str, tuple]] = {
    "Relu": ("relu", ()),
    "LeakyRelu": ("leaky_relu", (("alpha", 0.01),)),
    "Sigmoid": ("sigmoid", ()),
    "HardSigmoid": ("hard_sigmoid", (("alpha", 0.2), ("beta", 0.5))),
    "HardSwish": ("hard_swish", ((None, 1 / 6), (None, 0.5))),
    "Tanh": ("tanh", ()),
    "Elu": ("elu", (("alpha", 1.0),)),
    "Softplus": ("softplus", ()),
    "Erf": ("erf", ()),
}


def float_step_args(node: Node, g: Graph, ctx: Context) -> dict | None:
    """Step fields (kind, fn, emit, arena_inputs) of an fp32 elementwise node the kernels
    take, None for any other node."""
    if node.domain == "pyrt" and node.op_type == "Swish":
        return _swish(node, ctx)
    if node.domain not in ("", "ai.onnx") or "int_dtype" in node.attrs:
        return None
    data = [g.dtype(i) for i in node.inputs if i]
    if any(d is not None and d != F32 for d in data) or len(node.outputs) != 1:
        return None
    if node.op_type in BINARY and len(node.inputs) == 2:
        return _binary(node, g, ctx)
    params = _unary_params(node, g)
    if params is None:
        return None
    return _unary(node, g, ctx, *params)


def _unary_params(node: Node, g: Graph) -> tuple[str, float, float] | None:
    """(kernel op, alpha, beta) as float32 values, None if the numpy op must decide
    (bad attributes, Clip bounds known only at run time or NaN)."""
    if node.op_type == "Clip":
        bounds = _clip_bounds(node, g)
        if bounds is None:
            return None
        return "clip", *bounds
    if node.op_type not in UNARY:
        return None
    op, attrs = UNARY[node.op_type]
    values = [0.0, 0.0]
    for i, (name, default) in enumerate(attrs):
        value = node.attr(name, default) if name else default
        if not isinstance(value, (int, float, np.floating, np.integer)):
            return None
        values[i] = float(np.float32(value))
    return op, values[0], values[1]


def _clip_bounds(node: Node, g: Graph) -> tuple[float, float] | None:
    """Constant (lo, hi); a bound left out is the float range's end, as in onnxruntime
    (so Clip maps +-Inf to +-FLT_MAX)."""
    if node.opset < 11:
        found = [node.attr("min", None), node.attr("max", None)]
    else:
        found = []
        for i in (1, 2):
            name = node.inputs[i] if len(node.inputs) > i else ""
            if name and name not in g.constants:
                return None
            value = g.constants.get(name) if name else None
            if value is not None and (value.size != 1 or value.dtype != F32):
                return None
            found.append(None if value is None else value.reshape(-1)[0])
    lo, hi = (
        float(F32.type(v)) if v is not None else d for v, d in zip(found, (-FLT_MAX, FLT_MAX))
    )
    return None if np.isnan(lo) or np.isnan(hi) else (lo, hi)


def _unary(node: Node, g: Graph, ctx: Context, op: str, alpha: float, beta: float) -> dict:
    code = K.UNARY_OPS[op]

    def run(x, *rest):
        if x.dtype != F32:
            return run_float_op(node, [x, *rest], g.memory_limit)
        return [K.funary(op, x, alpha, beta, ctx)]

    def emit(em, ins, outs) -> bool:
        x, y = ins[0].array, outs[0].array
        if x.dtype != F32 or x.size == 0 or y.shape != x.shape or y.dtype != F32:
            return False
        em.add(
            lib.pyrt_plan_funary(em.plan, code, x.size, alpha, beta, ins[0].offset, outs[0].offset)
        )
        return True

    return dict(kind="fp32", fn=run, emit=emit)


def _binary(node: Node, g: Graph, ctx: Context) -> dict:
    op = BINARY[node.op_type]

    def run(a, b):
        if a.dtype != F32 or b.dtype != F32:
            return run_float_op(node, [a, b], g.memory_limit)  # names the node on errors
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            return run_float_op(node, [a, b], g.memory_limit)
        return [K.fbinary(op, a, b, ctx)]

    def emit(em, ins, outs) -> bool:
        a, b, y = ins[0].array, ins[1].array, outs[0].array
        if a.dtype != F32 or b.dtype != F32 or y.dtype != F32 or y.size == 0:
            return False
        found = K.fbinary_split(a.shape, b.shape)
        if found is None or y.shape != np.broadcast_shapes(a.shape, b.shape):
            return False
        split, b_first = found
        full, small = (ins[1], ins[0]) if b_first else (ins[0], ins[1])
        em.add(
            lib.pyrt_plan_fbinary(
                em.plan, K.BINARY_OPS[op], *split, full.offset, small.offset, int(b_first),
                outs[0].offset,
            )
        )  # fmt: skip
        return True

    return dict(kind="fp32", fn=run, emit=emit, arena_inputs=(0, 1))


def _swish(node: Node, ctx: Context) -> dict:
    """x * Sigmoid(x) or x * HardSigmoid(x) in one pass (patterns_float.match_swish)."""
    a = node.attrs
    op = "swish" if a["gate"] == "Sigmoid" else "hard_swish"
    code = K.UNARY_OPS[op]

    def run(x) -> list:
        if x.dtype != F32:
            raise ModelError(f"{node.label}: input is {x.dtype}, the fused op takes float32")
        return [K.funary(op, x, a["alpha"], a["beta"], ctx)]

    def emit(em, ins, outs) -> bool:
        x = ins[0].array
        if x.dtype != F32 or x.size == 0 or outs[0].array.shape != x.shape:
            return False
        em.add(
            lib.pyrt_plan_funary(em.plan, code, x.size, a["alpha"], a["beta"], ins[0].offset,
                                 outs[0].offset)
        )  # fmt: skip
        return True

    return dict(kind="fp32", fn=run, emit=emit)
