"""The CNN ops outside convolutions, against onnxruntime: Concat / Split on the channel
axis, the ShuffleNet channel shuffle, BatchNormalization that no conv absorbs (fp32, and
DQ -> BN -> (Relu) -> Q on int8 codes), fp32 AveragePool; that the layout pass keeps them
NHWC between convolutions, that the C plan runs them (replays identical to the
interpreter, on every kernel table), and that malformed ones are a PyrtError naming the
node. Their kernels are held to numpy and to the scalar table in test_kernels_cnn.py.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import _kernels, zoo
from pyrt.program import Program

C, HW = 16, 12


class Builder:
    """A batch-1 NCHW float model: convs with random weights and the nodes under test."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def const(self, value: np.ndarray) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        name = self.name(op.lower())
        outs = [f"{name}_y{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs

    def conv(self, x: str, cin: int, cout: int, k: int = 1) -> str:
        w = (self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2 / (cin * k * k))).astype(
            np.float32
        )
        b = (self.rng.standard_normal(cout) * 0.1).astype(np.float32)
        (y,) = self.node("Conv", [x, self.const(w), self.const(b)], pads=[k // 2] * 4)
        return self.node("Relu", [y])[0]

    def batchnorm(self, x: str, c: int) -> str:
        r = self.rng
        params = [1 + 0.2 * r.standard_normal(c), 0.5 * r.standard_normal(c)]
        params += [0.3 * r.standard_normal(c), r.uniform(0.5, 2.0, c)]
        names = [self.const(p.astype(np.float32)) for p in params]
        return self.node("BatchNormalization", [x, *names], epsilon=1e-5)[0]

    def model(self, out: str, out_shape: list[int]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "cnn_ops",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, HW, HW])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 9
        onnx.checker.check_model(model)
        return model


def concat_split() -> onnx.ModelProto:
    """Two conv branches -> Concat (channels) -> Split 5 / 19 -> convs -> Concat, and a
    Slice of channels 2 .. C - 3 of the first Concat."""
    b = Builder(1)
    x = b.conv("x", 3, C)
    y = b.conv(x, C, 8, 3)
    cat = b.node("Concat", [x, y], axis=1)[0]
    lo, hi = b.node("Split", [cat, b.const(np.array([5, C + 3], np.int64))], 2, axis=1)
    ends = b.const(np.array([-3], np.int64))
    part = b.node("Slice", [cat, b.const(np.array([2], np.int64)), ends, b.const(np.array([1]))])
    convs = [b.conv(lo, 5, 8), b.conv(hi, C + 3, 8), b.conv(part[0], C + 3, 8)]
    out = b.node("Concat", convs, axis=-3)[0]
    return b.model(b.conv(out, 24, 4), [1, 4, HW, HW])


def channel_shuffle(five_d: bool) -> onnx.ModelProto:
    """conv -> Reshape [1, g, C/g, ...] -> Transpose -> Reshape -> conv, as exporters write
    ShuffleNet's shuffle (4-D with H*W merged, or 5-D)."""
    b, g = Builder(2), 4
    x = b.conv("x", 3, C)
    spatial = [HW, HW] if five_d else [HW * HW]
    y = b.node("Reshape", [x, b.const(np.array([1, g, C // g, *spatial], np.int64))])[0]
    perm = [0, 2, 1, 3, 4] if five_d else [0, 2, 1, 3]
    y = b.node("Transpose", [y], perm=perm)[0]
    y = b.node("Reshape", [y, b.const(np.array([1, C, HW, HW], np.int64))])[0]
    return b.model(b.conv(y, C, 4, 3), [1, 4, HW, HW])


def densenet_layer(act: str | None) -> onnx.ModelProto:
    """conv -> Concat -> BatchNormalization -> (Relu | Clip)? -> conv -> AveragePool: a
    BN no conv absorbs, then a transition pool."""
    b = Builder(3)
    x = b.conv("x", 3, C)
    cat = b.node("Concat", [x, b.conv(x, C, 8, 3)], axis=1)[0]
    y = b.batchnorm(cat, C + 8)
    if act == "relu":
        y = b.node("Relu", [y])[0]
    elif act == "clip":
        y = b.node("Clip", [y, b.const(np.float32(0)), b.const(np.float32(3))])[0]
    y = b.conv(y, C + 8, 8)
    y = b.node("AveragePool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])[0]
    return b.model(b.conv(y, 8, 4), [1, 4, HW // 2, HW // 2])


MODELS = {
    "concat_split": concat_split,
    "shuffle_4d": lambda: channel_shuffle(False),
    "shuffle_5d": lambda: channel_shuffle(True),
    "bn": lambda: densenet_layer(None),
    "bn_relu": lambda: densenet_layer("relu"),
    "bn_clip": lambda: densenet_layer("clip"),
}


def feeds(seed: int = 7) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal((1, 3, HW, HW)).astype(np.float32)}


def quantized(model: onnx.ModelProto, act: str) -> onnx.ModelProto:
    calib = [feeds(s) for s in range(4)]
    return zoo.quantize_qdq(model, calib, activation_type=act)


def program_of(session: pyrt.Session) -> Program:
    (program,) = [p for p in session._programs.values() if isinstance(p, Program)]
    return program


def run_checked(model: onnx.ModelProto, isa: str | None = None) -> tuple[np.ndarray, pyrt.Session]:
    """The output; the interpreted run (first) and two replays agree bit for bit, and
    every step ran in the C plan."""
    session = pyrt.Session(model, isa=isa)
    first = session.run(feeds())[0]
    for _ in range(2):
        np.testing.assert_array_equal(session.run(feeds())[0], first)
    program = program_of(session)
    numpy_steps = [seg.step.node.name for seg in program.segments if seg.step is not None]
    assert not numpy_steps, f"ran in numpy: {numpy_steps}"
    return first, session


def transposes(session: pyrt.Session) -> int:
    return sum(s.node.op_type in ("ToNHWC", "ToNCHW") for s in session._steps)


@pytest.mark.parametrize("name", MODELS)
def test_fp32_matches_onnxruntime_nhwc_throughout(name, ort_reference):
    model = MODELS[name]()
    ref = ort_reference(model, feeds())[0]
    ours, session = run_checked(model)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    assert transposes(session) == 2, "one transpose in, one out: NHWC from conv to conv"


@pytest.mark.parametrize("act", ["uint8", "int8"])
@pytest.mark.parametrize("name", MODELS)
def test_qdq_matches_onnxruntime_nhwc_throughout(name, act):
    model = quantized(MODELS[name](), act)
    _, session = run_checked(model)
    report = pyrt.check(model, feeds(), layers=True)
    assert report.outputs[0].cosine >= 0.999, report
    # Movement is exact and so is the fused BN but for a tie where the reference's
    # intermediate roundings tip a half (patterns.match_batchnorm); the int8 AveragePool
    # rounds its sum once, the reference twice: one step at most, which the last conv
    # may spread.
    for layer in report.layers[:-1]:
        assert layer.max_abs_err_steps <= 1 and layer.exact_share >= 0.97, report
    assert transposes(session) == 2
    ops = {s.node.op_type for s in session._steps}
    if name.startswith("bn"):
        assert "QAffine" in ops
    if name.startswith("shuffle"):
        assert "ChannelShuffle" in ops and "Transpose" not in ops


@pytest.mark.parametrize("name", ["concat_split", "shuffle_5d", "bn_relu"])
def test_every_isa_gives_the_same_bits(name):
    for model in (MODELS[name](), quantized(MODELS[name](), "uint8")):
        reference, _ = run_checked(model, "scalar")
        for isa in _kernels.isa_available():
            np.testing.assert_array_equal(run_checked(model, isa)[0], reference)


def test_int8_batchnorm_matches_its_definition():
    """QAffine's output is rint(fmaf(x - zx, sx * k / sy, shift / sy)) + zy clamped, per
    channel: checked against float64 numpy of the same formula on every code."""
    model = quantized(MODELS["bn_relu"](), "uint8")
    session = pyrt.Session(model)
    (step,) = [s for s in session._steps if s.node.op_type == "QAffine"]
    a = step.node.attrs
    c = a["a"].size
    x = np.tile(np.arange(256, dtype=np.uint8), (c, 1)).T.reshape(1, 16, 16, c)
    (y,) = step.fn(x)
    v = (x.astype(np.float64) - a["qx"].zero_point) * a["a"] + a["b"]
    want = np.clip(np.rint(v) + a["qy"].zero_point, a["qmin"], a["qmax"])
    assert np.abs(y.astype(np.int64) - want).max() <= 1  # fma vs float64: a tie at most
    assert np.mean(y == want) > 0.999


def bad_model(nodes, inits, out_shape) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def test_concat_of_mismatched_shapes_names_the_node():
    pool = helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2])
    cat = helper.make_node("Concat", ["x", "p"], ["y"], axis=1, name="the_concat")
    with pytest.raises(pyrt.PyrtError, match="the_concat"):
        pyrt.Session(bad_model([pool, cat], [], [1, 8, 5, 5])).run(
            {"x": np.zeros((1, 4, 5, 5), np.float32)}
        )


def test_split_sizes_not_summing_name_the_node():
    sizes = numpy_helper.from_array(np.array([1, 2], np.int64), "sizes")
    split = helper.make_node("Split", ["x", "sizes"], ["a", "y"], axis=1, name="the_split")
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(pyrt.PyrtError, match="the_split"):
        pyrt.Session(bad_model([split], [sizes], [1, 2, 5, 5])).run({"x": x})


@pytest.mark.parametrize("shape", [[2, 6], [1, 6, 10], [2, 6, 3, 5]])
@pytest.mark.parametrize("quantize", [False, True])
def test_batchnorm_of_any_rank(shape, quantize, ort_reference):
    """BatchNorm1d / 2d exports: [N, C], [N, C, L], [N, C, H, W], fp32 and QDQ."""
    b = Builder(4)
    y = b.node("Relu", [b.batchnorm("x", shape[1])])[0]
    graph = helper.make_graph(
        b.nodes,
        "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, shape)],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    x = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    if quantize:
        calib = [{"x": np.random.default_rng(s).standard_normal(shape).astype(np.float32)}
                 for s in range(4)]  # fmt: skip
        model = zoo.quantize_qdq(model, calib)
    session = pyrt.Session(model)
    assert any(s.node.op_type == ("QAffine" if quantize else "Affine") for s in session._steps)
    ours, ref = session.run(x)[0], ort_reference(model, x)[0]
    np.testing.assert_array_equal(session.run(x)[0], ours)  # the replay
    step = float(np.abs(ref).max()) / 255 if quantize else 0.0
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 + 1.01 * step)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamically_quantized_cnn_is_onnxruntimes(name, per_channel, ort_reference, tmp_path):
    """quantize_dynamic's CNN (DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul by
    input scale x weight scale): every ConvInteger is the int8 conv with the zero point
    and scale read at run time, and the output is the reference's bit for bit (its float
    BatchNormalizations included)."""
    from onnxruntime import quantization as ort_quant

    onnx.save(zoo.MODELS[name](width=8, size=32), tmp_path / "fp32.onnx")
    ort_quant.quantize_dynamic(
        tmp_path / "fp32.onnx",
        tmp_path / "dyn.onnx",
        per_channel=per_channel,
        weight_type=ort_quant.QuantType.QUInt8,
    )
    model = onnx.load(tmp_path / "dyn.onnx")
    session = pyrt.Session(model)
    convs = [r for r in session.report() if r.op_type == "ConvInteger"]
    assert convs and all(r.ran_as == "int8" for r in convs)
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    feed = {session.inputs[0].name: x}
    ref = ort_reference(model, feed)[0]
    for _ in range(2):  # recorded, then replayed as the C plan
        np.testing.assert_array_equal(session.run(feed)[0], ref)
    in_c = {s.node.op_type for seg in program_of(session).segments if seg.step is None
            for s in seg.entry_steps}  # fmt: skip
    assert {"QConv", "DynamicQuantizeLinear"} <= in_c
