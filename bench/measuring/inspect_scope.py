"""What `sepbench inspect` would compile for a choice of kernels and suites, checked before it
starts: a choice that matches no launch (``--kernel rbf_distance --suite documents``: the
documents suite has only dw-sep blocks) is a UserError naming what each suite does launch,
instead of empty compiled.csv/png/md and exit 0.
"""

from __future__ import annotations

from bench.errors import UserError
from bench.measuring.inspect import KERNELS, applies
from bench.measuring.suites import SUITES, build_suites


def kernels_of(suite: str, size: str = "quick") -> list[str]:
    """The kernels a GPU run of ``suite`` launches (at least one of its workloads applies)."""
    workloads = build_suites([suite], size, "cuda")
    return [k for k in KERNELS if any(applies(k, w) for w in workloads)]


def check_scope(kernels: tuple[str, ...], suites: tuple[str, ...], size: str = "quick") -> None:
    """A UserError when no kernel of ``kernels`` launches in any suite of ``suites``. Unknown
    names are left to inspect.targets, which lists the known ones."""
    if any(k not in KERNELS for k in kernels) or any(s not in SUITES for s in suites):
        return
    if any(k in kernels_of(s, size) for s in suites for k in kernels):
        return
    where = "; ".join(f"{s}: {', '.join(kernels_of(s, size)) or 'none'}" for s in SUITES)
    raise UserError(
        f"--kernel {' '.join(kernels)} is not launched by --suite {' '.join(suites)}: nothing "
        f"to compile. The kernels each suite launches: {where}"
    )
