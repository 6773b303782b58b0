"""The documents' cost formulas as code: multiply-accumulates (MACs) and parameters, one
function per layer type (every leaf layer of torchvision's classification models has one).

One MAC is one multiply-add, fvcore's unit; FLOPs = 2 x MACs wherever a column says FLOPs.
Document 000 writes the costs with f (kernel), d (input channels), r (output channels) and
p x p (output size): standard f^2 d r p^2, depthwise f^2 d p^2, pointwise d r p^2.

The rules, so that every layer is charged the same way (each function's docstring says which
applies and names its source):
(a) every product summed into an accumulator is 1 MAC (convolution, linear, matmul, attention);
    a bias initialises the accumulator and costs nothing (document 000 leaves it out too);
(b) every element a reduction reads is 1 (pooling windows, normalisation's mean and variance,
    softmax's sum);
(c) a per-channel multiply-add that inference keeps (batch norm's folded scale and shift,
    layer norm's normalise-and-affine) is 1 per element;
(d) any other elementwise map (activations, residual adds, scaling, dropout, reshapes) is 0.
conv2d, depthwise_separable and linear return the cost of one sample; the per-layer functions
below them take the element counts of the whole call and return its whole cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    """A KxK convolution: each output element takes (in_ch / groups) * kh * kw MACs (rule a).

    Source: document 000's f^2 d r p^2, with d split into groups (Krizhevsky 2012's grouped
    convolution; groups = in_ch is the depthwise case). Stride and dilation change only the
    output size out_hw (conv_out_size), not the work per output element."""
    return conv_nd(
        in_ch, out_ch, _pair(kernel, "kernel"), _pair(out_hw, "out_hw"), groups=groups, bias=bias
    )


def _sizes(value: Sequence[int], name: str) -> tuple[int, ...]:
    sizes = tuple(value)
    if not sizes or not all(isinstance(v, int) and not isinstance(v, bool) for v in sizes):
        raise ValueError(f"{name} must be a sequence of positive ints, got {value!r}")
    if min(sizes) <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return sizes


def _grouped(in_ch: int, out_ch: int, groups: int) -> None:
    _positive(in_ch, "in_ch")
    _positive(out_ch, "out_ch")
    _positive(groups, "groups")
    if in_ch % groups or out_ch % groups:
        raise ValueError(
            f"groups={groups} must divide in_ch={in_ch} and out_ch={out_ch} (channels are split "
            "evenly between groups)"
        )


def conv_nd(
    in_ch: int,
    out_ch: int,
    kernel: Sequence[int],
    out_size: Sequence[int],
    *,
    groups: int = 1,
    bias: bool = False,
) -> Cost:
    """A convolution over any number of spatial axes (Conv1d, Conv2d, Conv3d): each output
    element takes (in_ch / groups) x prod(kernel) MACs (rule a), one sample.

    Source: conv2d's rule along every axis; PyTorch's ConvNd computes each output element as
    the sum over its group's in_ch / groups channels and the kernel's taps. Stride, padding and
    dilation set out_size (conv_out_size per axis), not the work per output element."""
    _grouped(in_ch, out_ch, groups)
    kernel, out_size = _sizes(kernel, "kernel"), _sizes(out_size, "out_size")
    if len(kernel) != len(out_size):
        raise ValueError(f"kernel {kernel} and out_size {out_size} have different ranks")
    weights = out_ch * (in_ch // groups) * math.prod(kernel)
    return Cost(macs=weights * math.prod(out_size), params=weights + (out_ch if bias else 0))


def conv_transpose(
    in_ch: int,
    out_ch: int,
    kernel: Sequence[int],
    in_size: Sequence[int],
    *,
    groups: int = 1,
    bias: bool = False,
) -> Cost:
    """A transposed convolution (ConvTranspose1d/2d/3d), one sample: every input element is
    multiplied by each of its group's (out_ch / groups) x prod(kernel) weights and the product
    added into one output (rule a): in_ch x prod(in_size) x (out_ch / groups) x prod(kernel).

    Source: the definition y[o] += x[i] w[k] at o = i * stride - padding + k * dilation (the
    adjoint of conv_nd). Stride, dilation and output_padding set the output size
    (conv_transpose_out_size) and where the products land, not how many there are; padding
    crops the border after the sums, as the gradient-of-convolution kernels compute them
    (FlopCounterMode and fvcore count the same products)."""
    _grouped(in_ch, out_ch, groups)
    kernel, in_size = _sizes(kernel, "kernel"), _sizes(in_size, "in_size")
    if len(kernel) != len(in_size):
        raise ValueError(f"kernel {kernel} and in_size {in_size} have different ranks")
    weights = in_ch * (out_ch // groups) * math.prod(kernel)
    return Cost(macs=weights * math.prod(in_size), params=weights + (out_ch if bias else 0))


def conv_transpose_out_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Output length of a transposed convolution along one axis (PyTorch's ConvTranspose
    formula): (size - 1) x stride - 2 x padding + dilation x (kernel - 1) + output_padding + 1."""
    out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out <= 0:
        raise ValueError(f"input size {size} with padding {padding} leaves no output")
    return out


