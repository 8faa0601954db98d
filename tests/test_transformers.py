"""Transformer encoders: the kernels around attention against numpy (every ISA
bit-exact with scalar), and MiniLM-shaped encoders (pyrt/zoo_transformers.py)
quantized with onnxruntime's quantize_static against onnxruntime.

The reference for a quantized model is onnxruntime with graph optimizations off
(the graph as ONNX defines it); onnxruntime's own int8 result is measured beside it.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import onnx
import pytest

import pyrt
from pyrt import _kernels
from pyrt import kernels as K
from pyrt import zoo_transformers as zt
from pyrt.check import compare
from pyrt.errors import KernelError

U8, S8 = np.dtype(np.uint8), np.dtype(np.int8)


def codes(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def on_every_isa(fn):
    """fn() on every kernel table; asserts SIMD results equal scalar's bit for bit."""
    before = _kernels.isa()
    results = {}
    try:
        for isa in _kernels.isa_available():
            _kernels.set_isa(isa)
            results[isa] = fn()
    finally:
        _kernels.set_isa(before)
    scalar = results["scalar"]
    for isa, got in results.items():
        for a, b in zip(scalar, got):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), isa
    return scalar


# ---- qmatmul: two activations ------------------------------------------------------


@pytest.mark.parametrize("a_dtype, b_dtype", [(U8, S8), (S8, U8), (U8, U8), (S8, S8)])
def test_qmatmul_is_exact_int32(a_dtype, b_dtype):
    rng = np.random.default_rng(0)
    a = codes(rng, a_dtype, (2, 3, 37, 21))
    b = codes(rng, b_dtype, (2, 3, 45, 21)).transpose(0, 1, 3, 2)  # K^T: a strided view
    az, bz = int(a.reshape(-1)[5]), int(b.reshape(-1)[7])
    want = (a.astype(np.int64) - az) @ (b.astype(np.int64) - bz)
    (got,) = on_every_isa(lambda: [K.qmatmul(a, az, b, bz, K.OutputStage(np.dtype(np.int32)))])
    assert got.shape == (2, 3, 37, 45) and np.array_equal(got, want)


def test_qmatmul_broadcasts_and_requantizes():
    rng = np.random.default_rng(1)
    a = codes(rng, U8, (4, 1, 9, 64))
    b = codes(rng, S8, (1, 5, 64, 33))
    acc = (a.astype(np.int64) - 3) @ (b.astype(np.int64) + 2)
    scale = np.float32(0.0123)
    out = K.OutputStage(U8, scale, 120)
    (got,) = on_every_isa(lambda: [K.qmatmul(a, 3, b, -2, out)])
    want = np.clip(np.rint(acc.astype(np.float32) * scale) + 120, 0, 255)
    assert got.shape == (4, 5, 9, 33)
    assert np.array_equal(got, want.astype(np.uint8))
    real = K.qmatmul(a, 3, b, -2, K.OutputStage(np.dtype(np.float32), scale))
    np.testing.assert_array_equal(real, acc.astype(np.float32) * scale)


def test_qmatmul_threads_give_the_same_bits():
    rng = np.random.default_rng(2)
    a, b = codes(rng, U8, (12, 64, 32)), codes(rng, U8, (12, 32, 64))
    out = K.OutputStage(U8, 0.003, 7)
    one = K.qmatmul(a, 100, b, 130, out)
    for threads in (2, 3):
        ctx = _kernels.Context(threads=threads)
        assert np.array_equal(K.qmatmul(a, 100, b, 130, out, ctx), one)
        assert np.array_equal(K.qmatmul(a[:1], 100, b[:1], 130, out, ctx), one[:1])


def test_qmatmul_refuses_bad_arguments():
    a, b = np.zeros((4, 8), np.uint8), np.zeros((8, 3), np.int8)
    with pytest.raises(KernelError, match="do not multiply"):
        K.qmatmul(a, 0, b[:5], 0, K.OutputStage(U8, 1.0))
    with pytest.raises(KernelError, match="x_zero"):
        K.qmatmul(a, 300, b, 0, K.OutputStage(U8, 1.0))
    with pytest.raises(KernelError, match="2-D"):
        K.qmatmul(a[0], 0, b, 0, K.OutputStage(U8, 1.0))
    ctx = _kernels.default_context().ptr
    stage = K._stage(K.OutputStage(np.dtype(np.int32)), 3)[0]
    buf = np.zeros(64, np.int32)
    p = K.ptr(buf)
    assert K.lib.pyrt_qmatmul(ctx, 1, 4, 3, 8, p, 0, 0, 0, 7, p, 1, 0, 0, 3, 1, stage, p, 12, 3)
    assert "lda" in K.ffi.string(K.lib.pyrt_last_error()).decode()
    assert K.lib.pyrt_qmatmul(ctx, 0, 4, 3, 8, p, 0, 0, 0, 8, p, 1, 0, 0, 3, 1, stage, p, 12, 3)


