"""pyrt's fp32 Conv / Gemm kernels against onnxruntime FP32, layer by layer, one interleaved run.

    PYTHONPATH=. python bench/fp32_layers.py [--isa avx2] [--threads 1] [--peak 118]

Layers are ResNet-18 and MobileNetV2 convolutions at 224x224, batch 1, and two
Gemms. pyrt runs its NHWC kernels (Conv2d.nhwc, Gemm.rows: the layout the
planner gives them); onnxruntime runs a one-node model of the same layer in
its own NCHW interface with every graph optimization on. Rounds alternate the
two engines; the table has medians, GFLOP/s (2 flops per multiply-add), the
pyrt / onnxruntime time ratio of the medians and of the fastest rounds (the
steadier figure on a busy machine) and, with --peak (GFLOP/s of one core),
pyrt's share of that peak.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from pyrt import _kernels
from pyrt import kernels as K

# name, in_c, out_c, input size, kernel, stride, groups
CONVS = [
    ("ResNet-18 stem 7x7/2", 3, 64, 224, 7, 2, 1),
    ("ResNet-18 layer1 3x3", 64, 64, 56, 3, 1, 1),
    ("ResNet-18 layer2 3x3/2", 64, 128, 56, 3, 2, 1),
    ("ResNet-18 layer2 1x1/2", 64, 128, 56, 1, 2, 1),
    ("ResNet-18 layer3 3x3", 256, 256, 14, 3, 1, 1),
    ("ResNet-18 layer4 3x3", 512, 512, 7, 3, 1, 1),
    ("MobileNetV2 stem 3x3/2", 3, 32, 224, 3, 2, 1),
    ("MobileNetV2 dw 3x3 C32 112", 32, 32, 112, 3, 1, 32),
    ("MobileNetV2 dw 3x3/2 C96 112", 96, 96, 112, 3, 2, 96),
    ("MobileNetV2 expand 1x1 24->144", 24, 144, 56, 1, 1, 1),
    ("MobileNetV2 dw 3x3 C144 56", 144, 144, 56, 3, 1, 144),
    ("MobileNetV2 project 1x1 144->24", 144, 24, 56, 1, 1, 1),
    ("MobileNetV2 dw 3x3 C576 14", 576, 576, 14, 3, 1, 576),
    ("MobileNetV2 1x1 320->1280", 320, 1280, 7, 1, 1, 1),
]
# name, rows, out features, in features
GEMMS = [
    ("ResNet-18 classifier 512->1000", 1, 1000, 512),
    ("Gemm 128 x 768->3072", 128, 3072, 768),
]


def ort_session(node, inputs, inits) -> ort.InferenceSession:
    graph = helper.make_graph(
        [node],
        "layer",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in inputs],
        [onnx.ValueInfoProto(name="y")],
        [numpy_helper.from_array(v, n) for n, v in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])


def layers(ctx: _kernels.Context, rng: np.random.Generator):
    """(name, flops, pyrt call, onnxruntime call) per layer; outputs checked to agree."""
    for name, cin, cout, size, k, s, g in CONVS:
        x = rng.standard_normal((1, cin, size, size)).astype(np.float32)
        w = (rng.standard_normal((cout, cin // g, k, k)) / np.sqrt(cin // g * k * k)).astype(
            np.float32
        )
        b = rng.standard_normal(cout).astype(np.float32)
        pads = (k // 2,) * 4
        conv = K.Conv2d(w, b, groups=g, strides=(s, s), dilations=(1, 1), pads=pads)
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        y = conv.nhwc(x_nhwc, ctx)
        node = helper.make_node(
            "Conv", ["x", "w", "b"], ["y"], group=g, strides=[s, s], pads=list(pads)
        )
        sess = ort_session(node, [("x", x.shape)], [("w", w), ("b", b)])
        ref = sess.run(None, {"x": x})[0]
        np.testing.assert_allclose(y.transpose(0, 3, 1, 2), ref, rtol=1e-3, atol=1e-3)
        flops = 2 * y.size * (cin // g) * k * k
        yield (
            name,
            flops,
            lambda conv=conv, x=x_nhwc, y=y: conv.nhwc(x, ctx, y),
            lambda sess=sess, x=x: sess.run(None, {"x": x}),
        )
    for name, m, n, k in GEMMS:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32)
        gemm = K.Gemm(w, b)
        y = gemm.rows(x, ctx)
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
        sess = ort_session(node, [("x", x.shape)], [("w", w), ("b", b)])
        np.testing.assert_allclose(y, sess.run(None, {"x": x})[0], rtol=1e-3, atol=1e-3)
        yield (
            name,
            2 * m * n * k,
            lambda gemm=gemm, x=x, y=y: gemm.rows(x, ctx, y),
            lambda sess=sess, x=x: sess.run(None, {"x": x}),
        )


def timed(fn, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", default=None, help="pyrt kernel table (default: the best)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--peak", type=float, default=None, help="one core's fp32 GFLOP/s")
    args = parser.parse_args()
    ctx = _kernels.Context(args.isa, args.threads)
    print(f"pyrt {ctx.isa} x{args.threads} vs onnxruntime {ort.__version__} FP32, medians")
    peak = " | % peak" if args.peak else ""
    print(f"| layer | pyrt ms | ort ms | pyrt GFLOP/s | ort GFLOP/s | pyrt/ort | fastest{peak} |")
    print("|---|---|---|---|---|---|---|" + ("---|" if args.peak else ""))
    for name, flops, ours, theirs in layers(ctx, np.random.default_rng(0)):
        repeat = max(1, int(2e7 / flops))
        ours(), theirs()  # warm-up
        times = {"pyrt": [], "ort": []}
        for _ in range(args.rounds):
            times["pyrt"].append(timed(ours, repeat))
            times["ort"].append(timed(theirs, repeat))
        a, b = statistics.median(times["pyrt"]), statistics.median(times["ort"])
        share = f" | {flops / a / 1e7 / args.peak:.0f}%" if args.peak else ""
        print(
            f"| {name} | {a * 1e3:.3f} | {b * 1e3:.3f} | {flops / a / 1e9:.1f} | "
            f"{flops / b / 1e9:.1f} | {a / b:.2f} | {min(times['pyrt']) / min(times['ort']):.2f}"
            f"{share} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
