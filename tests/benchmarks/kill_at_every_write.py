"""Kill a run at every single write to a file it rewrites, resume it, and compare with an uninterrupted run.

    python -m tests.benchmarks.kill_at_every_write [extra run.py overrides]

Needs strace. The run is the cheap pendulum run (3 iterations); each write system call to one of the run's
temporary files (the only way `dagger.files.atomic_write` changes a file) gets its own trial: SIGKILL is
injected at that call, the run is started again with the same command, and its metrics.csv (timings
aside) must equal the uninterrupted run's. Prints one line per trial and the totals.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["env=pendulum", "expert=sac", "eval.episodes=4", "policy.gradient_steps=300", "schedule.rollout_steps=200",
        "policy.hidden=[64,64]", "schedule.iterations=3", "logger=none", "eval.video=false"]
TIMINGS = ["fit_time_s", "rollout_time_s", "eval_time_s", "wall_time_s"]


def run(run_dir: Path, *args: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [*(prefix or []), sys.executable, str(ROOT / "run.py"), *args, f"hydra.run.dir={run_dir}"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def rewritten_files(run_dir: Path, args: list[str]) -> list[str]:
    """The temporary files a run writes, in the order of its write system calls (one entry per call)."""
    trace = run_dir.parent / "trace.txt"
    run(run_dir, *args, prefix=["strace", "-f", "-qq", "-y", "-e", "trace=write", "-o", str(trace)])
    return re.findall(rf"<({re.escape(str(run_dir))}/(?:[^>]*/)?\.[^/>]+\.tmp[^/>]*)>", trace.read_text())


def main() -> None:
    args = [*ARGS, *sys.argv[1:]]
    work = Path(tempfile.mkdtemp(prefix="kill-at-every-write-"))
    straight = work / "straight"
    run(straight, *args).check_returncode()
    expected = pd.read_csv(straight / "metrics.csv").drop(columns=TIMINGS)
    writes = rewritten_files(work / "traced", args)
    paths = sorted(set(writes))
    print(f"{len(writes)} writes to {len(paths)} temporary files: "
          + ", ".join(f"{Path(p).name} x{n}" for p, n in Counter(writes).items()))
    ok = 0
    for n, path in enumerate(writes, start=1):
        run_dir = work / f"kill-{n}"
        where = [p.replace(str(work / "traced"), str(run_dir)) for p in paths]
        strace = ["strace", "-f", "-qq", "-o", "/dev/null", *[a for p in where for a in ("-P", p)],
                  "-e", "trace=write", "-e", f"inject=write:signal=KILL:when={n}"]
        killed = run(run_dir, *args, prefix=strace)
        resumed = run(run_dir, *args)
        same = resumed.returncode == 0 and pd.read_csv(run_dir / "metrics.csv").drop(columns=TIMINGS).equals(expected)
        ok += same
        print(f"write {n:>3d} ({Path(path).name}): killed rc={killed.returncode}, resumed rc={resumed.returncode}, "
              f"{'same numbers' if same else 'DIFFERENT: ' + resumed.stderr.strip()[-200:]}", flush=True)
    print(f"{ok} of {len(writes)} kills resumed to the uninterrupted run's numbers")
    sys.exit(0 if ok == len(writes) else 1)


if __name__ == "__main__":
    main()
