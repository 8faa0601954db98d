"""The quantization config: XSlim's / XQuant's JSON schema, read unchanged and checked.

`parse_config` takes a path or a dict and returns a `QuantConfig`; every mistake is a
`ConfigError` naming the field (`calibration_parameters.input_parameters[0].file_type`)
and what was expected. Unknown keys are refused with the nearest valid name. Paths in
the config are relative to the current directory (as in XSlim); the files a data list
names are relative to the list's folder. Binding the config to the model's inputs is
`bind_inputs`.

pyrt reads one key XSlim does not: `pyrt_parameters` (per-channel weights, u8 or
symmetric s8 activations, how many samples the analysis runs on).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .errors import ConfigError

CALIBRATION_TYPES = ("default", "kl", "minmax", "percentile", "mse")
FILE_TYPES = ("img", "npy", "raw")
COLOR_FORMATS = ("rgb", "bgr")
BUILTIN_PREPROCESS = ("PT_IMAGENET", "IMAGENET")
ACTIVATION_TYPES = ("uint8", "int8")


@dataclass
class InputParameters:
    """One entry of calibration_parameters.input_parameters (XSlim's defaults)."""

    input_name: str | None = None
    input_shape: list[int] | None = None
    dtype: str = "float32"
    file_type: str = "img"
    color_format: str = "bgr"
    mean_value: list[float] | None = None
    std_value: list[float] | None = None
    preprocess_file: str | None = None
    data_list_path: str | None = None
    where: str = ""  # the config path of this entry, for error messages

    def as_dict(self) -> dict[str, Any]:
        """The entry as XSlim hands it to a custom preprocess function."""
        return {k: v for k, v in self.__dict__.items() if k != "where"}


@dataclass
class CustomSetting:
    """A subgraph (between boundary tensors) with its own precision and calibration."""

    input_names: list[str]
    output_names: list[str]
    precision_level: int | None = None
    calibration_type: str | None = None
    max_percentile: float | None = None
    where: str = ""


@dataclass
class QuantConfig:
    # model_parameters
    onnx_model: str | None = None
    output_prefix: str | None = None
    working_dir: str | None = None
    skip_onnxsim: bool = False
    opset: int | None = None
    # calibration_parameters
    calibration_step: int = 500
    calibration_batch_size: int = 1
    calibration_device: str = "cpu"
    calibration_type: str = "default"
    input_parameters: list[InputParameters] = field(default_factory=list)
    # quantization_parameters
    precision_level: int = 0
    finetune_level: int = 1
    analysis_enable: bool = True
    max_percentile: float = 0.9999
    custom_setting: list[CustomSetting] = field(default_factory=list)
    truncate_var_names: list[str] = field(default_factory=list)
    ignore_op_types: list[str] = field(default_factory=list)
    ignore_op_names: list[str] = field(default_factory=list)
    # pyrt_parameters
    per_channel: bool = True
    activation_type: str = "uint8"
    analysis_samples: int = 16
    notes: list[str] = field(default_factory=list)  # accepted settings pyrt treats differently


# --- field checking ----------------------------------------------------------------------


def _fail(where: str, expected: str, value: object) -> ConfigError:
    return ConfigError(f"config field '{where}': expected {expected}, got {value!r}")


def _check_keys(section: dict, valid: tuple[str, ...], where: str) -> None:
    for key in section:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            path = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"config: unknown key '{path}'{hint}; valid keys here: {', '.join(valid)}"
            )


def _section(obj: dict, key: str) -> dict:
    value = obj.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(key, "an object", value)
    return value


def _str(value: object, where: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str):
        raise _fail(where, "a string", value)
    if choices is not None and value not in choices:
        raise _fail(where, "one of " + ", ".join(choices), value)
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def _int(value: object, where: str, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, "an integer", value)
    if value < lo or (hi is not None and value > hi):
        span = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise _fail(where, f"an integer in {span}", value)
    return value


def _float(value: object, where: str, lo: float, hi: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _fail(where, "a number", value)
    if not lo <= value <= hi:
        raise _fail(where, f"a number in [{lo}, {hi}]", value)
    return float(value)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "a list of strings", value)
    return list(value)


