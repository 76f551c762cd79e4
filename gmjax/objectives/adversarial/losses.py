"""GAN losses as pure functions of the critic's outputs on a real and a fake batch.

Every loss here is a pair of functions, both *minimized* by their player:

    critic(real_out [n, ...], fake_out [m, ...], **options) -> scalar
    generator(fake_out [m, ...], real_out=None)             -> scalar

``real_out`` / ``fake_out`` are what the critic network gives on data
``x ~ p_data`` and on samples ``G(z)``, ``z ~ N(0, I)``: a logit ``d(x)``
(most losses), a feature vector (``mmd``) or a per-example reconstruction
error (``began``); ``AdversarialLoss.output`` says which. The game built by
``make_gan_game`` (``game.py``) turns a network's output into these, adds
penalties and stabilizers, and hands both losses to ``make_minmax_step``.

Goodfellow et al., "Generative adversarial nets", NeurIPS 2014, Eq. (1):

    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))],

with ``D = sigmoid(d)``. Written with logits and ``softplus(t) = log(1 + e^t)``
(``log sigmoid(t) = -softplus(-t)``, ``log(1 - sigmoid(t)) = -softplus(t)``,
both stable for large ``|t|``), the BCE family is

  critic, ``L_D = -V = E_x[softplus(-d(x))] + E_z[softplus(d(G(z)))]``;
  generator ``minimax``: ``L_G = E_z[log(1 - D(G(z)))] = -E_z[softplus(d(G(z)))]``
  (its gradient vanishes when D rejects fakes confidently, early in training);
  generator ``non_saturating`` (Goodfellow et al., Sec. 3): ``L_G = -E_z[log D(G(z))]
  = E_z[softplus(-d(G(z)))]``, the same fixed point with strong early gradients.

At the optimal discriminator ``D* = p_data / (p_data + p_g)`` (Prop. 1),
``V(D*, G) = 2 JS(p_data || p_g) - log 4`` (Theorem 1).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from gmjax.registry import Registry

PyTree = Any

# What a loss reads from the critic network's output.
OUTPUTS = ("logit", "features", "reconstruction")


class AdversarialLoss(NamedTuple):
    """The two players' losses on critic outputs, both to be minimized.

    Attributes:
      critic: ``(real_out, fake_out, **options) -> scalar``; ``options`` are
        the loss's state (``began``: ``k``) and, where ``smoothing``,
        ``real_label``.
      generator: ``(fake_out, real_out=None) -> scalar``; ``real_out`` is read
        only where ``needs_real`` (``mmd``).
      output: ``"logit"`` (a scalar per example, ``[n]``), ``"features"``
        (``[n, k]``) or ``"reconstruction"`` (the network returns ``D(x)``
        with ``x``'s shape; the loss sees the per-example error ``[n]``).
      penalty: the penalty the loss includes (a ``PENALTIES`` name:
        ``wgan_gp`` -> ``"gp"``, ``dragan`` -> ``"dragan"``), else ``"none"``.
      clip: the weight-clipping bound the loss comes with (``wgan``: 0.01;
        0 = none).
      smoothing: the critic takes ``real_label`` (one-sided label smoothing).
      probability: outputs are logits of ``D = sigmoid(d)`` (metrics report
        mean ``D``).
      needs_real: the generator's loss reads the critic's output on real data.
      init_state: the loss's initial state (``began``: ``{"k": 0}``), carried
        by the train step; ``None`` for stateless losses.
      update_state: ``(state, real_out, fake_out) -> state``, applied after
        each critic update.
    """

    critic: Callable[..., jax.Array]
    generator: Callable[..., jax.Array]
    output: str = "logit"
    penalty: str = "none"
    clip: float = 0.0
    smoothing: bool = False
    probability: bool = False
    needs_real: bool = False
    init_state: Optional[Dict[str, float]] = None
    update_state: Optional[Callable[..., Dict[str, jax.Array]]] = None


GAN_LOSSES: Registry[AdversarialLoss] = Registry("GAN loss")


# --- the BCE family: minimax, non-saturating, DRAGAN ----------------------------------------


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array,
                       real_label: float = 1.0) -> jax.Array:
    """``L_D = mean softplus(-d(x)) + mean softplus(d(G(z)))`` = -V (Goodfellow et al., Eq. 1).

    With one-sided label smoothing (Salimans et al., "Improved techniques for
    training GANs", NeurIPS 2016, Sec. 3.4) the real examples' target is
    ``real_label = alpha < 1`` and the fakes' stays 0:

        L_D = E_x[alpha softplus(-d(x)) + (1 - alpha) softplus(d(x))] + E_z[softplus(d(G(z)))],

    whose pointwise optimum is ``D*(x) = alpha p_data / (p_data + p_g)``.
    """
    real_term = jax.nn.softplus(-real_logits)
    if real_label != 1.0:
        real_term = real_label * real_term + (1.0 - real_label) * jax.nn.softplus(real_logits)
    return jnp.mean(real_term) + jnp.mean(jax.nn.softplus(fake_logits))


def minimax_generator_loss(fake_logits: jax.Array, real_logits: Any = None) -> jax.Array:
    """``L_G = mean log(1 - D(G(z))) = -mean softplus(d(G(z)))`` (Goodfellow et al., Eq. 1)."""
    return -jnp.mean(jax.nn.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits: jax.Array, real_logits: Any = None) -> jax.Array:
    """``L_G = -mean log D(G(z)) = mean softplus(-d(G(z)))`` (Goodfellow et al., Sec. 3)."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


GAN_LOSSES.register("minimax")(AdversarialLoss(
    discriminator_loss, minimax_generator_loss, smoothing=True, probability=True))
GAN_LOSSES.register("non_saturating")(AdversarialLoss(
    discriminator_loss, non_saturating_generator_loss, smoothing=True, probability=True))
# Kodali et al., "On convergence and stability of GANs", 2017: the non-saturating
# game with a gradient penalty around the real data (``penalties.dragan_penalty``).
GAN_LOSSES.register("dragan")(AdversarialLoss(
    discriminator_loss, non_saturating_generator_loss, penalty="dragan", smoothing=True,
    probability=True))


# --- Wasserstein, least squares, hinge ------------------------------------------------------


def wasserstein_critic_loss(real_out: jax.Array, fake_out: jax.Array) -> jax.Array:
    """``L_C = E_z[f(G(z))] - E_x[f(x)]``, minus the Kantorovich-Rubinstein dual.

    Arjovsky, Chintala and Bottou, "Wasserstein GAN", ICML 2017, Eq. (2)-(3):
    ``W(p_data, p_g) = sup_{||f||_L <= 1} E_x[f(x)] - E_{p_g}[f]``. The critic
    ``f`` is kept Lipschitz by weight clipping (``wgan``, ``clip_weights``),
    a gradient penalty (``wgan_gp``) or spectral normalization.
    """
    return jnp.mean(fake_out) - jnp.mean(real_out)


def wasserstein_generator_loss(fake_out: jax.Array, real_out: Any = None) -> jax.Array:
    """``L_G = -E_z[f(G(z))]`` (Arjovsky et al., 2017, Algorithm 1)."""
    return -jnp.mean(fake_out)


# Arjovsky et al. clip every critic weight to [-0.01, 0.01] (Algorithm 1, c = 0.01).
GAN_LOSSES.register("wgan")(AdversarialLoss(
    wasserstein_critic_loss, wasserstein_generator_loss, clip=0.01))
# Gulrajani et al., "Improved training of Wasserstein GANs", NeurIPS 2017, Eq. (3):
# the WGAN losses with the penalty lambda E[(||grad f(x_hat)|| - 1)^2], lambda = 10.
GAN_LOSSES.register("wgan_gp")(AdversarialLoss(
    wasserstein_critic_loss, wasserstein_generator_loss, penalty="gp"))


def least_squares_critic_loss(real_out: jax.Array, fake_out: jax.Array) -> jax.Array:
    """``L_D = 1/2 E_x[(D(x) - 1)^2] + 1/2 E_z[D(G(z))^2]``.

    Mao et al., "Least squares generative adversarial networks", ICCV 2017,
    Eq. (2) with the 0-1 coding ``a = 0`` (fake), ``b = 1`` (real), ``c = 1``.
    """
    return 0.5 * jnp.mean((real_out - 1.0) ** 2) + 0.5 * jnp.mean(fake_out ** 2)


def least_squares_generator_loss(fake_out: jax.Array, real_out: Any = None) -> jax.Array:
    """``L_G = 1/2 E_z[(D(G(z)) - 1)^2]`` (Mao et al., 2017, Eq. 2, ``c = 1``)."""
    return 0.5 * jnp.mean((fake_out - 1.0) ** 2)


GAN_LOSSES.register("lsgan")(AdversarialLoss(least_squares_critic_loss,
                                             least_squares_generator_loss))


def hinge_critic_loss(real_out: jax.Array, fake_out: jax.Array) -> jax.Array:
    """``L_D = E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]``.

    Lim and Ye, "Geometric GAN", 2017; Miyato et al., "Spectral normalization
    for generative adversarial networks", ICLR 2018, Eq. (16).
    """
    return jnp.mean(jax.nn.relu(1.0 - real_out)) + jnp.mean(jax.nn.relu(1.0 + fake_out))


def hinge_generator_loss(fake_out: jax.Array, real_out: Any = None) -> jax.Array:
    """``L_G = -E_z[D(G(z))]`` (Miyato et al., 2018, Eq. 17)."""
    return -jnp.mean(fake_out)


GAN_LOSSES.register("hinge")(AdversarialLoss(hinge_critic_loss, hinge_generator_loss))


# --- BEGAN ----------------------------------------------------------------------------------


def began_critic_loss(real_energy: jax.Array, fake_energy: jax.Array,
                      k: Any = 0.0) -> jax.Array:
    """``L_D = L(x) - k_t L(G(z))`` (Berthelot et al., "BEGAN", 2017, Eq. 4).

    ``L(v) = mean |v - D(v)|`` is the autoencoding critic's per-example L1
    reconstruction error (pixel mean; the paper's ``eta = 1``) and ``k_t`` in
    [0, 1] the balance carried across steps (``began_balance``).
    """
    return jnp.mean(real_energy) - k * jnp.mean(fake_energy)


def began_generator_loss(fake_energy: jax.Array, real_energy: Any = None) -> jax.Array:
    """``L_G = L(G(z))`` (Berthelot et al., 2017, Eq. 4)."""
    return jnp.mean(fake_energy)


def began_balance(k: jax.Array, real_energy: jax.Array, fake_energy: jax.Array,
                  gamma: float, lambda_k: float) -> jax.Array:
    """``k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)`` (Berthelot et al., Eq. 4).

    ``gamma = E[L(G(z))] / E[L(x)]`` is the diversity ratio the balance
    steers to. The paper's ``L(G(z_G))`` is the generator step's; here it is
    the critic step's fakes, drawn from the same generator.
    """
    update = lambda_k * (gamma * jnp.mean(real_energy) - jnp.mean(fake_energy))
    return jnp.clip(k + update, 0.0, 1.0)


def began_convergence(real_energy: jax.Array, fake_energy: jax.Array,
                      gamma: float) -> jax.Array:
    """``M_global = L(x) + |gamma L(x) - L(G(z))|`` (Berthelot et al., Sec. 3.4.1)."""
    real, fake = jnp.mean(real_energy), jnp.mean(fake_energy)
    return real + jnp.abs(gamma * real - fake)


def began_loss(gamma: float = 0.5, lambda_k: float = 1e-3) -> AdversarialLoss:
    """BEGAN with diversity ratio ``gamma`` and balance rate ``lambda_k`` (paper: 0.001).

    The critic is an autoencoder (``output="reconstruction"``); its state is
    ``{"k": k_t}``, ``k_0 = 0``, updated by ``began_balance`` after every
    critic update.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"BEGAN's diversity ratio gamma must be in [0, 1], got {gamma}")
    if lambda_k < 0:
        raise ValueError(f"BEGAN's lambda_k must be >= 0, got {lambda_k}")

    def update(state, real_energy, fake_energy):
        return {"k": began_balance(state["k"], real_energy, fake_energy, gamma, lambda_k)}

    return AdversarialLoss(began_critic_loss, began_generator_loss, output="reconstruction",
                           init_state={"k": 0.0}, update_state=update)


GAN_LOSSES.register("began")(began_loss())


# --- MMD-GAN --------------------------------------------------------------------------------

# Li et al. (2017), Sec. 5: a mixture of RBF kernels with sigma in {1, 2, 4, 8, 16}.
MMD_BANDWIDTHS = (1.0, 2.0, 4.0, 8.0, 16.0)


def mmd2_rbf_mixture(x: jax.Array, y: jax.Array,
                     bandwidths: Sequence[float] = MMD_BANDWIDTHS) -> jax.Array:
    """Unbiased ``MMD_u^2`` of features ``x [n, k]``, ``y [m, k]`` under a mixture of RBF kernels.

        k(a, b) = (1/B) sum_b exp(-|a - b|^2 / (2 sigma_b^2))
        MMD_u^2 = sum_{i!=j} k(x_i, x_j) / (n(n-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1))
                  - 2 sum_{i,j} k(x_i, y_j) / (n m)

    (Gretton et al., "A kernel two-sample test", JMLR 2012, Eq. 3). The same
    estimator and kernel as ``gmjax.metrics.two_sample.mmd_rbf_mixture``,
    written for a training batch (whole kernel matrices, differentiable);
    objectives do not import evaluation code. ``[n]`` inputs are 1-D features.
    """
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"MMD needs at least 2 examples per batch, got {n} and {m}")
    coefficients = [0.5 / float(s) ** 2 for s in bandwidths]

    def kernel_sum(a, b, exclude_diagonal):
        d2 = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)  # [na, nb]
        k = sum(jnp.exp(-c * d2) for c in coefficients) / len(coefficients)
        if exclude_diagonal:
            k = k * (1.0 - jnp.eye(a.shape[0], dtype=k.dtype))
        return jnp.sum(k)

    return (kernel_sum(x, x, True) / (n * (n - 1)) + kernel_sum(y, y, True) / (m * (m - 1))
            - 2.0 * kernel_sum(x, y, False) / (n * m))


def mmd_loss(bandwidths: Sequence[float] = MMD_BANDWIDTHS) -> AdversarialLoss:
    """MMD-GAN: ``min_G max_f MMD_u^2(f(x), f(G(z)))`` on a learned feature map ``f``.

    Li et al., "MMD GAN: towards deeper understanding of moment matching
    network", NeurIPS 2017, Eq. (3): the critic outputs features ``f(x) [n, k]``
    (``output="features"``), maximizes the kernel MMD between real and fake
    features (``L_C = -MMD_u^2``) and the generator minimizes it
    (``L_G = MMD_u^2``). Li et al. add an autoencoder term to ``f`` and clip
    its weights at 0.01; here neither is part of the loss (the RBF kernel
    bounds MMD^2 by 2, so the critic's objective is bounded without them):
    pass ``clip=0.01`` to the game for the paper's clipping.
    """
    bandwidths = tuple(float(s) for s in bandwidths)
    if not bandwidths or min(bandwidths) <= 0:
        raise ValueError(f"MMD bandwidths must be positive, got {bandwidths}")

    def critic(real_features, fake_features):
        return -mmd2_rbf_mixture(real_features, fake_features, bandwidths)

    def generator(fake_features, real_features=None):
        if real_features is None:
            raise ValueError("the mmd generator loss compares fake with real features: "
                             "call it as generator(fake_out, real_out)")
        return mmd2_rbf_mixture(jax.lax.stop_gradient(real_features), fake_features, bandwidths)

    return AdversarialLoss(critic, generator, output="features", needs_real=True)


GAN_LOSSES.register("mmd")(mmd_loss())
