"""onnx's shape inference, and the process pyrt runs it in.

onnx's C++ shape inference aborts or segfaults on some malformed models (its wheels are
built with libstdc++ assertions; e.g. a Slice of a dimension that a bad Pad made
negative). graph.py therefore sends each model here, to a Python process of its own,
started once as a new program (fork + exec, never a bare fork: that is unsafe in a
process with threads and tears down OpenBLAS's thread pool); a crash kills only it.

Run as a script (`python -I _infer_worker.py SYS_PATH_JSON`), it imports only onnx, says
READY, then answers requests on stdin/stdout until stdin closes:
    request:  u64 size, f64 timeout (seconds), `size` bytes of a serialized ModelProto
    reply:    1 status byte (TYPED or FAILED), u64 size, `size` bytes of a GraphProto
A request that outlives its timeout ends the worker with SIGALRM.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import struct
import sys

READY, TYPED, FAILED = b"R", b"T", b"F"
REQUEST = struct.Struct("<Qd")
REPLY = struct.Struct("<cQ")


def infer(data: bytes) -> bytes | None:
    """Serialized model in, serialized typed names out (value_info, inputs, outputs);
    None when onnx's inference raises (a help, not a requirement: the caller goes on)."""
    import onnx  # here, not at the top: the worker sets sys.path first

    try:
        model = onnx.ModelProto.FromString(data)
        out = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    except Exception:
        return None
    typed = onnx.GraphProto()
    typed.value_info.extend(out.value_info)
    typed.input.extend(out.input)
    typed.output.extend(out.output)
    return typed.SerializeToString()


def _read(stream, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def main() -> None:
    sys.path[:] = json.loads(sys.argv[1])  # find onnx where the parent process finds it
    importlib.import_module("onnx.shape_inference")  # before saying READY
    reply = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not reach the replies
    timer = getattr(signal, "setitimer", None)
    if timer is not None:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the alarm ends this process
    reply.write(READY)
    reply.flush()
    requests = sys.stdin.buffer
    while (head := _read(requests, REQUEST.size)) is not None:
        size, timeout = REQUEST.unpack(head)
        data = _read(requests, size)
        if data is None:
            return
        if timer is not None:
            timer(signal.ITIMER_REAL, timeout)
        typed = infer(data)
        if timer is not None:
            timer(signal.ITIMER_REAL, 0)
        payload = typed or b""
        reply.write(REPLY.pack(FAILED if typed is None else TYPED, len(payload)) + payload)
        reply.flush()


if __name__ == "__main__":
    main()
