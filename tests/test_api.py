"""The HTTP API against real PostgreSQL and Redis, with no worker consuming."""

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.config import get_settings
from service.db.models import Run
from service.db.session import session_scope
from service.seeding import derive_seed
from tests.helpers import REFERENCE, cancel, counts

pytestmark = pytest.mark.integration


def queued_messages(redis_client: Any, device: str = "cpu") -> int:
    return int(redis_client.llen(get_settings().queue_name(device)))


def messages(redis_client: Any, device: str = "cpu") -> list[list[str]]:
    """The run ids of each training message waiting in a queue."""
    import base64
    import json

    raw = redis_client.lrange(get_settings().queue_name(device), 0, -1)
    bodies = [json.loads(base64.b64decode(json.loads(m)["body"])) for m in raw]
    return [list(body[0][1]) for body in bodies]


def test_omitted_fields_take_the_reference_spec(
    client: TestClient, redis_client: Any
) -> None:
    before = queued_messages(redis_client)

    response = client.post("/v1/experiments", json={})

    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v1/experiments/{body['id']}"
    assert body["spec"] == REFERENCE
    assert body["status"] == "queued"
    assert body["runs_total"] == 5
    assert body["progress"] == {
        "runs_total": 5,
        "runs_done": 0,
        "epochs_done": 0,
        "epochs_total": 25,
        "runs_by_status": {
            "queued": 5,
            "running": 0,
            "succeeded": 0,
            "failed": 0,
            "cancelled": 0,
        },
    }
    assert queued_messages(redis_client) == before + 1


def test_packed_runs_go_out_in_packs_and_keras_runs_one_by_one(
    client: TestClient, redis_client: Any
) -> None:
    redis_client.delete(get_settings().queue_name("cpu"))

    packed = client.post("/v1/experiments", json={"repeats": 20}).json()
    keras = client.post("/v1/experiments", json={"engine": "keras"}).json()
    auto_adagrad = client.post("/v1/experiments", json={"optimizer": "adagrad"}).json()

    def run_ids(experiment: dict[str, Any]) -> list[str]:
        runs = client.get(f"/v1/experiments/{experiment['id']}/runs").json()["data"]
        return [run["id"] for run in runs]

    assert messages(redis_client)[::-1] == [
        run_ids(packed),
        *([run_id] for run_id in run_ids(keras)),
        *([run_id] for run_id in run_ids(auto_adagrad)),
    ]


