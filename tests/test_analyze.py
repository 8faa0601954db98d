"""pyrt.analyze / python -m pyrt analyze: per-tensor error, the transformer whose FFN output
projection breaks under int8 (found, then fixed by one ignore_op_names entry), values
against onnxruntime, and the report files (the HTML page rendered in headless Chromium)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt.__main__ import main
from pyrt.analyze import LayerValues, analyze, layer_values

ort = pytest.importorskip("onnxruntime")
Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
FFN2 = "layer1/ffn/fc2/MatMul"


def encoder(
    outliers: bool = True, seq: int = 16, hidden: int = 32, ffn: int = 64
) -> onnx.ModelProto:
    """Two post-LN encoder layers, input x [1, seq, hidden]: single-head Softmax attention,
    MatMul + Add linears, LayerNormalization, a GELU FFN. With `outliers`, two hidden
    channels of the second FFN come out huge (a per-channel scale divides them) and matter
    little to its output projection: their range crushes the other channels of the
    projection's int8 input, so layer1/ffn/fc2 breaks."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name, **attrs))
        return name

    def linear(x: str, n_in: int, n_out: int, name: str, w=None) -> str:
        w = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in) if w is None else w
        mm = node("MatMul", [x, const(f"{name}.w", w)], f"{name}/MatMul")
        return node(
            "Add", [mm, const(f"{name}.b", 0.1 * rng.standard_normal(n_out))], f"{name}/Add"
        )

    def layernorm(x: str, name: str) -> str:
        scale, bias = const(f"{name}.g", np.ones(hidden)), const(f"{name}.b", np.zeros(hidden))
        return node("LayerNormalization", [x, scale, bias], name, axis=-1, epsilon=1e-5)

    x = "x"
    for layer in range(2):
        p = f"layer{layer}"
        q, k, v = (linear(x, hidden, hidden, f"{p}/attn/{n}") for n in "qkv")
        kt = node("Transpose", [k], f"{p}/attn/kT", perm=[0, 2, 1])
        scores = node("MatMul", [q, kt], f"{p}/attn/scores")
        scaled = node(
            "Mul", [scores, const(f"{p}/attn/scale", 1 / np.sqrt(hidden))], f"{p}/attn/scaled"
        )
        attn = node("Softmax", [scaled], f"{p}/attn/softmax", axis=-1)
        out = linear(
            node("MatMul", [attn, v], f"{p}/attn/context"), hidden, hidden, f"{p}/attn/out"
        )
        x1 = layernorm(node("Add", [x, out], f"{p}/attn/residual"), f"{p}/ln1")
        h = node("Gelu", [linear(x1, hidden, ffn, f"{p}/ffn/fc1")], f"{p}/ffn/gelu")
        w2 = rng.standard_normal((ffn, hidden)) / np.sqrt(ffn)
        if outliers and layer == 1:
            div = np.ones(ffn)
            div[:2] = 2e-3
            w2[:2] *= 2e-3
            h = node("Div", [h, const(f"{p}/ffn/scale", div)], f"{p}/ffn/scaled")
        f = linear(h, ffn, hidden, f"{p}/ffn/fc2", w=w2)
        x = layernorm(node("Add", [x1, f], f"{p}/ffn/residual"), f"{p}/ln2")
    graph = helper.make_graph(
        nodes,
        "encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, hidden])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, seq, hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def setup_encoder(folder: Path, outliers: bool = True) -> dict:
    """The encoder saved with 12 npy samples, and an XSlim config for it."""
    onnx.save(encoder(outliers), folder / "enc.onnx")
    rng = np.random.default_rng(1)
    data = folder / "data"
    data.mkdir(exist_ok=True)
    for i in range(12):
        np.save(data / f"x{i}.npy", rng.standard_normal((1, 16, 32)).astype(np.float32))
    (data / "list.txt").write_text("\n".join(f"x{i}.npy" for i in range(12)) + "\n")
    return {
        "model_parameters": {"onnx_model": str(folder / "enc.onnx")},
        "calibration_parameters": {
            "calibration_type": "minmax",
            "input_parametres": [{"file_type": "npy", "data_list_path": str(data / "list.txt")}],
        },
    }


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> tuple[dict, pyrt.QuantizeResult]:
    folder = tmp_path_factory.mktemp("encoder")
    config = setup_encoder(folder)
    return config, pyrt.quantize(config, progress=False)


def test_transformer_ffn_projection_found_and_fixed(broken, tmp_path: Path) -> None:
    config, result = broken
    report = result.analysis
    assert report.outputs[0].cosine < 0.95  # the int8 model is broken...
    worst = {r.tensor: r for r in report.rows[:2]}  # ...at the FFN output projection
    assert set(worst) == {FFN2, "layer1/ffn/fc2/Add"} and worst[FFN2].flagged
    assert worst[FFN2].local_snr < 0.01 * worst[FFN2].snr  # not its own scale: what it reads
    assert report.suggestion == [FFN2]
    assert {r.tensor for r in report.flagged} <= {FFN2, "layer1/ffn/fc2/Add", "layer1/ffn/residual"}
    assert FFN2 in report.markdown() and "**" in report.markdown()

    config = dict(config, quantization_parameters={"ignore_op_names": [FFN2]})
    fixed = pyrt.quantize(config, output=tmp_path / "fixed.onnx", progress=False)
    assert fixed.analysis.outputs[0].cosine > 0.999
    assert fixed.analysis.flagged == [] and fixed.analysis.suggestion == []


def test_encoder_without_outliers_is_not_flagged(tmp_path: Path) -> None:
    result = pyrt.quantize(setup_encoder(tmp_path, outliers=False), progress=False)
    assert result.analysis.flagged == [] and result.analysis.suggestion == []
    assert result.analysis.outputs[0].cosine > 0.999


def test_auto_exclude(broken, tmp_path: Path) -> None:
    config, _ = broken
    result = pyrt.quantize(config, output=tmp_path / "auto.onnx", auto_exclude=True, progress=False)
    assert result.auto_excluded == [FFN2]
    assert f"{FFN2} (ignore_op_names)" in result.excluded
    assert result.analysis.outputs[0].cosine > 0.999


def test_layer_values_against_onnxruntime(broken) -> None:
    """LayerValues gives what onnxruntime computes: from Session.run(keep=...) when the
    tensors survive compilation, else (the int8 MatMul's float output, folded into its int8
    kernel) from the model compiled with them as outputs; graph outputs asked for too."""
    config, result = broken
    x = {"x": np.load(Path(config["model_parameters"]["onnx_model"]).parent / "data" / "x0.npy")}
    out = result.model.graph.output[0].name
    for model, names, extended in (
        (onnx.load(config["model_parameters"]["onnx_model"]), ["layer0/ln1", out], False),
        (result.model, ["layer0/attn/softmax_QuantizeLinear_Output"], False),
        (result.model, [out, FFN2, "layer0/attn/softmax"], True),
    ):
        reader = LayerValues(model, names)
        ours = reader(x)
        assert reader.extended == extended and list(ours) == names
        reference = onnx.ModelProto()
        reference.CopyFrom(model)
        for n in names:
            if n != out:
                elem = TensorProto.UINT8 if n.endswith("_Output") else TensorProto.FLOAT
                reference.graph.output.append(helper.make_tensor_value_info(n, elem, None))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        ref = ort.InferenceSession(reference.SerializeToString(), options).run(names, x)
        for n, r in zip(names, ref):
            if r.dtype == np.uint8:  # int8 codes: one step apart on few elements at most
                diff = np.abs(ours[n].astype(int) - r)
                assert diff.max() <= 1 and np.mean(diff > 0) < 0.01, n
            else:
                np.testing.assert_allclose(
                    ours[n], r, rtol=1e-3, atol=2e-3 * np.abs(r).max(), err_msg=n
                )
        assert np.array_equal(layer_values(model, x, names)[names[0]], ours[names[0]])


def test_metrics_match_an_independent_computation(broken) -> None:
    """SNR and cosine of a row, recomputed from onnxruntime's FP32 and QDQ-reference values."""
    config, result = broken
    fp32 = onnx.load(config["model_parameters"]["onnx_model"])
    folder = Path(config["model_parameters"]["onnx_model"]).parent / "data"
    samples = [{"x": np.load(folder / f"x{i}.npy")} for i in range(4)]
    report = analyze(fp32, result.model, samples)
    tensor = "layer1/ffn/residual"
    row = next(r for r in report.rows if r.tensor == tensor)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    q_name = next(
        n.output[0]
        for n in result.model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0].startswith(tensor + "_")
    )
    qm = onnx.ModelProto()
    qm.CopyFrom(result.model)
    qm.graph.output.append(helper.make_tensor_value_info(q_name, TensorProto.FLOAT, None))
    fm = onnx.ModelProto()
    fm.CopyFrom(fp32)
    fm.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None))
    q_sess = ort.InferenceSession(qm.SerializeToString(), options)
    f_sess = ort.InferenceSession(fm.SerializeToString(), options)
    snrs, coss = [], []
    for s in samples:
        q = q_sess.run([q_name], s)[0].ravel().astype(np.float64)
        f = f_sess.run([tensor], s)[0].ravel().astype(np.float64)
        snrs.append(np.sum((q - f) ** 2) / np.sum(f**2))
        coss.append(q @ f / np.linalg.norm(q) / np.linalg.norm(f))
    assert row.snr == pytest.approx(np.mean(snrs), rel=0.05)
    assert row.cosine == pytest.approx(np.mean(coss), abs=0.01)
    assert row.f_min < 0 < row.f_max and sum(row.hist) == 4 * 16 * 32


