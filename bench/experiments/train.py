"""The training loop behind `sepbench train`: one loop for every model and recipe.

Each epoch writes DIR/metrics.csv and a checkpoint (bench.experiments.checkpoint); ``--resume``
restores it, and because the shuffle of epoch e depends only on (seed, e) (DistributedSampler's
rule) the resumed run is bit-for-bit the uninterrupted one on the same device. Under torchrun
(WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel, every rank trains on its
DistributedSampler shard and only rank 0 prints and writes files (bench.experiments.distributed).

``--backend triton`` trains with the PyTorch layers (the fused kernels are inference kernels) and
evaluates with a copy of the model built on the Triton backend.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DistributedSampler

from bench.errors import UserError
from bench.experiments import datasets
from bench.experiments.checkpoint import load_checkpoint, save_checkpoint
from bench.experiments.distributed import Dist, dist_from_env, init_process_group, training_device
from bench.experiments.recipes import CHECKPOINT, RECIPES, RESULT_FIELDS, TrainConfig
from bench.progress import progress as progress_bar
from models import registry

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
EVAL_BATCH = 1000
# Under the Triton interpreter lenet5_dw took 2.8 s per test image (2-core CPU machine, load ~3):
# small batches keep the progress bar moving.
EVAL_BATCH_SLOW = 20
# A run whose test set would take longer than this per epoch under the interpreter is refused
# up front, saying how many images fit (the report refuses such models the same way).
INTERPRETER_EVAL_LIMIT_S = 300.0


@dataclass
class TrainResult:
    model: nn.Module  # trained, unwrapped, in eval mode, on ``device``
    metrics: pd.DataFrame
    test_accuracy: float
    out: Path
    device: torch.device
    input_shape: tuple[int, int, int]


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


def _load_data(cfg: TrainConfig, ctx: Dist, channels: int) -> datasets.ImageData:
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
    *,
    slow: str = "",
) -> tuple[float, float]:
    """(mean loss, accuracy as a fraction) on the test split, in eval mode.

    ``slow`` names why this evaluation is slow (the Triton interpreter: lenet5_dw took 2.8 s per
    test image on the 2-core CPU machine, and a run sat silent): then a progress bar runs, in
    batches of EVAL_BATCH_SLOW."""
    loss_fn, predict = _loss_and_predict(loss)
    model.eval()
    total_loss, correct = 0.0, 0
    n = len(data.test_labels)
    step = EVAL_BATCH_SLOW if slow else EVAL_BATCH
    bar = progress_bar(total=n, desc="test set", unit="image", disable=not slow, leave=False)
    for start in range(0, n, step):
        x = data.model_input(data.test_images[start : start + step], channels)
        y = data.test_labels[start : start + step]
        out = model(x)
        total_loss += float(loss_fn(out, y)) * len(y)
        correct += int((predict(out) == y).sum())
        bar.update(len(y))
    bar.close()
    return total_loss / n, correct / n


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
    ctx: Dist
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
    ctx = dist_from_env()
    device = training_device(cfg.device, ctx)
    init_process_group(ctx, device)
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
        state = load_checkpoint(checkpoint, cfg)
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
    test_loss, test_acc = evaluate(
        run.eval_model,
        run.data,
        run.channels,
        cfg.loss,
        slow=_interpreted(run) if progress and run.ctx.main else "",
    )
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


def _interpreted(run: _Run) -> str:
    """Why evaluating ``run`` is slow, or "": its Triton layers under the interpreter (CPU)."""
    from kernels import _runtime

    if run.eval_model is run.model or run.device.type != "cpu" or not _runtime.INTERPRET:
        return ""
    return f"{run.spec.name}'s {run.cfg.backend} layers run under the Triton interpreter on CPU"


def check_interpreter_eval(run: _Run) -> None:
    """Under the Triton interpreter, time one test image and say what the test set will cost
    each epoch; a UserError (before any training) when that passes INTERPRETER_EVAL_LIMIT_S."""
    why = _interpreted(run)
    if not why:
        return
    n = len(run.data.test_labels)
    x = run.data.model_input(run.data.test_images[:1], run.channels)
    run.eval_model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        run.eval_model(x)
    per_image = time.perf_counter() - start
    estimate = per_image * n
    if estimate > INTERPRETER_EVAL_LIMIT_S:
        fits = max(1, int(INTERPRETER_EVAL_LIMIT_S / per_image))
        raise UserError(
            f"{why}: one test image took {per_image:.1f} s, so the {n:,} test images would take "
            f"about {estimate / 60:.0f} min every epoch (more than "
            f"{INTERPRETER_EVAL_LIMIT_S:.0f} s); pass --limit-test {fits} or fewer, train with "
            "--backend torch, or run on a GPU"
        )
    run.say(
        f"note: {why}: evaluating the {n:,} test images takes about {estimate:.0f} s every "
        f"epoch (one image took {per_image:.1f} s)"
    )


def _save_epoch(run: _Run, epoch: int) -> None:
    """metrics.csv and the checkpoint after ``epoch`` (rank 0 only)."""
    if not run.ctx.main:
        return
    pd.DataFrame(run.history, columns=METRIC_COLUMNS).to_csv(run.out / "metrics.csv", index=False)
    cuda = run.device.type == "cuda"
    save_checkpoint(
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
    if len(run.history) < cfg.epochs:
        check_interpreter_eval(run)
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
