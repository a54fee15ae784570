"""Every bad input of tests/test_validation.py through the real command line:
python -m tests.benchmarks.bad_inputs [--jobs N] [--timeout S] [substring ...]

One line per input: the command, its exit code, and the `error:` line (or `hydra: ...` for Hydra's own
refusals, the `broken: ...` line for a report that carries on), `TRACEBACK ...` or `ACCEPTED`; then totals.
Each command runs in its own temporary folder (`hydra.run.dir`, `work_dir`, `ship_dir` there), with
`logger=none` and env=pendulum unless the input is about them. Optional substrings keep only the
inputs whose id contains one of them.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.test_validation import BAD_INPUTS, Bad, command, run_command, verdict


def shown(case: Bad, cmd: list[str], tmp: Path) -> str:
    """The command as typed, temporary paths shortened."""
    name = {"run": "run.py", "train": "experts/train.py", "report": "-m dagger.report"}[case.entry]
    args = cmd[3:] if case.entry == "report" else cmd[2:]
    return " ".join([name, *args]).replace(str(tmp), "$TMP")


def check(case: Bad, timeout: int) -> tuple[Bad, bool, str, str, float]:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        start = time.perf_counter()
        cmd = command(case, tmp)
        try:
            result = run_command(cmd, timeout=timeout)
            ok, said = verdict(case, result)
            code = str(result.returncode)
        except subprocess.TimeoutExpired:
            ok, said, code = False, f"ACCEPTED (still running after {timeout} s)", "-"
        return (case, ok, f"{shown(case, cmd, tmp)}  ->  exit {code}", said.replace(str(tmp), "$TMP"),
                time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bad_inputs", description=__doc__)
    parser.add_argument("only", nargs="*", help="keep inputs whose id contains one of these")
    parser.add_argument("--jobs", type=int, default=2, help="commands run at once (default 2)")
    parser.add_argument("--timeout", type=int, default=180, help="seconds before an input counts as accepted")
    args = parser.parse_args(argv)
    cases = [c for c in BAD_INPUTS if not args.only or any(o in c.id for o in args.only)]
    totals: dict[str, list[int]] = {}
    failures = []
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        for case, ok, line, said, seconds in pool.map(lambda c: check(c, args.timeout), cases):
            print(f"{'ok  ' if ok else 'FAIL'} {line}  |  {said}  ({seconds:.1f} s)", flush=True)
            totals.setdefault(case.entry, [0, 0])[0 if ok else 1] += 1
            if not ok:
                failures.append(case.id)
    print()
    for entry, (ok, bad) in totals.items():
        print(f"{entry:6s} {ok + bad:4d} inputs: {ok} handled, {bad} not")
    print(f"total  {len(cases):4d} inputs: {len(cases) - len(failures)} handled, {len(failures)} not "
          f"({time.perf_counter() - start:.0f} s)")
    for failure in failures:
        print(f"  not handled: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
