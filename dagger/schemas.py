"""Typed config groups: each group's keys are a `Schema` declared beside the code that reads them
(`dagger.envs.EnvConfig`, `dagger.policy.mlp.MLPConfig`, ...), a pydantic model whose fields carry their rule as
pydantic's own constraints and their help as the field's description:

    iterations: Annotated[int, COUNT, Help("DAgger iterations N")]       # COUNT = Field(strict=True, ge=1)
    lr: Annotated[float, number(above=0), Help("Adam's learning rate")]
    loss: Literal["mse", "gaussian"]

`parse(schema, cfg, prefix)` gives the typed group, or raises `ConfigError` with one line naming the first bad
key. The words of that line ("must be an integer >= 1") and of `python run.py --help` are read from the same
constraints (`rule_words`), so the rule, its message and its help cannot drift apart.
"""
from __future__ import annotations

import math
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, core_schema

from dagger.config import ConfigError, as_container, show


# ---- the rules: pydantic constraints, strict (no bool for an int, no 2.0 for an int, no "1" for a number) ------

def integer(low: int | None = None, high: int | None = None) -> FieldInfo:
    """An int in [low, high] (either bound open-ended)."""
    return Field(strict=True, ge=low, le=high)


def number(low: float | None = None, high: float | None = None, above: float | None = None) -> FieldInfo:
    """A finite int or float, in [low, high] and > `above` where given; checked values become floats."""
    return Field(strict=True, ge=low, le=high, gt=above, allow_inf_nan=False)


def text(max_len: int | None = None) -> FieldInfo:
    """A non-empty string, at most `max_len` characters long."""
    return Field(strict=True, min_length=1, max_length=max_len)


COUNT = integer(1)
SEED = integer(0, 2**32 - 1)  # numpy's seeding range
NUMBER = number()
BOOLEAN = Field(strict=True)
TEXT = text()


@dataclass(frozen=True)
class Rule:
    """A rule pydantic has no constraint for (a registered task id, a dataset id, forbidden characters), checked
    after the type's own: `what` the value must be besides its type (shown after it, in brackets), and
    `problem(value)`, what is wrong or None."""

    what: str
    problem: Callable[[Any], str | None]

    def validate(self, value):
        problem = self.problem(value)
        if problem:
            raise PydanticCustomError("check", problem)
        return value

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_after_validator_function(self.validate, handler(source))


def no_characters(forbidden: str) -> Rule:
    """A string without any of the `forbidden` characters."""
    def problem(value: str) -> str | None:
        bad = sorted(set(value) & set(forbidden))
        return f"must not contain {' '.join(bad)} (forbidden: {' '.join(forbidden)})" if bad else None

    return Rule(f"without {' '.join(forbidden)}", problem)


def Help(text: str, resumable: bool = False) -> FieldInfo:
    """A key's one-line help, in its schema field (`Annotated[int, COUNT, Help("...")]`): `python run.py --help`
    shows it (`dagger.keys`). `resumable`: the key may change when a run is resumed, since it changes no number
    (more iterations, logging, videos, hardware; `dagger.runs.resumable_keys`)."""
    return Field(description=text, json_schema_extra={"resumable": True} if resumable else None)


# ---- a rule in words, read from the type and its constraints ---------------------------------------------------

NOUNS = {int: ("an integer", "integers"), float: ("a finite number", "finite numbers"),
         str: ("a non-empty string", "non-empty strings")}


def constraints(metadata) -> list:
    """The constraints in a field's metadata, FieldInfos opened up."""
    found = []
    for item in metadata:
        found += constraints(item.metadata) if isinstance(item, FieldInfo) else [item]
    return found


def bounds(metadata) -> dict[str, float]:
    """The numeric bounds (ge, le, gt) and string lengths (max_length) among the constraints."""
    found = {}
    for rule in constraints(metadata):
        for name in ("ge", "le", "gt", "max_length", "min_length"):
            if getattr(rule, name, None) is not None and isinstance(rule, at.BaseMetadata):
                found[name] = getattr(rule, name)
    return found


