"""fp32 elementwise kernels (kernels/src/felem/) and their steps (pyrt/plan_float.py).

Single-op models against onnxruntime (NCHW and inside an NHWC convolution region,
broadcast forms, scalars, NaN / Inf), the fused Swish forms, every SIMD table against
the scalar one bit for bit around the vector widths, 1 vs 2 threads, the kernels
against float64 numpy, the C plan replay against the interpreter, and bad inputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt import _kernels
from pyrt import kernels as K
from pyrt._kernels import ffi, lib
from pyrt.program import Program

F32 = np.float32
TOL = 1e-5  # tests/test_ops_float.py's tolerance for fp32 ops against onnxruntime
RNG = np.random.default_rng(7)
SIMD = [isa for isa in _kernels.isa_available() if isa != "scalar"]
SCALAR = _kernels.Context("scalar")
CONTEXTS = {isa: _kernels.Context(isa) for isa in _kernels.isa_available()}
SIZES = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 127, 129, 1000]
SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.0625, -0.0625,
           0.06249, -0.06249, 0.8814, -0.8814, 3.0, -3.0, 20.0, -20.0, 87.4, -87.4, 88.8,
           -88.8, 1e30, -1e30]  # fmt: skip


def values(n: int, rng: np.random.Generator = RNG) -> np.ndarray:
    """n floats: mostly N(0, 4), with the special values mixed in."""
    x = (rng.standard_normal(n) * 4).astype(F32)
    special = np.array(SPECIAL, F32)
    picks = rng.random(n) < 0.2
    x[picks] = rng.choice(special, picks.sum())
    return x


# ---- models ---------------------------------------------------------------------


def model(nodes: list, inputs: dict[str, np.ndarray], consts: dict | None = None, opset=17):
    """A graph of `nodes` over float inputs; its one output is the last node's."""
    out = nodes[-1].output[0]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in (consts or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def onnxruntime(m: onnx.ModelProto, feeds: dict) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), opts).run(None, feeds)[0]


def in_c_plan(session: pyrt.Session) -> set[str]:
    """Names of the nodes whose steps run in the session's C plan."""
    programs = [p for p in session._programs.values() if isinstance(p, Program)]
    assert len(programs) == 1
    return {
        s.node.name for seg in programs[0].segments if seg.step is None for s in seg.entry_steps
    }


def check_model(m: onnx.ModelProto, feeds: dict, in_c: list[str], **session) -> pyrt.Session:
    """pyrt (interpreted, replayed, interpreted again with keep) equals onnxruntime
    within TOL; replays equal the interpreter bit for bit; the nodes in_c run in C."""
    s = pyrt.Session(m, **session)
    first = s.run(feeds)[0]
    replay = s.run(feeds)[0]
    kept = s.run(feeds, keep=[s.outputs[0].name])[0]
    want = onnxruntime(m, feeds)
    assert first.dtype == want.dtype and first.shape == want.shape
    np.testing.assert_allclose(first, want, rtol=TOL, atol=TOL)
    same_values(replay, first)
    same_values(kept, first)
    missing = set(in_c) - in_c_plan(s)
    assert not missing, f"not in the C plan: {missing}"
    return s


UNARY = [
    ("Relu", {}),
    ("LeakyRelu", {"alpha": 0.1}),
    ("LeakyRelu", {}),
    ("Sigmoid", {}),
    ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}),
    ("HardSigmoid", {}),
    ("HardSwish", {}),
    ("Tanh", {}),
    ("Elu", {"alpha": 0.7}),
    ("Softplus", {}),
    ("Erf", {}),
]


@pytest.mark.parametrize("op,attrs", UNARY, ids=[f"{o}{a}" for o, a in UNARY])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1000,), (1, 17)])
def test_unary_matches_onnxruntime(op, attrs, shape):
    x = values(int(np.prod(shape))).reshape(shape)
    m = model([helper.make_node(op, ["x"], ["y"], name="n", **attrs)], {"x": x})
    s = check_model(m, {"x": x}, ["n"])
    assert [r.ran_as for r in s.report()] == ["fp32"]


