"""The transformer ops of onnxruntime's tools (com.microsoft) and ONNX opset 23, lowered by
pyrt/lower_contrib.py, against onnxruntime's own CPU kernels; and a MiniLM-shaped encoder
through onnxruntime's transformer optimizer and quantizers."""

from __future__ import annotations

import math
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import zoo_transformers as zt

F, I32, I64, U8, I8, BOOL = (
    TensorProto.FLOAT,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.UINT8,
    TensorProto.INT8,
    TensorProto.BOOL,
)
MS = "com.microsoft"


def _model(nodes, feeds, outputs, inits=None, opset=17, shapes=None) -> onnx.ModelProto:
    """A model of `nodes` whose inputs are the feeds (types from the arrays, shapes too
    unless `shapes` declares them)."""
    shapes = shapes or {}
    inputs = [
        helper.make_tensor_value_info(
            k, helper.np_dtype_to_tensor_dtype(v.dtype), shapes.get(k, v.shape)
        )
        for k, v in feeds.items()
    ]
    graph = helper.make_graph(
        nodes,
        "contrib",
        inputs,
        [helper.make_tensor_value_info(o, F, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)]
    )
    model.ir_version = 9
    return model


def _ort(model: onnx.ModelProto, feeds) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def _check(model, feeds, atol=2e-5, rtol=1e-4):
    """pyrt (interpreted, then replayed) against onnxruntime, every output."""
    want = _ort(model, feeds)
    session = pyrt.Session(model)
    for got in (session.run(feeds), session.run(feeds)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, atol=atol, rtol=rtol)
    return session


def _rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ---- com.microsoft Attention ----


def _mask(kind: str, rng, b: int, s: int, t: int) -> np.ndarray | None:
    if kind == "none":
        return None
    if kind == "lengths":  # right padding
        return rng.integers(1, t + 1, b).astype(np.int32)
    if kind == "lengths_starts":  # left padding: ends, then starts
        return np.concatenate([np.full(b, t), rng.integers(0, t, b)]).astype(np.int32)
    if kind == "2d":
        m = (rng.random((b, t)) > 0.3).astype(np.int32)
        m[:, 0] = 1
        return m
    m = (rng.random((b, s, t)) > 0.3).astype(np.int32)  # 3d
    m[..., 0] = 1
    return m


SHAPES = [(1, 7, 12, 3), (2, 5, 16, 4), (3, 4, 24, 2)]  # batch, seq, hidden, heads


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mask", ["none", "lengths", "lengths_starts", "2d", "3d"])
@pytest.mark.parametrize("unidirectional", [0, 1])
def test_attention_masks(shape, mask, unidirectional):
    b, s, hidden, heads = shape
    rng = np.random.default_rng(hash((shape, mask, unidirectional)) % 2**32)
    inits = {"w": _rand(rng, hidden, 3 * hidden, scale=0.4), "bias": _rand(rng, 3 * hidden)}
    feeds = {"x": _rand(rng, b, s, hidden)}
    m = _mask(mask, rng, b, s, s)
    ins = ["x", "w", "bias"]
    if m is not None:
        feeds["mask"] = m
        ins.append("mask")
    node = helper.make_node(
        "Attention", ins, ["y"], domain=MS, num_heads=heads, unidirectional=unidirectional
    )
    session = _check(_model([node], feeds, ["y"], inits), feeds)
    ops = [(s.node.op_type, s.kind) for s in session._steps]  # the encoder matchers' kernels
    fused = ops.count(("Attention", "fp32")) == 1  # Q·Kᵀ -> Softmax -> P·V in one kernel
    unfused = ops.count(("BatchMatMul", "fp32")) == 2 and ops.count(("Softmax", "fp32")) == 1
    assert fused or unfused
    assert ops.count(("MatMul", "fp32")) == 3  # Q, K, V projections, weights split at load


@pytest.mark.parametrize("starts", [False, True])
@pytest.mark.parametrize("unidirectional", [0, 1])
def test_attention_lengths_of_symbolic_size(starts, unidirectional):
    """A 1-D mask_index whose size is a symbol unrelated to the batch: lengths, or lengths
    then starts, told apart at run time; the causal mask of symbolic lengths."""
    rng = np.random.default_rng(21)
    b, s, hidden, heads = 2, 6, 8, 2
    inits = {"w": _rand(rng, hidden, 3 * hidden, scale=0.4), "bias": _rand(rng, 3 * hidden)}
    mask = [5, 3, 1, 2] if starts else [4, 6]
    feeds = {"x": _rand(rng, b, s, hidden), "mask": np.array(mask, np.int32)}
    node = helper.make_node(
        "Attention",
        ["x", "w", "bias", "mask"],
        ["y"],
        domain=MS,
        num_heads=heads,
        unidirectional=unidirectional,
    )
    shapes = {"x": ["batch", "seq", hidden], "mask": ["n"]}
    _check(_model([node], feeds, ["y"], inits, shapes=shapes), feeds)


