"""Write your own model as an nn.Module and train it with a PyTorch-style loop.

    python examples/train_custom_model.py [--epochs 3] [--limit N]

A small CNN (two convolutions with batch norm, average pooling, dropout) on the embedded digits:
the loop is the one a PyTorch user writes, name for name.
"""
import argparse

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn import nn, optim
from tinygrad_cnn.data import DataLoader, TensorDataset, digits_dataset


class SmallCNN(nn.Module):
    """(N, 1, 28, 28) -> (N, 10) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding="same"), nn.BatchNorm2d(8), nn.ReLU(),
            nn.AvgPool2d(2),                                                     # (N, 8, 14, 14)
            nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),    # (N, 16, 7, 7)
        )
        self.dropout = nn.Dropout(0.25)
        self.classifier = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        return self.classifier(self.dropout(self.features(x).flatten(1)))


def accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with tg.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            total += len(labels)
    return correct / total


def subset(dataset: TensorDataset, limit: int | None) -> TensorDataset:
    return dataset if limit is None else TensorDataset(*(t[:limit] for t in dataset.tensors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images of each split")
    args = parser.parse_args()

    tg.manual_seed(0)
    train = DataLoader(subset(digits_dataset(train=True), args.limit), batch_size=64, shuffle=True, seed=0)
    test = DataLoader(subset(digits_dataset(train=False), args.limit), batch_size=256)
    model = SmallCNN()
    optimizer = optim.Adam(model.parameters(), lr=2e-3)
    print(model)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters")

    for epoch in range(1, args.epochs + 1):
        model.train()
        for images, labels in train:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: last batch loss {loss.item():.3f}, test accuracy {accuracy(model, test):.3f}")


if __name__ == "__main__":
    main()
