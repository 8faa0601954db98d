"""Bad arguments at both ends: inputs to Session.run (InputError, or the same answer for any
memory layout), NaN/Inf semantics, and every C entry point called directly with NULLs,
non-positive sizes and windows that leave no output (an error code, never a crash)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyrt
from pyrt._kernels import default_context, ffi, lib

CTX = default_context().ptr  # kept alive by the module-level default context

RNG = np.random.default_rng(1)
X = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)


def build(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def vi(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def qdq_conv(x_shape=("N", 3, 8, 8)) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [
        const("s", np.float32(0.05)),
        const("z", np.uint8(128)),
        const("w", rng.integers(-100, 100, (4, 3, 3, 3)).astype(np.int8)),
        const("ws", np.full(4, 0.01, np.float32)),
        const("wz", np.zeros(4, np.int8)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="dq_w", axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], name="q_out"),
        helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"], name="dq_out"),
    ]
    return build(nodes, [vi("x", shape=list(x_shape))], [vi("y")], inits)


@pytest.fixture(scope="module")
def session():
    return pyrt.Session(qdq_conv())


@pytest.fixture(scope="module")
def expected(session):
    return session.run(X)[0]


# ---- names, types, ranks, shapes ------------------------------------------------------


def test_missing_and_extra_names(session):
    with pytest.raises(pyrt.InputError, match="missing \\['x'\\]"):
        session.run({"other": X})
    with pytest.raises(pyrt.InputError, match="unexpected \\['extra'\\]"):
        session.run({"x": X, "extra": X})
    with pytest.raises(pyrt.InputError, match="unexpected \\[1, 'extra'\\]"):
        session.run({"x": X, 1: X, "extra": X})  # keys of mixed types still sort
    with pytest.raises(pyrt.InputError, match="missing"):
        session.run({})


def test_not_arrays(session):
    for bad in ([X], (X,), None, 3.0, np.float32(1.0), "x"):
        with pytest.raises(pyrt.InputError):
            session.run(bad)
    for bad in (X.tolist(), None, 1.0, "text", memoryview(X)):
        with pytest.raises(pyrt.InputError, match="numpy array"):
            session.run({"x": bad})


def test_one_array_for_a_model_with_two_inputs():
    model = build(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        [vi("a", shape=[2]), vi("b", shape=[2])],
        [vi("y")],
    )
    with pytest.raises(pyrt.InputError, match="2 inputs"):
        pyrt.Session(model).run(np.ones(2, np.float32))


@pytest.mark.parametrize(
    "dtype", [np.float64, np.float16, np.int8, np.uint8, np.int64, np.bool_, np.complex64, object]
)
def test_wrong_dtype(session, dtype):
    with pytest.raises(pyrt.InputError, match="dtype float32"):
        session.run(X.astype(dtype))


def test_wrong_rank_and_shape(session):
    with pytest.raises(pyrt.InputError, match="rank 4"):
        session.run(X[0])
    with pytest.raises(pyrt.InputError, match="rank 4"):
        session.run(X[None])
    with pytest.raises(pyrt.InputError, match="rank 4"):
        session.run(np.array(1.0, np.float32))
    with pytest.raises(pyrt.InputError, match="dimension 1 must be 3"):
        session.run(np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(pyrt.InputError, match="dimension 3 must be 8"):
        session.run(np.zeros((1, 3, 8, 9), np.float32))


def test_symbolic_batch_takes_any_size(session, expected):
    y = session.run(np.concatenate([X, X, X]))[0]
    assert y.shape == (3, 4, 8, 8)
    np.testing.assert_array_equal(y[2], expected[0])


def test_empty_batch_is_an_error_not_a_crash(session):
    with pytest.raises(pyrt.PyrtError):
        session.run(np.zeros((0, 3, 8, 8), np.float32))


def test_input_over_the_memory_cap():
    session = pyrt.Session(qdq_conv(), memory_limit=1 << 20)
    with pytest.raises(pyrt.InputError, match="memory limit"):
        session.run(np.zeros((2000, 3, 8, 8), np.float32))


def test_keep_names(session):
    with pytest.raises(pyrt.InputError, match="cannot keep"):
        session.run(X, keep=["no_such_tensor"])
    y, again = session.run(X, keep="y")  # a single name is a name, not its letters
    np.testing.assert_array_equal(y, again)


# ---- memory layouts: same answer, caller's array untouched ------------------------------


def _layouts(x: np.ndarray):
    strided = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), x.dtype)
    strided[..., ::2] = x
    yield "strided", strided[..., ::2]
    yield "fortran", np.asfortranarray(x)
    yield "reversed", np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    yield "transposed", np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    frozen = x.copy()
    frozen.flags.writeable = False
    yield "read-only", frozen
    raw = bytearray(x.nbytes + 1)
    raw[1:] = x.tobytes()
    yield "misaligned", np.frombuffer(raw, x.dtype, x.size, offset=1).reshape(x.shape)
    yield "big-endian", x.astype(x.dtype.newbyteorder(">"))
    yield "masked", np.ma.masked_array(x, mask=np.zeros(x.shape, bool))


@pytest.mark.parametrize("layout", [name for name, _ in _layouts(X)])
def test_any_memory_layout_gives_the_same_answer(session, expected, layout):
    x = dict(_layouts(X))[layout]
    if layout == "misaligned":
        assert not x.flags.aligned
    before = np.array(x, copy=True)
    np.testing.assert_array_equal(session.run(x)[0], expected)
    np.testing.assert_array_equal(np.asarray(x), before)


def test_broadcast_view_input():
    """A zero-stride view (np.broadcast_to) is read, never written, and gives the full answer."""
    model = build(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", shape=[4, 5])], [vi("y")]
    )
    x = np.broadcast_to(np.arange(5, dtype=np.float32) - 2, (4, 5))
    np.testing.assert_array_equal(pyrt.run(model, x)[0], np.maximum(x, 0))


def test_outputs_are_fresh_writable_arrays():
    """Outputs alias neither the caller's inputs nor the session's constants."""
    nodes = [
        helper.make_node("Identity", ["x"], ["same"], name="id"),
        helper.make_node("Reshape", ["x", "shape"], ["view"], name="reshape"),
        helper.make_node("Slice", ["table", "start", "end"], ["part"], name="slice"),
    ]
    model = build(
        nodes,
        [
            vi("x", shape=[2, 3]),
            vi("start", TensorProto.INT64, [1]),
            vi("end", TensorProto.INT64, [1]),
        ],
        [vi("same"), vi("view"), vi("part"), vi("table")],
        [const("shape", np.array([3, 2])), const("table", np.arange(10, dtype=np.float32))],
    )
    session = pyrt.Session(model)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    feeds = {"x": x, "start": np.array([0]), "end": np.array([4])}
    outs = session.run(feeds)
    for y in outs:
        assert y.flags.writeable
        assert not np.shares_memory(y, x)
        y[...] = -1
    np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3))
    again = session.run(feeds)
    np.testing.assert_array_equal(again[2], [0, 1, 2, 3])
    np.testing.assert_array_equal(again[3], np.arange(10))


# ---- NaN and Inf: QuantizeLinear semantics ---------------------------------------------


@pytest.mark.parametrize("zero", [np.uint8(128), np.uint8(0), np.int8(0), np.int8(-20)])
def test_nan_and_inf_quantize_like_quantize_linear(zero):
    """+-Inf saturate to the type's limits like any huge value; NaN becomes the zero point."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q")]
    inits = [const("s", np.float32(0.5)), const("z", zero)]
    elem = helper.np_dtype_to_tensor_dtype(zero.dtype)
    model = build(nodes, [vi("x", shape=["N"])], [vi("q", elem)], inits)
    x = np.array([np.inf, -np.inf, np.nan, -np.nan, 1e30, -1e30, 3.0, 0.25, 0.75], np.float32)
    q = pyrt.run(model, x)[0]
    info = np.iinfo(zero.dtype)
    z = int(zero)
    expect = [info.max, info.min, z, z, info.max, info.min, z + 6, z + 0, z + 2]  # half to even
    assert q.tolist() == [int(np.clip(v, info.min, info.max)) for v in expect]


