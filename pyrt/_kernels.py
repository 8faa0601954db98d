"""cffi (ABI mode) binding of the C kernel library.

The library and its header ship inside the package; PYRT_KERNELS=/path/lib.so
loads another build (a sanitizer or cross-compiled one). No compiler is needed
to import pyrt.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cffi
import numpy as np

from .errors import KernelError

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent
_LIB_NAME = "libpyrt_kernels.so"


def _header_text() -> str:
    for path in (_HERE / "kernels.h", _REPO / "kernels" / "include" / "pyrt" / "kernels.h"):
        if path.exists():
            text = path.read_text()
            break
    else:
        raise ImportError("pyrt: kernels.h not found next to the package")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _library_path() -> str:
    override = os.environ.get("PYRT_KERNELS")
    if override:
        return override
    for path in (_HERE / _LIB_NAME, *sorted(_REPO.glob(f"build/*/{_LIB_NAME}"))):
        if path.exists():
            return str(path)
    raise ImportError(
        f"pyrt: {_LIB_NAME} not found in {_HERE}; install pyrt with `pip install .` "
        "or point PYRT_KERNELS at a build of it"
    )


ffi = cffi.FFI()
ffi.cdef(_header_text())
LIBRARY_PATH = _library_path()
lib = ffi.dlopen(LIBRARY_PATH)

DTYPE_CODE = {
    np.dtype(np.uint8): lib.PYRT_U8,
    np.dtype(np.int8): lib.PYRT_S8,
    np.dtype(np.int32): lib.PYRT_S32,
    np.dtype(np.float32): lib.PYRT_F32,
}


def dtype_code(dtype: np.dtype) -> int:
    return DTYPE_CODE[np.dtype(dtype)]


def check(status: int) -> None:
    """Raise KernelError when a kernel returned a non-zero status."""
    if status != lib.PYRT_OK:
        raise KernelError(ffi.string(lib.pyrt_last_error()).decode() or f"kernel status {status}")


def ptr(array: np.ndarray | None, ctype: str = "void *"):
    """Pointer to a C-contiguous array's data (NULL for None)."""
    if array is None:
        return ffi.NULL
    assert array.flags.c_contiguous, "kernel arguments must be C-contiguous"
    return ffi.cast(ctype, array.ctypes.data)


def isa() -> str:
    return ffi.string(lib.pyrt_isa()).decode()


def isa_available() -> list[str]:
    return ffi.string(lib.pyrt_isa_available()).decode().split(",")


def set_isa(name: str) -> None:
    check(lib.pyrt_set_isa(name.encode()))
