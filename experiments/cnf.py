"""Continuous-time flows: FFJORD (with RNODE regularizers), OT-Flow and flow matching.

    python experiments/cnf.py --config experiments/configs/cnf_toy.py --workdir runs/cnf_fm
    python experiments/cnf.py --config experiments/configs/cnf_toy.py --workdir runs/ffjord \
        --config.model.name=ffjord --config.model.kinetic=0.01 --config.model.jacobian=0.01
    python experiments/cnf.py --config experiments/configs/cnf_tabular.py --workdir runs/cnf_wine \
        --config.data.name=wine

Data: any vector data set (``data.name``): the toy densities (``cnf_toy.py``;
``data.num_train`` points drawn, ``data.num_test`` fixed test points) or
sklearn's tabular ``wine`` and ``breast_cancer`` (``cnf_tabular.py``: the
whole fixed splits, standardized with the training split's statistics;
``data.num_train`` / ``data.num_test``, where a config has them, keep the
first examples).

``model.name`` picks the model and its training objective:

* ``ffjord``: a ``TimeMLP`` velocity field trained by maximum likelihood through
  the ODE solve (``gmjax.flows.continuous``; Grathwohl et al. 2019), with the
  trace exact or Hutchinson's (``model.trace``) and the RNODE regularizers of
  Finlay et al. (2020) as loss terms: ``model.kinetic`` times
  ``int ||v||^2 dt`` plus ``model.jacobian`` times ``int ||dv/dx||_F^2 dt``,
  integrated alongside the state (``gmjax.flows.ode.integrate(...,
  regularize=True)``). Training solve: ``model.solver``.
* ``otflow``: the potential flow of Onken et al. (2021)
  (``gmjax.flows.otflow``): negative log-likelihood plus ``model.transport``
  times the transport cost L and ``model.hjb`` times the HJB penalty R, exact
  Hessian trace, fixed-step RK4 (``model.num_steps``) in training and
  evaluation.
* ``flow_matching``: the same ``TimeMLP`` field regressed on conditional
  velocities without any solve (Lipman et al. 2023;
  ``gmjax.objectives.flow_matching``; ``model.path``, ``model.coupling``).

Data-parallel training (``train.num_devices``) compiles the steps of the two
models that solve the ODE in their loss without ``shard_map``'s varying-axis
checks (``train_step``; ``gmjax.flows.ode`` says why).

Training logs ``loss`` and, for the two models trained through a solve,
``nll``, ``nfe`` (velocity evaluations of the step's solve) and the
regularizers (``kinetic``, ``frobenius``; ``transport``, ``hjb``). Flow
matching trains without a solve: it logs no NFE.

Writes the experiment contract into ``--workdir``: ``config.json``,
``metrics.jsonl``, ``metrics.json`` (``test_nll``, ``nll_excess`` where the
true entropy is known, else ``gaussian_test_nll``, the test NLL of the Gaussian
fitted to the training split by maximum likelihood, ``nfe_nll`` and
``nfe_sample``: velocity evaluations per example of the density and the
sampling solves, ``sample_seconds`` for
``eval.num_samples`` samples, the two-sample distances of
``experiments/flow.py``, ``density_integral`` for 2-D data,
``train_seconds``, ``steps``), ``trajectories.png`` (samples at
``eval.panels`` times from the base, t = 0, to the data, t = 1, and paths),
``density.png`` (2-D data), ``curves.png`` and ``checkpoints/``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.flow import grid_integral, mean_log_prob, two_sample_metrics
from gmjax import experiment, viz
from gmjax.data import BatchIterator, load_dataset
from gmjax.data.registry import check_dataset_options, vector_dataset_names
from gmjax.data.tabular import TABULAR_DATA_SOURCES
from gmjax.data.toy import TOY_DENSITIES
from gmjax.flows import Flow
from gmjax.flows.continuous import PROBE_RNG, CNFBijector, cnf_flow
from gmjax.flows.ode import ODE_SOLVERS, TRACE_ESTIMATORS, ODEOptions, integrate
from gmjax.flows.otflow import otflow_flow, otflow_velocity
from gmjax.objectives.flow_matching import (FM_COUPLINGS, FM_PATHS, cnf_velocity,
                                            flow_matching_loss)
from gmjax.training import (OPTIMIZERS, SCHEDULES, TrainState, make_optimizer, make_train_step,
                            read_jsonl)
from gmjax.viz.figure import panels, plane_axes, save_figure

MODELS = ("ffjord", "otflow", "flow_matching")
CHOICES = {"data.name": vector_dataset_names, "model.name": MODELS,
           "model.solver": ODE_SOLVERS, "model.trace": TRACE_ESTIMATORS,
           "model.path": FM_PATHS, "model.coupling": FM_COUPLINGS,
           "eval.solver": ODE_SOLVERS, "eval.trace": TRACE_ESTIMATORS,
           "optim.name": OPTIMIZERS, "optim.schedule": SCHEDULES}
POSITIVE = ("data.batch_size", "train.steps",
            "train.log_every", "train.checkpoint_every", "train.steps_per_call", "optim.lr",
            "model.embed_dim", "model.num_steps", "model.width",
            "model.num_layers", "eval.tol", "eval.num_steps", "eval.num_samples",
            "eval.panels")
# The exact trace takes d Jacobian-vector products per velocity evaluation; above this
# dimension a run asks for Hutchinson's estimator instead (OT-Flow's trace formula is O(d)).
MAX_EXACT_TRACE_DIM = 64
EVAL_POINTS = 2_000  # test points of the evaluations during training
PATHS = 40           # trajectories.png: paths drawn in its last panel


def bundled(name: str) -> bool:
    """Whether data set ``name`` needs no files: a toy density or a tabular set of sklearn."""
    return name in TOY_DENSITIES or name in TABULAR_DATA_SOURCES


def data_options(config: ml_collections.ConfigDict) -> Dict[str, Any]:
    options = experiment.section_options(config, "data.options") if "options" in config.data \
        else {}
    if not bundled(config.data.name):
        options["data_dir"] = config.data.data_dir or None
    return options


def split_size(config: ml_collections.ConfigDict, field: str) -> Optional[int]:
    """``data.num_train`` / ``data.num_test``: the points drawn from a toy density, the first
    examples of a real split; a config without the field (``cnf_tabular.py``) takes all."""
    return config.data[field] if field in config.data else None


def data_dim(config: ml_collections.ConfigDict) -> int:
    """The event size: 2 for the toy densities, else read from the training split."""
    if config.data.name in TOY_DENSITIES:
        return 2
    x = load_dataset(config.data.name, "train", n=None, seed=config.seed,
                     **data_options(config)).x
    if x.ndim != 2:
        raise experiment.ConfigError(f"--config.data.name={config.data.name!r} holds examples "
                                     f"of shape {x.shape[1:]}; continuous flows here take "
                                     f"vectors [d]")
    return x.shape[1]


def _options(solver: str, num_steps: int, tol: float, trace: str) -> ODEOptions:
    return ODEOptions(solver=solver, num_steps=num_steps, rtol=tol, atol=tol,
                      trace=trace).check()


def solver_options(block: ml_collections.ConfigDict, tol_field: str, trace: str) -> ODEOptions:
    """An ``ODEOptions`` from ``block.solver`` and, as the solver needs, ``block.num_steps``
    (fixed step) or ``block.<tol_field>`` (adaptive, rtol = atol)."""
    if ODE_SOLVERS.get(block.solver).adaptive:
        return _options(block.solver, 1, block[tol_field], trace)
    return _options(block.solver, block.num_steps, 1.0, trace)


def gaussian_test_nll(train_x: np.ndarray, test_x: np.ndarray) -> float:
    """The mean NLL on ``test_x`` of the Gaussian fitted to ``train_x`` by maximum likelihood
    (sample mean, covariance with ``ddof=0``), in float64."""
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    mean = train_x.mean(axis=0)
    cov = np.cov(train_x, rowvar=False, bias=True).reshape(mean.size, mean.size)
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (test_x - mean).T)  # [d, n], whitened
    log_det = 2.0 * np.sum(np.log(np.diag(chol)))
    return float(0.5 * np.mean(np.sum(z ** 2, axis=0)) + 0.5 * log_det
                 + 0.5 * mean.size * np.log(2 * np.pi))


def log_normal(z: jax.Array) -> jax.Array:
    return -0.5 * jnp.sum(z ** 2, axis=1) - 0.5 * z.shape[1] * np.log(2 * np.pi)


@dataclasses.dataclass(frozen=True)
class Model:
    """What a run trains: the flow, its loss and how it is evaluated."""

    name: str
    flow: Flow
    loss: Callable  # (params, x, key) -> (scalar, metrics)
    eval_options: ODEOptions  # the evaluation solve (OT-Flow: its own RK4)
    solves: bool = True  # the loss runs an ODE solve (see gmjax.flows.ode on shard_map)


def build_model(model: ml_collections.ConfigDict, dim: int) -> Model:
    """The model ``model.name`` on d = ``dim`` from the ``model`` block (reads only the
    fields that model uses; raises ``ValueError`` for a bad one)."""
    name = model.name
    if name not in MODELS:
        raise ValueError(f"unknown model.name {name!r}; valid choices: {', '.join(MODELS)}")
    if name == "otflow":
        flow = otflow_flow((dim,), width=model.width, num_layers=model.num_layers,
                           rank=model.rank, num_steps=model.num_steps)
        if model.num_steps < 1:
            raise ValueError(f"model.num_steps must be >= 1, got {model.num_steps}")
        transport, hjb = model.transport, model.hjb

        def loss(params, x, key):
            del key
            r = flow.apply(params, x, method=lambda m, v: m.layers[0].bijector()
                           .inverse_with_stats(v, costs=True))
            nll = -jnp.mean(log_normal(r.y) + r.log_det)
            cost_l, cost_r = jnp.mean(r.costs, axis=0)
            value = nll + transport * cost_l + hjb * cost_r
            return value, {"loss": value, "nll": nll, "transport": cost_l, "hjb": cost_r,
                           "nfe": r.nfe.astype(jnp.float32)}

        return Model(name, flow, loss, ODEOptions(solver="rk4", num_steps=model.num_steps))

    hidden, embed_dim = tuple(model.hidden), model.embed_dim
    if name == "flow_matching":
        flow = cnf_flow((dim,), hidden=hidden, embed_dim=embed_dim)
        loss = flow_matching_loss(cnf_velocity(flow), path=model.path, coupling=model.coupling,
                                  sigma_min=model.sigma_min)
        return Model(name, flow, loss, ODEOptions(), solves=False)

    options = solver_options(model, "rtol", model.trace)
    flow = cnf_flow((dim,), hidden=hidden, embed_dim=embed_dim, options=options)
    kinetic, jacobian = model.kinetic, model.jacobian
    if kinetic < 0 or jacobian < 0:
        raise ValueError(f"model.kinetic and model.jacobian must be >= 0, got {kinetic}, "
                         f"{jacobian}")

    def loss(params, x, key):
        r = flow.apply(params, x, method=lambda m, v: m.layers[0].bijector(key)
                       .inverse_with_stats(v, regularize=True))
        nll = -jnp.mean(log_normal(r.y) + r.log_det)
        ke, fro = jnp.mean(r.kinetic), jnp.mean(r.frobenius)
        value = nll + kinetic * ke + jacobian * fro
        return value, {"loss": value, "nll": nll, "kinetic": ke, "frobenius": fro,
                       "nfe": r.nfe.astype(jnp.float32)}

    return Model(name, flow, loss, options)


def train_step(model: Model, optimizer, mesh, steps_per_call: int = 1):
    """The data-parallel train step of ``model``: a loss that runs a diffrax solve is compiled
    without ``shard_map``'s varying-axis checks (``gmjax.flows.ode`` says why)."""
    return make_train_step(model.loss, optimizer, mesh, steps_per_call=steps_per_call,
                           check_vma=not model.solves)


