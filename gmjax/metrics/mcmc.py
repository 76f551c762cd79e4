"""MCMC diagnostics for draws laid out as [chains, draws, dim]: ESS and split R-hat.

Both wrap `blackjax.diagnostics`. Its functions take an array with a chain
axis and a draw ("sample") axis, given by `chain_axis` (default 0) and
`sample_axis` (default 1); every other axis is an independent scalar quantity.
So our [chains, draws, dim] layout is passed as is, with chain_axis=0 and
sample_axis=1, and the result has shape [dim]. BlackJAX ends with a bare
`squeeze()`, which would also drop a dim of size 1; the wrappers reshape back
to [dim].
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
from blackjax import diagnostics

from gmjax.metrics.checks import as_float


def split_chains(samples: chex.Array) -> chex.Array:
    """Splits every chain into its first and second half: [c, t, d] -> [2c, t // 2, d].

    With an odd number of draws the last draw is dropped. Splitting lets
    R-hat see a chain that drifts (its halves disagree) as well as chains
    that disagree with each other (Gelman et al., 2013, "Bayesian Data
    Analysis", 3rd ed., sec. 11.4).
    """
    chex.assert_rank(samples, 3)
    half = samples.shape[1] // 2
    return jnp.concatenate([samples[:, :half], samples[:, half : 2 * half]], axis=0)


@jax.jit
def split_rhat(samples: chex.Array) -> chex.Array:
    """Split R-hat (potential scale reduction) per dimension.

    On the split chains (m chains of n draws each after splitting), with B the
    between-chain variance n Var_j(mean_j) and W the mean within-chain variance,

        R_hat = sqrt( ((n - 1)/n W + B/n) / W )

    (Gelman and Rubin, 1992; Gelman et al., 2013, sec. 11.4), computed by
    `blackjax.diagnostics.potential_scale_reduction`. It is near 1 when all
    chains sample the same distribution and well above 1 when they do not.

    Args:
        samples: [chains, draws, dim], draws >= 4.

    Returns:
        [dim] split R-hat.
    """
    samples = as_float(samples)
    chex.assert_rank(samples, 3)
    if samples.shape[1] < 4:
        raise ValueError(f"split R-hat needs at least 4 draws per chain, got {samples.shape[1]}")
    rhat = diagnostics.potential_scale_reduction(split_chains(samples), chain_axis=0, sample_axis=1)
    return jnp.reshape(rhat, (samples.shape[2],))


@functools.partial(jax.jit, static_argnames=("split",))
def effective_sample_size(samples: chex.Array, *, split: bool = True) -> chex.Array:
    """Multi-chain effective sample size per dimension.

        ESS = M N / tau,   tau = -1 + 2 sum_{t=0}^{K} rho_t

    with M chains of N draws, rho_t the autocorrelation at lag t combined
    across chains, and the sum truncated by Geyer's initial monotone sequence
    (Geyer, 1992; Gelman et al., 2013, sec. 11.5), computed by
    `blackjax.diagnostics.effective_sample_size`. Independent draws give about
    M N. By default chains are split in half first, as in Stan, so a drifting
    chain lowers the ESS.

    Args:
        samples: [chains, draws, dim], draws >= 2 (>= 4 with split).
        split: compute on the split chains.

    Returns:
        [dim] effective sample size, counted over all chains.
    """
    samples = as_float(samples)
    chex.assert_rank(samples, 3)
    if split:
        if samples.shape[1] < 4:
            raise ValueError(f"split ESS needs at least 4 draws per chain, got {samples.shape[1]}")
        samples = split_chains(samples)
    ess = diagnostics.effective_sample_size(samples, chain_axis=0, sample_axis=1)
    return jnp.reshape(ess, (samples.shape[2],))
