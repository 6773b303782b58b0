"""`sepbench experiments` (`make experiments`): the documents' training runs over seeds, each run in
its own process, resumable; one comparison.csv row per model and seed.

Groups (each a standard model and its depthwise-separable twin, trained with the document's recipe
from bench.experiments.recipes.RECIPES):
- lenet: lenet5 vs lenet5_dw on MNIST (documents 003 and 000);
- lenet_paper: lenet5_paper vs lenet5_paper_dw on MNIST (document 002's model and RBF loss);
- cifar_steps: cifar_cnn vs cifar_cnn_dw on CIFAR-shaped synthetic batches (document 001's recipe):
  a few short epochs that time the training step and measure peak memory, the claims of document
  001 that do not depend on pixel values. Labels are random, so accuracy here is chance;
- cifar10 (not run by default): the same pair on the real CIFAR-10, for its accuracy claims.

Each run is a child process (``python -m bench.experiments.seeded_runs CONFIG``), so that its peak
memory is its own (bench.experiments.train.MEMORY_MEASURES says what is counted) and its thread
count is fixed. It checkpoints every epoch into OUT/work/RUN/ and continues from there after a
kill. A finished run's per-epoch rows go to OUT/runs/RUN.csv, and a run whose CSV is there is not
redone. A run that fails becomes a row with its error; the others go on.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from bench import provenance
from bench.errors import UserError
from bench.experiments import data, pairs, recipes, train
from bench.files import write_csv_atomic
from models import registry


@dataclass(frozen=True)
class Group:
    name: str
    models: tuple[str, str]  # (standard, depthwise-separable)
    dataset: str
    documents: str


GROUPS = {
    g.name: g
    for g in (
        Group("lenet", ("lenet5", "lenet5_dw"), "mnist", "003, 000"),
        Group("lenet_paper", ("lenet5_paper", "lenet5_paper_dw"), "mnist", "002"),
        Group("cifar_steps", ("cifar_cnn", "cifar_cnn_dw"), "synthetic", "001 (speed, memory)"),
        Group("cifar10", ("cifar_cnn", "cifar_cnn_dw"), "cifar10", "001 (accuracy)"),
    )
}
DEFAULT_GROUPS = ("lenet", "lenet_paper", "cifar_steps")
DEFAULT_SEEDS = (0, 1, 2)
# cifar_steps, (epochs, steps per epoch); the first epoch is the warm-up that the rates leave out.
# One cifar_cnn training step at batch 128 takes ~8 s on one core of the 2-core EPYC reference
# machine (a few hundred steps would take an hour per model there), ~10 ms on a GPU.
CIFAR_STEPS = {"cpu": (3, 4), "cuda": (4, 75)}
RUNS_FOLDER, WORK_FOLDER, COMPARISON = "runs", "work", "comparison.csv"
# Columns of OUT/runs/RUN.csv besides bench.experiments.train.METRIC_COLUMNS.
RUN_COLUMNS = (
    "group",
    "model",
    "dataset",
    "seed",
    "batch_size",
    "device",
    "memory_measure",
    "threads",
    "concurrent_runs",
    "load_avg_start",
    "load_avg_end",
    "started",
    "wall_s",
    "torch_version",
    "git_sha",
)
COLUMNS = (
    "group",
    "model",
    "dataset",
    "seed",
    "status",
    "epochs",
    "params",
    "macs",
    "test_accuracy",
    "test_error",
    "train_loss",
    "test_loss",
    "time_per_epoch_s",
    "time_per_step_s",
    "steps_per_epoch",
    "images_per_s",
    "train_time_s",
    "peak_memory_mb",
    "memory_measure",
    "device",
    "threads",
    "concurrent_runs",
    "load_avg",
    "started",
    "wall_s",
    "error",
)


@dataclass(frozen=True)
class Run:
    group: str
    model: str
    seed: int
    dataset: str
    epochs: int
    limit_train: int | None = None
    limit_test: int | None = None

    @property
    def name(self) -> str:
        return f"{self.model}-{self.dataset}-seed{self.seed}"


@dataclass(frozen=True)
class Options:
    out: Path
    data_dir: Path = Path("data")
    groups: tuple[str, ...] = DEFAULT_GROUPS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    device: str = "auto"
    mnist_dataset: str = "mnist"  # "digits" trains the LeNet groups offline (tests, quick checks)
    epochs: int | None = None  # override the recipes' epochs (quick checks)
    limit_train: int | None = None  # first N training images (quick checks)
    cifar_epochs: int | None = None  # default CIFAR_STEPS[device]
    cifar_steps: int | None = None
    jobs: int | None = None  # runs at a time; default: one per core on CPU, one on a GPU
    threads: int | None = None  # per run; default provenance.default_threads (1 on CPU)
    fresh: bool = False

    def __post_init__(self) -> None:
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown or not self.groups:
            raise UserError(f"unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
        for flag, value in (
            ("--epochs", self.epochs),
            ("--limit-train", self.limit_train),
            ("--cifar-epochs", self.cifar_epochs),
            ("--cifar-steps", self.cifar_steps),
            ("--jobs", self.jobs),
            ("--threads", self.threads),
        ):
            if value is not None and value < 1:
                raise UserError(f"{flag} must be a positive integer, got {value}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"--seeds must be distinct integers, got {list(self.seeds)}")
        if min(self.seeds) < 0:
            raise UserError(f"--seeds must be 0 or more, got {list(self.seeds)}")


def plan(opts: Options, device: str) -> list[Run]:
    """The runs, a standard model beside its twin for each seed (so that with two runs at a time
    both models of a pair share the machine's conditions)."""
    runs = []
    for name in opts.groups:
        group = GROUPS[name]
        for seed in opts.seeds:
            for model in group.models:
                recipe = recipes.recipe_for(model)
                if group.dataset == "synthetic":
                    epochs, steps = CIFAR_STEPS[device]
                    epochs, steps = opts.cifar_epochs or epochs, opts.cifar_steps or steps
                    run = Run(
                        name,
                        model,
                        seed,
                        "synthetic",
                        epochs,
                        steps * recipe.batch_size,
                        recipe.batch_size,
                    )
                else:
                    dataset = opts.mnist_dataset if group.dataset == "mnist" else group.dataset
                    run = Run(
                        name, model, seed, dataset, opts.epochs or recipe.epochs, opts.limit_train
                    )
                runs.append(run)
    return runs


def train_config(run: Run, opts: Options, device: str, work: Path) -> recipes.TrainConfig:
    """The run's TrainConfig: its document's recipe, resuming from its own checkpoint."""
    r = recipes.recipe_for(run.model)
    return recipes.TrainConfig(
        model=run.model,
        dataset=run.dataset,
        epochs=run.epochs,
        batch_size=r.batch_size,
        lr=r.lr,
        optimizer=r.optimizer,
        momentum=r.momentum,
        weight_decay=r.weight_decay,
        loss=r.loss,
        seed=run.seed,
        device=device,
        data_dir=str(opts.data_dir),
        out=str(work / run.name),
        resume=True,
        limit_train=run.limit_train,
        limit_test=run.limit_test,
        download=False,
    )


# --------------------------------------------------------------------------------- the set


@dataclass
class _Child:
    run: Run
    proc: subprocess.Popen
    started: str
    start_s: float
    load_start: float
    reader: threading.Thread
    tail: deque = field(default_factory=lambda: deque(maxlen=15))


class _Console:
    """Lines from the runner and its children; a bar over the runs only on a terminal."""

    def __init__(self, total: int, done: int) -> None:
        self.lock = threading.Lock()
        self.bar = tqdm(
            total=total,
            initial=done,
            desc="experiments",
            unit="run",
            disable=not sys.stdout.isatty(),
        )

    def say(self, line: str) -> None:
        with self.lock:
            tqdm.write(line)
            sys.stdout.flush()


def run_set(opts: Options) -> pd.DataFrame:
    """Run every planned run that is not finished yet, then write OUT/comparison.csv (all runs,
    finished earlier or now) and return it."""
    device = provenance.resolve_device(opts.device)
    runs = plan(opts, device)
    runs_dir, work = opts.out / RUNS_FOLDER, opts.out / WORK_FOLDER
    if opts.fresh:
        for run in runs:
            (runs_dir / f"{run.name}.csv").unlink(missing_ok=True)
            shutil.rmtree(work / run.name, ignore_errors=True)
    todo = [r for r in runs if not _finished(r, runs_dir)]
    console = _Console(len(runs), len(runs) - len(todo))
    for run in runs:
        if run not in todo:
            console.say(f"{run.name}: finished earlier ({runs_dir / run.name}.csv), not redone")
    for name in sorted({r.dataset for r in todo} & set(data.DATASETS_ON_DISK)):
        prepared = data.prepare(name, opts.data_dir)  # once, before any child reads the files
        console.say(f"{name}: {prepared.folder} ({prepared.route}; {prepared.checked})")
    threads = opts.threads or provenance.default_threads(device)
    jobs = opts.jobs or (1 if device == "cuda" else max(1, (os.cpu_count() or 1) // (threads or 1)))
    jobs = min(jobs, max(1, len(todo)))
    if todo:
        console.say(
            f"{len(todo)} runs to do on {provenance.device_name(device)}, {jobs} at a "
            f"time, {threads or 'torch default'} thread(s) each"
        )
    failures = _execute(todo, opts, device, threads, jobs, console)
    console.bar.close()
    table = comparison_table(runs, runs_dir, failures)
    write_csv_atomic(table, opts.out / COMPARISON)
    return table


def _finished(run: Run, runs_dir: Path) -> bool:
    path = runs_dir / f"{run.name}.csv"
    if not path.is_file():
        return False
    try:
        return int(pd.read_csv(path)["epoch"].max()) == run.epochs
    except (OSError, KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return False  # unreadable: redo it


def _execute(
    todo: list[Run], opts: Options, device: str, threads: int | None, jobs: int, console: _Console
) -> dict[str, str]:
    """Run ``todo`` with ``jobs`` children at a time; returns {run name: error} for failures."""
    pending, running, failures = deque(todo), [], {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                running.append(_start(pending.popleft(), opts, device, threads, jobs, console))
            time.sleep(0.2)
            for child in [c for c in running if c.proc.poll() is not None]:
                running.remove(child)
                error = _finish(child, opts, device, threads, jobs, console)
                if error:
                    failures[child.run.name] = error
                console.bar.update(1)
    finally:  # an interrupted set stops its children; their checkpoints let a rerun continue
        for child in running:
            child.proc.terminate()
        for child in running:
            child.proc.wait()
    return failures


def _start(
    run: Run, opts: Options, device: str, threads: int | None, jobs: int, console: _Console
) -> _Child:
    cfg = train_config(run, opts, device, opts.out / WORK_FOLDER)
    package_root = str(Path(__file__).resolve().parents[2])  # this checkout's bench/ and models/
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    payload = json.dumps({"config": asdict(cfg), "threads": threads})
    proc = subprocess.Popen(
        [sys.executable, "-m", __name__, payload],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    child = _Child(
        run, proc, provenance.utc_now(), time.perf_counter(), os.getloadavg()[0], threading.Thread()
    )
    child.reader = threading.Thread(target=_pump, args=(child, console), daemon=True)
    child.reader.start()
    console.say(f"[{run.name}] started: {run.group}, {run.epochs} epochs, seed {run.seed}")
    return child


def _pump(child: _Child, console: _Console) -> None:
    assert child.proc.stdout is not None
    for line in child.proc.stdout:
        line = line.rstrip()
        if line:
            child.tail.append(line)
            console.say(f"[{child.run.name}] {line}")


def _finish(
    child: _Child, opts: Options, device: str, threads: int | None, jobs: int, console: _Console
) -> str | None:
    """Collect a child that exited: its per-run CSV, or the error it ended with."""
    child.reader.join()
    run, wall = child.run, time.perf_counter() - child.start_s
    metrics_csv = opts.out / WORK_FOLDER / run.name / "metrics.csv"
    if child.proc.returncode != 0 or not metrics_csv.is_file():
        error = next((ln for ln in reversed(child.tail) if "error" in ln.lower()), None)
        error = error or (child.tail[-1] if child.tail else "no output")
        console.say(f"[{run.name}] FAILED (exit {child.proc.returncode}): {error}")
        return f"exit {child.proc.returncode}: {error}"
    metrics = pd.read_csv(metrics_csv)
    identity = {
        "group": run.group,
        "model": run.model,
        "dataset": run.dataset,
        "seed": run.seed,
        "batch_size": recipes.recipe_for(run.model).batch_size,
        "device": provenance.device_name(device),
        "memory_measure": train.MEMORY_MEASURES[device],
        "threads": threads or "default",
        "concurrent_runs": jobs,
        "load_avg_start": child.load_start,
        "load_avg_end": os.getloadavg()[0],
        "started": child.started,
        "wall_s": wall,
        "torch_version": torch.__version__,
        "git_sha": provenance.git_sha(),
    }
    rows = metrics.assign(**identity)[[*RUN_COLUMNS, *train.METRIC_COLUMNS]]
    write_csv_atomic(rows, opts.out / RUNS_FOLDER / f"{run.name}.csv")
    shutil.rmtree(opts.out / WORK_FOLDER / run.name, ignore_errors=True)  # checkpoint not needed
    last = metrics.iloc[-1]
    console.say(
        f"[{run.name}] finished in {wall:.0f} s: test accuracy {last['test_acc']:.4f}, "
        f"{last['epoch_time_s']:.1f} s/epoch, peak {metrics['peak_memory_mb'].max():.0f} "
        "MiB"
    )
    return None


# --------------------------------------------------------------------------- comparison.csv


def comparison_table(runs: list[Run], runs_dir: Path, failures: dict[str, str]) -> pd.DataFrame:
    """One row per planned run: its summary when finished, its error when it failed."""
    rows, costs = [], {}
    for run in runs:
        path = runs_dir / f"{run.name}.csv"
        if run.name in failures or not path.is_file():
            rows.append(
                {
                    "group": run.group,
                    "model": run.model,
                    "dataset": run.dataset,
                    "seed": run.seed,
                    "status": "error",
                    "error": failures.get(run.name, "not run"),
                }
            )
            continue
        if run.model not in costs:
            spec = registry.get(run.model)
            costs[run.model] = pairs.count_cost(spec.build(), spec.input_shape)
        rows.append(run_summary(pd.read_csv(path), *costs[run.model]))
    return pd.DataFrame(rows, columns=COLUMNS)


def run_summary(m: pd.DataFrame, params: int, macs: int) -> dict:
    """A run's per-epoch rows -> its comparison.csv row. Rates are the steady epochs' means."""
    first, last = m.iloc[0], m.iloc[-1]
    time_per_epoch, images_per_s = pairs.steady_rates(m)
    images = round(float(last["images_per_s"] * last["epoch_time_s"]))
    steps = math.ceil(images / int(first["batch_size"]))
    return {
        "group": first["group"],
        "model": first["model"],
        "dataset": first["dataset"],
        "seed": int(first["seed"]),
        "status": "ok",
        "epochs": int(last["epoch"]),
        "params": params,
        "macs": macs,
        "test_accuracy": float(last["test_acc"]),
        "test_error": 1 - float(last["test_acc"]),
        "train_loss": float(last["train_loss"]),
        "test_loss": float(last["test_loss"]),
        "time_per_epoch_s": time_per_epoch,
        "time_per_step_s": time_per_epoch / steps,
        "steps_per_epoch": steps,
        "images_per_s": images_per_s,
        "train_time_s": float(m["epoch_time_s"].sum()),
        "peak_memory_mb": float(m["peak_memory_mb"].max()),
        "memory_measure": first["memory_measure"],
        "device": first["device"],
        "threads": first["threads"],
        "concurrent_runs": int(first["concurrent_runs"]),
        "load_avg": f"{m['load_avg_start'].min():.1f}-{m['load_avg_end'].max():.1f}",
        "started": first["started"],
        "wall_s": float(m["wall_s"].max()),
        "error": "",
    }


def load_runs(out: Path) -> pd.DataFrame:
    """Every per-run CSV under OUT/runs/, concatenated (per-epoch rows), or an empty frame."""
    paths = sorted((Path(out) / RUNS_FOLDER).glob("*.csv"))
    if not paths:
        return pd.DataFrame(columns=[*RUN_COLUMNS, *train.METRIC_COLUMNS])
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


# -------------------------------------------------------------------------------- the child


def _child(payload: str) -> int:
    """One run, in its own process: fix the threads, train (resuming from the checkpoint)."""
    spec = json.loads(payload)
    provenance.set_threads(spec["threads"])
    try:
        result = train.train(recipes.TrainConfig(**spec["config"]))
    except UserError as err:
        print(f"error: {err}", flush=True)
        return 2
    print(f"final test accuracy {result.test_accuracy:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
