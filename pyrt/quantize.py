"""FP32 ONNX model + calibration data + an XSlim config -> a QDQ INT8 model (and its analysis).

    result = pyrt.quantize("cfg.json")                     # config path or dict
    result = pyrt.quantize(cfg, model="m.onnx", output="m.q.onnx")
    result.output, result.analysis                         # the model path, the AnalysisReport

Built on onnxruntime's quantizer: its pre-processing (`quant_pre_process`), its
calibrators (MinMax, Entropy, Percentile) and `quantize_static` / `quantize_dynamic`,
which insert the QDQ nodes. pyrt adds the config (pyrt/quant_config.py), the data
loading XSlim does (images, npy, raw, its ImageNet pre-processing, user functions), the
choice of what stays FP32 (precision levels, ignore lists, truncation, custom
subgraphs), an MSE calibration built on onnxruntime's histograms, and the analysis
(pyrt/analyze.py). See docs/quantize.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .errors import ConfigError, ModelError, PyrtError
from .quant_config import (
    BoundInput,
    QuantConfig,
    bind_inputs,
    check_file,
    model_inputs,
    parse_config,
)

Sample = dict[str, np.ndarray]

# Operators kept in FP32 at precision_level 1 (sensitive non-linear ops) and, in addition,
# at level 2 (element-wise arithmetic; also the first and last weighted layer).
LEVEL1_FP32 = ("Softmax", "LayerNormalization", "InstanceNormalization", "Sigmoid", "Resize")
LEVEL2_FP32 = (*LEVEL1_FP32, "Add", "Mul", "Where", "CumSum", "LeakyRelu")
WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
QUANTIZED_MARKERS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")


@dataclass
class QuantizeResult:
    output: Path  # the INT8 model written
    model: onnx.ModelProto
    excluded: list[str]  # nodes kept in FP32, and why: "name (reason)"
    analysis: Any = None  # pyrt.analyze.AnalysisReport when analysis ran
    reports: dict[str, Path] = field(default_factory=dict)  # markdown, png, html
    notes: list[str] = field(default_factory=list)
    auto_excluded: list[str] = field(default_factory=list)  # added by auto_exclude


# --- data --------------------------------------------------------------------------------


def _image(path: str, channels: int) -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ConfigError(
            "file_type 'img' needs Pillow to read images: pip install 'pyrt[quantize]'"
        ) from exc
    try:
        with Image.open(path) as img:
            return img.convert("L" if channels == 1 else "RGB")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the image '{path}': {exc}") from exc


def _ordered(img: Any, color_format: str) -> np.ndarray:
    """HWC float32 in the configured channel order (XSlim reads BGR, as OpenCV does)."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        return arr[:, :, None]
    return arr[:, :, ::-1] if color_format == "bgr" else arr


def _normalize(hwc: np.ndarray, mean: list[float] | None, std: list[float] | None) -> np.ndarray:
    if mean is not None:
        hwc = hwc - np.asarray(mean, np.float32)
    if std is not None:
        hwc = hwc / np.asarray(std, np.float32)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))[None].astype(np.float32)


def _center_crop(img: Any, height: int, width: int, rounding: Callable[[float], int]) -> Any:
    left, top = rounding((img.width - width) / 2), rounding((img.height - height) / 2)
    return img.crop((left, top, left + width, top + height))


def load_image(path: str, bound: BoundInput) -> np.ndarray:
    """One image as XSlim reads it: [1, C, H, W] float32, (x - mean) / std per channel."""
    from PIL import Image

    p = bound.params
    channels, height, width = bound.shape[1], bound.shape[2], bound.shape[3]
    img = _image(path, channels)
    if p.preprocess_file == "PT_IMAGENET":
        # torchvision: resize the short side to H / 0.875 (bilinear), center crop H x H.
        short = int(height / 0.875)
        w, h = img.size
        size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
        img = _center_crop(img.resize(size, Image.BILINEAR), height, height, round)
    elif p.preprocess_file == "IMAGENET":
        # MLPerf style: scale to 1/0.875 of the output keeping the aspect ratio, center crop.
        new_h, new_w = int(100.0 * height / 87.5), int(100.0 * width / 87.5)
        w, h = img.size
        size = (new_w, int(new_h * h / w)) if h > w else (int(new_w * w / h), new_h)
        img = _center_crop(img.resize(size, Image.BOX), height, width, int)
    elif img.size != (width, height):
        img = img.resize((width, height), Image.BOX)  # area averaging, as cv2.INTER_AREA
    return _normalize(_ordered(img, p.color_format), p.mean_value, p.std_value)


