"""The config contract: every field a script accepts is read, or refused with a message naming it.

The first tests check the mechanism (``gmjax.experiment.contract``) on small
configs; the rest walk every config in ``experiments/configs``, and every
variant of it that changes one choice field, through its script's checks
(no data, no training).
"""

import importlib
import os
import re
import warnings

import ml_collections
import pytest

from gmjax.experiment import (ConfigContractWarning, ConfigError, Experiment, choice_names,
                              contract_violations, covering, get_field, leaf_fields, preflight,
                              refuse_changed_unread, run, track_reads, unread_by,
                              unread_optimizer_fields)
from gmjax.training import make_optimizer

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "experiments", "configs")


def small_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({
        "seed": 0,
        "model": {"name": "a", "width": 8, "hidden": (4, 4)},
        "optim": {"name": "adam", "lr": 1e-3, "schedule": "constant", "warmup_steps": 0,
                  "grad_clip": 0.0, "weight_decay": 0.0, "b1": 0.9, "b2": 0.999,
                  "eps": 1e-8, "momentum": 0.0, "accumulate_steps": 1},
        "mcmc": {"num_chains": 4, "burn_in": 10},
    })


# --- the mechanism ---------------------------------------------------------------------------


def test_track_reads_records_each_leaf_read_by_name_and_nothing_else():
    config = small_config()
    config.lock()
    tracked, reads = track_reads(config)
    assert isinstance(tracked, ml_collections.ConfigDict) and tracked.is_locked
    assert reads == set()
    tracked.model  # a section is not a field
    assert reads == set()
    assert tracked.model.width == 8 and tracked["optim"]["lr"] == 1e-3
    assert tracked.mcmc.get("burn_in") == 10 and tracked["model.hidden"] == (4, 4)
    assert tracked.mcmc.get("missing", 3) == 3
    assert reads == {"model.width", "optim.lr", "mcmc.burn_in", "model.hidden"}
    # Bulk access and copies are not reads by name.
    tracked.to_dict(), tracked.to_json_best_effort(), repr(tracked), str(tracked)
    tracked.optim.items(), tracked.optim.values(), list(tracked.optim.iteritems())
    copy = tracked.copy_and_resolve_references()
    assert type(copy) is ml_collections.ConfigDict and copy.is_locked
    assert copy.optim.momentum == 0.0 and copy.seed == 0
    assert reads == {"model.width", "optim.lr", "mcmc.burn_in", "model.hidden"}
    with pytest.raises(AttributeError):
        tracked.model.depth = 3  # still locked: a misspelt field is an error
    assert config.model.width == 8  # the original is not touched


def test_unread_by_lists_what_a_builder_leaves_unread_and_nothing_after_a_bad_value():
    config = small_config()
    unread = unread_by(lambda c: (c.model.name, c.model.width), config, "model", "why")
    assert unread == {"model.hidden": "why"}

    def fails(c):
        raise ValueError(c.model.name)

    assert unread_by(fails, config, "model", "why") == {}


@pytest.mark.parametrize("name,schedule,unread", [
    ("adam", "constant", {"warmup_steps", "weight_decay", "momentum"}),
    ("sgd", "warmup_cosine", {"b1", "b2", "eps", "weight_decay"}),
])
def test_the_optimizer_fields_make_optimizer_does_not_read(name, schedule, unread):
    config = small_config()
    config.optim.update(name=name, schedule=schedule)
    fields = unread_optimizer_fields(config)
    assert set(fields) == {f"optim.{field}" for field in unread}
    assert all(f"optim.name={name!r}" in reason for reason in fields.values())


def test_a_changed_unread_field_is_refused_by_value_naming_the_field_and_the_reason():
    defaults = small_config()
    unread = {"mcmc": "a flow method runs no chains", "optim.momentum": "Adam has none"}
    config = small_config()
    config.mcmc.burn_in = 10  # set to its default: accepted
    config.model.width = 16   # read: accepted
    refuse_changed_unread(config, unread, defaults)
    config.mcmc.burn_in = 20
    config.optim.momentum = 0.9
    with pytest.raises(ConfigError) as error:
        refuse_changed_unread(config, unread, defaults)
    assert str(error.value) == (
        "--config.mcmc.burn_in=20 is not read by this script: a flow method runs no chains; "
        "--config.optim.momentum=0.9 is not read by this script: Adam has none")
    assert covering("mcmc.burn_in", unread) == "mcmc" and covering("mcmc", unread) == "mcmc"
    assert covering("optim.lr", unread) is None


def test_contract_violations_name_each_kind_of_break():
    config = small_config()
    del config["optim"]
    unread = {"mcmc": "no chains", "model.hidden": "not an option", "model.depth": "stale"}
    reads = {"seed", "model.name", "model.hidden"}
    assert contract_violations(config, reads, unread) == [
        "model.depth: declared unread (stale), but the config has no such field",
        "model.hidden: read, although declared unread (not an option)",
        "model.width: neither read nor declared unread",
    ]
    assert contract_violations(config, {"seed", "model.name", "model.width"}, {
        "mcmc": "no chains", "model.hidden": "not an option"}) == []


def toy_experiment(train_and_evaluate=None, check=None) -> Experiment:
    def unread_fields(config):
        unread = {"mcmc": "only the MCMC methods run chains"}
        unread.update(unread_optimizer_fields(config))
        return unread

    def default_train(config, workdir, progress=None):
        return {"width": config.model.width}

    def default_check(config):
        config.model.name, config.model.hidden
        make_optimizer(config.optim, 10)

    return Experiment(train_and_evaluate or default_train,
                      choices={"model.name": ["a", "b"]},
                      positive=("model.width", "mcmc.num_chains"),
                      check=check or default_check, unread=unread_fields)


