"""The documents' training experiments: `sepbench train` and `sepbench compare-training`.

One loop serves every model: the recipe (optimizer, learning rate, batch, epochs, loss) comes from
the document that trains it, any flag overrides it. Each epoch writes DIR/metrics.csv and a
checkpoint holding model, optimizer, RNG state and the metrics so far; ``--resume`` restores all of
it, and because the shuffle of epoch e depends only on (seed, e) (DistributedSampler's rule) the
resumed run is bit-for-bit the uninterrupted one on the same device. Under torchrun (WORLD_SIZE > 1)
the model is wrapped in DistributedDataParallel, every rank trains on its DistributedSampler shard
and only rank 0 prints and writes files.

``--backend triton`` trains with the PyTorch layers (the fused kernels are inference kernels) and
evaluates, and times inference, with a copy of the model built on the Triton backend.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DistributedSampler

from bench.counting.counters import fvcore_macs
from bench.errors import UserError
from bench.experiments import datasets
from bench.measuring import timing
from bench.measuring.provenance import device_name, resolve_device
from bench.progress import progress as progress_bar
from models import registry


@dataclass(frozen=True)
class Recipe:
    """How a document trains its model."""

    document: str
    dataset: str
    optimizer: str  # "sgd" | "adam"
    lr: float
    batch_size: int
    epochs: int
    momentum: float = 0.0
    weight_decay: float = 0.0
    loss: str = "cross_entropy"  # or "rbf": the 1998 paper's loss on squared distances


# Document 001: SGD, lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, 10 epochs, CIFAR-10.
DOC001_SGD = Recipe("001", "cifar10", "sgd", 0.1, 128, 10, momentum=0.9, weight_decay=1e-4)
# Document 003: Adam, lr 1e-3, batch 100, 10 epochs, MNIST padded to 32x32.
DOC003_ADAM = Recipe("003", "mnist", "adam", 1e-3, 100, 10)
# The paper-faithful LeNet-5 takes document 002's (the 1998 paper's) RBF loss. The paper's
# optimizer, stochastic diagonal Levenberg-Marquardt with a step falling from 5e-4 to 1e-5 over
# 20 passes, is not in torch, and document 002 does not name its own; document 003's Adam setup
# (same data pipeline, same network size) is the stand-in: a per-parameter adaptive step is the
# closest stock relative of a diagonal second-order method.
PAPER_RBF = replace(DOC003_ADAM, document="002 loss, 003 optimizer", loss="rbf")
RECIPES: dict[str, Recipe] = {
    "lenet5": DOC003_ADAM,
    "lenet5_dw": DOC003_ADAM,
    "lenet5_paper": PAPER_RBF,
    "lenet5_paper_dw": PAPER_RBF,
    "cifar_cnn": DOC001_SGD,
    "cifar_cnn_dw": DOC001_SGD,
}
# Used only when --optimizer names another optimizer than the recipe's and --lr is not given.
DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3}
# Settings that change the trained weights: a checkpoint resumes only when all of them match.
RESULT_FIELDS = (
    "model",
    "dataset",
    "batch_size",
    "lr",
    "optimizer",
    "momentum",
    "weight_decay",
    "loss",
    "seed",
    "limit_train",
)
METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "epoch_time_s",
    "images_per_s",
    "peak_memory_mb",
)
# What peak_memory_mb measures on each device kind (see _peak_memory_mb).
MEMORY_MEASURES = {
    "cuda": "torch.cuda.max_memory_allocated since the run started (tensors only)",
    "cpu": "peak RSS of the training process (getrusage ru_maxrss): interpreter, torch, the "
    "dataset in memory and the run itself",
}
# The claims module reads these names.
COMPARISON_COLUMNS = (
    "model",
    "dataset",
    "epochs",
    "params",
    "macs",
    "test_accuracy",
    "time_per_epoch_s",
    "images_per_s",
    "inference_latency_ms",
    "device",
)
CHECKPOINT = "checkpoint.pt"
EVAL_BATCH = 1000


@dataclass(frozen=True)
class TrainConfig:
    model: str
    dataset: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    momentum: float = 0.0
    weight_decay: float = 0.0
    loss: str = "cross_entropy"
    seed: int = 0
    device: str = "auto"
    backend: str = "torch"  # the backend evaluated and timed; training always uses "torch"
    data_dir: str = "data"
    out: str = "runs/run"
    resume: bool = False
    limit_train: int | None = None
    limit_test: int | None = None  # evaluate on the first N test images only (timing runs)
    download: bool = True
    note: str | None = None  # why the dataset differs from the model's document, if it does

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        if self.optimizer not in DEFAULT_LR:
            raise UserError(f"--optimizer must be one of {', '.join(DEFAULT_LR)}")
        if self.loss not in ("cross_entropy", "rbf"):
            raise UserError(f"loss must be 'cross_entropy' or 'rbf', got {self.loss!r}")
        if self.dataset not in datasets.DATASETS:
            raise UserError(f"--dataset must be one of {', '.join(datasets.DATASETS)}")


@dataclass
class TrainResult:
    model: nn.Module  # trained, unwrapped, in eval mode, on ``device``
    metrics: pd.DataFrame
    test_accuracy: float
    out: Path
    device: torch.device
    input_shape: tuple[int, int, int]


def recipe_for(model: str) -> Recipe:
    registry.get(model)  # unknown names get the registry's message
    if model not in RECIPES:
        raise UserError(f"{model!r} has no training recipe; trainable models: {', '.join(RECIPES)}")
    return RECIPES[model]


def make_config(args: argparse.Namespace, model: str, out: str | Path | None = None) -> TrainConfig:
    """Resolve the CLI flags against the model's document recipe."""
    recipe = recipe_for(model)
    note = None
    dataset = args.dataset
    if dataset is None:
        dataset = recipe.dataset
        note = datasets.default_dataset_note(dataset, args.data_dir)
        if note is not None:
            dataset = "digits"
    optimizer = args.optimizer or recipe.optimizer
    same_optimizer = optimizer == recipe.optimizer
    lr = (
        args.lr if args.lr is not None else (recipe.lr if same_optimizer else DEFAULT_LR[optimizer])
    )
    if same_optimizer:
        momentum, weight_decay = recipe.momentum, recipe.weight_decay
    else:
        momentum, weight_decay = (0.9 if optimizer == "sgd" else 0.0), 0.0
    return TrainConfig(
        model=model,
        dataset=dataset,
        epochs=args.epochs if args.epochs is not None else recipe.epochs,
        batch_size=args.batch_size if args.batch_size is not None else recipe.batch_size,
        lr=lr,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
        loss=recipe.loss,
        seed=args.seed,
        device=args.device,
        backend=args.backend,
        data_dir=args.data_dir,
        out=str(out if out is not None else (args.out or Path("runs") / f"{model}-{dataset}")),
        resume=args.resume,
        limit_train=args.limit_train,
        download=getattr(args, "download", True),
        note=note,
    )


