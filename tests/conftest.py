"""Shared fixtures: zoo models quantized once per test session, and the onnxruntime reference."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import numpy as np
import onnx
import pytest

from pyrt import _kernels


class ZooCache:
    """FP32 zoo models with their calibration data, and their quantized variants, built once.

    Variants: "QDQ_uint8", "QDQ_int8" (symmetric s8 activations), "QOperator_uint8",
    "fake_quant" (PyTorch/TensorRT style, per-channel) and "fake_quant_per_tensor".
    """

    def __init__(self) -> None:
        self._fp32: dict[str, tuple[onnx.ModelProto, list[dict[str, np.ndarray]]]] = {}
        self._quantized: dict[tuple[str, str], onnx.ModelProto] = {}

    def fp32(self, name: str) -> tuple[onnx.ModelProto, list[dict[str, np.ndarray]]]:
        from pyrt import zoo

        if name not in self._fp32:
            model = zoo.MODELS[name]()
            self._fp32[name] = (model, zoo.calibration_data(model, n=4))
        return self._fp32[name]

    def quantized(self, name: str, variant: str) -> onnx.ModelProto:
        from pyrt import zoo

        key = (name, variant)
        if key not in self._quantized:
            model, calib = self.fp32(name)
            if variant == "fake_quant":
                q = zoo.fake_quant_qdq(model, calib)
            elif variant == "fake_quant_per_tensor":
                q = zoo.fake_quant_qdq(model, calib, per_channel=False)
            else:
                fmt, act = variant.split("_")
                # onnxruntime's own u8 x s8 QOperator kernels (which run even with
                # optimizations off) saturate with full-range weights; 7-bit weights
                # keep that reference exact.
                q = zoo.quantize_qdq(
                    model,
                    calib,
                    activation_type=act,
                    quant_format=fmt,
                    reduce_range=fmt == "QOperator",
                )
            self._quantized[key] = q
        return self._quantized[key]

    def test_input(self, name: str) -> dict[str, np.ndarray]:
        """An input outside the calibration set (so some values leave the calibrated ranges)."""
        from pyrt import zoo

        return zoo.calibration_data(self.fp32(name)[0], n=1, seed=1234)[0]


@pytest.fixture(scope="session")
def zoo_cache() -> ZooCache:
    return ZooCache()


@pytest.fixture(scope="session")
def ort_reference() -> Callable[[onnx.ModelProto, dict[str, np.ndarray]], list[np.ndarray]]:
    """Run a model in onnxruntime with every graph optimization off: the QDQ definition."""
    ort = pytest.importorskip("onnxruntime")

    def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return session.run(None, feeds)

    return run


@pytest.fixture(params=_kernels.isa_available())
def every_isa(request):
    """Runs a test once per kernel table this CPU offers (scalar, then each SIMD one)."""
    before = _kernels.isa()
    _kernels.set_isa(request.param)
    yield request.param
    _kernels.set_isa(before)


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


@pytest.fixture
def steady_rss_growth_kb() -> Callable[[Callable[[], None]], int]:
    """RSS growth (kB) that repeats: the median over three calls of `window`, after a
    first call that warms up.

    A leak grows memory in every window. The allocator's one-off steps do not repeat: a
    malloc arena for a thread that met a busy one (more likely on a loaded machine), a
    raised mmap threshold, heap pages touched for the first time. A single window's
    growth measures both; the median of three measures the leak, at the same rate."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("reads VmRSS from /proc")

    def measure(window: Callable[[], None], windows: int = 3) -> int:
        window()
        growth = []
        for _ in range(windows):
            gc.collect()
            before = _rss_kb()
            window()
            gc.collect()
            growth.append(_rss_kb() - before)
        return sorted(growth)[windows // 2]

    return measure
