"""Hostile models: every defect is a pyrt.ModelError (or subclass) raised at load, naming the
node (or initializer, or input) and the field; nothing over the memory cap is ever allocated."""

from __future__ import annotations

import contextlib
import tracemalloc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt

X = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)


def build(nodes, inputs, outputs, inits=(), opset=17, domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def vi(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def qdq_conv(
    *,
    scale=None,
    zero=None,
    w_shape=(4, 3, 3, 3),
    w_scale=None,
    w_zero=None,
    axis=0,
    x_shape=(1, 3, 8, 8),
    opset=17,
    **conv_attrs,
) -> onnx.ModelProto:
    """x -> Q -> DQ -> Conv(DQ(w) per channel, DQ(int32 bias)) -> Relu -> Q -> DQ -> y."""
    rng = np.random.default_rng(0)
    scale = np.float32(0.05) if scale is None else scale
    zero = np.uint8(128) if zero is None else zero
    w_scale = np.full(w_shape[0], 0.01, np.float32) if w_scale is None else w_scale
    w_zero = np.zeros(np.shape(w_scale), np.int8) if w_zero is None else w_zero
    inits = [
        const("s", scale),
        const("z", zero),
        const("w", rng.integers(-100, 100, w_shape).astype(np.int8)),
        const("ws", w_scale),
        const("wz", w_zero),
        const("b", rng.integers(-500, 500, w_shape[0]).astype(np.int32)),
        const("bs", (np.float32(0.05) * np.full(w_shape[0], 0.01)).astype(np.float32)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="dq_w", axis=axis),
        helper.make_node("DequantizeLinear", ["b", "bs"], ["bd"], name="dq_b", axis=0),
        helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], name="conv", **conv_attrs),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"], name="q_out"),
        helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["y"], name="dq_out"),
    ]
    return build(nodes, [vi("x", shape=list(x_shape))], [vi("y")], inits, opset)


def qdq_pool(op: str, x_shape=(1, 3, 8, 8), **attrs) -> onnx.ModelProto:
    inits = [const("s", np.float32(0.05)), const("z", np.uint8(128))]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
        helper.make_node(op, ["xd"], ["p"], name="pool", **attrs),
        helper.make_node("QuantizeLinear", ["p", "s", "z"], ["pq"], name="q_out"),
        helper.make_node("DequantizeLinear", ["pq", "s", "z"], ["y"], name="dq_out"),
    ]
    return build(nodes, [vi("x", shape=list(x_shape))], [vi("y")], inits)


def refused(model, match: str | None, error=pyrt.ModelError, **session_args) -> pyrt.ModelError:
    """The model fails at load (Session construction), never later, with `match` in the text."""
    with pytest.raises(error, match=match) as info:
        pyrt.Session(model, **session_args)
    return info.value


def test_the_hand_built_models_run():
    assert pyrt.run(qdq_conv(), X)[0].shape == (1, 4, 6, 6)
    assert pyrt.run(qdq_conv(pads=[1, 1, 1, 1], strides=[2, 2]), X)[0].shape == (1, 4, 4, 4)
    assert pyrt.run(qdq_pool("MaxPool", kernel_shape=[3, 3]), X)[0].shape == (1, 3, 6, 6)
    assert pyrt.run(qdq_pool("AveragePool", kernel_shape=[2, 2]), X)[0].shape == (1, 3, 7, 7)
    assert all(r.ran_as == "int8" for r in pyrt.Session(qdq_conv()).report() if r.op_type == "Conv")


# ---- the file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\xff" * 64,
        b"not an onnx file at all",
        bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
        numpy_helper.from_array(np.ones(4, np.float32), "t").SerializeToString(),
    ],
    ids=["empty", "nul", "ff", "text", "random", "a-tensor-proto"],
)
def test_garbage_bytes(data):
    refused(data, None)