# ------------------------------------------------------------------------------- distribution


@dataclass(frozen=True)
class _Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_from_env() -> _Dist:
    """torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; a plain process has none of them."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(world, int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")))


def _init_process_group(ctx: _Dist, device: torch.device) -> None:
    # NCCL moves CUDA tensors only; a CPU run (also on a GPU machine) needs gloo.
    if ctx.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _resolve_device(requested: str, ctx: _Dist) -> torch.device:
    """The training device; under torchrun each rank takes its LOCAL_RANK's GPU."""
    if resolve_device(requested) == "cpu":
        return torch.device("cpu")
    if ctx.world > 1:
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return torch.device("cuda")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    """The run's peak memory so far, in MiB (MEMORY_MEASURES says what each device counts). On CPU
    this is the whole process's peak RSS: a per-run figure when each run has its own process, as
    `sepbench experiments` arranges."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB else


# ------------------------------------------------------------------------------------ training


def _load_data(cfg: TrainConfig, ctx: _Dist, channels: int) -> datasets.ImageData:
    # Rank 0 loads first so that a download happens once; the others wait, then read the files.
    if ctx.world > 1 and not ctx.main:
        dist.barrier()
    data = datasets.load(cfg.dataset, cfg.data_dir, download=cfg.download, channels=channels)
    if ctx.world > 1 and ctx.main:
        dist.barrier()
    return data.limit_train(cfg.limit_train).limit_test(cfg.limit_test)


def _backend_kwargs(spec: registry.ModelSpec, backend: str) -> dict[str, str]:
    """Constructor arguments that put ``spec``'s model on ``backend`` (none: it has no choice)."""
    if backend == "torch":
        return {}
    module, func = spec.target.split(":")
    params = inspect.signature(getattr(importlib.import_module(module), func)).parameters
    return {name: backend for name in ("backend", "conv_backend") if name in params}


