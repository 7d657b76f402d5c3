"""Ready-made models."""
from __future__ import annotations

from . import nn
from .tensor import Tensor


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) for 28x28 digits, with ReLU and max pooling:

        (N, 1, 28, 28) -conv 6@5x5 pad 2-> (N, 6, 28, 28) -pool-> (N, 6, 14, 14)
        -conv 16@5x5-> (N, 16, 10, 10) -pool-> (N, 16, 5, 5) -flatten-> 400 -> 120 -> 84 -> 10 logits

    61,706 parameters, named as in the same model written with torch.nn.
    """

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
