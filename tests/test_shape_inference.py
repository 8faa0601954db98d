"""onnx's shape inference runs in pyrt's worker process (pyrt/_infer_worker.py), started
with exec, never a bare fork: a model that crashes or hangs it is a ModelError, the next
model gets a fresh worker, and loading leaves the caller's process as it was (no fork, so
no torn-down OpenBLAS pool and no fork-with-threads warning on Python 3.12+)."""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import graph, zoo

FORKS: list[int] = []
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=lambda: FORKS.append(1))


@pytest.fixture(scope="module")
def resnet() -> onnx.ModelProto:
    return zoo.resnet18()


def relu_chain(n: int) -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"r{i}") for i in range(n)]
    g = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info(f"t{n}", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def crashing_model() -> onnx.ModelProto:
    """A Slice of a dimension a Pad made negative: onnx's Slice inference asserts."""
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Slice", ["p", "starts", "ends", "axes"], ["y"], name="slice"),
    ]
    inits = [
        numpy_helper.from_array(np.array(v, np.int64), n)
        for n, v in [("pads", [0, -(2**63)]), ("starts", [1]), ("ends", [-1]), ("axes", [0])]
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_inference_matches_onnx_in_process(resnet):
    expected = onnx.shape_inference.infer_shapes(resnet, data_prop=True).graph
    typed = graph.infer_shapes(resnet)
    assert list(typed.value_info) == list(expected.value_info)
    assert list(typed.output) == list(expected.output)
    assert len(typed.value_info) > 50


def test_a_crash_is_a_model_error_and_the_next_model_gets_a_new_worker():
    graph.infer_shapes(relu_chain(3))
    first = graph._Worker.process
    with pytest.raises(pyrt.ModelError, match="crashed.*SIGABRT.*malformed"):
        pyrt.Session(crashing_model())
    assert pyrt.run(relu_chain(3), np.ones((1, 8), np.float32))[0].shape == (1, 8)
    assert graph._Worker.process is not first and graph._Worker.process.poll() is None


def test_a_hang_is_a_model_error():
    """20000 nodes take onnx tens of ms: a 5 ms budget always runs out (load only slows it)."""
    with pytest.raises(pyrt.ModelError, match="took over 0.005 s"):
        graph.infer_shapes(relu_chain(20000), timeout=0.005)
    assert graph.infer_shapes(relu_chain(3)) is not None


def test_loading_never_forks_this_process(resnet):
    """A bare fork copies a process mid-flight (unsafe with threads: pyrt's pool, OpenBLAS's);
    register_at_fork's hook sees every os.fork, multiprocessing's included."""
    before = len(FORKS)
    graph._Worker.stop()  # starting the worker must not fork either
    pyrt.Session(resnet)
    with pytest.raises(pyrt.ModelError):
        pyrt.Session(crashing_model())
    pyrt.Session(relu_chain(5))
    assert len(FORKS) == before


def test_loading_with_threads_alive_gives_no_fork_warning(resnet):
    """Python 3.12+ warns (DeprecationWarning) when a process with threads forks."""
    stop = threading.Event()
    waiter = threading.Thread(target=stop.wait)
    waiter.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            graph._Worker.stop()
            pyrt.Session(resnet)
    finally:
        stop.set()
        waiter.join()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_loading_keeps_numpy_blas_threads(resnet):
    """A fork ran OpenBLAS's atfork hook, which shut down its thread pool (one thread left),
    and the next batched matmul paid to start it again."""
    a = np.random.default_rng(0).standard_normal((16, 256, 256)).astype(np.float32)
    a @ a  # OpenBLAS starts its pool (where it has more than one core)
    before = len(os.listdir("/proc/self/task"))
    graph._Worker.stop()
    graph.load(resnet)  # the load stage alone: sessions may start threads of their own
    assert len(os.listdir("/proc/self/task")) == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child that loads a model")
def test_a_forked_child_gets_its_own_worker():
    """A child forked by the user (multiprocessing's default on Linux) must not share the
    parent's worker pipes; it starts its own, and the parent's keeps working."""
    graph.infer_shapes(relu_chain(3))
    parent_worker = graph._Worker.process
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # this test forks on purpose
        pid = os.fork()
    if pid == 0:
        ok = False
        try:
            ok = graph._Worker.process is None and graph.infer_shapes(relu_chain(4)) is not None
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert graph._Worker.process is parent_worker
    assert graph.infer_shapes(relu_chain(5)) is not None


def test_without_a_worker_inference_runs_in_process(monkeypatch, resnet):
    """No Python executable to start (embedded interpreters): same result, no isolation."""
    graph._Worker.stop()
    monkeypatch.setattr("sys.executable", "")
    typed = graph.infer_shapes(resnet)
    assert graph._Worker.process is None
    assert list(typed.value_info) == list(
        onnx.shape_inference.infer_shapes(resnet, data_prop=True).graph.value_info
    )
