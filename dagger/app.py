"""The library entry point: `run(cfg, run_dir)` owns one run folder's life cycle around the loop.

    lock the folder -> check everything (the config, the expert, and the saved state of a run being resumed)
    -> start (config.yaml, .hydra/, provenance.json, status "running") -> the loop -> status "finished"

Every way it can stop is one `RunStopped` with a one-line message and the status the folder is left in:

    refused      bad input or a folder in use, found before the folder is touched: a new folder is removed
    interrupted  SIGTERM, SIGINT, SIGHUP or SIGXCPU (a CPU-time limit) during the work
    failed       anything else during the work (a full disk, a memory limit, a bug)

After "interrupted" or "failed" the folder holds its last finished iteration, and rerunning the same command
resumes it to the numbers of an uninterrupted run. `run.py` is the command line around this call; tests call
it in-process.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from dagger.actions import actions_of
from dagger.config import ConfigError, as_container, describe, first_line
from dagger.schemas import BOOLEAN, COUNT, SEED, TEXT, Help, parse, Schema
from dagger.runs import RunFolder, load_state

if TYPE_CHECKING:  # imported by parse_run: torch, SB3 and MuJoCo load inside run()'s checks, not at import
    from dagger.envs import EnvConfig
    from dagger.expert.expert import ExpertConfig
    from dagger.policy import AnyLearnerConfig
    from dagger.rollout import EvalConfig
    from dagger.schedules import ScheduleConfig
    from dagger.supervisors import AlgoConfig
    from dagger.tracking import LoggerConfig
    from dagger.views import AnyViewConfig

log = logging.getLogger("run")


# The summary numbers a run can return to a sweeper that optimises one (`optimized_metric`; dagger.tracking.summarize).
OptimizedMetric = Literal["final_normalized_return", "last3_normalized_return", "best_normalized_return",
                          "final_run_normalized_return", "steadiness", "final_return"]


class RunConfig(Schema):
    """conf/config.yaml: the top-level keys, and each group's schema (declared where the group is read)."""

    seed: Annotated[int, SEED, Help("seeds every random source: networks, minibatches, mixing, environments")]
    device: Annotated[Literal["cpu", "cuda", "auto"], Help("the learner's device", resumable=True)]
    threads: Annotated[int, COUNT, Help("torch CPU threads (one core per run keeps sweeps fair)", resumable=True)]
    resume: Annotated[bool, BOOLEAN, Help("rerunning into an existing run dir continues after its last iteration",
                                            resumable=True)]
    sweep_name: Annotated[Annotated[str, TEXT] | None, Help("set by +sweeps=<name>")] = None
    optimized_metric: Annotated[OptimizedMetric | None, Help(
        "the summary number a run returns to a sweeper that needs one (hydra/sweeper=optuna)", resumable=True)] = None
    eval: EvalConfig
    env: EnvConfig
    expert: ExpertConfig
    obs: AnyViewConfig        # the student's view; parse_run puts the view class's own Config in its place
    policy: AnyLearnerConfig  # parse_run puts the learner class's own Config (chosen by `_target_`) in its place
    schedule: ScheduleConfig
    algo: AlgoConfig
    logger: LoggerConfig

    @model_validator(mode="after")
    def bc_keeps_its_schedule(self) -> RunConfig:
        """algo=bc is behaviour cloning, beta = 1 at every iteration (its schedule, `schedule=bc`); a `schedule=`
        given beside it replaces that schedule, which would run another algorithm under BC's name."""
        beta = self.schedule
        if self.algo.name == "bc" and not (beta.beta == "constant" and beta.beta_value == 1.0):
            raise PydanticCustomError(
                "check", "is not algo=bc's beta = 1 throughout (schedule=bc), so the run would not be behaviour "
                "cloning: drop the schedule override, or use algo=dagger with it",
                {"at": "schedule.beta_value", "value": beta.beta_value} if beta.beta == "constant"
                else {"at": "schedule.beta", "value": beta.beta})
        return self


