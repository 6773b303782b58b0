"""Where and with what a run measured: the device (resolved and named), the thread count, the
versions and the git SHA. Every row of a run carries these columns.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.errors import UserError

DEVICES = ("cpu", "cuda")
REPO_ROOT = Path(__file__).resolve().parents[1]
# CPU runs use one thread unless SEPBENCH_THREADS says otherwise: on a machine whose cores are
# shared, two OpenMP threads stalled at barriers (a 4->8 channel 8x8 conv: 24-48 ms with 2
# threads vs 0.008 ms with 1, measured on the 2-core reference machine).
CPU_THREADS_ENV = "SEPBENCH_THREADS"


@dataclass(frozen=True)
class Dist:
    """Where this process stands under torchrun (a plain process is a world of one)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    """torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; a plain process has none of them."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(world, int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")))


def utc_now() -> str:
    """The time a row or a run was written: UTC, ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def resolve_device(device: str | torch.device = "auto") -> str:
    """ "auto" -> "cuda" when a GPU is visible, else "cpu"; "cpu" / "cuda" (or a torch.device of
    either type) checked. A UserError (a ValueError) names what was wrong and what is accepted."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        kind = str(device)
    if kind not in DEVICES:
        raise UserError(f"device must be auto, cpu or cuda, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "device cuda was asked for but no CUDA device is visible "
            "(torch.cuda.is_available() is False); use cpu or auto"
        )
    return kind


def device_name(device: str | torch.device) -> str:
    """The hardware's own name: 'NVIDIA H200', or the CPU model."""
    if resolve_device(device) == "cuda":
        return torch.cuda.get_device_name(device if isinstance(device, torch.device) else None)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def device_slug(device: str, name: str | None = None) -> str:
    """Folder name under reports/: 'cpu' for any CPU, 'h200' for an 'NVIDIA H200'."""
    if device == "cpu":
        return "cpu"
    name = (name or device_name(device)).lower().replace("nvidia", "").strip()
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "cuda"


def default_out(device: str) -> Path:
    """runs/report-<device slug>/ under the working folder: a run's own folder, which git
    ignores. The committed references (reports/<slug>/) change only when asked (--out)."""
    return Path("runs") / f"report-{device_slug(device)}"


def short_sha(sha: str) -> str:
    """A git SHA as people quote it: 10 hex digits, '-dirty' kept."""
    return sha[:10] + ("-dirty" if sha.endswith("-dirty") else "")


def git_sha() -> str:
    """HEAD's SHA, with '-dirty' when the working tree has changes; 'unknown' outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def default_threads(device: str) -> int | None:
    """Threads to fix for a run: SEPBENCH_THREADS, else 1 on CPU; None leaves torch's choice."""
    value = os.environ.get(CPU_THREADS_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise UserError(f"{CPU_THREADS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return 1 if device == "cpu" else None


def set_threads(threads: int | None = None) -> int:
    """Fix torch's intra-op thread count (default: leave it) and return the count in force."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def environment(device: str, threads: int | None = None) -> dict:
    """Columns shared by every row of a run (thread count fixed here and recorded)."""
    if threads is None:
        threads = default_threads(device)
    return {
        "device": device_name(device),
        "threads": set_threads(threads),
        "torch_version": torch.__version__,
        "triton_version": version("triton"),
        "git_sha": git_sha(),
    }


def _driver_version() -> str:
    """The NVIDIA driver's version from nvidia-smi; 'absent' without one."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "absent"
    return out.strip().splitlines()[0] if out.strip() else "absent"


def machine_info() -> dict:
    """What a saved pytest-benchmark run records beside its timings (tests/benchmarks/
    conftest.py): GPU, driver, CUDA and cuDNN, torch and triton versions, CPU threads."""
    cuda = torch.cuda.is_available()
    cudnn = torch.backends.cudnn.version() if cuda else None
    return {
        "gpu": torch.cuda.get_device_name() if cuda else "none",
        "driver": _driver_version() if cuda else "absent",
        "cuda": torch.version.cuda or "absent",
        "cudnn": str(cudnn) if cudnn else "absent",
        "torch": torch.__version__,
        "triton": version("triton"),
        "cpu_threads": torch.get_num_threads(),
        "cpu": device_name("cpu"),
    }
