"""Stage 2, match: rewrite Q/DQ patterns into integer ops (domain "pyrt").

The graph keeps ONNX's meaning throughout. QOperator nodes (QLinearConv, ...)
are first lowered to the equivalent DQ -> op -> Q form, so one matcher serves
both forms. Then, for each float op whose inputs come from DequantizeLinear
and whose output goes (through an optional Relu/Clip) into QuantizeLinear,
the op is replaced by an integer op reading the quantized inputs and writing
the quantized output. Whatever no pattern claims runs as written: DQ and Q
as kernels, the op in fp32.

Fused ops and their attributes (read by plan.py):
  QConv    x_q -> y      w, w_zero, bias (int32), geometry, x_zero, out (OutputStage)
  QMatMul  x_q -> y      w [N, K], w_zero, bias, x_zero, out; y = x @ w.T
  QBinary  a_q, b_q -> y op ("add" | "mul"), qa, qb, qy, qmin, qmax
  QAvgPool / QGlobalAvgPool   x_q -> y_q   qx, qy, pool attributes
  QLut     x_q -> y_q    table: 256 output codes indexed by the input byte
Integer-exact ops (data movement, max/min selection) keep their ONNX op type
and simply run on the quantized tensors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from .errors import ModelError
from .graph import MS_DOMAIN, Graph, Node, TensorInfo, toposort
from .kernels import OutputStage, QParams
from .ops_float import run_float_op, window_pads

INT8 = (np.dtype(np.uint8), np.dtype(np.int8))
QDQ_DOMAINS = ("", MS_DOMAIN)

# Ops that commute with any increasing elementwise map (DQ, Q): they move or
# select values without arithmetic, so they run on int8 data exactly.
INTEGER_EXACT = {
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Slice",
    "Gather",
    "Split",
    "Concat",
    "Tile",
    "Expand",
    "DepthToSpace",
    "SpaceToDepth",
    "MaxPool",
    "GlobalMaxPool",
    "ReduceMax",
    "ReduceMin",
    "Resize",
    "Pad",
    "Dropout",
}
# Elementwise float ops: with one per-tensor int8 input (other inputs scalar
# constants) they become a 256-entry lookup table.
ELEMENTWISE = {
    "Relu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Celu",
    "Softplus",
    "Softsign",
    "Mish",
    "Gelu",
    "Erf",
    "Exp",
    "Log",
    "Sqrt",
    "Abs",
    "Neg",
    "Reciprocal",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "PRelu",
    "Floor",
    "Ceil",
    "Round",
    "Sin",
    "Cos",
    "ThresholdedRelu",
}


@dataclass
class QInput:
    """The quantized tensor behind a DequantizeLinear output."""

    tensor: str
    scale: np.ndarray
    zero: np.ndarray
    axis: int
    block: int
    dtype: np.dtype | None

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1 and self.zero.size <= 1 and self.block == 0

    def qparams(self) -> QParams:
        return QParams(float(self.scale.reshape(-1)[0]), int(self.zero.reshape(-1)[0]), self.dtype)


def valid_scale(node: Node, scale: np.ndarray) -> None:
    if scale.dtype.kind != "f":
        raise ModelError(f"{node.label}: scale must be float, got {scale.dtype}")
    if scale.size == 0:
        raise ModelError(f"{node.label}: scale is empty")
    s = scale.astype(np.float64)
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ModelError(f"{node.label}: scale must be finite and > 0, got {scale.reshape(-1)[:8]}")


class Matcher:
    def __init__(self, graph: Graph):
        self.g = graph
        self.outputs = {t.name for t in graph.outputs}
        self.counter = itertools.count()

    # ---- lookups --------------------------------------------------------

    def const(self, name: str) -> np.ndarray | None:
        return self.g.constants.get(name) if name else None

    def sole_consumer(self, name: str) -> Node | None:
        users = self.g.consumers.get(name, [])
        if name in self.outputs or len(users) != 1:
            return None
        return users[0]

    def dq(self, name: str) -> QInput | None:
        """The quantized source of `name`: a DequantizeLinear output with constant params."""
        node = self.g.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.domain not in QDQ_DOMAINS:
            return None
        scale = self.const(node.inputs[1])
        zero_name = node.inputs[2] if len(node.inputs) > 2 else ""
        zero = self.const(zero_name) if zero_name else np.zeros(1, np.int32)
        if scale is None or zero is None or scale.dtype != np.float32:
            return None
        valid_scale(node, scale)
        dtype = self.g.dtype(node.inputs[0])
        if zero_name and dtype is not None and zero.dtype != dtype:
            raise ModelError(f"{node.label}: zero point is {zero.dtype}, data is {dtype}")
        if dtype is None and zero_name:  # shape inference may not reach past custom ops
            dtype = zero.dtype
        return QInput(
            node.inputs[0], scale, zero, node.attr("axis", 1), node.attr("block_size", 0), dtype
        )

    def shape(self, name: str) -> tuple | None:
        """Inferred shape; for a DQ output unknown to inference, its input's shape."""
        shape = self.g.shape(name)
        node = self.g.producer.get(name)
        if shape is None and node is not None and node.op_type == "DequantizeLinear":
            shape = self.g.shape(node.inputs[0])
        return shape

    def q_node(self, name: str) -> Node | None:
        node = self.sole_consumer(name)
        if node is None or node.op_type != "QuantizeLinear" or node.domain not in QDQ_DOMAINS:
            return None
        return node

    def q_params(self, node: Node) -> QParams | None:
        """Per-tensor u8/s8 params of a QuantizeLinear, or None."""
        scale = self.const(node.inputs[1])
        zero_name = node.inputs[2] if len(node.inputs) > 2 else ""
        zero = self.const(zero_name) if zero_name else None
        if scale is None or scale.size != 1 or (zero_name and (zero is None or zero.size != 1)):
            return None
        if scale.dtype != np.float32:
            return None
        if node.attr("block_size", 0):
            return None
        if zero is not None:
            dtype = zero.dtype
        else:
            out_type = node.attr("output_dtype", 0)
            dtype = (
                np.dtype(np.int8)
                if out_type == 3
                else np.dtype(np.uint8)
                if out_type in (0, 2)
                else None
            )
        if dtype not in INT8:
            return None
        valid_scale(node, scale)
        return QParams(
            float(scale.reshape(-1)[0]),
            int(zero.reshape(-1)[0]) if zero is not None else 0,
            np.dtype(dtype),
        )

    def quantized_output(self, name: str) -> tuple[QParams, float, float, list[Node], str] | None:
        """Follows `name` through an optional Relu/Clip into a per-tensor Q.

        Returns (Q params, clamp lo, clamp hi, nodes swallowed, output name).
        Q is monotonic, so Q(clip(v, lo, hi)) == clip(Q(v), Q(lo), Q(hi)).
        """
        lo, hi, taken = -np.inf, np.inf, []
        act = self.sole_consumer(name)
        if act is not None and act.domain == "" and act.op_type in ("Relu", "Clip"):
            if act.op_type == "Relu":
                lo = 0.0
            else:
                bounds = self.clip_bounds(act)
                if bounds is None:
                    return None
                lo, hi = bounds
            taken.append(act)
            name = act.outputs[0]
        q = self.q_node(name)
        if q is None:
            return None
        qp = self.q_params(q)
        if qp is None:
            return None
        taken.append(q)
        out_name = q.outputs[0]
        clip = self.sole_consumer(out_name)  # Q -> Clip(codes) -> DQ: a narrower range
        if clip is not None and clip.op_type == "Clip" and clip.domain == "":
            bounds = self.clip_bounds(clip)
            if bounds is not None:
                lo = max(lo, (bounds[0] - qp.zero_point) * qp.scale)
                hi = min(hi, (bounds[1] - qp.zero_point) * qp.scale)
                taken.append(clip)
                out_name = clip.outputs[0]
        return qp, lo, hi, taken, out_name

    def affine_chain(self, name: str, channels: int, axis: int, rank: int):
        """Per-channel y = a * v + b ops after an integer op's output, to fold into it.

        Follows Mul / Div / Add / Sub by constants that vary only along the
        channel axis, and inference BatchNormalization (what PyTorch QAT and
        TensorRT-style exports leave after a Conv or Linear). Returns
        (a, b, nodes, name); nothing when a would not stay finite and positive.
        """
        a, b, taken, start = np.ones(channels), np.zeros(channels), [], name
        while True:
            node = self.sole_consumer(name)
            if node is None or node.domain != "" or len(node.outputs) != 1:
                break
            if node.op_type == "BatchNormalization":
                found = self.batchnorm(node, channels)
                if found is None or axis != 1:
                    break
                k, shift = found
                a, b = a * k, b * k + shift
            elif node.op_type in ("Mul", "Div", "Add", "Sub") and len(node.inputs) == 2:
                other = node.inputs[1] if node.inputs[0] == name else node.inputs[0]
                c = self.per_channel(other, channels, axis, rank)
                if c is None or (node.op_type in ("Div", "Sub") and node.inputs[0] != name):
                    break
                if node.op_type == "Mul":
                    a, b = a * c, b * c
                elif node.op_type == "Div":
                    a, b = a / c, b / c
                else:
                    b = b + c if node.op_type == "Add" else b - c
            else:
                break
            taken.append(node)
            name = node.outputs[0]
        if not (np.all(np.isfinite(a) & (a > 0)) and np.all(np.isfinite(b))):
            return np.ones(channels), np.zeros(channels), [], start
        return a, b, taken, name

    def batchnorm(self, node: Node, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
        """An inference BatchNormalization with constant statistics over `channels` as
        y = k * x + shift (float64 per channel), or None."""
        if node.op_type != "BatchNormalization" or len(node.inputs) != 5:
            return None
        if node.attr("training_mode", 0) or (len(node.outputs) > 1 and any(node.outputs[1:])):
            return None
        params = [real_const(self, i) for i in node.inputs[1:]]  # 1-D, per channel
        if any(p is None or p.size != channels for p in params):
            return None
        gamma, beta, mean, var = (p.reshape(-1) for p in params)
        k = gamma / np.sqrt(var + float(node.attr("epsilon", 1e-5)))
        return k, beta - mean * k

    def per_channel(self, name: str, channels: int, axis: int, rank: int) -> np.ndarray | None:
        """A constant's values per channel, if it varies only along `axis` (-1: the last)."""
        value = real_const(self, name)
        if value is None or (axis >= 0 and value.ndim > rank):
            return None
        if value.size == 1:
            return np.full(channels, float(value.reshape(-1)[0]))
        shape = (1,) * (rank - value.ndim) + value.shape if axis >= 0 else value.shape
        if value.size != channels or shape[axis] != channels:
            return None
        return value.reshape(-1).astype(np.float64)

    def clip_bounds(self, node: Node) -> tuple[float, float] | None:
        if node.opset < 11:
            return float(node.attr("min", -np.inf)), float(node.attr("max", np.inf))
        bounds = []
        for i, default in ((1, -np.inf), (2, np.inf)):
            name = node.inputs[i] if len(node.inputs) > i else ""
            if not name:
                bounds.append(default)
                continue
            v = self.const(name)
            if v is None or v.size != 1:
                return None
            bounds.append(float(v.reshape(-1)[0]))
        return bounds[0], bounds[1]

    def fresh(self, base: str) -> str:
        return f"{base}__pyrt{next(self.counter)}"

    # ---- rewriting helpers ----------------------------------------------

    def output_stage(
        self, name: str, acc_scale: np.ndarray, bias: np.ndarray | None, axis: int, rank: int
    ):
        """Output stage and bias for an integer op whose real output is acc * acc_scale.

        Per-channel affine ops after it fold into the scale and the int32 bias;
        an optional Relu/Clip and a per-tensor Q fold into the requantization.
        Returns (stage, bias, nodes swallowed, output name).
        """
        a, b, taken, name = self.affine_chain(name, acc_scale.size, axis, rank)
        if taken:
            acc_scale = acc_scale * a
            base = bias.astype(np.float64) if bias is not None else 0.0
            bias = np.clip(base + np.rint(b / acc_scale), -(2**31), 2**31 - 1).astype(np.int32)
        found = self.quantized_output(name)
        if found is None:
            stage = OutputStage(np.dtype(np.float32), acc_scale.astype(np.float32))
            return stage, bias, taken, name
        qy, lo, hi, more, out_name = found
        info = np.iinfo(qy.dtype)
        qmin = int(np.clip(quantize_scalar(lo, qy), info.min, info.max))
        qmax = int(np.clip(quantize_scalar(hi, qy), info.min, info.max))
        # in float32 as onnxruntime's QLinearConv / QLinearMatMul: (sx * sw) / sy
        scale = acc_scale.astype(np.float32) / np.float32(qy.scale)
        stage = OutputStage(qy.dtype, scale, qy.zero_point, qmin, qmax)
        return stage, bias, [*taken, *more], out_name


def quantize_scalar(v: float, qp: QParams) -> float:
    if np.isinf(v):
        return v
    return float(np.rint(np.float32(v) / np.float32(qp.scale))) + qp.zero_point


def lut_table(fn, qx: QParams, qy: QParams) -> np.ndarray:
    """256-entry table: output code for every input byte (indexed by the byte as uint8)."""
    from .kernels import dequantize, quantize

    codes = np.arange(256, dtype=np.uint8).view(qx.dtype)
    real = dequantize(codes, np.array(qx.scale, np.float32), np.array(qx.zero_point, qx.dtype))
    out = np.asarray(fn(real), dtype=np.float32).reshape(256)
    return quantize(
        out, np.array(qy.scale, np.float32), np.array(qy.zero_point, qy.dtype), dtype=qy.dtype
    )


def int_attr_list(node: Node, name: str, n: int, default: int) -> list[int]:
    value = node.attr(name)
    if value is None:
        return [default] * n
    value = [int(v) for v in value]
    if len(value) != n:
        raise ModelError(f"{node.label}: attribute '{name}' needs {n} values, got {value}")
    return value


def conv_pads(
    node: Node, in_hw: tuple | None, kernel: list[int], strides: list[int], dilations: list[int]
) -> list[int] | None:
    """ONNX pads [begin..., end...]; auto_pad resolves as the float path does
    (ops_float.window_pads). None when SAME needs sizes unknown at load."""
    auto_pad = node.attr("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        return int_attr_list(node, "pads", 2 * len(kernel), 0)
    if auto_pad.startswith("SAME") and (
        in_hw is None or not all(isinstance(d, int) for d in in_hw)
    ):
        return None
    sizes = list(in_hw) if in_hw is not None else [1] * len(kernel)
    same_dilated = node.op_type in ("Conv", "ConvInteger")
    return window_pads(node, sizes, kernel, strides, dilations, dilated_same=same_dilated)


def real_const(m: Matcher, name: str) -> np.ndarray | None:
    """A constant's real value: a float initializer, or DQ of an integer one."""
    value = m.const(name)
    if value is not None:
        return value.astype(np.float64) if value.dtype.kind == "f" else None
    q = m.dq(name)
    if q is None or q.block or m.const(q.tensor) is None:
        return None
    data = m.const(q.tensor).astype(np.float64)
    shape = [1] * data.ndim
    if q.scale.size > 1:
        shape[q.axis % data.ndim] = -1
    return (data - q.zero.astype(np.float64).reshape(shape)) * q.scale.astype(np.float64).reshape(
        shape
    )


def _bias_int32(m: Matcher, name: str, acc_scale: np.ndarray, n: int) -> np.ndarray | None:
    """Bias in accumulator units; an int32 DQ bias on the same scale is taken as is."""
    q = m.dq(name)
    data = m.const(q.tensor) if q else None
    if (
        q is not None
        and data is not None
        and data.dtype == np.int32
        and not q.zero.any()
        and np.allclose(np.broadcast_to(q.scale, acc_scale.shape), acc_scale, rtol=1e-6, atol=0)
    ):
        bias = np.broadcast_to(data.reshape(-1), (n,)) if data.size in (1, n) else None
        return None if bias is None else bias.astype(np.int32)
    real = real_const(m, name)
    if real is None or real.size not in (1, n):
        return None
    ints = np.rint(np.broadcast_to(real.reshape(-1), (n,)) / acc_scale)
    return np.clip(ints, -(2**31), 2**31 - 1).astype(np.int32)


def _weight_quant(w: QInput, data: np.ndarray, axis: int, n: int) -> tuple | None:
    """(scale [n], zero [n]) for per-tensor or per-`axis` weight quantization."""
    if w.block or data.dtype not in INT8:
        return None
    scale, zero = w.scale.reshape(-1), w.zero.reshape(-1)
    if scale.size != 1 and (w.axis % data.ndim != axis or scale.size != n):
        return None
    if zero.size not in (1, scale.size):
        return None
    return (
        np.broadcast_to(scale, (n,)).astype(np.float64),
        np.broadcast_to(zero, (n,)).astype(np.int32),
    )


def match_conv(m: Matcher, node: Node) -> list[Node] | None:
    x, w = m.dq(node.inputs[0]), m.dq(node.inputs[1])
    if x is None or w is None or not x.per_tensor or x.dtype not in INT8:
        return None
    data = m.const(w.tensor)
    if data is None or data.ndim not in (3, 4):
        return None
    out_c = data.shape[0]
    wq = _weight_quant(w, data, 0, out_c)
    if wq is None:
        return None
    w_scale, w_zero = wq
    valid_scale(node, x.scale)
    nd = data.ndim - 2
    kernel = list(data.shape[2:])
    if node.attr("kernel_shape") is not None and list(node.attr("kernel_shape")) != kernel:
        raise ModelError(
            f"{node.label}: kernel_shape {node.attr('kernel_shape')} "
            f"does not match weight shape {list(data.shape)}"
        )
    strides = int_attr_list(node, "strides", nd, 1)
    dilations = int_attr_list(node, "dilations", nd, 1)
    in_shape = m.shape(node.inputs[0])
    pads = conv_pads(node, in_shape[2:] if in_shape else None, kernel, strides, dilations)
    if pads is None:
        return None
    if nd == 1:  # Conv1d runs as a 1 x W Conv2d
        data = data[:, :, None, :]
        strides, dilations, pads = [1, *strides], [1, *dilations], [0, pads[0], 0, pads[1]]
    acc_scale = float(x.scale.reshape(-1)[0]) * w_scale
    bias = None
    if len(node.inputs) > 2 and node.inputs[2]:
        bias = _bias_int32(m, node.inputs[2], acc_scale, out_c)
        if bias is None:
            return None
    out, bias, taken, out_name = m.output_stage(node.outputs[0], acc_scale, bias, 1, nd + 2)
    fused = Node(
        node.name,
        "QConv",
        "pyrt",
        [x.tensor],
        [out_name],
        dict(
            w=data,
            w_zero=w_zero,
            bias=bias,
            group=int(node.attr("group", 1)),
            strides=tuple(strides),
            dilations=tuple(dilations),
            pads=(pads[0], pads[1], pads[2], pads[3]),
            x_zero=int(x.zero.reshape(-1)[0]) if x.zero.size else 0,
            x_dtype=x.dtype,
            out=out,
            conv1d=nd == 1,
            fused=[node.name, *(t.name for t in taken)],
        ),
        0,
    )
    return [fused]


def match_matmul(m: Matcher, node: Node) -> list[Node] | None:
    """MatMul / Gemm with a constant quantized weight: y = x @ W (+ bias)."""
    x, w = m.dq(node.inputs[0]), m.dq(node.inputs[1])
    if x is None or w is None or not x.per_tensor or x.dtype not in INT8:
        return None
    data = m.const(w.tensor)
    if data is None or data.ndim != 2:
        return None
    gemm = node.op_type == "Gemm"
    trans_a = bool(node.attr("transA", 0)) if gemm else False
    trans_b = bool(node.attr("transB", 0)) if gemm else False
    alpha = float(node.attr("alpha", 1.0)) if gemm else 1.0
    beta = float(node.attr("beta", 1.0)) if gemm else 1.0
    if alpha <= 0:
        return None
    n = data.shape[0] if trans_b else data.shape[1]
    wq = _weight_quant(w, data, 0 if trans_b else 1, n)
    if wq is None:
        return None
    w_scale, w_zero = wq
    valid_scale(node, x.scale)
    acc_scale = alpha * float(x.scale.reshape(-1)[0]) * w_scale
    bias = None
    if gemm and len(node.inputs) > 2 and node.inputs[2] and beta != 0:
        shape = m.shape(node.inputs[2])
        if shape is None or len(shape) > 2 or (len(shape) == 2 and shape[0] != 1):
            return None
        real = real_const(m, node.inputs[2])
        if real is None or real.size not in (1, n):
            return None
        bias = _bias_int32_from_real(beta * real, acc_scale, n)
    # PyTorch's Linear exports as MatMul -> Add(bias): the affine chain takes it.
    out, bias, taken, out_name = m.output_stage(node.outputs[0], acc_scale, bias, -1, 2)
    weights = data if trans_b else data.T
    fused = Node(
        node.name,
        "QMatMul",
        "pyrt",
        [x.tensor],
        [out_name],
        dict(
            w=np.ascontiguousarray(weights),
            w_zero=w_zero,
            bias=bias,
            trans_a=trans_a,
            x_zero=int(x.zero.reshape(-1)[0]) if x.zero.size else 0,
            x_dtype=x.dtype,
            out=out,
            fused=[node.name, *(t.name for t in taken)],
        ),
        0,
    )
    return [fused]


def _bias_int32_from_real(real: np.ndarray, acc_scale: np.ndarray, n: int) -> np.ndarray:
    ints = np.rint(np.broadcast_to(real.reshape(-1), (n,)) / acc_scale)
    return np.clip(ints, -(2**31), 2**31 - 1).astype(np.int32)


def match_binary(m: Matcher, node: Node) -> list[Node] | None:
    if len(node.inputs) != 2:
        return None
    a, b = m.dq(node.inputs[0]), m.dq(node.inputs[1])
    if a is None or b is None or not (a.per_tensor and b.per_tensor):
        return None
    if a.dtype not in INT8 or b.dtype not in INT8:
        return None
    found = m.quantized_output(node.outputs[0])
    if found is None:
        return None
    qy, lo, hi, taken, out_name = found
    valid_scale(node, a.scale)
    valid_scale(node, b.scale)
    info = np.iinfo(qy.dtype)
    qmin = int(np.clip(quantize_scalar(lo, qy), info.min, info.max))
    qmax = int(np.clip(quantize_scalar(hi, qy), info.min, info.max))
    return [
        Node(
            node.name,
            "QBinary",
            "pyrt",
            [a.tensor, b.tensor],
            [out_name],
            dict(
                op=node.op_type.lower(),
                qa=a.qparams(),
                qb=b.qparams(),
                qy=qy,
                qmin=qmin,
                qmax=qmax,
                fused=[node.name, *(t.name for t in taken)],
            ),
            0,
        )
    ]


def match_avgpool(m: Matcher, node: Node) -> list[Node] | None:
    x = m.dq(node.inputs[0])
    if x is None or not x.per_tensor or x.dtype not in INT8:
        return None
    q = m.q_node(node.outputs[0])
    qy = m.q_params(q) if q is not None else None
    if qy is None:
        return None
    valid_scale(node, x.scale)
    attrs = dict(qx=x.qparams(), qy=qy, fused=[node.name, q.name])
    if node.op_type == "AveragePool":
        window = window_attrs(node, m.shape(node.inputs[0]))
        if window is None:
            return None
        attrs.update(window, count_include_pad=bool(node.attr("count_include_pad", 0)))
        op = "QAvgPool"
    else:
        op = "QGlobalAvgPool"
    return [Node(node.name, op, "pyrt", [x.tensor], [q.outputs[0]], attrs, 0)]


def match_batchnorm(m: Matcher, node: Node) -> list[Node] | None:
    """DQ -> BatchNormalization -> (Relu | Clip)? -> Q, not after a foldable op (DenseNet's
    BN-ReLU before each conv): one per-channel affine map on the codes (QAffine,
    pyrt_channel_affine). With k, shift the BN's multiplier and offset, it computes
    v = fmaf(x - zx, sx * k / sy, shift / sy), y = clamp(rint(v) + zy): the float reference
    rounds (x - zx) * sx, then the BN's product and sum, then the division by sy, so an
    output can differ from it by one step where v is within float rounding of a half."""
    x = m.dq(node.inputs[0])
    shape = m.shape(node.inputs[0])
    if x is None or not x.per_tensor or x.dtype not in INT8 or shape is None or len(shape) < 2:
        return None
    channels = shape[1]
    found = m.batchnorm(node, channels) if isinstance(channels, int) else None
    out = m.quantized_output(node.outputs[0]) if found is not None else None
    if out is None:
        return None
    (k, shift), (qy, lo, hi, taken, out_name) = found, out
    qx = x.qparams()
    a = (qx.scale * k / qy.scale).astype(np.float32)
    b = (shift / qy.scale).astype(np.float32)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    info = np.iinfo(qy.dtype)
    qmin = int(np.clip(quantize_scalar(lo, qy), info.min, info.max))
    qmax = int(np.clip(quantize_scalar(hi, qy), info.min, info.max))
    attrs = dict(a=a, b=b, qx=qx, qy=qy, qmin=qmin, qmax=qmax)
    attrs["fused"] = [node.name, *(t.name for t in taken)]
    return [Node(node.name, "QAffine", "pyrt", [x.tensor], [out_name], attrs, 0)]


def _same(a: QParams, b: QParams) -> bool:
    return (
        a.dtype == b.dtype
        and a.zero_point == b.zero_point
        and np.float32(a.scale) == np.float32(b.scale)
    )


def _lut_node(
    m: Matcher, name: str, src: str, dst: str, fn, qx: QParams, qy: QParams, fused
) -> Node:
    return Node(
        name,
        "QLut",
        "pyrt",
        [src],
        [dst],
        dict(table=lut_table(fn, qx, qy), qx=qx, qy=qy, fused=fused),
        0,
    )


def _mode(node: Node, default: str) -> str:
    mode = node.attr("mode", default)
    return mode.decode() if isinstance(mode, bytes) else mode


def window_attrs(node: Node, in_shape: tuple | None) -> dict | None:
    """kernel/strides/dilations/pads/ceil_mode of a 2-D pooling node (NCHW input)."""
    kernel = node.attr("kernel_shape")
    if kernel is None or len(kernel) != 2:
        return None
    kernel = [int(k) for k in kernel]
    strides = int_attr_list(node, "strides", 2, 1)
    dilations = int_attr_list(node, "dilations", 2, 1)
    for name, values in (("kernel_shape", kernel), ("strides", strides), ("dilations", dilations)):
        if any(v <= 0 for v in values):
            raise ModelError(f"{node.label}: attribute '{name}' must be > 0, got {values}")
    pads = conv_pads(node, in_shape[2:] if in_shape else None, kernel, strides, dilations)
    if pads is None:
        return None
    if node.attr("pads") is not None and not all(
        0 <= p < kernel[i % 2] for i, p in enumerate(pads)
    ):
        raise ModelError(
            f"{node.label}: attribute 'pads' {pads} must be >= 0 and smaller than the kernel "
            f"{kernel}"
        )
    return dict(
        kernel=tuple(kernel),
        strides=tuple(strides),
        dilations=tuple(dilations),
        pads=tuple(pads),
        ceil_mode=bool(node.attr("ceil_mode", 0)),
    )


def match_integer_exact(m: Matcher, node: Node) -> list[Node] | None:
    """Movement/selection ops between DQ and Q run on the quantized data."""
    data_idx = range(len(node.inputs)) if node.op_type == "Concat" else [0]
    qins = [m.dq(node.inputs[i]) for i in data_idx]
    if any(q is None or not q.per_tensor or q.dtype not in INT8 for q in qins):
        return None
    if node.op_type == "Resize" and _mode(node, "nearest") != "nearest":
        return None
    if node.op_type in ("MaxPool", "Dropout") and len(node.outputs) > 1 and node.outputs[1]:
        return None
    outs = [o for o in node.outputs if o]
    qnodes = [m.q_node(o) for o in outs]
    qys = [m.q_params(q) if q is not None else None for q in qnodes]
    if any(q is None for q in qys):
        return None

    # Concat needs one set of params: bring every input to the output's.
    target = qys[0] if node.op_type == "Concat" else qins[0].qparams()
    new_nodes, inputs, attrs = [], list(node.inputs), dict(node.attrs)
    for i, q in zip(data_idx, qins):
        qp = q.qparams()
        inputs[i] = q.tensor if _same(qp, target) else m.fresh(node.inputs[i])
        if inputs[i] != q.tensor:
            m.g.info[inputs[i]] = TensorInfo(inputs[i], target.dtype, m.shape(node.inputs[i]))
            new_nodes.append(
                _lut_node(
                    m,
                    f"{node.name}/requant{i}",
                    q.tensor,
                    inputs[i],
                    lambda v: v,
                    qp,
                    target,
                    [node.name],
                )
            )
    if node.op_type == "Pad" and _mode(node, "constant") == "constant":
        # The pad value must survive quantization exactly.
        if node.opset < 11:
            v = float(node.attr("value", 0.0))
        else:
            name = node.inputs[2] if len(node.inputs) > 2 else ""
            value = m.const(name) if name else np.zeros(1, np.float32)
            if value is None:
                return None
            v = float(value.reshape(-1)[0]) if value.size else 0.0
        code = quantize_scalar(v, target)
        info = np.iinfo(target.dtype)
        if not info.min <= code <= info.max or (code - target.zero_point) * target.scale != v:
            return None
        if node.opset < 11:
            attrs["value"] = float(code)
        else:
            const_name = m.fresh(f"{node.name}_pad_value")
            m.g.constants[const_name] = np.array(int(code), target.dtype)
            inputs = [inputs[0], inputs[1], const_name, *inputs[3:]]

    outputs = []
    for out, q, qy in zip(outs, qnodes, qys):
        if _same(target, qy):
            outputs.append(q.outputs[0])
            continue
        mid = m.fresh(out)
        m.g.info[mid] = TensorInfo(mid, target.dtype, m.shape(out))
        outputs.append(mid)
        new_nodes.append(
            _lut_node(
                m,
                f"{node.name}/requant_{out}",
                mid,
                q.outputs[0],
                lambda v: v,
                target,
                qy,
                [node.name],
            )
        )
    out_iter = iter(outputs)
    node_outputs = [next(out_iter) if o else "" for o in node.outputs]
    op, domain = node.op_type, node.domain
    if op == "MaxPool":
        window = window_attrs(node, m.shape(node.inputs[0]))
        if window is not None:
            op, domain, attrs = "QMaxPool", "pyrt", window
    attrs["fused"] = [node.name, *(q.name for q in qnodes)]
    attrs["int_dtype"] = target.dtype
    return [Node(node.name, op, domain, inputs, node_outputs, attrs, node.opset), *new_nodes]


def match_lut(m: Matcher, node: Node) -> list[Node] | None:
    """Elementwise op of one int8 tensor (and scalar constants) -> Q: a lookup table."""
    qin, qidx, consts = None, None, []
    for i, name in enumerate(node.inputs):
        q = m.dq(name) if name else None
        if q is not None and qin is None:
            qin, qidx = q, i
            consts.append(None)
            continue
        value = m.const(name) if name else None
        if name and (value is None or value.size != 1):
            return None
        consts.append(value.reshape(()) if value is not None else None)
    if qin is None or not qin.per_tensor or qin.dtype not in INT8:
        return None
    q = m.q_node(node.outputs[0])
    qy = m.q_params(q) if q is not None else None
    if qy is None:
        return None
    valid_scale(node, qin.scale)

    def fn(real: np.ndarray) -> np.ndarray:
        args = [real if i == qidx else c for i, c in enumerate(consts)]
        return run_float_op(node, args)[0]

    return [
        _lut_node(
            m, node.name, qin.tensor, q.outputs[0], fn, qin.qparams(), qy, [node.name, q.name]
        )
    ]


def match_requant(m: Matcher, node: Node) -> list[Node] | None:
    """DQ -> Q: a requantization (or nothing) on the integer data."""
    x = m.dq(node.inputs[0])
    if x is None or not x.per_tensor or x.dtype not in INT8:
        return None
    qy = m.q_params(node)
    if qy is None:
        return None
    return [
        _lut_node(
            m, node.name, x.tensor, node.outputs[0], lambda v: v, x.qparams(), qy, [node.name]
        )
    ]


def match_integer_matmul(m: Matcher, node: Node) -> list[Node] | None:
    """ConvInteger / MatMulInteger with constant weights and zero points; MatMulInteger
    also with the input's zero point computed at run time (quantize_dynamic's
    DynamicQuantizeLinear -> MatMulInteger: attr x_zero None, the zero point a second
    input)."""
    x_zero_name = node.inputs[2] if len(node.inputs) > 2 else ""
    w_zero_name = node.inputs[3] if len(node.inputs) > 3 else ""
    x_zero = m.const(x_zero_name) if x_zero_name else np.zeros(1, np.uint8)
    w_zero = m.const(w_zero_name) if w_zero_name else np.zeros(1, np.uint8)
    data = m.const(node.inputs[1])
    x_dtype = m.g.dtype(node.inputs[0])
    dynamic = x_zero is None and _scalar_of(m, x_zero_name)
    if dynamic:
        x_zero = np.zeros(1, np.int32)
    if x_zero is None or w_zero is None or data is None or x_zero.size != 1 or x_dtype not in INT8:
        return None
    if data.dtype not in INT8:
        return None
    n = data.shape[0] if node.op_type == "ConvInteger" else data.shape[-1]
    if w_zero.size not in (1, n) or data.ndim not in (
        ((4,) if dynamic else (3, 4)) if node.op_type == "ConvInteger" else (2,)
    ):
        return None
    w_zero = np.broadcast_to(w_zero.reshape(-1), (n,)).astype(np.int32)
    out = OutputStage(np.dtype(np.int32))
    attrs = dict(
        w_zero=w_zero,
        bias=None,
        x_zero=None if dynamic else int(x_zero.reshape(-1)[0]),
        x_dtype=x_dtype,
        out=out,
        fused=[node.name],
    )
    inputs, output = [node.inputs[0], *([x_zero_name] if dynamic else [])], node.outputs[0]
    scaled = _cast_and_scale(m, node, n)
    if scaled is not None and not dynamic:  # Cast -> Mul(constant) as the output stage
        (cast, mul, scale) = scaled
        value = m.const(scale)
        if value is not None:
            output = mul.outputs[0]
            stage = OutputStage(np.dtype(np.float32), np.ascontiguousarray(value.reshape(-1)))
            attrs.update(out=stage, fused=[node.name, cast.name, mul.name])
    elif scaled is not None:  # Cast -> Mul(scale) as the float output stage
        (cast, mul, scale), output = scaled, scaled[1].outputs[0]
        fused = [node.name, cast.name, mul.name]
        product = _scale_product(m, scale, n)
        if product is not None:  # input scale x constant weight scale, computed per run
            (scale, w_scale, scale_mul) = product
            attrs["w_scale"] = w_scale
            fused.append(scale_mul.name)
        inputs.append(scale)
        attrs.update(out=OutputStage(np.dtype(np.float32)), fused=fused)
    if node.op_type == "MatMulInteger":
        attrs.update(w=np.ascontiguousarray(data.T), trans_a=False)
        return [Node(node.name, "QMatMul", "pyrt", inputs, [output], attrs, 0)]
    nd = data.ndim - 2
    kernel = list(data.shape[2:])
    strides = int_attr_list(node, "strides", nd, 1)
    dilations = int_attr_list(node, "dilations", nd, 1)
    shape = m.shape(node.inputs[0])
    pads = conv_pads(node, shape[2:] if shape else None, kernel, strides, dilations)
    if pads is None:
        return None
    if nd == 1:
        data = data[:, :, None, :]
        strides, dilations, pads = [1, *strides], [1, *dilations], [0, pads[0], 0, pads[1]]
    attrs.update(
        w=data,
        group=int(node.attr("group", 1)),
        strides=tuple(strides),
        dilations=tuple(dilations),
        pads=tuple(pads),
        conv1d=nd == 1,
    )
    return [Node(node.name, "QConv", "pyrt", inputs, [output], attrs, 0)]


def _cast_and_scale(m: Matcher, node: Node, n: int) -> tuple[Node, Node, str] | None:
    """MatMulInteger / ConvInteger -> Cast(float) -> Mul(s), s one value or n (along the
    output channels: the last axis of a MatMul, axis 1 of a Conv), as quantize_dynamic
    writes it: (the Cast, the Mul, s). float(acc) * s is the float output stage's
    arithmetic exactly."""
    cast = m.sole_consumer(node.outputs[0])
    if cast is None or cast.op_type != "Cast" or cast.domain != "" or len(cast.outputs) != 1:
        return None
    if cast.attr("to", None) != 1:  # TensorProto.FLOAT
        return None
    mul = m.sole_consumer(cast.outputs[0])
    if mul is None or mul.op_type != "Mul" or mul.domain != "" or len(mul.inputs) != 2:
        return None
    scale = mul.inputs[1] if mul.inputs[0] == cast.outputs[0] else mul.inputs[0]
    shape = m.shape(scale)
    if scale == cast.outputs[0] or m.g.dtype(scale) != np.float32 or shape is None:
        return None
    channels = [(n,)] if node.op_type == "MatMulInteger" else [(n, 1, 1), (1, n, 1, 1)]
    if tuple(shape) not in ((), (1,), *channels):
        return None
    if m.shape(mul.outputs[0]) != m.shape(node.outputs[0]):
        return None
    return cast, mul, scale


def _scale_product(m: Matcher, name: str, n: int) -> tuple[str, np.ndarray, Node] | None:
    """name = Mul(input scale, constant weight scale) used only there, as quantize_dynamic
    writes it: (the input scale, the weight scale as 1 or n float32 values, the Mul)."""
    mul = m.g.producer.get(name)
    if mul is None or mul.op_type != "Mul" or mul.domain != "" or len(mul.inputs) != 2:
        return None
    if m.sole_consumer(name) is None:
        return None
    for i in (0, 1):
        w_scale, x_scale = m.const(mul.inputs[i]), mul.inputs[1 - i]
        if w_scale is None or w_scale.dtype != np.float32 or w_scale.size not in (1, n):
            continue
        if m.g.dtype(x_scale) == np.float32 and _scalar_of(m, x_scale):
            return x_scale, np.ascontiguousarray(w_scale.reshape(-1)), mul
    return None


def _scalar_of(m: Matcher, name: str) -> bool:
    """name is a one-element tensor (its shape known)."""
    shape = m.shape(name)
    return (
        shape is not None
        and all(isinstance(d, int) for d in shape)
        and int(np.prod(shape, dtype=np.int64)) == 1
    )


def _matcher_for(node: Node):
    if node.domain != "":
        return []
    op = node.op_type
    if op == "Conv":
        return [match_conv]
    if op in ("MatMul", "Gemm"):
        return [match_matmul]
    if op in ("ConvInteger", "MatMulInteger"):
        return [match_integer_matmul]
    if op in ("AveragePool", "GlobalAveragePool"):
        return [match_avgpool]
    if op == "QuantizeLinear":
        return [match_requant]
    if op == "BatchNormalization":
        return [match_batchnorm]
    found = []
    if op in ("Add", "Mul"):
        found.append(match_binary)
    if op in INTEGER_EXACT:
        found.append(match_integer_exact)
    if op in ELEMENTWISE:
        found.append(match_lut)
    return found


def _code_clamp(node: Node) -> tuple[int, int] | None:
    """(lo, hi) when a QLut's table is y = clamp(x, lo, hi) on the codes themselves (a
    Relu / Clip between DQ and Q with the same scale and zero point on both sides)."""
    qx, qy = node.attrs["qx"], node.attrs["qy"]
    if np.dtype(qx.dtype) != np.dtype(qy.dtype):
        return None
    info = np.iinfo(qx.dtype)
    codes = np.arange(info.min, info.max + 1)
    out = node.attrs["table"][codes.astype(qx.dtype).view(np.uint8)].view(qy.dtype)
    lo, hi = int(out.min()), int(out.max())
    return (lo, hi) if np.array_equal(out, np.clip(codes, lo, hi)) else None


def fold_code_clamps(g: Graph) -> None:
    """A clamp on codes right after an integer op whose requantization clamps anyway (its
    only consumer) narrows that clamp and disappears: exact, one pass over memory less."""
    drop: set[str] = set()
    for node in g.nodes:
        if node.domain != "pyrt" or node.op_type != "QLut" or node.name in drop:
            continue
        producer = g.producer.get(node.inputs[0])
        users = g.consumers.get(node.inputs[0], [])
        outputs = {t.name for t in g.outputs}
        if producer is None or producer.domain != "pyrt" or len(users) != 1:
            continue
        if producer.op_type not in ("QConv", "QMatMul", "QBinary") or node.inputs[0] in outputs:
            continue
        bounds = _code_clamp(node)
        if bounds is None:
            continue
        a = producer.attrs
        if producer.op_type == "QBinary":
            a["qmin"], a["qmax"] = max(a["qmin"], bounds[0]), min(a["qmax"], bounds[1])
        else:
            out = a["out"]
            if np.dtype(out.dtype) not in INT8:
                continue
            info = np.iinfo(out.dtype)
            qmin = info.min if out.qmin is None else out.qmin
            qmax = info.max if out.qmax is None else out.qmax
            a["out"] = replace(out, qmin=max(qmin, bounds[0]), qmax=min(qmax, bounds[1]))
        a["fused"] = [*a.get("fused", [producer.name]), *node.attrs.get("fused", [node.name])]
        producer.outputs = [node.outputs[0]]
        drop.add(node.name)
    if drop:
        g.nodes = [n for n in g.nodes if n.name not in drop]
        g.reindex()


def fuse(g: Graph) -> None:
    """Replaces every matched pattern by its integer op; the rest stays as written."""
    from .patterns_attention import (  # it imports this module
        attention_matchers,
        canonical_layernorms,
        fuse_attention,
    )
    from .patterns_float import float_matchers  # likewise

    canonical_layernorms(g)
    m = Matcher(g)
    taken: set[str] = set()
    emitted: dict[str, list[Node]] = {}
    for node in g.nodes:
        if node.name in taken:
            continue
        for matcher in [*attention_matchers(node), *_matcher_for(node), *float_matchers(node)]:
            new = matcher(m, node)
            if new:
                emitted[node.name] = new
                for n in new:
                    taken.update(n.attrs.get("fused", []))
                break
    nodes = []
    for node in g.nodes:
        if node.name in emitted:
            nodes.extend(emitted[node.name])
        elif node.name not in taken:
            nodes.append(node)
    g.nodes = toposort(nodes, set(g.constants) | {t.name for t in g.inputs})
    g.reindex()
    fuse_attention(g)  # Q·Kᵀ -> Softmax -> P·V of the ops just made
