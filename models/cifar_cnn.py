"""Document 001's CIFAR-10 CNN and its depthwise-separable twin, layer for layer as its two
diagrams list them. Dropout rates are not stated there: 0.05 after the first pooling and 0.1 in
the classifier (chosen; they change no count)."""

from __future__ import annotations

from torch import Tensor, nn

from models.blocks import DepthwiseSeparable


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    # nn.Conv2d(cin, cout, 3, padding=1) as document 001 writes it: bias on (its default).
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _classifier(classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(256 * 8 * 8, 1024),  # FC(16384 -> 1024): two 2x2 max-pools take 32x32 to 8x8
        nn.ReLU(inplace=True),
        nn.Linear(1024, 512),
        nn.ReLU(inplace=True),
        nn.Dropout(0.1),
        nn.Linear(512, classes),
    )


class CifarCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(3, 32),
            *_conv_bn_relu(32, 64),
            *_conv_bn_relu(64, 128),
            nn.Conv2d(128, 128, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout2d(0.05),
            *_conv_bn_relu(128, 256),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = _classifier(classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class CifarCNNDepthwise(nn.Module):
    """The twin: the four Conv-BN-ReLU stages become document 001's conv_dw blocks
    (dw 3x3 -> BN -> ReLU -> pw 1x1 -> BN -> ReLU); the two plain convs and the classifier stay."""

    def __init__(self, classes: int = 10, backend: str = "torch") -> None:
        super().__init__()

        def dw(cin: int, cout: int) -> DepthwiseSeparable:
            return DepthwiseSeparable(cin, cout, 3, activation="relu", backend=backend)

        self.features = nn.Sequential(
            dw(3, 32),
            dw(32, 64),
            dw(64, 128),
            nn.Conv2d(128, 128, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout2d(0.05),
            dw(128, 256),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = _classifier(classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
