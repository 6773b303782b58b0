"""Model name -> constructor and input shape. The CLI, the counters, the suites and training
look models up here; constructors are imported lazily."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    name: str
    target: str  # "module:callable" returning an nn.Module
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample
    document: str  # which source document describes it
    description: str
    pair: str | None = None  # the standard model a depthwise variant is compared with
    kwargs: tuple[tuple[str, Any], ...] = ()  # fixed constructor arguments

    def build(self, **kwargs: Any) -> nn.Module:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)(**{**dict(self.kwargs), **kwargs})


_SPECS = [
    ModelSpec(
        "lenet5_paper",
        "models.lenet5:LeNet5Paper",
        (1, 32, 32),
        "002/003 + LeCun 1998",
        "paper-faithful LeNet-5: sparse C3, trainable subsampling, scaled tanh, RBF output",
    ),
    ModelSpec(
        "lenet5_paper_dw",
        "models.lenet5:LeNet5Paper",
        (1, 32, 32),
        "002",
        "paper LeNet-5 with its convolutions made depthwise-separable (document 002)",
        pair="lenet5_paper",
        kwargs=(("separable", True),),
    ),
    ModelSpec(
        "lenet5",
        "models.lenet5:LeNet5",
        (1, 32, 32),
        "003/004",
        "modern LeNet-5: ReLU, average pooling, linear output",
    ),
    ModelSpec(
        "lenet5_dw",
        "models.lenet5:LeNet5Depthwise",
        (1, 32, 32),
        "000",
        "LeNet-5 with depthwise-separable convolutions (document 000)",
        pair="lenet5",
    ),
    ModelSpec(
        "cifar_cnn",
        "models.cifar_cnn:CifarCNN",
        (3, 32, 32),
        "001",
        "document 001's standard CIFAR-10 CNN",
    ),
    ModelSpec(
        "cifar_cnn_dw",
        "models.cifar_cnn:CifarCNNDepthwise",
        (3, 32, 32),
        "001",
        "document 001's depthwise-separable twin",
        pair="cifar_cnn",
    ),
    ModelSpec(
        "mobilenet_v2",
        "models.mobilenet:mobilenet_v2",
        (3, 224, 224),
        "Sandler 2018",
        "torchvision MobileNetV2, no weights: the real-world workload",
    ),
]
REGISTRY: dict[str, ModelSpec] = {s.name: s for s in _SPECS}


class UnknownModelError(KeyError):
    """A model name the registry does not hold (the CLI turns it into exit status 2)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; registered models: {', '.join(REGISTRY)}"
        ) from None


def build(name: str, **kwargs: Any) -> nn.Module:
    return get(name).build(**kwargs)
