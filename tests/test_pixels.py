"""Pixel students (obs=pixels, policy=cnn): frames against the simulator, uint8 storage and the memory check, the
CNN fit, exact resume, the export, the videos and the one-line refusals."""
from __future__ import annotations

import os

import gymnasium as gym
import mujoco
import numpy as np
import pandas as pd
import pytest
import torch

from dagger.config import ConfigError
from dagger.data import Pairs
from dagger.loop import Budget
from dagger.policy import build_learner
from dagger.policy.cnn import Layout, random_shift
from dagger.video import without_shadows
from dagger.views import FrameSpace, Pixels, StudentView, Student
from tests.conftest import (QUICK, assert_same_outputs, interrupt_after_first_iteration_and_resume,
                            metrics_without_timings, policy_config, run_cli, run_in_process)

os.environ.setdefault("MUJOCO_GL", "egl")  # the env's own renderer, which these tests compare with, reads it
PIXELS = [*QUICK, "obs=pixels", "obs.size=[36,36]", "obs.history=2", "policy=cnn", "policy.gradient_steps=20",
          "policy.epochs=1", "logger=none"]


def env_frame(env: gym.Env, camera_id: int) -> np.ndarray:
    """The env's own rendering of its current state (positions recomputed), shadows and reflections off."""
    sim = env.unwrapped
    sim.mujoco_renderer.camera_id = camera_id
    mujoco.mj_forward(sim.model, sim.data)
    without_shadows(env)
    sim.mujoco_renderer.viewer.make_context_current()
    return env.render()


@pytest.mark.parametrize("env_id", ["InvertedPendulum-v5", "Hopper-v5"])
def test_each_frame_is_the_simulators_own_rendering_of_the_state_it_views(env_id):
    """The view renders from the observation alone; the env renders its simulator. They agree pixel for pixel at
    every step (on Hopper, with the root's x, which the observation leaves out, at its reset value: the tracking
    camera follows the body either way), and a different pose gives a different frame."""
    env = gym.make(env_id, render_mode="rgb_array", width=64, height=64)
    obs, _ = env.reset(seed=3)
    pixels = Pixels(env, (64, 64), proprio=False)
    sim = env.unwrapped
    qpos, qvel = sim.data.qpos.copy(), sim.data.qvel.copy()
    sim.set_state(sim.init_qpos, sim.init_qvel)  # the free camera's look-at point is set at its first frame
    env_frame(env, pixels.camera_id)
    sim.set_state(qpos, qvel)
    skipped = sim.model.nq - pixels.positions
    for _ in range(10):
        obs, *_ = env.step(env.action_space.sample())
        qpos = sim.data.qpos.copy()
        qpos[:skipped] = sim.init_qpos[:skipped]
        sim.set_state(qpos, sim.data.qvel.copy())
        ours = pixels.frames(obs[None])[0].reshape(3, 64, 64).transpose(1, 2, 0)
        np.testing.assert_array_equal(ours, env_frame(env, pixels.camera_id))
    moved = obs.copy()
    moved[1] += 0.3  # a joint angle
    assert (pixels.frames(moved[None])[0] != pixels.frames(obs[None])[0]).mean() > 0.01


def test_frames_are_stacked_as_uint8_and_the_space_says_where_they_are():
    env = gym.make("InvertedPendulum-v5")
    view = StudentView(Pixels(env, (40, 36), proprio=False), 2, False, 1, 0)
    states = np.array([[0.0, 0.0, 0, 0], [0.1, 0.2, 0, 0]])
    view.restart(states)
    first = view.current()
    assert first.dtype == np.uint8 and first.shape == (2, 2 * 36 * 40 * 3)
    np.testing.assert_array_equal(first[:, :36 * 40 * 3], first[:, 36 * 40 * 3:])  # the first view fills the stack
    view.advance(states[::-1], np.zeros((2, 1)))
    np.testing.assert_array_equal(view.current()[0, 36 * 40 * 3:], first[1, :36 * 40 * 3])
    space = view.space
    assert isinstance(space, FrameSpace) and space.dtype == np.uint8 and space.frame == (3, 36, 40)
    with_vector = StudentView(Pixels(env, (40, 36), proprio=True), 2, True, 1, 0)
    assert with_vector.dtype == np.float32 and with_vector.space.extra == 1 and with_vector.space.vector == 4


def test_the_cnn_layout_splits_rows_into_frames_and_numbers_and_back():
    env = gym.make("InvertedPendulum-v5")
    view = StudentView(Pixels(env, (40, 36), proprio=True), 3, True, 1, 0)
    layout = Layout(view.space)
    rows = torch.arange(2 * view.dim, dtype=torch.float32).reshape(2, view.dim)
    frames, numbers = layout.split(rows)
    assert frames.shape == (2, 9, 36, 40) and numbers.shape == (2, 3 * 4 + 1)
    assert torch.equal(layout.join(frames, numbers), rows)
    assert layout.pixel_columns().sum() == 3 * 36 * 40 * 3
    # a frame's red plane comes first, row after row; the second view's frame follows the first view's vector
    assert frames[1, 0, 0, 1] == rows[1, 1] and frames[1, 1, 0, 0] == rows[1, 36 * 40]
    assert frames[1, 3, 0, 0] == rows[1, 3 * 36 * 40 + 4] and numbers[1, 0] == rows[1, 3 * 36 * 40]