def test_preflight_checks_the_fields_that_are_read_and_reports_the_reads():
    experiment = toy_experiment()
    config = small_config()
    unread, reads = preflight(experiment, config, defaults=small_config())
    assert set(unread) == {"mcmc", "optim.warmup_steps", "optim.weight_decay", "optim.momentum"}
    assert contract_violations(config, reads, unread) == []
    config.mcmc.num_chains = 0  # positive, but not read: not checked ...
    preflight(experiment, config)
    with pytest.raises(ConfigError, match="mcmc.num_chains=0 is not read"):  # ... but refused
        preflight(experiment, config, defaults=small_config())
    config = small_config()
    config.model.width = 0
    with pytest.raises(ConfigError, match="model.width=0 must be positive"):
        preflight(experiment, config)
    config = small_config()
    config.seed = -1
    with pytest.raises(ConfigError, match="seed=-1 must be non-negative"):
        preflight(experiment, config)


def test_run_refuses_before_writing_and_warns_when_the_run_breaks_the_contract(tmp_path):
    experiment = toy_experiment()
    config = small_config()
    config.optim.momentum = 0.5
    with pytest.raises(ConfigError, match="optim.momentum=0.5 is not read by this script: "
                                          "optim.name='adam' with optim.schedule='constant'"):
        run(experiment, config, str(tmp_path / "refused"), defaults=small_config())
    assert not (tmp_path / "refused").exists()

    def honest(config, workdir, progress=None):  # reads every field it does not declare
        for path in ("seed", "model.name", "model.width", "model.hidden"):
            get_field(config, path)
        make_optimizer(config.optim, 10)
        return {}

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigContractWarning)
        run(toy_experiment(honest), small_config(), str(tmp_path / "honest"))
    assert (tmp_path / "honest" / "config.json").exists()

    def sloppy(config, workdir, progress=None):
        config.mcmc.burn_in  # declared unread
        return {}            # and model.width etc. never read

    with pytest.warns(ConfigContractWarning) as record:
        run(toy_experiment(sloppy), small_config(), str(tmp_path / "sloppy"))
    message = str(record[0].message)
    assert "mcmc.burn_in: read, although declared unread" in message
    assert "model.width: neither read nor declared unread" in message


# --- every config of every script --------------------------------------------------------------



def config_names():
    return sorted(name[:-3] for name in os.listdir(CONFIG_DIR)
                  if name.endswith(".py") and name not in ("__init__.py", "common.py"))


def script_of(name: str) -> str:
    """The script a config's docstring runs it with (``python experiments/<script>.py
    --config experiments/configs/<name>.py``)."""
    module = importlib.import_module(f"experiments.configs.{name}")
    found = re.findall(rf"python experiments/(\w+)\.py --config experiments/configs/{name}\.py",
                       module.__doc__ or "")
    assert found, f"experiments/configs/{name}.py: its docstring names no script that runs it"
    return found[0]


def load_experiment(script: str) -> Experiment:
    module = importlib.import_module(f"experiments.{script}")
    experiment = getattr(module, "EXPERIMENT", None)
    ready = isinstance(experiment, Experiment) and experiment.check is not None \
        and experiment.unread is not None
    assert ready, (f"experiments/{script}.py must declare EXPERIMENT = Experiment(..., "
                   f"check=..., unread=...)")
    return experiment


def variants(experiment: Experiment, config: ml_collections.ConfigDict):
    """``(label, config)``: the config as written, then each other value of each choice field."""
    yield "as written", config
    for path, valid in experiment.choices.items():
        names = sorted(choice_names(valid))
        for value in names:
            if value == get_field(config, path):
                continue
            variant = config.copy_and_resolve_references()
            parent, _, leaf = path.rpartition(".")
            (get_field(variant, parent) if parent else variant)[leaf] = value
            yield f"{path}={value}", variant


@pytest.mark.parametrize("name", config_names())
def test_every_field_of_every_config_is_read_or_declared_unread(name):
    """The script's checks read every field its ``unread`` does not declare, and none that it
    does, for the config and for every single-choice variant the checks accept; and a field
    the script checks (``choices``, ``positive``) is read under some variant."""
    script = script_of(name)
    experiment = load_experiment(script)
    config = importlib.import_module(f"experiments.configs.{name}").get_config()
    problems, accepted, ever_read = [], 0, set()
    for label, variant in variants(experiment, config):
        try:
            unread, reads = preflight(experiment, variant)
        except ConfigError:
            continue  # a combination the script refuses outright
        accepted += 1
        ever_read |= reads
        problems += [f"[{label}] {problem}"
                     for problem in contract_violations(variant, reads, unread)]
    assert accepted, f"{name}: the checks of experiments/{script}.py refuse the config itself"
    fields = leaf_fields(config)
    problems += [f"{path}: checked as a choice or positive field, but declared unread under "
                 f"every variant" for path in (*experiment.choices, *experiment.positive)
                 if path in fields and path not in ever_read]
    assert not problems, (f"experiments/{script}.py with configs/{name}.py breaks the config "
                          f"contract (gmjax.experiment.contract):\n" + "\n".join(problems))


@pytest.mark.parametrize("name", config_names())
def test_no_config_file_sets_a_shared_field_its_script_does_not_read(name):
    from experiments.configs.common import base_config

    experiment = load_experiment(script_of(name))
    config = importlib.import_module(f"experiments.configs.{name}").get_config()
    unread = experiment.unread_fields(config)
    base = leaf_fields(base_config())
    problems = [f"{path}={value!r} ({unread[covering(path, unread)]})"
                for path, value in sorted(leaf_fields(config).items())
                if covering(path, unread) and path in base and base[path] != value]
    assert not problems, f"configs/{name}.py sets fields its script does not read: {problems}"