def _custom_function(bound: BoundInput) -> Callable:
    module_file, _, func_name = bound.params.preprocess_file.rpartition(":")
    where = f"{bound.params.where}.preprocess_file"
    spec = importlib.util.spec_from_file_location(Path(module_file).stem, module_file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"config field '{where}': cannot load '{module_file}' as Python")
    module = importlib.util.module_from_spec(spec)
    folder = str(Path(module_file).resolve().parent)
    sys.path.insert(0, folder)  # as XSlim: the script may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(
            f"config field '{where}': importing '{module_file}' failed: {exc!r}"
        ) from exc
    finally:
        sys.path.remove(folder)
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise ConfigError(f"config field '{where}': '{module_file}' has no function '{func_name}'")
    return fn


class CalibrationData:
    """The calibration samples a config describes, loaded once, in list order."""

    def __init__(self, cfg: QuantConfig, bound: list[BoundInput]):
        self.bound = bound
        single_img = len(bound) == 1 and bound[0].params.file_type == "img"
        self.batch = (
            cfg.calibration_batch_size
            if cfg.calibration_batch_size > 1
            else (bound[0].shape[0] or 1)
            if single_img
            else 1
        )
        longest = max(len(b.files) for b in bound)
        self.count = min(longest // self.batch, cfg.calibration_step)
        if self.count == 0:
            raise ConfigError(
                f"config field 'calibration_parameters.calibration_batch_size': batches of "
                f"{self.batch} need at least {self.batch} files, the lists have {longest}"
            )
        self._custom = {
            b.name: _custom_function(b)
            for b in bound
            if b.params.preprocess_file not in (None, "PT_IMAGENET", "IMAGENET")
        }
        self._samples: list[Sample] = []

    def _files(self, bound: BoundInput, index: int) -> list[str]:
        if len(bound.files) == 1:
            return bound.files  # one file serves every sample (as XSlim)
        return bound.files[index * self.batch : (index + 1) * self.batch]

    def _load(self, bound: BoundInput, files: list[str]) -> np.ndarray:
        kind = bound.params.file_type
        if bound.name in self._custom:
            params = bound.params.as_dict() | {"input_shape": bound.shape}
            try:
                value = self._custom[bound.name](files, params)
            except PyrtError:
                raise
            except Exception as exc:
                raise ConfigError(
                    f"config field '{bound.params.where}.preprocess_file': the function "
                    f"failed on {files}: {exc!r}"
                ) from exc
            if hasattr(value, "detach"):  # a torch.Tensor, as XSlim's functions return
                value = value.detach().cpu().numpy()
            arrays = [np.asarray(value)]
        elif kind == "img":
            arrays = [load_image(f, bound) for f in files]
        else:
            arrays = [self._load_array(bound, f) for f in files]
        try:
            value = np.concatenate(arrays, axis=0).astype(bound.dtype)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"calibration files {files} do not stack into a batch: {exc}"
            ) from exc
        want = [
            self.batch if i == 0 and len(bound.files) > 1 else d for i, d in enumerate(bound.shape)
        ]
        if value.ndim != len(want) or any(
            d is not None and d != g for d, g in zip(want, value.shape)
        ):
            raise ConfigError(
                f"calibration data for input '{bound.name}' from {files} has shape "
                f"{list(value.shape)}, the model expects {['?' if d is None else d for d in want]}"
            )
        return value

    def _load_array(self, bound: BoundInput, path: str) -> np.ndarray:
        try:
            if bound.params.file_type == "npy":
                arr = np.load(path, allow_pickle=False)
            else:
                arr = np.fromfile(path, dtype=np.float32)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the calibration file '{path}': {exc}") from exc
        if bound.params.file_type == "raw":
            shape = [1, *bound.shape[1:]]
            if arr.size != int(np.prod(shape)):
                raise ConfigError(
                    f"raw file '{path}' holds {arr.size} float32 values, input "
                    f"'{bound.name}' {shape} needs {int(np.prod(shape))}"
                )
            return arr.reshape(shape)
        if arr.ndim == len(bound.shape) - 1:
            arr = arr[None]  # a sample without its batch dimension
        return arr

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Sample:
        while len(self._samples) <= index:
            i = len(self._samples)
            self._samples.append({b.name: self._load(b, self._files(b, i)) for b in self.bound})
        return self._samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(self.count))


