"""Step functions of the fused ops pyrt/patterns_attention.py makes (hooked into
plan._make_step): each returns the step's kind and its function of the node's inputs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import kernels as K
from ._kernels import Context
from .graph import Node
from .ops_float import run_float_op

ATTENTION_OPS = ("QBatchMatMul", "BatchMatMul", "Softmax", "LayerNorm", "BiasAct", "MaskChain")


def attention_fn(node: Node, ctx: Context) -> tuple[str, Callable] | None:
    """(kind, fn) for a fused op of patterns_attention on the session's context, None
    for any other node."""
    if node.domain != "pyrt" or node.op_type not in ATTENTION_OPS:
        return None
    a = node.attrs
    quantized = node.op_type == "QBatchMatMul" or any(
        a.get(k) is not None for k in ("qx", "qy", "qr")
    )
    kind = "int8" if quantized else "numpy" if node.op_type == "MaskChain" else "fp32"
    if node.op_type == "QBatchMatMul":
        qa, qb = a["qa"], a["qb"]
        return kind, lambda x, y: [K.qmatmul(x, qa.zero_point, y, qb.zero_point, a["out"], ctx)]
    if node.op_type == "MaskChain":
        return kind, _chain(node)
    if node.op_type == "BatchMatMul":
        return kind, lambda x, y: [K.smatmul(x, y, ctx)]
    if node.op_type == "Softmax":
        return kind, lambda x, mask=None: [K.softmax(x, a["qx"], a["qy"], a["x_div"], mask, ctx)]
    if node.op_type == "LayerNorm":
        return kind, _layernorm(node, ctx)
    return kind, lambda x: [K.activation(x, a["act"], a["qx"], a["bias"], a["qy"], ctx)]


def _layernorm(node: Node, ctx: Context) -> Callable:
    a = node.attrs
    float_out, quant_out, sum_out = (bool(o) for o in node.outputs)

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

    return run


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
