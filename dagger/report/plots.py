"""The sweep's pictures: curves.png (per task), heatmap.png (a two-dimensional grid) and profile.png
(rliable's performance profile across tasks)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dagger.figures import plt, save_figure
from dagger.report.statistics import bootstrap_ci, final_score_matrices, numpy_seeded


def plot_sweep_curves(runs: pd.DataFrame, path: Path) -> Path:
    """Normalised return against expert labels, mean and 95% CI over seeds per configuration; one panel per task.

    Seeds are matched by iteration and drawn at their mean label count: gated algorithms label a
    different number of states on each seed, so equal label counts rarely occur."""
    finished = runs[runs.status == "finished"]
    tasks = list(dict.fromkeys(finished.task)) or ["?"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(8 if len(tasks) == 1 else 4.5 * len(tasks), 5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        plot_task_curves(ax, finished[finished.task == task])
        if len(tasks) > 1:
            ax.set_title(task)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def plot_task_curves(ax, finished: pd.DataFrame) -> None:
    expert_band = []
    for configuration, group in finished.groupby("configuration", sort=False):
        table = pd.concat([m.assign(seed=s) for m, s in zip(group.metrics, group.seed)])
        table = table.dropna(subset=["normalized_return"])  # iterations between evaluations (eval.every)
        by_iteration = table.groupby("iteration")
        labels, mean = by_iteration.expert_labels.mean(), by_iteration.normalized_return.mean()
        ci = np.array([bootstrap_ci(v) for _, v in by_iteration.normalized_return])
        (line,) = ax.plot(labels.values, mean.values, "o-", ms=3, label=configuration)
        ax.fill_between(labels.values, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.2)
        expert_band.extend((table.expert_return_std / (table.expert_return_mean - table.random_return_mean)).tolist())
    half = float(np.mean(expert_band)) if expert_band else 0.0
    ax.axhspan(1 - half, 1 + half, color="grey", alpha=0.15)
    ax.axhline(1.0, color="black", linestyle="--", label="expert (± std)")
    ax.set_xlabel("expert labels")
    ax.set_ylabel("normalised return  (R - random) / (expert - random)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def plot_heatmap(runs: pd.DataFrame, path: Path) -> Path | None:
    """Final normalised return over a two-dimensional grid (e.g. iterations x rollout budget)."""
    finished = runs[runs.status == "finished"]
    if finished.task.nunique() > 1:
        return None
    keys = sorted(k for k in {k for swept in finished.swept for k in swept}
                  if len({swept.get(k) for swept in finished.swept}) > 1)
    if len(keys) != 2:
        return None
    table = pd.DataFrame([{**swept, "value": m.normalized_return.iloc[-1]}
                          for swept, m in zip(finished.swept, finished.metrics)])
    for key in keys:  # numeric axes sort as numbers
        numeric = pd.to_numeric(table[key], errors="coerce")
        if numeric.notna().all():
            table[key] = numeric
    grid = table.pivot_table(index=keys[0], columns=keys[1], values="value", aggfunc="mean")
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(grid.values, cmap="viridis", origin="lower", aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns])
    ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
    ax.set_xlabel(keys[1])
    ax.set_ylabel(keys[0])
    for (i, j), value in pd.DataFrame(grid.values).stack().items():
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="w")
    fig.colorbar(image, label="final normalised return (mean over seeds)")
    fig.tight_layout()
    save_figure(fig, path)
    return path


def plot_performance_profile(runs: pd.DataFrame, path: Path) -> Path | None:
    """The fraction of runs (all tasks and seeds) whose final normalised return exceeds tau, with 95%
    stratified-bootstrap bands (rliable's performance profile)."""
    from rliable import library as rly
    from rliable import plot_utils

    scores = final_score_matrices(runs)
    if not scores:
        return None
    thresholds = np.linspace(0.0, 1.2, 49)
    with numpy_seeded(0):
        profiles, bands = rly.create_performance_profile(scores, thresholds, reps=2000)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(profiles, thresholds, performance_profile_cis=bands, ax=ax,
                                         colors=dict(zip(scores, plt.rcParams["axes.prop_cycle"].by_key()["color"])),
                                         xlabel=r"final normalised return $\tau$",
                                         labelsize="medium", ticklabelsize="small")
    profile_lines = list(ax.get_lines())  # one per configuration, in order (the bands are patches)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.legend(profile_lines, list(scores), loc="lower left", fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
    return path
