"""Continuous-time flows end to end: experiments/cnf.py (tiny run, resume, refusals), the RNODE
regularizers against the linear field's closed form, and OT-Flow's exact Hessian trace.

For v(y) = A y the solution is y(t) = expm(t A) y0, so the kinetic energy is
int_0^T ||A expm(t A) y0||^2 dt (quadrature in float64) and the Jacobian's
Frobenius term is the constant T ||A||_F^2.
"""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

from gmjax.flows.ode import ODEOptions, integrate
from gmjax.flows.otflow import (otflow_costs, otflow_flow, otflow_potential, otflow_terms)

A = np.array([[-0.5, 1.0], [-0.7, 0.2]], np.float32)
T1 = 1.2


def linear(y, t, a):
    return y @ a.T


def test_rnode_terms_of_a_linear_field_match_the_closed_form():
    y0 = np.array([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.1]], np.float32)
    a64 = A.astype(np.float64)

    t = np.linspace(0.0, T1, 4001)
    step = scipy.linalg.expm((t[1] - t[0]) * a64)  # y(t_k) = step^k y0
    ys = [y0.astype(np.float64).T]
    for _ in t[1:]:
        ys.append(step @ ys[-1])
    speed = np.sum(np.einsum("ij,kjn->kin", a64, np.stack(ys)) ** 2, axis=1)  # [t, n]
    expected = scipy.integrate.simpson(speed, x=t, axis=0)
    options = ODEOptions(solver="rk4", num_steps=40)
    r = integrate(linear, jnp.asarray(y0), 0.0, T1, args=jnp.asarray(A), options=options,
                  regularize=True)
    np.testing.assert_allclose(r.kinetic, expected, rtol=1e-4)
    np.testing.assert_allclose(r.frobenius, np.full(3, T1 * np.sum(A ** 2)), rtol=1e-5)
    assert int(r.nfe) == 4 * 40
    # Backwards in time the costs are the same (integrated over |dt|).
    back = integrate(linear, r.y, T1, 0.0, args=jnp.asarray(A), options=options, regularize=True)
    np.testing.assert_allclose(back.kinetic, expected, rtol=1e-3)
    np.testing.assert_allclose(back.frobenius, r.frobenius, rtol=1e-5)
    # Hutchinson's ||J eps||^2 is unbiased for ||J||_F^2.
    hutch = ODEOptions(solver="rk4", num_steps=4, trace="hutchinson")
    draws = jax.jit(jax.vmap(lambda k: integrate(
        linear, jnp.asarray(y0), 0.0, T1, args=jnp.asarray(A), options=hutch, key=k,
        regularize=True).frobenius))(jax.random.split(jax.random.PRNGKey(0), 4000))
    stderr = draws.std(0) / np.sqrt(draws.shape[0])
    assert np.all(draws.std(0) > 0.1)
    np.testing.assert_array_less(np.abs(draws.mean(0) - T1 * np.sum(A ** 2)), 5 * stderr)


def test_otflow_trace_gradient_and_costs_match_autodiff():
    with jax.enable_x64(True):
        flow = otflow_flow((3,), width=8, num_layers=2)
        x = jax.random.normal(jax.random.PRNGKey(0), (5, 3), jnp.float64)
        params = flow.init(jax.random.PRNGKey(1), x)["params"]["layers_0"]
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
        p = jax.tree.unflatten(tree, [jnp.asarray(v, jnp.float64)
                                      + 0.5 * jax.random.normal(k, jnp.shape(v), jnp.float64)
                                      for v, k in zip(leaves, keys)])
        t = 0.3

        def phi(row, s):
            return otflow_potential(p, row[None], s)[0]

        @jax.jit
        def both(x):
            grad_x, grad_t = jax.vmap(lambda r: jax.grad(phi, argnums=(0, 1))(r, t))(x)
            hessian_trace = jax.vmap(lambda r: jnp.trace(jax.hessian(phi)(r, t)))(x)
            return otflow_terms(p, x, t), grad_x, grad_t, hessian_trace, otflow_costs(x, t, p)

        (grad, trace), grad_x, grad_t, hessian_trace, costs = both(x)
        np.testing.assert_allclose(grad[:, :3], grad_x, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(grad[:, 3], grad_t, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(trace, hessian_trace, rtol=1e-10, atol=1e-10)
        assert float(jnp.abs(trace).min()) > 1e-3
        half = 0.5 * jnp.sum(grad_x ** 2, axis=1)
        np.testing.assert_allclose(costs[:, 0], half, rtol=1e-10)
        np.testing.assert_allclose(costs[:, 1], jnp.abs(grad_t - half), rtol=1e-10)


# --- the script ------------------------------------------------------------------------------

TINY = {"train.steps": 10, "train.log_every": 5, "train.eval_every": 10,
        "train.checkpoint_every": 5, "data.num_train": 512, "data.num_test": 256,
        "data.batch_size": 64, "model.hidden": (16,), "model.embed_dim": 8,
        "model.num_steps": 2, "model.kinetic": 0.01, "model.jacobian": 0.01,
        "eval.solver": "rk4", "eval.num_steps": 4, "eval.num_samples": 200,
        "eval.panels": 3, "eval.density": False}


def config_with(changes):
    from experiments.configs import cnf_toy

    config = cnf_toy.get_config()
    for path, value in changes.items():
        block, field = path.split(".")
        config[block][field] = value
    return config


def test_a_tiny_ffjord_run_writes_the_contract_logs_nfe_and_resumes(tmp_path):
    import warnings

    from experiments import cnf
    from gmjax.experiment import ConfigContractWarning, run

    config = config_with({"model.name": "ffjord", **TINY})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigContractWarning)
        m = run(cnf.EXPERIMENT, config, str(tmp_path))
    assert m["steps"] == 10 and m["nfe_nll"] == 16 and m["nfe_sample"] == 16
    assert np.isfinite(m["test_nll"]) and np.isfinite(m["nll_excess"]) and m["sample_seconds"] > 0
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [5, 10]
    assert all(r["nfe"] == 8 and r["kinetic"] > 0 and r["frobenius"] > 0 for r in train)
    for name in ("trajectories", "curves"):
        assert (tmp_path / f"{name}.png").exists(), name
    # Resumes at the last checkpoint: no new training steps.
    again = run(cnf.EXPERIMENT, config_with({"model.name": "ffjord", **TINY}), str(tmp_path))
    train = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["step"] for r in train if r["split"] == "train"] == [5, 10]
    assert again["test_nll"] == pytest.approx(m["test_nll"], rel=1e-5)


