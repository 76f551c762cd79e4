"""Two-sample distances adjusted for their own sampling noise, over replicates."""

from __future__ import annotations

import math
from typing import Dict

import jax.numpy as jnp
import numpy as np

from gmjax.metrics.transport import wasserstein_exact
from gmjax.metrics.two_sample import adjusted_mmd


def adjusted_distances(samples: np.ndarray, exact: np.ndarray, replicates: int, size: int,
                       rng: np.random.Generator) -> Dict[str, float]:
    """Adjusted W1 and MMD^2 between a sampler's points and exact draws, over replicates.

    Replicate r compares ``size`` points resampled from ``samples`` with
    ``size`` exact points Y1 and subtracts the same distance between two
    independent exact samples Y2 and Y1, so 0 is as good as exact sampling:
    ``adjusted_w1 = W1(x, Y1) - W1(Y2, Y1)`` (exact W1 by assignment) and
    ``adjusted_mmd = MMD^2(x, Y1) - MMD^2(Y2, Y1)`` (unbiased). ``exact``
    holds ``2 * size * replicates`` points. Returns the means and standard
    errors (``*_se``).
    """
    if len(exact) < 2 * size * replicates:
        raise ValueError(f"need {2 * size * replicates} exact points for {replicates} "
                         f"replicates of {size}, got {len(exact)}")
    w1, mmd = [], []
    for r in range(replicates):
        x = samples[rng.choice(len(samples), size, replace=len(samples) < size)]
        y1 = exact[2 * r * size:(2 * r + 1) * size]
        y2 = exact[(2 * r + 1) * size:(2 * r + 2) * size]
        w1.append(wasserstein_exact(x, y1) - wasserstein_exact(y2, y1))
        mmd.append(float(adjusted_mmd(jnp.asarray(x), jnp.asarray(y1), jnp.asarray(y2))))
    out: Dict[str, float] = {}
    for name, values in (("adjusted_w1", w1), ("adjusted_mmd", mmd)):
        out[name] = float(np.mean(values))
        out[name + "_se"] = (float(np.std(values, ddof=1) / math.sqrt(replicates))
                             if replicates > 1 else 0.0)
    return out
