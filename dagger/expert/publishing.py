"""Shipping a trained expert (used by experts/train.py).

Shipping re-evaluates the work folder's candidates on fresh episodes, copies the best to
`<ship_dir>/<algo>/<EnvId>.zip` (ship_dir: `experts/`), measures it once more on the manifest's own
episodes and records how it was made and how good it is in `<ship_dir>/manifest.yaml`.
"""
from __future__ import annotations

import platform
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from dagger.config import ConfigError, first_line
from dagger.cli import job_overrides
from dagger.envs import make_env
from dagger.expert.expert import ExpertConfig, load_expert
from dagger.expert.layout import train_command
from dagger.expert.work_dir import TrainingProgress, candidate_dir, trained_timesteps
from dagger.expert.references import measure_reference
from dagger.files import atomic_write, atomic_write_text, sha256

if TYPE_CHECKING:
    from dagger.expert.training import TrainConfig


EVAL_SEED = 10_000    # the manifest's evaluation episodes use seeds EVAL_SEED, EVAL_SEED + 1, ...
SELECT_SEED = 30_000  # episodes that choose among candidates, kept apart from the reported ones


README_MARKERS = ("<!-- manifest table -->", "<!-- end manifest table -->")


def check_ship_dir(ship_dir: Path) -> None:
    """What shipping will rewrite must be readable now, not after hours of training."""
    if ship_dir.exists() and not ship_dir.is_dir():
        raise ConfigError(f"ship_dir={ship_dir} is a file, not a folder; choose another ship_dir")
    load_manifest_checked(ship_dir)
    readme = ship_dir / "README.md"
    try:
        text = readme.read_text() if readme.is_file() else README_MARKERS[0] + README_MARKERS[1]
    except (UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"ship_dir={ship_dir}: README.md is unreadable ({err})") from None
    start, end = README_MARKERS
    if start not in text or end not in text.split(start, 1)[1]:
        raise ConfigError(f"ship_dir={ship_dir}: README.md lacks the lines {start} and {end} "
                          "between which the manifest table is written")


def load_manifest_checked(ship_dir: Path) -> dict:
    """`load_manifest`, with an unreadable manifest refused as one line before any work."""
    try:
        manifest = load_manifest(ship_dir)
    except (yaml.YAMLError, UnicodeDecodeError, OSError, RecursionError) as err:
        reason = first_line(err)
        raise ConfigError(f"ship_dir={ship_dir}: manifest.yaml is unreadable ({reason}); fix or remove it") from None
    if not isinstance(manifest, dict):
        raise ConfigError(f"ship_dir={ship_dir}: manifest.yaml is not a mapping of <algo>/<EnvId>: entry; "
                          "fix or remove it")
    return manifest


def load_acting_model(cfg: TrainConfig, path: Path, env):
    return load_expert(ExpertConfig(algo=cfg.expert.algo, path=str(path), deterministic=True), cfg.env.name, env)


def choose_candidate(cfg: TrainConfig, work: Path) -> dict:
    """The kept candidate with the best mean return over `publish_episodes` selection episodes."""
    candidates = TrainingProgress(work / "progress.json").state.get("candidates", [])
    zip_name = f"{cfg.env.id}.zip"
    candidates = [c for c in candidates if (candidate_dir(work, c["timesteps"]) / zip_name).is_file()]
    if not candidates:
        raise ConfigError(f"work_dir={work}: no trained candidates yet; train first with "
                          f"{train_command(cfg.env.name, cfg.expert.algo)}")
    if len(candidates) == 1:
        return candidates[0]
    env = make_env(cfg.env)
    for c in candidates:
        expert = load_acting_model(cfg, candidate_dir(work, c["timesteps"]) / zip_name, env)
        c["selection_return"] = float(np.mean(episode_returns(env, expert.act, cfg.publish_episodes, SELECT_SEED)))
        print(f"candidate at {c['timesteps']:>8d} steps: periodic eval {c['return']:8.1f}, "
              f"{cfg.publish_episodes} selection episodes {c['selection_return']:8.1f}", flush=True)
    return max(candidates, key=lambda c: c["selection_return"])


