"""The TemperFlow kernel and its stage loop, on tiny budgets.

The compiled steps depend only on the flow, the target and the fields in
``COMPILED``; ``tiny_kernel`` builds one kernel per combination of them and
hands out copies with the rest of the config (the schedule) replaced, so that
the whole file compiles a handful of steps.
"""

import copy
import math
import shutil

import jax
import numpy as np
import pytest

from gmjax import metrics
from gmjax.models.flow import build_flow
from gmjax.objectives.tempering import TemperingKL
from gmjax.samplers.temperflow import (DONE, FINAL, FIRST, MIDDLE, REFINE,
                                       ImportanceCollapseWarning, TemperFlow, TemperFlowConfig,
                                       run_temperflow, stage_peak_lr)
from gmjax.samplers.temperflow import schedule as rules
from gmjax.targets import build_target

FLOW = {"name": "spline_coupling", "num_layers": 2, "hidden": (16,), "num_bins": 8,
        "bound": 8.0}
OPTIM = {"name": "adam", "lr": 1e-3, "schedule": "one_cycle"}
TINY = dict(steps_init=40, steps_mid=40, steps_final=40, batch_size=256, steps_per_call=20,
            max_betas=3, estimate_draws=2000)
# The config fields the compiled steps and estimates read; the others are the schedule's.
COMPILED = ("upweight", "l2_kl_weight", "defensive_share", "defensive_scale", "batch_size",
            "steps_per_call")
KEY = jax.random.PRNGKey(0)
TIMES = ("seconds", "train_seconds")

_KERNELS = {}


def tiny_kernel(**options) -> TemperFlow:
    """A kernel for ``TemperFlowConfig(**TINY, **options)`` on the circle target."""
    config = TemperFlowConfig(**{**TINY, **options})
    compiled = tuple(getattr(config, name) for name in COMPILED)
    if compiled not in _KERNELS:
        _KERNELS[compiled] = TemperFlow(build_flow(FLOW, 2), build_target("circle"), config,
                                        OPTIM)
    kernel = copy.copy(_KERNELS[compiled])
    kernel.config = config
    return kernel


@pytest.fixture(scope="module", autouse=True)
def _release_kernels():
    yield
    _KERNELS.clear()


def run(kernel, workdir, **options):
    return run_temperflow(kernel, kernel.init(KEY), str(workdir), progress=False, **options)


def without_times(stages):
    return [{k: v for k, v in s.items() if k not in TIMES} for s in stages]


