"""Load-time checks of QuantizeLinear / DequantizeLinear nodes, before the matcher absorbs them."""

from __future__ import annotations

import numpy as np
from onnx import helper

from .errors import ModelError, UnsupportedOpError
from .graph import Graph, Node
from .patterns import valid_scale

QUANT_DTYPES = {  # ONNX TensorProto element type -> numpy, for Q's output_dtype
    2: np.uint8,
    3: np.int8,
    4: np.uint16,
    5: np.int16,
    6: np.int32,
}


def _np_dtype_of(elem_type: int) -> np.dtype | None:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        return None


def _check_quant_dtype(node: Node, dtype: np.dtype, what: str) -> None:
    """The integer type of a Q output / DQ input, as the node's opset allows it."""
    allowed = [np.dtype(np.uint8), np.dtype(np.int8)]
    if node.op_type == "DequantizeLinear":
        allowed.append(np.dtype(np.int32))
    if node.opset >= 21:
        allowed += [np.dtype(np.uint16), np.dtype(np.int16)]
    if dtype in allowed:
        return
    if dtype.name.startswith(("float8", "float4", "int4", "uint4")) and node.opset >= 19:
        raise UnsupportedOpError(f"{node.label}: {what} of type {dtype} is not supported")
    raise ModelError(
        f"{node.label}: {what} has type {dtype}; {node.op_type}-{node.opset} allows "
        f"{', '.join(str(d) for d in allowed)}"
    )


def validate_quant_nodes(g: Graph) -> None:
    """Every ONNX Q/DQ node checked at load, before patterns absorb any of them."""
    for node in g.nodes:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.domain == "":
            validate_quant_node(node, g)


def validate_quant_node(node: Node, g: Graph) -> None:
    """Load-time checks of a Q/DQ node's constant scale, zero point and axis."""
    if len(node.inputs) < 2 or not node.inputs[1]:
        raise ModelError(f"{node.label}: needs a scale input")
    scale = g.constants.get(node.inputs[1])
    zero = g.constants.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    x_dtype = g.dtype(node.inputs[0])
    if scale is not None:
        valid_scale(node, scale)
    if node.op_type == "DequantizeLinear" and x_dtype is not None:
        _check_quant_dtype(node, np.dtype(x_dtype), "input")
    out_type = int(node.attr("output_dtype", 0))
    if node.op_type == "QuantizeLinear" and out_type:
        out_dtype = _np_dtype_of(out_type)
        if out_dtype is None:
            raise ModelError(f"{node.label}: output_dtype {out_type} is not a tensor type")
        _check_quant_dtype(node, out_dtype, "output_dtype")
        if zero is not None and zero.dtype != out_dtype:
            raise ModelError(
                f"{node.label}: output_dtype {out_dtype} differs from the zero point's {zero.dtype}"
            )
    if zero is not None:
        if zero.dtype.kind not in "iu":
            _check_quant_dtype(node, zero.dtype, "zero point")
            raise ModelError(
                f"{node.label}: zero point must be an integer tensor, got {zero.dtype}"
            )
        _check_quant_dtype(node, zero.dtype, "zero point")
        if scale is not None and zero.shape != scale.shape and zero.size != scale.size:
            raise ModelError(
                f"{node.label}: zero point shape {list(zero.shape)} differs from "
                f"scale shape {list(scale.shape)}"
            )
        if node.op_type == "DequantizeLinear" and x_dtype is not None and zero.dtype != x_dtype:
            raise ModelError(f"{node.label}: zero point is {zero.dtype} but the data is {x_dtype}")
    shape = g.shape(node.inputs[0])
    if scale is not None and (scale.size > 1 or node.attr("block_size", 0)) and shape is not None:
        axis = int(node.attr("axis", 1))
        if not -len(shape) <= axis < len(shape):
            raise ModelError(
                f"{node.label}: axis {axis} is out of range for a rank-{len(shape)} input"
            )
        dim = shape[axis]
        if not node.attr("block_size", 0) and scale.ndim != 1:
            raise ModelError(
                f"{node.label}: per-axis scale must be 1-D, got shape {list(scale.shape)}"
            )
        if isinstance(dim, int) and not node.attr("block_size", 0) and scale.size != dim:
            raise ModelError(
                f"{node.label}: per-axis scale has {scale.size} values, axis {axis} has {dim}"
            )
