"""The config mechanism: `ConfigError` and the one formatter of its one-line messages (`show`, `first_line`,
`describe`), the resolvers, resolving a group's interpolations (`as_container`), and the check of command-line
overrides made before Hydra runs. The groups' typed schemas and their rules are in `dagger.schemas`; the entry
points print a `ConfigError` as `error: <line>` before any work.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

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