@pytest.mark.parametrize(
    "lo,hi", [(-1.0, 2.0), (0.0, 6.0), (None, 0.5), (-0.5, None), (None, None), (3.0, -3.0)]
)
def test_clip_matches_onnxruntime(lo, hi):
    x = values(300).reshape(3, 100)
    consts = {k: np.array(v, F32) for k, v in (("lo", lo), ("hi", hi)) if v is not None}
    ins = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
    node = helper.make_node("Clip", ins, ["y"], name="n")
    check_model(model([node], {"x": x}, consts), {"x": x}, ["n"])


def test_clip_opset6_attributes():
    x = values(100)
    node = helper.make_node("Clip", ["x"], ["y"], name="n", min=-0.5, max=0.25)
    check_model(model([node], {"x": x}, opset=6), {"x": x}, ["n"])


def test_clip_with_bounds_from_inputs_runs_in_numpy():
    x = values(100)
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="n")
    feeds = {"x": x, "lo": np.array(-1, F32), "hi": np.array(1, F32)}
    m = model([node], feeds)
    s = pyrt.Session(m)
    np.testing.assert_allclose(s.run(feeds)[0], onnxruntime(m, feeds), rtol=TOL, atol=TOL)
    assert [r.ran_as for r in s.report()] == ["numpy"]


# (a shape, b shape): same shapes, scalars either side, Squeeze-Excite both ways, per-channel
# vectors, a last-axis vector, and a general broadcast the kernel does not take.
BROADCASTS = [
    ((2, 8, 5, 5), (2, 8, 5, 5)),
    ((2, 8, 5, 5), ()),
    ((), (2, 8, 5, 5)),
    ((2, 8, 5, 5), (2, 8, 1, 1)),
    ((2, 8, 1, 1), (2, 8, 5, 5)),
    ((1, 8, 5, 5), (8, 1, 1)),
    ((3, 17), (17,)),
    ((17,), (3, 17)),
    ((2, 1, 5), (2, 4, 1)),
]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shapes", BROADCASTS, ids=[f"{a}x{b}" for a, b in BROADCASTS])
def test_binary_matches_onnxruntime(op, shapes):
    a = values(int(np.prod(shapes[0]))).reshape(shapes[0])
    b = values(int(np.prod(shapes[1])), np.random.default_rng(3)).reshape(shapes[1])
    b[b == 0] = 0.5  # x / 0 is tested below
    m = model([helper.make_node(op, ["a", "b"], ["y"], name="n")], {"a": a, "b": b})
    general = shapes == ((2, 1, 5), (2, 4, 1))
    check_model(m, {"a": a, "b": b}, [] if general else ["n"])


def test_binary_constant_operands_and_division_by_zero():
    x = values(64).reshape(1, 4, 4, 4)
    consts = {"two": np.array(2.0, F32), "zero": np.zeros((1, 4, 1, 1), F32)}
    nodes = [
        helper.make_node("Div", ["x", "zero"], ["q"], name="div0"),  # Inf and NaN
        helper.make_node("Sub", ["two", "q"], ["s"], name="rsub"),
        helper.make_node("Div", ["two", "x"], ["y"], name="rdiv"),
        helper.make_node("Add", ["y", "s"], ["z"], name="add"),
    ]
    check_model(model(nodes, {"x": x}, consts), {"x": x}, ["div0", "rsub", "rdiv", "add"])


# ---- NHWC: elementwise ops inside a convolution region ----------------------------


