"""The DAgger loop (Ross, Gordon & Bagnell 2011, Algorithm 3.1), shared by the whole family.

    D <- initial expert demonstrations (optional: collected now, or a Minari dataset); fit pi_hat_1 on D
    for i = 1..N:
        the supervisor prepares iteration i (DAgger: beta_i; DART: its noise; gates: thresholds)
        roll out: per env and step the supervisor decides who acts and which states the expert labels
                  (DAgger: pi_i = beta_i * expert + (1 - beta_i) * pi_hat_i, every state labelled) -> D_i
        D <- D + D_i
        pi_hat_{i+1} <- fit on all of D
        evaluate pi_hat_{i+1} alone (every `eval.every` iterations and at the last); record one row

Row i of metrics.csv is the learner trained after i rounds of collection (row 0: BC on the
initial demonstrations). The row is merged from the dicts the parts return. Its evaluation runs beside iteration
i+1 (in a forked copy of the process, on the machine's other core: `dagger.beside`), and the row is recorded once
it returns, after iteration i+1's fit; the last iteration's is recorded at once. Each finished iteration is
checkpointed, its row still pending, so a killed run resumes, evaluating that row's learner first. A video of the
learner is begun before its evaluation (rendered beside it: `dagger.video`) and logged after the checkpoint.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from dagger.config import ConfigError, describe
from dagger.beside import Beside
from dagger.data import Dataset, bytes_per_step, half_memory
from dagger.expert.expert import Expert
from dagger.files import atomic_write
from dagger.policy import Learner
from dagger.policy.carried import acting
from dagger.rollout import Collector, Evaluator, Rollout
from dagger.runs import save_state
from dagger.schedules import BetaSchedule
from dagger.supervisors import Supervisor
from dagger.supervisors.beta_mixture import BetaMixture
from dagger.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class Budget:
    iterations: int
    rollout_steps: int
    initial_expert_steps: int = 0

    def check_memory(self, obs_dim: int, act_dim: int, num_envs: int, state_dim: int | None = None,
                     obs_bytes: int = 4) -> None:
        """D keeps every visited step (`dagger.data.bytes_per_step`): refuse a budget whose D would need more than
        half this machine's memory, before any work."""
        state_dim = obs_dim if state_dim is None else state_dim
        steps = self.initial_expert_steps + self.iterations * (self.rollout_steps + num_envs)
        need, limit = steps * bytes_per_step(obs_dim, act_dim, state_dim, obs_bytes), half_memory()
        if need > limit:
            raise ConfigError(f"schedule.rollout_steps={self.rollout_steps} x schedule.iterations={self.iterations} "
                              f"(+ initial_expert_steps={self.initial_expert_steps}) is {steps:,} steps: D would need "
                              f"{need / 2**30:,.0f} GiB, more than half this machine's {2 * limit / 2**30:.0f} GiB")


@dataclass
class Parts:
    """Everything the loop needs, built from the config by `dagger.app`."""

    expert: Expert
    learner: Learner
    supervisor: Supervisor      # the algorithm: who acts, which states are labelled
    budget: Budget
    collector: Collector
    evaluator: Evaluator
    tracker: Tracker
    run_dir: Path
    seed: int
    demonstrations: Rollout | None = None  # D_0 loaded from a Minari dataset (schedule.initial_demos)
    resumed: Resumed | None = None         # the state of a run being resumed, restored before the folder is touched
    reference: dict | None = None          # the shipped expert's fixed references (dagger.expert.references)
    pending: Pending | None = None         # the last iteration's row, while its evaluation runs


@dataclass
class Pending:
    """An iteration's row before its evaluation's columns, which go between `head` and `tail`; `evaluating` the
    evaluation (None where none was due)."""

    head: dict
    tail: dict
    evaluating: Beside | None = None


@dataclass
class References:
    """The returns a learner's return is judged against: the expert's and a uniform-random policy's on this run's
    evaluation episodes, and, for a shipped expert, the fixed references of its manifest entry
    (`dagger.expert.references`, 100 episodes each), which the normalised return uses where they exist."""

    expert_mean: float
    expert_std: float
    random_mean: float
    fixed_expert_mean: float | None = None
    fixed_random_mean: float | None = None

    @property
    def normalized_by(self) -> str:
        return "manifest" if self.fixed_expert_mean is not None else "run"

    def normalized(self, value: float) -> float:
        """(R - random) / (expert - random) by the fixed references where there are, else by this run's measure."""
        if self.fixed_expert_mean is None:
            return self.run_normalized(value)
        return normalize(value, self.fixed_expert_mean, self.fixed_random_mean)

    def run_normalized(self, value: float) -> float:
        return normalize(value, self.expert_mean, self.random_mean)

    def columns(self) -> dict:
        """The references in a row: this run's measure, and the pair the normalised return divides by."""
        fixed = self.normalized_by == "manifest"
        return {"expert_return_mean": self.expert_mean, "expert_return_std": self.expert_std,
                "random_return_mean": self.random_mean,
                "reference_expert_return": self.fixed_expert_mean if fixed else self.expert_mean,
                "reference_random_return": self.fixed_random_mean if fixed else self.random_mean,
                "normalized_by": self.normalized_by}


