"""Small real-topology CNNs built with onnx.helper, and ways to quantize them.

Builders (MODELS): resnet18, resnet50, cifar_resnet18, mobilenet_v2, inception, shufflenet_v2,
densenet, squeezenet and the demo's demo_cnn; FP32, opset 17 by default,
input "input" (1x3xSxS, NCHW float32), output "logits" (1 x classes).
Weights are random and seeded (He-scaled), and BatchNormalization gets
running statistics measured on probe inputs while building (see Net), so
activations stay O(1) through any depth and quantization is meaningful:
the quantized models stay within cosine ~0.999 of FP32. Inputs are small
and widths reduced, so tests and the demo need no downloads and run fast on
two cores; the block structure is the real one. FULL_SIZE has ResNet-18 and
MobileNetV2 at 224x224 with 1000 classes and the CIFAR ResNet-18 (32x32) at
their real widths, for benchmarks, and the other topologies at 224x224 (resnet50,
inception224 = GoogLeNet, densenet224 = DenseNet-121, shufflenet_v2_224 = x1.0,
squeezenet224 = SqueezeNet 1.1).

Quantization: quantize_qdq wraps onnxruntime's quantize_static (QDQ or
QOperator, u8 or symmetric s8 activations); fake_quant_qdq writes the
PyTorch / TensorRT fake-quant style of QDQ graph (float weights behind
Q -> DQ). onnxruntime is imported lazily: it is an optional dependency.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _conv_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, groups: int) -> np.ndarray:
    """NCHW convolution with 'same'-style k // 2 padding, in numpy (for BN statistics)."""
    n = x.shape[0]
    cout, cg, k, _ = w.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]
    ho, wo = win.shape[2:4]
    win = win.reshape(n, groups, cg, ho, wo, k, k)
    wg = w.reshape(groups, cout // groups, cg, k, k)
    y = np.einsum("ngchwij,gocij->ngohw", win, wg, optimize=True)
    return y.reshape(n, cout, ho, wo) + b.reshape(1, -1, 1, 1)


def _pool_ref(x: np.ndarray, k: int, s: int, pad: int, ceil: bool, op: str) -> np.ndarray:
    """MaxPool / AveragePool (count_include_pad=0) in numpy."""
    h = x.shape[2]
    span = h + 2 * pad - k
    out = (-(-span // s) if ceil else span // s) + 1
    extra = max((out - 1) * s + k - (h + 2 * pad), 0)
    widths = ((0, 0), (0, 0), (pad, pad + extra), (pad, pad + extra))
    win = (2, 3)
    if op == "max":
        xp = np.pad(x, widths, constant_values=-np.inf)
        v = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=win)[:, :, ::s, ::s]
        return v.max(axis=(4, 5))[:, :, :out, :out]
    xp = np.pad(x, widths)
    ones = np.pad(np.ones((1, 1, h, h)), widths)
    v = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=win)[:, :, ::s, ::s]
    cnt = np.lib.stride_tricks.sliding_window_view(ones, (k, k), axis=win)[:, :, ::s, ::s]
    return (v.sum(axis=(4, 5)) / cnt.sum(axis=(4, 5)))[:, :, :out, :out]


class Net:
    """A tiny graph builder for NCHW, batch-1 CNNs.

    Alongside the graph it computes every tensor (in numpy) for a couple of
    N(0, 1) inputs, and gives each BatchNormalization running statistics
    close to those measured, then perturbs them: like in a trained net,
    activations after BN are O(1) and residual sums grow slowly, whatever
    the depth, so quantization ranges are realistic.
    """

    def __init__(self, channels: int, size: int, seed: int = 0, opset: int = 17):
        if opset < 13:  # Split sizes and Clip bounds are inputs only from opset 13 / 11
            raise ValueError(f"zoo models need opset >= 13, got {opset}")
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.opset, self.input_shape = opset, [1, channels, size, size]
        probe = np.random.default_rng(seed + 1).standard_normal((2, channels, size, size))
        self.values: dict[str, np.ndarray] = {"input": probe}
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        name = self.name(op.lower())
        outs = [f"{name}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        groups: int = 1,
        bn: bool = True,
        act: str | None = "relu",
    ) -> str:
        fan_in = cin // groups * k * k
        w = self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2.0 / fan_in)
        w = w.astype(np.float32)
        b = np.zeros(cout, np.float32)
        inputs = [x, self.const("w", w)]
        if not bn:
            b = (self.rng.standard_normal(cout) * 0.1).astype(np.float32)
            inputs.append(self.const("b", b))
        (y,) = self.node(
            "Conv",
            inputs,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
            group=groups,
        )
        self.values[y] = _conv_ref(self.values[x], w.astype(np.float64), b, stride, groups)
        if bn:
            y = self.batchnorm(y, cout, shift=1.0 if act else 0.0)
        return self.act(y, act)

    def batchnorm(self, x: str, c: int, shift: float = 1.0) -> str:
        """BN with running stats from the probe values: one variance for the whole layer
        (channels keep their relative scale), per-channel means, perturbed. Its
        output is about N(beta, 1) per channel, beta ~ N(shift, 0.5): with
        shift > 0 the ReLU that follows is mostly active, as in trained nets,
        and random nets stay out of the chaotic regime where any rounding
        error grows with depth."""
        r = self.rng
        v = self.values[x]
        mean, var = v.mean(axis=(0, 2, 3)), float(v.var(axis=(0, 2, 3)).mean())
        scale = 1 + 0.1 * r.standard_normal(c)
        bias = shift + 0.5 * r.standard_normal(c) if shift else 0.1 * r.standard_normal(c)
        running_mean = mean + 0.1 * np.sqrt(var) * r.standard_normal(c)
        running_var = var * r.uniform(0.7, 1.4, c)
        params = [scale, bias, running_mean, running_var]
        names = [self.const(p, a.astype(np.float32)) for p, a in zip("sbmv", params)]
        (y,) = self.node("BatchNormalization", [x, *names], epsilon=1e-5)
        k = (scale / np.sqrt(running_var + 1e-5)).reshape(1, -1, 1, 1)
        self.values[y] = (v - running_mean.reshape(1, -1, 1, 1)) * k + bias.reshape(1, -1, 1, 1)
        return y

    def act(self, x: str, act: str | None) -> str:
        if act is None:
            return x
        if act == "relu":
            (y,) = self.node("Relu", [x])
            self.values[y] = np.maximum(self.values[x], 0)
        elif act == "relu6":
            lo = self.const("lo", np.array(0, np.float32))
            hi = self.const("hi", np.array(6, np.float32))
            (y,) = self.node("Clip", [x, lo, hi])
            self.values[y] = np.clip(self.values[x], 0, 6)
        else:
            raise ValueError(f"unknown activation {act!r}")
        return y

    def add(self, a: str, b: str, act: str | None = None) -> str:
        (y,) = self.node("Add", [a, b])
        self.values[y] = self.values[a] + self.values[b]
        return self.act(y, act)

    def concat(self, xs: list[str]) -> str:
        (y,) = self.node("Concat", xs, axis=1)
        self.values[y] = np.concatenate([self.values[x] for x in xs], axis=1)
        return y

    def split(self, x: str, sizes: list[int]) -> list[str]:
        split = self.const("split", np.array(sizes, np.int64))
        outs = self.node("Split", [x, split], len(sizes), axis=1)
        bounds = np.cumsum([0, *sizes])
        for out, lo, hi in zip(outs, bounds[:-1], bounds[1:]):
            self.values[out] = self.values[x][:, lo:hi]
        return outs

    def channel_shuffle(self, x: str, c: int, hw: int, groups: int = 2) -> str:
        """Reshape -> Transpose -> Reshape, as ShuffleNet exports it."""
        shape1 = self.const("shape", np.array([1, groups, c // groups, hw * hw], np.int64))
        (y,) = self.node("Reshape", [x, shape1])
        (y,) = self.node("Transpose", [y], perm=[0, 2, 1, 3])
        shape2 = self.const("shape", np.array([1, c, hw, hw], np.int64))
        (y,) = self.node("Reshape", [y, shape2])
        v = self.values[x]
        n = v.shape[0]
        self.values[y] = (
            v.reshape(n, groups, c // groups, hw, hw).transpose(0, 2, 1, 3, 4).reshape(v.shape)
        )
        return y

    def maxpool(self, x: str, k: int, s: int, pad: int = 0, ceil: bool = False) -> str:
        (y,) = self.node(
            "MaxPool", [x], kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4, ceil_mode=int(ceil)
        )
        self.values[y] = _pool_ref(self.values[x], k, s, pad, ceil, "max")
        return y

    def avgpool(self, x: str, k: int, s: int, pad: int = 0) -> str:
        (y,) = self.node("AveragePool", [x], kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4)
        self.values[y] = _pool_ref(self.values[x], k, s, pad, False, "avg")
        return y

    def head(self, x: str, cin: int, classes: int) -> str:
        """GlobalAveragePool -> Flatten -> Gemm, scaled so the logits are O(1)."""
        (y,) = self.node("GlobalAveragePool", [x])
        (y,) = self.node("Flatten", [y], axis=1)
        features = self.values[x].mean(axis=(2, 3))
        gain = 1.0 / np.sqrt(cin * max(float(np.mean(features**2)), 1e-6))
        w = (self.rng.standard_normal((classes, cin)) * gain).astype(np.float32)
        b = (self.rng.standard_normal(classes) * 0.1).astype(np.float32)
        return self.node("Gemm", [y, self.const("fc_w", w), self.const("fc_b", b)], transB=1)[0]

    def model(self, out: str, classes: int) -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Identity", [out], ["logits"], name="output"))
        graph = helper.make_graph(
            self.nodes,
            "pyrt_zoo",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.input_shape)],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])],
            self.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", self.opset)], producer_name="pyrt.zoo"
        )
        model.ir_version = min(model.ir_version, 9)
        onnx.checker.check_model(model)
        return model


