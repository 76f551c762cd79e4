"""The TemperFlow driver and its experiment script, on tiny budgets."""

import copy
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from gmjax.models.flow import build_flow
from gmjax.objectives.sampling import TemperingKL
from gmjax.samplers.temperflow import ImportanceCollapseWarning, TemperFlow, TemperFlowConfig
from gmjax.targets import build_target

CONFIG = os.path.join("experiments", "configs", "temperflow_2d.py")
TINY = ["--config.model.name=spline_coupling", "--config.model.num_layers=2",
        "--config.model.hidden=(16,)", "--config.data.batch_size=256",
        "--config.train.steps=40", "--config.train.steps_per_call=20",
        "--config.sampler.steps_init=40", "--config.sampler.steps_final=40",
        "--config.sampler.max_betas=3", "--config.sampler.estimate_draws=2000",
        "--config.eval.num_samples=2000", "--config.eval.replicates=2",
        "--config.eval.replicate_size=200"]


def tiny_sampler(method="temperflow", final_kl_steps=0, **options):
    flow = build_flow({"name": "spline_coupling", "num_layers": 2, "hidden": (16,),
                       "num_bins": 8, "bound": 8.0}, 2)
    settings = dict(method=method, steps_init=40, steps_mid=40, steps_final=40, batch_size=256,
                    steps_per_call=20, max_betas=3, estimate_draws=2000,
                    final_kl_steps=final_kl_steps)
    config = TemperFlowConfig(**{**settings, **options})
    return TemperFlow(flow, build_target("circle"), config)


