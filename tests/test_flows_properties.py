"""One property suite for every registered flow layer (float32 and float64).

For each ``FLOW_LAYERS`` entry, on a batch of random examples and randomly
perturbed parameters (so zero-initialized layers are not trivially the
identity): inverse(forward(x)) = x; the forward log-det equals
log|det| of the autodiff Jacobian; the inverse log-det is minus the forward
one; shapes are [n, *event] -> [n, *event], [n]; jit and vmap give the same
numbers; layers that promise it are the identity at initialization; and
parameter gradients of the log-density are finite.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gmjax.flows  # noqa: F401  (registers every layer)
from gmjax.flows import FLOW_LAYERS, Flow, build_layer

EVENT_SHAPES = {1: (5,), 3: (4, 4, 2)}
TOLERANCE = {jnp.float32: dict(rtol=2e-4, atol=2e-4), jnp.float64: dict(rtol=1e-9, atol=1e-9)}
N = 6


def make(name, dtype, index=0, perturb=0.1, seed=0):
    spec = FLOW_LAYERS.get(name)
    event = EVENT_SHAPES[spec.event_rank]
    layer = build_layer(name, event, index)
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.normal(keys[0], (N, *event), dtype)
    params = layer.init(keys[1], x)
    params = jax.tree.map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p,
                          params)
    leaves, tree = jax.tree.flatten(params)
    noise = jax.random.split(keys[2], len(leaves))
    leaves = [p + perturb * jax.random.normal(k, p.shape, p.dtype)
              if jnp.issubdtype(p.dtype, jnp.floating) else p for p, k in zip(leaves, noise)]
    return layer, jax.tree.unflatten(tree, leaves), x


def forward(layer, params, x):
    return layer.apply(params, x, method=lambda m, v: m.bijector().forward_and_log_det(v))


def inverse(layer, params, y):
    return layer.apply(params, y, method=lambda m, v: m.bijector().inverse_and_log_det(v))


NAMES = FLOW_LAYERS.names()
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
    layer, params, x = make(name, dtype, index)
    y, ld_fwd = forward(layer, params, x)
    assert y.shape == x.shape and ld_fwd.shape == (N,)
    assert y.dtype == dtype
    x_back, ld_inv = inverse(layer, params, y)
    np.testing.assert_allclose(x_back, x, **TOLERANCE[dtype])
    np.testing.assert_allclose(ld_inv, -ld_fwd, **TOLERANCE[dtype])
    # __call__ is the normalizing direction.
    z, ld_call = layer.apply(params, y)
    np.testing.assert_allclose(z, x, **TOLERANCE[dtype])
    np.testing.assert_allclose(ld_call, ld_inv, **TOLERANCE[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_log_det_matches_autodiff_jacobian(name, dtype):
    layer, params, x = make(name, dtype)
    event = x.shape[1:]
    _, ld = forward(layer, params, x)
    for i in range(2):
        def f(v):
            return forward(layer, params, v.reshape(1, *event))[0].reshape(-1)

        jac = jax.jacfwd(f)(x[i].reshape(-1))
        sign, logabsdet = jnp.linalg.slogdet(jac)
        assert sign != 0
        np.testing.assert_allclose(ld[i], logabsdet, **TOLERANCE[dtype])


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_vmap_agree(name):
    layer, params, x = make(name, jnp.float32)
    y, ld = forward(layer, params, x)
    y_jit, ld_jit = jax.jit(lambda p, v: forward(layer, p, v))(params, x)
    np.testing.assert_allclose(y_jit, y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ld_jit, ld, rtol=1e-5, atol=1e-5)
    y_map, ld_map = jax.vmap(lambda v: forward(layer, params, v[None]))(x)
    np.testing.assert_allclose(y_map[:, 0], y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ld_map[:, 0], ld, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in NAMES if FLOW_LAYERS.get(n).identity_at_init])
def test_identity_at_initialization(name):
    layer, params, x = make(name, jnp.float32, perturb=0.0)
    y, ld = forward(layer, params, x)
    np.testing.assert_allclose(y, x, atol=1e-6)
    np.testing.assert_allclose(ld, 0.0, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_gradients_are_finite_and_nonzero(name):
    layer, params, x = make(name, jnp.float32)
    event = x.shape[1:]
    flow = Flow(layers=[build_layer(name, event, 0)], event_shape=event)
    # Every collection the layer owns (batch_norm keeps "batch_stats"); none for logit.
    flow_params = {col: {"layers_0": tree} for col, tree in params.items()}

    def nll(p):
        return -jnp.mean(flow.apply(p, x, method=Flow.log_prob))

    grads = jax.grad(nll)(flow_params)
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms))
    assert max(norms, default=0.0) > 0 or not jax.tree.leaves(params.get("params", {}))
    # The layer-by-layer __call__ path and distrax's log_prob agree.
    np.testing.assert_allclose(flow.apply(flow_params, x), flow.apply(flow_params, x, method=Flow.log_prob),
                               rtol=1e-5, atol=1e-5)
