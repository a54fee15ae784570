"""policy=ensemble (bootstrap ensemble of MLPs) and algo=ensemble_dagger (Menda et al. 2019's gate)."""
import io
import os

import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.spaces import Box
from omegaconf import OmegaConf

from dagger.config import ConfigError
from dagger.data import Dataset, Pairs
from dagger.policy import build_learner
from dagger.policy.ensemble import EnsembleLearner
from dagger.policy.mlp import MLPLearner
from dagger.supervisors import build_supervisor
from dagger.supervisors.ensemble_dagger import EnsembleDAgger
from tests.conftest import (QUICK, ROOT, TIMINGS, assert_learns, box, counting_forks,
                            interrupt_after_first_iteration_and_resume, learning_runs, policy_config)

SMALL = dict(hidden=[64, 64], activation="relu", loss="mse", lr=3e-3, batch_size=64, gradient_steps=300,
             epochs=0, lr_schedule="constant", warm_start=True)
BOUNDS = Box(np.array([-2.0, 0.0], dtype=np.float32), np.array([2.0, 4.0], dtype=np.float32))


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as run.py uses (threads=1): several threads on a shared machine are far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def curve_data(n: int = 400) -> Pairs:
    """a = 0.8 sin(2x) on x in [-1, 1]."""
    x = np.linspace(-1, 1, n, dtype=np.float32)[:, None]
    return Pairs(x, (0.8 * np.sin(2 * x)).astype(np.float32))


def ensemble(members: int = 5, bootstrap: bool = True, **overrides) -> EnsembleLearner:
    cfg = policy_config("ensemble", members=members, bootstrap=bootstrap, **{**SMALL, **overrides})
    return EnsembleLearner(cfg, box(1), box(1))


# ---- the learner ------------------------------------------------------------------------------------

def test_ensemble_fits_the_data_and_doubts_far_from_it():
    torch.manual_seed(0)
    learner, data = ensemble(), curve_data()
    before = float(np.mean((learner.act(data.obs) - data.acts) ** 2))
    fit = learner.fit(data, torch.Generator().manual_seed(0))
    after = float(np.mean((learner.act(data.obs) - data.acts) ** 2))
    assert after < before / 20 and after < 2e-3, (before, after)
    assert fit["train_loss"] < 0.01
    # It acts with the members' mean; its uncertainty is their std, averaged over action dimensions.
    members = np.stack([m.act(data.obs) for m in learner.members])
    np.testing.assert_allclose(learner.act(data.obs), members.mean(0), atol=1e-6)
    np.testing.assert_allclose(learner.uncertainty(data.obs), members.std(0).mean(-1), atol=1e-6)
    assert fit["ensemble_spread"] == pytest.approx(float(learner.uncertainty(data.obs).mean()), rel=1e-5)

    on_data = learner.uncertainty(data.obs).mean()
    far = learner.uncertainty(np.array([[-5.0], [-4.0], [4.0], [5.0]], dtype=np.float32))
    assert far.min() > 5 * on_data, (on_data, far)


def test_members_fit_different_bootstrap_resamples_reproducibly():
    data = curve_data(200)

    def fitted(bootstrap: bool) -> EnsembleLearner:
        torch.manual_seed(0)
        learner = ensemble(3, bootstrap, gradient_steps=50, warm_start=False)  # retrained: only the seeds differ
        learner.fit(data, torch.Generator().manual_seed(7))
        return learner

    a, b = fitted(True), fitted(True)
    np.testing.assert_array_equal(a.act(data.obs), b.act(data.obs))
    # The members standardise with their own resample's statistics: bootstrapped members see different states.
    means = [float(m.policy.obs_mean[0]) for m in a.members]
    assert len(set(means)) == 3
    assert all(float(m.policy.obs_mean[0]) == pytest.approx(float(data.obs.mean()), abs=1e-6)
               for m in fitted(False).members)


