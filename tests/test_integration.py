"""End to end through real PostgreSQL, Redis and `celery worker` processes."""

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.db.models import EpochRecord
from service.db.session import session_scope
from tests.conftest import SHARED_DATA
from tests.helpers import WorkerProcess, experiment_done, wait_for
from worker.engine.plan import epoch_order

pytestmark = pytest.mark.integration

METRIC_NAMES = {"loss", "accuracy", "val_loss", "val_accuracy"}
LAYER_STATISTICS = ("weight_norm", "weight_std", "grad_norm", "act_mean", "act_std")
# The reference model's one sigmoid unit, and a hidden relu layer before it.
ONE_UNIT_DIAGNOSTICS = {f"layer0_{name}" for name in LAYER_STATISTICS}
HIDDEN_RELU_DIAGNOSTICS = {
    *(f"layer{i}_{name}" for i in range(2) for name in LAYER_STATISTICS),
    "layer0_dead_fraction",
    "layer0_symmetric",
}


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill()


def start_worker(
    workers: list[WorkerProcess], tmp_path: Path, name: str
) -> WorkerProcess:
    worker = WorkerProcess(name, tmp_path)
    workers.append(worker)
    return worker


def run_to_end(
    client: TestClient, spec: dict[str, Any], timeout: float = 240
) -> dict[str, Any]:
    created = client.post("/v1/experiments", json=spec)
    assert created.status_code == 201, created.text
    done: dict[str, Any] = wait_for(
        experiment_done(client, created.json()["id"]), timeout, "the experiment"
    )
    return done


def history(client: TestClient, experiment_id: str) -> list[dict[str, Any]]:
    """Points by run and epoch (the API serves them in the order written)."""
    points: list[dict[str, Any]] = client.get(
        f"/v1/experiments/{experiment_id}/history"
    ).json()["points"]
    return sorted(points, key=lambda p: (p["initializer"], p["repeat"], p["epoch"]))


def plain_keras_zeros_fit(seed: int, epochs: int) -> list[dict[str, float]]:
    """The classic lesson's model fitted the plain way, from zeros, in the same
    row order the service uses."""
    import keras
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    table = np.loadtxt(SHARED_DATA / "banknotes.csv", delimiter=",", skiprows=1)
    x_train, x_val, y_train, y_val = train_test_split(
        table[:, :4], table[:, 4], test_size=0.3, random_state=42
    )
    scaler = StandardScaler().fit(x_train)
    x_train = scaler.transform(x_train).astype("float32")
    x_val = scaler.transform(x_val).astype("float32")

    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    result = []
    for epoch in range(epochs):
        order = epoch_order(seed, epoch, len(x_train))
        fitted = model.fit(
            x_train[order],
            y_train[order],
            batch_size=16,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            validation_data=(x_val, y_val),
            verbose=0,
        )
        result.append({k: float(v[-1]) for k, v in fitted.history.items()})
    return result


