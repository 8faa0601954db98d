"""QOperator -> QDQ: rewrite onnxruntime's quantized operators as DQ -> op -> Q
(and drop the no-op nodes exporters leave between Q and DQ).

QLinearConv(x, sx, zx, w, sw, zw, sy, zy, B) means exactly
Q(Conv(DQ(x), DQ(w), DQ(B)), sy, zy), and so on for the other QLinear* ops;
after this pass the one QDQ matcher (patterns.py) turns them back into
integer kernels, and anything it cannot fuse still runs correctly in fp32.
ConvInteger / MatMulInteger keep their own (int32) meaning and stay as they are.
"""

from __future__ import annotations

import itertools

import numpy as np
from onnx import helper

from .errors import ModelError, UnsupportedOpError
from .graph import MS_DOMAIN, Graph, Node

_ids = itertools.count()


def _name(base: str) -> str:
    return f"{base}__lower{next(_ids)}"


def _opt(node: Node, i: int) -> str:
    return node.inputs[i] if len(node.inputs) > i else ""


class _Builder:
    def __init__(self, graph: Graph, node: Node):
        self.g, self.node, self.nodes = graph, node, []

    def add(
        self,
        op: str,
        inputs: list[str],
        attrs: dict | None = None,
        output: str | None = None,
        domain: str = "",
    ) -> str:
        out = output or _name(f"{self.node.name}_{op}")
        opset = self.g.opsets.get(domain, 1)
        self.nodes.append(
            Node(
                f"{self.node.name}/{op}{len(self.nodes)}",
                op,
                domain,
                inputs,
                [out],
                attrs or {},
                max(opset, 13) if op in ("QuantizeLinear", "DequantizeLinear") else opset,
            )
        )
        return out

    def dq(self, x: str, scale: str, zero: str, axis: int = 1) -> str:
        return self.add(
            "DequantizeLinear", [x, scale, zero] if zero else [x, scale], {"axis": axis}
        )

    def q(self, x: str, scale: str, zero: str, output: str) -> str:
        return self.add("QuantizeLinear", [x, scale, zero] if zero else [x, scale], output=output)

    def const(self, value: np.ndarray) -> str:
        name = _name(f"{self.node.name}_const")
        self.g.constants[name] = value
        return name


def _product_scale(b: _Builder, *names: str, factor: float = 1.0) -> str | None:
    """Constant scale sa * sb (* factor) for an int32 bias; None if not constant."""
    values = [b.g.constants.get(n) for n in names]
    if any(v is None for v in values):
        return None
    if any(v.size == 0 or v.dtype.kind != "f" for v in values):
        raise ModelError(f"{b.node.label}: scales must be non-empty float tensors")
    scale = np.float32(factor) * values[0].astype(np.float32)
    for v in values[1:]:
        scale = scale * v.astype(np.float32)
    return b.const(scale.astype(np.float32).reshape(-1) if scale.size > 1 else scale.reshape(()))


# Inputs each QOperator op needs (the optional ones may follow).
REQUIRED_INPUTS = {
    "QLinearConv": 8,
    "QLinearMatMul": 8,
    "QLinearAdd": 7,
    "QLinearMul": 7,
    "QLinearConcat": 5,
    "QLinearAveragePool": 4,
    "QLinearGlobalAveragePool": 4,
    "QLinearSigmoid": 4,
    "QLinearLeakyRelu": 4,
    "QLinearSoftmax": 4,
    "QGemm": 6,
}
ZERO_POINT_SLOTS = {  # may be left empty (zero)
    "QLinearConv": (2, 5, 7),
    "QLinearMatMul": (2, 5, 7),
    "QLinearAdd": (2, 5, 7),
    "QLinearMul": (2, 5, 7),
    "QGemm": (2, 5, 8),
}


def _check_inputs(node: Node) -> None:
    need = REQUIRED_INPUTS[node.op_type]
    i = node.inputs
    if len(i) < need:
        raise ModelError(f"{node.label}: needs {need} inputs, got {len(i)}")
    if node.op_type == "QLinearConcat" and (len(i) - 2) % 3:
        raise ModelError(f"{node.label}: inputs must be y_scale, y_zero, then (x, scale, zero)s")
    zeros = ZERO_POINT_SLOTS.get(node.op_type, (2, 4))
    if node.op_type == "QLinearConcat":
        zeros = range(1, len(i), 3)
    missing = [k for k in range(need) if not i[k] and k not in zeros]
    if missing:
        raise ModelError(f"{node.label}: required input {missing[0]} is empty")