def test_nan_and_inf_through_a_conv(session):
    x = X.copy()
    x[0, 0, 0, 0], x[0, 1, 0, 0], x[0, 2, 0, 0] = np.inf, -np.inf, np.nan
    big = X.copy()
    big[0, 0, 0, 0], big[0, 1, 0, 0], big[0, 2, 0, 0] = 1e30, -1e30, 0.0
    y = session.run(x)[0]
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y, session.run(big)[0])


def test_nan_in_float_math_propagates():
    """Outside Q/DQ pyrt does float math as numpy does: NaN stays NaN, it is not hidden."""
    model = build(
        [helper.make_node("Add", ["x", "one"], ["y"], name="add")],
        [vi("x", shape=[3])],
        [vi("y")],
        [const("one", np.float32(1))],
    )
    y = pyrt.run(model, np.array([np.nan, np.inf, 1.0], np.float32))[0]
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == 2.0


# ---- the C entry points -----------------------------------------------------------------


def _p(array, ctype="void *"):
    return ffi.cast(ctype, array.ctypes.data)


def _stage(dtype, scale, zero=0, qmin=0, qmax=255, per_channel=0):
    s = ffi.new("pyrt_output_stage *")
    s.out_dtype, s.per_channel, s.scale = dtype, per_channel, _p(scale, "float *")
    s.zero_point, s.qmin, s.qmax = zero, qmin, qmax
    return s


