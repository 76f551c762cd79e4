"""Flax linen networks shared by the model families."""

from gmjax.nets.conv import CouplingConvNet
from gmjax.nets.lenet import LeNet
from gmjax.nets.made import MADE
from gmjax.nets.mlp import MLP

__all__ = ["CouplingConvNet", "LeNet", "MADE", "MLP"]