def test_report_files(broken) -> None:
    _, result = broken
    paths = result.reports
    assert set(paths) == {"markdown", "png", "html"}
    assert all(p.parent == result.output.parent for p in paths.values())
    md = paths["markdown"].read_text()
    assert "| Op | Var | SNR |" in md and f"| {FFN2}[MatMul] | {FFN2} | **" in md
    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths["html"].read_text()
    # Self-contained: the plot inline, nothing fetched from anywhere.
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)
    assert base64.b64decode(page.split("base64,")[1].split('"')[0]) == png
    assert not re.search(r'(src|href)="(?!data:)', page) and "<link" not in page
    assert "<script" not in page and "@import" not in page
    assert page.count('class="flag"') == len(result.analysis.flagged)


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        install = subprocess.run(
            ["bash", str(ROOT / "tools" / "install_chromium.sh")], capture_output=True, timeout=960
        )
        exe = shutil.which("chromium")
        if install.returncode != 0 or exe is None:
            pytest.skip(f"chromium cannot be installed here: {install.stderr.decode()[-300:]}")
    return exe


def test_html_page_renders_in_headless_chromium(broken, tmp_path: Path) -> None:
    _, result = broken
    shot = tmp_path / "shot.png"
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,2000",
        f"--screenshot={shot}",
        result.reports["html"].resolve().as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=120, check=True)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape == (2000, 1280, 3)

    def has(color: tuple[int, int, int]) -> int:
        return int(np.sum(np.all(np.abs(img - color) <= 8, axis=-1)))

    assert has((31, 119, 180)) > 500  # the plot's blue bars: the inline PNG is drawn
    assert has((214, 39, 40)) > 100  # its red (flagged) bars
    assert has((253, 226, 226)) > 1000  # the flagged rows' background: inline CSS applies
    assert img.std() > 20  # a page, not a blank screen


