"""The operators, one per workload kind, and lookups over their providers.

Each operator module (dwsep, rbf_distance, rbf_loss, model) declares its providers, one
decorated function each: name, family, role, layout, what it times. Everything else asks here.
"""

from __future__ import annotations

import torch

from bench.measuring.operators.base import (
    COMPUTES_WORKLOAD,
    FAMILIES,
    Case,
    Operator,
    Prepared,
    Provider,
    Setting,
    Unavailable,
    installed,
    max_rel_err,
)
from bench.measuring.operators.dwsep import DWSEP
from bench.measuring.operators.model import MODEL
from bench.measuring.operators.rbf_distance import RBF
from bench.measuring.operators.rbf_loss import RBF_LOSS
from bench.measuring.suites import Workload

OPERATORS: dict[str, Operator] = {op.kind: op for op in (DWSEP, RBF, RBF_LOSS, MODEL)}

__all__ = [
    "COMPUTES_WORKLOAD",
    "DWSEP",
    "FAMILIES",
    "MODEL",
    "OPERATORS",
    "RBF",
    "RBF_LOSS",
    "Case",
    "Operator",
    "Prepared",
    "Provider",
    "Setting",
    "Unavailable",
    "baseline_of",
    "cases_for",
    "family_of",
    "installed",
    "max_rel_err",
    "operator_for",
    "provider_names",
    "provider_table",
]


def _family_index() -> dict[str, str]:
    """Provider name -> family over all operators; one name means one family everywhere. Also
    checks each operator's declarations once, at import: exactly one baseline each."""
    index: dict[str, str] = {}
    for op in OPERATORS.values():
        op.baseline  # noqa: B018 (raises unless exactly one provider is the baseline)
        for p in op.providers:
            if index.setdefault(p.name, p.family) != p.family:
                raise ValueError(
                    f"provider {p.name!r} has two families: {index[p.name]}, {p.family}"
                )
    return index


_FAMILY = _family_index()


def operator_for(workload: Workload) -> Operator:
    return OPERATORS[workload.kind]


def cases_for(workload: Workload, device: str, dtype: torch.dtype) -> list[Case]:
    """Every provider that applies to ``workload`` on ``device`` in ``dtype``, unprepared."""
    return operator_for(workload).cases(workload, device, dtype)


def baseline_of(kind: str) -> str:
    """The speed-up reference provider of a workload kind ("dwsep", "rbf", "rbfloss", "model")."""
    return OPERATORS[kind].baseline.name


def provider_names() -> list[str]:
    """Every provider name of every operator, once each."""
    return list(_FAMILY)


def family_of(provider: str) -> str:
    """The family of a provider name ("" for a name no operator has, e.g. a peaks row)."""
    return _FAMILY.get(provider, "")


def provider_table() -> str:
    """What each provider name means, as markdown drawn from the operators' declarations: the
    families, then one row per (operator, provider). README.md holds this function's output
    between its `providers` markers; a test keeps the two equal, so the README cannot drift."""
    lines = ["| family | what it is |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in FAMILIES.items()]
    lines += ["", "| workload | provider | family | role | layout | one timed call |"]
    lines.append("|---|---|---|---|---|---|")
    for op in OPERATORS.values():
        for p in op.providers:
            role = ["baseline"] if p.baseline else []
            if p.document:
                role.append("the documents' own way")
            if p.wraps:
                role.append(f"times `{p.wraps}`'s function")
            times = p.times.replace("|", "\\|")
            lines.append(
                f"| {op.title} | `{p.name}` | {p.family} | {'; '.join(role)} | "
                f"{p.layout} | {times} |"
            )
    return "\n".join(lines)
