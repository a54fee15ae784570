"""Training, checkpointing and shipping Stable-Baselines3 experts (used by experts/train.py).

Work files (full checkpoint, replay buffer, the models with the best periodic evaluations) live in
`work_dir`, which is never committed. Shipping re-evaluates those candidates on fresh episodes,
copies the best to `<ship_dir>/<algo>/<EnvId>.zip` (ship_dir: `experts/`), measures it once more on
the manifest's own episodes and records how it was made and how good it is in
`<ship_dir>/manifest.yaml`.
"""
from __future__ import annotations

import json
import platform
import shutil
import time
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from dagger.config import COUNT, SEED, Boolean, ConfigError, Mapping, Number, Schema, Text, first_line
from dagger.envs import EnvConfig, make_env
from dagger.experts import ExpertConfig, ExpertTrainingConfig, algorithm_class, train_command
from dagger.files import atomic_write, atomic_write_text, sha256

EVAL_SEED = 10_000    # the manifest's evaluation episodes use seeds EVAL_SEED, EVAL_SEED + 1, ...
SELECT_SEED = 30_000  # episodes that choose among candidates, kept apart from the reported ones


class TrainedExpertConfig(ExpertConfig):
    train: ExpertTrainingConfig  # required here


class TrainConfig(Schema):
    """conf/train.yaml: the task, the expert to train, and the training, candidates and shipping budgets."""

    env: EnvConfig
    expert: TrainedExpertConfig
    seed: Annotated[int, SEED]
    torch_threads: Annotated[int, COUNT]
    checkpoint_every: Annotated[int, COUNT]
    eval_every: Annotated[int, COUNT]
    eval_episodes: Annotated[int, COUNT]
    keep_candidates: Annotated[int, COUNT]
    publish_episodes: Annotated[int, COUNT]
    publish_only: Annotated[bool, Boolean()]
    floors: Annotated[dict[str, float], Mapping(Number(), what="a mapping of env id: minimum return")]
    ship_dir: Annotated[str, Text()]
    work_dir: Annotated[str, Text()]


def make_train_env(cfg: TrainConfig, stats: Path | None = None, training: bool = True) -> VecEnv:
    venv = DummyVecEnv([lambda: Monitor(make_env(cfg.env))])
    if not cfg.expert.train.normalize:
        return venv
    if stats is not None and stats.is_file():
        venv = VecNormalize.load(str(stats), venv)
    else:
        venv = VecNormalize(venv)
    venv.training = training
    venv.norm_reward = venv.norm_reward and training
    return venv


def build_model(cfg: TrainConfig, venv: VecEnv) -> BaseAlgorithm:
    params = dict(cfg.expert.train.hyperparams)
    noise_std = params.pop("action_noise_std", None)
    if noise_std:
        n = venv.action_space.shape[0]
        params["action_noise"] = NormalActionNoise(np.zeros(n), noise_std * np.ones(n))
    return algorithm_class(cfg.expert.algo)("MlpPolicy", venv, seed=cfg.seed, device="cpu", **params)


class TrainingProgress:
    """Training state that survives sittings: wall time spent and the kept candidates.

    `candidates` lists `{"timesteps", "return"}` for the models in `candidates/<timesteps>/`, best
    periodic evaluation first.
    """

    def __init__(self, path: Path):
        self.path = path
        self.state = {"wall_time_s": 0.0, "candidates": []}
        if path.exists():
            try:
                self.state = json.loads(path.read_text())
            except (ValueError, OSError, RecursionError) as err:
                raise ConfigError(f"work_dir={path.parent}: progress.json is unreadable ({type(err).__name__}: "
                                  f"{first_line(err)[:120]}); fix or remove it") from None
            if not isinstance(self.state, dict) or not isinstance(self.state.get("candidates", []), list):
                raise ConfigError(f"work_dir={path.parent}: progress.json is not this project's; fix or remove it")

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.state, indent=2))