def rule_words(annotation, metadata=(), plural: bool = False) -> str:
    """What a value must be, in the words of its error line and of --help: "an integer in [1, 256]", "null or a
    finite number > 0", "a list of integers >= 1", "one of mse, gaussian"."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return rule_words(args[0], [*metadata, *args[1:]], plural)
    custom = [rule for rule in constraints(metadata) if isinstance(rule, Rule)]
    if custom:
        plain = [item for item in metadata if not isinstance(item, Rule)]
        return f"{rule_words(annotation, plain, plural)} ({custom[0].what})"
    if origin in (Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        inner = " or ".join(rule_words(arg, metadata, plural) for arg in rest)
        return f"null or {inner}" if len(rest) < len(args) else inner
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    limits = bounds(metadata)
    if origin is list:
        size = limits.get("min_length") if limits.get("min_length") == limits.get("max_length") else None
        return f"a list of {f'{size} ' if size else ''}{rule_words(args[0], plural=True)}"
    if origin is dict:
        values = args[1] if args else Any
        return "a mapping (key: value, ...)" if values is Any else f"a mapping of names to {rule_words(values, plural=True)}"
    if annotation is bool:
        return "true or false"
    noun = NOUNS.get(annotation, (getattr(annotation, "__name__", str(annotation)),) * 2)[plural]
    if annotation is str:
        return noun + (f" of at most {limits['max_length']} characters" if "max_length" in limits else "")
    shown = (lambda x: f"{x:g}") if annotation is float else str
    if "ge" in limits and "le" in limits:
        return f"{noun} in [{shown(limits['ge'])}, {shown(limits['le'])}]"
    if "gt" in limits and "le" in limits:
        return f"{noun} in ({shown(limits['gt'])}, {shown(limits['le'])}]"
    for name, sign in (("gt", ">"), ("ge", ">="), ("le", "<=")):
        if name in limits:
            return f"{noun} {sign} {shown(limits[name])}"
    return noun


def field_type(info: FieldInfo):
    """A field's type with its constraints, as one annotation."""
    return Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation


def unwrap(annotation) -> tuple[Any, list]:
    """The type under Annotated and Optional (what the value is, when it is not null), and the constraints met on
    the way."""
    found = []
    while True:
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Annotated:
            found += args[1:]
            annotation = args[0]
        elif origin in (Union, types.UnionType) and type(None) in args and len(args) == 2:
            annotation = next(arg for arg in args if arg is not type(None))
        else:
            return annotation, found


def core(annotation):
    """The type under Annotated and Optional: what the value is, when it is not null."""
    return unwrap(annotation)[0]


