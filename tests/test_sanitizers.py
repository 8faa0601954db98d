"""The kernel, model and fuzz tests again, on a build with AddressSanitizer + UBSan."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _preload() -> str | None:
    """libasan first, then libstdc++ (else C++ exceptions in onnx abort under ASan)."""
    cc = shutil.which("gcc")
    if cc is None:
        return None
    paths = []
    for lib in ("libasan.so", "libstdc++.so"):
        out = subprocess.run([cc, f"-print-file-name={lib}"], capture_output=True, text=True)
        path = out.stdout.strip()
        if not (os.path.isabs(path) and os.path.exists(path)):
            return None
        paths.append(path)
    return " ".join(paths)


@pytest.mark.skipif(
    shutil.which("cmake") is None or _preload() is None,
    reason="needs cmake and gcc's libasan (both present in CI)",
)
def test_kernels_and_models_under_asan_ubsan(tmp_path):
    build = tmp_path / "asan"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            "-DPYRT_SANITIZE=ON",
            "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
            "-DCMAKE_C_COMPILER=gcc",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    library = build / "libpyrt_kernels.so"
    env = dict(
        os.environ,
        PYRT_KERNELS=str(library),
        LD_PRELOAD=_preload(),
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        PYRT_SANITIZED="1",
    )
    tests = [
        str(ROOT / "tests" / name)
        for name in (
            "test_kernels_qmatmul.py",
            "test_kernels_float_quant.py",
            "test_ops.py",
            "test_models.py",
            "test_reliability.py",
            "test_bad_models.py",
            "test_bad_inputs.py",
            "test_fuzz.py",
        )
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *tests,
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not rss",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, tail
    assert "passed" in result.stdout, tail