def normalize(value: float, expert: float, random: float) -> float:
    return (value - random) / max(expert - random, 1e-8)


@dataclass
class Progress:
    """Where the run stands after its last finished iteration."""

    refs: References
    iteration: int = 0
    env_steps: int = 0
    expert_queries: int = 0
    interventions: int = 0
    wall_time_s: float = 0.0


@dataclass
class Resumed:
    """What a resumed run continues from: D, its progress and its rows (the learner, supervisor and collector
    already hold their saved state)."""

    data: Dataset
    progress: Progress
    rows: list[dict]
    pending: dict | None = None  # the last iteration's row without its evaluation (`Pending`'s head, tail, due)


def run_dagger(parts: Parts) -> list[dict]:
    """Run (or resume) the loop; returns the metrics rows."""
    p = parts
    if p.resumed is None:
        data = Dataset(*dims(p.collector), state_dim=state_dim(p.collector), obs_dtype=p.collector.view.dtype)
        progress = None
    else:
        data, progress = p.resumed.data, p.resumed.progress
        p.tracker.restore(p.resumed.rows)
    if progress is None:  # the references are measured beside the first iteration (then the expert's video)
        progress = Progress(Measuring(p))
        expert_alone = BetaMixture(BetaSchedule("constant", 1.0))  # the initial demonstrations are the expert's
        if p.demonstrations is not None:  # D <- demonstrations from a Minari dataset; BC on them is iteration 0
            progress = iterate(p, expert_alone, data, progress, 0, 0, given=p.demonstrations)
        elif p.budget.initial_expert_steps > 0:  # D <- expert demonstrations; BC on them is iteration 0
            progress = iterate(p, expert_alone, data, progress, 0, p.budget.initial_expert_steps)
    else:
        log.info(f"resuming after iteration {progress.iteration} ({len(data)} labels)")
        if p.resumed.pending is not None:  # its learner is the one restored: evaluate it now
            saved = p.resumed.pending
            p.pending = Pending(saved["head"], saved["tail"], evaluate(p, saved["due"], beside=False))
            record(p, progress.refs)
    for i in range(progress.iteration + 1, p.budget.iterations + 1):
        progress = iterate(p, p.supervisor, data, progress, i, p.budget.rollout_steps)
    return p.tracker.rows


def iterate(p: Parts, supervisor: Supervisor, data: Dataset, progress: Progress, i: int, steps: int,
            given: Rollout | None = None) -> Progress:
    """One iteration: collect under the supervisor (or take the `given` demonstrations), aggregate, fit,
    evaluate, record, checkpoint."""
    t0 = time.perf_counter()
    supervisor.begin(i, p.learner, data)
    rollout = (given if given is not None
               else p.collector.collect(supervisor, p.expert.act, p.learner, steps, rng(p, i), i))
    if i == 0:  # the algorithm takes over the demonstrations' running episodes without counting a switch
        p.collector.hand_over()
    data.add(rollout.transitions, i)  # D <- D + D_i: the labelled states with the expert's actions (and every step)
    t1 = time.perf_counter()
    # pi_hat_{i+1} on all of D (a gate that labelled nothing yet leaves the learner as it is)
    fit = p.learner.fit(data, torch.Generator().manual_seed(p.seed * 100_003 + i)) if len(data) else {}
    t2 = time.perf_counter()
    refs = progress.refs.result() if isinstance(progress.refs, Measuring) else progress.refs
    record(p, refs)  # the previous row: its evaluation ran beside this iteration's rollout and fit
    # its video (when due) begins now, to be made beside its evaluation; it is logged after the checkpoint
    media = p.evaluator.media(p.evaluator.student(acting(p.learner)), "learner", i, p.budget.iterations)
    # the learner alone, deterministic (only every `eval.every` iterations and at the last), beside the next iteration
    due, last = p.evaluator.due(i, p.budget.iterations), i == p.budget.iterations
    evaluating = evaluate(p, due, beside=not last)
    t3 = time.perf_counter()
    progress = Progress(refs, i, progress.env_steps + rollout.env_steps,
                        progress.expert_queries + rollout.queries,
                        progress.interventions + rollout.counts["switches_to_expert"], progress.wall_time_s + t3 - t0)
    p.pending = Pending({"iteration": i, **supervisor.metrics()},
                        {**counts(progress, data, rollout), **fit, "fit_time_s": t2 - t1, "rollout_time_s": t1 - t0,
                         "eval_time_s": t3 - t2, "wall_time_s": progress.wall_time_s}, evaluating)
    if last:
        record(p, refs)
    checkpoint(p, data, progress)
    p.tracker.log_media(media, i)  # media (videos) after the checkpoint: outputs, not part of the run's state
    return progress