def eval_options(config: ml_collections.ConfigDict) -> Optional[ODEOptions]:
    """The evaluation solve of ffjord and flow matching from ``eval.*`` (None for otflow)."""
    if config.model.name == "otflow":
        return None
    return solver_options(config.eval, "tol", config.eval.trace)


def check_config(config: ml_collections.ConfigDict) -> None:
    """Builds what the run builds before training: the model, the evaluation solve, the
    optimizer, mesh and fit options; refuses an exact trace in too many dimensions."""
    options = data_options(config)
    if options.get("data_dir"):
        experiment.check_data_dir(config)
    try:
        check_dataset_options(config.data.name,
                              {k: v for k, v in options.items() if k != "data_dir"})
    except ValueError as e:
        raise experiment.ConfigError(f"bad --config.data.options: {e}") from None
    dim = data_dim(config)
    for split, field in (("train", "num_train"), ("test", "num_test")):
        if config.data.name in TOY_DENSITIES and field not in config.data:
            raise experiment.ConfigError(
                f"--config.data.name={config.data.name!r} is a toy density: the config needs "
                f"data.{field} (start from experiments/configs/cnf_toy.py)")
        if field in config.data and not config.data[field] > 0:
            raise experiment.ConfigError(f"--config.data.{field}={config.data[field]!r} must "
                                         f"be positive")
        if config.data.name not in TOY_DENSITIES and field in config.data:
            try:
                load_dataset(config.data.name, split, n=split_size(config, field),
                             seed=config.seed, **options)
            except ValueError as e:
                raise experiment.ConfigError(f"--config.data.{field}: {e}") from None
    try:
        build_model(config.model, dim)
    except ValueError as e:
        raise experiment.ConfigError(f"bad --config.model.*: {e}") from None
    try:
        eval_options(config)
    except ValueError as e:
        raise experiment.ConfigError(f"bad --config.eval.*: {e}") from None
    for field, used in (("model.trace", config.model.name == "ffjord"),
                        ("eval.trace", config.model.name != "otflow")):
        if used and experiment.get_field(config, field) == "exact" and dim > MAX_EXACT_TRACE_DIM:
            raise experiment.ConfigError(
                f"--config.{field}='exact' takes {dim} Jacobian-vector products per velocity "
                f"evaluation on {config.data.name} (d = {dim} > {MAX_EXACT_TRACE_DIM}); use "
                f"--config.{field}=hutchinson")
    config.eval.num_samples, config.eval.panels
    if dim == 2:
        config.eval.density
    experiment.check_fit(config)


