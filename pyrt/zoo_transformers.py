"""Transformer encoders built with onnx.helper, as PyTorch exports BERT-style models.

`encoder()` writes a MiniLM-shaped encoder (by default 6 layers, hidden 384, 12
heads, FFN 1536): int64 inputs input_ids / attention_mask / token_type_ids
[batch, sequence] (both symbolic), Gather embeddings (word + position +
token type) and LayerNormalization, then per layer MatMul + Add projections
with Reshape / Transpose head splitting, Q·Kᵀ MatMul, Div by sqrt(head
size), the additive mask from Unsqueeze / Cast / Sub / Mul of the int64
mask, Softmax, P·V MatMul, the output projection, residual Add and
LayerNormalization (post-LN), and the FFN with GELU in the Erf form
(Div / Erf / Add / Mul / Mul). Output: last_hidden_state [batch, sequence,
hidden]. `vit()` writes a ViT-style classifier (16x16 patch Conv, 224x224).

Weights are random and seeded but shaped like trained ones: projections
scaled so that activations stay O(1), attention scores of a few units, and
a few hidden channels with large LayerNorm gains (the outlier features of
real BERTs that make the FFN output projection hard to quantize).

`quantize_encoder()` runs onnxruntime's quantize_static on MatMul and Gemm
only (as deployments of BERT-style models do), optionally keeping the FFN
output projections in FP32. `minilm(seq)` bundles the FP32 model, its
quantized variants and feeds for benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .zoo import quantize_qdq


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0
        self.opset = 17

    def const(self, base: str, value: np.ndarray) -> str:
        self.n += 1
        name = f"{base}_{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], name: str | None = None, **attrs) -> str:
        self.n += 1
        name = f"{name or op.lower()}_{self.n}"
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def linear(self, x: str, cin: int, cout: int, gain: float, name: str) -> str:
        """MatMul by [cin, cout] then Add bias, as torch.nn.Linear exports."""
        w = self.rng.standard_normal((cin, cout)) * (gain / math.sqrt(cin))
        b = self.rng.standard_normal(cout) * 0.02
        y = self.node("MatMul", [x, self.const(f"{name}.weight", w.astype(np.float32))], name)
        return self.node("Add", [self.const(f"{name}.bias", b.astype(np.float32)), y], name)

    def layer_norm(self, x: str, hidden: int, name: str, outliers: int = 0) -> str:
        gamma = 1 + 0.1 * self.rng.standard_normal(hidden)
        beta = 0.05 * self.rng.standard_normal(hidden)
        if outliers:  # a few channels far larger than the rest, as in trained BERTs
            picks = self.rng.choice(hidden, outliers, replace=False)
            gamma[picks] *= self.rng.uniform(4, 8, outliers)
        gamma = self.const(f"{name}.gamma", gamma.astype(np.float32))
        beta = self.const(f"{name}.beta", beta.astype(np.float32))
        if self.opset >= 17:
            return self.node("LayerNormalization", [x, gamma, beta], name, axis=-1, epsilon=1e-12)
        # below opset 17 PyTorch writes the LayerNorm out in ops
        mean = self.node("ReduceMean", [x], f"{name}.mean", axes=[-1])
        d = self.node("Sub", [x, mean], f"{name}.sub")
        var = self.node("ReduceMean", [self.node("Pow", [d, self.scalar("two", 2.0)])], axes=[-1])
        sd = self.node("Sqrt", [self.node("Add", [var, self.scalar("eps", 1e-12)])])
        y = self.node("Mul", [self.node("Div", [d, sd]), gamma])
        return self.node("Add", [y, beta], name)

    def scalar(self, base: str, value: float) -> str:
        return self.const(base, np.array(value, np.float32))


def encoder(
    layers: int = 6,
    hidden: int = 384,
    heads: int = 12,
    ffn: int = 1536,
    vocab: int = 2048,
    max_positions: int = 512,
    seed: int = 0,
    opset: int = 17,
    mask: str = "sub_mul",
) -> onnx.ModelProto:
    """A BERT/MiniLM-shaped FP32 encoder (see the module docstring). mask "sub_mul" writes
    (1 - Cast(mask)) * float32.min, "where" Where(Equal(mask, 0), float32.min, 0). Below
    opset 17 each LayerNorm is written out as PyTorch exports it (ReduceMean, Sub, Pow,
    ReduceMean, Add, Sqrt, Div, Mul, Add)."""
    if mask not in ("sub_mul", "where"):
        raise ValueError(f"mask must be 'sub_mul' or 'where', got {mask!r}")
    if hidden % heads:
        raise ValueError(f"hidden {hidden} must be a multiple of heads {heads}")
    if opset < 13:
        raise ValueError(
            f"the encoder needs opset >= 13 (LayerNorm written out below 17), got {opset}"
        )
    b = _Builder(seed)
    b.opset = opset
    head = hidden // heads

    # embeddings: word + position (a Slice of the position table) + token type, LN
    word = b.const(
        "word_embeddings", (0.05 * b.rng.standard_normal((vocab, hidden))).astype(np.float32)
    )
    pos_table = b.const(
        "position_embeddings",
        (0.05 * b.rng.standard_normal((max_positions, hidden))).astype(np.float32),
    )
    type_table = b.const(
        "token_type_embeddings", (0.05 * b.rng.standard_normal((2, hidden))).astype(np.float32)
    )
    position_ids = b.const("position_ids", np.arange(max_positions, dtype=np.int64)[None])
    shape = b.node("Shape", ["input_ids"])
    seq = b.node("Gather", [shape, b.const("one", np.array(1, np.int64))], axis=0)
    seq = b.node("Unsqueeze", [seq, b.const("axes", np.array([0], np.int64))])
    positions = b.node(
        "Slice",
        [
            position_ids,
            b.const("starts", np.array([0], np.int64)),
            seq,
            b.const("axes", np.array([1], np.int64)),
        ],
    )
    emb = b.node("Gather", [word, "input_ids"], "word_gather")
    emb = b.node("Add", [emb, b.node("Gather", [type_table, "token_type_ids"], "type_gather")])
    emb = b.node("Add", [emb, b.node("Gather", [pos_table, positions], "position_gather")])
    x = b.layer_norm(emb, hidden, "embeddings.LayerNorm", outliers=2)

    # additive mask: (1 - mask) * float32.min, [batch, 1, 1, sequence]
    lowest = float(np.finfo(np.float32).min)
    ext = b.node("Unsqueeze", ["attention_mask", b.const("axes", np.array([1, 2], np.int64))])
    if mask == "sub_mul":
        ext = b.node("Cast", [ext], to=TensorProto.FLOAT)
        ext = b.node("Sub", [b.scalar("one_f", 1.0), ext])
        ext = b.node("Mul", [ext, b.scalar("mask_min", lowest)])
    else:
        padded = b.node("Equal", [ext, b.const("zero_i", np.array(0, np.int64))])
        ext = b.node("Where", [padded, b.scalar("mask_min", lowest), b.scalar("zero_f", 0.0)])

    split = b.const("split_heads", np.array([0, 0, heads, head], np.int64))
    merge = b.const("merge_heads", np.array([0, 0, hidden], np.int64))
    sqrt_head = b.scalar("sqrt_head", math.sqrt(head))
    for i in range(layers):
        p = f"encoder.layer.{i}"

        def heads_of(t: str, perm: list[int]) -> str:
            return b.node("Transpose", [b.node("Reshape", [t, split])], perm=perm)

        q = heads_of(b.linear(x, hidden, hidden, 1.0, f"{p}.attention.query"), [0, 2, 1, 3])
        k = heads_of(b.linear(x, hidden, hidden, 1.0, f"{p}.attention.key"), [0, 2, 3, 1])
        v = heads_of(b.linear(x, hidden, hidden, 1.0, f"{p}.attention.value"), [0, 2, 1, 3])
        scores = b.node("Div", [b.node("MatMul", [q, k], f"{p}.attention.qk"), sqrt_head])
        probs = b.node("Softmax", [b.node("Add", [scores, ext])], axis=-1)
        ctx = b.node("MatMul", [probs, v], f"{p}.attention.pv")
        ctx = b.node("Reshape", [b.node("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        out = b.linear(ctx, hidden, hidden, 1.0, f"{p}.attention.output.dense")
        x = b.layer_norm(b.node("Add", [out, x]), hidden, f"{p}.attention.output.LayerNorm", 2)

        h = b.linear(x, hidden, ffn, 1.5, f"{p}.intermediate.dense")
        erf = b.node("Erf", [b.node("Div", [h, b.scalar("sqrt2", math.sqrt(2.0))])])
        h = b.node(
            "Mul",
            [
                b.node("Mul", [h, b.node("Add", [erf, b.scalar("one_f", 1.0)])]),
                b.scalar("half", 0.5),
            ],
        )
        out = b.linear(h, ffn, hidden, 0.7, f"{p}.output.dense")
        x = b.layer_norm(b.node("Add", [out, x]), hidden, f"{p}.output.LayerNorm", 2)

    b.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        b.nodes,
        "pyrt_encoder",
        [
            helper.make_tensor_value_info(name, TensorProto.INT64, dims)
            for name in ("input_ids", "attention_mask", "token_type_ids")
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*dims, hidden])],
        b.inits,
    )
    return _finish(graph, opset)


def _finish(graph: onnx.GraphProto, opset: int) -> onnx.ModelProto:
    """The checked model of a built graph (IR version capped for older onnxruntimes)."""
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="pyrt.zoo"
    )
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model)
    return model


def vit(
    layers: int = 2,
    hidden: int = 192,
    heads: int = 3,
    ffn: int = 768,
    size: int = 224,
    patch: int = 16,
    classes: int = 10,
    seed: int = 0,
    opset: int = 17,
) -> onnx.ModelProto:
    """A ViT-style FP32 classifier as timm exports it: 16x16 patch-embedding Conv,
    Reshape / Transpose to tokens, a class token (Concat) and position embeddings,
    pre-LN blocks with one fused QKV MatMul split by Reshape / Transpose / Gather,
    Mul by 1/sqrt(head size), Softmax, GELU (Erf form); final LayerNorm, the class
    token (Gather) and a Gemm head. Input "input" [1, 3, size, size], output
    "logits" [1, classes]. Defaults: ViT-Tiny widths, 2 blocks."""
    if hidden % heads or size % patch:
        raise ValueError(f"hidden {hidden} / heads {heads} or size {size} / patch {patch}")
    b = _Builder(seed)
    head, tokens = hidden // heads, (size // patch) ** 2 + 1
    fan_in = 3 * patch * patch
    w = b.rng.standard_normal((hidden, 3, patch, patch)) * (1 / math.sqrt(fan_in))
    x = b.node(
        "Conv",
        [
            "input",
            b.const("patch_embed.weight", w.astype(np.float32)),
            b.const("patch_embed.bias", (0.02 * b.rng.standard_normal(hidden)).astype(np.float32)),
        ],
        "patch_embed",
        kernel_shape=[patch, patch],
        strides=[patch, patch],
    )
    x = b.node("Reshape", [x, b.const("flat", np.array([1, hidden, -1], np.int64))])
    x = b.node("Transpose", [x], perm=[0, 2, 1])
    cls = b.const("cls_token", (0.5 * b.rng.standard_normal((1, 1, hidden))).astype(np.float32))
    x = b.node("Concat", [cls, x], axis=1)
    pos = (0.5 * b.rng.standard_normal((1, tokens, hidden))).astype(np.float32)
    x = b.node("Add", [x, b.const("pos_embed", pos)])
    split = b.const("split_qkv", np.array([0, 0, 3, heads, head], np.int64))
    merge = b.const("merge_heads", np.array([0, 0, hidden], np.int64))
    scale = b.scalar("scale", 1 / math.sqrt(head))
    for i in range(layers):
        p = f"blocks.{i}"
        y = b.layer_norm(x, hidden, f"{p}.norm1", outliers=1)
        qkv = b.linear(y, hidden, 3 * hidden, 1.0, f"{p}.attn.qkv")
        qkv = b.node("Transpose", [b.node("Reshape", [qkv, split])], perm=[2, 0, 3, 1, 4])
        q, k, v = (
            b.node("Gather", [qkv, b.const("index", np.array(j, np.int64))], axis=0)
            for j in range(3)
        )
        k = b.node("Transpose", [k], perm=[0, 1, 3, 2])
        scores = b.node("Mul", [b.node("MatMul", [q, k], f"{p}.attn.qk"), scale])
        probs = b.node("Softmax", [scores], axis=-1)
        ctx = b.node("MatMul", [probs, v], f"{p}.attn.pv")
        ctx = b.node("Reshape", [b.node("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        x = b.node("Add", [x, b.linear(ctx, hidden, hidden, 0.5, f"{p}.attn.proj")])
        y = b.layer_norm(x, hidden, f"{p}.norm2", outliers=1)
        h = b.linear(y, hidden, ffn, 1.5, f"{p}.mlp.fc1")
        erf = b.node("Erf", [b.node("Div", [h, b.scalar("sqrt2", math.sqrt(2.0))])])
        h = b.node(
            "Mul",
            [
                b.node("Mul", [h, b.node("Add", [erf, b.scalar("one_f", 1.0)])]),
                b.scalar("half", 0.5),
            ],
        )
        x = b.node("Add", [x, b.linear(h, ffn, hidden, 0.5, f"{p}.mlp.fc2")])
    x = b.layer_norm(x, hidden, "norm")
    x = b.node("Gather", [x, b.const("cls_index", np.array(0, np.int64))], axis=1)
    w = b.rng.standard_normal((classes, hidden)) / math.sqrt(hidden)
    bias = (0.1 * b.rng.standard_normal(classes)).astype(np.float32)
    logits = b.node(
        "Gemm",
        [x, b.const("head.weight", w.astype(np.float32)), b.const("head.bias", bias)],
        "head",
        transB=1,
    )
    b.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="output"))
    graph = helper.make_graph(
        b.nodes,
        "pyrt_vit",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])],
        b.inits,
    )
    return _finish(graph, opset)


def encoder_inputs(
    seq: int,
    batch: int = 1,
    n: int = 1,
    vocab: int = 2048,
    seed: int = 0,
    padding: bool = True,
) -> list[dict[str, np.ndarray]]:
    """n feeds of random token ids; with padding, every row but the first ends in
    padding (mask 0, id 0) of a random length, like a padded batch of sentences."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(n):
        ids = rng.integers(1, vocab, (batch, seq), dtype=np.int64)
        mask = np.ones((batch, seq), np.int64)
        types = np.zeros((batch, seq), np.int64)
        for row in range(batch):
            length = seq if row == 0 or not padding else int(rng.integers(seq // 4, seq))
            if padding and batch == 1:
                length = int(rng.integers(seq * 3 // 4, seq + 1))
            mask[row, length:] = 0
            ids[row, length:] = 0
            types[row, length // 2 : length] = 1  # a second segment
        feeds.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    return feeds


def ffn_output_nodes(model: onnx.ModelProto) -> list[str]:
    """The FFN output projections' MatMul nodes (what `fp32_ffn_output` keeps in FP32)."""
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and ".output.dense" in n.name and ".attention." not in n.name
    ]


def quantize_encoder(
    model: onnx.ModelProto,
    calib: list[dict[str, np.ndarray]],
    *,
    fp32_ffn_output: bool = False,
    activation_type: str = "uint8",
) -> onnx.ModelProto:
    """QDQ with onnxruntime's quantize_static, MatMul and Gemm only (u8 activations by
    default, s8 per-channel weights); fp32_ffn_output keeps the FFN output projections
    in FP32 (nodes_to_exclude), which real text needs."""
    exclude = ffn_output_nodes(model) if fp32_ffn_output else []
    return quantize_qdq(
        model,
        calib,
        activation_type=activation_type,
        op_types=["MatMul", "Gemm"],
        nodes_to_exclude=exclude,
    )


@dataclass
class Encoder:
    """A benchmark bundle: the FP32 model, its QDQ variants and one feed."""

    fp32: onnx.ModelProto
    int8: dict[str, onnx.ModelProto] = field(default_factory=dict)
    feeds: dict[str, np.ndarray] = field(default_factory=dict)


def minilm(seq: int = 128, seed: int = 0) -> Encoder:
    """The MiniLM-L6-shaped encoder at `seq` tokens (batch 1): FP32, "int8" (every MatMul
    quantized, u8 activations) and "int8 fp32-ffn-out" (FFN output projections FP32)."""
    fp32 = encoder(seed=seed)
    calib = encoder_inputs(seq, n=4, seed=seed + 1)
    return Encoder(
        fp32,
        {
            "int8": quantize_encoder(fp32, calib),
            "int8 fp32-ffn-out": quantize_encoder(fp32, calib, fp32_ffn_output=True),
        },
        encoder_inputs(seq, n=1, seed=seed + 100)[0],
    )