def test_packs_are_cut_at_the_configured_size(
    client: TestClient, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_client.delete(get_settings().queue_name("cpu"))
    monkeypatch.setattr(get_settings(), "cpu_pack_size", 4)

    client.post("/v1/experiments", json={"repeats": 2})

    assert [len(pack) for pack in messages(redis_client)[::-1]] == [4, 4, 2]


def test_gpu_experiments_go_to_the_gpu_queue(
    client: TestClient, redis_client: Any
) -> None:
    cpu, gpu = queued_messages(redis_client), queued_messages(redis_client, "gpu")

    client.post("/v1/experiments", json={"device": "gpu"})

    assert queued_messages(redis_client) == cpu
    assert queued_messages(redis_client, "gpu") == gpu + 1


def test_runs_get_labels_repeats_and_derived_seeds(client: TestClient) -> None:
    spec = {"initializers": ["zeros", {"name": "he_normal", "label": "He"}]}
    experiment = client.post("/v1/experiments", json={**spec, "repeats": 3, "seed": 7})

    runs = client.get(f"/v1/experiments/{experiment.json()['id']}/runs").json()

    assert runs["count"] == 6
    assert [(r["initializer"], r["repeat"], r["seed"]) for r in runs["data"]] == [
        (label, repeat, derive_seed(7, position))
        for position, (label, repeat) in enumerate(
            [(label, r) for label in ["zeros", "He"] for r in range(3)]
        )
    ]
    assert {r["status"] for r in runs["data"]} == {"queued"}
    with session_scope() as session:
        stored = session.scalars(
            select(Run).where(Run.experiment_id == experiment.json()["id"])
        ).all()
        assert all(run.enqueued_at is not None for run in stored)


def test_initializers_with_parameters_are_stored_with_readable_labels(
    client: TestClient,
) -> None:
    spec = {
        "initializers": [
            {"name": "random_normal", "config": {"stddev": 0.5}},
            {"name": "normal", "config": {"stddev": 0.05, "mean": 1}},
            {"name": "variance_scaling", "config": {"mode": "fan_avg"}, "label": "VS"},
            "he_normal",
        ],
        "model": {
            "layers": [
                {"units": 8, "activation": "relu", "bias_initializer": "ones"},
                {
                    **SIGMOID,
                    "kernel_initializer": "glorot_uniform",
                    "use_bias": False,
                },
            ]
        },
    }

    created = client.post("/v1/experiments", json=spec)

    assert created.status_code == 201, created.text
    stored = created.json()["spec"]
    assert stored["initializers"] == [
        {
            "name": "random_normal",
            "config": {"stddev": 0.5},
            "label": "random_normal(stddev=0.5)",
        },
        {
            "name": "normal",
            "config": {"stddev": 0.05, "mean": 1.0},
            "label": "normal(mean=1.0)",
        },
        {"name": "variance_scaling", "config": {"mode": "fan_avg"}, "label": "VS"},
        {"name": "he_normal", "config": {}, "label": "he_normal"},
    ]
    hidden, output = stored["model"]["layers"]
    assert hidden["bias_initializer"]["name"] == "ones"
    assert output["kernel_initializer"]["name"] == "glorot_uniform"
    assert output["use_bias"] is False
    runs = client.get(f"/v1/experiments/{created.json()['id']}/runs").json()
    assert [run["initializer"] for run in runs["data"]] == [
        "random_normal(stddev=0.5)",
        "normal(mean=1.0)",
        "VS",
        "he_normal",
    ]


def test_optimizers_with_parameters_are_stored_and_packed_when_they_can_be(
    client: TestClient, redis_client: Any
) -> None:
    redis_client.delete(get_settings().queue_name("cpu"))
    adam = {"name": "adam", "learning_rate": 1, "amsgrad": True, "clipnorm": 0.5}
    adamw = {"name": "adamw", "weight_decay": 0.01}

    packed = client.post("/v1/experiments", json={"optimizer": adam}).json()
    keras = client.post("/v1/experiments", json={"optimizer": adamw}).json()

    assert packed["spec"]["optimizer"] == {**adam, "learning_rate": 1.0}
    assert keras["spec"]["optimizer"] == adamw
    assert [len(pack) for pack in messages(redis_client)[::-1]] == [5, 1, 1, 1, 1, 1]
    cancel(client, packed["id"], keras["id"])


@pytest.mark.parametrize(
    ("spec", "packed"),
    [
        ({"metrics": ["accuracy", "auc"]}, False),
        ({"metrics": ["mse", "mae"], "loss": "mse"}, False),
        ({"metrics": ["mae"], "loss": "mae"}, False),
        ({"metrics": []}, True),
    ],
)
def test_metrics_go_with_their_loss_and_choose_the_engine(
    client: TestClient, redis_client: Any, spec: dict[str, Any], packed: bool
) -> None:
    redis_client.delete(get_settings().queue_name("cpu"))
    if spec.get("loss") in {"mse", "mae"}:
        spec = {**spec, "model": {"layers": [{"units": 1}]}}

    created = client.post("/v1/experiments", json=spec)

    assert created.status_code == 201, created.text
    assert created.json()["spec"]["metrics"] == spec["metrics"]
    assert len(messages(redis_client)) == (1 if packed else 5)
    cancel(client, created.json()["id"])


def test_an_unused_bias_initializer_may_be_any(client: TestClient) -> None:
    layer = {**SIGMOID, "use_bias": False, "bias_initializer": "identity"}

    response = client.post("/v1/experiments", json={"model": {"layers": [layer]}})

    assert response.status_code == 201


def test_initializers_are_listed_with_parameters_and_aliases(
    client: TestClient,
) -> None:
    body = client.get("/v1/initializers").json()

    by_name = {entry["name"]: entry for entry in body["data"]}
    assert body["count"] == len(body["data"]) == 15
    assert body["keras_version"]
    assert by_name["random_normal"] == {
        "name": "random_normal",
        "class": "RandomNormal",
        "aliases": ["normal"],
        "parameters": [
            {"name": "mean", "type": "float", "default": 0.0},
            {"name": "stddev", "type": "float", "default": 0.05},
        ],
    }
    assert by_name["variance_scaling"]["parameters"] == [
        {"name": "scale", "type": "float", "default": 1.0},
        {"name": "mode", "type": "string", "default": "fan_in"},
        {"name": "distribution", "type": "string", "default": "truncated_normal"},
    ]
    assert by_name["zeros"]["parameters"] == []


def test_same_seed_gives_same_run_seeds_other_seed_other_seeds(
    client: TestClient,
) -> None:
    def seeds(seed: int) -> list[int]:
        created = client.post("/v1/experiments", json={"seed": seed, "repeats": 2})
        runs = client.get(f"/v1/experiments/{created.json()['id']}/runs").json()
        return [run["seed"] for run in runs["data"]]

    first, again, other = seeds(11), seeds(11), seeds(12)
    assert first == again
    assert len(set(first)) == 10
    assert set(first).isdisjoint(other)


def test_list_is_newest_first_and_paginated(client: TestClient) -> None:
    ids = [
        client.post("/v1/experiments", json={"name": f"n{i}"}).json()["id"]
        for i in range(3)
    ]

    page = client.get("/v1/experiments", params={"limit": 2}).json()
    second = client.get("/v1/experiments", params={"limit": 2, "offset": 2}).json()

    assert [e["id"] for e in page["data"]] == ids[::-1][:2]
    assert second["data"][0]["id"] == ids[0]
    assert page["count"] == second["count"] >= 3
    assert (page["limit"], page["offset"]) == (2, 0)


def test_read_one_experiment_and_empty_history(client: TestClient) -> None:
    created = client.post("/v1/experiments", json={}).json()

    read = client.get(f"/v1/experiments/{created['id']}")
    history = client.get(f"/v1/experiments/{created['id']}/history")

    assert read.status_code == 200
    assert read.json()["spec"] == created["spec"]
    assert history.json() == {
        "experiment_id": created["id"],
        "points": [],
        "cursor": 0,
        "has_more": False,
        "reset_runs": [],
        "diverged_runs": [],
    }


@pytest.mark.parametrize(
    "path",
    [
        "/v1/experiments/{id}",
        "/v1/experiments/{id}/runs",
        "/v1/experiments/{id}/history",
        "/v1/runs/{id}",
        "/v1/runs/{id}/history",
    ],
)
def test_unknown_ids_are_404(client: TestClient, path: str) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"

    response = client.get(path.format(id=unknown))

    assert response.status_code == 404
    assert response.json()["id"] == unknown
    assert unknown in response.json()["detail"]


def test_cancel_unknown_is_404(client: TestClient) -> None:
    assert client.post("/v1/experiments/nope/cancel").status_code == 404


def test_cancel_marks_unfinished_runs(client: TestClient) -> None:
    created = client.post("/v1/experiments", json={}).json()

    cancelled = client.post(f"/v1/experiments/{created['id']}/cancel").json()

    assert cancelled["status"] == "cancelled"
    assert cancelled["progress"]["runs_by_status"]["cancelled"] == 5
    assert cancelled["progress"]["runs_done"] == 5


SIGMOID = {"units": 1, "activation": "sigmoid"}
INITS_30 = [{"name": "normal", "label": f"normal {i}"} for i in range(30)]

BAD_SPECS = [
    ({"initializers": ["zeros", "bogus"]}, "initializers.1.name", "bogus"),
    ({"initializers": [{"name": "he_normal", "seed": 3}]}, "initializers.0.seed", 3),
    ({"initializers": []}, "initializers", []),
    ({"initializers": ["zeros", "zeros"]}, "initializers", None),
    ({"epochs": 0}, "epochs", 0),
    ({"epochs": -3}, "epochs", -3),
    ({"epochs": "5"}, "epochs", "5"),
    ({"epochs": 2.5}, "epochs", 2.5),
    ({"batch_size": 0}, "batch_size", 0),
    ({"repeats": 0}, "repeats", 0),
    ({"test_size": 0}, "test_size", 0),
    ({"test_size": 1}, "test_size", 1),
    ({"test_size": 1.5}, "test_size", 1.5),
    ({"test_size": -0.1}, "test_size", -0.1),
    ({"optimizer": "sgdd"}, "optimizer", "sgdd"),
    ({"loss": "hinge"}, "loss", "hinge"),
    ({"metrics": ["f1"]}, "metrics", ["f1"]),
    ({"metrics": ["mse"]}, "metrics", ["mse"]),
    ({"metrics": ["accuracy", "mae"]}, "metrics", ["accuracy", "mae"]),
    (
        {"metrics": ["auc"], "loss": "mse", "model": {"layers": [{"units": 1}]}},
        "metrics",
        ["auc"],
    ),
    ({"metrics": ["accuracy", "auc"], "engine": "packed"}, "engine", "packed"),
    (
        {"metrics": ["mse"], "loss": "mae", "engine": "packed"},
        "engine",
        "packed",
    ),
    ({"dataset": {"source": "uci:iris"}}, "dataset.source", "uci:iris"),
    ({"model": {"layers": []}}, "model.layers", []),
    ({"model": {"layers": [{"units": 0}]}}, "model.layers.0.units", 0),
    (
        {"model": {"layers": [{"units": 1, "activation": "sigmoidd"}]}},
        "model.layers.0.activation",
        "sigmoidd",
    ),
    ({"epoch": 5}, "epoch", 5),
    ({"seed": -1}, "seed", -1),
    ({"engine": "jax"}, "engine", "jax"),
    ({"engine": "packed", "optimizer": "adagrad"}, "engine", "packed"),
    ({"device": "tpu"}, "device", "tpu"),
    ({"test_size": "0.5"}, "test_size", "0.5"),
    ({"test_size": True}, "test_size", True),
    ({"metrics": ["accuracy", "accuracy"]}, "metrics", ["accuracy", "accuracy"]),
    ({"name": "a\u0000b"}, "name", "a\u0000b"),
    (
        {"loss": "sparse_categorical_crossentropy"},
        "model.layers.0",
        {"units": 1, "activation": "sigmoid"},
    ),
    (
        {"loss": "categorical_crossentropy"},
        "model.layers.0",
        {"units": 1, "activation": "sigmoid"},
    ),
    (
        {"model": {"layers": [{"units": 3, "activation": "sigmoid"}]}},
        "model.layers.0",
        {"units": 3, "activation": "sigmoid"},
    ),
    (
        {"model": {"layers": [{"units": 1, "activation": "relu"}]}},
        "model.layers.0",
        {"units": 1, "activation": "relu"},
    ),
    (
        {"loss": "mse", "model": {"layers": [{"units": 2, "activation": "linear"}]}},
        "model.layers.0",
        {"units": 2, "activation": "linear"},
    ),
    ({"test_size": 0.9999}, "test_size", 0.9999),
    ({"batch_size": 961}, "batch_size", 961),
    (
        {"dataset": {"source": "sklearn:diabetes"}},
        "loss",
        "binary_crossentropy",
    ),
    (
        {
            "dataset": {"source": "sklearn:diabetes", "stratify": True},
            "loss": "mse",
            "model": {"layers": [{"units": 1}]},
        },
        "dataset.stratify",
        True,
    ),
    ({"dataset": {"source": "sklearn:iris"}}, "loss", "binary_crossentropy"),
    (
        {
            "dataset": {"source": "sklearn:wine"},
            "loss": "sparse_categorical_crossentropy",
            "model": {"layers": [{"units": 2, "activation": "softmax"}]},
        },
        "model.layers.0",
        {"units": 2, "activation": "softmax"},
    ),
    (
        {
            "dataset": {"source": "sklearn:iris", "stratify": True},
            "test_size": 0.01,
            "loss": "sparse_categorical_crossentropy",
            "model": {"layers": [{"units": 3, "activation": "softmax"}]},
        },
        "dataset.stratify",
        True,
    ),
    ({"repeats": 1000, "epochs": 10000}, "epochs", 10000),
    ({"repeats": 1000, "initializers": INITS_30}, "repeats", 1000),
    *[
        ({"initializers": [{"name": name, "config": config}]}, field, value)
        for name, config, field, value in [
            ("random_normal", {"stddev": -1}, "stddev", -1),
            ("random_normal", {"stddev": 0}, "stddev", 0),
            ("truncated_normal", {"stddev": 0.0}, "stddev", 0.0),
            ("random_normal", {"stddev": "0.5"}, "stddev", "0.5"),
            ("random_normal", {"mean": True}, "mean", True),
            ("random_normal", {"sigma": 1.0}, "sigma", 1.0),
            ("he_normal", {"seed": 3}, "seed", 3),
            ("zeros", {"value": 1.0}, "value", 1.0),
            ("random_uniform", {"minval": 1.0, "maxval": 1.0}, "maxval", 1.0),
            ("uniform", {"minval": 0.1}, "minval", 0.1),
            ("variance_scaling", {"mode": "fan_sum"}, "mode", "fan_sum"),
            ("variance_scaling", {"mode": 1}, "mode", 1),
            ("variance_scaling", {"distribution": "normal"}, "distribution", "normal"),
            ("variance_scaling", {"scale": 0}, "scale", 0),
            ("variance_scaling", {"scale": -2.0}, "scale", -2.0),
            ("orthogonal", {"gain": 0}, "gain", 0),
            ("identity", {"gain": -1.0}, "gain", -1.0),
            ("constant", {"value": "1"}, "value", "1"),
            ("constant", {"value": None}, "value", None),
            ("constant", {"value": 1e39}, "value", 1e39),
            ("random_uniform", {"minval": -1e308}, "minval", -1e308),
            ("identity", {"gain": 1e300}, "gain", 1e300),
            ("random_normal", {"mean": -(10**400)}, "mean", None),
        ]
        for field in [f"initializers.0.config.{field}"]
    ],
    *[
        ({"optimizer": optimizer}, f"optimizer.{field}", value)
        for optimizer, field, value in [
            ({"name": "adam", "learning_rate": 0}, "learning_rate", 0),
            ({"name": "adam", "learning_rate": -0.1}, "learning_rate", -0.1),
            ({"name": "adam", "learning_rate": "0.01"}, "learning_rate", "0.01"),
            ({"name": "rmsprop", "learning_rate": True}, "learning_rate", True),
            ({"name": "sgd", "momentum": 1.0}, "momentum", 1.0),
            ({"name": "sgd", "momentum": -0.1}, "momentum", -0.1),
            ({"name": "rmsprop", "momentum": 1}, "momentum", 1),
            ({"name": "sgd", "nesterov": 1}, "nesterov", 1),
            ({"name": "rmsprop", "rho": 1.0}, "rho", 1.0),
            ({"name": "rmsprop", "centered": "yes"}, "centered", "yes"),
            ({"name": "adam", "beta_1": 1.0}, "beta_1", 1.0),
            ({"name": "adamax", "beta_2": 0}, "beta_2", 0),
            ({"name": "nadam", "epsilon": 0}, "epsilon", 0),
            ({"name": "adam", "amsgrad": 0}, "amsgrad", 0),
            ({"name": "adamw", "weight_decay": -0.01}, "weight_decay", -0.01),
            ({"name": "adam", "weight_decay": 0.01}, "weight_decay", 0.01),
            ({"name": "sgd", "beta_1": 0.9}, "beta_1", 0.9),
            (
                {"name": "adagrad", "initial_accumulator_value": -1},
                "initial_accumulator_value",
                -1,
            ),
            ({"name": "adadelta", "rho": 0}, "rho", 0),
            ({"name": "adam", "clipnorm": 0}, "clipnorm", 0),
            ({"name": "adam", "clipnorm": 1, "clipvalue": 1}, "clipvalue", 1.0),
            ({"name": "sgd", "learning_rate": 1e39}, "learning_rate", 1e39),
            # Past the range of any float: compared as the integer it is.
            ({"name": "sgd", "learning_rate": 10**309}, "learning_rate", None),
            ({"name": "sgd", "learning_rate": 1e-46}, "learning_rate", 1e-46),
            ({"name": "bogus"}, "name", "bogus"),
            ({"learning_rate": 0.1}, "name", None),
        ]
    ],
    ({"optimizer": 3}, "optimizer", 3),
    (
        {"initializers": [{"name": "zeros", "label": "\ud800"}]},
        "initializers.0.label",
        "\\ud800",
    ),
    (
        {"initializers": [{"name": "zeros", "label": "zeros "}]},
        "initializers.0.label",
        "zeros ",
    ),
    ({"optimizer": ["adam"]}, "optimizer", ["adam"]),
    ({"engine": "packed", "optimizer": {"name": "adamw"}}, "engine", "packed"),
    (
        {"initializers": [{"name": "he_normal", "config": [1]}]},
        "initializers.0.config",
        [1],
    ),
    (
        {"initializers": [{"name": "normal", "config": {"stddev": 0.5}}] * 2},
        "initializers",
        None,
    ),
    (
        {"model": {"layers": [{**SIGMOID, "kernel_initializer": "bogus"}]}},
        "model.layers.0.kernel_initializer.name",
        "bogus",
    ),
    (
        {
            "model": {
                "layers": [
                    {
                        **SIGMOID,
                        "kernel_initializer": {
                            "name": "random_normal",
                            "config": {"stddev": 0},
                        },
                    }
                ]
            }
        },
        "model.layers.0.kernel_initializer.config.stddev",
        0,
    ),
    (
        {"model": {"layers": [{**SIGMOID, "bias_initializer": "orthogonal"}]}},
        "model.layers.0.bias_initializer.name",
        "orthogonal",
    ),
    (
        {"model": {"layers": [{**SIGMOID, "bias_initializer": "identity"}]}},
        "model.layers.0.bias_initializer.name",
        "identity",
    ),
    (
        {"model": {"layers": [{**SIGMOID, "use_bias": "no"}]}},
        "model.layers.0.use_bias",
        "no",
    ),
    (
        {"model": {"layers": [{**SIGMOID, "use_bias": False}]}, "engine": "packed"},
        "engine",
        "packed",
    ),
    (
        {
            "model": {
                "layers": [
                    {"units": 4096},
                    {"units": 4096},
                    {"units": 1, "activation": "sigmoid"},
                ]
            }
        },
        "model.layers",
        [4096, 4096, 1],
    ),
]


@pytest.mark.parametrize(("spec", "field", "value"), BAD_SPECS)
def test_bad_specs_are_422_naming_field_and_value_and_store_nothing(
    client: TestClient, redis_client: Any, spec: dict[str, Any], field: str, value: Any
) -> None:
    stored, queued = counts(), queued_messages(redis_client)

    # Sent as ASCII JSON, so that an unpaired surrogate arrives escaped.
    response = client.post(
        "/v1/experiments",
        content=json.dumps(spec),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field]
    if value is not None:
        assert errors[0]["value"] == value
    assert errors[0]["message"]
    assert "{" not in errors[0]["message"], "a message template was left unfilled"
    assert counts() == stored
    assert queued_messages(redis_client) == queued


def test_non_finite_values_are_refused_and_echoed_safely(
    client: TestClient,
) -> None:
    stored = counts()

    response = client.post(
        "/v1/experiments",
        content=b'{"test_size": NaN, "epochs": Infinity}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    by_field = {e["field"]: e["value"] for e in response.json()["errors"]}
    assert by_field == {"test_size": "nan", "epochs": "inf"}
    assert counts() == stored


def test_non_finite_initializer_parameters_are_refused(client: TestClient) -> None:
    stored = counts()

    response = client.post(
        "/v1/experiments",
        content=b'{"initializers": [{"name": "constant", "config": {"value": NaN}}]}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["field"], error["value"]) == ("initializers.0.config.value", "nan")
    assert counts() == stored


def test_malformed_json_is_422_saying_where(client: TestClient) -> None:
    response = client.post(
        "/v1/experiments",
        content=b'{"epochs": 5',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "body"
    assert "not valid JSON (at character 12)" in error["message"]


@pytest.mark.parametrize(
    "body",
    [b'{"name": "\\ud800"}', b'{"optimizer": "\\udfff"}'],
)
def test_lone_surrogates_are_echoed_escaped(client: TestClient, body: bytes) -> None:
    stored = counts()

    response = client.post(
        "/v1/experiments", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert "\\ud" in response.json()["errors"][0]["value"]
    assert counts() == stored


@pytest.mark.parametrize(
    "body", [b'{"name": "\xff\xfe"}', b"[" * 100_000], ids=["latin-1", "deep"]
)
def test_unreadable_bodies_are_4xx_json(client: TestClient, body: bytes) -> None:
    stored = counts()

    response = client.post(
        "/v1/experiments", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code in {400, 422}
    assert response.json()["errors"][0]["field"] == "body"
    assert counts() == stored


def test_a_long_value_is_echoed_shortened(client: TestClient) -> None:
    response = client.post("/v1/experiments", json={"name": "x" * 100_000})

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "name"
    assert len(error["value"]) == 201


def test_gpu_experiments_are_refused_without_a_shared_broker(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "broker_url", None)

    response = client.post("/v1/experiments", json={"device": "gpu"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "device"


def test_timestamps_are_utc_everywhere(client: TestClient) -> None:
    created = client.post("/v1/experiments", json={}).json()

    read = client.get(f"/v1/experiments/{created['id']}").json()
    listed = client.get("/v1/experiments").json()["data"][0]

    assert created["created_at"] == read["created_at"] == listed["created_at"]
    assert read["created_at"].endswith(("Z", "+00:00"))


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"offset": 2**63}, "offset")],
)
def test_paging_out_of_range_is_422(
    client: TestClient, params: dict[str, int], field: str
) -> None:
    response = client.get("/v1/experiments", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_openapi_documents_every_endpoint_with_an_example(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])

    assert {
        "/v1/experiments",
        "/v1/experiments/{experiment_id}",
        "/v1/experiments/{experiment_id}/cancel",
        "/v1/experiments/{experiment_id}/runs",
        "/v1/experiments/{experiment_id}/history",
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/history",
        "/v1/initializers",
        "/healthz",
        "/readyz",
    } <= paths
    example = schema["components"]["schemas"]["ExperimentCreate"]["examples"][0]
    assert example["initializers"] == [
        "zeros",
        "uniform",
        "normal",
        "he_normal",
        "lecun_uniform",
    ]
    assert not math.isnan(example["test_size"])
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            assert has_example(schema, operation), f"{method.upper()} {path}"


def test_every_request_example_is_accepted(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    examples = schema["components"]["schemas"]["ExperimentCreate"]["examples"]

    for example in examples:
        response = client.post("/v1/experiments", json=example)
        assert response.status_code == 201, response.text
        cancel(client, response.json()["id"])


def has_example(schema: dict[str, Any], operation: dict[str, Any]) -> bool:
    content = operation["responses"].get("200", operation["responses"].get("201"))
    if any("example" in body for body in content["content"].values()):
        return True
    body = content["content"]["application/json"]
    ref = body["schema"].get("$ref", "")
    target = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
    return bool(target.get("examples"))
