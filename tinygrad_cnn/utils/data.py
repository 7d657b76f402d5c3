"""`torch.utils.data` under its PyTorch path: the data package's datasets, samplers and DataLoader,
re-exported from `tinygrad_cnn.data` (where they live, with the IDX reader and the embedded digits)."""
from ..data import (BatchSampler, ConcatDataset, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler, Subset,
                    SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate, get_worker_info,
                    random_split)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "RandomSampler", "Sampler", "SequentialSampler",
           "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate",
           "get_worker_info", "random_split"]
