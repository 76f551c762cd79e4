"""Diffusion and score models against closed forms for Gaussian data.

For data x_0 ~ N(mu, S) every marginal of the forward processes is Gaussian,
so the exact noise predictor and score are known:

    DDPM:  x_t ~ N(sqrt(abar) mu, abar S + (1 - abar) I),
           eps*(x_t, t) = sqrt(1 - abar) (abar S + (1 - abar) I)^-1 (x_t - sqrt(abar) mu);
    SDE:   x_t ~ N(m mu, m^2 S + s^2 I),  score = -(m^2 S + s^2 I)^-1 (x_t - m mu).

Samplers driven by them must reproduce N(mu, S); losses at them must equal
their known minima.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.scipy.stats import multivariate_normal as mvn

from gmjax.flows.ode import ODEOptions
from gmjax.nets import TimeMLP, UNet
from gmjax.objectives.diffusion import (ddpm_loss, ddpm_vlb, discretized_gaussian_log_likelihood,
                                        dsm_loss, gaussian_kl, ncsn_loss, score_sde_loss,
                                        sliced_score_matching_loss)
from gmjax.objectives.diffusion_process import (make_schedule, make_sde, q_mean_variance,
                                                q_posterior, q_sample, schedule_from_betas)
from gmjax.samplers.diffusion import (ancestral_sample, annealed_langevin_sample, ddim_sample,
                                      ddim_timesteps, euler_maruyama_sample, geometric_sigmas,
                                      langevin_step, predictor_corrector_sample,
                                      probability_flow_log_prob, probability_flow_sample)
from gmjax.training import TrainState, data_mesh, make_optimizer, make_train_step

MU = np.array([1.0, -0.5], np.float32)
S = np.array([[0.5, 0.3], [0.3, 0.4]], np.float32)
LAM, U = np.linalg.eigh(S.astype(np.float64))
N = 3000
# Sample mean and covariance of N draws from N(mu, S) vary by about sqrt(0.5 / N) = 0.013 and
# 0.5 sqrt(2 / N) = 0.013; samplers must land within 0.05 of both (4 standard errors) and
# within their own discretisation error.
TOL = 0.05


def gaussian_solve(a, b, v):
    """(a S + b I)^-1 v per row, a and b ``[n]``, through S's eigenvectors."""
    lam = jnp.asarray(LAM, jnp.float32)
    u = jnp.asarray(U, jnp.float32)
    coords = v @ u
    return (coords / (a[:, None] * lam + b[:, None])) @ u.T


def exact_eps(schedule):
    def eps_fn(x, t):
        abar = schedule.alpha_bars[t]
        return jnp.sqrt(1 - abar)[:, None] * gaussian_solve(abar, 1 - abar,
                                                            x - jnp.sqrt(abar)[:, None] * MU)
    return eps_fn


def exact_score(sde):
    def score_fn(x, t):
        m, s = sde.marginal(t)
        return -gaussian_solve(m ** 2, s ** 2, x - m[:, None] * MU)
    return score_fn


def assert_gaussian(x, atol=TOL):
    np.testing.assert_allclose(np.mean(x, 0), MU, atol=atol)
    np.testing.assert_allclose(np.cov(np.asarray(x).T), S, atol=atol)


@pytest.fixture(scope="module")
def schedule():
    return make_schedule("linear", 1000)


