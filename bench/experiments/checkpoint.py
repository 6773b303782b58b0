"""A run's checkpoint: model, optimizer, RNG state and the metrics so far, written atomically
after each epoch; read back under --resume only by a run with the same settings."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bench.errors import UserError
from bench.experiments.recipes import RESULT_FIELDS, TrainConfig


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: an interruption while saving leaves the previous checkpoint


def load_checkpoint(path: Path, cfg: TrainConfig) -> dict:
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
