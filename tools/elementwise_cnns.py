"""Writes the FP32 benchmarks of pyrt's fp32 elementwise kernels (kernels/src/felem/):

mnv3    a small MobileNetV3-shaped net at 64x64: HardSwish, Squeeze-Excite with
        Relu, HardSigmoid and a broadcast Mul, Swish written as Mul(x, Sigmoid(x)),
        residual Add
effnet  an EfficientNet-B0-shaped net at 224x224: Swish everywhere, Squeeze-Excite
        with a Sigmoid gate, residual Adds (B0's widths, depths, strides, kernels)

  python tools/elementwise_cnns.py mnv3 /tmp/mnv3.onnx
  python bench/compare.py --models /tmp/mnv3.onnx --engines pyrt,onnxruntime
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1) -> str:
        out = self._name("conv")
        fan_in = cin // group * k * k
        w = self.rng.standard_normal((cout, cin // group, k, k)) * (2 / fan_in) ** 0.5
        b = self.rng.standard_normal(cout) * 0.1
        inputs = [x, self.const(out + "_w", w), self.const(out + "_b", b)]
        self.nodes.append(
            helper.make_node("Conv", inputs, [out], kernel_shape=[k, k], strides=[stride] * 2,
                             pads=[k // 2] * 4, group=group)
        )  # fmt: skip
        return out

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def swish(self, x: str) -> str:
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def model(self, name: str, size: int, x: str, channels: int, classes: int) -> onnx.ModelProto:
        flat = self.op("Flatten", [self.op("GlobalAveragePool", [x])])
        fc = self.const("fc_w", self.rng.standard_normal((channels, classes)) * channels**-0.5)
        out = self.op("MatMul", [flat, fc])
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, classes])],
            self.inits,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def mobilenet_v3_like() -> onnx.ModelProto:
    b = _Builder()
    x = b.op("HardSwish", [b.conv("input", 3, 16, 3, 2)])
    for cin, cexp, cout, stride in [(16, 64, 24, 2), (24, 72, 24, 1), (24, 96, 40, 2)]:
        h = b.op("HardSwish", [b.conv(x, cin, cexp, 1)])
        h = b.op("HardSwish", [b.conv(h, cexp, cexp, 3, stride, cexp)])
        se = b.op("Relu", [b.conv(b.op("GlobalAveragePool", [h]), cexp, cexp // 4, 1)])
        se = b.op("HardSigmoid", [b.conv(se, cexp // 4, cexp, 1)], alpha=1 / 6, beta=0.5)
        y = b.swish(b.conv(b.op("Mul", [h, se]), cexp, cout, 1))
        x = b.op("Add", [y, x]) if cin == cout and stride == 1 else y
    return b.model("mobilenet_v3_like", 64, x, 40, 10)


def efficientnet_like() -> onnx.ModelProto:
    b = _Builder()
    x, c = b.swish(b.conv("input", 3, 32, 3, 2)), 32
    # (expansion, out channels, repeats, stride, kernel) of EfficientNet-B0
    stages = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3),
              (6, 112, 3, 1, 5), (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]  # fmt: skip
    for expand, cout, repeats, first_stride, k in stages:
        for i in range(repeats):
            stride, cexp, squeeze = first_stride if i == 0 else 1, c * expand, max(1, c // 4)
            h = b.swish(b.conv(x, c, cexp, 1)) if expand != 1 else x
            h = b.swish(b.conv(h, cexp, cexp, k, stride, cexp))
            se = b.swish(b.conv(b.op("GlobalAveragePool", [h]), cexp, squeeze, 1))
            se = b.op("Sigmoid", [b.conv(se, squeeze, cexp, 1)])
            y = b.conv(b.op("Mul", [h, se]), cexp, cout, 1)
            x, c = (b.op("Add", [y, x]) if stride == 1 and c == cout else y), cout
    return b.model("efficientnet_like", 224, b.swish(b.conv(x, c, 1280, 1)), 1280, 1000)


MODELS = {"mnv3": mobilenet_v3_like, "effnet": efficientnet_like}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in MODELS:
        sys.exit(f"usage: python tools/elementwise_cnns.py {{{','.join(MODELS)}}} OUT.onnx")
    onnx.save(MODELS[sys.argv[1]](), sys.argv[2])