def _dataset_of_dimension(dim):
    from gmjax.data import DATASETS
    from gmjax.data.registry import Dataset

    name = f"cube_{dim}"
    if name not in DATASETS:
        @DATASETS.register(name)
        def load(split, *, data_dir=None, n=None, seed=0):
            x = np.random.default_rng(seed).standard_normal((n or 64, dim)).astype(np.float32)
            return Dataset(x=x, y=None, name=name, split=split)
    return name


@pytest.mark.parametrize("changes,message", [
    ({"model.name": "cnf"}, "valid choices: ffjord, flow_matching, otflow"),
    ({"model.name": "otflow", "model.num_steps": 0}, "model.num_steps=0 must be positive"),
    ({"model.name": "ffjord", "model.num_steps": 0}, "model.num_steps=0 must be positive"),
    ({"eval.solver": "rk4", "eval.num_steps": -1}, "eval.num_steps=-1 must be positive"),
    ({"eval.solver": "rk45"}, "valid choices: dopri5, euler, heun"),
    ({"model.name": "ffjord", "model.trace": "skilling"}, "valid choices: exact, hutchinson"),
    ({"model.name": "ffjord", "data.name": "cube_100"},
     "--config.model.trace='exact' takes 100 Jacobian-vector products"),
    ({"data.name": "cube_100"}, "--config.eval.trace='exact' takes 100"),
])
def test_bad_input_is_refused_before_any_work(changes, message):
    from experiments import cnf
    from gmjax.experiment import ConfigError, preflight

    _dataset_of_dimension(100)
    with pytest.raises(ConfigError, match=re.escape(message)):
        preflight(cnf.EXPERIMENT, config_with(changes))
    # Hutchinson's estimator is accepted there.
    if "cube_100" in changes.get("data.name", ""):
        preflight(cnf.EXPERIMENT, config_with({**changes, "model.trace": "hutchinson",
                                               "eval.trace": "hutchinson"}))


@pytest.mark.parametrize("model", ["ffjord", "otflow", "flow_matching"])
def test_each_model_reads_its_own_fields_and_refuses_the_others(model):
    from experiments import cnf
    from gmjax.experiment import ConfigError, contract_violations, preflight
    from experiments.configs import cnf_toy

    config = config_with({"model.name": model})
    unread, reads = preflight(cnf.EXPERIMENT, config, cnf_toy.get_config())
    assert contract_violations(config, reads, unread) == []
    foreign = {"ffjord": "model.width", "otflow": "model.hidden",
               "flow_matching": "model.kinetic"}[model]
    assert foreign in unread
    changed = config_with({"model.name": model, foreign: {"model.width": 8,
                                                          "model.hidden": (8,),
                                                          "model.kinetic": 1.0}[foreign]})
    with pytest.raises(ConfigError, match="is not read by this script"):
        preflight(cnf.EXPERIMENT, changed, cnf_toy.get_config())


def test_the_quickstart_cnf_section_passes_the_checks_before_any_work():
    from experiments import quickstart
    from gmjax.experiment import contract_violations, preflight

    section = quickstart.SECTIONS["cnf_8gaussians"](3_000)
    assert section.config.model.name == "flow_matching"
    unread, reads = preflight(section.experiment, section.config, section.defaults)
    assert contract_violations(section.config, reads, unread) == []