def assert_same_params(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """A run to the end with the authors' reverse-KL refinement: 4 stages."""
    workdir = tmp_path_factory.mktemp("full")
    return run(tiny_kernel(final_kl_steps=20), workdir), workdir


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """A run to the end without the refinement: 3 stages."""
    workdir = tmp_path_factory.mktemp("plain")
    return run(tiny_kernel(), workdir), workdir


def continued(finished_workdir, tmp_path, kernel):
    """The finished run in ``finished_workdir`` continued (in a copy) with ``kernel``."""
    workdir = tmp_path / "continued"
    shutil.copytree(finished_workdir, workdir)
    return run(kernel, workdir)


# ----------------------------------------------------------------- schedule


def test_stages_follow_the_schedule(full_run):
    result, _ = full_run
    stages = result.stages
    assert [s["phase"] for s in stages] == [FIRST, MIDDLE, FINAL, REFINE]
    assert [s["loss"] for s in stages] == ["reverse_kl", "l2_distance", "l2_distance",
                                           "reverse_kl"]
    assert [s["stage"] for s in stages] == [0, 1, 2, 3]
    assert [s["step"] for s in stages] == [1, 2, 3, 4]
    assert all(s["split"] == "stage" for s in stages)
    betas = [s["beta"] for s in stages]
    assert betas[0] == pytest.approx(0.1) and betas[-2:] == [1.0, 1.0]
    assert all(b2 > b1 for b1, b2 in zip(betas[:-2], betas[1:-1]))  # increasing to 1
    assert result.state.schedule.phase == DONE and result.state.schedule.refined
    # The first stage's record has the kl behind the next beta; the middle ones the
    # log U_beta they trained with as well.
    assert {"kl", "kl_grad", "delta", "ess"} <= set(stages[0]) and "log_u" not in stages[0]
    assert "log_u" in stages[1] and "kl" in stages[1]
    assert "log_u" in stages[2] and "kl" not in stages[2]
    assert stages[1]["beta"] == pytest.approx(0.1 * math.exp(stages[0]["delta"]))
    # Every L2 stage says how many of a batch's 256 draws its estimate rested on.
    assert all(1.0 <= s["l2_terms_ess"] <= 256.0 for s in stages if s["loss"] == "l2_distance")
    assert "l2_terms_ess" not in stages[0] and "kl_plus_log_u" in stages[0]
    assert all(np.isfinite(s["final_loss"]) for s in stages)
    # Peak rates: lr / sqrt(beta) * lr_decay ** stage; steps as configured.
    for s in stages:
        assert s["peak_lr"] == pytest.approx(stage_peak_lr(1e-3, s["beta"], 0.9, s["stage"]))
    assert [s["steps"] for s in stages] == [40, 40, 40, 20]
    assert [s["round"] for s in stages] == [0, 0, 1, 0]
    assert result.train_seconds == pytest.approx(stages[-1]["train_seconds"])


def test_each_stage_restarts_the_optimizer_at_its_peak_rate_and_length():
    kernel = tiny_kernel()
    state = kernel.init(KEY)
    stage = kernel.next_stage(state)
    assert stage == (0, FIRST, "reverse_kl", pytest.approx(0.1), 40,
                     pytest.approx(1e-3 / math.sqrt(0.1)), 0)
    train_state = kernel.stage_train_state(state, stage)
    hyper = train_state.opt_state.hyperparams
    assert float(hyper["lr"]) == pytest.approx(stage.peak_lr)
    assert float(hyper["total_steps"]) == stage.steps
    assert int(train_state.step) == 0
    assert_same_params(train_state.params, state.params)


def test_a_finished_run_asked_for_the_refinement_trains_only_that_stage(plain_run, full_run,
                                                                        tmp_path):
    plain, plain_dir = plain_run
    assert plain.state.schedule.phase == DONE
    assert [s["phase"] for s in plain.stages] == [FIRST, MIDDLE, FINAL]
    refined = continued(plain_dir, tmp_path, tiny_kernel(final_kl_steps=20))
    assert refined.stages[:-1] == plain.stages  # the records of the finished stages, as written
    last = refined.stages[-1]
    assert (last["phase"], last["loss"], last["beta"], last["steps"]) == (REFINE, "reverse_kl",
                                                                          1.0, 20)
    # ... and ends where a run started with the refinement ends.
    full, _ = full_run
    assert without_times(refined.stages) == without_times(full.stages)
    assert_same_params(refined.state.params, full.state.params)


def test_final_rounds_each_start_from_a_fresh_reference(monkeypatch, tmp_path):
    kernel = tiny_kernel(final_rounds=3)
    references = []
    estimate_log_u = kernel.estimate_log_u

    def recorded(ref_params, beta, key):
        references.append(ref_params)
        return estimate_log_u(ref_params, beta, key)

    monkeypatch.setattr(kernel, "estimate_log_u", recorded)
    params_after = []
    result = run(kernel, tmp_path,
                 on_stage=lambda state, info: params_after.append(state.params) or {})
    stages = result.stages
    final = [s for s in stages if s["beta"] == 1.0]
    assert [(s["phase"], s["loss"], s["round"]) for s in final] == \
        [(FINAL, "l2_distance", 1), (FINAL, "l2_distance", 2), (FINAL, "l2_distance", 3)]
    assert result.state.schedule.final_rounds_done == 3
    assert all(s["beta"] < 1.0 for s in stages[:-3])
    assert len({s["beta"] for s in stages[:-3]}) == len(stages) - 3
    assert [s["ref_updated"] for s in final] == [True, True, False]
    # Rounds 2 and 3 take the flow as the previous round left it for their reference.
    assert len(references) == 3
    for ref, before in zip(references[-2:], params_after[-3:-1]):
        assert_same_params(ref, before)
    assert final[1]["log_u"] != final[0]["log_u"]


def test_a_finished_run_asked_for_more_final_rounds_equals_one_run_with_them(
        plain_run, full_run, tmp_path):
    plain, plain_dir = plain_run
    assert plain.state.schedule.final_rounds_done == 1
    more = continued(plain_dir, tmp_path, tiny_kernel(final_rounds=3))
    fresh = run(tiny_kernel(final_rounds=3), tmp_path / "fresh")
    assert_same_params(more.state.params, fresh.state.params)
    assert more.state.schedule == fresh.state.schedule
    # The stage that ended the first run was written before more rounds were asked for.
    ignore = ("ref_updated",)
    assert [{k: v for k, v in s.items() if k not in ignore} for s in without_times(more.stages)] \
        == [{k: v for k, v in s.items() if k not in ignore} for s in without_times(fresh.stages)]
    # Fewer rounds than trained cannot be honoured, nor more after the KL refinement.
    with pytest.raises(ValueError, match="already trained 3 rounds"):
        tiny_kernel(final_rounds=2).extend(more.state)
    with pytest.raises(ValueError, match="already trained 3 rounds"):
        run(tiny_kernel(final_rounds=2), tmp_path / "continued")
    full, _ = full_run
    with pytest.raises(ValueError, match="ended with the reverse-KL refinement"):
        tiny_kernel(final_rounds=2, final_kl_steps=20).extend(full.state)
    # What a finished run already has changes nothing.
    assert tiny_kernel(final_rounds=3).extend(more.state) is more.state


def test_the_continued_run_records_the_reference_refresh_of_the_stage_before(plain_run,
                                                                             tmp_path):
    _, plain_dir = plain_run
    more = continued(plain_dir, tmp_path, tiny_kernel(final_rounds=3))
    fresh = run(tiny_kernel(final_rounds=3), tmp_path / "fresh")
    assert [s["ref_updated"] for s in more.stages] == [s["ref_updated"] for s in fresh.stages]


def test_a_collapsed_importance_sample_is_flagged_and_warned_about(monkeypatch):
    kernel = tiny_kernel()
    state = kernel.init(KEY)
    stage = kernel.next_stage(state)
    collapsed = TemperingKL(kl=1.0, grad=-2.0, log_u_beta=0.0, log_u_one=0.0, ess=1.3)
    monkeypatch.setattr(kernel, "estimate", lambda *args: collapsed)
    with pytest.warns(ImportanceCollapseWarning, match="effective sample size of 1.3"):
        new, info = kernel.finish_stage(state, stage, state.params)
    assert info.ess_collapsed and info.ess == pytest.approx(1.3)
    assert new.schedule.phase == MIDDLE  # the run goes on; the record says why to distrust it
    # A healthy estimate sets no flag.
    monkeypatch.setattr(kernel, "estimate", lambda *args: collapsed._replace(ess=500.0))
    _, info = kernel.finish_stage(state, stage, state.params)
    assert not info.ess_collapsed


def test_each_stage_draws_its_reference_estimates_once(monkeypatch, tmp_path):
    # A middle stage's log U_beta and the kl behind the next beta come from the same
    # reference draws: one estimate per stage, whose log U is the one trained with.
    kernel = tiny_kernel()
    calls = []
    estimate = kernel.estimate

    def counted(ref_params, beta, key):
        est = estimate(ref_params, beta, key)
        calls.append((beta, float(est.log_u_beta)))
        return est

    monkeypatch.setattr(kernel, "estimate", counted)
    monkeypatch.setattr(kernel, "estimate_log_u",
                        lambda ref_params, beta, key: calls.append((beta, "log_u")) or 0.0)
    stages = run(kernel, tmp_path).stages
    assert [b for b, _ in calls] == [s["beta"] for s in stages]  # one per stage
    assert calls[-1] == (1.0, "log_u")  # the final stage needs only log U_1
    assert stages[-1]["log_u"] == 0.0
    for (_, log_u), s in zip(calls[1:-1], stages[1:-1]):
        assert s["phase"] == MIDDLE and s["log_u"] == log_u and "kl" in s


# ------------------------------------------------------------------ ablations

DEFENSIVE = dict(defensive_share=0.5, defensive_scale=2.0)


def test_defensive_reference_draws_carry_the_mixture_density_through_the_flow(tmp_path):
    # With a share of the latents from N(0, 2^2 I), the reference's log-density is the
    # latent mixture's minus the forward log-det. Checked against the inverse pass: the
    # weights q(Y) / r(Y) must recover the flow's own second moment, which the draws
    # themselves overstate (they come from a wider density).
    kernel = tiny_kernel(**DEFENSIVE)
    params = run(kernel, tmp_path).state.params  # a trained, non-trivial flow
    n = 40_000
    y, log_r = kernel.reference_sample_and_log_prob(params, jax.random.PRNGKey(1), n)
    log_q = kernel.log_prob(params, y)
    w = np.exp(np.asarray(log_q - log_r, np.float64))
    assert w.max() <= 2.0 + 1e-3  # q / r = 1 / (1/2 + ratio / 2) with ratio > 0
    second = np.sum(np.asarray(y, np.float64) ** 2, axis=1)
    own = np.sum(np.asarray(kernel.sample(params, jax.random.PRNGKey(2), n),
                            np.float64) ** 2, axis=1)
    assert np.mean(w * second) == pytest.approx(own.mean(), rel=0.03)
    assert second.mean() > 1.3 * own.mean()
    assert np.mean(w) == pytest.approx(1.0, abs=0.02)
    # Without the defensive share the reference is the flow itself.
    plain = tiny_kernel()
    y, log_r = plain.reference_sample_and_log_prob(params, jax.random.PRNGKey(1), 2000)
    x, log_q = plain.sample_and_log_prob(params, jax.random.PRNGKey(1), 2000)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(log_r), np.asarray(log_q))


