import pytest

from dagger.config import ConfigError
from dagger.schemas import parse
from dagger.schedules import BetaSchedule, ScheduleConfig


def betas(schedule: BetaSchedule, n: int = 5) -> list[float]:
    return [schedule(i) for i in range(1, n + 1)]


def test_indicator_is_expert_then_learner():
    assert betas(BetaSchedule("indicator")) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_constant_and_bc():
    assert betas(BetaSchedule("constant", value=0.3)) == [0.3] * 5
    assert betas(BetaSchedule("constant", value=1.0)) == [1.0] * 5


def test_linear_ramps_from_one_to_zero():
    assert betas(BetaSchedule("linear", ramp=4)) == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_exponential_is_p_to_the_i_minus_one():
    assert betas(BetaSchedule("exponential", value=0.5), 4) == [1.0, 0.5, 0.25, 0.125]


GOOD = {"name": "dagger", "beta": "indicator", "beta_value": 1.0, "iterations": 10, "beta_ramp": 10,
        "rollout_steps": 1000, "initial_expert_steps": 0}


def test_the_schedule_group_is_typed():
    schedule = parse(ScheduleConfig, {**GOOD, "beta_value": 1, "initial_demos": None}, "schedule.")
    assert isinstance(schedule.beta_value, float) and schedule.iterations == 10 and schedule.initial_demos is None


@pytest.mark.parametrize("change, says", [({"beta": "cosine"}, "schedule.beta='cosine' is not one of indicator, "
                                                                 "constant, linear, exponential"),
                                          ({"beta_value": 1.5}, "schedule.beta_value=1.5 is outside [0, 1]"),
                                          ({"beta_value": -0.1}, "schedule.beta_value=-0.1 is outside [0, 1]"),
                                          ({"beta_ramp": 0}, "schedule.beta_ramp=0 must be an integer >= 1"),
                                          ({"iteration": 5}, "schedule.iteration: unknown key")])
def test_bad_schedules_name_their_key(change, says):
    with pytest.raises(ConfigError) as err:
        parse(ScheduleConfig, {**GOOD, **change}, "schedule.")
    assert str(err.value).startswith(says)
