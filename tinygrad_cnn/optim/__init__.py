"""Optimizers and learning-rate schedules, as torch.optim."""
from . import lr_scheduler
from .optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, Optimizer, RAdam, RMSprop

__all__ = ["Adadelta", "Adagrad", "Adam", "AdamW", "NAdam", "Optimizer", "RAdam", "RMSprop", "SGD", "lr_scheduler"]
