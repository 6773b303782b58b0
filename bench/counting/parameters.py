"""Which row holds which parameters: every tensor counted once (a weight tied between two layers
in the row of the first module that registers it), frozen ones included, with how many of them
train (requires_grad)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class Holding:
    """The parameters a module registers itself (not its children's)."""

    params: int = 0  # elements of the tensors first registered here
    trainable: int = 0  # of those, the elements with requires_grad
    frozen: list[str] = field(default_factory=list)  # names of its frozen tensors
    tied: list[tuple[str, str]] = field(default_factory=list)  # (name, where it is counted)

    @property
    def any(self) -> bool:
        return bool(self.params or self.tied)


def holdings(model: nn.Module) -> dict[str, Holding]:
    """Module name -> its own parameters, each tensor counted at its first name in
    named_modules() order: the rows' params sum to sum(p.numel() for p in model.parameters())."""
    first: dict[int, str] = {}
    held: dict[str, Holding] = {}
    for module_name, m in model.named_modules():
        holding = held.setdefault(module_name, Holding())
        for name, p in m.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if id(p) in first:
                holding.tied.append((name, first[id(p)]))
                continue
            first[id(p)] = full
            holding.params += p.numel()
            if p.requires_grad:
                holding.trainable += p.numel()
            else:
                holding.frozen.append(name)
    return held


def note(holding: Holding) -> str:
    """What a row's parameters leave implicit: tied tensors counted elsewhere, frozen ones."""
    parts = [f"{name} tied to {where} (counted there)" for name, where in holding.tied]
    if holding.frozen:
        parts.append(f"frozen (requires_grad=False): {', '.join(holding.frozen)}")
    return "; ".join(parts)