def _conv(rng, name: str, x: str, cin: int, cout: int, k: int, consts: dict, group: int = 1):
    consts[f"{name}_w"] = (rng.standard_normal((cout, cin // group, k, k)) * 0.3).astype(F32)
    consts[f"{name}_b"] = (rng.standard_normal(cout) * 0.1).astype(F32)
    return helper.make_node(
        "Conv", [x, f"{name}_w", f"{name}_b"], [name], name=name, pads=[k // 2] * 4, group=group
    )


@pytest.mark.parametrize("op,attrs", UNARY, ids=[f"{o}{a}" for o, a in UNARY])
def test_unary_inside_nhwc_region(op, attrs):
    rng = np.random.default_rng(1)
    consts: dict = {}
    nodes = [
        _conv(rng, "c1", "x", 3, 16, 3, consts),
        helper.make_node(op, ["c1"], ["act"], name="act", **attrs),
        helper.make_node("Add", ["act", "c1"], ["sum"], name="add"),  # c1 keeps its act
        _conv(rng, "c2", "sum", 16, 8, 1, consts),
    ]
    x = (rng.standard_normal((2, 3, 9, 9)) * 3).astype(F32)
    s = check_model(model(nodes, {"x": x}, consts), {"x": x}, ["act", "add", "c1", "c2"])
    assert {"act", "sum"} <= s._nhwc


def test_squeeze_excite_and_residual_inside_nhwc_region():
    """MobileNetV3's block: HardSwish, SE (GAP, Relu, HardSigmoid, broadcast Mul), Swish
    written as Mul(x, Sigmoid(x)), residual Add, all NHWC between the convolutions."""
    rng = np.random.default_rng(2)
    consts: dict = {}
    nodes = [
        _conv(rng, "c1", "x", 3, 16, 3, consts),
        helper.make_node("HardSwish", ["c1"], ["h"], name="hswish"),
        helper.make_node("GlobalAveragePool", ["h"], ["p"], name="gap"),
        _conv(rng, "se1", "p", 16, 4, 1, consts),
        helper.make_node("Relu", ["se1"], ["r"], name="relu"),
        _conv(rng, "se2", "r", 4, 16, 1, consts),
        helper.make_node("HardSigmoid", ["se2"], ["g"], name="hsig", alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["g", "h"], ["scaled"], name="se_mul"),  # broadcast first
        _conv(rng, "c2", "scaled", 16, 16, 1, consts),
        helper.make_node("Sigmoid", ["c2"], ["sig"], name="sig"),
        helper.make_node("Mul", ["c2", "sig"], ["sw"], name="swish"),
        helper.make_node("Add", ["sw", "h"], ["res"], name="residual"),
        _conv(rng, "c3", "res", 16, 8, 3, consts),
    ]
    x = (rng.standard_normal((2, 3, 12, 12)) * 2).astype(F32)
    m = model(nodes, {"x": x}, consts)
    s = check_model(m, {"x": x}, ["hswish", "hsig", "se_mul", "swish", "residual"])
    assert {"h", "scaled", "sw", "res"} <= s._nhwc
    ran = {r.node: r.ran_as for r in s.report()}
    assert ran["sig"] == "fp32" and ran["swish"] == "fp32"  # one fused Swish step
    assert [st.node.op_type for st in s._steps].count("Swish") == 1
    for cores, isa in [(2, None), (1, "scalar"), *((2, isa) for isa in SIMD)]:
        other = pyrt.Session(m, cores=cores, isa=isa)
        for _ in range(2):  # interpreted, then replayed
            got = other.run({"x": x})[0]
            same_values(got, s.run({"x": x})[0])


# ---- the Swish forms ----------------------------------------------------------


@pytest.mark.parametrize(
    "gate,attrs,order",
    [
        ("Sigmoid", {}, "x_first"),
        ("Sigmoid", {}, "gate_first"),
        ("HardSigmoid", {}, "x_first"),
        ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, "gate_first"),
    ],
)
def test_swish_forms_fuse_and_equal_the_two_nodes(gate, attrs, order):
    x = values(2 * 3 * 7 * 5).reshape(2, 3, 7, 5)
    ins = ["x", "g"] if order == "x_first" else ["g", "x"]
    nodes = [
        helper.make_node(gate, ["x"], ["g"], name="gate", **attrs),
        helper.make_node("Mul", ins, ["y"], name="mul"),
    ]
    m = model(nodes, {"x": x})
    s = check_model(m, {"x": x}, ["mul"])
    assert [st.node.op_type for st in s._steps] == ["Swish"]
    # bit for bit what the unfused C steps give
    gated = K.funary(
        "sigmoid" if gate == "Sigmoid" else "hard_sigmoid",
        x,
        float(F32(attrs.get("alpha", 0.2))),
        float(F32(attrs.get("beta", 0.5))),
    )
    with np.errstate(invalid="ignore"):
        same_values(s.run({"x": x})[0], x * gated)


def test_swish_gate_with_another_consumer_is_not_fused():
    x = values(60).reshape(3, 20)
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["g"], name="gate"),
        helper.make_node("Mul", ["x", "g"], ["m"], name="mul"),
        helper.make_node("Add", ["m", "g"], ["y"], name="add"),
    ]
    s = check_model(model(nodes, {"x": x}), {"x": x}, ["gate", "mul", "add"])
    assert "Swish" not in [st.node.op_type for st in s._steps]


# ---- kernels: SIMD == scalar, threads, numpy references ----------------------------

KERNEL_UNARY = [
    ("relu", 0.0, 0.0),
    ("leaky_relu", 0.01, 0.0),
    ("clip", -1.5, 6.0),
    ("sigmoid", 0.0, 0.0),
    ("hard_sigmoid", 0.2, 0.5),
    ("hard_swish", float(F32(1 / 6)), 0.5),
    ("tanh", 0.0, 0.0),
    ("elu", 1.3, 0.0),
    ("softplus", 0.0, 0.0),
    ("swish", 0.0, 0.0),
    ("erf", 0.0, 0.0),
]


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32)


