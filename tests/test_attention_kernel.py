"""The fused, tiled attention (kernels/src/attention, pyrt.kernels.attention) and its
matcher (patterns_attention.fuse_attention): bit for bit what the unfused steps give
(Q·Kᵀ on pyrt_qmatmul, Softmax, P·V), every ISA bit-exact with scalar, any thread count
alike; fp32 against float64 numpy; encoders with it against onnxruntime; the C plan
replay identical to the interpreter.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import pyrt
import pyrt.patterns_attention as patterns_attention
from pyrt import _kernels
from pyrt import kernels as K
from pyrt import zoo_transformers as zt
from pyrt.check import compare
from pyrt.errors import KernelError
from pyrt.kernels import AttentionQuant, OutputStage, QParams

U8, S8, F32 = np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.float32)
LOWEST = np.float32(np.finfo(np.float32).min)


def codes(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def on_every_isa(fn):
    """fn() on every kernel table; asserts each equals scalar's bit for bit."""
    before = _kernels.isa()
    results = {}
    try:
        for isa in _kernels.isa_available():
            _kernels.set_isa(isa)
            results[isa] = fn()
    finally:
        _kernels.set_isa(before)
    for isa, got in results.items():
        assert got.dtype == results["scalar"].dtype, isa
        assert got.tobytes() == results["scalar"].tobytes(), isa
    return results["scalar"]


def padding_mask(rng, batch, seq):
    """The additive [batch, 1, 1, seq] mask of padded rows: 0 or float32.min."""
    lengths = rng.integers(seq // 2, seq + 1, batch)
    lengths[0] = seq
    keep = np.arange(seq)[None] < lengths[:, None]
    return np.where(keep, np.float32(0), LOWEST)[:, None, None, :].astype(np.float32)


def int8_case(rng, b, h, sq, sk, d, q_dtype=U8, k_dtype=S8, scores_codes=True, probs=U8):
    """Heads split from [B, S, H, D] codes (strided views, as exporters write them) and
    the quantization of a QDQ attention: scores at about 0.2 per step, P at 1/255."""
    q = codes(rng, q_dtype, (b, sq, h, d)).transpose(0, 2, 1, 3)
    k = codes(rng, k_dtype, (b, sk, h, d)).transpose(0, 2, 1, 3)
    v = codes(rng, U8, (b, sk, h, d)).transpose(0, 2, 1, 3)
    zq = 128 if q_dtype == U8 else -2
    zk = 3 if k_dtype == S8 else 131
    s_q, s_k, s_v, s_s = 0.03, 0.02, 0.05, 0.2
    if scores_codes:
        scores = OutputStage(U8, np.float32(s_q * s_k / s_s), 90)
        scores_q = QParams(s_s, 90, U8)
    else:
        scores, scores_q = OutputStage(F32, np.float32(s_q * s_k)), None
    p_scale = 1 / 255 if probs == U8 else 1 / 256
    p = QParams(p_scale, 0 if probs == U8 else -128, probs)
    out = OutputStage(U8, np.float32(p_scale * s_v / 0.04), 120)
    quant = AttentionQuant(
        QParams(s_q, zq, q_dtype),
        QParams(s_k, zk, k_dtype),
        QParams(s_v, 125, U8),
        scores,
        scores_q,
        p,
        out,
    )
    return q, k, v, quant


def unfused(q, k, v, mask, x_div, quant):
    """What the graph's steps compute one after the other (the [B, H, Sq, Sk] scores
    materialised)."""
    s = K.qmatmul(q, quant.q.zero_point, k.swapaxes(-1, -2), quant.k.zero_point, quant.scores)
    p = K.softmax(s, quant.scores_q, quant.probs, x_div, mask)
    return K.qmatmul(p, quant.probs.zero_point, v, quant.v.zero_point, quant.out)


# ---- the kernel ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "b, h, sq, sk, d",
    [(1, 12, 128, 128, 32), (2, 3, 77, 77, 20), (1, 2, 5, 600, 64), (2, 1, 130, 9, 7)],
)
@pytest.mark.parametrize("masked", [False, True])
def test_int8_attention_is_the_unfused_steps_on_every_isa(b, h, sq, sk, d, masked):
    rng = np.random.default_rng(sq * sk + d)
    q, k, v, quant = int8_case(rng, b, h, sq, sk, d)
    mask = padding_mask(rng, b, sk) if masked else None
    want = unfused(q, k, v, mask, 5.657, quant)
    got = on_every_isa(lambda: K.attention(q, k, v, mask, 5.657, quant))
    assert got.dtype == U8 and np.array_equal(got, want)


