"""Variational bounds and their gradient estimators, checked against closed forms.

Most checks use a linear-Gaussian model, z ~ N(0, I_2), x = W z + b + sigma eps
in R^3, built from the library's own VAE with affine encoder and decoder
(``hidden=()``), so the numbers come from the code a user trains. With W = U
diag(s) (orthonormal U) and one sigma, the exact posterior is the diagonal
Gaussian

    Var[z_i | x] = 1 / (1 + s_i^2 / sigma^2),   E[z | x] = Var W^T (x - b) / sigma^2,

affine in x, which the affine encoder represents exactly; and

    log p(x) = log N(x; b, W W^T + sigma^2 I),
    ELBO(q)  = log N(x; W mu + b, sigma^2 I) - sum_j (W^2 s_q^2)_j / (2 sigma^2)
               - KL(N(mu, s_q^2) || N(0, I))

for any diagonal Gaussian q = N(mu, diag(s_q^2)).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special, stats

from gmjax.models.vae import (amortization_gap, build_vae, importance_sampled_log_likelihood,
                              optimize_local_posteriors)
from gmjax.objectives.elbo import (GRADIENT_ESTIMATORS, DiagonalGaussian, bernoulli_log_prob,
                                   elbo_loss, gaussian_log_prob, iwae_bound, iwae_loss,
                                   kl_standard_normal, log_importance_weights,
                                   running_mean_optimizer)

SIGMA = 0.5
S = np.array([2.0, 1.0])
B = np.array([0.1, -0.2, 0.3])
U = np.linalg.qr(np.array([[1.0, 0.2], [0.3, -1.0], [0.5, 0.4]]))[0]  # [3, 2], orthonormal
W = U * S  # [3, 2]
POST_VAR = 1.0 / (1.0 + S ** 2 / SIGMA ** 2)  # [2]
A = (POST_VAR[:, None] * W.T) / SIGMA ** 2  # [2, 3]: E[z | x] = A (x - b)
COV_X = W @ W.T + SIGMA ** 2 * np.eye(3)


def data(n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal(B, COV_X, size=n).astype(np.float32)  # [n, 3]


def log_marginal(x: np.ndarray) -> np.ndarray:  # [n]
    return stats.multivariate_normal(B, COV_X).logpdf(x)


def linear_gaussian(shift: float = 0.0, widen: float = 0.0):
    """The model and parameters with the exact posterior moved by ``shift`` (in the mean)
    and widened by ``widen`` (in log sigma)."""
    model = build_vae({"name": "vae", "hidden": (), "latent_dim": 2, "likelihood": "gaussian",
                       "variance": "learned", "scale": SIGMA}, (3,))
    head = {"kernel": jnp.asarray(np.concatenate([A.T, np.zeros((3, 2))], axis=1), jnp.float32),
            "bias": jnp.asarray(np.concatenate([-A @ B + shift,
                                                0.5 * np.log(POST_VAR) + widen]), jnp.float32)}
    decoder = {"Dense_0": {"kernel": jnp.asarray(W.T, jnp.float32),
                           "bias": jnp.asarray(B, jnp.float32)},
               "log_scale": jnp.full((3,), math.log(SIGMA), jnp.float32)}
    params = {"encoder": {"net": {"params": {"head": head}}}, "decoder": {"params": decoder}}
    return model, params


def closed_form_elbo(model, params, x):  # [n], differentiable in params
    """The ELBO of the model's (diagonal Gaussian) q at x, in closed form."""
    enc = model.encode(params, x)
    dec = params["decoder"]["params"]
    w_t, b, log_sigma = dec["Dense_0"]["kernel"], dec["Dense_0"]["bias"], dec["log_scale"]
    mean_x = enc.mean @ w_t + b
    expected = gaussian_log_prob(x, mean_x, log_sigma)
    expected -= jnp.sum((jnp.exp(2 * enc.log_scale) @ (w_t ** 2)) / (2 * jnp.exp(2 * log_sigma)),
                        axis=-1)
    return expected - kl_standard_normal(enc.mean, enc.log_scale)


def gradient_samples(losses, params, x, keys):
    """Gradients of each of ``losses`` (a dict) at ``params`` (a dict with the same keys, or
    one pytree for all) for each key, in one compiled call: pytrees of ``[R, ...]`` arrays."""
    if not (isinstance(params, dict) and params.keys() == losses.keys()):
        params = dict.fromkeys(losses, params)

    def one_key(params, key):
        return {name: jax.grad(lambda p: loss(p, x, key)[0])(params[name])
                for name, loss in losses.items()}

    return jax.jit(jax.vmap(one_key, in_axes=(None, 0)))(params, keys)


def flat(tree) -> np.ndarray:
    return np.concatenate([np.asarray(a).reshape(a.shape[0], -1)
                           for a in jax.tree.leaves(tree)], axis=1)


