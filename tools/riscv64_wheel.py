"""Write a linux_riscv64 wheel of pyrt around a cross-built kernel library.

    python tools/riscv64_wheel.py --library build-riscv64/baseline/libpyrt_kernels.so --out dist

tools/riscv64.sh wheel [--board] calls this after cross-compiling. The wheel holds the
pyrt package, the library and its header (pyrt/_kernels.py loads them with cffi in ABI
mode, so there is no CPython extension and one wheel serves every Python 3): tag
py3-none-linux_riscv64. Its metadata comes from pyproject.toml. The board build gets a
local version suffix (+x60) so the two flavours are told apart.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
TAG = "py3-none-linux_riscv64"


def with_extra(dep: str, extra: str) -> str:
    """A requirement of an extra: its own environment marker (if any) and the extra's."""
    req, _, marker = dep.partition(";")
    condition = f'extra == "{extra}"'
    if marker.strip():
        condition = f"({marker.strip()}) and {condition}"
    return f"{req.strip()}; {condition}"


def metadata(project: dict, version: str) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
        f"License: {project['license']['text']}",
    ]
    lines += [f"Requires-Dist: {dep}" for dep in project["dependencies"]]
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {with_extra(dep, extra)}" for dep in deps]
    readme = (ROOT / project["readme"]).read_text()
    return "\n".join(lines) + "\nDescription-Content-Type: text/markdown\n\n" + readme


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build(library: Path, flavour: str, out: Path) -> Path:
    if library.read_bytes()[:4] != b"\x7fELF" or library.read_bytes()[18] != 0xF3:
        raise SystemExit(f"{library}: not a RISC-V ELF shared library")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = project["version"] + ("+x60" if flavour == "board" else "")
    dist = f"{project['name']}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted((ROOT / "pyrt").rglob("*.py")):
        files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    files["pyrt/libpyrt_kernels.so"] = library.read_bytes()
    files["pyrt/kernels.h"] = (ROOT / "kernels/include/pyrt/kernels.h").read_bytes()
    files[f"{dist}/METADATA"] = metadata(project, version).encode()
    files[f"{dist}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: pyrt tools/riscv64_wheel.py\n"
        f"Root-Is-Purelib: false\nTag: {TAG}\n"
    ).encode()
    scripts = project.get("scripts", {})
    files[f"{dist}/entry_points.txt"] = (
        "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
    ).encode()
    record = [record_line(name, data) for name, data in files.items()]
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{project['name']}-{version}-{TAG}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--flavour", choices=["baseline", "board"], default="baseline")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    print(build(args.library, args.flavour, args.out))


if __name__ == "__main__":
    main()
