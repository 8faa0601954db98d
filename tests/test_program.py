"""The captured Program (memory plan + C execution plan) against the step interpreter.

The interpreter (Session.run with keep=..., and the first run per input shape) runs
every step through numpy-facing wrappers; replays run the C plan on one arena. They
must agree bit for bit, for every kernel table and thread count, and the replay must
notice when shapes stop matching the record.
"""

from __future__ import annotations

import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import _kernels
from pyrt.__main__ import main
from pyrt.program import Program, _plan_memory

MODELS = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "inception",
    "shufflenet_v2",
    "densenet",
    "squeezenet",
]


def _program(session: pyrt.Session) -> Program:
    programs = [p for p in session._programs.values() if isinstance(p, Program)]
    assert len(programs) == 1
    return programs[0]


@pytest.mark.parametrize("variant", ["QDQ_uint8", "QDQ_int8"])
@pytest.mark.parametrize("name", MODELS)
def test_replay_matches_interpreter(zoo_cache, name, variant):
    model = zoo_cache.quantized(name, variant)
    x = zoo_cache.test_input(name)
    session = pyrt.Session(model)
    first = session.run(x)  # interpreted and recorded
    replays = [session.run(x) for _ in range(2)]
    interpreted = session.run(x, keep=[session.outputs[0].name])[: len(first)]
    for outs in (*replays, interpreted):
        for a, b in zip(first, outs):
            np.testing.assert_array_equal(a, b)
    program = _program(session)
    in_c = {id(s) for seg in program.segments if seg.step is None for s in seg.entry_steps}
    convs = [s for s in session._steps if s.node.op_type == "QConv"]
    assert convs and all(id(s) in in_c for s in convs), "every int8 conv runs in the C plan"


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_every_isa_and_thread_count_give_identical_models(zoo_cache, name):
    model = zoo_cache.quantized(name, "QDQ_int8")
    x = zoo_cache.test_input(name)
    reference = pyrt.Session(model, isa="scalar").run(x)
    for isa in _kernels.isa_available():
        for cores in (1, 2, 3):
            session = pyrt.Session(model, cores=cores, isa=isa)
            assert session.isa == isa
            for _ in range(2):  # interpreted, then replayed
                for a, b in zip(reference, session.run(x)):
                    np.testing.assert_array_equal(a, b, err_msg=f"{isa} cores={cores}")


def test_unknown_isa_is_a_clear_error(zoo_cache):
    model = zoo_cache.quantized("resnet18", "QDQ_uint8")
    with pytest.raises(pyrt.PyrtError, match="unknown ISA 'sse9'"):
        pyrt.Session(model, isa="sse9")
    with pytest.raises(pyrt.PyrtError, match="isa must be a string"):
        pyrt.Session(model, isa=3)


def _dynamic_batch_model() -> onnx.ModelProto:
    """Conv on a symbolic batch, then a Range whose length is an input value."""
    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"]),
        helper.make_node("Range", ["zero", "n", "one"], ["r"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dyn",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 4, 4]),
            helper.make_tensor_value_info("n", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("r", TensorProto.INT64, None),
        ],
        [
            w,
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.array(1, np.int64), "one"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_new_input_shapes_and_value_dependent_shapes():
    session = pyrt.Session(_dynamic_batch_model())
    for batch, n in [(1, 3), (1, 3), (1, 5), (2, 4), (2, 4), (1, 2)]:
        x = np.random.default_rng(batch).standard_normal((batch, 3, 4, 4)).astype(np.float32)
        y, r = session.run({"x": x, "n": np.array(n, np.int64)})
        np.testing.assert_allclose(y, np.repeat(x.sum(1, keepdims=True), 2, 1), rtol=1e-5)
        np.testing.assert_array_equal(r, np.arange(n))


def test_concurrent_replays_are_identical(zoo_cache):
    model = zoo_cache.quantized("mobilenet_v2", "QDQ_uint8")
    x = zoo_cache.test_input("mobilenet_v2")
    session = pyrt.Session(model, cores=2)
    expected = session.run(x)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(session.run(x))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 20
    for outs in results:
        for a, b in zip(expected, outs):
            np.testing.assert_array_equal(a, b)


def test_memory_plan_never_overlaps_live_tensors():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        sizes = [int(s) for s in rng.integers(1, 5000, n)]
        starts = rng.integers(0, 20, n)
        lifetimes = [(int(s), int(s + rng.integers(0, 6))) for s in starts]
        offsets, top = _plan_memory(sizes, lifetimes)
        for i in range(n):
            assert offsets[i] % 64 == 0 and offsets[i] + sizes[i] <= top
            for j in range(i):
                live = lifetimes[i][0] <= lifetimes[j][1] and lifetimes[j][0] <= lifetimes[i][1]
                apart = offsets[i] + sizes[i] <= offsets[j] or offsets[j] + sizes[j] <= offsets[i]
                assert not live or apart
        assert top <= sum(-(-s // 64) * 64 for s in sizes)


def test_profile_command_lists_every_layer(zoo_cache, tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(zoo_cache.quantized("resnet18", "QDQ_uint8"), path)
    assert main(["profile", str(path), "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "GEMM ceiling" in out and "QConv" in out and "total" in out
    assert main(["info"]) == 0
    assert _kernels.isa_default() in capsys.readouterr().out


def test_code_clamps_fold_into_the_integer_op_before_them(zoo_cache):
    """s8 models keep ReLU6 as DQ -> Clip -> Q with equal scales: a clamp on the codes,
    which the convolution's requantization takes over (bit for bit)."""
    model = zoo_cache.quantized("mobilenet_v2", "QDQ_int8")
    session = pyrt.Session(model)
    producers = {o: s for s in session._steps for o in s.outputs}
    luts = [s for s in session._steps if s.node.op_type == "QLut"]
    assert not [s for s in luts if producers.get(s.inputs[0], s).node.op_type == "QConv"]
    clips = [r for r in session.report() if r.op_type == "Clip"]
    assert clips and all(r.ran_as == "int8" and "QConv" in r.detail for r in clips)


def test_random_inputs_fit_token_tables_and_named_dims(tmp_path, capsys):
    """An encoder's int64 inputs: ids inside the embedding tables, masks 0/1, and the
    symbolic sequence length from --dim (profile / run / check use these inputs)."""
    from pyrt import zoo_transformers as zt
    from pyrt.check import random_inputs

    path = tmp_path / "encoder.onnx"
    onnx.save(zt.encoder(layers=1, hidden=32, heads=2, ffn=64, vocab=50), path)
    session = pyrt.Session(path)
    feeds = random_inputs(session, dims={"sequence": 24})
    assert feeds["input_ids"].shape == (1, 24) and feeds["input_ids"].min() >= 0
    assert feeds["input_ids"].max() < 50 and feeds["token_type_ids"].max() < 2
    assert set(np.unique(feeds["attention_mask"])) <= {0, 1}
    assert main(["profile", str(path), "--rounds", "3", "--dim", "sequence=24"]) == 0
    assert "total" in capsys.readouterr().out
    assert main(["run", str(path), "--dim", "sequence=bad"]) == 2
    assert "--dim" in capsys.readouterr().err
