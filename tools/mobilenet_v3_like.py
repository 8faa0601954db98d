"""Writes a small MobileNetV3-shaped FP32 model (HardSwish, Squeeze-Excite with Relu,
HardSigmoid and a broadcast Mul, Swish written as Mul(x, Sigmoid(x)), residual Add),
the benchmark of pyrt's fp32 elementwise kernels:

    python tools/mobilenet_v3_like.py /tmp/mnv3.onnx
    python bench/compare.py --models /tmp/mnv3.onnx --engines pyrt,onnxruntime
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    count = [0]

    def name(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def conv(x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1) -> str:
        out = name("conv")
        fan_in = cin // group * k * k
        w = rng.standard_normal((cout, cin // group, k, k)) * (2 / fan_in) ** 0.5
        inits.append(numpy_helper.from_array(w.astype(np.float32), out + "_w"))
        inits.append(
            numpy_helper.from_array(
                (rng.standard_normal(cout) * 0.1).astype(np.float32), out + "_b"
            )
        )
        nodes.append(
            helper.make_node("Conv", [x, out + "_w", out + "_b"], [out], kernel_shape=[k, k],
                             strides=[stride, stride], pads=[k // 2] * 4, group=group)
        )  # fmt: skip
        return out

    def op(op_type: str, inputs: list[str], **attrs) -> str:
        out = name(op_type.lower())
        nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    x = op("HardSwish", [conv("input", 3, 16, 3, 2)])
    for cin, cexp, cout, stride in [(16, 64, 24, 2), (24, 72, 24, 1), (24, 96, 40, 2)]:
        h = op("HardSwish", [conv(x, cin, cexp, 1)])
        h = op("HardSwish", [conv(h, cexp, cexp, 3, stride, cexp)])
        se = op("GlobalAveragePool", [h])
        se = op("Relu", [conv(se, cexp, cexp // 4, 1)])
        se = op("HardSigmoid", [conv(se, cexp // 4, cexp, 1)], alpha=1 / 6, beta=0.5)
        h = op("Mul", [h, se])
        y = conv(h, cexp, cout, 1)
        y = op("Mul", [y, op("Sigmoid", [y])])
        x = op("Add", [y, x]) if cin == cout and stride == 1 else y
    flat = op("Flatten", [op("GlobalAveragePool", [x])])
    inits.append(
        numpy_helper.from_array((rng.standard_normal((40, 10)) * 0.2).astype(np.float32), "fc_w")
    )
    out = op("MatMul", [flat, "fc_w"])
    graph = helper.make_graph(
        nodes,
        "mobilenet_v3_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


if __name__ == "__main__":
    onnx.save(build(), sys.argv[1] if len(sys.argv) > 1 else "mnv3.onnx")