@pytest.mark.parametrize("options", [DEFENSIVE, dict(stage_loss="forward_kl"),
                                     dict(beta_schedule="fixed_grid", num_fixed_betas=4),
                                     dict(l2_kl_weight=1.0)],
                         ids=["defensive", "forward_kl", "fixed_grid", "l2_plus_kl"])
def test_ablations_run_end_to_end(options, tmp_path):
    result = run(tiny_kernel(**options), tmp_path)
    stages = result.stages
    assert result.state.schedule.phase == DONE and stages[-1]["beta"] == 1.0
    assert all(np.isfinite(s["final_loss"]) for s in stages)
    loss = options.get("stage_loss", "l2_distance")
    assert [s["loss"] for s in stages] == ["reverse_kl"] + [loss] * (len(stages) - 1)
    later = stages[1:]
    if loss == "forward_kl":
        assert all("is_ess" in s and "cross_entropy" in s for s in later)
    if options.get("l2_kl_weight"):  # the reverse-KL term's metric beside the L2 one
        assert all("kl_plus_log_u" in s and "log_l2" in s for s in later)
    if options.get("beta_schedule") == "fixed_grid":
        np.testing.assert_allclose([s["beta"] for s in stages], rules.fixed_grid(0.1, 4))
        assert [s["ref_updated"] for s in stages] == [True, True, True, False]
        assert all("kl" not in s for s in stages)


