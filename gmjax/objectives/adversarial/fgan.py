"""f-GAN: adversarial training of any f-divergence through its Fenchel dual.

Nowozin, Cseke and Tomioka, "f-GAN: training generative neural samplers
using variational divergence minimization", NeurIPS 2016. For a convex
``f`` with ``f(1) = 0``,

    D_f(P || Q) = int q(x) f(p(x) / q(x)) dx
                >= sup_T E_P[T(x)] - E_Q[f*(T(x))]                  (Eq. 4)

with equality at ``T*(x) = f'(p(x) / q(x))``, where ``f*(t) = sup_u ut - f(u)``
is the Fenchel conjugate. The critic's output ``v`` is mapped into the
domain of ``f*`` by the output activation ``T = g_f(v)``, giving the saddle
objective (Eq. 6)

    F(theta, w) = E_{x ~ P}[g_f(V_w(x))] - E_{x ~ Q_theta}[f*(g_f(V_w(x)))],

``P = p_data``, ``Q_theta = p_g``. The critic minimizes ``-F``; the generator
minimizes ``-E_Q[g_f(V_w(G(z)))]``, the paper's practical generator
objective (Sec. 3.2, the analogue of the non-saturating trick).

The five divergences here, with ``f`` (Table 1), ``g_f`` and ``f*`` (Table 2):

  ==========  ======================================  =====================  ================
  name        f(u)                                    g_f(v)                 f*(t)
  ==========  ======================================  =====================  ================
  kl          u log u                                 v                      exp(t - 1)
  reverse_kl  -log u                                  -exp(-v)               -1 - log(-t)
  js          u log u - (u + 1) log((1 + u) / 2)      log 2 - log(1 + e^-v)  -log(2 - exp(t))
  pearson     (u - 1)^2                               v                      t^2 / 4 + t
  hellinger   (sqrt(u) - 1)^2                         1 - exp(-v)            t / (1 - t)
  ==========  ======================================  =====================  ================

``kl`` is KL(P || Q), ``reverse_kl`` KL(Q || P), ``pearson`` the Pearson
chi^2 ``int (p - q)^2 / q`` and ``hellinger`` the squared Hellinger distance
``int (sqrt p - sqrt q)^2``. With the ``f`` of the ``js`` row,
``D_f = int p log(2p / (p + q)) + q log(2q / (p + q)) = 2 JS(P, Q)``, twice
the Jensen-Shannon divergence ``JS = KL(P || M) / 2 + KL(Q || M) / 2``,
``M = (P + Q) / 2``. ``f*(g_f(v))`` is computed in a closed form that stays
finite for every real ``v`` (e.g. ``js``: ``softplus(v) - log 2``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gmjax.objectives.adversarial.losses import GAN_LOSSES, AdversarialLoss
from gmjax.registry import Registry

LOG2 = math.log(2.0)


class FDivergence(NamedTuple):
    """One row of Nowozin et al.'s Tables 1 and 2.

    Attributes:
      f: the generator function ``f(u)``, ``u = p / q > 0``.
      activation: the output activation ``g_f(v)``, onto the domain of ``f*``.
      conjugate: the Fenchel conjugate ``f*(t)`` on its domain.
      conjugate_of_activation: ``f*(g_f(v))`` in a form finite for all real ``v``.
    """

    f: Callable[[jax.Array], jax.Array]
    activation: Callable[[jax.Array], jax.Array]
    conjugate: Callable[[jax.Array], jax.Array]
    conjugate_of_activation: Callable[[jax.Array], jax.Array]


F_DIVERGENCES: Registry[FDivergence] = Registry("f-divergence")

F_DIVERGENCES.register("kl")(FDivergence(
    f=lambda u: u * jnp.log(u),
    activation=lambda v: v,
    conjugate=lambda t: jnp.exp(t - 1.0),
    conjugate_of_activation=lambda v: jnp.exp(v - 1.0)))
F_DIVERGENCES.register("reverse_kl")(FDivergence(
    f=lambda u: -jnp.log(u),
    activation=lambda v: -jnp.exp(-v),
    conjugate=lambda t: -1.0 - jnp.log(-t),
    conjugate_of_activation=lambda v: v - 1.0))           # -1 - log(exp(-v))
F_DIVERGENCES.register("js")(FDivergence(
    f=lambda u: u * jnp.log(u) - (u + 1.0) * jnp.log((1.0 + u) / 2.0),
    activation=lambda v: LOG2 - jax.nn.softplus(-v),
    conjugate=lambda t: -jnp.log(2.0 - jnp.exp(t)),
    conjugate_of_activation=lambda v: jax.nn.softplus(v) - LOG2))  # -log(2 - 2 sigmoid(v))
F_DIVERGENCES.register("pearson")(FDivergence(
    f=lambda u: (u - 1.0) ** 2,
    activation=lambda v: v,
    conjugate=lambda t: 0.25 * t ** 2 + t,
    conjugate_of_activation=lambda v: 0.25 * v ** 2 + v))
F_DIVERGENCES.register("hellinger")(FDivergence(
    f=lambda u: (jnp.sqrt(u) - 1.0) ** 2,
    activation=lambda v: -jnp.expm1(-v),                  # 1 - exp(-v)
    conjugate=lambda t: t / (1.0 - t),
    conjugate_of_activation=jnp.expm1))                   # (1 - e^-v) / e^-v


def f_divergence(name: str) -> FDivergence:
    """The ``FDivergence`` called ``name``; an unknown name lists the valid ones."""
    return F_DIVERGENCES.get(name)


def fgan_loss(divergence: str) -> AdversarialLoss:
    """The f-GAN losses of ``divergence`` (a name in ``F_DIVERGENCES``).

    critic:    ``L_C = -(mean g_f(v(x)) - mean f*(g_f(v(G(z)))))`` = -F (Nowozin et al., Eq. 6);
    generator: ``L_G = -mean g_f(v(G(z)))`` (Sec. 3.2).

    At the optimal critic ``g_f(v*) = f'(p / q)``, ``-L_C`` is ``D_f(P || Q)``.
    """
    fd = f_divergence(divergence)

    def critic(real_out: jax.Array, fake_out: jax.Array) -> jax.Array:
        return -(jnp.mean(fd.activation(real_out))
                 - jnp.mean(fd.conjugate_of_activation(fake_out)))

    def generator(fake_out: jax.Array, real_out: Any = None) -> jax.Array:
        return -jnp.mean(fd.activation(fake_out))

    return AdversarialLoss(critic, generator)


FGAN_PREFIX = "fgan_"
for _name in F_DIVERGENCES.names():
    GAN_LOSSES.register(FGAN_PREFIX + _name)(fgan_loss(_name))