def unread_fields(config: ml_collections.ConfigDict) -> Dict[str, str]:
    """The fields a run of ``config`` does not read, and why."""
    unread = ({"data.data_dir": "toy densities and sklearn's tabular data sets need no files"}
              if bundled(config.data.name) else {})
    try:
        dim = data_dim(config)
    except (ValueError, FileNotFoundError, experiment.ConfigError):
        dim = 2
    unread.update(experiment.unread_by(lambda c: build_model(c.model, dim), config, "model",
                                       f"not an option of model.name={config.model.name!r}"
                                       " with these choices"))
    if config.model.name == "otflow":
        unread.update({f"eval.{f}": "otflow is evaluated with its own RK4 (model.num_steps)"
                       for f in ("solver", "tol", "num_steps", "trace")})
    else:
        unread.update(experiment.unread_by(eval_options, config, "eval",
                                           f"eval.solver={config.eval.solver!r} does not use it"))
        for f in ("num_samples", "panels", "density"):
            unread.pop(f"eval.{f}", None)
    if dim != 2:
        unread["eval.density"] = "density.png and the grid integral are for 2-D data"
    unread.update(experiment.unread_optimizer_fields(config))
    return unread


# --- evaluation --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Solves:
    """The trained model's two solves and its time axis from base to data."""

    log_prob: Callable  # x [n, d] -> (log p [n], nfe)
    velocity: Callable  # (y, t, args) -> v
    args: Any
    t_base: float
    t_data: float
    options: ODEOptions