# The tiny flow leaves its reference at this learning rate; the warning says so,
# and it is not what this test checks.
@pytest.mark.filterwarnings("ignore::gmjax.samplers.temperflow.ImportanceCollapseWarning")
def test_steps_growth_gives_late_stages_more_steps(tmp_path):
    kernel = tiny_kernel(steps_growth=1.5, max_betas=4, steps_init=60, steps_final=80,
                         final_kl_steps=20)
    stages = run(kernel, tmp_path).stages
    # Every stage records the steps it trained: the first KL, the growing middle
    # L2 stages, the beta = 1 L2 stage and the final KL refinement.
    assert [(s["loss"], s["steps"]) for s in stages] == \
        [("reverse_kl", 60), ("l2_distance", 40), ("l2_distance", 60), ("l2_distance", 80),
         ("reverse_kl", 20)]


def test_kl_sampler_is_one_stage_at_beta_one(tmp_path):
    kernel = tiny_kernel(method="kl")
    result = run(kernel, tmp_path)
    assert [(s["phase"], s["loss"], s["beta"], s["steps"]) for s in result.stages] == \
        [(FIRST, "reverse_kl", 1.0, 80)]  # steps_init + steps_final
    assert result.state.schedule.phase == DONE
    x = kernel.sample(result.state.params, jax.random.PRNGKey(1), 100)
    assert x.shape == (100, 2) and np.all(np.isfinite(np.asarray(x)))


