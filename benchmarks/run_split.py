"""Where a run's time goes, from its own log and metrics.csv: runs `python run.py <overrides>` (default: what
`make run` runs) `--runs` times in each checkout given by `--repo` (interleaved: A, B, A, B, ...), and prints each
run's split and the medians per checkout:

    startup     the process's start to the run's first log line: imports, the config's checks, building the envs,
                the expert's load (its own column, from the log)
    references  the expert's and the uniform-random policy's evaluation episodes (part of the sum where they are
                measured before the loop; since they are measured beside its first iteration, not part of it)
    rollouts, fits, evaluations, loop    metrics.csv: the loop's parts and its wall time (evaluations: the loop's
                time on them; where they run beside the loop, starting each and waiting for it)
    end         the last iteration's line to `outputs:`: waiting for the last video, the curve, W&B's finish
    exit        `outputs:` to the process's exit
    other       the rest: W&B's start, the references' log, handing each video to its forked copy or thread
    videos      the videos' making time, beside the loop (a forked copy, or a background thread; not part of the sum)

    python benchmarks/run_split.py --runs 2                                 # this checkout, make run's command
    python benchmarks/run_split.py --repo . --repo /tmp/old --runs 2        # against another checkout, interleaved
    python benchmarks/run_split.py --runs 1 -- env=hopper eval.video=false  # another command
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[\w+\] (.*)$")
COLUMNS = ["total", "startup", "expert load", "references", "loop", "rollouts", "fits", "evaluations", "end", "exit",
           "other", "videos"]


def lines(log: Path) -> list[tuple[float, str]]:
    """(time, message) of every line of a run.log."""
    out = []
    for line in log.read_text().splitlines():
        match = STAMP.match(line)
        if match:
            when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            out.append((when, match.group(2)))
    return out


def seconds(pattern: str, messages: list[str]) -> list[float]:
    return [float(m.group(1)) for text in messages for m in [re.search(pattern, text)] if m]


def one_run(repo: Path, overrides: list[str], folder: Path) -> dict[str, float]:
    started = time.time()
    subprocess.run([str(repo / ".venv" / "bin" / "python"), "run.py", *overrides, f"hydra.run.dir={folder}"],
                   cwd=repo, check=True, capture_output=True)
    ended = time.time()
    logged = lines(folder / "run.log")
    messages = [text for _, text in logged]
    iterations = [when for when, text in logged if text.startswith("iter ")]
    outputs = next(when for when, text in logged if text.startswith("outputs:"))
    metrics = pd.read_csv(folder / "metrics.csv")
    split = {"total": ended - started, "startup": logged[0][0] - started,
            "expert load": sum(seconds(r"loaded in ([\d.]+)s", messages)),
            "references": sum(seconds(r"^expert return .* \(([\d.]+)s\)$", messages)),
            "loop": metrics.wall_time_s.iloc[-1], "rollouts": metrics.rollout_time_s.sum(),
            "fits": metrics.fit_time_s.sum(), "evaluations": metrics.eval_time_s.sum(),
            "end": outputs - iterations[-1], "exit": ended - outputs,
            "videos": sum(seconds(r"^video: .* frames in ([\d.]+)s", messages))}
    loop_began = iterations[-1] - split["loop"]  # the last iteration's line comes as its row is recorded
    measured = next(when for when, text in logged if text.startswith("expert return"))
    before_loop = split["references"] if measured < loop_began else 0.0
    split["other"] = split["total"] - before_loop - sum(split[part] for part in ("startup", "loop", "end", "exit"))
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, action="append", help="a checkout with its .venv (repeatable; default .)")
    parser.add_argument("--runs", type=int, default=2, help="runs per checkout")
    parser.add_argument("overrides", nargs="*", default=["env=walker", "expert=sac"])
    args = parser.parse_args()
    repos = args.repo or [Path(".")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.runs):
            for repo in repos:
                split = one_run(repo.resolve(), args.overrides, Path(tmp) / f"{len(rows)}")
                rows.append({"checkout": str(repo), "run": k + 1, **split})
                print(" ".join(f"{name} {split[name]:.1f}" for name in COLUMNS), f"({repo})", file=sys.stderr)
    table = pd.DataFrame(rows)
    print("| checkout | run | " + " | ".join(f"{name} (s)" for name in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for row in rows:
        print(f"| {row['checkout']} | {row['run']} | " + " | ".join(f"{row[n]:.1f}" for n in COLUMNS) + " |")
    for repo, group in table.groupby("checkout", sort=False):
        print(f"| {repo} | median | " + " | ".join(f"{statistics.median(group[n]):.1f}" for n in COLUMNS) + " |")


if __name__ == "__main__":
    main()