def _loss_and_predict(loss: str) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable]:
    if loss == "rbf":
        from models.lenet5 import rbf_loss  # the paper's loss on the (B, 10) squared distances

        return rbf_loss, lambda out: out.argmin(dim=1)  # nearest prototype wins
    return nn.functional.cross_entropy, lambda out: out.argmax(dim=1)


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: datasets.ImageData,
    channels: int,
    loss: str = "cross_entropy",
) -> tuple[float, float]:
    """(mean loss, accuracy as a fraction) on the test split, in eval mode."""
    loss_fn, predict = _loss_and_predict(loss)
    model.eval()
    total_loss, correct = 0.0, 0
    n = len(data.test_labels)
    for start in range(0, n, EVAL_BATCH):
        x = data.model_input(data.test_images[start : start + EVAL_BATCH], channels)
        y = data.test_labels[start : start + EVAL_BATCH]
        out = model(x)
        total_loss += float(loss_fn(out, y)) * len(y)
        correct += int((predict(out) == y).sum())
    return total_loss / n, correct / n


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: an interruption while saving leaves the previous checkpoint


def _load_checkpoint(path: Path, cfg: TrainConfig) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(
            f"cannot read checkpoint {path} ({type(err).__name__}: {err}); delete "
            f"it or drop --resume to start over"
        ) from None
    wanted = {k: getattr(cfg, k) for k in RESULT_FIELDS}
    differ = {
        k: (state["config"].get(k), v) for k, v in wanted.items() if state["config"].get(k) != v
    }
    if differ:
        text = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in differ.items())
        raise UserError(
            f"{path} was written by a different run ({text}); resume with the same "
            f"settings, or choose another --out"
        )
    return state


