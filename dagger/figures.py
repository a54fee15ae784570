"""matplotlib without a display (the Agg backend, chosen before pyplot is imported: draw with this module's
`plt`) and figures written atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dagger.files import atomic_write  # noqa: E402


def save_figure(fig, path: Path) -> None:
    """Atomically: a killed run or report leaves the old picture or the new one."""
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    finally:
        plt.close(fig)
