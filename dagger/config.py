"""Config helpers shared by the entry points: resolvers, and the checks made before any work.

The keys of the run config (`conf/config.yaml` and its groups) and of the expert-training config
(`conf/train.yaml`) are checked by `RUN_SPEC` and `TRAIN_SPEC` below: a nested table of small check objects
mirroring the config's shape; each algorithm checks its own keys in its module. `validate(cfg)` and
`validate_train(cfg)` walk the tables;
the first bad key raises `ConfigError` with one line that names it (`key=value ...` or `key: ...`),
which the entry points print as `error: <line>` before building anything.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ROOT_CONF = PROJECT_ROOT / "conf"


class ConfigError(ValueError):
    """Bad input: reported as one line naming the key or file, before any work is done."""


def first_line(err: BaseException) -> str:
    """An exception as one line: the first line of its message, or its type when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its complaints as the one `error: ...` line every entry point uses; `hint` is the
    usage shown after the program's name."""

    def __init__(self, *args, hint: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.hint = hint

    def error(self, message: str):
        self.exit(2, f"error: {message} (usage: {self.prog} {self.hint})\n")


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


# ---- the checks: each says what is wrong with a value, or None ----------------------------------

def show(value) -> str:
    """A value as the user would type it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, ListConfig)):
        return f"[{', '.join(show(v) for v in value)}]"
    if isinstance(value, (dict, DictConfig)):
        return f"{{{', '.join(f'{k}: {show(v)}' for k, v in value.items())}}}"
    return str(value)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Check:
    """One key's rule. `problem(value)` returns what is wrong (`must be ...`) or None."""

    def problem(self, value) -> str | None:
        raise NotImplementedError


@dataclass(frozen=True)
class Integer(Check):
    """An int (bools and floats refused, even 2.0) in [low, high]; either bound may be open-ended."""

    low: int | None = None
    high: int | None = None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an integer >= {self.low}"
        return "an integer" if self.high is None else f"an integer <= {self.high}"

    def problem(self, value):
        if isinstance(value, float) and value.is_integer() and self.problem(int(value)) is None:  # 2.0, 1e6
            return f"must be {self.describe()} (write {int(value)}, without a decimal point or exponent)"
        if (not is_int(value) or (self.low is not None and value < self.low)
                or (self.high is not None and value > self.high)):
            return f"must be {self.describe()}"
        return None


@dataclass(frozen=True)
class Number(Check):
    """A finite int or float (bools refused) with optional bounds; `above` is a strict lower bound."""

    low: float | None = None
    high: float | None = None
    above: float | None = None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"a finite number in [{self.low:g}, {self.high:g}]"
        if self.above is not None:
            return f"a finite number > {self.above:g}"
        if self.low is not None:
            return f"a finite number >= {self.low:g}"
        return "a finite number"

    def problem(self, value):
        if not is_number(value) or not math.isfinite(value):
            return f"must be {self.describe()}"
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            return f"is outside [{self.low:g}, {self.high:g}]"
        if (self.above is not None and value <= self.above) or (self.low is not None and value < self.low):
            return f"must be {self.describe()}"
        return None


@dataclass(frozen=True)
class Boolean(Check):
    def problem(self, value):
        return None if isinstance(value, bool) else "must be true or false"


@dataclass(frozen=True)
class Text(Check):
    """A non-empty string, optionally without some characters and at most `max_len` long."""

    forbidden: str = ""
    max_len: int | None = None

    def problem(self, value):
        if not isinstance(value, str) or not value:
            return "must be a non-empty string"
        bad = sorted({c for c in value if c in self.forbidden})
        if bad:
            return f"must not contain {' '.join(bad)} (forbidden: {' '.join(self.forbidden)})"
        if self.max_len is not None and len(value) > self.max_len:
            return f"must be at most {self.max_len} characters long"
        return None


@dataclass(frozen=True)
class OneOf(Check):
    options: tuple

    def problem(self, value):
        return None if isinstance(value, str) and value in self.options else f"is not one of {', '.join(self.options)}"


@dataclass(frozen=True)
class ListOf(Check):
    """A list whose items all pass `item`; `what` names them in the message."""

    item: Check
    what: str

    def problem(self, value):
        if not isinstance(value, ListConfig) or any(self.item.problem(v) for v in value):
            return f"must be a list of {self.what}"
        return None


@dataclass(frozen=True)
class Nullable(Check):
    """null, or a value that passes `inner`."""

    inner: Check
    null_means: str = ""

    def problem(self, value):
        if value is None:
            return None
        inner = self.inner.problem(value)
        if inner is None:
            return None
        meaning = f" ({self.null_means})" if self.null_means else ""
        return inner.replace("must be ", f"must be null{meaning} or ", 1) if inner.startswith("must be ") else inner


@dataclass(frozen=True)
class Mapping(Check):
    """A free-form subtree (any keys), passed through as keyword arguments; when `values` is given,
    `check_tree` checks each value with it as `<key>.<name>`."""

    values: Check | None = None
    what: str = "a mapping (key: value, ...)"

    def problem(self, value):
        return None if isinstance(value, DictConfig) else f"must be {self.what}"


@dataclass(frozen=True)
class RegisteredEnv(Check):
    def problem(self, value):
        if not isinstance(value, str) or not value:
            return "must be a non-empty string (a gymnasium environment id)"
        import gymnasium as gym

        try:
            gym.spec(value)
        except gym.error.Error:
            return "is not a registered gymnasium environment"
        return None


@dataclass(frozen=True)
class Open:
    """A group whose `known` keys are checked here and whose other keys are passed through as keyword
    arguments, checked by what receives them (e.g. `algo`: the supervisor class; see
    `dagger.supervisors.build_supervisor`)."""

    known: dict


@dataclass(frozen=True)
class NotRequired(Check):
    """A key that only some options or overlays have (e.g. `logger=none` has `mode` alone)."""

    inner: Check | dict

    def problem(self, value):
        return self.inner.problem(value)


# ---- the spec: every key of every config, mirroring conf/ ----------------------------------------

DEVICES = ("cpu", "cuda", "auto")
LOGGER_MODES = ("offline", "online", "disabled")     # dagger.tracking.LOGGER_MODES
BETA_KINDS = ("indicator", "constant", "linear", "exponential")  # dagger.schedules.KINDS
LOSSES = ("mse", "gaussian")                         # dagger.policy.LOSSES
ACTIVATIONS = ("relu", "tanh", "elu")                # dagger.policy.ACTIVATIONS
LR_SCHEDULES = ("constant", "cosine")                # dagger.policy.LR_SCHEDULES
ALGORITHMS = ("sac", "td3", "tqc", "ppo")            # dagger.experts.ALGORITHMS

SEED = Integer(0, 2**32 - 1)  # numpy's seeding range
COUNT = Integer(1)
SIMULATORS = Integer(1, 1024)  # env copies in one process (rollout envs, evaluation episodes)
WANDB_NAME = Nullable(Text())

ENV = {
    "name": Text(),
    "id": RegisteredEnv(),
    "num_envs": SIMULATORS,
    "max_episode_steps": Nullable(COUNT, "the task's own limit"),
    "kwargs": Mapping(what="a mapping of gymnasium.make keyword arguments"),
}
EXPERT = {
    "algo": OneOf(ALGORITHMS),
    "path": Text(),
    "deterministic": Boolean(),
    "trust": NotRequired(Boolean()),
    "train": {
        "timesteps": COUNT,
        "normalize": Boolean(),
        "hyperparams": Mapping(what="a mapping of stable-baselines3 keyword arguments"),
    },
}

RUN_SPEC = {  # top-level keys first: group values interpolate them
    "seed": SEED,
    "device": OneOf(DEVICES),
    "threads": COUNT,
    "eval": {"episodes": SIMULATORS, "every": COUNT, "video": Nullable(Boolean(), "on for single runs, off in sweeps"),
             "video_every": COUNT, "video_fps": COUNT, "video_size": ListOf(Integer(16, 4096), "two integers in [16, 4096]")},
    "resume": Boolean(),
    "sweep_name": NotRequired(Text()),  # added by +sweeps=<name>
    "env": ENV,
    "expert": EXPERT,
    "policy": {
        "name": Text(),
        "loss": OneOf(LOSSES),
        "hidden": ListOf(COUNT, "integers >= 1"),
        "activation": OneOf(ACTIVATIONS),
        "lr": Number(above=0),
        "weight_decay": Number(low=0),
        "batch_size": COUNT,
        "gradient_steps": COUNT,
        "epochs": Number(low=0),
        "lr_schedule": OneOf(LR_SCHEDULES),
        "warm_start": Boolean(),
        "members": NotRequired(Integer(1, 256)),  # policy=ensemble: K members
        "bootstrap": NotRequired(Boolean()),  # policy=ensemble: each member fits a bootstrap resample of D
    },
    "schedule": {
        "name": Text(),
        "beta": OneOf(BETA_KINDS),
        "beta_value": Number(0, 1),
        "iterations": COUNT,
        "beta_ramp": COUNT,
        "rollout_steps": COUNT,
        "initial_expert_steps": Integer(0),
        "initial_demos": NotRequired(Nullable(Text(), "no demonstrations")),
    },
    # An algorithm's own keys (algo=bc: beta) are its supervisor class's keyword arguments, checked when it
    # is built (dagger.supervisors.build_supervisor), before any work.
    "algo": Open({"name": Text(), "_target_": Text()}),
    "logger": {
        "mode": OneOf(LOGGER_MODES),
        # W&B refuses these characters in project names, and tags outside 1..64 characters.
        "project": NotRequired(Text(forbidden="/\\#?%:", max_len=128)),
        "entity": NotRequired(WANDB_NAME),
        "group": NotRequired(WANDB_NAME),
        "job_type": NotRequired(WANDB_NAME),
        "name": NotRequired(WANDB_NAME),
        "tags": NotRequired(ListOf(Text(max_len=64), "strings of 1 to 64 characters")),
    },
}

TRAIN_SPEC = {
    "env": ENV,
    "expert": EXPERT,
    "seed": SEED,
    "torch_threads": COUNT,
    "checkpoint_every": COUNT,
    "eval_every": COUNT,
    "eval_episodes": COUNT,
    "keep_candidates": COUNT,
    "publish_episodes": COUNT,
    "publish_only": Boolean(),
    "floors": Mapping(Number(), what="a mapping of env id: minimum return"),
    "ship_dir": Text(),
    "work_dir": Text(),
}

IGNORED = ("hydra",)  # present only when a config is composed with return_hydra_config


# ---- walking the spec ------------------------------------------------------------------------------

def read(node: DictConfig, key: str, path: str):
    """`node[key]` resolved; unresolvable interpolations and ??? become one-line errors."""
    try:
        return node[key]
    except MissingMandatoryValue:
        raise ConfigError(f"{path}: no value given (it is ??? in conf/); set {path}=...") from None
    except OmegaConfBaseException as err:
        reason = first_line(err)
        raise ConfigError(f"{path}: cannot resolve its value: {reason}") from None


def check_value(key: str, value, check: Check) -> None:
    """One value against one check, e.g. a keyword argument of a class configured by an open group."""
    problem = check.problem(value)
    if problem:
        raise ConfigError(f"{key}={show(value)} {problem}")


def check_tree(node, spec: dict, prefix: str = "", open_group: bool = False) -> None:
    """Unknown keys first (typos explain the rest), then every key of `spec` in order."""
    where = prefix.rstrip(".")
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{where}={show(node)} must be a group of keys ({', '.join(spec)})")
    for key in node.keys():
        if key not in spec and not open_group and not (where == "" and key in IGNORED):
            raise ConfigError(f"{prefix}{key}: unknown key (not in conf/; check the spelling)")
    present = set(node.keys())  # `key in node` is False for ??? values, which must be reported
    for key, check in spec.items():
        path = f"{prefix}{key}"
        if key not in present:
            if isinstance(check, NotRequired):
                continue
            raise ConfigError(f"{path}: missing (conf/ sets it; was it removed with ~{path}?)")
        if isinstance(check, NotRequired):
            check = check.inner
        if isinstance(check, (dict, Open)):
            is_open = isinstance(check, Open)
            check_tree(read(node, key, path), check.known if is_open else check, f"{path}.", open_group=is_open)
            continue
        value = read(node, key, path)
        check_value(path, value, check)
        if isinstance(check, Mapping) and check.values is not None:
            for name in value.keys():
                check_value(f"{path}.{name}", read(value, name, f"{path}.{name}"), check.values)


def validate(cfg) -> None:
    """Every key of the run config (conf/config.yaml and its groups); anything wrong stops the run
    before any work."""
    check_tree(cfg, RUN_SPEC)
    if len(cfg.eval.video_size) != 2:
        raise ConfigError(f"eval.video_size={show(cfg.eval.video_size)} must be [width, height]")
    if cfg.schedule.get("initial_demos") and cfg.schedule.initial_expert_steps:
        raise ConfigError(f"schedule.initial_demos={show(cfg.schedule.initial_demos)} and schedule.initial_expert_steps="
                          f"{cfg.schedule.initial_expert_steps} both make iteration 0's demonstrations; set one of them")


def validate_train(cfg) -> None:
    """Every key of the expert-training config (conf/train.yaml), before any work."""
    check_tree(cfg, TRAIN_SPEC)


def check_overrides(argv: list[str]) -> None:
    """Command-line overrides Hydra cannot parse, named as one line (Hydra's own message omits the key).

    Call before `hydra.main` runs, with `sys.argv[1:]`; options and anything else are left to Hydra.
    """
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # Hydra reports its own option errors
            args, unknown = get_args_parser().parse_known_args(argv)
    except SystemExit:
        return
    parser = OverridesParser.create()
    for override in [*args.overrides, *(a for a in unknown if not a.startswith("-"))]:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as err:
            key = override.split("=", 1)[0].lstrip("+~") or override
            reason = first_line(err)
            raise ConfigError(f"{key}: cannot parse the override {override!r}: {reason} "
                              f"(quote values with special characters: {key}='...')") from None


def check_output_dir(argv: list[str], keys: tuple[str, ...] = ("hydra.run.dir", "hydra.sweep.dir")) -> None:
    """The output folders given on the command line (`keys`) must be able to become folders: Hydra creates them
    before any check of ours runs, and fails with a traceback where a file stands in the way."""
    for arg in argv:
        key, _, value = arg.lstrip("+").partition("=")
        if key not in keys or not value or "${" in value:
            continue
        path = Path(value).expanduser()
        too_long = [part for part in path.parts if len(part.encode()) > 255]
        if too_long:
            raise ConfigError(f"{key}: the name {too_long[0][:40]}... is longer than 255 bytes; choose another {key}")
        for folder in (path, *path.parents):
            if folder.is_symlink() and not folder.exists():
                raise ConfigError(f"{key}={value}: {folder} is a broken or looping link; choose another {key}")
            if folder.exists():
                if not folder.is_dir():
                    raise ConfigError(f"{key}={value}: {folder} is a file, not a folder; choose another {key}")
                if not os.access(folder, os.W_OK | os.X_OK) and folder != path:
                    raise ConfigError(f"{key}={value}: {folder} is not writable; choose another {key}")
                break


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but torch sees no CUDA device (use device=cpu or device=auto)")
    return device
