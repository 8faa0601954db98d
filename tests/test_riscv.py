"""pyrt on riscv64 under QEMU: kernels, whole models, the wheel, the instruction counts.

tools/riscv64.sh setup (cached; seconds when cached) brings the cross compiler, QEMU 7.2
and 10 and a riscv64 Python userland. Emulated Python starts take about 5 s, so the work
is batched into a few processes. Every model output must be bit-identical to pyrt's on
this machine: the scalar C kernels are the same everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import pyrt
from pyrt import _kernels, zoo

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "riscv64.sh"
pytestmark = pytest.mark.riscv

# Runs in the emulated Python: every model of the folder, outputs saved beside it.
GUEST = """
import sys
from pathlib import Path
import numpy as np
import pyrt
folder = Path(sys.argv[1])
x = np.load(folder / "x.npy")
for path in sorted(folder.glob("*.onnx")):
    outputs = pyrt.Session(path).run({"input": x})
    np.savez(folder / f"{path.stem}.{sys.argv[2]}.npz", *outputs)
print("isa", pyrt._kernels.isa())
"""


def riscv64(*args: str, env: dict | None = None, timeout: float = 900) -> str:
    result = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, f"riscv64.sh {args[:3]}: {result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def toolchain() -> dict[str, str]:
    riscv64("setup")
    riscv64("build")
    riscv64("build", "--board")
    return dict(line.split("=", 1) for line in riscv64("env").split())


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """The demo CNN in FP32 and QDQ (u8 and s8 activations), an input, pyrt's x86 outputs."""
    folder = tmp_path_factory.mktemp("riscv_models")
    fp32 = zoo.demo_cnn()
    calib = zoo.calibration_data(fp32, n=4)
    onnx.save(fp32, folder / "demo_fp32.onnx")
    for act in ("uint8", "int8"):
        onnx.save(zoo.quantize_qdq(fp32, calib, activation_type=act), folder / f"demo_{act}.onnx")
    x = calib[1]["input"]
    np.save(folder / "x.npy", x)
    for path in folder.glob("*.onnx"):
        np.savez(folder / f"{path.stem}.x86.npz", *pyrt.Session(path).run({"input": x}))
    return folder


def assert_same_outputs(folder: Path, flavour: str) -> None:
    for path in sorted(folder.glob("*.onnx")):
        ours = np.load(folder / f"{path.stem}.x86.npz")
        theirs = np.load(folder / f"{path.stem}.{flavour}.npz")
        assert ours.files == theirs.files
        for key in ours.files:
            assert ours[key].dtype == theirs[key].dtype
            assert np.array_equal(ours[key], theirs[key]), f"{path.stem} {flavour} output {key}"


def parse_kernel_check(text: str) -> dict[str, str]:
    """case -> scalar output hash, from the `ok` lines; fails on any FAIL line."""
    failures = [line for line in text.splitlines() if line.startswith("FAIL")]
    assert not failures, "\n".join(failures[:20])
    return {
        line.rsplit(" ", 2)[0][3:]: line.rsplit(" ", 2)[1]
        for line in text.splitlines()
        if line.startswith("ok ")
    }


def test_kernels_match_scalar_and_x86_at_every_vlen(toolchain, tmp_path):
    native = tmp_path / "kernel_check"
    library = Path(_kernels.LIBRARY_PATH)
    subprocess.run(
        ["cc", "-O2", "-std=c11", f"-I{ROOT / 'kernels' / 'include'}", "-o", str(native),
         str(ROOT / "tests" / "riscv" / "kernel_check.c"), str(library),
         f"-Wl,-rpath,{library.parent}", "-lm"],
        check=True,
    )  # fmt: skip
    x86 = parse_kernel_check(subprocess.run([str(native)], capture_output=True, text=True).stdout)
    assert len(x86) > 100
    for flavour, vlens in (("", ("128", "256", "512")), ("--board", ("256", "512"))):
        out = riscv64("test-kernels", *([flavour] if flavour else []))
        sections = out.split("== VLEN ")[1:]
        assert [s.split("\n", 1)[0] for s in sections] == list(vlens), out[-2000:]
        for section in sections:
            assert f"{len(x86)} passed, 0 failed" in section
            assert parse_kernel_check(section) == x86, f"riscv64 {flavour} scalar != x86"


def test_info_reports_the_isa(toolchain):
    out = riscv64("run", "python3", "-m", "pyrt", "info")
    assert "on riscv64" in out
    assert "\nisa rvv (VLEN 256, available: scalar, rvv)" in out
    assert "build-riscv64/baseline/libpyrt_kernels.so" in out


@pytest.mark.parametrize("flavour", ["baseline", "board"])
def test_models_bit_identical_to_x86(toolchain, models, flavour):
    board = ["--board"] if flavour == "board" else []
    out = riscv64("run", *board, "python3", "-c", GUEST, str(models), flavour)
    assert out.startswith("isa rvv")
    assert_same_outputs(models, flavour)


