"""pyrt.quantize / python -m pyrt quantize: XSlim configs read unchanged, every setting, bad
configs as clear errors, and accuracy on real data (scikit-learn's digits)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import zoo
from pyrt.__main__ import main
from pyrt.errors import ConfigError, ModelError
from pyrt.quant_config import bind_inputs, parse_config
from pyrt.quantize import CalibrationData, fold_batchnorm, load_image

pytest.importorskip("onnxruntime")
Image = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tools"))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def write_list(folder: Path, name: str, files: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(files) + "\n")
    return path


# --- models --------------------------------------------------------------------------


def mlp_model(inputs: int = 1, softmax: bool = True) -> onnx.ModelProto:
    """x [N, 16] (and y [N, 16]) -> MatMul Add Relu (Add y) MatMul (Softmax): small, fast."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32) / 4, "w1"),
        numpy_helper.from_array(rng.standard_normal(32).astype(np.float32) / 4, "b1"),
        numpy_helper.from_array(rng.standard_normal((32, 8)).astype(np.float32) / 6, "w2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["mm1"], "mm1"),
        helper.make_node("Add", ["mm1", "b1"], ["fc1"], "fc1"),
        helper.make_node("Relu", ["fc1"], ["act"], "relu"),
    ]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])]
    h = "act"
    if inputs == 2:
        graph_inputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16]))
        inits.append(
            numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "wy")
        )
        nodes += [
            helper.make_node("MatMul", ["y", "wy"], ["my"], "my"),
            helper.make_node("Add", ["act", "my"], ["sum"], "sum"),
        ]
        h = "sum"
    nodes.append(helper.make_node("MatMul", [h, "w2"], ["logits"], "mm2"))
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], "softmax", axis=-1))
        out = "probs"
    graph = helper.make_graph(
        nodes,
        "mlp",
        graph_inputs,
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture
def mlp(tmp_path: Path) -> dict:
    """The MLP saved with 12 npy samples and the minimal config for it."""
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), path)
    rng = np.random.default_rng(1)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(12):
        np.save(data / f"x{i}.npy", rng.standard_normal((1, 16)).astype(np.float32))
    listing = write_list(data, "list.txt", [f"x{i}.npy" for i in range(12)])
    return {
        "model_parameters": {"onnx_model": str(path)},
        "calibration_parameters": {
            "input_parameters": [{"file_type": "npy", "data_list_path": str(listing)}]
        },
        "quantization_parameters": {"analysis_enable": False},
    }


def with_fields(config: dict, **sections: dict) -> dict:
    out = json.loads(json.dumps(config))
    for section, fields in sections.items():
        out.setdefault(section, {}).update(fields)
    return out


def run_fp32_and_int8(config: dict, result) -> float:
    cfg = parse_config(config)
    fp32 = onnx.load(config["model_parameters"]["onnx_model"])
    sample = CalibrationData(cfg, bind_inputs(cfg, fp32))[0]
    return cosine(pyrt.run(fp32, sample)[0], pyrt.run(result.model, sample)[0])


# --- accuracy on real data -------------------------------------------------------------


def test_digits_int8_within_half_a_point_of_fp32(tmp_path: Path) -> None:
    """The committed digits CNN, quantized from an XSlim config of PNG files: INT8 top-1
    on the 450 test digits within 0.5 points of FP32, both run in pyrt."""
    pytest.importorskip("sklearn")
    from accuracy import run_digits

    record = run_digits(tmp_path, calib_samples=64)
    assert record["n"] == 450
    assert record["fp32_top1"] > 0.95
    assert abs(record["fp32_top1"] - record["int8_top1"]) <= 0.005, record


# --- XSlim's configs, unchanged ------------------------------------------------------------


