"""pyrt beside onnxruntime and OpenVINO: FP32 and INT8 latency in one interleaved run.

    python bench/compare.py --cores 1 --engines pyrt,onnxruntime,openvino \\
        --json out.json --plot out.png
    python bench/compare.py --models resnet18 my_model.onnx --isa avx2 --markdown

Models (--models, names or .onnx paths): by default the real networks of
pyrt.zoo.FULL_SIZE (ResNet-18 and MobileNetV2 at 224x224 with 1000 classes,
the CIFAR ResNet-18 at 32x32) and "minilm", the MiniLM-L6-shaped encoder of
pyrt.zoo_transformers at 128 tokens (every MatMul quantized, u8 activations);
the small test nets of pyrt.zoo.MODELS by name; or files. Weights
are random and seeded (He init), BatchNormalization folded into the
convolutions as exporters do. Each FP32 model is quantized with onnxruntime's
quantize_static (QDQ, MinMax on 4 random inputs, per-channel s8 weights) with
u8 activations ("int8-u8") and symmetric s8 activations ("int8-s8"); a file
that is already quantized runs as it is. Built models are cached in the bench
cache ($PYRT_BENCH_CACHE, else ~/.cache/pyrt-bench).

Engines get one thread per requested core: pyrt Session(cores=N); onnxruntime
intra_op_num_threads=N, inter_op_num_threads=1, sequential execution;
OpenVINO on CPU with INFERENCE_NUM_THREADS=N, the LATENCY hint and f32 as the
inference precision (no bf16 shortcut), checked to run the matrix layers of
INT8 models in int8. --isa forces pyrt's kernels (PYRT_ISA).

Timing: every configuration (model, precision, engine) is warmed up, then all
are timed round-robin, one turn each per round (configurations faster than
50 ms repeat within their turn), so machine noise hits all alike; rounds go on
until the time budget (--budget, 60 s) is spent, at least 5, unless --rounds
is given.
Every engine's output is compared with onnxruntime's (cosine >= 0.99), and a
note under the table names any that disagrees: a fast wrong answer is no result.
Only ratios from one run compare across machines. The table gives median,
p10 and p90 per configuration, INT8 speedup over the same engine's FP32,
pyrt's time over each peer's, GMAC/s (MACs counted from the graph) and the
share of this CPU's measured peak (bench/peak.py, one core times --cores).
--json writes the records {"model", "engine", "precision", "cores", "isa",
"median_ms", "p10_ms", "p90_ms"} (isa: pyrt's kernels; "native" for peers).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import peak
from google.protobuf.message import DecodeError

ENGINES = ("pyrt", "onnxruntime", "openvino")
DEFAULT_MODELS = ("resnet18", "mobilenet_v2", "cifar_resnet18", "minilm")
PRECISIONS = {"uint8": "int8-u8", "int8": "int8-s8"}  # activation type -> label
MIN_ROUNDS = 5
SLICE_S = 0.05  # a configuration's turn in a round lasts at least this long


def import_pyrt(isa: str | None):
    """pyrt with its kernels forced to `isa`: PYRT_ISA must be set before the library loads."""
    if isa:
        os.environ["PYRT_ISA"] = isa
    import pyrt
    from pyrt import _kernels

    if isa and hasattr(_kernels, "set_isa"):
        _kernels.set_isa(isa)
    return pyrt


# ---- models -----------------------------------------------------------------------------


@dataclass
class Variant:
    """One precision of one model, as a file every engine can open."""

    model: str
    precision: str
    path: Path
    macs: int | None
    feeds: dict[str, np.ndarray]


# MACs of the matrix ops: op -> index of the weight (B) input
MATRIX_OPS = {
    "Conv": 1,
    "ConvInteger": 1,
    "QLinearConv": 3,
    "Gemm": 1,
    "MatMul": 1,
    "MatMulInteger": 1,
    "QLinearMatMul": 3,
}


def count_macs(model: onnx.ModelProto, feeds: dict[str, np.ndarray] | None = None) -> int:
    """Multiply-accumulates of one inference of Conv, Gemm and MatMul (and their integer
    forms), from onnx shape inference on the shapes of `feeds` (when given; other
    symbolic dimensions count as 1)."""
    model_ = onnx.ModelProto()
    model_.CopyFrom(model)
    for info in model_.graph.input:
        if feeds and info.name in feeds:
            for dim, size in zip(info.type.tensor_type.shape.dim, feeds[info.name].shape):
                dim.dim_value = size
    graph = onnx.shape_inference.infer_shapes(model_).graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        dims = info.type.tensor_type.shape.dim
        shapes.setdefault(info.name, [d.dim_value or 1 for d in dims])
    total = 0
    for node in graph.node:
        if node.op_type not in MATRIX_OPS:
            continue
        w, out = shapes.get(node.input[MATRIX_OPS[node.op_type]]), shapes.get(node.output[0])
        if not w or not out:
            raise ValueError(f"count_macs: no inferred shape around {node.op_type} {node.name!r}")
        if "Conv" in node.op_type:
            k = math.prod(w[1:])  # in_channels / groups * kernel window
        elif node.op_type == "Gemm":
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            k = w[1] if trans_b else w[0]
        else:
            k = w[-2]
        total += math.prod(out) * k
    return total


def is_quantized(model: onnx.ModelProto) -> bool:
    return any(
        n.op_type in ("QuantizeLinear", "QLinearConv", "QLinearMatMul") for n in model.graph.node
    )


def activation_precision(model: onnx.ModelProto) -> str:
    """int8-u8 / int8-s8 from the zero point of the model's first QuantizeLinear."""
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in inits:
            signed = inits[node.input[2]].data_type == onnx.TensorProto.INT8
            return PRECISIONS["int8" if signed else "uint8"]
    return "int8"


