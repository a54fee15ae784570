"""algo=hg_dagger: the learner drives, the expert takes over above `takeover` and hands back below
`handback`; exactly the states it drives are labelled, and every state is a query."""
import io
import re

import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium.spaces import Box

from dagger.config import ConfigError
from dagger.supervisors.hg_dagger import HGDAgger
from tests.conftest import QUICK, Acts, assert_learns, learning_runs, run_in_process, supervisor

SPACE = Box(-2.0, 2.0, (3,), dtype=np.float32)  # h = 2 in every dimension
HALF = 2.0


class Expert:
    """The expert's action is the first 3 observation entries; counts the states it is shown."""

    def __init__(self):
        self.shown = 0

    def __call__(self, obs):
        self.shown += len(obs)
        return obs[:, :3].astype(np.float32)


def learner(obs):
    """The expert's action plus a gap g = obs[:, 3] in scaled units in every dimension (so RMS gap = g)."""
    return (obs[:, :3] + HALF * obs[:, 3:4]).astype(np.float32)


def states(gaps, rng=np.random.default_rng(0)):
    """One state per env whose learner-expert gap is `gaps[i]` (the actions themselves are arbitrary)."""
    gaps = np.asarray(gaps, dtype=np.float32)  # multiples of 1/16: the gap is exact in float32
    actions = rng.integers(-8, 8, (len(gaps), 3)) / 8
    return np.concatenate([actions, gaps[:, None]], axis=1).astype(np.float32)


def step(sup, gaps, expert=None):
    obs = states(gaps)
    expert = expert or Expert()
    d = sup.decide(obs, Acts(learner), expert, np.random.default_rng(0))
    # Exactly the supervisor's states are labelled, with the expert's action; it executes there.
    assert d.labelled.tolist() == d.supervisor_acts.tolist()
    np.testing.assert_array_equal(d.labels[d.labelled], obs[d.labelled, :3])
    want = np.where(d.supervisor_acts[:, None], obs[:, :3], learner(obs))
    np.testing.assert_array_equal(d.actions, want)
    # The expert is shown every state to run the gate, labelled or not.
    assert d.queries == len(obs) == expert.shown
    return d.supervisor_acts.tolist()


def test_takeover_hysteresis_and_handback():
    sup = HGDAgger(SPACE, num_envs=4, takeover=0.25, handback=0.125)
    assert step(sup, [0.5, 0.1875, 0.0625, 0.375]) == [True, False, False, True]    # above takeover: taken over
    assert step(sup, [0.1875, 0.5, 0.1875, 0.0625]) == [True, True, False, False]   # in between: nothing changes
    assert step(sup, [0.1875, 0.125, 0.25, 0.125]) == [True, True, False, False]    # at a threshold: no change
    assert step(sup, [0.0625, 0.0625, 0.3125, 0.0]) == [False, False, True, False]  # below handback: handed back


def test_equal_thresholds_have_no_hysteresis():
    sup = HGDAgger(SPACE, num_envs=2, takeover=0.25, handback=0.25)
    assert step(sup, [0.3125, 0.1875]) == [True, False]
    assert step(sup, [0.1875, 0.3125]) == [False, True]


@pytest.mark.parametrize("scaled_gap, takes_over", [
    ((0.6, 0.0, 0.0), False),   # RMS 0.35 (the max norm, 0.6, would take over)
    ((0.35, 0.35, 0.35), False),  # RMS 0.35 (the Euclidean norm, 0.61, would take over)
    ((0.9, 0.6, 0.0), True),    # RMS 0.62
])
def test_the_gap_is_the_rms_over_action_dimensions_in_scaled_units(scaled_gap, takes_over):
    sup = HGDAgger(SPACE, num_envs=1, takeover=0.5, handback=0.5)
    expert = lambda obs: np.zeros((len(obs), 3), dtype=np.float32)  # noqa: E731
    off = lambda obs: HALF * np.array([scaled_gap], dtype=np.float32)  # noqa: E731
    assert sup.decide(np.zeros((1, 4)), Acts(off), expert, None).supervisor_acts.tolist() == [takes_over]


def test_control_resets_to_the_learner_when_an_episode_ends():
    sup = HGDAgger(SPACE, num_envs=3, takeover=0.25, handback=0.125)
    assert step(sup, [0.5, 0.5, 0.0]) == [True, True, False]
    sup.episode_ended(0)
    assert step(sup, [0.1875, 0.1875, 0.1875]) == [False, True, False]


def test_control_survives_a_checkpoint():
    sup = HGDAgger(SPACE, num_envs=3, takeover=0.25, handback=0.125)
    step(sup, [0.5, 0.0, 0.5])
    buffer = io.BytesIO()
    torch.save(sup.state_dict(), buffer)
    buffer.seek(0)
    resumed = HGDAgger(SPACE, num_envs=3, takeover=0.25, handback=0.125)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    gaps = [0.1875, 0.1875, 0.1875]
    assert step(resumed, gaps) == step(sup, gaps) == [True, False, True]


