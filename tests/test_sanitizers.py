"""The kernel, op, model, hostile-input, thread and fuzz tests again, on a build of the
kernels with AddressSanitizer + UndefinedBehaviorSanitizer (cmake -DPYRT_SANITIZE=ON).

Any out-of-bounds access, use after free or undefined behaviour in C aborts the child
pytest, which fails this test with the sanitizer's report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "test_kernels_qmatmul.py",
    "test_kernels_tiles.py",
    "test_kernels_float_quant.py",
    "test_kernels_elem_simd.py",
    "test_kernels_fp32.py",
    "test_kernels_cnn.py",
    "test_ops_cnn.py",
    "test_ops.py",
    "test_models.py",
    "test_reliability.py",
    "test_bad_models.py",
    "test_bad_inputs.py",
    "test_concurrency.py",
    "test_fuzz.py",
    "test_program.py",
    "test_attention_kernel.py",
    "test_float_elementwise.py",
]


def _gcc_file(cc: str, name: str) -> str:
    path = subprocess.run(
        [cc, f"-print-file-name={name}"], capture_output=True, text=True
    ).stdout.strip()
    assert os.path.isabs(path) and os.path.exists(path), f"gcc has no {name} (got {path!r})"
    return path


@pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("gcc") is None,
    reason="needs cmake and gcc (both present in CI, where this test runs)",
)
def test_kernels_and_models_under_asan_ubsan(tmp_path):
    cc = shutil.which("gcc")
    build = tmp_path / "asan"
    configure = [
        "cmake",
        "-S",
        str(ROOT),
        "-B",
        str(build),
        "-DPYRT_SANITIZE=ON",
        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
        f"-DCMAKE_C_COMPILER={cc}",
    ]
    for step in (configure, ["cmake", "--build", str(build), "-j2"]):
        done = subprocess.run(step, capture_output=True, text=True)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    library = build / "libpyrt_kernels.so"
    binary = library.read_bytes()
    assert b"__asan_" in binary and b"__ubsan_handle" in binary, "the build is not instrumented"

    # libasan must come first; libstdc++ next, else C++ exceptions in onnx abort under ASan.
    preload = " ".join(_gcc_file(cc, lib) for lib in ("libasan.so", "libstdc++.so"))
    env = dict(
        os.environ,
        PYRT_KERNELS=str(library),
        LD_PRELOAD=preload,
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=1",
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        PYRT_SANITIZED="1",
        PYRT_FUZZ_EXAMPLES="100",
        PYRT_FUZZ_RANDOM="0",
    )
    env.pop("PYRT_FUZZ_SAVE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *(str(ROOT / "tests" / name) for name in TESTS),
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not rss",  # RSS under ASan's allocator measures ASan, not pyrt
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    tail = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, tail
    assert "passed" in result.stdout, tail
    output = result.stdout + result.stderr
    assert "Sanitizer" not in output and "runtime error:" not in output, tail


@pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("gcc") is None,
    reason="needs cmake and gcc (both present in CI, where this test runs)",
)
def test_thread_pool_under_tsan(tmp_path):
    """Callers sharing a multi-threaded context, and each with its own, on every table."""
    build = tmp_path / "tsan"
    configure = [
        "cmake",
        "-S",
        str(ROOT),
        "-B",
        str(build),
        "-DPYRT_SANITIZE_THREAD=ON",
        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
        f"-DCMAKE_C_COMPILER={shutil.which('gcc')}",
    ]
    for step in (configure, ["cmake", "--build", str(build), "-j2"]):
        done = subprocess.run(step, capture_output=True, text=True)
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1")
    result = subprocess.run(
        [str(build / "pool_stress")], env=env, capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "ThreadSanitizer" not in output, output[-6000:]
    assert "scalar: 0 mismatches" in output