def test_attention_layers_share_a_mask():
    """Layers reading one mask: what depends on the mask alone is computed once, what
    depends on the layer (filter value, causality, key count) per layer."""
    rng = np.random.default_rng(24)
    b, s, hidden, heads = 2, 5, 8, 2
    inits = {"w": _rand(rng, hidden, 3 * hidden, scale=0.4), "bias": _rand(rng, 3 * hidden)}
    feeds = {"x": _rand(rng, b, s, hidden), "mask": _mask("2d", rng, b, s, s)}
    feeds["lengths"] = np.array([2, 5], np.int32)
    layers = [("mask", {}), ("mask", {"mask_filter_value": -50.0}), ("mask", {"unidirectional": 1})]
    layers += [("lengths", {}), ("lengths", {"unidirectional": 1})]
    nodes, x = [], "x"
    for i, (mask, attrs) in enumerate(layers):
        nodes.append(
            helper.make_node(
                "Attention", [x, "w", "bias", mask], [f"y{i}"], domain=MS, num_heads=heads, **attrs
            )
        )
        x = f"y{i}"
    _check(_model(nodes, feeds, [x], inits), feeds)


def test_attention_attributes_bias_and_past():
    """qkv_hidden_sizes (V wider), scale, mask_filter_value, attention_bias, no bias input."""
    rng = np.random.default_rng(1)
    b, s, hin, heads = 2, 6, 10, 2
    inits = {"w": _rand(rng, hin, 8 + 8 + 12, scale=0.5)}
    feeds = {
        "x": _rand(rng, b, s, hin),
        "mask": _mask("2d", rng, b, s, s),
        "ab": _rand(rng, 1, heads, s, s),
    }
    node = helper.make_node(
        "Attention",
        ["x", "w", "", "mask", "", "ab"],
        ["y"],
        domain=MS,
        num_heads=heads,
        qkv_hidden_sizes=[8, 8, 12],
        scale=0.3,
        mask_filter_value=-1000.0,
    )
    _check(_model([node], feeds, ["y"], inits), feeds)


@pytest.mark.parametrize("unidirectional", [0, 1])
def test_attention_past_present(unidirectional):
    rng = np.random.default_rng(2)
    b, s, past_len, hidden, heads = 2, 3, 4, 12, 3
    inits = {"w": _rand(rng, hidden, 3 * hidden, scale=0.4), "bias": _rand(rng, 3 * hidden)}
    feeds = {
        "x": _rand(rng, b, s, hidden),
        "mask": _mask("2d", rng, b, s, s + past_len),
        "past": _rand(rng, 2, b, heads, past_len, hidden // heads),
    }
    node = helper.make_node(
        "Attention",
        ["x", "w", "bias", "mask", "past"],
        ["y", "present"],
        domain=MS,
        num_heads=heads,
        unidirectional=unidirectional,
    )
    _check(_model([node], feeds, ["y", "present"], inits), feeds)


@pytest.mark.parametrize("per_column", [False, True])
def test_attention_qdq_weights(per_column):
    """QDQ around Attention (quantize_static with Attention in op_types_to_quantize): the
    int8 weights cut per Q, K, V stay int8, each projection one int8 GEMM."""
    rng = np.random.default_rng(25)
    b, s, hidden, heads = 2, 5, 16, 4
    n = 3 * hidden
    w_scale = rng.uniform(0.002, 0.01, n) if per_column else np.array(0.006)
    inits = {
        "w_q": rng.integers(-127, 128, (hidden, n)).astype(np.int8),
        "w_scale": w_scale.astype(np.float32),
        "w_zero": np.zeros(w_scale.shape, np.int8),
        "x_scale": np.float32(0.02),
        "x_zero": np.uint8(128),
        "bias": _rand(rng, n, scale=0.1),
    }
    feeds = {"x": _rand(rng, b, s, hidden), "mask": _mask("2d", rng, b, s, s)}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], axis=1),
        helper.make_node(
            "Attention", ["xd", "w", "bias", "mask"], ["y"], domain=MS, num_heads=heads
        ),
    ]
    # the float bias joins the int32 accumulator (rounded to its step, 1.2e-4 here)
    session = _check(_model(nodes, feeds, ["y"], inits), feeds, atol=5e-4, rtol=1e-3)
    assert [s.node.op_type for s in session._steps].count("QMatMul") == 3


# ---- QAttention ----


@pytest.mark.parametrize("per_column", [False, True])
@pytest.mark.parametrize("mask", ["none", "lengths", "2d"])
def test_qattention(per_column, mask):
    rng = np.random.default_rng(3)
    b, s, hidden, heads = 2, 5, 16, 4
    n = 3 * hidden
    w_scale = rng.uniform(0.002, 0.01, n).astype(np.float32) if per_column else np.float32(0.006)
    w_zero = rng.integers(-3, 4, n).astype(np.int8) if per_column else np.int8(2)
    inits = {
        "w": rng.integers(-127, 128, (hidden, n)).astype(np.int8),
        "bias": _rand(rng, n, scale=0.1),
        "x_scale": np.float32(0.03),
        "w_scale": np.asarray(w_scale),
        "x_zero": np.uint8(120),
        "w_zero": np.asarray(w_zero),
    }
    feeds = {"x": rng.integers(0, 256, (b, s, hidden)).astype(np.uint8)}
    m = _mask(mask, rng, b, s, s)
    if m is not None:
        feeds["mask"] = m
    node = helper.make_node(
        "QAttention",
        [
            "x",
            "w",
            "bias",
            "x_scale",
            "w_scale",
            "mask" if m is not None else "",
            "x_zero",
            "w_zero",
        ],
        ["y"],
        domain=MS,
        num_heads=heads,
    )
    _check(_model([node], feeds, ["y"], inits), feeds, atol=1e-4)


