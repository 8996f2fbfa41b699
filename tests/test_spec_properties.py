"""Random specs against the API: valid ones are stored (and a sample of them
builds and trains in Keras), invalid ones are 422, nothing is ever a 500."""

import json
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import cancel, counts

pytestmark = pytest.mark.integration

BUILDS = 8

positive = st.floats(min_value=1e-3, max_value=3.0)
fraction = st.floats(min_value=0.01, max_value=0.99)

INITIALIZER_CONFIGS: dict[str, Any] = {
    "zeros": st.just({}),
    "ones": st.just({}),
    "constant": st.fixed_dictionaries({}, optional={"value": st.floats(-2, 2)}),
    "random_normal": st.fixed_dictionaries(
        {}, optional={"mean": st.floats(-1, 1), "stddev": positive}
    ),
    "truncated_normal": st.fixed_dictionaries(
        {}, optional={"mean": st.floats(-1, 1), "stddev": positive}
    ),
    "random_uniform": st.floats(-1, 1).flatmap(
        lambda low: st.fixed_dictionaries(
            {"minval": st.just(low), "maxval": st.floats(low + 0.01, low + 2)}
        )
    ),
    "orthogonal": st.fixed_dictionaries({}, optional={"gain": positive}),
    "identity": st.fixed_dictionaries({}, optional={"gain": positive}),
    "variance_scaling": st.fixed_dictionaries(
        {},
        optional={
            "scale": positive,
            "mode": st.sampled_from(["fan_in", "fan_out", "fan_avg"]),
            "distribution": st.sampled_from(
                ["truncated_normal", "untruncated_normal", "uniform"]
            ),
        },
    ),
    **{
        name: st.just({})
        for name in [
            "glorot_uniform",
            "glorot_normal",
            "he_uniform",
            "he_normal",
            "lecun_uniform",
            "lecun_normal",
        ]
    },
}
VECTOR_FRIENDLY = sorted(set(INITIALIZER_CONFIGS) - {"orthogonal", "identity"})


def initializer(names: list[str]) -> Any:
    return st.sampled_from(names).flatmap(
        lambda name: st.one_of(
            st.just(name),
            INITIALIZER_CONFIGS[name].map(
                lambda config: {"name": name, "config": config}
            ),
        )
    )


OPTIMIZER_PARAMS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": st.floats(0, 0.95), "nesterov": st.booleans()},
    "rmsprop": {
        "rho": fraction,
        "momentum": st.floats(0, 0.9),
        "centered": st.booleans(),
    },
    "adam": {"beta_1": fraction, "beta_2": fraction, "amsgrad": st.booleans()},
    "adamw": {"weight_decay": st.floats(0, 0.1), "beta_1": fraction},
    "adagrad": {"initial_accumulator_value": st.floats(0, 1)},
    "adadelta": {"rho": fraction},
    "adamax": {"beta_2": fraction},
    "nadam": {"epsilon": st.floats(1e-8, 1e-3)},
}


def optimizer() -> Any:
    common = {
        "learning_rate": st.floats(1e-4, 0.5),
        "clipnorm": st.floats(0.1, 5),
    }
    return st.sampled_from(sorted(OPTIMIZER_PARAMS)).flatmap(
        lambda name: st.one_of(
            st.just(name),
            st.fixed_dictionaries(
                {"name": st.just(name)},
                optional={**common, **OPTIMIZER_PARAMS[name]},
            ),
        )
    )


TASKS = {
    "binary_crossentropy": ({"units": 1, "activation": "sigmoid"}, ["accuracy", "auc"]),
    "categorical_crossentropy": ({"units": 2, "activation": "softmax"}, ["accuracy"]),
    "sparse_categorical_crossentropy": (
        {"units": 2, "activation": "softmax"},
        ["accuracy"],
    ),
    "mse": ({"units": 1, "activation": "linear"}, ["mse", "mae"]),
    "mae": ({"units": 1, "activation": "tanh"}, ["mse", "mae", "accuracy"]),
}


@st.composite
def layer(draw: Any, base: dict[str, Any]) -> dict[str, Any]:
    spec = dict(base)
    if draw(st.booleans()):
        spec["kernel_initializer"] = draw(initializer(sorted(INITIALIZER_CONFIGS)))
    if draw(st.booleans()):
        spec["bias_initializer"] = draw(initializer(VECTOR_FRIENDLY))
    if draw(st.booleans()):
        spec["use_bias"] = draw(st.booleans())
    return spec


@st.composite
def valid_spec(draw: Any) -> dict[str, Any]:
    loss = draw(st.sampled_from(sorted(TASKS)))
    output, metrics = TASKS[loss]
    hidden = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "units": st.integers(1, 8),
                    "activation": st.sampled_from(["relu", "tanh", "linear", "selu"]),
                }
            ),
            max_size=2,
        )
    )
    layers = [draw(layer(base)) for base in [*hidden, output]]
    variants = draw(
        st.lists(initializer(sorted(INITIALIZER_CONFIGS)), min_size=1, max_size=4)
    )
    labelled = [
        {"name": v, "label": f"v{i}"} if isinstance(v, str) else {**v, "label": f"v{i}"}
        for i, v in enumerate(variants)
    ]
    return {
        "initializers": labelled,
        "model": {"layers": layers},
        "loss": loss,
        "metrics": draw(st.lists(st.sampled_from(metrics), unique=True)),
        "optimizer": draw(optimizer()),
        "engine": draw(st.sampled_from(["auto", "keras"])),
        "batch_size": draw(st.integers(1, 64)),
        "epochs": draw(st.integers(1, 3)),
        "repeats": draw(st.integers(1, 2)),
    }