def resnet18(
    width: int = 16,
    size: int = 64,
    classes: int = 10,
    seed: int = 0,
    opset: int = 17,
    stem: str = "imagenet",
) -> onnx.ModelProto:
    """ResNet-18: 7x7 stem, max pool, BasicBlocks [2, 2, 2, 2] with 1x1 downsample shortcuts.

    stem="cifar" is the 32x32 variant: a 3x3 stride-1 stem and no max pool.
    """
    net = Net(3, size, seed, opset)
    if stem == "imagenet":
        x = net.maxpool(net.conv("input", 3, width, 7, 2), 3, 2, 1)
    elif stem == "cifar":
        x = net.conv("input", 3, width, 3)
    else:
        raise ValueError(f"unknown ResNet stem {stem!r}, expected 'imagenet' or 'cifar'")
    cin = width
    for stage, blocks in enumerate([2, 2, 2, 2]):
        cout = width * 2**stage
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            y = net.conv(net.conv(x, cin, cout, 3, stride), cout, cout, 3, act=None)
            short = net.conv(x, cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else x
            x, cin = net.add(y, short, "relu"), cout
    return net.model(net.head(x, cin, classes), classes)


def cifar_resnet18(
    width: int = 64, size: int = 32, classes: int = 10, seed: int = 0, opset: int = 17
) -> onnx.ModelProto:
    """ResNet-18 for CIFAR-10 (He et al.'s CIFAR variant as in the common PyTorch ports):
    3x3 stem, no max pool, BasicBlocks [2, 2, 2, 2] of 64..512 channels: 0.56 GMAC at
    32x32, the size the RISC-V instruction-count target is stated for."""
    net = Net(3, size, seed, opset)
    x, cin = net.conv("input", 3, width, 3, 1), width
    for stage, blocks in enumerate([2, 2, 2, 2]):
        cout = width * 2**stage
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            y = net.conv(net.conv(x, cin, cout, 3, stride), cout, cout, 3, act=None)
            short = net.conv(x, cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else x
            x, cin = net.add(y, short, "relu"), cout
    return net.model(net.head(x, cin, classes), classes)


def resnet50(
    width: int = 8, size: int = 64, classes: int = 10, seed: int = 0, opset: int = 17
) -> onnx.ModelProto:
    """ResNet-50: 7x7 stem, max pool, bottleneck blocks [3, 4, 6, 3] (1x1 -> 3x3 -> 1x1 of
    4x the width, the stride on the 3x3 as in torchvision), 1x1 projection shortcuts."""
    net = Net(3, size, seed, opset)
    x, cin = net.maxpool(net.conv("input", 3, width, 7, 2), 3, 2, 1), width
    for stage, blocks in enumerate([3, 4, 6, 3]):
        mid = width * 2**stage
        cout = mid * 4
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            y = net.conv(net.conv(x, cin, mid, 1), mid, mid, 3, stride)
            y = net.conv(y, mid, cout, 1, act=None)
            short = net.conv(x, cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else x
            x, cin = net.add(y, short, "relu"), cout
    return net.model(net.head(x, cin, classes), classes)


def mobilenet_v2(
    width: float = 0.5, size: int = 64, classes: int = 10, seed: int = 0, opset: int = 17
) -> onnx.ModelProto:
    """MobileNetV2: inverted residuals, depthwise 3x3, ReLU6 (Clip), linear bottlenecks."""

    def ch(c: float) -> int:
        return max(8, int(c * width + 4) // 8 * 8)

    net = Net(3, size, seed, opset)
    cin = ch(32)
    x = net.conv("input", 3, cin, 3, 2, act="relu6")
    for t, c, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        cout = ch(c)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = net.conv(x, cin, hidden, 1, act="relu6") if t != 1 else x
            y = net.conv(y, hidden, hidden, 3, stride, groups=hidden, act="relu6")
            y = net.conv(y, hidden, cout, 1, act=None)
            x = net.add(x, y) if stride == 1 and cin == cout else y
            cin = cout
    last = ch(1280)
    x = net.conv(x, cin, last, 1, act="relu6")
    return net.model(net.head(x, last, classes), classes)


def inception(
    width: int = 16, size: int = 64, classes: int = 10, seed: int = 0, opset: int = 17
) -> onnx.ModelProto:
    """GoogLeNet-style: parallel 1x1 / 3x3 / 5x5 / pool branches joined by Concat."""
    net = Net(3, size, seed, opset)
    x = net.maxpool(net.conv("input", 3, width * 2, 3, 2), 3, 2, 1)
    cin = width * 2
    for module in range(3):
        b1 = net.conv(x, cin, width, 1)
        b2 = net.conv(net.conv(x, cin, width, 1), width, width * 2, 3)
        b3 = net.conv(net.conv(x, cin, width // 2, 1), width // 2, width, 5)
        b4 = net.conv(net.maxpool(x, 3, 1, 1), cin, width, 1)
        x, cin = net.concat([b1, b2, b3, b4]), width * 5
        if module == 1:
            x = net.avgpool(x, 3, 2, 1)
    return net.model(net.head(x, cin, classes), classes)


def _inception_module(net: Net, x: str, cin: int, widths: tuple[int, ...]) -> tuple[str, int]:
    """GoogLeNet's module: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max pool -> 1x1, Concat."""
    c1, c3r, c3, c5r, c5, cp = widths
    b1 = net.conv(x, cin, c1, 1)
    b2 = net.conv(net.conv(x, cin, c3r, 1), c3r, c3, 3)
    b3 = net.conv(net.conv(x, cin, c5r, 1), c5r, c5, 5)
    b4 = net.conv(net.maxpool(x, 3, 1, 1), cin, cp, 1)
    return net.concat([b1, b2, b3, b4]), c1 + c3 + c5 + cp


def googlenet(
    size: int = 224, classes: int = 1000, seed: int = 0, opset: int = 17
) -> onnx.ModelProto:
    """GoogLeNet (Inception v1) at its real widths: 7x7 stem, 1x1 and 3x3 convs, nine
    inception modules (3a-5b) between max pools, global average pool, FC (BN after every
    conv, as torchvision's port; no auxiliary heads)."""
    net = Net(3, size, seed, opset)
    x = net.maxpool(net.conv("input", 3, 64, 7, 2), 3, 2, 1, ceil=True)
    x = net.maxpool(net.conv(net.conv(x, 64, 64, 1), 64, 192, 3), 3, 2, 1, ceil=True)
    cin = 192
    for i, widths in enumerate(
        [
            (64, 96, 128, 16, 32, 32),  # 3a
            (128, 128, 192, 32, 96, 64),  # 3b
            (192, 96, 208, 16, 48, 64),  # 4a
            (160, 112, 224, 24, 64, 64),
            (128, 128, 256, 24, 64, 64),
            (112, 144, 288, 32, 64, 64),
            (256, 160, 320, 32, 128, 128),  # 4e
            (256, 160, 320, 32, 128, 128),  # 5a
            (384, 192, 384, 48, 128, 128),  # 5b
        ]
    ):
        x, cin = _inception_module(net, x, cin, widths)
        if i in (1, 6):
            x = net.maxpool(x, 3, 2, 1, ceil=True)
    return net.model(net.head(x, cin, classes), classes)


def shufflenet_v2(
    width: int = 24,
    size: int = 64,
    classes: int = 10,
    seed: int = 0,
    opset: int = 17,
    stages: tuple[int, ...] | None = None,
    units: tuple[int, ...] = (2, 3, 2),
    last: int | None = None,
) -> onnx.ModelProto:
    """ShuffleNetV2: channel split, depthwise branches, Concat and channel shuffle.

    stages: each stage's output channels (default width * 2, 4, 8); units: blocks per
    stage; last: the final 1x1 conv's channels (default twice the last stage's). x1.0 at
    224 is stages (116, 232, 464), units (4, 8, 4), last 1024."""
    net = Net(3, size, seed, opset)
    hw = size // 4
    x = net.maxpool(net.conv("input", 3, width, 3, 2), 3, 2, 1)
    cin = width
    stages = stages or tuple(width * 2 ** (i + 1) for i in range(len(units)))
    for cout, count in zip(stages, units):
        for u in range(count):
            half = cout // 2
            if u == 0:  # stride 2: both branches see the whole input
                hw = (hw + 1) // 2
                b1 = net.conv(net.conv(x, cin, cin, 3, 2, groups=cin, act=None), cin, half, 1)
                b2 = net.conv(x, cin, half, 1)
                b2 = net.conv(net.conv(b2, half, half, 3, 2, groups=half, act=None), half, half, 1)
            else:
                b1, b2 = net.split(x, [half, half])
                b2 = net.conv(b2, half, half, 1)
                b2 = net.conv(b2, half, half, 3, groups=half, act=None)
                b2 = net.conv(b2, half, half, 1)
            x, cin = net.channel_shuffle(net.concat([b1, b2]), cout, hw), cout
    last = last or cin * 2
    x = net.conv(x, cin, last, 1)
    return net.model(net.head(x, last, classes), classes)


def densenet(
    growth: int = 8,
    size: int = 64,
    classes: int = 10,
    seed: int = 0,
    opset: int = 17,
    blocks: tuple[int, ...] = (3, 4, 3),
    stem: int = 3,
) -> onnx.ModelProto:
    """DenseNet: BN-ReLU-Conv layers whose outputs Concat onto every earlier one.

    blocks: layers per dense block (DenseNet-121: 6, 12, 24, 16 with growth 32); stem:
    the first conv's kernel (7 for the ImageNet nets)."""
    net = Net(3, size, seed, opset)
    x = net.maxpool(net.conv("input", 3, growth * 2, stem, 2), 3, 2, 1)
    cin = growth * 2
    for block, layers in enumerate(blocks):
        for _ in range(layers):
            y = net.act(net.batchnorm(x, cin), "relu")
            y = net.conv(y, cin, growth * 4, 1)
            y = net.conv(y, growth * 4, growth, 3, bn=False, act=None)
            x, cin = net.concat([x, y]), cin + growth
        if block < len(blocks) - 1:  # transition: BN-ReLU-Conv1x1-AvgPool
            y = net.act(net.batchnorm(x, cin), "relu")
            x, cin = net.avgpool(net.conv(y, cin, cin // 2, 1, bn=False, act=None), 2, 2), cin // 2
    x = net.act(net.batchnorm(x, cin), "relu")
    return net.model(net.head(x, cin, classes), classes)


def squeezenet(
    width: int = 16,
    size: int = 64,
    classes: int = 10,
    seed: int = 0,
    opset: int = 17,
    fires: int = 6,
) -> onnx.ModelProto:
    """SqueezeNet 1.1: fire modules (squeeze 1x1, expand 1x1 + 3x3 -> Concat), ceil-mode
    pools; the real net has 8 fires at width 16 (squeeze 16..64, expand 64..256)."""
    net = Net(3, size, seed, opset)
    x = net.maxpool(net.conv("input", 3, width * 4, 3, 2, bn=False), 3, 2, ceil=True)
    cin = width * 4
    widths = [(1, 4), (1, 4), (2, 8), (2, 8), (3, 12), (3, 12), (4, 16), (4, 16)][:fires]
    for i, (s, e) in enumerate(widths):
        sq = net.conv(x, cin, width * s, 1, bn=False)
        x = net.concat(
            [
                net.conv(sq, width * s, width * e, 1, bn=False),
                net.conv(sq, width * s, width * e, 3, bn=False),
            ]
        )
        cin = width * e * 2
        if i in (1, 3):
            x = net.maxpool(x, 3, 2, ceil=True)
    x = net.conv(x, cin, classes, 1, bn=False)
    (y,) = net.node("GlobalAveragePool", [x])
    return net.model(net.node("Flatten", [y])[0], classes)


def demo_cnn(size: int = 64, classes: int = 10, seed: int = 0, opset: int = 17) -> onnx.ModelProto:
    """The `python -m pyrt demo` model: stem, residual block, depthwise block, pools, FC."""
    net = Net(3, size, seed, opset)
    x = net.maxpool(net.conv("input", 3, 32, 3, 2), 3, 2, 1)
    y = net.conv(net.conv(x, 32, 32, 3), 32, 32, 3, act=None)
    x = net.add(x, y, "relu")
    x = net.conv(net.conv(x, 32, 32, 3, 2, groups=32, act="relu6"), 32, 64, 1, act="relu6")
    x = net.conv(x, 64, 64, 3)
    return net.model(net.head(x, 64, classes), classes)


MODELS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "cifar_resnet18": cifar_resnet18,
    "mobilenet_v2": mobilenet_v2,
    "inception": inception,
    "shufflenet_v2": shufflenet_v2,
    "densenet": densenet,
    "squeezenet": squeezenet,
    "demo_cnn": demo_cnn,
}

# The real networks at full width, input size and class count (bench/compare.py's defaults).
FULL_SIZE: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": partial(resnet18, width=64, size=224, classes=1000),
    "mobilenet_v2": partial(mobilenet_v2, width=1.0, size=224, classes=1000),
    "cifar_resnet18": partial(resnet18, width=64, size=32, classes=10, stem="cifar"),
    # not bench/compare.py defaults: the other CNN topologies at their real sizes
    "resnet50": partial(resnet50, width=64, size=224, classes=1000),
    "inception224": googlenet,
    "densenet224": partial(
        densenet, growth=32, size=224, classes=1000, blocks=(6, 12, 24, 16), stem=7
    ),
    "shufflenet_v2_224": partial(
        shufflenet_v2, size=224, classes=1000, stages=(116, 232, 464), units=(4, 8, 4), last=1024
    ),
    "squeezenet224": partial(squeezenet, width=16, size=224, classes=1000, fires=8),
}


def calibration_data(
    model: onnx.ModelProto, n: int = 8, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """n random N(0, 1) inputs shaped like the model's (symbolic dims become 1)."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    specs = [
        (i.name, [d.dim_value or 1 for d in i.type.tensor_type.shape.dim])
        for i in model.graph.input
        if i.name not in inits
    ]
    return [
        {name: rng.standard_normal(shape).astype(np.float32) for name, shape in specs}
        for _ in range(n)
    ]


def quantize_qdq(
    model: onnx.ModelProto,
    calib: list[dict[str, np.ndarray]],
    *,
    activation_type: str = "uint8",
    weight_type: str = "int8",
    per_channel: bool = True,
    quant_format: str = "QDQ",
    reduce_range: bool = False,
    extra_options: dict | None = None,
    op_types: list[str] | None = None,
    nodes_to_exclude: list[str] | None = None,
) -> onnx.ModelProto:
    """onnxruntime's quantize_static (after its pre-processing), MinMax calibration.

    activation_type "int8" means symmetric s8 activations, as TensorRT uses.
    reduce_range keeps weights to 7 bits, which onnxruntime's own u8 x s8
    kernels need to avoid saturating on CPUs without VNNI. op_types limits the ops
    quantized (onnxruntime's op_types_to_quantize); nodes_to_exclude keeps nodes FP32.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calib)

        def get_next(self):
            return next(self.items, None)

    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    options = {"ActivationSymmetric": activation_type == "int8", **(extra_options or {})}
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = (str(Path(tmp) / f) for f in ("in.onnx", "pre.onnx", "out.onnx"))
        onnx.save(model, src)
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        quantize_static(
            pre,
            out,
            Reader(),
            quant_format=getattr(QuantFormat, quant_format),
            activation_type=types[activation_type],
            weight_type=types[weight_type],
            per_channel=per_channel,
            reduce_range=reduce_range,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=op_types,
            nodes_to_exclude=nodes_to_exclude,
            extra_options=options,
        )
        return onnx.load(out)


FAKE_QUANT_OPS = (
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Concat",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
)
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")


def fake_quant_qdq(
    model: onnx.ModelProto,
    calib: list[dict[str, np.ndarray]],
    *,
    ops: tuple[str, ...] = FAKE_QUANT_OPS,
    per_channel: bool = True,
    fold_bn: bool = True,
) -> onnx.ModelProto:
    """The PyTorch / TensorRT (pytorch-quantization) style of QDQ graph.

    Weights of Conv, Gemm and MatMul stay float initializers behind
    QuantizeLinear -> DequantizeLinear (int8, symmetric, zero point 0, per
    output channel unless per_channel=False); every float activation entering
    one of `ops` (by default Conv, Gemm, MatMul, Add, Concat and the pools,
    like pytorch-quantization's Quant* modules) gets an int8 symmetric
    Q -> DQ with a per-tensor scale from the calibration max-abs; biases stay
    float. fold_bn folds BatchNormalization into the convolutions first
    (onnxruntime's pre-processing), as QAT exports do.
    """
    import onnxruntime as ort

    if fold_bn:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with tempfile.TemporaryDirectory() as tmp:
            src, pre = str(Path(tmp) / "in.onnx"), str(Path(tmp) / "pre.onnx")
            onnx.save(model, src)
            quant_pre_process(src, pre, skip_symbolic_shape=True)
            model = onnx.load(pre)
    model = onnx.shape_inference.infer_shapes(model)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    acts = sorted(
        {i for n in model.graph.node if n.op_type in ops for i in n.input if i and i not in inits}
    )
    maxabs = _calibrated_maxabs(model, acts, calib, ort)

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    new_nodes: list[onnx.NodeProto] = []
    graph.initializer.append(numpy_helper.from_array(np.array(0, np.int8), "fq_zero"))
    for name in acts:
        scale = np.array(max(maxabs[name], 1e-8) / 127, np.float32)
        graph.initializer.append(numpy_helper.from_array(scale, f"{name}_fq_scale"))
        new_nodes += _qdq(name, f"{name}_fq_scale", "fq_zero", f"{name}_fq", None)
    done: set[str] = set()
    for node in graph.node:
        if node.op_type not in ops:
            continue
        for i, name in enumerate(node.input):
            if name in maxabs:
                node.input[i] = f"{name}_fq"
        if node.op_type not in WEIGHTED_OPS or node.input[1] not in inits:
            continue
        w_name = node.input[1]
        node.input[1] = f"{w_name}_fq_w"
        if w_name in done:  # a weight shared by several nodes
            continue
        done.add(w_name)
        w = inits[w_name]
        transposed = node.op_type == "MatMul" or (
            node.op_type == "Gemm" and not _attr(node, "transB")
        )
        axis = (1 if transposed else 0) if per_channel else None
        if axis is None:
            scale = np.array(max(float(np.abs(w).max()), 1e-8) / 127, np.float32)
        else:
            reduce = tuple(a for a in range(w.ndim) if a != axis)
            scale = (np.maximum(np.abs(w).max(axis=reduce), 1e-8) / 127).astype(np.float32)
        zero = np.zeros(scale.shape, np.int8)
        graph.initializer.extend(
            [
                numpy_helper.from_array(scale, f"{w_name}_fq_scale"),
                numpy_helper.from_array(zero, f"{w_name}_fq_zero"),
            ]
        )
        new_nodes += _qdq(w_name, f"{w_name}_fq_scale", f"{w_name}_fq_zero", f"{w_name}_fq_w", axis)
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(
        _toposorted(nodes, {i.name for i in graph.input} | {t.name for t in graph.initializer})
    )
    onnx.checker.check_model(out)
    return out


def _qdq(x: str, scale: str, zero: str, out: str, axis: int | None) -> list[onnx.NodeProto]:
    attrs = {} if axis is None else {"axis": axis}
    return [
        helper.make_node(
            "QuantizeLinear", [x, scale, zero], [f"{out}_q"], name=f"{out}_Q", **attrs
        ),
        helper.make_node(
            "DequantizeLinear", [f"{out}_q", scale, zero], [out], name=f"{out}_DQ", **attrs
        ),
    ]


def _calibrated_maxabs(
    model: onnx.ModelProto, names: list[str], calib: list[dict[str, np.ndarray]], ort
) -> dict[str, float]:
    """max |x| of each named float tensor over the calibration inputs (onnxruntime, fp32)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in names:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    maxabs = dict.fromkeys(names, 0.0)
    for feed in calib:
        for name, value in zip(outputs, session.run(None, feed)):
            if name in maxabs:
                maxabs[name] = max(maxabs[name], float(np.abs(value).max()))
    return maxabs


def _attr(node: onnx.NodeProto, name: str) -> int:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), 0)


def _toposorted(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    done, order, pending = set(available), [], list(nodes)
    while pending:
        ready = [n for n in pending if all(not i or i in done for i in n.input)]
        if not ready:
            raise ValueError("fake_quant_qdq produced a cycle")
        for n in ready:
            order.append(n)
            done.update(n.output)
        pending = [n for n in pending if n not in ready]
    return order