def test_stages_follow_the_schedule_and_resuming_is_exact():
    sampler = tiny_sampler(final_kl_steps=20)  # with the authors' final KL refinement
    state, schedule = sampler.init(jax.random.PRNGKey(0))
    saved = None
    for i, (state, schedule) in enumerate(sampler.run(state, schedule)):
        if i == 1:
            saved = (state, copy.deepcopy(schedule))
    kinds = [s["kind"] for s in schedule.stages]
    betas = schedule.betas
    assert kinds[0] == "kl" and kinds[-2:] == ["l2", "kl"]
    assert betas[0] == pytest.approx(0.1) and betas[-1] == 1.0
    assert all(b2 > b1 for b1, b2 in zip(betas[:-2], betas[1:-1]))  # increasing to 1
    assert "kl" in schedule.stages[0] and "log_u" in schedule.stages[1]
    # Every L2 stage says how many of a batch's 256 draws its estimate rested on.
    assert all(1.0 <= s["l2_terms_ess"] <= 256.0 for s in schedule.stages if s["kind"] == "l2")
    assert "l2_terms_ess" not in schedule.stages[0]

    # Resume from the state after stage 1: the same final parameters, bit for bit.
    resumed_state, resumed_schedule = saved
    for resumed_state, resumed_schedule in sampler.run(*saved):
        pass
    assert resumed_schedule.betas == betas
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(resumed_state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_finished_run_asked_for_the_refinement_trains_only_that_stage():
    plain = tiny_sampler()
    state, schedule = plain.init(jax.random.PRNGKey(0))
    for state, schedule in plain.run(state, schedule):
        pass
    assert schedule.phase == "done" and schedule.stages[-1]["kind"] == "l2"
    finished = [dict(s) for s in schedule.stages]
    refined = list(tiny_sampler(final_kl_steps=20).run(state, schedule))
    assert len(refined) == 1
    stages = refined[0][1].stages
    assert stages[:-1] == finished and (stages[-1]["kind"], stages[-1]["beta"]) == ("kl", 1.0)


def _trained(sampler, state, schedule):
    for state, schedule in sampler.run(state, schedule):
        pass
    return state, schedule


def _without_times(stages):
    return [{k: v for k, v in s.items() if k != "seconds"} for s in stages]


def test_final_rounds_each_start_from_a_fresh_reference(monkeypatch):
    sampler = tiny_sampler(final_rounds=3)
    references = []
    estimate_log_u = sampler.estimate_log_u

    def recorded(ref_params, beta, key):
        references.append(ref_params)
        return estimate_log_u(ref_params, beta, key)

    monkeypatch.setattr(sampler, "estimate_log_u", recorded)
    state, schedule = sampler.init(jax.random.PRNGKey(0))
    params_after = []
    for state, schedule in sampler.run(state, schedule):
        params_after.append(state.params)
    final = [s for s in schedule.stages if s["beta"] == 1.0]
    assert [(s["kind"], s["round"]) for s in final] == [("l2", 1), ("l2", 2), ("l2", 3)]
    assert schedule.final_rounds_done == 3 and len(set(schedule.betas)) == len(schedule.betas) - 2
    assert [s.get("ref_updated", False) for s in final] == [True, True, False]
    # Rounds 2 and 3 take the flow as the previous round left it for their reference.
    for ref, before in zip(references[-2:], params_after[-3:-1]):
        for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(before)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert final[1]["log_u"] != final[0]["log_u"]


def test_a_finished_run_asked_for_more_final_rounds_equals_one_run_with_them():
    state, schedule = _trained(tiny_sampler(), *tiny_sampler().init(jax.random.PRNGKey(0)))
    assert schedule.final_rounds_done == 1
    more_state, more = _trained(tiny_sampler(final_rounds=3), state, schedule)
    fresh_sampler = tiny_sampler(final_rounds=3)
    fresh_state, fresh = _trained(fresh_sampler, *fresh_sampler.init(jax.random.PRNGKey(0)))
    assert _without_times(more.stages) == _without_times(fresh.stages)
    for a, b in zip(jax.tree.leaves(more_state.params), jax.tree.leaves(fresh_state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Fewer rounds than trained cannot be honoured, nor more after the KL refinement.
    with pytest.raises(ValueError, match="already trained 3 rounds"):
        list(tiny_sampler(final_rounds=2).run(more_state, more))
    kl_state, kl_done = _trained(tiny_sampler(final_kl_steps=20),
                                 *tiny_sampler().init(jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match="ended with the reverse-KL refinement"):
        list(tiny_sampler(final_rounds=2, final_kl_steps=20).run(kl_state, kl_done))
    with pytest.raises(ValueError, match="final_rounds must be >= 1"):
        TemperFlowConfig(final_rounds=0)


def test_a_collapsed_importance_sample_is_flagged_and_warned_about(monkeypatch):
    sampler = tiny_sampler()
    state, schedule = sampler.init(jax.random.PRNGKey(0))
    collapsed = TemperingKL(kl=1.0, grad=-2.0, log_u_beta=0.0, log_u_one=0.0, ess=1.3)
    monkeypatch.setattr(sampler, "estimate", lambda *args: collapsed)
    record = {"stage": 0, "beta": 0.1}
    with pytest.warns(ImportanceCollapseWarning, match="effective sample size of 1.3"):
        sampler._advance(state, schedule, record, jax.random.PRNGKey(1))
    assert record["ess_collapsed"] and record["ess"] == pytest.approx(1.3)
    assert schedule.phase == "mid"  # the run goes on; the record says why to distrust it


def test_each_stage_draws_its_reference_estimates_once(monkeypatch):
    # A middle stage's log U_beta and the kl behind the next beta come from the same
    # reference draws: one estimate per stage, whose log U is the one trained with.
    sampler = tiny_sampler()
    calls = []
    estimate = sampler.estimate

    def counted(ref_params, beta, key):
        est = estimate(ref_params, beta, key)
        calls.append((beta, float(est.log_u_beta)))
        return est

    monkeypatch.setattr(sampler, "estimate", counted)
    monkeypatch.setattr(sampler, "estimate_log_u",
                        lambda ref_params, beta, key: calls.append((beta, "log_u")) or 0.0)
    state, schedule = sampler.init(jax.random.PRNGKey(0))
    for state, schedule in sampler.run(state, schedule):
        pass
    stages = schedule.stages
    assert [k for k, _ in calls] == [s["beta"] for s in stages]  # one per stage
    assert calls[-1] == (1.0, "log_u")  # the final stage needs only log U_1
    for (_, log_u), s in zip(calls[1:-1], stages[1:-1]):
        assert s["kind"] == "l2" and s["log_u"] == log_u and "kl" in s


def test_defensive_reference_draws_carry_the_mixture_density_through_the_flow():
    # With a share of the latents from N(0, 2^2 I), the reference's log-density is the
    # latent mixture's minus the forward log-det. Checked against the inverse pass: the
    # weights q(Y) / r(Y) must recover the flow's own second moment, which the draws
    # themselves overstate (they come from a wider density).
    sampler = tiny_sampler(defensive_share=0.5, defensive_scale=2.0)
    state, schedule = sampler.init(jax.random.PRNGKey(0))
    state, schedule = next(sampler.run(state, schedule))  # a trained, non-trivial flow
    n = 40_000
    y, log_r = sampler.reference_sample_and_log_prob(state.params, jax.random.PRNGKey(1), n)
    log_q = sampler.log_prob(state.params, y)
    w = np.exp(np.asarray(log_q - log_r, np.float64))
    assert w.max() <= 2.0 + 1e-3  # q / r = 1 / (1/2 + ratio / 2) with ratio > 0
    second = np.sum(np.asarray(y, np.float64) ** 2, axis=1)
    own = np.sum(np.asarray(sampler.sample(state.params, jax.random.PRNGKey(2), n),
                            np.float64) ** 2, axis=1)
    assert np.mean(w * second) == pytest.approx(own.mean(), rel=0.03)
    assert second.mean() > 1.3 * own.mean()
    assert np.mean(w) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("options", [dict(defensive_share=0.3, defensive_scale=2.0),
                                     dict(l2_form="forward_kl")])
def test_ablations_run_end_to_end(options):
    sampler = tiny_sampler(**options)
    state, schedule = sampler.init(jax.random.PRNGKey(0))
    for state, schedule in sampler.run(state, schedule):
        pass
    assert schedule.phase == "done" and schedule.betas[-1] == 1.0
    assert all(np.isfinite(s["loss"]) for s in schedule.stages)


# The tiny flow leaves its reference at this learning rate; the warning says so,
# and it is not what this test checks.
@pytest.mark.filterwarnings("ignore::gmjax.samplers.temperflow.ImportanceCollapseWarning")
def test_steps_growth_gives_late_stages_more_steps():
    config = TemperFlowConfig(steps_mid=200, steps_growth=1 / 0.9, steps_per_call=100)
    # 200 / 0.9 ** (i - 1) = 200, 222, 247, 274, 305, 339, 376, 418, 464, 516 ...
    assert [config.mid_steps(i) for i in range(1, 11)] == \
        [200, 200, 200, 300, 300, 300, 400, 400, 500, 500]
    assert {TemperFlowConfig(steps_mid=200).mid_steps(i) for i in range(1, 30)} == {200}
    sampler = tiny_sampler(steps_growth=1.5, max_betas=4, steps_init=60, steps_final=80,
                           final_kl_steps=20)
    state, schedule = sampler.init(jax.random.PRNGKey(0))
    for state, schedule in sampler.run(state, schedule):
        pass
    # Every stage records the steps it trained: the first KL, the growing middle
    # L2 stages, the beta = 1 L2 stage and the final KL refinement.
    assert [(s["kind"], s["steps"]) for s in schedule.stages] == \
        [("kl", 60), ("l2", 40), ("l2", 60), ("l2", 80), ("kl", 20)]
    with pytest.raises(ValueError, match="steps_growth must be >= 1"):
        TemperFlowConfig(steps_growth=0.9)


def test_clayton_paper_config_is_the_measured_recipe():
    from experiments import temperflow as E
    from experiments.configs import temperflow_clayton_paper

    config = E.sampler_config(temperflow_clayton_paper.get_config())
    assert (config.l2_form, config.final_kl_steps) == ("forward_kl", 0)
    assert (config.batch_size, config.steps_mid, config.steps_final) == (2000, 1000, 1000)


def test_clayton_forward_kl_config_is_the_measured_recipe():
    from experiments import temperflow as E
    from experiments.configs import temperflow_clayton_forward_kl

    config = E.sampler_config(temperflow_clayton_forward_kl.get_config())
    assert (config.l2_form, config.final_kl_steps, config.ref_cutoffs) == ("forward_kl", 0, None)
    assert (config.batch_size, config.steps_mid, config.lr_decay) == (500, 500, 0.95)
    # 500 steps at the first middle beta, 3,700 at the last of p = 32's 22 middle betas
    assert (config.mid_steps(1), config.mid_steps(22)) == (500, 3700)
    # then 10 rounds of 400 steps at beta = 1, each from a fresh reference
    assert (config.final_rounds, config.steps_final) == (10, 400)


def test_bad_defensive_shares_are_refused():
    with pytest.raises(ValueError, match="defensive_share must be in"):
        TemperFlowConfig(defensive_share=1.0)
    with pytest.raises(ValueError, match="defensive_scale must be > 1"):
        TemperFlowConfig(defensive_share=0.2, defensive_scale=1.0)


def test_weight_trace_is_the_importance_weighted_indicator_mean():
    from experiments.temperflow import weight_trace
    indicators = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], float)
    log_q = np.log([0.4, 0.1, 0.3, 0.2])
    # f / q = 1, 2, 3, 4 up to a constant: p gives the first mode (1 + 2) / 10.
    log_f = log_q + np.log([1.0, 2.0, 3.0, 4.0]) + 5.0
    out = weight_trace(indicators, log_f, log_q)
    np.testing.assert_allclose(out["weights_flow"], [0.5, 0.5])
    np.testing.assert_allclose(out["weights_target_is"], [0.3, 0.7])
    assert out["weights_lag"] == pytest.approx(0.2)
    assert out["weights_is_ess"] == pytest.approx(1.0 / np.sum((np.arange(1, 5) / 10) ** 2))
    # A flow equal to the target up to its normalizer: no gap, every draw counts.
    same = weight_trace(indicators, log_q - 3.0, log_q)
    np.testing.assert_allclose(same["weights_target_is"], same["weights_flow"])
    assert same["weights_is_ess"] == pytest.approx(4.0)


def test_clayton_stage_records_carry_the_flows_sign_counts():
    from experiments.temperflow import stage_weights
    target = build_target("clayton", dim=8)
    flow = build_flow({"name": "spline_coupling", "num_layers": 2, "hidden": (16,),
                       "num_bins": 8, "bound": 6.0}, 8)
    sampler = TemperFlow(flow, target, TemperFlowConfig(batch_size=256, steps_per_call=20,
                                                        steps_init=40, steps_mid=40,
                                                        steps_final=40))
    state, _ = sampler.init(jax.random.PRNGKey(0))
    out = stage_weights(sampler, state.params, target, 0.5, jax.random.PRNGKey(1), 4000)
    x = np.asarray(sampler.sample(state.params, jax.random.PRNGKey(1), 4000))
    negatives = np.sum(x[:, :8] < 0, axis=1)
    expected = [np.mean(negatives == k) for k in range(9)]
    np.testing.assert_allclose(out["sign_counts_flow"], expected)
    np.testing.assert_allclose(out["weights_flow"], np.mean(x[:, :8] > 0, axis=0))


def test_kl_sampler_is_one_stage_at_beta_one():
    sampler = tiny_sampler("kl")
    state, schedule = sampler.init(jax.random.PRNGKey(0))
    for state, schedule in sampler.run(state, schedule):
        pass
    assert [(s["kind"], s["beta"]) for s in schedule.stages] == [("kl", 1.0)]
    x = sampler.sample(state.params, jax.random.PRNGKey(1), 100)
    assert x.shape == (100, 2) and np.all(np.isfinite(np.asarray(x)))


def script(repo_root, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo_root)
    return subprocess.run([sys.executable, os.path.join("experiments", "temperflow.py"), *args],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)


def test_experiment_writes_the_contract_and_resumes(repo_root, tmp_path):
    workdir = tmp_path / "tf"
    args = [f"--config={CONFIG}", f"--workdir={workdir}", *TINY,
            "--config.method=temperflow"]
    out = script(repo_root, *args)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("config.json", "metrics.jsonl", "metrics.json", "beta_trace.png",
                 "samples.png", "checkpoints"):
        assert (workdir / name).exists(), name
    metrics = json.loads((workdir / "metrics.json").read_text())
    for name in ("adjusted_w1", "adjusted_mmd", "modes_captured", "mode_weight_max_error",
                 "train_seconds", "sample_seconds", "num_betas", "rejection", "is_ess_min",
                 "is_ess_collapsed_stages"):
        assert name in metrics, name
    # The same flow as a rejection proposal: its numbers, or why it gave up (a tiny flow).
    rejection = metrics["rejection"]
    if "error" in rejection:
        assert "minimum acceptance rate" in rejection["error"]
    else:
        assert 0 < rejection["acceptance_rate"] <= 1
    stages = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stages] == list(range(1, len(stages) + 1))
    # The mode weights along the curve: the flow's and the tempered target's, per stage.
    assert (workdir / "weight_trace.png").exists()
    for s in stages:
        assert len(s["weights_flow"]) == len(s["weights_target_is"]) == 8  # circle's modes
        assert sum(s["weights_flow"]) == pytest.approx(1.0)
        assert 1.0 <= s["weights_is_ess"] <= 10_000

    # Running again finds every stage done: nothing is retrained, the betas are the same.
    again = script(repo_root, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    metrics_again = json.loads((workdir / "metrics.json").read_text())
    assert metrics_again["betas"] == metrics["betas"]
    assert metrics_again["train_seconds"] == pytest.approx(metrics["train_seconds"])


def test_mcmc_baseline_through_the_experiment(repo_root, tmp_path):
    out = script(repo_root, f"--config={CONFIG}", f"--workdir={tmp_path / 'mh'}",
                 "--config.method=mh", "--config.mcmc.num_chains=20", "--config.mcmc.burn_in=100",
                 "--config.eval.num_samples=2000", "--config.eval.replicates=2",
                 "--config.eval.replicate_size=200")
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "mh" / "metrics.json").read_text())
    assert 0 < metrics["acceptance_rate"] < 1 and "ess_min" in metrics
    assert (tmp_path / "mh" / "samples.png").exists()


