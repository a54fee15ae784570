"""The rules a key's value must pass, each saying in its error line's words what the value must be: a schema field
carries one as metadata (`Annotated[int, Integer(1)]`), `problem(value)` tells what is wrong, and `python run.py
--help` shows the same words (`dagger.keys`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig
from pydantic_core import PydanticCustomError, core_schema


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Check:
    """One key's rule, used as a schema field's metadata: `Annotated[int, Integer(1)]`. `problem(value)` returns
    what is wrong (`must be ...`) or None; `convert(value)` gives the checked value its declared type."""

    def problem(self, value) -> str | None:
        raise NotImplementedError

    def convert(self, value):
        return value

    def validate(self, value):
        problem = self.problem(value)
        if problem:
            raise PydanticCustomError("check", problem)
        return self.convert(value)

    def __get_pydantic_core_schema__(self, _source, _handler):
        return core_schema.no_info_plain_validator_function(self.validate)


def in_words(what: str, low=None, high=None, above=None, number=str) -> str:
    """`what` and its bounds, as the messages say them: "an integer in [1, 256]", "a finite number > 0"."""
    if low is not None and high is not None:
        return f"{what} in [{number(low)}, {number(high)}]"
    if above is not None:
        return f"{what} > {number(above)}"
    if low is not None:
        return f"{what} >= {number(low)}"
    return what if high is None else f"{what} <= {number(high)}"


@dataclass(frozen=True)
class Integer(Check):
    """An int (bools and floats refused, even 2.0) in [low, high]; either bound may be open-ended."""

    convert = staticmethod(int)

    low: int | None = None
    high: int | None = None

    def describe(self) -> str:
        return in_words("an integer", self.low, self.high)

    def problem(self, value):
        if isinstance(value, float) and value.is_integer() and self.problem(int(value)) is None:  # 2.0, 1e6
            return f"must be {self.describe()} (write {int(value)}, without a decimal point or exponent)"
        if (not is_int(value) or (self.low is not None and value < self.low)
                or (self.high is not None and value > self.high)):
            return f"must be {self.describe()}"
        return None


@dataclass(frozen=True)
class Number(Check):
    """A finite int or float (bools refused) with optional bounds; `above` is a strict lower bound. Checked values
    become floats."""

    convert = staticmethod(float)

    low: float | None = None
    high: float | None = None
    above: float | None = None

    def describe(self) -> str:
        return in_words("a finite number", self.low, self.high, self.above, number=lambda x: f"{x:g}")

    def problem(self, value):
        if not is_number(value) or not math.isfinite(value):
            return f"must be {self.describe()}"
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            return f"is outside [{self.low:g}, {self.high:g}]"
        if (self.above is not None and value <= self.above) or (self.low is not None and value < self.low):
            return f"must be {self.describe()}"
        return None


@dataclass(frozen=True)
class Boolean(Check):
    def problem(self, value):
        return None if isinstance(value, bool) else "must be true or false"


@dataclass(frozen=True)
class Text(Check):
    """A non-empty string, optionally without some characters and at most `max_len` long."""

    forbidden: str = ""
    max_len: int | None = None

    def problem(self, value):
        if not isinstance(value, str) or not value:
            return "must be a non-empty string"
        bad = sorted({c for c in value if c in self.forbidden})
        if bad:
            return f"must not contain {' '.join(bad)} (forbidden: {' '.join(self.forbidden)})"
        if self.max_len is not None and len(value) > self.max_len:
            return f"must be at most {self.max_len} characters long"
        return None


@dataclass(frozen=True)
class ListOf(Check):
    """A list whose items all pass `item`; `what` names them in the message."""

    item: Check
    what: str

    def problem(self, value):
        if not isinstance(value, (list, ListConfig)) or any(self.item.problem(v) for v in value):
            return f"must be a list of {self.what}"
        return None

    def convert(self, value):
        return [self.item.convert(v) for v in value]


@dataclass(frozen=True)
class Nullable(Check):
    """null, or a value that passes `inner`."""

    inner: Check
    null_means: str = ""

    def problem(self, value):
        if value is None:
            return None
        inner = self.inner.problem(value)
        if inner is None:
            return None
        meaning = f" ({self.null_means})" if self.null_means else ""
        return inner.replace("must be ", f"must be null{meaning} or ", 1) if inner.startswith("must be ") else inner

    def convert(self, value):
        return None if value is None else self.inner.convert(value)


@dataclass(frozen=True)
class Mapping(Check):
    """A free-form mapping (any keys), passed on as keyword arguments; with `values`, each value is checked and
    named as `<key>.<name>`."""

    values: Check | None = None
    what: str = "a mapping (key: value, ...)"

    def problem(self, value):
        return None if isinstance(value, (dict, DictConfig)) else f"must be {self.what}"

    def validate(self, value):
        value = super().validate(value)
        if self.values is None:
            return dict(value)
        for name, item in value.items():
            problem = self.values.problem(item)
            if problem:
                raise PydanticCustomError("check", "{problem}", {"problem": problem, "at": str(name), "value": item})
        return {name: self.values.convert(item) for name, item in value.items()}


SEED = Integer(0, 2**32 - 1)  # numpy's seeding range
COUNT = Integer(1)
