"""`python -m pyrt profile`: where a model's time goes, layer by layer.

The model runs as it always does (a captured Program), but every C plan entry
and every numpy step is timed on its own, over several rounds (medians). MACs
come from the recorded shapes of each convolution and matrix product; the
ceiling they are compared with is this machine's own: the GEMM tile of the
session's kernel table on a cache-resident problem.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import kernels as K
from ._kernels import Context, ffi, lib
from .program import Program
from .session import Session


@dataclass
class LayerTime:
    node: str
    op: str
    ran_as: str  # "C", "numpy"
    ms: float
    macs: int

    @property
    def gmacs(self) -> float:
        return self.macs / (self.ms * 1e6) if self.ms > 0 else 0.0


def step_macs(op: str, attrs: dict, out_shape: tuple, in_shape: tuple) -> int:
    """Multiply-accumulates of a convolution or matrix product from its output shape."""
    if op == "QConv":
        w = attrs["w"]
        return int(np.prod(out_shape)) * int(np.prod(w.shape[1:]))
    if op == "QMatMul":
        return int(np.prod(out_shape)) * int(attrs["w"].shape[1])
    return 0


def tile_ceiling(ctx: Context, seconds: float = 0.2) -> float:
    """GMAC/s of the int8 GEMM driver on a problem that stays in cache: the best a layer
    can expect from this kernel table on one of the context's threads."""
    m = n = k = 256
    rng = np.random.default_rng(0)
    gemm = K.QGemm(
        rng.integers(-128, 128, (n, k), dtype=np.int8),
        0,
        None,
        np.uint8,
        0,
        K.OutputStage(np.uint8, 1e-4, 0),
    )
    x = rng.integers(0, 256, (m, k), dtype=np.uint8)
    y = np.empty((m, n), np.uint8)
    gemm.rows(x, ctx, y)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        gemm.rows(x, ctx, y)
        runs += 1
    return runs * m * n * k / (time.perf_counter() - start) / 1e9


def profile(session: Session, feeds: dict[str, np.ndarray], rounds: int = 10) -> list[LayerTime]:
    """Per-step times (medians over `rounds`) of the session's Program for these inputs."""
    session.run(feeds)
    session.run(feeds)
    checked = session._feeds(feeds)
    key = tuple(checked[t.name].shape for t in session._input_info)
    program = session._programs.get(key)
    if not isinstance(program, Program):
        raise RuntimeError("this model's shapes depend on its values: no program to profile")
    return _profile_program(program, session, checked, rounds)


def _profile_program(
    program: Program, session: Session, feeds: dict[str, np.ndarray], rounds: int
) -> list[LayerTime]:
    arena = program._arena()
    times: dict[int, list[float]] = {}
    labels: list[tuple] = []
    for r in range(rounds):
        for name in program.input_names:  # each round: the memory plan reuses input slots
            if name in arena.views:
                arena.views[name][...] = feeds[name]
        idx = 0
        for seg in program.segments:
            if seg.step is None:
                for e in range(seg.first, seg.last):
                    start = time.perf_counter()
                    status = lib.pyrt_plan_run(
                        program.ctx.ptr, program.emitter.plan, e, e + 1, arena.base, ffi.NULL
                    )
                    times.setdefault(idx, []).append(time.perf_counter() - start)
                    if r == 0:
                        labels.append((seg.entry_steps[e - seg.first], "C"))
                    if status != lib.PYRT_OK:
                        raise RuntimeError(ffi.string(lib.pyrt_last_error()).decode())
                    idx += 1
                continue
            step = seg.step
            args = [program._value(arena, feeds, n) if n else None for n in step.inputs]
            start = time.perf_counter()
            outs = session._call_step(step, args)
            for name, value in zip(step.outputs, outs):
                if name in arena.views:
                    np.copyto(arena.views[name], value)
            times.setdefault(idx, []).append(time.perf_counter() - start)
            if r == 0:
                labels.append((step, "numpy"))
            idx += 1
    layers = []
    for i, (step, how) in enumerate(labels):
        out = program.slots.get(step.outputs[0]) if step.outputs else None
        inp = program.slots.get(step.inputs[0]) if step.inputs else None
        macs = step_macs(
            step.node.op_type,
            step.node.attrs,
            out.array.shape if out else (),
            inp.array.shape if inp else (),
        )
        ms = float(np.median(times[i])) * 1e3
        layers.append(LayerTime(step.node.name, step.node.op_type, how, ms, macs))
    return layers


def format_profile(layers: list[LayerTime], isa: str, ceiling: float) -> str:
    total = sum(layer.ms for layer in layers) or 1.0
    macs = sum(layer.macs for layer in layers)
    width = max([len(layer.node) for layer in layers] + [5])
    lines = [
        f"kernel table {isa}; GEMM ceiling {ceiling:.0f} GMAC/s (in-cache tile, this machine)",
        f"{'layer':<{width}}  {'op':<14} {'ran':<5} {'ms':>8} {'%':>5} {'GMAC/s':>7} {'%ceil':>6}",
    ]
    for layer in sorted(layers, key=lambda x: -x.ms):
        share = 100 * layer.ms / total
        g = layer.gmacs
        lines.append(
            f"{layer.node:<{width}}  {layer.op:<14} {layer.ran_as:<5} {layer.ms:8.3f} "
            f"{share:5.1f} {g:7.1f} {100 * g / ceiling if g else 0:6.1f}"
        )
    lines.append(
        f"total {total:.3f} ms over {len(layers)} steps, {macs / 1e9:.3f} GMAC, "
        f"{macs / (total * 1e6):.1f} GMAC/s"
    )
    return "\n".join(lines)
