"""Stage 1, load: parse an ONNX model into a checked, topologically sorted Graph.

Everything a stranger's file can get wrong is caught here, before any kernel
runs: undecodable bytes, dangling or duplicate tensor names, cycles, tensors
whose element count overflows the memory cap, and malformed initializers.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from . import _infer_worker as worker
from .errors import ModelError

DEFAULT_DOMAINS = ("", "ai.onnx")
MS_DOMAIN = "com.microsoft"
DEFAULT_MEMORY_LIMIT = 8 << 30  # bytes any single tensor may take
SUBGRAPH = "__subgraph__"  # attrs key of a node with a subgraph attribute (If, Loop, Scan)


@dataclass
class Node:
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    opset: int

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    @property
    def label(self) -> str:
        return f"{self.op_type} node '{self.name}'"


@dataclass
class TensorInfo:
    name: str
    dtype: np.dtype | None
    shape: tuple[int | str | None, ...] | None  # None: rank unknown; str/None dims: symbolic


@dataclass
class Graph:
    nodes: list[Node]
    constants: dict[str, np.ndarray]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    info: dict[str, TensorInfo]  # every tensor shape inference knows about
    opsets: dict[str, int]
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    producer: dict[str, Node] = field(default_factory=dict)
    consumers: dict[str, list[Node]] = field(default_factory=dict)

    def reindex(self) -> None:
        self.producer = {o: n for n in self.nodes for o in n.outputs if o}
        self.consumers = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    self.consumers.setdefault(i, []).append(n)

    def dtype(self, name: str) -> np.dtype | None:
        if name in self.constants:
            return self.constants[name].dtype
        info = self.info.get(name)
        return info.dtype if info else None

    def shape(self, name: str) -> tuple | None:
        if name in self.constants:
            return self.constants[name].shape
        info = self.info.get(name)
        return info.shape if info else None

    def static_shape(self, name: str) -> tuple[int, ...] | None:
        shape = self.shape(name)
        if shape is None or not all(isinstance(d, int) and d >= 0 for d in shape):
            return None
        return tuple(shape)


def read_model(model: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Accepts a path, serialized bytes or a ModelProto; anything else is a ModelError."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, origin = bytes(model), "the given bytes"
    elif isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        data, origin = path.read_bytes(), str(path)
    else:
        raise ModelError(
            f"model must be a path, bytes or onnx.ModelProto, got {type(model).__name__}"
        )
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise ModelError(f"{origin} is not an ONNX model (protobuf decode failed: {exc})") from exc
    if not proto.HasField("graph"):
        raise ModelError(f"{origin} is not an ONNX model (no graph)")
    _check_text(proto)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        if isinstance(model, (str, Path)):
            try:  # onnx refuses locations outside the model's directory
                onnx.load_external_data_for_model(proto, str(Path(model).parent))
            except Exception as exc:
                raise ModelError(f"{model}: cannot load its external data ({exc})") from exc
        else:
            raise ModelError("model uses external data; pass its path so the data can be found")
    return proto


def _check_text(proto: onnx.ModelProto) -> None:
    """Names must be text: protobuf hands back bytes for string fields that are not UTF-8."""

    def text(value, what: str) -> None:
        if not isinstance(value, str):
            raise ModelError(f"{what} is not valid UTF-8: {value!r}")

    for o in proto.opset_import:
        text(o.domain, "an opset_import domain")
    g = proto.graph
    for i, n in enumerate(g.node):
        for value in (n.name, n.op_type, n.domain, *n.input, *n.output):
            text(value, f"a name in node {i}")
        for a in n.attribute:
            text(a.name, f"an attribute name in node {i}")
    for t in g.initializer:
        text(t.name, "an initializer name")
    for vi in (*g.input, *g.output, *g.value_info):
        text(vi.name, "a graph input, output or value_info name")
        if vi.type.HasField("tensor_type"):
            for d in vi.type.tensor_type.shape.dim:
                text(d.dim_param, f"a dimension of '{vi.name}'")


def _np_dtype(elem_type: int) -> np.dtype | None:
    if elem_type == 0:
        return None
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        return None


def _tensor_info(vi: onnx.ValueInfoProto) -> TensorInfo:
    t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    if t is None:
        return TensorInfo(vi.name, None, None)
    shape = None
    if t.HasField("shape"):
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        )
    return TensorInfo(vi.name, _np_dtype(t.elem_type), shape)


def _check_size(what: str, shape: tuple, itemsize: int, limit: int) -> None:
    count = math.prod(int(d) for d in shape)
    if any(int(d) < 0 for d in shape):
        raise ModelError(f"{what}: negative dimension in shape {list(shape)}")
    if count * itemsize > limit:
        raise ModelError(
            f"{what}: shape {list(shape)} needs {count * itemsize} bytes, "
            f"over the memory limit of {limit} bytes"
        )


def _initializer(t: onnx.TensorProto, limit: int, what: str = "") -> np.ndarray:
    what = what or f"initializer '{t.name}'"
    dtype = _np_dtype(t.data_type)
    if dtype is None:
        raise ModelError(f"{what}: unsupported element type {t.data_type}")
    _check_size(what, tuple(t.dims), dtype.itemsize, limit)
    try:
        array = numpy_helper.to_array(t)
    except Exception as exc:
        raise ModelError(f"{what}: cannot decode its data ({exc})") from exc
    if array.shape != tuple(t.dims):
        raise ModelError(f"{what}: data has {array.size} elements, dims say {list(t.dims)}")
    return array


def _attrs(node: onnx.NodeProto, label: str, limit: int) -> dict[str, Any]:
    attrs = {}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            attrs[SUBGRAPH] = attrs[a.name] = a.name  # listed as unsupported by plan.py
            continue
        what = f"{label}: attribute '{a.name}'"
        try:
            value = helper.get_attribute_value(a)
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, bytes):
                    text.decode()  # string attributes must be UTF-8 text
            if isinstance(value, onnx.TensorProto):
                value = _initializer(value, limit, what)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"{what} cannot be decoded ({exc})") from exc
        attrs[a.name] = value
    return attrs


_A = onnx.AttributeProto
_SCALAR_TYPES = {
    _A.FLOAT: (float, int),
    _A.INT: (int,),
    _A.STRING: (bytes, str),
    _A.TENSOR: (np.ndarray,),
}
_LIST_TYPES = {_A.FLOATS: (float, int), _A.INTS: (int,), _A.STRINGS: (bytes, str)}


def _attr_type_ok(kind, value: Any) -> bool:
    """A decoded attribute value against its schema type (others are not checked)."""
    kind = int(kind)
    if kind in _SCALAR_TYPES:
        return isinstance(value, _SCALAR_TYPES[kind])
    if kind in _LIST_TYPES:
        return isinstance(value, list) and all(isinstance(v, _LIST_TYPES[kind]) for v in value)
    return True


def _check_arity(node: Node) -> None:
    """Required inputs present and input count within the operator's schema."""
    try:
        schema = onnx.defs.get_schema(node.op_type, node.opset, node.domain)
    except Exception:
        return  # not an ONNX-defined op: the unsupported-op check reports it if need be
    single = onnx.defs.OpSchema.FormalParameterOption.Single
    for i, formal in enumerate(schema.inputs):
        if formal.option == single and (i >= len(node.inputs) or not node.inputs[i]):
            raise ModelError(f"{node.label}: required input {i} ('{formal.name}') is missing")
    for name, attr in schema.attributes.items():
        if attr.required and name not in node.attrs:
            raise ModelError(f"{node.label}: required attribute '{name}' is missing")
    for name, value in node.attrs.items():
        spec = schema.attributes.get(name)
        if spec is not None and name != SUBGRAPH and not _attr_type_ok(spec.type, value):
            kind = onnx.AttributeProto.AttributeType.Name(int(spec.type)).lower()
            raise ModelError(f"{node.label}: attribute '{name}' must be {kind}, got {value!r}")
    if not schema.min_input <= len(node.inputs) <= schema.max_input:
        raise ModelError(
            f"{node.label}: takes {schema.min_input} to {schema.max_input} inputs, "
            f"got {len(node.inputs)}"
        )
    if not any(node.outputs) or len(node.outputs) > schema.max_output:
        raise ModelError(
            f"{node.label}: takes 1 to {schema.max_output} outputs, got {len(node.outputs)}"
        )


