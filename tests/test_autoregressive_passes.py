"""The evaluation paths of the autoregressive flows: MADE's layouts and output selection, the
rank-by-rank inverse of ``MaskedAutoregressive``, and ``Flow.sample_and_log_prob`` on a batch.

Each is checked against the plainest computation of the same numbers: MADE's default
``[..., D, k]`` output, the one-pass forward map, distrax's per-draw sampling.
"""

import distrax
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import gmjax.flows  # noqa: F401  (registers every layer)
from gmjax.flows import Flow, build_layer
from gmjax.flows.spline import block_ranks
from gmjax.nets.made import MADE


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def normal_noise(key, n, dtype):
    """``jax.random.normal(key, (n,), dtype)``, drawn at the next power of two and cut: the
    same numbers (threefry counts elements one by one), one compile for many sizes."""
    size = max(64, 1 << (n - 1).bit_length())
    return jax.random.normal(key, (size,), dtype)[:n]


def perturbed(module, *args, seed=0, scale=0.3):
    """``module.init`` on args, then every floating leaf moved by ``scale`` * N(0, 1)."""
    flat, unravel = jax.flatten_util.ravel_pytree(module.init(jax.random.PRNGKey(seed), *args))
    return unravel(flat + scale * normal_noise(jax.random.PRNGKey(seed + 1), flat.size,
                                               flat.dtype))


@pytest.mark.parametrize("order, context", [((2, 0, 3, 1), False), ((1, 0, 1, 0, 2), True)])
def test_made_batch_last_and_outputs_are_the_default_layout_s_numbers(order, context, x64):
    dim, k, n = len(order), 3, 7
    made = MADE(order=order, hidden=(16, 8), num_params=k)
    x = jax.random.normal(jax.random.PRNGKey(0), (n, dim), jnp.float64)
    args = (x, jax.random.normal(jax.random.PRNGKey(1), (n, 2), jnp.float64)) if context else (x,)
    variables = perturbed(made, *args)
    static_rows = [(1,), (0, 2), (0, 1, 3)]
    traced_rows = np.array([3, 0])

    @jax.jit  # one compile for every layout
    def layouts(variables, args, gather_rows):
        x, context = args[0], args[1:]
        full = made.apply(variables, *args)  # [n, D, k]
        batch_last = made.apply(variables, x.T, *context, batch_last=True)  # [k, D, n]
        selected = [made.apply(variables, x.T, *context, batch_last=True, outputs=rows)
                    for rows in static_rows]
        # traced indices: the gather path
        gathered = made.apply(variables, x.T, *context, batch_last=True, outputs=gather_rows)
        return full, batch_last, selected + [gathered]

    full, batch_last, outs = layouts(variables, args, jnp.asarray(traced_rows))
    assert full.shape == (n, dim, k)
    np.testing.assert_allclose(batch_last, np.asarray(full).transpose(2, 1, 0), rtol=1e-12,
                               atol=1e-12)
    for rows, out in zip(static_rows + [traced_rows], outs):
        expected = np.asarray(full)[:, np.asarray(rows)].transpose(2, 1, 0)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def _layer(name, dim, index):
    if name == "rq_spline_block_autoregressive":
        return build_layer(name, (dim,), index, block_size=8, bound=3.0)
    if name == "rq_spline_autoregressive":
        return build_layer(name, (dim,), index, bound=3.0)
    return build_layer(name, (dim,), index)


# D = 2 (the 2-D TemperFlow flow, both orders), a longer permutation, tied ranks of unequal
# sizes (D = 12, blocks of 8: ranks i // 8 of 8 and 4 rows, ranks i mod 8 of 2 or 1), and
# the affine MAF.
CASES = [("rq_spline_autoregressive", 2, 0), ("rq_spline_autoregressive", 2, 1),
         ("rq_spline_autoregressive", 5, 1), ("rq_spline_block_autoregressive", 12, 0),
         ("rq_spline_block_autoregressive", 12, 1), ("maf", 4, 0)]


@pytest.mark.parametrize("name, dim, index", CASES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_sampling_passes_invert_the_density_pass(name, dim, index, dtype):
    # The density direction is one MADE pass; the sampling direction solves the variables
    # rank by rank. Sampling from the density pass's output must give back its input,
    # with the log-determinant negated.
    with jax.enable_x64(dtype == jnp.float64):
        x = 1.5 * jax.random.normal(jax.random.PRNGKey(2), (64, dim), dtype)  # some beyond B
        layer = _layer(name, dim, index)
        variables = perturbed(layer, x, scale=0.1)

        @jax.jit
        def passes(variables, x):
            z, log_det = layer.apply(variables, x)  # normalizing: one pass
            return log_det, layer.apply(
                variables, z, method=lambda m, v: m.bijector().forward_and_log_det(v))

        log_det, (x_back, log_det_back) = passes(variables, x)
        # float64 is the exact check. In float32 the rank-by-rank solve of the 12-D block
        # spline ends 1.5e-5 to 2.4e-5 from x, depending on how XLA builds the code (fused
        # multiply-adds, vector width; tests/conftest.py): 1e-5 held for one build only.
        tol = 3e-5 if dtype == jnp.float32 else 1e-10
        np.testing.assert_allclose(x_back, x, rtol=tol, atol=tol)
        np.testing.assert_allclose(log_det_back, -log_det, rtol=tol, atol=tol)


def test_block_ranks_case_has_unequal_rank_sizes():
    # The spare rows of the sampling loop are exercised only when ranks differ in size.
    for index in (0, 1):
        sizes = np.bincount(block_ranks(12, 8, index))
        assert sizes.min() < sizes.max()


@pytest.mark.parametrize("name, dim", [("rq_spline_autoregressive", 2), ("maf", 3)])
def test_flow_sample_and_log_prob_runs_on_the_batch_with_distrax_s_numbers(name, dim):
    layers = [_layer(name, dim, i) for i in range(3)]
    flow = Flow(layers=layers, event_shape=(dim,))
    params = perturbed(flow, jnp.zeros((2, dim)), scale=0.1)
    key = jax.random.PRNGKey(4)

    @jax.jit
    def draws(params, key):
        x, log_q = flow.apply(params, key, 50, method=Flow.sample_and_log_prob)
        # distrax's Transformed maps the bijector over the draws one at a time: same draws.
        reference = flow.apply(params, key, 50, method=lambda m, k, n: (
            distrax.Transformed(m.base(), m.bijector()).sample_and_log_prob(seed=k,
                                                                            sample_shape=n)))
        return x, log_q, reference, flow.apply(params, x, method=Flow.log_prob)

    x, log_q, (x_ref, log_q_ref), log_p = draws(params, key)
    np.testing.assert_allclose(x, x_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_q, log_q_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_q, log_p, rtol=1e-4, atol=1e-4)
