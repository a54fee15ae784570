"""The carried GRU (policy=gru_carried, dagger.policy.carried): a hidden state carried through each episode, stepped
on every observation whoever acts, fitted by truncated BPTT on D's episodes, replayed for batched passes over D,
kept in the checkpoint; and the one-line refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dagger.data import Dataset
from dagger.envs import EnvConfig
from dagger.policy import build_learner
from dagger.rollout import Collector
from dagger.schedules import BetaSchedule
from dagger.supervisors.beta_mixture import BetaMixture
from tests.conftest import QUICK, assert_same_outputs, box, interrupt_after_first_iteration_and_resume, \
    policy_config, run_in_process

PENDULUM = EnvConfig(name="pendulum", id="InvertedPendulum-v5", num_envs=2, max_episode_steps=None, kwargs={})
SMALL = dict(gru_size=16, hidden=[16])


def carried_gru(obs_dim: int, act_dim: int = 1, **keys):
    torch.manual_seed(0)  # its initial weights
    return build_learner(policy_config("gru_carried", **{**SMALL, **keys}), box(obs_dim), box(act_dim), "cpu")


def remembering_task(episodes: int = 200, length: int = 10, seed: int = 0) -> Dataset:
    """Episodes whose first observation shows a sign s = +-1 (then only noise); the label is 0 at the first step and
    0.8 s at every later one, which only a memory of the episode's start can tell."""
    rng = np.random.default_rng(seed)
    data = Dataset(2, 1)
    for _ in range(episodes):
        sign = rng.choice([-1.0, 1.0])
        obs = rng.normal(0, 0.05, (length, 2)).astype(np.float32)
        obs[0] = [sign, 1.0]
        label = np.full((length, 1), 0.8 * sign, np.float32)
        label[0] = 0.0
        ended = np.zeros(length, bool)
        ended[-1] = True
        data.add({"obs": obs, "acts": label, "reward": np.zeros(length), "next_obs": obs, "terminated": ended,
                  "truncated": np.zeros(length, bool), "learner": np.zeros(length, bool), "label": label,
                  "labelled": np.ones(length, bool), "env": np.zeros(length, np.int32)}, iteration=1)
    return data


def test_the_carried_gru_learns_what_only_the_episodes_start_showed():
    """Fitted by TBPTT on segments of 4 steps of 10-step episodes (so most segments start from the hidden state the
    earlier steps left), the GRU replays the held-out episodes' labels from its memory of their first step; the
    MLP, which sees one step, stays near the labels' variance."""
    from dagger.data import Pairs

    train, held_out = remembering_task(), remembering_task(seed=1)
    later = held_out.acts[1::10]  # the labels after each episode's first step
    learner = carried_gru(2, segment=4, batch_size=160, gradient_steps=600, epochs=0, lr=3e-3)
    learner.fit(train, torch.Generator().manual_seed(0))
    error = np.mean((learner.replay(held_out) - held_out.acts) ** 2)
    assert error < 0.05 * later.var(), (error, later.var())
    mlp = build_learner(policy_config("mlp", hidden=[16], gradient_steps=600, epochs=0), box(2), box(1), "cpu")
    mlp.fit(Pairs(train.obs, train.acts), torch.Generator().manual_seed(0))
    error = np.mean((mlp.act(held_out.obs) - held_out.acts) ** 2)
    assert error > 0.5 * later.var(), (error, later.var())


def collected(collection: str, learner) -> Dataset:
    """Two iterations of 300 steps under a beta = 0.5 mixture on two InvertedPendulum envs side by side, whose
    episodes end and restart within the rollouts (and carry over into the next iteration under carry_over)."""
    collector = Collector(PENDULUM, 2, seed=0, collection=collection)
    expert = lambda states: np.clip(states[:, 1:2] * 5, -3, 3).astype(np.float32)  # noqa: E731
    data = Dataset(4, 1)
    mixture = BetaMixture(BetaSchedule("constant", 0.5))
    for iteration in (1, 2):
        mixture.begin(iteration, learner, data)
        rollout = collector.collect(mixture, expert, learner, 300, np.random.default_rng(iteration), iteration)
        data.add(rollout.transitions, iteration)
    assert collector.hidden.shape[0] == 2 and "hidden" in collector.state_dict()
    return data


@pytest.mark.parametrize("collection", ["episodes", "carry_over"])
def test_the_learner_steps_on_every_step_whoever_acts_and_replay_gives_what_it_did(collection):
    """The learner's executed actions are those that replaying D's episodes from their starts gives: its hidden
    state saw the expert's steps too, and restarted at each episode's start."""
    learner = carried_gru(4)
    data = collected(collection, learner)
    record = data.transitions
    assert record["learner"].mean() == pytest.approx(0.5, abs=0.1)
    assert (record["terminated"] | record["truncated"]).sum() >= 4  # episodes restarted within the rollouts
    by_learner = record["learner"]
    np.testing.assert_allclose(learner.replay(data)[by_learner], record["acts"][by_learner], atol=1e-5)


