"""pyrt under QEMU riscv64: emulated run times and dynamic instruction counts per MAC.

    python bench/qemu.py model.onnx [--runs 3] [--layers] [--vlen 256] [--isa scalar]
    python bench/qemu.py model.onnx --board --no-count       # X60 build under QEMU 10

Needs `tools/riscv64.sh setup && tools/riscv64.sh build [--board]`. The counts come from
the QEMU TCG plugin tools/qemu_plugin/insn_count.c (QEMU 7.2, baseline build only: QEMU
10 has no plugin support). One inference is a whole `Session.run`, the Python executor
included; Session creation and warm-up runs are counted apart. With --layers every step
of the plan is bracketed with HINT marks (tools/profile_mark.c) and counted on its own.
Emulated times say how fast QEMU is, not how fast a board is; instruction counts stand
in for the board. With --layers, extra runs execute the captured program one C plan entry
(or numpy step) at a time, as `python -m pyrt profile` does, each between two marks.

    python bench/qemu.py --zoo cifar_resnet18            # FP32 vs INT8 (u8, s8 activations)

API (bench/compare.py imports this module from its own folder):
    result = run_model(model, feeds, runs=3, count=True, layers=False, vlen=256)
    result.insns_per_mac, result.per_run, result.layers, result.ms
    print(compare([(name, fp32, {"int8 u8-act": int8, ...})], count=True))
    model_macs(model), layer_macs(model)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "riscv64.sh"

# Mark ids (the plugin's regions). Step k of the marked runs is LAYER_BASE + k;
# BETWEEN is the Python around them.
OUTSIDE, LOAD, WARMUP, RUNS, BETWEEN, LAYER_BASE = 0, 1, 2, 3, 4, 16


@dataclass
class Counts:
    """Dynamic instructions: all, scalar, vector (RVV, vsetvl* included), vsetvl*."""

    insns: float = 0
    scalar: float = 0
    vector: float = 0
    vsetvl: float = 0

    @classmethod
    def of(cls, region: dict, divide: int = 1) -> Counts:
        return cls(*(region[k] / divide for k in ("insns", "scalar", "vector", "vsetvl")))

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, k) + getattr(other, k) for k in self.__dataclass_fields__))


@dataclass
class Layer:
    """One step of the plan: its node, how it ran, its MACs and counts per inference."""

    name: str
    op: str
    kind: str
    macs: int
    counts: Counts

    @property
    def insns_per_mac(self) -> float | None:
        return self.counts.insns / self.macs if self.macs else None


@dataclass
class QemuResult:
    isa: str
    vlen: int
    runs: int
    macs: int
    ms: float  # median emulated wall time of one inference (QEMU's speed, not a board's)
    per_run: Counts | None = None  # one inference, Python included
    load: Counts | None = None  # Session creation
    layers: list[Layer] = field(default_factory=list)  # from extra, marked runs
    between_layers: Counts | None = None  # in the marked runs: Python between steps
    outputs: dict | None = None  # output name -> array of the last run

    @property
    def insns_per_mac(self) -> float | None:
        return self.per_run.insns / self.macs if self.per_run and self.macs else None


# ---- MACs from shapes ---------------------------------------------------------


def layer_macs(model) -> dict[str, int]:
    """Multiply-accumulates of every Conv / Gemm / MatMul node (and their QOperator and
    integer forms), by node name, from onnx shape inference. Batch included."""
    import numpy as np
    import onnx

    model = onnx.load(str(model)) if isinstance(model, str | Path) else model
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = v.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[v.name] = [d.dim_value for d in dims]
    for t in model.graph.initializer:
        shapes[t.name] = list(t.dims)
    # Where the weight / second operand sits in each op's inputs.
    weight_index = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "Gemm": 1, "MatMul": 1,
                    "MatMulInteger": 1, "QLinearMatMul": 3, "QGemm": 3}  # fmt: skip
    out: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type not in weight_index:
            continue
        w = shapes.get(node.input[weight_index[node.op_type]])
        y = shapes.get(node.output[0])
        if w is None or y is None:
            continue
        name = node.name or node.output[0]
        if "Conv" in node.op_type:  # y: N, M, spatial...; w: M, C/group, kernel...
            out[name] = int(np.prod(y, dtype=np.int64) * np.prod(w[1:], dtype=np.int64))
        elif node.op_type in ("Gemm", "QGemm"):
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            a = shapes.get(node.input[0])
            if a is None:
                continue
            out[name] = int(y[0] * y[1] * (a[0] if trans_a else a[1]))
        else:  # MatMul: y = a @ b, K is a's last dimension
            a = shapes.get(node.input[0])
            if a is None:
                continue
            out[name] = int(np.prod(y, dtype=np.int64) * a[-1])
    return out


def model_macs(model) -> int:
    return sum(layer_macs(model).values())


# ---- host side ------------------------------------------------------------------


def _riscv_env() -> dict[str, str]:
    out = subprocess.run(["bash", str(SCRIPT), "env"], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.split())


def _marks_library(zigcc: str, build: Path) -> Path:
    """tools/profile_mark.c as a small riscv64 shared library (the guest loads it with
    cffi until the kernel library exports pyrt_profile_mark itself)."""
    src = ROOT / "tools" / "profile_mark.c"
    lib = build / "libpyrt_profile_mark.so"
    if not lib.exists() or lib.stat().st_mtime < src.stat().st_mtime:
        build.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [zigcc, "-target", "riscv64-linux-gnu.2.36", "-O2", "-shared", "-fPIC",
             "-o", str(lib), str(src)],
            check=True,
        )  # fmt: skip
    return lib


def run_model(
    model,
    feeds: dict | None = None,
    *,
    runs: int = 3,
    warmup: int = 1,
    count: bool = True,
    layers: bool = False,
    vlen: int = 256,
    isa: str | None = None,
    board: bool = False,
    timeout: float = 3600,
) -> QemuResult:
    """Run `model` (path or ModelProto) `runs` times in one emulated Python process.

    feeds: input name -> array (random inputs when None, as `pyrt run` makes them).
    count: load the instruction-count plugin (not with board=True: QEMU 10 has none).
    layers: also count every plan step apart (HINT marks around each step).
    """
    import numpy as np
    import onnx

    if count and board:
        raise ValueError("instruction counts need the baseline build: QEMU 10 has no plugins")
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got {runs}, {warmup}")
    env_paths = _riscv_env()
    proto = onnx.load(str(model)) if isinstance(model, str | Path) else model
    with tempfile.TemporaryDirectory(prefix="pyrt-qemu-") as tmp:
        tmp_path = Path(tmp)
        model_path = tmp_path / "model.onnx"
        onnx.save(proto, str(model_path))
        feeds_path = tmp_path / "feeds.npz"
        np.savez(feeds_path, **(feeds or {}))
        counts_path, result_path = tmp_path / "counts.json", tmp_path / "result.json"
        env = dict(os.environ, PYRT_RVV_VLEN=str(vlen), OPENBLAS_NUM_THREADS="1")
        if isa:
            env["PYRT_ISA"] = isa
        marks = ""
        if count:
            env["QEMU_PLUGIN"] = f"{env_paths['PLUGIN']},outfile={counts_path}"
            marks = str(_marks_library(env_paths["ZIGCC"], Path(env_paths["BUILD"])))
        guest_args = [model_path, feeds_path, result_path, runs, warmup, marks, int(layers)]
        cmd = ["bash", str(SCRIPT), "run", *(["--board"] if board else []), "python3"]
        cmd += [
            str(Path(__file__).resolve()),
            "--guest",
            *("" if a is None else str(a) for a in guest_args),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"emulated run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        guest = json.loads(result_path.read_text())
        outputs = dict(np.load(tmp_path / "outputs.npz"))
        plugin = json.loads(counts_path.read_text()) if count else None
    macs = layer_macs(proto)
    result = QemuResult(
        isa=guest["isa"],
        vlen=vlen,
        runs=runs,
        macs=sum(macs.values()),
        ms=1000 * statistics.median(guest["times"]),
        outputs=outputs,
    )
    if plugin:
        regions = {r["id"]: r for r in plugin["regions"]}
        empty = {"insns": 0, "scalar": 0, "vector": 0, "vsetvl": 0}
        result.load = Counts.of(regions.get(LOAD, empty))
        result.per_run = Counts.of(regions.get(RUNS, empty), runs)
        if guest["steps"]:
            result.between_layers = Counts.of(regions.get(BETWEEN, empty), runs)
        for k, step in enumerate(guest["steps"]):
            counts = Counts.of(regions.get(LAYER_BASE + k, empty), runs)
            result.layers.append(
                Layer(step["name"], step["op"], step["kind"], macs.get(step["name"], 0), counts)
            )
    return result


def format_result(label: str, r: QemuResult) -> str:
    lines = [
        f"{label}: isa {r.isa}, VLEN {r.vlen}, {r.macs / 1e6:.2f} M MACs, "
        f"emulated {r.ms:.0f} ms/inference (QEMU time, not a board's)"
    ]
    if r.per_run:
        p = r.per_run
        ipm = f"{r.insns_per_mac:.3f}" if r.insns_per_mac else "-"
        lines.append(
            f"  per inference: {p.insns / 1e6:.2f} M instructions ({p.scalar / 1e6:.2f} M scalar, "
            f"{p.vector / 1e6:.2f} M vector), {ipm} instructions/MAC; "
            f"Session creation {r.load.insns / 1e6:.1f} M"
        )
    if r.layers:
        width = max(len(layer.name) for layer in r.layers)
        lines.append(
            f"  {'layer':<{width}} {'op':<16} {'kind':<6} {'MACs':>10} {'insns':>12} "
            f"{'vector':>12} {'insns/MAC':>9}"
        )
        for layer in r.layers:
            c, ipm = layer.counts, layer.insns_per_mac
            lines.append(
                f"  {layer.name:<{width}} {layer.op:<16} {layer.kind:<6} {layer.macs:>10} "
                f"{c.insns:>12.0f} {c.vector:>12.0f} {f'{ipm:.3f}' if ipm else '-':>9}"
            )
        c = r.between_layers
        lines.append(
            f"  {'(executor between steps)':<{width + 35}} {c.insns:>12.0f} {c.vector:>12.0f}"
        )
    return "\n".join(lines)


def compare(
    models: list[tuple[str, object, dict[str, object]]],
    *,
    runs: int = 1,
    count: bool = True,
    vlen: int = 256,
    isa: str | None = None,
    board: bool = False,
) -> str:
    """FP32 vs INT8 under QEMU: (name, fp32 model, {label: int8 model}) per model, all fed
    the same random input; a table of instructions per inference and per MAC (with
    count) and emulated times, INT8 beside its FP32."""
    from pyrt import zoo

    header = (
        f"{'model':<16} {'variant':<12} {'isa':<6} {'MMAC':>7} {'M insns':>9} {'insns/MAC':>9} "
        f"{'vector':>7} {'vs fp32':>8} {'emul. ms':>9}"
    )
    lines = [header]
    for name, fp32, int8 in models:
        feeds = zoo.calibration_data(fp32, n=1)[0]
        base = None
        for label, model in [("fp32", fp32), *int8.items()]:
            r = run_model(model, feeds, runs=runs, count=count, vlen=vlen, isa=isa, board=board)
            p = r.per_run
            insns = p.insns if p else float("nan")
            base = insns if label == "fp32" else base
            ipm = f"{r.insns_per_mac:.3f}" if r.insns_per_mac else "-"
            share = f"{p.vector / p.insns:.0%}" if p and p.insns else "-"
            ratio = f"{base / insns:.1f}x" if p and label != "fp32" else "-"
            lines.append(
                f"{name:<16} {label:<12} {r.isa:<6} {r.macs / 1e6:>7.1f} {insns / 1e6:>9.2f} "
                f"{ipm:>9} {share:>7} {ratio:>8} {r.ms:>9.0f}"
            )
    lines.append(
        f"QEMU riscv64, VLEN {vlen}{', X60 build' if board else ''}: instructions are dynamic "
        "counts of one whole Session.run (Python included); emulated times measure QEMU, "
        "not a board."
    )
    return "\n".join(lines)


# ---- guest side (runs under QEMU: numpy, cffi and pyrt only) ----------------------


def guest(argv: list[str]) -> None:
    model, feeds_path, result_path, runs, warmup, marks_lib, layers = argv
    import numpy as np

    mark = _guest_marks(marks_lib)
    import pyrt
    from pyrt import _kernels
    from pyrt.check import random_inputs

    mark(LOAD)
    session = pyrt.Session(model)
    mark(OUTSIDE)
    feeds = dict(np.load(feeds_path)) or random_inputs(session)
    mark(WARMUP)
    for _ in range(max(int(warmup), 1 if int(layers) else 0)):
        session.run(feeds)
    times = []
    mark(RUNS)
    for _ in range(int(runs)):
        start = time.perf_counter()
        outputs = session.run(feeds)
        times.append(time.perf_counter() - start)
    mark(OUTSIDE)
    steps = []
    if int(layers):
        for _ in range(int(runs)):
            steps = _marked_run(session, feeds, mark)
        mark(OUTSIDE)
    names = [spec.name for spec in session.outputs]
    np.savez(Path(result_path).with_name("outputs.npz"), **dict(zip(names, outputs)))
    Path(result_path).write_text(
        json.dumps({"isa": _kernels.isa(), "times": times, "steps": steps})
    )


def _marked_run(session, feeds, mark) -> list[dict]:
    """One inference with a mark around every C plan entry and numpy step (the loop of
    pyrt/profile.py, marks instead of timers); returns the steps in order."""
    import numpy as np

    from pyrt._kernels import ffi, lib
    from pyrt.program import Program

    checked = session._feeds(feeds)
    key = tuple(checked[t.name].shape for t in session._input_info)
    program = session._programs.get(key)
    if not isinstance(program, Program):
        raise RuntimeError("this model's shapes depend on its values: no program to mark")
    arena = program._arena()
    for name in program.input_names:
        if name in arena.views:
            arena.views[name][...] = checked[name]
    steps = []
    mark(BETWEEN)
    for seg in program.segments:
        if seg.step is None:
            for e in range(seg.first, seg.last):
                step = seg.entry_steps[e - seg.first]
                mark(LAYER_BASE + len(steps))
                status = lib.pyrt_plan_run(
                    program.ctx.ptr, program.emitter.plan, e, e + 1, arena.base, ffi.NULL
                )
                mark(BETWEEN)
                if status != lib.PYRT_OK:
                    raise RuntimeError(ffi.string(lib.pyrt_last_error()).decode())
                steps.append({"name": step.node.name, "op": step.node.op_type, "kind": "C"})
            continue
        step = seg.step
        args = [program._value(arena, checked, n) if n else None for n in step.inputs]
        mark(LAYER_BASE + len(steps))
        outs = session._call_step(step, args)
        for name, value in zip(step.outputs, outs):
            if name in arena.views:
                np.copyto(arena.views[name], value)
        mark(BETWEEN)
        steps.append({"name": step.node.name, "op": step.node.op_type, "kind": step.kind})
    return steps


def _guest_marks(path: str):
    if not path:
        return lambda _id: None
    import cffi

    ffi = cffi.FFI()
    ffi.cdef("void pyrt_profile_mark(uint32_t id);")
    lib = ffi.dlopen(path)

    def mark(region: int) -> None:  # holds ffi and lib: dropping them unloads the library
        lib.pyrt_profile_mark(region)

    mark.ffi = ffi
    return mark


# ---- command line ---------------------------------------------------------------------


def main() -> None:
    if sys.argv[1:2] == ["--guest"]:
        guest(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?")
    parser.add_argument("--zoo", help="FP32 vs INT8 of these pyrt.zoo models (comma-separated)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--vlen", type=int, default=256)
    parser.add_argument("--isa", help="force an ISA (PYRT_ISA), e.g. scalar")
    parser.add_argument("--layers", action="store_true", help="count every plan step apart")
    parser.add_argument("--board", action="store_true", help="the X60 build under QEMU 10")
    parser.add_argument("--no-count", action="store_true", help="times only, no plugin")
    parser.add_argument("--json", type=Path, help="also write the result as JSON")
    args = parser.parse_args()
    count = not (args.no_count or args.board)
    if args.zoo:
        from pyrt import zoo

        models = []
        for name in args.zoo.split(","):
            fp32 = zoo.MODELS[name]()
            calib = zoo.calibration_data(fp32, n=4)
            int8 = {
                f"int8 {act[0]}8-act": zoo.quantize_qdq(fp32, calib, activation_type=act)
                for act in ("uint8", "int8")
            }
            models.append((name, fp32, int8))
        print(compare(models, runs=args.runs, count=count, vlen=args.vlen, isa=args.isa,
                      board=args.board))  # fmt: skip
        return
    if args.model is None:
        parser.error("give a model file or --zoo NAMES")
    r = run_model(args.model, runs=args.runs, warmup=args.warmup, count=count, layers=args.layers,
                  vlen=args.vlen, isa=args.isa, board=args.board)  # fmt: skip
    print(format_result(args.model.name, r))
    if args.json:
        from dataclasses import asdict

        data = asdict(r)
        data.pop("outputs")
        data["insns_per_mac"] = r.insns_per_mac
        args.json.write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
