"""Fixed normalisation references for shipped experts, as D4RL's reference scores are fixed per task.

A learner's normalised return is (R - R_random) / (R_expert - R_random). Measured on each run's 10 evaluation
episodes, R_expert moves with the CPU's kernels (one fallen episode in ten moves it by 10%), so the same learner
return normalises differently from run to run. Each shipped expert's manifest entry therefore records

    reference: {episodes: 100, expert_seed, expert_return_mean, expert_return_std,
                random_seed, random_return_mean, random_return_std}

measured once, deterministically, on `episodes` seeded episodes each (seeds expert_seed + k, random_seed + k), and
a run whose expert's sha256 matches a manifest entry normalises by it. A user's own expert has no entry: it is
normalised by the run's own 10-episode measure, and the run says which it used (`normalized_by`).

    python -m dagger.expert.references            # measure every manifest entry that lacks a reference
    python -m dagger.expert.references --all      # measure them all again
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml

from dagger.files import atomic_write_text

SHIP_DIR = Path(__file__).resolve().parents[2] / "experts"
EPISODES = 100
EXPERT_SEED, RANDOM_SEED = 40_000, 50_000  # apart from the runs' evaluation seeds (seed + 1,000,000 + k)


def shipped_reference(model_sha256: str | None, ship_dir: Path = SHIP_DIR) -> dict | None:
    """The manifest's reference for the shipped expert whose model file has this sha256, if there is one."""
    path = ship_dir / "manifest.yaml"
    if not model_sha256 or not path.is_file():
        return None
    manifest = yaml.safe_load(path.read_text()) or {}
    for entry in manifest.values() if isinstance(manifest, dict) else ():
        if isinstance(entry, dict) and entry.get("sha256") == model_sha256 and isinstance(entry.get("reference"), dict):
            return entry["reference"]
    return None


def measure_reference(env_cfg, act, episodes: int = EPISODES) -> dict:
    """The expert's (`act`, deterministic) and a uniform-random policy's returns over `episodes` seeded episodes,
    all run side by side."""
    from dagger.rollout import Evaluator

    expert = Evaluator(env_cfg, episodes, seed=EXPERT_SEED)
    returns = expert.returns(act)
    expert.close()
    uniform = np.random.default_rng(RANDOM_SEED)
    chance = Evaluator(env_cfg, episodes, seed=RANDOM_SEED)
    random_returns = chance.returns(lambda obs: chance.actions.random(uniform, len(obs)))
    chance.close()
    return {"episodes": episodes, "expert_seed": EXPERT_SEED, "expert_return_mean": round(float(returns.mean()), 2),
            "expert_return_std": round(float(returns.std()), 2), "random_seed": RANDOM_SEED,
            "random_return_mean": round(float(random_returns.mean()), 2),
            "random_return_std": round(float(random_returns.std()), 2)}


def entry_reference(entry: dict, ship_dir: Path, episodes: int = EPISODES) -> dict:
    """Measure the reference of one manifest entry's expert."""
    from dagger.schemas import parse
    from dagger.envs import EnvConfig, make_env
    from dagger.expert.expert import ExpertConfig, load_expert

    env_cfg = parse(EnvConfig, {"name": entry["env_id"], "id": entry["env_id"], "num_envs": 1,
                                "max_episode_steps": None, "kwargs": {}}, "env.")
    probe = make_env(env_cfg)
    expert = load_expert(ExpertConfig(algo=entry["algo"], path=str(ship_dir / entry["file"]), deterministic=True),
                         env_cfg.name, probe)
    probe.close()
    return measure_reference(env_cfg, expert.act, episodes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dagger.expert.references", description=__doc__.split("\n")[0])
    parser.add_argument("--ship-dir", type=Path, default=SHIP_DIR)
    parser.add_argument("--episodes", type=int, default=EPISODES)
    parser.add_argument("--all", action="store_true", help="measure again the entries that have a reference")
    args = parser.parse_args(argv)
    path = args.ship_dir / "manifest.yaml"
    manifest = yaml.safe_load(path.read_text())
    for key, entry in manifest.items():
        if "reference" in entry and not args.all:
            continue
        t0 = time.perf_counter()
        entry["reference"] = entry_reference(entry, args.ship_dir, args.episodes)
        ref = entry["reference"]
        print(f"{key}: expert {ref['expert_return_mean']} ± {ref['expert_return_std']}, random "
              f"{ref['random_return_mean']} ± {ref['random_return_std']} over {args.episodes} episodes "
              f"({time.perf_counter() - t0:.0f}s)", flush=True)
        atomic_write_text(path, yaml.safe_dump(manifest, sort_keys=False))  # each entry kept as soon as measured


if __name__ == "__main__":
    main()
