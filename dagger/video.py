"""Rollout videos: the learner on the first evaluation episode (the same seed) every `eval.video_every`
iterations and at the last, and the expert once per run, as mp4 files in the run's `videos/` folder,
encoded by imageio's ffmpeg plugin (imageio-ffmpeg ships its own ffmpeg binary) with x264's veryfast preset.

Rendering is headless: MUJOCO_GL defaults to `egl` (Mesa renders on the CPU where there is no GPU), and a
MUJOCO_GL already set in the environment (osmesa, glfw) is used instead. Videos play in real time at about
`eval.video_fps`: every ceil(task fps / video_fps)-th step is rendered, with shadows, reflections and
multisampling off (they cost most of a CPU frame: a 320x240 Walker2d frame takes about 2.5x less CPU without 4x
multisampling, and looks the same but for the horizon's edge). A machine where rendering fails gets one warning line
and the run goes on without videos.

Videos are rendered off the loop's critical path, while the loop goes on: where the run may fork (`beside`, as for
the evaluations: `dagger.beside`), each video is rendered and encoded by a forked copy of the process, which has the
policy as it was and an interpreter of its own, and one thread of the run only waits for the copies and logs their
videos; elsewhere that thread renders a frozen copy of the policy itself, sharing Python's lock with the loop. Run
in that thread, the videos of `make run` lengthened its loop by about 4 s and its end by 2 s (the episode's Python
steps and actions wait on the loop's, and the loop's on theirs).
"""
from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dagger.actions import actions_of
from dagger.beside import Beside, FailedBeside
from dagger.config import ConfigError, describe
from dagger.files import atomic_write, temporary_sibling
from dagger.schedules import every_or_last

if TYPE_CHECKING:  # run.py imports this module (check_mujoco_gl) before its own checks: nothing heavy here
    from dagger.envs import EnvConfig
    from dagger.supervisors import Act

log = logging.getLogger(__name__)

# Whether this process has made a GL context (a video or a pixel view rendered here): a copy forked after that
# inherits GL's locks in whatever state the renderer's threads held them, and may wait on them for ever, so its
# videos are rendered in the thread from then on.
gl_context_made = False


def making_gl_context() -> None:
    global gl_context_made
    gl_context_made = True


