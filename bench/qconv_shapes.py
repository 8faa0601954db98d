"""GMAC/s of the int8 convolution kernels per ISA on real CNN layer shapes (NHWC, batch 1).

    python bench/qconv_shapes.py [--isa scalar,avx2,avx512vnni] [--threads 1]
        [--shapes resnet18,mobilenetv2,mobilenetv2-dw] [--x-dtype uint8|int8]

Every ISA runs each shape in turn (interleaved rounds); the figure is the best
round, which is the least disturbed by other processes on a shared machine.
With one thread the clock is the thread's CPU time, so time spent descheduled
on a busy machine does not count; with more, wall time.
With bench/peak.py present, it also prints % of the one-core int8 peak of the
ISA's instruction.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pyrt import _kernels
from pyrt import kernels as K

# name: (H, W, C_in, C_out, kernel, stride, depthwise)
SHAPES = {
    "resnet18": {
        "stem 224x224x3 7x7/2 ->64": (224, 224, 3, 64, 7, 2, False),
        "56x56x64 3x3 ->64": (56, 56, 64, 64, 3, 1, False),
        "28x28x128 3x3 ->128": (28, 28, 128, 128, 3, 1, False),
        "14x14x256 3x3 ->256": (14, 14, 256, 256, 3, 1, False),
        "7x7x512 3x3 ->512": (7, 7, 512, 512, 3, 1, False),
        "56x56x64 1x1/2 ->128": (56, 56, 64, 128, 1, 2, False),
        "14x14x256 1x1/2 ->512": (14, 14, 256, 512, 1, 2, False),
    },
    "mobilenetv2": {
        "112x112x32 1x1 ->16": (112, 112, 32, 16, 1, 1, False),
        "112x112x16 1x1 ->96": (112, 112, 16, 96, 1, 1, False),
        "56x56x24 1x1 ->144": (56, 56, 24, 144, 1, 1, False),
        "56x56x144 1x1 ->24": (56, 56, 144, 24, 1, 1, False),
        "28x28x192 1x1 ->32": (28, 28, 192, 32, 1, 1, False),
        "14x14x64 1x1 ->384": (14, 14, 64, 384, 1, 1, False),
        "14x14x576 1x1 ->96": (14, 14, 576, 96, 1, 1, False),
        "7x7x960 1x1 ->320": (7, 7, 960, 320, 1, 1, False),
        "7x7x320 1x1 ->1280": (7, 7, 320, 1280, 1, 1, False),
    },
    "mobilenetv2-dw": {  # every depthwise layer shape of MobileNetV2 224
        "dw 112x112x32 3x3": (112, 112, 32, 32, 3, 1, True),
        "dw 112x112x96 3x3/2": (112, 112, 96, 96, 3, 2, True),
        "dw 56x56x144 3x3": (56, 56, 144, 144, 3, 1, True),
        "dw 56x56x144 3x3/2": (56, 56, 144, 144, 3, 2, True),
        "dw 28x28x192 3x3": (28, 28, 192, 192, 3, 1, True),
        "dw 28x28x192 3x3/2": (28, 28, 192, 192, 3, 2, True),
        "dw 14x14x384 3x3": (14, 14, 384, 384, 3, 1, True),
        "dw 14x14x576 3x3": (14, 14, 576, 576, 3, 1, True),
        "dw 14x14x576 3x3/2": (14, 14, 576, 576, 3, 2, True),
        "dw 7x7x960 3x3": (7, 7, 960, 960, 3, 1, True),
    },
}


def layer(shape, rng, x_dtype=np.uint8):
    h, w, cin, cout, k, stride, dw = shape
    groups = cin if dw else 1
    weights = rng.integers(-128, 128, (cout, cin // groups, k, k)).astype(np.int8)
    conv = K.QConv2d(
        weights,
        0,
        rng.integers(-1000, 1000, cout),
        groups=groups,
        strides=(stride, stride),
        dilations=(1, 1),
        pads=(k // 2,) * 4,
        x_dtype=x_dtype,
        x_zero=128 if x_dtype == np.uint8 else 0,
        out=K.OutputStage(np.uint8, 1e-4, 128),
    )
    info = np.iinfo(x_dtype)
    x = rng.integers(info.min, info.max + 1, (1, h, w, cin)).astype(x_dtype)
    y = np.empty((1, *conv.nhwc(x).shape[1:]), np.uint8)
    macs = y.size * (cin // groups) * k * k
    return conv, x, y, macs


def seconds(conv, x, y, ctx, budget=0.02) -> float:
    """Seconds per call: the mean over a batch of calls lasting about `budget`."""
    clock = time.thread_time if ctx.threads == 1 else time.perf_counter
    conv.nhwc(x, ctx, y)
    calls, start = 0, clock()
    while True:
        conv.nhwc(x, ctx, y)
        calls += 1
        elapsed = clock() - start
        if elapsed >= budget:
            return elapsed / calls


def peaks() -> dict[str, float]:
    try:
        from peak import peaks as measured  # bench/peak.py, when present (cached per CPU)
    except ImportError:
        return {}
    return {p.isa: p.int8_gmacs for p in measured().values()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", default=",".join(_kernels.isa_available()))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shapes", default="resnet18,mobilenetv2,mobilenetv2-dw")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--x-dtype", choices=("uint8", "int8"), default="uint8")
    args = parser.parse_args()
    isas = args.isa.split(",")
    contexts = {isa: _kernels.Context(isa, args.threads) for isa in isas}
    peak = peaks()
    rng = np.random.default_rng(0)
    print(f"{'shape':28s}" + "".join(f"{isa:>18s}" for isa in isas) + "   GMAC/s (% of peak)")
    for group in args.shapes.split(","):
        for name, shape in SHAPES[group].items():
            conv, x, y, macs = layer(shape, rng, np.dtype(args.x_dtype))
            best = {isa: np.inf for isa in isas}
            for _ in range(args.rounds):
                for isa in isas:
                    best[isa] = min(best[isa], seconds(conv, x, y, contexts[isa]))
            cells = []
            for isa in isas:
                rate = macs / best[isa] / 1e9
                share = f" ({100 * rate / peak[isa]:3.0f}%)" if isa in peak else ""
                cells.append(f"{rate:>11.1f}{share:>7s}")
            print(f"{name:28s}" + "".join(cells), flush=True)


if __name__ == "__main__":
    main()