CHUNK = 16  # samples onnxruntime holds the activations of at once while calibrating


def _chunk(count: int) -> int:
    """The largest divisor of `count` up to CHUNK (onnxruntime needs equal chunks)."""
    return max(d for d in range(1, min(CHUNK, count) + 1) if count % d == 0)


class _Reader:
    """onnxruntime's CalibrationDataReader over CalibrationData, with a progress bar.

    onnxruntime calibrates chunk by chunk (`set_range`), so it keeps the activations of
    one chunk in memory, not of every sample."""

    def __init__(self, data: CalibrationData | list[Sample], label: str, progress: bool):
        self.data, self.label, self.progress = data, label, progress
        self.index, self.end, self.start = 0, len(data), time.perf_counter()

    def set_range(self, start_index: int, end_index: int) -> None:
        self.index, self.end = start_index, min(end_index, len(self.data))

    def get_next(self) -> Sample | None:
        n = len(self.data)
        if self.index >= self.end:
            if self.progress and n and self.end == n:
                _bar(self.label, n, n, time.perf_counter() - self.start, final=True)
            return None
        try:
            sample = self.data[self.index]
        except Exception:
            if self.progress and sys.stderr.isatty():
                sys.stderr.write("\n")  # the error goes below the bar, not into it
            raise
        self.index += 1
        if self.progress and sys.stderr.isatty():
            _bar(self.label, self.index, n, time.perf_counter() - self.start, final=False)
        return sample

    def chunks(self) -> Iterator[_Reader]:
        """This reader over successive chunks (for calibrators driven directly)."""
        step = _chunk(len(self.data))
        for start in range(0, len(self.data), step):
            self.set_range(start, start + step)
            yield self

    def __iter__(self):
        return iter(self.get_next, None)

    def __len__(self) -> int:
        return len(self.data)


def _bar(label: str, done: int, total: int, seconds: float, final: bool) -> None:
    width = 30
    filled = width * done // max(total, 1)
    line = f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {seconds:.1f}s"
    sys.stderr.write(line + ("\n" if final else ""))
    sys.stderr.flush()


# --- graph selections --------------------------------------------------------------------


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        self.nodes = list(model.graph.node)
        self.consts = {t.name for t in model.graph.initializer}
        self.inputs = {i.name for i in model_inputs(model)}
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for i in node.input:
                self.consumers.setdefault(i, []).append(node)
        self.tensors = self.inputs | set(self.producer) | self.consts

    def upstream(self, tensors: set[str]) -> set[str]:
        """Names of the nodes that compute `tensors` (their transitive producers)."""
        seen, todo = set(), [self.producer[t] for t in tensors if t in self.producer]
        while todo:
            node = todo.pop()
            if node.name in seen:
                continue
            seen.add(node.name)
            todo += [self.producer[i] for i in node.input if i in self.producer]
        return seen

    def downstream(self, tensors: set[str]) -> set[str]:
        """Names of the nodes that read `tensors`, directly or through other nodes."""
        seen, todo = set(), [n for t in tensors for n in self.consumers.get(t, [])]
        while todo:
            node = todo.pop()
            if node.name in seen:
                continue
            seen.add(node.name)
            todo += [n for o in node.output for n in self.consumers.get(o, [])]
        return seen