def pick_device(device: str) -> str:
    """The learner's device: `device`, with auto resolved, or ConfigError where CUDA is asked for and missing."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but torch sees no CUDA device (use device=cpu or device=auto)")
    return device


def run_schema() -> type[RunConfig]:
    """RunConfig with each group's schema in place (they are declared in the modules that read them)."""
    from dagger.envs import EnvConfig
    from dagger.expert.expert import ExpertConfig
    from dagger.policy import AnyLearnerConfig
    from dagger.rollout import EvalConfig
    from dagger.schedules import ScheduleConfig
    from dagger.supervisors import AlgoConfig
    from dagger.tracking import LoggerConfig
    from dagger.views import AnyViewConfig

    groups = (EnvConfig, ExpertConfig, AnyViewConfig, AnyLearnerConfig, EvalConfig, ScheduleConfig, AlgoConfig,
              LoggerConfig)
    RunConfig.model_rebuild(_types_namespace={group.__name__: group for group in groups})
    return RunConfig


def parse_run(cfg: DictConfig) -> RunConfig:
    """Every key of the run config, typed and checked before any work; bad input is one `ConfigError` line."""
    from dagger.policy import learner_class, learner_config
    from dagger.views import view_config

    schema = run_schema()
    data = as_container(cfg)
    settings = parse(schema, data)
    policy, obs = learner_config(data["policy"]), view_config(data["obs"])
    with_window = getattr(learner_class(policy.target), "with_window", None)
    if with_window is not None:  # a learner that reads a window of views sets how many the view keeps (policy=gru)
        policy, obs = with_window(policy, obs)
    return settings.model_copy(update={"policy": policy, "obs": obs})


class RunStopped(Exception):
    """The run did not finish: `status` is what its folder says ("refused", "interrupted" or "failed")."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


class Interrupted(BaseException):
    """One of the STOPPING signals arrived (a BaseException, like KeyboardInterrupt, so no `except Exception` eats it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)


STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU)  # kill, Ctrl-C, a closed terminal, CPU limit