def evaluate(p: Parts, due: bool, beside: bool) -> Beside | None:
    """The learner's evaluation begun (`Evaluator.start`: beside the loop unless `beside` is false), if due."""
    return p.evaluator.start(p.evaluator.student(acting(p.learner)), beside) if due else None


def record(p: Parts, refs: References) -> None:
    """Record the pending row (if any) with its evaluation's returns, waiting for them; log its line."""
    if p.pending is None:
        return
    pending, p.pending = p.pending, None
    returns = pending.evaluating.result() if pending.evaluating is not None else None
    row = {**pending.head, **evaluation(returns, refs), **pending.tail}
    p.tracker.log(row)
    own = {k: v for k, v in pending.head.items() if k != "iteration"}
    shown = " ".join(f"{k} {v:.3g}" for k, v in own.items())
    result = (f"return {row['return_mean']:7.1f} ± {row['return_std']:6.1f} ({row['normalized_return']:4.0%})"
              if returns is not None else f"return {'(not evaluated)':>23s}")
    log.info(f"iter {row['iteration']:>3d} {shown} labels {row['dataset_size']:>7d} queries {row['expert_queries']:>7d} "
             f"loss {row.get('train_loss', float('nan')):7.4f} {result} "
             f"rollout {row['rollout_time_s']:4.1f}s fit {row['fit_time_s']:4.1f}s eval {row['eval_time_s']:4.1f}s")


def evaluation(returns: np.ndarray | None, refs: "References") -> dict:
    """The learner's return (the seed's means, stds), normalised by the references (and by this run's own measure
    of the expert); nan when not evaluated."""
    if returns is None:
        nan = float("nan")
        return {"return_mean": nan, "return_std": nan, "normalized_return": nan, "run_normalized_return": nan}
    mean = float(returns.mean())
    return {"return_mean": mean, "return_std": float(returns.std()), "normalized_return": refs.normalized(mean),
            "run_normalized_return": refs.run_normalized(mean)}


def counts(progress: Progress, data: Dataset, rollout: Rollout) -> dict:
    """Budgets spent so far (cumulative), the expert's and random references, and this rollout's counts."""
    return {"dataset_size": len(data), "expert_labels": len(data), "expert_queries": progress.expert_queries,
            "interventions": progress.interventions, "env_steps": progress.env_steps, **progress.refs.columns(),
            "rollout_return_mean": float(np.mean(rollout.episode_returns)) if rollout.episode_returns else float("nan"),
            **rollout.counts}


class Measuring:
    """The references (`References`): the expert's and a uniform-random policy's returns on the evaluation episodes,
    measured in a forked copy of the process beside the first iteration (`Evaluator.begin`), beside the shipped
    expert's fixed references (`Parts.reference`). `result()` waits for them, logs them, and begins the expert's
    video, which so follows them on the other core."""

    def __init__(self, p: Parts):
        self.p, self.started = p, time.perf_counter()

        def both() -> np.ndarray:
            random = np.random.default_rng(p.seed)
            uniform = p.evaluator.returns(lambda obs: p.evaluator.actions.random(random, len(obs)))
            return np.concatenate([p.evaluator.returns(p.expert.act), uniform])

        self.measuring = p.evaluator.begin(both, "the references")

    def result(self) -> References:
        p = self.p
        expert, uniform = np.split(self.measuring.result(), 2)
        log.info(f"expert return {expert.mean():.1f} ± {expert.std():.1f}, random {uniform.mean():.1f} "
                 f"over {len(expert)} episodes ({time.perf_counter() - self.started:.1f}s)")
        fixed = p.reference or {}
        if fixed:
            log.info(f"normalised by the manifest's references over {fixed['episodes']} episodes: expert "
                     f"{fixed['expert_return_mean']:.1f}, random {fixed['random_return_mean']:.1f}")
        else:
            log.info("normalised by this run's measure (the expert has no reference in experts/manifest.yaml)")
        p.tracker.log_media(p.evaluator.media(p.expert.act, "expert"), 0)
        return References(float(expert.mean()), float(expert.std()), float(uniform.mean()),
                          fixed.get("expert_return_mean"), fixed.get("random_return_mean"))


