"""Plots and tables of a sweep of DAgger runs: `python -m dagger.report <multirun dir> [--wandb]`.

jobs (finding and reading the sweep's jobs), statistics (per task and across tasks; Markdown tables), plots
(its pictures), dashboard (its W&B run), sweep_report (`report`, which writes them all, and `main`)."""
from dagger.report.sweep_report import main, report

__all__ = ["main", "report"]