def trained_solves(model: Model, params, options: Optional[ODEOptions], key) -> Solves:
    if model.name == "otflow":
        layer_params = params["params"]["layers_0"]

        def log_prob(x):
            r = model.flow.apply(params, x, method=lambda m, v: m.layers[0].bijector()
                                 .inverse_with_stats(v))
            return log_normal(r.y) + r.log_det, r.nfe

        return Solves(jax.jit(log_prob), otflow_velocity, layer_params, 1.0, 0.0,
                      model.eval_options)
    apply = cnf_velocity(model.flow)

    def velocity(y, t, p):
        return apply(p, y, jnp.broadcast_to(t, (y.shape[0],)))

    def log_prob(x):
        r = CNFBijector(velocity, params, options=options, key=key).inverse_with_stats(x)
        return log_normal(r.y) + r.log_det, r.nfe

    return Solves(jax.jit(log_prob), velocity, params, 0.0, 1.0, options)


def sample_fn(solves: Solves, n: int, dim: int):
    """``key -> (samples [n, d], nfe)``: z ~ N(0, I) solved from the base end to the data end."""

    def sample(key):
        z = jax.random.normal(key, (n, dim))
        r = integrate(solves.velocity, z, solves.t_base, solves.t_data, args=solves.args,
                      options=solves.options, log_det=False)
        return r.y, r.nfe

    return jax.jit(sample)


