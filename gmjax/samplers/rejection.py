"""Rejection sampling with a flow as the proposal (TemperFlow+Rej., Qiu and Wang, 2024).

Accept a proposal X ~ q with probability f(X) / (M q(X)); the accepted points
are exact draws of p ∝ f when M bounds f / q. A trained TemperFlow flow is
close enough to p that M can be estimated from the proposals themselves.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
SampleFn = Callable[[PyTree, jax.Array, int], Tuple[jax.Array, jax.Array]]


class RejectionError(RuntimeError):
    """Rejection sampling accepted too few proposals: the flow is a poor proposal."""


def rejection_sample(sample_and_log_prob: SampleFn, params: PyTree,
                     target_log_prob: Callable[[jax.Array], jax.Array], key: jax.Array, n: int,
                     *, log_bound: Optional[float] = None, bound_draws: int = 100_000,
                     batch: int = 10_000, min_acceptance: float = 0.01
                     ) -> Tuple[jax.Array, Dict[str, float]]:
    """Rejection sampling from ``target_log_prob`` with the flow as proposal (TemperFlow+Rej.).

    The proposal is ``sample_and_log_prob(params, key, m) -> (x [m, d], log q(x))``
    (``params`` are passed as a jit argument, not baked in as constants, which
    XLA would spend minutes folding). Accept a proposal X ~ q with probability
    f(X) / (M q(X)), where
    ``log M = log_bound`` should bound log f - log q. When not given it is
    estimated as the maximum of log f - log q over ``bound_draws`` proposals,
    so the acceptance test is exact up to the rare points where the flow's
    density ratio exceeds that maximum (their acceptance probability is
    clipped at 1). Returns ``n`` accepted points and ``{"acceptance_rate",
    "log_bound"}``; raises ``RejectionError`` once ``n / min_acceptance``
    proposals have not produced ``n`` points.
    """
    key, bound_key = jax.random.split(key)
    if log_bound is None:  # in batches: a big target (a GAN's nets) must not see 10^5 at once
        log_bound = max(
            float(jnp.max(_log_ratio(sample_and_log_prob, target_log_prob, params,
                                     jax.random.fold_in(bound_key, i), batch)[1]))
            for i in range(max(1, bound_draws // batch)))

    kept, proposed, accepted = [], 0, 0
    max_rounds = max(1, math.ceil(n / min_acceptance / batch))
    for round_ in range(max_rounds):
        x, ok = jax.device_get(_propose(sample_and_log_prob, target_log_prob, params,
                                        jax.random.fold_in(key, round_), batch,
                                        jnp.float32(log_bound)))
        kept.append(x[ok])
        proposed += batch
        accepted += int(ok.sum())
        if accepted >= n:
            break
    else:
        raise RejectionError(f"rejection sampling accepted {accepted} of {proposed} proposals "
                             f"(below the minimum acceptance rate {min_acceptance}); the flow is "
                             f"a poor proposal for this target: train it longer, or lower "
                             f"the minimum acceptance rate")
    return jnp.asarray(np.concatenate(kept)[:n]), {"acceptance_rate": accepted / proposed,
                                                   "log_bound": log_bound}


# The proposal's functions are static arguments, so a second call with the same
# (bound) methods reuses the compilation: rejection draws are timed in Table S1.
@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _log_ratio(sample_and_log_prob: SampleFn, target_log_prob: Callable, params: PyTree,
               key: jax.Array, batch: int) -> Tuple[jax.Array, jax.Array]:
    """A batch of proposals and their log f - log q, [batch, d], [batch]."""
    x, log_q = sample_and_log_prob(params, key, batch)
    return x, target_log_prob(x) - log_q


@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _propose(sample_and_log_prob: SampleFn, target_log_prob: Callable, params: PyTree,
             key: jax.Array, batch: int, log_bound: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """A batch of proposals and whether each is accepted."""
    k1, k2 = jax.random.split(key)
    x, log_r = _log_ratio(sample_and_log_prob, target_log_prob, params, k1, batch)
    return x, jnp.log(jax.random.uniform(k2, (batch,))) < log_r - log_bound