def rng(p: Parts, iteration: int) -> np.random.Generator:
    """The supervisor's random draws in one iteration: independent of how the run got there."""
    return np.random.default_rng([p.seed, iteration])


def checkpoint(p: Parts, data: Dataset, progress: Progress) -> None:
    """Save the dataset, the learner, and the state needed to resume after this iteration."""
    data.save(p.run_dir / "dataset.npz")
    pending = None if p.pending is None else {"head": p.pending.head, "tail": p.pending.tail,
                                              "due": p.pending.evaluating is not None}
    state = {"progress": asdict(progress), "dataset_size": len(data),
             "transitions_size": len(data.transitions), "pending": pending,
             "learner": p.learner.state_dict(),
             "supervisor": p.supervisor.state_dict(), "collector": p.collector.state_dict(), "rows": p.tracker.rows,
             "expert": p.expert.files}  # the expert's files and sha256, also when provenance.json is lost
    save_state(p.run_dir / "checkpoint.pt", state)
    atomic_write(p.run_dir / "learner.pt", lambda tmp: torch.save(p.learner.policy_state_dict(), tmp))


def dims(collector: Collector) -> tuple[int, int]:
    """The widths of what the learner sees (the student's view) and of an action."""
    return collector.view.dim, collector.actions.width


def state_dim(collector: Collector) -> int:
    """The width of the full observation the expert reads."""
    return collector.venv.single_observation_space.shape[0]


def restore(run_dir: Path, state: dict, learner: Learner, supervisor: Supervisor, collector: Collector) -> Resumed:
    """Put the saved state of the run in `run_dir` (its checkpoint `state`, its dataset.npz) back into the parts.

    Called before the folder is touched: a missing, short, inconsistent or non-finite file is one ConfigError and
    the folder stays as it was."""
    where = run_dir / "dataset.npz"
    try:
        saved = Dataset.load(where)  # may be one iteration ahead if killed in between
    except Exception as err:  # noqa: BLE001 - missing, truncated, foreign or pickled: one line
        raise ConfigError(f"{where}: cannot be read ({describe(err, 160)}); this run "
                          "cannot be resumed, choose a new hydra.run.dir") from None
    n, m = state["dataset_size"], state.get("transitions_size", 0)
    saved_m = len(saved.transitions)
    if saved.obs.shape[1:] != (dims(collector)[0],) or saved.acts.shape[1:] != (dims(collector)[1],):
        raise ConfigError(f"{where} holds observations of width {saved.obs.shape[1:]} and actions of width "
                          f"{saved.acts.shape[1:]}, not this task's {dims(collector)}; choose a new hydra.run.dir")
    if not isinstance(n, int) or not isinstance(m, int) or len(saved) < n or saved_m < m:
        raise ConfigError(f"{where} holds {len(saved)} labels and {saved_m} transitions but "
                          f"the checkpoint needs {n} and {m}; this run cannot be resumed, choose a new hydra.run.dir")
    data = Dataset(*dims(collector), capacity=max(1, m), state_dim=state_dim(collector),
                   obs_dtype=collector.view.dtype)
    data.add(saved.transitions.truncated(m))
    if len(data) != n:
        raise ConfigError(f"{where}: its first {m} transitions hold {len(data)} labels, but the checkpoint counts "
                          f"{n}; this run cannot be resumed, choose a new hydra.run.dir")
    if not (np.isfinite(data.obs).all() and np.isfinite(data.acts).all()):
        raise ConfigError(f"{where} holds non-finite states or labels; choose a new hydra.run.dir")
    ckpt = run_dir / "checkpoint.pt"
    try:
        learner.load_state_dict(state["learner"])
        supervisor.load_state_dict(state["supervisor"])
        collector.load_state_dict(state["collector"])
        progress = dict(state["progress"])
        progress = Progress(References(**progress.pop("refs")), **progress)
        rows = [dict(row) for row in state["rows"]]
        pending = state.get("pending")
        if pending is not None:
            pending = {"head": dict(pending["head"]), "tail": dict(pending["tail"]), "due": bool(pending["due"])}
    except Exception as err:  # noqa: BLE001 - a tampered or foreign checkpoint: one line
        raise ConfigError(f"{ckpt}: its saved state does not fit this run ({describe(err, 160)}); "
                          "choose a new hydra.run.dir") from None
    bad = [name for name, t in learner.policy_state_dict().items() if not torch.isfinite(t).all()]
    if bad:
        raise ConfigError(f"{ckpt}: the learner's weights hold nan or inf ({bad[0]}); choose a new hydra.run.dir")
    return Resumed(data, progress, rows, pending)
