"""Sessions under threads, over time, and across core counts and ISAs: one Session used from
many threads gives exactly the serial results, kernel errors stay with their thread, results
are bit-identical run to run, and memory does not grow over thousands of runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import _kernels


def qdq_cnn(size: int = 32, seed: int = 0, channels: int = 16) -> onnx.ModelProto:
    """A small int8 CNN by hand: conv-relu, conv, residual add, maxpool, depthwise conv,
    sigmoid (a lookup table), global pool, flatten, fully connected. Every op between Q/DQ."""
    rng = np.random.default_rng(seed)
    inits, nodes, count = [], [], iter(range(10**6))

    def const(value) -> str:
        name = f"c{next(count)}"
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    act_scale, zero = const(np.float32(0.04)), const(np.uint8(128))

    def node(op, inputs, **attrs) -> str:
        out = f"t{next(count)}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}_{out}", **attrs))
        return out

    def qdq(x: str) -> str:
        return node(
            "DequantizeLinear", [node("QuantizeLinear", [x, act_scale, zero]), act_scale, zero]
        )

    def conv(
        x: str, cin: int, cout: int, k: int, group: int = 1, relu: bool = True, **attrs
    ) -> str:
        w = rng.integers(-127, 128, (cout, cin // group, k, k)).astype(np.int8)
        ws = np.full(cout, 2.0 / (127 * np.sqrt(cin // group * k * k)), np.float32)
        wd = node("DequantizeLinear", [const(w), const(ws), const(np.zeros(cout, np.int8))], axis=0)
        b = node(
            "DequantizeLinear",
            [const(rng.integers(-300, 300, cout).astype(np.int32)), const(ws * np.float32(0.04))],
            axis=0,
        )
        y = node("Conv", [x, wd, b], group=group, pads=[k // 2] * 4, **attrs)
        return qdq(node("Relu", [y]) if relu else y)

    x = qdq("x")
    a = conv(x, 3, channels, 3)
    b = conv(a, channels, channels, 3, relu=False)
    x = qdq(node("Add", [a, b]))
    x = qdq(node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2]))
    x = conv(x, channels, channels, 3, group=channels, strides=[2, 2])
    x = qdq(node("Sigmoid", [x]))
    x = qdq(node("GlobalAveragePool", [x]))
    x = node("Flatten", [x])
    w = rng.integers(-127, 128, (channels, 10)).astype(np.int8)
    wd = node("DequantizeLinear", [const(w), const(np.float32(0.01)), const(np.int8(0))])
    qdq(node("MatMul", [x, wd]))
    nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


MODEL = qdq_cnn()
INPUTS = [
    np.random.default_rng(i).standard_normal((1 + i % 3, 3, 32, 32)).astype(np.float32)
    for i in range(8)
]


@pytest.fixture(scope="module")
def session():
    return pyrt.Session(MODEL)


@pytest.fixture(scope="module")
def serial(session):
    return [session.run(x)[0] for x in INPUTS]


def test_the_model_runs_int8(session, serial):
    counts = session.report().counts()
    assert counts.get("int8", 0) >= 6, session.report()
    assert all(y.shape == (x.shape[0], 10) for x, y in zip(INPUTS, serial))
    assert len({y.tobytes() for y in serial}) == len(serial)  # not a constant answer


def test_runs_are_bit_identical(session, serial):
    for _ in range(3):
        for x, y in zip(INPUTS, serial):
            assert session.run(x)[0].tobytes() == y.tobytes()
    assert pyrt.Session(MODEL).run(INPUTS[0])[0].tobytes() == serial[0].tobytes()


def _threads(n: int, fn) -> list:
    """Runs fn(i) on n threads released together; returns results, re-raises errors."""
    start = threading.Barrier(n)

    def go(i):
        start.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def test_one_session_from_four_threads_matches_serial(session, serial):
    def work(t: int):
        order = np.random.default_rng(t).permutation(len(INPUTS) * 4) % len(INPUTS)
        return [(i, session.run(INPUTS[i])[0]) for i in order]

    for results in _threads(4, work):
        for i, y in results:
            assert y.tobytes() == serial[i].tobytes()


def test_float_session_from_four_threads_matches_serial():
    """The fp32 kernels and numpy ops (no Q/DQ) under threads too."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((8 * 30 * 30, 5)).astype(np.float32), "fc"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Tanh", ["c"], ["t"], name="tanh"),
        helper.make_node("Flatten", ["t"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc"], ["m"], name="fc"),
        helper.make_node("Softmax", ["m"], ["y"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "f",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = pyrt.Session(model)
    expected = [session.run(x)[0] for x in INPUTS]
    for t, results in enumerate(_threads(4, lambda t: [session.run(x)[0] for x in INPUTS])):
        for y, e in zip(results, expected):
            assert y.tobytes() == e.tobytes(), t


def test_sessions_with_different_cores_coexist_and_agree(serial):
    sessions = {cores: pyrt.Session(MODEL, cores=cores) for cores in (1, 2, 3, 4)}
    for cores, s in sessions.items():
        assert s.cores == cores

    def work(t: int):
        s = sessions[1 + t % 4]
        return [s.run(x)[0] for x in INPUTS for _ in range(2)]

    for results in _threads(8, work):
        for k, y in enumerate(results):
            assert y.tobytes() == serial[k // 2].tobytes()


def test_sessions_built_concurrently_are_identical(serial):
    sessions = _threads(4, lambda t: pyrt.Session(MODEL, cores=1 + t % 2))
    for s in sessions:
        assert s.run(INPUTS[3])[0].tobytes() == serial[3].tobytes()


def test_kernel_errors_stay_with_their_thread():
    """pyrt_last_error is per thread: concurrent failures never swap their messages."""
    session = pyrt.Session(qdq_cnn(size=32).SerializeToString())
    symbolic = qdq_cnn()
    symbolic.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    symbolic.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "W"
    loose = pyrt.Session(symbolic)
    tiny = np.zeros((1, 3, 1, 1), np.float32)  # the 2x2 max pool leaves no output
    empty = np.zeros((0, 3, 32, 32), np.float32)  # batch 0: non-positive size
    good = INPUTS[0]
    expected = session.run(good)[0]

    def work(t: int):
        for _ in range(50):
            if t % 3 == 0:
                with pytest.raises(pyrt.PyrtError, match="no output|empty") as info:
                    loose.run(tiny)
                assert "> 0" not in str(info.value)
            elif t % 3 == 1:
                with pytest.raises(pyrt.PyrtError, match="> 0|empty"):
                    loose.run(empty)
            else:
                assert session.run(good)[0].tobytes() == expected.tobytes()
        return t

    assert _threads(6, work) == list(range(6))


def test_results_are_bit_identical_across_isas(serial):
    """Every kernel table this CPU offers gives the scalar reference's bits exactly."""
    before = _kernels.isa()
    try:
        for isa in _kernels.isa_available():
            _kernels.set_isa(isa)
            s = pyrt.Session(MODEL)
            for x, y in zip(INPUTS, serial):
                assert s.run(x)[0].tobytes() == y.tobytes(), isa
    finally:
        _kernels.set_isa(before)


# ---- memory over time -----------------------------------------------------------------


def test_rss_does_not_grow_over_thousands_of_runs(session, steady_rss_growth_kb):
    def runs():
        for _ in range(500):
            session.run(INPUTS[0])

    grown = steady_rss_growth_kb(runs)
    assert grown < 2560, f"RSS grew by {grown} kB over 500 runs"


def test_rss_does_not_grow_over_failing_runs_threads_and_new_sessions(
    session, steady_rss_growth_kb
):
    symbolic = qdq_cnn()
    symbolic.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    loose = pyrt.Session(symbolic)
    tiny = np.zeros((1, 3, 1, 1), np.float32)

    def cycles():
        for _ in range(2):
            for _ in range(50):
                with pytest.raises(pyrt.PyrtError):
                    loose.run(tiny)
                with pytest.raises(pyrt.InputError):
                    session.run(tiny.astype(np.float64))
            _threads(4, lambda t: [session.run(INPUTS[t]) for _ in range(25)])
            for _ in range(5):
                pyrt.Session(MODEL).run(INPUTS[0])

    grown = steady_rss_growth_kb(cycles)
    assert grown < 4096, f"RSS grew by {grown} kB over 2 cycles"