def _train_epoch(
    train_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    data: datasets.ImageData,
    channels: int,
    bar: Any,
    epoch: int,
    checkpoint: Path,
    on_batch: Callable[[int, int], None] | None,
) -> Tensor:
    """One pass over this rank's batches; returns (loss x n, correct, n) summed on the device."""
    loss_fn, predict = _loss_and_predict(cfg.loss)
    device = data.train_labels.device
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    n_batches = len(bar)
    for index, batch in enumerate(bar):
        if on_batch is not None:
            on_batch(epoch, index)
        idx = torch.as_tensor(batch, device=device)
        x = data.model_input(data.train_images[idx], channels)
        y = data.train_labels[idx]
        outputs = train_model(x)
        loss = loss_fn(outputs, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        detached = loss.detach()
        sums += torch.stack(
            [
                detached.double() * len(y),
                (predict(outputs.detach()) == y).sum().double(),
                torch.tensor(len(y), device=device).double(),
            ]
        )
        # Reading the loss on the host waits for the GPU: once per 20 steps, not every step.
        if index % 20 == 0 or index == n_batches - 1:
            value = float(detached)
            if not math.isfinite(value):
                raise UserError(
                    f"training diverged: the loss is {value} at epoch {epoch}, batch "
                    f"{index + 1}; try a lower --lr than {cfg.lr:g} (the last good "
                    f"checkpoint is {checkpoint})"
                )
            bar.set_postfix(loss=f"{value:.4f}")
    return sums


@dataclass
class _Run:
    """Everything one training run holds between epochs."""

    cfg: TrainConfig
    spec: registry.ModelSpec
    ctx: _Dist
    device: torch.device
    data: datasets.ImageData
    model: nn.Module  # the trained weights
    train_model: nn.Module  # the model, DDP-wrapped under torchrun
    eval_model: nn.Module  # the model on the evaluated backend (shares its weights by copy)
    optimizer: torch.optim.Optimizer
    sampler: DistributedSampler
    history: list[dict]
    out: Path
    say: Callable[..., None]

    @property
    def checkpoint(self) -> Path:
        return self.out / CHECKPOINT

    @property
    def channels(self) -> int:
        return self.spec.input_shape[0]


def _start(cfg: TrainConfig, spec: registry.ModelSpec) -> _Run:
    """Device, data, model, optimizer; the checkpoint's state when resuming."""
    ctx = _dist_from_env()
    device = _resolve_device(cfg.device, ctx)
    _init_process_group(ctx, device)
    data = _load_data(cfg, ctx, spec.input_shape[0])
    if data.image_shape[1:] != spec.input_shape[1:]:
        raise UserError(
            f"{spec.name} takes {spec.input_shape[1]}x{spec.input_shape[2]} inputs, "
            f"{cfg.dataset} gives {data.image_shape[1]}x{data.image_shape[2]}"
        )
    say = print if ctx.main else (lambda *a, **k: None)
    recipe = f"document {RECIPES[spec.name].document} recipe" if spec.name in RECIPES else "custom"
    if cfg.note:
        say(f"note: {cfg.note}")
    say(
        f"{spec.name} on {data.source}; {cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}, "
        f"{cfg.epochs} epochs, {cfg.loss} loss ({recipe}), seed {cfg.seed}, device {device}"
        + (f" x {ctx.world} processes" if ctx.world > 1 else "")
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(cfg.seed)
    model = spec.build().to(device)
    optimizer = _make_optimizer(cfg, model)
    out = Path(cfg.out)
    history = _resume(cfg, model, optimizer, device, out / CHECKPOINT, say)
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
    eval_model = model
    backend_kwargs = _backend_kwargs(spec, cfg.backend)
    if backend_kwargs:
        eval_model = spec.build(**backend_kwargs).to(device)
    elif cfg.backend != "torch":
        say(f"note: {spec.name} has no {cfg.backend} layers; it runs on PyTorch throughout")
    train_model: nn.Module = model
    if ctx.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    data = data.to(device)
    sampler = DistributedSampler(
        range(len(data.train_labels)),
        num_replicas=ctx.world,
        rank=ctx.rank,
        shuffle=True,
        seed=cfg.seed,
    )
    return _Run(
        cfg,
        spec,
        ctx,
        device,
        data,
        model,
        train_model,
        eval_model,
        optimizer,
        sampler,
        history,
        out,
        say,
    )


def _resume(
    cfg: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    checkpoint: Path,
    say: Callable[..., None],
) -> list[dict]:
    """Restore model, optimizer and RNG from ``checkpoint`` under --resume; the metrics so far."""
    if cfg.resume and checkpoint.is_file():
        state = _load_checkpoint(checkpoint, cfg)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state["rng_cuda"]:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
        say(f"resuming from {checkpoint} after epoch {state['epoch']}")
        return list(state["metrics"])
    if cfg.resume:
        say(f"no checkpoint in {checkpoint.parent}/; starting from epoch 1")
    elif checkpoint.is_file():
        say(f"note: {checkpoint} will be overwritten (pass --resume to continue it instead)")
    return []


def _epoch(run: _Run, epoch: int, progress: bool, on_batch: Callable | None) -> dict:
    """One epoch: train, evaluate, and the metrics row."""
    cfg = run.cfg
    run.sampler.set_epoch(epoch)  # shuffle order = f(seed, epoch): what makes resume exact
    batches = list(BatchSampler(run.sampler, cfg.batch_size, drop_last=False))
    run.train_model.train()
    _sync(run.device)
    start = time.perf_counter()
    bar = progress_bar(  # a bar on a terminal, a line a minute in a log
        batches,
        desc=f"{run.spec.name} epoch {epoch}/{cfg.epochs}",
        unit="batch",
        disable=True if not (progress and run.ctx.main) else None,
        leave=False,
    )
    sums = _train_epoch(
        run.train_model,
        run.optimizer,
        cfg,
        run.data,
        run.channels,
        bar,
        epoch,
        run.checkpoint,
        on_batch,
    )
    _sync(run.device)
    epoch_time = time.perf_counter() - start
    bar.close()
    if run.ctx.world > 1:
        dist.all_reduce(sums)
    if run.eval_model is not run.model:
        run.eval_model.load_state_dict(run.model.state_dict())
    test_loss, test_acc = evaluate(run.eval_model, run.data, run.channels, cfg.loss)
    loss_sum, correct, seen = sums.tolist()
    return {
        "epoch": epoch,
        "train_loss": loss_sum / seen,
        "train_acc": correct / seen,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "epoch_time_s": epoch_time,
        "images_per_s": seen / epoch_time,
        "peak_memory_mb": _peak_memory_mb(run.device),
    }


def _save_epoch(run: _Run, epoch: int) -> None:
    """metrics.csv and the checkpoint after ``epoch`` (rank 0 only)."""
    if not run.ctx.main:
        return
    pd.DataFrame(run.history, columns=METRIC_COLUMNS).to_csv(run.out / "metrics.csv", index=False)
    cuda = run.device.type == "cuda"
    _save_checkpoint(
        run.checkpoint,
        {
            "epoch": epoch,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(run.device) if cuda else None,
            "config": {k: getattr(run.cfg, k) for k in RESULT_FIELDS},
            "metrics": run.history,
        },
    )


def train(
    cfg: TrainConfig,
    *,
    spec: registry.ModelSpec | None = None,
    progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train ``cfg.model`` (or ``spec``) as configured; see the module docstring.

    ``on_batch(epoch, batch_index)`` is called before each training step (tests use it to
    interrupt a run part-way).
    """
    spec = spec or registry.get(cfg.model)
    run = _start(cfg, spec)
    for epoch in range(len(run.history) + 1, cfg.epochs + 1):
        row = _epoch(run, epoch, progress, on_batch)
        run.history.append(row)
        run.say(
            f"epoch {epoch}/{cfg.epochs}: train loss {row['train_loss']:.4f}, train acc "
            f"{row['train_acc']:.4f}, test acc {row['test_acc']:.4f}, "
            f"{row['epoch_time_s']:.2f} s ({row['images_per_s']:.0f} images/s)"
        )
        _save_epoch(run, epoch)
    if run.eval_model is not run.model:  # also when --resume found the run already complete
        run.eval_model.load_state_dict(run.model.state_dict())
    metrics = pd.DataFrame(run.history, columns=METRIC_COLUMNS)
    if run.ctx.main:
        metrics.to_csv(run.out / "metrics.csv", index=False)
        plot_training_curves(
            {spec.name: run.out / "metrics.csv"},
            run.out / "curves.png",
            title=f"{spec.name} on {cfg.dataset}",
        )
    run.eval_model.eval()
    return TrainResult(
        run.eval_model,
        metrics,
        float(metrics["test_acc"].iloc[-1]),
        run.out,
        run.device,
        spec.input_shape,
    )


# ------------------------------------------------------------------------------ plots, tables


def plot_training_curves(runs: dict[str, str | Path], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch for each run's metrics.csv, on one figure (two panels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, csv) in enumerate(runs.items()):
        color = f"C{i}"  # one colour per model, shared by its loss and accuracy curves
        m = pd.read_csv(csv)
        ax_loss.plot(m["epoch"], m["train_loss"], "-o", color=color, label=f"{label} train")
        ax_loss.plot(m["epoch"], m["test_loss"], "--s", color=color, label=f"{label} test")
        ax_acc.plot(m["epoch"], m["train_acc"], "-o", color=color, label=f"{label} train")
        ax_acc.plot(m["epoch"], m["test_acc"], "--s", color=color, label=f"{label} test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (fraction)", title="accuracy per epoch")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def count_cost(model: nn.Module, input_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(parameters, MACs per sample): fvcore's total on a batch-1 input, whose unit is one
    multiply-add. Counted on CPU in eval mode."""
    params = sum(p.numel() for p in model.parameters())
    probe = copy.deepcopy(model).to("cpu").eval()
    return params, fvcore_macs(probe, torch.zeros(1, *input_shape))


def inference_latency_ms(
    model: nn.Module, input_shape: tuple[int, int, int], device: torch.device
) -> float:
    """Median batch-1 eval latency via bench.measuring.timing (CUDA: do_bench with events and
    L2 flush; CPU: torch.utils.benchmark blocked_autorange); warm-up calls are discarded."""
    model = model.to(device).eval()
    x = torch.randn(1, *input_shape, device=device)

    def forward() -> Tensor:
        with torch.inference_mode():
            return model(x)

    return timing.time_callable(forward, device, warmup_calls=3).p50_ms


def steady_epochs(metrics: pd.DataFrame) -> pd.DataFrame:
    """The epochs after the first. Epoch 1 carries one-off costs (lazy init, allocator growth,
    cuDNN algorithm search: 2.1 s vs 0.38 s for the next epoch of lenet5_paper on CPU), so rates
    are those of the later epochs; a one-epoch run has only its first."""
    return metrics.iloc[1:] if len(metrics) > 1 else metrics


def steady_rates(metrics: pd.DataFrame) -> tuple[float, float]:
    """(mean seconds per epoch, mean training images/s) over ``steady_epochs``."""
    steady = steady_epochs(metrics)
    return float(steady["epoch_time_s"].mean()), float(steady["images_per_s"].mean())


def comparison_row(result: TrainResult, spec: registry.ModelSpec, dataset: str) -> dict:
    torch_model = spec.build()
    torch_model.load_state_dict(result.model.state_dict())
    params, macs = count_cost(torch_model, result.input_shape)
    m = result.metrics
    time_per_epoch, images_per_s = steady_rates(m)
    return {
        "model": spec.name,
        "dataset": dataset,
        "epochs": int(m["epoch"].iloc[-1]),
        "params": params,
        "macs": macs,
        "test_accuracy": result.test_accuracy,
        "time_per_epoch_s": time_per_epoch,
        "images_per_s": images_per_s,
        "inference_latency_ms": inference_latency_ms(
            result.model, result.input_shape, result.device
        ),
        "device": device_name(result.device),
    }


# ------------------------------------------------------------------------------ entry points


def finish_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def compare_pair(args: argparse.Namespace) -> tuple[pd.DataFrame, Path] | None:
    """Train the standard/depthwise pair ``args.pair`` on one dataset; write comparison.csv,
    comparison.md and comparison.png into the output folder and return (table, folder). Under
    torchrun, ranks other than 0 train and return None."""
    names = [args.pair, f"{args.pair}_dw"]
    first = make_config(args, names[0], out=".")
    out = Path(args.out or Path("runs") / f"compare-{args.pair}-{first.dataset}")
    rows, curves = [], {}
    try:
        for name in names:
            cfg = replace(
                make_config(args, name, out=out / name), dataset=first.dataset, note=first.note
            )
            result = train(cfg)
            curves[name] = result.out / "metrics.csv"
            if is_main_process():
                rows.append(comparison_row(result, registry.get(name), cfg.dataset))
    finally:
        finish_distributed()
    if not rows:
        return None
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    table.to_csv(out / "comparison.csv", index=False)
    notes = (
        f"\n{first.epochs} epochs of {first.optimizer} (lr {first.lr:g}, batch {first.batch_size}) "
        f"on {first.dataset}, seed {first.seed}. test_accuracy is a fraction of the test split; "
        "macs are multiply-adds per image (fvcore, batch 1); time_per_epoch_s and images_per_s "
        "are training means over the epochs after the first (epoch 1 pays one-off warm-up); "
        f"inference_latency_ms is the median batch-1 eval forward on the {args.backend} backend "
        "(bench.measuring.timing: CUDA events, or torch.utils.benchmark on CPU; warm-up "
        "discarded).\n"
    )
    (out / "comparison.md").write_text(table.to_markdown(index=False, floatfmt="g") + "\n" + notes)
    plot_training_curves(
        curves, out / "comparison.png", title=f"{names[0]} vs {names[1]} on {first.dataset}"
    )
    return table, out
