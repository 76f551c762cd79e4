"""GAN losses, penalties and stabilizers against closed forms and quadrature.

* the minimax value at the optimal discriminator is 2 JS - log 4, and each
  f-GAN objective at its optimal critic is its f-divergence (1-D Gaussians,
  midpoint quadrature in the quantiles of P and Q);
* the gradient penalties vanish for a 1-Lipschitz linear critic; R1 / R2
  match the closed form of a quadratic critic;
* spectral normalization drives the largest singular value to 1, also when
  its state is threaded through a stateful min-max step;
* label smoothing, instance noise, weight clipping, consensus and BEGAN's
  balance do what their papers say; bad configurations are named.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate, stats

from gmjax.metrics.two_sample import mmd_rbf_mixture
from gmjax.nets import MLP
from gmjax.nets.spectral import SpectralMLP, largest_singular_value, spectral_norm
from gmjax.objectives.adversarial import (
    F_DIVERGENCES, GAN_LOSSES, PENALTIES, began_balance, clip_weights, consensus_losses,
    discriminator_loss, dragan_penalty, f_divergence, gradient_penalty, instance_noise_scale,
    make_gan_game, make_gan_losses, mmd2_rbf_mixture, r1_penalty, r2_penalty)
from gmjax.training import MinMaxState, data_mesh, make_minmax_step

# --- optimal critics by quadrature ----------------------------------------------------------

MU_P, MU_Q, SIGMA = 0.0, 0.5, 1.0  # P = N(0, 1) (data), Q = N(0.5, 1) (model)
NUM_NODES = 100_000


def quantile_nodes(mu):  # [NUM_NODES]: mean over them = E_{N(mu, SIGMA^2)}, midpoint rule in u
    u = (np.arange(NUM_NODES) + 0.5) / NUM_NODES
    return mu + SIGMA * stats.norm.ppf(u)


def log_ratio(x):  # log p(x) / q(x)
    return stats.norm.logpdf(x, MU_P, SIGMA) - stats.norm.logpdf(x, MU_Q, SIGMA)


def jensen_shannon():
    """JS(P, Q) = KL(P || M) / 2 + KL(Q || M) / 2, M = (P + Q) / 2, by scipy quad."""
    p = lambda x: stats.norm.pdf(x, MU_P, SIGMA)
    q = lambda x: stats.norm.pdf(x, MU_Q, SIGMA)
    integrand = lambda x: 0.5 * (p(x) * np.log(2 * p(x) / (p(x) + q(x)))
                                 + q(x) * np.log(2 * q(x) / (p(x) + q(x))))
    return integrate.quad(integrand, -20, 20)[0]


def at_nodes(fn):
    """(outputs on P's nodes, on Q's nodes) of a critic given as a function of log p / q."""
    return (jnp.asarray(fn(log_ratio(quantile_nodes(MU_P))), jnp.float32),
            jnp.asarray(fn(log_ratio(quantile_nodes(MU_Q))), jnp.float32))


def test_minimax_value_at_the_optimal_discriminator_is_2js_minus_log4():
    # D* = p / (p + q), i.e. the logit d* = log p / q (Goodfellow et al., Prop. 1, Thm. 1).
    value = -float(discriminator_loss(*at_nodes(lambda r: r)))  # V = -L_D
    assert value == pytest.approx(2 * jensen_shannon() - math.log(4), abs=2e-5)
    # Any other discriminator does worse.
    assert -float(discriminator_loss(*at_nodes(lambda r: r + 0.5))) < value - 1e-3
    assert -float(discriminator_loss(*at_nodes(lambda r: 0.5 * r))) < value - 1e-3


# Critic outputs v* with g_f(v*) = T* = f'(p / q), derived by hand from Table 1 and 2.
OPTIMAL_OUTPUT = {
    "kl": lambda r: 1.0 + r,                  # f' = 1 + log u,            g = v
    "reverse_kl": lambda r: r,                # f' = -1/u,                 g = -exp(-v)
    "js": lambda r: r,                        # f' = log(2u / (1 + u)),    g = log 2 - softplus(-v)
    "pearson": lambda r: 2.0 * np.expm1(r),   # f' = 2 (u - 1),            g = v
    "hellinger": lambda r: 0.5 * r,           # f' = 1 - u^(-1/2),         g = 1 - exp(-v)
}
DELTA2 = (MU_P - MU_Q) ** 2 / SIGMA ** 2
DIVERGENCE = {  # closed forms for two Gaussians of one variance, D_f(P || Q) = int q f(p / q)
    "kl": lambda: DELTA2 / 2,
    "reverse_kl": lambda: DELTA2 / 2,
    "js": lambda: 2 * jensen_shannon(),      # the f of the js row gives 2 JS
    "pearson": lambda: math.exp(DELTA2) - 1,
    "hellinger": lambda: 2 * (1 - math.exp(-DELTA2 / 8)),
}


@pytest.mark.parametrize("name", sorted(OPTIMAL_OUTPUT))
def test_fgan_objective_at_the_optimal_critic_is_the_divergence(name):
    assert set(OPTIMAL_OUTPUT) == set(F_DIVERGENCES.names())
    loss = GAN_LOSSES.get("fgan_" + name)
    objective = lambda fn: -float(loss.critic(*at_nodes(fn)))  # F = -L_C
    optimum = objective(OPTIMAL_OUTPUT[name])
    assert optimum == pytest.approx(DIVERGENCE[name](), rel=1e-3)
    # The variational bound: any other critic gives less.
    for shift in (-0.3, 0.3):
        assert objective(lambda r: OPTIMAL_OUTPUT[name](r) + shift) < optimum - 1e-4


@pytest.mark.parametrize("name", sorted(OPTIMAL_OUTPUT))
def test_conjugates_are_fenchel_conjugates_of_their_f(name):
    fd = f_divergence(name)
    u = jnp.linspace(0.2, 5.0, 25)
    f_prime = jax.vmap(jax.grad(fd.f))(u)
    # Fenchel-Young with equality at t = f'(u): f*(f'(u)) = u f'(u) - f(u).
    np.testing.assert_allclose(fd.conjugate(f_prime), u * f_prime - fd.f(u), rtol=1e-4,
                               atol=1e-5)
    assert float(fd.f(jnp.array(1.0))) == pytest.approx(0.0, abs=1e-7)
    v = jnp.linspace(-3.0, 3.0, 25)
    np.testing.assert_allclose(fd.conjugate_of_activation(v), fd.conjugate(fd.activation(v)),
                               rtol=1e-4, atol=1e-5)
    # The composed form stays finite where float32 f*(g(v)) overflows (g(30) rounds to
    # the edge of f*'s domain for js and hellinger).
    assert bool(jnp.all(jnp.isfinite(fd.conjugate_of_activation(jnp.array([-30.0, 30.0])))))


# --- losses on hand-computed logits -----------------------------------------------------------


def test_each_loss_matches_its_formula_on_small_inputs():
    r, f = jnp.array([0.5, -1.0, 2.0]), jnp.array([-0.5, 1.5])
    rn, fn = np.asarray(r), np.asarray(f)
    relu = lambda t: np.maximum(t, 0)
    expected = {
        "wgan": (fn.mean() - rn.mean(), -fn.mean()),
        "hinge": (relu(1 - rn).mean() + relu(1 + fn).mean(), -fn.mean()),
        "lsgan": (0.5 * ((rn - 1) ** 2).mean() + 0.5 * (fn ** 2).mean(),
                  0.5 * ((fn - 1) ** 2).mean()),
        "began": (rn.mean(), fn.mean()),  # k_0 = 0
        "fgan_kl": (-(rn.mean() - np.exp(fn - 1).mean()), -fn.mean()),
    }
    for name, (critic_value, gen_value) in expected.items():
        loss = GAN_LOSSES.get(name)
        assert float(loss.critic(r, f)) == pytest.approx(critic_value, rel=1e-6), name
        assert float(loss.generator(f)) == pytest.approx(gen_value, rel=1e-6), name
    assert float(GAN_LOSSES.get("began").critic(r, f, k=0.5)) == pytest.approx(
        rn.mean() - 0.5 * fn.mean(), rel=1e-6)
    wgan_gp = GAN_LOSSES.get("wgan_gp")
    assert (wgan_gp.penalty, wgan_gp.clip, GAN_LOSSES.get("wgan").clip) == ("gp", 0.0, 0.01)


def test_mmd_loss_is_the_metrics_estimator_on_features():
    x = jax.random.normal(jax.random.key(0), (12, 3))
    y = jax.random.normal(jax.random.key(1), (9, 3)) + 0.5
    bandwidths = (0.5, 1.0, 4.0)
    mine = mmd2_rbf_mixture(x, y, bandwidths)
    np.testing.assert_allclose(mine, mmd_rbf_mixture(x, y, jnp.array(bandwidths)), rtol=1e-5)
    loss = GAN_LOSSES.get("mmd")
    np.testing.assert_allclose(loss.critic(x, y), -mmd2_rbf_mixture(x, y), rtol=1e-6)
    np.testing.assert_allclose(loss.generator(y, x), mmd2_rbf_mixture(x, y), rtol=1e-6)
    with pytest.raises(ValueError, match="generator\\(fake_out, real_out\\)"):
        loss.generator(y)


def test_one_sided_label_smoothing_moves_only_the_real_target():
    alpha = 0.9
    real, fake = jnp.array([0.3, -1.2, 2.0]), jnp.array([0.1, -0.7])
    # With alpha = 1 the smoothed loss is the plain one.
    assert float(discriminator_loss(real, fake, real_label=1.0)) == float(
        discriminator_loss(real, fake))
    # The real examples' optimum moves to D = alpha; the fakes' gradient is unchanged.
    at_alpha = jnp.full(3, math.log(alpha / (1 - alpha)))
    grad_real = jax.grad(discriminator_loss)(at_alpha, fake, alpha)
    np.testing.assert_allclose(grad_real, 0.0, atol=1e-6)
    assert float(jnp.max(jnp.abs(jax.grad(discriminator_loss)(at_alpha, fake)))) > 0.01
    np.testing.assert_allclose(jax.grad(discriminator_loss, 1)(real, fake, alpha),
                               jax.grad(discriminator_loss, 1)(real, fake), rtol=1e-6)
    # Through the game: the smoothed critic loss on the network's own logits.
    gen, critic = MLP((2,)), MLP((4, 1))
    gp = gen.init(jax.random.key(0), jnp.zeros((1, 2)))
    cp = critic.init(jax.random.key(1), jnp.zeros((1, 2)))
    batch = jax.random.normal(jax.random.key(2), (8, 2))
    key = jax.random.key(3)
    critic_loss, _ = make_gan_losses(gen, critic, 2, "non_saturating", label_smoothing=0.1)
    value, _ = critic_loss(cp, gp, batch, key)
    fakes = gen.apply(gp, jax.random.normal(key, (8, 2)))
    expected = discriminator_loss(critic.apply(cp, batch)[:, 0], critic.apply(cp, fakes)[:, 0],
                                  0.9)
    np.testing.assert_allclose(value, expected, rtol=1e-6)


# --- penalties -------------------------------------------------------------------------------


def test_gradient_penalties_vanish_for_a_unit_norm_linear_critic():
    key = jax.random.key(0)
    real = jax.random.normal(jax.random.key(1), (16, 2, 2, 1))  # image-shaped examples
    fake = jax.random.normal(jax.random.key(2), (16, 2, 2, 1)) + 1.0
    w = jax.random.normal(jax.random.key(3), (4,))
    w = w / jnp.linalg.norm(w)
    linear = lambda scale: (lambda x: x.reshape(x.shape[0], -1) @ (scale * w))
    for penalty in (gradient_penalty, dragan_penalty):
        assert float(penalty(linear(1.0), real, fake, key)) == pytest.approx(0.0, abs=1e-10)
        # ||grad|| = 3 everywhere: (3 - 1)^2.
        assert float(penalty(linear(3.0), real, fake, key)) == pytest.approx(4.0, rel=1e-5)
    # The penalty's gradient in the critic's weights is finite, and 0 at the unit norm.
    grad = jax.grad(lambda s: gradient_penalty(linear(s), real, fake, key))
    assert float(grad(1.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(grad(3.0)) == pytest.approx(2 * (3.0 - 1.0), rel=1e-5)  # d/ds (s - 1)^2
    # The interpolates lie between real and fake: for D(x) = |x|^2 / 2, real = 0 and
    # fake = c, ||grad D(e c)|| = e |c|, so GP = int_0^1 (e |c| - 1)^2 de = |c|^2/3 - |c| + 1.
    half_square = lambda x: 0.5 * jnp.sum(x ** 2, axis=-1)
    c = jnp.broadcast_to(jnp.array([3.0, 4.0]), (4096, 2))
    assert float(gradient_penalty(half_square, jnp.zeros_like(c), c, key)) == pytest.approx(
        25 / 3 - 5 + 1, rel=0.05)
    zero = lambda x: 0.0 * jnp.sum(x.reshape(x.shape[0], -1), -1)
    g = jax.grad(lambda s: gradient_penalty(lambda x: s * zero(x), real, fake, key))(1.0)
    assert bool(jnp.isfinite(g))  # no NaN from the norm of a zero gradient


def test_r1_and_r2_match_the_closed_form_of_a_quadratic_critic():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    a = (a + a.T).astype(np.float32)  # symmetric: grad 1/2 x^T A x + b^T x = A x + b
    b = rng.normal(size=3).astype(np.float32)
    quadratic = lambda x: 0.5 * jnp.einsum("ni,ij,nj->n", x, a, x) + x @ b
    real = rng.normal(size=(10, 3)).astype(np.float32)
    fake = rng.normal(size=(7, 3)).astype(np.float32)
    r1 = 0.5 * np.mean(np.sum((real @ a + b) ** 2, axis=1))
    r2 = 0.5 * np.mean(np.sum((fake @ a + b) ** 2, axis=1))
    key = jax.random.key(0)
    assert float(r1_penalty(quadratic, real, fake, key)) == pytest.approx(r1, rel=1e-5)
    assert float(r2_penalty(quadratic, real, fake, key)) == pytest.approx(r2, rel=1e-5)


# --- stabilizers -----------------------------------------------------------------------------


def test_spectral_norm_drives_the_largest_singular_value_to_one():
    layer = spectral_norm(nn.Dense(3, use_bias=False), n_steps=1)
    variables = layer.init(jax.random.key(0), jnp.zeros((1, 5)), update_stats=False)
    kernel = 7.0 * jax.random.normal(jax.random.key(1), (5, 3))  # sigma(W) far from 1
    variables = {"params": {"layer_instance": {"kernel": kernel}},
                 "batch_stats": variables["batch_stats"]}

    @jax.jit
    def iterate(variables):  # one power iteration, stored
        _, updated = layer.apply(variables, jnp.zeros((1, 5)), update_stats=True,
                                 mutable=["batch_stats"])
        return {**variables, **updated}

    @jax.jit
    def normalized_sigma(variables):  # the largest singular value of W / sigma_hat
        matrix = layer.apply(variables, jnp.eye(5), update_stats=False)  # [5, 3] = W / sigma
        return largest_singular_value(matrix)

    assert float(largest_singular_value(kernel)) > 10.0
    for _ in range(50):
        variables = iterate(variables)
    assert float(normalized_sigma(variables)) == pytest.approx(1.0, abs=1e-2)
    assert float(variables["batch_stats"]["layer_instance/kernel/sigma"]) == pytest.approx(
        float(largest_singular_value(kernel)), rel=1e-2)


def test_instance_noise_adds_the_annealed_variance():
    assert float(instance_noise_scale(0.5, 10, 0)) == 0.5
    assert float(instance_noise_scale(0.5, 10, 5)) == pytest.approx(0.25)
    assert float(instance_noise_scale(0.5, 10, 12)) == 0.0
    assert float(instance_noise_scale(0.5, 0, 1000)) == 0.5  # no annealing

    class SquaredNorm(nn.Module):  # a critic without parameters: |x|^2
        @nn.compact
        def __call__(self, x):
            return jnp.sum(x ** 2, axis=-1)

    gen = MLP((2,))
    game = make_gan_game(gen, SquaredNorm(), 2, loss="wgan", clip=0.0, instance_noise=0.5,
                         instance_noise_anneal=10)
    critic_params, state = game.init({})
    gen_params = gen.init(jax.random.key(0), jnp.zeros((1, 2)))
    real = jnp.zeros((8192, 2))
    loss = jax.jit(game.critic_loss)
    for t, sigma in ((0, 0.5), (5, 0.25), (10, 0.0)):
        _, (metrics, next_state) = loss(critic_params, gen_params, real, jax.random.key(t),
                                        {"updates": jnp.int32(t)})
        # E|0 + sigma eps|^2 = 2 sigma^2 in two dimensions.
        assert float(metrics["critic_real"]) == pytest.approx(2 * sigma ** 2, rel=0.06, abs=1e-9)
        assert float(metrics["instance_noise"]) == pytest.approx(sigma)
        assert int(next_state["updates"]) == t + 1
    assert int(state["updates"]) == 0


def test_weight_clipping_projects_the_updated_weights_into_the_box():
    params = {"w": jnp.array([0.005, -0.009, 0.0, 0.3])}
    grads = {"w": jnp.array([-1.0, 1.0, 0.002, 0.0])}
    tx = optax.chain(optax.sgd(0.01), clip_weights(0.01))
    updates, _ = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)["w"]
    np.testing.assert_allclose(new, np.clip(np.array([0.015, -0.019, -2e-5, 0.3]), -0.01, 0.01),
                               rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="bound must be > 0"):
        clip_weights(0.0)


def test_consensus_adds_gamma_times_half_the_squared_vector_field():
    # Bilinear game: the critic maximizes c g, the generator minimizes it.
    critic_loss = lambda c, g, batch, key: (-c * g, {})
    gen_loss = lambda g, c, batch, key: (c * g, {})
    gamma, c, g = 0.3, 1.5, -2.0
    new_critic, new_gen = consensus_losses(critic_loss, gen_loss, gamma)
    # v = (d/dc (-c g), d/dg (c g)) = (-g, c); L = (g^2 + c^2) / 2.
    value, metrics = new_critic(c, g, None, None)
    assert float(value) == pytest.approx(-c * g + gamma * 0.5 * (g ** 2 + c ** 2))
    assert float(metrics["consensus"]) == pytest.approx(0.5 * (g ** 2 + c ** 2))
    assert float(jax.grad(lambda cc: new_critic(cc, g, None, None)[0])(c)) == pytest.approx(
        -g + gamma * c)
    assert float(jax.grad(lambda gg: new_gen(gg, c, None, None)[0])(g)) == pytest.approx(
        c + gamma * g)


def test_began_balance_steers_k_and_stays_in_the_unit_interval():
    real, fake = jnp.array([1.0, 3.0]), jnp.array([0.5, 0.5])  # L(x) = 2, L(G(z)) = 0.5
    k = began_balance(jnp.float32(0.2), real, fake, gamma=0.5, lambda_k=0.1)
    assert float(k) == pytest.approx(0.2 + 0.1 * (0.5 * 2.0 - 0.5))
    assert float(began_balance(jnp.float32(0.99), real, fake, 0.5, 1.0)) == 1.0
    assert float(began_balance(jnp.float32(0.01), real, 10 * fake, 0.5, 1.0)) == 0.0


def test_a_stateful_step_threads_began_balance_spectral_norm_and_noise_schedule():
    """BEGAN with a spectrally normalized autoencoder critic and annealed instance noise:
    the step carries k_t, the power-iteration vectors and the update counter."""
    gen, critic = MLP((8, 2)), SpectralMLP((8, 2))  # the critic reconstructs 2-D points
    game = make_gan_game(gen, critic, 2, loss="began", began_gamma=0.7, began_lambda_k=0.05,
                         spectral_norm=True, instance_noise=0.2, instance_noise_anneal=30)
    gen_params = gen.init(jax.random.key(0), jnp.zeros((1, 2)))
    variables = critic.init(jax.random.key(1), jnp.zeros((1, 2)))
    variables = {"params": jax.tree.map(lambda w: 4.0 * w, variables["params"]),
                 "batch_stats": variables["batch_stats"]}
    critic_params, game_state = game.init(variables)
    assert set(game_state) == {"loss", "updates", "spectral"} and "batch_stats" not in \
        critic_params
    game_state["loss"]["k"] = jnp.float32(0.5)
    opt = optax.adam(1e-4, b1=0.5)
    state = MinMaxState.create(gen_params, critic_params, opt, opt, jax.random.key(2),
                               game=game_state)
    step = make_minmax_step(game.critic_loss, game.gen_loss, opt, opt, data_mesh(1),
                            stateful=True)
    data = np.random.default_rng(0).normal(size=(40, 1, 32, 2)).astype(np.float32)
    k = 0.5
    for t in range(40):
        state, metrics = step(state, data[t])
        assert float(metrics["critic/k"]) == pytest.approx(k, abs=1e-6)  # the k it used
        k = min(1.0, max(0.0, k + 0.05 * (0.7 * float(metrics["critic/critic_real"])
                                          - float(metrics["critic/critic_fake"]))))
        np.testing.assert_allclose(float(state.game["loss"]["k"]), k, atol=1e-5)
    assert int(state.game["updates"]) == 40 and float(metrics["critic/instance_noise"]) == 0.0
    # 40 power iterations track the slowly moving kernels: W / sigma_hat has norm 1.
    kernels = {path: leaf for path, leaf in jax.tree_util.tree_leaves_with_path(
        state.critic_params) if "kernel" in jax.tree_util.keystr(path)}
    sigmas = {jax.tree_util.keystr(path): leaf for path, leaf in
              jax.tree_util.tree_leaves_with_path(state.game["spectral"])
              if "sigma" in jax.tree_util.keystr(path)}
    assert len(kernels) == len(sigmas) == 2
    for kernel, sigma in zip(kernels.values(), [sigmas[name] for name in sorted(sigmas)]):
        assert float(largest_singular_value(kernel) / sigma) == pytest.approx(1.0, abs=1e-2)


# --- registry, composition and validation -----------------------------------------------------


def test_the_registries_hold_every_loss_and_penalty():
    assert set(GAN_LOSSES.names()) == {
        "minimax", "non_saturating", "wgan", "wgan_gp", "lsgan", "dragan", "hinge", "began",
        "mmd", "fgan_kl", "fgan_reverse_kl", "fgan_js", "fgan_pearson", "fgan_hellinger"}
    assert PENALTIES.names() == ["dragan", "gp", "none", "r1", "r2"]
    with pytest.raises(ValueError, match="unknown GAN loss 'wasserstein'; valid choices: began"):
        GAN_LOSSES.get("wasserstein")


@pytest.mark.parametrize("options, message", [
    (dict(loss="wgann"), "unknown GAN loss 'wgann'; valid choices: began, dragan"),
    (dict(loss="fgan_tv"),
     "unknown f-divergence 'tv'; valid choices: hellinger, js, kl, pearson, reverse_kl"),
    (dict(loss="hinge", penalty="gp2"), "unknown GAN penalty 'gp2'; valid choices: dragan, gp"),
    (dict(loss="wgan", penalty="gp"),
     "weight clipping \\(clip=0.01, the default of loss 'wgan'\\) cannot be combined with the "
     "gradient penalty 'gp'"),
    (dict(loss="hinge", penalty="r1", clip=0.05), "weight clipping \\(clip=0.05\\) cannot"),
    (dict(loss="wgan_gp", penalty="r1"), "loss 'wgan_gp' already includes the penalty 'gp'"),
    (dict(critic_steps=0), "critic_steps \\(k critic updates per generator update\\) must be "
                           "an integer >= 1, got 0"),
    (dict(loss="wgan", label_smoothing=0.1),
     "label_smoothing needs a loss with real / fake targets \\(dragan, minimax, "
     "non_saturating\\)"),
    (dict(loss="hinge", penalty_weight=5.0), "penalty_weight=5.0 but loss 'hinge' has no "
                                             "penalty; set penalty to one of: dragan, gp, r1, r2"),
    (dict(loss="mmd", penalty="r1"), "feature-valued critic"),
    (dict(loss="began", began_gamma=1.5), "gamma must be in \\[0, 1\\]"),
    (dict(instance_noise_anneal=10), "instance_noise_anneal is set but instance_noise is 0"),
    (dict(label_smoothing=1.0), "label_smoothing must be in \\[0, 1\\)"),
    (dict(clip=-1.0), "clip must be >= 0"),
])
def test_bad_configurations_are_named_before_training(options, message):
    with pytest.raises(ValueError, match=message):
        make_gan_game(MLP((2,)), MLP((1,)), 2, **options)


def test_stateless_losses_refuse_what_needs_the_game():
    gen, critic = MLP((2,)), MLP((1,))
    with pytest.raises(ValueError, match="weight clipping \\(clip=0.01\\).*make_gan_game"):
        make_gan_losses(gen, critic, 2, "wgan")
    for options in (dict(loss="began"), dict(spectral_norm=True),
                    dict(instance_noise=0.1, instance_noise_anneal=5)):
        with pytest.raises(ValueError, match="make_gan_game"):
            make_gan_losses(gen, critic, 2, **options)
    make_gan_losses(gen, critic, 2, "wgan", clip=0.0)  # WGAN without clipping is expressible
    game = make_gan_game(gen, SpectralMLP((4, 1)), 2, loss="hinge")
    with pytest.raises(ValueError, match="set spectral_norm=True"):
        game.init(SpectralMLP((4, 1)).init(jax.random.key(0), jnp.zeros((1, 2))))
    game = make_gan_game(gen, critic, 2, loss="hinge", spectral_norm=True)
    with pytest.raises(ValueError, match="wrap its layers in flax.linen.SpectralNorm"):
        game.init(critic.init(jax.random.key(0), jnp.zeros((1, 2))))