def _numbers(value: object, where: str) -> list[float]:
    if not isinstance(value, list) or not value:
        raise _fail(where, "a non-empty list of numbers", value)
    for v in value:
        if not isinstance(v, int | float) or isinstance(v, bool) or not np.isfinite(v):
            raise _fail(where, "a non-empty list of finite numbers", value)
    return [float(v) for v in value]


def check_file(value: object, where: str) -> str:
    path = _str(value, where)
    if not Path(path).exists():
        raise ConfigError(f"config field '{where}': file '{path}' does not exist")
    if not Path(path).is_file():
        raise ConfigError(f"config field '{where}': '{path}' is not a file")
    return path


# --- sections ----------------------------------------------------------------------------

MODEL_KEYS = ("onnx_model", "output_prefix", "working_dir", "skip_onnxsim", "opset")
CALIBRATION_KEYS = (
    "calibration_step",
    "calibration_batch_size",
    "calibration_device",
    "calibration_type",
    "input_parameters",
    "input_parametres",
)
INPUT_KEYS = (
    "input_name",
    "input_shape",
    "dtype",
    "file_type",
    "color_format",
    "mean_value",
    "std_value",
    "preprocess_file",
    "data_list_path",
)
QUANT_KEYS = (
    "precision_level",
    "finetune_level",
    "analysis_enable",
    "max_percentile",
    "custom_setting",
    "truncate_var_names",
    "ignore_op_types",
    "ignore_op_names",
)
CUSTOM_KEYS = (
    "input_names",
    "output_names",
    "precision_level",
    "calibration_type",
    "max_percentile",
)
PYRT_KEYS = ("per_channel", "activation_type", "analysis_samples")
TOP_KEYS = (
    "model_parameters",
    "calibration_parameters",
    "quantization_parameters",
    "pyrt_parameters",
)


def parse_config(config: str | Path | dict) -> QuantConfig:
    """Reads and checks a config (a JSON file path or a dict); raises ConfigError."""
    if isinstance(config, str | Path):
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the config file '{path}': {exc}") from exc
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file '{path}' is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"the config must be a JSON object, got {type(config).__name__}")
    _check_keys(config, TOP_KEYS, "")
    cfg = QuantConfig()
    _model_section(cfg, _section(config, "model_parameters"))
    _calibration_section(cfg, _section(config, "calibration_parameters"))
    _quant_section(cfg, _section(config, "quantization_parameters"))
    _pyrt_section(cfg, _section(config, "pyrt_parameters"))
    return cfg


def _model_section(cfg: QuantConfig, sec: dict) -> None:
    w = "model_parameters"
    _check_keys(sec, MODEL_KEYS, w)
    if sec.get("onnx_model") is not None:  # checked when used: a model argument overrides it
        cfg.onnx_model = _str(sec["onnx_model"], f"{w}.onnx_model")
    if sec.get("output_prefix") is not None:
        cfg.output_prefix = _str(sec["output_prefix"], f"{w}.output_prefix")
        if not cfg.output_prefix or "/" in cfg.output_prefix:
            raise _fail(f"{w}.output_prefix", "a file name prefix without '/'", cfg.output_prefix)
    if sec.get("working_dir") is not None:
        cfg.working_dir = _str(sec["working_dir"], f"{w}.working_dir")
    if "skip_onnxsim" in sec:
        cfg.skip_onnxsim = _bool(sec["skip_onnxsim"], f"{w}.skip_onnxsim")
    if sec.get("opset") is not None:
        cfg.opset = _int(sec["opset"], f"{w}.opset", 10, 25)


