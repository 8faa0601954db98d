"""Hostile models and inputs get clear pyrt errors; sessions are thread-safe and do not leak."""

from __future__ import annotations

import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import zoo


def qdq_conv_model(scale=0.05, zero=None, axis=0, w_scale=None, opset=17) -> onnx.ModelProto:
    """input -> Q -> DQ -> Conv(DQ weights) -> Q -> DQ -> output, built by hand."""
    rng = np.random.default_rng(0)
    zero = np.uint8(128) if zero is None else zero
    w_scale = np.full(4, 0.01, np.float32) if w_scale is None else w_scale
    inits = [
        numpy_helper.from_array(np.array(scale, np.float32), "s"),
        numpy_helper.from_array(np.array(zero), "z"),
        numpy_helper.from_array(rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8), "w"),
        numpy_helper.from_array(w_scale, "ws"),
        numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), "wz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="dq_w", axis=axis),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], name="q_out"),
        helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"], name="dq_out"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


X = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)


def test_the_hand_built_model_runs():
    assert pyrt.run(qdq_conv_model(), X)[0].shape == (1, 4, 8, 8)


# ---- bad models -----------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage\xff" * 10, b"not an onnx file at all"])
def test_garbage_bytes(data):
    with pytest.raises(pyrt.ModelError):
        pyrt.Session(data)


def test_truncated_file(tmp_path):
    blob = qdq_conv_model().SerializeToString()
    for cut in (len(blob) // 3, len(blob) // 2, len(blob) - 7):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(blob[:cut])
        with pytest.raises(pyrt.ModelError):
            pyrt.Session(path)


def test_missing_file_and_wrong_type():
    with pytest.raises(pyrt.ModelError, match="not found"):
        pyrt.Session("/nonexistent/model.onnx")
    with pytest.raises(pyrt.ModelError, match="path, bytes or onnx.ModelProto"):
        pyrt.Session(42)


def test_empty_graph():
    model = helper.make_model(helper.make_graph([], "g", [], []))
    with pytest.raises(pyrt.ModelError, match="empty"):
        pyrt.Session(model)


def test_missing_tensor_names_the_node():
    model = qdq_conv_model()
    model.graph.node[3].input[0] = "nowhere"
    with pytest.raises(pyrt.ModelError, match="conv.*'nowhere'"):
        pyrt.Session(model)


def test_cycle_names_a_node():
    model = qdq_conv_model()
    model.graph.node[1].input[0] = "cq"  # dq_in now depends on q_out downstream
    with pytest.raises(pyrt.ModelError, match="cycle"):
        pyrt.Session(model)


def test_unsupported_ops_are_all_listed_at_load():
    model = qdq_conv_model()
    model.graph.node.append(
        helper.make_node("FancyOp", ["y"], ["f1"], name="fancy_a", domain="x.y")
    )
    model.graph.node.append(helper.make_node("StringNormalizer", ["y"], ["f2"], name="hard_b"))
    model.graph.output.extend(
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("f1", "f2")]
    )
    model.opset_import.append(helper.make_opsetid("x.y", 1))
    with pytest.raises(pyrt.UnsupportedOpError) as info:
        pyrt.Session(model)
    assert "fancy_a" in str(info.value) and "hard_b" in str(info.value)


@pytest.mark.parametrize("scale", [0.0, -0.5, np.nan, np.inf])
def test_bad_activation_scale(scale):
    with pytest.raises(pyrt.ModelError, match="scale"):
        pyrt.Session(qdq_conv_model(scale=scale))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_bad_weight_scale(bad):
    w_scale = np.full(4, 0.01, np.float32)
    w_scale[2] = bad
    with pytest.raises(pyrt.ModelError, match="dq_w.*scale"):
        pyrt.Session(qdq_conv_model(w_scale=w_scale))


def test_zero_point_of_wrong_type():
    with pytest.raises(pyrt.ModelError, match="zero point"):
        pyrt.Session(qdq_conv_model(zero=np.float32(3)))


def test_axis_out_of_range():
    with pytest.raises(pyrt.ModelError, match="axis"):
        pyrt.Session(qdq_conv_model(axis=7))


def test_per_axis_scale_of_wrong_length():
    with pytest.raises(pyrt.ModelError, match="dq_w"):
        pyrt.Session(qdq_conv_model(w_scale=np.full(3, 0.01, np.float32)))


def test_huge_shapes_refused_before_allocating():
    model = qdq_conv_model()
    big = TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20, 1 << 20])
    model.graph.initializer.append(big)
    with pytest.raises(pyrt.ModelError, match="memory limit"):
        pyrt.Session(model)


