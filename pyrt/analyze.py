"""Per-tensor error of an INT8 model against its FP32 original, both run in pyrt.

    report = pyrt.analyze.analyze("m.onnx", "m.q.onnx", samples)   # samples: list of feeds
    print(report)                        # worst tensors first, flagged ones marked
    report.suggestion                    # nodes to keep in FP32 (for ignore_op_names)
    write_report(report, "out/m.q")      # m.q.report.md, m.q.snr.png, m.q.report.html

For every activation the INT8 model quantizes (the input of a QuantizeLinear), the
FP32 value is compared with what the INT8 model holds there (its int8 codes,
dequantized): SNR (noise power / signal power, per sample, averaged, as XSlim
reports it), MSE, cosine, both min/max and a histogram. Rows with SNR > 0.1 or
cosine < 0.99 are flagged. The error a tensor adds itself ("local": its FP32 value
quantized with its own scale) separates a layer that breaks from one that inherits
the error; the suggestion names the nodes whose tensor adds most of its error.

Values come from `LayerValues` / `layer_values`, which use only `Session`'s public API.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from .errors import InputError, PyrtError
from .session import Inputs, ModelLike, Session

SNR_LIMIT = 0.1
COSINE_LIMIT = 0.99
HIST_BINS = 32


class LayerValues:
    """Reads chosen tensors of a model while pyrt runs it, with Session's public API only.

    `Session.run(inputs, keep=names)` on the model as compiled; if a tensor did not survive
    compilation (fused into an integer op), the model is compiled once more with the
    tensors as extra graph outputs, and that session serves every later call."""

    def __init__(self, model: ModelLike, names: Sequence[str]):
        self.model = _proto(model)
        self.names = list(dict.fromkeys(names))
        self.session = Session(self.model)
        self.extended = False

    def __call__(self, inputs: Inputs) -> dict[str, np.ndarray]:
        if not self.extended:
            try:
                values = self.session.run(inputs, keep=self.names)
                return dict(zip(self.names, values[len(self.session.outputs) :]))
            except InputError:
                self.session = Session(_with_outputs(self.model, self.names))
                self.extended = True
        values = self.session.run(inputs)
        by_name = dict(zip((o.name for o in self.session.outputs), values))
        return {n: by_name[n] for n in self.names}


def layer_values(model: ModelLike, inputs: Inputs, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The values of `names` (any tensors of the model) when pyrt runs `inputs`."""
    return LayerValues(model, names)(inputs)


def _proto(model: ModelLike) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, bytes):
        return onnx.load_from_string(model)
    return onnx.load(str(model))


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    present = {o.name for o in out.graph.output}
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.input]}
    for name in names:
        if name in present:
            continue
        info = types.get(name)
        elem = info.type.tensor_type.elem_type if info is not None else onnx.TensorProto.FLOAT
        out.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
    return out


@dataclass
class TensorStats:
    tensor: str  # the FP32 tensor the INT8 model quantizes
    op: str  # its producer, "name[OpType]" (or "input")
    snr: float  # noise / signal power, mean over samples
    mse: float
    cosine: float
    local_snr: float  # the error quantizing this tensor alone adds (FP32 value, own scale)
    q_min: float
    q_max: float
    f_min: float
    f_max: float
    hist: list[int]  # FP32 histogram, HIST_BINS bins over [f_min, f_max]
    position: int  # order in the graph

    @property
    def flagged(self) -> bool:
        return self.snr > SNR_LIMIT or self.cosine < COSINE_LIMIT


@dataclass
class OutputStats:
    name: str
    cosine: float
    snr: float
    max_abs_err: float
    argmax_agree: float | None  # share of samples whose top-1 agrees ([N, classes] outputs)