def _calibration_section(cfg: QuantConfig, sec: dict) -> None:
    w = "calibration_parameters"
    _check_keys(sec, CALIBRATION_KEYS, w)
    if "calibration_step" in sec:
        cfg.calibration_step = _int(sec["calibration_step"], f"{w}.calibration_step", 1)
    if "calibration_batch_size" in sec:
        cfg.calibration_batch_size = _int(
            sec["calibration_batch_size"], f"{w}.calibration_batch_size", 1
        )
    if "calibration_device" in sec:
        device = _str(sec["calibration_device"], f"{w}.calibration_device", ("cuda", "cpu"))
        if device != "cpu":
            cfg.notes.append(f"{w}.calibration_device '{device}': pyrt calibrates on the CPU")
    if "calibration_type" in sec:
        cfg.calibration_type = _str(
            sec["calibration_type"], f"{w}.calibration_type", CALIBRATION_TYPES
        )
    if "input_parameters" in sec and "input_parametres" in sec:
        raise ConfigError(
            f"config: both '{w}.input_parameters' and '{w}.input_parametres' are given; "
            "they are two spellings of one key, keep one"
        )
    key = "input_parametres" if "input_parametres" in sec else "input_parameters"
    items = sec.get(key)
    if items is None:
        return
    if not isinstance(items, list) or not items:
        raise _fail(f"{w}.{key}", "a non-empty list (one entry per model input)", items)
    for i, item in enumerate(items):
        cfg.input_parameters.append(_input_entry(item, f"{w}.{key}[{i}]"))


def _input_entry(item: object, where: str) -> InputParameters:
    if not isinstance(item, dict):
        raise _fail(where, "an object", item)
    _check_keys(item, INPUT_KEYS, where)
    entry = InputParameters(where=where)
    if item.get("input_name") is not None:
        entry.input_name = _str(item["input_name"], f"{where}.input_name")
    if item.get("input_shape") is not None:
        shape = item["input_shape"]
        ok = isinstance(shape, list) and shape and all(isinstance(d, int | str) for d in shape)
        if not ok or any(isinstance(d, bool) for d in shape):
            raise _fail(f"{where}.input_shape", "a list of integers", shape)
        # A symbolic or non-positive batch dimension means 1, as in XSlim.
        batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else 1
        rest = shape[1:]
        if not all(isinstance(d, int) and d > 0 for d in rest):
            raise _fail(
                f"{where}.input_shape", "positive integers after the batch dimension", shape
            )
        entry.input_shape = [batch, *rest]
    if item.get("dtype") is not None:
        entry.dtype = _str(item["dtype"], f"{where}.dtype")
        try:
            np.dtype(entry.dtype)
        except TypeError as exc:
            raise _fail(
                f"{where}.dtype", "a numpy dtype name such as float32", entry.dtype
            ) from exc
    if "file_type" in item:
        entry.file_type = _str(item["file_type"], f"{where}.file_type", FILE_TYPES)
    if "color_format" in item:
        entry.color_format = _str(item["color_format"], f"{where}.color_format", COLOR_FORMATS)
    if item.get("mean_value") is not None:
        entry.mean_value = _numbers(item["mean_value"], f"{where}.mean_value")
    if item.get("std_value") is not None:
        entry.std_value = _numbers(item["std_value"], f"{where}.std_value")
        if any(v == 0 for v in entry.std_value):
            raise _fail(f"{where}.std_value", "non-zero numbers (they divide)", entry.std_value)
    if item.get("preprocess_file") is not None:
        pre = _str(item["preprocess_file"], f"{where}.preprocess_file")
        if pre not in BUILTIN_PREPROCESS:
            module, sep, func = pre.rpartition(":")
            if not sep or not module or not func.isidentifier():
                raise _fail(
                    f"{where}.preprocess_file", "PT_IMAGENET, IMAGENET or 'file.py:function'", pre
                )
            check_file(module, f"{where}.preprocess_file")
        entry.preprocess_file = pre
    if item.get("data_list_path") is None:
        raise ConfigError(
            f"config field '{where}.data_list_path' is required: a text file listing "
            "the calibration files, one a line"
        )
    entry.data_list_path = check_file(item["data_list_path"], f"{where}.data_list_path")
    return entry