# ---- MultiHeadAttention ----


@pytest.mark.parametrize("mask", ["none", "lengths", "2d", "3d"])
@pytest.mark.parametrize("kv_len", [5, 7])
def test_multihead_attention(mask, kv_len):
    """Separate projected Q, K, V (self and cross lengths), the projection bias, masks
    and attention_bias."""
    rng = np.random.default_rng(4)
    b, s, hidden, heads = 2, 5, 12, 3
    feeds = {
        "q": _rand(rng, b, s, hidden),
        "k": _rand(rng, b, kv_len, hidden),
        "v": _rand(rng, b, kv_len, hidden),
        "ab": _rand(rng, b, 1, s, kv_len),
    }
    m = _mask(mask, rng, b, s, kv_len)
    if m is not None:
        feeds["mask"] = m
    ins = ["q", "k", "v", "bias", "mask" if m is not None else "", "ab"]
    node = helper.make_node("MultiHeadAttention", ins, ["y"], domain=MS, num_heads=heads)
    _check(_model([node], feeds, ["y"], {"bias": _rand(rng, 3 * hidden)}), feeds)


@pytest.mark.parametrize("packing", ["qkv", "kv"])
def test_multihead_attention_packed(packing):
    """Packed QKV [B, S, N, 3, H] / KV [B, T, N, 2, H] (onnxruntime's CPU kernel has no
    packed QKV): against onnxruntime on the same tensors unpacked."""
    rng = np.random.default_rng(5)
    b, s, t, heads, d = 2, 4, 6, 2, 6
    q = _rand(rng, b, s, heads * d)
    kv = _rand(rng, b, t, heads, 2, d)
    if packing == "qkv":
        qkv = _rand(rng, b, s, heads, 3, d)
        feeds, ins = {"q": qkv}, ["q"]
        q, kv = qkv[:, :, :, 0].reshape(b, s, -1), qkv[:, :, :, 1:]
    else:
        feeds, ins = {"q": q, "kv": kv}, ["q", "kv"]
    node = helper.make_node("MultiHeadAttention", ins, ["y"], domain=MS, num_heads=heads)
    got = pyrt.run(_model([node], feeds, ["y"]), feeds)[0]
    unpacked = {"q": q, "k": kv[:, :, :, 0].reshape(b, -1, heads * d)}
    unpacked["v"] = kv[:, :, :, 1].reshape(b, -1, heads * d)
    node = helper.make_node(
        "MultiHeadAttention", ["q", "k", "v"], ["y"], domain=MS, num_heads=heads
    )
    want = _ort(_model([node], unpacked, ["y"]), unpacked)[0]
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("unidirectional", [0, 1])
@pytest.mark.parametrize("mask", ["none", "lengths", "2d"])
def test_multihead_attention_past_present(unidirectional, mask):
    """past_key / past_value -> present; masks over past + new keys; causality offset by
    the past length."""
    rng = np.random.default_rng(6)
    b, s, heads, d, past_len = 2, 3, 2, 4, 5
    feeds = {
        "q": _rand(rng, b, s, heads * d),
        "k": _rand(rng, b, s, heads * d),
        "v": _rand(rng, b, s, heads * d),
        "pk": _rand(rng, b, heads, past_len, d),
        "pv": _rand(rng, b, heads, past_len, d),
    }
    ins = ["q", "k", "v", "", "", "", "pk", "pv"]
    m = _mask(mask, rng, b, s, s + past_len)
    if m is not None:
        feeds["mask"], ins[4] = m, "mask"
    outs = ["y", "present_k", "present_v"]
    node = helper.make_node(
        "MultiHeadAttention", ins, outs, domain=MS, num_heads=heads, unidirectional=unidirectional
    )
    _check(_model([node], feeds, outs), feeds)


# ---- ONNX Attention (opset 23) ----


