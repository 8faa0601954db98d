"""Stage run: Session compiles a model once and runs it.

load (graph.py) -> lower (lower.py) -> fold (fold.py) -> match (patterns.py) -> fold ->
layout (layout.py) -> plan (plan.py) -> run: the first run with new input shapes
interprets the steps and records every tensor; later runs replay the recorded
Program (program.py): one arena, consecutive C steps in one call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from ._kernels import Context
from .errors import InputError, ModelError, PyrtError, UnsupportedOpError
from .fold import fold_constants, remove_dead
from .graph import DEFAULT_MEMORY_LIMIT, Graph, Node, TensorInfo, load
from .layout import assign_layouts
from .lower import lower_qoperators
from .patterns import fold_code_clamps, fuse
from .plan import Step, build_steps, fuse_float_convs
from .program import Program, Replan
from .validate import validate_quant_nodes

ModelLike = str | Path | bytes | onnx.ModelProto
Inputs = Mapping[str, np.ndarray] | np.ndarray


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: symbolic dims are strings, unknown ones None."""

    name: str
    shape: tuple[int | str | None, ...] | None
    dtype: np.dtype | None


@dataclass(frozen=True)
class NodeReport:
    node: str
    op_type: str
    ran_as: str  # "int8", "fp32", "quant", "numpy", "folded", "fused"
    detail: str


