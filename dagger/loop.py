"""The DAgger loop (Ross, Gordon & Bagnell 2011, Algorithm 3.1).

    D <- initial expert demonstrations (optional); fit pi_hat_1 on D
    for i = 1..N:
        pi_i = beta_i * expert + (1 - beta_i) * pi_hat_i
        roll out pi_i; the expert labels every visited state  -> D_i
        D <- D + D_i
        pi_hat_{i+1} <- fit on all of D
        evaluate pi_hat_{i+1} alone; record one row

Row i of metrics.csv is the learner trained after i rounds of collection (row 0: BC on the
initial demonstrations). Each finished iteration is checkpointed, so a killed run resumes.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from dagger.data import Dataset
from dagger.experts import Expert
from dagger.files import atomic_write
from dagger.policy import Learner
from dagger.rollout import Collector, Evaluator, Rollout
from dagger.runs import load_state, save_state
from dagger.schedules import BetaSchedule
from dagger.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class Budget:
    iterations: int
    rollout_steps: int
    initial_expert_steps: int = 0


@dataclass
class Parts:
    """Everything the loop needs, built from the config by run.py."""

    expert: Expert
    learner: Learner
    schedule: BetaSchedule
    budget: Budget
    collector: Collector
    evaluator: Evaluator
    tracker: Tracker
    run_dir: Path
    seed: int


@dataclass
class References:
    """The returns a learner's return is judged against, measured once per run."""

    expert_mean: float
    expert_std: float
    random_mean: float

    def normalized(self, value: float) -> float:
        return (value - self.random_mean) / max(self.expert_mean - self.random_mean, 1e-8)


@dataclass
class Progress:
    """Where the run stands after its last finished iteration."""

    refs: References
    iteration: int = 0
    env_steps: int = 0
    wall_time_s: float = 0.0


def run_dagger(parts: Parts) -> list[dict]:
    """Run (or resume) the loop; returns the metrics rows."""
    p = parts
    data = Dataset(p.collector.venv.single_observation_space.shape[0], p.collector.venv.single_action_space.shape[0])
    progress = load_checkpoint(p, data)
    if progress is None:
        progress = Progress(measure_references(p))
        if p.budget.initial_expert_steps > 0:  # D <- expert demonstrations; BC on them is iteration 0
            progress = iterate(p, data, progress, 0, 1.0, p.budget.initial_expert_steps)
    else:
        log.info(f"resuming after iteration {progress.iteration} ({len(data)} labels)")
    for i in range(progress.iteration + 1, p.budget.iterations + 1):
        progress = iterate(p, data, progress, i, p.schedule(i), p.budget.rollout_steps)
    return p.tracker.rows


def iterate(p: Parts, data: Dataset, progress: Progress, i: int, beta: float, steps: int) -> Progress:
    """One DAgger iteration: collect with the beta-mixture, aggregate, fit, evaluate, record, checkpoint."""
    t0 = time.perf_counter()
    # pi_i = beta * expert + (1 - beta) * learner; the expert labels every state pi_i visits.
    rollout = p.collector.collect(p.expert.act, p.learner.act, beta, steps, rng(p, i))
    data.add(rollout.obs, rollout.labels)  # D <- D + D_i
    t1 = time.perf_counter()
    loss = p.learner.fit(data, torch.Generator().manual_seed(p.seed * 100_003 + i))  # pi_hat_{i+1} on all of D
    t2 = time.perf_counter()
    returns = p.evaluator.returns(p.learner.act)  # the learner alone, deterministic
    t3 = time.perf_counter()
    progress = Progress(progress.refs, i, progress.env_steps + rollout.env_steps, progress.wall_time_s + t3 - t0)
    row = metrics_row(progress, data, beta, rollout, returns, loss, times=(t1 - t0, t2 - t1, t3 - t2))
    p.tracker.log(row)
    log.info(f"iter {i:>3d} beta {beta:4.2f} labels {len(data):>7d} loss {loss:7.4f} "
                  f"return {row['return_mean']:7.1f} ± {row['return_std']:6.1f} ({row['normalized_return']:4.0%}) "
                  f"rollout {t1 - t0:4.1f}s fit {t2 - t1:4.1f}s eval {t3 - t2:4.1f}s")
    checkpoint(p, data, progress)
    return progress


def metrics_row(progress: Progress, data: Dataset, beta: float, rollout: Rollout, returns: np.ndarray,
                loss: float, times: tuple[float, float, float]) -> dict:
    """One row of metrics.csv (the seed's means, stds, train_size, expert_mean, expert_std, and more)."""
    refs = progress.refs
    return {
        "iteration": progress.iteration, "beta": beta,
        "return_mean": float(returns.mean()), "return_std": float(returns.std()),
        "normalized_return": refs.normalized(float(returns.mean())),
        "dataset_size": len(data), "expert_labels": len(data), "env_steps": progress.env_steps,
        "expert_return_mean": refs.expert_mean, "expert_return_std": refs.expert_std,
        "random_return_mean": refs.random_mean,
        "rollout_return_mean": float(np.mean(rollout.episode_returns)) if rollout.episode_returns else float("nan"),
        "expert_action_fraction": rollout.expert_fraction, "train_loss": loss,
        "rollout_time_s": times[0], "fit_time_s": times[1], "eval_time_s": times[2],
        "wall_time_s": progress.wall_time_s,
    }


def measure_references(p: Parts) -> References:
    """The expert's and a uniform-random policy's returns on the evaluation episodes."""
    t0 = time.perf_counter()
    expert = p.evaluator.returns(p.expert.act)
    space = p.evaluator.venv.single_action_space
    random = np.random.default_rng(p.seed)
    uniform = p.evaluator.returns(lambda obs: random.uniform(space.low, space.high, (len(obs), *space.shape)))
    log.info(f"expert return {expert.mean():.1f} ± {expert.std():.1f}, random {uniform.mean():.1f} "
                  f"over {len(expert)} episodes ({time.perf_counter() - t0:.1f}s)")
    return References(float(expert.mean()), float(expert.std()), float(uniform.mean()))


def rng(p: Parts, iteration: int) -> np.random.Generator:
    """The mixing coin flips of one iteration: independent of how the run got there."""
    return np.random.default_rng([p.seed, iteration])


def checkpoint(p: Parts, data: Dataset, progress: Progress) -> None:
    """Save the dataset, the learner, and the state needed to resume after this iteration."""
    data.save(p.run_dir / "dataset.npz")
    state = {"progress": asdict(progress), "dataset_size": len(data), "learner": p.learner.state_dict(),
             "collector": p.collector.state_dict(), "rows": p.tracker.rows}
    save_state(p.run_dir / "checkpoint.pt", state)
    atomic_write(p.run_dir / "learner.pt", lambda tmp: torch.save(p.learner.policy.state_dict(), tmp))


def load_checkpoint(p: Parts, data: Dataset) -> Progress | None:
    path = p.run_dir / "checkpoint.pt"
    if not path.is_file():
        return None
    state = load_state(path)  # weights-only: a crafted file cannot run code
    saved = Dataset.load(p.run_dir / "dataset.npz")  # may be one iteration ahead if killed in between
    data.add(saved.obs[: state["dataset_size"]], saved.acts[: state["dataset_size"]])
    p.learner.load_state_dict(state["learner"])
    p.collector.load_state_dict(state["collector"])
    p.tracker.restore(state["rows"])
    progress = state["progress"]
    return Progress(References(**progress.pop("refs")), **progress)