def test_state_dict_round_trips_exactly_through_a_weights_only_file():
    torch.manual_seed(0)
    data = curve_data(200)
    original = ensemble(3, gradient_steps=30)
    original.fit(data, torch.Generator().manual_seed(1))
    buffer = io.BytesIO()
    torch.save({"learner": original.state_dict(), "policy": original.policy_state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert sorted(saved["policy"])[:2] == ["0.act_half", "0.act_mid"] and "2.net.0.weight" in saved["policy"]

    torch.manual_seed(123)  # other initial weights, overwritten by the load
    restored = ensemble(3, gradient_steps=30)
    restored.load_state_dict(saved["learner"])
    np.testing.assert_array_equal(restored.act(data.obs), original.act(data.obs))
    # The optimisers came back too: one more fit gives the same numbers bit for bit.
    assert (original.fit(data, torch.Generator().manual_seed(2))
            == restored.fit(data, torch.Generator().manual_seed(2)))
    np.testing.assert_array_equal(restored.act(data.obs), original.act(data.obs))
    with pytest.raises(ValueError, match="3 members"):
        ensemble(2).load_state_dict(saved["learner"])


@pytest.mark.parametrize("options", [dict(bootstrap=False), dict(bootstrap=True, warm_start=False)],
                         ids=["warm-started on D", "refitted on resamples"])
def test_the_first_member_fitted_beside_the_others_ends_as_fitting_them_in_turn(options):
    """fit_beside (a run that may fork): a forked copy fits the first member while the process fits the others,
    and the ensemble's weights, optimiser states and metrics are those of fitting them one after another, fit
    after fit."""
    data, learners = curve_data(300), []
    with counting_forks() as forks:
        for beside in (False, True):
            torch.manual_seed(0)
            learner = ensemble(3, gradient_steps=40, **options)
            learner.fit_beside = beside
            metrics = [learner.fit(data, torch.Generator().manual_seed(fit)) for fit in (1, 2)]
            learners.append((learner, metrics))
    (in_turn, in_turn_metrics), (beside, beside_metrics) = learners
    assert len(forks) == 2  # the fits beside only
    assert beside_metrics == in_turn_metrics
    for a, b in zip(in_turn.members, beside.members):
        ta, tb = a.state_dict(), b.state_dict()
        for key in ("policy",):
            assert ta[key].keys() == tb[key].keys()
            for name in ta[key]:
                assert torch.equal(ta[key][name], tb[key][name]), name
        assert (torch.equal(ta["optimizer"]["state"][0]["exp_avg_sq"], tb["optimizer"]["state"][0]["exp_avg_sq"])
                and ta["fits"] == tb["fits"] == 2)
    np.testing.assert_array_equal(beside.act(data.obs), in_turn.act(data.obs))


def test_a_fit_that_stops_stops_the_copy_fitting_the_first_member(monkeypatch):
    """An error (or a signal) while the process fits the other members kills and reaps the copy."""
    learner = ensemble(3, gradient_steps=2000)
    learner.fit_beside = True

    def stops(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(learner.members[1], "fit", stops)
    with counting_forks() as forks, pytest.raises(KeyboardInterrupt):
        learner.fit(curve_data(300), torch.Generator().manual_seed(1))
    with pytest.raises(ChildProcessError):  # killed and reaped
        os.waitpid(forks[0], os.WNOHANG)


# ---- the gate -------------------------------------------------------------------------------------

class FakeEnsemble:
    """State i (obs = [[i]]) gets the novice action `actions[i]` and the spread `spreads[i]`."""

    def __init__(self, actions, spreads):
        self.actions, self.spreads = np.asarray(actions, dtype=np.float32), np.asarray(spreads)

    def act(self, obs):
        return self.actions[obs[:, 0].astype(int)]

    def uncertainty(self, obs):
        return self.spreads[obs[:, 0].astype(int)]

    def act_and_uncertainty(self, obs):
        return self.act(obs), self.uncertainty(obs)


def gate(**algo) -> EnsembleDAgger:
    # Bounds [-2, 2] x [0, 4]: mid (0, 2), half-range (2, 2), so 1 env unit is 0.5 scaled units.
    cfg = OmegaConf.create({"name": "ensemble_dagger", "_target_": "dagger.supervisors.ensemble_dagger.EnsembleDAgger",
                            **algo})
    return build_supervisor(cfg, schedule=None, action_space=BOUNDS, num_envs=8)


def test_the_expert_takes_over_exactly_where_the_spread_or_the_discrepancy_is_too_high():
    expert_actions = np.array([[0.0, 2.0]] * 8, dtype=np.float32)
    # Scaled discrepancy delta = RMS over the two dims of (novice - expert) / 2; chi = 0.25, tau = 0.5.
    novice = np.array([[0.2, 2.0],   # 0: delta 0.07, sigma 0.05            -> novice
                       [0.2, 2.0],   # 1: sigma 0.3 > chi                   -> expert
                       [2.0, 0.0],   # 2: delta 1.0 > tau                   -> expert
                       [2.0, 0.0],   # 3: both over                         -> expert
                       [1.0, 3.0],   # 4: delta = tau, sigma = chi exactly  -> novice (the bounds are inclusive)
                       [1.8, 2.0],   # 5: one dim off by 0.9: delta 0.64    -> expert
                       [1.2, 2.0],   # 6: one dim off by 0.6: delta 0.42 (the plain 2-norm would be 0.6) -> novice
                       [0.0, 2.0]],  # 7: novice equals expert, sigma 0.26  -> expert
                      dtype=np.float32)
    spreads = np.array([0.05, 0.3, 0.0, 0.9, 0.25, 0.0, 0.1, 0.26])
    learner = FakeEnsemble(novice, spreads)
    supervisor = gate(max_spread=0.25, max_discrepancy=0.5)
    supervisor.begin(1, learner, Dataset(1, 2))
    calls = []

    def expert(obs):
        calls.append(len(obs))
        return expert_actions[obs[:, 0].astype(int)]

    obs = np.arange(8, dtype=np.float32)[:, None]
    d = supervisor.decide(obs, learner, expert, np.random.default_rng(0))
    expected = np.array([False, True, True, True, False, True, False, True])
    np.testing.assert_array_equal(d.supervisor_acts, expected)
    np.testing.assert_array_equal(d.actions, np.where(expected[:, None], expert_actions, novice))
    # Every visited state is shown to the expert (the discrepancy needs it) and labelled with its action.
    assert d.labelled.all() and d.queries == 8 and calls == [8]
    np.testing.assert_array_equal(d.labels, expert_actions)
    m = supervisor.metrics()
    assert m["doubt_fraction"] == 3 / 8 and m["discrepancy_fraction"] == 3 / 8
    assert (m["max_spread"], m["max_discrepancy"]) == (0.25, 0.5)
    assert m["rollout_spread"] == pytest.approx(spreads.mean())

    supervisor.begin(2, learner, Dataset(1, 2))  # the counts are per iteration
    assert supervisor.metrics()["doubt_fraction"] == 0


def test_the_gate_refuses_a_learner_without_uncertainty_and_bad_thresholds():
    mlp = MLPLearner(policy_config("mlp", **{**SMALL, "hidden": [8]}), box(1), box(2))
    with pytest.raises(ConfigError, match="use policy=ensemble"):
        gate().begin(1, mlp, Dataset(1, 2))
    with pytest.raises(ConfigError, match="use policy=ensemble"):  # at build time when the caller passes them
        build_supervisor(OmegaConf.create({"name": "ensemble_dagger",
                                           "_target_": "dagger.supervisors.ensemble_dagger.EnsembleDAgger"}),
                         schedule=None, action_space=box(2), num_envs=1, learner=mlp, observation_space=box(1))
    with pytest.raises(ConfigError, match=r"algo.max_spread=-0.1 must be a finite number >= 0"):
        gate(max_spread=-0.1)
    with pytest.raises(ConfigError, match=r"algo.max_discrepancy='a'"):
        gate(max_discrepancy="a")
    with pytest.raises(ConfigError, match="algo.beta: unknown key"):
        gate(beta=0.5)


def test_build_learner_makes_the_ensemble_from_its_config():
    cfg = {**OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "policy" / "mlp.yaml")), "members": 3,
           "bootstrap": False, "_target_": "dagger.policy.ensemble.EnsembleLearner"}
    learner = build_learner(cfg, box(4), box(2), "cpu")
    assert isinstance(learner, EnsembleLearner) and len(learner.members) == 3 and not learner.bootstrap
    assert learner.members[0].cfg.gradient_steps == cfg["gradient_steps"]  # each member has the MLP's budget


# ---- end to end on the pendulum ---------------------------------------------------------------------

ARGS = [*QUICK, "algo=ensemble_dagger", "policy=ensemble", "policy.members=3", "schedule.iterations=4",
        "logger=none"]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[int, pd.DataFrame]:
    return learning_runs(tmp_path_factory.mktemp("ensemble"), *ARGS)


@pytest.fixture(scope="module")
def straight(seeds) -> pd.DataFrame:
    return seeds[0]


def test_every_visited_state_is_queried_and_labelled(straight):
    steps = [200, 400, 600, 800]
    assert straight.expert_labels.tolist() == steps == straight.expert_queries.tolist()
    assert straight.env_steps.tolist() == steps == straight.dataset_size.tolist()
    # Collector-level control matches the rule: the expert acts where doubt OR discrepancy is over its bound.
    over = straight[["doubt_fraction", "discrepancy_fraction"]]
    assert (straight.supervisor_control_fraction >= over.max(axis=1) - 1e-12).all()
    assert (straight.supervisor_control_fraction <= over.sum(axis=1) + 1e-12).all()
    first = straight.iloc[0]
    assert 0 < first.supervisor_control_fraction < 1, first.to_dict()  # the untrained ensemble is gated, not banned
    assert first.interventions >= 1 and straight.interventions.is_monotonic_increasing
    assert (straight.max_spread == 0.1).all() and (straight.ensemble_spread > 0).all()


@pytest.mark.learning
def test_ensemble_dagger_learns_the_cheap_task(seeds):
    assert_learns(seeds)


def test_an_interrupted_run_resumes_to_the_same_numbers(straight, tmp_path):
    again = interrupt_after_first_iteration_and_resume(tmp_path / "resumed", *ARGS, "schedule.iterations=3")
    pd.testing.assert_frame_equal(again, straight.drop(columns=TIMINGS).iloc[:3])


def test_act_and_uncertainty_is_act_and_uncertainty_from_one_pass():
    learner = ensemble(3, True, gradient_steps=30)
    data = Pairs(np.linspace(-1, 1, 64, dtype=np.float32)[:, None], np.linspace(-0.5, 0.5, 64, dtype=np.float32)[:, None])
    learner.fit(data, torch.Generator().manual_seed(0))
    obs = np.linspace(-3, 3, 50, dtype=np.float32)[:, None]
    acts, spread = learner.act_and_uncertainty(obs)
    np.testing.assert_array_equal(acts, learner.act(obs))
    np.testing.assert_array_equal(spread, learner.uncertainty(obs))
