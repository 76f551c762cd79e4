"""Flax linen networks shared by the model families."""

from gmjax.nets.lenet import LeNet
from gmjax.nets.mlp import MLP

__all__ = ["LeNet", "MLP"]
