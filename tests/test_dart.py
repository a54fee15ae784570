"""algo=dart: the expert drives with Gaussian noise fitted to the learner's error on D, every state gets
the clean label; and, for the new algorithms, a killed run resumes to the same numbers."""

import numpy as np
import pytest
from gymnasium.spaces import Box

from dagger.config import ConfigError
from dagger.data import Dataset, Pairs
from dagger.supervisors.dart import DART
from tests.conftest import QUICK, assert_learns, learning_runs, supervisor

# h = (2, 2), centre (0, 1)
SPACE = Box(np.array([-2.0, -1.0], dtype=np.float32), np.array([2.0, 3.0], dtype=np.float32))
HALF = np.array([2.0, 2.0])
MID = np.array([0.0, 1.0])


def expert(obs):
    return obs[:, :2].astype(np.float32)  # the expert's action is written in the state


class OffsetLearner:
    """The expert's action plus, per state, sign * `errors` in scaled units: a known error second moment."""

    def __init__(self, errors, correlated=False, seed=0):
        self.errors, self.correlated, self.seed = np.asarray(errors), correlated, seed

    def signs(self, n):
        signs = np.random.default_rng(self.seed).choice([-1.0, 1.0], (n, 2))
        if self.correlated:
            signs[:, 1] = signs[:, 0]
        return signs

    def act(self, obs):
        return (obs[:, :2] + self.signs(len(obs)) * self.errors * HALF).astype(np.float32)


def dataset(n=4000, seed=1):
    rng = np.random.default_rng(seed)
    acts = (MID + rng.uniform(-0.5, 0.5, (n, 2))).astype(np.float32)
    return Pairs(np.concatenate([acts, rng.normal(size=(n, 1))], axis=1).astype(np.float32), acts)


def second_moment(learner, data):
    err = (learner.act(data.obs).astype(np.float64) - data.acts) / HALF
    return err.T @ err / len(data)


def test_noisy_actions_are_executed_and_clean_labels_stored():
    sup = DART(SPACE, initial_std=0.25)
    sup.begin(1, None, Dataset(3, 2))  # D empty: the initial noise
    obs = np.concatenate([np.tile(MID, (5000, 1)), np.zeros((5000, 1))], axis=1).astype(np.float32)
    d = sup.decide(obs, None, expert, np.random.default_rng(0))
    np.testing.assert_array_equal(d.labels, expert(obs))  # the clean expert action is the label
    assert d.labelled.all() and d.supervisor_acts.all() and d.queries == len(obs)
    noise = (d.actions - d.labels) / HALF
    assert (noise != 0).all(axis=0).all()
    np.testing.assert_allclose(noise.std(axis=0), [0.25, 0.25], rtol=0.05)
    np.testing.assert_allclose(noise.mean(axis=0), [0.0, 0.0], atol=0.02)
    # the same generator state draws the same noise (runs are reproducible)
    again = sup.decide(obs, None, expert, np.random.default_rng(0))
    np.testing.assert_array_equal(again.actions, d.actions)
    assert sup.metrics()["noise_std"] == pytest.approx(0.25)


def test_executed_actions_stay_within_the_bounds():
    sup = DART(SPACE, initial_std=1.0)
    sup.begin(1, None, Dataset(3, 2))
    obs = np.tile([[2.0, 3.0, 0.0]], (1000, 1)).astype(np.float32)  # the expert at the upper bound
    d = sup.decide(obs, None, expert, np.random.default_rng(0))
    assert (d.actions <= SPACE.high).all() and (d.actions >= SPACE.low).all()
    assert (d.actions < SPACE.high).any(axis=0).all()  # noise was added, then clipped
    np.testing.assert_array_equal(d.labels, obs[:, :2])


def test_no_noise_without_data_by_default():
    sup = DART(SPACE)
    sup.begin(1, OffsetLearner([0.3, 0.3]), Dataset(3, 2))
    obs = dataset(100).obs
    d = sup.decide(obs, None, expert, np.random.default_rng(0))
    np.testing.assert_array_equal(d.actions, d.labels)
    assert sup.metrics() == {"noise_std": 0.0, "learner_error_std": 0.0}


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_noise_is_the_learners_error_covariance_times_the_scale(scale):
    data = dataset()
    sup = DART(SPACE, noise_scale=scale, initial_std=0.7)
    learner = OffsetLearner([0.1, 0.2])
    sup.begin(2, learner, data)
    # diagonal: the error variance per dimension (0.1^2, 0.2^2), times the scale
    np.testing.assert_allclose(np.diag(sup.cov), scale * np.array([0.01, 0.04]), rtol=1e-4)
    np.testing.assert_allclose(sup.cov, scale * second_moment(learner, data), rtol=1e-4, atol=1e-8)
    assert sup.metrics()["noise_std"] == pytest.approx(np.sqrt(scale) * 0.15, rel=1e-4)
    assert sup.metrics()["learner_error_std"] == pytest.approx(0.15, rel=1e-4)


