"""Transformer ops of onnxruntime's tools and ONNX opset 23 -> the standard ONNX they mean.

onnxruntime's transformer optimizer (`optimize_model(model_type="bert")`) writes
com.microsoft Attention, MultiHeadAttention, EmbedLayerNormalization,
SkipLayerNormalization, BiasGelu, FastGelu, Gelu ...; `quantize_dynamic` turns
Attention into QAttention. Each becomes here the subgraph exporters write for it, so
pyrt's matchers (patterns_attention.py) fuse the pieces into their kernels:

  Attention     MatMul -> Add bias per Q, K, V (the packed weights cut at load) ->
                Reshape / Transpose per head -> MatMul Q x K^T -> Mul scale -> Add
                mask -> Softmax -> MatMul V -> Transpose / Reshape (merge heads)
  QAttention    the same after MatMulInteger -> Cast -> Mul (input scale x weight
                scale) -> Add bias -> Split (what onnxruntime computes)
  SkipLayerNormalization   Add bias -> Add skip -> LayerNormalization
  EmbedLayerNormalization  Gather word / position / segment -> Add -> LayerNormalization
  BiasGelu / Gelu / FastGelu / QuickGelu   Add bias -> the Erf / Tanh / Sigmoid chain
  (Skip)SimplifiedLayerNormalization, RMSNormalization   x / sqrt(mean(x^2) + eps) * g
  RotaryEmbedding   Slice -> cos / sin products -> Concat
  MatMulIntegerToFloat   MatMulInteger -> Cast -> Mul (a_scale x b_scale) -> Add bias
  DynamicQuantizeMatMul  DynamicQuantizeLinear, then as MatMulIntegerToFloat
  FusedMatMul   Transpose (transA / transB) -> MatMul -> Mul alpha

The additive mask is computed as onnxruntime's CPU kernels compute it: 1-D lengths
(right padding) or lengths and starts (left padding), 2-D / 3-D 0-1 masks
(> 0 keeps), mask_filter_value where masked, the float lowest where `unidirectional`
hides a future key; attention_bias is added to it. Forms pyrt cannot lower exactly
raise UnsupportedOpError naming the node and the attribute or input.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .errors import ModelError, UnsupportedOpError
from .graph import (
    MS_DOMAIN,
    SUBGRAPH,
    Graph,
    Node,
    TensorInfo,
    _tensor_info,
    infer_shapes,
    toposort,
)
from .lower import _Builder, _name, _opt
from .plan import make_step

LOWEST = float(np.finfo(np.float32).min)
INF = float("inf")


class _B(_Builder):
    """The lowering builder with the small ONNX idioms the subgraphs need (every node in
    the model's default opset, so shape inference runs over them)."""

    def __init__(self, graph: Graph, node: Node, shared: dict):
        super().__init__(graph, node)
        self.shared, self.made = shared, {}

    def once(self, key: tuple, make) -> str:
        """A tensor that depends on `key` alone (a mask's arithmetic): built by the first
        node that needs it, read by the later ones (shared once that node is lowered)."""
        found = self.shared.get(key) or self.made.get(key)
        if found is None:
            found = self.made[key] = make()
        return found

    @property
    def opset(self) -> int:
        return self.g.opsets.get("", 1)

    def op(self, op: str, *inputs: str, **attrs) -> str:
        ins = list(inputs)
        while ins and not ins[-1]:  # optional inputs left out
            ins.pop()
        return self.add(op, ins, attrs)

    def f32(self, value: float) -> str:
        return self.const(np.array(value, np.float32))

    def i64(self, values) -> str:
        return self.const(np.array(values, np.int64))

    def dim(self, x: str, axis: int) -> str:
        """Dimension `axis` of x as a 1-D [1] int64 tensor (folded when x's shape is static)."""
        return self.op("Gather", self.op("Shape", x), self.i64([axis]), axis=0)

    def scalar(self, one: str) -> str:
        return self.op("Reshape", one, self.i64([]))

    def unsqueeze(self, x: str, axes: list[int]) -> str:
        if self.opset >= 13:
            return self.op("Unsqueeze", x, self.i64(axes))
        return self.op("Unsqueeze", x, axes=axes)

    def reduce(self, op: str, x: str, axes: list[int], keepdims: int = 1) -> str:
        if self.opset >= (13 if op == "ReduceSum" else 18):
            return self.op(op, x, self.i64(axes), keepdims=keepdims)
        return self.op(op, x, axes=axes, keepdims=keepdims)

    def split(self, x: str, sizes: list[int], axis: int = -1) -> list[str]:
        outs = [_name(f"{self.node.name}_Split") for _ in sizes]
        if self.opset >= 13:
            self.add("Split", [x, self.i64(sizes)], {"axis": axis})
        else:
            self.add("Split", [x], {"axis": axis, "split": list(sizes)})
        self.nodes[-1].outputs = outs
        return outs

    def slice(self, x: str, start: str, end: str, axis: int = 0) -> str:
        return self.op("Slice", x, start, end, self.i64([axis]))

    def where(self, cond: str, yes: float, no: float | str) -> str:
        other = no if isinstance(no, str) else self.f32(no)
        return self.op("Where", cond, self.f32(yes), other)

    def positions(self, length: str) -> str:
        """int64 [0, 1, ..., length - 1] for a 1-D [1] length."""
        return self.op("Range", self.i64(0), self.scalar(length), self.i64(1))

    def param(self, name: str) -> str:
        """A constant parameter (gamma, beta, bias) the quantizer wrote as DQ(constant):
        its float value, so the matchers see the constant exporters write."""
        dq = self.g.producer.get(name) if name else None
        if dq is None or dq.op_type != "DequantizeLinear" or not self.constant_inputs(dq):
            return name
        return self._evaluated(dq)

    def dq_const(self, x: str, scale: str, zero: str) -> str:
        """DQ(x), evaluated now when x, scale and zero are constants."""
        out = self.dq(x, scale, zero)
        if not self.constant_inputs(self.nodes[-1]):
            return out
        return self._evaluated(self.nodes.pop())

    def constant_inputs(self, node: Node) -> bool:
        """Every input of node is known at load."""
        return all(i in self.g.constants for i in node.inputs if i)

    def _evaluated(self, node: Node) -> str:
        values = [self.g.constants[i] if i else None for i in node.inputs]
        return self.const(np.asarray(make_step(node, self.g).fn(*values)[0]))

    def copy_to(self, x: str, output: str) -> None:
        if output:
            self.add("Identity", [x], output=output)


def _fail(node: Node, what: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"{node.label}: {what}")


def _iattr(node: Node, name: str, default: int) -> int:
    value = node.attr(name, default)
    if not isinstance(value, int):
        raise ModelError(f"{node.label}: attribute '{name}' must be an int, got {value!r}")
    return value


def _fattr(node: Node, name: str, default: float) -> float:
    value = node.attr(name, default)
    if not isinstance(value, (int, float)):
        raise ModelError(f"{node.label}: attribute '{name}' must be a float, got {value!r}")
    return float(value)


def _reject_attrs(node: Node, **defaults) -> None:
    """Attributes pyrt does not lower must keep their default value."""
    for name, default in defaults.items():
        if name in node.attrs and node.attrs[name] != default:
            raise _fail(node, f"attribute {name}={node.attrs[name]!r} is not supported")


def _reject_inputs(node: Node, slots: dict[int, str]) -> None:
    for i, what in slots.items():
        if _opt(node, i):
            raise _fail(node, f"input {i} ('{what}') is not supported")


def _reject_outputs(node: Node, slots: dict[int, str]) -> None:
    for i, what in slots.items():
        if len(node.outputs) > i and node.outputs[i]:
            raise _fail(node, f"output {i} ('{what}') is not supported")


def _static_dim(g: Graph, name: str, axis: int) -> int | None:
    shape = g.shape(name)
    if shape is None or not -len(shape) <= axis < len(shape):
        return None
    d = shape[axis]
    return d if isinstance(d, int) and d >= 0 else None


def _num_heads(node: Node, name: str = "num_heads") -> int:
    if name not in node.attrs:
        raise ModelError(f"{node.label}: required attribute '{name}' is missing")
    heads = _iattr(node, name, 0)
    if heads <= 0:
        raise ModelError(f"{node.label}: attribute '{name}' must be positive, got {heads}")
    return heads


def _head_size(node: Node, hidden: int, heads: int, what: str) -> int:
    if hidden <= 0 or hidden % heads:
        raise ModelError(
            f"{node.label}: {what} hidden size {hidden} is not a positive multiple of "
            f"num_heads {heads}"
        )
    return hidden // heads


# ---- the attention core ----


def _heads(b: _B, x: str, heads: int, size: int, perm: list[int]) -> str:
    """[B, S, heads * size] -> Reshape [B, S, heads, size] -> Transpose(perm)."""
    split = b.op("Reshape", x, b.i64([0, 0, heads, size]))
    return b.op("Transpose", split, perm=perm)


def _attend(b: _B, q: str, k_t: str, v: str, scale: float, bias: str | None) -> str:
    """q [B, H, S, D] x k_t [B, H, D, T] * scale (+ bias) -> Softmax -> x v [B, H, T, Dv]:
    the context [B, H, S, Dv]."""
    scores = b.op("Mul", b.op("MatMul", q, k_t), b.f32(scale))
    if bias:
        scores = b.op("Add", scores, bias)
    return b.op("MatMul", b.op("Softmax", scores, axis=-1), v)


def _merge_heads(b: _B, ctx: str, hidden: int, output: str) -> None:
    merged = b.op("Transpose", ctx, perm=[0, 2, 1, 3])
    b.add("Reshape", [merged, b.i64([0, 0, hidden])], output=output)


def _causal(b: _B, s: str, t: str, past: str | None, masked: float, kept: float | str) -> str:
    """[S, T] float: `masked` where key t lies after query s (t > s + past), else `kept`."""
    rows = b.op("Reshape", b.positions(s), b.i64([-1, 1]))
    if past:
        rows = b.op("Add", rows, past)
    future = b.op("Greater", b.positions(t), rows)
    return b.where(future, masked, kept)


# ---- com.microsoft masks ----


def _ms_mask(
    b: _B,
    mask: str,
    form: str,
    q3: str,
    t: str,
    past: str | None,
    filter_value: float,
    causal: bool,
) -> str | None:
    """The additive mask onnxruntime's CPU attention builds from mask_index /
    key_padding_mask (attention_helper.h PrepareMask): 0 where a key is kept,
    mask_filter_value where masked, the float lowest where causality hides it.
    form: "" (no mask), "lengths" [B], "lengths_starts" [2B], "lengths_any" (B or 2B,
    known at run), "2d" [B, T], "3d" [B, S, T]; q3 is the query [B, S, hidden], t the
    key count. Returns [B|1, 1, S|1, T] or None."""
    pad = None
    if form in ("lengths", "lengths_starts", "lengths_any"):
        index = b.once(("int64", mask), lambda: b.op("Cast", mask, to=TensorProto.INT64))
        keys = b.positions(t)
        if form == "lengths":
            ends = b.once(("ends", mask), lambda: b.op("Reshape", index, b.i64([-1, 1])))
            keep = b.op("Less", keys, ends)
        else:
            batch = b.dim(q3, 0)
            if form == "lengths_any":  # starts read as 0 when the index has B values
                zeros = b.op("ConstantOfShape", batch, value=np.zeros(1, np.int64))
                index = b.op("Concat", index, zeros, axis=0)
            ends = b.op("Reshape", b.slice(index, b.i64([0]), batch), b.i64([-1, 1]))
            end = b.op("Add", batch, batch)
            starts = b.op("Reshape", b.slice(index, batch, end), b.i64([-1, 1]))
            keep = b.op("Less", keys, ends)
            keep = b.op("And", keep, b.op("Not", b.op("Less", keys, starts)))
        pad = b.op("Reshape", b.where(keep, 0.0, filter_value), b.i64([0, 1, 1, -1]))
    elif form in ("2d", "3d"):
        pad = b.once(("pad", mask, filter_value), lambda: _raw_mask(b, mask, form, filter_value))
    elif form:
        raise AssertionError(form)
    if not causal:
        return pad
    return _causal(b, b.dim(q3, 1), t, past, LOWEST, pad if pad else 0.0)


def _raw_mask(b: _B, mask: str, form: str, filter_value: float) -> str:
    """A 0 / 1 mask [B, T] or [B, S, T] -> 0 where > 0, else filter_value, [B, 1, S|1, T]."""
    zero = b.const(np.array(0, np.int32))
    keep = b.op("Greater", b.op("Cast", mask, to=TensorProto.INT32), zero)
    pad = b.where(keep, 0.0, filter_value)
    if form == "2d":  # [B, T] -> [B, 1, 1, T]
        return b.op("Reshape", pad, b.i64([0, 1, 1, -1]))
    return b.unsqueeze(pad, [1])  # [B, S, T] -> [B, 1, S, T]


def _mask_form(b: _B, node: Node, mask: str, batch_like: str, forms: dict[str, str]) -> str:
    """Which com.microsoft mask form `mask` is (see _ms_mask), from its shape at load."""
    if not mask:
        return ""
    if mask in forms:
        return forms[mask]
    shape = b.g.shape(mask)
    if shape is None:
        raise _fail(node, f"the rank of mask input '{mask}' is not known at load")
    rank = len(shape)
    if rank == 2:
        return "2d"
    if rank == 3:
        return "3d"
    if rank == 4:
        raise _fail(node, f"4-D mask input '{mask}' (Megatron) is not supported")
    if rank != 1:
        raise ModelError(f"{node.label}: mask input '{mask}' has rank {rank}, expected 1 to 3")
    n, batch = shape[0], (b.g.shape(batch_like) or [None])[0]
    if n is not None and n == batch:
        return "lengths"
    if isinstance(n, int) and isinstance(batch, int):
        if n == 2 * batch:
            return "lengths_starts"
        if n == 3 * batch + 2:
            raise _fail(node, f"mask input '{mask}' of 3 * batch + 2 values is not supported")
        raise ModelError(
            f"{node.label}: mask input '{mask}' has {n} values, expected batch ({batch}) "
            f"or 2 * batch"
        )
    return "lengths_any"


def _past_kv(b: _B, past: str, which: int) -> str:
    """past [2, B, H, P, D] -> [B, H, P, D] (0: key, 1: value)."""
    return b.op("Gather", past, b.i64(which), axis=0)


def _ms_attention_tail(
    b: _B,
    node: Node,
    q3: str,
    k3: str,
    v3: str,
    heads: int,
    qk_size: int,
    v_size: int,
    *,
    mask: str,
    mask_form: str,
    past_k: str | None,
    past_v: str | None,
    attention_bias: str,
    output: str,
) -> tuple[str, str, str]:
    """The attention of projected q3 [B, S, H*D], k3 / v3 [B, T, H*D] as onnxruntime's
    com.microsoft kernels compute it. Returns the total keys [B, H, T, D] (or "" without
    past), the same transposed and the total values."""
    scale = _fattr(node, "scale", 0.0) or 1.0 / math.sqrt(qk_size)
    q = _heads(b, q3, heads, qk_size, [0, 2, 1, 3])
    if past_k:
        k = b.op("Concat", past_k, _heads(b, k3, heads, qk_size, [0, 2, 1, 3]), axis=2)
        v = b.op("Concat", past_v, _heads(b, v3, heads, v_size, [0, 2, 1, 3]), axis=2)
        k_t = b.op("Transpose", k, perm=[0, 1, 3, 2])
        past_len = b.dim(past_k, 2)
    else:
        k_t = _heads(b, k3, heads, qk_size, [0, 2, 3, 1])
        v = _heads(b, v3, heads, v_size, [0, 2, 1, 3])
        k, past_len = "", None
    causal = bool(_iattr(node, "unidirectional", 0))
    bias = None
    if mask_form or causal:
        bias = _ms_mask(
            b,
            mask,
            mask_form,
            q3,
            b.dim(k_t, 3),
            past_len,
            _fattr(node, "mask_filter_value", -10000.0),
            causal,
        )
    if attention_bias:
        bias = b.op("Add", bias, attention_bias) if bias else attention_bias
    _merge_heads(b, _attend(b, q, k_t, v, scale, bias), heads * v_size, output)
    return k, k_t, v


def _present(b: _B, k: str, k_t: str) -> str:
    """The keys [B, H, T, D] for a present output (k_t transposed back without past)."""
    return k or b.op("Transpose", k_t, perm=[0, 1, 3, 2])


def _qkv_sizes(b: _B, node: Node, weights: str, heads: int) -> list[int]:
    sizes = node.attr("qkv_hidden_sizes", None)
    if sizes is not None:
        sizes = [int(s) for s in sizes]
        if len(sizes) != 3:
            raise ModelError(f"{node.label}: qkv_hidden_sizes must have 3 values, got {sizes}")
    width = _static_dim(b.g, weights, 1)
    if sizes is None:
        if width is None:
            raise _fail(node, f"the width of weights '{weights}' is not known at load")
        if width % 3:
            raise ModelError(f"{node.label}: weights width {width} is not divisible by 3")
        sizes = [width // 3] * 3
    if width is not None and sum(sizes) != width:
        raise ModelError(
            f"{node.label}: qkv_hidden_sizes {sizes} do not add up to the weights width {width}"
        )
    for s, what in zip(sizes, ("Q", "K", "V")):
        _head_size(node, s, heads, what)
    if sizes[0] != sizes[1]:
        raise ModelError(f"{node.label}: Q and K hidden sizes differ: {sizes[:2]}")
    return sizes


def _attention_common(
    b: _B,
    node: Node,
    parts: list[str],
    sizes: list[int],
    heads: int,
    forms,
    *,
    mask: str,
    past: str,
    attention_bias: str,
) -> None:
    """Past / present and the attention of com.microsoft Attention / QAttention, from the
    projected Q, K, V [B, S, hidden]."""
    _reject_attrs(node, do_rotary=0, past_present_share_buffer=0)
    q3, k3, v3 = parts
    form = _mask_form(b, node, mask, node.inputs[0], forms)
    past_k = _past_kv(b, past, 0) if past else None
    past_v = _past_kv(b, past, 1) if past else None
    k, k_t, v = _ms_attention_tail(
        b,
        node,
        q3,
        k3,
        v3,
        heads,
        sizes[0] // heads,
        sizes[2] // heads,
        mask=mask,
        mask_form=form,
        past_k=past_k,
        past_v=past_v,
        attention_bias=attention_bias,
        output=node.outputs[0],
    )
    present = node.outputs[1] if len(node.outputs) > 1 else ""
    if present:
        if sizes[0] != sizes[2]:
            raise ModelError(f"{node.label}: present needs equal K and V hidden sizes")
        keys = b.unsqueeze(_present(b, k, k_t), [0])
        b.add("Concat", [keys, b.unsqueeze(v, [0])], {"axis": 0}, output=present)


def _weight_parts(b: _B, w: str, ends: list[int]) -> list[str] | None:
    """The column blocks of a constant weight [K, N], or of DQ(constant int8) with per-
    tensor or per-column scales (each block its own DQ, so it stays an int8 weight)."""
    g = b.g
    value = g.constants.get(w)
    if value is not None:
        if value.ndim != 2:
            return None
        return [b.const(np.ascontiguousarray(p)) for p in np.split(value, ends, axis=1)]
    dq = g.producer.get(w)
    if dq is None or dq.op_type != "DequantizeLinear" or not b.constant_inputs(dq):
        return None
    data, scale = g.constants[dq.inputs[0]], g.constants[dq.inputs[1]]
    zero = g.constants[dq.inputs[2]] if _opt(dq, 2) else None
    if data.ndim != 2 or dq.attr("block_size", 0):
        return None
    per_column = scale.size > 1
    if per_column and (scale.ndim != 1 or dq.attr("axis", 1) % 2 != 1):
        return None
    parts = []
    for lo, hi in zip([0, *ends], [*ends, data.shape[1]]):
        cut = slice(lo, hi) if per_column else slice(None)
        s = b.const(scale[cut] if per_column else scale)
        z = "" if zero is None else b.const(zero[cut] if per_column else zero)
        parts.append(b.dq(b.const(np.ascontiguousarray(data[:, lo:hi])), s, z, axis=1))
    return parts


def _projections(b: _B, x: str, w: str, bias: str, sizes: list[int]) -> list[str]:
    """x @ w (+ bias) as Q, K, V: a MatMul per part on column blocks of a constant
    weight, as exporters write it (no Split of the product); else the packed MatMul and
    a Split."""
    ends = [int(e) for e in np.cumsum(sizes)[:-1]]
    weights = _weight_parts(b, w, ends)
    value = b.g.constants.get(bias) if bias else None
    if weights is None or (bias and value is None):
        qkv = b.op("MatMul", x, w)
        return b.split(b.op("Add", qkv, bias) if bias else qkv, sizes)
    parts = [b.op("MatMul", x, part) for part in weights]
    if bias:
        parts = [b.op("Add", p, b.const(c)) for p, c in zip(parts, np.split(value, ends))]
    return parts


def lower_attention(b: _B, node: Node, forms: dict[str, str]) -> None:
    """com.microsoft Attention: the QKV projections of one input, then attention."""
    heads = _num_heads(node)
    _reject_inputs(node, {6: "past_sequence_length"})
    x, w = node.inputs[0], node.inputs[1]
    sizes = _qkv_sizes(b, node, w, heads)
    parts = _projections(b, x, w, b.param(_opt(node, 2)), sizes)
    _attention_common(
        b,
        node,
        parts,
        sizes,
        heads,
        forms,
        mask=_opt(node, 3),
        past=_opt(node, 4),
        attention_bias=_opt(node, 5),
    )


def lower_qattention(b: _B, node: Node, forms: dict[str, str]) -> None:
    """com.microsoft QAttention: the int8 projection as onnxruntime computes it
    (int32 MatMulInteger, times input scale x weight scale, plus the float bias)."""
    heads = _num_heads(node)
    i = node.inputs
    if len(i) < 5 or not all(i[:5]):
        raise ModelError(f"{node.label}: needs input, weight, bias, input_scale and weight_scale")
    x, w, bias, x_scale, w_scale = i[:5]
    sizes = _qkv_sizes(b, node, w, heads)
    acc = b.op("MatMulInteger", x, w, _opt(node, 6), _opt(node, 7))
    scale = b.op("Mul", x_scale, w_scale)
    qkv = b.op("Add", b.op("Mul", b.op("Cast", acc, to=TensorProto.FLOAT), scale), bias)
    _attention_common(
        b,
        node,
        b.split(qkv, sizes),
        sizes,
        heads,
        forms,
        mask=_opt(node, 5),
        past=_opt(node, 8),
        attention_bias="",
    )


def _to_float(b: _B, node: Node, acc: str, a_scale: str, w_scale: str, bias: str) -> None:
    """The int32 acc -> Cast -> Mul(a_scale x w_scale) (-> Add bias) into the node's
    output, as quantize_dynamic writes it (pyrt fuses it into the int8 GEMM)."""
    y = [b.op("Cast", acc, to=TensorProto.FLOAT), b.op("Mul", a_scale, w_scale)]
    if bias:
        y = [b.op("Mul", *y), bias]
    b.add("Add" if bias else "Mul", y, output=node.outputs[0])


def lower_matmul_integer_to_float(b: _B, node: Node, forms: dict[str, str]) -> None:
    """com.microsoft MatMulIntegerToFloat (what onnxruntime's optimizer makes of
    MatMulInteger -> Cast -> Mul): (A - a_zero)(B - b_zero) x a_scale x b_scale + bias.
    Inputs: A, B, a_scale, b_scale, a_zero_point, b_zero_point, bias."""
    i = node.inputs
    if len(i) < 4 or not all(i[:4]):
        raise ModelError(f"{node.label}: needs A, B, a_scale and b_scale")
    acc = b.op("MatMulInteger", i[0], i[1], _opt(node, 4), _opt(node, 5))
    _to_float(b, node, acc, i[2], i[3], _opt(node, 6))


def lower_dynamic_quantize_matmul(b: _B, node: Node, forms: dict[str, str]) -> None:
    """com.microsoft DynamicQuantizeMatMul: DynamicQuantizeLinear(A), then as
    MatMulIntegerToFloat. Inputs: A, B, b_scale, b_zero_point, bias."""
    i = node.inputs
    if len(i) < 3 or not all(i[:3]):
        raise ModelError(f"{node.label}: needs A, B and b_scale")
    q = b.add("DynamicQuantizeLinear", [i[0]], {})
    scale, zero = f"{q}_scale", f"{q}_zero"
    b.nodes[-1].outputs = [q, scale, zero]
    acc = b.op("MatMulInteger", q, i[1], zero, _opt(node, 3))
    _to_float(b, node, acc, scale, i[2], _opt(node, 4))


def lower_fused_matmul(b: _B, node: Node, forms: dict[str, str]) -> None:
    """com.microsoft FusedMatMul (onnxruntime's MatMul with transposes and a scale fused):
    Transpose of the last two axes where transA / transB, MatMul, Mul by alpha."""
    for name in ("transBatchA", "transBatchB"):
        if _iattr(node, name, 0):
            raise _fail(node, f"attribute '{name}' is not supported")
    ins = []
    for i, name in ((0, "transA"), (1, "transB")):
        x = node.inputs[i]
        if _iattr(node, name, 0):
            shape = b.g.shape(x)
            if shape is None or len(shape) < 2:
                raise ModelError(f"{node.label}: '{name}' needs input {i} of known rank >= 2")
            perm = [*range(len(shape) - 2), len(shape) - 1, len(shape) - 2]
            x = b.op("Transpose", x, perm=perm)
        ins.append(x)
    alpha = node.attr("alpha", 1.0)
    if not isinstance(alpha, float):
        raise ModelError(f"{node.label}: attribute 'alpha' must be a float, got {alpha!r}")
    if alpha == 1.0:
        b.add("MatMul", ins, output=node.outputs[0])
    else:
        b.add("Mul", [b.op("MatMul", *ins), b.f32(alpha)], output=node.outputs[0])


def lower_multihead_attention(b: _B, node: Node, forms: dict[str, str]) -> None:
    """com.microsoft MultiHeadAttention: separate (or packed) projected Q, K, V."""
    heads = _num_heads(node)
    _reject_inputs(node, {8: "past_sequence_length", 9: "cache_indirection"})
    _reject_outputs(node, {3: "qk"})
    g, i = b.g, node.inputs
    query, key, value, bias = i[0], _opt(node, 1), _opt(node, 2), b.param(_opt(node, 3))
    q_rank = len(g.shape(query) or ())
    k_rank = len(g.shape(key) or ()) if key else 0
    if (q_rank == 5) != (not key):
        raise _fail(node, "query must be 3-D with key, or packed QKV [B, S, H, 3, D] without")
    if q_rank == 5 or k_rank == 5:
        packed, n = (query, 3) if q_rank == 5 else (key, 2)
        size = _static_dim(g, packed, 4)
        if size is None or _static_dim(g, packed, 2) != heads or _static_dim(g, packed, 3) != n:
            raise _fail(node, f"packed input '{packed}' must be [B, S, {heads}, {n}, D], D known")
        parts = [
            b.op("Reshape", b.op("Gather", packed, b.i64(j), axis=3), b.i64([0, 0, -1]))
            for j in range(n)
        ]
        q3, k3, v3 = parts if n == 3 else (query, *parts)
        sizes = [heads * size] * 3
    elif k_rank == 3 and value and len(g.shape(value) or ()) == 3:
        q3, k3, v3 = query, key, value
        widths = [_static_dim(g, t, 2) for t in (query, key, value)]
        if None in widths:
            raise _fail(node, "the hidden sizes of query, key and value must be known at load")
        sizes = widths
    else:
        raise _fail(
            node,
            "key and value must be 3-D [B, T, hidden] or packed KV "
            "(4-D BNSH key / value are not supported)",
        )
    for s, what in zip(sizes, ("query", "key", "value")):
        _head_size(node, s, heads, what)
    if sizes[0] != sizes[1]:
        raise ModelError(f"{node.label}: query and key hidden sizes differ: {sizes[:2]}")
    if bias:
        qb, kb, vb = b.split(bias, sizes, axis=0)
        q3, k3, v3 = b.op("Add", q3, qb), b.op("Add", k3, kb), b.op("Add", v3, vb)
    mask = _opt(node, 4)
    form = _mask_form(b, node, mask, query, forms)
    past_k, past_v = _opt(node, 6), _opt(node, 7)
    if bool(past_k) != bool(past_v):
        raise ModelError(f"{node.label}: past_key and past_value go together")
    k, k_t, v = _ms_attention_tail(
        b,
        node,
        q3,
        k3,
        v3,
        heads,
        sizes[0] // heads,
        sizes[2] // heads,
        mask=mask,
        mask_form=form,
        past_k=past_k or None,
        past_v=past_v or None,
        attention_bias=_opt(node, 5),
        output=node.outputs[0],
    )
    outs = node.outputs
    if len(outs) > 1 and outs[1]:
        b.copy_to(_present(b, k, k_t), outs[1])
    b.copy_to(v, outs[2] if len(outs) > 2 else "")


# ---- ONNX Attention (opset 23) ----


def lower_onnx_attention(b: _B, node: Node, forms: dict[str, str]) -> None:
    """ONNX Attention-23/24 as its reference: Q K^T * scale (softcap), + mask (bool:
    -inf where False) + causal (-inf after i + past), Softmax, rows with every key
    masked give 0, x V; GQA repeats each KV head."""
    _reject_attrs(node, left_window_size=-1, right_window_size=-1)
    _reject_inputs(node, {6: "nonpad_kv_seqlen"})
    precision = _iattr(node, "softmax_precision", 0)
    if precision not in (0, TensorProto.FLOAT):
        raise _fail(node, f"attribute softmax_precision={precision} is not supported (float only)")
    g, i = b.g, node.inputs
    q, k, v = i[0], i[1], i[2]
    ranks = [len(g.shape(t) or ()) for t in (q, k, v)]
    if ranks not in ([3, 3, 3], [4, 4, 4]):
        raise _fail(
            node, f"Q, K, V must all be 3-D or all 4-D with ranks known at load, got {ranks}"
        )
    if ranks[0] == 3:
        hq, hkv = _num_heads(node, "q_num_heads"), _num_heads(node, "kv_num_heads")
        widths = [_static_dim(g, t, 2) for t in (q, k, v)]
        if None in widths:
            raise _fail(node, "the hidden sizes of Q, K and V must be known at load")
        d = _head_size(node, widths[0], hq, "Q")
        dk, dv = _head_size(node, widths[1], hkv, "K"), _head_size(node, widths[2], hkv, "V")
        q4 = _heads(b, q, hq, d, [0, 2, 1, 3])
        k4 = _heads(b, k, hkv, dk, [0, 2, 1, 3])
        v4 = _heads(b, v, hkv, dv, [0, 2, 1, 3])
    else:
        hq, hkv = _static_dim(g, q, 1), _static_dim(g, k, 1)
        d, dk, dv = _static_dim(g, q, 3), _static_dim(g, k, 3), _static_dim(g, v, 3)
        if None in (hq, hkv, d, dv):
            raise _fail(node, "the head counts and sizes of Q, K, V must be known at load")
        q4, k4, v4 = q, k, v
    if dk is not None and dk != d:
        raise ModelError(f"{node.label}: Q head size {d} differs from K head size {dk}")
    if hq % hkv:
        raise ModelError(f"{node.label}: q heads {hq} are not a multiple of kv heads {hkv}")
    past_k, past_v = _opt(node, 4), _opt(node, 5)
    if bool(past_k) != bool(past_v):
        raise ModelError(f"{node.label}: past_key and past_value go together")
    if past_k:
        k4 = b.op("Concat", past_k, k4, axis=2)
        v4 = b.op("Concat", past_v, v4, axis=2)
    outs = node.outputs
    b.copy_to(k4, outs[1] if len(outs) > 1 else "")
    b.copy_to(v4, outs[2] if len(outs) > 2 else "")
    if hq != hkv:  # each KV head serves hq / hkv query heads in a row
        reps = b.i64([1, 1, hq // hkv, 1, 1])
        k4 = b.op("Reshape", b.op("Expand", b.unsqueeze(k4, [2]), reps), b.i64([0, hq, -1, d]))
        v4 = b.op("Reshape", b.op("Expand", b.unsqueeze(v4, [2]), reps), b.i64([0, hq, -1, dv]))
    scale = _fattr(node, "scale", 0.0) or 1.0 / math.sqrt(d)
    scores = b.op("Mul", b.op("MatMul", q4, b.op("Transpose", k4, perm=[0, 1, 3, 2])), b.f32(scale))
    raw = scores
    softcap = _fattr(node, "softcap", 0.0)
    if softcap > 0:
        scores = b.op("Mul", b.op("Tanh", b.op("Div", scores, b.f32(softcap))), b.f32(softcap))
    capped = scores
    mask, bias = _opt(node, 3), None
    if mask:
        if g.dtype(mask) == np.bool_:
            bias = b.where(mask, 0.0, -INF)
        elif g.dtype(mask) == np.float32:
            bias = mask
        else:
            raise _fail(node, f"attn_mask '{mask}' must be bool or float32, got {g.dtype(mask)}")
        t_len, m_len = _static_dim(g, k4, 2), _static_dim(g, mask, -1)
        if m_len is not None and t_len is not None and m_len < t_len:
            raise _fail(node, f"attn_mask '{mask}' shorter ({m_len}) than the keys ({t_len})")
    if _iattr(node, "is_causal", 0):
        past_len = b.dim(past_k, 2) if past_k else None
        causal = _causal(b, b.dim(q4, 2), b.dim(k4, 2), past_len, -INF, 0.0)
        bias = b.op("Add", bias, causal) if bias else causal
    if bias:
        scores = b.op("Add", scores, bias)
    probs = b.op("Softmax", scores, axis=-1)
    ctx = b.op("MatMul", probs, v4)
    qk_mode = _iattr(node, "qk_matmul_output_mode", 0) if len(outs) > 3 and outs[3] else None
    if mask:  # a query with every key masked gets 0, not NaN
        row_max = b.reduce("ReduceMax", bias, [-1], keepdims=1)
        none_left = b.op("Equal", row_max, b.f32(-INF))
        ctx = b.where(none_left, 0.0, ctx)
        if qk_mode == 3:
            probs = b.where(none_left, 0.0, probs)
    if ranks[0] == 3:
        _merge_heads(b, ctx, hq * dv, outs[0])
    else:
        b.copy_to(ctx, outs[0])
    if qk_mode is not None:
        chosen = {0: raw, 1: capped, 2: scores, 3: probs}.get(qk_mode)
        if chosen is None:
            raise ModelError(f"{node.label}: qk_matmul_output_mode {qk_mode} is not 0 to 3")
        b.copy_to(chosen, outs[3])


# ---- embeddings and normalization ----


def _layer_norm(b: _B, x: str, gamma: str, beta: str, epsilon: float, output: str) -> None:
    ins = [x, gamma, *([beta] if beta else [])]
    b.add("LayerNormalization", ins, {"axis": -1, "epsilon": epsilon}, output=output)


def _rms_norm(b: _B, x: str, scale: str, epsilon: float, axes: list[int], output: str) -> None:
    mean_sq = b.reduce("ReduceMean", b.op("Mul", x, x), axes, keepdims=1)
    rms = b.op("Sqrt", b.op("Add", mean_sq, b.f32(epsilon)))
    b.add("Mul", [b.op("Div", x, rms), scale], output=output)


def _skip_sum(b: _B, node: Node, bias: str) -> str:
    x, skip = node.inputs[0], node.inputs[1]
    bias = b.param(bias)
    if bias:  # the projection's bias first, then the residual: as exporters write it
        x = b.op("Add", x, bias)
    return b.op("Add", x, skip)


def lower_skip_layer_norm(b: _B, node: Node, forms: dict[str, str]) -> None:
    """SkipLayerNormalization / SkipSimplifiedLayerNormalization: LN(input + skip + bias)."""
    simplified = node.op_type == "SkipSimplifiedLayerNormalization"
    _reject_outputs(node, {1: "mean", 2: "inv_std_var"})
    gamma = b.param(node.inputs[2])
    beta = "" if simplified else b.param(_opt(node, 3))
    total = _skip_sum(b, node, _opt(node, 3 if simplified else 4))
    epsilon = _fattr(node, "epsilon", 1e-12)  # onnxruntime's default for both
    if simplified:
        _rms_norm(b, total, gamma, epsilon, [-1], node.outputs[0])
    else:
        _layer_norm(b, total, gamma, beta, epsilon, node.outputs[0])
    b.copy_to(total, node.outputs[3] if len(node.outputs) > 3 else "")


def lower_simplified_layer_norm(b: _B, node: Node, forms: dict[str, str]) -> None:
    """SimplifiedLayerNormalization (onnxruntime) and ONNX RMSNormalization-23."""
    _reject_outputs(node, {1: "inv_std_var"})
    x, scale = node.inputs[0], b.param(node.inputs[1])
    axis = _iattr(node, "axis", -1)
    if axis == -1:
        axes = [-1]
    else:
        shape = b.g.shape(x)
        if shape is None:
            raise _fail(node, f"axis {axis} needs the rank of '{x}' at load")
        rank = len(shape)
        if not -rank <= axis < rank:
            raise ModelError(f"{node.label}: axis {axis} is out of range for rank {rank}")
        axes = list(range(axis % rank, rank))
    _rms_norm(b, x, scale, _fattr(node, "epsilon", 1e-5), axes, node.outputs[0])


def lower_embed_layer_norm(b: _B, node: Node, forms: dict[str, str]) -> None:
    """EmbedLayerNormalization: LN(word[ids] + position[positions] + segment[segment_ids]);
    mask_index = per row the count of mask values equal to 1 (0 without a mask)."""
    ids, segments = node.inputs[0], _opt(node, 1)
    words, positions, segment_table = node.inputs[2], node.inputs[3], _opt(node, 4)
    gamma, beta = b.param(node.inputs[5]), b.param(node.inputs[6])
    mask, position_ids = _opt(node, 7), _opt(node, 8)
    if bool(segments) != bool(segment_table):
        raise ModelError(f"{node.label}: segment_ids and segment_embedding go together")
    if position_ids:
        pos = b.op("Gather", positions, position_ids, axis=0)
    else:
        pos = b.op("Gather", positions, b.positions(b.dim(ids, 1)), axis=0)
    total = b.op("Add", b.op("Gather", words, ids, axis=0), pos)
    if segments:
        total = b.op("Add", total, b.op("Gather", segment_table, segments, axis=0))
    outs = node.outputs
    _layer_norm(b, total, gamma, beta, _fattr(node, "epsilon", 1e-12), outs[0])
    shape = b.g.shape(ids)
    if shape is not None and len(shape) == 2:
        hidden = _static_dim(b.g, words, 1)
        b.g.info[outs[0]] = TensorInfo(outs[0], np.dtype(np.float32), (*shape, hidden))
    if len(outs) > 1 and outs[1]:
        if mask:
            ones = b.op(
                "Equal", b.op("Cast", mask, to=TensorProto.INT32), b.const(np.array(1, np.int32))
            )
            count = b.reduce("ReduceSum", b.op("Cast", ones, to=TensorProto.INT32), [1], 0)
            b.copy_to(count, outs[1])
        else:
            zeros = np.zeros(1, np.int32)
            b.add("ConstantOfShape", [b.dim(ids, 0)], {"value": zeros}, output=outs[1])
        forms[outs[1]] = "lengths"
        batch = shape[0] if shape else None
        b.g.info[outs[1]] = TensorInfo(outs[1], np.dtype(np.int32), (batch,))
    b.copy_to(total, outs[2] if len(outs) > 2 else "")


def lower_qembed_layer_norm(b: _B, node: Node, forms: dict[str, str]) -> None:
    """QEmbedLayerNormalization: EmbedLayerNormalization of the dequantized tables."""
    i = node.inputs
    if len(i) < 18:
        raise ModelError(
            f"{node.label}: needs 18 inputs (tables, scales, zero points), got {len(i)}"
        )
    tables = []
    for t in range(2, 7):  # word, position, segment, gamma, beta
        scale = i[t + 6] if t != 4 else _opt(node, 10)
        zero = i[t + 11] if t != 4 else _opt(node, 15)
        if t == 4 and not i[t]:
            tables.append("")
            continue
        if not scale:
            raise ModelError(f"{node.label}: input {t} ('{i[t]}') has no scale")
        tables.append(b.dq_const(i[t], scale, zero))
    view = Node(
        node.name,
        "EmbedLayerNormalization",
        MS_DOMAIN,
        [i[0], i[1], *tables, i[7]],
        node.outputs,
        node.attrs,
        node.opset,
    )
    lower_embed_layer_norm(b, view, forms)


# ---- GELU forms ----


def _with_bias(b: _B, node: Node) -> str:
    x, bias = node.inputs[0], b.param(_opt(node, 1))
    return b.op("Add", x, bias) if bias else x


def _gelu_erf(b: _B, x: str, output: str) -> None:
    """0.5 x (1 + erf(x / sqrt 2)), written as PyTorch exports it."""
    erf = b.op("Erf", b.op("Div", x, b.f32(math.sqrt(2.0))))
    b.add("Mul", [b.op("Mul", x, b.op("Add", erf, b.f32(1.0))), b.f32(0.5)], output=output)


def _gelu_tanh(b: _B, x: str, output: str) -> None:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as PyTorch's approximate='tanh'."""
    cube = b.op("Mul", b.op("Pow", x, b.f32(3.0)), b.f32(0.044715))
    inner = b.op("Mul", b.op("Add", x, cube), b.f32(math.sqrt(2.0 / math.pi)))
    one = b.op("Add", b.op("Tanh", inner), b.f32(1.0))
    b.add("Mul", [b.op("Mul", x, b.f32(0.5)), one], output=output)


def lower_gelu(b: _B, node: Node, forms: dict[str, str]) -> None:
    """Gelu / BiasGelu (Erf form), FastGelu (tanh form), QuickGelu (x sigmoid(alpha x))."""
    x = _with_bias(b, node)
    if node.op_type == "FastGelu":
        _gelu_tanh(b, x, node.outputs[0])
    elif node.op_type == "QuickGelu":
        alpha = _fattr(node, "alpha", 1.702)
        gate = b.op("Sigmoid", b.op("Mul", x, b.f32(alpha)))
        b.add("Mul", [x, gate], output=node.outputs[0])
    else:
        _gelu_erf(b, x, node.outputs[0])


# ---- rotary embeddings ----


def lower_rotary_embedding(b: _B, node: Node, forms: dict[str, str]) -> None:
    """RotaryEmbedding (ONNX 23 and com.microsoft): the first rotary_embedding_dim
    channels of each head rotated by the cos / sin of the token's position (halves, or
    even / odd channels when interleaved), the rest passed through."""
    ms = node.domain == MS_DOMAIN
    _reject_attrs(node, is_packed_batching=0, scale=1.0)
    g, x = b.g, node.inputs[0]
    if ms:
        position_ids, cos, sin = node.inputs[1], node.inputs[2], node.inputs[3]
    else:
        cos, sin, position_ids = node.inputs[1], node.inputs[2], _opt(node, 3)
    shape = g.shape(x)
    if shape is None or len(shape) not in (3, 4):
        raise _fail(node, f"input '{x}' must be 3-D or 4-D with its rank known at load")
    heads = _iattr(node, "num_heads", 0)
    if len(shape) == 4:
        size = _static_dim(g, x, 3)
    elif heads:
        hidden = _static_dim(g, x, 2)
        size = None if hidden is None else _head_size(node, hidden, heads, "input")
    else:
        half = _static_dim(g, cos, -1) if ms else None
        size = None if half is None else 2 * half
    if size is None:
        raise _fail(node, "the head size must be known at load (num_heads, or the shapes)")
    rot = _iattr(node, "rotary_embedding_dim", 0) or size
    if rot % 2 or rot > size:
        raise ModelError(f"{node.label}: rotary_embedding_dim {rot} for heads of {size}")
    if len(shape) == 3:  # [B, S, N * D] -> [B, S, N, D], the cos / sin per [B, S, 1, rot/2]
        x4, head_axis = b.op("Reshape", x, b.i64([0, 0, -1, size])), 2
    else:  # [B, N, S, D], the cos / sin per [B, 1, S, rot/2]
        x4, head_axis = x, 1
    if position_ids:
        ids = b.op("Cast", position_ids, to=TensorProto.INT64)
        if ms and len(g.shape(position_ids) or (0, 0)) == 1:  # an offset: offset + [0, S)
            seq = b.dim(x4, 1 if head_axis == 2 else 2)
            ids = b.unsqueeze(b.op("Add", b.positions(seq), ids), [0])
        cos, sin = b.op("Gather", cos, ids, axis=0), b.op("Gather", sin, ids, axis=0)
    cos, sin = b.unsqueeze(cos, [head_axis]), b.unsqueeze(sin, [head_axis])
    if node.attr("interleaved", 0):
        first = b.op("Slice", x4, b.i64([0]), b.i64([rot]), b.i64([-1]), b.i64([2]))
        second = b.op("Slice", x4, b.i64([1]), b.i64([rot]), b.i64([-1]), b.i64([2]))
    else:
        first = b.op("Slice", x4, b.i64([0]), b.i64([rot // 2]), b.i64([-1]))
        second = b.op("Slice", x4, b.i64([rot // 2]), b.i64([rot]), b.i64([-1]))
    real = b.op("Sub", b.op("Mul", cos, first), b.op("Mul", sin, second))
    imag = b.op("Add", b.op("Mul", sin, first), b.op("Mul", cos, second))
    if node.attr("interleaved", 0):
        pairs = b.op("Concat", b.unsqueeze(real, [-1]), b.unsqueeze(imag, [-1]), axis=-1)
        rotated = b.op("Reshape", pairs, b.i64([0, 0, 0, rot]))
    else:
        rotated = b.op("Concat", real, imag, axis=-1)
    if rot < size:
        rest = b.op("Slice", x4, b.i64([rot]), b.i64([size]), b.i64([-1]))
        rotated = b.op("Concat", rotated, rest, axis=-1)
    if len(shape) == 3:
        b.add("Reshape", [rotated, b.i64([0, 0, -1])], output=node.outputs[0])
    else:
        b.copy_to(rotated, node.outputs[0])


# ---- the pass ----

MS_OPS = {
    "Attention": lower_attention,
    "QAttention": lower_qattention,
    "MatMulIntegerToFloat": lower_matmul_integer_to_float,
    "DynamicQuantizeMatMul": lower_dynamic_quantize_matmul,
    "FusedMatMul": lower_fused_matmul,
    "MultiHeadAttention": lower_multihead_attention,
    "SkipLayerNormalization": lower_skip_layer_norm,
    "SkipSimplifiedLayerNormalization": lower_skip_layer_norm,
    "EmbedLayerNormalization": lower_embed_layer_norm,
    "QEmbedLayerNormalization": lower_qembed_layer_norm,
    "BiasGelu": lower_gelu,
    "FastGelu": lower_gelu,
    "Gelu": lower_gelu,
    "QuickGelu": lower_gelu,
    "RotaryEmbedding": lower_rotary_embedding,
}
ONNX_OPS = {
    "Attention": lower_onnx_attention,
    "RMSNormalization": lower_simplified_layer_norm,
    "RotaryEmbedding": lower_rotary_embedding,
    "SimplifiedLayerNormalization": lower_simplified_layer_norm,  # onnxruntime's, in ""
}


def lower_contrib(g: Graph) -> bool:
    """Rewrites every op above in place; True when anything was lowered. A node that
    needs shapes the first inference could not tell (behind other contrib ops) waits for
    the shapes of the lowered graph; what fails with every shape known raises."""
    forms: dict[str, str] = {}
    shared: dict[tuple, str] = {}
    lowered = False
    while True:
        nodes, waiting, progress = [], None, False
        for node in g.nodes:
            table = MS_OPS if node.domain == MS_DOMAIN else ONNX_OPS if node.domain == "" else {}
            fn = table.get(node.op_type)
            if fn is None:
                nodes.append(node)
                continue
            b = _B(g, node, shared)
            try:
                fn(b, node, forms)
            except ModelError as exc:  # UnsupportedOpError too
                waiting = waiting or exc
                nodes.append(node)
                continue
            nodes.extend(b.nodes)
            shared.update(b.made)
            progress = lowered = True
        if progress:  # a node that waited may read what a later one shares: sort again
            g.nodes = toposort(nodes, set(g.constants) | {t.name for t in g.inputs})
            g.reindex()
            infer_again(g)
        if waiting is None:
            return lowered
        if not progress:
            raise waiting


def infer_again(g: Graph) -> None:
    """onnx's shape inference over the lowered graph (the matchers need the ranks of the
    new tensors); what it cannot tell keeps what was known."""
    if any(SUBGRAPH in n.attrs for n in g.nodes):
        return
    proto = helper.make_model(
        helper.make_graph(
            [_node_proto(n, g.opsets.get("", 1)) for n in g.nodes],
            "lowered",
            [_value_info(t) for t in g.inputs]
            + [
                helper.make_tensor_value_info(
                    name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape
                )
                for name, v in g.constants.items()
                if v.size > 4096
            ],
            [_value_info(t) for t in g.outputs],
            [numpy_helper.from_array(v, name) for name, v in g.constants.items() if v.size <= 4096],
        ),
        opset_imports=[helper.make_opsetid(d, v) for d, v in g.opsets.items()],
    )
    try:
        typed = infer_shapes(proto)
    except ModelError:  # inference crashed on it: the shapes stay a help, not a need
        typed = None
    if typed is None:
        return
    for vi in (*typed.value_info, *typed.output):
        info, old = _tensor_info(vi), g.info.get(vi.name)
        if old is None or _known(info) > _known(old):
            g.info[vi.name] = info


def _known(t: TensorInfo) -> tuple[bool, bool, int]:
    """How much a TensorInfo tells: dtype, rank, static dimensions."""
    static = sum(isinstance(d, int) for d in t.shape) if t.shape is not None else 0
    return t.dtype is not None, t.shape is not None, static


def _value_info(t: TensorInfo):
    elem = helper.np_dtype_to_tensor_dtype(t.dtype) if t.dtype is not None else 0
    return helper.make_tensor_value_info(t.name, elem, t.shape)


def _node_proto(n: Node, opset: int):
    if n.op_type == "LayerNormalization" and n.domain == "" and opset < 17:
        # onnxruntime's LayerNormalization (its optimizer writes it at any opset) is
        # unknown to onnx's inference before 17: its output has the shape of its input
        return helper.make_node("Identity", n.inputs[:1], n.outputs[:1], name=n.name)
    attrs = {}
    for k, v in n.attrs.items():
        if isinstance(v, np.ndarray):
            v = numpy_helper.from_array(v)
        if isinstance(v, list) and not v:
            continue
        attrs[k] = v
    return helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, domain=n.domain, **attrs)
