"""A run folder: one writer at a time, its status, its provenance, and the checks made before resuming it.

A run folder is never silently mixed: a second process is refused while the first holds the folder's
lock, a resume must use the same experiment (config) and the same expert files (sha256), and a refused
command changes nothing in the folder. Every file written here goes through `dagger.files.atomic_write`.
"""
from __future__ import annotations

import fcntl
import json
import os
import platform
import socket
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from dagger.config import ConfigError, describe, first_line
from dagger.files import atomic_write, atomic_write_text

# The student's view of a run written before views existed: the full observation.
VIEW_BEFORE_VIEWS = {"obs.name": "full", "obs._target_": "dagger.views.Full", "obs.history": 1, "obs.actions": False}
# Learner keys added after runs were written: a saved config without one ran as this value does.
LEARNER_KEYS_ADDED = {"policy.ema": 0.0, "policy.lr_decay": 1.0}


class RunFolder:
    """The Hydra output directory of one run, held by this process from `lock()` until exit."""

    def __init__(self, path: Path, existed: bool | None = None):
        """`existed`: whether the folder was there before the command (None: whether it is there at `lock`;
        run.py says, since Hydra makes the folder before any of this runs)."""
        self.path = Path(path)
        self.existed = existed
        self._lock_fd: int | None = None

    # ---- one writer ---------------------------------------------------------------------------
    def lock(self) -> None:
        """Hold an exclusive lock on the folder itself (no lock file: a refused command writes nothing)."""
        if self.existed is None:
            self.existed = self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.read_status()
            who = f" (pid {holder['pid']} on {holder.get('host', '?')})" if "pid" in holder else ""
            raise ConfigError(f"hydra.run.dir={self.path} is in use by another run{who}; "
                              "wait for it to finish or choose another hydra.run.dir") from None
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def close_refused(self) -> None:
        """A refused command leaves no trace: Hydra creates the folder before the checks run, so an empty
        folder is removed, but only one this command made and only while this process holds it (never one another
        run is filling, nor an empty folder that was there before)."""
        if self._lock_fd is not None and not self.existed:
            try:
                self.path.rmdir()
            except OSError:
                pass
        self.release()

    def record_refusal(self, hydra_files: dict[str, str], message: str) -> None:
        """A refused job of a sweep, in its (new, empty) folder: what it was and why it did not run."""
        (self.path / ".hydra").mkdir(parents=True, exist_ok=True)
        for name, text in hydra_files.items():
            atomic_write_text(self.path / ".hydra" / name, text)
        self.write_status("refused", error=message)

    # ---- status and provenance ----------------------------------------------------------------
    def read_status(self) -> dict:
        return read_status(self.path)

    def write_status(self, status: str, **extra) -> None:
        """running, finished, failed, interrupted or refused (a sweep's job): what resuming and the report read."""
        write_json(self.path / "status.json", {"status": status, "pid": os.getpid(),
                                               "host": socket.gethostname(), **extra})

    def update_status(self, **extra) -> None:
        write_json(self.path / "status.json", {**self.read_status(), **extra})

    # ---- resuming -----------------------------------------------------------------------------
    def holds_a_run(self) -> bool:
        return os.path.lexists(self.path / "checkpoint.pt")  # a folder or a broken link there is refused, not overwritten

    def check_resume(self, cfg: DictConfig, done_iterations: int) -> None:
        """Resuming must continue the same experiment; name the first key that differs."""
        if not cfg.resume:
            raise ConfigError(f"resume=false but {self.path} already holds a run; choose a new hydra.run.dir")
        saved_file = self.path / "config.yaml"
        try:
            old = flatten(OmegaConf.to_container(OmegaConf.load(saved_file), resolve=True))
        except Exception as err:  # noqa: BLE001 - any unreadable file gets one line
            raise ConfigError(f"{saved_file}: cannot be read ({type(err).__name__}); "
                              "this run cannot be resumed safely, choose a new hydra.run.dir") from None
        new = flatten(OmegaConf.to_container(cfg, resolve=True))
        if new.get("schedule.beta") != "linear":  # the ramp length only matters to the linear schedule
            old.pop("schedule.beta_ramp", None), new.pop("schedule.beta_ramp", None)
        if not any(key.startswith("obs.") for key in old):
            old.update(VIEW_BEFORE_VIEWS)
        for key, value in LEARNER_KEYS_ADDED.items():
            if key in new and key not in old:
                old[key] = value
        may_change = resumable_keys()
        for key in sorted(old.keys() | new.keys()):
            if not key.startswith(may_change) and old.get(key) != new.get(key):
                raise ConfigError(f"{key}={new.get(key)!r} differs from {old.get(key)!r} in the run being resumed "
                                  f"({self.path}); choose a new hydra.run.dir")
        if cfg.schedule.iterations < done_iterations:
            raise ConfigError(f"schedule.iterations={cfg.schedule.iterations} is fewer than the {done_iterations} "
                              f"iterations {self.path} already finished; a run is only ever extended")

    def check_expert(self, files: dict, saved: dict | None) -> None:
        """The expert files of a resumed run must be the very files it started with, as provenance.json and the
        checkpoint (`saved`) record them; a run that records them in neither place is not resumed."""
        records = [r for r in (read_json(self.path / "provenance.json").get("expert"), saved) if r is not None]
        if not records:
            raise ConfigError(f"{self.path}: neither provenance.json nor checkpoint.pt records which expert labelled "
                              "this run, so labels from two experts could be mixed; choose a new hydra.run.dir")
        for recorded, kind in ((r, k) for r in records for k in ("model", "stats")):
            if not isinstance(recorded, dict):
                raise ConfigError(f"{self.path}: the recorded expert is not a mapping; choose a new hydra.run.dir")
            if recorded.get(f"{kind}_sha256") != files.get(f"{kind}_sha256"):
                raise ConfigError(
                    f"expert.path: the expert {kind} file changed since this run started: it used "
                    f"{recorded.get(kind)} (sha256 {str(recorded.get(f'{kind}_sha256'))[:12]}), now "
                    f"{files.get(kind)} (sha256 {str(files.get(f'{kind}_sha256'))[:12]}); "
                    f"labels from two experts would be mixed, choose a new hydra.run.dir")

    # ---- starting -----------------------------------------------------------------------------
    def start(self, cfg: DictConfig, expert_files: dict, hydra_files: dict[str, str]) -> None:
        """Record what this run is (config, Hydra's view of it, expert files and versions) and mark it running."""
        atomic_write_text(self.path / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        (self.path / ".hydra").mkdir(exist_ok=True)
        for name, text in hydra_files.items():
            atomic_write_text(self.path / ".hydra" / name, text)
        provenance = read_json(self.path / "provenance.json")
        provenance.setdefault("expert", expert_files)
        provenance.setdefault("versions", versions())
        write_json(self.path / "provenance.json", provenance)
        self.write_status("running")


def save_state(path: Path, state: dict) -> None:
    """The run's resumable state: tensors, numbers, strings and containers only (loads weights-only)."""
    import torch

    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict:
    """Load a run checkpoint with `weights_only=True`: a crafted file is refused, never executed."""
    import torch

    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - unpickling refused, truncated or foreign: one line
        reason = first_line(err)
        raise ConfigError(f"{path}: not a checkpoint this project can load safely ({reason[:200]}); "
                          "nothing in it was executed; choose a new hydra.run.dir") from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing or not isinstance(state["progress"], dict) or "iteration" not in state["progress"]:
        raise ConfigError(f"{path}: not a checkpoint of this project (missing {', '.join(missing) or 'progress.iteration'});"
                          " choose a new hydra.run.dir")
    counts = {"progress.iteration": state["progress"]["iteration"], "dataset_size": state["dataset_size"],
              "transitions_size": state.get("transitions_size", 0)}
    bad = [key for key, value in counts.items() if type(value) is not int or value < 0]
    if bad or not isinstance(state["rows"], list) or len(state["rows"]) > counts["progress.iteration"] + 1:
        what = f"{bad[0]}={counts[bad[0]]!r} is not a count" if bad else "its rows do not match its iterations"
        raise ConfigError(f"{path}: not a consistent checkpoint ({what}); choose a new hydra.run.dir")
    return state


CHECKPOINT_KEYS = ("progress", "dataset_size", "learner", "supervisor", "collector", "rows")


def resumable_keys(schema=None, prefix: str = "") -> tuple[str, ...]:
    """The keys that may change when a run is resumed: those whose schema field is marked `Help(...,
    resumable=True)` (more iterations, other logging, videos or hardware), found in the run's schema and the
    group schemas it nests."""
    from dagger.app import run_schema
    from dagger.keys import model_of

    keys: list[str] = []
    for name, info in (schema or run_schema()).model_fields.items():
        nested = model_of(info)
        if nested is not None:
            keys += resumable_keys(nested, f"{prefix}{name}.")
        elif (info.json_schema_extra or {}).get("resumable"):
            keys.append(f"{prefix}{name}")
    return tuple(keys)


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("torch", "numpy", "gymnasium", "mujoco", "stable_baselines3", "hydra-core"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def read_json(path: Path) -> dict:
    """A JSON object from `path`; {} when the file is absent."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, OSError) as err:
        raise ConfigError(f"{path}: not valid JSON ({describe(err, 120)})") from None
    return value if isinstance(value, dict) else {}


def write_json(path: Path, value: dict) -> None:
    atomic_write_text(path, json.dumps(value, indent=1))


def read_status(run_dir: Path) -> dict:
    """The run's status.json ({} when it has none; `{"status": "unreadable"}` when it is corrupt)."""
    try:
        return read_json(Path(run_dir) / "status.json")
    except ConfigError:
        return {"status": "unreadable"}
