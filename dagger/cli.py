"""The command line around the library: argparse with its complaints as the one `error:` line, the overrides of
the Hydra job being run, and the output folders named on the command line (checked before Hydra makes them)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from omegaconf import OmegaConf

from dagger.config import ConfigError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its complaints as the one `error: ...` line every entry point uses; `hint` is the
    usage shown after the program's name."""

    def __init__(self, *args, hint: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.hint = hint

    def error(self, message: str):
        self.exit(2, f"error: {message} (usage: {self.prog} {self.hint})\n")


def job_overrides() -> list[str]:
    """This Hydra job's command-line overrides (a sweep job's swept values among them); [] outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False))  # as typed: ${...} kept


def override_values(overrides: list[str]) -> dict[str, str]:
    """`key=value` overrides as {key: value}, keys as typed (`+sweeps`, `~seed`); entries without `=` are left out."""
    return dict(o.split("=", 1) for o in overrides if "=" in o)


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
