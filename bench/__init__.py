"""sepbench's harness, in floors that import only downward:

formulas, errors -> counting -> measuring -> experiments -> checking -> reporting -> commands, cli.
"""

import kernels  # noqa: F401  (sets TRITON_INTERPRET on CPU before triton is imported)