def test_memory_cap_is_configurable():
    with pytest.raises(pyrt.ModelError, match="memory limit"):
        pyrt.Session(qdq_conv_model(), memory_limit=64)


def test_runtime_shape_op_over_cap_is_refused():
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["y"], name="cos")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("shape", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = pyrt.Session(model, memory_limit=1 << 20)
    assert session.run(np.array([2, 3, 4], np.int64))[0].shape == (2, 3, 4)
    with pytest.raises(pyrt.PyrtError, match="cos.*memory limit"):
        session.run(np.array([1 << 20, 1 << 20, 1 << 20], np.int64))


# ---- bad inputs -----------------------------------------------------------------


@pytest.fixture(scope="module")
def session():
    return pyrt.Session(qdq_conv_model())


def test_input_names(session):
    with pytest.raises(pyrt.InputError, match="missing \\['x'\\]"):
        session.run({"other": X})
    with pytest.raises(pyrt.InputError, match="unexpected \\['extra'\\]"):
        session.run({"x": X, "extra": X})


def test_input_dtype_rank_shape(session):
    with pytest.raises(pyrt.InputError, match="dtype float32"):
        session.run(X.astype(np.float64))
    with pytest.raises(pyrt.InputError, match="rank 4"):
        session.run(X[0])
    with pytest.raises(pyrt.InputError, match="dimension 1 must be 3"):
        session.run(np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(pyrt.InputError, match="numpy array"):
        session.run({"x": [[1.0]]})


def test_symbolic_batch_accepts_any_size(session):
    y = session.run(np.concatenate([X, X, X]))[0]
    assert y.shape == (3, 4, 8, 8)
    np.testing.assert_array_equal(y[2], session.run(X)[0][0])


def test_non_contiguous_and_read_only_inputs_work(session):
    expected = session.run(X)[0]
    strided = np.zeros((1, 3, 8, 16), np.float32)
    strided[..., ::2] = X
    view = strided[..., ::2]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(session.run(view)[0], expected)
    frozen = X.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(session.run(frozen)[0], expected)
    fortran = np.asfortranarray(X)
    np.testing.assert_array_equal(session.run(fortran)[0], expected)


def test_nan_and_inf_inputs_follow_quantize_linear(session):
    """Inf saturates like any large value; NaN quantizes to the zero point (real 0)."""
    x = X.copy()
    x[0, 0, 0, 0], x[0, 1, 0, 0], x[0, 2, 0, 0] = np.inf, -np.inf, np.nan
    y = session.run(x)[0]
    assert np.isfinite(y).all()
    big, zero = X.copy(), X.copy()
    big[0, 0, 0, 0], big[0, 1, 0, 0], zero[0, 2, 0, 0] = 1e30, -1e30, 0.0
    big[0, 2, 0, 0] = 0.0
    np.testing.assert_array_equal(y, session.run(big)[0])


# ---- concurrency and memory ---------------------------------------------------------


def test_one_session_from_four_threads_matches_serial():
    model = zoo.quantize_qdq(zoo.demo_cnn(), zoo.calibration_data(zoo.demo_cnn(), 2))
    session = pyrt.Session(model)
    inputs = [
        np.random.default_rng(i).standard_normal((1, 3, 64, 64)).astype(np.float32)
        for i in range(8)
    ]
    serial = [session.run(x)[0] for x in inputs]
    results: dict[tuple[int, int], np.ndarray] = {}
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for rep in range(3):
                for i, x in enumerate(inputs):
                    results[(t, rep * 100 + i)] = session.run(x)[0]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for (_, key), y in results.items():
        np.testing.assert_array_equal(y, serial[key % 100])


def test_sessions_with_different_cores_coexist():
    model = qdq_conv_model()
    a, b = pyrt.Session(model, cores=1), pyrt.Session(model, cores=2)
    np.testing.assert_array_equal(a.run(X)[0], b.run(X)[0])
    with pytest.raises(pyrt.PyrtError, match="cores"):
        pyrt.Session(model, cores=0)


def test_rss_does_not_grow_over_thousands_of_runs(steady_rss_growth_kb):
    session = pyrt.Session(
        zoo.quantize_qdq(zoo.demo_cnn(size=32), zoo.calibration_data(zoo.demo_cnn(size=32), 2))
    )
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)

    def runs():
        for _ in range(500):
            session.run(x)

    grown = steady_rss_growth_kb(runs)
    assert grown < 2048, f"RSS grew by {grown} kB over 500 runs"