def same_values(got: np.ndarray, want: np.ndarray) -> None:
    """Bit for bit, except that a NaN equals any NaN (numpy and the kernels may make NaNs
    of either sign, e.g. for -Inf * 0)."""
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(bits(got)[~nan], bits(want)[~nan])


@pytest.mark.parametrize("isa", SIMD or ["scalar"])
@pytest.mark.parametrize("op,alpha,beta", KERNEL_UNARY, ids=[u[0] for u in KERNEL_UNARY])
def test_unary_simd_equals_scalar(isa, op, alpha, beta):
    rng = np.random.default_rng(11)
    for n in SIZES:
        x = values(n, rng)
        ref = K.funary(op, x, alpha, beta, SCALAR)
        got = K.funary(op, x, alpha, beta, CONTEXTS[isa])
        same_values(got, ref)
        same_values(K.funary(op, x[1:], alpha, beta, CONTEXTS[isa]), ref[1:])  # unaligned


def _float_sweep() -> np.ndarray:
    """Every 97th float32 of either sign from 2^-20 to 20 (the curves of erf, tanh and
    the logistic function up to their clamps), the specials and the branch ends."""
    lo, hi = np.array([2.0**-20, 20.0], F32).view(np.int32)
    x = np.arange(lo, hi, 97, dtype=np.int32).view(F32)
    edges = np.array([0.921875, 3.925, 3.9249997, 0.92187494, 9, 18, 17.999998], F32)
    return np.concatenate([x, -x, edges, -edges, np.array(SPECIAL, F32)])


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("op", ["Erf", "Sigmoid", "Tanh"])
def test_unary_is_onnxruntimes_bit_for_bit(isa, op):
    """pyrt's erf, logistic and tanh are onnxruntime's (MLAS, x86 with FMA) on 4 million
    floats, so a QDQ GELU / Sigmoid (and its lookup table) quantizes exactly as
    onnxruntime's reference does. Where onnxruntime runs its SSE2 kernels instead (no
    AVX2 / FMA), within 2 ulp of them."""
    x = _float_sweep()
    m = model([helper.make_node(op, ["x"], ["y"])], {"x": x})
    want = onnxruntime(m, {"x": x})
    got = K.funary(op.lower(), x, ctx=CONTEXTS[isa])
    nan = np.isnan(x)
    np.testing.assert_array_equal(got[nan], x[nan])  # NaN stays (onnxruntime's erf: +-1)
    if "avx2" in _kernels.isa_available():
        same_values(got[~nan], want[~nan])
    else:
        np.testing.assert_array_max_ulp(got[~nan], want[~nan], maxulp=2)


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("cols", [1, 7, 16, 33, 48, 64, 100, 384, 1000])
def test_softmax_is_onnxruntimes_bit_for_bit(isa, cols):
    """Softmax rows equal onnxruntime's (MLAS AVX-512: its exp, its sum order, times the
    reciprocal), masked -1e4 / -Inf entries and whole -Inf rows included; on CPUs
    without AVX-512 onnxruntime sums in another order, so within 2 ulp there."""
    rng = np.random.default_rng(cols)
    x = (rng.standard_normal((64, cols)) * rng.uniform(0.1, 20, (64, 1))).astype(F32)
    x[::7, ::3] = -1e4
    x[5] = -np.inf
    m = model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], {"x": x})
    want = onnxruntime(m, {"x": x})
    got = K.softmax(x, ctx=CONTEXTS[isa])
    if "avx512vnni" in _kernels.isa_available():
        same_values(got, want)
    else:
        np.testing.assert_array_max_ulp(got, want, maxulp=2)


