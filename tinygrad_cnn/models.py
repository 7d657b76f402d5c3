"""Ready-made models, each named as the same model written with torch.nn (state_dict keys and shapes).

`MODELS` maps the command line's names to the classes; each class's `input_shape` is the (C, H, W) of
the images it takes and `title` its name in messages.
"""
from __future__ import annotations

from typing import ClassVar

from . import nn
from .tensor import Tensor


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) for 28x28 digits, with ReLU and max pooling:

        (N, 1, 28, 28) -conv 6@5x5 pad 2-> (N, 6, 28, 28) -pool-> (N, 6, 14, 14)
        -conv 16@5x5-> (N, 16, 10, 10) -pool-> (N, 16, 5, 5) -flatten-> 400 -> 120 -> 84 -> 10 logits

    61,706 parameters, named as in the same model written with torch.nn.
    """

    input_shape: ClassVar[tuple[int, int, int]] = (1, 28, 28)
    title: ClassVar[str] = "LeNet-5"

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


class VGG(nn.Module):
    """A small VGG-style net (Simonyan and Zisserman, 2015) for 32x32 colour images: two blocks of two
    3x3 convolutions (padding 1) with ReLU and a 2x2 max pool, then two fully connected layers:

        (N, 3, 32, 32) -conv 32, conv 32, pool-> (N, 32, 16, 16) -conv 64, conv 64, pool-> (N, 64, 8, 8)
        -flatten-> 4096 -> 256 -> 10 logits

    1,116,970 parameters, in `features` and `classifier` as torchvision's VGG names them.
    """

    input_shape: ClassVar[tuple[int, int, int]] = (3, 32, 32)
    title: ClassVar[str] = "VGG"

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for channels in (32, 64):
            for _ in range(2):
                layers += [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1), nn.ReLU()]
                in_channels = channels
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Linear(256, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.features(x)))


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions without bias, each followed by BatchNorm2d, plus a shortcut:
    ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x)). The shortcut is the identity, or where the shape
    changes (`stride` > 1 or other channels) a 1x1 strided convolution and BatchNorm2d (`downsample`, He et
    al.'s option B), as in torchvision."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False),
                                            nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class ResNet20(nn.Module):
    """ResNet-20 (He et al., 2016, the CIFAR-10 variant) for 32x32 colour images: a 3x3 convolution to 16
    channels, three stages of 3 basic blocks with 16, 32 and 64 channels (the first block of stages 2 and 3
    with stride 2), a global average pool and a linear layer:

        (N, 3, 32, 32) -conv1, bn1-> (N, 16, 32, 32) -layer1-> (N, 16, 32, 32) -layer2-> (N, 32, 16, 16)
        -layer3-> (N, 64, 8, 8) -average-> 64 -> 10 logits

    272,474 parameters, named as torchvision's ResNet names them (conv1, bn1, layer1.0.conv1, ..., fc).
    Convolutions start from He et al.'s normal initialisation (kaiming_normal_, fan_out).
    """

    input_shape: ClassVar[tuple[int, int, int]] = (3, 32, 32)
    title: ClassVar[str] = "ResNet-20"

    def __init__(self, num_classes: int = 10, blocks_per_stage: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._stage(16, 16, blocks_per_stage, stride=1)
        self.layer2 = self._stage(16, 32, blocks_per_stage, stride=2)
        self.layer3 = self._stage(32, 64, blocks_per_stage, stride=2)
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _stage(in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(in_channels, channels, stride),
                             *(BasicBlock(channels, channels) for _ in range(blocks - 1)))

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(x.mean((2, 3)))  # global average pool


MODELS: dict[str, type[LeNet5 | VGG | ResNet20]] = {"lenet5": LeNet5, "vgg": VGG, "resnet20": ResNet20}
