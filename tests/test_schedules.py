import pytest

from dagger.config import ConfigError
from dagger.schedules import BetaSchedule


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


@pytest.mark.parametrize("kwargs, key", [({"kind": "cosine"}, "schedule.beta"),
                                         ({"kind": "constant", "value": 1.5}, "schedule.beta_value"),
                                         ({"kind": "constant", "value": -0.1}, "schedule.beta_value"),
                                         ({"kind": "linear", "ramp": 0}, "schedule.beta_ramp")])
def test_bad_schedules_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        BetaSchedule(**kwargs)
