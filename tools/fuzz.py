"""Long fuzzing run: the properties of tests/test_fuzz.py with many fresh random examples.

    python tools/fuzz.py --examples 100000              # every property, new randomness
    python tools/fuzz.py --examples 20000 -k structural  # one property
    python tools/fuzz.py --examples 5000 --asan          # on an ASan + UBSan build
    python tools/fuzz.py --seed 1234                     # replay a run

A crash (or a hang, which the watchdog turns into an abort) kills the pytest process before
hypothesis can shrink anything, so every example's model and inputs are written to
--save-dir first: after a crash, `last.onnx` and `last.npz` there reproduce it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def asan_env(build: Path) -> dict[str, str]:
    """Builds the kernels with -DPYRT_SANITIZE=ON and returns the environment that loads them."""
    cc = shutil.which("gcc")
    if shutil.which("cmake") is None or cc is None:
        sys.exit("--asan needs cmake and gcc")
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            "-DPYRT_SANITIZE=ON",
            "-DCMAKE_C_COMPILER=gcc",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, stdout=subprocess.DEVNULL)
    preload = []
    for lib in ("libasan.so", "libstdc++.so"):
        path = subprocess.run(
            [cc, f"-print-file-name={lib}"], capture_output=True, text=True
        ).stdout.strip()
        if not os.path.isabs(path):
            sys.exit(f"gcc cannot find {lib}")
        preload.append(path)
    return {
        "PYRT_KERNELS": str(build / "libpyrt_kernels.so"),
        "LD_PRELOAD": " ".join(preload),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000, help="examples per property")
    parser.add_argument("-k", default="", help="pytest -k expression selecting properties")
    parser.add_argument("--seed", type=int, help="hypothesis seed (default: fresh randomness)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per 50 examples")
    parser.add_argument("--asan", action="store_true", help="run on an ASan + UBSan build")
    parser.add_argument("--save-dir", type=Path, default=ROOT / "build" / "fuzz")
    args = parser.parse_args()

    args.save_dir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        PYRT_FUZZ_EXAMPLES=str(args.examples),
        PYRT_FUZZ_RANDOM="1",
        PYRT_FUZZ_TIMEOUT=str(args.timeout),
        PYRT_FUZZ_SAVE=str(args.save_dir),
    )
    if args.asan:
        # two levels down: pyrt's own search (build/*/libpyrt_kernels.so) must not find it
        env.update(asan_env(ROOT / "build" / "fuzz" / "asan"))
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "tests" / "test_fuzz.py"),
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
    ]
    if args.k:
        command += ["-k", args.k]
    if args.seed is not None:
        command.append(f"--hypothesis-seed={args.seed}")
    print(" ".join(command), flush=True)
    status = subprocess.call(command, env=env, cwd=ROOT)
    if status < 0 or status in (134, 139):
        name = signal.Signals(-status).name if status < 0 else f"exit {status}"
        print(
            f"\nthe fuzzer crashed ({name}); the example that did it is in "
            f"{args.save_dir}/last.onnx with inputs {args.save_dir}/last.npz",
            file=sys.stderr,
        )
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
