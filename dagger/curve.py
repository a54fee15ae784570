"""A run's learning curve (`curve.png`): the learner's return against iteration and against expert labels."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dagger.figures import plt, save_figure


def plot_curve(metrics: pd.DataFrame, path: Path, title: str) -> Path:
    """The learner's return (mean ± std) against iteration and against expert labels, expert as a band.

    Writes `path` atomically (`save_figure`): a killed run leaves the old picture or the new one."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    expert_mean, expert_std = metrics.expert_return_mean.iloc[-1], metrics.expert_return_std.iloc[-1]
    metrics = metrics.dropna(subset=["return_mean"])  # iterations between evaluations (eval.every)
    for ax, x, label in ((axes[0], "iteration", "iteration"), (axes[1], "expert_labels", "expert labels")):
        ax.axhspan(expert_mean - expert_std, expert_mean + expert_std, color="tab:orange", alpha=0.2)
        ax.axhline(expert_mean, color="tab:orange", label=f"expert {expert_mean:.0f} ± {expert_std:.0f}")
        ax.plot(metrics[x], metrics.return_mean, "o-", color="tab:blue", label="learner")
        ax.fill_between(metrics[x], metrics.return_mean - metrics.return_std,
                        metrics.return_mean + metrics.return_std, color="tab:blue", alpha=0.2)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("return (deterministic learner)")
    axes[1].legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return path
