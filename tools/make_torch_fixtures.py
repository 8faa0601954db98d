"""Write PyTorch-exported QDQ ONNX fixtures into tests/data/ (run by hand, needs torch).

    pip install torch==2.13.0  # CPU build; only this script needs it, never pyrt or its tests
    python tools/make_torch_fixtures.py

Each fixture is one small CNN (conv-BN-ReLU stem, a residual block, a
depthwise-separable block, a two-branch Concat, max and global average
pooling, a Linear head; 3x32x32 input, 10 classes) quantized with
torch.ao.quantization in FX graph mode and exported with the TorchScript
("legacy") exporter, torch.onnx.export(dynamo=False, opset_version=13):

    tests/data/torch_<style>.onnx         the QDQ model: input "input", output "logits"
    tests/data/torch_<style>_input.npy    one float32 input, 1x3x32x32
    tests/data/torch_<style>_output.npy   PyTorch's own output for it

Styles:

ptq_x86
    Post-training quantization as documented: prepare_fx with
    get_default_qconfig_mapping("x86") (activations quint8 with reduce_range,
    weights qint8 per-channel symmetric), MinMax calibration, convert_fx, and
    the *converted* model exported. The exporter writes int8 weights and int32
    biases as Constant -> DequantizeLinear, QuantizeLinear -> Cast -> DequantizeLinear
    on activations, and Conv -> Relu -> QuantizeLinear for fused ConvReLU.
    PyTorch's output here comes from its fbgemm int8 kernels, so it differs
    from the QDQ definition by a rounding step or so.
qat_x86
    QAT fake-quant export: prepare_qat_fx with the x86 default QAT settings
    (quint8 activations with reduce_range, i.e. codes 0..127; qint8
    per-channel symmetric weights; moving-average observers), calibrated, then
    the *prepared* model exported with observers off and fake-quant on. BN
    stays in the QAT ConvBn modules, so each Conv is followed by Div (undoing
    the BN weight scaling) and BatchNormalization, and each QuantizeLinear by
    a Clip to 0..127 before its DequantizeLinear: the raw graph people get.
fq_s8
    TensorRT / pytorch-quantization convention as a fake-quant export: BN
    folded first (fuse_fx in eval mode), symmetric qint8 activations (zero
    point 0), qint8 per-channel symmetric weights kept as float initializers
    behind QuantizeLinear -> DequantizeLinear (axis 0), MinMax calibration.

Routes tried with torch 2.13.0 (CPU), and why some are not used:

* torch.onnx.export(dynamo=True), the default: needs onnxscript, which is not
  installed (and routes QDQ through PT2E); not used.
* get_default_qat_qconfig_mapping("x86") as is: its FusedMovingAvgObsFakeQuantize
  modules trace to aten::fused_moving_avg_obs_fake_quant, which the legacy
  exporter rejects at opset 13. qat_x86 uses plain FakeQuantize modules with
  the same settings instead.
* qint8 activations with the default (native) backend config: FX leaves them
  unquantized (only weights get fake-quant). The qnnpack backend config takes
  them but demands -127..127 weights, which the exporter rejects (it allows
  (0, 127), (0, 255) and (-128, 127) only). fq_s8 uses the native config with
  a qint8 DTypeConfig added to every pattern.
* What works: the converted model (ptq_x86), and the prepared (fake-quant)
  model with observers disabled (qat_x86, fq_s8):
  aten::fake_quantize_per_{tensor,channel}_affine become
  QuantizeLinear -> DequantizeLinear.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.ao.quantization import (
    FakeQuantize,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    PerChannelMinMaxObserver,
    QConfig,
    QConfigMapping,
    disable_observer,
    get_default_qconfig_mapping,
)
from torch.ao.quantization.backend_config import (
    BackendConfig,
    DTypeConfig,
    get_native_backend_config,
)
from torch.ao.quantization.quantize_fx import convert_fx, fuse_fx, prepare_fx, prepare_qat_fx

OUT = Path(__file__).resolve().parent.parent / "tests" / "data"
SIZE = 32


def conv_bn(
    cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SmallNet(nn.Module):
    """Stem, residual block, depthwise-separable block, Concat branches, pools, Linear."""

    def __init__(self, width: int = 16, classes: int = 10):
        super().__init__()
        w = width
        self.stem = conv_bn(3, w, 3, 2)
        self.res1 = conv_bn(w, w, 3)
        self.res2 = conv_bn(w, w, 3, relu=False)
        self.relu = nn.ReLU()
        self.dw = conv_bn(w, w, 3, 2, groups=w)
        self.pw = conv_bn(w, 2 * w, 1)
        self.branch_a = conv_bn(2 * w, w, 1)
        self.branch_b = conv_bn(2 * w, w, 3)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * w, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.relu(self.res2(self.res1(x)) + x)
        x = self.pw(self.dw(x))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], dim=1)
        x = self.gap(self.pool(x))
        return self.fc(torch.flatten(x, 1))


def make_float_model(seed: int) -> nn.Module:
    """SmallNet with non-trivial BatchNorm statistics (as a trained net would have)."""
    torch.manual_seed(seed)
    model = SmallNet()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.1)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def fake_quant_qconfig(kind: str) -> QConfig:
    """Exportable (plain FakeQuantize) qconfigs: "x86" QAT defaults, or "s8" symmetric."""
    if kind == "x86":
        act = FakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver,
            quant_min=0,
            quant_max=255,
            dtype=torch.quint8,
            qscheme=torch.per_tensor_affine,
            reduce_range=True,
        )
        weight_observer = MovingAveragePerChannelMinMaxObserver
    else:
        act = FakeQuantize.with_args(
            observer=MinMaxObserver,
            quant_min=-128,
            quant_max=127,
            dtype=torch.qint8,
            qscheme=torch.per_tensor_symmetric,
        )
        weight_observer = PerChannelMinMaxObserver
    weight = FakeQuantize.with_args(
        observer=weight_observer,
        quant_min=-128,
        quant_max=127,
        dtype=torch.qint8,
        qscheme=torch.per_channel_symmetric,
    )
    return QConfig(activation=act, weight=weight)


def s8_backend_config() -> BackendConfig:
    """The native backend config, also accepting qint8 activations on every pattern.

    The native one takes only quint8 activations (FX then leaves qint8 ones
    unquantized), and qnnpack's wants -127..127 weights, which the ONNX
    exporter rejects.
    """
    weighted = DTypeConfig(
        input_dtype=torch.qint8,
        output_dtype=torch.qint8,
        weight_dtype=torch.qint8,
        bias_dtype=torch.float,
    )
    plain = DTypeConfig(input_dtype=torch.qint8, output_dtype=torch.qint8)
    config = get_native_backend_config()
    for pattern in config.configs:
        has_weight = any(d.weight_dtype is not None for d in pattern.dtype_configs)
        pattern.add_dtype_config(weighted if has_weight else plain)
    return config


def calibrate(model: nn.Module, calib: torch.Tensor) -> None:
    with torch.no_grad():
        for i in range(calib.shape[0]):
            model(calib[i : i + 1])


def ptq_x86(seed: int, calib: torch.Tensor) -> nn.Module:
    """FX post-training quantization with the x86 default qconfig, converted to int8."""
    model = make_float_model(seed)
    prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (calib[:1],))
    calibrate(prepared, calib)
    return convert_fx(prepared)


def qat_x86(seed: int, calib: torch.Tensor) -> nn.Module:
    """FX QAT-prepared model (BN kept in ConvBn), calibrated, fake-quant on."""
    model = make_float_model(seed).train()
    mapping = QConfigMapping().set_global(fake_quant_qconfig("x86"))
    prepared = prepare_qat_fx(model, mapping, (calib[:1],))
    prepared.eval()  # BN uses its running stats; observers still record
    calibrate(prepared, calib)
    prepared.apply(disable_observer)
    return prepared


def fq_s8(seed: int, calib: torch.Tensor) -> nn.Module:
    """BN folded, symmetric int8 fake-quant everywhere (TensorRT style)."""
    model = fuse_fx(make_float_model(seed)).train()  # eval-mode fusion folds BN into Conv
    mapping = QConfigMapping().set_global(fake_quant_qconfig("s8"))
    prepared = prepare_qat_fx(model, mapping, (calib[:1],), backend_config=s8_backend_config())
    prepared.eval()
    calibrate(prepared, calib)
    prepared.apply(disable_observer)
    return prepared


FIXTURES: dict[str, Callable[[int, torch.Tensor], nn.Module]] = {
    "ptq_x86": ptq_x86,
    "qat_x86": qat_x86,
    "fq_s8": fq_s8,
}


def export(style: str, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    calib = torch.randn(16, 3, SIZE, SIZE, generator=gen)
    x = torch.randn(1, 3, SIZE, SIZE, generator=gen)
    model = FIXTURES[style](seed, calib)
    with torch.no_grad():
        y = model(x)
    path = OUT / f"torch_{style}.onnx"
    torch.onnx.export(
        model,
        (x,),
        str(path),
        dynamo=False,
        opset_version=13,
        input_names=["input"],
        output_names=["logits"],
    )
    np.save(OUT / f"torch_{style}_input.npy", x.numpy())
    np.save(OUT / f"torch_{style}_output.npy", y.numpy())
    print(f"{path.relative_to(OUT.parent.parent)}: {path.stat().st_size} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("styles", nargs="*", help=f"some of {', '.join(FIXTURES)} (default all)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    # torch.ao.quantization's deprecation notices and tracer warnings are expected here
    warnings.simplefilter("ignore")
    for style in args.styles or FIXTURES:
        if style not in FIXTURES:
            parser.error(f"unknown style {style!r}")
        export(style, args.seed)


if __name__ == "__main__":
    main()
