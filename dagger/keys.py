"""Every key of a run, per group, read from the schemas that check them: `python run.py [overrides] --help` lists
each key with its value in the composed config, what it must be (the schema's check, in the words of its error
line) and its help (the schema field's `description`), so the help cannot drift from the code that reads the key.

The groups whose class is chosen by `_target_` (obs, policy, algo) show the keys of the class chosen."""
from __future__ import annotations

from typing import get_args

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from dagger.config import show
from dagger.schemas import field_type, rule_words



def kind(info: FieldInfo) -> str:
    """What a key must be, in the words of its error line ("an integer >= 1", "one of mse, gaussian")."""
    return rule_words(field_type(info))


def schemas(cfg: DictConfig) -> dict[str, type[BaseModel]]:
    """Each group's schema for the config `cfg` (the classes `_target_` names for obs, policy and algo)."""
    from dagger.app import run_schema
    from dagger.envs import EnvConfig
    from dagger.expert.expert import ExpertConfig
    from dagger.policy import learner_class
    from dagger.rollout import EvalConfig
    from dagger.schedules import ScheduleConfig
    from dagger.supervisors import Supervisor, keyword_schema
    from dagger.schemas import target_class
    from dagger.tracking import LoggerConfig
    from dagger.views import view_class

    supervisor = target_class("algo._target_", cfg.algo._target_, lambda c: issubclass(c, Supervisor), "a supervisor")
    return {"": run_schema(), "env": EnvConfig, "expert": ExpertConfig, "obs": view_class(cfg.obs._target_).Config,
            "policy": learner_class(cfg.policy._target_).Config, "schedule": ScheduleConfig,
            "algo": keyword_schema(supervisor), "logger": LoggerConfig, "eval": EvalConfig}


def model_of(info: FieldInfo) -> type[BaseModel] | None:
    """The schema a field nests (`expert.train`), if it is one."""
    for candidate in (info.annotation, *get_args(info.annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def field_lines(schema: type[BaseModel], given: dict, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    """`prefix.key=value  [what it must be]` and its help, for each key of `schema` that the config holds."""
    lines = []
    for name, info in schema.model_fields.items():
        if name in skip or name not in given:
            continue
        nested = model_of(info)
        if nested is not None and isinstance(given[name], dict):
            lines += field_lines(nested, given[name], f"{prefix}{name}.")
            continue
        lines.append(f"  {prefix}{name}={show(given[name])}  [{kind(info)}]")
        if info.description:
            lines.append(f"      {info.description}")
    return lines


def keys_help(cfg: DictConfig) -> str:
    """The keys of the config `cfg` (a run's, composed with its overrides), group by group."""
    values = OmegaConf.to_container(cfg, resolve=False)
    choices = values.get("hydra", {}).get("runtime", {}).get("choices", {})
    lines = []
    for group, schema in schemas(cfg).items():
        if not group:
            top = {name: values[name] for name, info in schema.model_fields.items()  # its own keys, not its groups
                   if model_of(info) is None and name in values}
            lines += ["top-level:", *field_lines(schema, top, ""), ""]
            continue
        option = f" ({choices[group]})" if group in choices else ""
        skip = () if group == "logger" else ("name",)  # the option's own name (its class, `_target_`, is not a key)
        lines += [f"{group}{option}:", *field_lines(schema, values.get(group, {}), f"{group}.", skip), ""]
    return "\n".join(lines).rstrip()
