"""Stage run, fast path: a Session's steps captured once per input shape and replayed.

The first run with new input shapes goes through the steps one by one (the
interpreter, session.py) and records every tensor's shape and dtype. From
that record a Program is built: a memory plan puts every tensor at an offset
in one arena (tensors whose lifetimes do not overlap share bytes), and every
step that a C kernel runs becomes an entry of a C execution plan (kernels.h,
pyrt_plan_*), so a run of consecutive C steps is one call into the library.
Steps that run in numpy read and write arena views. Arenas are pooled, one
per concurrent run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ._kernels import Context, ffi, lib
from .errors import KernelError
from .plan import Step

ALIGN = 64


@dataclass
class Slot:
    """A tensor of the recorded run: its example value and its byte offset in the arena."""

    array: np.ndarray
    offset: int = -1  # -1: not in the arena (a constant the numpy steps read directly)


class Emitter:
    """What a step's `emit` gets: the C plan being built, the context, and a place to keep
    the cffi structs and arrays the plan points to alive as long as the Program."""

    def __init__(self, ctx: Context):
        out = ffi.new("pyrt_plan **")
        if lib.pyrt_plan_create(out) != lib.PYRT_OK:
            raise MemoryError("cannot create an execution plan")
        self.plan = ffi.gc(out[0], lib.pyrt_plan_destroy)
        self.ctx = ctx
        self.kept: list = []
        self.count = 0

    def keep(self, *objects) -> None:
        self.kept.extend(objects)

    def add(self, index: int) -> None:
        if index < 0:
            raise KernelError(ffi.string(lib.pyrt_last_error()).decode())
        self.count = index + 1


class Replan(Exception):
    """A numpy step produced another shape than recorded: the program does not apply."""


@dataclass
class _Segment:
    first: int  # C entries [first, last), or a Python step when last < 0
    last: int
    step: Step | None = None
    entry_steps: list[Step] | None = None


def _plan_memory(sizes: list[int], lifetimes: list[tuple[int, int]]) -> tuple[list[int], int]:
    """Offsets for tensors of `sizes` bytes alive over [first, last] step ranges: greedy,
    largest first, lowest offset that does not overlap a placed tensor alive at the same time."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    offsets = [0] * len(sizes)
    placed: list[int] = []
    top = 0
    for i in order:
        size = -(-max(sizes[i], 1) // ALIGN) * ALIGN
        lo, hi = lifetimes[i]
        busy = sorted(
            (offsets[j], offsets[j] + -(-max(sizes[j], 1) // ALIGN) * ALIGN)
            for j in placed
            if lifetimes[j][0] <= hi and lo <= lifetimes[j][1]
        )
        at = 0
        for start, end in busy:
            if at + size <= start:
                break
            at = max(at, end)
        offsets[i] = at
        top = max(top, at + size)
        placed.append(i)
    return offsets, top


class Program:
    """Steps bound to one set of input shapes: a memory plan and a C plan."""

    def __init__(
        self,
        steps: list[Step],
        ctx: Context,
        record: dict[str, np.ndarray],
        constants: dict[str, np.ndarray],
        input_names: Sequence[str],
        output_names: Sequence[str],
    ):
        self.ctx = ctx
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.constants = constants
        last_use: dict[str, int] = {}
        first_def: dict[str, int] = {name: 0 for name in self.input_names}
        for idx, step in enumerate(steps):
            for name in step.inputs:
                if name:
                    last_use[name] = idx
            for name in step.outputs:
                if name:
                    first_def.setdefault(name, idx)
        end = len(steps)
        for name in self.output_names:
            last_use[name] = end
        # Constants a C step reads go into the arena too (copied once per arena).
        c_inputs = {
            step.inputs[i]
            for step in steps
            if step.emit is not None
            for i in step.arena_inputs
            if i < len(step.inputs) and step.inputs[i]
        }
        const_in_arena = sorted(n for n in c_inputs if n in constants)
        names = [n for n in first_def if n in record] + const_in_arena
        sizes = [record[n].nbytes if n in record else constants[n].nbytes for n in names]
        lifetimes = [
            (0, end) if n in constants else (first_def[n], last_use.get(n, first_def[n]))
            for n in names
        ]
        offsets, self.arena_bytes = _plan_memory(sizes, lifetimes)
        self.slots: dict[str, Slot] = {}
        for name, off in zip(names, offsets):
            example = record[name] if name in record else constants[name]
            self.slots[name] = Slot(example, off)
        self.const_in_arena = const_in_arena
        self._build(steps)
        self._arenas: list[_Arena] = []
        self._lock = threading.Lock()

    def _build(self, steps: list[Step]) -> None:
        em = Emitter(self.ctx)
        self.segments: list[_Segment] = []
        for step in steps:
            ins = [self.slots.get(n) if n else None for n in step.inputs]
            outs = [self.slots.get(n) if n else None for n in step.outputs]
            before = em.count
            emitted = (
                step.emit is not None
                and all(i < len(ins) and ins[i] is not None for i in step.arena_inputs)
                and all(ins[i].offset >= 0 for i in step.arena_inputs)
                and all(s is not None for n, s in zip(step.outputs, outs) if n)
                and step.emit(em, ins, outs)
            )
            if emitted:
                seg = self.segments[-1] if self.segments else None
                if seg is None or seg.step is not None:
                    seg = _Segment(before, em.count, None, [])
                    self.segments.append(seg)
                seg.last = em.count
                seg.entry_steps.extend([step] * (em.count - before))
            else:
                self.segments.append(_Segment(0, -1, step))
        self.emitter = em

    def _arena(self) -> _Arena:
        with self._lock:
            if self._arenas:
                return self._arenas.pop()
        return _Arena(self)

    def run(self, feeds: dict[str, np.ndarray], wrap: Callable) -> list[np.ndarray]:
        arena = self._arena()
        try:
            return self._run(arena, feeds, wrap)
        finally:
            with self._lock:
                self._arenas.append(arena)

    def _run(self, arena: _Arena, feeds: dict[str, np.ndarray], wrap) -> list[np.ndarray]:
        views = arena.views
        for name in self.input_names:
            if name in views:
                views[name][...] = feeds[name]
        for seg in self.segments:
            if seg.step is None:
                status = lib.pyrt_plan_run(
                    self.ctx.ptr, self.emitter.plan, seg.first, seg.last, arena.base, arena.failed
                )
                if status != lib.PYRT_OK:
                    step = seg.entry_steps[arena.failed[0] - seg.first]
                    message = ffi.string(lib.pyrt_last_error()).decode()
                    raise KernelError(f"{step.node.label}: {message}")
                continue
            step = seg.step
            outs = wrap(step, [self._value(arena, feeds, n) if n else None for n in step.inputs])
            for name, value in zip(step.outputs, outs):
                view = views.get(name) if name else None
                if view is None:
                    continue
                if value.shape != view.shape or value.dtype != view.dtype:
                    raise Replan(name)
                np.copyto(view, value)
        return [np.array(self._value(arena, feeds, n), copy=True) for n in self.output_names]

    def _value(self, arena: _Arena, feeds: dict[str, np.ndarray], name: str) -> np.ndarray:
        view = arena.readonly.get(name)
        if view is not None:
            return view
        if name in feeds:
            return feeds[name]
        return self.constants[name]


class _Arena:
    """One pooled arena of a Program: its bytes, the address its C plan runs on, and a
    view of every slot, made once (writable for the step that writes the tensor,
    read-only for the steps that read it)."""

    def __init__(self, program: Program):
        raw = np.empty(program.arena_bytes + ALIGN, np.uint8)
        start = (-raw.ctypes.data) % ALIGN
        self.bytes = raw[start : start + program.arena_bytes]
        self.base = ffi.cast("void *", self.bytes.ctypes.data)
        self.failed = ffi.new("int32_t *")
        self.views: dict[str, np.ndarray] = {}
        self.readonly: dict[str, np.ndarray] = {}
        for name, slot in program.slots.items():
            a = slot.array
            view = self.bytes[slot.offset : slot.offset + a.nbytes].view(a.dtype)
            self.views[name] = view.reshape(a.shape)
            self.readonly[name] = self.views[name].view()
            self.readonly[name].flags.writeable = False
        for name in program.const_in_arena:
            self.views[name][...] = program.constants[name]
