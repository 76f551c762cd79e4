"""Pure loss functions: ``loss(params, batch, key) -> (scalar, metrics)``."""

from gmjax.objectives.classification import cross_entropy_loss
from gmjax.objectives.likelihood import bits_per_dim_loss, dequantized_log_prob, nll_loss

__all__ = ["cross_entropy_loss", "nll_loss", "bits_per_dim_loss", "dequantized_log_prob"]
