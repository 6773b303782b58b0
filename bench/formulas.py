"""The documents' cost formulas as code: multiply-accumulates (MACs) and parameters per sample.

One MAC is one multiply-add, fvcore's unit; FLOPs = 2 x MACs wherever a column says FLOPs.
Document 000 writes the costs with f (kernel), d (input channels), r (output channels) and
p x p (output size): standard f^2 d r p^2, depthwise f^2 d p^2, pointwise d r p^2.
"""

from __future__ import annotations

from dataclasses import dataclass

Pair = int | tuple[int, int]


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(self.macs + other.macs, self.params + other.params)

    def __radd__(self, other: object) -> Cost:
        if other == 0:  # lets sum() start from 0
            return self
        return NotImplemented


def _pair(value: Pair, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    if min(pair) <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return pair  # type: ignore[return-value]


def _positive(value: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def conv2d(
    in_ch: int, out_ch: int, kernel: Pair, out_hw: Pair, *, groups: int = 1, bias: bool = False
) -> Cost:
    """A KxK convolution: each output element takes (in_ch / groups) * kh * kw MACs."""
    _positive(in_ch, "in_ch")
    _positive(out_ch, "out_ch")
    _positive(groups, "groups")
    kh, kw = _pair(kernel, "kernel")
    oh, ow = _pair(out_hw, "out_hw")
    if in_ch % groups or out_ch % groups:
        raise ValueError(
            f"groups={groups} must divide in_ch={in_ch} and out_ch={out_ch} (channels are split "
            "evenly between groups)"
        )
    weights = out_ch * (in_ch // groups) * kh * kw
    return Cost(macs=weights * oh * ow, params=weights + (out_ch if bias else 0))


def depthwise_separable(
    in_ch: int, out_ch: int, kernel: Pair, out_hw: Pair, *, bias: bool = False
) -> Cost:
    """Depthwise KxK (groups=in_ch) followed by pointwise 1x1 at the same output size."""
    dw = conv2d(in_ch, in_ch, kernel, out_hw, groups=in_ch, bias=bias)
    return dw + conv2d(in_ch, out_ch, 1, out_hw, bias=bias)


def linear(in_features: int, out_features: int, *, bias: bool = True) -> Cost:
    _positive(in_features, "in_features")
    _positive(out_features, "out_features")
    weights = in_features * out_features
    return Cost(macs=weights, params=weights + (out_features if bias else 0))


def separable_ratio(kernel: int, in_ch: int, out_ch: int) -> float:
    """Document 000's exact ratio (f^2 d + d r) / (f^2 d r): separable over standard MACs.

    Algebra: dividing through by f^2 d r gives exactly 1/r + 1/f^2, so the document's
    "approximation for large r" is in fact exact, and as r grows the ratio tends to 1/f^2,
    not to 1/r.
    """
    f2 = _positive(kernel, "kernel") ** 2
    d, r = _positive(in_ch, "in_ch"), _positive(out_ch, "out_ch")
    return (f2 * d + d * r) / (f2 * d * r)


def separable_ratio_limit(kernel: int) -> float:
    """The limit of separable_ratio as out_ch -> infinity: 1 / f^2."""
    return 1.0 / _positive(kernel, "kernel") ** 2


def reduction_factor(kernel: int, in_ch: int, out_ch: int) -> float:
    """How many times fewer MACs (and weights) the separable form needs: 1 / separable_ratio."""
    return 1.0 / separable_ratio(kernel, in_ch, out_ch)


def conv_out_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling along one axis (dilation 1)."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out <= 0:
        raise ValueError(
            f"input size {size} with kernel {kernel}, stride {stride}, padding {padding} "
            "leaves no output"
        )
    return out
