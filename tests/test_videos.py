"""Rollout videos: the mp4 holds the frames it should, and a machine that cannot render still finishes the run."""
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from dagger.video import VideoRecorder
from tests.conftest import QUICK, run_cli

PENDULUM = OmegaConf.create({"name": "pendulum", "id": "InvertedPendulum-v5", "num_envs": 1,
                             "max_episode_steps": None, "kwargs": {}})


def push(obs: np.ndarray) -> np.ndarray:
    return np.full((len(obs), 1), 0.5, dtype=np.float32)  # a constant push: the pole falls after some steps


def test_the_mp4_holds_every_kth_frame_of_the_episode_at_the_asked_size(tmp_path):
    env = gym.make("InvertedPendulum-v5")
    obs, _ = env.reset(seed=7)
    steps, done = 0, False
    while not done:
        obs, _, terminated, truncated, _ = env.step(push(obs[None])[0])
        steps, done = steps + 1, terminated or truncated
    # the task runs at 25 fps; at video_fps=10 every 3rd step is rendered, plus the first and the last frame
    recorder = VideoRecorder(PENDULUM, tmp_path, seed=7, every=1, fps=10, size=(160, 128))
    path = recorder.record(push, "falls")
    recorder.close()
    assert 3 < steps < 200 and path == tmp_path / "videos" / "falls.mp4"
    reader = imageio.get_reader(path)
    frames = [frame for frame in reader]
    assert len(frames) == 1 + steps // 3 + (steps % 3 != 0)
    assert frames[0].shape == (128, 160, 3) and frames[0].std() > 0  # a picture, not a blank frame
    assert abs(reader.get_meta_data()["fps"] - 25 / 3) < 0.01  # plays in real time
    every_third = VideoRecorder(PENDULUM, tmp_path, seed=7, every=3, fps=10, size=(160, 128))
    assert [i for i in range(11) if every_third.due(i, 10)] == [0, 3, 6, 9, 10]


def test_a_failing_renderer_gives_one_line_and_a_finished_run(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(*QUICK, "schedule.iterations=2", "logger=none", "eval.video=true", "eval.video_every=1",
                     run_dir=run_dir, env={"MUJOCO_GL": "glfw", "DISPLAY": ""})  # GLFW needs a display
    warnings = [line for line in result.stdout.splitlines() if "video: rendering failed" in line]
    assert len(warnings) == 1 and "MUJOCO_GL=glfw" in warnings[0], result.stdout
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "finished" and "video_error" in status
    assert pd.read_csv(run_dir / "metrics.csv").iteration.tolist() == [1, 2]
    assert not list(run_dir.glob("videos/*.mp4"))


def test_a_mujoco_gl_that_mujoco_refuses_is_one_line_before_any_work(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(*QUICK, "logger=none", run_dir=run_dir, env={"MUJOCO_GL": "no-such-backend"}, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: MUJOCO_GL='no-such-backend'"), result.stderr
    assert not run_dir.exists()


def test_videos_are_on_by_default_for_a_single_run_and_off_in_a_sweep(tmp_path):
    """eval.video=null (the default): a single run records the expert and the learner; a sweep's jobs do not."""
    quick = [key for key in QUICK if not key.startswith("eval.video")]
    run_cli(*quick, "schedule.iterations=1", "logger=none", "eval.video_fps=5", run_dir=tmp_path / "single")
    assert sorted(p.name for p in (tmp_path / "single" / "videos").glob("*.mp4")) == ["expert.mp4",
                                                                                   "learner-iter001.mp4"]
    run_cli("-m", *quick, "schedule.iterations=1", "logger=none", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert (tmp_path / "sweep" / "0" / "metrics.csv").is_file() and not list((tmp_path / "sweep").rglob("*.mp4"))


def test_a_headless_backend_whose_library_is_missing_is_one_line_naming_it(monkeypatch):
    """MUJOCO_GL=osmesa without libOSMesa would fail at the first MuJoCo task deep in PyOpenGL's imports."""
    import ctypes.util

    from dagger.config import ConfigError
    from dagger.video import check_mujoco_gl

    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(ConfigError, match=r"^MUJOCO_GL='osmesa' \(environment variable\): its library libOSMesa is "
                                          r"not installed here \(Debian: apt install libosmesa6\)"):
        check_mujoco_gl()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so.1")
    check_mujoco_gl()  # installed: no complaint


def in_a_fresh_process(check, *args):
    """`check(*args)` in a new interpreter, one that has made no GL context (this one may have: a copy forked after
    that renders in the thread instead)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(check, *args).result()


def copy_and_thread_render_the_same_mp4(folder: Path) -> None:
    made = {}
    for where, beside in (("copy", True), ("thread", False)):
        recorder = VideoRecorder(PENDULUM, folder / where, seed=7, every=1, fps=10, size=(160, 128), beside=beside)
        made[where] = recorder.record_later(push, "falls").result()
        assert (recorder.env is None) == beside  # the copy rendered, not this process
        recorder.close()
    assert made["copy"] == folder / "copy" / "videos" / "falls.mp4"
    assert made["copy"].read_bytes() == made["thread"].read_bytes()
    after_gl = VideoRecorder(PENDULUM, folder / "after", seed=7, every=1, fps=10, size=(160, 128), beside=True)
    after_gl.record_later(push, "falls").result()
    assert after_gl.env is not None  # this process has a GL context now: no copy is forked to render
    after_gl.close()


def test_a_video_rendered_by_a_forked_copy_is_the_one_the_thread_renders(tmp_path):
    """beside=True (a run that may fork): the copy renders and encodes the same mp4, and the run's thread only
    waits for it."""
    in_a_fresh_process(copy_and_thread_render_the_same_mp4, tmp_path)


def slow(obs: np.ndarray) -> np.ndarray:  # an episode of seconds
    time.sleep(0.05)
    return push(obs)


def a_stopped_copy_leaves_nothing(folder: Path) -> None:
    recorder = VideoRecorder(PENDULUM, folder, seed=7, every=1, fps=10, size=(160, 128), beside=True)
    made = recorder.record_later(slow, "slow")
    pid = next(iter(recorder._copies)).pid
    started = time.perf_counter()
    recorder.close(cancel=True)
    assert time.perf_counter() - started < 5 and made.result() is None and recorder.error is None
    assert not list(folder.rglob("*.mp4"))
    with pytest.raises(ChildProcessError):  # killed and reaped
        os.waitpid(pid, os.WNOHANG)


def test_a_stopped_run_kills_the_copy_rendering_a_video_and_keeps_no_file_of_it(tmp_path):
    in_a_fresh_process(a_stopped_copy_leaves_nothing, tmp_path)
