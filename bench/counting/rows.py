"""The rows of `sepbench count`, one per leaf layer, module's own ops and uncalled parameter
holder, each with its formula count beside the counters' and the notes.Reason list that
explains every difference (bench.counting.counters assembles them into the table)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
from torch import nn

from bench.counting import layers, notes, parameters
from bench.counting.probe import OpTally, Probe

NO_FORMULA = "no formula"


def _numel(shape: Sequence[int] | None) -> int:
    return math.prod(shape) if shape else 0


def _minus(total: dict[str, int], parts: list[dict[str, int]]) -> dict[str, int]:
    """A module's own share of per-key counts: its total less its children's."""
    own = dict(total)
    for part in parts:
        for k, v in part.items():
            own[k] = own.get(k, 0) - v
    return {k: v for k, v in own.items() if v}


class Counters:
    """The three counters' per-module results (fvcore's analysis and ptflops' per-source
    counts each None where that counter did not run)."""

    def __init__(self, seen: Probe, analysis, ptflops: dict | None) -> None:
        self.seen, self.analysis, self.ptflops = seen, analysis, ptflops
        self.fv_ops = None if analysis is None else analysis.by_module_and_operator()

    def _fv_skipped(self, name: str) -> dict[str, int]:
        try:
            return dict(self.analysis.unsupported_ops(name))
        except KeyError:  # a module fvcore's trace never entered
            return {}

    def evidence(self, name: str, children: list[str] | None = None) -> dict:
        """A row's counts and breakdowns: a leaf's (children None) or a module's own share."""
        kids = children or []
        found: dict = {
            "torch": self.seen.torch_own.get(name, 0),
            "fvcore": None,
            "fvcore_ops": {},
            "fvcore_skipped": {},
            "ptflops": None,
            "ptflops_sources": {},
        }
        if self.fv_ops is not None:
            mine = dict(self.fv_ops.get(name, {}))
            ops = _minus(mine, [dict(self.fv_ops.get(c, {})) for c in kids])
            skipped = _minus(self._fv_skipped(name), [self._fv_skipped(c) for c in kids])
            found.update(fvcore=int(sum(ops.values())), fvcore_ops=ops, fvcore_skipped=skipped)
        if self.ptflops is not None:
            sources = self.ptflops.get(name, {})
            found.update(ptflops=int(sum(sources.values())), ptflops_sources=sources)
        return found


def _row(
    layer: str,
    kind: str,
    out: Sequence[int] | None,
    hold: parameters.Holding,
    formula: int | None,
    found: dict,
    connections: int,
    uncounted: str,
) -> dict:
    return {
        "layer": layer,
        "type": kind,
        "out_shape": "x".join(map(str, out)) if out else "",
        "params": hold.params,
        "trainable": hold.trainable,
        "macs_formula": formula,
        "macs_fvcore": found["fvcore"],
        "flops_torch": found["torch"],
        "macs_ptflops": found["ptflops"],
        "connections": connections,
        "uncounted": uncounted,
        "note": "",
    }


def _listing(tallies: dict[str, OpTally]) -> str:
    return ", ".join(f"{label} x{t.calls}" for label, t in sorted(tallies.items())) or "none"


def _uncounted(tallies: dict[str, OpTally]) -> str:
    return "; ".join(
        f"{label} x{t.calls} ({', '.join(sorted(t.uncounted))})"
        for label, t in sorted(tallies.items())
        if t.uncounted
    )


