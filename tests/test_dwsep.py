"""kernels.dwsep_block against the float64 oracle: every feature on small odd shapes (CPU,
Triton interpreter), bad inputs, and the full matrix on GPU (skipped without CUDA)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import torch
from tolerances import tolerance

import kernels
from bench.measuring.operators import DWSEP
from bench.measuring.operators.dwsep import DwsepInputs
from bench.measuring.operators.dwsep_modules import block_modules, depthwise_conv_backend
from bench.measuring.suites import DwsepShape, Workload
from kernels import _runtime
from kernels.dwsep import DTYPES
from kernels.reference import dwsep_reference

F32, F16, BF16 = torch.float32, torch.float16, torch.bfloat16
DEVICE = "cpu" if _runtime.INTERPRET else "cuda"


@dataclass(frozen=True)
class Case:
    n: int
    c: int
    cout: int
    h: int
    w: int
    k: int = 3
    stride: int = 1
    padding: int | None = None
    dtype: torch.dtype = F32
    channels_last: bool = False
    activation: str | None = "relu"
    pw_activation: str | None = None
    affine: str = "all"  # which of dw_scale, dw_shift, pw_scale, pw_shift are given
    affine_dtype: torch.dtype | None = None  # None: the input dtype
    gain: float = 1.0  # input scale; 4.0 pushes values past relu6's clamp at 6

    def __str__(self) -> str:
        fmt = "nhwc" if self.channels_last else "nchw"
        return (
            f"{self.n}x{self.c}x{self.h}x{self.w}->{self.cout}-k{self.k}s{self.stride}"
            f"p{self.padding}-{str(self.dtype)[6:]}-{fmt}-{self.activation}-{self.pw_activation}"
            f"-{self.affine}"
        )


AFFINES = {
    "all": ("dw_scale", "dw_shift", "pw_scale", "pw_shift"),
    "none": (),
    "dw": ("dw_scale", "dw_shift"),
    "pw": ("pw_scale", "pw_shift"),
    "shifts": ("dw_shift", "pw_shift"),
    "scales": ("dw_scale", "pw_scale"),
}


def make_inputs(case: Case, device: str = DEVICE, seed: int = 0) -> tuple[tuple, dict]:
    """Random inputs scaled so every stage is of order 1 (times ``gain``)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    x = randn(case.n, case.c, case.h, case.w) * case.gain
    dw_weight = randn(case.c, 1, case.k, case.k) / case.k
    pw_weight = randn(case.cout, case.c, 1, 1) / case.c**0.5
    vectors = {
        "dw_scale": torch.rand(case.c, generator=g) + 0.5,
        "dw_shift": randn(case.c) * 0.5,
        "pw_scale": torch.rand(case.cout, generator=g) + 0.5,
        "pw_shift": randn(case.cout) * 0.5,
    }
    x = x.to(device, case.dtype)
    if case.channels_last:
        x = x.to(memory_format=torch.channels_last)
    affine_dtype = case.affine_dtype or case.dtype
    kwargs = {name: vectors[name].to(device, affine_dtype) for name in AFFINES[case.affine]}
    kwargs.update(
        stride=case.stride,
        padding=case.padding,
        activation=case.activation,
        pw_activation=case.pw_activation,
    )
    return (x, dw_weight.to(device, case.dtype), pw_weight.to(device, case.dtype)), kwargs


def check_against_reference(case: Case, seed: int = 0) -> torch.Tensor:
    (x, dw_weight, pw_weight), kwargs = make_inputs(case, seed=seed)
    out = kernels.dwsep_block(x, dw_weight, pw_weight, **kwargs)
    double = {k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    ref = dwsep_reference(x.double(), dw_weight.double(), pw_weight.double(), **double)
    assert out.shape == ref.shape
    assert out.dtype == case.dtype
    fmt = torch.channels_last if case.channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=fmt), "output must keep the input's memory format"
    torch.testing.assert_close(out.double(), ref, **tolerance(case.dtype))
    return ref


