"""Image flows: masks, squeeze, ActNorm's data-dependent init, the LU 1x1 convolution,
the multi-scale architecture (Glow, RealNVP), and the bits/dim experiment script.

The per-layer contract (round trip, log-det vs autodiff, jit/vmap, identity at
init) is checked for every registered layer, squeeze included, and the recipe
contract for Glow and RealNVP by ``test_flows_properties.py``; here are the
properties specific to each image layer and architecture.
"""

import json
import math
import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gmjax.flows import Flow, build_layer
from gmjax.flows.glow import ACTNORM_EPS, ActNorm, LUChannelMatmul, Squeeze, SqueezeLayer
from gmjax.flows.image_coupling import ImageCoupling, channel_mask, checkerboard_mask
from gmjax.flows.multiscale import MultiScale, level_shapes
from gmjax.flows.recipes import glow, realnvp_image

F64 = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def normal(seed, shape, dtype=jnp.float32):
    """Test inputs from numpy (4-D jax.random draws take seconds to compile on CPU)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def perturb(params, key, scale=0.1):
    """Adds ``scale * N(0, 1)`` noise to every parameter (one flat draw: quick to compile)."""
    leaves, tree = jax.tree.flatten(params)
    noise = scale * jax.random.normal(key, (sum(p.size for p in leaves),))
    offsets = np.cumsum([0] + [p.size for p in leaves])
    return jax.tree.unflatten(tree, [p + noise[a:b].reshape(p.shape).astype(p.dtype)
                                     for p, a, b in zip(leaves, offsets[:-1], offsets[1:])])


# Masks -------------------------------------------------------------------------------------


def test_checkerboard_and_channel_masks():
    np.testing.assert_array_equal(checkerboard_mask((2, 3, 1), 0)[..., 0],
                                  [[1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(checkerboard_mask((2, 3, 1), 1)[..., 0],
                                  [[0, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(checkerboard_mask((2, 2, 3), 0)[0, 0], [1, 1, 1])
    np.testing.assert_array_equal(channel_mask((2, 2, 5), 0)[1, 0], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(channel_mask((2, 2, 5), 1)[0, 1], [0, 0, 0, 1, 1])


@pytest.mark.parametrize("name,mask_fn", [("checkerboard_coupling", checkerboard_mask),
                                          ("channel_coupling", channel_mask)])
@pytest.mark.parametrize("index", [0, 1])
def test_coupling_keeps_the_masked_entries_and_changes_the_others(name, mask_fn, index):
    event = (4, 4, 2)
    layer = build_layer(name, event, index, width=8)
    x = normal(0, (3, *event))
    params = perturb(jax.jit(layer.init)(jax.random.PRNGKey(1), x), jax.random.PRNGKey(2))
    y, _ = jax.jit(partial(layer.apply, method=lambda m, v: m.bijector().forward_and_log_det(v)))(
        params, x)
    mask = np.broadcast_to(mask_fn(event, index), y.shape)
    np.testing.assert_array_equal(np.asarray(y)[mask], np.asarray(x)[mask])
    assert np.all(np.abs(np.asarray(y - x)[~mask]) > 1e-6)


def test_channel_coupling_needs_two_channels():
    layer = build_layer("channel_coupling", (4, 4, 1), 0)
    with pytest.raises(ValueError, match="at least 2 channels"):
        layer.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)))


# Squeeze -----------------------------------------------------------------------------------


def test_squeeze_moves_each_2x2_block_into_the_channels():
    x = jnp.arange(4 * 6 * 2, dtype=jnp.float32).reshape(1, 4, 6, 2)
    y, log_det = Squeeze().forward_and_log_det(x)
    assert y.shape == (1, 2, 3, 8)
    # Output pixel (i, j), channel (2a + b) c + k = input pixel (2i + a, 2j + b), channel k.
    for i, j, a, b, k in [(0, 0, 0, 0, 0), (0, 0, 1, 1, 1), (1, 2, 0, 1, 0), (1, 1, 1, 0, 1)]:
        assert y[0, i, j, (2 * a + b) * 2 + k] == x[0, 2 * i + a, 2 * j + b, k]
    np.testing.assert_array_equal(np.sort(y.ravel()), np.sort(x.ravel()))  # a permutation
    np.testing.assert_array_equal(log_det, [0.0])


def test_squeeze_round_trip_and_zero_log_det():
    x = normal(0, (2, 3, 4, 8, 3))  # two batch axes
    y, ld_fwd = Squeeze().forward_and_log_det(x)
    x_back, ld_inv = Squeeze().inverse_and_log_det(y)
    np.testing.assert_array_equal(x_back, x)
    np.testing.assert_array_equal(ld_fwd, np.zeros((2, 3)))
    np.testing.assert_array_equal(ld_inv, np.zeros((2, 3)))
    # The layer's normalizing direction squeezes; its sampling direction unsqueezes.
    z, ld = SqueezeLayer().apply({}, x[0])
    np.testing.assert_array_equal(z, y[0])
    np.testing.assert_array_equal(ld, np.zeros(3))
    with pytest.raises(ValueError, match="even height and width"):
        Squeeze().forward(jnp.zeros((1, 3, 4, 1)))


# ActNorm -----------------------------------------------------------------------------------


def test_actnorm_data_dependent_init_standardizes_the_init_batch():
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    means, stds = jnp.array([3.0, -1.0, 0.5]), jnp.array([5.0, 0.2, 1.0])
    x = means + stds * normal(0, (64, 6, 5, 3))
    layer = ActNorm(num_channels=3)
    params = layer.init(keys[1], x)
    z, log_det = layer.apply(params, x)
    np.testing.assert_allclose(jnp.mean(z, axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(z, axis=(0, 1, 2)), 1.0, atol=1e-5)
    # log|det dz/dx| = h w sum_k log s_k with s_k = 1 / (std_k + eps) of the batch.
    batch_std = jnp.std(x, axis=(0, 1, 2))
    expected = -6 * 5 * np.sum(np.log(np.asarray(batch_std, np.float64) + ACTNORM_EPS))
    np.testing.assert_allclose(log_det, np.full(64, expected), rtol=1e-5)
    # ... and the batch std is near the true one, so this is not the identity.
    np.testing.assert_allclose(batch_std, stds, rtol=0.05)


def test_actnorm_without_data_starts_at_the_identity():
    layer = ActNorm(num_channels=2)
    params = layer.init(jax.random.PRNGKey(0), method=ActNorm.scale_and_bias)
    x = normal(1, (3, 2, 2, 2))
    z, log_det = layer.apply(params, x)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(log_det, np.zeros(3))


# Invertible 1x1 convolution ----------------------------------------------------------------


def test_lu_conv_log_det_is_hw_log_abs_det_w(x64):
    event = (3, 5, 4)
    layer = build_layer("invertible_conv1x1", event, index=1)
    x = normal(0, (2, *event), jnp.float64)
    params = perturb(jax.jit(layer.init)(jax.random.PRNGKey(1), x), jax.random.PRNGKey(2),
                     scale=0.3)
    lu = params["params"]["lu"]
    conv = LUChannelMatmul(jnp.asarray(layer.permutation), **lu)
    w = np.asarray(conv.matrix())
    # W = P L (U + diag(s)) from its definition, with numpy.
    c = event[-1]
    p = np.eye(c)[list(layer.permutation)]
    lower = np.tril(np.asarray(lu["lower"]), -1) + np.eye(c)
    upper = np.triu(np.asarray(lu["upper"]), 1) + np.diag(np.exp(np.asarray(lu["log_s"])))
    np.testing.assert_allclose(w, p @ lower @ upper, **F64)
    np.testing.assert_allclose(conv.inverse_matrix() @ w, np.eye(c), **F64)
    # The layer's normalizing direction is y = W x at every pixel, log-det h w log|det W|.
    z, log_det = jax.jit(layer.apply)(params, x)
    np.testing.assert_allclose(z, np.einsum("nhwc,dc->nhwd", x, w), **F64)
    _, log_abs_det_w = np.linalg.slogdet(w)
    np.testing.assert_allclose(log_det, np.full(2, 3 * 5 * log_abs_det_w), **F64)
    assert abs(log_abs_det_w) > 0.1  # the perturbed W is not volume preserving


def test_lu_conv_starts_as_a_rotation(x64):
    layer = build_layer("invertible_conv1x1", (2, 2, 6), index=0)
    params = jax.jit(layer.init)(jax.random.PRNGKey(3), jnp.zeros((1, 2, 2, 6)))
    w = LUChannelMatmul(jnp.asarray(layer.permutation), **params["params"]["lu"]).matrix()
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-12)
    assert np.abs(w - np.eye(6)).max() > 0.1
    assert sorted(layer.permutation) == list(range(6))


# Multi-scale flows -------------------------------------------------------------------------

BUILDERS = {"glow": glow, "realnvp_image": realnvp_image}


def init_tiny(name):
    """A 2-level flow on 4x4x1 images, its init batch, and its parameters as initialized."""
    flow = BUILDERS[name]((4, 4, 1), levels=2, steps_per_level=1, width=8)
    x = normal(0, (5, 4, 4, 1)) * 2.0 + 1.0
    return flow, jax.jit(flow.init)(jax.random.PRNGKey(1), x), x


@pytest.fixture(scope="module")
def tiny_glow():
    return init_tiny("glow")


@pytest.fixture(scope="module")
def tiny_realnvp():
    return init_tiny("realnvp_image")


@pytest.fixture(params=["glow", "realnvp_image"])
def tiny_multiscale(request):
    """``(flow, randomly perturbed parameters, inputs)`` for each architecture."""
    flow, params, x = request.getfixturevalue({"glow": "tiny_glow",
                                               "realnvp_image": "tiny_realnvp"}[request.param])
    return flow, perturb(params, jax.random.PRNGKey(2)), x


def to_f64(tree):
    return jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), tree)


def test_multiscale_sampling_shape(tiny_multiscale):
    flow, params, _ = tiny_multiscale
    samples, log_prob = jax.jit(partial(flow.apply, method=Flow.sample_and_log_prob),
                                static_argnums=2)(params, jax.random.PRNGKey(0), 7)
    assert samples.shape == (7, 4, 4, 1) and log_prob.shape == (7,)
    np.testing.assert_allclose(jax.jit(flow.apply)(params, samples), log_prob, rtol=1e-4,
                               atol=1e-4)


def test_multiscale_level_structure():
    flow = glow((8, 8, 3), levels=3, steps_per_level=1)
    (layer,) = flow.layers
    assert isinstance(layer, MultiScale)
    # 8x8x3 -> squeeze 4x4x12 -> keep 6 -> squeeze 2x2x24 -> keep 12 -> squeeze 1x1x48.
    kinds = [[type(sub).__name__ for sub in level] for level in layer.levels]
    assert kinds == [["SqueezeLayer", "ActNorm", "InvertibleConv1x1", "ImageCoupling"]] * 3
    assert [lvl[1].num_channels for lvl in layer.levels] == [12, 24, 48]
    assert level_shapes((8, 8, 3), layer.levels) == [(8, 8, 3), (4, 4, 6), (2, 2, 12)]
    with pytest.raises(ValueError, match="divisible by 8"):
        glow((28, 28, 1), levels=3)
    (layer,) = realnvp_image((8, 8, 1), levels=2, steps_per_level=1).layers
    kinds = [[type(sub).__name__ for sub in level] for level in layer.levels]
    assert kinds == [["ActNorm", "ImageCoupling", "SqueezeLayer", "ActNorm", "ImageCoupling"],
                     ["ActNorm", "ImageCoupling"] * 2]
    couplings = [sub for level in layer.levels for sub in level if isinstance(sub, ImageCoupling)]
    assert [(c.mask, c.parity, c.event_shape) for c in couplings] == [
        ("checkerboard", 0, (8, 8, 1)), ("channel", 1, (4, 4, 4)),
        ("checkerboard", 0, (4, 4, 2)), ("checkerboard", 1, (4, 4, 2))]


def log_normal(x):  # [n, ...] -> [n], log N(x; 0, I)
    x = x.reshape(x.shape[0], -1)
    return -0.5 * jnp.sum(x ** 2, axis=1) - 0.5 * x.shape[1] * math.log(2 * math.pi)


def inverse_fn(flow):
    return jax.jit(partial(flow.apply, method=lambda m, v: m.bijector().inverse_and_log_det(v)))


def test_every_actnorm_in_glow_sees_its_own_input_at_init(tiny_glow):
    """Init passes the data through the multi-scale walk: each ActNorm standardizes its input."""
    flow, params, x = tiny_glow

    def actnorm_outputs(p, v):
        _, state = flow.apply(p, v, mutable=["intermediates"], capture_intermediates=lambda m, f: (
            isinstance(m, ActNorm) and f == "__call__"))
        return state["intermediates"]

    found = []

    def collect(tree):
        for key, value in tree.items():
            if key == "__call__":
                found.extend(z for (z, _) in value)
            else:
                collect(value)

    collect(jax.jit(actnorm_outputs)(params, x))
    assert [z.shape for z in found] == [(5, 2, 2, 4), (5, 1, 1, 8)]  # one per level
    for z in found:
        np.testing.assert_allclose(jnp.mean(z, axis=(0, 1, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(jnp.std(z, axis=(0, 1, 2)), 1.0, atol=1e-4)


def reset_actnorms(tree):
    """ActNorm parameters (``bias`` and ``log_scale``) set to zero: the identity."""
    if set(tree) == {"bias", "log_scale"}:
        return jax.tree.map(jnp.zeros_like, dict(tree))
    return {k: reset_actnorms(v) if isinstance(v, dict) else v for k, v in tree.items()}


def test_realnvp_image_with_identity_actnorm_is_the_standard_normal(tiny_realnvp, x64):
    """ActNorm at identity, zero-initialized couplings: what is left are squeezes, splits and
    unsqueezes, which compose to the identity."""
    flow, params, _ = tiny_realnvp
    params, x = to_f64(reset_actnorms(params)), normal(3, (4, 4, 4, 1), jnp.float64)
    z, log_det = inverse_fn(flow)(params, x)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(log_det, np.zeros(4))
    np.testing.assert_allclose(jax.jit(flow.apply)(params, x), log_normal(x), **F64)


def test_glow_with_identity_actnorm_is_a_rotation_of_the_standard_normal(tiny_glow, x64):
    """ActNorm at identity, zero couplings: what is left are squeezes, splits and orthogonal
    1x1 convolutions, so |z| = |x| and log p(x) = log N(x; 0, I), though z != x."""
    flow, params, _ = tiny_glow
    params, x = to_f64(reset_actnorms(params)), normal(3, (4, 4, 4, 1), jnp.float64)
    z, log_det = inverse_fn(flow)(params, x)
    f32 = dict(rtol=1e-6, atol=1e-6)  # the rotations were drawn in float32
    np.testing.assert_allclose(jnp.sum(z ** 2, axis=(1, 2, 3)), jnp.sum(x ** 2, axis=(1, 2, 3)),
                               **f32)
    assert np.abs(np.asarray(z - x)).max() > 0.1
    np.testing.assert_allclose(log_det, np.zeros(4), **f32)
    np.testing.assert_allclose(jax.jit(flow.apply)(params, x), log_normal(x), **f32)


# The bits/dim experiment -------------------------------------------------------------------


@pytest.mark.parametrize("kind,alpha,log_prob_y,expected", [
    # The logistic density of y = logit(alpha + (1 - 2 alpha) u) makes p_U = 1 - 2 alpha.
    ("logit", 0.05, lambda y: jnp.sum(-jax.nn.softplus(-y) - jax.nn.softplus(y), axis=(1, 2, 3)),
     8.0 - math.log2(0.9)),
    ("logit", 0.0, lambda y: jnp.sum(-jax.nn.softplus(-y) - jax.nn.softplus(y), axis=(1, 2, 3)),
     8.0),
    # The uniform density on [-1/2, 1/2)^D: exactly log2(256) = 8 bits/dim.
    ("none", 0.05, lambda y: jnp.zeros(y.shape[0]), 8.0),
])
def test_bits_per_dim_bookkeeping_on_closed_form_models(kind, alpha, log_prob_y, expected):
    from experiments.flow_images import config_log_prob
    from gmjax.objectives import bits_per_dim_loss
    import ml_collections

    config = ml_collections.ConfigDict({"data": {"preprocess": kind, "logit_alpha": alpha}})
    log_prob_u = config_log_prob(lambda params, y: log_prob_y(y), config, num_levels=256)
    x = np.random.default_rng(0).integers(0, 256, (16, 4, 4, 1), dtype=np.uint8)
    loss, metrics = bits_per_dim_loss(log_prob_u, num_dims=16, num_levels=256)(
        None, x, jax.random.PRNGKey(1))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["bits_per_dim"], expected, rtol=1e-5)


def test_dequantized_log_prob_of_the_uniform_model_on_17_levels():
    """Without a transform log p_U(u) is the model's own: 0 for U[0, 1)^D, so log2(17) bits/dim;
    the noise keeps every u in its bin."""
    from gmjax.objectives import bits_per_dim_loss, dequantized_log_prob

    seen = []

    def log_prob(params, u):
        seen.append(u)
        return jnp.zeros(u.shape[0])

    log_prob_u = dequantized_log_prob(log_prob, num_levels=17)
    x = np.random.default_rng(1).integers(0, 17, (8, 4, 4, 1), dtype=np.uint8)
    loss, metrics = bits_per_dim_loss(log_prob_u, num_dims=16, num_levels=17)(
        None, x, jax.random.PRNGKey(2))
    np.testing.assert_allclose(loss, math.log2(17), rtol=1e-6)
    np.testing.assert_allclose(metrics["nll"], 0.0)
    u = np.asarray(seen[0])
    assert u.shape == x.shape and np.all(np.floor(u * 17) == x)


def test_actnorm_config_field_reaches_realnvp_image():
    from experiments.configs import flow_fashion_mnist
    from experiments.flow_images import build_image_flow
    from gmjax.experiment import ConfigError

    def num_actnorms(flow):
        return sum(isinstance(layer, ActNorm) for level in flow.layers[0].levels
                   for layer in level)

    config = flow_fashion_mnist.get_config()
    assert config.model.actnorm is True
    config.model.update(name="realnvp_image", steps_per_level=1)
    assert num_actnorms(build_image_flow(config.model, (8, 8, 1))) == 4
    config.model.actnorm = False
    assert num_actnorms(build_image_flow(config.model, (8, 8, 1))) == 0
    config.model.name = "glow"
    with pytest.raises(ConfigError, match="actnorm"):
        build_image_flow(config.model, (8, 8, 1))


def test_image_grid_places_image_r_times_cols_plus_c_at_row_r_column_c():
    from gmjax.viz import image_grid

    images = np.arange(6, dtype=np.float32)[:, None, None, None] * np.ones((6, 2, 3, 1))
    grid = image_grid(images, rows=2)
    assert grid.shape == (4, 9, 1)
    for r in range(2):
        for c in range(3):
            assert np.all(grid[2 * r:2 * r + 2, 3 * c:3 * c + 3] == 3 * r + c)


def test_flow_images_script_on_digits(tmp_path):
    """A few steps of Glow on the bundled 8x8 digits (17 levels): the whole pipeline."""
    from experiments import flow_images
    from experiments.configs import flow_mnist
    from gmjax.experiment import run

    config = flow_mnist.get_config()
    config.data.name = "digits"
    config.data.train_split, config.data.test_split = "train", "test"
    config.data.batch_size = 32
    config.train.steps = 6
    config.train.log_every = 3
    config.train.eval_every = config.train.checkpoint_every = 6
    config.model.steps_per_level = 1
    config.model.width = 8
    config.eval.batch_size = 360
    workdir = str(tmp_path / "run")
    metrics = run(flow_images.EXPERIMENT, config, workdir, progress=False)
    assert metrics["steps"] == 6
    # Better than the uniform model's log2(17) = 4.09 bits/dim (ActNorm's init alone is).
    assert 1.0 < metrics["bits_per_dim"] < math.log2(17)
    np.testing.assert_allclose(metrics["test_nll"], metrics["bits_per_dim"] * 64 * math.log(2))
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert json.load(f)["bits_per_dim"] == pytest.approx(metrics["bits_per_dim"])
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records if r["split"] == "train"] == [3, 6]
    assert [r["step"] for r in records if r["split"] == "eval"] == [6]
    import matplotlib.image

    grid = matplotlib.image.imread(os.path.join(workdir, "samples.png"))
    assert grid.ndim == 3 and min(grid.shape[:2]) > 100