def test_reference_experiment_trains_and_serves_its_history(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    start_worker(workers, tmp_path, "reference")
    spec = {"repeats": 2, "epochs": 3, "seed": 5}

    done = run_to_end(client, spec)

    assert done["status"] == "succeeded", workers[0].log()
    assert done["progress"]["runs_done"] == 10
    assert done["progress"]["epochs_done"] == done["progress"]["epochs_total"] == 30
    points = history(client, done["id"])
    assert len(points) == 30
    assert {(p["initializer"], p["repeat"], p["epoch"]) for p in points} == {
        (name, repeat, epoch)
        for name in ["zeros", "uniform", "normal", "he_normal", "lecun_uniform"]
        for repeat in range(2)
        for epoch in range(3)
    }
    for point in points:
        assert set(point["metrics"]) == METRIC_NAMES | ONE_UNIT_DIAGNOSTICS
        assert 0 <= point["metrics"]["accuracy"] <= 1
        assert point["metrics"]["loss"] > 0

    runs = client.get(f"/v1/experiments/{done['id']}/runs").json()["data"]
    assert {run["status"] for run in runs} == {"succeeded"}
    assert {run["attempts"] for run in runs} == {1}
    for run in runs:
        own = client.get(f"/v1/runs/{run['id']}/history").json()["points"]
        assert [p["epoch"] for p in own] == [0, 1, 2]
        assert run["final_metrics"] == own[-1]["metrics"]

    zeros = next(r for r in runs if r["initializer"] == "zeros" and r["repeat"] == 0)
    served = client.get(f"/v1/runs/{zeros['id']}/history").json()["points"]
    expected = plain_keras_zeros_fit(zeros["seed"], 3)
    for point, reference in zip(served, expected, strict=True):
        for name in METRIC_NAMES:
            assert point["metrics"][name] == pytest.approx(reference[name], abs=1e-5)


EVERY_INITIALIZER: list[Any] = [
    "zeros",
    "ones",
    {"name": "constant", "config": {"value": 0.2}},
    {"name": "random_uniform", "config": {"minval": -0.3, "maxval": 0.3}},
    {"name": "random_normal", "config": {"mean": 0.01, "stddev": 0.3}},
    {"name": "truncated_normal", "config": {"stddev": 0.2}},
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    {"name": "orthogonal", "config": {"gain": 1.5}},
    {"name": "identity", "config": {"gain": 0.5}},
    {
        "name": "variance_scaling",
        "config": {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform"},
    },
    {"name": "uniform", "config": {"maxval": 0.2}},
    {"name": "normal", "config": {"stddev": 0.1}},
]


@pytest.mark.parametrize(
    ("engine", "extra", "metrics"),
    [
        ("auto", {}, METRIC_NAMES | HIDDEN_RELU_DIAGNOSTICS),
        (
            "keras",
            {
                "optimizer": {"name": "adamw", "learning_rate": 0.01},
                "metrics": ["accuracy", "auc"],
            },
            METRIC_NAMES | {"auc", "val_auc"} | HIDDEN_RELU_DIAGNOSTICS,
        ),
    ],
)
def test_every_initializer_trains_on_both_engines(
    client: TestClient,
    workers: list[WorkerProcess],
    tmp_path: Path,
    engine: str,
    extra: dict[str, Any],
    metrics: set[str],
) -> None:
    start_worker(workers, tmp_path, f"every-{engine}")
    hidden = {
        "units": 4,
        "activation": "relu",
        "bias_initializer": {"name": "random_normal", "config": {"stddev": 0.1}},
    }
    output = {"units": 1, "activation": "sigmoid", "kernel_initializer": "lecun_normal"}
    spec = {
        "initializers": EVERY_INITIALIZER,
        "model": {"layers": [hidden, output]},
        "epochs": 2,
        "engine": engine,
        **extra,
    }

    done = run_to_end(client, spec)

    assert done["status"] == "succeeded", workers[0].log()
    assert done["progress"]["runs_done"] == len(EVERY_INITIALIZER)
    points = history(client, done["id"])
    assert len(points) == 2 * len(EVERY_INITIALIZER)
    assert all(set(point["metrics"]) == metrics for point in points)


def test_same_spec_and_seed_give_identical_history(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    start_worker(workers, tmp_path, "repro")
    spec = {
        "initializers": ["he_normal", "uniform"],
        "repeats": 2,
        "epochs": 2,
        "seed": 9,
    }

    first = run_to_end(client, spec)
    second = run_to_end(client, spec)
    other = run_to_end(client, {**spec, "seed": 10})

    def curves(experiment: dict[str, Any]) -> list[tuple[str, int, int, Any]]:
        return [
            (p["initializer"], p["repeat"], p["epoch"], p["metrics"])
            for p in history(client, experiment["id"])
        ]

    assert curves(first) == curves(second)
    assert curves(first) != curves(other)


def wait_for_epochs(client: TestClient, experiment_id: str, at_least: int) -> None:
    def started() -> bool:
        body = client.get(f"/v1/experiments/{experiment_id}").json()
        return bool(body["progress"]["epochs_done"] >= at_least)

    wait_for(started, 120, f"{at_least} epochs")


def assert_completed_exactly_once(
    client: TestClient, experiment_id: str, epochs: int
) -> dict[str, Any]:
    done: dict[str, Any] = wait_for(
        experiment_done(client, experiment_id), 240, "recovery"
    )
    assert done["status"] == "succeeded"
    (run,) = client.get(f"/v1/experiments/{experiment_id}/runs").json()["data"]
    points = client.get(f"/v1/runs/{run['id']}/history").json()["points"]
    assert [p["epoch"] for p in points] == list(range(epochs))
    with session_scope() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(EpochRecord)
            .where(EpochRecord.run_id == run["id"])
        )
        attempts = set(
            session.scalars(
                select(EpochRecord.attempt).where(EpochRecord.run_id == run["id"])
            )
        )
    assert stored == epochs
    assert attempts == {run["attempts"]}
    return dict(run)


LONG_RUN = {
    "initializers": ["lecun_uniform"],
    "epochs": 120,
    "seed": 3,
    "engine": "keras",
}


def test_worker_killed_mid_run_the_run_completes_exactly_once(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    first = start_worker(workers, tmp_path, "doomed")
    created = client.post("/v1/experiments", json=LONG_RUN).json()
    wait_for_epochs(client, created["id"], 3)

    first.kill()
    assert client.get(f"/v1/experiments/{created['id']}").json()["status"] == "running"
    start_worker(workers, tmp_path, "rescuer")

    run = assert_completed_exactly_once(client, created["id"], 120)
    assert run["attempts"] == 2


def test_pool_process_killed_mid_run_is_redelivered_and_completes_once(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    worker = start_worker(workers, tmp_path, "survivor")
    created = client.post("/v1/experiments", json={**LONG_RUN, "seed": 4}).json()
    wait_for_epochs(client, created["id"], 3)

    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)

    run = assert_completed_exactly_once(client, created["id"], 120)
    assert run["attempts"] == 2
    assert worker.process.poll() is None


def test_packed_and_keras_engines_serve_the_same_history(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    start_worker(workers, tmp_path, "engines")
    spec = {"repeats": 2, "epochs": 3, "seed": 21, "optimizer": "adam"}

    packed = run_to_end(client, {**spec, "engine": "packed"})
    keras = run_to_end(client, {**spec, "engine": "keras"})

    assert packed["status"] == keras["status"] == "succeeded"
    packed_points, keras_points = (
        history(client, packed["id"]),
        history(client, keras["id"]),
    )
    assert len(packed_points) == len(keras_points) == 30
    for mine, theirs in zip(packed_points, keras_points, strict=True):
        assert (mine["initializer"], mine["repeat"], mine["epoch"]) == (
            theirs["initializer"],
            theirs["repeat"],
            theirs["epoch"],
        )
        assert set(mine["metrics"]) == METRIC_NAMES | ONE_UNIT_DIAGNOSTICS
        for name in theirs["metrics"]:
            assert mine["metrics"][name] == pytest.approx(
                theirs["metrics"][name], abs=1e-5
            )


def test_worker_killed_mid_pack_every_run_of_the_pack_completes_once(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    first = start_worker(workers, tmp_path, "doomed-pack")
    spec = {"initializers": ["zeros", "he_normal"], "repeats": 2, "epochs": 400}
    created = client.post("/v1/experiments", json={**spec, "engine": "packed"}).json()
    wait_for_epochs(client, created["id"], 40)

    first.kill()
    start_worker(workers, tmp_path, "rescuer-pack")

    done: dict[str, Any] = wait_for(
        experiment_done(client, created["id"]), 240, "recovery of the pack"
    )
    assert done["status"] == "succeeded"
    runs = client.get(f"/v1/experiments/{created['id']}/runs").json()["data"]
    assert [run["attempts"] for run in runs] == [2, 2, 2, 2]
    with session_scope() as session:
        rows = session.execute(
            select(
                EpochRecord.run_id,
                func.count(),
                func.count(EpochRecord.epoch.distinct()),
            )
            .where(EpochRecord.experiment_id == created["id"])
            .group_by(EpochRecord.run_id)
        ).all()
    assert sorted((count, distinct) for _, count, distinct in rows) == [(400, 400)] * 4


@pytest.mark.parametrize(
    "loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"]
)
def test_multi_class_losses_train_on_both_engines_alike(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path, loss: str
) -> None:
    start_worker(workers, tmp_path, "classes")
    spec = {
        "initializers": ["glorot_uniform", "he_normal"],
        "epochs": 2,
        "loss": loss,
        "model": {
            "layers": [
                {"units": 4, "activation": "relu"},
                {"units": 2, "activation": "softmax"},
            ]
        },
    }

    packed = run_to_end(client, {**spec, "engine": "packed"})
    keras = run_to_end(client, {**spec, "engine": "keras"})

    assert packed["status"] == keras["status"] == "succeeded"
    for mine, theirs in zip(
        history(client, packed["id"]), history(client, keras["id"]), strict=True
    ):
        for name in METRIC_NAMES:
            assert mine["metrics"][name] == pytest.approx(
                theirs["metrics"][name], abs=1e-5
            )


SKLEARN_SPECS = {
    "sklearn:breast_cancer": ("binary_crossentropy", 1, "sigmoid"),
    "sklearn:iris": ("sparse_categorical_crossentropy", 3, "softmax"),
    "sklearn:wine": ("categorical_crossentropy", 3, "softmax"),
    "sklearn:digits": ("sparse_categorical_crossentropy", 10, "softmax"),
    "sklearn:diabetes": ("mse", 1, "linear"),
}


def test_every_sklearn_dataset_trains(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    start_worker(workers, tmp_path, "sklearn")
    created = {}
    for source, (loss, units, activation) in SKLEARN_SPECS.items():
        spec = {
            "dataset": {"source": source, "stratify": loss != "mse"},
            "initializers": ["glorot_uniform"],
            "epochs": 2,
            "loss": loss,
            "model": {"layers": [{"units": units, "activation": activation}]},
        }
        response = client.post("/v1/experiments", json=spec)
        assert response.status_code == 201, response.text
        created[source] = response.json()["id"]

    for source, experiment_id in created.items():
        done = wait_for(experiment_done(client, experiment_id), 240, source)
        assert done["status"] == "succeeded", source
        points = history(client, experiment_id)
        assert [point["epoch"] for point in points] == [0, 1]
        assert np.isfinite(points[-1]["metrics"]["loss"])


def uploaded_csv() -> bytes:
    """Two numeric features (one with gaps), a text feature, a text class
    derived from them and a numeric target."""
    rng = np.random.default_rng(7)
    lines = ["size,weight,colour,kind,score"]
    for i in range(90):
        size, weight = rng.normal(size=2)
        colour = ["red", "green", "blue"][i % 3]
        kind = "big" if size + (colour == "red") > 0.5 else "small"
        if colour == "blue" and size < -0.5:
            kind = "tiny"
        gap = "" if i % 9 == 0 else f"{weight:.4f}"
        lines.append(f"{size:.4f},{gap},{colour},{kind},{2 * size + weight:.4f}")
    return ("\n".join(lines) + "\n").encode()


def test_uploaded_datasets_train_end_to_end(
    client: TestClient, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    uploaded = client.post(
        "/v1/datasets",
        files={"file": ("shapes.csv", uploaded_csv(), "text/csv")},
        data={"label": "kind"},
    )
    assert uploaded.status_code in {200, 201}, uploaded.text
    dataset_id = uploaded.json()["id"]
    start_worker(workers, tmp_path, "uploads")
    base = {"initializers": ["glorot_uniform", "zeros"], "epochs": 2, "batch_size": 8}
    specs = {
        "one-hot, imputed, stratified, 3 classes": {
            **base,
            "dataset": {
                "id": dataset_id,
                "label": "kind",
                "features": ["size", "weight", "colour"],
                "one_hot": ["colour"],
                "impute": "mean",
                "stratify": True,
            },
            "loss": "sparse_categorical_crossentropy",
            "model": {
                "layers": [
                    {"units": 4, "activation": "relu"},
                    {"units": 3, "activation": "softmax"},
                ]
            },
        },
        "regression on a numeric column, standardized on all rows": {
            **base,
            "dataset": {
                "id": dataset_id,
                "label": "score",
                "features": ["size", "colour"],
                "one_hot": ["colour"],
                "standardize": "all",
            },
            "loss": "mse",
            "metrics": [],
            "model": {"layers": [{"units": 1}]},
        },
    }

    for what, spec in specs.items():
        done = run_to_end(client, spec)
        assert done["status"] == "succeeded", what
        points = history(client, done["id"])
        assert len(points) == 4, what
        assert all(
            value is not None and np.isfinite(value)
            for point in points
            for value in point["metrics"].values()
        ), what