def test_truncated_files(tmp_path):
    blob = qdq_conv().SerializeToString()
    for cut in (len(blob) // 3, len(blob) // 2, len(blob) - 7, len(blob) - 1):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(blob[:cut])
        refused(path, None)
    for cut in range(0, len(blob), max(1, len(blob) // 97)):  # every prefix: error or a model
        with contextlib.suppress(pyrt.ModelError):
            pyrt.Session(blob[:cut])


def test_not_a_model_argument(tmp_path):
    refused("/nonexistent/model.onnx", "not found")
    refused(tmp_path, "not found")  # a directory
    refused(42, "path, bytes or onnx.ModelProto")
    refused(None, "path, bytes or onnx.ModelProto")


def test_session_arguments_are_checked():
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(pyrt.PyrtError, match="cores"):
            pyrt.Session(qdq_conv(), cores=bad)
    for bad in (0, -1, 1.5, "1", True):
        with pytest.raises(pyrt.PyrtError, match="memory_limit"):
            pyrt.Session(qdq_conv(), memory_limit=bad)


def test_the_callers_model_proto_is_not_modified():
    model = qdq_conv()
    before = model.SerializeToString()
    pyrt.Session(model).run(X)
    assert model.SerializeToString() == before


def test_external_data_outside_the_model_directory_is_refused(tmp_path):
    model = build(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        [vi("x", shape=[3])],
        [vi("y")],
        [const("w", np.ones(3, np.float32))],
    )
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for location in ("../../../../etc/passwd", "/etc/passwd", "missing.bin"):
        del w.external_data[:]
        w.external_data.add(key="location", value=location)
        path = tmp_path / "m.onnx"
        path.write_bytes(model.SerializeToString())
        refused(path, "external data")
    refused(model.SerializeToString(), "external data")


# ---- graph structure ----------------------------------------------------------------


def test_empty_graph():
    refused(build([], [], []), "empty")
    refused(build([helper.make_node("Relu", ["x"], ["y"])], [vi("x", shape=[1])], []), "no outputs")


def test_output_not_produced():
    model = qdq_conv()
    model.graph.output.append(vi("ghost"))
    refused(model, "output 'ghost'")


def test_missing_tensor_names_the_node_and_the_tensor():
    model = qdq_conv()
    model.graph.node[4].input[1] = "nowhere"
    refused(model, "conv.*'nowhere'")


def test_missing_required_input_names_the_node():
    model = qdq_conv()
    del model.graph.node[4].input[1:]  # Conv without weights
    refused(model, "conv.*required input 1")


@pytest.mark.parametrize("where", [(1, 0, "rq"), (4, 0, "y"), (5, 0, "r")])
def test_cycles_name_a_node(where):
    node, slot, tensor = where
    model = qdq_conv()
    model.graph.node[node].input[slot] = tensor  # consume a tensor produced downstream (or self)
    refused(model, "cycle")


def test_duplicate_names():
    model = qdq_conv()
    model.graph.node[5].output[0] = "c"  # Relu writes Conv's output again
    refused(model, "relu.*'c'.*already produced")
    model = qdq_conv()
    model.graph.initializer.append(const("s", np.float32(1.0)))
    refused(model, "initializer 's' is defined twice")
    model = qdq_conv()
    model.graph.input.append(vi("x", shape=[1, 3, 8, 8]))
    refused(model, "duplicate")


def test_input_without_tensor_type():
    model = qdq_conv()
    model.graph.input[0].type.tensor_type.elem_type = 0
    refused(model, "input 'x'")
    seq = helper.make_tensor_sequence_value_info("x", TensorProto.FLOAT, None)
    refused(build([helper.make_node("Relu", ["x"], ["y"])], [seq], [vi("y")]), "input 'x'")


def test_opsets():
    refused(qdq_conv(opset=99), "opset 99")
    model = build(
        [helper.make_node("Thing", ["x"], ["y"], name="thing", domain="not.imported")],
        [vi("x", shape=[1])],
        [vi("y")],
    )
    refused(model, "thing.*not.imported")


# ---- unsupported operators: all of them, at load ------------------------------------


def test_every_unsupported_op_is_listed_at_load():
    branch = helper.make_graph(
        [helper.make_node("Identity", ["y"], ["t"])], "branch", [], [vi("t")]
    )
    model = qdq_conv()
    model.graph.node.extend(
        [
            helper.make_node("FancyOp", ["y"], ["f1"], name="fancy_a", domain="x.y"),
            helper.make_node("NotAnOnnxOp", ["y"], ["f2"], name="made_up_b"),
            helper.make_node(
                "If", ["cond"], ["f3"], name="if_c", then_branch=branch, else_branch=branch
            ),
            helper.make_node("Loop", ["", "cond"], ["f4"], name="loop_d", body=branch),
        ]
    )
    model.graph.input.append(vi("cond", TensorProto.BOOL, []))
    model.graph.output.extend([vi(n) for n in ("f1", "f2", "f3", "f4")])
    model.opset_import.append(helper.make_opsetid("x.y", 1))
    error = refused(model, "4 unsupported", pyrt.UnsupportedOpError)
    for name in ("fancy_a", "made_up_b", "if_c", "loop_d", "FancyOp", "If", "Loop"):
        assert name in str(error)
    assert isinstance(error, pyrt.ModelError)


# ---- quantization parameters --------------------------------------------------------


@pytest.mark.parametrize("scale", [0.0, -0.5, np.nan, np.inf, -np.inf])
def test_bad_activation_scale_names_the_node_and_field(scale):
    refused(qdq_conv(scale=np.float32(scale)), "q_in.*scale")


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_bad_per_channel_weight_scale(bad):
    w_scale = np.full(4, 0.01, np.float32)
    w_scale[2] = bad
    refused(qdq_conv(w_scale=w_scale), "dq_w.*scale")


def test_scale_of_integer_type():
    refused(qdq_conv(scale=np.int32(1)), "q_in.*scale must be float")


@pytest.mark.parametrize(
    "zero, match",
    [
        (np.float32(3), "q_in.*zero point"),  # not an integer type
        (np.int32(3), "q_in.*zero point has type int32"),  # Q never outputs int32
        (np.uint16(3), "q_in.*zero point has type uint16"),  # 16-bit needs opset 21
        (np.int64(3), "q_in.*zero point has type int64"),
        (np.array([128, 128], np.uint8), "q_in.*zero point shape"),  # 2 values, 1 scale
    ],
)
def test_bad_zero_point(zero, match):
    refused(qdq_conv(zero=zero), match)


def test_sixteen_bit_zero_points_from_opset_21():
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq"),
    ]
    inits = [const("s", np.float32(0.1)), const("z", np.int16(100))]
    model = build(nodes, [vi("x", shape=[4])], [vi("y"), vi("q", TensorProto.INT16)], inits, 21)
    y, q = pyrt.run(model, np.array([0.0, 1.0, 1e9, np.nan], np.float32))
    assert q.tolist() == [100, 110, 32767, 100]  # saturates; NaN -> the zero point
    refused(build(nodes, [vi("x", shape=[4])], [vi("y")], inits, 17), "int16")


def test_zero_point_of_another_type_than_the_data():
    refused(qdq_conv(w_zero=np.zeros(4, np.uint8)), "dq_w.*zero point is uint8.*int8")


@pytest.mark.parametrize("axis", [4, 7, -5])
def test_axis_out_of_range(axis):
    refused(qdq_conv(axis=axis), "dq_w.*axis")


def test_per_axis_scale_of_wrong_length_or_rank():
    refused(qdq_conv(w_scale=np.full(3, 0.01, np.float32)), "dq_w.*3 values")
    refused(
        qdq_conv(w_scale=np.full((4, 1), 0.01, np.float32), w_zero=np.zeros((4, 1), np.int8)),
        "dq_w.*1-D",
    )


def test_qoperator_bad_scale_names_the_original_node():
    rng = np.random.default_rng(0)
    inits = [
        const("xs", np.float32(0.0)),  # bad
        const("xz", np.uint8(128)),
        const("w", rng.integers(-10, 10, (4, 3, 3, 3)).astype(np.int8)),
        const("ws", np.float32(0.01)),
        const("wz", np.int8(0)),
        const("ys", np.float32(0.1)),
        const("yz", np.uint8(128)),
    ]
    node = helper.make_node(
        "QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], name="qlconv"
    )
    model = build([node], [vi("x", TensorProto.UINT8, [1, 3, 8, 8])], [vi("y")], inits)
    refused(model, "qlconv.*scale")


# ---- operator attributes ------------------------------------------------------------


@pytest.mark.parametrize(
    "attrs, match",
    [
        (dict(strides=[0, 1]), "conv.*strides"),
        (dict(strides=[-1, 1]), "conv.*strides"),
        (dict(dilations=[0, 1]), "conv.*dilations"),
        (dict(pads=[-1, 0, 0, 0]), "conv.*pads"),
        (dict(pads=[1, 1]), "conv.*'pads' needs 4"),
        (dict(group=0), "conv.*groups"),
        (dict(group=-2), "conv.*groups"),
        (dict(group=3), "conv.*groups"),
        (dict(group=2), "conv.*\\[N, 6, H, W\\]"),  # 4 x 3 weights need 6 input channels
        (dict(kernel_shape=[2, 2]), "conv.*kernel_shape"),
        (dict(auto_pad="SIDEWAYS"), "conv.*auto_pad"),
        (dict(w_shape=(4, 3, 9, 9)), "conv.*no output"),
        (dict(w_shape=(4, 5, 3, 3)), "conv.*\\[N, 5, H, W\\]"),
    ],
)
def test_bad_conv_geometry_is_found_at_load(attrs, match):
    refused(qdq_conv(**attrs), match)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(
    "attrs, match",
    [
        (dict(kernel_shape=[0, 3]), "kernel_shape"),
        (dict(kernel_shape=[-1, 3]), "kernel_shape"),
        (dict(kernel_shape=[3, 3], strides=[0, 1]), "strides"),
        (dict(kernel_shape=[3, 3], dilations=[0, 1]), "dilations"),
        (dict(kernel_shape=[3, 3], pads=[-1, 0, 0, 0]), "pads"),
        (dict(kernel_shape=[3, 3], pads=[3, 3, 3, 3]), "pads"),  # a window of padding only
        (dict(kernel_shape=[9, 9]), "no output"),
        (dict(), "kernel_shape"),
    ],
)
def test_bad_pool_geometry_is_found_at_load(op, attrs, match):
    refused(qdq_pool(op, **attrs), f"pool.*{match}")


def test_average_pool_dilations_are_honoured():
    """AveragePool-19 dilations used to be dropped on the int8 path (a silently wrong 7x7)."""
    model = qdq_pool("AveragePool", (1, 3, 9, 9), kernel_shape=[3, 3], dilations=[2, 2])
    model.opset_import[0].version = 19
    x = np.random.default_rng(0).standard_normal((1, 3, 9, 9)).astype(np.float32)
    y = pyrt.run(model, x)[0]
    assert y.shape == (1, 3, 5, 5)
    xq = np.clip(np.rint(x / 0.05) + 128, 0, 255)
    mean = (xq[:, :, 0:5:1, 0:5:1] * 0).copy()
    for i in range(3):
        for j in range(3):
            mean += xq[:, :, 2 * i : 2 * i + 5, 2 * j : 2 * j + 5]
    expected = (np.clip(np.rint((mean / 9 - 128) * 0.05 / 0.05) + 128, 0, 255) - 128) * 0.05
    np.testing.assert_allclose(y, expected, atol=0.05 + 1e-6)


def test_matmul_width_mismatch_is_found_at_load():
    inits = [
        const("s", np.float32(0.05)),
        const("z", np.uint8(128)),
        const("w", np.ones((5, 4), np.int8)),
        const("ws", np.float32(0.01)),
        const("wz", np.int8(0)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="dq_w"),
        helper.make_node("MatMul", ["xd", "wd"], ["m"], name="matmul"),
        helper.make_node("QuantizeLinear", ["m", "s", "z"], ["mq"], name="q_out"),
        helper.make_node("DequantizeLinear", ["mq", "s", "z"], ["y"], name="dq_out"),
    ]
    model = build(nodes, [vi("x", shape=["N", 6])], [vi("y")], inits)
    refused(model, "matmul")


# ---- sizes and the memory cap -------------------------------------------------------


def test_initializer_defects():
    model = qdq_conv()
    huge = TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20, 1 << 20])
    model.graph.initializer.append(huge)
    refused(model, "initializer 'big'.*memory limit")
    model = qdq_conv()
    model.graph.initializer.append(TensorProto(name="neg", data_type=TensorProto.FLOAT, dims=[-3]))
    refused(model, "initializer 'neg'.*negative")
    model = qdq_conv()
    model.graph.initializer[2].dims[0] = 5  # dims say 5 x 3 x 3 x 3, data holds 4 x 3 x 3 x 3
    refused(model, "initializer 'w'")
    model = qdq_conv()
    model.graph.initializer.append(TensorProto(name="untyped", data_type=0, dims=[1]))
    refused(model, "initializer 'untyped'")


