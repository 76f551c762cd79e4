"""One property suite for every registered flow layer and flow recipe (float32 and float64).

Layers: for each ``FLOWS.layers`` entry, on a batch of random examples and
randomly perturbed parameters (so zero-initialized layers are not trivially
the identity): inverse(forward(z)) = z; the forward log-det equals log|det|
of the autodiff Jacobian; the inverse log-det is minus the forward one;
shapes are [n, *latent] -> [n, *event], [n]; jit and vmap give the same
numbers, and so does the normalizing direction inside a data-parallel
``shard_map``; layers that promise it are the identity at initialization; and
parameter gradients of the log-density are finite.

Recipes: for each ``FLOWS.recipes`` entry, small but complete (two layers or
two levels, perturbed parameters), built from a config block through
``build_flow``: the round trip and log-dets, log p(x) of the jitted
layer-by-layer path against base density and eager log-det, and the log-det
against the autodiff Jacobian. Every recipe is invertible, so every recipe
is checked.

Layers registered ``approximate`` (continuous flows, whose inverse and
log-det hold only to the ODE solver's accuracy) are held to
``APPROXIMATE_TOLERANCE`` in both dtypes, and their Jacobians are taken in
reverse mode (a diffrax solve is a ``custom_vjp``, which forward mode cannot
enter); those that take a ``trace`` option are also checked with Hutchinson's
estimator, in expectation over probes.

A new registration is tested here without further code. The checks of a layer
run under one jit per layer, index and dtype (op-by-op execution compiles every
operation on its own); only the comparison of jit with eager execution runs
the eager path.
"""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gmjax.flows  # noqa: F401  (registers every layer and recipe)
from gmjax.flows import FLOWS, Flow, build_layer
from gmjax.models.flow import build_flow

EVENT_SHAPES = {1: (5,), 3: (4, 4, 2)}
TOLERANCE = {jnp.float32: dict(rtol=2e-4, atol=2e-4), jnp.float64: dict(rtol=1e-9, atol=1e-9)}
N = 6
# Approximate layers: fixed-step RK4 (8 steps) on a perturbed small field integrates the trace
# along the computed trajectory, which matches the discretized map's log-det and inverse to
# O(h^4); 1e-3 leaves a margin over the ~1e-5 seen, in either dtype.
APPROXIMATE_TOLERANCE = dict(rtol=1e-3, atol=1e-3)


def tolerance(name, dtype):
    return APPROXIMATE_TOLERANCE if FLOWS.layers.get(name).approximate else TOLERANCE[dtype]


@functools.lru_cache(maxsize=None)
def _layer(name, index):
    spec = FLOWS.layers.get(name)
    return build_layer(name, EVENT_SHAPES[spec.event_rank], index)


def make(name, dtype, index=0, perturb=0.1, seed=0):
    """``(layer, perturbed params, latents z)``: z has the shape of the layer's normalizing
    output, which is the event shape except for squeeze. Cached, so the tests of one layer
    share it."""
    return _make(name, dtype, index, perturb, seed)


@functools.lru_cache(maxsize=None)
def _initialized(name, index, seed):
    """``(params, x)`` in float64 numpy: ``layer.init`` on a float32 batch x ~ N(0, I) from
    numpy. Eager, once per layer for both dtypes: a jitted init compiles a random draw per
    parameter (seconds on CPU), eager draws compile once per shape for the whole module."""
    layer = _layer(name, index)
    event = EVENT_SHAPES[FLOWS.layers.get(name).event_rank]
    x = np.random.default_rng(seed).standard_normal((N, *event))
    params = layer.init(jax.random.PRNGKey(seed), jnp.asarray(x, jnp.float32))
    return jax.tree.map(np.asarray, params), x


@functools.lru_cache(maxsize=None)
def _make(name, dtype, index, perturb, seed):
    layer = _layer(name, index)
    params, x = _initialized(name, index, seed)
    rng = np.random.default_rng(seed + 1)
    params = jax.tree.map(
        lambda p: jnp.asarray(p + perturb * rng.standard_normal(p.shape), dtype)
        if np.issubdtype(p.dtype, np.floating) else jnp.asarray(p), params)
    x = jnp.asarray(x, dtype)
    latent_shape = jax.eval_shape(layer.apply, params, x)[0].shape
    if latent_shape != x.shape:
        x = jnp.asarray(np.random.default_rng(seed).standard_normal(latent_shape), dtype)
    return layer, params, x