def test_a_random_shift_moves_all_of_a_samples_frames_by_one_offset_within_the_pad():
    frames = torch.arange(2 * 6 * 36 * 36, dtype=torch.float32).reshape(2, 6, 36, 36)
    shifted = random_shift(frames, 4, torch.Generator().manual_seed(0))
    again = random_shift(frames, 4, torch.Generator().manual_seed(0))
    assert torch.equal(shifted, again) and shifted.shape == frames.shape
    for k in range(2):
        centre = shifted[k, :, 4:32, 4:32]  # away from the replicated edges: the frame moved by one offset
        offsets = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                   if torch.equal(centre, frames[k, :, 4 + dy:32 + dy, 4 + dx:32 + dx])]
        assert len(offsets) == 1


def frames_and_angles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n frames (36x36) of pendulum poses drawn at random, and each pose's pole angle."""
    env = gym.make("InvertedPendulum-v5")
    pixels = Pixels(env, (36, 36), proprio=False)
    rng = np.random.default_rng(seed)
    states = np.c_[rng.uniform(-0.8, 0.8, n), rng.uniform(-0.25, 0.25, n), np.zeros((n, 2))]
    return pixels.frames(states), states[:, 1:2]


@pytest.mark.learning
def test_the_cnn_learns_what_only_the_frame_shows():
    """A CNN fitted to map frames to a label only the picture holds (the pole's angle, scaled to the action range)
    predicts it on poses it never saw far better than the labels' mean; the same fit on shuffled labels does not."""
    env = gym.make("InvertedPendulum-v5")
    space = StudentView(Pixels(env, (36, 36), proprio=False), 1, False, 1, 0).space
    frames, angles = frames_and_angles(600, seed=0)
    test_frames, test_angles = frames_and_angles(200, seed=1)
    labels = (angles * 10).astype(np.float32)  # within the action bounds [-3, 3]
    baseline = float(np.mean((test_angles * 10 - labels.mean()) ** 2))
    errors = {}
    for name, fit_labels in [("true", labels), ("shuffled", np.random.default_rng(0).permutation(labels))]:
        torch.manual_seed(0)
        cfg = policy_config("cnn", gradient_steps=400, epochs=0, batch_size=64)
        learner = build_learner(cfg, space, env.action_space, "cpu")
        learner.fit(Pairs(frames, fit_labels), torch.Generator().manual_seed(0))
        errors[name] = float(np.mean((learner.act(test_frames) - test_angles * 10) ** 2))
    assert errors["true"] < 0.2 * baseline, (errors, baseline)
    assert errors["shuffled"] > 0.7 * baseline, (errors, baseline)


def test_a_pixel_run_stores_uint8_frames_and_resumes_exactly_after_a_kill(tmp_path):
    args = [*PIXELS, "schedule.iterations=3"]
    run_in_process(tmp_path / "straight", *args)
    again = interrupt_after_first_iteration_and_resume(tmp_path / "resumed", *args)
    pd.testing.assert_frame_equal(again, metrics_without_timings(tmp_path / "straight"))
    assert_same_outputs(tmp_path / "resumed", tmp_path / "straight")
    with np.load(tmp_path / "straight" / "dataset.npz") as saved:
        assert saved["obs"].dtype == np.uint8 and saved["obs"].shape[1] == 2 * 36 * 36 * 3
        assert saved["transition_next_obs"].dtype == np.uint8 and saved["transition_state"].shape[1] == 4


def test_the_video_shows_the_scene_with_the_students_own_frame_beside_it():
    from dagger.envs import EnvConfig
    from dagger.video import VideoRecorder

    env_cfg = EnvConfig(name="pendulum", id="InvertedPendulum-v5", num_envs=1, max_episode_steps=20, kwargs={})
    env = gym.make("InvertedPendulum-v5")
    view = StudentView(Pixels(env, (40, 40), proprio=False), 1, False, 1, 0)
    recorder = VideoRecorder(env_cfg, ".", seed=0, every=1, fps=30, size=(160, 120))
    frames, steps, _ = recorder.render_episode(Student(view, lambda obs: np.zeros((len(obs), 1))))
    recorder.close()
    assert frames[0].shape == (120, 160 + 120, 3) and steps == 20
    seen = frames[-1][:120, 160:]
    np.testing.assert_array_equal(seen[:120:3, :120:3], view.stack[0, -1].reshape(3, 40, 40).transpose(1, 2, 0))


