"""Whole CNNs, quantized every way onnxruntime's quantizer (and a PyTorch-style
fake-quant export) writes them, against onnxruntime running the same graph."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import pyrt
from pyrt import zoo
from pyrt.check import _ort_session, compare

TOPOLOGIES = ["resnet18", "mobilenet_v2", "inception", "shufflenet_v2", "densenet", "squeezenet"]


@functools.cache
def fp32_model(name: str):
    model = zoo.MODELS[name]()
    return model, zoo.calibration_data(model, n=4)


@functools.cache
def quantized(name: str, variant: str):
    model, calib = fp32_model(name)
    if variant == "fake_quant":
        return zoo.fake_quant_qdq(model, calib)
    fmt, act = variant.split("_")
    # onnxruntime's own u8 x s8 kernels saturate with full-range weights
    # (QOperator runs them even with optimizations off); 7-bit weights keep
    # its reference exact.
    return zoo.quantize_qdq(
        model, calib, activation_type=act, quant_format=fmt, reduce_range=fmt == "QOperator"
    )


def reference(model, feeds):
    return _ort_session(model, optimized=False).run(None, feeds)[0]


@pytest.mark.parametrize("variant", ["QDQ_uint8", "QDQ_int8"])
@pytest.mark.parametrize("name", TOPOLOGIES)
def test_qdq_models_match_onnxruntime(name, variant):
    model = quantized(name, variant)
    x = fp32_model(name)[1][1]
    session = pyrt.Session(model)
    result = compare("logits", session.run(x)[0], reference(model, x), None)
    assert result.cosine >= 0.999 and result.argmax_equal, result
    counts = session.report().counts()
    assert counts.get("int8", 0) > counts.get("numpy", 0), counts  # the int8 path really ran


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "shufflenet_v2", "squeezenet"])
def test_qoperator_models_match_onnxruntime(name):
    model = quantized(name, "QOperator_uint8")
    x = fp32_model(name)[1][1]
    result = compare("logits", pyrt.run(model, x)[0], reference(model, x), None)
    assert result.cosine >= 0.999 and result.argmax_equal, result


@pytest.mark.parametrize("name", ["resnet18", "inception", "densenet", "squeezenet"])
def test_fake_quant_exports_fold_float_weights(name):
    """Float weights behind Q -> DQ (PyTorch QAT style) are folded to int8 at load."""
    model = quantized(name, "fake_quant")
    x = fp32_model(name)[1][1]
    session = pyrt.Session(model)
    result = compare("logits", session.run(x)[0], reference(model, x), None)
    assert result.cosine >= 0.999 and result.argmax_equal, result
    convs = [r for r in session.report() if r.op_type == "Conv"]
    assert convs and all(r.ran_as == "int8" for r in convs), [
        r for r in convs if r.ran_as != "int8"
    ]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_fp32_models_match_onnxruntime(name):
    model, calib = fp32_model(name)
    ours = pyrt.run(model, calib[0])[0]
    np.testing.assert_allclose(ours, reference(model, calib[0]), rtol=1e-3, atol=1e-4)


def test_check_reports_every_output_and_layer():
    model = quantized("resnet18", "QDQ_uint8")
    report = pyrt.check(model, fp32_model("resnet18")[1][0], layers=True)
    assert report.ok
    assert [o.name for o in report.outputs] == ["logits"]
    assert report.outputs[0].cosine >= 0.999 and report.outputs[0].max_abs_err_steps is not None
    assert len(report.layers) > 10
    assert min(layer.exact_share for layer in report.layers) > 0.9
    assert "per layer" in str(report)
