"""Optimizers by name or as {"name": ..., <parameters>}, with Keras' meaning and
the ranges in which they train."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.params import Problem, normalized, type_problem, validation_error


@dataclass(frozen=True)
class Rule:
    type: str
    holds: Callable[[Any], bool]
    requirement: str


POSITIVE = Rule("float", lambda value: value > 0, "must be greater than 0")
NON_NEGATIVE = Rule("float", lambda value: value >= 0, "must be at least 0")
FRACTION = Rule("float", lambda value: 0 < value < 1, "must be between 0 and 1")
MOMENTUM = Rule(
    "float", lambda value: 0 <= value < 1, "must be at least 0 and less than 1"
)
FLAG = Rule("bool", lambda _: True, "")

COMMON = {
    "learning_rate": POSITIVE,
    "clipnorm": POSITIVE,
    "clipvalue": POSITIVE,
    "global_clipnorm": POSITIVE,
}
ADAM_LIKE = {"beta_1": FRACTION, "beta_2": FRACTION, "epsilon": POSITIVE}

PARAMETERS: dict[str, dict[str, Rule]] = {
    "sgd": {**COMMON, "momentum": MOMENTUM, "nesterov": FLAG},
    "rmsprop": {
        **COMMON,
        "rho": FRACTION,
        "momentum": MOMENTUM,
        "epsilon": POSITIVE,
        "centered": FLAG,
    },
    "adam": {**COMMON, **ADAM_LIKE, "amsgrad": FLAG},
    "adamw": {**COMMON, **ADAM_LIKE, "amsgrad": FLAG, "weight_decay": NON_NEGATIVE},
    "adagrad": {
        **COMMON,
        "initial_accumulator_value": NON_NEGATIVE,
        "epsilon": POSITIVE,
    },
    "adadelta": {**COMMON, "rho": FRACTION, "epsilon": POSITIVE},
    "adamax": {**COMMON, **ADAM_LIKE},
    "nadam": {**COMMON, **ADAM_LIKE},
}
CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")
UNKNOWN = f"unknown optimizer; expected one of {', '.join(PARAMETERS)}"


def optimizer_name(spec: str | Mapping[str, Any]) -> str:
    return spec if isinstance(spec, str) else str(spec["name"])


def check_optimizer(value: Any) -> str | dict[str, Any]:
    """A name as it is; an object with its numbers as floats. Raises a
    ValidationError that locates each bad key."""
    if isinstance(value, str):
        _check_name(value)
        return value
    if not isinstance(value, dict):
        raise ValueError(
            f"an optimizer is a name or an object with a 'name'. Received: {value!r}"
        )
    name = value.get("name")
    if not isinstance(name, str) or name not in PARAMETERS:
        raise validation_error("optimizer", [("name", name, UNKNOWN)])
    params = {key: item for key, item in value.items() if key != "name"}
    return {"name": name, **_checked(name, params)}


def _check_name(name: str) -> None:
    if name not in PARAMETERS:
        raise ValueError(f"{UNKNOWN}. Received: {name!r}")


def _checked(name: str, params: dict[str, Any]) -> dict[str, Any]:
    rules = PARAMETERS[name]
    problems: list[Problem] = []
    checked: dict[str, Any] = {}
    for key, value in params.items():
        problem = _problem(name, rules, key, value)
        if problem is None:
            checked[key] = normalized(rules[key].type, value)
        else:
            problems.append((key, value, problem))
    clipping = [key for key in CLIPPING if key in checked]
    if not problems and len(clipping) > 1:
        problems.append(
            (
                clipping[-1],
                checked[clipping[-1]],
                "set only one of " + ", ".join(CLIPPING),
            )
        )
    if problems:
        raise validation_error("optimizer", problems)
    return checked


def _problem(name: str, rules: dict[str, Rule], key: str, value: Any) -> str | None:
    rule = rules.get(key)
    if rule is None:
        return f"unknown parameter of {name}; expected one of {', '.join(rules)}"
    wrong_type = type_problem(rule.type, value)
    if wrong_type is not None:
        return wrong_type
    return None if rule.holds(value) else rule.requirement