def xslim_image_setup(tmp_path: Path, spelling: str) -> dict:
    """XSlim's samples/resnet18.json shape of config, for a small CNN and PNG files;
    relative paths (the model, the list) as a user writes them, from the working folder."""
    model = zoo.demo_cnn(size=32)
    (tmp_path / "models").mkdir()
    onnx.save(model, tmp_path / "models" / "cnn.onnx")
    images = tmp_path / "Imagenet" / "calib"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / f"{i}.png")
        names.append(f"calib/{i}.png")
    write_list(tmp_path / "Imagenet", "calib_img_list.txt", names)
    return {
        "model_parameters": {"onnx_model": "models/cnn.onnx", "working_dir": "./temp"},
        "calibration_parameters": {
            "calibration_step": 100,
            "calibration_device": "cuda",
            "calibration_type": "default",
            spelling: [
                {
                    "mean_value": [123.675, 116.28, 103.53],
                    "std_value": [58.395, 57.12, 57.375],
                    "color_format": "rgb",
                    "preprocess_file": "PT_IMAGENET",
                    "data_list_path": "./Imagenet/calib_img_list.txt",
                }
            ],
        },
        "quantization_parameters": {"precision_level": 0, "finetune_level": 1},
    }


@pytest.mark.parametrize("spelling", ["input_parameters", "input_parametres"])
def test_xslim_config_unchanged(tmp_path: Path, monkeypatch, spelling: str) -> None:
    monkeypatch.chdir(tmp_path)
    config = xslim_image_setup(tmp_path, spelling)
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    result = pyrt.quantize("cfg.json", progress=False)
    assert result.output == Path("temp/cnn.q.onnx") and result.output.exists()
    assert any("calibration_device" in n for n in result.notes)  # cuda: noted, cpu used
    assert {n.op_type for n in result.model.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    report = pyrt.Session(result.output).report().counts()
    assert report.get("int8", 0) >= 5
    # The analysis is on by default (XSlim's analysis_enable), next to the model.
    for suffix in (".report.md", ".snr.png", ".report.html"):
        assert Path(f"temp/cnn.q{suffix}").exists()
    out = result.analysis.outputs[0]
    assert out.cosine > 0.99


def test_both_spellings_give_the_same_model(mlp: dict, tmp_path: Path) -> None:
    a = pyrt.quantize(mlp, output=tmp_path / "a.onnx", progress=False).model
    alt = json.loads(json.dumps(mlp))
    alt["calibration_parameters"]["input_parametres"] = alt["calibration_parameters"].pop(
        "input_parameters"
    )
    b = pyrt.quantize(alt, output=tmp_path / "b.onnx", progress=False).model
    assert a.graph == b.graph


def test_output_defaults_to_model_folder_and_stem(mlp: dict) -> None:
    result = pyrt.quantize(mlp, progress=False)
    model = Path(mlp["model_parameters"]["onnx_model"])
    assert result.output == model.parent / "mlp.q.onnx"
    prefixed = with_fields(mlp, model_parameters={"output_prefix": "mine"})
    assert pyrt.quantize(prefixed, progress=False).output == model.parent / "mine.onnx"


def test_model_and_output_arguments_override(mlp: dict, tmp_path: Path) -> None:
    config = _mutate(mlp, "model_parameters.onnx_model", "elsewhere/missing.onnx")
    proto = mlp_model()
    result = pyrt.quantize(config, model=proto, output=tmp_path / "x" / "out.onnx", progress=False)
    assert result.output == tmp_path / "x" / "out.onnx" and result.output.exists()
    assert run_fp32_and_int8(mlp, result) > 0.99


# --- data loading ----------------------------------------------------------------------


def bound_image_input(tmp_path: Path, shape: list[int], **params) -> tuple:
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["input"], ["out"])],
            "id",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
        )
    )
    listing = write_list(tmp_path, "l.txt", ["img.png"])
    cfg = parse_config(
        {
            "calibration_parameters": {
                "input_parameters": [dict(params, data_list_path=str(listing))]
            }
        }
    )
    return bind_inputs(cfg, model)[0]