def test_each_tbptt_segment_starts_from_the_hidden_state_its_episode_reached_there():
    """The fit's segments of 8 steps start from the state that stepping the GRU along the episode from its start
    reaches at the step before (h_0 where a segment starts its episode), on a record of two interleaved envs."""
    from dagger.policy.recurrent import segments

    learner = carried_gru(4)
    record = collected("carry_over", learner).transitions
    _, before = segments(record.episodes(), 8)
    obs = learner.policy.standardize(torch.as_tensor(record["obs"]))
    batches = learner.episode_batches(record.episodes(), record["obs"].shape[1])
    starts = learner.hidden_before(batches, obs, torch.as_tensor(before))
    after = {}  # the hidden state after each row's step
    for rows in record.episodes():
        hidden = learner.initial_state(1)
        for row in rows:
            _, hidden = learner.step(record["obs"][row:row + 1], hidden)
            after[row] = hidden[0]
    assert (before >= 0).sum() > 10 and (before == -1).sum() >= 4
    expected = torch.stack([after[row] if row >= 0 else torch.zeros(16) for row in before])
    torch.testing.assert_close(starts, expected, atol=1e-5, rtol=0)
def test_a_carried_gru_acts_only_along_episodes():
    learner = carried_gru(4)
    with pytest.raises(TypeError, match="acts along episodes"):
        learner.act(np.zeros((3, 4), np.float32))


def test_a_carried_gru_run_resumes_exactly_with_its_hidden_states_in_the_checkpoint(tmp_path):
    """Under carry_over the episodes (and the hidden states) run on across iterations; killed after iteration 1, the
    run resumes to the same metrics, dataset.npz and learner.pt as an uninterrupted one."""
    keys = [*QUICK, "obs=no_velocity", "policy=gru_carried", "policy.gru_size=16", "policy.hidden=[32]",
            "policy.gradient_steps=60", "schedule.collection=carry_over", "schedule.iterations=3", "logger=none"]
    run_in_process(tmp_path / "straight", *keys)
    state = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    assert state["collector"]["hidden"].shape == (4, 16)  # env.num_envs episodes carry over
    interrupt_after_first_iteration_and_resume(tmp_path / "interrupted", *keys)
    assert_same_outputs(tmp_path / "straight", tmp_path / "interrupted")


def test_an_ensemble_of_carried_grus_acts_with_its_members_mean_and_doubts_by_their_spread_at_each_step(tmp_path):
    """policy=gru_carried_ensemble: stepped together, the members' mean action and spread are those of each member
    stepped alone; its replay over D is the members' mean; EnsembleDAgger gates a run with the spread."""
    import pandas as pd

    torch.manual_seed(0)
    ensemble = build_learner(policy_config("gru_carried_ensemble", **SMALL), box(4), box(1), "cpu")
    obs = np.random.default_rng(0).normal(size=(6, 3, 4)).astype(np.float32)  # 6 steps of 3 envs
    hidden, alone = ensemble.initial_state(3), [m.initial_state(3) for m in ensemble.members]
    for t in range(6):
        actions, spread, hidden = ensemble.step_with_uncertainty(obs[t], hidden)
        steps = [m.step(obs[t], h) for m, h in zip(ensemble.members, alone)]
        alone = [h for _, h in steps]
        members = np.stack([a for a, _ in steps])
        np.testing.assert_allclose(actions, members.mean(0), atol=1e-6)
        np.testing.assert_allclose(spread, members.std(0).mean(-1), atol=1e-6)
    assert spread.min() > 0  # members drawn apart disagree
    data = collected("episodes", ensemble)
    np.testing.assert_allclose(ensemble.replay(data), np.mean([m.replay(data) for m in ensemble.members], 0),
                               atol=1e-6)
    run_in_process(tmp_path / "run", *QUICK, "obs=no_velocity", "algo=ensemble_dagger", "policy=gru_carried_ensemble",
                   "policy.gru_size=16", "policy.hidden=[32]", "policy.gradient_steps=60", "schedule.iterations=2",
                   "logger=none")
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert (metrics.ensemble_spread > 0).all() and "doubt_fraction" in metrics


def test_dart_fits_its_noise_to_the_carried_gru_replayed_over_d():
    """DART's Sigma_hat is the second moment of the learner's error over D, the learner's actions being what it does
    with D's episodes replayed from their starts."""
    from dagger.supervisors.dart import DART

    learner = carried_gru(4)
    data = collected("episodes", learner)
    dart = DART(box([-3.0], [3.0]), noise_scale=1.0)
    dart.begin(2, learner, data)
    error = (learner.replay(data).astype(np.float64) - data.acts) / 3.0
    assert error.std() > 0.05
    np.testing.assert_allclose(dart.error_cov, error.T @ error / len(data), rtol=1e-6)


@pytest.mark.parametrize("keys, says", [
    (["algo=ensemble_dagger"], "^algo=ensemble_dagger needs a learner with an uncertainty"),
    (["obs=pixels"], "^policy=gru_carried reads vector views, and obs=pixels gives camera frames: use policy=cnn_gru$"),
    (["policy.segment=0"], "^policy.segment=0 must be an integer >= 1"),
    (["policy=gru_carried_ensemble", "algo=thrifty_dagger"], "^algo=thrifty_dagger fits its risk critic and "
                                                             "thresholds on D's states one by one"),
    (["policy=gru_carried_ensemble", "policy.bootstrap=true"], r"^policy.bootstrap=true resamples D's rows"),
])
def test_what_a_carried_gru_cannot_serve_is_refused_in_one_line_before_any_work(tmp_path, keys, says):
    from dagger.app import RunStopped

    with pytest.raises(RunStopped, match=says):
        run_in_process(tmp_path / "run", *QUICK, "policy=gru_carried", *keys, "logger=none")
    assert not (tmp_path / "run" / "metrics.csv").exists()