def forward(layer, params, x):
    return layer.apply(params, x, method=lambda m, v: m.bijector().forward_and_log_det(v))


def inverse(layer, params, y):
    return layer.apply(params, y, method=lambda m, v: m.bijector().inverse_and_log_det(v))


@functools.lru_cache(maxsize=None)
def _contract(name, index, dtype):
    """One jitted function for the round trip and (index 0) the autodiff log-dets of a layer:
    ``(params, z) -> forward, inverse of its output, __call__ on it, slogdet of the Jacobian at
    the first two examples``."""
    layer = _layer(name, index)

    @jax.jit
    def contract(params, x):
        latent = x.shape[1:]
        y, ld_fwd = forward(layer, params, x)
        x_back, ld_inv = inverse(layer, params, y)
        z, ld_call = layer.apply(params, y)  # __call__ is the normalizing direction
        if index != 0:
            return y, ld_fwd, x_back, ld_inv, z, ld_call, None

        def f(v):  # one example: [prod(latent)] -> [prod(event)]
            return forward(layer, params, v.reshape(1, *latent))[0].reshape(-1)

        jac = jax.jacrev if FLOWS.layers.get(name).approximate else jax.jacfwd
        jacobians = jax.vmap(jac(f))(x[:2].reshape(2, -1))
        return y, ld_fwd, x_back, ld_inv, z, ld_call, jnp.linalg.slogdet(jacobians)

    return contract


def contract_of(name, dtype, index=0, perturb=0.1):
    layer, params, x = make(name, dtype, index, perturb)
    return x, _contract(name, index, dtype)(params, x)


NAMES = FLOWS.layers.names()
DTYPES = [jnp.float32, jnp.float64]


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    if request.param == jnp.float64:
        with jax.enable_x64(True):
            yield request.param
    else:
        yield request.param


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("index", [0, 1])
def test_round_trip_and_log_dets(name, index, dtype):
    x, (y, ld_fwd, x_back, ld_inv, z, ld_call, _) = contract_of(name, dtype, index)
    event = EVENT_SHAPES[FLOWS.layers.get(name).event_rank]
    assert y.shape == (N, *event) and ld_fwd.shape == (N,)
    assert y.dtype == dtype
    tol = tolerance(name, dtype)
    np.testing.assert_allclose(x_back, x, **tol)
    np.testing.assert_allclose(ld_inv, -ld_fwd, **tol)
    # __call__ is the normalizing direction.
    np.testing.assert_allclose(z, x, **tol)
    np.testing.assert_allclose(ld_call, ld_inv, **tol)


@pytest.mark.parametrize("name", NAMES)
def test_log_det_matches_autodiff_jacobian(name, dtype):
    _, (_, ld, *_, (sign, logabsdet)) = contract_of(name, dtype)
    for i in range(2):
        assert sign[i] != 0
        np.testing.assert_allclose(ld[i], logabsdet[i], **tolerance(name, dtype))


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_vmap_agree(name):
    layer, params, x = make(name, jnp.float32)
    y, ld = forward(layer, params, x)  # without jit: op by op

    # Under one jit: the forward pass, the forward pass mapped over single examples, and the
    # normalizing direction inside the data-parallel shard_map of the train steps (its loops
    # must carry the batch's varying axis), on a one-device mesh.
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    P = jax.sharding.PartitionSpec
    normalize = jax.shard_map(layer.apply, mesh=mesh, in_specs=(P(), P("data")),
                              out_specs=P("data"))

    if FLOWS.layers.get(name).approximate:
        # A diffrax solve cannot run inside a shard_map with varying-axis checks (its save
        # buffers are created unvarying; "cond branches must have equal output types"): the
        # approximate layers are checked under plain jit on one device.
        normalize = functools.partial(inverse, layer)

    @jax.jit
    def jitted(p, v, u):
        return (forward(layer, p, v), jax.vmap(lambda w: forward(layer, p, w[None]))(v),
                normalize(p, u))

    (y_jit, ld_jit), (y_map, ld_map), (x_back, ld_back) = jitted(params, x, y)
    np.testing.assert_allclose(y_jit, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ld_jit, ld, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y_map[:, 0], y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ld_map[:, 0], ld, rtol=1e-5, atol=1e-5)
    round_trip = tolerance(name, jnp.float32)
    np.testing.assert_allclose(x_back, x, **round_trip)
    np.testing.assert_allclose(ld_back, -ld, **round_trip)


