"""Elementwise int8 kernels and pools per ISA, in one interleaved run.

    python bench/elementwise.py                 # every ISA this CPU runs, 1 thread
    python bench/elementwise.py --threads 2 --rounds 50

Quantize / Dequantize, QLinearAdd / Mul (flat and Squeeze-Excite broadcast),
MaxPool, AveragePool and GlobalAveragePool on MobileNetV2 / ResNet-18 sized
tensors. Each case calls the C entry point directly (buffers allocated once),
round-robin over the ISAs so that noise hits all alike; the table shows the
median time, GB/s over the bytes read and written, and the speedup over the
scalar table within this run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from pyrt import _kernels
from pyrt import kernels as K
from pyrt._kernels import lib, ptr
from pyrt.kernels import QParams

U8 = np.dtype(np.uint8)


def _q(scale: float, zero: int) -> object:
    return K._qparams(QParams(scale, zero, U8))


def cases(rng: np.random.Generator) -> dict[str, tuple[int, Callable]]:
    """name -> (bytes moved, fn(ctx_ptr) that runs the kernel once)."""
    out: dict[str, tuple[int, Callable]] = {}

    def quant(n: int) -> None:
        x = rng.standard_normal(n).astype(np.float32)
        y = np.empty(n, np.uint8)
        layout = K._quant_layout(x, np.ones(1, np.float32), 1, 0)
        scale, zero = np.array([0.02], np.float32), np.array([128], np.uint8)
        d = np.empty(n, np.float32)
        out[f"quantize f32->u8 {n}"] = (
            5 * n,
            lambda c: lib.pyrt_quantize(c, layout, ptr(x), ptr(scale), ptr(zero), 0, ptr(y)),
        )
        out[f"dequantize u8->f32 {n}"] = (
            5 * n,
            lambda c: lib.pyrt_dequantize(c, layout, ptr(y), 0, ptr(scale), ptr(zero), ptr(d)),
        )

    quant(3 * 224 * 224)  # a model input
    quant(112 * 112 * 32)  # MobileNetV2's first activation

    qa, qb, qy = _q(0.02, 120), _q(0.03, 130), _q(0.04, 125)

    def binary(name: str, shape: tuple, outer: int, middle: int, inner: int) -> None:
        a = np.frombuffer(rng.bytes(int(np.prod(shape))), np.uint8)
        b = np.frombuffer(rng.bytes(outer * inner), np.uint8)
        y = np.empty_like(a)
        for op, code in (("add", lib.PYRT_ADD), ("mul", lib.PYRT_MUL)):
            out[f"q{op} {name}"] = (
                2 * a.size + b.size,
                lambda c, code=code: lib.pyrt_qbinary_broadcast(
                    c, code, outer, middle, inner, ptr(a), qa, ptr(b), qb, ptr(y), qy, 0, 255
                ),
            )

    binary("56x56x24 (MobileNetV2 residual)", (56, 56, 24), 1, 1, 56 * 56 * 24)
    binary("56x56x64 (ResNet-18 residual)", (56, 56, 64), 1, 1, 56 * 56 * 64)
    binary("56x56x64 * [64] (SE scale)", (56, 56, 64), 1, 56 * 56, 64)

    def pool(name: str, nhwc: tuple, kernel, stride, pad, kind: str) -> None:
        h, w, c = nhwc
        for layout in ("nchw", "nhwc"):
            x = np.frombuffer(rng.bytes(h * w * c), np.uint8)
            x = x.reshape((1, c, h, w) if layout == "nchw" else (1, h, w, c))
            s = K._pool_shape(x, kernel, stride, (pad,) * 4, (1, 1), False, layout)
            y = K._pool_output(s, U8)
            if kind == "max":
                fn = lambda cx, s=s, x=x, y=y: lib.pyrt_qmaxpool2d(cx, s, ptr(x), 0, ptr(y))  # noqa: E731
            else:
                fn = lambda cx, s=s, x=x, y=y: lib.pyrt_qavgpool2d(  # noqa: E731
                    cx, s, ptr(x), qa, ptr(y), qy
                )
            out[f"{kind}pool {name} {layout}"] = (x.size + y.size, fn)

    pool("3x3/2 112x112x64 (ResNet-18 stem)", (112, 112, 64), (3, 3), (2, 2), 1, "max")
    pool("3x3/1 28x28x192 (Inception)", (28, 28, 192), (3, 3), (1, 1), 1, "avg")

    for hw, c, net in ((49, 1280, "MobileNetV2"), (49, 512, "ResNet-18")):
        x = np.frombuffer(rng.bytes(hw * c), np.uint8)
        y = np.empty(c, np.uint8)
        out[f"globalavgpool 7x7x{c} ({net}) nchw"] = (
            x.size + c,
            lambda cx, x=x, y=y, c=c, hw=hw: lib.pyrt_qglobalavgpool(
                cx, c, hw, ptr(x), qa, ptr(y), qy
            ),
        )
        out[f"globalavgpool 7x7x{c} ({net}) nhwc"] = (
            x.size + c,
            lambda cx, x=x, y=y, c=c, hw=hw: lib.pyrt_qglobalavgpool_nhwc(
                cx, 1, hw, c, ptr(x), qa, ptr(y), qy
            ),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--isa", nargs="*", default=_kernels.isa_available())
    args = parser.parse_args()
    contexts = {isa: _kernels.Context(isa, threads=args.threads) for isa in args.isa}
    table = cases(np.random.default_rng(0))
    print(f"threads {args.threads}, {args.rounds} rounds, medians; speedup vs scalar in this run")
    print(f"{'kernel':58s}" + "".join(f"{isa:>24s}" for isa in contexts))
    for name, (nbytes, fn) in table.items():
        for ctx in contexts.values():  # warm-up, and every call must succeed
            _kernels.check(fn(ctx.ptr))
        reps = max(1, int(2e5 // max(nbytes, 1)) + 1)  # about 0.2 MB per sample at least
        times = {isa: [] for isa in contexts}
        for _ in range(args.rounds):
            for isa, ctx in contexts.items():
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn(ctx.ptr)
                times[isa].append((time.perf_counter() - t0) / reps)
        med = {isa: float(np.median(t)) for isa, t in times.items()}
        base = med.get("scalar")
        cells = []
        for t in med.values():
            speed = f" {base / t:5.1f}x" if base else ""
            cells.append(f"{t * 1e6:9.1f} us {nbytes / t / 1e9:5.1f} GB/s{speed}")
        print(f"{name:58s}" + "".join(f"{c:>24s}" for c in cells))


if __name__ == "__main__":
    main()
