"""python tests/cluster/compare.py ENGINE_DIR LOCAL_DIR: the same sweep run two ways must give the
same jobs, all finished, with equal metrics.csv (all columns but the timings, *_time_s).
Prints one line per job and exits 1 on any difference."""
import json
import sys
from pathlib import Path

import pandas as pd


def jobs(root: Path) -> dict[str, Path]:
    """Job folders (those with .hydra/overrides.yaml) by their path relative to the sweep folder."""
    return {str(f.parent.parent.relative_to(root)): f.parent.parent for f in root.rglob(".hydra/overrides.yaml")}


def problems(engine_job: Path, local_job: Path) -> list[str]:
    found = []
    for job in (engine_job, local_job):
        status = job / "status.json"
        state = json.loads(status.read_text()).get("status") if status.is_file() else "no status.json"
        if state != "finished":
            found.append(f"{job}: {state}")
    if found:
        return found
    engine, local = (pd.read_csv(job / "metrics.csv") for job in (engine_job, local_job))
    if list(engine.columns) != list(local.columns) or len(engine) != len(local):
        return [f"columns or rows differ: {list(engine.columns)} x {len(engine)} vs {list(local.columns)} x {len(local)}"]
    for column in (c for c in local.columns if not c.endswith("_time_s")):
        if not engine[column].equals(local[column]):
            found.append(f"{column}: {engine[column].tolist()} != {local[column].tolist()}")
    return found


def main(engine_dir: str, local_dir: str) -> int:
    engine, local = jobs(Path(engine_dir)), jobs(Path(local_dir))
    failures = 0
    if not local:
        print(f"MISMATCH no job folders under {local_dir}")
        return 1
    for name in sorted(engine.keys() | local.keys()):
        if name not in engine or name not in local:
            found = [f"only in {engine_dir if name in engine else local_dir}"]
        else:
            found = problems(engine[name], local[name])
        failures += bool(found)
        print(f"{'MISMATCH' if found else 'same    '} {name}" + "".join(f"\n    {p}" for p in found))
    print(f"{len(local)} local jobs, {len(engine)} engine jobs, {failures} differing")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