def test_cli_analyze(broken, tmp_path: Path, capsys) -> None:
    config, result = broken
    listing = config["calibration_parameters"]["input_parametres"][0]["data_list_path"]
    stem = tmp_path / "cli"
    code = main(
        [
            "analyze",
            "--fp32",
            config["model_parameters"]["onnx_model"],
            "--int8",
            str(result.output),
            "--data",
            listing,
            "--samples",
            "4",
            "--out",
            str(stem),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "analysis on 4 samples" in out and f"keep in FP32 (ignore_op_names): {FFN2}" in out
    assert (tmp_path / "cli.report.html").exists() and (tmp_path / "cli.snr.png").exists()


def test_cli_auto_exclude_needs_a_config(broken, capsys) -> None:
    config, result = broken
    argv = ["analyze", "--fp32", config["model_parameters"]["onnx_model"]]
    assert main([*argv, "--int8", str(result.output), "--auto-exclude"]) == 2
    assert "give its --config" in capsys.readouterr().err


def test_cli_analyze_auto_exclude_rewrites_the_model(broken, tmp_path: Path, capsys) -> None:
    config, _ = broken
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    int8 = tmp_path / "enc.q.onnx"
    fp32 = config["model_parameters"]["onnx_model"]
    argv = ["analyze", "--fp32", fp32, "--int8", str(int8), "--config", str(tmp_path / "cfg.json")]
    assert main([*argv, "--auto-exclude"]) == 0
    out = capsys.readouterr().out
    assert f"rewrote {int8}; kept in FP32: {FFN2} (ignore_op_names)" in out
    assert "0 flagged" in out and (tmp_path / "enc.q.report.html").exists()