def _takes_trace(name):
    return "trace" in inspect.signature(FLOWS.layers.get(name).build).parameters


@pytest.mark.parametrize("name", [n for n in NAMES if FLOWS.layers.get(n).approximate
                                  and _takes_trace(n)])
def test_hutchinson_log_det_is_unbiased(name):
    # The same parameters with trace="hutchinson": over probe draws (the "probe" RNG stream),
    # the mean log-det is within 5 standard errors of the exact one, and draws do vary.
    layer, params, x = make(name, jnp.float32)
    _, (_, ld_exact, *_) = contract_of(name, jnp.float32)
    hutch = build_layer(name, x.shape[1:], 0, trace="hutchinson")

    @jax.jit
    def draws(keys):
        return jax.vmap(lambda k: hutch.apply(params, x, method=lambda m, v: m.bijector(
            ).forward_and_log_det(v), rngs={"probe": k})[1])(keys)

    estimates = draws(jax.random.split(jax.random.PRNGKey(0), 2000))
    stderr = estimates.std(0) / np.sqrt(estimates.shape[0])
    assert np.all(estimates.std(0) > 1e-4)
    np.testing.assert_array_less(np.abs(estimates.mean(0) - ld_exact), 5 * stderr + 1e-5)


@pytest.mark.parametrize("name", [n for n in NAMES if FLOWS.layers.get(n).identity_at_init])
def test_identity_at_initialization(name):
    # The round trip's compiled passes, on the parameters as initialized (no perturbation).
    x, (y, ld, *_) = contract_of(name, jnp.float32, perturb=0.0)
    np.testing.assert_allclose(y, x, atol=1e-6)
    np.testing.assert_allclose(ld, 0.0, atol=1e-6)


# Squeeze changes the event shape, so it has no Flow of its own (and no parameters); the
# recipes below check it inside the multi-scale flows.
@pytest.mark.parametrize("name", [n for n in NAMES if FLOWS.layers.get(n).keeps_shape])
def test_parameter_gradients_are_finite_and_nonzero(name):
    layer, params, x = make(name, jnp.float32)
    event = x.shape[1:]
    flow = Flow(layers=[build_layer(name, event, 0)], event_shape=event)
    # Every collection the layer owns (batch_norm keeps "batch_stats"); none for logit.
    flow_params = {col: {"layers_0": tree} for col, tree in params.items()}

    def nll(p):
        return -jnp.mean(flow.apply(p, x, method=Flow.log_prob))

    @jax.jit
    def grads_and_log_probs(p):
        return jax.grad(nll)(p), flow.apply(p, x), flow.apply(p, x, method=Flow.log_prob)

    grads, log_p_layers, log_p = grads_and_log_probs(flow_params)
    norms = [float(np.linalg.norm(np.asarray(g).ravel())) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms))
    assert max(norms, default=0.0) > 0 or not jax.tree.leaves(params.get("params", {}))
    # The layer-by-layer __call__ path and distrax's log_prob agree.
    np.testing.assert_allclose(log_p_layers, log_p, rtol=1e-5, atol=1e-5)


# Recipes -----------------------------------------------------------------------------------

RECIPES = FLOWS.recipes.names()
RECIPE_SHAPES = {1: (3,), 3: (4, 4, 1)}
# One config block for every recipe, as the scripts have: each recipe takes the fields it names.
SMALL = {"num_layers": 2, "hidden": (8,), "num_bins": 4, "block_size": 2, "levels": 2,
         "steps_per_level": 1, "width": 8}
RECIPE_TOLERANCE = {jnp.float32: dict(rtol=1e-3, atol=1e-3),
                    jnp.float64: dict(rtol=1e-9, atol=1e-9)}