def test_declared_and_inferred_shapes_over_the_cap():
    refused(qdq_conv(x_shape=(1 << 16, 3, 1 << 12, 1 << 12)), "'x.*memory limit")
    refused(qdq_conv(pads=[1 << 30] * 4), "memory limit")  # inferred Conv output, 2^62 elements
    refused(qdq_conv(pads=[1 << 12] * 4), "memory limit", memory_limit=16 << 20)


def test_memory_cap_is_configurable():
    pyrt.Session(qdq_conv(), memory_limit=1 << 20)
    refused(qdq_conv(), "memory limit", memory_limit=64)


def _peak_while(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_refused_before_allocating():
    """A 1 GiB initializer under a 64 MiB cap is refused without allocating its data."""
    model = qdq_conv()
    big = TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[1 << 28])
    big.raw_data = b"\0" * 16  # claims 1 GiB; the cap is checked on dims, before decoding
    model.graph.initializer.append(big)

    def load():
        with pytest.raises(pyrt.ModelError, match="memory limit"):
            pyrt.Session(model, memory_limit=64 << 20)

    assert _peak_while(load) < 32 << 20


def _shape_op_model(op: str, inputs, extra_inputs=(), inits=(), **attrs):
    node = helper.make_node(
        op, [i[0] for i in inputs] + list(extra_inputs), ["y"], name="grow", **attrs
    )
    return build([node], [vi(n, t, s) for n, t, s in inputs], [vi("y")], inits)