def test_the_export_writes_the_frames_as_uint8_observations_and_the_state_in_infos(tmp_path, monkeypatch):
    import minari

    from dagger.export import export

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run_in_process(tmp_path / "run", *PIXELS, "obs.history=1", "schedule.iterations=1")
    dataset_id, _, _ = export(tmp_path / "run", "dagger-lab/test/pixels-v0")
    dataset = minari.load_dataset(dataset_id)
    assert dataset.observation_space.dtype == np.uint8 and dataset.observation_space.shape == (36 * 36 * 3,)
    episode = next(dataset.iterate_episodes())
    env = gym.make("InvertedPendulum-v5")
    pixels = Pixels(env, (36, 36), proprio=False)
    np.testing.assert_array_equal(episode.observations[:-1], pixels.frames(episode.infos["state"]))


def test_the_memory_check_counts_frames_at_one_byte_each():
    """A budget of frames that fits at one byte per pixel (about a quarter of the limit) would not as float32."""
    from dagger.data import half_memory

    frame = 3 * 64 * 64
    budget = Budget(iterations=1, rollout_steps=half_memory() // (4 * 2 * frame))
    budget.check_memory(frame, 1, 1, 4, obs_bytes=1)
    with pytest.raises(ConfigError, match=r"^schedule.rollout_steps=\d+ x schedule.iterations=1 .* D would need"):
        budget.check_memory(frame, 1, 1, 4, obs_bytes=4)


@pytest.mark.parametrize("args, says", [
    (["env=cartpole", "expert=ppo", "obs=pixels", "policy=classifier"],
     "error: obs=pixels: CartPole-v1 is not a MuJoCo task"),
    (["env=pendulum", "expert=sac", "policy=cnn"], "error: policy=cnn reads camera frames"),
    (["env=pendulum", "expert=sac", "obs=pixels", "obs.size=[8,64]"],
     "error: obs.size=[8, 64] must be a list of 2 integers in [16, 512]"),
])
def test_a_pixel_view_or_cnn_that_cannot_apply_is_refused_in_one_line_before_any_work(tmp_path, args, says):
    result = run_cli(*args, "logger=none", run_dir=tmp_path / "run", check=False)
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].startswith(says), result.stderr
    assert not (tmp_path / "run").exists()


def test_without_a_working_renderer_the_pixel_view_is_refused_in_one_line_naming_mujoco_gl(tmp_path):
    result = run_cli("env=pendulum", "expert=sac", "obs=pixels", "policy=cnn", "logger=none",
                     run_dir=tmp_path / "run", check=False, env={"MUJOCO_GL": "glfw", "DISPLAY": ""})
    assert result.returncode != 0, result.stdout
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: obs=pixels: MuJoCo cannot render InvertedPendulum-v5 here with MUJOCO_GL=glfw"), line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("algo", ["dart", "safe_dagger", "thrifty_dagger"])
def test_the_algorithms_that_read_the_students_side_run_unchanged_with_a_pixel_student(tmp_path, algo):
    """The expert labels from the full state; the gates (SafeDAgger's classifier, ThriftyDAgger's risk critic and
    its ensemble's spread) and DART's noise fit read the student's frames. (Every algorithm ran so when this was
    written; these three are the ones with code of their own on the student's side.)"""
    learner = ["policy=cnn_ensemble", "policy.members=2"] if algo == "thrifty_dagger" else []
    gate = [] if algo == "dart" else ["algo.gate_minibatches=50"]  # what the gates read matters here, not their fit
    run_in_process(tmp_path / algo, *PIXELS, "obs.size=[16,16]", "obs.history=1", *learner, f"algo={algo}", *gate,
                   "schedule.iterations=2")
    metrics = pd.read_csv(tmp_path / algo / "metrics.csv")
    assert len(metrics) == 2 and metrics.normalized_return.notna().all()
    with np.load(tmp_path / algo / "dataset.npz") as saved:
        assert saved["obs"].dtype == np.uint8 and len(saved["obs"]) == metrics.dataset_size.iloc[-1]


@pytest.mark.learning
def test_the_recurrent_pixel_student_learns_what_only_the_sequence_of_frames_shows():
    """policy=cnn_gru reads two frames one after the other: fitted to how far the cart moved between them (which
    neither frame shows alone), it predicts it on unseen pairs far better than the labels' mean."""
    env = gym.make("InvertedPendulum-v5")
    view = StudentView(Pixels(env, (36, 36), proprio=False), 2, False, 1, 0)

    def pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        first = np.c_[rng.uniform(-0.5, 0.5, n), rng.uniform(-0.2, 0.2, n), np.zeros((n, 2))]
        second = first + np.c_[rng.uniform(-0.3, 0.3, n), np.zeros((n, 3))]
        rows = np.concatenate([view.features.frames(first), view.features.frames(second)], axis=1)
        return rows, (second[:, :1] - first[:, :1]) * 8

    rows, change = pairs(600, 0)
    test_rows, test_change = pairs(200, 1)
    torch.manual_seed(0)
    learner = build_learner(policy_config("cnn_gru", gradient_steps=400, epochs=0, batch_size=64), view.space,
                            env.action_space, "cpu")
    learner.fit(Pairs(rows, change.astype(np.float32)), torch.Generator().manual_seed(0))
    error = float(np.mean((learner.act(test_rows) - test_change) ** 2))
    assert error < 0.1 * float(np.var(test_change)), (error, float(np.var(test_change)))
