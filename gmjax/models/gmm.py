"""Gaussian mixtures fitted by expectation-maximization: the classical explicit-density baseline.

A mixture p(x) = sum_k pi_k N(x; mu_k, Sigma_k) is fitted by EM (Dempster,
Laird and Rubin, 1977):

  E-step:  r_ik = pi_k N(x_i; mu_k, Sigma_k) / sum_j pi_j N(x_i; mu_j, Sigma_j)
  M-step:  N_k = sum_i r_ik,  pi_k = N_k / n,  mu_k = sum_i r_ik x_i / N_k,
           Sigma_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / N_k + reg * I

Each EM iteration never decreases the (regularized) log-likelihood. The whole
fit is one jitted ``lax.scan``; the initial means are k-means++ seeds
(Arthur and Vassilvitskii, 2007) drawn with an explicit key.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Tuple

import chex
import jax
import jax.numpy as jnp


class GaussianMixture(NamedTuple):
    log_weights: chex.Array  # [k]
    means: chex.Array        # [k, d]
    cholesky: chex.Array     # [k, d, d] lower-triangular factors of the covariances


def _component_log_probs(mixture: GaussianMixture, x: chex.Array) -> chex.Array:
    """log pi_k + log N(x_i; mu_k, Sigma_k), shape [n, k]."""
    d = x.shape[-1]
    diff = x[:, None, :] - mixture.means[None]                          # [n, k, d]
    # L_k^{-1} (x_i - mu_k): invert the k small factors once, then one batched product.
    eye = jnp.broadcast_to(jnp.eye(d, dtype=x.dtype), mixture.cholesky.shape)
    inv_chol = jax.scipy.linalg.solve_triangular(mixture.cholesky, eye, lower=True)  # [k, d, d]
    solved = jnp.einsum("kij,nkj->nki", inv_chol, diff)                 # [n, k, d]
    log_det = jnp.sum(jnp.log(jnp.diagonal(mixture.cholesky, axis1=-2, axis2=-1)), -1)  # [k]
    log_normal = -0.5 * jnp.sum(solved ** 2, -1) - log_det - 0.5 * d * jnp.log(2 * jnp.pi)
    return mixture.log_weights + log_normal


def log_prob(mixture: GaussianMixture, x: chex.Array) -> chex.Array:
    """log p(x_i) for every row of x [n, d] -> [n]."""
    return jax.nn.logsumexp(_component_log_probs(mixture, x), axis=-1)


def sample(mixture: GaussianMixture, key: chex.PRNGKey, n: int) -> chex.Array:
    """n draws [n, d]: a component from the weights, then its Gaussian."""
    k_component, k_noise = jax.random.split(key)
    component = jax.random.categorical(k_component, mixture.log_weights, shape=(n,))
    noise = jax.random.normal(k_noise, (n, mixture.means.shape[-1]))
    return mixture.means[component] + jnp.einsum("nij,nj->ni", mixture.cholesky[component], noise)


def _kmeans_plus_plus(key: chex.PRNGKey, x: chex.Array, k: int) -> chex.Array:
    """k-means++ seeding: each next centre drawn with probability ~ squared distance."""
    first = x[jax.random.randint(key, (), 0, x.shape[0])]
    centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)

    def add(i, state):
        centres, key = state
        key, sub = jax.random.split(key)
        sq = jnp.sum((x[:, None, :] - centres[None]) ** 2, -1)           # [n, k]
        sq = jnp.where(jnp.arange(k)[None] < i, sq, jnp.inf).min(-1)     # to chosen centres
        choice = jax.random.categorical(sub, jnp.log(sq + 1e-30))
        return centres.at[i].set(x[choice]), key

    centres, _ = jax.lax.fori_loop(1, k, add, (centres, jax.random.fold_in(key, 1)))
    return centres


def _m_step(x: chex.Array, resp: chex.Array, reg: float) -> GaussianMixture:
    n, d = x.shape
    counts = resp.sum(0) + 1e-10                                         # [k]
    means = resp.T @ x / counts[:, None]                                 # [k, d]
    diff = x[:, None, :] - means[None]                                   # [n, k, d]
    cov = jnp.einsum("nki,nkj->kij", resp[:, :, None] * diff, diff) / counts[:, None, None]
    cov = cov + reg * jnp.eye(d)
    return GaussianMixture(jnp.log(counts / n), means, jnp.linalg.cholesky(cov))


@functools.partial(jax.jit, static_argnames=("num_components", "num_iters"))
def fit_gmm(key: chex.PRNGKey, x: chex.Array, num_components: int, num_iters: int = 200,
            reg: float = 1e-6) -> Tuple[GaussianMixture, chex.Array]:
    """Fits a full-covariance mixture to x [n, d] by EM.

    Returns the mixture and the mean training log-likelihood after each
    iteration, ``[num_iters]`` (non-decreasing up to float rounding).
    """
    chex.assert_rank(x, 2)
    n, d = x.shape
    centres = _kmeans_plus_plus(key, x, num_components)
    # Start from hard assignments to the nearest seed.
    nearest = jnp.argmin(jnp.sum((x[:, None, :] - centres[None]) ** 2, -1), -1)
    mixture = _m_step(x, jax.nn.one_hot(nearest, num_components, dtype=x.dtype),
                      reg + 1e-3 * jnp.var(x))

    def em(mixture, _):
        log_joint = _component_log_probs(mixture, x)                     # [n, k]
        log_norm = jax.nn.logsumexp(log_joint, -1, keepdims=True)
        mixture = _m_step(x, jnp.exp(log_joint - log_norm), reg)
        return mixture, jnp.mean(log_prob(mixture, x))

    return jax.lax.scan(em, mixture, None, length=num_iters)
