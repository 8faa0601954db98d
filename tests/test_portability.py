"""The kernels stay portable C11: they build warning-free for riscv64 with clang (zig cc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_kernels_cross_compile_for_riscv64(tmp_path):
    x86 = ("_avx2.c", "_avxvnni.c", "_avx512vnni.c")  # built for x86 only (CMakeLists.txt)
    sources = sorted(
        str(p) for p in (ROOT / "kernels" / "src").rglob("*.c") if not p.name.endswith(x86)
    )
    out = tmp_path / "libpyrt_kernels_rv64.so"
    cmd = [
        sys.executable,
        "-m",
        "ziglang",
        "cc",
        "-target",
        "riscv64-linux-gnu",
        "-mcpu=baseline_rv64+v",
        "-std=c11",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-ffp-contract=off",
        f"-I{ROOT / 'kernels' / 'include'}",
        f"-I{ROOT / 'kernels' / 'src'}",
        "-shared",
        "-fPIC",
        "-o",
        str(out),
        *sources,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes()[:4] == b"\x7fELF"
    assert out.read_bytes()[18] == 0xF3  # e_machine: RISC-V
