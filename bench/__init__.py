"""sepbench's harness: formulas, counting, claims, timing, suites, runner, report, training."""

import kernels  # noqa: F401  (sets TRITON_INTERPRET on CPU before triton is imported)
