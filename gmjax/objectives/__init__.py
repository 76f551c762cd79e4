"""Pure loss functions: ``loss(params, batch, key) -> (scalar, metrics)``."""

from gmjax.objectives.likelihood import nll_loss

__all__ = ["nll_loss"]
