"""Pure loss functions: ``loss(params, batch, key) -> (scalar, metrics)``."""

from gmjax.objectives.classification import cross_entropy_loss
from gmjax.objectives.diffusion import (ddpm_loss, ddpm_vlb, ddpm_vlb_loss, dsm_loss, ncsn_loss,
                                        score_sde_loss, sliced_score_matching_loss)
from gmjax.objectives.elbo import (BASELINES, GRADIENT_ESTIMATORS, autoencoder_loss, elbo_loss,
                                   iwae_loss, variational_loss)
from gmjax.objectives.likelihood import bits_per_dim_loss, dequantized_log_prob, nll_loss

__all__ = ["cross_entropy_loss", "nll_loss", "bits_per_dim_loss", "dequantized_log_prob",
           "BASELINES", "GRADIENT_ESTIMATORS", "autoencoder_loss", "elbo_loss", "iwae_loss",
           "variational_loss", "ddpm_loss", "ddpm_vlb", "ddpm_vlb_loss", "dsm_loss", "ncsn_loss",
           "score_sde_loss", "sliced_score_matching_loss"]
from gmjax.objectives.flow_matching import (FM_COUPLINGS, FM_PATHS, flow_matching_log_prob,
                                            flow_matching_loss)

__all__ += ["FM_COUPLINGS", "FM_PATHS", "flow_matching_log_prob", "flow_matching_loss"]
