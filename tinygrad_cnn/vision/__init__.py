"""The torchvision pieces a CNN script reaches for, on NumPy arrays (no PIL, no torchvision):

    from tinygrad_cnn.vision import datasets, transforms
    train = datasets.MNIST("data", train=True, transform=transforms.Compose(
        [transforms.RandomCrop(28, padding=2), transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]))

`datasets` reads MNIST, Fashion-MNIST, KMNIST and CIFAR-10 from files on disk; `transforms` holds the
usual augmentations, drawing from the generator `tinygrad_cnn.manual_seed` seeds.
"""
from . import datasets, transforms

__all__ = ["datasets", "transforms"]