def z_scores(samples: np.ndarray, target: np.ndarray) -> np.ndarray:
    """|mean - target| / standard error, per coordinate (with an absolute floor)."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    return np.abs(mean - target) / (se + 1e-4 * (1.0 + np.abs(target)))


# --- densities and KL --------------------------------------------------------------------


def test_log_probs_match_scipy():
    x = np.array([[0.3, -1.2], [2.0, 0.5]], np.float32)
    mean, log_scale = np.array([0.1, -0.4]), np.array([0.2, -0.3])
    expected = stats.norm(mean, np.exp(log_scale)).logpdf(x).sum(-1)
    np.testing.assert_allclose(gaussian_log_prob(x, mean, log_scale), expected, rtol=1e-5)
    bits, logits = np.array([[1.0, 0.0, 1.0]]), np.array([[0.3, -2.0, 4.0]])
    expected = stats.bernoulli(1 / (1 + np.exp(-logits))).logpmf(bits).sum(-1)
    np.testing.assert_allclose(bernoulli_log_prob(bits, logits), expected, rtol=1e-5)


def test_analytic_kl_is_the_closed_form_and_the_mc_kl_mean():
    mean, log_scale = jnp.array([[1.0, -0.5]]), jnp.log(jnp.array([[2.0, 0.3]]))
    by_hand = 0.5 * (1 + 4 - 1 - 2 * math.log(2)) + 0.5 * (0.25 + 0.09 - 1 - 2 * math.log(0.3))
    assert float(kl_standard_normal(mean, log_scale)[0]) == pytest.approx(by_hand, rel=1e-6)

    @jax.jit
    def draws(key):
        q = DiagonalGaussian(mean, log_scale)
        z, log_q = q.sample_and_log_prob(key, 200_000)
        return log_q, q.log_prob(z), log_q - gaussian_log_prob(z, 0.0, 0.0)

    log_q, log_prob, mc = (np.asarray(a)[:, 0] for a in draws(jax.random.PRNGKey(0)))
    assert log_prob == pytest.approx(log_q, abs=1e-4)
    assert abs(mc.mean() - by_hand) < 4 * mc.std() / math.sqrt(mc.size)
    assert mc.std() > 0.1  # the MC estimate is noisy; the analytic one is not


# --- bounds against log p(x) -------------------------------------------------------------


def test_elbo_at_the_exact_posterior_is_log_p_for_every_sample():
    model, params = linear_gaussian()
    x = jnp.asarray(data())
    mc_loss = elbo_loss(model, kl="mc", num_samples=4)
    analytic_loss = elbo_loss(model, kl="analytic", num_samples=4096)

    @jax.jit
    def run(params, key):
        keys = jax.random.split(key, 3)
        return (log_importance_weights(model, params, x, keys[0], 16), mc_loss(params, x, keys[1]),
                analytic_loss(params, x, keys[2])[1], closed_form_elbo(model, params, x))

    log_w, (loss, mc), analytic, closed = run(params, jax.random.PRNGKey(1))
    log_p = log_marginal(x)
    np.testing.assert_allclose(np.asarray(log_w), np.broadcast_to(log_p, (16, 6)), atol=2e-4)
    assert float(mc["elbo"]) == pytest.approx(log_p.mean(), abs=2e-4)
    assert float(loss) == pytest.approx(-float(mc["elbo"]), abs=1e-5)
    # With the analytic KL only the reconstruction term is sampled: exact in expectation.
    assert float(analytic["elbo"]) == pytest.approx(log_p.mean(), abs=0.03)
    np.testing.assert_allclose(closed, log_p, atol=2e-4)


def test_elbo_and_iwae_bounds_approach_log_p_in_order():
    model, params = linear_gaussian(shift=0.4, widen=0.5)
    x = jnp.asarray(data())
    log_p = log_marginal(x).mean()
    ks = (1, 10, 100, 1000)

    @jax.jit
    def run(params, key):  # E[L_k] from 100_000 / k independent estimates, per k
        log_w = log_importance_weights(model, params, x, key, 100_000)
        return (log_w, {k: jnp.mean(iwae_bound(log_w.reshape(k, -1, 6))) for k in ks},
                jnp.mean(closed_form_elbo(model, params, x)))

    log_w, by_k, elbo = run(params, jax.random.PRNGKey(3))
    elbo = float(elbo)
    assert log_p - elbo > 0.5  # a poor posterior, so the bounds have room to move
    assert float(np.mean(log_w)) == pytest.approx(elbo, abs=0.02)
    groups = np.asarray(log_w, np.float64).reshape(10, -1, 6)
    assert float(by_k[10]) == pytest.approx(
        float(np.mean(special.logsumexp(groups, axis=0) - math.log(10))), abs=1e-4)
    bounds = [float(by_k[k]) for k in ks]
    assert bounds[0] == pytest.approx(elbo, abs=0.02)
    assert all(a < b for a, b in zip(bounds, bounds[1:]))
    assert bounds[-1] < log_p + 0.01
    assert log_p - bounds[-1] < 0.05 * (log_p - elbo)


def test_importance_sampled_log_likelihood_matches_the_closed_form():
    model, params = linear_gaussian(shift=0.4, widen=0.5)
    x = jnp.asarray(data(12, seed=1))
    estimate = importance_sampled_log_likelihood(model, params, x, jax.random.PRNGKey(4),
                                                 num_samples=5000, chunk_size=700, batch_size=5)
    exact = log_marginal(x)
    assert abs(estimate.mean - exact.mean()) < 4 * estimate.stderr + 1e-3
    np.testing.assert_array_less(np.abs(estimate.per_example - exact),
                                 4 * estimate.per_example_stderr + 1e-3)
    assert 0 < estimate.stderr < 0.01
    closed = jax.jit(lambda p: jnp.mean(closed_form_elbo(model, p, x)))(params)
    assert float(np.mean(estimate.elbo)) == pytest.approx(float(closed), abs=0.03)
    # The standard errors describe the spread of independent estimates.
    small = [importance_sampled_log_likelihood(model, params, x[:5], jax.random.PRNGKey(s),
                                               num_samples=50, batch_size=5)
             for s in range(30)]
    spread = np.std([e.per_example for e in small], axis=0, ddof=1)  # [5]
    se = np.mean([e.per_example_stderr for e in small], axis=0)
    np.testing.assert_array_less(0.6, spread / se)
    np.testing.assert_array_less(spread / se, 1.6)


# --- gradient estimators -----------------------------------------------------------------


ELBO_ESTIMATORS = [("total", "analytic", "none"), ("total", "mc", "none"),
                   ("stl", "mc", "none"), ("dreg", "mc", "none"),
                   ("score", "analytic", "none"), ("score", "mc", "running_mean")]


def test_elbo_gradient_estimators_are_unbiased():
    """Each estimator's mean gradient (all parameters) is the closed-form ELBO's gradient."""
    model, params = linear_gaussian(shift=0.4, widen=0.3)
    x = jnp.asarray(data(4))
    true = jax.jit(jax.grad(lambda p: jnp.mean(closed_form_elbo(model, p, x))))(params)
    true = flat(jax.tree.map(lambda a: a[None], true))[0]
    losses = {spec: elbo_loss(model, kl=spec[1], num_samples=64, estimator=spec[0],
                              baseline=spec[2]) for spec in ELBO_ESTIMATORS}
    # The running mean starts near the bound, as after some training.
    all_params = {spec: params if spec[2] == "none" else
                  dict(params, baseline={"mean": jnp.asarray(-6.0)}) for spec in losses}
    grads = gradient_samples(losses, all_params, x, jax.random.split(jax.random.PRNGKey(5), 300))
    for spec, g in grads.items():
        g.pop("baseline", None)
        z = z_scores(-flat(g), true)
        assert z.max() < 5.0, (spec, z)


def test_stl_and_dreg_have_zero_variance_at_the_exact_posterior():
    model, params = linear_gaussian()
    x = jnp.asarray(data(4))
    losses = {"stl": elbo_loss(model, kl="mc", estimator="stl", num_samples=2),
              "dreg": iwae_loss(model, estimator="dreg", num_samples=4),
              "total": elbo_loss(model, kl="mc", num_samples=2)}
    grads = gradient_samples(losses, params, x, jax.random.split(jax.random.PRNGKey(6), 8))
    for name in ("stl", "dreg"):
        assert np.abs(flat(grads[name]["encoder"])).max() < 1e-3
    total = flat(grads["total"]["encoder"])
    assert total.std(axis=0).max() > 0.1  # the score term of the total derivative is not 0


def test_dreg_matches_the_iwae_gradient():
    """DReG and the IWAE total derivative: the same decoder gradient sample by sample, the
    same expected encoder gradient; the path derivative (STL) is biased for IWAE, and the
    test sees it."""
    model, params = linear_gaussian(shift=0.4, widen=0.3)
    x = jnp.asarray(data(4))
    keys = jax.random.split(jax.random.PRNGKey(7), 3000)
    grads = gradient_samples({name: iwae_loss(model, num_samples=8, estimator=name)
                              for name in ("total", "dreg", "stl", "score")}, params, x, keys)
    np.testing.assert_allclose(flat(grads["dreg"]["decoder"]), flat(grads["total"]["decoder"]),
                               rtol=1e-4, atol=1e-4)
    total = flat(grads["total"]["encoder"])
    for name in ("dreg", "score"):  # unbiased: within a few combined standard errors
        diff = flat(grads[name]["encoder"]) - total
        assert z_scores(diff, np.zeros(diff.shape[1])).max() < 5.0, name
    dreg = flat(grads["dreg"]["encoder"])
    assert np.all(dreg.std(axis=0) < total.std(axis=0))  # and of lower variance
    diff = flat(grads["stl"]["encoder"]) - total
    assert z_scores(diff, np.zeros(diff.shape[1])).max() > 8.0


def test_losses_report_the_bound_and_refuse_bad_combinations():
    model, params = linear_gaussian(shift=0.4)
    x = jnp.asarray(data(4))
    losses = {name: iwae_loss(model, num_samples=6, estimator=name)
              for name in GRADIENT_ESTIMATORS}
    losses["beta"] = elbo_loss(model, beta=4.0, kl="analytic")
    # The same key, so the same samples: the same bound, whatever the gradient.
    values = jax.jit(lambda p, key: {name: loss(p, x, key) for name, loss in losses.items()})(
        params, jax.random.PRNGKey(8))
    beta = values.pop("beta")[1]
    for name, (loss, metrics) in values.items():
        assert float(loss) == pytest.approx(-float(metrics["iwae_k"]), rel=1e-6), name
        assert float(metrics["iwae_k"]) == pytest.approx(float(values["total"][1]["iwae_k"]),
                                                         rel=1e-6)
    metrics = values["total"][1]
    assert float(metrics["iwae_k"]) >= float(metrics["elbo"])
    assert float(metrics["elbo"]) == pytest.approx(
        float(metrics["reconstruction"] - metrics["kl"]), abs=1e-4)
    assert float(beta["beta_elbo"]) == pytest.approx(
        float(beta["reconstruction"] - 4.0 * beta["kl"]), abs=1e-4)
    with pytest.raises(ValueError, match="kl='mc'"):
        elbo_loss(model, kl="analytic", estimator="stl")
    with pytest.raises(ValueError, match="only the 'score' estimator"):
        elbo_loss(model, estimator="total", baseline="running_mean")
    with pytest.raises(ValueError, match="valid choices: dreg, score, stl, total"):
        elbo_loss(model, estimator="reinforce")
    with pytest.raises(ValueError, match="valid choices: learned, none, running_mean"):
        elbo_loss(model, estimator="score", baseline="mean")
    with pytest.raises(ValueError, match="num_samples"):
        iwae_loss(model, num_samples=0)


def test_running_mean_baseline_is_an_exponential_running_mean():
    model, params = linear_gaussian(shift=0.4)
    x = jnp.asarray(data(4))
    params = dict(params, baseline={"mean": jnp.asarray(-3.0)})
    loss = elbo_loss(model, estimator="score", baseline="running_mean", kl="mc")
    optimizer = running_mean_optimizer(optax.adam(1e-3), decay=0.9)

    @jax.jit
    def step(params, key):
        (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params, x, key)
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        return optax.apply_updates(params, updates), value, metrics

    new, value, metrics = step(params, jax.random.PRNGKey(9))
    assert float(new["baseline"]["mean"]) == pytest.approx(
        0.9 * -3.0 + 0.1 * float(metrics["elbo"]), rel=1e-5)
    assert float(value) == pytest.approx(-float(metrics["elbo"]), rel=1e-6)


# --- amortization gap --------------------------------------------------------------------


def test_local_optimization_closes_the_amortization_gap():
    """With the exact posterior inside the family, local optimization reaches log p(x):
    the approximation gap is ~0 and the amortization gap is log p(x) - ELBO(encoder)."""
    model, params = linear_gaussian(shift=0.5, widen=0.4)
    x = jnp.asarray(data(6))
    gap = amortization_gap(model, params, x, jax.random.PRNGKey(10), steps=300,
                           learning_rate=0.05, eval_samples=2000, is_samples=2000)
    log_p = log_marginal(x).mean()
    amortized = float(jax.jit(lambda p: jnp.mean(closed_form_elbo(model, p, x)))(params))
    assert gap.log_likelihood == pytest.approx(log_p, abs=0.01)
    assert gap.amortized_elbo == pytest.approx(amortized, abs=0.05)
    assert abs(gap.approximation_gap) < 0.02
    assert gap.amortization_gap == pytest.approx(log_p - amortized, abs=0.05)
    local, trace = optimize_local_posteriors(model, params, x, jax.random.PRNGKey(11), 300,
                                             0.05, 8)
    exact_mean = (np.asarray(x) - B) @ A.T
    np.testing.assert_allclose(local.mean, exact_mean, atol=0.05)
    np.testing.assert_allclose(np.exp(local.log_scale), np.broadcast_to(np.sqrt(POST_VAR),
                                                                        (6, 2)), rtol=0.1)
    assert float(trace[-1]) > float(trace[0])
