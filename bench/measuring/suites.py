"""Workload matrices as data: which shapes each suite measures, at which size and batch.

Suites: ``documents`` (every separable shape the documents name), ``mobilenet`` (MobileNetV1
Table 1 and MobileNetV2 dw->pw layer shapes at 224x224), ``lenet`` (LeNet-5's convolutions as
separable blocks and its 84 -> 10 RBF layer), ``rbf`` (distance and loss over a size sweep),
``models`` (whole networks), ``kernelbench`` (KernelBench level 1's depthwise, pointwise and
depthwise-separable problems #82-#87 at their own shapes). Sizes: ``quick`` (the default
report), ``full`` and ``smoke`` (a tiny hidden size for tests). Providers are chosen by the
operators (bench.measuring.operators); here only shapes live.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.formulas import conv_out_size
from bench.provenance import DEVICES

SUITES = ("documents", "mobilenet", "lenet", "rbf", "models")  # a report's default
# Also accepted by name: kernelbench (its GPU shapes are big; a CPU report runs it only when asked).
ALL_SUITES = (*SUITES, "kernelbench")
SIZES = ("quick", "full", "smoke")


@dataclass(frozen=True)
class DwsepShape:
    """Depthwise KxK (stride, padding) -> pointwise 1x1 on an (in_ch, h, w) input."""

    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    h: int
    w: int
    padding: int | None = None  # None: kernel // 2 ("same" at stride 1)
    activation: str | None = "relu"  # after the depthwise conv (+BN)
    pw_activation: str | None = "relu"  # after the pointwise conv (+BN); None: linear bottleneck
    source: str = ""

    @property
    def pad(self) -> int:
        return self.kernel // 2 if self.padding is None else self.padding

    @property
    def out_hw(self) -> tuple[int, int]:
        return (
            conv_out_size(self.h, self.kernel, self.stride, self.pad),
            conv_out_size(self.w, self.kernel, self.stride, self.pad),
        )

    def describe(self, batch: int) -> str:
        return (
            f"N{batch} C{self.in_ch}->{self.out_ch} {self.h}x{self.w} k{self.kernel} "
            f"s{self.stride} p{self.pad} act={self.activation} pw_act={self.pw_activation}"
        )

    @property
    def id(self) -> str:
        base = f"dwsep_{self.in_ch}_{self.out_ch}_k{self.kernel}_s{self.stride}_{self.h}x{self.w}"
        suffix = "" if self.padding is None else f"_p{self.padding}"
        return base + suffix + ("_linear" if self.pw_activation is None else "")


@dataclass(frozen=True)
class RbfShape:
    """x (batch, dim) against ``centers`` prototypes; ``loss`` times the 1998 loss fwd + bwd."""

    batch: int
    dim: int
    centers: int
    loss: bool = False
    # x and the centers this far from the origin (each coordinate + offset): the accuracy test
    # of the expansion |x|^2 + |c|^2 - 2 x.c, which cancels there
    offset: float = 0.0

    def describe(self, batch: int) -> str:
        far = f" offset {self.offset:g}" if self.offset else ""
        return (
            f"B{self.batch} D{self.dim} K{self.centers}" + (" fwd+bwd" if self.loss else "") + far
        )

    @property
    def id(self) -> str:
        prefix = "rbfloss" if self.loss else "rbf"
        far = f"_off{self.offset:g}" if self.offset else ""
        return f"{prefix}_b{self.batch}_d{self.dim}_k{self.centers}{far}"


@dataclass(frozen=True)
class ModelShape:
    """A registered model (models.registry) at its own input shape."""

    name: str

    def describe(self, batch: int) -> str:
        return f"N{batch} model {self.name}"

    @property
    def id(self) -> str:
        return self.name


Shape = DwsepShape | RbfShape | ModelShape


@dataclass(frozen=True)
class Workload:
    """One (suite, shape, batch) the runner measures with every provider that applies."""

    suite: str
    shape: Shape
    batch: int
    # torch.compile builds C++ per shape on CPU (~15-20 s each, measured): the CPU quick suite
    # compiles only where this is True.
    compile_on_cpu: bool = False
    naive_timer: bool = False  # add document 001's host-clock method beside the honest timer
    tags: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return self.shape.id

    def describe(self) -> str:
        """The shape column of a results row: sizes, batch and options in one line."""
        return self.shape.describe(self.batch)

    @property
    def kind(self) -> str:
        if isinstance(self.shape, DwsepShape):
            return "dwsep"
        if isinstance(self.shape, RbfShape):
            return "rbfloss" if self.shape.loss else "rbf"
        return "model"


def kind_of_workload_id(workload_id: str) -> str:
    """The operator kind a workload id belongs to (the shapes' ``id`` prefixes): for results
    files written before rows carried their ``kind``."""
    for prefix, kind in (("dwsep_", "dwsep"), ("rbfloss_", "rbfloss"), ("rbf_", "rbf")):
        if str(workload_id).startswith(prefix):
            return kind
    return "model"


# Document 001: the CIFAR CNN's separable layers at 32x32 (its architecture), plus the 8.7x
# worked example (128 -> 256 at 32x32; in the network that layer runs at 16x16 after pooling).
DOCUMENT_SHAPES = (
    DwsepShape(3, 32, 3, 1, 32, 32, source="001: conv_dw(3, 32), 864 vs 123 parameters"),
    DwsepShape(32, 64, 3, 1, 32, 32, source="001: CIFAR CNN layer 2"),
    DwsepShape(64, 128, 3, 1, 32, 32, source="001: CIFAR CNN layer 3"),
    DwsepShape(128, 256, 3, 1, 16, 16, source="001: CIFAR CNN layer 5 (after pooling)"),
    DwsepShape(128, 256, 3, 1, 32, 32, source="001: the 8.7x worked example"),
)
HEADLINE_ID = "dwsep_128_256_k3_s1_32x32"

# Howard et al. 2017, Table 1 (224x224 input). The last separable layer is listed with stride 2
# there but runs at 7x7 -> 7x7, i.e. stride 1, which is what is measured here.
MOBILENET_V1 = tuple(
    DwsepShape(cin, cout, 3, s, hw, hw, source="MobileNetV1 Table 1")
    for cin, cout, s, hw in (
        (32, 64, 1, 112),
        (64, 128, 2, 112),
        (128, 128, 1, 56),
        (128, 256, 2, 56),
        (256, 256, 1, 28),
        (256, 512, 2, 28),
        (512, 512, 1, 14),
        (512, 1024, 2, 14),
        (1024, 1024, 1, 7),
    )
)
# Sandler et al. 2018: the dw 3x3 (ReLU6) -> 1x1 projection (linear) of each inverted residual
# stage, on the expanded channels (t * c_in).
MOBILENET_V2 = tuple(
    DwsepShape(
        hidden, cout, 3, s, hw, hw, activation="relu6", pw_activation=None, source="MobileNetV2"
    )
    for hidden, cout, s, hw in (
        (32, 16, 1, 112),
        (96, 24, 2, 112),
        (144, 24, 1, 56),
        (144, 32, 2, 56),
        (192, 32, 1, 28),
        (192, 64, 2, 28),
        (384, 64, 1, 14),
        (384, 96, 1, 14),
        (576, 96, 1, 14),
        (576, 160, 2, 14),
        (960, 160, 1, 7),
        (960, 320, 1, 7),
    )
)
# LeNet-5's convolutions (no padding) made separable, as documents 000 and 002 do.
LENET_SHAPES = (
    DwsepShape(1, 6, 5, 1, 32, 32, padding=0, activation=None, source="000/002: C1"),
    DwsepShape(6, 16, 5, 1, 14, 14, padding=0, activation=None, source="000/002: C3"),
    DwsepShape(16, 120, 5, 1, 5, 5, padding=0, activation=None, source="000/002: C5"),
)
MODEL_NAMES = (
    "lenet5",
    "lenet5_dw",
    "lenet5_paper",
    "lenet5_paper_dw",
    "cifar_cnn",
    "cifar_cnn_dw",
    "mobilenet_v2",
)


# KernelBench level 1 (github.com/ScalingIntelligence/KernelBench, KernelBench/level1/8x_*.py,
# read from a mirror at commit 0f87aa0d): the problems about depthwise, pointwise and separable
# convolutions, at their get_inputs() shapes (float32 there, no bias, no activation). Our block
# is depthwise KxK (square K in 3/5/7) -> pointwise 1x1 with optional BN/act, so:
# - #86 (depthwise-separable) is our block exactly, activations off;
# - #82 and #84 (pure depthwise, square 3x3) run as our block with an identity pointwise
#   (Cout = C, pw weight = I): the floor (x read, y written, same sizes) is the problem's own,
#   the identity dot adds C x C MACs per pixel on the tensor cores;
# - #87 (pure pointwise 64 -> 128 at 1024x1024) and #83 / #85 (asymmetric 3x1 and 3x7 depthwise
#   kernels) are not applicable: the block has no 1x1 depthwise and no rectangular kernel.
#   They are listed in KERNELBENCH_NOT_APPLICABLE, with the reason, and not run.
KERNELBENCH = (
    (
        86,
        16,
        DwsepShape(64, 128, 3, 1, 512, 512, padding=1, activation=None, pw_activation=None,
                   source="KernelBench L1 #86 conv_depthwise_separable_2D"),
    ),
    (
        82,
        16,
        DwsepShape(64, 64, 3, 1, 512, 512, padding=0, activation=None, pw_activation=None,
                   source="KernelBench L1 #82 conv_depthwise_2D_square_input_square_kernel, "
                   "as our block with an identity pointwise"),
    ),
    (
        84,
        64,
        DwsepShape(128, 128, 3, 1, 256, 512, padding=0, activation=None, pw_activation=None,
                   source="KernelBench L1 #84 conv_depthwise_2D_asymmetric_input_square_kernel, "
                   "as our block with an identity pointwise"),
    ),
)  # fmt: skip
KERNELBENCH_NOT_APPLICABLE = {
    83: "depthwise 3x1 kernel (N64 C8 512x512): the block's depthwise kernels are square",
    85: "depthwise 3x7 kernel (N32 C128 128x256): the block's depthwise kernels are square",
    87: "pointwise 1x1 only (N16 64->128 1024x1024): the block has no 1x1 depthwise stage",
}


def _kernelbench(size: str, device: str) -> list[Workload]:
    if size == "smoke":
        s = DwsepShape(8, 16, 3, 1, 12, 12, padding=1, activation=None, pw_activation=None)
        return [Workload("kernelbench", s, 1, tags=("kernelbench:86",))]
    # The problems' own batches on a GPU; on a CPU batch 1 (16 x 64 x 512 x 512 float32 is 1 GB).
    return [
        Workload("kernelbench", s, 1 if device == "cpu" else batch, tags=(f"kernelbench:{n}",))
        for n, batch, s in KERNELBENCH
    ]


def _batches(device: str, cpu: tuple[int, ...], gpu: tuple[int, ...]) -> tuple[int, ...]:
    return cpu if device == "cpu" else gpu


def _documents(size: str, device: str) -> list[Workload]:
    if size == "smoke":
        return [Workload("documents", DwsepShape(4, 8, 3, 1, 8, 8), 1, naive_timer=True)]
    # Batch 1 is document 001's timing input; the GPU adds a batch that fills the device.
    batches = _batches(device, (1,) if size == "quick" else (1, 8), (1, 64))
    return [
        Workload("documents", s, b, compile_on_cpu=s.id == HEADLINE_ID and b == 1, naive_timer=True)
        for s in DOCUMENT_SHAPES
        for b in batches
    ]


def _mobilenet(size: str, device: str) -> list[Workload]:
    if size == "smoke":
        return [Workload("mobilenet", DwsepShape(8, 4, 3, 2, 9, 9, pw_activation=None), 1)]
    shapes = MOBILENET_V1 + MOBILENET_V2
    if size == "quick" and device == "cpu":
        shapes = MOBILENET_V1[::3] + MOBILENET_V2[::4]  # 3 + 3 shapes spread over the network
    batches = _batches(device, (1,), (32,) if size == "quick" else (1, 32, 128))
    return [Workload("mobilenet", s, b) for s in shapes for b in batches]


def _lenet(size: str, device: str) -> list[Workload]:
    if size == "smoke":
        return [Workload("lenet", RbfShape(8, 84, 10), 8)]
    batches = _batches(device, (1,) if size == "quick" else (1, 64), (1, 256))
    out = [Workload("lenet", s, b) for s in LENET_SHAPES for b in batches]
    for b in batches:
        out.append(Workload("lenet", RbfShape(b, 84, 10), b))
        out.append(Workload("lenet", RbfShape(b, 84, 10, loss=True), b))
    return out


def _rbf(size: str, device: str) -> list[Workload]:
    if size == "smoke":
        return [
            Workload("rbf", RbfShape(16, 12, 10), 16),
            Workload("rbf", RbfShape(16, 12, 10, loss=True), 16),
        ]
    if device == "cpu":
        sizes = (
            # the broadcast providers materialise (B, K, D): at most 1 GB here
            [(256, 84, 10), (512, 128, 100), (1024, 84, 1000)]
            if size == "quick"
            else [(b, d, k) for b in (256, 1024) for d in (84, 256) for k in (10, 1000)]
        )
    else:
        sizes = (
            [(4096, 84, 10), (16384, 256, 1000), (65536, 256, 1000)]
            if size == "quick"
            else [(b, d, k) for b in (4096, 65536) for d in (84, 256, 1024) for k in (10, 1000)]
        )
    out = []
    for i, (b, d, k) in enumerate(sizes):
        first = i == 0
        out.append(Workload("rbf", RbfShape(b, d, k), b, compile_on_cpu=first))
        out.append(Workload("rbf", RbfShape(b, d, k, loss=True), b, compile_on_cpu=first))
    # the first size again with the data far from the origin: rbf_accuracy.png's error curves
    b, d, k = sizes[0]
    out += [Workload("rbf", RbfShape(b, d, k, offset=o), b) for o in ACCURACY_OFFSETS]
    return out


# How far from the origin the accuracy workloads put x and the centers (float32 spacing there:
# 7.6e-6, 6.1e-5, 9.8e-4; the distances themselves stay ~2D).
ACCURACY_OFFSETS = (1e2, 1e3, 1e4)


def _models(size: str, device: str) -> list[Workload]:
    if size == "smoke":
        return [Workload("models", ModelShape("lenet5"), 1)]
    batches = _batches(device, (1,), (1, 64) if size == "quick" else (1, 64, 256))
    return [
        Workload(
            "models",
            ModelShape(name),
            b,
            compile_on_cpu=name == "lenet5_dw",
            naive_timer=name.startswith("cifar_cnn") and b == 1,  # document 001's own setting
        )
        for name in MODEL_NAMES
        for b in batches
    ]


_BUILDERS = {
    "documents": _documents,
    "mobilenet": _mobilenet,
    "lenet": _lenet,
    "rbf": _rbf,
    "models": _models,
    "kernelbench": _kernelbench,
}


def build_suite(name: str, size: str = "quick", device: str = "cpu") -> list[Workload]:
    """The workloads of one suite at ``size`` ("quick", "full" or "smoke") for ``device``."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown suite {name!r}; suites are {', '.join(ALL_SUITES)}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; sizes are {', '.join(SIZES)}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES} (resolved), got {device!r}")
    return _BUILDERS[name](size, device)


def build_suites(
    names: list[str] | None = None, size: str = "quick", device: str = "cpu"
) -> list[Workload]:
    """Several suites in order (default: all), as one list."""
    return [w for name in (names or SUITES) for w in build_suite(name, size, device)]
