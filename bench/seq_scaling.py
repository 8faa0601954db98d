"""The MiniLM-shaped encoder from 32 to 512 tokens: pyrt beside onnxruntime (and
OpenVINO), FP32 and INT8, in one interleaved run, and INT8 agreement with the QDQ
reference.

    python bench/seq_scaling.py --budget 60
    python bench/seq_scaling.py --seqs 32 128 512 --engines pyrt,onnxruntime

Models are bench/compare.py's "minilm" (pyrt.zoo_transformers.minilm(seq): every
MatMul quantized with u8 activations, calibrated at that length), cached alike.
Per sequence length and precision the table gives each engine's median ms, its
growth over the shortest length (time / time at the first --seqs) and pyrt's time
over each peer's. Under it, per length, the cosine of pyrt's and onnxruntime's INT8
output to the QDQ reference (onnxruntime with graph optimizations off: the graph
as ONNX defines it). Only ratios from one run compare across machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.metadata
import sys
from pathlib import Path

import numpy as np
from compare import (
    ENGINES,
    build_encoder,
    import_pyrt,
    measure,
    open_runners,
    render,
    status,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seqs", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--engines", default="pyrt,onnxruntime,openvino", help="comma-separated")
    parser.add_argument("--cores", type=int, default=1, help="threads per engine (default 1)")
    parser.add_argument("--isa", help="pyrt kernels: scalar, avx2, avxvnni, avx512vnni")
    parser.add_argument("--budget", type=float, default=60, help="seconds of timing (default 60)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per configuration")
    parser.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    args = parser.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if any(e not in ENGINES for e in args.engines) or "pyrt" not in args.engines:
        parser.error(f"--engines: pyrt and some of {ENGINES}, got {args.engines}")
    if any(not 1 <= s <= 512 for s in args.seqs):
        parser.error(f"--seqs must lie in [1, 512] (the position table), got {args.seqs}")
    if args.cores < 1:
        parser.error(f"--cores must be >= 1, got {args.cores}")
    return args


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def agreement(variants: list, runners: dict) -> list[list[str]]:
    """Per length: cosine of pyrt's and onnxruntime's INT8 output to the QDQ reference."""
    import onnx

    from pyrt.check import _ort_session

    rows = []
    for v in variants:
        if v.precision == "fp32":
            continue
        reference = _ort_session(onnx.load(v.path), optimized=False)
        ref = reference.run(None, v.feeds)[0]
        row = [v.model]
        for engine in ("pyrt", "onnxruntime"):
            run = runners.get((v.model, v.precision, engine))
            row.append(f"{cosine(run(), ref):.5f}" if run else "-")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        pyrt = import_pyrt(args.isa)
    except (ImportError, ValueError) as e:
        sys.exit(f"--isa {args.isa}: {e}")
    import peak

    from pyrt import zoo_transformers

    stamp = hashlib.sha256(Path(zoo_transformers.__file__).read_bytes()).hexdigest()[:12]
    folder = peak.cache_dir() / f"encoders-{stamp}-ort{importlib.metadata.version('onnxruntime')}"
    variants = []
    for seq in args.seqs:
        for v in build_encoder(folder, seq):
            variants.append(dataclasses.replace(v, model=f"seq {seq}"))
    runners, notes = open_runners(pyrt, variants, args.engines, args.cores)
    samples, rounds, _ = measure(runners, args.warmup, None, args.budget)
    median = {key: 1000 * float(np.median(t)) for key, t in samples.items()}
    peers = [e for e in args.engines if e != "pyrt"]
    columns = ["tokens", "precision"]
    for e in args.engines:
        columns += [f"{e} ms", f"{e} growth"]
    columns += [f"pyrt/{e}" for e in peers]
    rows = []
    for precision in dict.fromkeys(v.precision for v in variants):
        first = f"seq {args.seqs[0]}"
        for seq in args.seqs:
            model = f"seq {seq}"
            row = [str(seq), precision]
            for e in args.engines:
                t = median[(model, precision, e)]
                row += [f"{t:.2f}", f"{t / median[(first, precision, e)]:.2f}x"]
            mine = median[(model, precision, "pyrt")]
            row += [f"{mine / median[(model, precision, e)]:.2f}" for e in peers]
            rows.append(row)
    status("checking agreement with the QDQ reference")
    print(f"cores={args.cores}, {rounds} interleaved rounds")
    print(render(columns, rows, args.markdown, left=2))
    print()
    if "onnxruntime" in args.engines:
        print("INT8 cosine to the QDQ reference (onnxruntime, graph optimizations off):")
        rows = agreement(variants, runners)
        print(render(["tokens", "pyrt", "onnxruntime"], rows, args.markdown))
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
