"""Convergence summaries of MCMC draws, for result files: ESS and split R-hat."""

from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp

from gmjax.metrics.mcmc import effective_sample_size, split_rhat


def effective_sample_size_summary(samples: jax.Array) -> Dict[str, float]:
    """ESS and split R-hat of [chains, draws, d] draws, summarised over dimensions.

    Returns:
        ``ess_min`` and ``ess_mean`` of the per-dimension (split, multi-chain)
        effective sample size of `gmjax.metrics.mcmc.effective_sample_size`,
        and ``rhat_max``, the largest per-dimension split R-hat of
        `gmjax.metrics.mcmc.split_rhat`.
    """
    ess = effective_sample_size(samples)
    rhat = split_rhat(samples)
    return dict(ess_min=float(jnp.min(ess)), ess_mean=float(jnp.mean(ess)),
                rhat_max=float(jnp.max(rhat)))
