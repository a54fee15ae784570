"""The student's view (dagger.views): what it holds against the simulator, that the expert reads the full state
while the learner reads the view, that a run with a view resumes exactly, and the one-line refusals."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

from dagger.config import ConfigError
from dagger.envs import EnvConfig
from dagger.rollout import Collector
from dagger.supervisors.beta_mixture import BetaMixture
from dagger.schedules import BetaSchedule
from dagger.views import NoVelocity, Noisy, StudentView, build_view, position_columns, view_config
from tests.conftest import (QUICK, Acts, assert_same_outputs, compose, interrupt_after_first_iteration_and_resume,
                            metrics_without_timings, run_in_process)

HOPPER = EnvConfig(name="hopper", id="Hopper-v5", num_envs=2, max_episode_steps=None, kwargs={})


def obs_config(option: str, **keys):
    from omegaconf import OmegaConf

    return view_config({**OmegaConf.to_container(compose(f"obs={option}").obs, resolve=True), **keys})


def zero_expert(states: np.ndarray) -> np.ndarray:
    return np.zeros((len(states), 3))


@pytest.mark.parametrize("env_id, positions", [("Walker2d-v5", 8), ("Hopper-v5", 5), ("Ant-v5", 13),
                                               ("InvertedPendulum-v5", 2)])
def test_no_velocity_is_the_simulators_joint_positions_at_every_step(env_id, positions):
    env = gym.make(env_id)
    assert position_columns(env) == positions
    view = StudentView(NoVelocity.of(None, env, None), 1, False, env.action_space.shape[0], 0)
    sim = env.unwrapped
    skipped = sim.model.nq - positions  # the root coordinates the task leaves out
    obs, _ = env.reset(seed=3)
    view.restart(obs[None])
    for _ in range(20):
        np.testing.assert_allclose(view.current()[0], sim.data.qpos[skipped:])
        assert not np.allclose(obs[positions:positions + sim.model.nv], 0)  # velocities it drops are not zero
        action = env.action_space.sample()
        obs, *_ = env.step(action)
        view.advance(obs[None], action[None])


def test_a_task_whose_observation_is_not_positions_then_velocities_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^obs=no_velocity: Reacher-v5's observation does not start with"):
        position_columns(gym.make("Reacher-v5"))


def test_history_and_actions_stack_the_last_k_views_and_restart_at_an_episodes_start():
    env = gym.make("Hopper-v5")
    view = StudentView(NoVelocity.of(None, env, None), 3, True, 3, 0)
    first = np.arange(2 * 11, dtype=np.float64).reshape(2, 11)
    view.restart(first)
    o = view.current()
    assert o.shape == (2, 3 * 5 + 3)
    np.testing.assert_array_equal(o[:, :15], np.tile(first[:, :5], 3))  # the first view fills the stack
    np.testing.assert_array_equal(o[:, 15:], 0)                          # no previous action yet
    second, a = first + 100, np.ones((2, 3))
    view.advance(second, a)
    view.advance(second + 100, 2 * a)
    o = view.current()
    np.testing.assert_array_equal(o[:, :15], np.hstack([first[:, :5], second[:, :5], second[:, :5] + 100]))
    np.testing.assert_array_equal(o[:, 15:], 2 * a)
    view.restart(first - 7, np.array([False, True]))  # env 1 begins a new episode; env 0 goes on
    o2 = view.current()
    np.testing.assert_array_equal(o2[0], o[0])
    np.testing.assert_array_equal(o2[1], np.concatenate([np.tile(first[1, :5] - 7, 3), np.zeros(3)]))


def test_noisy_adds_noise_of_noise_std_times_each_dimensions_spread():
    env = gym.make("Hopper-v5")
    rng = np.random.default_rng(0)
    features = Noisy.of(obs_config("noisy", noise_std=0.5), env, lambda s: rng.uniform(-1, 1, (len(s), 3)))
    spread = features.scale / 0.5
    assert (spread > 0).all() and spread.shape == (11,)
    states = np.zeros((20_000, 11))
    noise = features(states, np.random.default_rng(1))
    np.testing.assert_allclose(noise.std(0), features.scale, rtol=0.05)
    np.testing.assert_allclose(noise.mean(0), 0, atol=0.05 * features.scale.max())


def test_the_expert_labels_the_full_state_while_the_learner_and_D_see_the_view():
    env = gym.make("Hopper-v5")
    view = build_view(obs_config("no_velocity", history=2), env, zero_expert, seed=0)
    collector = Collector(HOPPER, 2, seed=0, view=view)
    seen_by = {"expert": [], "learner": []}

    def expert(states):
        seen_by["expert"].append(states.copy())
        return np.tanh(states[:, :3])  # depends on the velocities too: a label the view alone cannot give

    def learner(obs):
        seen_by["learner"].append(obs.copy())
        return np.zeros((len(obs), 3))

    mixture = BetaMixture(BetaSchedule("constant", 0.5))  # both act: the learner is called at every step
    mixture.begin(1, None, None)
    rollout = collector.collect(mixture, expert, Acts(learner), 200, np.random.default_rng(0), 1)
    assert {s.shape[1] for s in seen_by["expert"]} == {11}    # the full observation
    assert {o.shape[1] for o in seen_by["learner"]} == {10}   # 2 x the 5 joint positions
    t = rollout.transitions
    assert rollout.obs.shape == (200, 10) and t["state"].shape == (200, 11)
    np.testing.assert_allclose(rollout.labels, np.tanh(t["state"][:, :3]), rtol=1e-5)  # labels read the state
    np.testing.assert_array_equal(t["obs"][:, 5:], t["state"][:, :5])  # the view's newest part is the state's
    collector.close()


def test_bad_views_are_refused_in_one_line_naming_the_key():
    for option, keys, line in [
        ("full", {"history": 0}, "obs.history=0 must be an integer >= 1"),
        ("noisy", {"noise_std": -0.1}, "obs.noise_std=-0.1 must be a finite number >= 0"),
        ("full", {"actions": "yes"}, "obs.actions='yes' must be true or false"),
        ("full", {"noise_std": 0.1}, "obs.noise_std: unknown key"),
    ]:
        with pytest.raises(ConfigError) as err:
            obs_config(option, **keys)
        assert str(err.value).startswith(line), str(err.value)


def test_a_run_with_a_noisy_history_view_resumes_to_the_same_numbers(tmp_path):
    # Episodes carry over across iterations here, so the view's stack, last actions and noise generator in the
    # checkpoint decide what the student sees after the resume.
    args = [*QUICK, "obs=noisy", "obs.history=3", "obs.actions=true", "schedule.collection=carry_over",
            "schedule.iterations=3", "logger=none"]
    run_in_process(tmp_path / "straight", *args)
    again = interrupt_after_first_iteration_and_resume(tmp_path / "resumed", *args)
    pd.testing.assert_frame_equal(again, metrics_without_timings(tmp_path / "straight"))
    assert_same_outputs(tmp_path / "resumed", tmp_path / "straight")
    state = np.load(tmp_path / "straight" / "dataset.npz")
    assert state["obs"].shape[1] == 3 * 4 + 1 and state["transition_state"].shape[1] == 4


def test_a_student_that_sees_positions_only_runs_every_algorithm_end_to_end(tmp_path):
    for algo in ("hg_dagger", "safe_dagger"):
        summary = run_in_process(tmp_path / algo, *QUICK, "obs=no_velocity", "obs.history=2", f"algo={algo}",
                                 "schedule.iterations=2", "logger=none")
        assert summary["expert_labels"] > 0
        assert np.load(tmp_path / algo / "dataset.npz")["obs"].shape[1] == 2 * 2


def test_the_gru_student_fits_what_only_the_sequence_of_views_tells():
    """Each D row is a window [p_{t-2}, p_{t-1}, p_t] of positions; the label is the velocity p_t - p_{t-1}, which no
    single view holds. The GRU fitted on the windows predicts it; the loss stays near the labels' variance if it
    reads the last view alone."""
    import torch

    from dagger.data import Pairs
    from dagger.policy import build_learner
    from tests.conftest import box, policy_config

    rng = np.random.default_rng(0)
    positions = rng.uniform(-0.5, 0.5, (4000, 3))
    velocity = np.clip(2 * (positions[:, 2:] - positions[:, 1:2]), -1, 1)
    data = Pairs(positions.astype(np.float32), velocity.astype(np.float32))
    cfg = policy_config("gru", steps=3, actions=False, gru_size=32, hidden=[32], gradient_steps=1500, epochs=0)
    learner = build_learner(cfg, box(3), box(1), "cpu")
    learner.fit(data, torch.Generator().manual_seed(0))
    error = np.mean((learner.act(positions) - velocity) ** 2)
    assert error < 0.05 * velocity.var(), (error, velocity.var())


def test_gru_students_are_the_members_of_the_ensemble_that_thriftydagger_gates_with(tmp_path):
    """policy=gru_ensemble: K GRU students act with their mean and doubt by their spread, which ThriftyDAgger
    reads on the student's view; the run resumes to the same files after an interruption."""
    import torch

    from dagger.policy import build_learner
    from dagger.policy.recurrent import GRULearner
    from tests.conftest import box, policy_config

    cfg = policy_config("gru_ensemble", steps=2, actions=False, gru_size=16, hidden=[16], members=3)
    learner = build_learner(cfg, box(4), box(1), "cpu")
    assert [type(m) for m in learner.members] == [GRULearner] * 3
    views = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    members = np.stack([m.act(views) for m in learner.members])
    np.testing.assert_allclose(learner.act(views), members.mean(0), atol=1e-6)
    assert learner.uncertainty(views).min() > 0  # members drawn apart disagree
    keys = [*QUICK, "obs=no_velocity", "obs.history=2", "algo=thrifty_dagger", "policy=gru_ensemble",
            "policy.members=3", "policy.gru_size=16", "policy.hidden=[32]", "policy.gradient_steps=100",
            "schedule.iterations=3", "algo.gate_minibatches=50", "logger=none"]  # the critic: any fit
    straight = run_in_process(tmp_path / "straight", *keys)
    assert straight["expert_labels"] > 0
    state = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    assert len(state["learner"]["members"]) == 3
    interrupt_after_first_iteration_and_resume(tmp_path / "interrupted", *keys)
    assert_same_outputs(tmp_path / "straight", tmp_path / "interrupted")