def fold_batchnorm(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime's quantization pre-processing: BatchNormalization folded into Conv."""
    import tempfile

    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save(model, src)
        quant_pre_process(str(src), str(out), skip_symbolic_shape=True)
        return onnx.load(out)


def build_variants(name: str, build: Callable[[], onnx.ModelProto], folder: Path) -> list[Variant]:
    """FP32 (BatchNormalization folded) and its u8 / s8 QDQ twins, built into `folder` once."""
    from pyrt import zoo

    paths = {p: folder / f"{name}-{p}.onnx" for p in ("fp32", *PRECISIONS.values())}
    if not all(p.exists() for p in paths.values()):
        status(f"building {name} (cached in {folder})")
        folder.mkdir(parents=True, exist_ok=True)
        model = fold_batchnorm(build())
        calib = zoo.calibration_data(model, n=4)
        for act, label in PRECISIONS.items():
            onnx.save(zoo.quantize_qdq(model, calib, activation_type=act), paths[label])
        onnx.save(model, paths["fp32"])  # last: its presence means the set is complete
    model = onnx.load(paths["fp32"])
    macs, feeds = macs_or_none(model, name), zoo.calibration_data(model, n=1, seed=1234)[0]
    return [Variant(name, p, path, macs, feeds) for p, path in paths.items()]


ENCODER_SEQ = 128


def build_encoder(folder: Path, seq: int = ENCODER_SEQ) -> list[Variant]:
    """The MiniLM-L6-shaped encoder at `seq` tokens (pyrt.zoo_transformers.minilm): FP32 and
    onnxruntime's QDQ with every MatMul / Gemm quantized, u8 activations."""
    from pyrt import zoo_transformers

    tag = "" if seq == ENCODER_SEQ else f"-seq{seq}"
    paths = {
        "int8-u8": folder / f"minilm{tag}-int8-u8.onnx",
        "fp32": folder / f"minilm{tag}-fp32.onnx",
    }
    if not all(p.exists() for p in paths.values()):
        status(f"building minilm at {seq} tokens (cached in {folder})")
        folder.mkdir(parents=True, exist_ok=True)
        encoder = zoo_transformers.minilm(seq=seq)
        onnx.save(encoder.int8["int8"], paths["int8-u8"])
        onnx.save(encoder.fp32, paths["fp32"])  # last: its presence means the set is complete
    feeds = zoo_transformers.encoder_inputs(seq, n=1, seed=100)[0]
    macs = macs_or_none(onnx.load(paths["fp32"]), "minilm", feeds)
    return [Variant("minilm", p, path, macs, feeds) for p, path in paths.items()]


def macs_or_none(
    model: onnx.ModelProto, name: str, feeds: dict[str, np.ndarray] | None = None
) -> int | None:
    try:
        return count_macs(model, feeds)
    except ValueError as e:
        status(f"{name}: GMAC/s not shown, {e}")
        return None


def load_models(names: list[str], cache: Path, seq: int = ENCODER_SEQ) -> list[Variant]:
    """Variants of every --models entry: zoo names are built (zoo.FULL_SIZE first, then
    zoo.MODELS), FP32 files quantized, quantized files run as they are."""
    from pyrt import zoo

    builders = {**zoo.MODELS, **zoo.FULL_SIZE}
    stamp = hashlib.sha256(Path(zoo.__file__).read_bytes()).hexdigest()[:12]
    folder = cache / f"models-{stamp}-ort{importlib.metadata.version('onnxruntime')}"
    variants = []
    for name in names:
        if name == "minilm":
            variants += build_encoder(folder / "full", seq)
            continue
        if name in builders:
            size = "full" if name in zoo.FULL_SIZE else "small"
            variants += build_variants(name, builders[name], folder / size)
            continue
        path = Path(name)
        try:
            model = onnx.load(path)
        except (OSError, DecodeError) as e:
            known = ", ".join(builders)
            sys.exit(f"--models: {name!r} is neither a zoo model ({known}) nor an ONNX file: {e}")
        if is_quantized(model):
            feeds = zoo.calibration_data(model, n=1, seed=1234)[0]
            precision = activation_precision(model)
            variants.append(Variant(path.stem, precision, path, macs_or_none(model, name), feeds))
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            variants += build_variants(path.stem, lambda m=model: m, folder / digest)
    return variants


# ---- engines ----------------------------------------------------------------------------


# A runner opens one variant in one engine for `cores` threads and returns run() -> the
# first output, and a note if the engine does not run it as asked.
Runner = tuple[Callable[[], np.ndarray], str]


def pyrt_runner(pyrt, v: Variant, cores: int) -> Runner:
    session = pyrt.Session(str(v.path), cores=cores)
    return (lambda: session.run(v.feeds)[0]), ""


def onnxruntime_runner(v: Variant, cores: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = cores
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(v.path), options, providers=["CPUExecutionProvider"])
    return (lambda: session.run(None, v.feeds)[0]), ""


def openvino_runner(v: Variant, cores: int) -> Runner:
    import openvino as ov

    config = {
        "INFERENCE_NUM_THREADS": cores,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    compiled = ov.Core().compile_model(str(v.path), "CPU", config)
    note = ""
    if v.precision != "fp32":
        int8, total = openvino_int8_layers(compiled)
        if int8 < total:
            note = f"OpenVINO runs {int8}/{total} matrix layers of {v.model} {v.precision} in int8"
    request, output = compiled.create_infer_request(), compiled.output(0)
    return (lambda: request.infer(v.feeds)[output]), note


def openvino_int8_layers(compiled) -> tuple[int, int]:
    """(int8, all) Convolution / FullyConnected / MatMul layers of a compiled model."""
    info = [op.get_rt_info() for op in compiled.get_runtime_model().get_ops()]
    matrix = [
        i["runtimePrecision"].astype(str)
        for i in info
        if i["layerType"].astype(str) in ("Convolution", "FullyConnected", "MatMul")
    ]
    return sum(p in ("i8", "u8") for p in matrix), len(matrix)


def open_runners(pyrt, variants: list[Variant], engines: list[str], cores: int):
    """{(model, precision, engine): run()} and notes on anything that did not run as asked."""
    openers = {
        "pyrt": partial(pyrt_runner, pyrt),
        "onnxruntime": onnxruntime_runner,
        "openvino": openvino_runner,
    }
    runners, notes = {}, []
    for v in variants:
        for engine in engines:
            status(f"opening {v.model} {v.precision} in {engine}")
            runners[(v.model, v.precision, engine)], note = openers[engine](v, cores)
            notes += [note] if note else []
    return runners, notes


def disagreements(outputs: dict[tuple, np.ndarray]) -> list[str]:
    """Engines whose first output is not close to onnxruntime's (or the first engine's) for
    the same model and precision: a fast wrong answer is no result."""
    notes = []
    for (model, precision, engine), y in outputs.items():
        ref_key = (model, precision, "onnxruntime")
        if ref_key not in outputs:
            ref_key = next(k for k in outputs if k[:2] == (model, precision))
        a, b = np.ravel(y).astype(np.float64), np.ravel(outputs[ref_key]).astype(np.float64)
        cosine = (
            a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30) if a.shape == b.shape else 0.0
        )
        if cosine < 0.99:
            notes.append(f"{engine} {model} {precision}: cosine {cosine:.3f} against {ref_key[2]}")
    return notes


def engine_versions(engines: list[str]) -> str:
    return ", ".join(f"{e} {importlib.metadata.version(e)}" for e in engines if e != "pyrt")


# ---- timing -----------------------------------------------------------------------------


def status(text: str) -> None:
    """A line of progress on stderr, overwritten in place on a terminal."""
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr)