def _quant_section(cfg: QuantConfig, sec: dict) -> None:
    w = "quantization_parameters"
    _check_keys(sec, QUANT_KEYS, w)
    if "precision_level" in sec:
        cfg.precision_level = _precision(sec["precision_level"], f"{w}.precision_level")
    if "finetune_level" in sec:
        cfg.finetune_level = _int(sec["finetune_level"], f"{w}.finetune_level", 0, 3)
        if cfg.finetune_level > 1:
            cfg.notes.append(
                f"{w}.finetune_level {cfg.finetune_level}: pyrt does not fine-tune "
                "calibration parameters; the level is accepted and has no effect"
            )
    if "analysis_enable" in sec:
        cfg.analysis_enable = _bool(sec["analysis_enable"], f"{w}.analysis_enable")
    if sec.get("max_percentile") is not None:
        cfg.max_percentile = _float(sec["max_percentile"], f"{w}.max_percentile", 0.5, 1.0)
    for key in ("truncate_var_names", "ignore_op_types", "ignore_op_names"):
        if sec.get(key) is not None:
            setattr(cfg, key, _strings(sec[key], f"{w}.{key}"))
    custom = sec.get("custom_setting")
    if custom is not None:
        if not isinstance(custom, list):
            raise _fail(f"{w}.custom_setting", "a list of objects", custom)
        for i, item in enumerate(custom):
            cfg.custom_setting.append(_custom_entry(item, f"{w}.custom_setting[{i}]"))


def _precision(value: object, where: str) -> int:
    level = _int(value, where, 0, 4)
    if level == 4:
        raise ConfigError(
            f"config field '{where}': 4 (FP16 conversion) is not supported: pyrt computes "
            "float16 as float32, so an FP16 model gains nothing; use 0-2 (static int8) or "
            "3 (dynamic int8)"
        )
    return level


def _custom_entry(item: object, where: str) -> CustomSetting:
    if not isinstance(item, dict):
        raise _fail(where, "an object", item)
    _check_keys(item, CUSTOM_KEYS, where)
    for key in ("input_names", "output_names"):
        if not item.get(key):
            raise _fail(f"{where}.{key}", "a non-empty list of tensor names", item.get(key))
    entry = CustomSetting(
        _strings(item["input_names"], f"{where}.input_names"),
        _strings(item["output_names"], f"{where}.output_names"),
        where=where,
    )
    if item.get("precision_level") is not None:
        entry.precision_level = _precision(item["precision_level"], f"{where}.precision_level")
        if entry.precision_level == 3:
            raise ConfigError(
                f"config field '{where}.precision_level': 3 (dynamic quantization) applies "
                "to a whole model, not a subgraph; use 0, 1 or 2 here"
            )
    if item.get("calibration_type") is not None:
        entry.calibration_type = _str(
            item["calibration_type"], f"{where}.calibration_type", CALIBRATION_TYPES
        )
    if item.get("max_percentile") is not None:
        entry.max_percentile = _float(item["max_percentile"], f"{where}.max_percentile", 0.5, 1.0)
    return entry


def _pyrt_section(cfg: QuantConfig, sec: dict) -> None:
    w = "pyrt_parameters"
    _check_keys(sec, PYRT_KEYS, w)
    if "per_channel" in sec:
        cfg.per_channel = _bool(sec["per_channel"], f"{w}.per_channel")
    if "activation_type" in sec:
        cfg.activation_type = _str(sec["activation_type"], f"{w}.activation_type", ACTIVATION_TYPES)
    if "analysis_samples" in sec:
        cfg.analysis_samples = _int(sec["analysis_samples"], f"{w}.analysis_samples", 1)


# --- binding to the model ----------------------------------------------------------------


@dataclass
class BoundInput:
    """A model input with its calibration settings: the shape and dtype data must have."""

    name: str
    shape: list[int | None]  # None: dimension free (symbolic in the model, not in the config)
    dtype: np.dtype
    params: InputParameters
    files: list[str]  # one calibration file per line of data_list_path


