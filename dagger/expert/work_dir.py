"""An expert's work folder (`work_dir`, never committed): progress.json (wall time spent, the kept
candidates and how the expert is trained), the candidates' models and evaluations.csv."""
from __future__ import annotations

import json
from pathlib import Path

from dagger.config import ConfigError, describe
from dagger.files import atomic_write_text


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
                raise ConfigError(f"work_dir={path.parent}: progress.json is unreadable ({describe(err, 120)}); "
                                  "fix or remove it") from None
            if not isinstance(self.state, dict) or not isinstance(self.state.get("candidates", []), list):
                raise ConfigError(f"work_dir={path.parent}: progress.json is not this project's; fix or remove it")

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.state, indent=2))


def candidate_dir(work: Path, timesteps: int) -> Path:
    return work / "candidates" / str(timesteps)


def trained_timesteps(work: Path) -> int:
    lines = (work / "evaluations.csv").read_text().split() if (work / "evaluations.csv").is_file() else []
    return int(lines[-1].split(",")[0]) if lines else 0
