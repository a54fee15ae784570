"""The config mechanism: `ConfigError` and its one-line messages, the resolvers, and the checks made before any work.

Each config group's keys are a typed `Schema` declared beside the code that reads them (`dagger.envs.EnvConfig`,
`dagger.policy.mlp.MLPConfig`, ...): a pydantic model whose fields carry a `Check` (`dagger.checks`) and their
help, e.g.

    iterations: Annotated[int, COUNT, Help("DAgger iterations N")]          # an integer >= 1
    loss: Literal["mse", "gaussian"]

`parse(schema, cfg, prefix)` gives the typed group, or raises `ConfigError` with one line naming the first bad
key (`key=value must be ...` or `key: ...`), which the entry points print as `error: <line>` before any work.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dagger.checks import Text

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ROOT_CONF = PROJECT_ROOT / "conf"


class ConfigError(ValueError):
    """Bad input: reported as one line naming the key or file, before any work is done."""


def first_line(err: BaseException) -> str:
    """An exception as one line: the first line of its message, or its type when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def describe(err: BaseException, limit: int | None = None) -> str:
    """An exception as `Type: first line of its message` (at most `limit` characters of the message), the way every
    one-line error and status here names an exception that is not our own `ConfigError`."""
    text = str(err).strip()
    return f"{type(err).__name__}: {first_line(err)[:limit]}" if text else type(err).__name__


def unexpected_keyword(err: BaseException) -> str | None:
    """The keyword a TypeError says a callable does not take ("got an unexpected keyword argument 'x'"), or None."""
    found = re.search(r"unexpected keyword argument '([^']+)'", str(err))
    return found.group(1) if found else None


def register_resolvers() -> None:
    """`${project_root:}` lets config defaults point at files shipped with the project; `${keys_help:}` is the
    keys' help that `python run.py --help` shows (`dagger.keys`; `$` doubled for Hydra's help template)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("keys_help"):
        def keys_help(*, _root_) -> str:
            from dagger.keys import keys_help

            return keys_help(_root_).replace("$", "$$")

        OmegaConf.register_new_resolver("keys_help", keys_help)


def resolve_path(path: str | Path) -> Path:
    """Relative paths given on the command line are relative to where the user ran the command."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    try:
        from hydra.utils import get_original_cwd

        return Path(get_original_cwd()) / path
    except ValueError:  # not inside a Hydra app
        return Path.cwd() / path


register_resolvers()


# ---- the checks: each says what is wrong with a value, or None ----------------------------------

def show(value) -> str:
    """A value as the user would type it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, ListConfig)):
        return f"[{', '.join(show(v) for v in value)}]"
    if isinstance(value, (dict, DictConfig)):
        return f"{{{', '.join(f'{k}: {show(v)}' for k, v in value.items())}}}"
    return str(value)


def Help(text: str, resumable: bool = False):
    """A key's one-line help, in its schema field (`Annotated[int, COUNT, Help("...")]`): `python run.py --help`
    shows it (`dagger.keys`). `resumable`: the key may change when a run is resumed, since it changes no number
    (more iterations, logging, videos, hardware; `dagger.runs.resumable_keys`)."""
    return Field(description=text, json_schema_extra={"resumable": True} if resumable else None)


# ---- schemas: a config group's keys, typed, with their checks --------------------------------------

class Schema(BaseModel):
    """A config group's keys, declared beside the code that reads them: each field's type hint says what it holds
    and its `Check` (in `Annotated[...]`) the rule; keys the schema does not declare are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OpenSchema(Schema):
    """A group whose undeclared keys are passed on (e.g. `algo`: its supervisor class's keyword arguments, checked
    by the class); they are in `model_extra`."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Targeted(Schema):
    """A group that names its class (`algo`, `policy`): the option's `name` and the class's dotted path, `_target_`."""

    name: Annotated[str, Text()]
    target: Annotated[str, Text()] = Field(alias="_target_")


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


def as_container(cfg, prefix: str = "") -> dict:
    """`cfg` (a DictConfig, or a mapping already) as plain Python, every interpolation resolved; an unresolvable
    interpolation or a ??? value is one line naming its key. Hydra's own node (`hydra`) is left out."""
    if not isinstance(cfg, DictConfig):
        return dict(cfg)
    if "hydra" in cfg:
        cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException:
        raise ConfigError(unresolvable(cfg, prefix)) from None


