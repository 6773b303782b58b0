"""The operators, one per workload kind, and lookups over their provider tables.

Each operator module (dwsep, rbf_distance, rbf_loss, model) owns its providers in one table:
name, family, baseline, layout, what it times. Everything else asks here.
"""

from __future__ import annotations

import torch

from bench.measuring.operators import dwsep, model, rbf_distance, rbf_loss
from bench.measuring.operators.base import (
    COMPUTES_WORKLOAD,
    FAMILIES,
    Case,
    Operator,
    Prepared,
    Provider,
    Unavailable,
    max_rel_err,
)
from bench.measuring.suites import Workload

OPERATORS: dict[str, Operator] = {
    op.kind: op for op in (dwsep.OPERATOR, rbf_distance.OPERATOR, rbf_loss.OPERATOR, model.OPERATOR)
}
DWSEP, RBF, RBF_LOSS, MODEL = (OPERATORS[k] for k in ("dwsep", "rbf", "rbfloss", "model"))

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
    "Unavailable",
    "baseline_of",
    "cases_for",
    "family_of",
    "max_rel_err",
    "operator_for",
    "operator_with_baseline",
    "provider_table",
    "providers_in",
]


def _family_index() -> dict[str, str]:
    """Provider name -> family over all operators; one name means one family everywhere."""
    index: dict[str, str] = {}
    for op in OPERATORS.values():
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


def family_of(provider: str) -> str:
    """The family of a provider name ("" for a name no operator has, e.g. a peaks row)."""
    return _FAMILY.get(provider, "")


def providers_in(*families: str) -> list[str]:
    """Every provider name of these families, over all operators, without repeats."""
    return [name for name, family in _FAMILY.items() if family in families]


def operator_with_baseline(baseline: str) -> Operator | None:
    """The operator whose baseline provider is ``baseline`` (a results row's `baseline` column
    names it, so a row finds its operator without knowing workload kinds)."""
    return next((op for op in OPERATORS.values() if op.baseline.name == baseline), None)


def provider_table() -> str:
    """What each provider name means, as markdown drawn from the operators' provider tables:
    the families, then one row per (operator, provider). README.md holds this function's output
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