def transposed_taps(
    size: int, kernel: int, stride: int, padding: int, dilation: int, out_size: int
) -> int:
    """How many (input, kernel tap) pairs of a transposed convolution land inside its output
    along one axis: the connections of the 1998 paper's unit (padding crops some products)."""
    return sum(
        0 <= i * stride - padding + k * dilation < out_size
        for i in range(size)
        for k in range(kernel)
    )


def depthwise_separable(
    in_ch: int, out_ch: int, kernel: Pair, out_hw: Pair, *, bias: bool = False
) -> Cost:
    """Depthwise KxK (groups=in_ch) followed by pointwise 1x1 at the same output size."""
    dw = conv2d(in_ch, in_ch, kernel, out_hw, groups=in_ch, bias=bias)
    return dw + conv2d(in_ch, out_ch, 1, out_hw, bias=bias)


def linear(in_features: int, out_features: int, *, bias: bool = True) -> Cost:
    """A fully connected layer on one input vector: in x out MACs (rule a; document 001's FC)."""
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


def conv_out_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution or pooling along one axis (PyTorch's Conv2d formula:
    a dilated kernel spans dilation * (kernel - 1) + 1 inputs)."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out <= 0:
        raise ValueError(
            f"input size {size} with kernel {kernel}, stride {stride}, padding {padding} "
            "leaves no output"
        )
    return out


# ---- per-layer formulas for whole calls (element counts include the batch) -------------------