def trajectories(solves: Solves, z: np.ndarray, num_panels: int) -> np.ndarray:
    """``[num_panels, n, d]``: the states at ``num_panels`` evenly spaced times from base to data."""
    fractions = np.linspace(0.0, 1.0, num_panels)
    times = solves.t_base + fractions * (solves.t_data - solves.t_base)
    step = jax.jit(lambda y, t0, t1: integrate(solves.velocity, y, t0, t1, args=solves.args,
                                               options=solves.options, log_det=False).y)
    states = [jnp.asarray(z)]
    for t0, t1 in zip(times[:-1], times[1:]):
        states.append(step(states[-1], t0, t1))
    return np.stack([np.asarray(s) for s in states])


def plot_trajectories(path: str, states: np.ndarray, data: np.ndarray, title: str) -> str:
    """A row of panels: the samples at each time (base t=0 to data t=1), then a panel of
    paths over the test data."""
    count = states.shape[0]
    lo, hi = np.percentile(np.concatenate([data[:, :2], states[0, :, :2]]), [0.5, 99.5], axis=0)
    pad = 0.1 * (hi - lo)
    bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    fig, axes = panels(1, count + 1, (3.0, 3.2))
    for i, ax in enumerate(axes[0][:count]):
        ax.scatter(states[i, :, 0], states[i, :, 1], s=1, alpha=0.4)
        plane_axes(ax, f"t = {i / (count - 1):.2f}", bounds)
    ax = axes[0][count]
    ax.scatter(data[:2000, 0], data[:2000, 1], s=1, alpha=0.2, color="0.6", label="test data")
    for j in range(min(PATHS, states.shape[1])):
        ax.plot(states[:, j, 0], states[:, j, 1], lw=0.8, color="C1")
    ax.scatter(states[-1, :PATHS, 0], states[-1, :PATHS, 1], s=6, color="C3")
    plane_axes(ax, f"{min(PATHS, states.shape[1])} paths, base to data", bounds)
    return save_figure(fig, path, title)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       progress: Optional[bool] = None) -> Dict[str, Any]:
    init_key, train_key, probe_key, sample_key, path_key = jax.random.split(
        jax.random.PRNGKey(config.seed), 5)
    options = data_options(config)
    train = load_dataset(config.data.name, "train", n=split_size(config, "num_train"),
                         seed=config.seed, **options)
    test = load_dataset(config.data.name, "test", n=split_size(config, "num_test"),
                        seed=config.seed, **options)
    train_x = np.asarray(train.x, np.float32)
    test_x = np.asarray(test.x, np.float32)
    dim = train_x.shape[1]
    model = build_model(config.model, dim)
    evaluation = eval_options(config)
    # A Hutchinson CNF draws a probe even while it initializes.
    params = jax.jit(model.flow.init)({"params": init_key,
                                       PROBE_RNG: jax.random.fold_in(init_key, 1)}, train_x[:8])
    optimizer = make_optimizer(config.optim, config.train.steps)
    mesh = experiment.config_mesh(config)
    state = TrainState.create(params, optimizer, train_key)
    step = train_step(model, optimizer, mesh, config.train.steps_per_call)
    batches = BatchIterator(train_x, config.data.batch_size, seed=config.seed,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())
    eval_x = test_x[:EVAL_POINTS]

    def evaluate(state, step_number):
        solves = trained_solves(model, state.params, evaluation, probe_key)
        return {"test_nll": -mean_log_prob(lambda x: solves.log_prob(x)[0], eval_x)}

    result = experiment.fit_with_config(config, state, step, batches.batch, workdir, mesh,
                                        eval_fn=evaluate, progress=progress,
                                        desc=f"{config.model.name} on {config.data.name}")
    params = result.state.params
    solves = trained_solves(model, params, evaluation, probe_key)

    sample = sample_fn(solves, config.eval.num_samples, dim)
    jax.block_until_ready(sample(sample_key))  # compile outside the timing
    t0 = time.perf_counter()
    samples, nfe_sample = jax.block_until_ready(sample(sample_key))
    sample_seconds = time.perf_counter() - t0
    samples = np.asarray(samples)

    total, nfes = 0.0, []
    for i in range(0, len(test_x), 8192):
        log_p, nfe = solves.log_prob(test_x[i:i + 8192])
        total += float(jnp.sum(log_p))
        nfes.append(int(nfe))
    metrics: Dict[str, Any] = {
        "test_nll": -total / len(test_x),
        "nfe_nll": float(np.mean(nfes)),
        "nfe_sample": int(nfe_sample),
        "sample_seconds": sample_seconds,
        "train_seconds": result.train_seconds,
        "steps": result.steps,
    }
    density = getattr(test, "density", None)
    if density is not None and density.has_log_prob:
        # Paired on the test set: an unbiased estimate of KL(p || q) = test NLL - entropy.
        metrics["nll_excess"] = metrics["test_nll"] + mean_log_prob(density.log_prob, test_x)
    else:  # no true density to compare with: the Gaussian baseline
        metrics["gaussian_test_nll"] = gaussian_test_nll(train_x, test_x)
    log_prob = jax.jit(lambda x: solves.log_prob(x)[0])
    if dim == 2 and config.eval.density:
        metrics["density_integral"] = grid_integral(log_prob, test_x, resolution=200)
    metrics.update(two_sample_metrics(samples, test_x, sample_key))

    if jax.process_index() == 0:
        name = f"{config.model.name} on {config.data.name}"
        z = np.asarray(jax.random.normal(path_key, (2000, dim)))
        plot_trajectories(os.path.join(workdir, "trajectories.png"),
                          trajectories(solves, z, config.eval.panels), test_x,
                          f"{name}: samples from base (t = 0) to data (t = 1)")
        if dim == 2 and config.eval.density:
            viz.plot_density_2d(os.path.join(workdir, "density.png"), test_x, samples,
                                log_prob=log_prob,
                                title=f"{name}: test NLL {metrics['test_nll']:.3f} nats")
        records = os.path.join(workdir, "metrics.jsonl")
        if os.path.exists(records):
            names = ("loss", "test_nll") + (("nfe",) if model.name != "flow_matching" else ())
            viz.plot_curves(os.path.join(workdir, "curves.png"), read_jsonl(records),
                            names=names, labels={"nfe": "velocity evaluations per step"})
    experiment.write_metrics(workdir, metrics)
    return metrics


EXPERIMENT = experiment.Experiment(train_and_evaluate, choices=CHOICES, positive=POSITIVE,
                                   check=check_config, unread=unread_fields)

if __name__ == "__main__":
    experiment.main(EXPERIMENT)