def test_smatmul_fp32_batched():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((2, 3, 17, 40)).astype(np.float32)
    b = rng.standard_normal((1, 3, 29, 40)).astype(np.float32).transpose(0, 1, 3, 2)
    (y,) = on_every_isa(lambda: [K.smatmul(a, b)])
    np.testing.assert_allclose(y, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    with pytest.raises(KernelError, match="do not multiply"):
        K.smatmul(a, b[..., :5, :])


# ---- softmax, layer norm, GELU ------------------------------------------------------


def softmax64(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_softmax_float_with_scale_and_mask():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 3, 7, 50)) * 6).astype(np.float32)
    mask = np.where(rng.random((2, 1, 1, 50)) < 0.3, np.finfo(np.float32).min, 0)
    mask = mask.astype(np.float32)
    (y,) = on_every_isa(lambda: [K.softmax(x, x_div=2.5, mask=mask)])
    want = softmax64(x.astype(np.float64) / 2.5 + mask)
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-7)
    per_query = np.where(rng.random((2, 1, 7, 50)) < 0.3, -1e4, 0).astype(np.float32)
    y2 = K.softmax(x, mask=per_query)  # not one row per (batch): broadcast in full
    np.testing.assert_allclose(y2, softmax64(x.astype(np.float64) + per_query), atol=1e-7)


def test_softmax_quantized_in_and_out():
    rng = np.random.default_rng(4)
    qx, qy = K.QParams(0.07, 130, U8), K.QParams(1 / 255, 0, U8)
    x = codes(rng, U8, (3, 128, 128))
    mask = np.zeros((3, 1, 128), np.float32)
    mask[1, 0, 100:] = -3.4e38
    (y,) = on_every_isa(lambda: [K.softmax(x, qx, qy, x_div=math.sqrt(32), mask=mask)])
    real = (x.astype(np.float32) - 130) * np.float32(0.07) / np.float32(math.sqrt(32)) + mask
    want = np.clip(np.rint(softmax64(real.astype(np.float64)) * 255), 0, 255)
    assert y.dtype == np.uint8
    assert np.abs(y.astype(np.int32) - want).max() <= 1
    assert np.mean(y == want) > 0.999
    assert not y[1, :, 100:].any()


def test_softmax_propagates_nan():
    x = np.array([[0.0, np.nan, 1.0], [1.0, 2.0, 3.0]], np.float32)
    y = K.softmax(x)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


def test_layernorm_with_bias_residual_and_two_outputs():
    rng = np.random.default_rng(5)
    qx, qr, qy = K.QParams(0.05, 128, U8), K.QParams(0.04, -3, S8), K.QParams(0.03, 120, U8)
    x, res = codes(rng, U8, (2, 16, 384)), codes(rng, S8, (2, 16, 384))
    gamma = (1 + 0.2 * rng.standard_normal(384)).astype(np.float32)
    beta = (0.1 * rng.standard_normal(384)).astype(np.float32)
    bias = (0.3 * rng.standard_normal(384)).astype(np.float32)

    def run():
        return K.layernorm(x, gamma, beta, 1e-12, qx, bias, res, qr, qy)

    y, yq = on_every_isa(run)
    v = (x.astype(np.float64) - 128) * 0.05 + bias + (res.astype(np.float64) + 3) * 0.04
    mean, var = v.mean(-1, keepdims=True), v.var(-1, keepdims=True)
    want = (v - mean) / np.sqrt(var + 1e-12) * gamma + beta
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=2e-5)
    wantq = np.clip(np.rint(want / np.float32(0.03)) + 120, 0, 255)
    assert np.abs(yq.astype(np.int32) - wantq).max() <= 1 and np.mean(yq == wantq) > 0.999
    (only_q,) = K.layernorm(x, gamma, None, 1e-5, qx, qy=qy, float_out=False)
    assert only_q.dtype == np.uint8


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh", "identity"])
def test_activation_float(act):
    x = np.linspace(-12, 12, 100001).astype(np.float32)
    (y,) = on_every_isa(lambda: [K.activation(x, act)])
    v = x.astype(np.float64)
    erf = np.vectorize(math.erf)
    want = {
        "gelu": 0.5 * v * (1 + erf(v / math.sqrt(2))),
        "gelu_tanh": 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))),
        "identity": v,
    }[act]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=2e-6)