def _count(value: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def linear_tokens(tokens: int, in_features: int, out_features: int, *, bias: bool = True) -> Cost:
    """nn.Linear on ``tokens`` input vectors (every leading axis of its input): linear() per
    vector (rule a). Source: PyTorch's Linear applies y = x W^T + b along the last axis."""
    one = linear(in_features, out_features, bias=bias)
    return Cost(one.macs * _count(tokens, "tokens"), one.params)


def batch_norm(
    elements: int, channels: int, *, affine: bool = True, batch_stats: bool = False
) -> Cost:
    """BatchNorm in inference: the running statistics are constants, so each element is one
    per-channel multiply-add (rule c). Source: Ioffe & Szegedy 2015, Algorithm 2 (the inference
    network replaces BN by a linear transform per activation). With ``batch_stats`` (training,
    or track_running_stats=False) the statistics come from the input: a read each for the mean
    and the variance (rule b) and the normalise-and-affine, 3 per element (Algorithm 1)."""
    per = 3 if batch_stats else 1
    return Cost(
        per * _count(elements, "elements"), 2 * _positive(channels, "channels") if affine else 0
    )


def layer_norm(elements: int, normalized: int, *, affine: bool = True, bias: bool = True) -> Cost:
    """LayerNorm (and ConvNeXt's LayerNorm2d): 3 per element, 1 read for the mean and 1 for the
    variance (rule b) and 1 normalise-and-affine multiply-add (rule c). Source: Ba, Kiros &
    Hinton 2016, eq. 4 (statistics over the normalised axes, then gain and bias)."""
    params = (normalized + (normalized if bias else 0)) if affine else 0
    return Cost(3 * _count(elements, "elements"), params)


def group_norm(elements: int, channels: int, *, affine: bool = True) -> Cost:
    """GroupNorm: 3 per element as layer_norm, the mean and variance read over each group of
    channels (rule b), then one normalise-and-affine multiply-add (rule c); a weight and a bias
    per channel. Source: Wu & He 2018, eqs. 1-3 and 7."""
    return Cost(
        3 * _count(elements, "elements"), 2 * _positive(channels, "channels") if affine else 0
    )


def instance_norm(
    elements: int, channels: int, *, affine: bool = False, input_stats: bool = True
) -> Cost:
    """InstanceNorm: each (sample, channel) plane normalised by its own mean and variance, 3 per
    element like group_norm (Ulyanov, Vedaldi & Lempitsky 2016, eq. 2). With running statistics
    in eval (track_running_stats=True, input_stats=False) it is a per-channel multiply-add like
    batch_norm in inference, 1 per element (rule c)."""
    per = 3 if input_stats else 1
    return Cost(
        per * _count(elements, "elements"), 2 * _positive(channels, "channels") if affine else 0
    )


def rms_norm(elements: int, normalized: int, *, affine: bool = True) -> Cost:
    """RMSNorm: 2 per element, 1 read for the mean square (rule b) and 1 scale by gain / rms
    (rule c). Source: Zhang & Sennrich 2019, eq. 4 (no mean subtraction, no bias)."""
    return Cost(
        2 * _count(elements, "elements"), _positive(normalized, "normalized") if affine else 0
    )


def reduction(elements: int, *, passes: int = 1) -> Cost:
    """A reduction over any axes (sum, mean, amax, amin) or a scan (cumsum): each input element
    read once (rule b), the same read AdaptiveAvgPool2d(1) charges (x.mean((2, 3)) in
    squeeze-excite blocks); var and std read twice (passes=2: the mean, then the squared
    deviations). Source: the definitions mean = sum / n, var = sum((x - mean)^2) /
    (n - correction), cumsum y_i = y_(i-1) + x_i."""
    return Cost(_count(elements, "elements") * _positive(passes, "passes"), 0)


def interpolate(out_elements: int, mode: str, spatial_axes: int) -> Cost:
    """F.interpolate / nn.Upsample: nearest modes copy (0, rule d); (bi/tri)linear weighs 2 per
    axis (2^axes products per output, rule a); bicubic 4 x 4 = 16; area is adaptive average
    pooling (priced by adaptive_pool). Source: the interpolation kernels' tap counts."""
    taps = {"nearest": 0, "nearest-exact": 0, "linear": 2, "bilinear": 2, "trilinear": 2}
    if mode == "bicubic":
        per = 16
    elif mode in taps:
        per = taps[mode] ** _positive(spatial_axes, "spatial_axes") if taps[mode] else 0
    else:
        raise ValueError(f"no formula for interpolation mode {mode!r}")
    return Cost(_count(out_elements, "out_elements") * per, 0)


def pool2d(out_elements: int, kernel: Pair) -> Cost:
    """Max or average pooling: each output reads its kh x kw window once (rule b), whatever the
    stride, padding, dilation or ceil_mode (they set the output count). Source: documents
    002/003's subsampling layers S2/S4, one window sum per output unit."""
    return pool(out_elements, _pair(kernel, "kernel"))


def pool(out_elements: int, kernel: Sequence[int]) -> Cost:
    """pool2d over any number of axes (MaxPool1d/3d, AvgPool1d/3d): prod(kernel) reads per
    output (rule b)."""
    return Cost(_count(out_elements, "out_elements") * math.prod(_sizes(kernel, "kernel")), 0)


def adaptive_bins(in_size: int, out_size: int) -> list[int]:
    """The window lengths adaptive pooling uses along one axis: output i reads inputs
    floor(i * in / out) .. ceil((i + 1) * in / out) - 1 (PyTorch's adaptive pooling rule)."""
    _positive(in_size, "in_size")
    _positive(out_size, "out_size")
    return [
        -((-(i + 1) * in_size) // out_size) - (i * in_size) // out_size for i in range(out_size)
    ]


def adaptive_pool2d(planes: int, in_hw: Pair, out_hw: Pair) -> Cost:
    """Adaptive average or max pooling over ``planes`` (batch x channels) maps: the sum of its
    window sizes (rule b); for a 1x1 output that is every input element once. Source: the bin
    rule of adaptive_bins."""
    return adaptive_pool(planes, _pair(in_hw, "in_hw"), _pair(out_hw, "out_hw"))


def adaptive_pool(planes: int, in_size: Sequence[int], out_size: Sequence[int]) -> Cost:
    """adaptive_pool2d over any number of axes: the product of each axis's summed windows."""
    in_size, out_size = _sizes(in_size, "in_size"), _sizes(out_size, "out_size")
    if len(in_size) != len(out_size):
        raise ValueError(f"in_size {in_size} and out_size {out_size} have different ranks")
    reads = math.prod(sum(adaptive_bins(i, o)) for i, o in zip(in_size, out_size, strict=True))
    return Cost(_count(planes, "planes") * reads, 0)


def elementwise(elements: int) -> Cost:
    """Activations (ReLU, ReLU6, GELU, SiLU, Hardswish, Hardsigmoid, Sigmoid, Tanh), dropout and
    stochastic depth in eval, residual adds, reshapes: no multiply-accumulate, 0 (rule d). Source:
    documents 000-004 count only the layers with weights."""
    _count(elements, "elements")
    return Cost(0, 0)


def softmax(elements: int) -> Cost:
    """Softmax: one read per element for the normalising sum (rule b); exp and divide are maps.
    Source: the definition softmax(x)_i = exp(x_i) / sum_j exp(x_j)."""
    return Cost(_count(elements, "elements"), 0)


def l2_normalize(elements: int) -> Cost:
    """x / ||x||_2 (Swin V2's cosine attention): one square-accumulate per element for the norm
    (rule b); the division is a map. Source: the definition of the L2 norm."""
    return Cost(_count(elements, "elements"), 0)


def matmul(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> Cost:
    """torch.matmul / bmm / mm of a (..., m, k) by b (..., k, n) with broadcast batch axes:
    batch x m x k x n MACs (rule a). A 1-D operand is a vector (k) as in torch.matmul."""
    a = (1, *a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b = (*b_shape, 1) if len(b_shape) == 1 else tuple(b_shape)
    if a[-1] != b[-2]:
        raise ValueError(f"matmul of {tuple(a_shape)} by {tuple(b_shape)}: inner sizes differ")
    batch_a, batch_b = a[:-2], b[:-2]
    width = max(len(batch_a), len(batch_b))
    batch_a = (1,) * (width - len(batch_a)) + batch_a
    batch_b = (1,) * (width - len(batch_b)) + batch_b
    batch = 1
    for x, y in zip(batch_a, batch_b, strict=True):
        batch *= max(x, y)
    return Cost(batch * a[-2] * a[-1] * b[-1], 0)


def attention(heads_x_batch: int, q_len: int, kv_len: int, qk_dim: int, v_dim: int) -> Cost:
    """Scaled dot-product attention per (batch, head): Q K^T (q_len x kv_len x qk_dim MACs),
    softmax over kv_len (rule b), then the weights times V (q_len x kv_len x v_dim). Source:
    Vaswani et al. 2017, eq. 1."""
    per = q_len * kv_len * (qk_dim + v_dim) + q_len * kv_len
    return Cost(_count(heads_x_batch, "heads_x_batch") * per, 0)


def multi_head_attention(
    batch: int,
    q_len: int,
    kv_len: int,
    embed: int,
    heads: int,
    *,
    kdim: int | None = None,
    vdim: int | None = None,
    bias: bool = True,
) -> Cost:
    """nn.MultiheadAttention: input projections of Q (q_len x embed^2), K (kv_len x kdim x embed)
    and V (kv_len x vdim x embed), attention() over batch x heads with embed / heads per head,
    and the output projection (q_len x embed^2). Source: Vaswani et al. 2017, section 3.2.2;
    PyTorch's MultiheadAttention (kdim and vdim default to embed)."""
    kdim, vdim = kdim or embed, vdim or embed
    if embed % _positive(heads, "heads"):
        raise ValueError(f"heads={heads} must divide embed={embed}")
    proj = 2 * q_len * embed * embed + kv_len * (kdim + vdim) * embed
    weights = embed * (embed + kdim + vdim) + embed * embed
    head_dim = embed // heads
    core = attention(batch * heads, q_len, kv_len, head_dim, head_dim)
    return Cost(batch * proj + core.macs, weights + (4 * embed if bias else 0))


def einsum(equation: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> Cost:
    """A two-operand torch.einsum: one MAC per combination of every index the equation names
    (rule a), i.e. the product of all index sizes, as a plain nested loop would run it (MaxViT's
    attention: 'BGHID,BGHJD->BGHIJ' is a batched Q K^T). Source: the einsum definition."""
    inputs = equation.replace(" ", "").split("->")[0].split(",")
    if len(inputs) != 2 or "." in equation:
        raise ValueError(f"einsum formula covers two operands without '...', got {equation!r}")
    sizes: dict[str, int] = {}
    for labels, shape in ((inputs[0], a_shape), (inputs[1], b_shape)):
        if len(labels) != len(shape):
            raise ValueError(f"einsum {equation!r}: {labels} does not match shape {shape}")
        for label, size in zip(labels, shape, strict=True):
            sizes[label] = max(size, sizes.get(label, 1))
    return Cost(math.prod(sizes.values()), 0)