# --- forward process ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_forward_kernel_matches_iterated_chain(name):
    sched = make_schedule(name, 200)
    betas = np.asarray(sched.betas, np.float64)
    x0 = np.array([[1.5, -2.0]])
    mean, var = x0.copy(), np.zeros(1)
    for k in range(200):  # iterate q(x_t | x_{t-1}) on the moments
        mean = np.sqrt(1 - betas[k]) * mean
        var = (1 - betas[k]) * var + betas[k]
        m, v = q_mean_variance(sched, jnp.asarray(x0, jnp.float32), jnp.array([k]))
        np.testing.assert_allclose(m, mean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(v.ravel(), var, rtol=1e-4, atol=1e-6)
    # and the sampler draws those moments
    t = jnp.full((20000,), 120)
    xt = q_sample(sched, jnp.broadcast_to(jnp.asarray(x0, jnp.float32), (20000, 2)), t,
                  jax.random.normal(jax.random.PRNGKey(0), (20000, 2)))
    m, v = q_mean_variance(sched, jnp.asarray(x0, jnp.float32), jnp.array([120]))
    np.testing.assert_allclose(xt.mean(0), m[0], atol=0.03)
    np.testing.assert_allclose(xt.var(0), np.full(2, v.ravel()[0]), rtol=0.05)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_posterior_matches_bayes_rule(name):
    sched = make_schedule(name, 50)
    betas = np.asarray(sched.betas, np.float64)
    abar = np.cumprod(1 - betas)
    x0, xt = 0.7, -1.2
    for k in range(1, 50):
        # prior x_{t-1} | x_0 ~ N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1});
        # likelihood x_t | x_{t-1} ~ N(sqrt(alpha_t) x_{t-1}, beta_t).
        precision = 1 / (1 - abar[k - 1]) + (1 - betas[k]) / betas[k]
        mean = (np.sqrt(abar[k - 1]) * x0 / (1 - abar[k - 1])
                + np.sqrt(1 - betas[k]) * xt / betas[k]) / precision
        m, v = q_posterior(sched, jnp.array([[x0]]), jnp.array([[xt]]), jnp.array([k]))
        np.testing.assert_allclose(float(m[0, 0]), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(float(v[0, 0]), 1 / precision, rtol=1e-4)
    # at t = 1 the posterior is the point x_0
    m, v = q_posterior(sched, jnp.array([[x0]]), jnp.array([[xt]]), jnp.array([0]))
    np.testing.assert_allclose(float(m[0, 0]), x0, rtol=1e-5)
    assert float(v[0, 0]) == 0.0


@pytest.mark.parametrize("name, steps", [("linear", 1000), ("cosine", 1000), ("linear", 100),
                                         ("cosine", 50)])
def test_prior_term_vanishes(name, steps):
    # L_T = KL(q(x_T | x_0) || N(0, I)) for data in [-1, 1]^2, the first term of ddpm_vlb.
    sched = make_schedule(name, steps)
    x0 = jax.random.uniform(jax.random.PRNGKey(0), (64, 2), minval=-1, maxval=1)
    mean, var = q_mean_variance(sched, x0, jnp.full((64,), steps - 1))
    prior = gaussian_kl(mean, var * jnp.ones_like(x0), 0.0, 1.0).sum(1)
    assert float(prior.max()) / 2 < 1e-3  # nats per dimension
    # ddpm_vlb reports the same term; a schedule of ten steps of beta = 0.01 stays far from
    # the prior (abar_T = 0.90), which the check must notice.
    short = schedule_from_betas(np.full(10, 0.01))
    terms = ddpm_vlb(lambda p, x, t: jnp.zeros_like(x), short, None, x0,
                     jax.random.PRNGKey(1), decoder="gaussian")
    mean, var = q_mean_variance(short, x0, jnp.full((64,), 9))
    np.testing.assert_allclose(terms["prior"], gaussian_kl(mean, var * jnp.ones_like(x0), 0.0,
                                                           1.0).sum(1), rtol=1e-5)
    assert float(terms["prior"].min()) / 2 > 0.04


# --- samplers with the exact noise / score ------------------------------------------------


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_ancestral_sampler_reproduces_gaussian(schedule, variance):
    x = jax.jit(lambda k: ancestral_sample(exact_eps(schedule), schedule, k, (N, 2),
                                           variance))(jax.random.PRNGKey(0))
    assert_gaussian(x)


def test_ddim_deterministic_reproduces_gaussian(schedule):
    x = jax.jit(lambda k: ddim_sample(exact_eps(schedule), schedule, k, (N, 2), 1000,
                                      eta=0.0))(jax.random.PRNGKey(1))
    assert_gaussian(x)


def test_ddim_eta_one_with_all_steps_is_ancestral(schedule):
    # Same key, same draws: DDIM(eta=1, every step) is DDPM with sigma^2 = beta~, path by path.
    key = jax.random.PRNGKey(2)
    eps_fn = exact_eps(schedule)
    a = jax.jit(lambda k: ancestral_sample(eps_fn, schedule, k, (64, 2), "beta_tilde"))(key)
    b, path = jax.jit(lambda k: ddim_sample(eps_fn, schedule, k, (64, 2), 1000, eta=1.0,
                                            return_path=True))(key)
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert path.shape == (1000, 64, 2)
    np.testing.assert_array_equal(path[-1], b)


def test_clipping_x0_bounds_the_samples_and_a_wide_bound_changes_nothing():
    schedule = make_schedule("linear", 50)
    key = jax.random.PRNGKey(3)

    def bad_eps(x, t):  # a network whose x0_hat runs far outside [-1, 1]
        return -3.0 * x

    for sample in (lambda **o: ancestral_sample(bad_eps, schedule, key, (64, 2), **o),
                   lambda **o: ddim_sample(bad_eps, schedule, key, (64, 2), 10, **o)):
        free, clipped = np.asarray(sample()), np.asarray(sample(clip_x0=1.0))
        assert np.abs(free).max() > 2.0 and np.abs(clipped).max() <= 1.0 + 1e-6
    # The clipped branch computes the same posterior mean: a bound never reached changes
    # nothing.
    eps_fn = exact_eps(schedule)
    a = ancestral_sample(eps_fn, schedule, key, (64, 2))
    b = ancestral_sample(eps_fn, schedule, key, (64, 2), clip_x0=1e6)
    np.testing.assert_allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="clip_x0 must be None or a bound > 0"):
        ddim_sample(eps_fn, schedule, key, (2, 2), 5, clip_x0=0.0)


def test_probability_flow_samples_and_likelihood():
    sde = make_sde("vp")
    score_fn = exact_score(sde)
    result = jax.jit(lambda k: probability_flow_sample(score_fn, sde, k, (N, 2)))(
        jax.random.PRNGKey(3))
    assert_gaussian(result.y)
    assert int(result.nfe) > 0
    # Log-likelihood of the exact score: with the exact marginal at t = 1 as the prior, the
    # ODE gives log p_{t_min}(x) within 0.01 nats (Dopri5, rtol = atol = 1e-5).
    t_min = 1e-3
    x = jax.random.multivariate_normal(jax.random.PRNGKey(4), MU, S, (100,))
    m1, s1 = (float(v[0]) for v in sde.marginal(jnp.ones(1)))
    prior = lambda y: mvn.logpdf(y, m1 * MU, m1 ** 2 * S + s1 ** 2 * np.eye(2))  # noqa: E731
    log_p, _ = jax.jit(lambda x: probability_flow_log_prob(score_fn, sde, x, t_min=t_min,
                                                          prior_log_prob=prior))(x)
    m0, s0 = (float(v[0]) for v in sde.marginal(jnp.full((1,), t_min)))
    expected = mvn.logpdf(x, m0 * MU, m0 ** 2 * S + s0 ** 2 * np.eye(2))
    np.testing.assert_allclose(log_p, expected, atol=0.01)


def test_probability_flow_hutchinson_likelihood_is_unbiased():
    sde = make_sde("vp")
    score_fn = exact_score(sde)
    x = jnp.asarray(MU)[None, :] + 0.3
    opts = ODEOptions(solver="rk4", num_steps=50)
    exact, _ = probability_flow_log_prob(score_fn, sde, x, opts)
    hutch = ODEOptions(solver="rk4", num_steps=50, trace="hutchinson")
    draws = jax.jit(jax.vmap(lambda k: probability_flow_log_prob(
        score_fn, sde, x, hutch, key=k)[0][0]))(jax.random.split(jax.random.PRNGKey(5), 400))
    assert float(draws.std()) > 0
    assert abs(float(draws.mean() - exact[0])) < 5 * float(draws.std()) / math.sqrt(400)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["euler_maruyama", "predictor_corrector"])