def located(schema: type[BaseModel], loc: tuple) -> tuple[Any, int]:
    """The type (with its constraints) an error's `loc` points into, and how many of its parts name keys (a list
    index is not named: the error names the whole list)."""
    annotation, named = schema, 0
    for part in loc:
        inner = core(annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            info = next((info for name, info in inner.model_fields.items() if part in (name, info.alias)), None)
            if info is None:
                break
            annotation = field_type(info)
        elif get_origin(inner) is dict and isinstance(part, str):
            annotation = (get_args(inner) or (str, Any))[1]
        else:
            break
        named += 1
    return annotation, named


# ---- schemas ----------------------------------------------------------------------------------------------------

class Schema(BaseModel):
    """A config group's keys, declared beside the code that reads them: each field's type hint says what it holds
    and its constraints the rule; keys the schema does not declare are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OpenSchema(Schema):
    """A group whose undeclared keys are passed on (e.g. `algo`: its supervisor class's keyword arguments, checked
    by the class); they are in `model_extra`."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Targeted(Schema):
    """A group that names its class (`algo`, `policy`): the option's `name` and the class's dotted path, `_target_`."""

    name: Annotated[str, TEXT]
    target: Annotated[str, TEXT] = Field(alias="_target_")


def target_class(key: str, target, is_kind: Callable[[type], bool], kind: str) -> type:
    """The class a `_target_` names, when `is_kind(cls)`; otherwise one line: `<key>=<target> is not <kind>`."""
    from hydra.utils import get_class

    try:
        cls = get_class(str(target))
        right = is_kind(cls)
    except Exception:  # noqa: BLE001 - an unknown class is bad input
        right = False
    if not right:
        raise ConfigError(f"{key}={show(target)} is not {kind}")
    return cls


SchemaT = TypeVar("SchemaT", bound=BaseModel)


def parse_targeted(group_cfg, class_of: Callable[[object], type], prefix: str) -> Schema:
    """A group that names its class (`_target_`: `policy`, `obs`), as a DictConfig, a mapping or a parsed schema,
    checked against that class's own `Config`; `class_of(target)` refuses a target of the wrong kind."""
    if isinstance(group_cfg, Schema):
        group_cfg = group_cfg.model_dump(by_alias=True)
    return parse(class_of(group_cfg.get("_target_")).Config, group_cfg, prefix)


def parse(schema: type[SchemaT], cfg, prefix: str = "") -> SchemaT:
    """`cfg` checked against `schema`: the typed group, or `ConfigError` with one line naming the first bad key
    (unknown keys first: a typo explains the rest). `prefix` is the group's place, e.g. "policy."."""
    data = as_container(cfg, prefix)
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(error_line(schema, data, err, prefix)) from None


def error_line(schema: type[BaseModel], data: dict, err: ValidationError, prefix: str) -> str:
    """The first error as one line naming its key: `key=value must be <the rule in words>`, or what is wrong."""
    first = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    value, kind, context = first.get("input"), first["type"], first.get("ctx") or {}
    annotation, named = located(schema, first["loc"])
    loc = first["loc"] if kind in ("extra_forbidden", "missing") else first["loc"][:max(named, 1)]
    if named < len(first["loc"]) and kind not in ("extra_forbidden", "missing"):  # a list's item: name the list
        value = data
        for part in loc:
            value = value[part] if isinstance(value, dict) else value
    parts = [prefix.rstrip("."), *(str(part) for part in loc)]
    if "at" in context:  # a check that names a key inside its field (a mapping's value, a group's other key)
        parts.append(context["at"])
        value = context["value"]
    path = ".".join(part for part in parts if part)
    if kind == "extra_forbidden":
        return f"{path}: unknown key (not in conf/; check the spelling)"
    if kind == "missing":
        return f"{path}: missing (conf/ sets it; was it removed with ~{path}?)"
    if kind in ("model_type", "model_attributes_type") or (kind == "dict_type" and get_origin(core(annotation)) is not dict):
        return f"{path}={show(value)} must be a group of keys"
    if kind == "check":
        return f"{path}={show(value)} {first['msg']}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", context["expected"])
        return f"{path}={show(value)} is not one of {', '.join(options)}"
    if kind in CONSTRAINT_ERRORS:
        return f"{path}={show(value)} {constraint_problem(annotation, value)}"
    return f"{path}={show(value)} {first['msg'][:1].lower()}{first['msg'][1:]}"


CONSTRAINT_ERRORS = {"int_type", "float_type", "bool_type", "string_type", "list_type", "dict_type", "finite_number",
                     "greater_than", "greater_than_equal", "less_than_equal", "string_too_short", "string_too_long",
                     "too_short", "too_long"}


def constraint_problem(annotation, value) -> str:
    """What is wrong with `value` under `annotation`'s constraints: "must be <rule>", "is outside [low, high]" for a
    number out of both bounds, and the fix for an integer written as 2.0."""
    words, (base, metadata) = rule_words(annotation), unwrap(annotation)
    if isinstance(value, float) and value.is_integer() and base is int:
        try:
            TypeAdapter(annotation).validate_python(int(value))
            return f"must be {words} (write {int(value)}, without a decimal point or exponent)"
        except ValidationError:
            pass
    limits = bounds(metadata)
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if base is float and finite and "ge" in limits and "le" in limits:
        return f"is outside [{limits['ge']:g}, {limits['le']:g}]"
    return f"must be {words}"