def _qparams(dtype=None, scale=0.1, zero=0):
    q = ffi.new("pyrt_qparams *")
    q.dtype = lib.PYRT_U8 if dtype is None else dtype
    q.scale, q.zero_point = scale, zero
    return q


def _conv_shape(**fields):
    s = ffi.new("pyrt_conv2d_shape *")
    base = dict(batch=1, in_c=4, in_h=6, in_w=6, out_c=4, groups=1, kernel_h=3, kernel_w=3)
    base.update(stride_h=1, stride_w=1, dilation_h=1, dilation_w=1)
    base.update(pad_top=1, pad_left=1, pad_bottom=1, pad_right=1, out_h=6, out_w=6)
    base.update(fields)
    for k, v in base.items():
        setattr(s, k, v)
    return s


def _pool_shape(**fields):
    s = ffi.new("pyrt_pool2d_shape *")
    base = dict(batch=1, channels=2, in_h=6, in_w=6, kernel_h=3, kernel_w=3, stride_h=1)
    base.update(stride_w=1, dilation_h=1, dilation_w=1, pad_top=0, pad_left=0)
    base.update(pad_bottom=0, pad_right=0, out_h=4, out_w=4, count_include_pad=0)
    base.update(fields)
    for k, v in base.items():
        setattr(s, k, v)
    return s


def _layout(**fields):
    layout = ffi.new("pyrt_quant_layout *")
    base = dict(outer=1, axis_len=1, inner=12, block=1, stride_outer=0, stride_axis=0)
    base.update(stride_inner=0)
    base.update(fields)
    for k, v in base.items():
        setattr(layout, k, v)
    return layout


class Case:
    """A valid call of one entry point (kept alive with its buffers) and its bad variants."""

    def __init__(self, fn, args, pointers, sizes, extra=(), ctx=True):
        """ctx: the entry point takes an execution context first (it is prepended here, and
        a NULL context is one more bad variant)."""
        lead = [CTX] if ctx else []
        self.fn, self.args = fn, [*lead, *args]
        self.pointers = [0] * ctx + [i + ctx for i in pointers]
        self.sizes = [i + ctx for i in sizes]
        self.extra = [(what, [*lead, *a]) for what, a in extra]

    def variants(self):
        for i in self.pointers:
            yield f"arg{i}=NULL", self._with(i, ffi.NULL)
        for i in self.sizes:
            for bad in (0, -1, -(2**31)):
                yield f"arg{i}={bad}", self._with(i, bad)
        yield from self.extra

    def _with(self, i, value):
        args = list(self.args)
        args[i] = value
        return args


def _created(status: int, out) -> int:
    """pyrt_context_create's status; a context it made is destroyed again."""
    if status == lib.PYRT_OK:
        lib.pyrt_context_destroy(out[0])
    return status