def _check_tensors(graph: _Graph, names: list[str], where: str) -> None:
    missing = [n for n in names if n not in graph.tensors]
    if missing:
        raise ConfigError(f"config field '{where}': no tensor {missing} in the model")


def truncated_nodes(graph: _Graph, names: list[str], where: str) -> set[str]:
    """The nodes after the `truncate_var_names` cut; the cut must split the graph in two."""
    _check_tensors(graph, names, where)
    not_computed = [n for n in names if n not in graph.producer]
    if not_computed:
        raise ConfigError(
            f"config field '{where}': {not_computed} are model inputs or constants, not "
            "tensors a node computes; nothing comes before them to quantize"
        )
    first = graph.upstream(set(names))
    second = {n.name for n in graph.nodes} - first
    if not second:
        raise ConfigError(
            f"config field '{where}': cutting at {names} leaves nothing after the cut; the "
            "tensors must split the graph into two parts"
        )
    cut = set(names)
    for node in graph.nodes:
        if node.name in second:
            leaks = [i for i in node.input if i in graph.producer and i not in cut]
            leaks = [i for i in leaks if graph.producer[i].name in first]
            if leaks:
                raise ConfigError(
                    f"config field '{where}': {names} do not split the graph in two: node "
                    f"'{node.name}' after the cut also reads {leaks} from before it; add "
                    "those tensors to the list"
                )
    return second


def subgraph_nodes(graph: _Graph, inputs: list[str], outputs: list[str], where: str) -> set[str]:
    """Nodes on a path from the boundary inputs to the boundary outputs (inclusive)."""
    _check_tensors(graph, inputs, f"{where}.input_names")
    _check_tensors(graph, outputs, f"{where}.output_names")
    between = graph.downstream(set(inputs)) & graph.upstream(set(outputs))
    if not between:
        raise ConfigError(
            f"config field '{where}': no node lies between input_names {inputs} and "
            f"output_names {outputs}"
        )
    return between


def _level_excluded(nodes: list[onnx.NodeProto], level: int, weighted: list[str]) -> dict[str, str]:
    if level == 0:
        return {}
    ops = LEVEL1_FP32 if level == 1 else LEVEL2_FP32
    out = {n.name: f"precision_level {level}: {n.op_type}" for n in nodes if n.op_type in ops}
    if level == 2:
        for name in weighted[:1] + weighted[-1:]:
            out[name] = "precision_level 2: first/last weighted layer"
    return out


@dataclass
class Plan:
    excluded: dict[str, str]  # node -> why it stays FP32
    custom_tensors: list[tuple[Any, set[str]]]  # (CustomSetting, the tensors it covers)
    notes: list[str]


def plan(cfg: QuantConfig, model: onnx.ModelProto) -> Plan:
    """Which nodes stay FP32 (and why), what each custom_setting covers; names are checked
    against the model as given."""
    graph = _Graph(model)
    names = {n.name for n in graph.nodes}
    notes = []
    w = "quantization_parameters"
    unknown = [n for n in cfg.ignore_op_names if n not in names]
    if unknown:
        raise ConfigError(f"config field '{w}.ignore_op_names': no node {unknown} in the model")
    weighted = [n.name for n in graph.nodes if n.op_type in WEIGHTED]
    excluded = _level_excluded(graph.nodes, cfg.precision_level, weighted)
    custom_tensors = []
    for i, custom in enumerate(cfg.custom_setting):
        inside = subgraph_nodes(graph, custom.input_names, custom.output_names, custom.where)
        local = [n for n in graph.nodes if n.name in inside]
        custom_tensors.append((custom, {t for n in local for t in [*n.input, *n.output]}))
        if custom.precision_level is not None:
            for name in inside:
                excluded.pop(name, None)
            level = _level_excluded(
                local, custom.precision_level, [n for n in weighted if n in inside]
            )
            excluded.update({k: f"custom_setting[{i}] {v}" for k, v in level.items()})
    types = set(cfg.ignore_op_types)
    for node in graph.nodes:
        if node.op_type in types:
            excluded[node.name] = "ignore_op_types"
    unmatched = types - {n.op_type for n in graph.nodes}
    if unmatched:
        notes.append(f"{w}.ignore_op_types {sorted(unmatched)}: no such node in this model")
    for name in cfg.ignore_op_names:
        excluded[name] = "ignore_op_names"
    if cfg.truncate_var_names:
        for name in truncated_nodes(graph, cfg.truncate_var_names, f"{w}.truncate_var_names"):
            excluded[name] = "after truncate_var_names"
    return Plan(excluded, custom_tensors, notes)


