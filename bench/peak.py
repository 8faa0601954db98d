"""The measured peak multiply-accumulate rate of one core of this CPU, per x86 ISA.

    python bench/peak.py            # measure (once per CPU; cached) and print

peak.c, compiled with the system C compiler ($CC, else cc) for each ISA level
the CPU has (flags from /proc/cpuinfo), runs register loops of independent
int8 dot products (vpdpbusd zmm / ymm, or AVX2 vpmaddwd) and fp32 FMAs, and
reports GMAC/s (one MAC = one multiply-add: 2 flops). The AVX2 int8 figure is
the exact 16-bit vpmaddwd path; a kernel on vpmaddubsw with bounded operands can
pass it, so the CPU's peak (the best ISA) is the yardstick. The result is
cached in the bench cache (cache_dir()) under the CPU's name and flags.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().with_name("peak.c")

# pyrt ISA name -> (/proc/cpuinfo flags it needs, compiler flags), best first
ISA_FLAGS = {
    "avx512vnni": (
        {"avx512_vnni", "avx512bw", "avx512f", "fma"},
        "-mavx512vnni -mavx512bw -mavx512f -mfma",
    ),
    "avxvnni": ({"avx_vnni", "avx2", "fma"}, "-mavxvnni -mavx2 -mfma"),
    "avx2": ({"avx2", "fma"}, "-mavx2 -mfma"),
}


@dataclass(frozen=True)
class Peak:
    """One core's register-loop rate for one ISA level."""

    isa: str
    int8_gmacs: float
    fp32_gmacs: float
    int8_op: str
    fp32_op: str


def cache_dir() -> Path:
    """The bench harness's cache: $PYRT_BENCH_CACHE, else ~/.cache/pyrt-bench."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pyrt-bench"
    path = Path(os.environ.get("PYRT_BENCH_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cpu() -> tuple[str, set[str]]:
    """This CPU's model name and feature flags (Linux /proc/cpuinfo)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            name = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
            break
    return name, flags


def measure(isa: str) -> Peak:
    """Compile peak.c for `isa` and run it (about 2 s)."""
    cc = os.environ.get("CC") or shutil.which("cc") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        exe = str(Path(tmp) / "peak")
        flags = ISA_FLAGS[isa][1].split()
        subprocess.run([cc, "-O2", *flags, str(SOURCE), "-o", exe], check=True, capture_output=True)
        out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout.split()
    return Peak(isa, float(out[0]), float(out[1]), out[2], out[3])


def peaks() -> dict[str, Peak]:
    """Peak per ISA level this CPU has, best first; {} off x86 or without a compiler."""
    name, flags = cpu()
    usable = [isa for isa, (need, _) in ISA_FLAGS.items() if need <= flags]
    key = hashlib.sha256(f"{name}|{sorted(flags)}|{SOURCE.read_text()}".encode()).hexdigest()
    cache = cache_dir() / f"peak-{key[:16]}.json"
    if cache.exists():
        return {p["isa"]: Peak(**p) for p in json.loads(cache.read_text())}
    result = {}
    for isa in usable:
        try:
            result[isa] = measure(isa)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"peak: {isa} register loop failed: {e}", file=sys.stderr)
    cache.write_text(json.dumps([asdict(p) for p in result.values()], indent=1))
    return result


def cpu_peak() -> tuple[float | None, float | None]:
    """(int8, fp32) GMAC/s of one core at its best ISA; None where unmeasured."""
    found = peaks().values()
    int8 = max((p.int8_gmacs for p in found), default=None)
    fp32 = max((p.fp32_gmacs for p in found), default=None)
    return int8, fp32


if __name__ == "__main__":
    print(f"{cpu()[0]}: one core")
    for p in peaks().values():
        print(
            f"  {p.isa:<11} int8 {p.int8_gmacs:7.1f} GMAC/s ({p.int8_op})   "
            f"fp32 {p.fp32_gmacs:6.1f} GMAC/s ({p.fp32_op})"
        )