# A covering set, not the full product: every K, stride, padding kind, dtype, layout, activation
# on both stages and affine combination appears; odd channel counts throughout; C=70 / Cout=67
# span 3 channel blocks and 3 output-channel tiles of the interpreter config (32), C=33 two,
# 2x20x12x12 several pixel tiles.
CPU_CASES = [
    Case(1, 3, 5, 8, 8, k=3, dtype=F32, activation="relu", pw_activation=None),
    Case(
        2,
        7,
        13,
        9,
        11,
        k=5,
        stride=2,
        dtype=F16,
        channels_last=True,
        activation="relu6",
        pw_activation="relu",
        affine="dw",
        gain=4.0,
    ),
    Case(
        2,
        7,
        13,
        10,
        7,
        k=7,
        padding=0,
        dtype=BF16,
        activation=None,
        pw_activation="relu6",
        affine="pw",
        gain=4.0,
    ),
    Case(
        1,
        70,
        67,
        6,
        5,
        k=3,
        stride=2,
        padding=2,
        dtype=F32,
        channels_last=True,
        activation="relu",
        pw_activation="relu",
    ),
    Case(
        2,
        5,
        3,
        7,
        7,
        k=7,
        stride=2,
        padding=1,
        dtype=BF16,
        channels_last=True,
        activation="relu6",
        pw_activation=None,
        affine="none",
        gain=4.0,
    ),
    Case(1, 17, 19, 5, 9, k=5, dtype=F16, activation=None, pw_activation=None, affine="shifts"),
    Case(
        2,
        20,
        24,
        12,
        12,
        k=3,
        dtype=F32,
        activation="relu6",
        pw_activation="relu6",
        affine="scales",
        gain=4.0,
    ),
    Case(
        2,
        33,
        17,
        6,
        7,
        k=3,
        stride=2,
        dtype=BF16,
        channels_last=True,
        activation="relu",
        pw_activation="relu",
        affine_dtype=F32,
    ),
    Case(
        1,
        9,
        11,
        5,
        5,
        k=5,
        stride=1,
        padding=1,
        dtype=F16,
        channels_last=True,
        activation="relu",
        pw_activation=None,
        affine_dtype=F32,
    ),
]


@pytest.mark.parametrize("case", CPU_CASES, ids=str)
def test_matches_float64_reference(case: Case, poisoned_allocations) -> None:
    ref = check_against_reference(case)
    if case.gain > 1 and case.pw_activation == "relu6":
        assert (ref == 6).any(), "the pointwise relu6 case should reach the clamp"


def test_relu6_cases_reach_the_upper_clamp() -> None:
    """The depthwise relu6 cases only test the clamp if the depthwise values pass 6."""
    for case in CPU_CASES:
        if case.activation != "relu6":
            continue
        (x, dw_weight, _), kwargs = make_inputs(case, device="cpu")
        pad = case.k // 2 if case.padding is None else case.padding
        y = torch.nn.functional.conv2d(
            x.double(), dw_weight.double(), stride=case.stride, padding=pad, groups=case.c
        )
        if "dw_scale" in kwargs:
            y = y * kwargs["dw_scale"].double().view(1, -1, 1, 1)
        if "dw_shift" in kwargs:
            y = y + kwargs["dw_shift"].double().view(1, -1, 1, 1)
        assert (y > 6).any(), f"{case}: no depthwise value above 6"