def test_reverse_sde_samplers_reproduce_gaussian(sampler):
    sde = make_sde("vp")
    score_fn = exact_score(sde)
    if sampler == "euler_maruyama":
        run = lambda k: euler_maruyama_sample(score_fn, sde, k, (N, 2), 1000)  # noqa: E731
    else:
        run = lambda k: predictor_corrector_sample(score_fn, sde, k, (N, 2), 500)  # noqa: E731
    assert_gaussian(jax.jit(run)(jax.random.PRNGKey(6)))


@pytest.mark.slow
def test_annealed_langevin_reproduces_gaussian():
    sigmas = geometric_sigmas(3.0, 0.01, 10)

    def score_fn(x, sigma):
        return -gaussian_solve(jnp.ones_like(sigma), sigma ** 2, x - MU)

    x = jax.jit(lambda k: annealed_langevin_sample(score_fn, sigmas, k, (N, 2), 200, 1e-5))(
        jax.random.PRNGKey(7))
    assert_gaussian(x)


def test_langevin_with_the_true_score_leaves_the_target_invariant():
    # Started at exact draws of N(mu, S), 400 unadjusted Langevin steps of size 0.005 keep
    # each marginal N(mu_i, S_ii) (KS test at the 1% level; the discretisation bias of
    # about h / (4 lambda_min) = 1% in variance is below what 5000 draws resolve).
    score = lambda x: -gaussian_solve(jnp.ones(x.shape[0]), jnp.zeros(x.shape[0]), x - MU)  # noqa

    @jax.jit
    def run(key):
        init_key, key = jax.random.split(key)
        x = jax.random.multivariate_normal(init_key, MU, S, (5000,))
        step = lambda x, k: (langevin_step(score(x), x, 0.005, k), None)  # noqa: E731
        return jax.lax.scan(step, x, jax.random.split(key, 400))[0]

    x = np.asarray(run(jax.random.PRNGKey(21)))
    for i in range(2):
        result = scipy.stats.kstest(x[:, i], "norm", args=(MU[i], math.sqrt(S[i, i])))
        assert result.pvalue > 0.01, (i, result)
    # and the test can fail: a score for the wrong mean moves the draws
    shifted = scipy.stats.kstest(x[:, 0] + 0.1, "norm", args=(MU[0], math.sqrt(S[0, 0])))
    assert shifted.pvalue < 0.01