def test_a_gru_student_on_the_default_view_reads_a_window_of_eight_and_a_window_of_one_is_refused(tmp_path):
    from dagger.app import RunStopped, parse_run

    c = parse_run(compose("obs=no_velocity", "policy=gru"))
    assert (c.obs.history, c.policy.steps) == (8, 8)  # obs.history=1: the GRU's own window
    c = parse_run(compose("obs=no_velocity", "obs.history=4", "policy=gru"))
    assert (c.obs.history, c.policy.steps) == (4, 4)  # the view's history is the window
    with pytest.raises(RunStopped, match=r"^policy.steps=1 must be >= 2 \(the GRU reads a window of views as a "
                                         r"sequence\)$"):
        run_in_process(tmp_path / "run", *QUICK, "obs=no_velocity", "obs.history=2", "policy=gru", "policy.steps=1",
                       "logger=none")
    assert not (tmp_path / "run").exists()


@pytest.mark.learning
def test_a_gru_student_that_sees_positions_only_learns_the_cheap_task(tmp_path):
    from tests.conftest import assert_learns, learning_runs

    runs = learning_runs(tmp_path, *QUICK, "obs=no_velocity", "obs.history=4", "policy=gru", "policy.hidden=[64]",
                         "policy.gru_size=64", "policy.gradient_steps=150", "schedule.iterations=8", "schedule=dagger",
                         "logger=none")
    # DAgger's indicator: the student drives from iteration 2 (under the default linear schedule the expert still
    # drives most steps of these 8 iterations, and the student, fitted mostly on the expert's states, scored 0.22
    # to 0.47). The GRU student is not steady: with 150 minibatches per fit it ends at 1.0 on seeds 0-2 under
    # AVX-512, AVX2 and no vector kernels, but under no vector kernels seed 0 falls from 1.0 to 0.37 at iteration 6;
    # with 300 (half the speed) seed 0 fell to 0.07 at iteration 8 under AVX2 (back at 1.0 from iteration 9 on). Its
    # check is on the mean, with no per-seed floor.
    assert_learns(runs, floor=0.0)


