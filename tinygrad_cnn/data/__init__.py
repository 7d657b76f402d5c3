"""Data loading as torch.utils.data: datasets, a reproducible DataLoader, the IDX format
(MNIST, Fashion-MNIST, KMNIST) and 5,000 real MNIST digits embedded in the package.

    from tinygrad_cnn.data import DataLoader, digits_dataset
    loader = DataLoader(digits_dataset(train=True), batch_size=64, shuffle=True, seed=0)
    for images, labels in loader:   # (64, 1, 28, 28) float32, (64,) int64
        ...
"""
from .dataset import Dataset, TensorDataset
from .digits import digits_dataset, load_digits
from .idx import load_idx_dataset, read_idx, write_idx
from .loader import DataLoader

__all__ = ["DataLoader", "Dataset", "TensorDataset", "digits_dataset", "load_digits", "load_idx_dataset",
           "read_idx", "write_idx"]