def toposort(nodes: list[Node], available: set[str]) -> list[Node]:
    """Kahn's algorithm; names the first node of a cycle or with a missing input."""
    produced: dict[str, Node] = {}
    for n in nodes:
        for o in n.outputs:
            if not o:
                continue
            if o in produced or o in available:
                raise ModelError(f"{n.label}: output '{o}' is already produced elsewhere")
            produced[o] = n
    for n in nodes:
        for i in n.inputs:
            if i and i not in produced and i not in available:
                raise ModelError(
                    f"{n.label}: input '{i}' is not produced by any node, input or initializer"
                )
    waiting = {id(n): sum(1 for i in n.inputs if i and i in produced) for n in nodes}
    users: dict[str, list[Node]] = {}
    for n in nodes:
        for i in n.inputs:
            if i and i in produced:
                users.setdefault(i, []).append(n)
    ready = [n for n in nodes if waiting[id(n)] == 0]
    order: list[Node] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for o in n.outputs:
            for u in users.get(o, []):
                waiting[id(u)] -= 1
                if waiting[id(u)] == 0:
                    ready.append(u)
    if len(order) != len(nodes):
        stuck = next(n for n in nodes if waiting[id(n)] > 0)
        raise ModelError(f"{stuck.label}: the graph has a cycle through this node")
    return order


