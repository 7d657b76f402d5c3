"""Data loading as torch.utils.data (also importable as `tinygrad_cnn.utils.data`): datasets,
samplers, a reproducible DataLoader, the IDX format (MNIST, Fashion-MNIST, KMNIST) and 5,000 real
MNIST digits embedded in the package.

    from tinygrad_cnn.data import DataLoader, digits_dataset
    loader = DataLoader(digits_dataset(train=True), batch_size=64, shuffle=True, seed=0)
    for images, labels in loader:   # (64, 1, 28, 28) float32, (64,) int64
        ...
"""
from .cifar import load_cifar10_dataset
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .digits import digits_dataset, load_digits
from .idx import load_idx_dataset, read_idx, write_idx
from .loader import DataLoader, default_collate
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                      WeightedRandomSampler)
from .worker import get_worker_info

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "RandomSampler", "Sampler", "SequentialSampler",
           "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate",
           "digits_dataset", "get_worker_info", "load_digits", "load_idx_dataset", "random_split", "read_idx",
           "write_idx"]