@pytest.mark.parametrize("options,message", [
    (dict(defensive_share=1.0), "defensive_share must be in"),
    (dict(defensive_share=-0.1), "defensive_share must be in"),
    (dict(defensive_share=0.2, defensive_scale=1.0), "defensive_scale must be > 1"),
    (dict(steps_growth=0.9), "steps_growth must be >= 1"),
    (dict(final_rounds=0), "final_rounds must be >= 1"),
    (dict(method="l2"), "unknown method 'l2'"),
    (dict(beta_schedule="grid"), "unknown beta_schedule 'grid'"),
    (dict(ref_refresh="never"), "unknown ref_refresh 'never'"),
    (dict(stage_loss="l2"), "unknown stage loss 'l2'"),
    (dict(stage_loss="reverse_kl"), "use method='kl'"),
    (dict(upweight=True, stage_loss="forward_kl"), "upweight applies to stage_loss="),
    (dict(beta0=1.0), "beta0 must be in"),
    (dict(kl_decay=1.0), "kl_decay must be in"),
    (dict(steps_mid=30, steps_per_call=20), "steps_mid=30 must be a positive multiple"),
    (dict(max_betas=1), "max_betas must be >= 2"),
])
def test_bad_configs_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        TemperFlowConfig(**options)


def test_the_kernel_refuses_an_optimizer_schedule_it_cannot_restart():
    with pytest.raises(ValueError, match="cannot take its learning rate"):
        TemperFlow(build_flow(FLOW, 2), build_target("circle"), TemperFlowConfig(**TINY),
                   {"name": "adam", "lr": 1e-3, "schedule": "cosine"})


# ------------------------------------------------------------------- resuming


def count_calls(kernel, calls, stop_at=0):
    """Makes ``kernel`` (a copy) append each compiled call's loss to ``calls`` and raise
    ``KeyboardInterrupt`` instead of making call number ``stop_at``."""
    train_step = type(kernel).train_step.__get__(kernel)

    def step_of(loss):
        step = train_step(loss)

        def counted(state, batch):
            if len(calls) + 1 == stop_at:
                raise KeyboardInterrupt
            calls.append(loss)
            return step(state, batch)

        return counted

    kernel.train_step = step_of
    return kernel


@pytest.fixture(scope="module")
def resumed_between_stages(tmp_path_factory):
    """The full run stopped in the second stage's ``on_stage`` hook, then run again;
    and the losses of the compiled calls the second run made."""
    workdir = tmp_path_factory.mktemp("between")
    kernel = tiny_kernel(final_kl_steps=20)

    def interrupt(state, info):
        # The hook runs before the stage's checkpoint: stopping in the second stage's
        # hook leaves the first stage's checkpoint as the last.
        if info.stage == 1:
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        run(kernel, workdir, on_stage=interrupt)
    calls = []
    return run(count_calls(kernel, calls), workdir), calls


def test_a_run_interrupted_between_stages_resumes_exactly(full_run, resumed_between_stages):
    full, _ = full_run
    resumed, calls = resumed_between_stages
    # Stage 1 had trained to the end: the run goes on with stages 2 and 3 only.
    assert calls == ["l2_distance", "l2_distance", "reverse_kl"]
    assert_same_params(resumed.state.params, full.state.params)
    assert resumed.state.schedule == full.state.schedule
    assert len(resumed.stages) == len(full.stages)
    got, expected = without_times(resumed.stages), without_times(full.stages)
    for i in (0, 2, 3):
        assert got[i] == expected[i]
    # What stage 1 decided is the same.
    assert {k: v for k, v in got[1].items() if k != "final_loss"} == \
        {k: expected[1][k] for k in got[1] if k != "final_loss"}


def test_a_resumed_stage_keeps_its_training_record(full_run, resumed_between_stages):
    full, _ = full_run
    assert without_times(resumed_between_stages[0].stages) == without_times(full.stages)