def test_bad_method_stops_before_any_work(repo_root, tmp_path):
    out = script(repo_root, f"--config={CONFIG}", f"--workdir={tmp_path / 'bad'}",
                 "--config.method=temperflo")
    assert out.returncode == 2
    assert "temperflow+rej" in out.stderr and "Traceback" not in out.stderr


def test_bad_sampler_setting_stops_before_any_work(repo_root, tmp_path):
    out = script(repo_root, f"--config={CONFIG}", f"--workdir={tmp_path / 'bad'}",
                 "--config.sampler.defensive_share=1.2")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "defensive_share must be in [0, 1), got 1.2" in out.stderr
    assert not (tmp_path / "bad").exists()


def test_tempered_clayton_weights_by_defensive_importance_sampling():
    # The diagnostic's reference curve: at beta = 1 it must give the known P(x_j > 0) = 0.3
    # and log U_1 = 0 (the Clayton density is normalized), and at beta = 0.5 a value between
    # the beta = 1 one and the flatter beta = 0.1 one (0.61, measured with 10^7 draws).
    from experiments.diagnostics.weight_traces import tempered_positive_fraction
    curve = tempered_positive_fraction(8, (0.5, 1.0), 200_000, batch=100_000)
    assert curve["mean"][1] == pytest.approx(0.3, abs=0.006)
    assert curve["log_u"][1] == pytest.approx(0.0, abs=0.01)
    assert 0.53 < curve["mean"][0] < 0.58 and curve["ess"][0] > 10_000
    # The shares of the sign counts at beta = 1 against exact draws (U-shaped: a third
    # of the mass has all 8 signs negative).
    x = np.asarray(build_target("clayton", dim=8).sample(seed=jax.random.PRNGKey(9),
                                                         sample_shape=(100_000,)))
    exact = np.bincount(np.sum(x[:, :8] < 0, axis=1), minlength=9) / len(x)
    np.testing.assert_allclose(curve["counts"][1], exact, atol=0.01)
    assert curve["counts"][1].sum() == pytest.approx(1.0) and exact[8] > 0.3
