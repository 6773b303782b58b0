"""Where `sepbench count` gets a model: a registered name, ``torchvision:NAME`` (any builder of
torchvision.models), ``timm:NAME`` (any timm model, at its pretrained config's input size), both
built without weights on the meta device, or ``package.module:callable``; and the input shape to
count it at (``--input 1x3x224x224``).
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from bench.errors import UserError
from models import registry

TORCHVISION = "torchvision:"
TIMM = "timm:"


@dataclass
class CountSource:
    """A model ready to count: the module, one sample's input shape and the batch."""

    label: str
    model: nn.Module
    input_shape: tuple[int, ...]
    batch: int


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x224x224' -> (1, 3, 224, 224): the full input shape, batch first."""
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) < 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise UserError(
            f"--input must be positive sizes joined by 'x', batch first (e.g. "
            f"1x3x224x224), got {text!r}"
        )
    return tuple(int(p) for p in parts)


@contextlib.contextmanager
def empty_weights() -> Iterator[None]:
    """Every parameter and buffer created inside lands on the meta device (after its module's
    own __init__ code made it on the CPU): a model builds in milliseconds, whatever its size
    (vit_h_14: 632M parameters), and its initialisers cost nothing. Unlike torch.device('meta'),
    builders that compute with tensors on the way (RegNet's widths) keep working."""
    real_param, real_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def register_parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        real_param(self, name, param)
        if param is not None:
            self._parameters[name] = nn.Parameter(param.to("meta"), param.requires_grad)

    def register_buffer(self: nn.Module, name: str, tensor, persistent: bool = True) -> None:
        real_buffer(self, name, tensor, persistent)
        if tensor is not None:
            self._buffers[name] = tensor.to("meta")

    nn.Module.register_parameter = register_parameter
    nn.Module.register_buffer = register_buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = real_param, real_buffer


def torchvision_names() -> list[str]:
    """Every classification builder of torchvision.models."""
    from torchvision import models

    return list(models.list_models(module=models))


def default_weights(name: str):
    """The builder's DEFAULT weights enum entry, or None for a builder without weights."""
    from torchvision import models

    try:
        return models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        return None


def crop_size(weights) -> int:
    """The evaluation crop a weights entry documents (its transforms' crop_size), else 224."""
    keywords = getattr(getattr(weights, "transforms", None), "keywords", {}) or {}
    size = keywords.get("crop_size", 224)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _size_kwargs(builder, h: int, w: int) -> dict:
    """Builder arguments that fix the input size: ViT's position embedding is sized by
    image_size, MaxViT's window partition by input_size (as the weights' builders set them)."""
    module = getattr(builder, "__module__", "")
    if module.endswith("vision_transformer"):
        if h != w:
            raise UserError(f"ViT models need a square input, got {h}x{w}")
        return {"image_size": h}
    if module.endswith("maxvit"):
        return {"input_size": (h, w)}
    return {}


def build_torchvision(name: str, shape: tuple[int, ...] | None = None) -> tuple[nn.Module, tuple]:
    """torchvision.models.<name>(weights=None) on the meta device, and the full input shape
    (default: 1 x 3 x the DEFAULT weights' crop, 224 without weights)."""
    from torchvision import models

    if name not in torchvision_names():
        detection = name in models.list_models()
        raise UserError(
            f"torchvision has no classification model {name!r}"
            + (" (it is not a classification model)" if detection else "")
            + f"; choose from {', '.join(torchvision_names())}"
        )
    if shape is None:
        size = crop_size(default_weights(name))
        shape = (1, 3, size, size)
    builder = models.get_model_builder(name)
    with empty_weights(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet/Inception warn about their initialiser
        model = builder(weights=None, **_size_kwargs(builder, shape[-2], shape[-1]))
    return model, shape


def build_timm(name: str, shape: tuple[int, ...] | None = None) -> tuple[nn.Module, tuple]:
    """timm.create_model(name, pretrained=False) on the meta device (no weights, no hub access)
    and the full input shape: 1 x the pretrained config's input_size unless ``shape`` is given;
    a different size or channel count is passed to the model as img_size / in_chans where its
    builder takes them (ViTs size their position embedding by it)."""
    try:
        import timm
    except ImportError:
        raise UserError("timm:NAME needs timm: pip install 'sepbench[counters]'") from None
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('.')[0]}*")[:8]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"timm has no model {name!r}{hint}")

    def create(**kwargs: object) -> nn.Module:
        with empty_weights(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return timm.create_model(name, pretrained=False, **kwargs)

    model = create()
    default = (1, *model.pretrained_cfg["input_size"])
    if shape is None:
        return model, default
    sized = {}
    if tuple(shape[-2:]) != default[-2:]:
        sized["img_size"] = tuple(shape[-2:])
    if shape[1] != default[1]:
        sized["in_chans"] = shape[1]
    if sized:
        with contextlib.suppress(TypeError):  # a CNN's builder takes no img_size: any size runs
            model = create(**sized)
    return model, tuple(shape)


def build_callable(target: str) -> nn.Module:
    """``package.module:callable`` called with no arguments; it must return an nn.Module."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UserError(f"expected package.module:callable, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UserError(f"cannot import {module_name!r} (from {target!r}): {err}") from None
    func = module
    for part in attr.split("."):
        func = getattr(func, part, None)
        if func is None:
            raise UserError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(func):
        raise UserError(f"{target!r} is not callable")
    try:
        model = func()
    except Exception as err:
        raise UserError(f"calling {target}() failed: {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"{target}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def resolve(spec: str, input_text: str | None = None, batch: int | None = None) -> CountSource:
    """The model a `sepbench count` argument names, with the shape to count it at. ``batch``
    (--batch) applies when --input does not give the shape; given both, they must agree."""
    shape = parse_shape(input_text) if input_text else None
    if batch is not None and batch <= 0:
        raise UserError(f"--batch must be a positive integer, got {batch}")
    if shape is not None and batch not in (None, shape[0]):
        raise UserError(f"--batch {batch} disagrees with --input {input_text} (batch first)")
    if spec.startswith(TORCHVISION):
        if shape is not None and len(shape) != 4:  # an image model: the message, not its error
            raise UserError(f"{spec} takes --input NxCxHxW (e.g. 1x3x224x224), got {input_text!r}")
        model, shape = build_torchvision(spec[len(TORCHVISION) :], shape)
    elif spec.startswith(TIMM):
        model, shape = build_timm(spec[len(TIMM) :], shape)
    elif ":" in spec:
        if shape is None:
            raise UserError(
                f"{spec}: a package.module:callable model needs --input, e.g. --input 1x3x224x224"
            )
        model = build_callable(spec)
    else:
        spec_ = registry.get(spec)
        if shape is not None and (len(shape) != 4 or shape[1] != spec_.input_shape[0]):
            example = "x".join(map(str, (1, *spec_.input_shape)))
            raise UserError(
                f"{spec} takes --input NxCxHxW with C = {spec_.input_shape[0]} (e.g. {example}), "
                f"got {input_text!r}"
            )
        model = spec_.build()
        shape = shape or (batch or 1, *spec_.input_shape)
    if batch is not None and shape[0] != batch:
        shape = (batch, *shape[1:])
    return CountSource(spec, model, tuple(shape[1:]), shape[0])


@contextlib.contextmanager
def with_torch_threads(threads: int) -> Iterator[None]:
    """Torch's intra-op threads fixed for the block (fvcore's traced run), then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:  # a model that failed must not leave the process on one thread
        torch.set_num_threads(before)