def test_image_mean_std_and_channel_order(tmp_path: Path) -> None:
    """XSlim reads images BGR unless color_format is rgb, then (x - mean) / std, NCHW."""
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    Image.fromarray(rgb).save(tmp_path / "img.png")
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 5.0]
    for fmt, order in (("bgr", [50, 100, 200]), ("rgb", [200, 100, 50])):
        bound = bound_image_input(
            tmp_path, ["N", 3, 4, 6], color_format=fmt, mean_value=mean, std_value=std
        )
        x = load_image(str(tmp_path / "img.png"), bound)
        assert x.shape == (1, 3, 4, 6) and x.dtype == np.float32
        expected = (np.array(order, np.float32) - mean) / std
        np.testing.assert_allclose(x[0, :, 0, 0], expected)
        assert np.all(x == x[:, :, :1, :1])


def test_image_resize_and_grayscale(tmp_path: Path) -> None:
    """A resize to the input's H x W (area averaging); a 1-channel input reads gray."""
    img = np.full((16, 12, 3), 90, np.uint8)
    Image.fromarray(img).save(tmp_path / "img.png")
    gray = bound_image_input(tmp_path, [1, 1, 8, 6], std_value=[255.0])
    x = load_image(str(tmp_path / "img.png"), gray)
    assert x.shape == (1, 1, 8, 6)
    np.testing.assert_allclose(x, 90 / 255, rtol=1e-6)


@pytest.mark.parametrize("preprocess", ["PT_IMAGENET", "IMAGENET"])
def test_imagenet_preprocessing(tmp_path: Path, preprocess: str) -> None:
    """Short side scaled to H / 0.875, center crop: a centered square lands in the middle."""
    img = np.zeros((70, 100, 3), np.uint8)
    img[25:45, 40:60] = 255
    Image.fromarray(img).save(tmp_path / "img.png")
    bound = bound_image_input(tmp_path, [1, 3, 28, 28], preprocess_file=preprocess)
    x = load_image(str(tmp_path / "img.png"), bound)
    assert x.shape == (1, 3, 28, 28)
    # 70 -> 32 rows (28 / 0.875): the square covers about 9 of 32 rows around the center.
    center, corner = x[0, 0, 12:16, 12:16], x[0, 0, :4, :4]
    assert center.min() > 200 and corner.max() < 10


def test_custom_preprocess_function(mlp: dict, tmp_path: Path) -> None:
    """preprocess_file 'file.py:function' is called with the batch's paths and the entry."""
    (tmp_path / "pre.py").write_text(
        "import numpy as np\n"
        "def load(paths, params):\n"
        "    assert params['input_shape'] == [1, 16] and params['file_type'] == 'npy'\n"
        "    return np.concatenate([np.load(p) * 0 + 0.5 for p in paths])\n"
    )
    config = json.loads(json.dumps(mlp))
    config["calibration_parameters"]["input_parameters"][0]["preprocess_file"] = (
        f"{tmp_path / 'pre.py'}:load"
    )
    cfg = parse_config(config)
    data = CalibrationData(cfg, bind_inputs(cfg, mlp_model()))
    assert len(data) == 12 and np.all(data[3]["x"] == 0.5)


def test_npy_raw_and_multi_input_lists_pair_line_by_line(tmp_path: Path) -> None:
    model = mlp_model(inputs=2)
    onnx.save(model, tmp_path / "two.onnx")
    xs, ys = [], []
    for i in range(5):
        np.save(tmp_path / f"x{i}.npy", np.full((16,), i, np.float32))  # no batch dim: added
        np.full(16, 10 + i, np.float32).tofile(tmp_path / f"y{i}.raw")
        xs.append(f"x{i}.npy")
        ys.append(f"y{i}.raw")
    config = {
        "calibration_parameters": {
            "calibration_step": 4,
            "input_parameters": [
                {"file_type": "npy", "data_list_path": str(write_list(tmp_path, "x.txt", xs))},
                {
                    "file_type": "raw",
                    "input_shape": ["batch", 16],
                    "data_list_path": str(write_list(tmp_path, "y.txt", ys)),
                },
            ],
        }
    }
    cfg = parse_config(config)
    data = CalibrationData(cfg, bind_inputs(cfg, model))
    assert len(data) == 4  # calibration_step caps the 5 lines
    for i, sample in enumerate(data):
        assert sample["x"].shape == (1, 16) and np.all(sample["x"] == i)
        assert sample["y"].shape == (1, 16) and np.all(sample["y"] == 10 + i)
    result = pyrt.quantize(config, model=tmp_path / "two.onnx", progress=False)
    assert result.analysis is not None and result.analysis.outputs[0].cosine > 0.99