class Report(list):
    """One row per original ONNX node: how pyrt runs it."""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self:
            out[row.ran_as] = out.get(row.ran_as, 0) + 1
        return out

    def __str__(self) -> str:
        width = max([len(r.node) for r in self] + [4])
        lines = [f"{'node':<{width}}  {'op':<22} {'ran as':<7} detail"]
        lines += [f"{r.node:<{width}}  {r.op_type:<22} {r.ran_as:<7} {r.detail}" for r in self]
        lines.append("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts().items())))
        return "\n".join(lines)


# Input-shape signatures a Session keeps a Program for; more run interpreted.
MAX_PROGRAMS = 8


class Session:
    """A model compiled once: weights packed, QDQ patterns fused into int8 kernels.

    cores: threads the kernels use (results are identical for any count). isa: the kernel
    table ("scalar", "avx2", "avxvnni", "avx512vnni", "rvv"); None takes $PYRT_ISA or the
    best this CPU runs.
    """

    def __init__(
        self,
        model: ModelLike,
        cores: int = 1,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        isa: str | None = None,
    ):
        if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
            raise PyrtError(f"cores must be a positive int, got {cores!r}")
        if not isinstance(memory_limit, int) or isinstance(memory_limit, bool) or memory_limit <= 0:
            raise PyrtError(f"memory_limit must be a positive int (bytes), got {memory_limit!r}")
        if isa is not None and not isinstance(isa, str):
            raise PyrtError(f"isa must be a string or None, got {isa!r}")
        self.cores = cores
        self.memory_limit = memory_limit
        self.context = Context(isa, cores)
        self.isa = self.context.isa
        try:
            graph = load(model, memory_limit)
            original = list(graph.nodes)
            self._index_limits = _index_limits(graph)
            lower_qoperators(graph)
            validate_quant_nodes(graph)
            folded = fold_constants(graph, keep_dequantize=True)
            fuse(graph)
            folded += fold_constants(graph, keep_dequantize=False)
            remove_dead(graph)
            fold_code_clamps(graph)
            fuse_float_convs(graph)
            self._nhwc = assign_layouts(graph)
            self._steps: list[Step] = build_steps(graph, self.context)
            self._report = _make_report(original, self._steps, folded)
        except PyrtError:
            raise
        except (RecursionError, MemoryError) as exc:
            raise ModelError(f"the model is too large or too deep to compile ({exc!r})") from exc
        except Exception as exc:  # a malformed model pyrt did not foresee: still a ModelError
            raise ModelError(f"internal error while compiling the model: {exc!r}") from exc
        used = {i for s in self._steps for i in s.inputs} | {t.name for t in graph.outputs}
        self._constants = {k: v for k, v in graph.constants.items() if k in used}
        self._input_info = graph.inputs
        self._input_names = {t.name for t in graph.inputs}
        self._output_names = [t.name for t in graph.outputs]
        self.inputs = [TensorSpec(t.name, t.shape, t.dtype) for t in graph.inputs]
        self.outputs = [TensorSpec(t.name, t.shape, t.dtype) for t in graph.outputs]
        self._programs: dict[tuple, Program | None] = {}  # None: shapes vary, interpret
        self._programs_lock = threading.Lock()

    def report(self) -> Report:
        """How each node of the model runs: int8 kernel, fp32 kernel, numpy, folded, fused."""
        return self._report

    def run(self, inputs: Inputs, keep: Sequence[str] = ()) -> list[np.ndarray]:
        """Runs the model; returns the graph outputs in order (then any `keep` tensors)."""
        keep = [keep] if isinstance(keep, str) else list(keep)
        feeds = self._feeds(inputs)
        if keep:
            return self._interpret(feeds, keep)
        key = tuple(feeds[t.name].shape for t in self._input_info)
        program = self._programs.get(key, False)
        if program is False:
            record: dict[str, np.ndarray] = {}
            outs = self._interpret(feeds, (), record)
            self._capture(key, record)
            return outs
        if program is None:
            return self._interpret(feeds, ())
        try:
            return program.run(feeds, self._call_step)
        except Replan:  # a step's output shape depends on values: interpret from now on
            with self._programs_lock:
                self._programs[key] = None
            return self._interpret(feeds, ())

    def _capture(self, key: tuple, record: dict[str, np.ndarray]) -> None:
        with self._programs_lock:
            if key in self._programs or len(self._programs) >= MAX_PROGRAMS:
                return
            try:
                program = Program(
                    self._steps,
                    self.context,
                    record,
                    self._constants,
                    [t.name for t in self._input_info],
                    self._output_names,
                )
            except PyrtError:
                program = None  # the steps keep running interpreted
            self._programs[key] = program

    def _call_step(self, step: Step, args: list) -> list[np.ndarray]:
        """One step on numpy values, every failure a PyrtError naming the node."""
        try:
            outs = step.fn(*args)
        except PyrtError as exc:
            if step.node.name in str(exc):
                raise
            raise type(exc)(f"{step.node.label}: {exc}") from exc
        except (ValueError, IndexError, TypeError, ArithmeticError, MemoryError) as exc:
            raise ModelError(f"{step.node.label} failed: {exc}") from exc
        except Exception as exc:  # never anything but a PyrtError out of run()
            raise PyrtError(f"{step.node.label}: internal error: {exc!r}") from exc
        if len(outs) < len(step.outputs) and any(step.outputs[len(outs) :]):
            raise UnsupportedOpError(
                f"{step.node.label}: produces {len(outs)} outputs, the model uses "
                f"{len(step.outputs)}"
            )
        for name, value in zip(step.outputs, outs):
            if name and value.nbytes > self.memory_limit:
                raise ModelError(
                    f"{step.node.label}: output '{name}' takes {value.nbytes} bytes, "
                    f"over the memory limit of {self.memory_limit}"
                )
        return outs

    def _interpret(
        self,
        feeds: dict[str, np.ndarray],
        keep: Sequence[str],
        record: dict[str, np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """Runs the steps one by one; `record` receives every tensor's shape and dtype."""
        values = dict(self._constants)
        values.update(feeds)
        if record is not None:
            record.update({k: _shape_of(v) for k, v in feeds.items()})
        wanted = set(keep)
        for step in self._steps:
            args = [values[name] if name else None for name in step.inputs]
            outs = self._call_step(step, args)
            for name, value in zip(step.outputs, outs):
                if name:
                    values[name] = value
                    if record is not None:
                        record[name] = _shape_of(value)
            for name in step.release:
                if name not in wanted:
                    values.pop(name, None)
        missing = [n for n in keep if n not in values]
        if missing:
            raise InputError(
                f"cannot keep {missing}: no such tensor survives in the compiled model"
            )
        # Outputs never alias the caller's inputs, the session's constants or each other's
        # read-only views of them: a fresh copy whenever in doubt.
        fed = list(feeds.values())
        outs = []
        for n in [*self._output_names, *keep]:
            value = values[n]
            if n in self._nhwc and value.ndim == 4:  # an inner tensor kept: the model's layout
                value = np.ascontiguousarray(value.transpose(0, 3, 1, 2))
            if (
                n in self._constants
                or not value.flags.writeable
                or any(np.may_share_memory(value, f) for f in fed)
            ):
                value = np.array(value, copy=True)
            outs.append(value)
        return outs

    def _feeds(self, inputs: Inputs) -> dict[str, np.ndarray]:
        if isinstance(inputs, np.ndarray):
            if len(self._input_info) != 1:
                names = [t.name for t in self._input_info]
                raise InputError(
                    f"the model has {len(names)} inputs {names}; pass a dict name -> array"
                )
            inputs = {self._input_info[0].name: inputs}
        if not isinstance(inputs, Mapping):
            raise InputError(
                f"inputs must be a dict name -> numpy array, got {type(inputs).__name__}"
            )
        expected = {t.name for t in self._input_info}
        extra = sorted(set(inputs) - expected, key=str)
        missing = sorted(expected - set(inputs))
        if extra or missing:
            raise InputError(
                f"inputs do not match the model: missing {missing}, unexpected {extra}; "
                f"expected {sorted(expected)}"
            )
        feeds = {}
        for info in self._input_info:
            feeds[info.name] = self._check_input(info, inputs[info.name])
        return feeds

    def _check_input(self, info: TensorInfo, value: object) -> np.ndarray:
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"input '{info.name}' must be a numpy array, got {type(value).__name__}"
            )
        if value.dtype != info.dtype and value.dtype.newbyteorder("=") == info.dtype:
            value = value.astype(info.dtype)  # byte-swapped: same values, native order
        if value.dtype != info.dtype:
            raise InputError(f"input '{info.name}' must have dtype {info.dtype}, got {value.dtype}")
        if info.shape is not None:
            if value.ndim != len(info.shape):
                raise InputError(
                    f"input '{info.name}' must have rank {len(info.shape)} "
                    f"(shape {list(info.shape)}), got shape {list(value.shape)}"
                )
            for axis, (want, got) in enumerate(zip(info.shape, value.shape)):
                if isinstance(want, int) and want > 0 and want != got:
                    raise InputError(
                        f"input '{info.name}' dimension {axis} must be {want}, "
                        f"got shape {list(value.shape)}"
                    )
        if value.nbytes > self.memory_limit:
            raise InputError(
                f"input '{info.name}' takes {value.nbytes} bytes, over the "
                f"memory limit of {self.memory_limit}"
            )
        # C-contiguous and aligned (a misaligned buffer would reach the kernels as is);
        # a read-only view, so no step can write into the caller's array.
        value = np.require(value, requirements=["C", "A"]).view(np.ndarray)
        value.flags.writeable = False
        return value


def _shape_of(value: np.ndarray) -> np.ndarray:
    """A stand-in with value's shape and dtype that holds no data (for the record)."""
    value = np.asarray(value)
    return np.broadcast_to(np.zeros((), value.dtype), value.shape)


# Ops an index passes through unchanged on its way from a graph input to a Gather.
_INDEX_PASSTHROUGH = ("Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity")


def _index_limits(graph: Graph) -> dict[str, int]:
    """For integer graph inputs used as Gather indices into a constant table (token ids,
    token types, positions): the number of rows they may index. Random test inputs
    (check.random_inputs) stay inside it."""
    graph.reindex()
    limits = {}
    for spec in graph.inputs:
        frontier, seen = [spec.name], set()
        while frontier:
            name = frontier.pop()
            seen.add(name)
            for n in graph.consumers.get(name, []):
                if n.op_type in _INDEX_PASSTHROUGH and n.inputs[0] == name:
                    frontier += [o for o in n.outputs if o and o not in seen]
                elif n.op_type == "Gather" and n.inputs[1] == name:
                    table = graph.constants.get(n.inputs[0])
                    if table is None:
                        continue
                    axis = int(n.attrs.get("axis", 0)) % max(table.ndim, 1)
                    rows = table.shape[axis] if table.ndim else 1
                    limits[spec.name] = min(limits.get(spec.name, rows), rows)
    return limits


def _make_report(original: list[Node], steps: list[Step], folded: list[Node]) -> Report:
    how: dict[str, tuple[str, str]] = {}
    for node in folded:
        how[node.name] = ("folded", "constant, computed at load")
    for step in steps:
        fused = step.node.attrs.get("fused", [step.node.name])
        for name in fused:
            detail = (
                step.node.op_type
                if name == step.node.name
                else f"in {step.node.op_type} '{step.node.name}'"
            )
            if step.kind == "int8" and name == step.node.name and len(fused) > 1:
                detail = f"{step.node.op_type} (fused {', '.join(fused)})"
            how.setdefault(name, (step.kind, detail))
    rows = Report()
    rank = {"int8": 0, "fp32": 1, "quant": 2, "numpy": 3, "folded": 4}
    for node in original:
        # QOperator nodes were lowered into parts named "<node>/<op><i>".
        parts = [v for k, v in how.items() if k.startswith(node.name + "/")]
        best = min(parts, key=lambda v: rank.get(v[0], 9)) if parts else None
        ran_as, detail = how.get(node.name) or best or ("fused", "absorbed into an integer op")
        rows.append(NodeReport(node.name, node.op_type, ran_as, detail))
    return rows


def run(model: ModelLike, inputs: Inputs, cores: int = 1) -> list[np.ndarray]:
    """Compile and run once: numpy in, numpy out (graph output order)."""
    return Session(model, cores=cores).run(inputs)