class VideoRecorder:
    """Renders one deterministic episode of a policy to `<run dir>/videos/<name>.mp4`."""

    def __init__(self, env_cfg: EnvConfig, run_dir: Path, seed: int, every: int, fps: int,
                 size: tuple[int, int], enabled: bool = True, beside: bool = False):
        self.env_cfg, self.folder, self.seed, self.every = env_cfg, Path(run_dir) / "videos", seed, every
        self.fps, self.size, self.enabled = fps, (int(size[0]), int(size[1])), enabled
        self.beside = beside  # render in forked copies of the process: the caller knows whether that is safe
        self.error: str | None = None
        self.env = None
        self._worker: ThreadPoolExecutor | None = None  # the one thread that renders (it owns the GL context) or waits
        self._cancel = threading.Event()
        self._copies: set[Beside] = set()  # the forked copies still rendering

    def due(self, iteration: int, last: int) -> bool:
        return self.enabled and every_or_last(iteration, self.every, last)

    def record_later(self, act: Act, name: str) -> Future:
        """The video of `act` as it is now, made in the background: the future's result is the video's path, or
        None. Beside: `act` is rendered by a forked copy of the process, which the background thread waits for;
        else that thread renders a frozen copy of `act` (a bound method copies its policy)."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="video")
        if not self.beside or gl_context_made:
            return self._worker.submit(self.record, copy.deepcopy(act), name)
        started = self.started(name)
        made = Beside(lambda: np.array(self.write(act, name)), what=f"the video {name}")
        self._copies.add(made)
        return self._worker.submit(self.wait_for, made, name, started)

    def record(self, act: Act, name: str) -> Path | None:
        """The episode's video, or None when videos are off or rendering failed (said once, in one line)."""
        if not self.enabled:
            return None
        started = self.started(name)
        try:
            steps, frames = self.write(act, name)
        except Cancelled:
            return None
        except Exception as err:  # noqa: BLE001 - no renderer, no codec: the run goes on without videos
            return self.failed(describe(err, 300))
        return self.made(name, steps, frames, started)

    def wait_for(self, made: Beside, name: str, started: float) -> Path | None:
        """The video that the forked copy `made` renders (None if it failed, or was stopped)."""
        try:
            steps, frames = made.result()
        except FailedBeside as err:
            temporary_sibling(self.path(name)).unlink(missing_ok=True)  # a copy stopped while it wrote
            return None if self._cancel.is_set() else self.failed(err.reason[:300])
        finally:
            self._copies.discard(made)
        return self.made(name, int(steps), int(frames), started)

    def write(self, act: Act, name: str) -> tuple[int, int]:
        """Render the episode and write its mp4; the steps taken and the frames."""
        with warnings.catch_warnings():  # a failing backend (GLFW without a display) warns before it raises
            warnings.simplefilter("ignore")
            frames, steps, playback = self.render_episode(act)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path(name), lambda tmp: write_mp4(tmp, frames, playback))
        return steps, len(frames)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.mp4"

    @staticmethod
    def started(name: str) -> float:
        log.info(f"video: rendering {name} ...")
        return time.perf_counter()

    def made(self, name: str, steps: int, frames: int, started: float) -> Path:
        log.info(f"video: {name}: {steps} steps, {frames} frames in {time.perf_counter() - started:.1f}s -> "
                 f"{self.path(name)}")
        return self.path(name)

    def failed(self, error: str) -> None:
        """No renderer, no codec: said once, in one line, and the run goes on without videos."""
        if self.error is not None:  # a copy begun before the first one failed: said already
            return None
        self.error = error
        self.enabled = False
        self.close_env()
        log.warning(f"video: rendering failed with MUJOCO_GL={os.environ.get('MUJOCO_GL')} ({self.error}); "
                    "the run continues without videos (eval.video=false turns them off)")

    def render_episode(self, act: Act) -> tuple[list[np.ndarray], int, float]:
        """Frames of one episode from the evaluation seed, the steps taken, and the real-time playback rate."""
        if self.env is None:
            os.environ.setdefault("MUJOCO_GL", "egl")
            making_gl_context()
            from dagger.envs import is_mujoco, make_env

            width, height = self.size
            self.env = make_env(self.env_cfg, render_mode="rgb_array")
            if is_mujoco(self.env):  # other tasks draw at their own size (pygame), and take no width or height
                self.env.close()
                self.env = make_env(self.env_cfg, render_mode="rgb_array", width=width, height=height)
                follow_the_body(self.env)
                plain_frames(self.env)
        task_fps = float(self.env.metadata.get("render_fps") or round(1 / self.env.unwrapped.dt))
        skip = max(1, math.ceil(task_fps / self.fps))
        obs, _ = self.env.reset(seed=self.seed)
        actions = actions_of(self.env.action_space)
        frames, steps, done = [self.scene(act)], 0, False
        while not done:
            if self._cancel.is_set():
                raise Cancelled
            obs, _, terminated, truncated, _ = self.env.step(actions.to_env(act(obs[None]))[0])
            steps += 1
            done = terminated or truncated
            if steps % skip == 0 or done:
                frames.append(self.scene(act))
        return frames, steps, task_fps / skip

    def scene(self, act: Act) -> np.ndarray:
        """The task's frame, with a pixel student's own newest frame beside it (scaled up, `Student.seen_frame`)."""
        viewer = getattr(getattr(self.env.unwrapped, "mujoco_renderer", None), "viewer", None)
        if viewer is not None:  # a pixel student renders with a GL context of its own in this thread
            viewer.make_context_current()
        frame = self.env.render()
        seen = act.seen_frame() if hasattr(act, "seen_frame") else None
        if seen is None:
            return frame
        height = frame.shape[0]
        scale = max(1, height // seen.shape[0])
        seen = np.repeat(np.repeat(seen, scale, axis=0), scale, axis=1)[:height]
        seen = np.pad(seen, ((0, height - len(seen)), (0, max(0, height - seen.shape[1])), (0, 0)))
        return np.concatenate([frame, seen], axis=1)

    def close(self, cancel: bool = False) -> None:
        """Wait for the videos still being rendered (or, with `cancel`, stop them), then free the renderer."""
        if self._worker is not None:
            if cancel:
                self._cancel.set()
                for made in list(self._copies):
                    made.kill()
            self._worker.submit(self.close_env)  # in the thread that made the GL context
            self._worker.shutdown(wait=True, cancel_futures=cancel)
            self._worker = None
        self.close_env()

    def close_env(self) -> None:
        if self.env is not None:
            env, self.env = self.env, None
            try:
                env.close()
            except Exception:  # noqa: BLE001 - a renderer that failed may fail again on closing
                pass


def tracking_camera(model) -> int:
    """The id of the model's tracking camera ("track": Walker2d, Hopper, HalfCheetah, Ant, Humanoid), which keeps
    the body in the picture as it moves; -1 where it has none."""
    import mujoco

    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track")


def follow_the_body(env) -> None:
    """Render through the model's tracking camera; tasks without one keep gymnasium's default view."""
    track = tracking_camera(env.unwrapped.model)
    if track >= 0:
        env.unwrapped.mujoco_renderer.camera_id = track


class Cancelled(Exception):
    """The run stopped while a video was being rendered: the video is dropped."""


def plain_frames(env) -> None:
    """The env's offscreen viewer (the one gymnasium renders with, made here) draws without multisampling, shadows and
    reflections (the model's `offsamples` is read when the viewer's GL context is made)."""
    env.unwrapped.model.vis.quality.offsamples = 0
    without_shadows(env)


def without_shadows(env) -> None:
    """The env's offscreen viewer (the one gymnasium renders with) draws without shadows and reflections."""
    shadows_off(env.unwrapped.mujoco_renderer._get_viewer("rgb_array").scn)


def shadows_off(scene) -> None:
    """Shadows and reflections off in a MuJoCo scene: at 64x64 on a CPU they cut the rendering rate from about 280
    to 15 frames/s."""
    import mujoco

    scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0


# What `import mujoco` accepts (it raises on anything else, before any rendering); gymnasium renders with
# egl, osmesa or glfw.
MUJOCO_GL_VALUES = ("egl", "osmesa", "glfw", "glx", "", "enable", "enabled", "on", "true", "1",
                    "disable", "disabled", "off", "false", "0")


# The system library each headless backend loads when a MuJoCo task is built (PyOpenGL fails with an
# AttributeError deep in its imports where it is missing).
BACKEND_LIBRARIES = {"egl": ("EGL", "libegl1"), "osmesa": ("OSMesa", "libosmesa6")}


def check_mujoco_gl() -> None:
    """A MUJOCO_GL that MuJoCo refuses would stop every run at `import mujoco`, and a headless backend whose library
    is not installed at the first MuJoCo task: one line instead."""
    import ctypes.util

    value = os.environ.get("MUJOCO_GL")
    if value is not None and value.lower().strip() not in MUJOCO_GL_VALUES:
        raise ConfigError(f"MUJOCO_GL={value!r} (environment variable) is not a MuJoCo rendering backend; use egl "
                          "(headless, the default when unset), osmesa or glfw")
    library, package = BACKEND_LIBRARIES.get((value or "").lower().strip(), (None, None))
    if library is not None and ctypes.util.find_library(library) is None:
        raise ConfigError(f"MUJOCO_GL={value!r} (environment variable): its library lib{library} is not installed "
                          f"here (Debian: apt install {package}); use another backend, e.g. egl or glfw")


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    import imageio.v2 as imageio

    height, width = frames[0].shape[:2]  # padded to whole 16-pixel blocks, as the codec needs (pygame tasks: 600x400)
    pad = ((0, -height % 16), (0, -width % 16), (0, 0))
    frames = [np.pad(frame, pad, mode="edge") for frame in frames] if any(n for n, _ in pad) else frames
    # x264's veryfast preset: half the encoder's CPU time of its default (medium), at the same size and look
    imageio.mimwrite(path, frames, fps=fps, codec="libx264", quality=7, ffmpeg_params=["-preset", "veryfast"])
