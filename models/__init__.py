"""nn.Modules: the documents' networks and the drop-in fused blocks."""

import kernels  # noqa: F401  (sets TRITON_INTERPRET on CPU before triton is imported)
