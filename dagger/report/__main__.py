"""`python -m dagger.report <multirun dir> [--wandb] [--wandb-mode MODE]`."""
from dagger.report.sweep_report import main

main()