def model_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def bind_inputs(cfg: QuantConfig, model: onnx.ModelProto) -> list[BoundInput]:
    """Pairs input_parameters with the model's inputs (by name, else in order) and reads
    the data lists; every mismatch is a ConfigError."""
    w = "calibration_parameters.input_parameters"
    inputs = model_inputs(model)
    if not cfg.input_parameters:
        raise ConfigError(f"config field '{w}' is required: one entry per model input")
    if len(cfg.input_parameters) != len(inputs):
        raise ConfigError(
            f"config field '{w}' has {len(cfg.input_parameters)} entries but the model has "
            f"{len(inputs)} inputs {[i.name for i in inputs]}: give one entry per input, in order"
        )
    by_name = {i.name: i for i in inputs}
    bound, seen = [], set()
    for position, params in enumerate(cfg.input_parameters):
        if params.input_name is not None:
            if params.input_name not in by_name:
                raise _fail(
                    f"{params.where}.input_name",
                    "one of the model's inputs " + ", ".join(by_name),
                    params.input_name,
                )
            info = by_name[params.input_name]
        else:
            info = inputs[position]
        if info.name in seen:
            raise ConfigError(f"config field '{params.where}': input '{info.name}' given twice")
        seen.add(info.name)
        bound.append(_bind(params, info))
    _check_list_lengths(bound)
    return bound


def _bind(params: InputParameters, info: onnx.ValueInfoProto) -> BoundInput:
    ttype = info.type.tensor_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type))
    dims: list[int | None] = [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
        for d in ttype.shape.dim
    ]
    if params.input_shape is not None:
        if len(params.input_shape) != len(dims) or any(
            m is not None and m != c for m, c in zip(dims, params.input_shape)
        ):
            raise _fail(
                f"{params.where}.input_shape",
                f"a shape matching the model's input '{info.name}' {_shape_str(dims)}",
                params.input_shape,
            )
        shape: list[int | None] = list(params.input_shape)
    else:
        shape = dims
        if shape and shape[0] is None:
            shape[0] = 1  # symbolic batch -> 1, as XSlim
    if params.file_type in ("img", "raw") and params.preprocess_file is None and None in shape:
        raise ConfigError(
            f"config field '{params.where}.input_shape' is needed: the model's input "
            f"'{info.name}' has free dimensions {_shape_str(dims)}, and {params.file_type} "
            "files do not carry a shape"
        )
    if params.file_type == "img" and params.preprocess_file is None and len(shape) != 4:
        raise ConfigError(
            f"config field '{params.where}.file_type': img needs a 4-D (N, C, H, W) input, "
            f"the model's input '{info.name}' is {_shape_str(dims)}"
        )
    if params.file_type == "img" and params.preprocess_file is None:
        for key in ("mean_value", "std_value"):
            values = getattr(params, key)
            if values is not None and len(values) not in (1, shape[1]):
                raise _fail(
                    f"{params.where}.{key}", f"1 or {shape[1]} values (one per channel)", values
                )
    return BoundInput(info.name, shape, dtype, params, _read_list(params))


def _read_list(params: InputParameters) -> list[str]:
    where = f"{params.where}.data_list_path"
    path = Path(params.data_list_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config field '{where}': cannot read '{path}': {exc}") from exc
    files = [str(path.parent / line.strip()) for line in lines if line.strip()]
    if not files:
        raise ConfigError(f"config field '{where}': the list '{path}' has no items")
    for i, f in enumerate(files):
        if not Path(f).is_file():
            raise ConfigError(
                f"config field '{where}': line {i + 1} of '{path}' names '{f}', which does not "
                "exist (paths are relative to the list's folder)"
            )
    return files


def _check_list_lengths(bound: list[BoundInput]) -> None:
    """Lists pair up line by line; a one-line list is reused for every sample (as XSlim)."""
    lengths = {len(b.files) for b in bound if len(b.files) > 1}
    if len(lengths) > 1:
        counts = ", ".join(f"'{b.params.data_list_path}' {len(b.files)}" for b in bound)
        raise ConfigError(
            "config field 'calibration_parameters.input_parameters': the data lists of a "
            f"multi-input model pair up line by line and must have equal lengths: {counts}"
        )


def _shape_str(dims: list[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
