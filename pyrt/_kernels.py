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
    return ffi.cast(ctype, ffi.from_buffer(array))  # 3x faster than array.ctypes.data


class Context:
    """A C execution context: one kernel table (ISA), `threads` workers and their scratch.

    isa None takes $PYRT_ISA, else the best table this CPU runs. Contexts are
    independent, so sessions with different ISAs or thread counts coexist.
    """

    def __init__(self, isa: str | None = None, threads: int = 1):
        out = ffi.new("pyrt_context **")
        check(lib.pyrt_context_create(isa.encode() if isa else ffi.NULL, int(threads), out))
        self.ptr = ffi.gc(out[0], lib.pyrt_context_destroy)
        self.isa = ffi.string(lib.pyrt_context_isa(self.ptr)).decode()
        self.threads = int(threads)
        self.vector_bits = int(lib.pyrt_context_vector_bits(self.ptr))  # VLEN on RISC-V

    def __repr__(self) -> str:
        return f"Context(isa={self.isa!r}, threads={self.threads})"


_default: dict[str, Context] = {}
_current: list[str] = []


def default_context() -> Context:
    """The single-threaded context the numpy wrappers use when given none (see set_isa)."""
    if not _current:
        ctx = Context()
        _default[ctx.isa] = ctx
        _current.append(ctx.isa)
    return _default[_current[-1]]


def isa() -> str:
    """The ISA of the default context."""
    return default_context().isa


def isa_available() -> list[str]:
    return ffi.string(lib.pyrt_isa_available()).decode().split(",")


def isa_default() -> str:
    """The ISA a new context takes: $PYRT_ISA if set, else the best this CPU runs."""
    return ffi.string(lib.pyrt_isa_default()).decode()


def set_isa(name: str) -> None:
    """Switch the default context (tests and benchmarks); sessions keep their own."""
    if name not in _default:
        _default[name] = Context(name)
    default_context()
    _current[-1] = name
