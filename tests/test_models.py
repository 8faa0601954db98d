"""Whole CNNs against onnxruntime: the zoo's topologies quantized every way onnxruntime's
quantizer writes them (QDQ u8 / s8 activations, QOperator), the PyTorch/TensorRT fake-quant
style, and real PyTorch exports (tests/data, written by tools/make_torch_fixtures.py).

The reference for a quantized model is onnxruntime with every graph optimization off, i.e.
the graph exactly as ONNX defines it. Quantized models are built once per session
(conftest.py's zoo_cache).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

import pyrt
from pyrt import zoo
from pyrt.check import compare

pytest.importorskip("onnxruntime")

TOPOLOGIES = [
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "inception",
    "shufflenet_v2",
    "densenet",
    "squeezenet",
]
DATA = Path(__file__).resolve().parent / "data"
TORCH_STYLES = ["ptq_x86", "qat_x86", "fq_s8"]


def same_class(ours: np.ndarray, ref: np.ndarray) -> bool:
    """argmax equal, unless the reference's top two are closer than pyrt's max error
    (random-weight models can have near-ties that any rounding flips)."""
    ours, ref = ours.reshape(-1), ref.reshape(-1)
    pick = int(np.argmax(ours))
    return pick == int(np.argmax(ref)) or ref.max() - ref[pick] <= np.abs(ours - ref).max()


def assert_matches(ours: np.ndarray, ref: np.ndarray, min_cosine: float = 0.999) -> None:
    result = compare("logits", ours, ref, None)
    assert result.cosine >= min_cosine and same_class(ours, ref), result


def op_counts(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def attr(node: onnx.NodeProto, name: str):
    return next(
        (onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name), None
    )


# -- the zoo itself ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*TOPOLOGIES, "demo_cnn"])
def test_builder_contract(name, zoo_cache, ort_reference):
    """input/logits names and shapes, opset 17, seeded, O(1) activations and logits."""
    model, calib = zoo_cache.fp32(name)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[:2] == [1, 3] and dims[2] == dims[3] <= 96
    assert model.opset_import[0].version == 17
    assert zoo.MODELS[name]().SerializeToString() == model.SerializeToString()
    assert zoo.MODELS[name](seed=1).SerializeToString() != model.SerializeToString()
    size_mb = model.ByteSize() / 2**20
    assert size_mb < 4, size_mb
    logits = ort_reference(model, calib[0])[0]
    assert logits.shape == (1, 10) and np.all(np.isfinite(logits))
    assert 0.2 < float(np.std(logits)) < 10, logits


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_activations_stay_order_one(name, zoo_cache, ort_reference):
    """Every intermediate tensor has std in [0.1, 10]: quantization ranges are meaningful."""
    model, calib = zoo_cache.fp32(name)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    spatial = [n.output[0] for n in model.graph.node if n.op_type in ("Relu", "Clip", "Add")]
    for name_ in spatial:
        probe.graph.output.append(
            onnx.helper.make_tensor_value_info(name_, onnx.TensorProto.FLOAT, None)
        )
    stds = [float(np.std(v)) for v in ort_reference(probe, calib[0])[1:]]
    assert stds and min(stds) > 0.1 and max(stds) < 10, (min(stds), max(stds))


def test_topologies_have_their_real_structure(zoo_cache):
    ops = {name: op_counts(zoo_cache.fp32(name)[0]) for name in TOPOLOGIES}
    nodes = {name: list(zoo_cache.fp32(name)[0].graph.node) for name in TOPOLOGIES}

    resnet = ops["resnet18"]
    assert resnet["Add"] == 8 and resnet["Conv"] == 20 and resnet["BatchNormalization"] == 20
    assert resnet["MaxPool"] == 1 and resnet["GlobalAveragePool"] == 1 and resnet["Gemm"] == 1
    shortcuts = [n for n in nodes["resnet18"] if n.op_type == "Conv" and attr(n, "kernel_shape")]
    assert sum(attr(n, "kernel_shape") == [1, 1] for n in shortcuts) == 3

    mobilenet = ops["mobilenet_v2"]
    depthwise = [n for n in nodes["mobilenet_v2"] if n.op_type == "Conv" and attr(n, "group") > 1]
    assert len(depthwise) == 17 and mobilenet["Clip"] == 35 and mobilenet["Add"] == 10

    inception = nodes["inception"]
    concats = [n for n in inception if n.op_type == "Concat"]
    assert len(concats) == 3 and all(len(n.input) == 4 for n in concats)
    kernels = {tuple(attr(n, "kernel_shape")) for n in inception if n.op_type == "Conv"}
    assert {(1, 1), (3, 3), (5, 5)} <= kernels and ops["inception"]["AveragePool"] == 1

    shuffle = ops["shufflenet_v2"]
    assert shuffle["Split"] == 4 and shuffle["Transpose"] == 7 and shuffle["Reshape"] == 14
    assert any(n.op_type == "Conv" and attr(n, "group") > 1 for n in nodes["shufflenet_v2"])

    dense = ops["densenet"]
    assert dense["Concat"] == 10 and dense["AveragePool"] == 2
    assert dense["BatchNormalization"] > dense["Conv"] // 2

    squeeze = nodes["squeezenet"]
    assert all(attr(n, "ceil_mode") == 1 for n in squeeze if n.op_type == "MaxPool")
    assert ops["squeezenet"]["Concat"] == 6 and "Gemm" not in ops["squeezenet"]
    assert squeeze[-3].op_type == "GlobalAveragePool"


def test_builders_take_an_opset_and_other_sizes(ort_reference):
    for opset in (13, 21):
        model = zoo.resnet18(width=8, size=32, opset=opset)
        assert model.opset_import[0].version == opset
        x = zoo.calibration_data(model, 1)[0]
        assert x["input"].shape == (1, 3, 32, 32)
        np.testing.assert_allclose(
            pyrt.run(model, x)[0], ort_reference(model, x)[0], rtol=1e-4, atol=1e-5
        )
    with pytest.raises(ValueError, match="opset"):
        zoo.mobilenet_v2(opset=11)


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_quantized_models_stay_close_to_fp32(name, zoo_cache, ort_reference):
    """The zoo's quantization is meaningful: int8 outputs are close to FP32 (onnxruntime only)."""
    model, _ = zoo_cache.fp32(name)
    x = zoo_cache.test_input(name)
    fp32 = ort_reference(model, x)[0]
    for variant in ("QDQ_uint8", "QDQ_int8"):
        quantized = ort_reference(zoo_cache.quantized(name, variant), x)[0]
        assert compare("logits", quantized, fp32, None).cosine >= 0.99, variant