I64 = TensorProto.INT64
GROWING = {
    "ConstantOfShape": (
        _shape_op_model("ConstantOfShape", [("s", I64, [3])]),
        {"s": np.array([1 << 12, 1 << 12, 1 << 8], np.int64)},
    ),
    "Expand": (
        _shape_op_model("Expand", [("x", TensorProto.FLOAT, ["N"]), ("s", I64, [2])]),
        {"x": np.ones(4, np.float32), "s": np.array([1 << 26, 4], np.int64)},
    ),
    "Tile": (
        _shape_op_model("Tile", [("x", TensorProto.FLOAT, ["N"]), ("r", I64, [1])]),
        {"x": np.ones(4, np.float32), "r": np.array([1 << 26], np.int64)},
    ),
    "Range": (
        _shape_op_model(
            "Range",
            [
                ("a", TensorProto.FLOAT, []),
                ("b", TensorProto.FLOAT, []),
                ("d", TensorProto.FLOAT, []),
            ],
        ),
        {
            "a": np.array(0, np.float32),
            "b": np.array(1, np.float32),
            "d": np.array(1e-9, np.float32),
        },
    ),
    "Pad": (
        _shape_op_model("Pad", [("x", TensorProto.FLOAT, ["N", "M"]), ("p", I64, [4])]),
        {"x": np.ones((4, 4), np.float32), "p": np.array([0, 0, 1 << 24, 1 << 24], np.int64)},
    ),
    "Resize": (
        _shape_op_model(
            "Resize",
            [("x", TensorProto.FLOAT, ["N", "C", "H", "W"])],
            ["", "sc"],
            [const("sc", np.array([1, 1, 4096, 4096], np.float32))],
        ),
        {"x": np.ones((1, 1, 4, 4), np.float32)},
    ),
    "OneHot": (
        _shape_op_model(
            "OneHot",
            [("i", I64, ["N"]), ("d", I64, [])],
            ["v"],
            [const("v", np.array([0, 1], np.float32))],
        ),
        {"i": np.zeros(1024, np.int64), "d": np.array(1 << 20, np.int64)},
    ),
    "Add": (
        _shape_op_model(
            "Add", [("a", TensorProto.FLOAT, ["N", 1]), ("b", TensorProto.FLOAT, [1, "M"])]
        ),
        {"a": np.ones((1 << 13, 1), np.float32), "b": np.ones((1, 1 << 13), np.float32)},
    ),
}