def test_a_run_interrupted_inside_a_stage_resumes_exactly(full_run, tmp_path):
    full, _ = full_run
    calls = []
    # Stopped before the second call of stage 1, whose step-20 checkpoint is on disk.
    with pytest.raises(KeyboardInterrupt):
        run(count_calls(tiny_kernel(final_kl_steps=20), calls, stop_at=4), tmp_path,
            checkpoint_every=20)
    assert calls == ["reverse_kl", "reverse_kl", "l2_distance"]
    calls.clear()
    resumed = run(count_calls(tiny_kernel(final_kl_steps=20), calls), tmp_path,
                  checkpoint_every=20)
    # The rest of stage 1 (one call), then stages 2 and 3.
    assert calls == ["l2_distance", "l2_distance", "l2_distance", "reverse_kl"]
    assert_same_params(resumed.state.params, full.state.params)
    assert resumed.state.schedule == full.state.schedule
    assert without_times(resumed.stages) == without_times(full.stages)


# ------------------------------------------------------- mode weights on stages


def test_importance_weight_trace_is_the_importance_weighted_indicator_mean():
    indicators = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], float)
    log_q = np.log([0.4, 0.1, 0.3, 0.2])
    # f / q = 1, 2, 3, 4 up to a constant: p gives the first mode (1 + 2) / 10.
    log_f = log_q + np.log([1.0, 2.0, 3.0, 4.0]) + 5.0
    out = metrics.importance_weight_trace(indicators, log_f, log_q)
    np.testing.assert_allclose(out["weights_flow"], [0.5, 0.5])
    np.testing.assert_allclose(out["weights_target_is"], [0.3, 0.7])
    assert out["weights_lag"] == pytest.approx(0.2)
    assert out["weights_is_ess"] == pytest.approx(1.0 / np.sum((np.arange(1, 5) / 10) ** 2))
    # A flow equal to the target up to its normalizer: no gap, every draw counts.
    same = metrics.importance_weight_trace(indicators, log_q - 3.0, log_q)
    np.testing.assert_allclose(same["weights_target_is"], same["weights_flow"])
    assert same["weights_is_ess"] == pytest.approx(4.0)


def test_clayton_weights_and_sign_counts_of_a_flows_draws():
    target = build_target("clayton", dim=8)
    flow = build_flow({**FLOW, "bound": 6.0}, 8)
    kernel = TemperFlow(flow, target, TemperFlowConfig(**TINY), OPTIM)
    params = kernel.init(KEY).params
    x, log_q = kernel.sample_and_log_prob(params, jax.random.PRNGKey(1), 4000)
    x = np.asarray(x)
    # The indicators are the signs of the 8 bimodal coordinates; P(x_j > 0) = 0.3.
    indicators = np.asarray(target.weight_indicators(x))
    np.testing.assert_array_equal(indicators, (x[:, :8] > 0).astype(np.float32))
    np.testing.assert_allclose(target.true_weights(), np.full(8, 0.3), atol=1e-6)
    log_f = 0.5 * np.asarray(kernel.target_log_prob(x), np.float64)
    trace = metrics.importance_weight_trace(indicators, log_f, np.asarray(log_q))
    np.testing.assert_allclose(trace["weights_flow"], np.mean(x[:, :8] > 0, axis=0))
    assert 1.0 <= trace["weights_is_ess"] <= 4000
    # The shares of draws with k = 0 ... 8 of those coordinates negative.
    negatives = np.sum(x[:, :8] < 0, axis=1)
    shares = target.negative_count_shares(x)
    np.testing.assert_allclose(shares, [np.mean(negatives == k) for k in range(9)])
    assert shares.shape == (9,) and shares.sum() == pytest.approx(1.0)
    # The quality metrics: sign patterns and the positive fractions against 0.3.
    quality = target.quality_metrics(x)
    positive = np.mean(x[:, :8] > 0, axis=0)
    assert quality["num_sign_patterns"] == 256
    assert 1 <= quality["sign_patterns_present"] <= 256
    assert quality["positive_frac_max_error"] == pytest.approx(
        float(np.max(np.abs(positive - target.true_weights()))))
    assert [quality[f"positive_frac_{j}"] for j in range(8)] == pytest.approx(list(positive))
    assert 0.0 <= quality["pattern_weight_tv"] <= 1.0

