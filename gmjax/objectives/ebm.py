"""Energy-based models trained by contrastive divergence with short-run Langevin negatives.

An energy ``E_theta: R^d -> R`` defines ``p_theta(x) = exp(-E_theta(x)) / Z(theta)``.
The gradient of the negative log-likelihood is a difference of two expectations
(Hinton, 2002, "Training products of experts by minimizing contrastive
divergence"; LeCun et al., 2006, "A tutorial on energy-based learning"):

    grad_theta E_data[-log p_theta(x)]
        = E_data[grad_theta E_theta(x)] - E_{p_theta}[grad_theta E_theta(x~)],

whose second term is estimated with negatives ``x~`` drawn by Langevin
dynamics on ``E_theta``. This module holds the pieces as pure functions:

* ``contrastive_divergence_loss``: the surrogate whose gradient is that
  difference, with the negatives held fixed (stop-gradient), plus Du and
  Mordatch's energy-magnitude regularizer ``alpha (E(x)^2 + E(x~)^2)``;
* ``langevin_negatives``: K steps of (short-run) Langevin dynamics
  ``x <- x - (eps / 2) grad_x E(x) + sigma z`` (Du and Mordatch, 2019,
  "Implicit generation and modeling with energy-based models", Eq. 3;
  Nijkamp et al., 2019, "Learning non-convergent non-persistent short-run
  MCMC toward energy-based model");
* the replay buffer of Du and Mordatch (2019, Sec. 3.1): chains start from
  past negatives, or with probability ``reinit_prob`` (0.05 there) from
  noise, and their end points replace the slots they came from (the
  bookkeeping of Grathwohl et al., 2020, "Your classifier is secretly an
  energy based model", Algorithm 1): ``replay_buffer_init``,
  ``replay_buffer_sample``, ``replay_buffer_push``.

The Langevin step is written here rather than taken from
``gmjax.samplers.diffusion.langevin`` because objectives sit below samplers in
the import order (``docs/design.md``); it is the same update with the score
``-grad_x E`` and a separate noise scale.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp

PyTree = Any
EnergyFn = Callable[[PyTree, jax.Array], jax.Array]  # (params, x [n, ...]) -> energies [n]
Loss = Callable[[PyTree, Tuple[jax.Array, jax.Array], jax.Array],
                Tuple[jax.Array, Dict[str, jax.Array]]]


def contrastive_divergence_loss(energy_fn: EnergyFn, alpha: float = 0.0) -> Loss:
    """The contrastive-divergence surrogate as a train-step loss.

    For data ``x_1..x_n`` and negatives ``x~_1..x~_m`` (held fixed:
    ``stop_gradient``, so no gradient flows through the sampler)

        L(theta) = (1/n) sum_i E_theta(x_i) - (1/m) sum_j E_theta(x~_j)
                   + alpha [ (1/n) sum_i E_theta(x_i)^2 + (1/m) sum_j E_theta(x~_j)^2 ],

    whose gradient in theta is the maximum-likelihood gradient above with the
    model expectation replaced by the negatives' mean (Hinton, 2002); the
    ``alpha`` term keeps the energies near zero (Du and Mordatch, 2019,
    Sec. 3.3, "L2 regularization of energy magnitudes", alpha = 1 there).

    Args:
      energy_fn: ``energy_fn(params, x [n, ...]) -> [n]``.
      alpha: the weight of the energy-magnitude regularizer (>= 0).

    Returns:
      ``loss(params, (x, negatives), key) -> (L, metrics)`` with metrics
      ``cd`` (the first two terms), ``energy_data``, ``energy_negative`` (the
      mean energies) and ``regularizer`` (the bracket); ``key`` is unused.
    """
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")

    def loss(params: PyTree, batch: Tuple[jax.Array, jax.Array], key: jax.Array):
        del key
        x, negatives = batch
        e_data = energy_fn(params, x)                                         # [n]
        e_neg = energy_fn(params, jax.lax.stop_gradient(negatives))           # [m]
        cd = jnp.mean(e_data) - jnp.mean(e_neg)
        regularizer = jnp.mean(e_data ** 2) + jnp.mean(e_neg ** 2)
        return cd + alpha * regularizer, {"cd": cd, "energy_data": jnp.mean(e_data),
                                          "energy_negative": jnp.mean(e_neg),
                                          "regularizer": regularizer}

    return loss


def langevin_negatives(energy_fn: EnergyFn, params: PyTree, x: jax.Array, key: jax.Array,
                       num_steps: int, step_size: float, noise_scale: float,
                       grad_clip: float = 0.0,
                       clip_range: Optional[Tuple[float, float]] = None) -> jax.Array:
    """``num_steps`` Langevin steps on ``E_theta`` from ``x`` (Du and Mordatch, 2019, Eq. 3):

        x_{k+1} = x_k - (eps / 2) g(x_k) + sigma z_k,   z_k ~ N(0, I),
        g(x) = clip(grad_x E_theta(x), -c, c)   (no clipping when c = 0).

    ``sigma = sqrt(eps)`` is the unadjusted Langevin algorithm, whose
    stationary law tends to ``p_theta`` as ``eps -> 0``; a smaller sigma, the
    common practice for images, gives the "short-run" sampler of Nijkamp et
    al. (2019), which is biased but cheap. With ``clip_range = (lo, hi)`` the
    chain is clipped to the data's box after each step (pixel intensities).

    The parameters are held fixed (``stop_gradient``) and so are the returned
    points: the chain is a sampler, not part of the model's graph.

    Args:
      energy_fn: ``energy_fn(params, x [n, ...]) -> [n]``.
      x: ``[n, ...]`` starting points.
      num_steps: K >= 0 (0 returns ``x``).
      step_size: eps > 0.
      noise_scale: sigma >= 0.
      grad_clip: c >= 0, a per-coordinate bound on the gradient (0: none).
    """
    if not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be an integer >= 0, got {num_steps!r}")
    if not step_size > 0 or not noise_scale >= 0 or not grad_clip >= 0:
        raise ValueError(f"need step_size > 0, noise_scale >= 0 and grad_clip >= 0, got "
                         f"{step_size!r}, {noise_scale!r}, {grad_clip!r}")
    params = jax.lax.stop_gradient(params)
    grad_energy = jax.grad(lambda v: jnp.sum(energy_fn(params, v)))

    def step(x, step_key):
        g = grad_energy(x)
        if grad_clip > 0:
            g = jnp.clip(g, -grad_clip, grad_clip)
        x = x - 0.5 * step_size * g + noise_scale * jax.random.normal(step_key, x.shape, x.dtype)
        if clip_range is not None:
            x = jnp.clip(x, clip_range[0], clip_range[1])
        return x, None

    x, _ = jax.lax.scan(step, x, jax.random.split(key, num_steps))
    return jax.lax.stop_gradient(x)


def uniform_noise(key: jax.Array, shape: Sequence[int], low: float, high: float) -> jax.Array:
    """Points uniform on the box ``[low, high)^d``: where fresh chains start."""
    return jax.random.uniform(key, tuple(shape), jnp.float32, low, high)


def replay_buffer_init(key: jax.Array, size: int, event_shape: Sequence[int], low: float,
                       high: float) -> jax.Array:
    """A replay buffer of ``size`` points ``[size, *event_shape]``, uniform on ``[low, high)``."""
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"the replay buffer's size must be an integer >= 1, got {size!r}")
    return uniform_noise(key, (size, *event_shape), low, high)


def replay_buffer_sample(buffer: jax.Array, key: jax.Array, n: int, reinit_prob: float,
                         low: float, high: float) -> Tuple[jax.Array, jax.Array, jax.Array]:
    """Starting points for ``n`` chains (Du and Mordatch, 2019, Sec. 3.1).

    Slots ``i_1..i_n`` are drawn uniformly (with replacement) from the
    buffer; each chain starts at ``buffer[i_j]`` or, with probability
    ``reinit_prob``, afresh from uniform noise on ``[low, high)``.

    Returns:
      ``(x0 [n, ...], slots [n] int32, reinit [n] bool)``; pass ``slots`` to
      ``replay_buffer_push`` with the chains' end points.
    """
    if not 0 <= reinit_prob <= 1:
        raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob!r}")
    slot_key, coin_key, noise_key = jax.random.split(key, 3)
    slots = jax.random.randint(slot_key, (n,), 0, buffer.shape[0])
    reinit = jax.random.bernoulli(coin_key, reinit_prob, (n,))
    noise = uniform_noise(noise_key, (n, *buffer.shape[1:]), low, high)
    mask = reinit.reshape((n,) + (1,) * (buffer.ndim - 1))
    return jnp.where(mask, noise, buffer[slots]), slots, reinit


def replay_buffer_push(buffer: jax.Array, slots: jax.Array, x: jax.Array) -> jax.Array:
    """The buffer with ``x [n, ...]`` written into ``slots [n]`` (where the chains came from).

    Slots drawn twice keep one of their chains' end points.
    """
    return buffer.at[slots].set(x.astype(buffer.dtype))


__all__ = ["contrastive_divergence_loss", "langevin_negatives", "replay_buffer_init",
           "replay_buffer_push", "replay_buffer_sample", "uniform_noise"]
