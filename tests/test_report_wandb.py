"""`python -m dagger.report <sweep dir> --wandb`: one offline W&B run of the report, in the sweep's group."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.test_report import FINAL, write_job

TASK = "Hopper-v5"  # one task keeps the report quick (no rliable aggregate across tasks)
LOGGER = {"project": "dagger-test", "group": "bench-sac"}


@pytest.fixture
def sweep(tmp_path):
    """Two finished configurations of four seeds, each job with its resolved config.yaml, and one job not started."""
    for algo in ("dagger", "bc"):
        for seed, final in enumerate(FINAL[(TASK, algo)]):
            write_job(tmp_path, TASK, algo, seed, final)
            job = tmp_path / TASK / f"algo={algo},seed={seed}"
            (job / "config.yaml").write_text(yaml.safe_dump({"logger": LOGGER}))
    write_job(tmp_path, TASK, "dagger", 4, 0.5)
    (tmp_path / TASK / "algo=dagger,seed=4" / "status.json").unlink()
    return tmp_path


def run_report(root, mode="offline", check=True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dagger.report", str(root), "--wandb", "--reps", "2000"],
                          capture_output=True, text=True, check=check,
                          env={**os.environ, "WANDB_MODE": mode, "WANDB_SILENT": "true"})


def wandb_records(root) -> list[dict]:
    (offline,) = (root / "wandb").glob("offline-run-*")
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(offline)],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_the_report_is_one_offline_run_in_the_sweeps_group(sweep):
    result = run_report(sweep)
    (offline,) = (sweep / "wandb").glob("offline-run-*")
    assert f"wandb sync {offline}" in result.stdout
    records = wandb_records(sweep)
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert (run["job_type"], run["run_group"], run["project"]) == ("report", "bench-sac", "dagger-test")
    assert run["display_name"] == "report-bench-sac"
    (history,) = [r["history"]["item"] for r in records if r["type"] == "history"]
    summary = pd.read_csv(sweep / "summary.csv")
    assert history["summary._type"] == history["runs._type"] == "table-file"
    assert (history["summary.nrows"], history["summary.ncols"]) == summary.shape == (2, len(summary.columns))
    assert history["runs.nrows"] == 9  # every job, the one not started too
    assert history["curves._type"] == "image-file"
    assert "aggregate._type" not in history and "heatmap._type" not in history  # one task, a 1-D sweep
    (headline,) = [r["summary"]["update"] for r in records
                   if r["type"] == "summary" and "final_norm_return/Hopper-v5/algo=bc" in r["summary"]["update"]]
    assert headline["final_norm_return/Hopper-v5/algo=bc"] == pytest.approx(sum(FINAL[(TASK, "bc")]) / 4)


def test_without_a_group_in_the_configs_the_folder_names_the_group(sweep):
    for config in sweep.rglob("config.yaml"):
        if config.parent.name != ".hydra":
            config.unlink()
    run_report(sweep)
    (run,) = [r["run"] for r in wandb_records(sweep) if r["type"] == "run"]
    assert (run["run_group"], run["project"]) == (sweep.name, "dagger-lab")


def test_a_failing_wandb_leaves_the_files_and_says_so(sweep):
    result = run_report(sweep, mode="no-such-mode", check=False)
    assert result.returncode == 0, result.stderr
    assert "W&B failed (" in result.stderr and "the report files are still written" in result.stderr
    assert (sweep / "summary.csv").is_file() and (sweep / "curves.png").is_file()


def test_the_report_run_holds_each_configurations_steadiness(sweep):
    """DAgger's seeds reach 0.95 at their first evaluation, drop to 0.8, then end at their final value (all at or
    above 0.85): a steadiness of 1/2 on each seed. BC's never reach 0.9 before their last evaluation: no key."""
    for seed, final in enumerate(FINAL[(TASK, "dagger")]):
        metrics = sweep / TASK / f"algo=dagger,seed={seed}" / "metrics.csv"
        frame = pd.read_csv(metrics)
        frame["normalized_return"] = [0.95, 0.8, final]
        frame.to_csv(metrics, index=False)
    run_report(sweep)
    (headline,) = [r["summary"]["update"] for r in wandb_records(sweep)
                   if r["type"] == "summary" and "final_norm_return/Hopper-v5/algo=bc" in r["summary"]["update"]]
    assert headline["steadiness/Hopper-v5/algo=dagger"] == pytest.approx(0.5)
    assert "steadiness/Hopper-v5/algo=bc" not in headline