def test_bigger_learner_errors_give_bigger_noise():
    data = dataset()
    small, big = DART(SPACE), DART(SPACE)
    small.begin(2, OffsetLearner([0.05, 0.05]), data)
    big.begin(2, OffsetLearner([0.15, 0.2]), data)
    assert (np.diag(big.cov) > 4 * np.diag(small.cov)).all()
    obs = data.obs
    noise = {name: (sup.decide(obs, None, expert, np.random.default_rng(0)).actions - obs[:, :2]) / HALF
             for name, sup in (("small", small), ("big", big))}
    np.testing.assert_allclose(noise["small"].std(axis=0), [0.05, 0.05], rtol=0.05)
    np.testing.assert_allclose(noise["big"].std(axis=0), [0.15, 0.2], rtol=0.05)


def test_a_constant_bias_is_an_error_too():
    """The second moment, not the centred covariance: a learner that is always off by the same amount
    makes the expert demonstrate recoveries from that much error."""
    data = dataset()
    sup = DART(SPACE)
    biased = type("Biased", (), {"act": staticmethod(lambda obs: obs[:, :2] + 0.2 * HALF)})()
    sup.begin(2, biased, data)
    np.testing.assert_allclose(sup.cov, np.full((2, 2), 0.04), rtol=1e-4)


def test_full_covariance_is_drawn_with_its_correlation_and_diagonal_drops_it():
    data = dataset()
    learner = OffsetLearner([0.1, 0.2], correlated=True)  # the two errors always share a sign
    full, diagonal = DART(SPACE), DART(SPACE, diagonal=True)
    full.begin(2, learner, data)
    diagonal.begin(2, learner, data)
    np.testing.assert_allclose(full.cov, [[0.01, 0.02], [0.02, 0.04]], rtol=1e-4)
    np.testing.assert_allclose(diagonal.cov, [[0.01, 0.0], [0.0, 0.04]], rtol=1e-4)
    obs = np.concatenate([np.tile(MID, (20000, 1)), np.zeros((20000, 1))], axis=1).astype(np.float32)
    noise = (full.decide(obs, None, expert, np.random.default_rng(0)).actions - obs[:, :2]) / HALF
    np.testing.assert_allclose(np.cov(noise.T), full.cov, rtol=0.05, atol=5e-4)


def test_total_variance_rescales_to_the_papers_trace():
    data = dataset()
    sup = DART(SPACE, total_variance=0.5, noise_scale=2.0)
    sup.begin(2, OffsetLearner([0.1, 0.2]), data)
    assert np.trace(sup.cov) == pytest.approx(1.0, rel=1e-6)  # noise_scale * alpha / T
    np.testing.assert_allclose(np.diag(sup.cov), [0.2, 0.8], rtol=1e-4)  # the shape of the estimate kept


@pytest.mark.parametrize("kwargs, message", [
    ({"noise_scale": -1.0}, "algo.noise_scale=-1.0 must be a finite number >= 0"),
    ({"initial_std": "big"}, "algo.initial_std='big' must be a finite number >= 0"),
    ({"total_variance": 0}, "algo.total_variance=0 must be null"),
    ({"diagonal": 1}, "algo.diagonal=1 must be true or false"),
])
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        supervisor("dart", action_space=SPACE, **kwargs)


@pytest.mark.learning
def test_dart_learns_the_cheap_task(tmp_path):
    runs = learning_runs(tmp_path, *QUICK, "algo=dart", "schedule.iterations=4", "logger=none")
    assert_learns(runs)
    m = runs[0]
    assert m.expert_labels.tolist() == m.expert_queries.tolist() == [200, 400, 600, 800]  # every state labelled
    assert (m.supervisor_control_fraction == 1.0).all()
    assert m.noise_std.iloc[0] == 0.0 and (m.noise_std.iloc[1:] > 0).all()  # D empty, then the learner's error
