"""SafeDAgger, LazyDAgger and ThriftyDAgger: each gate fires exactly where its rule says, hysteresis holds,
the thresholds are the stated quantiles, runs resume exactly, and each learns the cheap task."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.spaces import Box

from dagger.data import Dataset
from dagger.policy.ensemble import EnsembleLearner
from dagger.supervisors.lazy_dagger import LazyDAgger
from dagger.supervisors.safe_dagger import SafeDAgger
from dagger.supervisors.thrifty_dagger import ThriftyDAgger, calibrate
from tests.conftest import (QUICK, Acts, policy_config, assert_learns, interrupt_after_first_iteration_and_resume, learning_runs,
                            metrics_without_timings)

OBS = Box(-10 * np.ones(2, dtype=np.float32), 10 * np.ones(2, dtype=np.float32))
ACT = Box(-np.ones(1, dtype=np.float32), np.ones(1, dtype=np.float32))  # h = 1: gaps are plain differences


class Calls:
    """A policy that answers `value(obs)` and remembers every state it was shown."""

    def __init__(self, value):
        self.value, self.seen = value, []

    def __call__(self, obs):
        self.seen.append(np.array(obs))
        return self.value(obs)


def taught(sup: SafeDAgger, n: int = 2000) -> SafeDAgger:
    """Records where the learner was off (gap 0.5) iff obs[0] > 0, else on (gap 0); the classifier fitted on them."""
    obs = np.random.default_rng(0).uniform(-3, 3, (n, 2)).astype(np.float32)
    sup.records.add(obs=obs, gap=np.where(obs[:, 0] > 0, 0.5, 0.0))
    sup.begin(2, None, None)
    return sup


def test_safe_dagger_queries_and_labels_exactly_where_the_classifier_says_unsafe():
    sup = taught(SafeDAgger(ACT, OBS, seed=0, tau=0.1))
    probe = np.random.default_rng(1).uniform(-3, 3, (400, 2)).astype(np.float32)
    predicted = sup.classifier.unsafe_probability(probe) > 0.5
    assert np.mean(predicted == (probe[:, 0] > 0)) > 0.95  # it learned the rule it was shown
    expert, learner = Calls(lambda o: np.full((len(o), 1), 0.7)), Calls(lambda o: np.full((len(o), 1), -0.2))
    d = sup.decide(probe, Acts(learner), expert, np.random.default_rng(0))
    np.testing.assert_array_equal(d.labelled, predicted)
    np.testing.assert_array_equal(d.supervisor_acts, predicted)
    assert d.queries == predicted.sum() and len(expert.seen) == 1
    np.testing.assert_array_equal(expert.seen[0], probe[predicted])  # the expert saw the flagged states, no others
    np.testing.assert_array_equal(d.actions[:, 0], np.where(predicted, 0.7, -0.2))
    np.testing.assert_array_equal(d.labels[predicted, 0], 0.7)


def test_safe_dagger_records_the_acting_learners_gap_at_every_label():
    sup = SafeDAgger(ACT, OBS, seed=0, tau=0.1)
    sup.begin(1, None, None)  # nothing recorded: no classifier, the expert drives and labels everything
    obs = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    d = sup.decide(obs, Acts(lambda o: np.array([[0.25], [0.0]])), lambda o: np.array([[0.0], [0.0]]), None)
    assert d.labelled.all() and d.queries == 2
    np.testing.assert_allclose(sup.records["gap"], [0.25, 0.0])
    saved = sup.state_dict()
    resumed = SafeDAgger(ACT, OBS, seed=0, tau=0.1)
    resumed.load_state_dict(saved)
    np.testing.assert_array_equal(resumed.records["obs"], sup.records["obs"])


def test_lazy_dagger_hysteresis_holds_control_between_tau_auto_and_tau_sup():
    sup = taught(LazyDAgger(ACT, OBS, num_envs=1, seed=0, tau_sup=0.1, tau_auto=0.05, noise_std=0.0))
    safe, unsafe = [-2.0, 0.0], [2.0, 0.0]  # what the classifier says (see `taught`)
    # (state, expert's action); the learner always acts 0, so the gap is |expert's action|
    steps = [(safe, 0.5),     # the classifier says safe: the learner keeps driving, the expert is not asked
             (unsafe, 0.5),   # predicted unsafe: the supervisor takes over (this step is its own, labelled)
             (safe, 0.08),    # gap between tau_auto and tau_sup: the supervisor keeps control
             (safe, 0.03),    # gap below tau_auto: it hands back (asked for the test, not labelled)
             (safe, 0.5)]     # the learner drives again; safe per the classifier whatever the gap
    control, queries, labelled = [], [], []
    for state, action in steps:
        d = sup.decide(np.array([state], dtype=np.float32), Acts(lambda o: np.zeros((len(o), 1))),
                       lambda o, a=action: np.full((len(o), 1), a), np.random.default_rng(0))
        control.append(bool(d.supervisor_acts[0]))
        queries.append(d.queries)
        labelled.append(bool(d.labelled[0]))
    assert control == [False, True, True, False, False]
    assert queries == [0, 1, 1, 1, 0]
    assert labelled == control


def test_lazy_dagger_noise_moves_the_executed_action_never_the_label():
    n = 4096
    sup = LazyDAgger(ACT, OBS, num_envs=n, seed=0, tau_sup=0.1, tau_auto=0.05, noise_std=0.2)
    sup.begin(1, None, None)  # no classifier yet: the supervisor drives every env
    obs = np.zeros((n, 2), dtype=np.float32)
    d = sup.decide(obs, Acts(lambda o: np.zeros((len(o), 1))), lambda o: np.full((len(o), 1), 0.3),
                   np.random.default_rng(0))
    assert d.supervisor_acts.all()
    np.testing.assert_array_equal(d.labels, 0.3)
    noise = d.actions[:, 0] - 0.3
    # N(0, 0.2^2) noise on n draws, within 3 standard errors: of the std 0.2 / sqrt(2n), of the mean 0.2 / sqrt(n)
    assert abs(noise.std() - 0.2) < 3 * 0.2 / np.sqrt(2 * n) and abs(noise.mean()) < 3 * 0.2 / np.sqrt(n)


def ensemble_with_transitions(n_learner: int = 400):
    rng = np.random.default_rng(0)
    learner = EnsembleLearner(policy_config("ensemble", members=3, bootstrap=True, hidden=[16], activation="relu",
                                            loss="mse", lr=3e-3, batch_size=64, gradient_steps=100, epochs=0,
                                            lr_schedule="constant", warm_start=True), OBS, ACT)
    data = Dataset(2, 1)
    obs = rng.normal(size=(300, 2)).astype(np.float32)
    n = len(obs)  # D: 300 states the supervisor drove through and the expert labelled
    data.add({"obs": obs, "acts": np.tanh(obs[:, :1]), "reward": np.ones(n), "next_obs": obs,
              "terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool), "learner": np.zeros(n, bool),
              "label": np.tanh(obs[:, :1]), "labelled": np.ones(n, bool), "env": np.zeros(n, np.int32)}, 1)
    learner.fit(data, torch.Generator().manual_seed(0))
    visited = rng.normal(scale=2.0, size=(n_learner + 100, 2)).astype(np.float32)
    n = len(visited)  # then steps nobody labelled
    data.add({"obs": visited, "acts": np.zeros((n, 1), np.float32), "reward": np.ones(n), "next_obs": visited,
              "terminated": visited[:, 0] > 2.5, "truncated": np.zeros(n, bool),
              "learner": np.arange(n) >= 100,  # the first 100 steps: the supervisor drove
              "label": np.full((n, 1), np.nan, np.float32), "labelled": np.zeros(n, bool),
              "env": np.zeros(n, np.int32)}, 1)
    return learner, data


def test_thrifty_thresholds_are_the_stated_quantiles_of_held_out_learner_states():
    learner, data = ensemble_with_transitions()
    sup = ThriftyDAgger(ACT, OBS, num_envs=4, seed=0, target_rate=0.05, gate_minibatches=100)  # the critic: any fit
    sup.begin(2, learner, data)
    held_out = data.transitions["obs"][data.transitions["learner"]]  # the learner's own, never-labelled states
    spread = learner.uncertainty(held_out)
    risk = sup.risk(held_out, learner.act(held_out))
    t = sup.thresholds
    assert t["held_out_states"] == 400 and t["quantile"] >= 0.95
    assert t["novelty_threshold"] == pytest.approx(np.quantile(spread, t["quantile"]))
    assert t["risk_threshold"] == pytest.approx(np.quantile(risk, t["quantile"]))
    flagged = np.mean((spread > t["novelty_threshold"]) | (risk > t["risk_threshold"]))
    assert 0.05 - 2 / 400 <= flagged <= 0.05  # the union fires on the target rate of held-out states


def test_calibrate_with_one_gate_is_the_one_minus_alpha_quantile():
    novelty = np.random.default_rng(0).exponential(size=1000)
    q, delta, beta = calibrate(novelty, None, 0.1)
    assert q == pytest.approx(0.9) and delta == pytest.approx(np.quantile(novelty, 0.9)) and beta == np.inf
    q2, *_ = calibrate(novelty, novelty[::-1].copy(), 0.1)  # two independent-ish gates share alpha
    assert 0.9 < q2 < 1.0


def test_thrifty_takes_over_exactly_at_novel_or_risky_states_and_hands_back_by_its_rule():
    learner, data = ensemble_with_transitions()
    sup = ThriftyDAgger(ACT, OBS, num_envs=300, seed=0, target_rate=0.1)
    sup.begin(2, learner, data)
    obs = np.random.default_rng(5).normal(scale=2.0, size=(300, 2)).astype(np.float32)
    novice = learner.act(obs)
    rule = (learner.uncertainty(obs) > sup.thresholds["novelty_threshold"]) | \
           (sup.risk(obs, novice) > sup.thresholds["risk_threshold"])
    expert = Calls(lambda o: learner.act(o) + 1.0)  # never agrees with the learner
    d = sup.decide(obs, learner, expert, np.random.default_rng(0))
    np.testing.assert_array_equal(d.supervisor_acts, rule)
    assert 0 < rule.sum() < len(obs) and d.queries == rule.sum()
    np.testing.assert_array_equal(expert.seen[0], obs[rule])
    m = sup.metrics()
    assert m["intervention_rate"] == pytest.approx(rule.mean()) and m["novelty_switches"] + m["risk_switches"] >= rule.sum()
    # next step, same states: where it took over the supervisor keeps control (the learner still disagrees)
    d2 = sup.decide(obs, learner, expert, np.random.default_rng(0))
    assert d2.supervisor_acts[rule].all()
    agreeing = sup.decide(obs, learner, lambda o: learner.act(o), np.random.default_rng(0))
    risky_now = sup.risk(obs, novice) >= sup.thresholds["risk_threshold"]
    np.testing.assert_array_equal(agreeing.supervisor_acts[rule], risky_now[rule])  # hands back unless still risky


# The gates' fits are a fifth of the default's (their rules are checked exactly above; these runs check the loop)
GATES = {"safe_dagger": ["algo.gate_minibatches=100"], "lazy_dagger": ["algo.gate_minibatches=100"],
         "thrifty_dagger": ["policy=ensemble", "policy.members=3", "algo.gate_minibatches=100"]}


@pytest.fixture(scope="module", params=list(GATES))
def gated_run(request, tmp_path_factory):
    algo = request.param
    args = [*QUICK, f"algo={algo}", *GATES[algo], "schedule.iterations=5", "logger=none"]
    folder = tmp_path_factory.mktemp(algo)
    return algo, args, folder / "seed0", learning_runs(folder, *args)


@pytest.mark.learning
def test_each_gate_learns_the_cheap_task_with_fewer_queries_than_steps(gated_run):
    algo, _, _, seeds = gated_run
    assert_learns(seeds)
    for m in seeds.values():
        final = m.iloc[-1]
        assert final.expert_queries < final.env_steps and (m.expert_labels <= m.expert_queries).all()
        assert {"online_burden", "learner_only_return_mean"} <= set(m.columns)


def test_each_gate_resumes_to_the_same_numbers(gated_run, tmp_path):
    algo, args, run_dir, _ = gated_run
    again = interrupt_after_first_iteration_and_resume(tmp_path / "resumed", *args, "schedule.iterations=3")
    pd.testing.assert_frame_equal(again, metrics_without_timings(run_dir).iloc[:3])


def test_thrifty_steers_its_calibration_level_by_the_realised_rate():
    learner, data = ensemble_with_transitions()
    sup = ThriftyDAgger(ACT, OBS, num_envs=4, seed=0, target_rate=0.05, gate_minibatches=50)  # the critic: any fit
    sup.begin(2, learner, data)
    assert sup.on_learner_states and sup.calibration_rate == 0.05
    sup.takeovers, sup.learner_steps = 40, 200  # realised 0.2: four times the target
    sup.begin(3, learner, data)
    assert sup.calibration_rate == pytest.approx(0.0125)
    assert sup.thresholds["quantile"] >= 1 - 0.0125
    sup.takeovers, sup.learner_steps = 0, 200   # no intervention at all: aim higher
    sup.begin(4, learner, data)
    assert sup.calibration_rate == pytest.approx(0.025)
