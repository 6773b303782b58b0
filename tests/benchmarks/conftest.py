"""pytest-benchmark's machine_info in every saved run gains what sepbench's timings depend on
(GPU, driver, CUDA, cuDNN, torch, triton, CPU threads), so `sepbench compare` can name it."""

from __future__ import annotations

from bench import provenance


def pytest_benchmark_update_machine_info(config, machine_info: dict) -> None:
    machine_info["sepbench"] = provenance.machine_info()