def test_wheel_installs_and_runs_under_emulation(toolchain, models, tmp_path):
    wheel = Path(riscv64("wheel").strip().splitlines()[-1])
    assert wheel.name.endswith("-py3-none-linux_riscv64.whl")
    site = tmp_path / "site"
    install = (
        "import sys\n"
        "from pip._internal.cli.main import main\n"
        f"assert main(['install', '--no-deps', '--no-index', '--no-compile', '-q',"
        f" '--target', {str(site)!r}, {str(wheel)!r}]) == 0\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import pyrt\n"
        f"assert pyrt.__file__.startswith({str(site)!r}), pyrt.__file__\n"
        "assert pyrt._kernels.LIBRARY_PATH.startswith(pyrt.__file__.rsplit('/', 1)[0])\n"
    ) + GUEST.replace("sys.argv[1]", repr(str(models))).replace("sys.argv[2]", "'wheel'")
    riscv64("run", "--installed", "python3", "-c", install)
    for path in models.glob("*.onnx"):
        np.testing.assert_array_equal(
            np.load(models / f"{path.stem}.x86.npz")["arr_0"],
            np.load(models / f"{path.stem}.wheel.npz")["arr_0"],
        )


def test_plugin_counts_scalar_vector_and_marked_regions(toolchain, tmp_path):
    exe, counts = tmp_path / "plugin_check", tmp_path / "counts.json"
    subprocess.run(
        [toolchain["ZIGCC"], "-target", "riscv64-linux-gnu.2.36",
         "-mcpu=baseline_rv64+v+zba+zbb+zbs", "-O1", "-o", str(exe),
         str(ROOT / "tests" / "riscv" / "plugin_check.c"), str(ROOT / "tools" / "profile_mark.c")],
        check=True,
    )  # fmt: skip
    cmd = [toolchain["QEMU7"], "-L", toolchain["SYSROOT"], "-cpu",
           "rv64,v=true,vlen=128,elen=64,vext_spec=v1.0",
           "-plugin", f"{toolchain['PLUGIN']},outfile={counts}", str(exe)]  # fmt: skip
    assert subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.startswith(
        "plugin_check done"
    )
    data = json.loads(counts.read_text())
    regions = {r["id"]: r for r in data["regions"]}
    assert sorted(regions) == [0, 5, 6, 100000]
    assert data["marks"] == 1 + 1 + 3 * 2 + 2
    r5, r6 = regions[5], regions[6]
    assert (r5["entries"], r5["vector"], r5["vsetvl"]) == (1, 6, 1)
    assert 2 <= r5["scalar"] < 200  # flw, fld and the next mark's own instructions
    assert (r6["entries"], r6["vector"], r6["vsetvl"]) == (3, 3 * 1001, 3)
    assert regions[100000]["entries"] == 1 and regions[100000]["vector"] == 0
    for key in ("insns", "scalar", "vector", "vsetvl"):
        assert sum(r[key] for r in data["regions"]) == data["total"][key]
    assert data["total"]["insns"] == data["total"]["scalar"] + data["total"]["vector"]


def test_bench_counts_instructions_per_layer(toolchain, models):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import qemu
    finally:
        sys.path.pop(0)
    x = np.load(models / "x.npy")
    model = onnx.load(models / "demo_uint8.onnx")
    expected_y = np.load(models / "demo_uint8.x86.npz")["arr_0"]
    scalar = qemu.run_model(model, {"input": x}, runs=1, warmup=1, isa="scalar", layers=True)
    rvv = qemu.run_model(model, {"input": x}, runs=1, warmup=1, isa="rvv", layers=True)
    for r in (scalar, rvv):
        np.testing.assert_array_equal(r.outputs["logits"], expected_y)
    assert (scalar.isa, rvv.isa) == ("scalar", "rvv")
    # demo_cnn's convolutions and FC, by hand: (out elements) x (in channels / group x kernel)
    expected = {
        "conv2": 32 * 32 * 32 * 3 * 9, "conv11": 32 * 16 * 16 * 32 * 9,
        "conv19": 32 * 16 * 16 * 32 * 9, "conv28": 32 * 8 * 8 * 9,
        "conv38": 64 * 8 * 8 * 32, "conv48": 64 * 8 * 8 * 64 * 9, "gemm59": 10 * 64,
    }  # fmt: skip
    assert qemu.layer_macs(model) == expected
    assert scalar.macs == rvv.macs == sum(expected.values())
    steps = [s.node.name for s in pyrt.Session(model)._steps]
    for r in (scalar, rvv):
        assert [layer.name for layer in r.layers] == steps
        layer_insns = sum(layer.counts.insns for layer in r.layers)
        # the marked runs skip Session.run's input checks and output copies: the
        # steps are most of an inference
        marked = layer_insns + r.between_layers.insns
        assert 0.7 * r.per_run.insns < marked < r.per_run.insns
        assert r.load.insns > 0 and r.ms > 0
    convs = {name: i for i, name in enumerate(steps) if name in expected and name != "gemm59"}
    for name, i in convs.items():
        s, v = scalar.layers[i], rvv.layers[i]
        assert s.counts.vector == 0, f"{name}: the scalar table ran vector instructions"
        assert v.counts.vector > 0 and v.counts.insns < s.counts.insns, name
        if expected[name] > 1_000_000:  # where the kernel, not Python, dominates
            assert v.counts.insns < s.counts.insns / 3, name
    assert scalar.insns_per_mac > 5 * rvv.insns_per_mac