def measure(
    runners: dict, warmup: int, rounds: int | None, budget_s: float
) -> tuple[dict[tuple, list[float]], int, dict[tuple, np.ndarray]]:
    """Seconds per run of every runner, interleaved; the number of rounds; the outputs.

    Without `rounds`, rounds go on until budget_s is spent, and at least MIN_ROUNDS."""
    estimate, outputs = {}, {}
    for i, (key, run) in enumerate(runners.items()):
        status(f"warm-up {i + 1}/{len(runners)}: {' '.join(key)}")
        for _ in range(warmup):
            run()
        start = time.perf_counter()
        outputs[key] = np.array(run())
        estimate[key] = time.perf_counter() - start
    repeats = {key: max(1, int(SLICE_S / t)) for key, t in estimate.items()}
    samples: dict[tuple, list[float]] = {key: [] for key in runners}
    start, done, r, shown = time.perf_counter(), 0.0, 0, -1
    while done < 1:
        for key, run in runners.items():
            for _ in range(repeats[key]):
                t = time.perf_counter()
                run()
                samples[key].append(time.perf_counter() - t)
        r, spent = r + 1, time.perf_counter() - start
        done = r / rounds if rounds else min(r / MIN_ROUNDS, spent / budget_s)
        if sys.stderr.isatty() or int(10 * done) > shown:  # logs: every 10%
            shown = int(10 * done)
            bar = "#" * int(30 * done) + "." * (30 - int(30 * done))
            left = max(spent / done - spent, 0)
            status(f"timing [{bar}] round {r}, {spent:.0f} s, about {left:.0f} s left")
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return samples, r, outputs