@pytest.mark.parametrize("op", sorted(GROWING))
def test_run_time_shape_ops_over_the_cap_are_refused_before_allocating(op):
    model, feeds = GROWING[op]
    session = pyrt.Session(model, memory_limit=32 << 20)

    def run():
        with pytest.raises(pyrt.ModelError, match="grow.*memory limit"):
            session.run(feeds)

    assert _peak_while(run) < 32 << 20


def test_run_time_conv_output_over_the_cap_is_refused():
    """Symbolic H, W: huge pads are only known to be too much once the input arrives."""
    model = qdq_conv(x_shape=("N", 3, "H", "W"), pads=[1 << 12] * 4)
    session = pyrt.Session(model, memory_limit=32 << 20)

    def run():
        with pytest.raises(pyrt.ModelError, match="conv.*memory limit"):
            session.run(X)

    assert _peak_while(run) < 32 << 20


def test_constant_attribute_over_the_cap():
    value = TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    model = build([helper.make_node("Constant", [], ["y"], name="k", value=value)], [], [vi("y")])
    refused(model, "k.*'value'.*memory limit")


def test_names_that_are_not_utf8():
    """protobuf hands back bytes for string fields that are not UTF-8; pyrt refuses them."""
    blob = bytearray(qdq_conv().SerializeToString())
    at = blob.index(b"conv")
    blob[at] = 0x80  # node name "\x80onv"
    refused(bytes(blob), "UTF-8")
    model = build(
        [helper.make_node("Pad", ["x", "p"], ["y"], name="pad", mode=b"\xff\xfe")],
        [vi("x", shape=[2])],
        [vi("y")],
        [const("p", np.array([1, 1]))],
    )
    refused(model, "pad.*'mode'")


