"""Flax linen networks shared by the model families."""

from gmjax.nets.mlp import MLP

__all__ = ["MLP"]