def records(samples: dict[tuple, list[float]], cores: int, isa: str) -> list[dict]:
    out = []
    for (model, precision, engine), times in samples.items():
        p10, median, p90 = (1000 * float(x) for x in np.percentile(times, [10, 50, 90]))
        out.append(
            {
                "model": model,
                "engine": engine,
                "precision": precision,
                "cores": cores,
                "isa": isa if engine == "pyrt" else "native",
                "median_ms": round(median, 4),
                "p10_ms": round(p10, 4),
                "p90_ms": round(p90, 4),
            }
        )
    return out


# ---- report -----------------------------------------------------------------------------

COLUMNS = [
    "model",
    "precision",
    "engine",
    "median ms",
    "p10 ms",
    "p90 ms",
    "INT8/FP32",
    "pyrt/peer",
    "GMAC/s",
    "% peak",
]


def table(recs: list[dict], macs: dict[str, int], peaks: tuple[float | None, float | None]):
    """Rows of COLUMNS: speedups are the same engine's FP32 median over this one;
    pyrt/peer is pyrt's median over this engine's (same model and precision)."""
    median = {(r["model"], r["precision"], r["engine"]): r["median_ms"] for r in recs}
    rows = []
    for r in recs:
        model, precision, engine, ms = r["model"], r["precision"], r["engine"], r["median_ms"]
        fp32 = median.get((model, "fp32", engine))
        ours = median.get((model, precision, "pyrt"))
        gmacs = macs[model] / ms / 1e6 if macs[model] else None
        limit = peaks[0 if precision.startswith("int8") else 1]
        rows.append(
            [
                model,
                precision,
                engine,
                f"{ms:.2f}",
                f"{r['p10_ms']:.2f}",
                f"{r['p90_ms']:.2f}",
                f"{fp32 / ms:.2f}x" if fp32 and precision != "fp32" else "",
                f"{ours / ms:.2f}" if ours and engine != "pyrt" else "",
                f"{gmacs:.1f}" if gmacs else "",
                f"{100 * gmacs / (limit * r['cores']):.1f}" if gmacs and limit else "",
            ]
        )
    return rows