def _cases() -> dict[str, Case]:
    keep = []  # buffers referenced by pointers must outlive the calls

    def buf(dtype, n, fill=0):
        a = np.full(n, fill, dtype)
        keep.append(a)
        return a

    one = buf(np.float32, 4, 0.05)
    cases = {}

    acc, y8 = buf(np.int32, 6), buf(np.uint8, 6)
    stage = _stage(lib.PYRT_U8, one, 0, 0, 255)
    cases["requantize"] = Case(
        lib.pyrt_requantize,
        [2, 3, 1, _p(acc, "int32_t *"), stage, _p(y8)],
        pointers=[3, 4, 5],
        sizes=[0, 1, 2],
        extra=[
            (
                "qmin>qmax",
                [2, 3, 1, _p(acc, "int32_t *"), _stage(lib.PYRT_U8, one, 0, 9, 3), _p(y8)],
            ),
            (
                "qmax>255",
                [2, 3, 1, _p(acc, "int32_t *"), _stage(lib.PYRT_U8, one, 0, 0, 300), _p(y8)],
            ),
            ("zero 300", [2, 3, 1, _p(acc, "int32_t *"), _stage(lib.PYRT_U8, one, 300), _p(y8)]),
            ("dtype 9", [2, 3, 1, _p(acc, "int32_t *"), _stage(9, one), _p(y8)]),
            (
                "scale nan",
                [
                    2,
                    3,
                    1,
                    _p(acc, "int32_t *"),
                    _stage(lib.PYRT_U8, buf(np.float32, 1, np.nan)),
                    _p(y8),
                ],
            ),
            (
                "scale 0",
                [
                    2,
                    3,
                    1,
                    _p(acc, "int32_t *"),
                    _stage(lib.PYRT_U8, buf(np.float32, 1, 0.0)),
                    _p(y8),
                ],
            ),
        ],
    )

    m, k, n = 4, 8, 5
    w = buf(np.int8, m * k, 1)
    packed = buf(np.uint8, lib.pyrt_qgemm_packed_size(CTX, m, k) + 64)
    cases["qgemm_pack"] = Case(
        lib.pyrt_qgemm_pack,
        [m, k, _p(w), lib.PYRT_S8, ffi.NULL, 0, _p(packed)],
        pointers=[2, 6],
        sizes=[0, 1],
        extra=[
            ("dtype 7", [m, k, _p(w), 7, ffi.NULL, 0, _p(packed)]),
            (
                "zero 300",
                [m, k, _p(w), lib.PYRT_S8, _p(buf(np.int32, 1, 300), "int32_t *"), 0, _p(packed)],
            ),
        ],
    )
    assert (
        lib.pyrt_qgemm_pack(CTX, m, k, _p(w), lib.PYRT_S8, ffi.NULL, 0, _p(packed)) == lib.PYRT_OK
    )
    # y[n][m] = x[n][k] x W[k][m]: the pack's N is m
    x, y32 = buf(np.uint8, k * n), buf(np.int32, m * n)
    s32 = _stage(lib.PYRT_S32, one)
    base = [n, m, k, _p(x), lib.PYRT_U8, 0, k, _p(packed), ffi.NULL, s32, _p(y32), m]

    def qgemm(**change):
        args = list(base)
        for i, v in change.items():
            args[int(i[1:])] = v
        return args

    cases["qgemm"] = Case(
        lib.pyrt_qgemm,
        base,
        pointers=[3, 7, 9, 10],
        sizes=[0, 1, 2],
        extra=[
            ("lda<K", qgemm(a6=k - 1)),
            ("ldy<N", qgemm(a11=m - 1)),
            ("x dtype 7", qgemm(a4=7)),
            ("x zero 256", qgemm(a5=256)),
            ("N of another pack", qgemm(a1=m + 1)),
            ("K of another pack", qgemm(a2=k - 1)),
            ("not a pack", qgemm(a7=_p(buf(np.uint8, 4096)))),
        ],
    )

    # fp32: y[n][m] = x[n][k] x W[k][m] like qgemm, the pack's N is m
    sw = buf(np.float32, m * k, 0.5)
    spacked = buf(np.uint8, lib.pyrt_sgemm_packed_size(CTX, m, k) + 64)
    cases["sgemm_pack"] = Case(
        lib.pyrt_sgemm_pack, [m, k, _p(sw, "float *"), _p(spacked)], pointers=[2, 3], sizes=[0, 1]
    )
    assert lib.pyrt_sgemm_pack(CTX, m, k, _p(sw, "float *"), _p(spacked)) == lib.PYRT_OK
    sx, sy = buf(np.float32, k * n), buf(np.float32, m * n)
    sbase = [
        n,
        m,
        k,
        _p(sx, "float *"),
        k,
        _p(spacked),
        ffi.NULL,
        -np.inf,
        np.inf,
        _p(sy, "float *"),
        m,
    ]

    def sgemm(**change):
        args = list(sbase)
        for i, v in change.items():
            args[int(i[1:])] = v
        return args

    cases["sgemm"] = Case(
        lib.pyrt_sgemm,
        sbase,
        pointers=[3, 5, 9],
        sizes=[0, 1, 2],
        extra=[
            ("lda<K", sgemm(a4=k - 1)),
            ("ldy<N", sgemm(a10=m - 1)),
            ("N of another pack", sgemm(a1=m + 1)),
            ("K of another pack", sgemm(a2=k + 1)),
            ("clamp NaN", sgemm(a7=np.nan)),
            ("clamp lo > hi", sgemm(a7=1.0, a8=0.0)),
            ("not a pack", sgemm(a5=_p(buf(np.uint8, 4096)))),
        ],
    )

    cshape = _conv_shape()
    cw = buf(np.int8, 4 * 4 * 9, 1)
    cpacked = buf(np.uint8, lib.pyrt_qconv2d_packed_size(CTX, cshape) + 64)
    cases["qconv2d_pack"] = Case(
        lib.pyrt_qconv2d_pack,
        [cshape, _p(cw), lib.PYRT_S8, ffi.NULL, 0, _p(cpacked)],
        pointers=[0, 1, 5],
        sizes=[],
        extra=[("dtype 7", [cshape, _p(cw), 7, ffi.NULL, 0, _p(cpacked)])],
    )
    assert lib.pyrt_qconv2d_pack(CTX, cshape, _p(cw), lib.PYRT_S8, ffi.NULL, 0, _p(cpacked)) == 0
    cx, cy = buf(np.uint8, 4 * 36), buf(np.int32, 4 * 36)
    cbase = [cshape, _p(cpacked), _p(cx), lib.PYRT_U8, 0, ffi.NULL, s32, _p(cy)]
    bad_shapes = {
        **{f"{f}=0": _conv_shape(**{f: 0}) for f in ("batch", "in_c", "in_h", "out_c", "groups")},
        **{f"{f}=-1": _conv_shape(**{f: -1}) for f in ("kernel_h", "stride_w", "dilation_h")},
        "pad=-1": _conv_shape(pad_left=-1),
        "no output": _conv_shape(pad_top=0, pad_bottom=0, kernel_h=7, out_h=0),
        "out_h too big": _conv_shape(out_h=7),
        "groups=3": _conv_shape(groups=3),
        "huge pads": _conv_shape(pad_top=2**30, pad_bottom=2**30),
        "huge stride": _conv_shape(stride_h=2**31 - 1, out_h=1),
    }
    cases["qconv2d"] = Case(
        lib.pyrt_qconv2d,
        cbase,
        pointers=[0, 1, 2, 6, 7],
        sizes=[],
        extra=[(name, [s, *cbase[1:]]) for name, s in bad_shapes.items()]
        + [
            ("x zero 300", cbase[:4] + [300] + cbase[5:]),
            ("x dtype 7", cbase[:3] + [7] + cbase[4:]),
        ],
    )
    cases["conv2d_infer"] = Case(
        lib.pyrt_conv2d_infer,
        [_conv_shape()],
        pointers=[0],
        sizes=[],
        extra=[(n, [s]) for n, s in bad_shapes.items() if "out_h" not in n and "stride" not in n],
        ctx=False,
    )
    fw = buf(np.float32, 4 * 4 * 9, 0.1)
    fpacked = buf(np.uint8, lib.pyrt_conv2d_packed_size(CTX, cshape) + 64)
    cases["conv2d_pack"] = Case(
        lib.pyrt_conv2d_pack, [cshape, _p(fw, "float *"), _p(fpacked)], pointers=[0, 1, 2], sizes=[]
    )
    assert lib.pyrt_conv2d_pack(CTX, cshape, _p(fw, "float *"), _p(fpacked)) == lib.PYRT_OK
    fx, fy = buf(np.float32, 4 * 36), buf(np.float32, 4 * 36)
    fbase = [cshape, _p(fpacked), _p(fx, "float *"), ffi.NULL, -np.inf, np.inf, _p(fy, "float *")]
    cases["conv2d"] = Case(
        lib.pyrt_conv2d,
        fbase,
        pointers=[0, 1, 2, 6],
        sizes=[],
        extra=[(name, [s, *fbase[1:]]) for name, s in bad_shapes.items()],
    )

    qx, qy = buf(np.float32, 12, 1.0), buf(np.uint8, 12)
    dscale, dzero = buf(np.float32, 1), buf(np.uint8, 1)
    huge = buf(np.float32, 2, 3e38)
    huge[0] = -3e38
    dbase = [12, _p(qx, "float *"), _p(qy), _p(dscale, "float *"), _p(dzero)]
    cases["dynamic_quantize"] = Case(
        lib.pyrt_dynamic_quantize,
        dbase,
        pointers=[1, 2, 3, 4],
        sizes=[0],
        extra=[("range overflows", [2, _p(huge, "float *"), *dbase[2:]])],
    )
    layout = _layout()
    cases["quantize"] = Case(
        lib.pyrt_quantize,
        [layout, _p(qx, "float *"), _p(one, "float *"), ffi.NULL, lib.PYRT_U8, _p(qy)],
        pointers=[0, 1, 2, 5],
        sizes=[],
        extra=[
            ("dtype 7", [layout, _p(qx, "float *"), _p(one, "float *"), ffi.NULL, 7, _p(qy)]),
            (
                "scale 0",
                [
                    layout,
                    _p(qx, "float *"),
                    _p(buf(np.float32, 1), "float *"),
                    ffi.NULL,
                    lib.PYRT_U8,
                    _p(qy),
                ],
            ),
            *[
                (
                    f"{f}={v}",
                    [
                        _layout(**{f: v}),
                        _p(qx, "float *"),
                        _p(one, "float *"),
                        ffi.NULL,
                        lib.PYRT_U8,
                        _p(qy),
                    ],
                )
                for f, v in (("outer", 0), ("axis_len", -1), ("inner", 0), ("block", 0))
            ],
        ],
    )
    dx, dy = buf(np.uint8, 12, 3), buf(np.float32, 12)
    cases["dequantize"] = Case(
        lib.pyrt_dequantize,
        [layout, _p(dx), lib.PYRT_U8, _p(one, "float *"), ffi.NULL, _p(dy, "float *")],
        pointers=[0, 1, 3, 5],
        sizes=[],
        extra=[("dtype 7", [layout, _p(dx), 7, _p(one, "float *"), ffi.NULL, _p(dy, "float *")])],
    )

    a, b, c = buf(np.uint8, 10, 3), buf(np.uint8, 10, 4), buf(np.uint8, 10)
    qp = _qparams()
    bbase = [lib.PYRT_ADD, 10, _p(a), qp, _p(b), qp, _p(c), qp, 0, 255]
    cases["qbinary"] = Case(
        lib.pyrt_qbinary,
        bbase,
        pointers=[2, 3, 4, 5, 6, 7],
        sizes=[1],
        extra=[
            ("op 9", [9, *bbase[1:]]),
            ("qmin>qmax", bbase[:8] + [200, 100]),
            ("qmax 300", bbase[:8] + [0, 300]),
            ("scale 0", bbase[:3] + [_qparams(scale=0.0)] + bbase[4:]),
            ("scale inf", bbase[:7] + [_qparams(scale=np.inf)] + bbase[8:]),
            ("zero 256", bbase[:5] + [_qparams(zero=256)] + bbase[6:]),
            ("dtype 9", bbase[:3] + [_qparams(dtype=9)] + bbase[4:]),
        ],
    )

    cases["qbinary_broadcast"] = Case(
        lib.pyrt_qbinary_broadcast,
        [lib.PYRT_MUL, 2, 5, 1, _p(a), qp, _p(b), qp, _p(c), qp, 0, 255],
        pointers=[4, 5, 6, 7, 8, 9],
        sizes=[1, 2, 3],
        extra=[("op 9", [9, 2, 5, 1, _p(a), qp, _p(b), qp, _p(c), qp, 0, 255])],
    )

    px, py = buf(np.uint8, 2 * 36), buf(np.uint8, 2 * 16)
    bad_pools = {
        **{f"{f}=0": _pool_shape(**{f: 0}) for f in ("batch", "channels", "in_h", "kernel_w")},
        **{f"{f}=-1": _pool_shape(**{f: -1}) for f in ("stride_h", "dilation_w", "pad_top")},
        "out too big": _pool_shape(out_h=7),  # a window starting past the input
        "out 0": _pool_shape(out_h=0),
        "padding-only window": _pool_shape(pad_top=3, pad_bottom=3, out_h=7),
        "layout 2": _pool_shape(layout=2),
    }
    pbase = [_pool_shape(), _p(px), lib.PYRT_U8, _p(py)]
    cases["qmaxpool2d"] = Case(
        lib.pyrt_qmaxpool2d,
        pbase,
        pointers=[0, 1, 3],
        sizes=[],
        extra=[(n, [s, *pbase[1:]]) for n, s in bad_pools.items()]
        + [("dtype 7", pbase[:2] + [7, pbase[3]])],
    )
    abase = [_pool_shape(), _p(px), qp, _p(py), qp]
    cases["qavgpool2d"] = Case(
        lib.pyrt_qavgpool2d,
        abase,
        pointers=[0, 1, 2, 3, 4],
        sizes=[],
        extra=[(n, [s, *abase[1:]]) for n, s in bad_pools.items()]
        + [("scale 0", abase[:4] + [_qparams(scale=0.0)])],
    )
    gy = buf(np.uint8, 2)
    cases["qglobalavgpool"] = Case(
        lib.pyrt_qglobalavgpool,
        [2, 36, _p(px), qp, _p(gy), qp],
        pointers=[2, 3, 4, 5],
        sizes=[0, 1],
    )
    cases["qglobalavgpool_nhwc"] = Case(
        lib.pyrt_qglobalavgpool_nhwc,
        [1, 36, 2, _p(px), qp, _p(gy), qp],
        pointers=[3, 4, 5, 6],
        sizes=[0, 1, 2],
    )
    # attention: qmatmul (two activations), softmax / layernorm / activation rows
    qa, qb = buf(np.uint8, 2 * 4 * 8, 3), buf(np.int8, 2 * 8 * 5, 1)
    qy32 = buf(np.int32, 2 * 4 * 5)
    s32 = _stage(lib.PYRT_S32, one)
    mbase = [2, 4, 5, 8, _p(qa), lib.PYRT_U8, 3, 32, 8, _p(qb), lib.PYRT_S8, 0, 40, 5, 1]
    mbase += [s32, _p(qy32), 20, 5]
    cases["qmatmul"] = Case(
        lib.pyrt_qmatmul,
        mbase,
        pointers=[4, 9, 15, 16],
        sizes=[0, 1, 2, 3, 8, 18],
        extra=[
            ("a dtype 9", mbase[:5] + [9] + mbase[6:]),
            ("b zero 300", mbase[:11] + [300] + mbase[12:]),
            ("ldb_n -1", mbase[:14] + [-1] + mbase[15:]),
            ("stride_y < M * ldy", mbase[:17] + [19, 5]),
            ("out dtype 9", mbase[:15] + [_stage(9, one)] + mbase[16:]),
        ],
    )
    fx, fy = buf(np.float32, 8, 0.5), buf(np.float32, 8)
    f32 = _qparams(dtype=lib.PYRT_F32)
    sbase = [2, 4, _p(fx), f32, 1.0, 1.0, _p(fx), 1, _p(fy), f32]
    cases["softmax"] = Case(
        lib.pyrt_softmax,
        sbase,
        pointers=[2, 3, 8, 9],
        sizes=[0, 1],
        extra=[
            ("x_mul 0", sbase[:4] + [0.0] + sbase[5:]),
            ("x_mul inf", sbase[:4] + [float("inf")] + sbase[5:]),
            ("x_div 0", sbase[:5] + [0.0] + sbase[6:]),
            ("x_div nan", sbase[:5] + [float("nan")] + sbase[6:]),
            ("rows_per_mask 0", sbase[:7] + [0] + sbase[8:]),
            ("rows_per_mask 3", sbase[:7] + [3] + sbase[8:]),
            ("qy dtype 9", sbase[:9] + [_qparams(dtype=9)]),
            ("qx scale 0", sbase[:3] + [_qparams(scale=0.0)] + sbase[4:]),
        ],
    )
    g8 = buf(np.uint8, 8)
    lbase = [2, 4, _p(fx), f32, _p(one), _p(fx), f32, _p(one), _p(one), 1e-5, _p(fy)]
    lbase += [_p(g8), qp, _p(fy)]
    cases["layernorm"] = Case(
        lib.pyrt_layernorm,
        lbase,
        pointers=[2, 3, 7],
        sizes=[0, 1],
        extra=[
            ("epsilon -1", lbase[:9] + [-1.0] + lbase[10:]),
            ("epsilon nan", lbase[:9] + [float("nan")] + lbase[10:]),
            ("no output", lbase[:10] + [ffi.NULL, ffi.NULL] + lbase[12:]),
            ("yq as F32", lbase[:12] + [f32] + lbase[13:]),
            ("residual dtype 9", lbase[:6] + [_qparams(dtype=9)] + lbase[7:]),
        ],
    )
    abase = [2, 4, _p(fx), f32, _p(one), lib.PYRT_ACT_GELU, _p(g8), qp]
    cases["activation"] = Case(
        lib.pyrt_activation,
        abase,
        pointers=[2, 3, 6, 7],
        sizes=[0, 1],
        extra=[
            ("act 7", abase[:5] + [7] + abase[6:]),
            ("qy zero 300", abase[:7] + [_qparams(zero=300)]),
        ],
    )
    out = ffi.new("pyrt_context **")
    cases["context_create"] = Case(
        lambda isa, threads, ptr: _created(lib.pyrt_context_create(isa, threads, ptr), ptr),
        [b"scalar", 2, out],
        pointers=[2],
        sizes=[1],
        extra=[("unknown isa", [b"nope", 1, out]), ("threads 100000", [b"scalar", 100000, out])],
        ctx=False,
    )
    _cases.keep = keep
    return cases