@functools.lru_cache(maxsize=None)
def initialized_recipe(name, perturb=0.1, seed=0):
    """``(flow, perturbed params, latents z [N, *event])`` in float64 numpy, built from a config
    block by ``build_flow`` and initialized once for both dtypes; inputs from numpy."""
    event = RECIPE_SHAPES[FLOWS.recipes.get(name).event_rank]
    flow = build_flow({"name": name, **SMALL}, event if len(event) > 1 else event[0])
    assert flow.event_shape == event
    rng = np.random.default_rng(seed)
    data = jnp.asarray(rng.standard_normal((N, *event)), jnp.float32)
    params = jax.jit(flow.init)(jax.random.PRNGKey(seed), data)
    params = jax.tree.map(lambda p: np.asarray(p, np.float64)
                          + perturb * rng.standard_normal(p.shape), params)
    return flow, params, rng.standard_normal((N, *event))


def log_normal(z):  # [n, *event] -> [n]
    z = z.reshape(z.shape[0], -1)
    return -0.5 * jnp.sum(z ** 2, axis=1) - 0.5 * z.shape[1] * np.log(2 * np.pi)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_round_trip_log_dets_density_and_jacobian(name, dtype):
    flow, params, z = initialized_recipe(name)
    params, z = jax.tree.map(lambda p: jnp.asarray(p, dtype), (params, z))
    event = z.shape[1:]

    @jax.jit
    def check(p, v):  # one compile per recipe and dtype
        x, ld_fwd = forward(flow, p, v)
        z_back, ld_inv = inverse(flow, p, x)

        def f(u):
            return forward(flow, p, u.reshape(1, *event))[0].reshape(-1)

        jacobians = jax.vmap(jax.jacfwd(f))(v[:2].reshape(2, -1))
        return x, ld_fwd, z_back, ld_inv, flow.apply(p, x), jacobians

    x, ld_fwd, z_back, ld_inv, log_p, jacobians = check(params, z)
    tol = RECIPE_TOLERANCE[dtype]
    assert x.shape == z.shape and ld_fwd.shape == (N,) and x.dtype == dtype
    assert float(jnp.abs(x - z).max()) > 1e-3  # the perturbed flow is not the identity
    np.testing.assert_allclose(z_back, z, **tol)
    np.testing.assert_allclose(ld_inv, -ld_fwd, **tol)
    # log p(x) = log N(z) - log|det dx/dz|, on the layer-by-layer path (Flow.__call__).
    np.testing.assert_allclose(log_p, log_normal(z) - ld_fwd, **tol)
    sign, logabsdet = jnp.linalg.slogdet(jacobians)
    assert np.all(sign != 0)
    np.testing.assert_allclose(ld_fwd[:2], logabsdet, **tol)
    if dtype == jnp.float32:  # and without jit
        x_eager, ld_eager = forward(flow, params, z)
        np.testing.assert_allclose(x_eager, x, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ld_eager, ld_fwd, rtol=1e-5, atol=1e-5)


def test_build_flow_passes_the_recipe_its_own_fields_and_checks_the_rank():
    for name in RECIPES:  # a config block may hold only some options: every one has a default
        options = list(inspect.signature(FLOWS.recipes.get(name).build).parameters.values())[1:]
        assert all(p.default is not inspect.Parameter.empty for p in options), name
    assert sorted(FLOWS.recipe_names(event_rank=1) + FLOWS.recipe_names(event_rank=3)) == RECIPES
    assert FLOWS.recipe_names(event_rank=3) == ["glow", "realnvp_image"]
    # made is one MAF layer: num_layers and num_bins are other recipes' fields.
    flow = build_flow({"name": "made", "num_layers": 5, "hidden": [4], "num_bins": 3}, 3)
    assert len(flow.layers) == 1 and flow.layers[0].hidden == (4,) and flow.event_shape == (3,)
    assert len(build_flow({"name": "nice", "num_layers": 3}, (2,)).layers) == 4  # + diag_scale
    with pytest.raises(ValueError, match="rank 3"):
        build_flow({"name": "glow"}, 2)
    with pytest.raises(ValueError, match="valid choices: block_autoregressive"):
        build_flow({"name": "realnvpp"}, 2)
