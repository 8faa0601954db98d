"""Stage fold: evaluate at load what depends only on constants, and drop what nobody uses."""

from __future__ import annotations

import math

import numpy as np

from .errors import ModelError, PyrtError
from .graph import Graph, Node
from .ops_float import FLOAT_OPS
from .plan import SPECIAL_OPS, make_step

NONDETERMINISTIC = {
    "RandomNormal",
    "RandomUniform",
    "RandomNormalLike",
    "RandomUniformLike",
    "Multinomial",
    "Bernoulli",
}


def fold_constants(g: Graph, keep_dequantize: bool) -> list[Node]:
    """Evaluates nodes whose inputs are all known at load; returns the folded nodes.

    keep_dequantize leaves DQ(constant) in place so the matcher still sees
    integer weights; the second pass (after matching) folds what is left.
    """
    folded, kept = [], []
    for node in g.nodes:
        ins = [i for i in node.inputs if i]
        shape_only = (
            node.op_type in ("Shape", "Size")
            and node.domain == ""
            and ins
            and g.static_shape(ins[0]) is not None
        )
        foldable = (
            node.domain in ("", "ai.onnx")
            and node.op_type not in NONDETERMINISTIC
            and all(i in g.constants for i in ins)
            and not (keep_dequantize and node.op_type == "DequantizeLinear")
        )
        if not (foldable or shape_only) or node.domain == "pyrt" or "int_dtype" in node.attrs:
            kept.append(node)
            continue
        if node.op_type not in FLOAT_OPS and node.op_type not in SPECIAL_OPS:
            kept.append(node)  # reported by check_supported
            continue
        if shape_only:
            x = (
                np.zeros(g.static_shape(ins[0]), np.uint8)
                if math.prod(g.static_shape(ins[0])) < 1 << 20
                else None
            )
            if x is None:
                kept.append(node)
                continue
            values = [x]
        else:
            values = [g.constants[i] if i else None for i in node.inputs]
        try:
            outs = make_step(node, g).fn(*values)
        except PyrtError:
            raise
        except (ValueError, IndexError, TypeError, ArithmeticError, MemoryError) as exc:
            raise ModelError(f"{node.label}: cannot be evaluated at load ({exc})") from exc
        for name, value in zip(node.outputs, outs):
            if name:
                value = np.asarray(value)
                if value.nbytes > g.memory_limit:
                    raise ModelError(
                        f"{node.label}: output '{name}' needs {value.nbytes} bytes, "
                        f"over the memory limit"
                    )
                g.constants[name] = value
        folded.append(node)
    g.nodes = kept
    g.reindex()
    return folded


def remove_dead(g: Graph) -> list[Node]:
    """Drops nodes whose outputs nobody needs (DQs absorbed by fused ops)."""
    needed = {t.name for t in g.outputs}
    live, dead = [], []
    for node in reversed(g.nodes):
        if any(o in needed for o in node.outputs if o):
            live.append(node)
            needed.update(i for i in node.inputs if i)
        else:
            dead.append(node)
    g.nodes = live[::-1]
    g.reindex()
    return dead
