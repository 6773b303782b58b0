"""A standard model and its depthwise twin trained alike and compared (`sepbench
compare-training`): parameters and MACs, accuracy, training rate and batch-1 inference latency,
one row per model."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn

from bench.counting.counters import fvcore_macs
from bench.experiments.distributed import finish_distributed, is_main_process
from bench.experiments.recipes import TrainFlags, make_config
from bench.experiments.train import TrainResult, plot_training_curves, train
from bench.measuring import timing
from bench.provenance import device_name
from models import registry

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


def compare_pair(pair: str, flags: TrainFlags) -> tuple[pd.DataFrame, Path] | None:
    """Train the standard/depthwise pair ``pair`` (lenet5, lenet5_paper, cifar_cnn) on one
    dataset; write comparison.csv, comparison.md and comparison.png into the output folder
    (flags.out, default runs/compare-<pair>-<dataset>) and return (table, folder). Under
    torchrun, ranks other than 0 train and return None."""
    names = [pair, f"{pair}_dw"]
    first = make_config(flags, names[0], out=".")
    out = Path(flags.out or Path("runs") / f"compare-{pair}-{first.dataset}")
    rows, curves = [], {}
    try:
        for name in names:
            cfg = replace(
                make_config(flags, name, out=out / name), dataset=first.dataset, note=first.note
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
        f"inference_latency_ms is the median batch-1 eval forward on the {flags.backend} backend "
        "(bench.measuring.timing: CUDA events, or torch.utils.benchmark on CPU; warm-up "
        "discarded).\n"
    )
    (out / "comparison.md").write_text(table.to_markdown(index=False, floatfmt="g") + "\n" + notes)
    plot_training_curves(
        curves, out / "comparison.png", title=f"{names[0]} vs {names[1]} on {first.dataset}"
    )
    return table, out
