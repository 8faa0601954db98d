"""Matchers for what transformer encoders write (called from patterns.fuse).

They turn the pieces of an encoder layer, in the forms exporters and
onnxruntime's quantizer write them, into a few fused ops (domain "pyrt"):

  QBatchMatMul  a_q, b_q -> y   DQ -> MatMul -> (Mul/Div by a scalar)* -> Q?
                                with no constant 2-D operand (Q x K^T, P x V):
                                attrs qa, qb (QParams), out (OutputStage)
  BatchMatMul   a, b -> y       fp32 MatMul of two activations
  Softmax       x (, mask) -> y   DQ? -> (Div/Mul scalar)? -> (Add mask)? ->
                                Softmax(last axis) -> Q?: attrs qx, qy (None =
                                float), x_mul / x_div (the Mul's or the Div's
                                scalar, the other 1: each rounds as the op does)
  LayerNorm     x (, residual) -> y, y_q, sum   DQ? -> (Add bias)? -> (Add
                                DQ?(residual))? -> LayerNormalization(last
                                axis) -> float and / or Q outputs, and the sum
                                when a pre-LN block reuses it: attrs qx, qr,
                                bias, gamma, beta, epsilon, qy
  MaskChain     mask -> y       Unsqueeze/Reshape* -> Cast -> (Sub/Mul/Add/Div/
                                Where/Equal/Not with constants)* of an integer
                                mask: one numpy step (attrs nodes); constant
                                masks are folded at load
  BiasAct       x -> y          DQ? -> (Add bias)? -> GELU (Erf chain, tanh
                                chain or Gelu) -> Q?, and DQ -> Add bias ->
                                (Reshape/Transpose...)* -> Q with the data
                                movement moved after Q, and fp32 Add bias ->
                                movement: attrs act, qx, bias, qy
  Attention     q, k, v (, mask) -> y   QBatchMatMul -> Softmax -> QBatchMatMul
                                (or BatchMatMul -> float Softmax -> BatchMatMul),
                                made by fuse_attention after the matchers: the
                                tiled kernel (kernels.attention), reading Q, K, V
                                through the head-splitting Reshape / Transpose /
                                Gather as strided views and writing through the
                                head merging: attrs moves, out_moves, x_mul, x_div,
                                quant (AttentionQuant, None = fp32)

Data movement (Reshape, Transpose, ...) between a DQ and a fused op, or between
a fused op and its Q, runs on the int8 data instead (it commutes with per-tensor
Q / DQ), as onnxruntime's pre-processing leaves 2-D Gemms between Reshapes.
Every fused op means exactly what the nodes it replaces mean; the float math
inside runs in C kernels (pyrt/kernels.py: qmatmul, softmax, layernorm,
activation, attention).
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels as K
from .graph import Graph, Node, toposort
from .kernels import QParams
from .patterns import INT8, Matcher, QInput, _lut_node, _same, real_const

# Data movement that commutes with per-tensor Q/DQ and keeps the last axis
# where a per-channel bias needs it only when it comes after the bias Add.
MOVEMENT = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten")


def attention_matchers(node: Node) -> list:
    """The matchers of this module that may start at `node` (tried before patterns')."""
    if node.domain != "":
        return []
    return {
        "MatMul": [match_batch_matmul, match_float_batch_matmul],
        "Softmax": [match_softmax],
        "LayerNormalization": [match_layernorm],
        "Erf": [match_gelu],
        "Tanh": [match_gelu],
        "Gelu": [match_gelu],
        "Add": [match_bias_movement],
        "Cast": [match_mask_chain],
        "Equal": [match_mask_chain],
        **{op: [match_movement] for op in (*MOVEMENT, "Gather")},
    }.get(node.op_type, [])


# ---- helpers ----------------------------------------------------------------


def _quantized(m: Matcher, name: str) -> QInput | None:
    q = m.dq(name)
    if q is None or not q.per_tensor or q.dtype not in INT8:
        return None
    return q


def _only_feeds(m: Matcher, name: str, node: Node) -> bool:
    """`name` is used by `node` alone (so fusing it away loses nothing)."""
    return m.sole_consumer(name) is node


def _scalar(m: Matcher, name: str) -> float | None:
    value = real_const(m, name)
    if value is None or value.size != 1:
        return None
    return float(value.reshape(-1)[0])


def _other(node: Node, name: str) -> str:
    return node.inputs[1] if node.inputs[0] == name else node.inputs[0]


def _q_of(m: Matcher, name: str) -> tuple[QParams, Node] | None:
    q = m.q_node(name)
    qp = m.q_params(q) if q is not None else None
    return (qp, q) if qp is not None else None


def _last_axis(node: Node, rank: int | None, default: int) -> bool:
    axis = int(node.attr("axis", default))
    return axis == -1 or (rank is not None and axis == rank - 1)


def _rank(m: Matcher, name: str) -> int | None:
    shape = m.shape(name)
    return None if shape is None else len(shape)


def _f32_const(m: Matcher, name: str) -> np.ndarray | None:
    """A float32 constant: an initializer, or DQ of an integer one (quantize_static's
    "everything quantized" form) rounded as DequantizeLinear computes it in float32."""
    if m.g.dtype(name) != np.float32:
        return None
    value = real_const(m, name)
    return None if value is None else value.astype(np.float32)


def _bias_of(m: Matcher, add: Node) -> tuple[np.ndarray, str] | None:
    """Add(bias, t) with a constant 1-D float bias: (bias, t)."""
    if add.op_type != "Add" or add.domain != "" or len(add.inputs) != 2:
        return None
    for i in (0, 1):
        value = _f32_const(m, add.inputs[i])
        if value is not None and value.ndim == 1:
            return value, add.inputs[1 - i]
    return None


def _prologue(m: Matcher, name: str, consumers: list[Node]):
    """What feeds `name`: DQ? -> (Add bias)?, or DQ -> movement+ (run on the int8
    data instead), each used only by `consumers`.

    Returns (source tensor, qx or None, bias or None, nodes taken, new nodes)."""
    producer = m.g.producer.get(name)
    users = m.g.consumers.get(name, [])
    exclusive = name not in m.outputs and {id(u) for u in users} <= {id(c) for c in consumers}
    if producer is not None and exclusive:
        found = _bias_of(m, producer)
        if found is not None:
            bias, src = found
            q = _quantized(m, src)
            if q is not None:
                return q.tensor, q.qparams(), bias, [producer], []
            if m.g.dtype(src) == np.float32:
                return src, None, bias, [producer], []
        moves, t = [], name
        while (
            producer is not None
            and _is_move(m, producer, producer.inputs[0] if producer.inputs else "")
            and (not moves or _only_feeds(m, t, moves[0]))
        ):
            moves.insert(0, producer)
            t = producer.inputs[0]
            producer = m.g.producer.get(t)
        q = _quantized(m, t) if moves and _only_feeds(m, t, moves[0]) else None
        if q is not None:
            new, out = _moved(m, q.tensor, moves, q.dtype, None)
            return out, q.qparams(), None, moves, new
    q = _quantized(m, name)
    if q is not None:
        return q.tensor, q.qparams(), None, [], []
    return name, None, None, [], []


def _moved(m: Matcher, src: str, moves: list[Node], dtype, final: str | None):
    """The movement nodes rewritten to run on int8 data from src; the last writes
    `final` (None: a fresh name). Returns (nodes, output)."""
    nodes, out = [], src
    for i, op in enumerate(moves):
        last = i == len(moves) - 1
        dst = final if last and final else m.fresh(op.outputs[0])
        attrs = dict(op.attrs, fused=[], int_dtype=dtype)
        nodes.append(
            Node(op.name, op.op_type, op.domain, [out, *op.inputs[1:]], [dst], attrs, op.opset)
        )
        out = dst
    return nodes, out


def _quantized_tail(m: Matcher, out: str):
    """out -> movement* -> per-tensor Q: (qy, the Q node, the movement nodes), or None."""
    chain = _movement_chain(m, out)
    if chain is None:
        return None
    moves, q_in = chain
    found = _q_of(m, q_in)
    if found is None:
        return None
    return found[0], found[1], moves


def _emit_quantized(m: Matcher, out: str, taken: list[Node]):
    """Where a fused op writes when its output is quantized after movement:
    (qy or None, the tensor it writes, nodes to emit after it)."""
    tail = _quantized_tail(m, out)
    if tail is None:
        return None, out, []
    qy, qnode, moves = tail
    taken += [*moves, qnode]
    if not moves:
        return qy, qnode.outputs[0], []
    start = m.fresh(out)
    after, _ = _moved(m, start, moves, qy.dtype, qnode.outputs[0])
    return qy, start, after


def _fused(node: Node, op: str, inputs: list[str], outputs: list[str], attrs: dict, taken):
    attrs["fused"] = [node.name, *(t.name for t in taken if t is not node)]
    return Node(node.name, op, "pyrt", inputs, outputs, attrs, 0)


# ---- Q x K^T, P x V -------------------------------------------------------------


def match_batch_matmul(m: Matcher, node: Node) -> list[Node] | None:
    """DQ(a) x DQ(b) where b is not a constant 2-D weight (patterns.match_matmul's)."""
    if len(node.inputs) != 2:
        return None
    a, b = _quantized(m, node.inputs[0]), _quantized(m, node.inputs[1])
    if a is None or b is None:
        return None
    w = m.const(b.tensor)
    if w is not None and w.ndim == 2:
        return None
    ranks = _rank(m, node.inputs[0]), _rank(m, node.inputs[1])
    if None in ranks or min(ranks) < 2:
        return None
    acc_scale = np.array([float(a.scale.reshape(-1)[0]) * float(b.scale.reshape(-1)[0])])
    out, bias, taken, out_name = m.output_stage(node.outputs[0], acc_scale, None, -1, max(ranks))
    if bias is not None and np.any(bias):  # an added constant: not a scale
        return None
    return [
        _fused(
            node,
            "QBatchMatMul",
            [a.tensor, b.tensor],
            [out_name],
            dict(qa=a.qparams(), qb=b.qparams(), out=out),
            taken,
        )
    ]


def match_float_batch_matmul(m: Matcher, node: Node) -> list[Node] | None:
    """fp32 MatMul of two activations (an FP32 encoder's Q x K^T and P x V)."""
    if len(node.inputs) != 2:
        return None
    if any(m.const(i) is not None or real_const(m, i) is not None for i in node.inputs):
        return None  # weights: patterns.match_matmul or plan's fp32 GEMM
    if any(m.g.dtype(i) != np.float32 for i in node.inputs):
        return None
    ranks = _rank(m, node.inputs[0]), _rank(m, node.inputs[1])
    if None in ranks or min(ranks) < 2:
        return None
    return [_fused(node, "BatchMatMul", list(node.inputs), list(node.outputs), {}, [node])]


# ---- Softmax ------------------------------------------------------------------------


def match_softmax(m: Matcher, node: Node) -> list[Node] | None:
    if not _last_axis(node, _rank(m, node.inputs[0]), -1 if node.opset >= 13 else 1):
        return None
    if len(node.outputs) != 1:
        return None
    taken, mask, x_mul, x_div = [node], None, 1.0, 1.0
    name = node.inputs[0]
    add = m.g.producer.get(name)
    if add is not None and add.op_type == "Add" and add.domain == "" and _only_feeds(m, name, node):
        # scores + mask: the scores have the sum's shape, the mask broadcasts
        out_shape = m.shape(add.outputs[0])
        full = [i for i in add.inputs if out_shape is not None and m.shape(i) == out_shape]
        score = full[0] if len(full) == 1 else add.inputs[0]
        mask, name = _other(add, score), score
        if m.g.dtype(mask) != np.float32:
            return None
        taken.append(add)
    scale = m.g.producer.get(name)
    if (
        scale is not None
        and scale.op_type in ("Div", "Mul")
        and scale.domain == ""
        and _only_feeds(m, name, taken[-1])
    ):
        c = _scalar(m, scale.inputs[1])
        if c is not None and c != 0 and math.isfinite(c):
            if scale.op_type == "Div":
                x_div = c
            else:
                x_mul = c
            name = scale.inputs[0]
            taken.append(scale)
    q = _quantized(m, name)
    if q is None and m.g.dtype(name) != np.float32:
        return None
    src = q.tensor if q is not None else name
    qy, out, after = _emit_quantized(m, node.outputs[0], taken)
    attrs = dict(qx=q.qparams() if q else None, qy=qy, x_mul=x_mul, x_div=x_div)
    inputs = [src, *([mask] if mask else [])]
    return [_fused(node, "Softmax", inputs, [out], attrs, taken), *after]


# ---- LayerNormalization -------------------------------------------------------------


def _reduce_mean_last(m: Matcher, node: Node | None, x: str) -> bool:
    """node = ReduceMean(x) over the last axis, keepdims (axes an attribute before opset
    18, an input from 18 on)."""
    if node is None or node.op_type != "ReduceMean" or node.domain != "":
        return False
    if node.inputs[0] != x or not node.attr("keepdims", 1):
        return False
    if node.opset >= 18:
        axes = m.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
        axes = None if axes is None else [int(a) for a in axes.reshape(-1)]
    else:
        axes = node.attr("axes")
        axes = None if axes is None else [int(a) for a in axes]
    rank = _rank(m, x)
    return (
        axes is not None
        and len(axes) == 1
        and (axes[0] == -1 or (rank is not None and axes[0] == rank - 1))
    )


def _user(m: Matcher, name: str, op: str) -> Node | None:
    user = m.sole_consumer(name)
    return user if user is not None and user.op_type == op and user.domain == "" else None


def _layernorm_chain(m: Matcher, mean: Node) -> tuple[list[Node], Node] | None:
    """ReduceMean -> Sub -> Pow 2 (or Mul d d) -> ReduceMean -> Add eps -> Sqrt -> Div ->
    Mul gamma -> Add beta?, as PyTorch exports LayerNorm below opset 17: (the nodes, the
    LayerNormalization that means the same), or None."""
    x = mean.inputs[0]
    if not _reduce_mean_last(m, mean, x):
        return None
    sub = _user(m, mean.outputs[0], "Sub")
    if sub is None or sub.inputs != [x, mean.outputs[0]]:
        return None
    d = sub.outputs[0]
    users = m.g.consumers.get(d, [])
    square = next((u for u in users if u.op_type in ("Pow", "Mul") and u.domain == ""), None)
    div = next((u for u in users if u.op_type == "Div" and u.domain == ""), None)
    if square is None or div is None or len(users) != 2 or d in m.outputs:
        return None
    if square.op_type == "Pow" and not (
        square.inputs[0] == d and _scalar(m, square.inputs[1]) == 2
    ):
        return None
    if square.op_type == "Mul" and square.inputs != [d, d]:
        return None
    var = _user(m, square.outputs[0], "ReduceMean")
    if not _reduce_mean_last(m, var, square.outputs[0]):
        return None
    add = _user(m, var.outputs[0], "Add")
    eps = None if add is None else _scalar(m, _other(add, var.outputs[0]))
    sqrt = None if add is None else _user(m, add.outputs[0], "Sqrt")
    if eps is None or eps < 0 or sqrt is None or div.inputs != [d, sqrt.outputs[0]]:
        return None
    if m.sole_consumer(sqrt.outputs[0]) is not div:
        return None
    mul = _user(m, div.outputs[0], "Mul")
    gamma = None if mul is None else _other(mul, div.outputs[0])
    shape = m.shape(x)
    if gamma is None or _f32_const(m, gamma) is None or not shape:
        return None
    if _f32_const(m, gamma).shape != (shape[-1],):
        return None
    nodes, out, inputs = [mean, sub, square, var, add, sqrt, div, mul], mul.outputs[0], [x, gamma]
    bias = _user(m, out, "Add")
    beta = None if bias is None else _f32_const(m, _other(bias, out))
    if beta is not None and beta.shape == (shape[-1],):
        nodes, out, inputs = [*nodes, bias], bias.outputs[0], [*inputs, _other(bias, out)]
    ln = Node(mean.name, "LayerNormalization", "", inputs, [out], dict(axis=-1, epsilon=eps), 17)
    return nodes, ln


def canonical_layernorms(g: Graph) -> None:
    """Decomposed LayerNorms (PyTorch's export below opset 17) become LayerNormalization
    nodes, so the LayerNorm matcher fuses them as it fuses the op (and they run on
    onnxruntime's LayerNorm arithmetic, as onnxruntime's optimizer fuses them too)."""
    m = Matcher(g)
    replace: dict[str, Node] = {}
    drop: set[str] = set()
    for node in g.nodes:
        if node.op_type != "ReduceMean" or node.name in drop:
            continue
        found = _layernorm_chain(m, node)
        if found is not None:
            nodes, ln = found
            replace[node.name] = ln
            drop.update(n.name for n in nodes[1:])
    if replace:
        g.nodes = [replace.get(n.name, n) for n in g.nodes if n.name not in drop]
        g.reindex()


def match_layernorm(m: Matcher, node: Node) -> list[Node] | None:
    if not _last_axis(node, _rank(m, node.inputs[0]), -1):
        return None
    if any(o for o in node.outputs[1:]):  # Mean / InvStdDev wanted
        return None
    gamma = _f32_const(m, node.inputs[1])
    beta = _f32_const(m, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    if gamma is None or gamma.ndim != 1:
        return None
    if len(node.inputs) > 2 and node.inputs[2] and (beta is None or beta.shape != gamma.shape):
        return None
    taken, residual, qr, sum_out = [node], None, None, ""
    name = node.inputs[0]
    add = m.g.producer.get(name)
    if (
        add is not None
        and _bias_of(m, add) is None
        and add.op_type == "Add"
        and add.domain == ""
        and len(add.inputs) == 2
        and all(m.g.dtype(i) == np.float32 for i in add.inputs)
    ):
        # pre-LN blocks use the sum again: the kernel writes it too
        sum_out = "" if _only_feeds(m, name, node) else name
        # the branch is the operand behind a DQ or a bias Add, the other the residual
        # (a bias Add beats a DQ, which beats a float tensor)
        options = [(_prologue(m, t, [add]), other) for t, other in (add.inputs, add.inputs[::-1])]
        (src, qx, bias, more, pre), residual = max(
            options, key=lambda o: (o[0][2] is not None, o[0][1] is not None)
        )
        taken += [add, *more]
        q = _quantized(m, residual)
        if q is not None:
            residual, qr = q.tensor, q.qparams()
    else:
        src, qx, bias, more, pre = _prologue(m, name, [node])
        taken += more
    if qx is None and m.g.dtype(src) != np.float32:
        return None
    out, after = node.outputs[0], []
    users = m.g.consumers.get(out, [])
    qnode = next(
        (
            u
            for u in users
            if u.op_type == "QuantizeLinear"
            and u.domain in ("", "com.microsoft")
            and m.q_params(u) is not None
        ),
        None,
    )
    if qnode is not None:
        qy, q_out = m.q_params(qnode), qnode.outputs[0]
        taken.append(qnode)
        float_out = out if out in m.outputs or any(u is not qnode for u in users) else ""
    elif len(users) == 1 and out not in m.outputs:  # LN -> Reshape -> Q, or a float user
        qy, q_out, after = _emit_quantized(m, out, taken)
        q_out, float_out = (q_out, "") if qy is not None else ("", out)
    else:
        qy, q_out, float_out = None, "", out
    attrs = dict(
        qx=qx,
        qr=qr,
        bias=bias,
        gamma=gamma,
        beta=beta,
        epsilon=float(node.attr("epsilon", 1e-5)),
        qy=qy,
    )
    inputs = [src, *([residual] if residual else [])]
    outputs = [float_out, q_out, sum_out]
    return [*pre, _fused(node, "LayerNorm", inputs, outputs, attrs, taken), *after]


# ---- GELU and bias + requantization ---------------------------------------------------


def _near(value: float | None, want: float) -> bool:
    return value is not None and abs(value - want) <= 1e-6 * abs(want)


def _gelu_erf(m: Matcher, erf: Node) -> tuple[str, list[Node], str] | None:
    """x -> Div(sqrt 2) | Mul(1/sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5 (or with x * 0.5
    computed first). Returns (x, nodes, output)."""
    pre = m.g.producer.get(erf.inputs[0])
    if pre is None or pre.op_type not in ("Div", "Mul") or not _only_feeds(m, erf.inputs[0], erf):
        return None
    c = _scalar(m, pre.inputs[1])
    want = math.sqrt(2.0) if pre.op_type == "Div" else 1 / math.sqrt(2.0)
    if not _near(c, want):
        return None
    x = pre.inputs[0]
    one = m.sole_consumer(erf.outputs[0])
    if one is None or one.op_type != "Add" or not _near(_scalar(m, _other(one, erf.outputs[0])), 1):
        return None
    mul = m.sole_consumer(one.outputs[0])
    if mul is None or mul.op_type != "Mul":
        return None
    other = _other(mul, one.outputs[0])
    if other == x:  # x * (1 + erf) then * 0.5
        half = m.sole_consumer(mul.outputs[0])
        if (
            half is None
            or half.op_type != "Mul"
            or not _near(_scalar(m, _other(half, mul.outputs[0])), 0.5)
        ):
            return None
        return x, [pre, erf, one, mul, half], half.outputs[0]
    half = m.g.producer.get(other)  # (x * 0.5) * (1 + erf)
    if (
        half is None
        or half.op_type != "Mul"
        or x not in half.inputs
        or not _near(_scalar(m, _other(half, x)), 0.5)
        or not _only_feeds(m, other, mul)
    ):
        return None
    return x, [pre, erf, one, half, mul], mul.outputs[0]


def _gelu_tanh(m: Matcher, tanh: Node) -> tuple[str, list[Node], str] | None:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) as PyTorch's approximate='tanh'
    exports it: Pow(x, 3) | Mul(x, Mul(x, x)) -> Mul 0.044715 -> Add x -> Mul c -> Tanh
    -> Add 1 -> Mul with 0.5 x."""
    inner = m.g.producer.get(tanh.inputs[0])
    if inner is None or inner.op_type != "Mul":
        return None
    if not _near(_scalar(m, inner.inputs[1]), math.sqrt(2 / math.pi)):
        return None
    add = m.g.producer.get(inner.inputs[0])
    if add is None or add.op_type != "Add":
        return None
    for x, cube_scaled in ((add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])):
        k = m.g.producer.get(cube_scaled)
        if k is None or k.op_type != "Mul" or not _near(_scalar(m, k.inputs[1]), 0.044715):
            continue
        cube = m.g.producer.get(k.inputs[0])
        if cube is None:
            continue
        if cube.op_type == "Pow" and cube.inputs[0] == x and _near(_scalar(m, cube.inputs[1]), 3):
            powers = [cube]
        elif cube.op_type == "Mul" and x in cube.inputs:
            sq = m.g.producer.get(_other(cube, x))
            if sq is None or sq.op_type != "Mul" or sq.inputs != [x, x]:
                continue
            powers = [sq, cube]
        else:
            continue
        one = m.sole_consumer(tanh.outputs[0])
        if (
            one is None
            or one.op_type != "Add"
            or not _near(_scalar(m, _other(one, tanh.outputs[0])), 1)
        ):
            return None
        mul = m.sole_consumer(one.outputs[0])
        if mul is None or mul.op_type != "Mul":
            return None
        half = m.g.producer.get(_other(mul, one.outputs[0]))
        if half is None or half.op_type != "Mul" or x not in half.inputs:
            return None
        if not _near(_scalar(m, _other(half, x)), 0.5):
            return None
        nodes = [*powers, k, add, inner, tanh, one, half, mul]
        inner_outs = {n.outputs[0] for n in nodes[:-1]}
        if any(not _only_feeds_any(m, o, nodes) for o in inner_outs):
            return None
        return x, nodes, mul.outputs[0]
    return None


def _only_feeds_any(m: Matcher, name: str, nodes: list[Node]) -> bool:
    users = m.g.consumers.get(name, [])
    return name not in m.outputs and all(any(u is n for n in nodes) for u in users)


def match_gelu(m: Matcher, node: Node) -> list[Node] | None:
    if node.op_type == "Gelu":
        approximate = node.attr("approximate", b"none")
        approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
        if approximate not in ("none", "tanh"):
            return None
        found = node.inputs[0], [node], node.outputs[0]
        act = "gelu" if approximate == "none" else "gelu_tanh"
    elif node.op_type == "Erf":
        found, act = _gelu_erf(m, node), "gelu"
    else:
        found, act = _gelu_tanh(m, node), "gelu_tanh"
    if found is None:
        return None
    x, nodes, out = found
    src, qx, bias, more, pre = _prologue(m, x, [n for n in nodes if x in n.inputs])
    if qx is None and m.g.dtype(src) != np.float32:
        return None
    taken = [*nodes, *more]
    qy, out, after = _emit_quantized(m, out, taken)
    attrs = dict(act=act, qx=qx, bias=bias, qy=qy)
    return [*pre, _fused(node, "BiasAct", [src], [out], attrs, taken), *after]


def _movement_chain(m: Matcher, name: str) -> tuple[list[Node], str] | None:
    """name -> (Reshape/Transpose/...)* -> Q: (the movement nodes, the tensor Q reads)."""
    chain = []
    while True:
        user = m.sole_consumer(name)
        if user is None:
            return None
        if _is_move(m, user, name):
            chain.append(user)
            name = user.outputs[0]
            continue
        if user.op_type == "QuantizeLinear":
            return chain, name
        return None


def _requant_then_move(
    m: Matcher, node: Node, src: str, qx: QParams, bias, chain: list[Node], q_in: str
) -> list[Node] | None:
    """BiasAct(identity) into the Q's params, then the movement ops on the int8 data."""
    found = _q_of(m, q_in)
    if found is None:
        return None
    qy, qnode = found
    moved = m.fresh(src) if chain else qnode.outputs[0]
    first = _fused(
        node,
        "BiasAct",
        [src],
        [moved],
        dict(act="identity", qx=qx, bias=bias, qy=qy),
        [node, *chain, qnode],
    )
    out, nodes = moved, [first]
    for i, op in enumerate(chain):
        last = i == len(chain) - 1
        dst = qnode.outputs[0] if last else m.fresh(op.outputs[0])
        attrs = dict(op.attrs, fused=[], int_dtype=qy.dtype)
        nodes.append(
            Node(op.name, op.op_type, op.domain, [out, *op.inputs[1:]], [dst], attrs, op.opset)
        )
        out = dst
    return nodes


def match_bias_movement(m: Matcher, node: Node) -> list[Node] | None:
    """DQ -> Add(bias) -> movement* -> Q: bias and requantization in one pass, then the
    movement on int8 data (the Q/K/V projections' bias before head splitting)."""
    found = _bias_of(m, node)
    if found is None:
        return None
    bias, x = found
    q = _quantized(m, x)
    if q is None:
        return _float_bias_movement(m, node, bias, x)
    chain = _movement_chain(m, node.outputs[0])
    if q is None or chain is None:
        return None
    return _requant_then_move(m, node, q.tensor, q.qparams(), bias, *chain)


def _float_bias_movement(m: Matcher, node: Node, bias: np.ndarray, x: str) -> list[Node] | None:
    """fp32 Add(bias) -> movement (an FP32 encoder's Q / K / V projections before head
    splitting): the bias pass as a float BiasAct, a C step."""
    shape, user = m.shape(x), m.sole_consumer(node.outputs[0])
    if m.g.dtype(x) != np.float32 or not shape or shape[-1] != bias.size:
        return None
    if m.shape(node.outputs[0]) != shape or user is None or not _is_move(m, user, user.inputs[0]):
        return None
    attrs = dict(act="identity", qx=None, bias=bias, qy=None)
    return [_fused(node, "BiasAct", [x], list(node.outputs), attrs, [node])]


def _is_move(m: Matcher, node: Node, name: str) -> bool:
    """node moves tensor `name` (its data input) without arithmetic."""
    if node.domain != "" or not node.inputs or node.inputs[0] != name or len(node.outputs) != 1:
        return False
    if node.op_type == "Gather":  # constant indices: a selection
        return len(node.inputs) > 1 and m.const(node.inputs[1]) is not None
    return node.op_type in MOVEMENT


def _movement_tree(m: Matcher, name: str, moves: list, leaves: list) -> bool:
    """Collects the movement ops fanning out of `name` down to per-tensor Qs (every
    user of every tensor on the way): fills moves (in order) and leaves (Q nodes)."""
    users = m.g.consumers.get(name, [])
    if name in m.outputs or not users:
        return False
    for user in users:
        if user.op_type == "QuantizeLinear" and m.q_params(user) is not None:
            leaves.append(user)
        elif _is_move(m, user, name):
            moves.append(user)
            if not _movement_tree(m, user.outputs[0], moves, leaves):
                return False
        else:
            return False
    return True


def match_movement(m: Matcher, node: Node) -> list[Node] | None:
    """DQ -> movement ops (a chain of two or more, or a tree: the fused QKV split by
    Reshape / Transpose / Gather) -> Qs: the movement runs on the int8 data, and each
    Q whose params differ from the DQ's becomes a requantizing table."""
    q = _quantized(m, node.inputs[0])
    moves, leaves = [], []
    if q is None or not _movement_tree(m, node.inputs[0], moves, leaves):
        return None
    if len(moves) < 2 and len(leaves) < 2:
        return None  # one op into one Q: patterns.match_integer_exact
    qx = q.qparams()
    renamed = {node.inputs[0]: q.tensor}
    nodes = []
    for op in moves:
        out = op.outputs[0]
        users = m.g.consumers[out]
        direct = (
            len(users) == 1
            and any(users[0] is leaf for leaf in leaves)
            and _same(m.q_params(users[0]), qx)
        )
        renamed[out] = users[0].outputs[0] if direct else m.fresh(out)
        fused = [op.name, *([users[0].name] if direct else [])]
        attrs = dict(op.attrs, fused=fused, int_dtype=qx.dtype)
        inputs = [renamed[op.inputs[0]], *op.inputs[1:]]
        nodes.append(Node(op.name, op.op_type, op.domain, inputs, [renamed[out]], attrs, op.opset))
    for leaf in leaves:
        if renamed.get(leaf.inputs[0]) == leaf.outputs[0]:
            continue
        # a requantizing table (a copy when the params agree but the tensor is shared)
        src, qy = renamed[leaf.inputs[0]], m.q_params(leaf)
        nodes.append(
            _lut_node(m, leaf.name, src, leaf.outputs[0], lambda v: v, qx, qy, [leaf.name])
        )
    return nodes


# ---- the mask arithmetic: one numpy step ----------------------------------------------

MASK_SHAPING = ("Unsqueeze", "Reshape", "Squeeze", "Expand")
MASK_MATH = ("Sub", "Mul", "Add", "Div", "Where", "Equal", "Not", "Cast", "Neg")


def match_mask_chain(m: Matcher, node: Node) -> list[Node] | None:
    """An attention mask's arithmetic (Unsqueeze -> Cast -> Sub 1 -> Mul min, or Equal /
    Where on it) as one step running the nodes in order; the other inputs of each node
    must be constants, so the chain reads one tensor."""
    chain = [node]
    src = node.inputs[0]
    while True:  # shaping of the integer mask before the Cast
        producer = m.g.producer.get(src)
        if (
            producer is None
            or producer.op_type not in MASK_SHAPING
            or producer.domain != ""
            or not _only_feeds(m, src, chain[0])
            or any(m.const(i) is None for i in producer.inputs[1:] if i)
        ):
            break
        chain.insert(0, producer)
        src = producer.inputs[0]
    if m.g.dtype(src) is None or m.g.dtype(src).kind not in "iub":
        return None
    out = node.outputs[0]
    while True:
        user = m.sole_consumer(out)
        if user is None or user.op_type not in MASK_MATH or user.domain != "":
            break
        if any(i != out and i and m.const(i) is None for i in user.inputs):
            break
        if len(user.outputs) != 1:
            break
        chain.append(user)
        out = user.outputs[0]
    if len(chain) < 2:
        return None
    steps = [
        Node(n.name, n.op_type, n.domain, n.inputs, n.outputs, n.attrs, n.opset) for n in chain
    ]
    consts = sorted({i for n in chain for i in n.inputs if i and m.const(i) is not None})
    attrs = dict(nodes=steps, src=src)
    return [_fused(node, "MaskChain", [src, *consts], [out], attrs, chain)]


# ---- fused attention: Q·Kᵀ -> Softmax -> P·V --------------------------------------------

VIEW_MOVES = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Gather")


def _view_move(g, node: Node, name: str) -> tuple | None:
    """(node, constant inputs) if `node` is data movement of tensor `name` that a strided
    view expresses (a Gather only with a constant scalar index), else None."""
    if node.domain != "" or node.op_type not in VIEW_MOVES or len(node.outputs) != 1:
        return None
    if not node.inputs or node.inputs[0] != name:
        return None
    consts = [g.constants.get(i) if i else None for i in node.inputs[1:]]
    if any(c is None for c, i in zip(consts, node.inputs[1:]) if i):
        return None
    if node.op_type == "Gather" and (not consts or consts[0].ndim != 0):
        return None
    return node, consts


def _moves_back(g, name: str) -> tuple[str, list[tuple]]:
    """The view moves that make `name` from a tensor before them, walking back as far as
    they go (each stays in the graph for any other user): (source, moves in order)."""
    moves = []
    while (producer := g.producer.get(name)) is not None:
        move = _view_move(g, producer, producer.inputs[0] if producer.inputs else "")
        if move is None:
            break
        moves.insert(0, move)
        name = producer.inputs[0]
    return name, moves


def _live(g) -> set[int]:
    """The nodes the graph outputs depend on (the matchers leave the DQs they absorbed
    behind until remove_dead)."""
    live: set[int] = set()
    stack = [g.producer[t.name] for t in g.outputs if t.name in g.producer]
    while stack:
        node = stack.pop()
        if id(node) in live:
            continue
        live.add(id(node))
        stack.extend(g.producer[i] for i in node.inputs if i in g.producer)
    return live


def _moves_forward(g, users_of, name: str, outputs: set[str]) -> tuple[str, list[tuple]]:
    """Reshape / Transpose ... after `name`, each the only user of the tensor before it:
    (the last tensor, moves in order); the fused op writes that tensor directly."""
    moves = []
    while name not in outputs and len(users := users_of.get(name, [])) == 1:
        move = _view_move(g, users[0], name)
        if move is None or move[0].op_type == "Gather":
            break
        moves.append(move)
        name = users[0].outputs[0]
    return name, moves


def _sole_user(users_of, name: str, outputs: set[str]) -> Node | None:
    users = users_of.get(name, [])
    return users[0] if len(users) == 1 and name not in outputs else None


def _attention_quant(qk: Node, sm: Node, pv: Node) -> K.AttentionQuant | None:
    """The int8 chain's quantization, or None when the kernel cannot reproduce it."""
    qa, sc, px = qk.attrs, sm.attrs, pv.attrs
    scores_codes = np.dtype(qa["out"].dtype) in INT8
    if sc["qy"] is None or (sc["qx"] is not None) != scores_codes:
        return None
    if sc["qx"] is not None and np.dtype(sc["qx"].dtype) != np.dtype(qa["out"].dtype):
        return None
    if scores_codes is False and np.dtype(qa["out"].dtype) != np.float32:
        return None
    p_in, p_out = px["qa"], sc["qy"]  # P's DQ (what P·V subtracts) and its Q
    if p_in.zero_point != p_out.zero_point or np.dtype(p_in.dtype) != np.dtype(p_out.dtype):
        return None
    stages = (qa["out"], px["out"])
    if any(np.asarray(s.scale).size != 1 for s in stages):
        return None
    if np.dtype(px["out"].dtype) not in (*INT8, np.dtype(np.float32)):
        return None
    return K.AttentionQuant(qa["qa"], qa["qb"], px["qb"], qa["out"], sc["qx"], p_out, px["out"])


def _mask_fits(mask: tuple | None, scores: tuple | None) -> bool:
    """The mask broadcasts to the scores without enlarging them (dims 1 or the scores'
    as far as shapes are known)."""
    if mask is None or scores is None or len(mask) > len(scores):
        return False
    return all(
        m == 1 or m == s or not isinstance(m, int) or not isinstance(s, int)
        for m, s in zip(mask[::-1], scores[::-1])
    )


def _rank_ok(g, name: str) -> bool:
    shape = g.shape(name)
    return shape is not None and len(shape) in (3, 4)


def _match_attention(
    g, users_of: dict, sm: Node, outputs: set[str]
) -> tuple[Node, list[Node]] | None:
    """The fused node for Softmax `sm` of a Q·Kᵀ -> Softmax -> P·V chain, and the fused
    nodes it replaces, or None."""
    qk = g.producer.get(sm.inputs[0])
    pv = _sole_user(users_of, sm.outputs[0], outputs)
    if qk is None or pv is None or qk.domain != "pyrt" or pv.domain != "pyrt":
        return None
    if _sole_user(users_of, sm.inputs[0], outputs) is not sm or pv.inputs[0] != sm.outputs[0]:
        return None
    if pv.inputs[1] == sm.outputs[0]:
        return None
    if qk.op_type == pv.op_type == "QBatchMatMul":
        quant = _attention_quant(qk, sm, pv)
        if quant is None:
            return None
    elif qk.op_type == pv.op_type == "BatchMatMul":
        if sm.attrs["qx"] is not None or sm.attrs["qy"] is not None:
            return None
        quant = None
    else:
        return None
    if not all(_rank_ok(g, t) for t in (*qk.inputs, pv.inputs[1], pv.outputs[0])):
        return None
    sources, moves = [], []
    for t in (qk.inputs[0], qk.inputs[1], pv.inputs[1]):
        src, chain = _moves_back(g, t)
        sources.append(src)
        moves.append(chain)
    final, out_moves = _moves_forward(g, users_of, pv.outputs[0], outputs)
    mask = sm.inputs[1] if len(sm.inputs) > 1 and sm.inputs[1] else None
    if mask is not None and not _mask_fits(g.shape(mask), g.shape(qk.outputs[0])):
        return None
    fused = [
        sm.name,
        *(n for part in (qk, sm, pv) for n in part.attrs.get("fused", [part.name])),
        *(move.name for move, _ in out_moves),
    ]
    attrs = dict(
        moves=moves,
        out_moves=out_moves,
        logical=[qk.inputs[0], qk.inputs[1], pv.inputs[1], pv.outputs[0]],
        x_mul=sm.attrs["x_mul"],
        x_div=sm.attrs["x_div"],
        quant=quant,
        fused=list(dict.fromkeys(fused)),
    )
    inputs = [*sources, *([mask] if mask else [])]
    node = Node(sm.name, "Attention", "pyrt", inputs, [final], attrs, 0)
    return node, [qk, sm, pv, *(move for move, _ in out_moves)]


def fuse_attention(g) -> None:
    """After the matchers: every QBatchMatMul -> Softmax -> QBatchMatMul (or the fp32
    BatchMatMul chain) becomes one Attention op (plan_attention.py: the tiled kernel,
    K.attention) reading Q, K, V through the Reshape / Transpose / Gather head
    splitting as strided views and writing through the head merging; the movement
    nodes before it stay for any other user (remove_dead drops the rest)."""
    outputs = {t.name for t in g.outputs}
    live = _live(g)
    users_of = {n: [u for u in us if id(u) in live] for n, us in g.consumers.items()}
    replaced: dict[int, Node | None] = {}
    for node in g.nodes:
        if node.domain != "pyrt" or node.op_type != "Softmax" or id(node) in replaced:
            continue
        found = _match_attention(g, users_of, node, outputs)
        if found is None:
            continue
        fused, old = found
        if any(id(n) in replaced for n in old):
            continue
        for n in old:
            replaced[id(n)] = None
        replaced[id(node)] = fused
    if not replaced:
        return
    nodes = []
    for node in g.nodes:
        if id(node) not in replaced:
            if id(node) in live:
                nodes.append(node)
        elif replaced[id(node)] is not None:
            nodes.append(replaced[id(node)])
    g.nodes = toposort(nodes, set(g.constants) | {t.name for t in g.inputs})
    g.reindex()