@pytest.mark.parametrize(
    "q_dtype, k_dtype, scores_codes, probs",
    [(S8, U8, True, U8), (U8, U8, False, U8), (S8, S8, True, S8), (U8, S8, False, S8)],
)
def test_int8_attention_dtypes_and_float_scores(q_dtype, k_dtype, scores_codes, probs):
    rng = np.random.default_rng(7)
    q, k, v, quant = int8_case(rng, 2, 2, 33, 47, 16, q_dtype, k_dtype, scores_codes, probs)
    # a mask per query row and head (a causal one), not just per batch
    mask = np.triu(np.full((33, 47), LOWEST, np.float32), 1)[None, None] + np.zeros(
        (1, 2, 1, 1), np.float32
    )
    want = unfused(q, k, v, mask, 1.0, quant)
    got = on_every_isa(lambda: K.attention(q, k, v, mask, 1.0, quant))
    assert np.array_equal(got, want)


def test_int8_attention_is_close_to_its_real_values():
    """Against float64 numpy on the dequantized codes: within a few output steps."""
    rng = np.random.default_rng(3)
    q, k, v, quant = int8_case(rng, 1, 4, 64, 64, 32, scores_codes=False)
    mask = padding_mask(rng, 1, 64)
    got = K.attention(q, k, v, mask, 4.0, quant).astype(np.float64)
    real = [
        (x.astype(np.float64) - p.zero_point) * p.scale
        for x, p in zip((q, k, v), (quant.q, quant.k, quant.v))
    ]
    s = real[0] @ real[1].swapaxes(-1, -2) / 4.0 + mask
    e = np.exp(s - s.max(-1, keepdims=True))
    y = (e / e.sum(-1, keepdims=True)) @ real[2]
    want = y / 0.04 + 120
    assert np.abs(got - np.clip(np.rint(want), 0, 255)).max() <= 3


@pytest.mark.parametrize("sq, sk, d", [(128, 128, 32), (77, 600, 24), (3, 5, 1)])
def test_fp32_attention_is_the_unfused_steps_and_numpy(sq, sk, d):
    rng = np.random.default_rng(sk)
    q, k, v = (rng.standard_normal((2, 3, n, d)).astype(np.float32) for n in (sq, sk, sk))
    mask = padding_mask(rng, 2, sk)
    s = K.smatmul(q, k.swapaxes(-1, -2))
    want = K.smatmul(K.softmax(s, None, None, 2.5, mask), v)
    got = on_every_isa(lambda: K.attention(q, k, v, mask, 2.5))
    assert np.array_equal(got, want)
    s64 = q.astype(np.float64) @ k.swapaxes(-1, -2).astype(np.float64) / 2.5 + mask
    e = np.exp(s64 - s64.max(-1, keepdims=True))
    ref = (e / e.sum(-1, keepdims=True)) @ v.astype(np.float64)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_smatmul_is_exact_on_every_isa_and_thread_count():
    """The fp32 MatMul of two activations outside the fused attention (pyrt_smatmul)."""
    rng = np.random.default_rng(12)
    a = rng.standard_normal((2, 3, 37, 300)).astype(np.float32)
    b = rng.standard_normal((1, 3, 45, 300)).astype(np.float32).swapaxes(-1, -2)
    got = on_every_isa(lambda: K.smatmul(a, b))
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    for threads in (2, 3):  # fewer matrices than threads: bands of rows
        ctx = _kernels.Context(threads=threads)
        assert np.array_equal(K.smatmul(a, b, ctx), got)
        assert np.array_equal(K.smatmul(a[:1, :1], b[:, :1], ctx), got[:1, :1])


def test_attention_threads_and_layouts_give_the_same_bits():
    rng = np.random.default_rng(11)
    q, k, v, quant = int8_case(rng, 2, 6, 100, 100, 32)
    mask = padding_mask(rng, 2, 100)
    one = K.attention(q, k, v, mask, 5.0, quant, ctx=_kernels.Context(threads=1))
    two = K.attention(q, k, v, mask, 5.0, quant, ctx=_kernels.Context(threads=2))
    assert np.array_equal(one, two)
    # contiguous copies, a materialised K^T read back as K, and a strided output
    kt = np.ascontiguousarray(k.swapaxes(-1, -2))
    y = np.zeros((2, 100, 6, 32), U8).transpose(0, 2, 1, 3)
    K.attention(np.ascontiguousarray(q), kt.swapaxes(-1, -2), v, mask, 5.0, quant, y=y)
    assert np.array_equal(y, one)
    # batch dims broadcast: one K, V for every batch
    got = K.attention(q, k[:1], v[:1], mask, 5.0, quant)
    want = unfused(q, k[:1], v[:1], mask, 5.0, quant)
    assert np.array_equal(got, want)


