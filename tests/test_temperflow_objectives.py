"""TemperFlow's estimators, stage losses and schedule rules against closed forms and quadrature."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from gmjax.flows.base import Flow
from gmjax.models.flow import build_flow
from gmjax.objectives import sampler_losses as L
from gmjax.objectives import tempering as T
from gmjax.samplers.rejection import rejection_sample
from gmjax.samplers.temperflow import next_log_beta_step, stage_peak_lr
from gmjax.samplers.temperflow import schedule as rules
from gmjax.targets import build_target
from gmjax.targets.base import Target
from gmjax.training.optim import one_cycle


def normal_logpdf(x, mu, sigma):
    return -0.5 * jnp.square((x - mu) / sigma) - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)


def mixture_logpdf(x):  # 1-D, 0.3 N(-2, 0.5^2) + 0.7 N(2, 0.5^2)
    return jnp.logaddexp(math.log(0.3) + normal_logpdf(x, -2.0, 0.5),
                         math.log(0.7) + normal_logpdf(x, 2.0, 0.5))


def reference_draws(n, scale=3.0, seed=0):
    y = scale * jax.random.normal(jax.random.PRNGKey(seed), (n,))
    return y, normal_logpdf(y, 0.0, scale)


class ShiftedNormal(Target):
    """N(1, 0.7^2) on R, known up to the factor e^2 (log U = 2)."""

    name = "shifted_normal"
    log_normalizer = 2.0

    def __init__(self):
        super().__init__(1)

    def log_prob(self, x):
        return normal_logpdf(x[..., 0], 1.0, 0.7) + 2.0


def gaussian_flow():
    """The family N(mu, sigma^2) in 1-D as ``FlowFunctions`` (the reference is the family too)."""

    def sample_and_log_prob(params, key, n):
        sigma = jnp.exp(params["log_sigma"])
        x = params["mu"] + sigma * jax.random.normal(key, (n, 1))
        return x, normal_logpdf(x[:, 0], params["mu"], sigma)

    def log_prob(params, x):
        return normal_logpdf(x[:, 0], params["mu"], jnp.exp(params["log_sigma"]))

    return L.FlowFunctions(sample_and_log_prob, log_prob, sample_and_log_prob)


def gaussian_params(mu, sigma):
    return {"mu": jnp.float32(mu), "log_sigma": jnp.float32(math.log(sigma))}


# The reference N(0, 3^2), beta = 1 and the target's log U = 2.
GAUSSIAN_COND = {"beta": jnp.float32(1.0), "log_u": jnp.float32(2.0),
                 "ref_params": gaussian_params(0.0, 3.0)}


# ----------------------------------------------------------------- estimators


def test_log_normalizer_recovers_known_constant_of_gaussian_mixture():
    y, log_r = reference_draws(200_000)
    log_c = 3.7  # the target is a normalized mixture times e^3.7
    estimate = T.log_normalizer(mixture_logpdf(y) + log_c, log_r)
    assert abs(float(estimate) - log_c) < 0.01


def test_log_normalizer_of_tempered_gaussian_matches_closed_form():
    # ∫ N(x; 0, s^2)^beta dx = (2 pi s^2)^{(1 - beta) / 2} / sqrt(beta)
    s, beta = 0.8, 0.3
    y, log_r = reference_draws(200_000)
    estimate = T.log_normalizer(beta * normal_logpdf(y, 0.0, s), log_r)
    exact = 0.5 * (1 - beta) * math.log(2 * math.pi * s * s) - 0.5 * math.log(beta)
    assert abs(float(estimate) - exact) < 0.01


def quadrature_kl(beta, grid=np.linspace(-12, 12, 200_001)):
    """kl(beta) = KL(p_beta || p_1) on a fine grid, for the 1-D mixture."""
    log_f = np.logaddexp(math.log(0.3) + stats.norm.logpdf(grid, -2.0, 0.5),
                         math.log(0.7) + stats.norm.logpdf(grid, 2.0, 0.5))
    dx = grid[1] - grid[0]

    def log_norm(b):
        a = b * log_f
        return a.max() + math.log(np.sum(np.exp(a - a.max())) * dx)

    log_p_beta = beta * log_f - log_norm(beta)
    log_p_one = log_f - log_norm(1.0)
    return float(np.sum(np.exp(log_p_beta) * (log_p_beta - log_p_one)) * dx)


@pytest.mark.parametrize("beta", [0.2, 0.5, 0.8])
def test_tempering_kl_and_derivative_match_quadrature(beta):
    y, log_r = reference_draws(400_000)
    est = T.tempering_kl(-mixture_logpdf(y), log_r, jnp.float32(beta))
    exact = quadrature_kl(beta)
    h = 1e-3
    exact_grad = (quadrature_kl(beta + h) - quadrature_kl(beta - h)) / (2 * h)
    assert float(est.kl) == pytest.approx(exact, rel=0.02, abs=2e-3)
    assert float(est.grad) == pytest.approx(exact_grad, rel=0.03)
    assert float(est.grad) < 0  # kl shrinks towards beta = 1
    # log U_beta and log U_1 are the log-normalizer estimates from the same draws.
    assert float(est.log_u_beta) == pytest.approx(
        float(T.log_normalizer(beta * mixture_logpdf(y), log_r)), abs=1e-5)
    assert float(est.log_u_one) == pytest.approx(0.0, abs=0.01)


def test_terms_ess_counts_the_draws_an_average_rests_on():
    assert float(T.terms_ess(jnp.full((40,), -3.0))) == pytest.approx(40.0, rel=1e-5)
    # One term e^10 times the others': the average rests on about one draw.
    assert float(T.terms_ess(jnp.array([10.0] + [0.0] * 99))) == pytest.approx(
        (math.exp(10) + 99) ** 2 / (math.exp(20) + 99), rel=1e-4)
    # Two equal dominant terms: two draws.
    assert float(T.terms_ess(jnp.array([50.0, 50.0, 0.0, 0.0]))) == pytest.approx(2.0, rel=1e-5)
    y, log_r = reference_draws(1000)
    log_f = mixture_logpdf(y)
    terms = L.l2_reference_terms(log_r, log_f, log_r, 0.0)
    assert float(L.log_l2_reference(log_r, log_f, log_r, 0.0)) == pytest.approx(
        float(jax.scipy.special.logsumexp(terms) - math.log(1000)), rel=1e-6)


def test_defensive_latent_log_prob_is_the_two_component_mixture():
    z = jax.random.normal(jax.random.PRNGKey(4), (50, 3)) * 2.0
    got = T.defensive_latent_log_prob(z, 2.5, 0.3)
    zn = np.asarray(z, np.float64)
    narrow = stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(zn)
    wide = stats.multivariate_normal(np.zeros(3), 2.5 ** 2 * np.eye(3)).logpdf(zn)
    np.testing.assert_allclose(got, np.logaddexp(np.log(0.7) + narrow, np.log(0.3) + wide),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(T.defensive_latent_log_prob(z, 2.5, 0.0), narrow,
                               rtol=1e-5, atol=1e-5)
    # Event axes: [n, 3, 1] with two event axes is the same density.
    np.testing.assert_allclose(T.defensive_latent_log_prob(z[..., None], 2.5, 0.3, 2), got,
                               rtol=1e-6)
    # Stratified draws: the last round(0.3 n) come from the wide component.
    draws = T.defensive_latent_draws(jax.random.PRNGKey(5), 20_000, (3,), 2.5, 0.3)
    sd = np.asarray(draws).std(axis=0)
    assert draws.shape == (20_000, 3)
    np.testing.assert_allclose(np.asarray(draws[:14_000]).std(), 1.0, rtol=0.02)
    np.testing.assert_allclose(np.asarray(draws[14_000:]).std(), 2.5, rtol=0.02)
    np.testing.assert_allclose(sd, np.sqrt(0.7 + 0.3 * 2.5 ** 2), rtol=0.03)


def test_a_defensive_reference_sees_the_mode_its_flow_misses():
    # The target 0.7 N(0, 1) + 0.3 N(5, 0.3^2) has U = 1. A reference equal to N(0, 1)
    # (the identity flow) almost never draws near 5, so its log U estimate from 10^4
    # draws is log 0.7: the missed mode is invisible. Pushing 30% of the latents from
    # N(0, 3^2) instead draws there about 6% of the time (sd of the estimate about
    # 0.01 at 10^5 draws) and the estimate is log 1 again.
    def log_f(y):
        return jnp.logaddexp(math.log(0.7) + normal_logpdf(y, 0.0, 1.0),
                             math.log(0.3) + normal_logpdf(y, 5.0, 0.3))

    key = jax.random.PRNGKey(6)
    plain = T.defensive_latent_draws(key, 10_000, (1,), 3.0, 0.0)
    plain_r = T.defensive_latent_log_prob(plain, 3.0, 0.0)
    assert float(T.log_normalizer(log_f(plain[:, 0]), plain_r)) == \
        pytest.approx(math.log(0.7), abs=0.03)
    z = T.defensive_latent_draws(key, 100_000, (1,), 3.0, 0.3)
    log_r = T.defensive_latent_log_prob(z, 3.0, 0.3)
    assert float(T.log_normalizer(log_f(z[:, 0]), log_r)) == pytest.approx(0.0, abs=0.05)
    # The L2 loss drawn this way charges a flow N(0, 1) for the missed mode.
    seen = L.log_l2_reference(normal_logpdf(z[:, 0], 0.0, 1.0), log_f(z[:, 0]), log_r, 0.0)
    unseen = L.log_l2_reference(normal_logpdf(plain[:, 0], 0.0, 1.0), log_f(plain[:, 0]),
                                plain_r, 0.0)
    # ||N(0, 1) - f||^2 = ||0.3 N(0, 1) - 0.3 N(5, 0.3^2)||^2 = 0.09 (1 + 1 / 0.3) / (2 sqrt(pi))
    # up to the overlap of the two normals, which is negligible.
    exact = 0.09 / (2 * math.sqrt(math.pi)) * (1 + 1 / 0.3)
    assert float(seen) == pytest.approx(math.log(exact), abs=0.1)
    assert float(unseen) < math.log(exact) - 1.0


# ----------------------------------------------------------------- objectives


def fit_gaussian(loss_of_params, steps=1500, lr=0.03):
    params = {"mu": jnp.float32(-0.5), "log_sigma": jnp.float32(0.5)}
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(loss_of_params)(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, value

    for _ in range(steps):
        params, opt_state, _ = step(params, opt_state)
    return float(params["mu"]), float(jnp.exp(params["log_sigma"]))


@pytest.mark.parametrize("upweight", [False, True])
def test_log_l2_reference_is_minimized_at_the_target(upweight):
    # Target N(1, 0.7^2) known up to e^2; flow family N(mu, sigma^2); reference N(0, 3^2).
    y, log_r = reference_draws(50_000)
    log_f = normal_logpdf(y, 1.0, 0.7) + 2.0
    log_u = T.log_normalizer(log_f, log_r)

    def loss(params):
        log_q = normal_logpdf(y, params["mu"], jnp.exp(params["log_sigma"]))
        return L.log_l2_reference(log_q, log_f, log_r, log_u, upweight=upweight)

    mu, sigma = fit_gaussian(loss)
    assert mu == pytest.approx(1.0, abs=0.03)
    assert sigma == pytest.approx(0.7, abs=0.03)


def test_upweighted_l2_is_the_ratio_form_of_the_squared_difference():
    # 2 max(log p, log q) + 2 log|p/q - 1| - log r is the upweighted term: for p > q it is
    # 2 log(p - q) + 2 log(p/q), for p < q it is 2 log(q - p). This is how the log-L2
    # estimate can be written from the ratio p/q, as the authors' code does.
    key_q, key_p, key_r = jax.random.split(jax.random.PRNGKey(3), 3)
    log_q = 2.0 * jax.random.normal(key_q, (1000,))
    log_p = 2.0 * jax.random.normal(key_p, (1000,))
    log_r = jax.random.normal(key_r, (1000,))
    gap = log_p - log_q
    terms = (2.0 * jnp.maximum(log_p, log_q) + 2.0 * jnp.log(jnp.abs(jnp.expm1(gap))) - log_r)
    ratio_form = jax.scipy.special.logsumexp(terms) - jnp.log(1000.0)
    upweighted = L.log_l2_reference(log_q, log_p, log_r, jnp.float32(0.0), upweight=True)
    plain = L.log_l2_reference(log_q, log_p, log_r, jnp.float32(0.0))
    assert float(upweighted) == pytest.approx(float(ratio_form), abs=1e-4)
    assert float(upweighted) > float(plain) + 0.1


def test_l2_plus_kl_loss_adds_the_reverse_kl_and_keeps_the_target_its_minimizer():
    # A Gaussian "flow" N(mu, sigma^2) in 1-D; reference N(0, 3^2); target N(1, 0.7^2) * e^2.
    flow, target, cond = gaussian_flow(), ShiftedNormal(), GAUSSIAN_COND
    plain = L.make_stage_loss("l2_distance", flow, target, 20_000)
    mixed = L.make_stage_loss("l2_distance", flow, target, 20_000, kl_weight=0.5)
    params = {"mu": jnp.float32(-0.5), "log_sigma": jnp.float32(0.3)}
    key = jax.random.PRNGKey(4)
    l2, l2_metrics = plain(params, cond, key)
    value, metrics = mixed(params, cond, key)
    # Same reference draws, plus half the reverse KL estimated from the flow's own draws.
    assert float(metrics["log_l2"]) == float(l2_metrics["log_l2"])
    assert float(value) == pytest.approx(float(l2) + 0.5 * float(metrics["kl_plus_log_u"]),
                                         abs=1e-5)
    # KL(N(-0.5, e^0.6) || N(1, 0.49)) - log U, in closed form; the estimate from 20,000
    # draws has a standard error of 0.032 here, so this allows four of them.
    s2, t2 = math.exp(0.6), 0.49
    kl = 0.5 * (s2 / t2 + 1.5 ** 2 / t2 - 1.0 + math.log(t2 / s2))
    assert float(metrics["kl_plus_log_u"]) == pytest.approx(kl - 2.0, abs=0.13)

    # The sum is smallest at the target: compared on a grid with fixed draws (Adam on the
    # steep log-L2 funnel oscillates around the minimum at a fixed learning rate).
    key = jax.random.PRNGKey(5)

    def at(mu, sigma):
        return float(mixed(gaussian_params(mu, sigma), cond, key)[0])

    best = at(1.0, 0.7)
    for mu in (0.8, 0.9, 1.0, 1.1, 1.2):
        for sigma in (0.6, 0.65, 0.7, 0.75, 0.8):
            if (mu, sigma) != (1.0, 0.7):
                assert at(mu, sigma) > best + 0.5, (mu, sigma)


def test_reparameterized_l2_is_minimized_at_the_target():
    z = jax.random.normal(jax.random.PRNGKey(1), (50_000,))

    def loss(params):
        sigma = jnp.exp(params["log_sigma"])
        x = params["mu"] + sigma * z
        return L.l2_reparameterized(normal_logpdf(x, params["mu"], sigma),
                                    normal_logpdf(x, 1.0, 0.7) + 2.0, jnp.float32(2.0))

    mu, sigma = fit_gaussian(loss)
    assert mu == pytest.approx(1.0, abs=0.03)
    assert sigma == pytest.approx(0.7, abs=0.03)


def test_l2_reference_estimates_the_l2_distance():
    # ||N(0,1) - N(1,1)||^2 = 2 / (2 sqrt(pi)) - 2 N(1; 0, 2) in closed form.
    y, log_r = reference_draws(400_000)
    log_q, log_p = normal_logpdf(y, 0.0, 1.0), normal_logpdf(y, 1.0, 1.0)
    exact = 1.0 / math.sqrt(math.pi) - 2.0 * math.exp(float(normal_logpdf(1.0, 0.0, math.sqrt(2))))
    estimate = math.exp(float(L.log_l2_reference(log_q, log_p, log_r, jnp.float32(0.0))))
    assert estimate == pytest.approx(exact, rel=0.02)


def test_log_angle_reference_matches_the_closed_form_and_ignores_the_scale_of_f():
    # cos(N(0, 1), N(1, 1)) = ∫ phi_0 phi_1 / ∫ phi^2 = exp(-1/4), so -log cos = 1/4.
    y, log_r = reference_draws(400_000)
    log_q, log_f = normal_logpdf(y, 0.0, 1.0), normal_logpdf(y, 1.0, 1.0)
    assert float(L.log_angle_reference(log_q, log_f, log_r)) == pytest.approx(0.25, abs=0.01)
    assert float(L.log_angle_reference(log_q, log_f + 7.0, log_r)) == pytest.approx(
        float(L.log_angle_reference(log_q, log_f, log_r)), abs=1e-5)
    assert float(L.log_angle_reference(log_f - 3.0, log_f, log_r)) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("objective", [L.log_angle_reference, L.forward_kl_reference],
                         ids=["angle", "forward_kl"])
def test_u_free_objectives_are_minimized_at_the_target(objective):
    # Target N(1, 0.7^2) known up to e^2; flow family N(mu, sigma^2); reference N(0, 3^2).
    y, log_r = reference_draws(50_000)
    log_f = normal_logpdf(y, 1.0, 0.7) + 2.0

    def loss(params):
        log_q = normal_logpdf(y, params["mu"], jnp.exp(params["log_sigma"]))
        return objective(log_q, log_f, log_r)

    mu, sigma = fit_gaussian(loss)
    assert mu == pytest.approx(1.0, abs=0.03)
    assert sigma == pytest.approx(0.7, abs=0.03)


def test_forward_kl_reference_is_the_cross_entropy():
    # -E_p[log q] for p = N(1, 0.7^2) (known up to e^2), q = N(0, 1):
    # log(2 pi) / 2 + (0.7^2 + 1^2) / 2.
    y, log_r = reference_draws(200_000)
    log_f = normal_logpdf(y, 1.0, 0.7) + 2.0
    value = L.forward_kl_reference(normal_logpdf(y, 0.0, 1.0), log_f, log_r)
    assert float(value) == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5 * (0.49 + 1.0),
                                         abs=0.01)


def test_an_underestimated_normalizer_starves_the_minority_mode_and_the_angle_does_not():
    # q_a = a N(-2, 0.5^2) + (1 - a) N(2, 0.5^2) against the mixture 0.3 / 0.7. With
    # log U too low by 0.22 (as the reference estimate was at Clayton p = 8's last stage)
    # ||q - f / U||^2 is smallest at a = (1 - 0.4 c) / 2 = 0.251, c = e^0.22 (modes this
    # far apart barely overlap); -log cos(q, f) needs no U and stays at 0.3.
    y, log_r = reference_draws(200_000)
    log_f = mixture_logpdf(y)
    grid = np.linspace(0.2, 0.4, 81)

    def argmin(loss):
        values = [float(loss(jnp.logaddexp(math.log(a) + normal_logpdf(y, -2.0, 0.5),
                                           math.log(1 - a) + normal_logpdf(y, 2.0, 0.5))))
                  for a in grid]
        return grid[int(np.argmin(values))]

    assert argmin(lambda log_q: L.log_l2_reference(log_q, log_f, log_r, 0.0)) == \
        pytest.approx(0.3, abs=0.006)
    starved = argmin(lambda log_q: L.log_l2_reference(log_q, log_f, log_r, -0.22))
    assert starved == pytest.approx((1 - 0.4 * math.exp(0.22)) / 2, abs=0.006)
    assert argmin(lambda log_q: L.log_angle_reference(log_q, log_f, log_r)) == \
        pytest.approx(0.3, abs=0.006)


def test_reverse_kl_of_matching_gaussians_is_minus_log_constant():
    x = jax.random.normal(jax.random.PRNGKey(2), (1000,))
    log_q = normal_logpdf(x, 0.0, 1.0)
    assert float(L.reverse_kl(log_q, log_q + 1.5)) == pytest.approx(-1.5, abs=1e-5)


def test_log_abs_diff_exp_is_stable():
    a = jnp.array([0.0, 500.0, -500.0, 1.0])
    b = jnp.array([-1.0, 499.0, -501.0, 1.0])
    out = L.log_abs_diff_exp(a, b)
    expected = np.log(1 - np.exp(-1.0))
    np.testing.assert_allclose(np.asarray(out[:3]), [expected, 500 + expected, -500 + expected],
                               rtol=1e-5)
    assert np.isfinite(out[3]) and out[3] < -10
    assert np.all(np.isfinite(np.asarray(jax.grad(lambda a: L.log_abs_diff_exp(a, b).sum())(a))))


# ----------------------------------------------------- the stage-loss registry

REFERENCE_LOSSES = ("l2_distance", "l2_angle", "forward_kl")


def test_the_registry_names_the_four_stage_losses():
    assert L.STAGE_LOSSES.names() == ["forward_kl", "l2_angle", "l2_distance", "reverse_kl"]
    with pytest.raises(ValueError, match="valid choices: forward_kl, l2_angle"):
        L.make_stage_loss("l2", gaussian_flow(), ShiftedNormal(), 10)
    for name in ("reverse_kl", "l2_angle", "forward_kl"):
        with pytest.raises(ValueError, match="upweight"):
            L.make_stage_loss(name, gaussian_flow(), ShiftedNormal(), 10, upweight=True)


@pytest.fixture(scope="module")
def tiny_flow():
    """A 2-D RealNVP as ``FlowFunctions``, its parameters and a perturbed reference."""
    flow = build_flow({"name": "realnvp", "num_layers": 2, "hidden": (16,)}, 2)
    params = flow.init(jax.random.PRNGKey(0), jnp.zeros((2, 2)))
    sample = lambda p, key, n: flow.apply(p, key, n, method=Flow.sample_and_log_prob)  # noqa
    log_prob = lambda p, x: flow.apply(p, x, method=Flow.log_prob)  # noqa: E731
    ref_params = jax.tree.map(lambda a: a + 0.05 * jnp.ones_like(a), params)
    return L.FlowFunctions(sample, log_prob, sample), params, ref_params


@pytest.mark.parametrize("name,kl_weight", [(name, 0.0) for name in L.STAGE_LOSSES.names()]
                         + [(name, 1.0) for name in REFERENCE_LOSSES])
def test_every_stage_loss_is_a_finite_differentiable_scalar_under_jit(tiny_flow, name,
                                                                      kl_weight):
    functions, params, ref_params = tiny_flow
    loss = L.make_stage_loss(name, functions, build_target("circle"), 64, kl_weight=kl_weight)

    def loss_of(params, ref_params):
        cond = {"beta": jnp.float32(0.3), "log_u": jnp.float32(1.0), "ref_params": ref_params}
        return loss(params, cond, jax.random.PRNGKey(1))

    (value, metrics), (grads, ref_grads) = jax.jit(
        jax.value_and_grad(loss_of, argnums=(0, 1), has_aux=True))(params, ref_params)
    assert value.shape == () and np.isfinite(float(value))
    assert metrics and all(np.isfinite(float(v)) for v in metrics.values())
    leaves = jax.tree.leaves(grads)
    assert leaves and all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
    assert any(np.any(np.asarray(g) != 0) for g in leaves)
    if kl_weight:
        assert "kl_plus_log_u" in metrics
    # The reference is frozen: a stage loss carries no gradient to it.
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(ref_grads))


@pytest.mark.parametrize("name", L.STAGE_LOSSES.names())
def test_every_stage_loss_is_lower_at_the_target_than_at_a_perturbed_density(name):
    # Flow family N(mu, sigma^2), target N(1, 0.7^2) * e^2, reference N(0, 3^2): every stage
    # loss is minimized at q = p (the reverse KL by Gibbs, the reference losses on the
    # reference's draws), so with fixed draws the target beats each perturbation.
    loss = jax.jit(L.make_stage_loss(name, gaussian_flow(), ShiftedNormal(), 20_000))
    key = jax.random.PRNGKey(7)
    at_target = float(loss(gaussian_params(1.0, 0.7), GAUSSIAN_COND, key)[0])
    for mu, sigma in ((1.3, 0.7), (0.7, 0.7), (1.0, 0.5), (1.0, 1.0)):
        perturbed = float(loss(gaussian_params(mu, sigma), GAUSSIAN_COND, key)[0])
        assert perturbed > at_target, (mu, sigma)
    if name == "reverse_kl":  # at q = p, E_q[log q - log f] = -log U exactly
        assert at_target == pytest.approx(-2.0, abs=1e-4)
    if name == "l2_angle":
        assert at_target == pytest.approx(0.0, abs=1e-5)


# ------------------------------------------------------------ schedule rules


def old_next_log_beta_step(kl, kl_grad, beta, past, kl_decay):
    """The rule with the list of past steps, as it was first written: the reference."""
    delta = -(1.0 - kl_decay) * kl / beta / kl_grad if kl_grad != 0 else math.inf
    if not math.isfinite(delta):
        delta = math.inf
    if not past:
        return float(min(delta, 1.0))
    weights = 0.9 ** np.arange(len(past) - 1, -1, -1, dtype=np.float64)
    avg = float(np.sum(np.abs(past) * weights) / np.sum(weights))
    return float(min(max(abs(delta), 0.5 * avg), 2.0 * avg))


def average_of(past):
    step_sum, step_weight = 0.0, 0.0
    for delta in past:
        step_sum, step_weight = rules.update_step_average(step_sum, step_weight, delta)
    return step_sum, step_weight


def test_next_log_beta_step_rule():
    # Linearized: kl + beta * grad * delta = kl_decay * kl.
    assert next_log_beta_step(2.0, -10.0, 0.5, 0.0, 0.0, 0.8) == pytest.approx(
        0.2 * 2.0 / 0.5 / 10.0)
    assert next_log_beta_step(100.0, -1.0, 0.1, 0.0, 0.0, 0.8) == 1.0  # first step capped at 1
    past = average_of([0.2, 0.2])
    assert next_log_beta_step(100.0, -1.0, 0.5, *past, 0.8) == pytest.approx(0.4)  # <= 2 avg
    assert next_log_beta_step(1e-6, -1.0, 0.5, *past, 0.8) == pytest.approx(0.1)  # >= avg / 2
    assert next_log_beta_step(1.0, 0.0, 0.5, *past, 0.8) == pytest.approx(0.4)  # flat kl


@pytest.mark.parametrize("past", [[], [0.2], [0.2, 0.2], [1.0, 0.3, 0.05],
                                  [0.7, 0.1, 0.4, 0.02, 0.9, 0.3], list(np.geomspace(1, 1e-3, 30))])
def test_the_running_step_average_is_the_rule_with_the_list_of_past_steps(past):
    step_sum, step_weight = average_of(past)
    for kl, grad, beta in ((2.0, -10.0, 0.5), (100.0, -1.0, 0.1), (1e-6, -1.0, 0.5),
                           (1.0, 0.0, 0.5), (0.3, -4.0, 0.9), (5.0, -0.2, 0.05)):
        for kl_decay in (0.8, 0.5):
            assert next_log_beta_step(kl, grad, beta, step_sum, step_weight, kl_decay) == \
                pytest.approx(old_next_log_beta_step(kl, grad, beta, past, kl_decay), rel=1e-12)


def test_refresh_reference_rule():
    cutoffs = (0.8, 0.5)
    # Below the next unused cutoff times the first kl: refresh and use the cutoff up.
    assert rules.refresh_reference(7.9, 10.0, 0, cutoffs) == (True, 1)
    assert rules.refresh_reference(8.1, 10.0, 0, cutoffs) == (False, 0)
    assert rules.refresh_reference(7.0, 10.0, 1, cutoffs) == (False, 1)  # next cutoff: 5
    assert rules.refresh_reference(4.9, 10.0, 1, cutoffs) == (True, 2)
    assert rules.refresh_reference(0.1, 10.0, 2, cutoffs) == (False, 2)  # all used up
    # No cutoffs: a fresh reference after every stage.
    assert rules.refresh_reference(100.0, 10.0, 0, ()) == (True, 0)
    # Even a jump straight below several cutoffs uses one per stage.
    assert rules.refresh_reference(0.1, 10.0, 0, cutoffs) == (True, 1)


def test_stage_peak_lr_rule():
    assert stage_peak_lr(1e-3, 0.25, 0.9, 0) == pytest.approx(2e-3)
    assert stage_peak_lr(1e-3, 0.25, 0.9, 2) == pytest.approx(2e-3 * 0.81)
    assert stage_peak_lr(1e-3, 1.0, 0.9, 3) == pytest.approx(1e-3 * 0.729)


def test_fixed_grid_is_geometric_from_beta0_to_one():
    grid = rules.fixed_grid(0.1, 5)
    np.testing.assert_allclose(grid, [0.1, 0.1 ** 0.75, 0.1 ** 0.5, 0.1 ** 0.25, 1.0])


def test_steps_growth_gives_late_stages_more_steps():
    # 200 / 0.9 ** (i - 1) = 200, 222, 247, 274, 305, 339, 376, 418, 464, 516 ...
    assert [rules.middle_steps(200, 1 / 0.9, i, 100) for i in range(1, 11)] == \
        [200, 200, 200, 300, 300, 300, 400, 400, 500, 500]
    assert {rules.middle_steps(200, 1.0, i, 100) for i in range(1, 30)} == {200}
    assert rules.middle_steps(40, 1.0, 1, 100) == 100  # never below one compiled call


def test_one_cycle_schedule_shape():
    lr = np.asarray([one_cycle(t, 1000, 1e-3) for t in (0, 300, 1000)])
    np.testing.assert_allclose(lr, [1e-3 / 25, 1e-3, 1e-3 / 25 / 1e4], rtol=1e-4)


def test_rejection_sampling_is_exact_and_reports_acceptance():
    # Proposal N(0, 2^2), target N(0, 1) up to a constant: sup p / q = 2, acceptance 1/2.
    def propose(params, key, n):
        x = 2.0 * jax.random.normal(key, (n, 1))
        return x, normal_logpdf(x[:, 0], 0.0, 2.0)

    target = lambda x: normal_logpdf(x[:, 0], 0.0, 1.0) + 5.0  # noqa: E731
    x, info = rejection_sample(propose, None, target, jax.random.PRNGKey(3), 20_000)
    assert x.shape == (20_000, 1)
    assert info["acceptance_rate"] == pytest.approx(0.5, abs=0.02)
    assert stats.kstest(np.asarray(x[:, 0]), "norm").pvalue > 0.01
