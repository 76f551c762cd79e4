"""One contract test per registry, parametrized over every name it holds.

A config string picks a component from a registry, so every registered name
must honour the contract its callers rely on. Adding a name adds its test:

* ``MCMC_SAMPLERS``: ``init`` / pure ``step`` on a 2-D Gaussian, finite, with
  the documented shapes, the same draws for the same key;
* ``GAN_LOSSES``: finite scalar critic and generator losses with finite
  gradients on random logits;
* ``OPTIMIZERS`` and ``SCHEDULES``: ``make_optimizer`` builds them and a few
  steps decrease a quadratic;
* ``DATASETS``: each loads (or skips, saying which files are missing) with the
  shapes and dtypes of the ``Dataset`` docstring;
* ``TARGETS``: ``dim`` / ``event_shape``, a finite ``log_prob`` on a batch,
  and exact samples of the event shape where the target has a sampler.
* ``NOISE_SCHEDULES``, ``SDES``, ``ODE_SOLVERS``: betas in (0, 1) with abar their
  cumulative product; an SDE's marginal variance obeys its own drift and diffusion;
  each solver integrates dy/dt = -y and its divergence.

Shapes are tiny and runs short: the whole file takes well under a minute on one core.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gmjax.data import DATASETS, DatasetNotFoundError, load_dataset
from gmjax.data.images import IMAGE_DATA_SOURCES
from gmjax.data.tabular import TABULAR_DATA_SOURCES
from gmjax.data.toy import TOY_DENSITIES
from gmjax.objectives.adversarial import GAN_LOSSES
from gmjax.flows.ode import ODE_SOLVERS, ODEOptions, integrate
from gmjax.objectives.diffusion_process import NOISE_SCHEDULES, SDES, make_schedule, make_sde
from gmjax.samplers import mcmc
from gmjax.targets import TARGETS, build_target
from gmjax.training.optim import OPTIMIZERS, SCHEDULES, make_optimizer

# --- MCMC samplers ------------------------------------------------------------------------

MEAN = jnp.array([1.0, -1.0])


def gaussian_log_prob(x):  # [2] -> [], N(MEAN, I) up to a constant
    return -0.5 * jnp.sum((x - MEAN) ** 2)


# Small options where the defaults would only cost compile time (a 10-level PT ladder).
SAMPLER_OPTIONS = {"pt": dict(betas=[0.25, 0.5, 1.0])}


@pytest.mark.parametrize("name", mcmc.MCMC_SAMPLERS.names())
def test_mcmc_sampler_contract(name):
    sampler = mcmc.MCMC_SAMPLERS.get(name)(gaussian_log_prob, **SAMPLER_OPTIONS.get(name, {}))
    assert isinstance(sampler, mcmc.SamplingAlgorithm)
    state = sampler.init(jnp.zeros(2))
    step = jax.jit(sampler.step)

    def chain(key, state, num_steps=5):
        positions = []
        for k in jax.random.split(key, num_steps):
            state, info = step(k, state)
            positions.append(sampler.position(state))
        return jnp.stack(positions), state, info

    positions, state, info = chain(jax.random.key(0), state)
    assert positions.shape == (5, 2) and bool(jnp.all(jnp.isfinite(positions)))
    assert jnp.shape(info.acceptance_rate) == ()
    assert 0.0 <= float(info.acceptance_rate) <= 1.0
    if sampler.has_swaps:
        assert jnp.shape(info.swaps_accepted) == () and jnp.shape(info.swaps_proposed) == ()
    again, _, _ = chain(jax.random.key(0), sampler.init(jnp.zeros(2)))
    np.testing.assert_array_equal(again, positions)  # pure: same key, same draws
    other, _, _ = chain(jax.random.key(1), sampler.init(jnp.zeros(2)))
    assert not np.array_equal(other, positions)

    result = mcmc.run_mcmc(name, gaussian_log_prob, jax.random.key(2), jnp.zeros((3, 2)),
                           num_draws=4, burn_in=2, thin=2, **SAMPLER_OPTIONS.get(name, {}))
    assert result.samples.shape == (3, 4, 2) and bool(jnp.all(jnp.isfinite(result.samples)))
    assert (result.swap_rate is not None) == sampler.has_swaps


# --- GAN losses ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", GAN_LOSSES.names())
def test_gan_loss_contract(name):
    loss = GAN_LOSSES.get(name)
    real_key, fake_key = jax.random.split(jax.random.key(0))
    real = 3.0 * jax.random.normal(real_key, (16,))  # critic outputs on a real batch
    fake = 3.0 * jax.random.normal(fake_key, (12,))  # and on a fake batch of another size
    critic_value = jax.jit(loss.critic)(real, fake)
    # Losses whose generator compares with real data (mmd) take the real outputs too.
    generator = (lambda f: loss.generator(f, real)) if loss.needs_real else loss.generator
    gen_value = jax.jit(generator)(fake)
    for value in (critic_value, gen_value):
        assert value.shape == () and bool(jnp.isfinite(value))
    np.testing.assert_allclose(loss.critic(real, fake), critic_value, rtol=1e-5)
    grad_real, grad_fake = jax.grad(loss.critic, argnums=(0, 1))(real, fake)
    grad_gen = jax.grad(generator)(fake)
    for grad, like in ((grad_real, real), (grad_fake, fake), (grad_gen, fake)):
        assert grad.shape == like.shape and bool(jnp.all(jnp.isfinite(grad)))
    assert bool(jnp.any(grad_gen != 0))  # the generator gets a signal


# --- optimizers and schedules -------------------------------------------------------------

CENTRE = jnp.array([1.0, -2.0, 0.5])


def quadratic(x):
    return 0.5 * jnp.sum((x - CENTRE) ** 2)


def minimize(optim, num_steps=10):
    tx = make_optimizer(optim, total_steps=num_steps)
    x = jnp.zeros(3)
    state = tx.init(x)

    @jax.jit
    def step(x, state):
        updates, state = tx.update(jax.grad(quadratic)(x), state, x)
        return optax.apply_updates(x, updates), state

    for _ in range(num_steps):
        x, state = step(x, state)
    return float(quadratic(x))


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer_contract(name):
    start = float(quadratic(jnp.zeros(3)))
    end = minimize({"name": name, "lr": 0.1})
    assert np.isfinite(end) and end < 0.9 * start


@pytest.mark.parametrize("schedule", SCHEDULES.names())
def test_schedule_contract(schedule):
    start = float(quadratic(jnp.zeros(3)))
    end = minimize({"name": "adam", "lr": 0.1, "schedule": schedule, "warmup_steps": 2})
    assert np.isfinite(end) and end < 0.9 * start


def test_unknown_optimizer_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid choices: " + ", ".join(OPTIMIZERS.names())):
        make_optimizer({"name": "adamm", "lr": 0.1})


# --- data sets ------------------------------------------------------------------------------


def expected_layout(name):
    """(x shape after n, x dtype, labelled, num_levels) as the ``Dataset`` docstring states."""
    if name in TOY_DENSITIES:
        return (2,), np.float32, False, None
    if name == "digits":
        return (8, 8, 1), np.float32, True, 17
    if name in IMAGE_DATA_SOURCES:
        return (28, 28, 1), np.uint8, True, 256
    if name in TABULAR_DATA_SOURCES:  # standardized features, class labels
        return (TABULAR_DATA_SOURCES[name][1],), np.float32, True, None
    raise AssertionError(f"data set {name!r} has no documented layout here; add it")


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_contract(name):
    shape, dtype, labelled, num_levels = expected_layout(name)
    try:
        data = load_dataset(name, "test", n=16)
    except DatasetNotFoundError as e:
        pytest.skip(f"{name} files are absent: {str(e).splitlines()[0]}")
    assert data.name == name and data.split == "test" and len(data) == 16
    assert data.x.shape == (16,) + shape and data.x.dtype == dtype
    assert bool(np.all(np.isfinite(data.x)))
    if dtype == np.float32 and num_levels is not None:  # images in [0, 1]
        assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    if labelled:
        assert data.y.shape == (16,) and data.y.dtype == np.int32
        assert 0 <= data.y.min() and data.y.max() < 10
    else:
        assert data.y is None
    assert data.num_levels == num_levels


# --- targets ---------------------------------------------------------------------------------


def tiny_decoder(params, z):  # [m, d] -> [m, 2, 2, 1] in [-1, 1]
    return jnp.tanh(z @ params).reshape(z.shape[0], 2, 2, 1)


def tiny_critic(params, x):  # [m, 2, 2, 1] -> [m]
    return x.reshape(x.shape[0], -1) @ params


def tiny_energy(params, x):  # [m, 2] -> [m]
    return 0.5 * jnp.sum((x - params) ** 2, axis=-1)


TARGET_OPTIONS = {
    "clayton": dict(dim=4),
    "gaussian_mixture": dict(means=[(-2.0, 0.0, 1.0), (2.0, 1.0, 0.0)],
                             scales=[(0.5, 1.0, 0.5), (1.0, 0.5, 0.5)], weights=[0.3, 0.7]),
    "latent_ebm": dict(decoder=tiny_decoder, decoder_params=jnp.ones((3, 4)) / 3.0,
                       critic=tiny_critic, critic_params=jnp.array([1.0, -1.0, 0.5, 2.0]),
                       latent_dim=3, image_shape=(2, 2, 1)),
    "learned_ebm": dict(energy_fn=tiny_energy, params=jnp.array([1.0, -0.5]), dim=2),
}


@pytest.mark.parametrize("name", TARGETS.names())
def test_target_contract(name):
    target = build_target(name, **TARGET_OPTIONS.get(name, {}))
    dim = target.dim
    assert isinstance(dim, int) and dim >= 1 and tuple(target.event_shape) == (dim,)
    try:
        samples = target.sample(seed=jax.random.key(0), sample_shape=(6,))
    except NotImplementedError:
        samples = None
    if samples is not None:
        assert samples.shape == (6, dim) and bool(jnp.all(jnp.isfinite(samples)))
        x = samples
    else:
        x = jax.random.normal(jax.random.key(1), (6, dim))
    log_prob = jax.jit(target.log_prob)  # eager calls compile op by op: seconds per shape
    log_p = log_prob(x)
    assert log_p.shape == (6,) and bool(jnp.all(jnp.isfinite(log_p)))
    np.testing.assert_allclose(log_prob(x.reshape(2, 3, dim)), log_p.reshape(2, 3), rtol=1e-5,
                               atol=1e-5)  # any batch shape [..., dim]


# --- diffusion processes and ODE solvers ------------------------------------------------------


@pytest.mark.parametrize("name", NOISE_SCHEDULES.names())
def test_noise_schedule_contract(name):
    schedule = make_schedule(name, 50)
    betas, abar = np.asarray(schedule.betas), np.asarray(schedule.alpha_bars)
    assert betas.shape == (50,) and bool(np.all((betas > 0) & (betas < 1)))
    np.testing.assert_allclose(abar, np.cumprod(1.0 - betas.astype(np.float64)), rtol=1e-5,
                               atol=1e-6)  # float32 betas: abar_T of cosine is ~0
    assert abar[-1] < 0.05  # the forward process ends near N(0, I)


@pytest.mark.parametrize("name", SDES.names())
def test_sde_contract(name):
    sde = make_sde(name)
    t = jnp.array([0.1, 0.5, 0.9])
    mean, std = sde.marginal(t)
    # d s(t)^2 / dt = -2 (d log m / dt) s^2 + g^2 for a linear drift f = (d log m / dt) x.
    log_m = lambda u: jnp.log(sde.marginal(u)[0])  # noqa: E731
    var = lambda u: sde.marginal(u)[1] ** 2  # noqa: E731
    dlogm = jax.vmap(jax.grad(log_m))(t)
    dvar = jax.vmap(jax.grad(var))(t)
    np.testing.assert_allclose(dvar, 2 * dlogm * std ** 2 + sde.diffusion(t) ** 2, rtol=1e-3)
    x = jnp.ones((3, 2))
    np.testing.assert_allclose(sde.drift(x, t), dlogm[:, None] * x, rtol=1e-4, atol=1e-6)
    prior = sde.prior_sample(jax.random.key(0), (4, 2))
    assert prior.shape == (4, 2) and sde.prior_log_prob(prior).shape == (4,)


@pytest.mark.parametrize("name", ODE_SOLVERS.names())
def test_ode_solver_contract(name):
    # dy/dt = -y from 0 to 1: y(1) = exp(-1) y(0), log|det| = -D (a constant divergence).
    y0 = jnp.array([[1.0, 2.0]])
    result = integrate(lambda y, t, args: -y, y0, 0.0, 1.0,
                       options=ODEOptions(solver=name, num_steps=200))
    np.testing.assert_allclose(result.y, y0 * np.exp(-1.0), rtol=5e-3)
    np.testing.assert_allclose(result.log_det, [-2.0], rtol=1e-4)
    assert int(result.nfe) > 0
