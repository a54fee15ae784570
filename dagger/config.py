"""Config helpers shared by the entry points: resolvers and the checks made before any work."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ROOT_CONF = PROJECT_ROOT / "conf"


class ConfigError(ValueError):
    """Bad input: reported as one line naming the key or file, before any work is done."""


def register_resolvers() -> None:
    """`${project_root:}` lets config defaults point at files shipped with the project."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))


def resolve_path(path: str | Path) -> Path:
    """Relative paths given on the command line are relative to where the user ran the command."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    try:
        from hydra.utils import get_original_cwd

        return Path(get_original_cwd()) / path
    except ValueError:  # not inside a Hydra app
        return Path.cwd() / path


register_resolvers()


DEVICES = ("cpu", "cuda", "auto")


def check_at_least(cfg, key: str, minimum: float) -> None:
    value = OmegaConf.select(cfg, key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{key}={value} must be a number >= {minimum}")


def validate(cfg) -> None:
    """Range checks on the run config; anything wrong stops the run before any work."""
    import gymnasium as gym

    for key, minimum in (("schedule.iterations", 1), ("schedule.rollout_steps", 1),
                         ("schedule.initial_expert_steps", 0), ("eval.episodes", 1), ("env.num_envs", 1),
                         ("policy.batch_size", 1), ("policy.gradient_steps", 1), ("policy.lr", 1e-12),
                         ("threads", 1)):
        check_at_least(cfg, key, minimum)
    for key in ("schedule.beta_value",):
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key}={value} is outside [0, 1]")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device={cfg.device!r} is not one of {', '.join(DEVICES)}")
    if cfg.logger.mode not in ("offline", "online", "disabled"):
        raise ConfigError(f"logger.mode={cfg.logger.mode!r} is not one of offline, online, disabled")
    try:
        gym.spec(cfg.env.id)
    except gym.error.Error:
        raise ConfigError(f"env.id={cfg.env.id!r} is not a registered gymnasium environment") from None


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but torch sees no CUDA device (use device=cpu or device=auto)")
    return device