def summary(recs: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Median ms per model (rows) and engine (columns), all precisions in one cell, as in
    the README: "fp32 / int8-u8 / int8-s8"."""
    median = {(r["model"], r["precision"], r["engine"]): r["median_ms"] for r in recs}
    models, precisions, engines = (
        list(dict.fromkeys(r[key] for r in recs)) for key in ("model", "precision", "engine")
    )
    columns = ["model", *(f"{e} {' / '.join(precisions)}" for e in engines)]
    rows = [
        [
            m,
            *(
                " / ".join(
                    f"{median[m, p, e]:#.3g}".rstrip(".") if (m, p, e) in median else "-"
                    for p in precisions
                )
                for e in engines
            ),
        ]
        for m in models
    ]
    return columns, rows


def render(columns: list[str], rows: list[list[str]], markdown: bool, left: int = 1) -> str:
    """Aligned text or a markdown table; the first `left` columns are left-aligned."""
    if markdown:
        rule = ["---"] * left + ["---:"] * (len(columns) - left)
        return "\n".join("| " + " | ".join(cells) + " |" for cells in (columns, rule, *rows))
    widths = [max(len(c) for c in col) for col in zip(columns, *rows)]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )
        for cells in (columns, *rows)
    )


def plot(recs: list[dict], path: str, title: str) -> None:
    """Grouped bars per model: median ms per precision and engine, p10-p90 whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in recs))
    engines = list(dict.fromkeys(r["engine"] for r in recs))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        mine = [r for r in recs if r["model"] == model]
        precisions = list(dict.fromkeys(r["precision"] for r in mine))
        width = 0.8 / len(engines)
        for i, engine in enumerate(engines):
            by = {r["precision"]: r for r in mine if r["engine"] == engine}
            xs = [
                j + (i - (len(engines) - 1) / 2) * width
                for j, p in enumerate(precisions)
                if p in by
            ]
            rs = [by[p] for p in precisions if p in by]
            med = [r["median_ms"] for r in rs]
            err = [
                [m - r["p10_ms"] for m, r in zip(med, rs)],
                [r["p90_ms"] - m for m, r in zip(med, rs)],
            ]
            bars = ax.bar(xs, med, width, yerr=err, capsize=2, label=engine)
            ax.bar_label(bars, fmt="%.3g", fontsize=7)
        times = [r["median_ms"] for r in mine]
        if max(times) > 20 * min(times):  # else the fast engines' bars vanish
            ax.set_yscale("log")
        ax.set_xticks(range(len(precisions)), precisions)
        ax.set_title(model)
        ax.set_ylabel("ms per inference (median)")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=len(engines))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cores", type=int, default=1, help="threads per engine (default 1)")
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        metavar="NAME_OR_PATH",
        help=f"zoo names or .onnx files (default: {' '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument("--engines", default="pyrt,onnxruntime,openvino", help="comma-separated")
    parser.add_argument("--isa", help="pyrt kernels: scalar, avx2, avxvnni, avx512vnni")
    parser.add_argument(
        "--seq",
        type=int,
        default=ENCODER_SEQ,
        help=f"tokens of the minilm encoder (default {ENCODER_SEQ})",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: fill --budget)")
    parser.add_argument("--budget", type=float, default=60, help="seconds of timing (default 60)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per configuration")
    parser.add_argument("--json", help="write the records here")
    parser.add_argument("--plot", help="write a bar chart (PNG) here")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument(
        "--qemu",
        choices=["riscv64"],
        help="run FP32 vs INT8 under QEMU instead (bench/qemu.py; tools/riscv64.sh setup first)",
    )
    parser.add_argument(
        "--count-instructions",
        action="store_true",
        help="with --qemu: dynamic instructions per inference and per MAC (the TCG plugin)",
    )
    parser.add_argument("--vlen", type=int, default=256, help="with --qemu: RVV VLEN in bits")
    parser.add_argument("--board", action="store_true", help="with --qemu: the X60 build")
    args = parser.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for engine in args.engines:
        if engine not in ENGINES:
            parser.error(f"--engines: unknown engine {engine!r}, expected some of {ENGINES}")
        if engine != "pyrt" and importlib.util.find_spec(engine) is None:
            parser.error(f"--engines: {engine} is not installed (pip install 'pyrt[bench]')")
    if args.cores < 1:
        parser.error(f"--cores must be >= 1, got {args.cores}")
    if not 1 <= args.seq <= 512:
        parser.error(f"--seq must be in [1, 512] (the position table), got {args.seq}")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    return args


