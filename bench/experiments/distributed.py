"""One training run across processes: torchrun's environment (WORLD_SIZE / RANK / LOCAL_RANK),
the process group, and each rank's device. A plain process is a world of one."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from bench.provenance import Dist, dist_from_env, resolve_device

__all__ = [
    "Dist",
    "dist_from_env",
    "finish_distributed",
    "init_process_group",
    "is_main_process",
    "training_device",
]


def init_process_group(ctx: Dist, device: torch.device) -> None:
    # NCCL moves CUDA tensors only; a CPU run (also on a GPU machine) needs gloo.
    if ctx.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def training_device(requested: str, ctx: Dist) -> torch.device:
    """The training device; under torchrun each rank takes its LOCAL_RANK's GPU."""
    if resolve_device(requested) == "cpu":
        return torch.device("cpu")
    if ctx.world > 1:
        torch.cuda.set_device(ctx.local_rank)
        return torch.device("cuda", ctx.local_rank)
    return torch.device("cuda")


def finish_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