def fold_batchnorm(model: onnx.ModelProto) -> onnx.ModelProto:
    """Conv -> BatchNormalization (inference, constant parameters) becomes one Conv with the
    BN's output name; every other node and tensor keeps its name."""
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer}
    consumers: dict[str, int] = {}
    for node in g.node:
        for i in node.input:
            consumers[i] = consumers.get(i, 0) + 1
    outputs = {o.name for o in g.output}
    producer = {o: n for n in g.node for o in n.output}
    drop = []
    for bn in g.node:
        conv = producer.get(bn.input[0]) if bn.op_type == "BatchNormalization" else None
        if (
            conv is None
            or conv.op_type != "Conv"
            or len(bn.output) != 1
            or consumers.get(bn.input[0]) != 1
            or bn.input[0] in outputs
            or not all(i in inits for i in [*bn.input[1:5], *conv.input[1:]])
        ):
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (numpy_helper.to_array(inits[i]) for i in bn.input[1:5])
        w = numpy_helper.to_array(inits[conv.input[1]])
        b = numpy_helper.to_array(inits[conv.input[2]]) if len(conv.input) > 2 else 0.0
        k = gamma / np.sqrt(var + eps)
        w_name, b_name = f"{conv.name}.folded_w", f"{conv.name}.folded_b"
        g.initializer.append(
            numpy_helper.from_array((w * k.reshape(-1, 1, 1, 1)).astype(w.dtype), w_name)
        )
        g.initializer.append(
            numpy_helper.from_array(((b - mean) * k + beta).astype(w.dtype), b_name)
        )
        del conv.input[1:]
        conv.input.extend([w_name, b_name])
        conv.output[0] = bn.output[0]
        drop.append(bn)
    for bn in drop:
        g.node.remove(bn)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return out


# --- calibration -------------------------------------------------------------------------


def _ort_method(kind: str):
    from onnxruntime.quantization import CalibrationMethod

    return {
        "kl": CalibrationMethod.Entropy,
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "mse": CalibrationMethod.Percentile,  # MSE searches onnxruntime's histograms
    }[kind]


def resolve_type(kind: str) -> str:
    """`default` is percentile clipping at max_percentile (robust to rare outliers)."""
    return "percentile" if kind == "default" else kind