def test_shapes_that_crash_onnx_shape_inference_are_a_model_error():
    """onnx's C++ inference asserts on some malformed shapes (here a Slice of a dimension a
    bad Pad made negative); it runs in a child process, so this is an error, not an abort."""
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Slice", ["p", "starts", "ends", "axes"], ["y"], name="slice"),
    ]
    inits = [
        const("pads", np.array([0, -(2**63)])),
        const("starts", np.array([1])),
        const("ends", np.array([-1])),
        const("axes", np.array([0])),
    ]
    refused(build(nodes, [vi("x", shape=[8])], [vi("y")], inits), None)


@pytest.mark.parametrize(
    "op, attrs, extra, inits",
    [
        ("Concat", dict(axis=5), ["x"], []),
        ("Softmax", dict(axis=9), [], []),
        ("Gather", dict(axis=-7), ["i"], [const("i", np.array([0]))]),
        ("Flatten", dict(axis=9), [], []),
        ("Split", dict(axis=4), [], []),
        ("ReduceSum", {}, ["axes"], [const("axes", np.array([7]))]),
        ("Unsqueeze", {}, ["axes"], [const("axes", np.array([9]))]),
    ],
)
def test_axis_errors_that_depend_on_the_input_rank_name_the_node(op, attrs, extra, inits):
    """With a symbolic input shape they surface at run time, as a ModelError all the same."""
    node = helper.make_node(op, ["x", *extra], ["y"], name="the_node", **attrs)
    session = pyrt.Session(build([node], [vi("x", shape=["N", 3])], [vi("y")], inits))
    with pytest.raises(pyrt.ModelError, match="the_node.*ax"):
        session.run(np.ones((2, 3), np.float32))


def test_attribute_of_the_wrong_type_names_node_and_attribute():
    node = helper.make_node("Softmax", ["x"], ["y"], name="soft")
    node.attribute.append(onnx.AttributeProto(name="axis", type=onnx.AttributeProto.STRING, s=b""))
    refused(build([node], [vi("x", shape=[2, 3])], [vi("y")]), "soft.*'axis' must be int")
    model = qdq_conv()
    model.graph.node[2].attribute[0].Clear()  # dq_w's axis: no type, no value
    model.graph.node[2].attribute[0].name = "axis"
    refused(model, "dq_w.*'axis'")


def _numpy_op_case(op: str):
    """A one-node model whose numpy op would allocate far more than its inputs hold."""

    def vi(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    if op == "Einsum":
        node = helper.make_node("Einsum", ["a", "b"], ["y"], name="grow", equation="i,j->ij")
        inputs, inits = [vi("a", ["N"]), vi("b", ["M"])], []
        feeds = {"a": np.ones(1 << 13, np.float32), "b": np.ones(1 << 13, np.float32)}
    elif op == "ConvTranspose":
        node = helper.make_node(
            "ConvTranspose", ["x", "w"], ["y"], name="grow", strides=[1 << 10, 1 << 10]
        )
        inputs = [vi("x", ["N", 2, "H", "W"])]
        inits = [numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")]
        feeds = {"x": np.ones((1, 2, 4, 4), np.float32)}
    else:  # a 1-D MaxPool with huge pads
        node = helper.make_node(
            "MaxPool", ["x"], ["y"], name="grow", kernel_shape=[2], pads=[1 << 22, 1 << 22]
        )
        inputs, inits = [vi("x", ["N", "C", "L"])], []
        feeds = {"x": np.ones((1, 2, 4), np.float32)}
    graph = helper.make_graph([node], "g", inputs, [vi("y", None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, feeds


@pytest.mark.parametrize("op", ["Einsum", "ConvTranspose", "MaxPool"])
def test_numpy_ops_refuse_outputs_over_the_memory_limit_before_allocating(op):
    model, feeds = _numpy_op_case(op)
    session = pyrt.Session(model, memory_limit=32 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(pyrt.ModelError, match="grow.*memory limit"):
            session.run(feeds)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20