MISSING_KEY = object()


def unresolvable(cfg: DictConfig, prefix: str) -> str:
    """The line for the key whose own value cannot be resolved (not one that merely points at it)."""
    failing: list[tuple[str, str, BaseException]] = []  # (path, raw value, error)

    def walk(node: DictConfig, at: str) -> None:
        for key in node.keys():
            path = f"{at}{key}"
            try:
                value = node[key]
            except OmegaConfBaseException as err:
                failing.append((path, str(node._get_node(key)._value()), err))
                continue
            if isinstance(value, DictConfig):
                walk(value, f"{path}.")

    walk(cfg, prefix)
    names = {path.rsplit(".", 1)[-1] for path, _, _ in failing}
    own = [f for f in failing if not any(name in f[1] for name in names - {f[0].rsplit(".", 1)[-1]})] or failing
    path, raw, err = own[0] if own else (prefix.rstrip("."), "", None)
    for dots, key in re.findall(r"\$\{(\.+)([\w.]+)\}", raw):  # it points at a sibling key that is not there
        parent = path[len(prefix):].split(".")[:-1]
        target = ".".join([*parent[:len(parent) + 1 - len(dots)], key])
        if OmegaConf.select(cfg, target, default=MISSING_KEY) is MISSING_KEY:
            return f"{prefix}{target}: missing (conf/ sets it; was it removed with ~{prefix}{target}?)"
    if isinstance(err, MissingMandatoryValue):
        return f"{path}: no value given (it is ??? in conf/); set {path}=..."
    return f"{path}: cannot resolve its value: {first_line(err) if err else 'unknown'}"


def parse(schema: type[SchemaT], cfg, prefix: str = "") -> SchemaT:
    """`cfg` checked against `schema`: the typed group, or `ConfigError` with one line naming the first bad key
    (unknown keys first: a typo explains the rest). `prefix` is the group's place, e.g. "policy."."""
    data = as_container(cfg, prefix)
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(error_line(schema, data, err, prefix)) from None


def error_line(schema: type[BaseModel], data: dict, err: ValidationError, prefix: str) -> str:
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    value, kind, context = first.get("input"), first["type"], first.get("ctx") or {}
    parts = [prefix.rstrip("."), *(str(part) for part in first["loc"])]
    if "at" in context:  # a check that names a key inside its field (a mapping's value, a group's other key)
        parts.append(context["at"])
        value = context["value"]
    path = ".".join(part for part in parts if part)
    if kind == "extra_forbidden":
        return f"{path}: unknown key (not in conf/; check the spelling)"
    if kind == "missing":
        return f"{path}: missing (conf/ sets it; was it removed with ~{path}?)"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", context["expected"])
        return f"{path}={show(value)} is not one of {', '.join(options)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path}={show(value)} must be a group of keys"
    message = first["msg"] if kind == "check" else first["msg"][:1].lower() + first["msg"][1:]
    return f"{path}={show(value)} {message}"


def check_overrides(argv: list[str]) -> None:
    """Command-line overrides Hydra cannot parse, named as one line (Hydra's own message omits the key).

    Call before `hydra.main` runs, with `sys.argv[1:]`; options and anything else are left to Hydra.
    """
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # Hydra reports its own option errors
            args, unknown = get_args_parser().parse_known_args(argv)
    except SystemExit:
        return
    parser = OverridesParser.create()
    for override in [*args.overrides, *(a for a in unknown if not a.startswith("-"))]:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as err:
            key = override.split("=", 1)[0].lstrip("+~") or override
            reason = first_line(err)
            raise ConfigError(f"{key}: cannot parse the override {override!r}: {reason} "
                              f"(quote values with special characters: {key}='...')") from None