def _set(spec: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    import copy

    changed = copy.deepcopy(spec)
    target: Any = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


BAD_INITIALIZERS = [
    {"name": "random_normal", "config": {"stddev": 0}},
    {"name": "random_normal", "config": {"stddev": -0.5}},
    {"name": "random_normal", "config": {"stddev": "0.5"}},
    {"name": "truncated_normal", "config": {"mean": True}},
    {"name": "random_uniform", "config": {"minval": 0.5, "maxval": 0.5}},
    {"name": "variance_scaling", "config": {"mode": "fan"}},
    {"name": "variance_scaling", "config": {"distribution": "normal"}},
    {"name": "variance_scaling", "config": {"scale": 0}},
    {"name": "orthogonal", "config": {"gain": -1}},
    {"name": "he_normal", "config": {"seed": 1}},
    {"name": "zeros", "config": {"value": 1}},
    {"name": "constant", "config": {"value": [1]}},
    {"name": "bogus"},
    "bogus",
    7,
]
BAD_OPTIMIZERS = [
    {"name": "adam", "learning_rate": 0},
    {"name": "sgd", "momentum": 1},
    {"name": "adam", "beta_1": 1.5},
    {"name": "rmsprop", "epsilon": -1},
    {"name": "adam", "weight_decay": 0.1},
    {"name": "nadam", "learning_rate": "0.1"},
    {"name": "sgd", "clipnorm": 1, "clipvalue": 1},
    {"name": "nope"},
    {},
    None,
]


@st.composite
def invalid_spec(draw: Any) -> dict[str, Any]:
    spec = draw(valid_spec())
    last = len(spec["model"]["layers"]) - 1
    index = draw(st.integers(0, len(spec["initializers"]) - 1))
    layer_index = draw(st.integers(0, last))
    mutations = [
        (["initializers", index], st.sampled_from(BAD_INITIALIZERS)),
        (
            ["model", "layers", layer_index, "kernel_initializer"],
            st.sampled_from(BAD_INITIALIZERS),
        ),
        (
            ["model", "layers", layer_index, "bias_initializer"],
            st.sampled_from([*BAD_INITIALIZERS[:12], "orthogonal", "identity"]),
        ),
        (["model", "layers", layer_index, "use_bias"], st.sampled_from(["yes", 1])),
        (["optimizer"], st.sampled_from(BAD_OPTIMIZERS)),
        (["metrics"], st.sampled_from([["f1"], ["accuracy", "accuracy"]])),
        (["epochs"], st.sampled_from([0, -1, "2", 2.5])),
        (["engine"], st.sampled_from(["jax", "packed"])),
    ]
    path, values = draw(st.sampled_from(mutations))
    changed = _set(spec, path, draw(values))
    if path[-1] == "bias_initializer":
        changed["model"]["layers"][layer_index]["use_bias"] = True
    if path == ["engine"] and changed["engine"] == "packed":
        changed["optimizer"] = "adagrad"
    if path == ["metrics"] and spec["loss"] not in {"mse", "mae"}:
        changed["metrics"] = draw(st.sampled_from([["f1"], ["mse"], ["mae"]]))
    return changed


PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    # The same examples on every run, so that a red CI is never luck.
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
built: list[str] = []


@PROPERTY_SETTINGS
@given(spec=valid_spec())
def test_valid_specs_are_stored_and_build(
    client: TestClient, spec: dict[str, Any]
) -> None:
    response = client.post("/v1/experiments", json=spec)

    assert response.status_code == 201, response.text
    cancel(client, response.json()["id"])
    if len(built) < BUILDS:
        built.append(response.json()["id"])
        train_one_epoch(response.json()["spec"])


@PROPERTY_SETTINGS
@given(spec=invalid_spec())
def test_invalid_specs_are_422_and_store_nothing(
    client: TestClient, spec: dict[str, Any]
) -> None:
    stored = counts()

    response = client.post("/v1/experiments", json=spec)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"]
    assert counts() == stored


@PROPERTY_SETTINGS
@given(
    field=st.sampled_from(
        ["initializers", "optimizer", "metrics", "model", "loss", "engine"]
    ),
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["name", "config", "label", "units", "stddev", "layers"]
                ),
                children,
                max_size=3,
            )
        ),
        max_leaves=8,
    ),
)
@example(field="initializers", value=[math.inf])
@example(field="model", value={"layers": [{"units": math.nan}]})
@example(field="optimizer", value={"name": "sgd", "momentum": -math.inf})
def test_any_value_anywhere_is_never_a_server_error(
    client: TestClient, field: str, value: Any
) -> None:
    # NaN and infinities too: Python's JSON writes them, and so do clients.
    body = json.dumps({field: value}, allow_nan=True)

    response = client.post(
        "/v1/experiments",
        content=body,
        headers={"content-type": "application/json"},
    )

    assert response.status_code in {201, 422}, response.text
    if response.status_code == 201:
        cancel(client, response.json()["id"])


def train_one_epoch(spec: dict[str, Any]) -> None:
    from worker.engine.common import build_model
    from worker.engine.plan import RunPlan
    from worker.planning import initializer_ref, training_plan

    plan = training_plan(spec)
    kernel = initializer_ref(spec["initializers"][0])
    assert kernel is not None
    model = build_model(plan, RunPlan(seed=3, kernel_initializer=kernel), 4)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    if spec["loss"] == "categorical_crossentropy":
        y = np.concatenate([y, 1 - y], axis=1)
    model.fit(x, y, batch_size=plan.batch_size, epochs=1, verbose=0)
