"""Beta schedules (Ross et al. 2011): the probability that the expert acts at iteration i (1-based)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from dagger.schemas import COUNT, TEXT, Help, integer, number, Schema
from dagger.minari_datasets import DATASET_ID

Kind = Literal["indicator", "constant", "linear", "exponential"]
Collection = Literal["episodes", "carry_over"]  # the budget rule: see dagger.rollout


class ScheduleConfig(Schema):
    """The `schedule` group: the budget (iterations, rollout steps, initial demonstrations) and the beta schedule."""

    name: Annotated[str, TEXT]
    beta: Annotated[Kind, Help("the schedule of beta_i, the expert's share of the mixture")]
    beta_value: Annotated[float, number(0, 1), Help("constant: beta itself; exponential: p in beta_i = p^(i-1)")]
    iterations: Annotated[int, COUNT, Help("DAgger iterations N (a resumed run may be extended)", resumable=True)]
    beta_ramp: Annotated[int, COUNT, Help("linear: iterations over which beta falls from 1 to 0")]
    rollout_steps: Annotated[int, COUNT, Help("environment steps collected (and labelled) per iteration")]
    collection: Annotated[Collection, Help(
        "episodes: each iteration's trajectories start from a reset under pi_i; carry_over: they carry on")] = "episodes"
    initial_expert_steps: Annotated[int, integer(0), Help("expert demonstrations in D before iteration 1")]
    initial_demos: Annotated[Annotated[str, TEXT, DATASET_ID] | None,
                             Help("a local Minari dataset id: its episodes are D before iteration 1 (null: none)")] = None

    @model_validator(mode="after")
    def one_source_of_demonstrations(self) -> ScheduleConfig:
        if self.initial_demos and self.initial_expert_steps:
            raise PydanticCustomError(
                "check", "and schedule.initial_expert_steps={steps} both make iteration 0's demonstrations; set one "
                "of them", {"at": "initial_demos", "value": self.initial_demos, "steps": self.initial_expert_steps})
        return self


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

    kind: Kind
    value: float = 1.0
    ramp: int = 1

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


def build_schedule(schedule_cfg: ScheduleConfig) -> BetaSchedule:
    """The beta schedule described by the `schedule` config group."""
    return BetaSchedule(kind=schedule_cfg.beta, value=schedule_cfg.beta_value, ramp=schedule_cfg.beta_ramp)