def test_edge_shapes(poisoned_allocations) -> None:
    """C = 1 and a 1x1 image (layouts coincide), and a strided (non-dense) input view."""
    check_against_reference(Case(1, 1, 4, 1, 1, k=3))
    check_against_reference(Case(2, 2, 3, 3, 3, k=3, stride=2, padding=0))
    (x, dw_weight, pw_weight), kwargs = make_inputs(Case(1, 6, 5, 8, 8, k=3))
    view = x[:, ::2, 1:, :]  # not contiguous in any format
    out = kernels.dwsep_block(
        view,
        dw_weight[::2],
        pw_weight[:, ::2],
        **kwargs | {"dw_scale": kwargs["dw_scale"][::2], "dw_shift": kwargs["dw_shift"][::2]},
    )
    ref = dwsep_reference(
        view.double(),
        dw_weight[::2].double(),
        pw_weight[:, ::2].double(),
        **{k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        | {
            "dw_scale": kwargs["dw_scale"][::2].double(),
            "dw_shift": kwargs["dw_shift"][::2].double(),
        },
    )
    torch.testing.assert_close(out.double(), ref, **tolerance(F32))


def test_poison_fixture_poisons(poisoned_allocations) -> None:
    assert torch.empty(3).isnan().all()
    assert torch.empty_like(torch.zeros(2, dtype=torch.bfloat16)).isnan().all()


def test_autotune_pruning_fits_tiles_to_the_problem() -> None:
    """The size pruning on a hand-made config list (pure Python, no device needed)."""
    import triton

    from kernels import dwsep

    configs = [
        triton.Config({"BLOCK_P": p, "BLOCK_C": c, "BLOCK_CO": co})
        for p, c, co in [(16, 32, 64), (128, 32, 32), (64, 32, 256), (64, 64, 64), (128, 16, 16)]
    ]
    kept = dwsep.TUNABLE.prune(configs, {"P": 2 * 28 * 28, "C": 32, "COUT": 24})
    assert [cfg.kwargs["BLOCK_CO"] for cfg in kept] == [32, 16]
    tiny = dwsep.TUNABLE.prune(configs, {"P": 9, "C": 3, "COUT": 5})
    assert len(tiny) == 1  # nothing fits: the smallest config is kept
    assert len(dwsep.TUNABLE.prune(configs, {"P": 10**6, "C": 960, "COUT": 320})) == 5


# ---- NaN / inf and autograd (issue 13: no silently wrong number) ---------------------------


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize(
    ("activation", "pw_activation"), [("relu", "relu"), ("relu6", None), (None, "relu6")]
)
def test_nan_and_inf_propagate_as_in_float64(activation, pw_activation, channels_last) -> None:
    """NaN and inf planted in x come out where the float64 oracle has them: tl.maximum-based
    relu turned NaN into 0 (v1), where torch.relu keeps it."""
    case = Case(
        1,
        6,
        5,
        7,
        6,
        activation=activation,
        pw_activation=pw_activation,
        channels_last=channels_last,
    )
    (x, dw_weight, pw_weight), kwargs = make_inputs(case)
    x = x.clone()
    x[0, 1, 2, 3] = float("nan")
    x[0, 4, 5, 0] = float("inf")
    x[0, 0, 0, 5] = -float("inf")
    out = kernels.dwsep_block(x, dw_weight, pw_weight, **kwargs)
    double = {k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    ref = dwsep_reference(x.double(), dw_weight.double(), pw_weight.double(), **double)
    assert ref.isnan().any() and not ref.isnan().all(), "the case must plant NaNs and spare some"
    torch.testing.assert_close(out.double(), ref, equal_nan=True, **tolerance(case.dtype))


def test_inputs_that_need_grad_are_refused_with_a_clear_error() -> None:
    (x, dw_weight, pw_weight), kwargs = make_inputs(Case(1, 4, 6, 5, 5))
    with pytest.raises(RuntimeError, match=r"inference-only.*backend='torch'"):
        kernels.dwsep_block(x.requires_grad_(), dw_weight, pw_weight, **kwargs)
    with torch.no_grad():  # the same call without autograd recording is fine
        assert kernels.dwsep_block(x, dw_weight, pw_weight, **kwargs).shape == (1, 6, 5, 5)


# ---- the baselines the harness times ------------------------------------------------------

EAGER_NAMES = DWSEP.names("eager")
KNOWN_BACKENDS = {"cudnn", "native-depthwise", "oneDNN", "aten-cpu", "inductor"}
PROVIDER_SHAPE = DwsepShape(7, 13, 5, 2, 9, 11, activation="relu6", pw_activation="relu")


def _provider_check(name: str, dtype: torch.dtype = F32) -> str:
    """Provider ``name`` as the runner prepares it, on inputs pushed past relu6's clamp, against
    the operator's float64 oracle (the unfused block, BN folded, independent of the modules)."""
    inputs = DwsepInputs.random(PROVIDER_SHAPE, 2)
    inputs = replace(inputs, x=inputs.x * 4.0)
    workload = Workload("test", PROVIDER_SHAPE, 2)
    prepared = DWSEP.prepare(name, workload, "cpu", dtype, inputs)
    assert prepared.backend in KNOWN_BACKENDS
    out = prepared.fn()
    fmt = torch.channels_last if DWSEP.get(name).layout == "nhwc" else torch.contiguous_format
    assert out.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(out.double(), prepared.oracle(), **tolerance(dtype))
    return prepared.backend


@pytest.mark.parametrize("name", EAGER_NAMES)
def test_eager_providers_match_reference(name: str) -> None:
    _provider_check(name)


def test_eager_providers_bfloat16() -> None:
    for name in EAGER_NAMES:
        _provider_check(name, BF16)


@pytest.mark.parametrize("fold", [False, True], ids=["bn-modules", "folded"])
@pytest.mark.parametrize("affine", ["shifts", "scales", "none"])
def test_block_modules_with_partial_affine(fold: bool, affine: str) -> None:
    """The modules behind the eager baselines for every subset of scale/shift."""
    case = Case(2, 7, 13, 9, 11, k=5, stride=2, activation="relu6", affine=affine, gain=4.0)
    (x, dw_weight, pw_weight), kwargs = make_inputs(case, device="cpu")
    module = block_modules(dw_weight, pw_weight, fold=fold, **kwargs)
    double = {k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    ref = dwsep_reference(x.double(), dw_weight.double(), pw_weight.double(), **double)
    with torch.no_grad():
        torch.testing.assert_close(module(x).double(), ref, **tolerance(case.dtype))


def test_compile_default_provider_matches_reference() -> None:
    # Inductor's first compile: ~5-12 s on the 2-core CPU machine, so one case only.
    assert _provider_check(DWSEP.names("compile")[0]) == "inductor"


@pytest.mark.slow
def test_compile_max_autotune_provider_matches_reference() -> None:
    assert _provider_check(DWSEP.names("compile")[1]) == "inductor"


def test_depthwise_conv_backend_names_torch_choice() -> None:
    for dtype in DTYPES:
        for fmt in (torch.contiguous_format, torch.channels_last):
            assert depthwise_conv_backend("cpu", dtype, fmt) in {"oneDNN", "aten-cpu"}
    if torch.backends.mkldnn.is_available():
        assert depthwise_conv_backend("cpu", F32, torch.channels_last) == "oneDNN"


# ---- bad input ---------------------------------------------------------------------------


def _good():
    (x, dw_weight, pw_weight), _ = make_inputs(Case(1, 4, 6, 5, 5), device="cpu")
    return x, dw_weight, pw_weight


BAD_INPUTS = [
    # (description, callable building args -> kwargs override, exception, message fragment)
    ("x 3-D", lambda x, d, p: ((x[0], d, p), {}), ValueError, "must be 4-D"),
    ("x not a tensor", lambda x, d, p: ((x.numpy(), d, p), {}), TypeError, "torch.Tensor"),
    ("channels mismatch", lambda x, d, p: ((x[:, :3], d, p), {}), ValueError, "(C, 1, K, K)"),
    ("pw channels", lambda x, d, p: ((x, d, p[:, :3]), {}), ValueError, "(Cout, 4, 1, 1)"),
    ("even K", lambda x, d, p: ((x, torch.randn(4, 1, 4, 4), p), {}), ValueError, "(3, 5, 7)"),
    ("K 9", lambda x, d, p: ((x, torch.randn(4, 1, 9, 9), p), {}), ValueError, "(3, 5, 7)"),
    ("non-square K", lambda x, d, p: ((x, torch.randn(4, 1, 3, 5), p), {}), ValueError, "K, K"),
    ("mixed dtypes", lambda x, d, p: ((x, d.half(), p), {}), TypeError, "share one dtype"),
    ("float64", lambda x, d, p: ((x.double(), d.double(), p.double()), {}), TypeError, "accepted"),
    ("int", lambda x, d, p: ((x.int(), d, p), {}), TypeError, "accepted"),
    ("stride 3", lambda x, d, p: ((x, d, p), {"stride": 3}), ValueError, "stride must be 1 or 2"),
    ("negative padding", lambda x, d, p: ((x, d, p), {"padding": -1}), ValueError, "padding"),
    ("bad activation", lambda x, d, p: ((x, d, p), {"activation": "gelu"}), ValueError, "relu6"),
    (
        "bad pw activation",
        lambda x, d, p: ((x, d, p), {"pw_activation": "tanh"}),
        ValueError,
        "pw_activation",
    ),
    (
        "scale shape",
        lambda x, d, p: ((x, d, p), {"dw_scale": torch.ones(6)}),
        ValueError,
        "dw_scale must have shape (4,)",
    ),
    (
        "shift dtype",
        lambda x, d, p: ((x, d, p), {"pw_shift": torch.ones(6).double()}),
        TypeError,
        "float32",
    ),
    (
        "scale not a tensor",
        lambda x, d, p: ((x, d, p), {"pw_scale": [1.0] * 6}),
        TypeError,
        "pw_scale",
    ),
    (
        "too small",
        lambda x, d, p: ((x[..., :1, :1], d, p), {"padding": 0}),
        ValueError,
        "smaller than",
    ),
    ("empty batch", lambda x, d, p: ((x[:0], d, p), {}), ValueError, "empty"),
]


@pytest.mark.parametrize(
    "build, exc, fragment", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_is_rejected_clearly(build, exc, fragment) -> None:
    args, kwargs = build(*_good())
    with pytest.raises(exc) as info:
        kernels.dwsep_block(*args, **kwargs)
    assert fragment in str(info.value)


def test_unsupported_device_is_rejected() -> None:
    x, d, p = _good()
    if _runtime.INTERPRET:
        x, d, p = x.to("meta"), d.to("meta"), p.to("meta")  # not where the interpreter runs
    with pytest.raises(ValueError, match="accept tensors on"):
        kernels.dwsep_block(x, d, p)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for two devices")
def test_mixed_devices_are_rejected() -> None:
    x, d, p = _good()
    with pytest.raises(ValueError, match="one device"):
        kernels.dwsep_block(x.cuda(), d, p.cuda())


# ---- GPU: the full matrix ------------------------------------------------------------------

# MobileNetV2 (width 1.0, 224x224) dw -> pw-linear projections: (C, Cout, H, stride) per stage.
MOBILENET_V2_SHAPES = [
    (32, 16, 112, 1),
    (96, 24, 112, 2),
    (144, 24, 56, 1),
    (144, 32, 56, 2),
    (192, 32, 28, 1),
    (192, 64, 28, 2),
    (384, 64, 14, 1),
    (384, 96, 14, 1),
    (576, 96, 14, 1),
    (576, 160, 14, 2),
    (960, 160, 7, 1),
    (960, 320, 7, 1),
]
GPU_DTYPES = [F32, F16, BF16]


@pytest.fixture
def no_tf32():
    """fp32 compared with the float64 oracle at fp32 tolerance: TF32 would need a looser one."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.usefixtures("no_tf32", "poisoned_allocations")
class TestGPU:
    @pytest.mark.parametrize("dtype", GPU_DTYPES, ids=str)
    @pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
    @pytest.mark.parametrize("batch", [1, 2, 32, 256])
    def test_documents_block_128_to_256_at_32x32(self, dtype, channels_last, batch) -> None:
        case = Case(batch, 128, 256, 32, 32, dtype=dtype, channels_last=channels_last)
        check_against_reference(replace(case, pw_activation="relu"))

    @pytest.mark.parametrize("dtype", GPU_DTYPES, ids=str)
    @pytest.mark.parametrize("shape", MOBILENET_V2_SHAPES, ids=str)
    @pytest.mark.parametrize("batch", [1, 8])
    def test_mobilenet_v2_projection_shapes(self, dtype, shape, batch) -> None:
        c, cout, h, stride = shape
        check_against_reference(
            Case(
                batch,
                c,
                cout,
                h,
                h,
                stride=stride,
                dtype=dtype,
                channels_last=True,
                activation="relu6",
                gain=4.0,
            )
        )

    @pytest.mark.parametrize("case", CPU_CASES, ids=str)
    def test_cpu_cases_compiled(self, case: Case) -> None:
        check_against_reference(case)

    @pytest.mark.parametrize("k", [3, 5, 7])
    @pytest.mark.parametrize("stride", [1, 2])
    @pytest.mark.parametrize("dtype", GPU_DTYPES, ids=str)
    @pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
    def test_kernel_stride_layout_matrix(self, k, stride, dtype, channels_last) -> None:
        base = Case(
            3,
            45,
            70,
            19,
            23,
            k=k,
            stride=stride,
            dtype=dtype,
            channels_last=channels_last,
            activation="relu6",
        )
        base = replace(base, pw_activation="relu")
        check_against_reference(base)
        check_against_reference(replace(base, padding=0, affine="none", activation=None))

    def test_tf32_follows_cudnn_flag(self) -> None:
        """With TF32 allowed, fp32 matches the oracle to TF32 precision (10-bit mantissa)."""
        torch.backends.cudnn.allow_tf32 = True
        (x, d, p), kw = make_inputs(Case(4, 128, 256, 16, 16))
        out = kernels.dwsep_block(x, d, p, **kw)
        dbl = {k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
        ref = dwsep_reference(x.double(), d.double(), p.double(), **dbl)
        torch.testing.assert_close(out.double(), ref, rtol=5e-3, atol=5e-3)

    @pytest.mark.slow
    def test_indexing_past_2_pow_31_elements(self) -> None:
        """An fp16 input of 2^31 + 2^21 elements: int32 offsets would wrap. Checks the last
        image, where wrapped offsets would read and write the wrong memory."""
        n, c, h, w = 2**11 + 2, 16, 256, 256  # 2,147,614,720 elements, 4.3 GB per tensor
        free, _ = torch.cuda.mem_get_info()
        if free < 12 * 2**30:
            pytest.skip("needs ~12 GiB of free GPU memory")
        x = torch.randn(n, c, h, w, device="cuda", dtype=F16)
        assert x.numel() > 2**31
        d = torch.randn(c, 1, 3, 3, device="cuda", dtype=F16) / 3
        p = torch.randn(16, c, 1, 1, device="cuda", dtype=F16) / 4
        out = kernels.dwsep_block(x, d, p)
        tail = dwsep_reference(x[-2:].double(), d.double(), p.double())
        torch.testing.assert_close(out[-2:].double(), tail, **tolerance(F16))

    @pytest.mark.parametrize("dtype", GPU_DTYPES, ids=str)
    @pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
    @pytest.mark.parametrize("shape", [(1, 32, 112), (32, 144, 56), (128, 128, 32)], ids=str)
    def test_depthwise_backend_is_what_ran(self, dtype, channels_last, shape) -> None:
        """depthwise_conv_backend agrees with the kernels the profiler sees: ATen's native
        depthwise kernels are named conv_depthwise2d*, cuDNN's are not."""
        n, c, h = shape
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x = torch.randn(n, c, h, h, device="cuda", dtype=dtype).contiguous(memory_format=fmt)
        w = torch.randn(c, 1, 3, 3, device="cuda", dtype=dtype).contiguous(memory_format=fmt)
        claimed = depthwise_conv_backend("cuda", dtype, fmt, channels=c, input_shape=(n, c, h, h))
        torch.nn.functional.conv2d(x, w, padding=1, groups=c)  # warm-up: cuDNN's own tuning
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            torch.nn.functional.conv2d(x, w, padding=1, groups=c)
            torch.cuda.synchronize()
        names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        native = any("conv_depthwise2d" in name for name in names)
        assert claimed == ("native-depthwise" if native else "cudnn"), names