def test_attention_refuses_bad_arguments():
    rng = np.random.default_rng(0)
    q, k, v, quant = int8_case(rng, 1, 2, 8, 8, 4)
    with pytest.raises(KernelError, match="4-D"):
        K.attention(q[0], k, v, None, 1.0, quant)
    with pytest.raises(KernelError, match="does not fit"):
        K.attention(q, k[..., :3], v, None, 1.0, quant)
    with pytest.raises(KernelError, match="must be uint8"):
        K.attention(q.astype(np.int8), k, v, None, 1.0, quant)
    with pytest.raises(KernelError, match="x_div"):
        K.attention(q, k, v, None, 0.0, quant)
    with pytest.raises(KernelError, match="float32"):
        K.attention(q.astype(np.float32), k, v)
    bad = AttentionQuant(quant.q, quant.k, quant.v, quant.scores, None, quant.probs, quant.out)
    with pytest.raises(KernelError, match="scores_q"):
        K.attention(q, k, v, None, 1.0, bad)
    with pytest.raises(KernelError, match="y must be"):
        K.attention(q, k, v, None, 1.0, quant, y=np.empty((1, 2, 8, 4), np.float32))
    with pytest.raises(KernelError, match="batch dims"):
        K.attention(np.concatenate([q, q]), np.concatenate([k, k, k]), v, None, 1.0, quant)


# ---- sessions: the matcher, the C plan, against onnxruntime ---------------------------


def sessions(model, cores: int = 1):
    """(fused, unfused) sessions of model: unfused with fuse_attention switched off."""
    fused = pyrt.Session(model, cores=cores)
    keep = patterns_attention.fuse_attention
    patterns_attention.fuse_attention = lambda g: None
    try:
        plain = pyrt.Session(model, cores=cores)
    finally:
        patterns_attention.fuse_attention = keep
    return fused, plain


@pytest.fixture(scope="module")
def minilm2():
    fp32 = zt.encoder(layers=2)
    calib = zt.encoder_inputs(128, n=3, seed=1) + zt.encoder_inputs(40, n=2, batch=2, seed=2)
    return {"fp32": fp32, "int8": zt.quantize_encoder(fp32, calib)}


@pytest.mark.parametrize("variant", ["int8", "fp32"])
def test_encoder_attention_is_fused_and_bit_identical(minilm2, variant):
    fused, plain = sessions(minilm2[variant])
    assert sum(s.node.op_type == "Attention" for s in fused._steps) == 2
    assert not any(s.node.op_type == "Attention" for s in plain._steps)
    assert not any(s.node.op_type in ("Transpose", "Softmax") for s in fused._steps)
    for seq, batch in ((16, 1), (77, 2), (128, 1), (200, 1)):
        (feed,) = zt.encoder_inputs(seq, batch=batch, seed=seq)
        first = fused.run(feed)[0]  # the interpreter (records the shapes)
        replay = fused.run(feed)[0]  # the C plan
        want = plain.run(feed)[0]
        assert np.array_equal(first, want) and np.array_equal(replay, want), (seq, batch)


def test_encoder_attention_cores_and_isas_agree(minilm2):
    (feed,) = zt.encoder_inputs(96, batch=2, seed=9)
    results = {}
    for isa in _kernels.isa_available():
        for cores in (1, 2):
            session = pyrt.Session(minilm2["int8"], isa=isa, cores=cores)
            session.run(feed)
            results[isa, cores] = session.run(feed)[0]
    first = results["scalar", 1]
    assert all(np.array_equal(first, r) for r in results.values()), list(results)


