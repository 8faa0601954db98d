"""Matchers for fp32 elementwise forms (called from patterns.fuse after the int8 ones):

  Swish   x -> y   Mul(x, Sigmoid(x)) (SiLU: EfficientNet, YOLO) or Mul(x, HardSigmoid(x))
                   (HardSwish written out, as some MobileNetV3 exports do), either operand
                   order: attrs gate ("Sigmoid" / "HardSigmoid"), alpha and beta (the
                   HardSigmoid's as float32; 0 for Sigmoid)

The fused op computes what the two nodes compute, bit for bit (plan_float.py: one
pyrt_funary pass instead of two, and no intermediate tensor).
"""

from __future__ import annotations

import numpy as np

from .graph import Node
from .patterns import Matcher


def float_matchers(node: Node) -> list:
    """The matchers of this module that may start at `node`."""
    if node.domain != "" or node.op_type not in ("Sigmoid", "HardSigmoid"):
        return []
    return [match_swish]


def match_swish(m: Matcher, node: Node) -> list[Node] | None:
    x, gate = node.inputs[0], node.outputs[0]
    if m.g.dtype(x) != np.float32:
        return None
    mul = m.sole_consumer(gate)
    if mul is None or mul.op_type != "Mul" or mul.domain != "":
        return None
    if sorted(mul.inputs) != sorted([x, gate]):
        return None
    alpha = beta = 0.0
    if node.op_type == "HardSigmoid":
        alpha, beta = node.attr("alpha", 0.2), node.attr("beta", 0.5)
        if not all(isinstance(v, (int, float)) for v in (alpha, beta)):
            return None
        alpha, beta = float(np.float32(alpha)), float(np.float32(beta))
    attrs = dict(gate=node.op_type, alpha=alpha, beta=beta, fused=[mul.name, node.name])
    return [Node(mul.name, "Swish", "pyrt", [x], [mul.outputs[0]], attrs, 0)]
