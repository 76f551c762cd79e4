"""MADE's autoregressive property and closed-form checks of the autoregressive (MAF, IAF with
and without context, BNAF), spline, batch-norm, elementwise, planar, radial and Sylvester
layers.

The generic bijector contract (round trip, log-det against autodiff, jit,
vmap, identity at init) is tested for every registered layer in
``test_flows_properties.py``; these tests check what is specific to each.
"""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import gmjax.flows  # noqa: F401  (registers every layer)
from gmjax.flows import Flow, build_layer
from gmjax.flows.elementwise import DiagScale, Logit
from gmjax.flows.normalization import update_batch_stats
from gmjax.flows.planar import planar_u_hat
from gmjax.flows.sylvester import Sylvester, householder_product
from gmjax.nets.made import MADE, made_masks


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def normal_noise(key, n, dtype):
    """``jax.random.normal(key, (n,), dtype)``, drawn at the next power of two and cut: the
    same numbers (threefry counts elements one by one), one compile for many sizes."""
    size = max(64, 1 << (n - 1).bit_length())
    return jax.random.normal(key, (size,), dtype)[:n]


def perturbed(layer, x, seed=0, scale=0.3):
    """``layer.init`` on x, then every floating leaf moved by ``scale`` * N(0, 1)."""
    flat, unravel = jax.flatten_util.ravel_pytree(layer.init(jax.random.PRNGKey(seed), x))
    return unravel(flat + scale * normal_noise(jax.random.PRNGKey(seed + 1), flat.size,
                                               flat.dtype))


def forward(layer, variables, z):
    return layer.apply(variables, z, method=lambda m, v: m.bijector().forward_and_log_det(v))


# ---------------------------------------------------------------- MADE


def test_made_masks_for_three_variables():
    # Input degrees [1, 2, 3]; hidden degrees (k mod 2) + 1 = [1, 2, 1, 2].
    to_hidden, to_output = made_masks(order=(0, 1, 2), hidden=(4,), num_params=1)
    np.testing.assert_array_equal(to_hidden, [[1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]])
    np.testing.assert_array_equal(to_output, [[0, 1, 1], [0, 0, 1], [0, 1, 1], [0, 0, 1]])


@pytest.mark.parametrize("hidden", [(16, 16), (2, 7)])
def test_made_is_autoregressive_by_gradients(hidden):
    dim, k = 6, 3
    order = tuple(int(i) for i in np.random.default_rng(1).permutation(dim))
    made = MADE(order=order, hidden=hidden, num_params=k, activation=jnp.tanh)
    x = jax.random.normal(jax.random.PRNGKey(0), (dim,))
    # Biases are zero at init; perturbed makes them generic so no unit is symmetric.
    variables = perturbed(made, x, scale=0.5)
    out = jax.jit(made.apply)(variables, x)
    assert out.shape == (dim, k)
    jac = jax.jit(jax.jacrev(lambda v: made.apply(variables, v)))(x)  # [dim, k, dim]
    depends = np.abs(np.asarray(jac)).max(axis=1) > 0  # [i, j]: out_i depends on x_j
    rank = np.asarray(order)
    allowed = rank[None, :] < rank[:, None]  # order(j) < order(i)
    assert not np.any(depends & ~allowed)
    # The dependencies are exactly the paths through the masks ...
    paths = np.linalg.multi_dot(made_masks(order, hidden, k)).reshape(dim, dim, k).max(-1) > 0
    np.testing.assert_array_equal(depends, paths.T)
    if min(hidden) >= dim - 1:  # ... which, with every degree present, are all allowed ones.
        np.testing.assert_array_equal(depends, allowed)
    assert depends.sum() > 0


def test_made_rejects_ranks_with_a_gap():
    with pytest.raises(ValueError, match="every value 0..R-1"):
        made_masks(order=(0, 0, 2), hidden=(4,), num_params=1)


