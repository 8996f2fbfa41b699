"""Statistics across repeats: checked against numpy and scipy on known inputs,
then through the API on epochs written as workers write them."""

import math
import warnings
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from service.config import Settings, get_settings
from service.stats.compute import compare, first_place_shares, summarize
from tests.helpers import Trainer


def test_summary_matches_numpy_and_scipy() -> None:
    values = [0.8, 0.9, 0.85, 0.7, 0.95]

    result = summarize([*values, None, math.nan])

    low, high = stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    assert result.count == 5
    assert result.mean == pytest.approx(np.mean(values))
    assert result.std == pytest.approx(np.std(values, ddof=1))
    assert (result.min, result.max) == (0.7, 0.95)
    assert result.ci_low == pytest.approx(low)
    assert result.ci_high == pytest.approx(high)


def test_summary_of_one_or_no_value() -> None:
    assert summarize([0.5]).std is None
    assert summarize([0.5]).mean == 0.5
    assert summarize([None]).count == 0


def test_comparison_is_welch_with_hedges_g() -> None:
    a = [0.91, 0.88, 0.93, 0.90, 0.89, 0.92]
    b = [0.70, 0.85, 0.60, 0.90, 0.75]

    result = compare(a, b)

    welch = stats.ttest_ind(a, b, equal_var=False)
    pooled = math.sqrt(
        (5 * np.var(a, ddof=1) + 4 * np.var(b, ddof=1)) / (len(a) + len(b) - 2)
    )
    g = (np.mean(a) - np.mean(b)) / pooled * (1 - 3 / (4 * 11 - 9))
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert result.welch_t == pytest.approx(welch.statistic)
    assert result.p_value == pytest.approx(welch.pvalue)
    assert result.hedges_g == pytest.approx(g)


def test_a_constant_side_is_compared_without_warnings() -> None:
    constant, varied = [0.5, 0.5, 0.5], [0.4, 0.3, 0.35]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compare(constant, varied)

    # With one side constant, Welch's t is the other side's one-sample t
    # against the constant, on its own n - 1 degrees of freedom.
    t = (0.5 - 0.35) / (np.std(varied, ddof=1) / math.sqrt(3))
    assert result.welch_t == pytest.approx(t)
    assert result.p_value == pytest.approx(2 * stats.t.sf(t, 2))
    alike = compare(constant, constant)
    assert (alike.difference, alike.welch_t, alike.p_value) == (0.0, None, None)


def test_first_place_shares_add_up_and_favour_the_clear_winner() -> None:
    finals = {"good": [0.95, 0.96, 0.94], "bad": [0.5, 0.6, 0.55], "none": []}

    shares = first_place_shares(finals, higher_is_better=True, resamples=500)
    lowest = first_place_shares(finals, higher_is_better=False, resamples=500)

    assert shares == {"good": 1.0, "bad": 0.0, "none": 0.0}
    assert lowest["bad"] == 1.0


@pytest.fixture
def trained(database_url: str) -> Trainer:
    """Two initializers x 3 repeats x 2 epochs with known val_accuracy."""
    settings: Settings = get_settings().model_copy(update={"stale_after_seconds": 0.0})
    trainer = Trainer(settings, ["zeros", "he_normal"], epochs=2, repeats=3)
    finals = {0: 0.70, 1: 0.72, 2: 0.74, 3: 0.90, 4: 0.80, 5: 0.85}
    for index, run in enumerate(trainer.run_ids):
        trainer.claim(run)
        trainer.epoch(run, 0, val_accuracy=0.5, val_loss=0.9)
        trainer.epoch(run, 1, val_accuracy=finals[index], val_loss=1 - finals[index])
    return trainer


@pytest.mark.integration
def test_aggregate_per_initializer_per_epoch(
    client: TestClient, trained: Trainer
) -> None:
    body = client.get(f"/v1/experiments/{trained.experiment_id}/aggregate").json()

    zeros, he = body["initializers"]
    assert (zeros["initializer"], zeros["runs"]) == ("zeros", 3)
    last = he["epochs"][1]["metrics"]["val_accuracy"]
    assert last["count"] == 3
    assert last["mean"] == pytest.approx(0.85)
    assert last["std"] == pytest.approx(np.std([0.9, 0.8, 0.85], ddof=1))
    assert (last["min"], last["max"]) == (0.8, 0.9)
    assert he["epochs"][0]["metrics"]["val_accuracy"]["std"] == 0.0


