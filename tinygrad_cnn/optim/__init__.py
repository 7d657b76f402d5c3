"""Optimizers and learning-rate schedules, as torch.optim."""
from . import lr_scheduler
from .optimizers import SGD, Adam, AdamW, Optimizer

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "lr_scheduler"]