@pytest.mark.parametrize("isa", _kernels.isa_available())
@pytest.mark.parametrize("cols", [8, 9, 12, 15, 16, 17, 31, 33, 100, 384, 1000])
@pytest.mark.parametrize("with_beta", [True, False])
def test_layernorm_is_onnxruntimes_bit_for_bit(isa, cols, with_beta):
    """LayerNormalization rows of 8 or more equal onnxruntime's x86 kernel (mean in
    double, variance fused in float lanes, fma with beta); within 2 ulp where
    onnxruntime has no AVX2 kernel to run."""
    rng = np.random.default_rng(cols)
    x = rng.standard_normal((64, cols)) * rng.uniform(0.5, 4, (64, 1)) + rng.uniform(-1, 1, (64, 1))
    x = x.astype(F32)
    gamma = rng.normal(1, 0.2, cols).astype(F32)
    beta = rng.normal(0, 0.2, cols).astype(F32) if with_beta else None
    consts = {"g": gamma, **({"b": beta} if with_beta else {})}
    node = helper.make_node("LayerNormalization", ["x", *consts], ["y"], axis=-1, epsilon=1e-5)
    want = onnxruntime(model([node], {"x": x}, consts), {"x": x})
    (got,) = K.layernorm(x, gamma, beta, 1e-5, ctx=CONTEXTS[isa])
    if "avx2" in _kernels.isa_available():
        same_values(got, want)
    else:
        np.testing.assert_array_max_ulp(got, want, maxulp=2)


@pytest.mark.parametrize("isa", SIMD or ["scalar"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_simd_equals_scalar(isa, op):
    rng = np.random.default_rng(12)
    shapes = [((n,), (n,)) for n in SIZES] + [((n,), ()) for n in SIZES]
    shapes += [((3, n), (n,)) for n in (1, 7, 8, 9, 16, 17, 33)]  # rows against one vector
    shapes += [((2, n, 1), (2, 1, 1)) for n in (7, 16, 17, 65)]  # one value per outer
    shapes += [((2, 5, n), (2, 1, n)) for n in (3, 8, 16, 31)]  # Squeeze-Excite, NHWC
    for a_shape, b_shape in shapes:
        a = values(int(np.prod(a_shape)), rng).reshape(a_shape)
        b = values(int(np.prod(b_shape)), rng).reshape(b_shape)
        for x, y in ((a, b), (b, a)):  # both operand orders (b_first)
            ref = K.fbinary(op, x, y, SCALAR)
            got = K.fbinary(op, x, y, CONTEXTS[isa])
            same_values(got, ref)


@pytest.mark.parametrize("isa", _kernels.isa_available())
def test_threads_give_identical_results(isa):
    rng = np.random.default_rng(13)
    one, two = _kernels.Context(isa), _kernels.Context(isa, threads=2)
    x = values(300_007, rng)  # several tasks per thread, pieces of one row
    for op, alpha, beta in KERNEL_UNARY:
        same_values(K.funary(op, x, alpha, beta, two), K.funary(op, x, alpha, beta, one))
    a = values(4 * 96 * 1024, rng).reshape(4, 1024, 96)
    for b_shape in [(4, 1, 96), (4, 1024, 1), (), (4, 1024, 96)]:
        b = values(int(np.prod(b_shape)), rng).reshape(b_shape)
        for op in ("add", "sub", "mul", "div"):
            for x, y in ((a, b), (b, a)):
                same_values(K.fbinary(op, x, y, two), K.fbinary(op, x, y, one))


def test_kernels_against_float64_numpy():
    """The formulas of felem_scalar.c against float64 references (every ISA: they are
    bit-exact with the scalar one, above). The logistic function is onnxruntime's rational
    approximation: within 1.5e-7 absolute (not relative: it is 0 below x = -17)."""
    x = np.concatenate([np.linspace(-30, 30, 20001), np.geomspace(1e-8, 30, 2000)]).astype(F32)
    x = np.concatenate([x, -x])
    w = x.astype(np.float64)
    refs = {
        "sigmoid": (1 / (1 + np.exp(-w)), 0.0, 1.5e-7),
        "tanh": (np.tanh(w), 3e-7, 0.0),
        "elu": (np.where(w >= 0, w, 1.3 * np.expm1(w)), 1e-6, 0.0),
        "softplus": (np.logaddexp(w, 0), 3e-7, 0.0),
        # x / 6 + 1/2 cancels near x = -3 in float32 (onnxruntime's formula too)
        "hard_swish": (w * np.clip(w * float(F32(1 / 6)) + 0.5, 0, 1), 2e-7, 1e-7),
    }
    for op, (want, rtol, atol) in refs.items():
        alpha = 1.3 if op == "elu" else float(F32(1 / 6)) if op == "hard_swish" else 0.0
        got = K.funary(op, x, alpha, 0.5).astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=max(atol, 1e-37), err_msg=op)
    same_values(K.funary("swish", x), x * K.funary("sigmoid", x))
    same_values(K.funary("relu", x), np.where(x < 0, F32(0), x))  # -0 and NaN stay
    a, b = values(1000), values(1000)
    with np.errstate(all="ignore"):
        for op, fn in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply)):
            same_values(K.fbinary(op, a, b), fn(a, b))
            same_values(K.fbinary(op, a[:1].reshape(()), b), fn(a[0], b))
        same_values(K.fbinary("div", a, b), a / b)