@pytest.mark.integration
def test_summary_ranks_compares_and_times_the_target(
    client: TestClient, trained: Trainer
) -> None:
    body: dict[str, Any] = client.get(
        f"/v1/experiments/{trained.experiment_id}/summary", params={"target": 0.8}
    ).json()

    assert body["metric"] == "val_accuracy"
    assert body["higher_is_better"] is True
    assert body["runs_counted"] == 6
    assert [r["initializer"] for r in body["ranking"]] == ["he_normal", "zeros"]
    assert body["ranking"][0]["final"]["mean"] == pytest.approx(0.85)
    assert body["ranking"][0]["first_place_share"] == 1.0
    (pair,) = body["comparisons"]
    welch = stats.ttest_ind([0.9, 0.8, 0.85], [0.7, 0.72, 0.74], equal_var=False)
    assert (pair["a"], pair["b"]) == ("he_normal", "zeros")
    assert pair["p_value"] == pytest.approx(welch.pvalue)
    reached = {t["initializer"]: t for t in body["time_to_target"]}
    assert (reached["he_normal"]["reached"], reached["zeros"]["reached"]) == (3, 0)
    assert reached["he_normal"]["epochs_to_target"]["mean"] == 1.0


@pytest.mark.integration
def test_summary_on_a_loss_ranks_lowest_first(
    client: TestClient, trained: Trainer
) -> None:
    body = client.get(
        f"/v1/experiments/{trained.experiment_id}/summary",
        params={"metric": "val_loss"},
    ).json()

    assert body["higher_is_better"] is False
    assert body["ranking"][0]["initializer"] == "he_normal"


@pytest.mark.integration
def test_summary_of_an_unrecorded_metric_is_422(
    client: TestClient, trained: Trainer
) -> None:
    response = client.get(
        f"/v1/experiments/{trained.experiment_id}/summary", params={"metric": "auc"}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "metric",
        "value": "auc",
        "message": response.json()["errors"][0]["message"],
        "type": "spec_error",
        "loc": ["query", "metric"],
    }


@pytest.mark.integration
def test_statistics_of_an_unknown_experiment_are_404(client: TestClient) -> None:
    for kind in ("aggregate", "summary"):
        assert client.get(f"/v1/experiments/nope/{kind}").status_code == 404


@pytest.mark.integration
def test_rerun_is_linked_with_fresh_seeds_and_more_repeats(
    client: TestClient, trained: Trainer
) -> None:
    parent = client.get(f"/v1/experiments/{trained.experiment_id}").json()

    first = client.post(f"/v1/experiments/{trained.experiment_id}/rerun")
    second = client.post(
        f"/v1/experiments/{trained.experiment_id}/rerun", json={"repeats": 5}
    )
    chosen = client.post(
        f"/v1/experiments/{trained.experiment_id}/rerun", json={"seed": 123}
    )

    assert first.status_code == second.status_code == 201
    one, two = first.json(), second.json()
    assert one["parent_id"] == two["parent_id"] == trained.experiment_id
    assert first.headers["location"] == f"/v1/experiments/{one['id']}"
    seeds = {parent["spec"]["seed"], one["spec"]["seed"], two["spec"]["seed"]}
    assert len(seeds) == 3
    assert chosen.json()["spec"]["seed"] == 123
    assert {**one["spec"], "seed": 0} == {**parent["spec"], "seed": 0}
    assert (one["runs_total"], two["runs_total"]) == (6, 10)


@pytest.mark.integration
def test_summary_with_reruns_pools_their_repeats(
    client: TestClient, trained: Trainer
) -> None:
    rerun = client.post(f"/v1/experiments/{trained.experiment_id}/rerun").json()
    child = Trainer.attach(trained.settings, rerun["id"], epochs=2)
    for run in child.run_ids:
        child.claim(run)
        child.epoch(run, 0, val_accuracy=0.5)
        child.epoch(run, 1, val_accuracy=0.6)

    alone = client.get(f"/v1/experiments/{trained.experiment_id}/summary").json()
    pooled = client.get(
        f"/v1/experiments/{trained.experiment_id}/summary",
        params={"with_reruns": True},
    ).json()

    from_the_rerun = client.get(
        f"/v1/experiments/{rerun['id']}/summary", params={"with_reruns": True}
    ).json()

    assert alone["runs_counted"] == 6
    assert pooled["runs_counted"] == 12
    assert pooled["ranking"][0]["final"]["count"] == 6
    assert from_the_rerun["runs_counted"] == 12


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "field"), [({"repeats": 0}, "repeats"), ({"seed": "x"}, "seed")]
)
def test_bad_reruns_are_422_and_unknown_ones_404(
    client: TestClient, trained: Trainer, body: dict[str, Any], field: str
) -> None:
    bad = client.post(f"/v1/experiments/{trained.experiment_id}/rerun", json=body)

    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == field
    assert client.post("/v1/experiments/nope/rerun").status_code == 404


