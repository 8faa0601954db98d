"""bench/compare.py end to end on a small model, and its MAC count against hand-counted layers.

No timing assertions: speed figures come from bench/compare.py runs, not from tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import _kernels

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import compare  # noqa: E402  (bench/ is not a package)

pytest.importorskip("onnxruntime")

RECORD_KEYS = {"model", "engine", "precision", "cores", "isa", "median_ms", "p10_ms", "p90_ms"}
ENGINES = [e for e in compare.ENGINES if e == "pyrt" or importlib.util.find_spec(e)]


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory) -> Path:
    """One bench cache (built models, measured peak) for this module's runs."""
    return tmp_path_factory.mktemp("bench-cache")


def run_bench(cache: Path, *command: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYRT_BENCH_CACHE=str(cache), MPLBACKEND="Agg")
    here = str(Path(pyrt.__file__).resolve().parent.parent)  # the pyrt these tests import
    env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


BUILD = """
import sys, onnx
from pyrt import zoo
out = sys.argv[1]
fp32 = zoo.demo_cnn(size=32)
onnx.save(fp32, f"{out}/demo.onnx")
calib = zoo.calibration_data(fp32, n=2)
onnx.save(zoo.quantize_qdq(fp32, calib), f"{out}/demo_u8.onnx")
onnx.save(zoo.quantize_qdq(fp32, calib, activation_type="int8"), f"{out}/demo_s8.onnx")
onnx.save(zoo.resnet18(width=8, size=224, classes=1000), f"{out}/resnet18_narrow.onnx")
for name in ("cifar_resnet18", "mobilenet_v2"):
    onnx.save(zoo.FULL_SIZE[name](), f"{out}/{name}.onnx")
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """Zoo models built in a child process: numpy's BLAS threads in a test process that has
    run onnxruntime and started subprocesses can crawl on a busy machine (issue 11)."""
    out = tmp_path_factory.mktemp("models")
    result = run_bench(out, "-c", BUILD, str(out))
    assert result.returncode == 0, result.stderr
    return out


def run_compare(cache: Path, *args: str) -> subprocess.CompletedProcess:
    return run_bench(cache, str(REPO / "bench" / "compare.py"), *args)


def test_compare_end_to_end(tmp_path, bench_cache):
    """Every engine times every precision of the demo CNN; JSON, markdown and chart written."""
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is in the bench extra")
    out, chart = tmp_path / "out.json", tmp_path / "out.png"
    result = run_compare(
        bench_cache,
        *("--models", "demo_cnn", "--rounds", "2", "--warmup", "1", "--cores", "1"),
        *("--engines", ",".join(ENGINES), "--isa", "scalar"),
        *("--json", str(out), "--plot", str(chart), "--markdown"),
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(out.read_text())
    precisions = ["fp32", "int8-u8", "int8-s8"]
    assert sorted((r["precision"], r["engine"]) for r in records) == sorted(
        (p, e) for p in precisions for e in ENGINES
    )
    for r in records:
        assert set(r) == RECORD_KEYS, r
        assert r["model"] == "demo_cnn" and r["cores"] == 1
        assert r["isa"] == ("scalar" if r["engine"] == "pyrt" else "native")
        assert 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"], r
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| model | precision | engine | median ms |" in result.stdout
    assert "note:" not in result.stdout, result.stdout  # engines agree; OpenVINO ran int8
    rows = [line for line in result.stdout.splitlines() if line.startswith("| demo_cnn |")]
    assert len(rows) == len(records) + 1  # one per record, and the model's summary row


def test_compare_model_files(tmp_path, bench_cache, models):
    """An FP32 file is quantized both ways; a quantized file runs as it is, named by its stem."""
    out = tmp_path / "out.json"
    result = run_compare(
        bench_cache,
        *("--models", str(models / "demo.onnx"), str(models / "demo_s8.onnx")),
        *("--engines", "pyrt,onnxruntime", "--rounds", "1", "--warmup", "0", "--json", str(out)),
    )
    assert result.returncode == 0, result.stderr
    runs = sorted((r["model"], r["precision"], r["engine"]) for r in json.loads(out.read_text()))
    expected = [("demo", p, e) for p in ("fp32", "int8-s8", "int8-u8") for e in ENGINES[:2]]
    assert runs == sorted(expected + [("demo_s8", "int8-s8", e) for e in ENGINES[:2]])


def test_compare_refuses_bad_arguments(bench_cache):
    for args, message in [
        (("--engines", "pyrt,tensorflow"), "unknown engine 'tensorflow'"),
        (("--cores", "0"), "--cores must be >= 1"),
        (("--isa", "no-such-isa"), "--isa no-such-isa"),
        (("--models", "no-such-model"), "neither a zoo model"),
    ]:
        result = run_compare(bench_cache, "--rounds", "1", *args)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_kernel_benchmarks_run(tmp_path, bench_cache):
    """bench/test_kernels_bench.py, one round of each case on every ISA: the adapter still
    fits pyrt's kernel wrappers, and every result carries GMAC/s against the peak."""
    out = tmp_path / "kernels.json"
    result = run_bench(
        bench_cache,
        *("-m", "pytest", "bench/", "-q", "-p", "no:cacheprovider", "--benchmark-warmup=off"),
        *("--benchmark-min-rounds=1", "--benchmark-max-time=0", f"--benchmark-json={out}"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    infos = [b["extra_info"] for b in json.loads(out.read_text())["benchmarks"]]
    isas = _kernels.isa_available()
    assert sorted({i["isa"] for i in infos}) == sorted(isas)
    assert len(infos) == len(isas) * len({(i["kernel"], tuple(i["dims"])) for i in infos})
    for info in infos:
        assert info["macs"] > 0 and info["gmac_per_s"] > 0, info
        if info["cpu_peak_gmac_per_s"]:  # x86 with a C compiler
            assert info["pct_of_cpu_peak"] > 0, info
    assert "GMAC/s per kernel" in result.stdout


def resnet18_macs(width: int, size: int, classes: int, stem: str) -> int:
    """ResNet-18's multiply-accumulates counted by hand, layer by layer."""
    if stem == "imagenet":  # 7x7/2 conv, then 3x3/2 max pool
        h = size // 2
        macs, h = width * h * h * 3 * 49, h // 2
    else:  # 3x3/1 conv
        h, macs = size, width * size * size * 3 * 9
    cin = width
    for stage in range(4):
        cout = width * 2**stage
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            h = (h - 1) // stride + 1
            macs += cout * h * h * 9 * (cin + cout)  # two 3x3 convs
            macs += cout * h * h * cin if stride != 1 or cin != cout else 0  # 1x1 shortcut
            cin = cout
    return macs + cin * classes


def test_count_macs_resnet18(models):
    """Against the hand count, which gives torchvision's 1.814 GMAC for ImageNet ResNet-18
    (built narrow here: the full-width builder is slow on a busy machine)."""
    assert resnet18_macs(64, 224, 1000, "imagenet") == 1_814_073_344
    narrow = onnx.load(models / "resnet18_narrow.onnx")
    assert compare.count_macs(narrow) == resnet18_macs(8, 224, 1000, "imagenet")
    cifar = onnx.load(models / "cifar_resnet18.onnx")
    assert compare.count_macs(cifar) == resnet18_macs(64, 32, 10, "cifar") == 555_422_720


def test_count_macs_mobilenet_v2_and_qdq(models):
    """MobileNetV2 1.0 at 224: 300M multiply-adds (Sandler et al.); the QDQ graph counts
    the same as its FP32 original."""
    assert abs(compare.count_macs(onnx.load(models / "mobilenet_v2.onnx")) - 300e6) < 3e6
    fp32, qdq = (onnx.load(models / f) for f in ("demo.onnx", "demo_u8.onnx"))
    assert compare.count_macs(qdq) == compare.count_macs(fp32) > 0


def test_count_macs_matmul_and_gemm():
    w = numpy_helper.from_array(np.ones((16, 4), np.float32), "w")
    g = numpy_helper.from_array(np.ones((3, 4), np.float32), "g")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"]),
            helper.make_node("Reshape", ["y", "shape"], ["flat"]),
            helper.make_node("Gemm", ["flat", "g"], ["z"], transB=1),
        ],
        "macs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8, 16])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [w, g, numpy_helper.from_array(np.array([8, 4], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert compare.count_macs(model) == 8 * 16 * 4 + 8 * 4 * 3  # batch counts as 1


def test_openvino_int8_check(models):
    """The check behind the 'OpenVINO runs INT8' claim: none of an FP32 model's matrix layers,
    all of its QDQ twin's."""
    ov = pytest.importorskip("openvino")
    counts = [
        compare.openvino_int8_layers(ov.Core().compile_model(str(models / name), "CPU"))
        for name in ("demo.onnx", "demo_u8.onnx")
    ]
    (fp32_int8, fp32_all), (qdq_int8, qdq_all) = counts
    assert fp32_int8 == 0 and fp32_all == qdq_all == qdq_int8 > 0, counts


def test_disagreements_flag_a_wrong_engine():
    y = np.linspace(-1, 1, 10, dtype=np.float32)
    outputs = {
        ("m", "fp32", "onnxruntime"): y,
        ("m", "fp32", "pyrt"): y + 1e-4,
        ("m", "fp32", "openvino"): y[::-1].copy(),  # fast and wrong
        ("m", "int8-u8", "pyrt"): y,  # no onnxruntime: compared with the first engine
        ("m", "int8-u8", "openvino"): np.zeros(3, np.float32),  # wrong shape
    }
    notes = compare.disagreements(outputs)
    assert len(notes) == 2 and all("openvino m" in n for n in notes), notes
