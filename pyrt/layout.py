"""Stage between match and plan: choose the activation layout of every int8 tensor.

Integer convolutions run in NHWC, where a vector of output channels and the
4-byte K groups of a dot-product instruction are contiguous. This pass makes
every 4-D int8 tensor between NHWC-native ops NHWC and inserts a transpose
(pyrt ToNHWC / ToNCHW node) only where a tensor crosses into or out of such a
region, once per tensor. Elementwise ops and per-channel BatchNormalization
take whichever layout their inputs have; Concat, Split and Slice of NHWC
tensors stay NHWC with their axis remapped (not the data), and ShuffleNet's
channel shuffle (Reshape -> Transpose -> Reshape) on NHWC data becomes one
ChannelShuffle node, so a whole CNN is NHWC from its first conv to its head.
Everything else (numpy ops, Q/DQ, other data movement, graph outputs) sees
the model's own NCHW layout. Graph info keeps every tensor's logical
(NCHW) shape; where a tensor is stored NHWC, its consumers know from their
node (attrs["nhwc"], a remapped axis, or a ToNCHW node in between).
"""

from __future__ import annotations

import numpy as np

from .graph import Graph, Node, TensorInfo
from .patterns import INT8
from .plan import float_conv_params

# Consume and produce NHWC (their first input): integer convolutions and pools.
NHWC_NATIVE = {"QConv", "QMaxPool", "QAvgPool", "QGlobalAvgPool"}
# Per-channel maps (BatchNormalization, plan.affine_step): follow their input's layout.
CHANNELWISE = {"QAffine", "Affine"}
# Where an NCHW axis is in NHWC.
NHWC_AXIS = (0, 3, 1, 2)
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
    return (  # fp32 GlobalAveragePool and AveragePool
        node.domain == ""
        and (
            node.op_type == "GlobalAveragePool"
            or (node.op_type == "AveragePool" and len(node.attr("kernel_shape") or ()) == 2)
        )
        and _rank4(g, node.inputs[0])
        and g.dtype(node.inputs[0]) == np.float32
    )


class _Layouts:
    def __init__(self, g: Graph):
        self.g = g
        self.nhwc: set[str] = set()  # tensors stored NHWC
        self.converted: dict[tuple[str, str], str] = {}  # (tensor, to) -> its converted copy
        self.nodes: list[Node] = []
        self.absorbed: set[str] = set()  # nodes a ChannelShuffle replaced
        self.outputs = {t.name for t in g.outputs}

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
        if node.name in self.absorbed:
            return
        data = [i for i in node.inputs if i and i not in self.g.constants]
        if (shuffle := self._channel_shuffle(node)) is not None:
            self.nodes.append(shuffle)
            self.nhwc.add(shuffle.outputs[0])
            return
        if _native(node, self.g):
            node.inputs[0] = self.convert(node.inputs[0], "nhwc")
            node.attrs["nhwc"] = True
            self.nhwc.add(node.outputs[0])
        elif self._follows_nhwc(node, data):
            node.inputs = [self.convert(i, "nhwc") if i in data else i for i in node.inputs]
            if node.op_type in ("Concat", "Split"):  # the axis moves, not the data
                node.attrs["axis"] = NHWC_AXIS[int(node.attrs["axis"]) % 4]
            elif node.op_type == "Slice":
                node.inputs = self._slice_inputs(node)
            else:
                node.attrs["nhwc"] = True
            self.nhwc.update(o for o in node.outputs if o)
        elif self._elementwise_nhwc(node, data):
            node.inputs = [self.convert(i, "nhwc") if i in data else i for i in node.inputs]
            self.nhwc.update(o for o in node.outputs if o)
        else:
            node.inputs = [self.convert(i, "nchw") if i in self.nhwc else i for i in node.inputs]
        self.nodes.append(node)

    def _follows_nhwc(self, node: Node, data: list[str]) -> bool:
        """Per-channel maps, and Concat / Split of rank-4 tensors, with an NHWC input."""
        if not any(i in self.nhwc for i in data) or not all(_rank4(self.g, i) for i in data):
            return False
        if node.domain == "pyrt":
            return node.op_type in CHANNELWISE
        if node.domain not in ("", "ai.onnx") or node.op_type not in ("Concat", "Split", "Slice"):
            return False
        if node.op_type in ("Split", "Slice") and (len(data) != 1 or data[0] != node.inputs[0]):
            return False
        if node.op_type == "Slice":  # opset >= 10: starts, ends, axes, steps are inputs
            return node.opset >= 10 and len(node.inputs) >= 3 and _rank4(self.g, node.outputs[0])
        outs = [o for o in node.outputs if o]
        return node.attr("axis") is not None and all(_rank4(self.g, o) for o in outs)

    def _slice_inputs(self, node: Node) -> list[str]:
        """A Slice's inputs with its axes (all of them when absent) as NHWC axes."""
        inputs = list(node.inputs) + [""] * (5 - len(node.inputs))
        given = self.g.constants[inputs[3]] if inputs[3] else None
        count = self.g.constants[inputs[1]].size
        axes = given.reshape(-1) if given is not None else np.arange(count)
        name = f"{node.name}#nhwc-axes"
        self.g.constants[name] = np.array([NHWC_AXIS[int(a) % 4] for a in axes], np.int64)
        inputs[3] = name
        return inputs[: 5 if inputs[4] else 4]

    def _channel_shuffle(self, node: Node) -> Node | None:
        """Reshape [N, C, H, W] -> [N, g, C/g, H*W] (or [N, g, C/g, H, W]) -> Transpose
        swapping g and C/g -> Reshape back to [N, C, H, W], on an NHWC tensor: one
        ChannelShuffle node (plan.channel_shuffle_step); the three nodes go."""
        g = self.g
        if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx"):
            return None
        x = node.inputs[0]
        shape, mid = g.shape(x), g.shape(node.outputs[0])
        if x not in self.nhwc or not _rank4(g, x) or mid is None or len(mid) not in (4, 5):
            return None
        if not all(isinstance(d, int) for d in (*shape, *mid)):
            return None
        n, c, h, w = shape
        groups = mid[1]
        spatial = [h * w] if len(mid) == 4 else [h, w]
        if (
            not isinstance(groups, int)
            or groups < 1
            or list(mid) != [n, groups, c // groups, *spatial]
        ):
            return None
        chain = [node]
        for op in ("Transpose", "Reshape"):
            users = g.consumers.get(chain[-1].outputs[0], [])
            if len(users) != 1 or users[0].op_type != op or chain[-1].outputs[0] in self.outputs:
                return None
            chain.append(users[0])
        perm = list(chain[1].attr("perm") or [])
        if perm != [0, 2, 1, *range(3, len(mid))] or g.shape(chain[2].outputs[0]) != shape:
            return None
        self.absorbed.update(n.name for n in chain[1:])
        fused = [name for n in chain for name in n.attrs.get("fused", [n.name])]
        attrs = dict(groups=groups, nhwc=True, fused=fused)
        return Node(node.name, "ChannelShuffle", "pyrt", [x], [chain[2].outputs[0]], attrs, 0)

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