def _slim(proto: onnx.ModelProto) -> bytes:
    """What shape inference reads of the model, serialized, without the values of large
    initializers (shapes never need them; small ones stay: shape inputs of Reshape ...)."""
    g = proto.graph
    graph = onnx.GraphProto(
        node=g.node,
        input=g.input,
        output=g.output,
        value_info=g.value_info,
        sparse_initializer=g.sparse_initializer,
    )
    for t in g.initializer:
        if math.prod(t.dims) <= 4096:
            graph.initializer.append(t)
        else:
            graph.initializer.add(name=t.name, dims=t.dims, data_type=t.data_type)
    model = onnx.ModelProto(
        ir_version=proto.ir_version,
        opset_import=proto.opset_import,
        functions=proto.functions,
        graph=graph,
    )
    return model.SerializeToString()


class _Worker:
    """The shape-inference worker process (pyrt/_infer_worker.py), one per pyrt process,
    started on first use and again after a model crashed it; requests take turns."""

    lock = threading.Lock()
    process: subprocess.Popen | None = None

    @classmethod
    def start(cls) -> subprocess.Popen | None:
        """None when no worker can run here (no Python executable, onnx not importable)."""
        if not sys.executable:
            return None
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", worker.__file__, json.dumps([str(p) for p in sys.path])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # onnx's assertion messages: the error says it all
                start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
            )
        except OSError:
            return None
        if process.stdout.read(1) != worker.READY:
            process.kill()
            process.wait()
            return None
        return process

    @classmethod
    def stop(cls) -> None:
        process, cls.process = cls.process, None
        if process is not None:
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):  # a flush into a dead worker's pipe
                    pipe.close()

    @classmethod
    def forget(cls) -> None:
        """In a forked child: the parent's worker and lock are the parent's."""
        cls.lock = threading.Lock()
        cls.process = None

    @classmethod
    def infer(cls, data: bytes, timeout: float) -> bytes | None:
        with cls.lock:
            if cls.process is None or cls.process.poll() is not None:
                cls.stop()
                cls.process = cls.start()
                if cls.process is None:
                    return worker.infer(data)  # no isolation to be had: run it here
            process = cls.process
            try:
                process.stdin.write(worker.REQUEST.pack(len(data), timeout) + data)
                process.stdin.flush()
                head = process.stdout.read(worker.REPLY.size)
                if len(head) == worker.REPLY.size:
                    status, size = worker.REPLY.unpack(head)
                    payload = process.stdout.read(size)
                    if len(payload) == size:
                        return payload if status == worker.TYPED else None
            except BrokenPipeError:
                pass
            except BaseException:  # interrupted mid-request: its reply must not be the next's
                cls.stop()
                raise
            code = process.wait()
            cls.stop()
        if hasattr(signal, "SIGALRM") and code == -signal.SIGALRM:
            raise ModelError(f"onnx shape inference took over {timeout:g} s on this model")
        raise ModelError(
            f"onnx shape inference crashed on this model ({_how_it_ended(code)}): "
            "its shapes are malformed"
        )


