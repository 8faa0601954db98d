"""Command line: python -m pyrt {demo,info,check,run,profile,quantize,analyze} ..."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .errors import PyrtError


def _load_inputs(session, paths: list[str]) -> dict[str, np.ndarray] | None:
    """--input NAME=file.npy or file.npy (in input order); .npz holds them by name."""
    if not paths:
        return None
    feeds = {}
    for i, item in enumerate(paths):
        name, _, path = item.rpartition("=")
        if path.endswith(".npz"):
            feeds.update(dict(np.load(path)))
            continue
        if not name:
            if i >= len(session.inputs):
                raise PyrtError(f"more --input files than the model's {len(session.inputs)} inputs")
            name = session.inputs[i].name
        feeds[name] = np.load(path)
    return feeds


def _dims(items: list[str]) -> dict[str, int]:
    """--dim NAME=N (symbolic input dimensions of random inputs)."""
    dims = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value.isdigit() or int(value) < 1:
            raise PyrtError(f"--dim {item!r}: expected NAME=N with a positive integer N")
        dims[name] = int(value)
    return dims


def runtime_info() -> str:
    """The platform, the kernel library and the ISA its dispatch chose."""
    import platform

    from . import _kernels

    ctx = _kernels.default_context()
    bits = ctx.vector_bits
    vector = "" if not bits else f"VLEN {bits}, " if ctx.isa == "rvv" else f"{bits}-bit, "
    return "\n".join(
        [
            f"python {platform.python_version()} on {platform.machine()} ({sys.platform})",
            f"kernels {_kernels.LIBRARY_PATH}",
            f"isa {ctx.isa} ({vector}available: {', '.join(_kernels.isa_available())})",
        ]
    )


def cmd_info(args) -> int:
    from .session import Session

    print(runtime_info())
    if args.model is None:
        return 0
    session = Session(args.model)
    for kind, specs in (("input", session.inputs), ("output", session.outputs)):
        for s in specs:
            print(f"{kind:<6} {s.name}: {s.dtype} {list(s.shape) if s.shape is not None else '?'}")
    print(session.report())
    return 0


def cmd_check(args) -> int:
    from .check import check
    from .session import Session

    feeds = _load_inputs(Session(args.model), args.input)
    report = check(args.model, feeds, layers=args.layers, dims=_dims(args.dim))
    print(report)
    return 0 if report.ok else 1


def cmd_run(args) -> int:
    from .session import Session

    session = Session(args.model)
    feeds = _load_inputs(session, args.input)
    if feeds is None:
        from .check import random_inputs

        feeds = random_inputs(session, dims=_dims(args.dim))
    outputs = session.run(feeds)
    for spec, value in zip(session.outputs, outputs):
        print(f"{spec.name}: {value.dtype} {list(value.shape)}")
    if args.output:
        np.savez(args.output, **{s.name: v for s, v in zip(session.outputs, outputs)})
        print(f"saved {args.output}")
    return 0


def cmd_profile(args) -> int:
    from .profile import format_profile, profile, tile_ceiling
    from .session import Session

    session = Session(args.model, cores=args.cores, isa=args.isa)
    feeds = _load_inputs(session, args.input)
    if feeds is None:
        from .check import random_inputs

        feeds = random_inputs(session, dims=_dims(args.dim))
    layers = profile(session, feeds, rounds=args.rounds)
    print(format_profile(layers, session.isa, tile_ceiling(session.context)))
    return 0


def _median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def cmd_demo(args) -> int:
    """Build a small CNN, quantize it (u8 and s8 activations), run and check everything."""
    from . import zoo
    from .check import _ort_session, compare
    from .session import Session

    fp32 = zoo.demo_cnn()
    calib = zoo.calibration_data(fp32, n=8)
    x = {"input": calib[0]["input"]}
    print(f"demo model: {len(fp32.graph.node)} nodes, input {list(x['input'].shape)}")
    rows = []
    variants = [("fp32", fp32, None)]
    for act in ("uint8", "int8"):
        variants.append(
            (f"int8 QDQ ({act[0]}8 act)", zoo.quantize_qdq(fp32, calib, activation_type=act), act)
        )
    ref_fp32 = _ort_session(fp32, optimized=True).run(None, x)[0]
    for label, model, _ in variants:
        session = Session(model)
        ours = session.run(x)[0]
        reference = _ort_session(model, optimized=False).run(None, x)[0]
        ort_opt = _ort_session(model, optimized=True)
        t_pyrt = _median_ms(lambda s=session: s.run(x), args.repeat)
        t_ort = _median_ms(lambda o=ort_opt: o.run(None, x), args.repeat)
        c = compare("logits", ours, reference, None)
        vs_fp32 = compare("logits", ours, ref_fp32, None)
        counts = session.report().counts()
        rows.append(
            (
                label,
                t_pyrt,
                t_ort,
                c.cosine,
                vs_fp32.cosine,
                c.argmax_equal,
                counts.get("int8", 0),
                sum(counts.get(k, 0) for k in ("int8", "fp32", "numpy")),
            )
        )
    print(
        f"\n{'model':<22} {'pyrt ms':>8} {'ort ms':>8} {'cos ref':>9} {'cos fp32':>9} "
        f"{'argmax':>6} {'int8 ops':>9}"
    )
    for label, tp, to, cr, cf, am, n8, nt in rows:
        print(
            f"{label:<22} {tp:>8.2f} {to:>8.2f} {cr:>9.6f} {cf:>9.6f} {str(am):>6} {n8:>5}/{nt:<5}"
        )
    print(
        "\nint8 ops: compute nodes on int8 kernels (the rest: Q/DQ folded or fused away)."
        "\ncos ref: pyrt vs onnxruntime running the same graph as ONNX defines it "
        "(optimizations off); cos fp32: vs the FP32 model. Times: median, 1 thread."
    )
    return 0 if all(r[3] >= 0.999 and r[5] for r in rows) else 1


def cmd_quantize(args) -> int:
    from .quantize import quantize

    result = quantize(
        args.config,
        model=args.input,
        output=args.output,
        auto_exclude=args.auto_exclude,
        progress=not args.no_progress,
    )
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {result.output}")
    if result.excluded:
        print("kept in FP32: " + ", ".join(result.excluded))
    if result.auto_excluded:
        print("kept in FP32 by --auto-exclude: " + ", ".join(result.auto_excluded))
    _print_analysis(result.analysis, result.reports)
    return 0


def _print_analysis(report, paths) -> None:
    if report is None:
        return
    print(report)
    for kind, path in paths.items():
        print(f"{kind}: {path}")


def cmd_analyze(args) -> int:
    from .analyze import analyze, write_report
    from .quantize import analysis_samples, quantize

    if args.auto_exclude:
        if args.config is None:
            raise PyrtError("--auto-exclude re-quantizes the model: give its --config")
        result = quantize(args.config, model=args.fp32, output=args.int8, auto_exclude=True)
        print(f"rewrote {result.output}; kept in FP32: {', '.join(result.excluded) or 'nothing'}")
        _print_analysis(result.analysis, result.reports)
        return 0
    samples = analysis_samples(args.fp32, args.data, args.config, args.samples)
    report = analyze(args.fp32, args.int8, samples)
    stem = args.out if args.out is not None else args.int8.with_suffix("")
    _print_analysis(report, write_report(report, stem))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyrt", description="int8 ONNX inference runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="build, quantize, run and check a small CNN")
    p.add_argument("--repeat", type=int, default=20)
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("info", help="the platform and ISA; a model's inputs, outputs, nodes")
    p.add_argument("model", type=Path, nargs="?")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("check", help="compare with onnxruntime, per output (and --layers)")
    p.add_argument("model", type=Path)
    p.add_argument("--input", action="append", default=[], help="NAME=x.npy, x.npy or all.npz")
    p.add_argument("--layers", action="store_true", help="also compare every quantized tensor")
    p.add_argument("--dim", action="append", default=[], help="NAME=N: a symbolic input dim")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("run", help="run a model on .npy inputs (random if none)")
    p.add_argument("model", type=Path)
    p.add_argument("--input", action="append", default=[])
    p.add_argument("--output", help="save outputs to this .npz")
    p.add_argument("--dim", action="append", default=[], help="NAME=N: a symbolic input dim")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("profile", help="time per layer: ms, GMAC/s, share of the GEMM ceiling")
    p.add_argument("model", type=Path)
    p.add_argument("--input", action="append", default=[])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--dim", action="append", default=[], help="NAME=N: a symbolic input dim")
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--isa", help="kernel table (default: $PYRT_ISA or the best)")
    p.set_defaults(fn=cmd_profile)
    p = sub.add_parser("quantize", help="FP32 model + XSlim config -> INT8 QDQ model + report")
    p.add_argument("--config", required=True, type=Path, help="XSlim / XQuant JSON config")
    p.add_argument("-i", "--input", type=Path, help="FP32 model (overrides onnx_model)")
    p.add_argument("-o", "--output", type=Path, help="INT8 model path (overrides the config)")
    p.add_argument("--auto-exclude", action="store_true", help="keep suggested nodes in FP32")
    p.add_argument("--no-progress", action="store_true", help="no calibration progress bar")
    p.set_defaults(fn=cmd_quantize)
    p = sub.add_parser("analyze", help="per-tensor error of an INT8 model against its FP32")
    p.add_argument("--fp32", required=True, type=Path)
    p.add_argument("--int8", required=True, type=Path)
    p.add_argument(
        "--data", action="append", default=[], help="data list (one per input, in order)"
    )
    p.add_argument("--config", type=Path, help="read data as this XSlim config does")
    p.add_argument("--samples", type=int, default=16, help="how many samples to run")
    p.add_argument("--out", type=Path, help="report path stem (default: next to --int8)")
    p.add_argument(
        "--auto-exclude", action="store_true", help="re-quantize (--config) with the suggestion"
    )
    p.set_defaults(fn=cmd_analyze)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except PyrtError as exc:
        print(f"pyrt: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