# ---- bad inputs ---------------------------------------------------------------


def test_bad_kernel_arguments_are_clear_errors():
    x = values(16)
    with pytest.raises(pyrt.PyrtError, match="float32"):
        K.funary("relu", x.astype(np.float64))
    with pytest.raises(pyrt.PyrtError, match="funary op must be one of"):
        K.funary("gelu", x)
    with pytest.raises(pyrt.PyrtError, match="clip bounds .* NaN"):
        K.funary("clip", x, float("nan"), 1.0)
    with pytest.raises(pyrt.PyrtError, match="do not broadcast"):
        K.fbinary("add", x, values(3))
    ctx = _kernels.default_context().ptr
    xp, yp = ffi.cast("float *", ffi.from_buffer(x)), ffi.cast("float *", ffi.from_buffer(x))
    relu, add = lib.PYRT_RELU, lib.PYRT_ADD
    cases = [
        (lambda: lib.pyrt_funary(ctx, 99, 16, xp, 0, 0, yp), "unknown op 99"),
        (lambda: lib.pyrt_funary(ctx, relu, 0, xp, 0, 0, yp), "n must be > 0"),
        (lambda: lib.pyrt_funary(ctx, relu, 16, ffi.NULL, 0, 0, yp), "NULL"),
        (lambda: lib.pyrt_fbinary_broadcast(ctx, 7, 1, 1, 16, xp, xp, 0, yp), "unknown op 7"),
        (lambda: lib.pyrt_fbinary_broadcast(ctx, add, 1, 0, 16, xp, xp, 0, yp), "must be > 0"),
        (lambda: lib.pyrt_fbinary_broadcast(ctx, add, 1, 1, 16, xp, xp, 2, yp), "b_first"),
        (lambda: lib.pyrt_fbinary_broadcast(ctx, add, 1, 1, 16, xp, ffi.NULL, 0, yp), "NULL"),
    ]
    for call, message in cases:
        assert call() == lib.PYRT_ERR_ARG
        assert message in ffi.string(lib.pyrt_last_error()).decode()


def test_bad_model_inputs_name_the_node():
    # shapes known only at run time that do not broadcast
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n"])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["m"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Sub", ["a", "b"], ["y"], name="the_sub")
    m = helper.make_model(
        helper.make_graph([node], "g", [a, b], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    s = pyrt.Session(m)
    with pytest.raises(pyrt.PyrtError, match="the_sub"):
        s.run({"a": values(4), "b": values(3)})
    np.testing.assert_array_equal(s.run({"a": values(4), "b": np.ones(1, F32)})[0].shape, [4])
    # a Clip bound that is not a scalar: the numpy op names the node
    consts = {"lo": np.zeros(2, F32)}
    clip = helper.make_node("Clip", ["x", "lo"], ["y"], name="the_clip")
    with pytest.raises(pyrt.PyrtError, match="the_clip"):
        pyrt.Session(model([clip], {"x": values(4)}, consts)).run({"x": values(4)})
