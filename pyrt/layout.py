"""Stage between match and plan: choose the activation layout of every int8 tensor.

Integer convolutions run in NHWC, where a vector of output channels and the
4-byte K groups of a dot-product instruction are contiguous. This pass makes
every 4-D int8 tensor between NHWC-native ops NHWC and inserts a transpose
(pyrt ToNHWC / ToNCHW node) only where a tensor crosses into or out of such a
region, once per tensor. Elementwise int8 ops take whichever layout their
inputs have; everything else (numpy ops, Q/DQ, data movement, graph outputs)
sees the model's own NCHW layout. Graph info keeps every tensor's logical
(NCHW) shape; where a tensor is stored NHWC, its consumers know from their
node (attrs["nhwc"], or a ToNCHW node in between).
"""

from __future__ import annotations

import numpy as np

from .graph import Graph, Node, TensorInfo
from .patterns import INT8
from .plan import float_conv_params

# Consume and produce NHWC (their first input): integer convolutions and pools.
NHWC_NATIVE = {"QConv", "QMaxPool", "QAvgPool", "QGlobalAvgPool"}
# Elementwise on same-shaped inputs: any layout in, the same layout out.
ELEMENTWISE = {"QLut", "QBinary", "Swish"}
FLOAT_ELEMENTWISE = {
    "Relu",
    "Clip",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "Tanh",
    "Elu",
    "Selu",
    "Softplus",
    "Erf",
    "Exp",
    "Neg",
    "Abs",
    "Sqrt",
}
DATA_TYPES = (*INT8, np.dtype(np.float32))


def _rank4(g: Graph, name: str) -> bool:
    shape = g.shape(name)
    return shape is not None and len(shape) == 4 and g.dtype(name) in DATA_TYPES


def _rank4_int8(g: Graph, name: str) -> bool:
    return _rank4(g, name) and g.dtype(name) in INT8


def _native(node: Node, g: Graph) -> bool:
    if node.domain == "pyrt" and node.op_type in NHWC_NATIVE:
        return not node.attr("conv1d") and _rank4_int8(g, node.inputs[0])
    params = float_conv_params(node, g)
    if params is not None:  # fp32 Conv with constant weights
        return not params["conv1d"] and _rank4(g, node.inputs[0])
    # MaxPool (int8 in QOperator graphs, or float) without its indices output
    if node.domain == "" and node.op_type == "MaxPool":
        return (
            not (len(node.outputs) > 1 and node.outputs[1])
            and len(node.attr("kernel_shape") or ()) == 2
            and node.attr("storage_order", 0) == 0
            and _rank4(g, node.inputs[0])
        )
    return (  # fp32 GlobalAveragePool
        node.domain == ""
        and node.op_type == "GlobalAveragePool"
        and _rank4(g, node.inputs[0])
        and g.dtype(node.inputs[0]) == np.float32
    )


class _Layouts:
    def __init__(self, g: Graph):
        self.g = g
        self.nhwc: set[str] = set()  # tensors stored NHWC
        self.converted: dict[tuple[str, str], str] = {}  # (tensor, to) -> its converted copy
        self.nodes: list[Node] = []

    def convert(self, name: str, to: str) -> str:
        """`name` in layout `to` ("nhwc" / "nchw"), inserting one transpose per tensor."""
        if (to == "nhwc") == (name in self.nhwc):
            return name
        key = (name, to)
        if key not in self.converted:
            out = f"{name}#{to}"
            op = "ToNHWC" if to == "nhwc" else "ToNCHW"
            self.nodes.append(Node(f"{name}#{op}", op, "pyrt", [name], [out], {}, 0))
            self.g.info[out] = TensorInfo(out, self.g.dtype(name), self.g.shape(name))
            if to == "nhwc":
                self.nhwc.add(out)
            self.converted[key] = out
        return self.converted[key]

    def place(self, node: Node) -> None:
        data = [i for i in node.inputs if i and i not in self.g.constants]
        if _native(node, self.g):
            node.inputs[0] = self.convert(node.inputs[0], "nhwc")
            node.attrs["nhwc"] = True
            self.nhwc.add(node.outputs[0])
        elif self._elementwise_nhwc(node, data):
            node.inputs = [self.convert(i, "nhwc") if i in data else i for i in node.inputs]
            self.nhwc.update(o for o in node.outputs if o)
        else:
            node.inputs = [self.convert(i, "nchw") if i in self.nhwc else i for i in node.inputs]
        self.nodes.append(node)

    def _elementwise_nhwc(self, node: Node, data: list[str]) -> bool:
        """Rank-4 inputs of one shape, or ones that broadcast only over H and W (an
        [N, C, 1, 1] tensor has the same bytes in NCHW and NHWC); constants only scalars."""
        pyrt_op = node.domain == "pyrt" and node.op_type in ELEMENTWISE
        float_op = node.domain in ("", "ai.onnx") and node.op_type in FLOAT_ELEMENTWISE
        if not (pyrt_op or float_op) or not any(i in self.nhwc for i in data):
            return False
        consts = [i for i in node.inputs if i and i in self.g.constants]
        if any(self.g.constants[i].size != 1 for i in consts) or len(node.outputs) != 1:
            return False
        if not all(_rank4(self.g, i) for i in data):
            return False
        shapes = [self.g.shape(i) for i in data]
        full = max(shapes, key=lambda s: sum(d != 1 for d in s))
        return all(s == full or ((s[2], s[3]) == (1, 1) and s[1] == full[1]) for s in shapes)


def assign_layouts(g: Graph) -> set[str]:
    """Rewrites g: NHWC between native ops, transposes at the borders, NCHW outputs.
    Returns the tensors stored NHWC."""
    if not any(_native(n, g) for n in g.nodes):
        return set()
    lay = _Layouts(g)
    for node in g.nodes:
        lay.place(node)
    for out in g.outputs:
        if out.name in lay.nhwc:  # the producer writes NHWC under another name
            inner = f"{out.name}#nhwc-out"
            for node in lay.nodes:
                node.inputs = [inner if i == out.name else i for i in node.inputs]
                node.outputs = [inner if o == out.name else o for o in node.outputs]
            g.info[inner] = TensorInfo(inner, g.dtype(out.name), g.shape(out.name))
            lay.nhwc.add(inner)
            lay.nhwc.discard(out.name)
            lay.nodes.append(
                Node(f"{out.name}#ToNCHW", "ToNCHW", "pyrt", [inner], [out.name], {}, 0)
            )
    g.nodes = lay.nodes
    g.reindex()
    return lay.nhwc
