"""Kernel microbenchmarks: GMAC/s per kernel, ISA and shape, against this CPU's peak.

    PYTHONPATH=. pytest bench/ --benchmark-only                 # every ISA this CPU offers
    PYTHONPATH=. pytest bench/ --benchmark-only -k "qconv and avx512vnni"

Not part of `pytest -q` (testpaths is tests/). Shapes are layers of ResNet-18 and
MobileNetV2 at 224x224, batch 1, uint8 activations, per-channel int8 weights and a
requantizing output stage, on one thread, as the executor runs them. Each result's extra_info
has the MACs, GMAC/s and the share of the one-core peak that bench/peak.py
measures (the CPU's best int8 or fp32 register loop, and that ISA's own loop);
the summary at the end lists them (bench/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import peak
import pytest

from pyrt import _kernels
from pyrt import kernels as K


@dataclass(frozen=True)
class Case:
    kernel: str  # qgemm, qconv, qdwconv, sgemm, sconv
    dims: tuple  # gemm: (M channels, N pixels, K); conv: (C_in, C_out, H = W, kernel, stride)
    where: str  # the layer it comes from

    @property
    def macs(self) -> int:
        if self.kernel in ("qgemm", "sgemm"):
            return int(np.prod(self.dims))
        cin, cout, h, k, s = self.dims
        out = (h + 2 * (k // 2) - k) // s + 1
        per_output = k * k if self.kernel == "qdwconv" else cin * k * k
        return cout * out * out * per_output

    def __str__(self) -> str:
        return f"{self.kernel}-{'x'.join(map(str, self.dims))}"


CASES = [
    Case("qgemm", (64, 3136, 576), "ResNet-18 layer1 3x3 conv as a GEMM"),
    Case("qgemm", (512, 49, 4608), "ResNet-18 layer4 3x3 conv as a GEMM"),
    Case("qgemm", (1000, 1, 512), "ResNet-18 classifier"),
    Case("qconv", (64, 64, 56, 3, 1), "ResNet-18 layer1 3x3"),
    Case("qconv", (256, 256, 14, 3, 1), "ResNet-18 layer3 3x3"),
    Case("qconv", (3, 64, 224, 7, 2), "ResNet-18 stem 7x7/2"),
    Case("qconv", (24, 144, 56, 1, 1), "MobileNetV2 expand 1x1"),
    Case("qconv", (576, 96, 14, 1, 1), "MobileNetV2 project 1x1"),
    Case("qdwconv", (32, 32, 112, 3, 1), "MobileNetV2 depthwise 3x3, 112x112"),
    Case("qdwconv", (96, 96, 112, 3, 2), "MobileNetV2 depthwise 3x3/2, 112x112"),
    Case("qdwconv", (144, 144, 56, 3, 1), "MobileNetV2 depthwise 3x3, 56x56"),
    Case("qdwconv", (144, 144, 56, 3, 2), "MobileNetV2 depthwise 3x3/2, 56x56"),
    Case("qdwconv", (192, 192, 28, 3, 1), "MobileNetV2 depthwise 3x3, 28x28"),
    Case("qdwconv", (192, 192, 28, 3, 2), "MobileNetV2 depthwise 3x3/2, 28x28"),
    Case("qdwconv", (384, 384, 14, 3, 1), "MobileNetV2 depthwise 3x3, 14x14"),
    Case("qdwconv", (576, 576, 14, 3, 1), "MobileNetV2 depthwise 3x3, 14x14"),
    Case("qdwconv", (576, 576, 14, 3, 2), "MobileNetV2 depthwise 3x3/2, 14x14"),
    Case("qdwconv", (960, 960, 7, 3, 1), "MobileNetV2 depthwise 3x3, 7x7"),
    Case("sgemm", (64, 3136, 576), "ResNet-18 layer1 3x3 conv as a GEMM, fp32"),
    Case("sconv", (64, 64, 56, 3, 1), "ResNet-18 layer1 3x3, fp32"),
]


def kernel_call(
    case: Case, ctx: _kernels.Context, rng: np.random.Generator
) -> Callable[[], object]:
    """A prepared pyrt kernel on random data, as a zero-argument call on `ctx`, in the
    orientation the executor uses (GEMM rows, NHWC int8 convolution): the one place that
    names pyrt's kernel wrappers."""
    if case.kernel in ("qgemm", "sgemm"):
        m, n, k = case.dims
        if case.kernel == "sgemm":
            op = K.Gemm(rng.standard_normal((m, k), np.float32), None)
            x = rng.standard_normal((k, n), np.float32)
            return lambda: op(x, ctx)
        out = K.OutputStage(np.uint8, rng.uniform(1e-4, 1e-3, m).astype(np.float32), 128, 0, 255)
        w, bias = rng.integers(-127, 128, (m, k), np.int8), rng.integers(-5000, 5000, m, np.int32)
        op = K.QGemm(w, np.zeros(m, np.int32), bias, np.uint8, 3, out)
        x = rng.integers(0, 256, (n, k), np.uint8)  # n rows of K (pixels x channels)
        return lambda: op.rows(x, ctx)
    cin, cout, h, k, s = case.dims
    groups = cin if case.kernel == "qdwconv" else 1
    geometry = dict(groups=groups, strides=(s, s), dilations=(1, 1), pads=(k // 2,) * 4)
    if case.kernel == "sconv":
        op = K.Conv2d(rng.standard_normal((cout, cin, k, k), np.float32), None, **geometry)
        x = rng.standard_normal((1, cin, h, h), np.float32)
        return lambda: op(x, ctx)
    out = K.OutputStage(np.uint8, rng.uniform(1e-4, 1e-3, cout).astype(np.float32), 128, 0, 255)
    w = rng.integers(-127, 128, (cout, cin // groups, k, k), np.int8)
    bias = rng.integers(-5000, 5000, cout, np.int32)
    op = K.QConv2d(
        w, np.zeros(cout, np.int32), bias, x_dtype=np.uint8, x_zero=3, out=out, **geometry
    )
    x = rng.integers(0, 256, (1, h, h, cin), np.uint8)  # NHWC
    return lambda: op.nhwc(x, ctx)


@pytest.fixture(params=_kernels.isa_available())
def ctx(request) -> _kernels.Context:
    """A one-thread execution context with one ISA's kernel table."""
    return _kernels.Context(request.param, threads=1)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_kernel(benchmark, ctx, case, kernel_report):
    run = kernel_call(case, ctx, np.random.default_rng(0))
    run()  # packs the weights for ctx's ISA outside the timing
    benchmark(run)
    isa = ctx.isa
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing measured
        return
    seconds = benchmark.stats.stats.median
    gmacs = case.macs / seconds / 1e9
    precision = "fp32" if case.kernel.startswith("s") else "int8"
    ours = peak.peaks().get(isa)
    isa_peak = getattr(ours, f"{precision}_gmacs") if ours else None
    cpu_peak = peak.cpu_peak()[precision == "fp32"]
    info = {
        "kernel": case.kernel,
        "isa": isa,
        "dims": list(case.dims),
        "layer": case.where,
        "macs": case.macs,
        "gmac_per_s": round(gmacs, 2),
        "cpu_peak_gmac_per_s": cpu_peak,
        "pct_of_cpu_peak": round(100 * gmacs / cpu_peak, 2) if cpu_peak else None,
        "isa_peak_gmac_per_s": isa_peak,
        "pct_of_isa_peak": round(100 * gmacs / isa_peak, 2) if isa_peak else None,
    }
    benchmark.extra_info.update(info)
    kernel_report.append({**info, "median_ms": 1000 * seconds})