# --- losses at their minimisers -----------------------------------------------------------


def mc_check(loss, params, x, key, expected):
    # 200,000 examples: the Monte Carlo error is well under the 1% allowed.
    value, _ = jax.jit(loss)(params, x, key)
    assert abs(float(value) - expected) < 0.01 * max(1.0, abs(expected)), (float(value), expected)


@pytest.fixture(scope="module")
def data():
    return jax.random.multivariate_normal(jax.random.PRNGKey(8), MU, S, (200000,))


def test_dsm_at_true_score_equals_its_minimum(data):
    sigma = 0.5
    # s*(x) = grad log N(mu, S + sigma^2 I); min = (D - sigma^2 tr((S + sigma^2 I)^-1)) / 2.
    score = lambda p, x, c: -gaussian_solve(jnp.ones_like(c), c ** 2, x - MU)  # noqa: E731
    expected = 0.5 * (2 - sigma ** 2 * np.sum(1 / (LAM + sigma ** 2)))
    mc_check(dsm_loss(score, sigma), None, data, jax.random.PRNGKey(9), expected)
    # a wrong score scores worse
    # a wrong score scores worse, by (sigma^2 / 2) 0.3^2 tr((S + sigma^2 I)^-1) = 0.039
    worse, _ = dsm_loss(lambda p, x, c: 0.7 * score(p, x, c), sigma)(None, data,
                                                                     jax.random.PRNGKey(9))
    assert float(worse) > expected + 0.02


def test_dsm_on_a_gaussian_mixture_at_its_true_score():
    # Noised mixture sum_k w_k N(c_k, (s0^2 + sigma^2) I): its score is closed form, and
    # E||sigma s*(x~) + eps||^2 / 2 = (D - sigma^2 E||s*(x~)||^2) / 2 (the cross term is
    # -sigma^2 E||s*||^2 by Tweedie), both sides estimated on the same draws.
    centers = jnp.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    weights = jnp.array([0.5, 0.3, 0.2])
    s0, sigma = 0.3, 0.4

    def log_p(y, var):
        sq = jnp.sum((y[None, :] - centers) ** 2, 1)
        return jax.nn.logsumexp(jnp.log(weights) - 0.5 * sq / var) - jnp.log(2 * math.pi * var)

    true_score = jax.vmap(jax.grad(log_p), (0, None))
    score = lambda p, x, c: true_score(x, s0 ** 2 + sigma ** 2)  # noqa: E731
    ck, nk = jax.random.split(jax.random.PRNGKey(22))
    n = 200000
    x = centers[jax.random.choice(ck, 3, (n,), p=weights)] + s0 * jax.random.normal(nk, (n, 2))
    value, _ = jax.jit(dsm_loss(score, sigma))(None, x, jax.random.PRNGKey(23))
    # The loss's own noise (its key), so the per-example terms pair up and the Monte Carlo
    # error of the difference is small; 5 standard errors of it are allowed.
    eps = jax.random.normal(jax.random.PRNGKey(23), x.shape)
    s_star = score(None, x + sigma * eps, None)
    per_example_loss = 0.5 * jnp.sum((sigma * s_star + eps) ** 2, 1)
    per_example_min = 0.5 * (2 - sigma ** 2 * jnp.sum(s_star ** 2, 1))
    diff = per_example_loss - per_example_min
    np.testing.assert_allclose(value, per_example_loss.mean(), rtol=1e-4)
    assert abs(float(diff.mean())) < 5 * float(diff.std()) / math.sqrt(n)
    minimum = per_example_min.mean()
    wrong, _ = jax.jit(dsm_loss(lambda p, x, c: true_score(x, s0 ** 2), sigma))(
        None, x, jax.random.PRNGKey(23))  # the clean data's score is not the minimiser
    assert float(wrong) > float(minimum) + 0.05


