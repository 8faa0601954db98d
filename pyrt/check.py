"""Compare pyrt with onnxruntime, per output and (optionally) per quantized layer.

The reference for a QDQ model is the graph exactly as ONNX defines it:
onnxruntime with every graph optimization off, so Q/DQ pairs compute float
math between them. onnxruntime's own optimized (fused int8) result is shown
beside it, so a user sees how far each is from the definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

from .errors import PyrtError
from .graph import read_model
from .session import Inputs, ModelLike, Session


@dataclass
class OutputCheck:
    name: str
    cosine: float
    max_abs_err: float
    max_abs_err_steps: float | None  # in units of the tensor's quantization step
    exact_share: float  # share of elements equal (after rounding to the step)
    argmax_equal: bool


@dataclass
class CheckReport:
    outputs: list[OutputCheck]  # pyrt vs the QDQ reference
    optimized: list[OutputCheck]  # onnxruntime's optimized int8 vs the QDQ reference
    layers: list[OutputCheck] = field(default_factory=list)  # quantized intermediates

    @property
    def ok(self) -> bool:
        return all(o.cosine >= 0.999 for o in self.outputs)

    def __str__(self) -> str:
        def table(title: str, rows: list[OutputCheck]) -> list[str]:
            out = [
                title,
                f"  {'tensor':<32} {'cosine':>10} {'max|err|':>10} {'steps':>7} {'exact':>7}",
            ]
            for r in rows:
                steps = f"{r.max_abs_err_steps:.1f}" if r.max_abs_err_steps is not None else "-"
                out.append(
                    f"  {r.name[:32]:<32} {r.cosine:>10.6f} {r.max_abs_err:>10.4g} "
                    f"{steps:>7} {100 * r.exact_share:>6.1f}%"
                )
            return out

        lines = table("pyrt vs onnxruntime QDQ reference (optimizations off):", self.outputs)
        if self.optimized:
            lines += table("onnxruntime optimized int8 vs the same reference:", self.optimized)
        else:
            lines.append("onnxruntime's optimized session failed to load this model")
        if self.layers:
            lines += table("per layer (quantized tensors), pyrt vs reference:", self.layers)
        lines.append("OK" if self.ok else "MISMATCH: some output has cosine < 0.999")
        return "\n".join(lines)


def compare(name: str, got: np.ndarray, ref: np.ndarray, step: float | None) -> OutputCheck:
    if got.shape != ref.shape:
        raise PyrtError(
            f"output '{name}': pyrt shape {got.shape} differs from onnxruntime {ref.shape}"
        )
    a, b = got.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(a @ b / norm) if norm > 0 else float(np.array_equal(a, b))
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    if step:
        exact = float(np.mean(np.rint(a / step) == np.rint(b / step))) if a.size else 1.0
    else:
        exact = float(np.mean(a == b)) if a.size else 1.0
    argmax = bool(a.size == 0 or np.argmax(a) == np.argmax(b))
    return OutputCheck(name, cosine, err, err / step if step else None, exact, argmax)


def _output_steps(model: onnx.ModelProto) -> dict[str, float]:
    """Quantization step of per-tensor DequantizeLinear outputs (1 for Q outputs: int codes)."""
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    steps = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[1] in consts:
            scale = consts[node.input[1]]
            if scale.size == 1:
                steps[node.output[0]] = float(scale.reshape(-1)[0])
        if node.op_type == "QuantizeLinear" or node.op_type.startswith("QLinear"):
            steps[node.output[0]] = 1.0  # integer codes
    return steps


def _ort_session(model: onnx.ModelProto, optimized: bool):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise PyrtError("pyrt check needs onnxruntime: pip install 'pyrt[check]'") from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimized
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def random_inputs(
    session: Session, seed: int = 0, dims: Mapping[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Inputs for every graph input: symbolic dims take their value in `dims` (by name,
    e.g. {"sequence": 128}) or 1, floats ~ N(0, 1), 8-bit integers over their range,
    indices into a constant table (token ids) over its rows, other integers (masks,
    flags) 0 or 1."""
    rng = np.random.default_rng(seed)
    dims = dims or {}
    feeds = {}
    for spec in session.inputs:
        shape = [
            d if isinstance(d, int) and d > 0 else dims.get(d, 1) if isinstance(d, str) else 1
            for d in (spec.shape or ())
        ]
        dtype = spec.dtype or np.dtype(np.float32)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            if spec.name in session._index_limits:
                low, high = 0, session._index_limits[spec.name]
            elif dtype.itemsize == 1:
                low, high = np.iinfo(dtype).min, np.iinfo(dtype).max + 1
            else:
                low, high = 0, 2
            feeds[spec.name] = rng.integers(low, high, shape).astype(dtype)
        else:
            feeds[spec.name] = np.zeros(shape, dtype)
    return feeds


def check(
    model: ModelLike,
    inputs: Inputs | None = None,
    layers: bool = False,
    seed: int = 0,
    dims: Mapping[str, int] | None = None,
) -> CheckReport:
    """pyrt vs onnxruntime on every output (and every quantized layer with layers=True);
    without `inputs`, random ones (random_inputs, symbolic dims from `dims`)."""
    proto = read_model(model)
    session = Session(proto)
    feeds = random_inputs(session, seed, dims) if inputs is None else session._feeds(inputs)
    names = [o.name for o in proto.graph.output]
    steps = _output_steps(proto)
    layer_names = []
    if layers:
        layer_names = [n for n in steps if steps[n] == 1.0 and n not in names]
        layer_names = [n for n in layer_names if n in _surviving(session)]
    ours = session.run(feeds, keep=layer_names)
    ref_model = _with_outputs(proto, {n: v.dtype for n, v in zip(layer_names, ours[len(names) :])})
    ref = _ort_session(ref_model, optimized=False).run(None, feeds)
    try:
        opt = _ort_session(proto, optimized=True).run(None, feeds)
    except Exception:  # onnxruntime's own graph optimizer can reject valid models
        opt = None
    outputs = [compare(n, a, b, steps.get(n)) for n, a, b in zip(names, ours, ref)]
    optimized = [compare(n, a, b, steps.get(n)) for n, a, b in zip(names, opt, ref)] if opt else []
    per_layer = [
        compare(n, a, b, 1.0) for n, a, b in zip(layer_names, ours[len(names) :], ref[len(names) :])
    ]
    return CheckReport(outputs, optimized, per_layer)


def _surviving(session: Session) -> set[str]:
    return {o for s in session._steps for o in s.outputs}


def _with_outputs(model: onnx.ModelProto, extra: dict[str, np.dtype]) -> onnx.ModelProto:
    """The model with `extra` tensors (of the dtypes pyrt computed) as additional outputs."""
    if not extra:
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for name, dtype in extra.items():
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        out.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    return out