def test_activation_quantized_with_bias():
    rng = np.random.default_rng(6)
    qx, qy = K.QParams(0.02, 140, U8), K.QParams(0.015, 10, U8)
    x = codes(rng, U8, (64, 1536))
    bias = (0.5 * rng.standard_normal(1536)).astype(np.float32)
    (y,) = on_every_isa(lambda: [K.activation(x, "gelu", qx, bias, qy)])
    v = (x.astype(np.float64) - 140) * 0.02 + bias
    erf = np.vectorize(math.erf)
    want = np.clip(np.rint(0.5 * v * (1 + erf(v / math.sqrt(2))) / 0.015) + 10, 0, 255)
    assert np.abs(y.astype(np.int32) - want).max() <= 1 and np.mean(y == want) > 0.999


@pytest.mark.parametrize("cols", [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 40])
def test_float_row_kernels_are_bit_exact_at_every_width(cols):
    """Row tails of every SIMD width, NaN / Inf / huge values, and int8 in and out."""
    rng = np.random.default_rng(cols)
    x = (rng.standard_normal((5, cols)) * 30).astype(np.float32)
    x[0, 0], x[1, -1], x[2, cols // 2] = np.nan, np.inf, -1e30
    q8 = codes(rng, U8, (5, cols))
    qx, qy = K.QParams(0.3, 128, U8), K.QParams(0.02, -5, S8)
    gamma = rng.standard_normal(cols).astype(np.float32)
    mask = np.where(rng.random((5, cols)) < 0.2, -1e4, 0).astype(np.float32)

    def run():
        return [
            K.softmax(x, x_div=3.0, mask=mask),
            K.softmax(q8, qx, qy, mask=mask),
            *K.layernorm(x, gamma, gamma, 1e-6, residual=x, sum_out=True),
            *K.layernorm(q8, gamma, None, 1e-6, qx, bias=gamma, residual=q8, qr=qx, qy=qy),
            K.activation(x, "gelu"),
            K.activation(x, "gelu_tanh", bias=gamma),
            K.activation(q8, "gelu", qx, gamma, qy),
        ]

    on_every_isa(run)


def test_float_row_kernels_refuse_bad_arguments():
    x = np.zeros((2, 8), np.float32)
    with pytest.raises(KernelError, match="bias has 3 values"):
        K.activation(x, "gelu", bias=np.zeros(3))
    with pytest.raises(KernelError, match="activation must be"):
        K.activation(x, "swish")
    with pytest.raises(KernelError, match="mask"):
        K.softmax(x, mask=np.zeros((3, 8), np.float32))
    with pytest.raises(KernelError, match="x_div"):
        K.softmax(x, x_div=0.0)
    with pytest.raises(KernelError, match="input must be"):
        K.layernorm(x.astype(np.float64), np.ones(8), None, 1e-5)
    with pytest.raises(KernelError, match="epsilon"):
        K.layernorm(x, np.ones(8), None, -1.0)
    with pytest.raises(KernelError, match="zero point"):
        K.softmax(x.astype(np.uint8), K.QParams(0.1, 0, U8), K.QParams(0.1, 300, U8))


# ---- encoder models -------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoders():
    """The MiniLM-shaped encoder (2 layers keep it fast; every layer is alike) and its
    quantized variants: every MatMul, and the FFN output projections kept FP32."""
    fp32 = zt.encoder(layers=2)
    calib = zt.encoder_inputs(128, n=4, seed=1) + zt.encoder_inputs(32, n=2, batch=2, seed=2)
    return {
        "fp32": fp32,
        "int8": zt.quantize_encoder(fp32, calib),
        "int8_ffn_fp32": zt.quantize_encoder(fp32, calib, fp32_ffn_output=True),
    }


def test_encoder_has_the_exported_structure():
    model = zt.encoder()
    ops = Counter(n.op_type for n in model.graph.node)
    assert ops["LayerNormalization"] == 13 and ops["Softmax"] == 6 and ops["Erf"] == 6
    assert ops["MatMul"] == 6 * 8 and ops["Gather"] == 4 and ops["Cast"] == 1
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in model.graph.input)
    names = [n.name for n in model.graph.node]
    assert len(zt.ffn_output_nodes(model)) == 6 and len(set(names)) == len(names)
    assert zt.encoder(seed=1).SerializeToString() != model.SerializeToString()