@pytest.mark.parametrize("seq", [16, 100, 384])
def test_fused_encoder_matches_onnxruntime(minilm2, ort_reference, seq):
    model = minilm2["int8"]
    (feed,) = zt.encoder_inputs(seq, batch=2, seed=seq)
    ref = ort_reference(model, feed)[0]
    ours = compare("last_hidden_state", pyrt.Session(model).run(feed)[0], ref, None)
    assert ours.cosine >= 0.995 and ours.max_abs_err < 1.0, ours
    fp32 = minilm2["fp32"]
    np.testing.assert_allclose(
        pyrt.Session(fp32).run(feed)[0], ort_reference(fp32, feed)[0], rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_vit_attention_is_fused_and_bit_identical(variant):
    from pyrt import zoo

    model = zt.vit(layers=1)
    calib = zoo.calibration_data(model, 2)
    if variant == "int8":
        model = zoo.quantize_qdq(model, calib, op_types=["MatMul", "Gemm"])
    fused, plain = sessions(model)
    assert sum(s.node.op_type == "Attention" for s in fused._steps) == 1
    x = calib[1]
    a, b, want = fused.run(x)[0], fused.run(x)[0], plain.run(x)[0]
    assert np.array_equal(a, want) and np.array_equal(b, want)


def attention_graph(p_is_output: bool = False, rank: int = 4, mask: tuple | None = None):
    """q, k, v [(1,) 2, 24, 8] -> MatMul(q, kᵀ) -> Div -> (Add mask) -> Softmax ->
    MatMul(p, v) in fp32, the softmax output a graph output too when p_is_output (the
    chain cannot fuse)."""
    shape = [1, 2, 24, 8][4 - rank :]
    perm = [0, 1, 3, 2] if rank == 4 else [0, 2, 1]
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=perm),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Div", ["s", "d"], ["sd"]),
    ]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv"]
    if mask is not None:
        nodes.append(helper.make_node("Add", ["sd", "mask"], ["sm"]))
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, list(mask)))
    nodes += [
        helper.make_node("Softmax", ["sm" if mask else "sd"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if p_is_output:
        outputs.append(helper.make_tensor_value_info("p", TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes,
        "attention",
        inputs,
        outputs,
        [helper.make_tensor("d", TensorProto.FLOAT, [], [2.83])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    "p_is_output, rank, mask, fuses",
    [
        (False, 4, None, True),
        (True, 4, None, False),  # P is a graph output
        (False, 3, None, True),  # [heads, seq, head size]
        (False, 4, (1, 1, 24, 24), True),  # a mask per query row
        (False, 4, (3, 2, 24, 24), False),  # the mask enlarges the scores: runs unfused
    ],
)
def test_attention_falls_back_where_the_chain_does_not_fit(
    ort_reference, p_is_output, rank, mask, fuses
):
    model = attention_graph(p_is_output, rank, mask)
    rng = np.random.default_rng(5)
    shape = (1, 2, 24, 8)[4 - rank :]
    feed = {n: rng.standard_normal(shape).astype(np.float32) for n in "qkv"}
    if mask is not None:
        feed["mask"] = np.where(rng.random(mask) < 0.3, -1e9, 0).astype(np.float32)
    session = pyrt.Session(model)
    assert any(s.node.op_type == "Attention" for s in session._steps) is fuses
    want = ort_reference(model, feed)
    for _ in range(2):  # the interpreter, then the C plan
        for got, ref in zip(session.run(feed), want):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # fused or not, the replay runs the attention's steps as C entries (broadcasts that
    # strides cannot express, the enlarging mask's, run its Softmax and P·V in Python)
    (program,) = session._programs.values()
    python = {seg.step.node.op_type for seg in program.segments if seg.step is not None}
    allowed = {
        "Transpose",
        "Add",
        "Div",
        *(["BatchMatMul", "Softmax"] if mask == (3, 2, 24, 24) else []),
    }
    assert python <= allowed, python


def test_a_constant_mask_folds_at_load(ort_reference):
    """attention_mask an initializer: the mask arithmetic is computed at load, and the fused
    attention reads the folded mask from the arena."""
    model = zt.encoder(layers=1)
    (feed,) = zt.encoder_inputs(24, batch=2, seed=8)
    mask = feed.pop("attention_mask")
    graph = model.graph
    graph.input.remove(next(i for i in graph.input if i.name == "attention_mask"))
    graph.initializer.append(onnx.numpy_helper.from_array(mask, "attention_mask"))
    session = pyrt.Session(model)
    ops = [s.node.op_type for s in session._steps]
    assert "MaskChain" not in ops and "Cast" not in ops and ops.count("Attention") == 1, ops
    want = ort_reference(model, feed)[0]
    for _ in range(2):  # the interpreter, then the C plan
        np.testing.assert_allclose(session.run(feed)[0], want, rtol=1e-4, atol=1e-4)
