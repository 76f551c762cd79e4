"""gmjax as a library, without the experiment scripts' workdirs and configs.

``fit`` and ``run_temperflow`` in memory (``workdir=None``); data sets and
targets registered after import, accepted by the scripts' config checks;
target and loader options from a config; and the examples of README.md's
"Use as a library" section, run with smaller step budgets.
"""

import os
import re
import signal

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gmjax import experiment
from gmjax.data import DATASETS, Dataset, load_dataset
from gmjax.experiment.temperflow import make_target
from gmjax.models.flow import build_flow
from gmjax.samplers import temperflow as temperflow_lib
from gmjax.samplers.temperflow import TemperFlow, TemperFlowConfig, run_temperflow
from gmjax.targets import TARGETS, GaussianMixtureTarget
from gmjax.training import NonFiniteError, TrainState, data_mesh, fit, make_train_step

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
X = np.random.default_rng(0).normal(size=(256, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)


def mse(params, batch, key):
    x, y = batch
    x = x + 0.1 * jax.random.normal(key, x.shape)  # the keys matter too
    loss = jnp.mean((x @ params["w"] + params["b"] - y) ** 2)
    return loss, {"mse": loss}


def batch_fn(step):
    i = (step * 32) % len(X)
    return X[i:i + 32], Y[i:i + 32]


def small_fit(workdir, loss=mse, **options):
    optimizer = optax.adam(0.05)
    state = TrainState.create({"w": jnp.zeros(3), "b": jnp.zeros(())}, optimizer,
                              jax.random.PRNGKey(0))
    step = make_train_step(loss, optimizer, data_mesh(1), steps_per_call=2)
    kwargs = dict(num_steps=12, log_every=4, checkpoint_every=6, progress=False)
    kwargs.update(options)
    return fit(state, step, batch_fn, workdir=None if workdir is None else str(workdir),
               **kwargs)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


# ------------------------------------------------------------------ fit in memory


def test_fit_without_a_workdir_writes_nothing_and_equals_the_run_with_one(tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    handlers = []

    def watching(step):  # signals are left to their usual handlers
        handlers.append(signal.getsignal(signal.SIGINT))
        return batch_fn(step)

    evals = []
    optimizer = optax.adam(0.05)
    state = TrainState.create({"w": jnp.zeros(3), "b": jnp.zeros(())}, optimizer,
                              jax.random.PRNGKey(0))
    step = make_train_step(mse, optimizer, data_mesh(1), steps_per_call=2)
    before = signal.getsignal(signal.SIGINT)
    memory = fit(state, step, watching, num_steps=12, log_every=4, eval_every=6,
                 eval_fn=lambda s, t: evals.append(t) or {"test_mse": 1.0}, progress=False)
    assert os.listdir(tmp_path) == []
    assert handlers and all(h is before for h in handlers)
    assert evals == [6, 12]
    assert [(r["split"], r["step"]) for r in memory.records] == [
        ("train", 4), ("eval", 6), ("train", 8), ("train", 12), ("eval", 12)]
    assert memory.last_log["step"] == 12 and memory.last_log["loss"] < memory.records[0]["loss"]
    assert memory.steps == 12 and memory.start_step == 0
    on_disk = small_fit(tmp_path / "run", eval_every=6, eval_fn=lambda s, t: {"test_mse": 1.0})
    for a, b in zip(leaves(memory.state), leaves(on_disk.state)):
        np.testing.assert_array_equal(a, b)
    assert [r["step"] for r in on_disk.records] == [r["step"] for r in memory.records]


def test_the_non_finite_guard_works_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def blows_up(params, batch, key):
        loss, metrics = mse(params, batch, key)
        return loss, {**metrics, "bad": jnp.where(params["b"] != 0.0, jnp.nan, 0.0)}

    with pytest.raises(NonFiniteError, match=r"non-finite bad = nan at step 2; .*nothing was "
                                             r"saved \(no workdir"):
        small_fit(None, loss=blows_up)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------- TemperFlow in memory

FLOW = {"name": "spline_coupling", "num_layers": 2, "hidden": (16,), "num_bins": 8,
        "bound": 8.0}
OPTIM = {"name": "adam", "lr": 1e-3, "schedule": "one_cycle"}
TINY = dict(steps_init=40, steps_mid=40, steps_final=40, batch_size=256, steps_per_call=20,
            max_betas=3, estimate_draws=2000)


def test_run_temperflow_in_memory_equals_the_run_with_a_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kernel = TemperFlow(build_flow(FLOW, 2), TARGETS.get("circle")(), TemperFlowConfig(**TINY),
                        OPTIM)
    memory = run_temperflow(kernel, kernel.init(jax.random.PRNGKey(0)), progress=False)
    assert os.listdir(tmp_path) == []
    on_disk = run_temperflow(kernel, kernel.init(jax.random.PRNGKey(0)), str(tmp_path / "run"),
                             progress=False)
    assert [s["phase"] for s in memory.stages] == ["first", "middle", "final"]

    def without_times(stages):
        return [{k: v for k, v in s.items() if k not in ("seconds", "train_seconds")}
                for s in stages]

    assert without_times(memory.stages) == without_times(on_disk.stages)
    for a, b in zip(leaves(memory.state.params), leaves(on_disk.state.params)):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------- registered after import, options from a config


@pytest.fixture
def registered():
    """Names registered by a test, removed from their registry afterwards."""
    added = []
    yield added
    for registry, name in added:
        registry._entries.pop(name, None)


def test_a_data_set_registered_after_import_is_a_valid_choice_and_takes_options(registered):
    from experiments import flow
    from experiments.configs import flow_toy

    @DATASETS.register("library_ring")
    def load_ring(split, *, data_dir=None, n=None, seed=0, radius: float = 2.0):
        del data_dir
        angle = np.random.default_rng([seed, split == "test"]).uniform(0, 2 * np.pi, n or 100)
        x = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)
        return Dataset(x=x, y=None, name="library_ring", split=split)

    registered.append((DATASETS, "library_ring"))
    config = flow_toy.get_config()
    config.data.name = "library_ring"
    config.data.options.radius = 3.0
    unread, reads = experiment.preflight(flow.EXPERIMENT, config)
    assert "data.options.radius" in reads and "data.data_dir" in reads
    assert experiment.contract_violations(config, reads, unread) == []
    train = load_dataset("library_ring", n=50, **flow.data_options(config))
    np.testing.assert_allclose(np.linalg.norm(train.x, axis=1), 3.0, rtol=1e-5)

    config.data.options.width = 1.0
    with pytest.raises(experiment.ConfigError, match="data set 'library_ring' takes the "
                                                     "options radius; unknown option width"):
        experiment.preflight(flow.EXPERIMENT, config)
    config = flow_toy.get_config()
    config.data.name = "library_rings"
    with pytest.raises(experiment.ConfigError, match="valid choices: .*library_ring, moons"):
        experiment.preflight(flow.EXPERIMENT, config)
    with pytest.raises(ValueError, match="data set 'moons' takes no options; unknown option "
                                         "noise"):
        load_dataset("moons", noise=0.2)


def test_a_choice_may_be_a_function_asked_when_the_config_is_checked():
    names = ["a"]
    config = ml_collections.ConfigDict({"model": {"name": "b"}})
    with pytest.raises(experiment.ConfigError, match="model.name='b' is not valid; valid "
                                                     "choices: a$"):
        experiment.validate(config, {"model.name": lambda: names})
    names.append("b")
    experiment.validate(config, {"model.name": lambda: names})
    assert experiment.choice_names(lambda: names) == ["a", "b"]


def test_a_target_registered_after_import_is_built_with_its_options(registered):
    from experiments import temperflow
    from experiments.configs import temperflow_2d

    @TARGETS.register("library_pair")
    def pair(offset: float = 2.0):
        return GaussianMixtureTarget([[-offset, 0.0], [offset, 0.0]], scale=0.5)

    registered.append((TARGETS, "library_pair"))
    config = temperflow_2d.get_config()
    config.data.name = "library_pair"
    config.data.options.offset = 5.0
    unread, reads = experiment.preflight(temperflow.EXPERIMENT, config)
    assert "data.options.offset" in reads
    assert experiment.contract_violations(config, reads, unread) == []
    np.testing.assert_allclose(np.asarray(make_target(config).means), [[-5, 0], [5, 0]])
    config.data.options.shift = 1.0
    with pytest.raises(experiment.ConfigError, match="target 'library_pair' takes the options "
                                                     "offset; unknown option shift"):
        experiment.preflight(temperflow.EXPERIMENT, config)


def test_a_gaussian_mixture_target_is_named_in_a_config():
    from experiments import temperflow
    from experiments.configs import temperflow_mixture

    config = temperflow_mixture.get_config()
    config.data.options.weights = (1.0, 1.0, 2.0)  # as --config.data.options.weights=1,1,2
    experiment.preflight(temperflow.EXPERIMENT, config, defaults=temperflow_mixture.get_config())
    # Per-coordinate scales: a config file of one's own (the command line keeps the type).
    config.data.options.scales = ((0.5, 1.0), (0.5, 0.5), (0.25, 0.25))
    experiment.preflight(temperflow.EXPERIMENT, config, defaults=config)
    target = make_target(config)
    np.testing.assert_allclose(target.true_weights(), [0.25, 0.25, 0.5], rtol=1e-6)
    # Per-coordinate scales: the exact sampler and the log density agree with the closed form.
    x = np.asarray(target.sample(seed=jax.random.PRNGKey(0), sample_shape=(40_000,)))
    first = x[np.linalg.norm(x - [-4.0, 0.0], axis=1) < 3.5]
    np.testing.assert_allclose(first.std(0), [0.5, 1.0], rtol=0.05)
    # Far from the other components: log of w_k N(x; mu_k, diag(s_k^2)) alone.
    points = np.array([[0.0, 6.0], [-4.0, 1.0]], np.float32)
    expected = [np.log(0.5 / (2 * np.pi * 0.25 * 0.25)),
                np.log(0.25 * np.exp(-0.5) / (2 * np.pi * 0.5 * 1.0))]
    np.testing.assert_allclose(np.asarray(target.log_prob(points)), expected, rtol=1e-5)
    config.data.name = "circle"
    with pytest.raises(experiment.ConfigError, match="target 'circle' takes the options "
                                                     "num_modes, radius, sd, dtype; unknown "
                                                     "options means, scales, weights"):
        experiment.preflight(temperflow.EXPERIMENT, config)


# ------------------------------------------------------------------ README examples


def readme_examples():
    """The ```python blocks of README.md's "Use as a library" section."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    section = re.search(r"^## Use as a library\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no '## Use as a library' section"
    return re.findall(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)


def test_the_readme_examples_are_short_and_run(monkeypatch, capsys):
    blocks = readme_examples()
    assert len(blocks) == 2 and all(len(b.splitlines()) < 15 for b in blocks)
    import gmjax.training

    def short_fit(*args, num_steps, **kwargs):  # 200 steps, not the README's thousands
        return fit(*args, num_steps=min(num_steps, 200), **kwargs)

    def short_config(**options):  # one compiled call per stage, at most four stages
        calls = options.get("steps_per_call", 100)
        return TemperFlowConfig(**{**options, "steps_init": calls, "steps_mid": calls,
                                   "steps_final": calls, "max_betas": 3})

    monkeypatch.setattr(gmjax.training, "fit", short_fit)
    monkeypatch.setattr(temperflow_lib, "TemperFlowConfig", short_config)
    flow_example, sampler_example = ({"__name__": "readme"} for _ in blocks)
    exec(compile(blocks[0], "README.md: flow example", "exec"), flow_example)
    assert np.asarray(flow_example["samples"]).shape == (1_000, 2)
    assert np.isfinite(flow_example["result"].last_log["loss"])
    exec(compile(blocks[1], "README.md: TemperFlow example", "exec"), sampler_example)
    x = np.asarray(sampler_example["x"])
    assert x.shape == (10_000, 2) and np.all(np.isfinite(x))
    assert [s["phase"] for s in sampler_example["run"].stages][-1] == "final"
