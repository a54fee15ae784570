"""A 2x2 sweep on the cheap env through the joblib launcher, and its report."""
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dagger.app import RunStopped
from dagger.report import report
from dagger.report.statistics import bootstrap_ci
from tests.conftest import QUICK, TIMINGS, run_cli, run_in_process

GRID = ["schedule.iterations=1,2", "schedule.rollout_steps=100,200"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    args = ["-m", "+sweeps=budget_grid", *QUICK, *GRID, "seed=0",
            "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={root}"]
    run_cli(*args)
    return root, args


def job_dirs(root):
    return sorted(p for p in root.iterdir() if (p / ".hydra").is_dir())


def swept(job) -> dict[str, str]:
    """A job folder is named by its overrides: key=value,key=value,..."""
    pairs = [item.split("=", 1) for item in job.name.replace("[64,64]", "[64;64]").split(",")]
    return {key: value for key, value in pairs}


def test_each_job_writes_a_complete_run(sweep):
    root, _ = sweep
    jobs = job_dirs(root)
    grid = sorted((swept(j)["schedule.iterations"], swept(j)["schedule.rollout_steps"]) for j in jobs)
    assert grid == [("1", "100"), ("1", "200"), ("2", "100"), ("2", "200")]
    for job in jobs:
        assert json.loads((job / "status.json").read_text())["status"] == "finished"
        metrics = pd.read_csv(job / "metrics.csv")
        assert len(metrics) == int(swept(job)["schedule.iterations"])
        assert metrics.expert_labels.iloc[-1] == len(metrics) * int(swept(job)["schedule.rollout_steps"])
        assert (job / "curve.png").is_file()


def test_all_runs_share_one_wandb_group_with_readable_names(sweep):
    root, _ = sweep
    names, groups = set(), set()
    for job in job_dirs(root):
        (offline,) = (job / "wandb").glob("offline-run-*")
        out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json", str(offline)],
                             capture_output=True, text=True, check=True).stdout
        config = json.loads(out)["config"]
        groups.add(config["logger"]["group"])
        names.add(config["logger"]["name"])
        assert config["overrides"]["schedule.iterations"] in ("1", "2")  # swept values, to group by
    assert groups == {"budget_grid-pendulum-sac"}
    assert len(names) == 4 and all(n.startswith("pendulum-sac-linear-") for n in names)  # algo=dagger: its schedule


def test_report_matches_the_runs_own_metrics(sweep, capsys):
    root, _ = sweep
    summary = report(root, reps=2_000).set_index("configuration")
    assert (root / "summary.csv").is_file() and (root / "curves.png").is_file()
    assert (root / "heatmap.png").is_file()  # a two-dimensional grid
    assert "4 finished, 0 failed or incomplete" in capsys.readouterr().out
    for job in job_dirs(root):
        metrics = pd.read_csv(job / "metrics.csv")
        row = summary.loc[f"schedule.iterations={swept(job)['schedule.iterations']},"
                          f"schedule.rollout_steps={swept(job)['schedule.rollout_steps']}"]
        assert row.final_norm_return == pytest.approx(metrics.normalized_return.iloc[-1])
        assert row.best_norm_return == pytest.approx(metrics.normalized_return.max())
        assert row.final_labels == metrics.expert_labels.iloc[-1]


def test_rerunning_skips_finished_jobs_and_the_report_lists_broken_ones(sweep):
    root, args = sweep
    jobs = job_dirs(root)
    before = {j: (j / "metrics.csv").read_text() for j in jobs}
    (jobs[0] / "status.json").write_text(json.dumps({"status": "failed", "error": "RuntimeError: boom"}))
    (jobs[0] / "checkpoint.pt").unlink()  # as if it died before its first iteration finished
    sequential = [a for a in args if not a.startswith(("hydra/launcher", "hydra.launcher"))]  # the jobs in one process
    out = run_cli(*sequential).stdout
    assert out.count("already finished") == 3
    assert all((j / "metrics.csv").read_text() == before[j] for j in jobs[1:])
    redone, original = pd.read_csv(jobs[0] / "metrics.csv"), pd.read_csv(io.StringIO(before[jobs[0]]))
    pd.testing.assert_frame_equal(redone.drop(columns=TIMINGS), original.drop(columns=TIMINGS))
    assert json.loads((jobs[0] / "status.json").read_text())["status"] == "finished"