@pytest.mark.parametrize("kwargs, message", [
    ({"takeover": 0.1, "handback": 0.2}, "algo.handback=0.2 must be <= algo.takeover=0.1"),
    ({"takeover": -0.1, "handback": 0.0}, "algo.takeover=-0.1 is outside [0, 2]"),
    ({"takeover": 2.5, "handback": 0.0}, "algo.takeover=2.5 is outside [0, 2]"),
    ({"takeover": 0.3, "handback": True}, "algo.handback=true must be a finite number >= 0"),
])
def test_bad_thresholds_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        supervisor("hg_dagger", action_space=SPACE, num_envs=1, **kwargs)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[int, pd.DataFrame]:
    # A watchful supervisor (the defaults 0.3/0.1 let a learner that drifts slowly go unwatched on some seeds)
    return learning_runs(tmp_path_factory.mktemp("hg"), *QUICK, "algo=hg_dagger", "algo.takeover=0.15",
                         "algo.handback=0.05", "schedule.iterations=5", "logger=none")


@pytest.fixture(scope="module")
def pendulum_run(seeds) -> pd.DataFrame:
    return seeds[0]


def test_labels_are_the_supervisor_controlled_steps(pendulum_run):
    m = pendulum_run
    steps = 200  # schedule.rollout_steps in QUICK
    new_labels = np.diff(m.expert_labels, prepend=0)
    np.testing.assert_array_equal(new_labels, np.round(m.supervisor_control_fraction * steps).astype(int))
    assert (m.expert_queries == steps * m.iteration).all()  # the gate shows the expert every state
    assert (m.expert_queries >= m.expert_labels).all()
    assert m.expert_labels.iloc[-1] < m.expert_queries.iloc[-1]  # the learner drove some of the time
    assert (m.interventions == m.switches_to_expert.cumsum()).all()
    assert "action_gap_mean" in m.columns


@pytest.mark.learning
def test_hg_dagger_learns_the_cheap_task(seeds):
    assert_learns(seeds)


def test_the_control_and_failure_columns_are_what_the_transitions_record_shows(tmp_path):
    """Each iteration's switches, failures, finished returns and learner-only episodes, recounted from the visited
    steps in dataset.npz (one env: pendulum's 1,000-step limit is never reached in 200 steps, so an episode ends
    by falling or is cut by the budget)."""
    run_in_process(tmp_path / "run", *QUICK, "algo=hg_dagger", "algo.takeover=1.0", "algo.handback=0.5",
                   "schedule.iterations=3", "logger=none")  # a late takeover: the learner falls at times
    m = pd.read_csv(tmp_path / "run" / "metrics.csv").set_index("iteration")
    with np.load(tmp_path / "run" / "dataset.npz") as f:
        t = {name: f[f"transition_{name}"] for name in ("iteration", "learner", "terminated", "truncated", "reward")}
    assert (t["learner"]).any() and (~t["learner"]).any()  # both drove
    for i in m.index:
        rows = t["iteration"] == i
        learner, fell, reward = t["learner"][rows], t["terminated"][rows], t["reward"][rows]
        ends = np.flatnonzero(fell | t["truncated"][rows]) + 1
        episodes = [(learner[a:b], reward[a:b], fell[b - 1]) for a, b in zip(np.r_[0, ends[:-1]], ends)]
        switches = sum(int(np.sum(drove[1:] & ~drove[:-1])) for drove, _, _ in episodes)
        finished = [r.sum() for _, r, ended in episodes if ended]
        alone = [r.sum() for drove, r, ended in episodes if ended and drove.all()]
        assert m.switches_to_learner[i] == switches
        assert m.learner_failures[i] == int(np.sum(fell & learner))
        assert m.learner_only_episodes[i] == len(alone)
        np.testing.assert_allclose(m.rollout_return_mean[i], np.mean(finished) if finished else np.nan)
        np.testing.assert_allclose(m.learner_only_return_mean[i], np.mean(alone) if alone else np.nan)
    # the counts were put to the test: switches, falls while the learner drove, and learner-only episodes
    assert m.learner_failures.sum() > 0 and m.switches_to_learner.sum() > 0 and m.learner_only_episodes.sum() > 0


def test_a_gate_that_never_takes_over_labels_nothing_and_the_run_still_finishes(tmp_path):
    run_dir = tmp_path / "run"
    run_in_process(run_dir, *QUICK, "algo=hg_dagger", "algo.takeover=2", "algo.handback=0", "schedule.iterations=2",
                   "logger=none")
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics.expert_labels.tolist() == [0, 0] and metrics.expert_queries.tolist() == [200, 400]
    assert "train_loss" not in metrics  # nothing to fit: the learner stays as it was