class Rows:
    """Builds the rows in call order and keeps each one's Reasons and formula parts."""

    def __init__(self, model: nn.Module, seen: Probe, counters: Counters) -> None:
        self.model, self.seen, self.counters = model, seen, counters
        self.holdings = parameters.holdings(model)
        self.rows: list[dict] = []
        self.reasons: dict[str, list[notes.Reason]] = {}
        self.parts: dict[str, dict[str, OpTally]] = {}

    def _finish(self, row: dict, ev: notes.Evidence | None, note: list[str]) -> dict:
        reasons = notes.explain(ev) if ev is not None else []
        self.reasons[row["layer"]] = reasons
        self.parts[row["layer"]] = ev.parts if ev is not None else {}
        row["note"] = "; ".join(n for n in [*note, *(r.text for r in reasons)] if n)
        self.rows.append(row)
        return row

    def leaf(self, name: str, m: nn.Module) -> dict:
        seen, hold = self.seen, self.holdings[name]
        calls = seen.calls[name]
        found = self.counters.evidence(name)
        out = calls[0][1]
        elements = sum(_numel(o) for _, o in calls)
        bias = getattr(m, "bias", None)
        counts = [layers.count_leaf(m, o, i) for i, o in calls if o is not None]
        priced = bool(counts) and None not in counts
        connections = sum(c.connections for c in counts) if priced else 0
        note = [f"called {len(calls)} times" if len(calls) > 1 else "", parameters.note(hold)]
        type_name = type(m).__name__
        uncounted = ""
        if name in seen.op_counted:
            tallies = dict(seen.ops.get(name, {}))
            base = layers.base_type(m)
            why = (
                f"no rule for layer type {type_name}"
                if base is None
                else f"{type_name} overrides {base.__name__}.forward"
            )
            note.insert(0, f"{why}: counted from the ops it ran: {_listing(tallies)}")
            formula = int(sum(t.macs for t in tallies.values()))
            uncounted = _uncounted(tallies)
            if uncounted:
                note.insert(1, f"partial: {NO_FORMULA} for {uncounted}")
            kind = "ops"
        elif not priced:
            note.insert(0, f"{NO_FORMULA} for this call of {type_name} (its rule needs the input)")
            row = _row(name or type_name, type_name, out, hold, None, found, 0, type_name)
            return self._finish(row, None, note)
        else:
            formula = sum(c.macs for c in counts)
            kind = counts[0].kind
            tally = OpTally(
                calls=len(counts),
                parts=Counter({kind: formula}),
                in_elements=sum(_numel(i) for i, _ in calls),
                torch_flops=found["torch"],
                zero_in_torch=set(seen.zero_in_torch.get(name, set())),
            )
            tallies = {type_name: tally}
        row = _row(name or type_name, type_name, out, hold, formula, found, connections, uncounted)
        ev = notes.Evidence(
            m,
            kind,
            formula,
            tallies,
            out_elements=elements,
            bias_elements=elements if isinstance(bias, torch.Tensor) else 0,
            uncounted=bool(uncounted),
            **found,
        )
        return self._finish(row, ev, note)

    def own(self, name: str, m: nn.Module, children: list[str]) -> dict | None:
        seen, hold = self.seen, self.holdings[name]
        found = self.counters.evidence(name, children)
        tallies = dict(seen.ops.get(name, {}))
        formula = int(sum(t.macs for t in tallies.values()))
        counts = (found["fvcore"], found["torch"], found["ptflops"])
        if not (tallies or hold.any or formula or any(counts)):
            return None
        type_name = type(m).__name__
        note = [f"{type_name}.forward outside its children: {_listing(tallies)}"]
        uncounted = _uncounted(tallies)
        if uncounted:
            note.append(f"partial: {NO_FORMULA} for {uncounted}")
        note.append(parameters.note(hold))
        label = f"{name or type_name} (own ops)"
        out = seen.calls[name][0][1]
        row = _row(label, f"{type_name} (own ops)", out, hold, formula, found, 0, uncounted)
        ev = notes.Evidence(m, "ops", formula, tallies, uncounted=bool(uncounted), **found)
        return self._finish(row, ev, note)

    def uncalled(self, name: str, m: nn.Module) -> dict:
        hold = self.holdings[name]
        mine = [f"{name}.{p}" if name else p for p, _ in m.named_parameters(recurse=False)]
        users = {self.seen.param_users[p] for p in mine if p in self.seen.param_users}
        if users:
            owner = min(users, key=len) or "the model"
            text = f"not called as a module: {owner}'s own ops use its weights and hold its work"
        else:
            text = "not run in this forward (e.g. a training-only head): parameters only"
        row = _row(name, type(m).__name__, None, hold, 0, self.counters.evidence(name), 0, "")
        return self._finish(row, None, [text, parameters.note(hold)])


def build(model: nn.Module, seen: Probe, counters: Counters) -> Rows:
    """Every row of the model: leaves and own ops in call order, then uncalled holders."""
    modules = dict(model.named_modules())  # a module registered twice: its first name only
    children = {
        n: [name for c, _ in m.named_children() if (name := f"{n}.{c}" if n else c) in modules]
        for n, m in modules.items()
    }
    rows = Rows(model, seen, counters)
    called = set(seen.calls)

    def frontier(name: str) -> list[str]:
        """The nearest descendants that were called (through uncalled ModuleList containers)."""
        return [d for c in children[name] for d in ([c] if c in called else frontier(c))]

    for name in seen.finished:
        m = modules.get(name)
        if m is None:
            continue
        if children[name]:
            rows.own(name, m, frontier(name))
        else:
            rows.leaf(name, m)
    for name, m in modules.items():
        if name not in called and rows.holdings[name].any:
            rows.uncalled(name, m)
    return rows