def test_a_students_export_holds_its_view_as_observations_and_the_full_state_in_infos(tmp_path, monkeypatch):
    import minari

    from dagger.export import export

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run_in_process(tmp_path / "run", *QUICK, "obs=no_velocity", "obs.history=2", "schedule.iterations=1",
                   "logger=none")
    dataset_id, _, data = export(tmp_path / "run", "dagger-lab/test/student-v0")
    dataset = minari.load_dataset(dataset_id)
    assert dataset.observation_space.shape == (4,) and dataset.total_steps == 200
    for episode in dataset.iterate_episodes():
        states = episode.infos["state"]
        assert states.shape == (len(episode.actions), 4)
        np.testing.assert_array_equal(episode.observations[:-1, 2:], states[:, :2])  # the newest view: positions
        np.testing.assert_array_equal(episode.observations[-1, 2:], episode.infos["next_state"][-1, :2])


def test_a_student_starts_from_either_sides_demonstrations_and_a_mismatched_side_is_refused(tmp_path, monkeypatch):
    """D_0 for a student: full observations have its view built over them, episode by episode, as the collector
    builds it; a student's export with the same view is taken as it is; any other view is refused in one line."""
    from dagger.app import RunStopped
    from dagger.export import export

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    student = ["obs=no_velocity", "obs.history=2", "schedule.iterations=1", "logger=none"]
    run_in_process(tmp_path / "teacher", *QUICK, "schedule.iterations=1", "logger=none")
    run_in_process(tmp_path / "student", *QUICK, *student)
    full_id, _, full = export(tmp_path / "teacher", "dagger-lab/test/full-v0")
    student_id, _, seen = export(tmp_path / "student", "dagger-lab/test/student-v0")

    run_in_process(tmp_path / "from-full", *QUICK, *student, f"schedule.initial_demos={full_id}")
    with np.load(tmp_path / "from-full" / "dataset.npz") as d:
        demo = d["transition_env"] == -1
        obs, state = d["transition_obs"][demo], d["transition_state"][demo]
        starts = np.r_[True, (d["transition_terminated"] | d["transition_truncated"])[demo][:-1]]
    np.testing.assert_array_equal(state, full.transitions["state"])  # the demonstrations' states, in order
    np.testing.assert_array_equal(obs[:, 2:], state[:, :2])  # the newest view: the positions of s_t
    previous = np.where(starts[:, None], state[:, :2], np.roll(state[:, :2], 1, axis=0))
    np.testing.assert_array_equal(obs[:, :2], previous)  # the one before: s_{t-1}'s, or s_0's at a start

    run_in_process(tmp_path / "from-student", *QUICK, *student, f"schedule.initial_demos={student_id}")
    with np.load(tmp_path / "from-student" / "dataset.npz") as d:
        demo = d["transition_env"] == -1
        np.testing.assert_array_equal(d["transition_obs"][demo], seen.transitions["obs"])  # taken as it is
        np.testing.assert_array_equal(d["transition_state"][demo], seen.transitions["state"])

    for run_dir, keys, says in ((tmp_path / "full-from-student", [], "but this run's student sees the full state"),
                                (tmp_path / "other-view", ["obs=no_velocity", "obs.history=3"],
                                 "but this run's student sees a view 6 wide")):
        with pytest.raises(RunStopped) as stopped:
            run_in_process(run_dir, *QUICK, *keys, "schedule.iterations=1", "logger=none",
                           f"schedule.initial_demos={student_id}")
        assert str(stopped.value).startswith(f"schedule.initial_demos='{student_id}'") and says in str(stopped.value)
        assert "\n" not in str(stopped.value) and not run_dir.exists()