@pytest.mark.parametrize(
    "case",
    ["4d", "3d", "gqa", "causal", "bool_mask", "float_mask", "softcap", "past", "masked_row"],
)
def test_onnx_attention(case):
    rng = np.random.default_rng(7)
    b, hq, hkv, s, t, d = 2, 4, 4, 3, 5, 8
    if case == "gqa":
        hkv = 2
    attrs = {}
    feeds = {
        "q": _rand(rng, b, hq, s, d),
        "k": _rand(rng, b, hkv, t, d),
        "v": _rand(rng, b, hkv, t, d),
    }
    ins = ["q", "k", "v"]
    outs = ["y"]
    if case == "3d":
        feeds = {k: v.transpose(0, 2, 1, 3).reshape(b, v.shape[2], -1) for k, v in feeds.items()}
        attrs.update(q_num_heads=hq, kv_num_heads=hkv)
    if case == "causal":
        attrs.update(is_causal=1, scale=0.2)
    if case in ("bool_mask", "masked_row"):
        mask = rng.random((b, 1, s, t)) > 0.4
        mask[..., 0] = True
        if case == "masked_row":
            mask[1, 0, 1, :] = False  # every key of one query masked: a zero row
        feeds["mask"] = mask
        ins.append("mask")
    if case == "float_mask":
        feeds["mask"] = _rand(rng, s, t)
        ins.append("mask")
    if case == "softcap":
        attrs.update(softcap=2.0)
    if case == "past":
        feeds["pk"] = _rand(rng, b, hkv, 2, d)
        feeds["pv"] = _rand(rng, b, hkv, 2, d)
        ins += ["", "pk", "pv"]
        outs += ["present_k", "present_v"]
        attrs.update(is_causal=1)
    node = helper.make_node("Attention", ins, outs, **attrs)
    _check(_model([node], feeds, outs, opset=23), feeds)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_onnx_attention_qk_output(mode):
    rng = np.random.default_rng(8)
    feeds = {
        "q": _rand(rng, 1, 2, 3, 4),
        "k": _rand(rng, 1, 2, 3, 4),
        "v": _rand(rng, 1, 2, 3, 4),
        "mask": _rand(rng, 3, 3),
    }
    node = helper.make_node(
        "Attention",
        ["q", "k", "v", "mask"],
        ["y", "", "", "qk"],
        softcap=3.0,
        qk_matmul_output_mode=mode,
    )
    _check(_model([node], feeds, ["y", "qk"], opset=23), feeds)


# ---- normalization, embeddings, GELU ----


@pytest.mark.parametrize("op", ["SkipLayerNormalization", "SkipSimplifiedLayerNormalization"])
@pytest.mark.parametrize("variant", ["full", "no_bias", "skip_2d"])
def test_skip_layer_norm(op, variant):
    rng = np.random.default_rng(9)
    b, s, h = 2, 5, 32
    feeds = {
        "x": _rand(rng, b, s, h),
        "skip": _rand(rng, *((s, h) if variant == "skip_2d" else (b, s, h))),
    }
    inits = {"gamma": _rand(rng, h), "beta": _rand(rng, h), "bias": _rand(rng, h)}
    if op == "SkipLayerNormalization":
        ins = ["x", "skip", "gamma", "beta", "" if variant == "no_bias" else "bias"]
    else:
        ins = ["x", "skip", "gamma", "" if variant == "no_bias" else "bias"]
    outs = ["y", "", "", "sum"]
    node = helper.make_node(op, ins, outs, domain=MS, epsilon=1e-5)
    session = _check(_model([node], feeds, ["y", "sum"], inits), feeds)
    if op == "SkipLayerNormalization":  # bias, residual and LN: one step (the sum too)
        assert [s.node.op_type for s in session._steps][0] == "LayerNorm"
        assert len(session._steps) == 2  # and the Identity naming the sum output


@pytest.mark.parametrize("op", ["SimplifiedLayerNormalization", "RMSNormalization"])
def test_rms_norm(op):
    rng = np.random.default_rng(10)
    feeds = {"x": _rand(rng, 2, 3, 16)}
    node = helper.make_node(op, ["x", "scale"], ["y"], epsilon=1e-6, axis=-1)
    _check(_model([node], feeds, ["y"], {"scale": _rand(rng, 16)}, opset=23), feeds)


@pytest.mark.parametrize(
    "op,ins,domain",
    [
        ("SkipLayerNormalization", ["x", "x", "gamma", "beta"], MS),
        ("SkipSimplifiedLayerNormalization", ["x", "x", "gamma"], MS),
        ("SimplifiedLayerNormalization", ["x", "gamma"], ""),
        ("EmbedLayerNormalization", ["ids", "", "word", "pos", "", "gamma", "beta"], MS),
    ],
)
def test_default_epsilon(op, ins, domain):
    """Inputs of tiny variance, where the default epsilon decides the result."""
    rng = np.random.default_rng(23)
    h = 16
    inits = {
        "gamma": _rand(rng, h),
        "beta": _rand(rng, h),
        "word": _rand(rng, 10, h, scale=1e-3),
        "pos": _rand(rng, 5, h, scale=1e-3),
    }
    if op == "EmbedLayerNormalization":
        feeds, outs = {"ids": rng.integers(0, 10, (2, 3)).astype(np.int32)}, ["y", "index"]
    else:
        feeds, outs = {"x": _rand(rng, 2, 3, h, scale=1e-3)}, ["y"]
    inits = {k: v for k, v in inits.items() if k in ins}
    node = helper.make_node(op, ins, outs, domain=domain)
    _check(_model([node], feeds, ["y"], inits), feeds)