CASES = _cases()


@pytest.mark.parametrize("entry", sorted(CASES))
def test_c_entry_point_rejects_bad_arguments(entry):
    case = CASES[entry]
    assert case.fn(*case.args) == lib.PYRT_OK, ffi.string(lib.pyrt_last_error()).decode()
    for what, args in case.variants():
        status = case.fn(*args)
        message = ffi.string(lib.pyrt_last_error()).decode()
        assert status != lib.PYRT_OK, f"{entry}({what}) was accepted"
        assert message, f"{entry}({what}) returned {status} without a message"
    assert case.fn(*case.args) == lib.PYRT_OK  # a failed call leaves nothing broken behind


def test_packed_sizes_of_bad_shapes_are_zero():
    for m, k in ((0, 4), (4, 0), (-1, 4), (4, -(2**31))):
        assert lib.pyrt_qgemm_packed_size(CTX, m, k) == 0
        assert lib.pyrt_sgemm_packed_size(CTX, m, k) == 0
    assert lib.pyrt_qgemm_packed_size(ffi.NULL, 4, 4) == 0
    assert lib.pyrt_qconv2d_packed_size(CTX, ffi.NULL) == 0
    assert lib.pyrt_conv2d_packed_size(CTX, _conv_shape(groups=0)) == 0
    assert lib.pyrt_qconv2d_packed_size(CTX, _conv_shape(stride_h=0)) == 0
