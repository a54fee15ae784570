"""Run a DAgger experiment: python run.py env=walker expert=sac [group=option ...] [key=value ...]

Config groups (conf/): env, expert, policy, schedule, logger. `--help` lists their options and
`--cfg job` prints the composed config. Outputs go to the run's Hydra directory.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dagger.config import ConfigError, pick_device, register_resolvers, validate
from dagger.tracking import read_status, write_status

register_resolvers()


def build_parts(cfg: DictConfig, run_dir: Path):
    """Config -> parts. Every check that can fail happens here, before any work."""
    import numpy as np
    import torch

    from dagger.envs import make_env
    from dagger.experts import load_expert
    from dagger.loop import Budget, Parts
    from dagger.policy import build_learner
    from dagger.rollout import Collector, Evaluator
    from dagger.schedules import build_schedule
    from dagger.tracking import Tracker

    device = pick_device(cfg.device)
    schedule = build_schedule(cfg.schedule)
    torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    probe = make_env(cfg.env)
    expert = load_expert(cfg.expert, cfg.env.name, probe, device=device)
    learner = build_learner(cfg.policy, probe.observation_space, probe.action_space, device)
    probe.close()
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    budget = Budget(int(cfg.schedule.iterations), int(cfg.schedule.rollout_steps),
                    int(cfg.schedule.initial_expert_steps))
    return Parts(expert=expert, learner=learner, schedule=schedule, budget=budget,
                 collector=Collector(cfg.env, int(cfg.env.num_envs), seed=cfg.seed),
                 evaluator=Evaluator(cfg.env, int(cfg.eval.episodes), seed=cfg.seed + 1_000_000),
                 tracker=Tracker(run_dir, cfg.logger, cfg), run_dir=run_dir, seed=int(cfg.seed))


# Keys that may change when a run is resumed: more iterations, other logging or hardware.
RESUMABLE_CHANGES = ("schedule.iterations", "logger.", "resume", "threads", "device")


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resumable(saved: DictConfig, cfg: DictConfig, run_dir: Path) -> None:
    """Resuming with a different experiment would silently mix two; name the first differing key."""
    old = flatten(OmegaConf.to_container(saved, resolve=True))
    new = flatten(OmegaConf.to_container(cfg, resolve=True))
    if new.get("schedule.beta") != "linear":  # the ramp length only matters to the linear schedule
        old.pop("schedule.beta_ramp", None), new.pop("schedule.beta_ramp", None)
    for key in sorted(old.keys() | new.keys()):
        if not key.startswith(RESUMABLE_CHANGES) and old.get(key) != new.get(key):
            raise ConfigError(f"{key}={new.get(key)!r} differs from {old.get(key)!r} in the run being resumed "
                              f"({run_dir}); choose a new hydra.run.dir")


def finished_rows(cfg: DictConfig, run_dir: Path) -> list[dict] | None:
    """Checks the config and any run already in `run_dir`; returns its rows if it already finished."""
    validate(cfg)
    if not (run_dir / "checkpoint.pt").is_file():
        return None
    if not cfg.resume:
        raise ConfigError(f"resume=false but {run_dir} already holds a run; choose a new hydra.run.dir")
    check_resumable(OmegaConf.load(run_dir / "config.yaml"), cfg, run_dir)
    status = read_status(run_dir)
    if status.get("status") == "finished" and status.get("iterations") == cfg.schedule.iterations:
        import pandas as pd

        return pd.read_csv(run_dir / "metrics.csv").to_dict("records")
    return None


def summarize(rows: list[dict]) -> dict:
    final, best = rows[-1], max(rows, key=lambda r: r["return_mean"])
    return {"final_return": final["return_mean"], "final_return_std": final["return_std"],
            "best_return": best["return_mean"], "best_iteration": best["iteration"],
            "expert_return": final["expert_return_mean"], "expert_return_std": final["expert_return_std"],
            "final_normalized_return": final["normalized_return"],
            "best_normalized_return": best["normalized_return"],
            "expert_labels": final["expert_labels"], "wall_time_s": final["wall_time_s"]}


def print_table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("iter", "beta", "labels", "loss", "return", "% expert", "time (s)"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r["iteration"]), f"{r['beta']:.2f}", f"{r['expert_labels']:,}", f"{r['train_loss']:.4f}",
                      f"{r['return_mean']:.1f} ± {r['return_std']:.1f}", f"{r['normalized_return']:.1%}",
                      f"{r['wall_time_s']:.1f}")
    last = rows[-1]
    table.caption = f"expert {last['expert_return_mean']:.1f} ± {last['expert_return_std']:.1f}"
    Console().print(table)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from dagger.loop import run_dagger
    from dagger.report import plot_curve

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    title = f"DAgger {cfg.env.id} / {cfg.expert.algo} expert / {cfg.schedule.name} (seed {cfg.seed})"
    try:
        rows = finished_rows(cfg, run_dir)
        parts = build_parts(cfg, run_dir) if rows is None else None
    except ConfigError as err:
        sys.exit(f"error: {err}")
    if parts is None:
        print(f"already finished: {run_dir}")
    else:
        write_status(run_dir, "running")
        failed = True
        try:
            rows = run_dagger(parts)
            import pandas as pd

            curve = plot_curve(pd.DataFrame(rows), run_dir / "curve.png", title)
            failed = False
        except BaseException as err:
            write_status(run_dir, "failed", error=f"{type(err).__name__}: {err}")
            raise
        finally:
            parts.tracker.finish({} if failed else summarize(rows), None if failed else curve, failed=failed)
            parts.collector.close()
            parts.evaluator.close()
        write_status(run_dir, "finished", iterations=int(cfg.schedule.iterations))
    print_table(rows, title)
    print(f"outputs: {run_dir}")
    return summarize(rows)


if __name__ == "__main__":
    main()