@pytest.mark.parametrize("variant", ["full", "no_segment", "position_ids", "no_mask"])
def test_embed_layer_norm(variant):
    rng = np.random.default_rng(11)
    b, s, h, vocab = 3, 6, 16, 50
    mask = np.ones((b, s), np.int32)
    mask[1, 4:] = 0
    mask[2, 2] = 0  # a hole: onnxruntime counts the ones
    feeds = {"ids": rng.integers(0, vocab, (b, s)).astype(np.int32)}
    inits = {
        "word": _rand(rng, vocab, h),
        "pos": _rand(rng, 16, h),
        "seg": _rand(rng, 2, h),
        "gamma": _rand(rng, h),
        "beta": _rand(rng, h),
    }
    ins = ["ids", "segments", "word", "pos", "seg", "gamma", "beta", "mask"]
    if variant != "no_segment":
        feeds["segments"] = rng.integers(0, 2, (b, s)).astype(np.int32)
    else:
        ins[1] = ins[4] = ""
    if variant != "no_mask":
        feeds["mask"] = mask
    else:
        ins[7] = ""
    if variant == "position_ids":
        feeds["position_ids"] = rng.integers(0, 16, (1, s)).astype(np.int32)
        ins.append("position_ids")
    node = helper.make_node(
        "EmbedLayerNormalization", ins, ["y", "mask_index", "sum"], domain=MS, epsilon=1e-12
    )
    model = _model([node], feeds, ["y", "mask_index", "sum"], inits)
    model.graph.output[1].type.tensor_type.elem_type = I32
    _check(model, feeds)


@pytest.mark.parametrize(
    "op,bias,attrs",
    [
        ("BiasGelu", True, {}),
        ("FastGelu", True, {}),
        ("FastGelu", False, {}),
        ("Gelu", False, {}),
        ("QuickGelu", False, {}),
        ("QuickGelu", False, {"alpha": 1.5}),
    ],
)
def test_gelu_forms(op, bias, attrs):
    rng = np.random.default_rng(12)
    feeds = {"x": _rand(rng, 2, 4, 24, scale=2.0)}
    node = helper.make_node(op, ["x", "bias"] if bias else ["x"], ["y"], domain=MS, **attrs)
    session = _check(_model([node], feeds, ["y"], {"bias": _rand(rng, 24)}), feeds)
    if op != "QuickGelu":  # bias and GELU: one fused step
        assert [(s.node.op_type, s.kind) for s in session._steps] == [("BiasAct", "fp32")]


@pytest.mark.parametrize("opset", [11, 12])
def test_older_opsets(opset):
    """Models of opset 11 / 12 (Split, Unsqueeze, ReduceSum take attributes there)."""
    rng = np.random.default_rng(18)
    b, s, hidden, heads = 2, 5, 16, 4
    inits = {
        "w": _rand(rng, hidden, 3 * hidden, scale=0.4),
        "bias": _rand(rng, 3 * hidden),
        "word": _rand(rng, 30, hidden),
        "pos": _rand(rng, 8, hidden),
        "gamma": _rand(rng, hidden),
        "beta": _rand(rng, hidden),
    }
    feeds = {
        "ids": rng.integers(0, 30, (b, s)).astype(np.int32),
        "mask": _mask("2d", rng, b, s, s),
        "starts": _mask("lengths_starts", rng, b, s, s),
    }
    nodes = [
        helper.make_node(
            "EmbedLayerNormalization",
            ["ids", "", "word", "pos", "", "gamma", "beta", "mask"],
            ["e", "index"],
            domain=MS,
        ),
        helper.make_node(
            "Attention",
            ["e", "w", "bias", "index"],
            ["a"],
            domain=MS,
            num_heads=heads,
            unidirectional=1,
        ),
        helper.make_node(
            "Attention", ["a", "w", "bias", "starts"], ["y"], domain=MS, num_heads=heads
        ),
        helper.make_node(
            "MultiHeadAttention", ["y", "a", "e", "bias", "mask"], ["z"], domain=MS, num_heads=heads
        ),
        helper.make_node("SimplifiedLayerNormalization", ["z", "gamma"], ["out"], axis=-1),
    ]
    _check(_model(nodes, feeds, ["out"], inits, opset=opset), feeds)


def _rope_caches(rng, positions: int, half: int):
    angles = rng.uniform(0, 2 * np.pi, (positions, half))
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


@pytest.mark.parametrize("layout", ["3d", "4d"])
@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("partial", [False, True])
def test_rotary_embedding_onnx(layout, interleaved, partial):
    rng = np.random.default_rng(19)
    b, s, heads, d = 2, 5, 3, 8
    rot = 4 if partial else d
    x = _rand(rng, b, s, heads * d) if layout == "3d" else _rand(rng, b, heads, s, d)
    cos, sin = _rope_caches(rng, 12, rot // 2)
    feeds = {"x": x, "pos": rng.integers(0, 12, (b, s)).astype(np.int64)}
    attrs = dict(interleaved=interleaved, rotary_embedding_dim=rot if partial else 0)
    if layout == "3d":
        attrs["num_heads"] = heads
    node = helper.make_node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["y"], **attrs)
    _check(_model([node], feeds, ["y"], {"cos": cos, "sin": sin}, opset=23), feeds)