def test_made_with_tied_ranks_is_block_autoregressive_by_gradients():
    # Ranks 1, 0, 1, 0, 2, 2: output i may depend on input j only when rank j < rank i.
    order, k = (1, 0, 1, 0, 2, 2), 3
    made = MADE(order=order, hidden=(16, 16), num_params=k, activation=jnp.tanh)
    x = jax.random.normal(jax.random.PRNGKey(40), (6,))
    params = perturbed(made, x[None])
    jac = jax.jit(jax.jacfwd(lambda v: made.apply(params, v)))(x)  # [D, k, D]
    depends = np.abs(np.asarray(jac)).max(axis=1) > 0
    rank = np.asarray(order)
    np.testing.assert_array_equal(depends, rank[None, :] < rank[:, None])


# ---------------------------------------------------------------- MAF / IAF


def affine_from_made(layer, variables, v):
    """``v * exp(s) + t`` with (t, raw) from the layer's MADE on v, s = 3 tanh(raw / 3)."""
    theta = layer.made().apply({"params": variables["params"]["made"]}, v)
    s = 3.0 * jnp.tanh(theta[..., 1] / 3.0)
    return v * jnp.exp(s) + theta[..., 0], s.sum(-1)


def test_maf_density_pass_and_iaf_sampling_pass_are_one_made_call():
    x = jax.random.normal(jax.random.PRNGKey(3), (8, 4))
    maf = build_layer("maf", (4,), 0)
    variables = perturbed(maf, x)
    # normalizing direction: one pass on the data
    (z, log_det), (z_ref, log_det_ref) = jax.jit(
        lambda v: (maf.apply(variables, v), affine_from_made(maf, variables, v)))(x)
    np.testing.assert_allclose(z, z_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(log_det, log_det_ref, rtol=1e-6, atol=1e-6)

    iaf = build_layer("iaf", (4,), 0)
    variables = perturbed(iaf, x)
    # sampling direction: one pass on the latent
    (y, log_det), (y_ref, log_det_ref) = jax.jit(
        lambda v: (forward(iaf, variables, v), affine_from_made(iaf, variables, v)))(x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(log_det, log_det_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["maf", "iaf", "rq_spline_autoregressive",
                                  "block_autoregressive"])
def test_order_is_reversed_on_odd_indices(name):
    dim = 4
    x = jax.random.normal(jax.random.PRNGKey(4), (1, dim))
    for index, keep in [(0, np.tril), (1, np.triu)]:
        layer = build_layer(name, (dim,), index)
        variables = perturbed(layer, x)

        def one_pass(v):  # IAF and BNAF sample in one pass, MAF and the spline MAF evaluate
            if name in ("iaf", "block_autoregressive"):
                return forward(layer, variables, v[None])[0][0]
            return layer.apply(variables, v[None])[0][0]

        jac = np.asarray(jax.jit(jax.jacfwd(one_pass))(x[0]))
        # Output i depends on input i and on every input before it in the order.
        np.testing.assert_array_equal(jac != 0, keep(np.ones((dim, dim))) != 0)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_block_autoregressive_spline_dependence_and_round_trip(index, x64):
    # D = 6 in blocks of 3: even layers see earlier blocks, odd layers earlier positions
    # within blocks; every other layer of each kind reverses. The sampling direction takes
    # one pass per rank (2 or 3, not 6) and still inverts the density pass exactly.
    from gmjax.flows.spline import block_ranks

    dim, b = 6, 3
    ranks = np.asarray(block_ranks(dim, b, index))
    expected = {0: [0, 0, 0, 1, 1, 1], 1: [0, 1, 2, 0, 1, 2],
                2: [1, 1, 1, 0, 0, 0], 3: [2, 1, 0, 2, 1, 0]}[index]
    np.testing.assert_array_equal(ranks, expected)
    layer = build_layer("rq_spline_block_autoregressive", (dim,), index, block_size=b,
                        bound=4.0)
    x = jax.random.normal(jax.random.PRNGKey(41), (5, dim), jnp.float64)
    variables = perturbed(layer, x, scale=0.2)

    @jax.jit
    def passes(v):
        jac = jax.jacfwd(lambda u: layer.apply(variables, u[None])[0][0])(v[0])
        z, log_det = layer.apply(variables, v)  # density direction: one pass
        return jac, z, log_det, forward(layer, variables, z)  # sampling: one pass per rank

    jac, z, log_det, (x_back, log_det_back) = passes(x)
    jac = np.asarray(jac)
    allowed = (ranks[None, :] < ranks[:, None]) | np.eye(dim, dtype=bool)
    np.testing.assert_array_equal(jac != 0, allowed)
    np.testing.assert_allclose(x_back, x, atol=1e-10)  # a pass short is off by O(1)
    np.testing.assert_allclose(log_det_back, -log_det, atol=1e-9)


def context_iaf(dim=5, context_dim=3, seed=20):
    """An IAF layer with context, perturbed variables, latents [6, dim] and contexts [6, C]."""
    layer = build_layer("iaf", (dim,), 0, context_dim=context_dim)
    z = jax.random.normal(jax.random.PRNGKey(seed), (6, dim))
    h = jax.random.normal(jax.random.PRNGKey(seed + 1), (6, context_dim))
    variables = layer.init(jax.random.PRNGKey(seed + 2), z, h)
    flat, unravel = jax.flatten_util.ravel_pytree(variables)
    variables = unravel(flat + 0.3 * normal_noise(jax.random.PRNGKey(seed + 3), flat.size,
                                                  flat.dtype))
    return layer, variables, z, h


def forward_with_context(layer, variables, z, h):
    return layer.apply(variables, z, h,
                       method=lambda m, v, c: m.bijector(c).forward_and_log_det(v))


def test_iaf_without_context_keeps_its_parameters():
    x = jnp.zeros((1, 4))
    plain = build_layer("iaf", (4,), 0).init(jax.random.PRNGKey(0), x)
    made = plain["params"]["made"]
    assert "context" not in made and sorted(made) == ["MaskedDense_0", "MaskedDense_1",
                                                      "MaskedDense_2"]
    with_context = build_layer("iaf", (4,), 0, context_dim=2).init(
        jax.random.PRNGKey(0), x, jnp.zeros((1, 2)))
    assert with_context["params"]["made"]["context"]["kernel"].shape == (2, 32)
    # The masked layers are drawn as before: the context only adds its own kernel.
    for name in made:
        for a, b in zip(jax.tree.leaves(made[name]),
                        jax.tree.leaves(with_context["params"]["made"][name])):
            np.testing.assert_array_equal(a, b)


def test_iaf_context_changes_the_output_and_keeps_the_round_trip():
    layer, variables, z, h = context_iaf()

    @jax.jit
    def passes(z, h):
        x, log_det = forward_with_context(layer, variables, z, h)
        # One context per example, or one for the whole batch (broadcast).
        x_one, _ = forward_with_context(layer, variables, z, h[0])
        return (x, log_det), forward_with_context(layer, variables, z, h + 1.0), x_one, \
            layer.apply(variables, x, h)  # __call__(x, context): x -> z

    (x, log_det), (x2, log_det2), x_one, (z_back, inv_log_det) = passes(z, h)
    assert float(jnp.abs(x - x2).max()) > 1e-2 and float(jnp.abs(log_det - log_det2).max()) > 1e-3
    np.testing.assert_allclose(x_one[0], x[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z_back, z, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(inv_log_det, -log_det, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="context"):
        layer.apply(variables, z, method=lambda m, v: m.bijector().forward(v))
    with pytest.raises(ValueError, match="without a context"):
        build_layer("iaf", (5,), 0).apply(variables, z, h)  # raises before touching variables
    with pytest.raises(ValueError, match="hidden layer"):
        MADE(order=(0, 1), hidden=(), num_params=2).init(jax.random.PRNGKey(0), z[:, :2], h)


def test_iaf_with_context_is_autoregressive_by_gradients():
    layer, variables, z, h = context_iaf()

    def sample(v, c):  # one example: z [D], h [C] -> x [D]
        return forward_with_context(layer, variables, v[None], c[None])[0][0]

    jac_z, jac_h = map(np.asarray, jax.jit(jax.jacfwd(sample, argnums=(0, 1)))(z[0], h[0]))
    np.testing.assert_array_equal(jac_z != 0, np.tril(np.ones((5, 5))) != 0)  # jac_z [D, D]
    # jac_h [D, C]:
    # x_0 = z_0 exp(s_0) + t_0 with (s_0, t_0) from the biases alone: no path from h;
    # every later x_i sees h through the first hidden layer.
    assert np.all(jac_h[0] == 0) and np.all(np.abs(jac_h[1:]).max(axis=1) > 0)


# ---------------------------------------------------------------- BNAF


def test_block_autoregressive_inverse_far_out_and_its_derivatives(x64):
    """The bisection brackets roots far from 0; the inverse's Jacobian is the forward one's
    inverse and its parameter gradient matches finite differences (the Newton-Jacobi steps)."""
    dim = 3
    layer = build_layer("block_autoregressive", (dim,), 1, hidden_factor=4)
    z = jnp.array([[0.0, 0.0, 0.0], [40.0, -3.0, 1e-3], [-1e3, 250.0, 7.5],
                   [0.5, -0.25, 1e4]])
    variables = perturbed(layer, z, scale=0.3)

    @jax.jit
    def passes(z):
        x, log_det = forward(layer, variables, z)
        jac_inv = jax.jacfwd(lambda v: layer.apply(variables, v[None])[0][0])(x[1])
        jac_fwd = jax.jacfwd(lambda v: forward(layer, variables, v[None])[0][0])(z[1])
        return x, log_det, layer.apply(variables, x), jac_inv, jac_fwd

    x, log_det, (z_back, inv_log_det), jac_inv, jac_fwd = passes(z)
    np.testing.assert_allclose(z_back, z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inv_log_det, -log_det, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(jac_inv @ jac_fwd, np.eye(dim), atol=1e-9)

    flat, unravel = jax.flatten_util.ravel_pytree(variables)
    data = jax.random.normal(jax.random.PRNGKey(25), (5, dim), jnp.float64)

    @jax.jit
    @jax.value_and_grad
    def nll(theta):
        z, ld = layer.apply(unravel(theta), data)
        return -jnp.mean(ld - 0.5 * jnp.sum(z ** 2, axis=-1))

    direction = normal_noise(jax.random.PRNGKey(26), flat.size, jnp.float64)
    eps = 1e-6
    numeric = (nll(flat + eps * direction)[0] - nll(flat - eps * direction)[0]) / (2 * eps)
    np.testing.assert_allclose(jnp.dot(nll(flat)[1], direction), numeric, rtol=1e-6)


def grid_mass(flow, variables, h):
    """Midpoint-rule integral of a 2-D flow density over [-10, 10]^2 with cell width h."""
    axis = jnp.arange(-10.0, 10.0, h) + h / 2
    grid = jnp.stack(jnp.meshgrid(axis, axis), -1).reshape(-1, 2)
    log_p = jax.jit(lambda v, g: flow.apply(v, g, method=Flow.log_prob))(variables, grid)
    return jnp.sum(jnp.exp(log_p)) * h * h


def test_block_autoregressive_flow_density_integrates_to_one():
    from gmjax.models.flow import build_flow

    flow = build_flow({"name": "block_autoregressive", "num_layers": 2, "hidden": (8,)}, 2)
    assert [layer.hidden_factor for layer in flow.layers] == [4, 4]
    data = jax.random.normal(jax.random.PRNGKey(27), (16, 2))
    variables = perturbed(flow, data, scale=0.3)
    np.testing.assert_allclose(grid_mass(flow, variables, h=0.1), 1.0, atol=5e-3)
    # Samples and their log-densities come from the forward pass and agree with log_prob.
    @jax.jit
    def draws(v, key):
        x, log_q = flow.apply(v, key, 64, method=Flow.sample_and_log_prob)
        return log_q, flow.apply(v, x, method=Flow.log_prob)

    log_q, log_p = draws(variables, jax.random.PRNGKey(28))
    np.testing.assert_allclose(log_p, log_q, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- splines


@pytest.mark.parametrize("name", ["rq_spline_coupling", "rq_spline_autoregressive"])
def test_spline_is_the_identity_outside_the_bound(name):
    inside = jax.random.uniform(jax.random.PRNGKey(5), (16, 4), minval=-4.0, maxval=4.0)
    outside = jnp.sign(inside) * (5.5 + jnp.abs(inside))  # |x| in [5.5, 9.5], B = 5
    layer = build_layer(name, (4,), 0)
    variables = perturbed(layer, inside, scale=0.5)
    forward_jit = jax.jit(lambda v: forward(layer, variables, v))
    y, log_det = forward_jit(outside)
    np.testing.assert_allclose(y, outside, atol=1e-5)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-5)
    y, _ = forward_jit(inside)
    assert float(jnp.abs(y - inside).max()) > 1e-2  # ... and not inside it


def test_gather_spline_equals_distrax_values_log_dets_and_gradients(x64):
    # gmjax picks the bin by counting knots (a one-hot product, bins first); distrax with a
    # mask over all bins, one scalar at a time. Same parameterization, so the same numbers: inside, outside and on the
    # bound, both directions, and the gradient with respect to the parameters.
    import distrax

    from gmjax.flows.spline import RationalQuadraticSpline

    k, bound = 8, 3.0
    theta = 1.5 * jax.random.normal(jax.random.PRNGKey(30), (64, 3, 3 * k + 1), jnp.float64)
    x = jnp.concatenate([jax.random.uniform(jax.random.PRNGKey(31), (60, 3), jnp.float64,
                                            -4.0, 4.0),
                         jnp.array([[-3.0, 3.0, 0.0], [-5.0, 5.0, 2.999999],
                                    [1e-9, -1e-9, -2.999999], [-3.0 - 1e-9, 7.0, -7.0]])])

    def both(bijector_of, direction):
        def total(theta):
            bijector = bijector_of(theta)
            y, log_det = getattr(bijector, f"{direction}_and_log_det")(x)
            return jnp.sum(jnp.sin(y) + log_det), (y, log_det)
        return jax.jit(jax.value_and_grad(total, has_aux=True))(theta)

    ours = lambda t: RationalQuadraticSpline(jnp.moveaxis(t, -1, 0), bound)  # parameters first
    theirs = lambda t: distrax.RationalQuadraticSpline(t, -bound, bound,
                                                       boundary_slopes="identity")
    for direction in ("forward", "inverse"):
        (_, (y, log_det)), grad = both(ours, direction)
        (_, (y_ref, log_det_ref)), grad_ref = both(theirs, direction)
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(log_det, log_det_ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- batch norm


def test_batch_norm_initializes_from_data_and_updates_by_averaging():
    mean, std = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.5, 2.0, 3.0])
    x = mean + std * jax.random.normal(jax.random.PRNGKey(6), (256, 3))
    layer = build_layer("batch_norm", (3,), 0)
    variables = layer.init(jax.random.PRNGKey(0), x)
    stats = variables["batch_stats"]
    np.testing.assert_allclose(stats["mean"], x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jnp.exp(stats["log_var"]), x.var(0), rtol=1e-5)
    z, log_det = layer.apply(variables, x)
    var = x.var(0)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.var(0), var / (var + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(log_det, -0.5 * jnp.log(var + 1e-5).sum(), rtol=1e-5)

    x2 = 3.0 + jax.random.normal(jax.random.PRNGKey(7), (64, 3))
    (z2, _), state = layer.apply(variables, x2, mutable=["batch_stats"])
    np.testing.assert_allclose(z2, layer.apply(variables, x2)[0], rtol=1e-6)  # old statistics
    updated = update_batch_stats(layer, variables, x2)
    np.testing.assert_allclose(updated["batch_stats"]["mean"], state["batch_stats"]["mean"])
    np.testing.assert_allclose(updated["batch_stats"]["mean"],
                               0.99 * x.mean(0) + 0.01 * x2.mean(0), rtol=1e-5)
    np.testing.assert_allclose(jnp.exp(updated["batch_stats"]["log_var"]),
                               0.99 * x.var(0) + 0.01 * x2.var(0), rtol=1e-5)
    assert updated["params"] is variables["params"]


def test_batch_norm_inside_a_flow_sees_the_previous_layers_output():
    x = jax.random.normal(jax.random.PRNGKey(8), (128, 2))
    flow = Flow(layers=[build_layer("diag_scale", (2,), 0), build_layer("batch_norm", (2,), 1)],
                event_shape=(2,))
    variables = flow.init(jax.random.PRNGKey(0), x)
    variables = {**variables, "params": {"layers_0": {"log_scale": jnp.array([1.0, -1.0])},
                                         "layers_1": variables["params"]["layers_1"]}}
    x2 = 2.0 + jax.random.normal(jax.random.PRNGKey(9), (128, 2))
    updated = update_batch_stats(flow, variables, x2)
    seen = x2 * jnp.exp(jnp.array([1.0, -1.0]))  # diag_scale's output, z = exp(s) x
    old = variables["batch_stats"]["layers_1"]["mean"]
    np.testing.assert_allclose(updated["batch_stats"]["layers_1"]["mean"],
                               0.99 * old + 0.01 * seen.mean(0), rtol=1e-5)


# ---------------------------------------------------------------- elementwise


def test_logit_values_and_log_det_on_images():
    layer = Logit(alpha=0.05, event_ndims=3)
    x = jnp.full((2, 4, 4, 2), 0.5).at[1].set(0.25)
    z, log_det = layer.apply({}, x)
    squashed = 0.05 + 0.9 * 0.25
    np.testing.assert_allclose(z[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(z[1], np.log(squashed / (1 - squashed)), rtol=1e-6)
    per_pixel = np.log(0.9) - np.log([0.5, squashed]) - np.log([0.5, 1 - squashed])
    np.testing.assert_allclose(log_det, 32 * per_pixel, rtol=1e-5)
    x_back, _ = layer.apply({}, z, method=lambda m, v: m.bijector().forward_and_log_det(v))
    np.testing.assert_allclose(x_back, x, atol=1e-6)


def test_diag_scale_on_images():
    layer = DiagScale(event_shape=(4, 4, 2))
    s = jax.random.normal(jax.random.PRNGKey(10), (4, 4, 2))
    x = jax.random.normal(jax.random.PRNGKey(11), (3, 4, 4, 2))
    z, log_det = layer.apply({"params": {"log_scale": s}}, x)
    np.testing.assert_allclose(z, jnp.exp(s) * x, rtol=1e-6)
    np.testing.assert_allclose(log_det, jnp.full(3, s.sum()), rtol=1e-5)


# ---------------------------------------------------------------- planar, radial, Sylvester


def test_planar_constraint_keeps_w_dot_u_hat_above_minus_one(x64):
    w = jnp.array([1.0, 2.0, -0.5])
    for wu in [-10.0, -1.0, 0.0, 3.0]:
        u = wu * w / jnp.dot(w, w)
        got = jnp.dot(w, planar_u_hat(u, w))
        np.testing.assert_allclose(got, -1.0 + np.log1p(np.exp(wu)), rtol=1e-12)


def test_planar_inverse_near_the_invertibility_boundary(x64):
    # w^T u_hat = -1 + softplus(-10) = -1 + 4.5e-5: f is barely monotone along w at a = 0.
    dim = 3
    layer = build_layer("planar", (dim,), 0)
    w = jnp.array([1.0, 2.0, -0.5])
    u = -10.0 * w / jnp.dot(w, w)
    variables = {"params": {"u": u, "w": w, "b": jnp.array(0.3)}}
    z = jax.random.normal(jax.random.PRNGKey(12), (64, dim), jnp.float64)
    z = z - ((z @ w + 0.3) / jnp.dot(w, w))[:, None] * w * (jnp.arange(64) % 2)[:, None]  # a = 0
    x, log_det = forward(layer, variables, z)
    z_back, inv_log_det = layer.apply(variables, x)
    np.testing.assert_allclose(z_back, z, atol=1e-9)
    np.testing.assert_allclose(inv_log_det, -log_det, rtol=1e-9)


def test_radial_inverse_with_beta_near_minus_alpha(x64):
    # beta = -alpha + softplus(-30): the map crushes a ball around z0 (log-dets near -40).
    # z0 = 0 so that x - z0 is representable to full relative precision.
    layer = build_layer("radial", (3,), 0)
    z0 = jnp.zeros(3)
    variables = {"params": {"z0": z0, "alpha_hat": jnp.array(0.3),
                            "beta_hat": jnp.array(-30.0)}}
    offsets = jnp.logspace(-6, 1, 32)[:, None] * jnp.array([0.6, 0.0, -0.8])
    z = z0 + offsets
    x, log_det = forward(layer, variables, z)
    z_back, inv_log_det = layer.apply(variables, x)
    np.testing.assert_allclose(z_back, z, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(inv_log_det, -log_det, rtol=1e-9)


def test_householder_product_is_orthogonal(x64):
    q = householder_product(jax.random.normal(jax.random.PRNGKey(13), (3, 5), jnp.float64))
    np.testing.assert_allclose(q.T @ q, jnp.eye(5), atol=1e-12)
    assert abs(abs(float(jnp.linalg.det(q))) - 1.0) < 1e-12


@pytest.mark.parametrize("parity", [0, 1])
def test_triangular_sylvester_round_trip_and_log_det(parity, x64):
    dim = 4
    layer = Sylvester(dim=dim, orthogonal="triangular", parity=parity)
    z = jax.random.normal(jax.random.PRNGKey(14), (5, dim), jnp.float64)
    variables = perturbed(layer, z, scale=0.8)
    x, log_det = forward(layer, variables, z)
    z_back, inv_log_det = layer.apply(variables, x)
    np.testing.assert_allclose(z_back, z, atol=1e-10)
    np.testing.assert_allclose(inv_log_det, -log_det, rtol=1e-10)
    jac = jax.jacfwd(lambda v: forward(layer, variables, v[None])[0][0])(z[0])
    np.testing.assert_allclose(log_det[0], jnp.linalg.slogdet(jac)[1], rtol=1e-10)


def test_gradient_through_the_iterative_inverses_matches_finite_differences(x64):
    # Densities of planar and Sylvester layers differentiate through their
    # iterative inverses: one Newton step from the gradient-stopped solution.
    dim = 3
    x = jax.random.normal(jax.random.PRNGKey(15), (8, dim), jnp.float64)
    flow = Flow(layers=[build_layer(n, (dim,), 0) for n in ("planar", "sylvester")],
                event_shape=(dim,))
    variables = perturbed(flow, x, scale=0.5)
    flat, unravel = jax.flatten_util.ravel_pytree(variables)

    @jax.jit
    def nll(theta):
        return -jnp.mean(flow.apply(unravel(theta), x, method=Flow.log_prob))

    direction = normal_noise(jax.random.PRNGKey(16), flat.size, jnp.float64)
    eps = 1e-5
    numeric = (nll(flat + eps * direction) - nll(flat - eps * direction)) / (2 * eps)
    analytic = jnp.dot(jax.jit(jax.grad(nll))(flat), direction)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


# ---------------------------------------------------------------- a whole flow


def test_mixed_flow_density_integrates_to_one():
    names = ["batch_norm", "rq_spline_coupling", "planar", "iaf", "radial", "sylvester"]
    flow = Flow(layers=[build_layer(n, (2,), i) for i, n in enumerate(names)], event_shape=(2,))
    data = jax.random.normal(jax.random.PRNGKey(17), (64, 2))
    variables = perturbed(flow, data, scale=0.1)
    np.testing.assert_allclose(grid_mass(flow, variables, h=0.05), 1.0, atol=2e-3)