@contextlib.contextmanager
def signal_handlers(handlers: dict[int, object]) -> Iterator[None]:
    """Install `handlers` (signal -> handler) for the duration of the block, in the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def raise_interrupted(signum: int, _frame) -> None:
    raise Interrupted(signum)


def signals_interrupt():
    """The STOPPING signals raise `Interrupted`; SIGXFSZ is ignored so that a write past a file-size limit fails with
    an OSError (EFBIG) instead of killing the process."""
    return signal_handlers({**dict.fromkeys(STOPPING, raise_interrupted), signal.SIGXFSZ: signal.SIG_IGN})


def signals_ignored():
    """A second stopping signal while the run closes its files is ignored (the first one is being handled)."""
    return signal_handlers(dict.fromkeys(STOPPING, signal.SIG_IGN))


def run(cfg: DictConfig, run_dir: Path, hydra_files: dict[str, str] | None = None, videos: bool = True,
        existed: bool | None = None) -> dict:
    """Run (or resume, or find finished) the experiment `cfg` in `run_dir`; returns the run's summary.

    `hydra_files` are written into `.hydra/` once the checks pass; `videos` is the default for `eval.video=null`;
    `existed` says whether `run_dir` was there before the command (None: whether it is there now), so that a refusal
    removes only a folder the command made.
    Raises `RunStopped`. With `optimized_metric` set, `metric(cfg, summary)` is the number a sweeper reads."""
    folder = RunFolder(Path(run_dir), existed)
    if gc.get_freeze_count():  # a run before this one in the process (a sequential sweep's): collect what it left,
        gc.unfreeze()          # before this one builds anything (a renderer of its own, say)
        gc.collect()
    with signals_interrupt():
        try:
            from dagger.tracking import final_table, summarize

            settings, rows, state = prepare(cfg, folder)
            parts = build_parts(settings, cfg, folder, state, hydra_files, videos) if rows is None else None
        except (Exception, Interrupted) as err:  # noqa: BLE001 - nothing was written yet: one line, no folder
            folder.close_refused()
            if not folder.path.exists():
                stop_logging_into(folder.path)
            raise RunStopped("refused", refusal(err)) from None
        title = f"{cfg.algo.name} on {cfg.env.id} / {cfg.expert.algo} expert (seed {cfg.seed})"
        if parts is None:
            log.info("already finished: %s", folder.path)
        else:
            rows = work(settings, folder, parts, title)
    log.info("%s", final_table(rows, title))
    log.info("outputs: %s", folder.path)
    folder.release()
    return summarize(rows)


def metric(cfg: DictConfig, summary: dict) -> dict | float:
    """What a run returns to Hydra: its summary, or the one number `optimized_metric` names (a sweeper such as
    Optuna's needs a number; a run that did not finish gives nan)."""
    name = cfg.get("optimized_metric")
    return summary if not name else float(summary.get(name, float("nan")))


def stop_logging_into(folder: Path) -> None:
    """Close the log files (Hydra's run.log) in a removed folder, so that nothing logged later (an atexit hook of a
    library interrupted while importing) recreates or fails on them."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == folder.resolve():
            root.removeHandler(handler)
            handler.close()


def refusal(err: BaseException) -> str:
    if isinstance(err, Interrupted):
        return f"interrupted by {err} before the run started; nothing was written"
    if isinstance(err, MemoryError):
        return "out of memory while building the run; nothing was written"
    return first_line(err) if isinstance(err, ConfigError) else describe(err)


def work(settings: RunConfig, folder: RunFolder, parts, title: str) -> list[dict]:
    """The loop in a started folder: status "finished", or "interrupted"/"failed" with a `RunStopped`."""
    from dagger.tracking import summarize

    failed, rows, curve = True, None, None
    try:
        import pandas as pd  # here: an import that fails under a memory limit is a failure like any other

        from dagger.loop import run_dagger
        from dagger.curve import plot_curve

        # run.py starts without the garbage collector (the imports and checks make no garbage to speak of); what they
        # built lives for the whole run, so it is frozen out of every collection, and the forked copies beside the
        # loop share its memory unchanged (Python's gc docs: disable early, freeze before forking)
        gc.freeze()
        gc.enable()
        rows = run_dagger(parts)
        curve = plot_curve(pd.DataFrame(rows), folder.path / "curve.png", title)
        failed = False
    except BaseException as err:  # noqa: BLE001 - every stop leaves a true status.json and one line
        status = "interrupted" if isinstance(err, (Interrupted, KeyboardInterrupt)) else "failed"
        done = checkpointed_iterations(folder.path)
        what = ("interrupted by " + (str(err) or "SIGINT") if status == "interrupted"
                else "out of memory" if isinstance(err, MemoryError) else describe(err))
        extra = {"wandb_error": parts.tracker.wandb_error} if parts.tracker.wandb_error else {}
        if status == "failed":
            extra["traceback"] = traceback.format_exc()
        with contextlib.suppress(OSError):  # a full disk may refuse the status too; the checkpoint is intact
            folder.write_status(status, error=what, iterations_done=done, **extra)
        folder.release()
        raise RunStopped(status, f"{what}; {folder.path} holds {done} finished iteration(s) and status {status}; "
                                 "rerun the same command to resume") from None
    finally:
        with signals_ignored():
            if failed:  # stop the videos still being rendered before anything waits for them
                parts.evaluator.close(cancel=True)
            with contextlib.suppress(Exception):
                parts.tracker.finish({} if failed else summarize(rows), curve, failed=failed)
            parts.collector.close()
            parts.evaluator.close()  # waits for the last videos
    problems = {key: value for key, value in (("wandb_error", parts.tracker.wandb_error),
                                              ("video_error", parts.evaluator.video.error)) if value}
    folder.write_status("finished", iterations=settings.schedule.iterations, **problems)
    return rows


def checkpointed_iterations(run_dir: Path) -> int:
    """The iterations a rerun resumes after (0 when the run has no readable checkpoint yet)."""
    try:
        return int(load_state(run_dir / "checkpoint.pt")["progress"]["iteration"])
    except (ConfigError, OSError, TypeError, ValueError):
        return 0


def prepare(cfg: DictConfig, folder: RunFolder) -> tuple[RunConfig, list[dict] | None, dict | None]:
    """Check the config and any run already in the folder: (the typed config, the run's rows if it already
    finished, its saved state)."""
    folder.lock()
    settings = parse_run(cfg)
    if not folder.holds_a_run():
        return settings, None, None
    state = load_state(folder.path / "checkpoint.pt")
    done = int(state["progress"]["iteration"])
    folder.check_resume(cfg, done)
    status = folder.read_status()
    if status.get("status") == "finished" and done == settings.schedule.iterations:
        return settings, list(state["rows"]), state
    return settings, None, state


def build_parts(settings: RunConfig, cfg: DictConfig, folder: RunFolder, state: dict | None,
                hydra_files: dict[str, str] | None, videos: bool):
    """The typed config -> parts, the saved state restored into them. Every check that can fail happens here,
    before the run folder is touched; `cfg` (as composed) is what the folder records."""
    import numpy as np
    import torch

    from dagger.envs import make_env
    from dagger.expert.expert import load_expert
    from dagger.expert.references import shipped_reference
    from dagger.loop import Budget, Parts, restore
    from dagger.minari_datasets import load_demonstrations
    from dagger.policy import build_learner
    from dagger.rollout import Collector, Evaluator, check_collection, envs_in_parallel
    from dagger.schedules import build_schedule
    from dagger.supervisors import build_supervisor
    from dagger.tracking import Tracker
    from dagger.video import VideoRecorder
    from dagger.views import Pixels, build_view

    c = settings
    device = pick_device(c.device)
    schedule = build_schedule(c.schedule)
    torch.set_num_threads(c.threads)
    torch.manual_seed(c.seed)
    np.random.seed(c.seed)
    probe = make_env(c.env)
    check_collection(probe, c.schedule.collection)
    started = time.perf_counter()
    expert = load_expert(c.expert, c.env.name, probe, device=device)
    loaded = time.perf_counter() - started
    if state is not None:
        folder.check_expert(expert.files, saved=state.get("expert"))
    reference = shipped_reference(expert.files["model_sha256"])  # a shipped expert's fixed normaliser
    view = build_view(c.obs, probe, expert.act, seed=[c.seed, 1])  # the student's view (the probe is reset)
    learner = build_learner(c.policy, view.space, probe.action_space, device)
    # Forked copies evaluate, render and fit beside the loop where that is safe: one torch thread on the CPU, no GL
    # context of a view
    beside = hasattr(os, "fork") and device == "cpu" and c.threads == 1 and not isinstance(view.features, Pixels)
    if hasattr(learner, "fit_beside"):  # an ensemble fits its first member in a copy
        learner.fit_beside = beside
    num_envs = envs_in_parallel(c.schedule.collection, c.env.num_envs, c.schedule.rollout_steps,
                                probe.spec.max_episode_steps)
    supervisor = build_supervisor(c.algo, schedule=schedule, action_space=probe.action_space,
                                  observation_space=view.space, num_envs=num_envs, learner=learner, seed=c.seed)
    budget = Budget(c.schedule.iterations, c.schedule.rollout_steps, c.schedule.initial_expert_steps)
    expert_dim = probe.observation_space.shape[0]
    budget.check_memory(view.dim, actions_of(probe.action_space).width, num_envs, expert_dim,
                        np.dtype(view.dtype).itemsize)
    demonstrations = (load_demonstrations(c.schedule.initial_demos, probe.observation_space, probe.action_space,
                                          c.env.id, view) if c.schedule.initial_demos else None)
    probe.close()
    collector = Collector(c.env, num_envs, seed=c.seed, collection=c.schedule.collection, view=view)
    resumed = restore(folder.path, state, learner, supervisor, collector) if state is not None else None
    eval_seed = c.seed + 1_000_000  # evaluation episodes never share seeds with the rollouts
    video = VideoRecorder(c.env, folder.path, seed=eval_seed, every=c.eval.video_every, fps=c.eval.video_fps,
                          size=tuple(c.eval.video_size), enabled=videos if c.eval.video is None else c.eval.video,
                          beside=beside)
    evaluator = Evaluator(c.env, c.eval.episodes, seed=eval_seed, every=c.eval.every, video=video, view=view,
                          beside=beside)
    # All checks passed: from here on the run folder is written.
    folder.start(cfg, expert.files, hydra_files or {"config.yaml": OmegaConf.to_yaml(cfg)})
    log.info("collection: %s, %d env(s) side by side", "whole episodes of pi_i from a reset every iteration"
             if c.schedule.collection == "episodes" else "episodes carried over across iterations", num_envs)
    log.info("expert: %s %s (sha256 %s)%s, loaded in %.1fs", expert.files["algo"], expert.files["model"],
             expert.files["model_sha256"][:16],
             f", statistics {expert.files['stats']} (sha256 {expert.files['stats_sha256'][:16]})"
             if expert.files.get("stats") else "", loaded)
    if not view.identity:
        log.info("student: obs=%s sees %d numbers (%d view(s) of %d%s) of the expert's %d", c.obs.name, view.dim,
                 view.history, view.features.dim, ", and the previous action" if view.with_actions else "",
                 expert_dim)
    tracker = Tracker(folder.path, c.logger, cfg, provenance={"expert": expert.files})  # W&B starts in the background
    return Parts(expert=expert, learner=learner, supervisor=supervisor, budget=budget, collector=collector,
                 evaluator=evaluator, tracker=tracker, run_dir=folder.path, seed=c.seed,
                 demonstrations=demonstrations, resumed=resumed,
                 reference=reference)