def main_qemu(args: argparse.Namespace) -> None:
    """FP32 vs INT8 of the zoo models (small nets of pyrt.zoo.MODELS, or cifar_resnet18)
    under QEMU riscv64: emulated times (not a board's) and, with --count-instructions,
    instructions per MAC, the figure that stands in for a board."""
    import qemu

    from pyrt import zoo

    names = ["cifar_resnet18"]  # the default: the RISC-V issue's reference model
    if args.models != list(DEFAULT_MODELS):
        names = [m for m in args.models if m in zoo.MODELS]
    if not names:
        sys.exit(f"--qemu runs zoo models by name ({', '.join(zoo.MODELS)})")
    models = []
    for name in names:
        fp32 = zoo.MODELS[name]()
        calib = zoo.calibration_data(fp32, n=4)
        int8 = {
            PRECISIONS[act]: zoo.quantize_qdq(fp32, calib, activation_type=act)
            for act in PRECISIONS
        }
        models.append((name, fp32, int8))
    print(
        qemu.compare(
            models,
            runs=args.rounds or 1,
            count=args.count_instructions,
            vlen=args.vlen,
            isa=args.isa,
            board=args.board,
        )
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.qemu:
        main_qemu(args)
        return
    try:
        pyrt = import_pyrt(args.isa)
    except (ImportError, ValueError) as e:  # an ISA this CPU or this build does not have
        sys.exit(f"--isa {args.isa}: {e}")
    from pyrt import _kernels

    isa = _kernels.isa()
    variants = load_models(args.models, peak.cache_dir(), args.seq)
    runners, notes = open_runners(pyrt, variants, args.engines, args.cores)
    status("measuring this CPU's peak (bench/peak.py, cached)")
    peaks = peak.cpu_peak()
    samples, rounds, outputs = measure(runners, args.warmup, args.rounds, args.budget)
    notes += disagreements(outputs)
    recs = records(samples, args.cores, isa)

    int8, fp32 = (f"{p:.1f} GMAC/s" if p else "not measured" for p in peaks)
    header = (
        f"{peak.cpu()[0]}, cores={args.cores}, pyrt isa={isa}; {engine_versions(args.engines)}; "
        f"{rounds} interleaved rounds; peak of one core: int8 {int8}, fp32 {fp32}"
    )
    print(header + ("\n" if args.markdown else ""))
    macs = {v.model: v.macs for v in variants}
    print(render(COLUMNS, table(recs, macs, peaks), args.markdown, left=3))
    print("\nMedian ms per inference:\n" + render(*summary(recs), args.markdown))
    counted = [f"{m} {n / 1e9:.3f}" for m, n in macs.items() if n]
    print("\nGMAC per inference: " + ", ".join(counted))
    if "openvino" in args.engines and not any(n.startswith("OpenVINO") for n in notes):
        print("OpenVINO ran every Conv / FullyConnected layer of the INT8 models in int8.")
    for note in notes:
        print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(recs, indent=1) + "\n")
    if args.plot:
        plot(recs, args.plot, f"{peak.cpu()[0]}, cores={args.cores}, pyrt isa={isa}")


if __name__ == "__main__":
    main()