def test_encoder_inputs_pad_the_mask():
    (feed,) = zt.encoder_inputs(64, batch=3, seed=7)
    mask = feed["attention_mask"]
    assert mask[0].all() and not mask[1:].all() and mask.dtype == np.int64
    assert (feed["input_ids"][mask == 0] == 0).all()


def test_fp32_encoder_matches_onnxruntime(encoders, ort_reference):
    model = encoders["fp32"]
    session = pyrt.Session(model)
    for seq, batch in ((16, 1), (128, 2)):
        (feed,) = zt.encoder_inputs(seq, batch=batch, seed=seq)
        np.testing.assert_allclose(
            session.run(feed)[0], ort_reference(model, feed)[0], rtol=1e-4, atol=1e-4
        )
    kinds = {(r.op_type, r.ran_as) for r in session.report()}
    assert {("Softmax", "fp32"), ("LayerNormalization", "fp32"), ("Erf", "fp32")} <= kinds
    assert {r.ran_as for r in session.report() if r.op_type == "MatMul"} == {"fp32"}


def test_mask_arithmetic_runs_as_one_step(ort_reference):
    for style in ("sub_mul", "where"):
        model = zt.encoder(layers=1, mask=style)
        session = pyrt.Session(model)
        (feed,) = zt.encoder_inputs(32, batch=2, seed=3)
        np.testing.assert_allclose(
            session.run(feed)[0], ort_reference(model, feed)[0], rtol=1e-4, atol=1e-4
        )
        chains = [s for s in session._steps if s.node.op_type == "MaskChain"]
        assert len(chains) == 1 and chains[0].inputs[0] == "attention_mask", style
        assert len(chains[0].node.attrs["nodes"]) == (4 if style == "sub_mul" else 3)


def ort_int8(model: onnx.ModelProto, feed: dict) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feed)[0]


@pytest.mark.parametrize("variant", ["int8", "int8_ffn_fp32"])
@pytest.mark.parametrize("seq, batch", [(16, 1), (128, 1), (64, 3), (512, 1)])
def test_quantized_encoder_matches_onnxruntime(encoders, ort_reference, variant, seq, batch):
    model = encoders[variant]
    (feed,) = zt.encoder_inputs(seq, batch=batch, seed=seq + batch)
    ref = ort_reference(model, feed)[0]
    ours = compare("last_hidden_state", pyrt.Session(model).run(feed)[0], ref, None)
    theirs = compare("last_hidden_state", ort_int8(model, feed), ref, None)
    # As close to the QDQ definition as onnxruntime's own int8 kernels are, give or take:
    # those share the reference's float kernels bit for bit, and so do pyrt's (erf,
    # softmax, LayerNorm follow onnxruntime's x86 kernels). Where onnxruntime fuses
    # (SkipLayerNormalization, Gelu) its own int8 run rounds otherwise; flipped
    # quantization steps then spread through random weights (hidden states have std ~1).
    assert ours.cosine >= min(0.999, theirs.cosine - 5e-4), (ours, theirs)
    assert ours.max_abs_err < 1.0, (ours, theirs)


def test_quantized_encoder_runs_as_a_few_fused_steps(encoders):
    session = pyrt.Session(encoders["int8"])
    report = session.report()
    ran = {(r.op_type, r.ran_as) for r in report}
    matmuls = [r for r in report if r.op_type == "MatMul"]
    assert matmuls and all(r.ran_as == "int8" for r in matmuls), matmuls
    for op in ("Softmax", "LayerNormalization", "Erf"):
        assert {r.ran_as for r in report if r.op_type == op} == {"int8"}, op
    assert ("QuantizeLinear", "quant") not in ran and ("DequantizeLinear", "quant") not in ran
    steps = Counter(s.node.op_type for s in session._steps)
    per_layer = (len(session._steps) - 15) / 2  # embeddings and the mask: about 15
    assert steps["Attention"] == 2 and steps["QBatchMatMul"] == 0, steps  # fused, tiled
    assert steps["LayerNorm"] == 5 and steps["Softmax"] == 0, steps
    assert per_layer <= 11, steps
    numpy = [s.node.op_type for s in session._steps if s.kind == "numpy"]
    assert len(numpy) <= 12, numpy  # only the embedding lookups and the mask arithmetic
    # replayed, everything after the embeddings is one run of C plan entries
    (feed,) = zt.encoder_inputs(48, seed=4)
    session.run(feed)
    (program,) = session._programs.values()
    python = [seg.step.node.op_type for seg in program.segments if seg.step is not None]
    assert all(s.kind == "numpy" for s in session._steps if s.node.op_type in python), python
    assert sum(seg.step is None for seg in program.segments) <= 2, python