def test_the_students_window_sees_every_step_even_where_only_the_expert_acts():
    env = gym.make("Hopper-v5")
    view = build_view(obs_config("no_velocity", history=3), env, zero_expert, seed=0)
    collector = Collector(HOPPER, 2, seed=0, view=view)
    expert_alone = BetaMixture(BetaSchedule("constant", 1.0))  # the learner is never asked to act
    expert_alone.begin(1, None, None)
    t = collector.collect(expert_alone, lambda s: np.tanh(s[:, :3]), None, 300, np.random.default_rng(0), 1).transitions
    for e in (0, 1):
        rows = np.flatnonzero(t["env"] == e)
        obs, state = t["obs"][rows], t["state"][rows]
        starts = np.r_[0, np.flatnonzero(t["terminated"][rows] | t["truncated"][rows])[:-1] + 1]
        for k in range(len(rows)):
            since = k - starts[starts <= k].max()  # steps since this episode's start
            for lag in range(3):  # slot 2 - lag holds the positions of `lag` steps ago (the first state before that)
                np.testing.assert_array_equal(obs[k, (2 - lag) * 5:(3 - lag) * 5], state[k - min(lag, since), :5])
    collector.close()


def test_a_discrete_students_previous_choice_is_seen_one_hot():
    from dagger.views import Full

    env = gym.make("CartPole-v1")
    view = build_view(obs_config("full", actions=True), env, lambda obs: np.zeros((len(obs), 1)), seed=0)
    assert view.dim == 4 + 2
    states = np.zeros((3, 4))
    view.restart(states)
    np.testing.assert_array_equal(view.current()[:, 4:], 0)  # nothing chosen yet at an episode's start
    view.advance(states, np.array([[1.0], [0.0], [1.0]]))  # the choices as D stores them: their index
    np.testing.assert_array_equal(view.current()[:, 4:], [[0, 1], [1, 0], [0, 1]])
    assert isinstance(view.features, Full)