class CheckpointAndEvaluate(BaseCallback):
    """Periodic resumable checkpoints, deterministic evaluations, and the best models so far."""

    def __init__(self, cfg: TrainConfig, work: Path, progress: TrainingProgress):
        super().__init__()
        self.cfg, self.work, self.progress = cfg, work, progress
        self.eval_env = make_train_env(cfg, training=False)
        self.started = time.time()
        self.sitting_start_steps = 0

    def _on_training_start(self) -> None:
        self.sitting_start_steps = self.num_timesteps
        self.base_wall = self.progress.state["wall_time_s"]

    def _on_step(self) -> bool:
        if self.num_timesteps % self.cfg.eval_every == 0:
            self.evaluate()
        if self.num_timesteps % self.cfg.checkpoint_every == 0:
            self.checkpoint()
        return True

    def evaluate(self) -> None:
        if isinstance(self.eval_env, VecNormalize):
            self.eval_env.obs_rms = self.training_env.obs_rms.copy()
        mean, std = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.cfg.eval_episodes,
                                    deterministic=True)
        self.keep_if_among_best(float(mean))
        elapsed = time.time() - self.started
        sps = (self.num_timesteps - self.sitting_start_steps) / max(elapsed, 1e-9)
        print(f"[{self.cfg.expert.algo} {self.cfg.env.id}] steps {self.num_timesteps:>8d}  "
              f"eval {mean:8.1f} ± {std:6.1f}  best {self.progress.state['candidates'][0]['return']:8.1f}  "
              f"{sps:5.0f} steps/s", flush=True)
        with open(self.work / "evaluations.csv", "a") as f:
            f.write(f"{self.num_timesteps},{mean:.2f},{std:.2f},{time.time():.0f}\n")
        self.progress.state["wall_time_s"] = self.base_wall + elapsed
        self.progress.save()

    def keep_if_among_best(self, mean: float) -> None:
        """Keep this model as a candidate if its evaluation is among the `keep_candidates` best."""
        candidates = self.progress.state["candidates"] + [{"timesteps": self.num_timesteps, "return": mean}]
        candidates.sort(key=lambda c: -c["return"])
        kept, dropped = candidates[:self.cfg.keep_candidates], candidates[self.cfg.keep_candidates:]
        if any(c["timesteps"] == self.num_timesteps for c in kept):
            save_acting_model(self.model, candidate_dir(self.work, self.num_timesteps))
        for c in dropped:
            shutil.rmtree(candidate_dir(self.work, c["timesteps"]), ignore_errors=True)
        self.progress.state["candidates"] = kept

    def checkpoint(self) -> None:
        atomic_write(self.work / "checkpoint.zip", self.model.save)
        if hasattr(self.model, "replay_buffer"):
            atomic_write(self.work / "replay_buffer.pkl", self.model.save_replay_buffer)
        if isinstance(self.training_env, VecNormalize):
            atomic_write(self.work / "vecnormalize.pkl", self.training_env.save)
        self.progress.state["wall_time_s"] = self.base_wall + time.time() - self.started
        self.progress.save()


def candidate_dir(work: Path, timesteps: int) -> Path:
    return work / "candidates" / str(timesteps)


def save_acting_model(model: BaseAlgorithm, folder: Path) -> None:
    """What acting needs, in the rl-baselines3-zoo layout: `<EnvId>.zip` (+ `<EnvId>/vecnormalize.pkl`)."""
    env_id = model.get_env().envs[0].spec.id if hasattr(model.get_env(), "envs") else None
    env_id = env_id or model.get_env().get_attr("spec")[0].id
    folder.mkdir(parents=True, exist_ok=True)
    # Replay buffers are never part of the .zip; optimiser state is kept so SB3 loads it unchanged.
    atomic_write(folder / f"{env_id}.zip", model.save)
    venv = model.get_env()
    if isinstance(venv, VecNormalize):
        (folder / env_id).mkdir(exist_ok=True)
        atomic_write(folder / env_id / "vecnormalize.pkl", venv.save)