def test_ncsn_at_true_score_equals_average_minimum(data):
    sigmas = np.array([1.0, 0.5, 0.1], np.float32)
    score = lambda p, x, c: -gaussian_solve(jnp.ones_like(c), c ** 2, x - MU)  # noqa: E731
    expected = np.mean([0.5 * (2 - s ** 2 * np.sum(1 / (LAM + s ** 2))) for s in sigmas])
    mc_check(ncsn_loss(score, sigmas), None, data, jax.random.PRNGKey(10), expected)


def test_score_sde_loss_at_true_score_equals_its_minimum(data):
    sde = make_sde("vp")
    score_fn = exact_score(sde)
    t_min = 1e-3
    t = np.linspace(t_min, 1.0, 20001)
    m, s = (np.asarray(v, np.float64) for v in sde.marginal(jnp.asarray(t)))
    per_t = 0.5 * (2 - s ** 2 * np.sum(1 / (m[:, None] ** 2 * LAM + s[:, None] ** 2), 1))
    expected = np.trapezoid(per_t, t) / (1 - t_min)
    mc_check(score_sde_loss(lambda p, x, c: score_fn(x, c), sde, t_min=t_min), None, data,
             jax.random.PRNGKey(11), expected)


@pytest.mark.parametrize("variance_reduced", [True, False])
def test_sliced_score_matching_at_true_score(data, variance_reduced):
    # Hyvarinen's objective at the true score is -E||grad log p||^2 / 2 = -tr(S^-1) / 2.
    score = lambda p, x, c: -gaussian_solve(jnp.ones_like(c), jnp.zeros_like(c), x - MU)  # noqa
    expected = -0.5 * np.sum(1 / LAM)
    loss = sliced_score_matching_loss(score, num_projections=2,
                                      variance_reduced=variance_reduced)
    value, _ = jax.jit(loss)(None, data, jax.random.PRNGKey(12))
    assert abs(float(value) - expected) < 0.03 * abs(expected)


def test_variational_bound_is_a_bound_at_the_exact_noise(schedule):
    x = jax.random.multivariate_normal(jax.random.PRNGKey(13), MU, S, (256,))
    terms = jax.jit(lambda x, k: ddpm_vlb(lambda p, x, t: exact_eps(schedule)(x, t), schedule,
                                          None, x, k, "beta", "gaussian"))(
        x, jax.random.PRNGKey(14))
    gap = terms["nll"] + mvn.logpdf(x, MU, S)  # bound minus the true NLL, per example
    stderr = float(gap.std()) / math.sqrt(gap.shape[0])
    # E[gap] = KL(q(x_{1:T} | x_0) || p(x_{1:T} | x_0)) >= 0, small for T = 1000.
    assert float(gap.mean()) > -3 * stderr
    assert float(gap.mean()) < 0.1
    np.testing.assert_allclose(terms["bits_per_dim"], terms["nll"] / (2 * math.log(2)),
                               rtol=1e-6)


def test_discretized_decoder_is_a_distribution_over_levels():
    levels = 8
    grid = jnp.linspace(-1.0, 1.0, levels)
    for mean, log_scale in [(0.1, -1.0), (-0.9, -3.0), (1.5, 0.5)]:
        log_p = discretized_gaussian_log_likelihood(grid, jnp.full(levels, mean),
                                                    jnp.full(levels, log_scale), levels)
        np.testing.assert_allclose(jnp.exp(log_p).sum(), 1.0, atol=1e-5)


# --- training -----------------------------------------------------------------------------