def _lower_node(g: Graph, node: Node) -> list[Node] | None:
    b = _Builder(g, node)
    op, i = node.op_type, node.inputs
    if op in REQUIRED_INPUTS:
        _check_inputs(node)
    if op == "QLinearConv":
        x = b.dq(i[0], i[1], i[2])
        w = b.dq(i[3], i[4], i[5], axis=0)
        ins = [x, w]
        if _opt(node, 8):
            scale = _product_scale(b, i[1], i[4])
            if scale is None:
                raise ModelError(f"{node.label}: bias needs constant x_scale and w_scale")
            ins.append(b.dq(i[8], scale, "", axis=0))
        attrs = {k: v for k, v in node.attrs.items()}
        y = b.add("Conv", ins, attrs)
        b.q(y, i[6], i[7], node.outputs[0])
    elif op == "QLinearMatMul":
        a = b.dq(i[0], i[1], i[2])
        w = b.dq(i[3], i[4], i[5], axis=-1)  # per-column scales of B [K, N]
        y = b.add("MatMul", [a, w])
        b.q(y, i[6], i[7], node.outputs[0])
    elif op in ("QLinearAdd", "QLinearMul") and node.domain == MS_DOMAIN:
        a = b.dq(i[0], i[1], _opt(node, 2))
        c = b.dq(i[3], i[4], _opt(node, 5))
        y = b.add(op[len("QLinear") :], [a, c])
        b.q(y, i[6], _opt(node, 7), node.outputs[0])
    elif op == "QLinearConcat" and node.domain == MS_DOMAIN:
        parts = [b.dq(i[k], i[k + 1], i[k + 2]) for k in range(2, len(i), 3)]
        y = b.add("Concat", parts, {"axis": node.attr("axis")})
        b.q(y, i[0], i[1], node.outputs[0])
    elif op in ("QLinearAveragePool", "QLinearGlobalAveragePool") and node.domain == MS_DOMAIN:
        x = i[0]
        channels_last = node.attr("channels_last", 0)
        if channels_last:  # transpose the int8 tensor to channels-first and back
            shape = b.g.shape(x)
            if shape is None or len(shape) < 3:
                raise UnsupportedOpError(
                    f"{node.label}: channels_last needs input '{x}' of a rank known at load "
                    f"(3 or more), got shape {shape}"
                )
            rank = len(shape)
            x = b.add("Transpose", [x], {"perm": [0, rank - 1, *range(1, rank - 1)]})
        attrs = {k: v for k, v in node.attrs.items() if k != "channels_last"}
        y = b.add(op[len("QLinear") :], [b.dq(x, i[1], _opt(node, 2))], attrs)
        out = node.outputs[0] if not channels_last else None
        yq = b.q(y, i[3], _opt(node, 4), out or _name(node.name))
        if channels_last:
            perm = [0, *range(2, rank), 1]
            b.add("Transpose", [yq], {"perm": perm}, output=node.outputs[0])
    elif (
        op in ("QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax") and node.domain == MS_DOMAIN
    ):
        x = b.dq(i[0], i[1], _opt(node, 2))
        attrs = {k: v for k, v in node.attrs.items() if k != "opset"}
        y = b.add(op[len("QLinear") :], [x], attrs)
        b.q(y, i[3], _opt(node, 4), node.outputs[0])
    elif op == "QGemm" and node.domain == MS_DOMAIN:
        a = b.dq(i[0], i[1], i[2])
        axis = 0 if node.attr("transB", 0) else 1  # per output column of B
        w = b.dq(i[3], i[4], i[5], axis=axis)
        ins = [a, w]
        alpha = float(node.attr("alpha", 1.0))
        if _opt(node, 6):
            scale = _product_scale(b, i[1], i[4], factor=alpha)
            if scale is None:
                raise ModelError(f"{node.label}: C needs constant a_scale and b_scale")
            ins.append(b.dq(i[6], scale, "", axis=-1))
        attrs = {
            "alpha": alpha,
            "beta": 1.0,
            "transA": node.attr("transA", 0),
            "transB": node.attr("transB", 0),
        }
        if _opt(node, 7):
            y = b.add("Gemm", ins, attrs)
            b.q(y, i[7], _opt(node, 8), node.outputs[0])
        else:
            b.add("Gemm", ins, attrs, output=node.outputs[0])
    elif op in ("QuantizeLinear", "DequantizeLinear") and node.domain == MS_DOMAIN:
        b.nodes.append(
            Node(
                node.name,
                op,
                "",
                node.inputs,
                node.outputs,
                node.attrs,
                max(g.opsets.get("", 13), 21),  # com.microsoft Q/DQ take 16-bit types too
            )
        )
    else:
        return None
    return b.nodes


def lower_qoperators(g: Graph) -> None:
    """QOperator ops, then the transformer ops of onnxruntime's tools and ONNX's
    (lower_contrib.py), to the ONNX subgraphs they mean."""
    from .lower_contrib import lower_contrib  # it builds on this module's _Builder

    nodes = []
    for node in g.nodes:
        lowered = _lower_node(g, node) if node.domain in ("", MS_DOMAIN) else None
        nodes.extend(lowered if lowered is not None else [node])
    g.nodes = nodes
    lower_contrib(g)
    drop_no_ops(g)


def drop_no_ops(g: Graph) -> None:
    """Removes Identity and same-type Cast nodes (PyTorch writes Q -> Cast(uint8) -> DQ),
    so the matcher sees the Q/DQ pairs around them."""
    outputs = {t.name for t in g.outputs}
    rename: dict[str, str] = {}
    kept = []
    for node in g.nodes:
        source = rename.get(node.inputs[0], node.inputs[0]) if node.inputs else ""
        same_cast = (
            node.op_type == "Cast"
            and g.dtype(source) is not None
            and _cast_target(node) == g.dtype(source)
        )
        if (
            node.domain == ""
            and (node.op_type == "Identity" or same_cast)
            and source
            and node.outputs[0] not in outputs
        ):
            rename[node.outputs[0]] = source
            continue
        node.inputs = [rename.get(i, i) for i in node.inputs]
        kept.append(node)
    g.nodes = kept
    g.reindex()


def _cast_target(node: Node) -> np.dtype | None:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(int(node.attr("to", 0))))
    except Exception:
        return None