def train(cfg: TrainConfig) -> None:
    """Train (or resume) until `expert.train.timesteps`, then ship the best candidate.

    Everything that can be refused (the config, env kwargs, SB3 hyperparameters) is checked before
    anything is written to `work_dir`.
    """
    import torch

    torch.set_num_threads(cfg.torch_threads)
    work = Path(cfg.work_dir)
    check_ship_dir(Path(cfg.ship_dir))
    check_work_dir_trusted(cfg, work)
    venv = make_train_env(cfg, stats=work / "vecnormalize.pkl")
    checkpoint = work / "checkpoint.zip"
    if checkpoint.is_file():
        model = algorithm_class(cfg.expert.algo).load(checkpoint, env=venv, device="cpu")
        if (work / "replay_buffer.pkl").is_file():
            model.load_replay_buffer(work / "replay_buffer.pkl")
        print(f"resuming {checkpoint} at {model.num_timesteps} steps", flush=True)
    else:
        try:
            model = build_model(cfg, venv)
        except (TypeError, ValueError, AssertionError) as err:
            raise ConfigError(hyperparams_error(cfg.expert.algo, err)) from None
    work.mkdir(parents=True, exist_ok=True)
    progress = TrainingProgress(work / "progress.json")
    progress.state["training"] = training_record(cfg)  # publish_only runs read how it was trained here
    progress.save()
    remaining = cfg.expert.train.timesteps - model.num_timesteps
    if remaining > 0:
        callback = CheckpointAndEvaluate(cfg, work, progress)
        model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=False)
        callback.checkpoint()
    publish(cfg)


RESUME_FILES = ("checkpoint.zip", "replay_buffer.pkl", "vecnormalize.pkl")  # SB3's pickles: loading runs code


def check_work_dir_trusted(cfg: TrainConfig, work: Path) -> None:
    """Resuming training unpickles the work folder's SB3 files, which can run code: only with expert.trust=true.
    Its progress.json must be readable too, before anything is written."""
    TrainingProgress(work / "progress.json")
    found = [name for name in RESUME_FILES if (work / name).exists()]
    if found and not cfg.expert.trust:
        raise ConfigError(f"work_dir={work} holds {', '.join(found)} from an earlier sitting; resuming unpickles "
                          "them (SB3's format can run code), so it needs expert.trust=true: set it only if this "
                          "machine wrote them, or choose a new work_dir")


def hyperparams_error(algo: str, err: Exception) -> str:
    """SB3's refusal of `expert.train.hyperparams`, as one line naming the key."""
    import re

    text = str(err).strip()
    unexpected = re.search(r"unexpected keyword argument '([^']+)'", text)
    if unexpected:
        return f"expert.train.hyperparams: {algo.upper()} does not accept {unexpected.group(1)}"
    reason = text.splitlines()[0] if text else ""
    return f"expert.train.hyperparams: {algo.upper()} refuses them: {type(err).__name__}: {reason}".rstrip(": ")


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
    from dagger.experts import ExpertConfig, load_expert

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
    from hydra.core.hydra_config import HydraConfig

    overrides = []
    if HydraConfig.initialized():
        skip = ("env=", "expert=", "expert.trust=", "publish_only=", "publish_episodes=", "work_dir=", "ship_dir=",
                "expert.train.timesteps=")
        overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(skip)]
    return {"seed": cfg.seed, "normalize": cfg.expert.train.normalize, "overrides": overrides,
            "hyperparams": dict(cfg.expert.train.hyperparams)}


def trained_timesteps(work: Path) -> int:
    lines = (work / "evaluations.csv").read_text().split() if (work / "evaluations.csv").is_file() else []
    return int(lines[-1].split(",")[0]) if lines else 0


def load_manifest(ship_dir: Path) -> dict:
    """`<ship_dir>/manifest.yaml`: `<algo>/<EnvId>` -> entry; files are relative to ship_dir."""
    path = ship_dir / "manifest.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def episode_returns(env, act, episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of `act` over whole episodes, one environment, seeds seed, seed+1, ..."""
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs[None])[0])
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