@pytest.mark.parametrize("layout", ["3d", "4d"])
@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("positions", ["offset", "2d"])
def test_rotary_embedding_microsoft(layout, interleaved, positions):
    rng = np.random.default_rng(20)
    b, s, heads, d = 2, 5, 2, 8
    x = _rand(rng, b, s, heads * d) if layout == "3d" else _rand(rng, b, heads, s, d)
    cos, sin = _rope_caches(rng, 16, d // 2)
    pos = np.array([3], np.int64) if positions == "offset" else rng.integers(0, 16, (b, s))
    feeds = {"x": x, "pos": pos.astype(np.int64)}
    node = helper.make_node(
        "RotaryEmbedding", ["x", "pos", "cos", "sin"], ["y"], domain=MS, interleaved=interleaved
    )
    _check(_model([node], feeds, ["y"], {"cos": cos, "sin": sin}), feeds)


def test_rotary_embedding_microsoft_partial():
    rng = np.random.default_rng(22)
    b, s, heads, d, rot = 2, 4, 2, 8, 4
    cos, sin = _rope_caches(rng, 8, rot // 2)
    feeds = {"x": _rand(rng, b, s, heads * d), "pos": rng.integers(0, 8, (b, s))}
    node = helper.make_node(
        "RotaryEmbedding",
        ["x", "pos", "cos", "sin"],
        ["y"],
        domain=MS,
        num_heads=heads,
        rotary_embedding_dim=rot,
    )
    _check(_model([node], feeds, ["y"], {"cos": cos, "sin": sin}), feeds)
    node.attribute.append(helper.make_attribute("is_packed_batching", 1))
    node.name = "rope"
    with pytest.raises(pyrt.UnsupportedOpError, match="rope.*is_packed_batching=1"):
        pyrt.Session(_model([node], feeds, ["y"], {"cos": cos, "sin": sin}))


# ---- what pyrt refuses, by name ----


def _attention_model(**attrs):
    rng = np.random.default_rng(13)
    feeds = {"x": _rand(rng, 1, 4, 8)}
    ins = ["x", "w", "bias"]
    mask = attrs.pop("mask", None)
    if mask is not None:
        feeds["mask"] = mask
        ins.append("mask")
    node = helper.make_node("Attention", ins, ["y"], name="att", domain=MS, num_heads=2, **attrs)
    return _model([node], feeds, ["y"], {"w": _rand(rng, 8, 24), "bias": _rand(rng, 24)})


@pytest.mark.parametrize(
    "model,words",
    [
        (lambda: _attention_model(do_rotary=1), "do_rotary=1"),
        (lambda: _attention_model(past_present_share_buffer=1), "past_present_share_buffer"),
        (lambda: _attention_model(mask=np.ones((1, 1, 4, 4), np.int32)), "4-D mask"),
        (lambda: _attention_model(mask=np.ones(5, np.int32)), "3 * batch + 2"),
    ],
)
def test_unsupported_forms_are_named(model, words):
    with pytest.raises(pyrt.UnsupportedOpError, match="Attention node 'att'.*" + re.escape(words)):
        pyrt.Session(model())


def test_bad_attention_is_a_model_error():
    rng = np.random.default_rng(14)
    feeds = {"x": _rand(rng, 1, 4, 8)}
    node = helper.make_node("Attention", ["x", "w"], ["y"], name="att", domain=MS, num_heads=5)
    with pytest.raises(pyrt.ModelError, match="att.*multiple of num_heads 5"):
        pyrt.Session(_model([node], feeds, ["y"], {"w": _rand(rng, 8, 24)}))
    node = helper.make_node(
        "Attention", ["x", "w", "", "mask"], ["y"], name="att", domain=MS, num_heads=2
    )
    feeds["mask"] = np.ones(3, np.int32)
    with pytest.raises(pyrt.ModelError, match="att.*3 values, expected batch"):
        pyrt.Session(_model([node], feeds, ["y"], {"w": _rand(rng, 8, 24)}))


def test_unsupported_onnx_attention_inputs():
    rng = np.random.default_rng(15)
    feeds = {k: _rand(rng, 1, 2, 3, 4) for k in "qkv"}
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], name="a23", softmax_precision=11)
    with pytest.raises(pyrt.UnsupportedOpError, match="a23.*softmax_precision=11"):
        pyrt.Session(_model([node], feeds, ["y"], opset=23))


def test_other_contrib_ops_stay_unsupported():
    rng = np.random.default_rng(16)
    feeds = {"x": _rand(rng, 1, 3, 8), "seqlens": np.array([[2]], np.int32)}
    node = helper.make_node(
        "GroupQueryAttention",
        ["x", "x", "x", "", "", "seqlens", "total"],
        ["y", "pk", "pv"],
        name="gqa",
        domain=MS,
        num_heads=2,
        kv_num_heads=2,
    )
    inits = {"total": np.array(3, np.int32)}
    with pytest.raises(pyrt.UnsupportedOpError, match="GroupQueryAttention.*gqa"):
        pyrt.Session(_model([node], feeds, ["y"], inits))


# ---- onnxruntime's transformer optimizer and quantizers ----