def test_ties_split_first_place_whatever_the_order() -> None:
    a, b = [0.81, 0.79, 0.80], [0.80, 0.80, 0.80]

    forward = first_place_shares({"a": a, "b": b}, higher_is_better=True)
    backward = first_place_shares({"b": b, "a": a}, higher_is_better=True)
    equal = first_place_shares({"x": [0.5, 0.5], "y": [0.5]}, higher_is_better=True)

    assert forward == pytest.approx(backward)
    assert sum(forward.values()) == pytest.approx(1.0)
    assert equal == {"x": 0.5, "y": 0.5}


@pytest.mark.integration
def test_equal_finals_share_the_rank_and_first_place(
    client: TestClient, database_url: str
) -> None:
    settings: Settings = get_settings().model_copy(update={"stale_after_seconds": 0.0})
    trainer = Trainer(settings, ["zeros", "he_normal", "normal"], epochs=1, repeats=2)
    finals = [0.5, 0.5, 0.5, 0.5, 0.4, 0.3]
    for run, final in zip(trainer.run_ids, finals, strict=True):
        trainer.claim(run)
        trainer.epoch(run, 0, val_accuracy=final)

    body = client.get(f"/v1/experiments/{trainer.experiment_id}/summary").json()

    ranks = {r["initializer"]: r["rank"] for r in body["ranking"]}
    shares = {r["initializer"]: r["first_place_share"] for r in body["ranking"]}
    assert ranks == {"zeros": 1, "he_normal": 1, "normal": 3}
    assert shares == {"zeros": 0.5, "he_normal": 0.5, "normal": 0.0}


@pytest.mark.integration
def test_initializers_without_a_finished_repeat_have_no_rank(
    client: TestClient, database_url: str
) -> None:
    settings: Settings = get_settings().model_copy(update={"stale_after_seconds": 0.0})
    trainer = Trainer(settings, ["zeros", "he_normal"], epochs=1)
    first, _ = trainer.run_ids
    trainer.claim(first)
    trainer.epoch(first, 0, val_accuracy=0.7)

    body = client.get(f"/v1/experiments/{trainer.experiment_id}/summary").json()

    ranks = {r["initializer"]: r["rank"] for r in body["ranking"]}
    assert ranks == {"zeros": 1, "he_normal": None}


@pytest.mark.integration
def test_diverged_repeats_are_counted_and_rank_last(
    client: TestClient, database_url: str
) -> None:
    settings: Settings = get_settings().model_copy(update={"stale_after_seconds": 0.0})
    trainer = Trainer(settings, ["zeros", "he_normal", "normal"], epochs=1, repeats=2)
    finals = [0.5, float("nan"), float("nan"), float("inf"), 0.7, 0.6]
    for run, final in zip(trainer.run_ids, finals, strict=True):
        trainer.claim(run)
        trainer.epoch(run, 0, val_loss=final)

    body = client.get(
        f"/v1/experiments/{trainer.experiment_id}/summary",
        params={"metric": "val_loss"},
    ).json()

    by_label = {r["initializer"]: r for r in body["ranking"]}
    assert [r["initializer"] for r in body["ranking"]] == [
        "zeros",
        "normal",
        "he_normal",
    ]
    assert (by_label["zeros"]["rank"], by_label["zeros"]["diverged"]) == (1, 1)
    assert by_label["zeros"]["final"]["count"] == 1
    assert (by_label["he_normal"]["rank"], by_label["he_normal"]["diverged"]) == (3, 2)
    assert by_label["normal"]["diverged"] == 0


@pytest.mark.integration
def test_a_run_whose_loss_diverged_counts_as_diverged_whatever_the_metric(
    client: TestClient, database_url: str
) -> None:
    settings: Settings = get_settings().model_copy(update={"stale_after_seconds": 0.0})
    trainer = Trainer(settings, ["zeros", "ones"], epochs=2)
    blown, fine = trainer.run_ids
    for run in trainer.run_ids:
        trainer.claim(run)
    # The loss blows up at the first epoch; the accuracy it reports after
    # that is a number, but says nothing about the initializer.
    trainer.epoch(blown, 0, loss=float("inf"), val_accuracy=0.6)
    trainer.epoch(blown, 1, loss=float("nan"), val_accuracy=0.9)
    trainer.epoch(fine, 0, val_accuracy=0.6)
    trainer.epoch(fine, 1, val_accuracy=0.7)

    body = client.get(f"/v1/experiments/{trainer.experiment_id}/summary").json()

    by_label = {r["initializer"]: r for r in body["ranking"]}
    assert (by_label["ones"]["rank"], by_label["ones"]["diverged"]) == (1, 0)
    assert (by_label["zeros"]["rank"], by_label["zeros"]["diverged"]) == (2, 1)
    assert by_label["zeros"]["final"]["count"] == 0