# -- pyrt against onnxruntime --------------------------------------------------------------


@pytest.mark.parametrize("name", [*TOPOLOGIES, "demo_cnn"])
def test_fp32_models_match_onnxruntime(name, zoo_cache, ort_reference):
    model, _ = zoo_cache.fp32(name)
    x = zoo_cache.test_input(name)
    np.testing.assert_allclose(
        pyrt.run(model, x)[0], ort_reference(model, x)[0], rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("variant", ["QDQ_uint8", "QDQ_int8"])
@pytest.mark.parametrize("name", [*TOPOLOGIES, "demo_cnn"])
def test_qdq_models_match_onnxruntime(name, variant, zoo_cache, ort_reference):
    model = zoo_cache.quantized(name, variant)
    session = pyrt.Session(model)
    for x in (zoo_cache.test_input(name), zoo_cache.fp32(name)[1][1]):
        assert_matches(session.run(x)[0], ort_reference(model, x)[0])
    counts = session.report().counts()
    assert counts.get("int8", 0) > counts.get("numpy", 0), counts  # the int8 path really ran
    convs = [r for r in session.report() if r.op_type == "Conv"]
    assert convs and all(r.ran_as == "int8" for r in convs), [
        r for r in convs if r.ran_as != "int8"
    ]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "shufflenet_v2", "densenet"])
def test_qoperator_models_match_onnxruntime(name, zoo_cache, ort_reference):
    """QLinearConv / QLinearAdd / QGemm ... (densenet keeps float BatchNormalization between)."""
    model = zoo_cache.quantized(name, "QOperator_uint8")
    assert op_counts(model)["QLinearConv"] > 0
    x = zoo_cache.test_input(name)
    assert_matches(pyrt.run(model, x)[0], ort_reference(model, x)[0])


@pytest.mark.parametrize(
    "name, variant",
    [
        ("resnet18", "fake_quant"),
        ("mobilenet_v2", "fake_quant"),
        ("inception", "fake_quant"),
        ("densenet", "fake_quant"),
        ("squeezenet", "fake_quant_per_tensor"),
    ],
)
def test_fake_quant_exports_fold_float_weights(name, variant, zoo_cache, ort_reference):
    """Float weights behind Q -> DQ (PyTorch / TensorRT style) are folded to int8 at load."""
    model = zoo_cache.quantized(name, variant)
    weights = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    quantized_weights = [
        n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in weights
    ]
    assert quantized_weights  # really the float-weight form
    x = zoo_cache.test_input(name)
    session = pyrt.Session(model)
    assert_matches(session.run(x)[0], ort_reference(model, x)[0])
    convs = [r for r in session.report() if r.op_type == "Conv"]
    assert convs and all(r.ran_as == "int8" for r in convs), [
        r for r in convs if r.ran_as != "int8"
    ]


def test_check_reports_every_output_and_layer(zoo_cache):
    model = zoo_cache.quantized("resnet18", "QDQ_uint8")
    report = pyrt.check(model, zoo_cache.test_input("resnet18"), layers=True)
    assert report.ok
    assert [o.name for o in report.outputs] == ["logits"]
    out = report.outputs[0]
    assert out.cosine >= 0.999 and out.max_abs_err_steps is not None and out.exact_share > 0.5
    assert len(report.layers) > 10 and "per layer" in str(report)
    # The reference rounds float sums, pyrt exact int32 ones: rare one-step differences
    # at first, which then spread through the later layers (as onnxruntime's own int8 do).
    assert all(layer.exact_share > 0.99 for layer in report.layers[:4]), report
    assert all(layer.cosine > 0.995 for layer in report.layers), report


# -- real PyTorch exports (tests/data) -----------------------------------------------------


def torch_fixture(style: str) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    path = DATA / f"torch_{style}.onnx"
    assert path.stat().st_size < 2 * 2**20
    x = np.load(DATA / f"torch_{style}_input.npy")
    expected = np.load(DATA / f"torch_{style}_output.npy")
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32 and expected.shape == (1, 10)
    return onnx.load(path), x, expected


@pytest.mark.parametrize("style", TORCH_STYLES)
def test_torch_exports_match_onnxruntime_and_pytorch(style, ort_reference):
    model, x, expected = torch_fixture(style)
    session = pyrt.Session(model)
    ours = session.run({"input": x})[0]
    assert_matches(ours, ort_reference(model, {"input": x})[0])
    # PyTorch rounds x * (1 / scale), or runs fbgemm's int8 kernels (ptq_x86): a step or so off
    assert_matches(ours, expected, min_cosine=0.999)
    convs = [r for r in session.report() if r.op_type == "Conv"]
    assert len(convs) == 7 and all(r.ran_as == "int8" for r in convs), [
        r for r in convs if r.ran_as != "int8"
    ]