def test_tiny_ddpm_training_reduces_the_loss():
    sched = make_schedule("linear", 100)
    net = TimeMLP(features=(32, 32, 2), embed_dim=16, max_time=100)
    key = jax.random.PRNGKey(15)
    centers = jnp.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])

    def batch(k, n=128):
        ck, nk = jax.random.split(k)
        return centers[jax.random.randint(ck, (n,), 0, 4)] + 0.1 * jax.random.normal(nk, (n, 2))

    params = net.init(key, jnp.zeros((1, 2)), jnp.zeros((1,), jnp.int32))
    loss = ddpm_loss(net.apply, sched)
    eval_x = batch(jax.random.PRNGKey(16), 4096)
    evaluate = jax.jit(lambda p: loss(p, eval_x, jax.random.PRNGKey(17))[0])
    before = float(evaluate(params))
    optimizer = make_optimizer({"name": "adam", "lr": 3e-3}, 200)
    step = make_train_step(loss, optimizer, data_mesh(1), steps_per_call=40)
    state = TrainState.create(params, optimizer, key)
    stacked = jax.jit(lambda k: jax.vmap(batch)(jax.random.split(k, 40)))
    for call in range(5):
        state, _ = step(state, stacked(jax.random.PRNGKey(100 + call)))
    after = float(evaluate(state.params))
    assert before > 0.9  # an untrained predictor scores about E||eps||^2 / D = 1
    assert after < 0.6 * before


# --- bad input ----------------------------------------------------------------------------


def test_bad_names_and_steps_are_rejected(schedule):
    with pytest.raises(ValueError, match="valid choices: cosine, linear"):
        make_schedule("quadratic", 10)
    with pytest.raises(ValueError, match="num_steps"):
        make_schedule("linear", 0)
    with pytest.raises(ValueError, match="valid choices: ve, vp"):
        make_sde("subvp")
    with pytest.raises(ValueError, match="valid options: beta_min, beta_max"):
        make_sde("vp", sigma_max=3.0)
    with pytest.raises(ValueError, match=r"in \[1, 1000\]"):
        ddim_timesteps(1000, 1001)
    with pytest.raises(ValueError, match=r"in \[1, 1000\]"):
        ddim_timesteps(1000, 0)
    with pytest.raises(ValueError, match="valid choices: beta, beta_tilde"):
        ancestral_sample(exact_eps(schedule), schedule, jax.random.PRNGKey(0), (2, 2), "fixed")
    with pytest.raises(ValueError, match="valid choices: discretized, gaussian"):
        ddpm_vlb(lambda p, x, t: x, schedule, None, jnp.zeros((1, 2)), jax.random.PRNGKey(0),
                 decoder="bernoulli")
    with pytest.raises(ValueError, match="num_steps must be an integer >= 1"):
        euler_maruyama_sample(lambda x, t: x, make_sde("vp"), jax.random.PRNGKey(0), (2, 2), 0)
    taus = ddim_timesteps(1000, 50)
    assert len(taus) == 50 and taus[0] == 0 and taus[-1] == 999 and np.all(np.diff(taus) > 0)


# --- nets -----------------------------------------------------------------------------------


def test_unet_depends_on_time_and_keeps_shapes():
    net = UNet(channels=(4, 8), embed_dim=8, max_time=1000)
    x = jax.random.normal(jax.random.PRNGKey(19), (2, 28, 28, 1))
    params = jax.jit(net.init)(jax.random.PRNGKey(20), x, jnp.zeros((2,)))
    # the last convolution starts at zero (DDPM's init); give it weights to see through it
    params = jax.tree_util.tree_map_with_path(
        lambda path, leaf: (jnp.ones_like(leaf) * 0.1 if "Conv" in jax.tree_util.keystr(path)
                            and leaf.ndim == 4 else leaf), params)
    apply = jax.jit(net.apply)
    out_a = apply(params, x, jnp.array([10, 10]))
    out_b = apply(params, x, jnp.array([900, 900]))
    assert out_a.shape == x.shape
    assert float(jnp.abs(out_a - out_b).max()) > 1e-4
    with pytest.raises(ValueError, match="divisible by 4"):
        jax.eval_shape(UNet(channels=(4, 8, 8)).init, jax.random.PRNGKey(0),
                       jnp.zeros((1, 30, 30, 1)), jnp.zeros((1,)))


def test_time_mlp_depends_on_time():
    mlp = TimeMLP(features=(16, 2), max_time=1.0)
    y = jnp.ones((3, 2))
    p = mlp.init(jax.random.PRNGKey(0), y, jnp.zeros((3,)))
    assert mlp.apply(p, y, jnp.full((3,), 0.1)).shape == (3, 2)
    assert float(jnp.abs(mlp.apply(p, y, jnp.full((3,), 0.1))
                         - mlp.apply(p, y, jnp.full((3,), 0.9))).max()) > 1e-4