def test_integer_npy_inputs_as_bertsquad(tmp_path: Path) -> None:
    """XSlim's samples/bertsquad.json shape: npy token ids (int64) and a float mask."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((50, 16)).astype(np.float32), "emb"),
        numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "w"),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["tok"], "embed"),
        helper.make_node("Unsqueeze", ["mask", "axis"], ["m3"], "unsq"),
        helper.make_node("Mul", ["tok", "m3"], ["masked"], "apply_mask"),
        helper.make_node("MatMul", ["masked", "w"], ["out"], "head"),
    ]
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "axis"))
    graph = helper.make_graph(
        nodes,
        "bert_like",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 8]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 8]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 8, 4])],
        inits,
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "b.onnx"
    )
    for i in range(6):
        np.save(tmp_path / f"ids_{i}.npy", rng.integers(0, 50, (1, 8)))
        np.save(tmp_path / f"mask_{i}.npy", np.ones((1, 8), np.float32))
    config = {
        "model_parameters": {"onnx_model": str(tmp_path / "b.onnx")},
        "calibration_parameters": {
            "input_parameters": [
                {
                    "file_type": "npy",
                    "data_list_path": str(
                        write_list(tmp_path, "ids.txt", [f"ids_{i}.npy" for i in range(6)])
                    ),
                },
                {
                    "file_type": "npy",
                    "data_list_path": str(
                        write_list(tmp_path, "mask.txt", [f"mask_{i}.npy" for i in range(6)])
                    ),
                },
            ]
        },
        "quantization_parameters": {"finetune_level": 2, "precision_level": 2},
    }
    result = pyrt.quantize(config, progress=False)
    assert result.analysis.outputs[0].cosine > 0.99
    assert any("finetune_level" in n for n in result.notes)


def test_calibration_batch_size(mlp: dict) -> None:
    config = with_fields(mlp, calibration_parameters={"calibration_batch_size": 4})
    cfg = parse_config(config)
    data = CalibrationData(cfg, bind_inputs(cfg, mlp_model()))
    assert len(data) == 3 and data[0]["x"].shape == (4, 16)


def test_progress_bar_on_stderr(mlp: dict, capsys) -> None:
    pyrt.quantize(mlp, progress=True)
    err = capsys.readouterr().err
    assert "calibrating (percentile)" in err and "12/12" in err


# --- settings --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["default", "kl", "minmax", "percentile", "mse"])
def test_calibration_types(mlp: dict, kind: str) -> None:
    config = with_fields(mlp, calibration_parameters={"calibration_type": kind})
    result = pyrt.quantize(config, progress=False)
    assert run_fp32_and_int8(mlp, result) > 0.99


@pytest.mark.parametrize("kind", ["kl", "percentile", "mse"])
def test_calibration_types_with_symmetric_activations(mlp: dict, kind: str) -> None:
    config = with_fields(
        mlp,
        calibration_parameters={"calibration_type": kind},
        pyrt_parameters={"activation_type": "int8"},
    )
    result = pyrt.quantize(config, progress=False)
    assert run_fp32_and_int8(mlp, result) > 0.99


def test_unnamed_nodes_get_names(mlp: dict, tmp_path: Path) -> None:
    model = mlp_model()
    for node in model.graph.node:
        node.name = ""
    config = with_fields(mlp, quantization_parameters={"ignore_op_types": ["Softmax"]})
    result = pyrt.quantize(config, model=model, output=tmp_path / "q.onnx", progress=False)
    assert result.excluded == ["Softmax_4 (ignore_op_types)"]
    assert all(n.name for n in result.model.graph.node)


def scale_of(model: onnx.ModelProto, tensor: str) -> float:
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] == tensor:
            return float(consts[node.input[1]])
    raise AssertionError(f"{tensor} is not quantized")


def test_calibration_types_give_different_ranges(mlp: dict) -> None:
    scales = {}
    for kind in ("minmax", "percentile", "mse"):
        config = with_fields(
            mlp,
            calibration_parameters={"calibration_type": kind},
            quantization_parameters={"max_percentile": 0.99},
        )
        scales[kind] = scale_of(pyrt.quantize(config, progress=False).model, "mm1")
    assert scales["minmax"] > scales["percentile"]
    assert scales["minmax"] >= scales["mse"]


def excluded_names(result) -> set[str]:
    return {e.split(" (")[0] for e in result.excluded}


def test_precision_levels(mlp: dict) -> None:
    levels = {}
    for level in (0, 1, 2):
        config = with_fields(mlp, quantization_parameters={"precision_level": level})
        result = pyrt.quantize(config, progress=False)
        levels[level] = excluded_names(result)
        assert run_fp32_and_int8(mlp, result) > 0.99
    assert levels[0] == set()
    assert levels[1] == {"softmax"}
    assert levels[2] == {"softmax", "fc1", "mm1", "mm2"}  # + Add, first and last MatMul


def test_precision_level_3_is_dynamic(mlp: dict) -> None:
    config = with_fields(mlp, quantization_parameters={"precision_level": 3})
    result = pyrt.quantize(config, progress=False)
    ops = {n.op_type for n in result.model.graph.node}
    assert "DynamicQuantizeLinear" in ops and "MatMulInteger" in ops
    assert run_fp32_and_int8(mlp, result) > 0.99


def test_ignore_op_types_and_names(mlp: dict) -> None:
    config = with_fields(
        mlp,
        quantization_parameters={
            "ignore_op_types": ["Softmax", "Conv"],
            "ignore_op_names": ["mm2"],
        },
    )
    result = pyrt.quantize(config, progress=False)
    assert excluded_names(result) == {"softmax", "mm2"}
    assert any("Conv" in n for n in result.notes)  # matched nothing: noted, not an error
    readers = {i for n in result.model.graph.node if n.name == "mm2" for i in n.input}
    assert "w2" in readers  # mm2 runs in float: its weight is not quantized


def test_truncate_var_names_keeps_the_rest_fp32(mlp: dict) -> None:
    config = with_fields(mlp, quantization_parameters={"truncate_var_names": ["act"]})
    result = pyrt.quantize(config, progress=False)
    assert excluded_names(result) == {"mm2", "softmax"}
    node = next(n for n in result.model.graph.node if n.name == "mm2")
    assert "w2" in node.input  # float weight
    assert run_fp32_and_int8(mlp, result) > 0.99


def test_custom_setting_precision_and_calibration(mlp: dict) -> None:
    base = with_fields(mlp, quantization_parameters={"precision_level": 1})
    custom = with_fields(
        mlp,
        quantization_parameters={
            "precision_level": 1,
            "custom_setting": [
                {
                    "input_names": ["logits"],
                    "output_names": ["probs"],
                    "precision_level": 0,
                },
                {
                    "input_names": ["x"],
                    "output_names": ["fc1"],
                    "calibration_type": "percentile",
                    "max_percentile": 0.99,
                },
            ],
        },
    )
    a = pyrt.quantize(base, progress=False)
    b = pyrt.quantize(custom, progress=False)
    assert excluded_names(a) == {"softmax"} and excluded_names(b) == set()
    assert scale_of(b.model, "mm1") < scale_of(a.model, "mm1")  # clipped at 99 % inside
    assert scale_of(b.model, "logits") == scale_of(a.model, "logits")  # outside: unchanged


def test_pyrt_parameters(mlp: dict) -> None:
    config = with_fields(mlp, pyrt_parameters={"activation_type": "int8", "per_channel": False})
    model = pyrt.quantize(config, progress=False).model
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in consts:
            zero = consts[node.input[2]]
            assert zero.dtype == np.int8 and int(zero) == 0  # symmetric s8 activations
        if node.op_type == "DequantizeLinear" and node.output[0].startswith("w1"):
            assert consts[node.input[1]].size == 1  # per-tensor weights


def test_batchnorm_folds_into_conv_keeping_names() -> None:
    model = zoo.demo_cnn(size=16)
    folded = fold_batchnorm(model)
    ops = [n.op_type for n in folded.graph.node]
    assert "BatchNormalization" in [n.op_type for n in model.graph.node]
    assert "BatchNormalization" not in ops
    x = zoo.calibration_data(model, n=1)[0]
    np.testing.assert_allclose(pyrt.run(folded, x)[0], pyrt.run(model, x)[0], atol=1e-4)


def test_output_may_not_overwrite_the_model(mlp: dict) -> None:
    with pytest.raises(ConfigError, match="is the FP32 model itself"):
        pyrt.quantize(mlp, output=mlp["model_parameters"]["onnx_model"], progress=False)


def test_already_quantized_model_is_refused(mlp: dict, tmp_path: Path) -> None:
    q = pyrt.quantize(mlp, progress=False)
    with pytest.raises(ModelError, match="already quantized"):
        pyrt.quantize(mlp, model=q.output, output=tmp_path / "again.onnx", progress=False)


# --- bad configs ---------------------------------------------------------------------------


def _mutate(config: dict, path: str, value) -> dict:
    out = json.loads(json.dumps(config))
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()
IP = "calibration_parameters.input_parameters"
CT = "calibration_parameters.calibration_type"

BAD = [
    # (field path to set, value, text the message must hold)
    ("calibration_parameters.calibraton_type", "kl", "did you mean 'calibration_type'"),
    ("quantization_parameters.ignore_op_name", ["mm1"], "did you mean 'ignore_op_names'"),
    ("model_parameter", {}, "did you mean 'model_parameters'"),
    (f"{IP}.0.mean_values", [0], "did you mean 'mean_value'"),
    ("calibration_parameters.calibration_step", "10", "calibration_parameters.calibration_step"),
    ("quantization_parameters.analysis_enable", "yes", "quantization_parameters.analysis_enable"),
    ("quantization_parameters.precision_level", 7, "quantization_parameters.precision_level"),
    ("quantization_parameters.precision_level", 4, "FP16"),
    ("quantization_parameters.finetune_level", 1.5, "quantization_parameters.finetune_level"),
    ("quantization_parameters.max_percentile", 2, "quantization_parameters.max_percentile"),
    ("quantization_parameters.ignore_op_types", "Softmax", "ignore_op_types"),
    (f"{IP}.0.mean_value", "0", f"{IP}[0].mean_value"),
    (f"{IP}.0.std_value", [0], f"{IP}[0].std_value"),
    (f"{IP}.0.input_shape", [1, -16], f"{IP}[0].input_shape"),
    (f"{IP}.0.input_shape", [1, 3, 16], f"{IP}[0].input_shape"),
    (f"{IP}.0.dtype", "floaty", f"{IP}[0].dtype"),
    (f"{IP}.0.input_name", "nope", f"{IP}[0].input_name"),
    ("model_parameters.onnx_model", "missing.onnx", "missing.onnx"),
    (f"{IP}.0.data_list_path", "missing.txt", "missing.txt"),
    (f"{IP}.0.data_list_path", _DELETE, f"{IP}[0].data_list_path"),
    (f"{IP}.0.preprocess_file", "nowhere.py:fn", "nowhere.py"),
    (f"{IP}.0.preprocess_file", "RESNET", f"{IP}[0].preprocess_file"),
    (CT, "entropy", CT),
    (f"{IP}.0.file_type", "jpg", f"{IP}[0].file_type"),
    (f"{IP}.0.color_format", "yuv", f"{IP}[0].color_format"),
    ("calibration_parameters.input_parameters", [], "calibration_parameters.input_parameters"),
    ("quantization_parameters.truncate_var_names", ["nothere"], "nothere"),
    ("quantization_parameters.truncate_var_names", ["x"], "model inputs or constants"),
    ("quantization_parameters.truncate_var_names", ["probs"], "leaves nothing after the cut"),
    ("quantization_parameters.ignore_op_names", ["mm9"], "mm9"),
    ("quantization_parameters.custom_setting", [{"input_names": ["zz"], "output_names": ["fc1"]}],
     "custom_setting[0].input_names"),
    ("quantization_parameters.custom_setting", [{"input_names": ["x"], "output_names": ["zz"]}],
     "custom_setting[0].output_names"),
    ("quantization_parameters.custom_setting", [{"input_names": ["x"]}],
     "custom_setting[0].output_names"),
    ("quantization_parameters.custom_setting",
     [{"input_names": ["x"], "output_names": ["fc1"], "precision_level": 3}],
     "custom_setting[0].precision_level"),
    ("quantization_parameters.custom_setting",
     [{"input_names": ["x"], "output_names": ["fc1"], "calibration_type": "best"}],
     "custom_setting[0].calibration_type"),
    ("pyrt_parameters.activation_type", "int4", "pyrt_parameters.activation_type"),
]  # fmt: skip


@pytest.mark.parametrize("path,value,message", BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_config_is_a_clear_error(mlp: dict, path: str, value, message: str) -> None:
    config = _mutate(mlp, path, value)
    with pytest.raises(ConfigError) as info:
        pyrt.quantize(config, progress=False)
    assert message in str(info.value)


def test_input_count_must_match_the_model(mlp: dict) -> None:
    config = json.loads(json.dumps(mlp))
    entry = config["calibration_parameters"]["input_parameters"][0]
    config["calibration_parameters"]["input_parameters"] = [entry, entry]
    with pytest.raises(ConfigError, match="has 2 entries but the model has 1 inputs"):
        pyrt.quantize(config, progress=False)


def test_both_spellings_at_once(mlp: dict) -> None:
    config = json.loads(json.dumps(mlp))
    params = config["calibration_parameters"]
    params["input_parametres"] = params["input_parameters"]
    with pytest.raises(ConfigError, match="two spellings of one key"):
        pyrt.quantize(config, progress=False)


def test_empty_list_and_missing_listed_file(mlp: dict, tmp_path: Path) -> None:
    entry = mlp["calibration_parameters"]["input_parameters"][0]
    empty = write_list(tmp_path, "empty.txt", ["", "  "])
    config = _mutate(mlp, f"{IP}.0.data_list_path", str(empty))
    with pytest.raises(ConfigError, match="has no items"):
        pyrt.quantize(config, progress=False)
    listing = Path(entry["data_list_path"])
    broken = write_list(listing.parent, "broken.txt", ["x0.npy", "gone.npy"])
    config = _mutate(mlp, f"{IP}.0.data_list_path", str(broken))
    with pytest.raises(ConfigError, match="line 2 .* names '.*gone.npy'"):
        pyrt.quantize(config, progress=False)


def test_unreadable_data_files(mlp: dict, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "bad.npy").write_bytes(b"not npy")
    np.save(tmp_path / "wrong.npy", np.zeros((1, 15), np.float32))
    for name, kind, message in (
        ("bad.npy", "npy", "cannot read the calibration file .*bad.npy"),
        ("wrong.npy", "npy", r"has shape \[1, 15\], the model expects \[1, 16\]"),
    ):
        listing = write_list(tmp_path, f"{name}.txt", [name])
        config = _mutate(mlp, f"{IP}.0.data_list_path", str(listing))
        config = _mutate(config, f"{IP}.0.file_type", kind)
        if kind == "img":
            config = _mutate(config, f"{IP}.0.input_shape", [1, 16])
        with pytest.raises(ConfigError, match=message):
            pyrt.quantize(config, progress=False)


def test_unreadable_image(tmp_path: Path) -> None:
    (tmp_path / "img.png").write_bytes(b"not a png")
    bound = bound_image_input(tmp_path, [1, 3, 8, 8])
    with pytest.raises(ConfigError, match="cannot read the image .*img.png"):
        load_image(str(tmp_path / "img.png"), bound)


def test_input_shape_must_fit_a_fixed_batch(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"input_shape': expected a shape matching .*\[1, 3, 8, 8\]"
    ):
        bound_image_input(tmp_path, [1, 3, 8, 8], input_shape=[4, 3, 8, 8])


def test_truncation_that_does_not_split_in_two(tmp_path: Path) -> None:
    """x -> Relu r -> Sigmoid s -> Add(r, s): cutting at s leaves r crossing the cut."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], "relu"),
        helper.make_node("Sigmoid", ["r"], ["s"], "sigmoid"),
        helper.make_node("Add", ["r", "s"], ["out"], "add"),
    ]
    info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 16]) for n in ("x", "out")]
    model = helper.make_model(
        helper.make_graph(nodes, "skip", info[:1], info[1:]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    np.save(tmp_path / "x.npy", np.ones((1, 16), np.float32))
    config = {
        "calibration_parameters": {
            "input_parameters": [
                {
                    "file_type": "npy",
                    "data_list_path": str(write_list(tmp_path, "l.txt", ["x.npy"])),
                }
            ]
        },
        "quantization_parameters": {"truncate_var_names": ["s"]},
    }
    with pytest.raises(ConfigError, match="do not split the graph in two: node 'add'.*'r'"):
        pyrt.quantize(config, model=model, output=tmp_path / "q.onnx", progress=False)


def test_unequal_multi_input_lists(tmp_path: Path) -> None:
    onnx.save(mlp_model(inputs=2), tmp_path / "two.onnx")
    for i in range(3):
        np.save(tmp_path / f"{i}.npy", np.zeros((1, 16), np.float32))
    a = write_list(tmp_path, "a.txt", ["0.npy", "1.npy", "2.npy"])
    b = write_list(tmp_path, "b.txt", ["0.npy", "1.npy"])
    config = {
        "model_parameters": {"onnx_model": str(tmp_path / "two.onnx")},
        "calibration_parameters": {
            "input_parameters": [
                {"file_type": "npy", "data_list_path": str(a)},
                {"file_type": "npy", "data_list_path": str(b)},
            ]
        },
    }
    with pytest.raises(ConfigError, match="must have equal lengths"):
        pyrt.quantize(config, progress=False)


def test_config_file_not_json(tmp_path: Path) -> None:
    (tmp_path / "cfg.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        pyrt.quantize(tmp_path / "cfg.json")
    with pytest.raises(ConfigError, match="cannot read the config file"):
        pyrt.quantize(tmp_path / "none.json")


# --- command line ------------------------------------------------------------------------


def test_cli_quantize(mlp: dict, tmp_path: Path, capsys) -> None:
    (tmp_path / "cfg.json").write_text(json.dumps(mlp))
    out = tmp_path / "cli.onnx"
    assert main(["quantize", "--config", str(tmp_path / "cfg.json"), "-o", str(out)]) == 0
    assert out.exists() and f"wrote {out}" in capsys.readouterr().out


def test_cli_bad_config_is_one_line_exit_2(mlp: dict, tmp_path: Path) -> None:
    """No traceback: exit code 2 and one line naming the field, from a real process."""
    bad = _mutate(mlp, "calibration_parameters.calibration_type", "entropy")
    (tmp_path / "cfg.json").write_text(json.dumps(bad))
    proc = subprocess.run(
        [sys.executable, "-m", "pyrt", "quantize", "--config", str(tmp_path / "cfg.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyrt: error: config field")
    assert "calibration_parameters.calibration_type" in lines[0]