# ---- ViT ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vits():
    from pyrt import zoo

    fp32 = zt.vit()
    calib = zoo.calibration_data(fp32, 4)
    return {
        "fp32": fp32,
        "matmul": zoo.quantize_qdq(fp32, calib, op_types=["MatMul", "Gemm"]),
        "matmul_conv": zoo.quantize_qdq(fp32, calib, op_types=["MatMul", "Gemm", "Conv"]),
    }


def test_vit_fp32_matches_onnxruntime(vits, ort_reference):
    from pyrt import zoo

    model = vits["fp32"]
    x = zoo.calibration_data(model, 1, seed=5)[0]
    assert x["input"].shape == (1, 3, 224, 224)
    np.testing.assert_allclose(
        pyrt.run(model, x)[0], ort_reference(model, x)[0], rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("variant", ["matmul", "matmul_conv"])
def test_quantized_vit_matches_onnxruntime(vits, ort_reference, variant):
    """onnxruntime's pre-processing leaves 2-D Gemms between Reshapes and one QKV
    projection split by Reshape / Transpose / Gather: all of it stays int8."""
    from pyrt import zoo

    model = vits[variant]
    x = zoo.calibration_data(model, 1, seed=6)[0]
    session = pyrt.Session(model)
    ref = ort_reference(model, x)[0]
    ours = compare("logits", session.run(x)[0], ref, None)
    theirs = compare("logits", ort_int8(model, x), ref, None)
    assert ours.cosine >= min(0.9995, theirs.cosine - 5e-4), (ours, theirs)
    assert ours.max_abs_err < 0.2, (ours, theirs)
    report = session.report()
    for op in ("MatMul", "Gemm", "Softmax", "LayerNormalization", "Erf", "Gather"):
        kinds = {r.ran_as for r in report if r.op_type == op}
        assert kinds <= {"int8", "fused", "folded"}, (op, kinds)
    numpy = [s.node.op_type for s in session._steps if s.kind == "numpy"]
    assert len(numpy) <= 3, numpy  # the patch tokens' Reshape / Transpose / Concat


def test_bias_between_qdq_pairs_alone(ort_reference):
    """DQ -> Add(bias) -> Q with nothing to move after it (a projection's bias with no
    head split) is one requantizing step and equals onnxruntime's reference exactly."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    bias = rng.normal(0, 0.5, 24).astype(np.float32)
    consts = {"b": bias, "sx": np.float32(0.05), "zx": np.uint8(120)}
    consts |= {"sy": np.float32(0.07), "zy": np.uint8(130)}
    nodes = [
        helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["x"]),
        helper.make_node("Add", ["b", "x"], ["y"]),
        helper.make_node("QuantizeLinear", ["y", "sy", "zy"], ["yq"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bias",
        [helper.make_tensor_value_info("xq", TensorProto.UINT8, [8, 24])],
        [helper.make_tensor_value_info("yq", TensorProto.UINT8, None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.integers(0, 256, (8, 24), dtype=np.uint8)
    session = pyrt.Session(m)
    np.testing.assert_array_equal(session.run({"xq": x})[0], ort_reference(m, {"xq": x})[0])
    assert {r.ran_as for r in session.report()} <= {"int8", "fused"}


@pytest.mark.parametrize("scale_op", ["Mul", "Div"])
def test_scaled_masked_softmax_is_onnxruntimes(ort_reference, scale_op):
    """Scores -> Mul or Div by a scalar -> Add mask -> Softmax is one step that rounds as
    the graph does: a Mul by 1/sqrt(d) multiplies (dividing by sqrt(d) would differ in
    the last bit), and the softmax is onnxruntime's (x86 with AVX-512) bit for bit."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 3, 16, 40)) * 6).astype(np.float32)
    mask = np.where(rng.random((2, 1, 1, 40)) < 0.2, -10000.0, 0.0).astype(np.float32)
    c = np.float32(1 / math.sqrt(24) if scale_op == "Mul" else math.sqrt(24))
    nodes = [
        helper.make_node(scale_op, ["x", "c"], ["s"]),
        helper.make_node("Add", ["s", "mask"], ["t"]),
        helper.make_node("Softmax", ["t"], ["y"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "scaled_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(c, "c"), numpy_helper.from_array(mask, "mask")],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = pyrt.Session(m)
    assert {r.ran_as for r in session.report()} <= {"fp32", "fused"}
    got, want = session.run({"x": x})[0], ort_reference(m, {"x": x})[0]
    if "avx512vnni" in _kernels.isa_available():
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    else:
        np.testing.assert_array_max_ulp(got, want, maxulp=2)


@pytest.mark.parametrize("seq, batch", [(16, 1), (64, 2)])
def test_dynamically_quantized_encoder_is_onnxruntimes(
    encoders, ort_reference, tmp_path, seq, batch
):
    """quantize_dynamic's encoder (DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul
    by input scale x weight scale): each MatMulInteger is an int8 GEMM with the zero
    point and scale read at run time, and the result is the reference's bit for bit
    where pyrt's float kernels are onnxruntime's (x86 with AVX-512)."""
    from onnxruntime import quantization as ort_quant

    onnx.save(encoders["fp32"], tmp_path / "fp32.onnx")
    ort_quant.quantize_dynamic(
        tmp_path / "fp32.onnx", tmp_path / "dyn.onnx", weight_type=ort_quant.QuantType.QInt8
    )
    model = onnx.load(tmp_path / "dyn.onnx")
    session = pyrt.Session(model)
    report = session.report()
    assert Counter(r.ran_as for r in report if r.op_type == "MatMulInteger") == {"int8": 12}
    casts = [r for r in report if r.op_type == "Cast" and r.detail != "MaskChain"]
    assert casts and all(r.detail.startswith("in QMatMul") for r in casts)  # output stage
    (feed,) = zt.encoder_inputs(seq, batch=batch, seed=seq)
    ref = ort_reference(model, feed)[0]
    for _ in range(2):  # recorded, then replayed as the C plan
        ours = session.run(feed)[0]
        if "avx512vnni" in _kernels.isa_available():
            np.testing.assert_array_equal(ours, ref)
        else:
            assert compare("y", ours, ref, None).cosine > 0.9999
    program = next(iter(session._programs.values()))
    in_c = {s.node.op_type for seg in program.segments if seg.step is None for s in seg.entry_steps}
    assert {"QMatMul", "DynamicQuantizeLinear"} <= in_c


def test_layernorm_written_out_below_opset_17_is_one_step(encoders, ort_reference):
    """PyTorch's LayerNorm export below opset 17 (ReduceMean, Sub, Pow, ReduceMean, Add,
    Sqrt, Div, Mul, Add) runs as the LayerNormalization op does: the opset-14 encoder gives
    the opset-17 encoder's bits and agrees with onnxruntime; quantized (its calibration
    differs in the last bits, so its scales do) it fuses alike and stays near the
    reference."""
    fp32 = zt.encoder(layers=2, opset=14)
    assert Counter(n.op_type for n in fp32.graph.node)["ReduceMean"] == 10
    (feed,) = zt.encoder_inputs(32, batch=2, seed=4)
    session = pyrt.Session(fp32)
    ours = session.run(feed)[0]
    np.testing.assert_array_equal(ours, pyrt.Session(encoders["fp32"]).run(feed)[0])
    np.testing.assert_allclose(ours, ort_reference(fp32, feed)[0], atol=1e-4)
    written_out = {"ReduceMean", "Pow", "Sqrt"}
    assert not [r for r in session.report() if r.op_type in written_out and r.ran_as == "numpy"]
    calib = zt.encoder_inputs(128, n=4, seed=1) + zt.encoder_inputs(32, n=2, batch=2, seed=2)
    int8 = zt.quantize_encoder(fp32, calib)
    quantized = pyrt.Session(int8)
    ops = Counter(r.op_type for r in quantized.report() if r.ran_as == "numpy")
    assert not ops.keys() & written_out
    got = compare("y", quantized.run(feed)[0], ort_reference(int8, feed)[0], None)
    assert got.cosine > 0.999