def _pytorch_mask(model: onnx.ModelProto) -> onnx.ModelProto:
    """The encoder's mask[:, None, None, :] as PyTorch exports it (two Unsqueezes), the
    form onnxruntime's attention fusion looks for."""
    g = model.graph
    for idx, n in enumerate(g.node):
        if n.op_type == "Unsqueeze" and n.input[0] == "attention_mask":
            g.initializer.extend(
                [
                    numpy_helper.from_array(np.array([1], np.int64), "mask_axis1"),
                    numpy_helper.from_array(np.array([2], np.int64), "mask_axis2"),
                ]
            )
            first = helper.make_node("Unsqueeze", ["attention_mask", "mask_axis1"], ["mask_u1"])
            second = helper.make_node("Unsqueeze", ["mask_u1", "mask_axis2"], list(n.output))
            g.node.remove(n)
            g.node.insert(idx, second)
            g.node.insert(idx, first)
            return model
    raise AssertionError("no mask Unsqueeze")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def optimized(tmp_path_factory):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    tmp = tmp_path_factory.mktemp("optimized")
    fp32 = _pytorch_mask(zt.encoder(seed=3))  # minilm(): 6 layers, hidden 384, 12 heads
    onnx.save(fp32, tmp / "fp32.onnx")
    opt = optimize_model(
        str(tmp / "fp32.onnx"), model_type="bert", num_heads=12, hidden_size=384, opt_level=0
    )
    opt.save_model_to_file(str(tmp / "opt.onnx"))
    options = FusionOptions("bert")
    options.use_multi_head_attention = True  # MultiHeadAttention after the Q, K, V MatMuls
    mha = optimize_model(
        str(tmp / "fp32.onnx"),
        model_type="bert",
        num_heads=12,
        hidden_size=384,
        opt_level=0,
        optimization_options=options,
    )
    mha.save_model_to_file(str(tmp / "mha.onnx"))
    quantize_dynamic(
        tmp / "opt.onnx",
        tmp / "dynamic.onnx",
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )
    quant_pre_process(str(tmp / "opt.onnx"), str(tmp / "pre.onnx"), skip_optimization=True)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(zt.encoder_inputs(32, batch=2, n=3, seed=4))

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(
        str(tmp / "pre.onnx"),
        str(tmp / "static.onnx"),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    quantize_static(  # the contrib ops' weights and parameters behind Q/DQ too
        str(tmp / "pre.onnx"),
        str(tmp / "static_all.onnx"),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", *CONTRIB_QUANTIZED],
    )
    forms = ("fp32", "opt", "mha", "dynamic", "static", "static_all")
    return {k: onnx.load(tmp / f"{k}.onnx") for k in forms}


CONTRIB_QUANTIZED = ["Attention", "SkipLayerNormalization", "BiasGelu", "EmbedLayerNormalization"]


def test_optimizer_writes_the_contrib_ops(optimized):
    ops = {n.op_type for n in optimized["opt"].graph.node if n.domain == MS}
    assert {"Attention", "EmbedLayerNormalization", "SkipLayerNormalization", "BiasGelu"} <= ops
    assert "QAttention" in {n.op_type for n in optimized["dynamic"].graph.node}
    assert "MultiHeadAttention" in {n.op_type for n in optimized["mha"].graph.node}


@pytest.mark.parametrize("form", ["opt", "mha", "dynamic", "static", "static_all"])
def test_optimized_encoder_parity(optimized, form):
    """The optimized MiniLM-shaped encoder (fp32 with Attention or MultiHeadAttention,
    quantize_dynamic's QAttention + MatMulInteger, QDQ around the MatMuls or around
    everything) against onnxruntime on it, and both against the FP32 original, over six
    padded batches: quantization noise decides single batches either way, the mean
    agreement with FP32 must be at least onnxruntime's."""
    model = optimized[form]
    theirs_session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    session = pyrt.Session(model)
    agreement = []  # (pyrt vs FP32, onnxruntime vs FP32) per batch
    for seed in range(100, 106):
        feeds = zt.encoder_inputs(32, batch=2, n=1, seed=seed)[0]
        reference = _ort(optimized["fp32"], feeds)[0]
        theirs = theirs_session.run(None, feeds)[0]
        ours = session.run(feeds)[0]
        if form in ("opt", "mha"):
            np.testing.assert_allclose(ours, theirs, atol=1e-4)
            np.testing.assert_allclose(ours, reference, atol=1e-4)
        else:  # int8: roundings flipped by last-bit float differences, layer on layer
            # (onnxruntime's fused contrib kernels round unlike its own unfused ops)
            assert _cosine(ours, theirs) > (0.99 if form == "static_all" else 0.998)
        agreement.append((_cosine(ours, reference), _cosine(theirs, reference)))
    ours_mean, theirs_mean = np.mean(agreement, axis=0)
    assert ours_mean >= theirs_mean - 1e-4  # per batch the two differ by up to 5e-4
    report = pyrt.check(model, feeds)  # against the QDQ reference (optimizations off)
    assert report.outputs[0].cosine > (0.99 if form == "static_all" else 0.999)
    steps = [(s.node.op_type, s.kind) for s in session._steps]
    attention = any(op == "Attention" for op, _ in steps)  # the fused kernel
    assert attention or (("Softmax", "fp32") in steps and ("BatchMatMul", "fp32") in steps)
    assert not any(op == "LayerNormalization" for op, _ in steps[1:])  # all fused
    if form == "static_all":  # the Q, K, V projections run int8 too: 6 GEMMs a layer
        assert sum(op == "QMatMul" for op, _ in steps) == 6 * 6
    if form != "dynamic":  # QAttention keeps its packed int32 product (and a Split)
        assert not any(op == "Split" for op, _ in steps)  # the QKV weights split at load


def test_contrib_models_have_no_scale_edge_cases():
    """num_heads that gives odd head sizes (hidden 15 over 5 heads of 3)."""
    rng = np.random.default_rng(17)
    feeds = {"x": _rand(rng, 2, 9, 15)}
    inits = {"w": _rand(rng, 15, 45, scale=0.4), "bias": _rand(rng, 45)}
    node = helper.make_node("Attention", ["x", "w", "bias"], ["y"], domain=MS, num_heads=5)
    session = _check(_model([node], feeds, ["y"], inits), feeds)
    assert math.isfinite(float(session.run(feeds)[0].sum()))


def test_onnxruntimes_saved_optimized_dynamic_graph(tmp_path):
    """What onnxruntime's own graph optimizer saves for a quantize_dynamic encoder
    (DynamicQuantizeMatMul, MatMulIntegerToFloat, FusedMatMul, Gelu, SkipLayerNormalization)
    runs on pyrt's int8 kernels and gives the unoptimized graph's result (where those fused
    kernels round alike) and onnxruntime's on the same file, to 1e-7 of cosine."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx.save(zt.encoder(layers=2), tmp_path / "fp32.onnx")
    quantize_dynamic(tmp_path / "fp32.onnx", tmp_path / "dyn.onnx", weight_type=QuantType.QInt8)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "saved.onnx")
    ort.InferenceSession(str(tmp_path / "dyn.onnx"), so, providers=["CPUExecutionProvider"])
    saved = onnx.load(tmp_path / "saved.onnx")
    ops = {n.op_type for n in saved.graph.node if n.domain == MS}
    assert {"DynamicQuantizeMatMul", "MatMulIntegerToFloat", "FusedMatMul"} <= ops
    session = pyrt.Session(saved)
    ran = {(r.op_type, r.ran_as) for r in session.report()}
    assert ("DynamicQuantizeMatMul", "numpy") not in ran
    assert ("MatMulIntegerToFloat", "numpy") not in ran
    feed = zt.encoder_inputs(32, batch=2, n=1, seed=7)[0]
    theirs = ort.InferenceSession(str(tmp_path / "saved.onnx"), providers=["CPUExecutionProvider"])
    for _ in range(2):  # recorded, then replayed
        ours = session.run(feed)[0]
        assert _cosine(ours, theirs.run(None, feed)[0]) > 1 - 1e-7
        assert _cosine(ours, _ort(onnx.load(tmp_path / "dyn.onnx"), feed)[0]) > 1 - 1e-7


@pytest.mark.parametrize(
    "trans_a, trans_b, alpha", [(0, 0, 1.0), (0, 1, 0.125), (1, 0, 2.0), (1, 1, 0.3)]
)
def test_fused_matmul_matches_onnxruntime(trans_a, trans_b, alpha):
    rng = np.random.default_rng(trans_a * 2 + trans_b)
    a = rng.standard_normal((2, 3, 5, 4) if trans_a else (2, 3, 4, 5)).astype(np.float32)
    b = rng.standard_normal((2, 3, 6, 5) if trans_b else (2, 3, 5, 6)).astype(np.float32)
    node = helper.make_node(
        "FusedMatMul", ["a", "b"], ["y"], domain=MS, transA=trans_a, transB=trans_b, alpha=alpha
    )
    graph = helper.make_graph(
        [node],
        "fused_matmul",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, a.shape),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, b.shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    m = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    )
    ours = pyrt.run(m, {"a": a, "b": b})[0]
    np.testing.assert_allclose(ours, _ort(m, {"a": a, "b": b})[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["MatMulIntegerToFloat", "DynamicQuantizeMatMul"])
@pytest.mark.parametrize("zero, bias, n", [(False, False, 8), (True, True, 8), (True, True, 5000)])
def test_integer_to_float_matmuls_match_onnxruntime(op, zero, bias, n):
    """n = 5000: a weight scale per column, more than the C plan entry keeps on the stack."""
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, (16, n), dtype=np.int8)
    w_scale = rng.uniform(0.01, 0.03, n).astype(np.float32) if n > 8 else np.float32(0.02)
    consts = {"w": w, "ws": w_scale}
    if zero:
        consts["wz"] = np.int8(3)
    if bias:
        consts["bias"] = rng.standard_normal(n).astype(np.float32)
    if op == "MatMulIntegerToFloat":
        x = rng.integers(0, 256, (4, 16), dtype=np.uint8)
        consts |= {"xs": np.float32(0.05), **({"xz": np.uint8(120)} if zero else {})}
        inputs = [
            "x",
            "w",
            "xs",
            "ws",
            "xz" if zero else "",
            "wz" if zero else "",
            "bias" if bias else "",
        ]
        elem = TensorProto.UINT8
    else:
        x = rng.standard_normal((4, 16)).astype(np.float32)
        inputs = ["x", "w", "ws", "wz" if zero else "", "bias" if bias else ""]
        elem = TensorProto.FLOAT
    while not inputs[-1]:
        inputs.pop()
    graph = helper.make_graph(
        [helper.make_node(op, inputs, ["y"], domain=MS)],
        "integer_to_float",
        [helper.make_tensor_value_info("x", elem, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()],
    )
    m = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    )
    session = pyrt.Session(m)
    assert {r.ran_as for r in session.report() if r.op_type == op} == {"int8"}
    for _ in range(2):  # recorded, then replayed
        np.testing.assert_allclose(
            session.run({"x": x})[0], _ort(m, {"x": x})[0], rtol=1e-6, atol=1e-6
        )