def publish(cfg: TrainConfig) -> dict:
    """Choose the best candidate, copy it into experts/ and record it, freshly evaluated, in the manifest."""
    work = Path(cfg.work_dir)
    env_id, algo = cfg.env.id, cfg.expert.algo
    ship_dir = Path(cfg.ship_dir)
    check_ship_dir(ship_dir)
    chosen = choose_candidate(cfg, work)
    source = candidate_dir(work, chosen["timesteps"])
    target = ship_dir / algo / f"{env_id}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    stats, shipped_stats = source / env_id / "vecnormalize.pkl", target.parent / env_id / "vecnormalize.pkl"
    shipped_stats.unlink(missing_ok=True)  # statistics of an earlier model must never meet this one
    atomic_write(target, lambda tmp: shutil.copyfile(source / f"{env_id}.zip", tmp))
    if stats.is_file():
        shipped_stats.parent.mkdir(exist_ok=True)
        atomic_write(shipped_stats, lambda tmp: shutil.copyfile(stats, tmp))

    env = make_env(cfg.env)
    expert = load_acting_model(cfg, target, env)
    returns = episode_returns(env, expert.act, cfg.publish_episodes, seed=EVAL_SEED)
    env.action_space.seed(0)
    random_returns = episode_returns(env, lambda o: np.stack([env.action_space.sample() for _ in o]),
                                     cfg.publish_episodes, seed=20_000)
    progress = TrainingProgress(work / "progress.json").state
    training = progress.get("training") or training_record(cfg)
    trained = trained_timesteps(work)
    entry = {
        "env_id": env_id, "algo": algo, "file": str(target.relative_to(ship_dir)),
        "sha256": sha256(target), "size_bytes": target.stat().st_size,
        "timesteps": int(chosen["timesteps"]),
        "candidates": len(progress.get("candidates", [])), "trained_timesteps": trained,
        "seed": training["seed"], "train_wall_time_s": round(progress["wall_time_s"], 1),
        "hyperparams": training["hyperparams"], "normalize": training["normalize"],
        "eval_return_mean": round(float(np.mean(returns)), 2), "eval_return_std": round(float(np.std(returns)), 2),
        "eval_episodes": len(returns), "deterministic": True,
        "random_return_mean": round(float(np.mean(random_returns)), 2),
        "random_return_std": round(float(np.std(random_returns)), 2),
        "reference": measure_reference(cfg.env, expert.act),  # the fixed normaliser of runs with this expert
        "command": " ".join([train_command(cfg.env.name, algo), f"expert.train.timesteps={trained}",
                             *training["overrides"]]),
        "versions": {p: version(p) for p in ("stable_baselines3", "sb3_contrib", "torch", "gymnasium", "mujoco")}
        | {"python": platform.python_version()},
    }
    floor = cfg.floors.get(env_id)
    if floor is not None:
        entry["floor"] = floor
        entry["meets_floor"] = bool(entry["eval_return_mean"] >= floor)
    if stats.is_file():
        entry["vecnormalize"] = str((target.parent / env_id / "vecnormalize.pkl").relative_to(ship_dir))
    manifest = load_manifest_checked(ship_dir) | {f"{algo}/{env_id}": entry}
    manifest = dict(sorted(manifest.items()))
    atomic_write_text(ship_dir / "manifest.yaml", yaml.safe_dump(manifest, sort_keys=False))
    write_experts_readme(manifest, ship_dir / "README.md")
    print(f"shipped {target}: {entry['eval_return_mean']} ± {entry['eval_return_std']} over "
          f"{entry['eval_episodes']} episodes (random policy {entry['random_return_mean']})", flush=True)
    return entry


def training_record(cfg: TrainConfig) -> dict:
    """How this expert is trained: seed, hyperparameters and the command-line overrides that matter."""
    skip = ("env=", "expert=", "expert.trust=", "publish_only=", "publish_episodes=", "work_dir=", "ship_dir=",
            "expert.train.timesteps=")
    overrides = [o for o in job_overrides() if not o.startswith(skip)]
    return {"seed": cfg.seed, "normalize": cfg.expert.train.normalize, "overrides": overrides,
            "hyperparams": dict(cfg.expert.train.hyperparams)}


def load_manifest(ship_dir: Path) -> dict:
    """`<ship_dir>/manifest.yaml`: `<algo>/<EnvId>` -> entry; files are relative to ship_dir."""
    path = ship_dir / "manifest.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def episode_returns(env, act, episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of `act` over whole episodes, one environment, seeds seed, seed+1, ..."""
    from dagger.actions import actions_of

    returns, actions = [], actions_of(env.action_space)
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(actions.to_env(act(obs[None]))[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def write_experts_readme(manifest: dict, readme: Path) -> None:
    """Regenerate the manifest table in the experts' README between its markers."""
    rows = ["| expert | timesteps | return (mean ± std, episodes) | floor | random | train time | file size | command |",
            "|---|---|---|---|---|---|---|---|"]
    for key, e in manifest.items():
        floor = f"{e['floor']} {'met' if e['meets_floor'] else '**not met**'}" if "floor" in e else "-"
        rows.append(f"| `{key}` | {e['timesteps']:,} of {e['trained_timesteps']:,} | {e['eval_return_mean']:.0f} ± "
                    f"{e['eval_return_std']:.0f} ({e['eval_episodes']}) | {floor} | {e['random_return_mean']:.0f} | "
                    f"{e['train_wall_time_s'] / 60:.0f} min | {e['size_bytes'] / 1e6:.1f} MB | `{e['command']}` |")
    table = "\n".join(rows)
    start, end = README_MARKERS
    text = readme.read_text() if readme.is_file() else f"# Experts\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    atomic_write_text(readme, f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")
