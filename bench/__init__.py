"""sepbench's harness, in floors that import only downward (tests/test_layout.py checks it):

errors, files, provenance, progress, formulas -> counting -> measuring -> experiments ->
checking -> reporting -> commands, cli.
"""

import logging


class _NoCudaHomeNotice(logging.Filter):
    """Drops torch.utils.cpp_extension's "No CUDA runtime is found, using CUDA_HOME=..." (logged
    on import by every command on a CPU machine with a CUDA toolkit): it concerns building CUDA
    extensions, which sepbench never does, and the device each run used is in its results."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No CUDA runtime is found")


logging.getLogger("torch.utils.cpp_extension").addFilter(_NoCudaHomeNotice())  # before torch

import kernels  # noqa: E402, F401  (sets TRITON_INTERPRET on CPU before triton is imported)