@dataclass
class AnalysisReport:
    rows: list[TensorStats]  # worst SNR first
    outputs: list[OutputStats]
    suggestion: list[str]  # nodes to keep in FP32 (ignore_op_names)
    samples: int
    reasons: dict[str, str] = field(default_factory=dict)  # node -> why it is suggested

    @property
    def flagged(self) -> list[TensorStats]:
        return [r for r in self.rows if r.flagged]

    def __str__(self) -> str:
        lines = [
            f"analysis on {self.samples} samples: {len(self.rows)} quantized tensors, "
            f"{len(self.flagged)} flagged (SNR > {SNR_LIMIT} or cosine < {COSINE_LIMIT})",
            f"  {'tensor':<36} {'op':<28} {'SNR':>8} {'local':>8} {'cosine':>8}",
        ]
        for r in self.rows[:20]:
            mark = " !" if r.flagged else ""
            lines.append(
                f"  {r.tensor[:36]:<36} {r.op[:28]:<28} {r.snr:>8.4f} {r.local_snr:>8.4f} "
                f"{r.cosine:>8.4f}{mark}"
            )
        for o in self.outputs:
            lines.append(f"output {o.name}: cosine {o.cosine:.5f}, SNR {o.snr:.5f}{_top1(o)}")
        if self.suggestion:
            lines.append("keep in FP32 (ignore_op_names): " + ", ".join(self.suggestion))
        return "\n".join(lines)

    def markdown(self) -> str:
        out = [
            "# Quantization analysis",
            "",
            f"{self.samples} samples; FP32 and INT8 both run in pyrt. SNR is noise power over "
            f"signal power (lower is better); rows with SNR > {SNR_LIMIT} or cosine < "
            f"{COSINE_LIMIT} are **flagged**. *Local* SNR is the error the tensor's own "
            "quantization adds (its FP32 value quantized with its scale).",
            "",
            "## Outputs",
            "",
            "| output | cosine | SNR | max abs err | top-1 agrees |",
            "|---|---|---|---|---|",
        ]
        for o in self.outputs:
            agree = "-" if o.argmax_agree is None else f"{100 * o.argmax_agree:.1f}%"
            out.append(
                f"| {o.name} | {o.cosine:.5f} | {o.snr:.5f} | {o.max_abs_err:.4g} | {agree} |"
            )
        out += ["", "## Suggestion", ""]
        if self.suggestion:
            out.append("Keep these nodes in FP32 (`quantization_parameters.ignore_op_names`):")
            out += [f"- `{n}`: {self.reasons.get(n, '')}" for n in self.suggestion]
        else:
            out.append("Nothing to keep in FP32: no tensor adds a flagged error of its own.")
        out += [
            "",
            "## Tensors (worst first)",
            "",
            "| Op | Var | SNR | local SNR | MSE | Cosine | Q.MinMax | F.MinMax | F.Hist |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            snr = f"**{r.snr:.4f}**" if r.snr > SNR_LIMIT else f"{r.snr:.4f}"
            cos = f"**{r.cosine:.4f}**" if r.cosine < COSINE_LIMIT else f"{r.cosine:.4f}"
            out.append(
                f"| {r.op} | {r.tensor} | {snr} | {r.local_snr:.4f} | {r.mse:.4g} | {cos} | "
                f"{r.q_min:.3f}, {r.q_max:.3f} | {r.f_min:.3f}, {r.f_max:.3f} | "
                f"{','.join(map(str, r.hist))} |"
            )
        return "\n".join(out) + "\n"


def _top1(o: OutputStats) -> str:
    if o.argmax_agree is None:
        return ""
    return f", top-1 agrees on {100 * o.argmax_agree:.1f}% of samples"


# --- computing ---------------------------------------------------------------------------


def _const(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute:
            values[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
    return values


@dataclass
class _Quantized:
    tensor: str  # the FP32 tensor
    codes: str  # the QuantizeLinear output
    scale: float
    zero: int
    dtype: np.dtype


def quantized_tensors(int8: onnx.ModelProto, fp32_names: set[str]) -> list[_Quantized]:
    """Activations the INT8 model quantizes per tensor, that the FP32 model also has."""
    consts = _const(int8)
    out, seen = [], set()
    for node in int8.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in consts:
            continue
        name = node.input[0]
        if name in seen or name not in fp32_names or node.input[1] not in consts:
            continue
        scale = consts[node.input[1]]
        zero = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scale.size != 1:
            continue
        dtype = zero.dtype if zero is not None else np.dtype(np.uint8)
        zp = int(zero.reshape(-1)[0]) if zero is not None else 0
        out.append(_Quantized(name, node.output[0], float(scale.reshape(-1)[0]), zp, dtype))
        seen.add(name)
    return out


class _Stats:
    """Running per-tensor statistics over samples; keeps a bounded subsample of the FP32
    values for the histogram, so memory does not grow with the model's activations."""

    KEEP = 4096  # values per sample kept for the histogram

    def __init__(self) -> None:
        self.snr: list[float] = []
        self.cos: list[float] = []
        self.sq_err = 0.0
        self.count = 0
        self.q_range = [np.inf, -np.inf]
        self.f_range = [np.inf, -np.inf]
        self.kept: list[np.ndarray] = []
        self.max_err = 0.0

    def add(self, q: np.ndarray, f: np.ndarray) -> None:
        q, f = q.astype(np.float64).ravel(), f.astype(np.float64).ravel()
        err = q - f
        self.snr.append(float(err @ err / (f @ f + 1e-7)))  # XSlim's: noise / signal power
        norms = np.linalg.norm(q) * np.linalg.norm(f)
        self.cos.append(float(q @ f / norms) if norms > 0 else float(np.array_equal(q, f)))
        self.sq_err += float(err @ err)
        self.count += f.size
        self.max_err = max(self.max_err, float(np.max(np.abs(err)))) if f.size else self.max_err
        for rng, v in ((self.q_range, q), (self.f_range, f)):
            if v.size:
                rng[0], rng[1] = min(rng[0], float(v.min())), max(rng[1], float(v.max()))
        step = max(1, f.size // self.KEEP)
        self.kept.append(f[::step].astype(np.float32))

    def hist(self) -> list[int]:
        lo, hi = self.f_range
        values = np.concatenate(self.kept) if self.kept else np.zeros(0, np.float32)
        counts = np.histogram(values, HIST_BINS, range=(lo, hi if hi > lo else lo + 1))[0]
        return [int(c) for c in counts]


def analyze(fp32: ModelLike, int8: ModelLike, samples: Sequence[Inputs]) -> AnalysisReport:
    """Runs both models in pyrt on `samples` and compares every quantized tensor."""
    fp32_proto, int8_proto = _proto(fp32), _proto(int8)
    producer = {o: n for n in fp32_proto.graph.node for o in n.output}
    fp32_names = set(producer) | {i.name for i in fp32_proto.graph.input}
    quantized = quantized_tensors(int8_proto, fp32_names)
    outputs = [o.name for o in fp32_proto.graph.output]
    read_fp32 = LayerValues(fp32_proto, [q.tensor for q in quantized] + outputs)
    read_int8 = LayerValues(int8_proto, [q.codes for q in quantized] + outputs)
    stats = {q.tensor: _Stats() for q in quantized}
    local = {q.tensor: _Stats() for q in quantized}
    out_stats = {name: _Stats() for name in outputs}
    top1: dict[str, list[bool]] = {name: [] for name in outputs}
    for feeds in samples:
        f, q = read_fp32(feeds), read_int8(feeds)
        for qt in quantized:
            value = f[qt.tensor].astype(np.float64)
            stats[qt.tensor].add((q[qt.codes].astype(np.float64) - qt.zero) * qt.scale, value)
            info = np.iinfo(qt.dtype)
            codes = np.clip(np.rint(value / qt.scale) + qt.zero, info.min, info.max)
            local[qt.tensor].add((codes - qt.zero) * qt.scale, value)
        for name in outputs:
            out_stats[name].add(q[name], f[name])
            if f[name].ndim == 2:
                top1[name].append(np.array_equal(f[name].argmax(-1), q[name].argmax(-1)))
    rows = []
    for position, qt in enumerate(quantized):
        st, node = stats[qt.tensor], producer.get(qt.tensor)
        rows.append(
            TensorStats(
                qt.tensor,
                f"{node.name}[{node.op_type}]" if node is not None else "input",
                float(np.mean(st.snr)),
                st.sq_err / max(st.count, 1),
                float(np.mean(st.cos)),
                float(np.mean(local[qt.tensor].snr)),
                *st.q_range,
                *st.f_range,
                st.hist(),
                position,
            )
        )
    out_rows = [
        OutputStats(
            name,
            float(np.mean(st.cos)),
            float(np.mean(st.snr)),
            st.max_err,
            float(np.mean(top1[name])) if len(top1[name]) == len(samples) else None,
        )
        for name, st in out_stats.items()
    ]
    rows.sort(key=lambda r: r.snr, reverse=True)
    suggestion, reasons = _suggest(rows, int8_proto, producer)
    return AnalysisReport(rows, out_rows, suggestion, len(samples), reasons)


def _suggest(
    rows: list[TensorStats], int8: onnx.ModelProto, producer: dict[str, onnx.NodeProto]
) -> tuple[list[str], dict[str, str]]:
    """Nodes to keep in FP32, for every flagged tensor whose error is mostly added near it.

    Either its own quantization adds it (local SNR): then the nodes that quantize it, its
    producer and readers when they run int8; or the int8 nodes since the nearest analyzed
    tensors upstream add it (SNR jumps): those nodes (usually the producer, a layer whose
    input scale crushes what matters to it)."""
    snr = {r.tensor: r.snr for r in rows}
    dq_source = {
        n.output[0]: n.input[0] for n in int8.graph.node if n.op_type == "DequantizeLinear"
    }
    q_source = {n.output[0]: n.input[0] for n in int8.graph.node if n.op_type == "QuantizeLinear"}
    int8_reads: dict[str, set[str]] = {}  # node -> FP32 tensors it reads as int8
    for n in int8.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            tensors = {q_source.get(dq_source[i]) for i in n.input if i in dq_source}
            if tensors - {None}:
                int8_reads[n.name] = tensors - {None}
    suggestion: dict[str, str] = {}
    for r in rows:
        if not r.flagged:
            continue
        why = f"'{r.tensor}' gets SNR {r.snr:.3f}"
        if r.local_snr >= 0.5 * r.snr:
            nodes = [name for name, tensors in int8_reads.items() if r.tensor in tensors]
            node = producer.get(r.tensor)
            if node is not None and node.name in int8_reads:
                nodes.insert(0, node.name)
            for name in nodes:
                suggestion.setdefault(name, f"{why}, {r.local_snr:.3f} from its own scale")
            continue
        between, upstream = _since_analyzed(r.tensor, producer, snr)
        inherited = max((snr[t] for t in upstream), default=0.0)
        if r.snr - inherited >= 0.5 * r.snr:
            for name in between:
                if name in int8_reads:
                    suggestion.setdefault(
                        name, f"{why}, {inherited:.3f} from the quantized tensors before it"
                    )
    return list(suggestion), suggestion


def _since_analyzed(
    tensor: str, producer: dict[str, onnx.NodeProto], analyzed: dict[str, float]
) -> tuple[list[str], set[str]]:
    """The nodes between `tensor` and the nearest analyzed tensors upstream, and those."""
    nodes, upstream, todo, seen = [], set(), [tensor], set()
    while todo:
        t = todo.pop()
        node = producer.get(t)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        nodes.append(node.name)
        for i in node.input:
            if i in analyzed:
                upstream.add(i)
            elif i:
                todo.append(i)
    return nodes, upstream


# --- writing -----------------------------------------------------------------------------


def snr_plot(report: AnalysisReport) -> bytes:
    """PNG: SNR (log scale) of every quantized tensor, in graph order."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PyrtError("the analysis plot needs matplotlib: pip install 'pyrt[quantize]'") from exc

    rows = sorted(report.rows, key=lambda r: r.position, reverse=True)  # graph order, top down
    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.22 * len(rows) + 1)), dpi=100)
    try:
        values = [max(r.snr, 1e-8) for r in rows]
        colors = ["#d62728" if r.flagged else "#1f77b4" for r in rows]
        ax.barh(range(len(rows)), values, color=colors)
        ax.set_yticks(range(len(rows)), [r.tensor[-40:] for r in rows], fontsize=7)
        ax.set_xscale("log")
        ax.axvline(SNR_LIMIT, color="#d62728", linestyle="--", linewidth=1)
        ax.set_xlabel("SNR (noise / signal power, log scale); red: flagged")
        ax.set_title(f"per-tensor quantization error, {report.samples} samples")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def _sparkline(hist: list[int]) -> str:
    top = max(hist) or 1
    bars = "".join(
        f'<rect x="{2 * i}" y="{20 - 20 * h / top:.1f}" width="2" height="{20 * h / top:.1f}"/>'
        for i, h in enumerate(hist)
    )
    return f'<svg width="{2 * len(hist)}" height="20" class="hist">{bars}</svg>'


def html_page(report: AnalysisReport, png: bytes) -> str:
    """A self-contained page: inline CSS, the SNR plot as an inline PNG, the tables."""
    e = html.escape
    rows = []
    for r in report.rows:
        cls = ' class="flag"' if r.flagged else ""
        rows.append(
            f"<tr{cls}><td>{e(r.op)}</td><td>{e(r.tensor)}</td><td>{r.snr:.4f}</td>"
            f"<td>{r.local_snr:.4f}</td><td>{r.mse:.4g}</td><td>{r.cosine:.4f}</td>"
            f"<td>{r.q_min:.3f}, {r.q_max:.3f}</td><td>{r.f_min:.3f}, {r.f_max:.3f}</td>"
            f"<td>{_sparkline(r.hist)}</td></tr>"
        )
    outs = "".join(
        f"<tr><td>{e(o.name)}</td><td>{o.cosine:.5f}</td><td>{o.snr:.5f}</td>"
        f"<td>{o.max_abs_err:.4g}</td>"
        f"<td>{'-' if o.argmax_agree is None else f'{100 * o.argmax_agree:.1f}%'}</td></tr>"
        for o in report.outputs
    )
    if report.suggestion:
        items = "".join(
            f"<li><code>{e(n)}</code>: {e(report.reasons.get(n, ''))}</li>"
            for n in report.suggestion
        )
        suggestion = (
            f"<p>Keep these nodes in FP32 (<code>ignore_op_names</code>):</p><ul>{items}</ul>"
        )
    else:
        suggestion = "<p>Nothing to keep in FP32.</p>"
    image = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pyrt quantization analysis</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #eee; }} td:nth-child(1), td:nth-child(2) {{ text-align: left; }}
tr.flag td {{ background: #fde2e2; color: #a00; font-weight: bold; }}
svg.hist rect {{ fill: #1f77b4; }}
</style></head><body>
<h1>Quantization analysis</h1>
<p>{report.samples} samples, FP32 and INT8 both run in pyrt. {len(report.rows)} quantized
tensors, <b>{len(report.flagged)} flagged</b>
(SNR &gt; {SNR_LIMIT} or cosine &lt; {COSINE_LIMIT}).</p>
<h2>Outputs</h2>
<table><tr><th>output</th><th>cosine</th><th>SNR</th><th>max abs err</th><th>top-1 agrees</th></tr>
{outs}</table>
<h2>Suggestion</h2>
{suggestion}
<h2>Per-tensor SNR</h2>
<img alt="per-tensor SNR plot" src="data:image/png;base64,{image}">
<h2>Tensors (worst first)</h2>
<table><tr><th>Op</th><th>Var</th><th>SNR</th><th>local SNR</th><th>MSE</th><th>Cosine</th>
<th>Q.MinMax</th><th>F.MinMax</th><th>F.Hist</th></tr>
{"".join(rows)}</table>
</body></html>
"""


def write_report(report: AnalysisReport, stem: str | Path) -> dict[str, Path]:
    """Writes <stem>.report.md, <stem>.snr.png and <stem>.report.html; returns the paths."""
    stem = Path(stem)
    paths = {
        "markdown": stem.with_name(stem.name + ".report.md"),
        "png": stem.with_name(stem.name + ".snr.png"),
        "html": stem.with_name(stem.name + ".report.html"),
    }
    png = snr_plot(report)
    paths["markdown"].write_text(report.markdown(), encoding="utf-8")
    paths["png"].write_bytes(png)
    paths["html"].write_text(html_page(report, png), encoding="utf-8")
    return paths