def calibrate_ranges(
    model_path: str,
    data: CalibrationData | list[Sample],
    kind: str,
    percentile: float,
    symmetric: bool,
    progress: bool,
) -> dict[str, tuple[float, float]]:
    """Per-tensor (min, max) from one of onnxruntime's calibrators (mse: searched on its
    histograms for the range that minimizes the 8-bit quantization error)."""
    from onnxruntime.quantization import create_calibrator

    kind = resolve_type(kind)
    # MSE searches a histogram of the values themselves (symmetric would histogram |x|).
    options: dict[str, Any] = {"symmetric": symmetric and kind != "mse"}
    if kind == "percentile":
        options["percentile"] = 100.0 * percentile
    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(
            Path(model_path),
            None,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_ort_method(kind),
            extra_options=options,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # onnxruntime prints its settings
            for chunk in _Reader(data, f"calibrating ({kind})", progress).chunks():
                calibrator.collect_data(chunk)
            if kind == "mse":
                return {
                    name: _mse_range(h[0], h[1], float(h[2]), float(h[3]), symmetric)
                    for name, h in calibrator.collector.histogram_dict.items()
                }
            computed = calibrator.compute_data()
    return {name: tuple(float(v) for v in r.range_value) for name, r in computed.data.items()}


def _mse_range(
    hist: np.ndarray, edges: np.ndarray, lo: float, hi: float, symmetric: bool
) -> tuple[float, float]:
    centers = (edges[:-1] + edges[1:]) / 2
    counts = hist.astype(np.float64)
    best, best_err = (lo, hi), np.inf
    for t in np.linspace(0.02, 1.0, 50):
        a, b = (
            (-t * max(-lo, hi), t * max(-lo, hi)) if symmetric else (min(lo * t, 0), max(hi * t, 0))
        )
        if b <= a:
            continue
        step = (b - a) / 255
        q = np.clip(np.rint((centers - a) / step), 0, 255) * step + a
        err = float(counts @ (centers - q) ** 2)
        if err < best_err:
            best, best_err = (a, b), err
    return best


# --- the pipeline ------------------------------------------------------------------------


def _load_model(model: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        return onnx.load(str(model))
    except Exception as exc:
        raise ModelError(f"cannot load the ONNX model '{model}': {exc}") from exc


def _named(model: onnx.ModelProto) -> onnx.ModelProto:
    """Unnamed nodes get unique names (op type and position): exclusion works by name."""
    if all(n.name for n in model.graph.node) and len({n.name for n in model.graph.node}) == len(
        model.graph.node
    ):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    taken = {n.name for n in out.graph.node if n.name}
    seen: set[str] = set()
    for i, node in enumerate(out.graph.node):
        if not node.name or node.name in seen:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
        seen.add(node.name)
    return out


def _onnxruntime_quantization():
    try:
        from onnxruntime import quantization
    except ImportError as exc:
        raise PyrtError(
            "pyrt quantize needs onnxruntime's quantizer: pip install 'pyrt[quantize]'"
        ) from exc
    return quantization


def quantize(
    config: str | Path | dict | QuantConfig,
    model: str | Path | onnx.ModelProto | None = None,
    output: str | Path | None = None,
    *,
    auto_exclude: bool = False,
    progress: bool = True,
) -> QuantizeResult:
    """Quantizes an FP32 model as an XSlim config says; writes the INT8 QDQ model (and,
    with analysis_enable, its report next to it). Raises ConfigError for bad configs.

    `model` / `output` override the config's model and output path. `auto_exclude`
    keeps the nodes the analysis suggests in FP32 and quantizes again (up to 3 rounds,
    while the suggestion names new nodes); `result.auto_excluded` lists them."""
    cfg = config if isinstance(config, QuantConfig) else parse_config(config)
    if auto_exclude:
        cfg = dataclasses.replace(cfg, analysis_enable=True)
    if cfg.analysis_enable:
        try:
            import matplotlib  # noqa: F401  (the report's plot; checked before any work)
        except ImportError as exc:
            raise ConfigError(
                "config field 'quantization_parameters.analysis_enable': the analysis needs "
                "matplotlib: pip install 'pyrt[quantize]', or set it to false"
            ) from exc
    result = _quantize_once(cfg, model, output, progress)
    added: list[str] = []
    for _ in range(3):
        if not auto_exclude or result.analysis is None:
            break
        new = [n for n in result.analysis.suggestion if n not in cfg.ignore_op_names]
        if not new:
            break
        added += new
        cfg = dataclasses.replace(cfg, ignore_op_names=[*cfg.ignore_op_names, *new])
        result = _quantize_once(cfg, model, output, progress)
    result.auto_excluded = added
    return result


def _quantize_once(
    cfg: QuantConfig,
    model: str | Path | onnx.ModelProto | None,
    output: str | Path | None,
    progress: bool,
) -> QuantizeResult:
    ortq = _onnxruntime_quantization()
    source = model if model is not None else cfg.onnx_model
    if source is None:
        raise ConfigError(
            "config field 'model_parameters.onnx_model' is required (or pass the model)"
        )
    if model is None:
        check_file(source, "model_parameters.onnx_model")
    proto = _named(_load_model(source))
    quantized = sorted({n.op_type for n in proto.graph.node} & set(QUANTIZED_MARKERS))
    if quantized or any(n.op_type.startswith("QLinear") for n in proto.graph.node):
        raise ModelError(
            f"the model is already quantized (it has {quantized or 'QLinear*'} nodes); "
            "quantize the FP32 original"
        )
    if cfg.opset is not None:
        try:
            proto = onnx.version_converter.convert_version(proto, cfg.opset)
        except Exception as exc:
            raise ConfigError(
                f"config field 'model_parameters.opset': converting to opset {cfg.opset} "
                f"failed: {exc}"
            ) from exc
    out_path = _output_path(cfg, source, output)
    if isinstance(source, str | Path) and out_path.resolve() == Path(source).resolve():
        raise ConfigError(
            f"the output '{out_path}' is the FP32 model itself; choose another output_prefix, "
            "working_dir or -o"
        )
    decided = plan(cfg, proto)
    excluded, notes = decided.excluded, cfg.notes + decided.notes
    if not cfg.skip_onnxsim:
        proto = fold_batchnorm(proto)
    dynamic = cfg.precision_level == 3
    bound = bind_inputs(cfg, proto) if (cfg.input_parameters or not dynamic) else []
    data = CalibrationData(cfg, bound) if bound else None

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, pre = str(Path(tmp) / "fp32.onnx"), str(Path(tmp) / "pre.onnx")
        onnx.save(proto, src)
        try:
            # onnxruntime's optimizer would rename nodes (MatMul + Add -> Gemm): skipped, so
            # ignore_op_names and the analysis speak of the model's own names.
            ortq.quant_pre_process(src, pre, skip_optimization=True, skip_symbolic_shape=True)
        except Exception as exc:
            raise ModelError(f"onnxruntime's pre-processing failed on the model: {exc}") from exc
        prepared = onnx.load(pre)
        kept = {n.name for n in prepared.graph.node}
        to_exclude = sorted(set(excluded) & kept)  # a folded BatchNormalization is gone
        if dynamic:
            _quantize_dynamic(ortq, cfg, pre, out_path, to_exclude)
        else:
            _quantize_static(ortq, cfg, pre, out_path, to_exclude, data, decided, progress)
    result = QuantizeResult(
        out_path,
        onnx.load(str(out_path)),
        [f"{k} ({excluded[k]})" for k in to_exclude],
        notes=notes,
    )
    if cfg.analysis_enable and data is not None:
        from .analyze import analyze, write_report

        samples = [data[i] for i in range(min(cfg.analysis_samples, len(data)))]
        result.analysis = analyze(prepared, result.model, samples)
        result.reports = write_report(result.analysis, out_path.with_suffix(""))
    return result


def _output_path(cfg: QuantConfig, source: object, output: str | Path | None) -> Path:
    if output is not None:
        return Path(output)
    stem = Path(source).stem if isinstance(source, str | Path) else "model"
    if cfg.working_dir is not None:
        folder = Path(cfg.working_dir)
    else:
        folder = Path(source).parent if isinstance(source, str | Path) else Path.cwd()
    return folder / f"{cfg.output_prefix or stem + '.q'}.onnx"


def _quantize_static(
    ortq: Any,
    cfg: QuantConfig,
    pre: str,
    out_path: Path,
    exclude: list[str],
    data: CalibrationData,
    decided: Plan,
    progress: bool,
) -> None:
    symmetric = cfg.activation_type == "int8"
    kind = resolve_type(cfg.calibration_type)
    overrides: dict[str, tuple[float, float]] = {}
    if kind == "mse":
        overrides = calibrate_ranges(pre, data, "mse", cfg.max_percentile, symmetric, progress)
    for custom, tensors in decided.custom_tensors:
        if custom.calibration_type is None and custom.max_percentile is None:
            continue
        local_kind = custom.calibration_type or cfg.calibration_type
        ranges = calibrate_ranges(
            pre, data, local_kind, custom.max_percentile or cfg.max_percentile, symmetric, progress
        )
        overrides.update({t: r for t, r in ranges.items() if t in tensors})
    options: dict[str, Any] = {
        "ActivationSymmetric": symmetric,
        "CalibPercentile": 100.0 * cfg.max_percentile,
        # LayerNormalization's 1-D scale is per channel along its only axis (onnxruntime's
        # default axis 1 does not exist there: it would warn and fall back to per tensor).
        "QDQOpTypePerChannelSupportToAxis": {"LayerNormalization": -1},
    }
    if overrides:
        options["TensorQuantOverrides"] = {
            t: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
            for t, (lo, hi) in overrides.items()
        }
    # When MSE set every range, onnxruntime's own pass only needs one sample.
    reader_data = [data[0]] if kind == "mse" else data
    options["CalibStridedMinMax"] = _chunk(len(reader_data))  # chunks, for any calibrator
    types = {"uint8": ortq.QuantType.QUInt8, "int8": ortq.QuantType.QInt8}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ortq.quantize_static(
                pre,
                str(out_path),
                _Reader(reader_data, f"calibrating ({kind})", progress and kind != "mse"),
                quant_format=ortq.QuantFormat.QDQ,
                per_channel=cfg.per_channel,
                activation_type=types[cfg.activation_type],
                weight_type=ortq.QuantType.QInt8,
                nodes_to_exclude=exclude,
                calibrate_method=_ort_method("minmax" if kind == "mse" else kind),
                extra_options=options,
            )
    except PyrtError:
        raise
    except Exception as exc:
        raise ModelError(f"onnxruntime's quantize_static failed: {exc}") from exc


def _quantize_dynamic(
    ortq: Any, cfg: QuantConfig, pre: str, out_path: Path, exclude: list[str]
) -> None:
    try:
        ortq.quantize_dynamic(
            pre,
            str(out_path),
            per_channel=cfg.per_channel,
            weight_type=ortq.QuantType.QInt8,
            nodes_to_exclude=exclude,
        )
    except Exception as exc:
        raise ModelError(f"onnxruntime's quantize_dynamic failed: {exc}") from exc


def analysis_samples(
    fp32: str | Path | onnx.ModelProto,
    data_lists: list[str | Path],
    config: str | Path | dict | None,
    count: int,
) -> list[Sample]:
    """Samples for `analyze`: read as `config` reads calibration data, or from data lists
    (one per model input, in order; npy/raw/img by the first file's extension)."""
    if not isinstance(count, int) or count < 1:
        raise ConfigError(f"the analysis needs a positive number of samples, got {count!r}")
    if config is not None:
        cfg = parse_config(config)
    elif data_lists:
        entries = []
        for path in data_lists:
            first = next((ln.strip() for ln in _lines(path) if ln.strip()), "")
            suffix = Path(first).suffix.lower()
            kind = "npy" if suffix == ".npy" else "raw" if suffix in (".raw", ".bin") else "img"
            entries.append({"file_type": kind, "data_list_path": str(path)})
        cfg = parse_config({"calibration_parameters": {"input_parameters": entries}})
    else:
        raise ConfigError("analyze needs data: --data list.txt (one per input) or --config")
    cfg = dataclasses.replace(cfg, calibration_step=count, calibration_batch_size=1)
    data = CalibrationData(cfg, bind_inputs(cfg, _load_model(fp32)))
    return list(data)


def _lines(path: str | Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the data list '{path}': {exc}") from exc