def _how_it_ended(code: int) -> str:
    if code >= 0:
        return f"exit status {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


atexit.register(_Worker.stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Worker.forget)


def infer_shapes(proto: onnx.ModelProto, timeout: float = 120.0) -> onnx.GraphProto | None:
    """onnx's shape inference, in the worker process: a model that crashes it is a
    ModelError, not a dead process. None when inference fails in the ordinary way."""
    typed = _Worker.infer(_slim(proto), timeout)
    return None if typed is None else onnx.GraphProto.FromString(typed)


def load(
    model: str | Path | bytes | onnx.ModelProto, memory_limit: int = DEFAULT_MEMORY_LIMIT
) -> Graph:
    proto = read_model(model)
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in proto.opset_import}
    if not proto.opset_import:
        opsets[""] = 1
    if "" not in opsets:
        opsets[""] = 1
    if opsets[""] > 30:
        raise ModelError(f"default-domain opset {opsets['']} is newer than pyrt knows")
    typed = infer_shapes(proto)  # shape inference is a help, not a requirement
    g = proto.graph
    if typed is None:
        typed = g
    if len(g.node) == 0 and len(g.output) == 0:
        raise ModelError("the graph is empty: no nodes and no outputs")
    if len(g.output) == 0:
        raise ModelError("the graph declares no outputs")

    constants = {}
    for t in g.initializer:
        if t.name in constants:
            raise ModelError(f"initializer '{t.name}' is defined twice")
        constants[t.name] = _initializer(t, memory_limit)
    info = {vi.name: _tensor_info(vi) for vi in (*typed.value_info, *typed.input, *typed.output)}
    inputs = [_tensor_info(vi) for vi in typed.input if vi.name not in constants]
    for ti in inputs:
        if ti.dtype is None:
            raise ModelError(f"graph input '{ti.name}' has no tensor element type")
    outputs = [_tensor_info(vi) for vi in typed.output]
    names = [ti.name for ti in inputs]
    if len(set(names)) != len(names):
        raise ModelError("graph inputs have duplicate names")

    nodes, seen = [], set()
    for i, n in enumerate(g.node):
        domain = n.domain if n.domain != "ai.onnx" else ""
        name = n.name or f"{n.op_type}_{i}"
        if name in seen:  # node names identify nodes from here on
            name = f"{name}_{i}"
        seen.add(name)
        label = f"{n.op_type} node '{name}'"
        if domain not in opsets and domain != "":
            raise ModelError(f"{label}: domain '{domain}' is not in the model's opset_import")
        nodes.append(
            Node(
                name,
                n.op_type,
                domain,
                list(n.input),
                list(n.output),
                _attrs(n, label, memory_limit),
                opsets.get(domain, 1),
            )
        )
    for node in nodes:
        _check_arity(node)
    available = set(constants) | set(names)
    nodes = toposort(nodes, available)
    produced = available | {o for n in nodes for o in n.outputs}
    for ti in outputs:
        if ti.name not in produced:
            raise ModelError(f"graph output '{ti.name}' is not produced by any node")
    for name, ti in info.items():
        if ti.shape and ti.dtype is not None and all(isinstance(d, int) for d in ti.shape):
            _check_size(f"tensor '{name}'", ti.shape, ti.dtype.itemsize, memory_limit)
    graph = Graph(nodes, constants, inputs, outputs, info, opsets, memory_limit)
    graph.reindex()
    return graph
