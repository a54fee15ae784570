"""Beta schedules (Ross et al. 2011): the probability that the expert acts at iteration i (1-based)."""
from __future__ import annotations

from dataclasses import dataclass

from dagger.config import ConfigError

KINDS = ("indicator", "constant", "linear", "exponential")


def every_or_last(iteration: int, every: int, last: int) -> bool:
    """Iterations that are multiples of `every`, and the last one (evaluations and videos follow this rule)."""
    return iteration % every == 0 or iteration == last


@dataclass(frozen=True)
class BetaSchedule:
    """beta_i for i = 1..N.

    indicator:   1 on the first iteration, then 0 (the paper's "often best in practice")
    constant:    `value` throughout (value=1 is behaviour cloning at the same label budget)
    linear:      1 at i=1, falling by 1/ramp per iteration to 0
    exponential: value^(i-1)
    """

    kind: str
    value: float = 1.0
    ramp: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"schedule.beta={self.kind!r} is not one of {', '.join(KINDS)}")
        if not 0.0 <= self.value <= 1.0:
            raise ConfigError(f"schedule.beta_value={self.value} is outside [0, 1]")
        if self.ramp < 1:
            raise ConfigError(f"schedule.beta_ramp={self.ramp} must be at least 1")

    def __call__(self, i: int) -> float:
        if i < 1:
            raise ValueError(f"iterations count from 1, got {i}")
        if self.kind == "indicator":
            return 1.0 if i == 1 else 0.0
        if self.kind == "constant":
            return self.value
        if self.kind == "linear":
            return max(0.0, 1.0 - (i - 1) / self.ramp)
        return self.value ** (i - 1)


def build_schedule(schedule_cfg) -> BetaSchedule:
    """The beta schedule described by the `schedule` config group."""
    return BetaSchedule(kind=schedule_cfg.beta, value=float(schedule_cfg.beta_value),
                        ramp=int(schedule_cfg.beta_ramp))
