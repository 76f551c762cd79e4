"""Permutation two-sample test with the unbiased MMD^2 statistic.

Under H0: P = Q the pooled sample z = [x; y] is exchangeable, so relabelling
it at random and recomputing the statistic draws from its null distribution
(Gretton et al., 2012, "A kernel two-sample test", JMLR, sec. 5). With B
random relabellings the p-value is

    p = (1 + #{b : MMD_b^2 >= MMD_obs^2}) / (1 + B),

which is exactly valid (P(p <= alpha) <= alpha) because the observed labelling
counts as one of the B + 1 equally likely ones (Phipson and Smyth, 2010,
"Permutation p-values should never be zero").

Every relabelling needs the same kernel matrix K of the pooled sample, only
summed over different index sets. With a_b the 0/1 indicator of the rows that
relabelling b assigns to x, and K with its diagonal set to zero,

    S_xx = a^T K a,   S_xy = a^T K 1 - a^T K a,   S_yy = 1^T K 1 - 2 a^T K 1 + a^T K a,

so all B + 1 statistics come from one pass over row blocks of K times the
[n + m, B + 1] indicator matrix; K itself is never held whole. The cost is
(n + m)^2 kernel values plus (n + m)^2 (B + 1) multiply-adds.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from gmjax.metrics.checks import as_float, check_samples
from gmjax.metrics.kernels import median_heuristic, rbf_kernel
from gmjax.metrics.pairwise import default_block_size, squared_distances


class PermutationTestResult(NamedTuple):
    """Outcome of `mmd_permutation_test`."""

    statistic: chex.Array  # [] observed unbiased MMD^2
    p_value: chex.Array  # [] (1 + #{null >= observed}) / (1 + num_permutations)
    reject: chex.Array  # [] bool, p_value < level


@functools.partial(jax.jit, static_argnames=("num_permutations", "block_size"))
def mmd_permutation_test(
    x: chex.Array,
    y: chex.Array,
    key: chex.PRNGKey,
    *,
    num_permutations: int = 500,
    bandwidth: chex.Numeric | None = None,
    level: chex.Numeric = 0.05,
    block_size: int | None = None,
) -> PermutationTestResult:
    """Tests H0: x and y come from one distribution, with the unbiased RBF MMD^2.

    Args:
        x: [n, d] sample, n >= 2.
        y: [m, d] sample, m >= 2.
        key: PRNG key for the relabellings; the same key gives the same p-value.
        num_permutations: number B of random relabellings.
        bandwidth: RBF bandwidth sigma; by default `median_heuristic(x, y)`,
            which depends on the pooled sample only and so is the same under
            every relabelling.
        level: significance level alpha.
        block_size: rows of the pooled sample per block (default about
            2^21 / (n + m)); each block holds [block, n + m] kernel values and a
            [block, B + 1] product.

    Returns:
        PermutationTestResult(statistic, p_value, reject).
    """
    x, y = as_float(x), as_float(y)
    check_samples(x, y, min_rows=2)
    n, m = x.shape[0], y.shape[0]
    total = n + m
    if bandwidth is None:
        bandwidth = median_heuristic(x, y)
    kernel = rbf_kernel(jnp.reshape(jnp.asarray(bandwidth, x.dtype), (1,)))
    z = jnp.concatenate([x, y], axis=0)  # [N, d], N = n + m

    # Column 0 is the observed labelling; columns 1..B are random relabellings.
    identity = jnp.broadcast_to(jnp.arange(total), (num_permutations, total))  # [B, N]
    perms = jax.random.permutation(key, identity, axis=1, independent=True)  # [B, N]
    # Relabelling b sends rows perms[b, :n] of z to x.
    in_x = jax.vmap(lambda perm: jnp.zeros((total,), bool).at[perm[:n]].set(True))(perms)
    observed = (jnp.arange(total) < n)[None, :]  # [1, N]
    a = jnp.concatenate([observed, in_x], axis=0).T.astype(z.dtype)  # [N, B + 1]

    block = default_block_size(total, total) if block_size is None else int(block_size)
    num_blocks = -(-total // block)
    padded = num_blocks * block
    z_blocks = jnp.pad(z, ((0, padded - total), (0, 0))).reshape(num_blocks, block, -1)
    a_blocks = jnp.pad(a, ((0, padded - total), (0, 0))).reshape(num_blocks, block, -1)
    starts = jnp.arange(num_blocks) * block
    cols = jnp.arange(total)

    def block_sums(args):
        z_block, a_block, start = args  # [block, d], [block, B + 1], []
        rows = start + jnp.arange(block)  # [block]
        keep = (rows < total)[:, None] & (rows[:, None] != cols[None, :])
        k_block = jnp.where(keep, kernel(squared_distances(z_block, z)), 0.0)  # [block, N]
        ka = jnp.matmul(k_block, a, precision=jax.lax.Precision.HIGHEST)  # [block, B + 1]
        row_sums = jnp.sum(k_block, axis=1)  # [block]
        a_k_a = jnp.sum(a_block * ka, axis=0)  # [B + 1]
        a_k_1 = jnp.sum(a_block * row_sums[:, None], axis=0)  # [B + 1]
        return a_k_a, a_k_1, jnp.sum(row_sums)

    a_k_a, a_k_1, one_k_1 = jax.lax.map(block_sums, (z_blocks, a_blocks, starts))
    a_k_a, a_k_1, one_k_1 = a_k_a.sum(0), a_k_1.sum(0), one_k_1.sum()
    s_xx = a_k_a
    s_xy = a_k_1 - a_k_a
    s_yy = one_k_1 - 2.0 * a_k_1 + a_k_a
    mmd2 = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)  # [B + 1]

    statistic = mmd2[0]
    exceed = jnp.sum(mmd2[1:] >= statistic)
    p_value = (1.0 + exceed) / (1.0 + num_permutations)
    return PermutationTestResult(statistic, p_value, p_value < level)
