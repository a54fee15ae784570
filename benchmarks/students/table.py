"""The README's students table, from the committed results, beside the full-state benchmark's rows:
python benchmarks/students/table.py   (after python -m dagger.report benchmarks/students/<task>-sac)

One row per task, student and algorithm: final normalised return with its 95% CI, worst seed, steadiness, labels to
90% of the expert, the expert labels and queries at the end (means over seeds), and the seeds behind it. The
full-state rows (`obs=full`, the benchmark's default learner) come from benchmarks/benchmark/<task>-sac."""
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
TASKS = ("hopper-sac", "walker-sac")
ALGOS = ("bc", "dagger", "hg_dagger", "thrifty_dagger")


def rows(folder: Path, student: str | None) -> list[dict]:
    """The summary's rows as (task, student, algo, columns); `student` None reads it from the configuration."""
    if not (folder / "summary.csv").is_file():
        return []
    found = []
    for r in pd.read_csv(folder / "summary.csv").itertuples():
        keys = dict(kv.split("=", 1) for kv in r.configuration.split(","))
        found.append({"task": r.task, "student": student or keys.get("obs", "full"), "algo": keys["algo"], "row": r})
    return found


def cell(value: float, digits: int = 3) -> str:
    return "-" if pd.isna(value) else f"{value:.{digits}f}"


def count(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:,.0f}"


def main() -> None:
    found = [row for task in TASKS for row in rows(HERE / task, None) + rows(HERE.parent / "benchmark" / task, "full")]
    order = {"full": 0, "no_velocity": 1, "noisy": 2}
    found.sort(key=lambda x: (x["task"], order.get(x["student"], 9), ALGOS.index(x["algo"])
                              if x["algo"] in ALGOS else 9))
    print("| task | student | algorithm | final normalised return [95% CI] | worst seed | steadiness (seeds) "
          "| labels to 90% (seeds) | labels | queries | seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for x in found:
        r = x["row"]
        print(f"| {r.task} | {x['student']} | {x['algo']} | {cell(r.final_norm_return)} [{cell(r.final_ci_low)}, "
              f"{cell(r.final_ci_high)}] | {cell(r.worst_seed_final)} | {cell(r.steadiness, 2)} ({r.steady_seeds}) | "
              f"{count(r.labels_to_90pct)} ({r.seeds_reaching_90pct}/{r.seeds}) | {count(r.final_labels)} | "
              f"{count(r.final_queries)} | {r.seeds} |")


if __name__ == "__main__":
    main()
