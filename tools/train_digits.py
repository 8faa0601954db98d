"""Train a small CNN on scikit-learn's handwritten digits (numpy only) and export FP32 ONNX.

    python tools/train_digits.py [--out tests/data/digits_cnn.onnx] [--epochs 40]

The data is `sklearn.datasets.load_digits` (1,797 real 8x8 digits, pixel values 0-16),
split by `digits_split` (75 % train, 25 % test, seeded, stratified). Pixels are scaled as
the PNG files bench/accuracy.py writes hold them: round(v * 255 / 16) / 255, so a
quantization config reading those images with std_value [255] feeds the model exactly
what it was trained on. The model: Conv3x3(8) Relu Conv3x3/2(16) Relu Flatten Gemm(64)
Relu Gemm(10), input "input" [N, 1, 8, 8], output "logits" [N, 10].
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "digits_cnn.onnx"


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train uint8 images [N, 8, 8] 0-255, train labels, test images, test labels)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.rint(digits.images * 255.0 / 16.0).astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    return x_train, y_train, x_test, y_test


def as_input(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0)[:, None, :, :]


# --- a tiny numpy CNN --------------------------------------------------------------------


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    n, c, h, w = x.shape
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, ho, wo), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
    return cols.reshape(n, c * k * k, ho * wo), ho, wo


def col2im(dcols: np.ndarray, shape: tuple, k: int, stride: int, pad: int, ho: int, wo: int):
    n, c, h, w = shape
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dcols.dtype)
    d = dcols.reshape(n, c, k, k, ho, wo)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride] += d[:, :, i, j]
    return dxp[:, :, pad : pad + h, pad : pad + w]


class Net:
    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)

        def he(*shape):
            return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(
                np.float32
            )

        self.p = {
            "w1": he(8, 1, 3, 3),
            "b1": np.zeros(8, np.float32),
            "w2": he(16, 8, 3, 3),
            "b2": np.zeros(16, np.float32),
            "w3": he(64, 256),
            "b3": np.zeros(64, np.float32),
            "w4": he(10, 64),
            "b4": np.zeros(10, np.float32),
        }

    def conv(self, x, w, b, stride):
        cols, ho, wo = im2col(x, 3, stride, 1)
        out = np.einsum("fk,nkp->nfp", w.reshape(w.shape[0], -1), cols) + b[None, :, None]
        return out.reshape(x.shape[0], w.shape[0], ho, wo), (cols, x.shape, ho, wo)

    def forward(self, x):
        p = self.p
        c1, k1 = self.conv(x, p["w1"], p["b1"], 1)
        r1 = np.maximum(c1, 0)
        c2, k2 = self.conv(r1, p["w2"], p["b2"], 2)
        r2 = np.maximum(c2, 0)
        f = r2.reshape(len(x), -1)
        h = f @ p["w3"].T + p["b3"]
        r3 = np.maximum(h, 0)
        logits = r3 @ p["w4"].T + p["b4"]
        return logits, (k1, c1, r1, k2, c2, f, h, r3)

    def backward(self, dlogits, cache):
        p, g = self.p, {}
        k1, c1, r1, k2, c2, f, h, r3 = cache
        g["w4"], g["b4"] = dlogits.T @ r3, dlogits.sum(0)
        dh = (dlogits @ p["w4"]) * (h > 0)
        g["w3"], g["b3"] = dh.T @ f, dh.sum(0)
        dc2 = ((dh @ p["w3"]).reshape(c2.shape) * (c2 > 0)).reshape(len(f), 16, -1)
        cols2, shape2, ho2, wo2 = k2
        g["w2"] = np.einsum("nfp,nkp->fk", dc2, cols2).reshape(p["w2"].shape)
        g["b2"] = dc2.sum((0, 2))
        dcols2 = np.einsum("fk,nfp->nkp", p["w2"].reshape(16, -1), dc2)
        dr1 = col2im(dcols2, shape2, 3, 2, 1, ho2, wo2)
        dc1 = (dr1 * (c1 > 0)).reshape(len(f), 8, -1)
        cols1 = k1[0]
        g["w1"] = np.einsum("nfp,nkp->fk", dc1, cols1).reshape(p["w1"].shape)
        g["b1"] = dc1.sum((0, 2))
        return g


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> Net:
    net = Net(seed)
    rng = np.random.default_rng(seed + 1)
    m = {k: np.zeros_like(v) for k, v in net.p.items()}
    v2 = {k: np.zeros_like(v) for k, v in net.p.items()}
    step, lr, batch = 0, 0.005, 32
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            logits, cache = net.forward(x[idx])
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            probs[np.arange(len(idx)), y[idx]] -= 1
            grads = net.backward(probs / len(idx), cache)
            step += 1
            rate = lr * (0.5 if epoch >= epochs * 3 // 4 else 1.0)
            for k, gk in grads.items():
                gk = gk + 1e-4 * net.p[k]  # weight decay
                m[k] = 0.9 * m[k] + 0.1 * gk
                v2[k] = 0.999 * v2[k] + 0.001 * gk * gk
                mh, vh = m[k] / (1 - 0.9**step), v2[k] / (1 - 0.999**step)
                net.p[k] -= (rate * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    return net


def to_onnx(net: Net) -> onnx.ModelProto:
    p = net.p
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in p.items()]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["conv1"], "conv1", pads=[1] * 4),
        helper.make_node("Relu", ["conv1"], ["relu1"], "relu1"),
        helper.make_node(
            "Conv", ["relu1", "w2", "b2"], ["conv2"], "conv2", pads=[1] * 4, strides=[2, 2]
        ),
        helper.make_node("Relu", ["conv2"], ["relu2"], "relu2"),
        helper.make_node("Flatten", ["relu2"], ["flat"], "flatten"),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["fc1"], "fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu3"], "relu3"),
        helper.make_node("Gemm", ["relu3", "w4", "b4"], ["logits"], "fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    x_train, y_train, x_test, y_test = digits_split()
    net = train(as_input(x_train), y_train, args.epochs)
    accuracy = float(np.mean(np.argmax(net.forward(as_input(x_test))[0], 1) == y_test))
    model = to_onnx(net)
    onnx.save(model, args.out)
    print(f"test top-1 {100 * accuracy:.2f}% on {len(y_test)} digits; wrote {args.out}")


if __name__ == "__main__":
    main()
