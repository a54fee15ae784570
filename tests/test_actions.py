"""The action-space seam (dagger.actions): continuous and discrete actions behave as their rules say, and a
classifier learner learns discrete choices."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from dagger.actions import DiscreteActions, actions_of
from dagger.config import ConfigError
from dagger.data import Pairs
from dagger.supervisors.dart import DART
from tests.conftest import Acts, policy_config


def test_box_actions_keep_the_scaled_units_gap_and_bounds():
    box = actions_of(gym.spaces.Box(np.float32([-1, 0]), np.float32([1, 4])))
    a, b = np.float32([[1, 4], [0, 2]]), np.float32([[-1, 0], [0, 2]])
    np.testing.assert_allclose(box.features(a), [[1, 1], [0, 0]])
    np.testing.assert_allclose(box.from_features(box.features(b)), b)
    np.testing.assert_allclose(box.gap(a, b), [2.0, 0.0])  # RMS of (2/1, 4/2) and of nothing
    noisy = box.noisy(np.repeat(a, 500, 0), 0.5, np.random.default_rng(0))
    assert noisy.min(0).tolist() >= [-1, 0] and noisy.max(0).tolist() <= [1, 4]  # clipped to the box
    assert noisy[:, 1].min() < 4 and box.noisy(a, 0.0, np.random.default_rng(0)).tolist() == a.tolist()
    random = box.random(np.random.default_rng(0), 1000)
    assert random.shape == (1000, 2) and abs(random[:, 1].mean() - 2) < 0.2


def test_discrete_actions_are_stored_as_indices_and_compared_as_choices():
    choices = actions_of(gym.spaces.Discrete(3))
    assert (choices.width, choices.head, choices.discrete) == (1, 3, True)
    stored = choices.stored(np.array([2, 0, 1]))
    assert stored.dtype == np.float32 and stored.shape == (3, 1)
    assert choices.to_env(stored).tolist() == [2, 0, 1] and choices.to_env(stored).dtype == np.int64
    assert choices.gap(stored, np.float32([[2], [1], [1]])).tolist() == [0.0, 1.0, 0.0]
    np.testing.assert_array_equal(choices.features(stored), np.eye(3)[[2, 0, 1]])
    votes = np.float32([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2]])  # the members' vote shares: the majority acts
    assert choices.from_features(votes).tolist() == [[1.0], [0.0]]


@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0])
def test_discrete_noise_replaces_a_choice_with_a_uniform_one_with_probability_epsilon(eps):
    choices, rng = DiscreteActions(4), np.random.default_rng(0)
    noisy = choices.noisy(np.zeros((20_000, 1), np.float32), eps, rng)
    changed = float((noisy[:, 0] != 0).mean())  # a uniform replacement keeps the choice 1/4 of the time
    assert abs(changed - eps * 3 / 4) < 0.015
    assert set(np.unique(noisy)) <= {0.0, 1.0, 2.0, 3.0}


@pytest.mark.parametrize("space, says", [
    (gym.spaces.MultiDiscrete([2, 3]), "neither a flat Box nor Discrete"),
    (gym.spaces.Box(-np.inf, np.inf, (2,)), "is unbounded"),
    (gym.spaces.Box(-1, 1, (2, 2)), "neither a flat Box nor Discrete"),
])
def test_other_action_spaces_are_refused_in_one_line(space, says):
    with pytest.raises(ConfigError, match=says) as refused:
        actions_of(space, "env.id='X-v0'")
    assert str(refused.value).startswith("env.id='X-v0': ") and "\n" not in str(refused.value)


def test_dart_fits_epsilon_to_the_learners_error_rate_on_discrete_choices():
    """eps_hat = r n / (n - 1): a learner wrong on a quarter of D, over 3 choices, needs eps = 0.375."""
    space = gym.spaces.Discrete(3)
    labels = np.zeros((400, 1), np.float32)
    wrong = np.arange(400) % 4 == 0
    learner = Acts(lambda obs: np.where(wrong[: len(obs), None], 1.0, 0.0).astype(np.float32))
    dart = DART(space, noise_scale=1.0)
    dart.begin(1, learner, Pairs(np.zeros((400, 2), np.float32), labels))
    assert dart.metrics()["learner_error_std"] == pytest.approx(0.375)
    assert dart.metrics()["noise_std"] == pytest.approx(0.375)
    acts = dart.decide(np.zeros((10_000, 2)), learner, lambda s: np.zeros((len(s), 1), np.float32),
                       np.random.default_rng(0)).actions
    assert abs(float((acts != 0).mean()) - 0.375 * 2 / 3) < 0.015  # executed: eps-random; labels stay clean


def test_a_classifier_learns_discrete_choices_and_refuses_a_continuous_loss():
    from dagger.policy import build_learner

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(2000, 4)).astype(np.float32)
    choice = (obs[:, 0] > 0).astype(int) + 2 * (obs[:, 1] > 0.5)  # four regions, four choices
    space = gym.spaces.Box(-np.inf, np.inf, (4,))
    learner = build_learner(policy_config("classifier", hidden=[64, 64]), space, gym.spaces.Discrete(4), "cpu")
    learner.fit(Pairs(obs, choice[:, None].astype(np.float32)), torch.Generator().manual_seed(0))
    test = rng.normal(size=(1000, 4)).astype(np.float32)
    acted = learner.act(test)
    assert acted.shape == (1000, 1) and acted.dtype == np.float32
    truth = (test[:, 0] > 0).astype(int) + 2 * (test[:, 1] > 0.5)
    assert (acted[:, 0] == truth).mean() > 0.95
    untrained = build_learner(policy_config("classifier", hidden=[64, 64]), space, gym.spaces.Discrete(4), "cpu")
    assert (untrained.act(test)[:, 0] == truth).mean() < 0.6  # the control: fitting is what makes it right
    with pytest.raises(ConfigError, match="policy.loss=gaussian fits continuous actions"):
        build_learner(policy_config("gaussian"), space, gym.spaces.Discrete(4), "cpu")
    with pytest.raises(ConfigError, match="policy.loss=cross_entropy fits discrete choices"):
        build_learner(policy_config("classifier"), space, gym.spaces.Box(-1, 1, (2,)), "cpu")


def test_an_ensemble_of_classifiers_acts_with_the_majority_and_is_uncertain_where_members_disagree():
    from dagger.policy import build_learner

    space = gym.spaces.Box(-np.inf, np.inf, (2,))
    ensemble = build_learner(policy_config("ensemble", members=3), space, gym.spaces.Discrete(2), "cpu")
    votes = [np.float32([[0], [1]]), np.float32([[0], [0]]), np.float32([[0], [1]])]
    for member, vote in zip(ensemble.members, votes):
        member.act = lambda obs, vote=vote: vote
    acts, sigma = ensemble.act_and_uncertainty(np.zeros((2, 2), np.float32))
    assert acts.tolist() == [[0.0], [1.0]]
    assert sigma[0] == 0.0 and sigma[1] > 0.4  # all agree; two against one


@pytest.mark.parametrize("env_id, policy, says", [
    ("CartPole-v1", lambda obs: np.full(len(obs), 2), "it returned 2, outside the task's 2 choices"),
    ("CartPole-v1", lambda obs: np.full(len(obs), 0.5), "it returned 0.5, outside the task's 2 choices"),
    ("Pendulum-v1", lambda obs: np.full((len(obs), 1), 2.5), "it returned 2.5, outside the task's actions in Box"),
    ("Pendulum-v1", lambda obs: np.full((len(obs), 1), np.nan), "its actions must be finite numbers"),
])
def test_a_python_experts_actions_outside_the_space_are_one_line(env_id, policy, says):
    """The action seam's `valid` rule: a choice that is not a whole number in range, or a Box action beyond its
    bounds, is refused before any work; the edges themselves pass."""
    from dagger.expert.python_expert import check_outputs

    env = gym.make(env_id)
    with pytest.raises(ConfigError, match=f"^expert.target='x': {says}".replace("(", r"\(")):
        check_outputs("expert.target='x'", policy, env)
    edge = (lambda obs: np.ones(len(obs), int)) if env_id == "CartPole-v1" else (lambda obs: np.full((len(obs), 1), 2.0))
    check_outputs("expert.target='x'", edge, env)
    assert actions_of(env.action_space).valid(edge(np.zeros((3, 1)))).all()