def test_report_lists_unfinished_runs_instead_of_crashing(tmp_path, capsys):
    good = tmp_path / "good"
    run_cli(*QUICK, "schedule.iterations=1", "logger=none", run_dir=good)  # a job as run.py leaves it (.hydra/)
    refused = tmp_path / "refused"
    with pytest.raises(RunStopped):
        run_in_process(refused, *QUICK, "schedule.iterations=2", "logger=none", "expert.path=/missing.zip")
    assert not refused.exists()  # bad input leaves no half-made job behind
    # A job killed before its first iteration finished has its .hydra/ and status but no metrics.
    killed = tmp_path / "killed"
    shutil.copytree(good / ".hydra", killed / ".hydra")
    (killed / "status.json").write_text(json.dumps({"status": "running"}))
    summary = report(tmp_path, reps=2_000)
    out = capsys.readouterr().out
    assert f"running: {killed}" in out and "1 finished, 1 failed or incomplete" in out
    assert len(summary) == 1


def test_the_bootstrap_interval_is_the_resampled_means_2_5th_and_97_5th_percentiles():
    """Five seeds have 5^5 equally likely resamples: the exact 2.5th and 97.5th percentiles of their means are 0.264
    and 0.746 (the 5th and 95th, 0.306 and 0.704). The report's 2,000 seeded resamples land within 0.02 of them."""
    import itertools

    values = [0.12, 0.35, 0.61, 0.93, 0.47]
    means = [np.mean(resample) for resample in itertools.product(values, repeat=len(values))]
    exact = np.percentile(means, [2.5, 97.5])
    np.testing.assert_allclose(exact, (0.264, 0.746), atol=1e-9)
    np.testing.assert_allclose(bootstrap_ci(values), exact, atol=0.02)
    assert bootstrap_ci([0.7]) == (0.7, 0.7)


def test_optunas_sweeper_reads_the_number_optimized_metric_names(tmp_path):
    # Each trial returns the mean normalised return of its last three evaluations; Optuna keeps the best trial.
    root = tmp_path / "search"
    result = run_cli("-m", "+sweeps=learner_search", *QUICK, "schedule.iterations=3", "logger=none",
                     "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=1", f"hydra.sweep.dir={root}")
    best = next(line for line in (result.stdout + result.stderr).splitlines() if "Best value" in line)
    optimization = (root / "optimization_results.yaml").read_text()
    trials = [pd.read_csv(job / "metrics.csv").normalized_return.dropna().iloc[-3:].mean() for job in job_dirs(root)]
    assert len(trials) == 2 and "best_value" in optimization
    assert float(best.rsplit(":", 1)[1]) == pytest.approx(max(trials))


def test_a_run_returns_the_summary_or_the_one_number_optimized_metric_names(tmp_path):
    from dagger.app import metric
    from tests.conftest import compose

    summary = run_in_process(tmp_path / "run", *QUICK, "schedule.iterations=3", "logger=none")
    evaluations = pd.read_csv(tmp_path / "run" / "metrics.csv").normalized_return.dropna()
    assert summary["last3_normalized_return"] == pytest.approx(evaluations.iloc[-3:].mean())
    assert metric(compose(*QUICK), summary) is summary
    for name in ("last3_normalized_return", "final_normalized_return", "steadiness"):
        assert metric(compose(*QUICK, f"optimized_metric={name}"), summary) == pytest.approx(summary[name],
                                                                                           nan_ok=True)
    with pytest.raises(RunStopped, match="optimized_metric='loss' is not one of final_normalized_return"):
        run_in_process(tmp_path / "bad", *QUICK, "optimized_metric=loss")


def test_a_kept_copy_of_the_jobs_small_files_gives_the_same_report(sweep, tmp_path):
    from dagger.report.sweep_report import main

    root, _ = sweep
    kept = tmp_path / "benchmarks" / "grid"
    main([str(root), "--reps", "200", "--keep-in", str(kept)])
    assert not list(kept.rglob("*.pt")) and not list(kept.rglob("*.npz"))  # the small files only
    main([str(kept), "--reps", "200"])
    assert (kept / "summary.csv").read_text() == (root / "summary.csv").read_text()
