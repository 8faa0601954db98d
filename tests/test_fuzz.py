"""Mutated models and inputs: pyrt either runs them or raises a PyrtError; nothing else.

CI runs a bounded number of examples; `python tools/fuzz.py --examples 100000` runs
longer. A crash in C would kill the test process, which is the failure signal.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

import pyrt
from pyrt import zoo

EXAMPLES = int(os.environ.get("PYRT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
LIMIT = 64 << 20  # a small memory cap keeps mutated shapes cheap


def _seed_models() -> list[bytes]:
    base = zoo.demo_cnn(size=16)
    calib = zoo.calibration_data(base, 2)
    return [
        zoo.quantize_qdq(base, calib).SerializeToString(),
        zoo.quantize_qdq(
            base, calib, activation_type="int8", quant_format="QOperator"
        ).SerializeToString(),
    ]


SEEDS = _seed_models()
X = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
SPECIAL = [0.0, -1.0, np.nan, np.inf, -np.inf, 1e-30, 1e30, 255.0, -129.0, 7.0]


def run_or_pyrt_error(model, inputs) -> None:
    try:
        session = pyrt.Session(model, memory_limit=LIMIT)
        session.run(inputs)
    except pyrt.PyrtError:
        pass


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), data=st.data())
def test_byte_level_mutations(seed, data):
    blob = bytearray(SEEDS[seed])
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(blob) // 2, len(blob)))
    run_or_pyrt_error(bytes(blob[:cut]), X)


@FUZZ
@given(seed=st.sampled_from(range(len(SEEDS))), data=st.data())
def test_structural_mutations(seed, data):
    model = onnx.ModelProto()
    model.ParseFromString(SEEDS[seed])
    graph = model.graph
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["init", "attr", "input", "drop", "dims"]))
        if kind == "init" and graph.initializer:
            t = data.draw(st.sampled_from(list(graph.initializer)))
            value = numpy_helper.to_array(t).copy()
            if value.size:
                flat = value.reshape(-1)
                special = data.draw(st.sampled_from(SPECIAL))
                with np.errstate(all="ignore"):
                    flat[data.draw(st.integers(0, flat.size - 1))] = np.array(special).astype(
                        value.dtype
                    )
                t.CopyFrom(numpy_helper.from_array(value, t.name))
        elif kind == "attr":
            node = data.draw(st.sampled_from(list(graph.node)))
            for a in node.attribute:
                if a.type == onnx.AttributeProto.INT:
                    a.i = data.draw(st.integers(-3, 9))
                elif a.type == onnx.AttributeProto.INTS and len(a.ints):
                    a.ints[data.draw(st.integers(0, len(a.ints) - 1))] = data.draw(
                        st.integers(-2, 9)
                    )
        elif kind == "input":
            node = data.draw(st.sampled_from(list(graph.node)))
            if node.input:
                names = [o for n in graph.node for o in n.output] + ["missing_tensor", ""]
                node.input[data.draw(st.integers(0, len(node.input) - 1))] = data.draw(
                    st.sampled_from(names)
                )
        elif kind == "drop" and len(graph.node) > 1:
            del graph.node[data.draw(st.integers(0, len(graph.node) - 1))]
        elif kind == "dims" and graph.initializer:
            t = data.draw(st.sampled_from(list(graph.initializer)))
            if t.dims:
                t.dims[0] = data.draw(st.integers(0, 1 << 40))
    run_or_pyrt_error(model, X)


@FUZZ
@given(data=st.data())
def test_input_mutations(data):
    session = pyrt.Session(SEEDS[0], memory_limit=LIMIT)
    shape = data.draw(st.lists(st.integers(0, 20), min_size=0, max_size=5))
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.uint8, np.int64]))
    x = np.full(shape, data.draw(st.sampled_from(SPECIAL)), dtype=np.float64)
    with np.errstate(all="ignore"):
        x = x.astype(dtype)
    try:
        y = session.run(x)[0]
    except pyrt.PyrtError:
        return
    assert y.shape == (1, 10)
