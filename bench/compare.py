"""FP32 vs INT8 latency, pyrt beside onnxruntime, in one interleaved run.

    python bench/compare.py --cores 1                    # zoo models, u8 and s8 activations
    python bench/compare.py --cores 1 --model m.onnx --fp32 m_fp32.onnx

Every engine/model pair is warmed up, then timed round-robin (one run of each per
round) so that machine noise hits all of them alike; medians are reported, with
ratios inside the one run. Only ratios from one run compare across machines.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnx

import pyrt
from pyrt import zoo
from pyrt.check import random_inputs


def ort_session(model: onnx.ModelProto, cores: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = cores
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def runners(name: str, fp32: onnx.ModelProto, int8: dict[str, onnx.ModelProto], feeds, cores: int):
    out = {}
    for label, model in [("fp32", fp32), *int8.items()]:
        session = pyrt.Session(model, cores=cores)
        ort = ort_session(model, cores)
        out[(name, label, "pyrt")] = lambda s=session: s.run(feeds)
        out[(name, label, "onnxruntime")] = lambda o=ort: o.run(None, feeds)
    return out


def measure(fns: dict, rounds: int, warmup: int) -> dict:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: 1000 * float(np.median(t)) for key, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--models", default="resnet18,mobilenet_v2")
    parser.add_argument("--model", help="an INT8 (QDQ or QOperator) model file instead of the zoo")
    parser.add_argument("--fp32", help="its FP32 original (with --model)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    fns = {}
    if args.model:
        int8 = onnx.load(args.model)
        fp32 = onnx.load(args.fp32) if args.fp32 else int8
        feeds = random_inputs(pyrt.Session(int8))
        fns.update(runners(args.model, fp32, {"int8": int8}, feeds, args.cores))
    else:
        for name in args.models.split(","):
            fp32 = zoo.MODELS[name]()
            calib = zoo.calibration_data(fp32, n=4)
            int8 = {
                f"int8 {act[0]}8-act": zoo.quantize_qdq(fp32, calib, activation_type=act)
                for act in ("uint8", "int8")
            }
            fns.update(runners(name, fp32, int8, calib[0], args.cores))
    medians = measure(fns, args.rounds, args.warmup)

    print(f"cores={args.cores} rounds={args.rounds} isa={pyrt._kernels.isa()}")
    print(
        f"{'model':<16} {'variant':<14} {'pyrt ms':>9} {'ort ms':>9} {'pyrt/ort':>9} "
        f"{'pyrt int8/fp32':>15}"
    )
    for name, label, _ in [k for k in medians if k[2] == "pyrt"]:
        ours, theirs = medians[(name, label, "pyrt")], medians[(name, label, "onnxruntime")]
        fp32 = medians[(name, "fp32", "pyrt")]
        print(
            f"{name[:16]:<16} {label:<14} {ours:>9.2f} {theirs:>9.2f} {ours / theirs:>9.2f} "
            f"{ours / fp32:>15.2f}"
        )


if __name__ == "__main__":
    main()
