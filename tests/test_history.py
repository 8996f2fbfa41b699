"""History for pollers: cursors, ETags, filters, pages, downsampling and
Server-Sent Events, against PostgreSQL with epochs written as workers do."""

import json
import warnings
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.config import Settings, get_settings
from tests.helpers import Trainer

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(database_url: str) -> Settings:
    return get_settings().model_copy(update={"stale_after_seconds": 0.0})


def history(client: TestClient, trainer: Trainer, **params: Any) -> dict[str, Any]:
    response = client.get(
        f"/v1/experiments/{trainer.experiment_id}/history", params=params
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def keys(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(p["run_id"], p["epoch"]) for p in page["points"]]


def test_since_returns_only_new_points_even_when_runs_finish_out_of_order(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros", "normal"], epochs=3)
    first, second = trainer.run_ids
    trainer.claim(first)
    trainer.claim(second)
    trainer.epoch(second, 0)
    trainer.epoch(second, 1)
    trainer.epoch(first, 0)

    page = history(client, trainer)
    assert keys(page) == [(second, 0), (second, 1), (first, 0)]

    trainer.epoch(second, 2)
    trainer.epoch(first, 1)
    newer = history(client, trainer, since=page["cursor"])
    assert keys(newer) == [(second, 2), (first, 1)]
    assert newer["cursor"] > page["cursor"]

    nothing = history(client, trainer, since=newer["cursor"])
    assert nothing["points"] == []
    assert nothing["cursor"] == newer["cursor"]


def test_etag_revalidation_answers_304_until_something_changes(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros"], epochs=3)
    (run,) = trainer.run_ids
    trainer.claim(run)
    trainer.epoch(run, 0)
    url = f"/v1/experiments/{trainer.experiment_id}/history"

    first = client.get(url)
    tag = first.headers["etag"]
    again = client.get(url, headers={"If-None-Match": tag})
    strong = client.get(url, headers={"If-None-Match": tag.removeprefix("W/")})
    listed = client.get(url, headers={"If-None-Match": f'"other", {tag}'})
    anything = client.get(url, headers={"If-None-Match": "*"})
    bogus = client.get(url, params={"metrics": "bogus"}, headers={"If-None-Match": "*"})
    other_query = client.get(
        url, params={"metrics": "loss"}, headers={"If-None-Match": tag}
    )
    trainer.epoch(run, 1)
    changed = client.get(url, headers={"If-None-Match": tag})

    assert again.status_code == 304
    assert again.content == b""
    assert strong.status_code == listed.status_code == anything.status_code == 304
    assert bogus.status_code == 422
    assert other_query.status_code == 200
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert len(changed.json()["points"]) == 2


def test_a_run_trained_again_is_reported_reset_and_its_old_points_are_gone(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros", "normal"], epochs=3)
    first, second = trainer.run_ids
    trainer.claim(first, owner="lost/1")
    trainer.claim(second)
    trainer.epoch(first, 0)
    trainer.epoch(first, 1)
    trainer.epoch(second, 0)
    seen = history(client, trainer)

    trainer.claim(first, owner="rescuer/2")
    trainer.epoch(first, 0)
    after = history(client, trainer, since=seen["cursor"])
    full = history(client, trainer)

    assert after["reset_runs"] == [first]
    assert keys(after) == [(first, 0)]
    assert keys(full) == [(second, 0), (first, 0)]
    assert full["reset_runs"] == []


def test_filters_select_metrics_runs_initializers_and_epochs(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros", "normal"], epochs=4)
    first, second = trainer.run_ids
    for run in (first, second):
        trainer.claim(run)
        for epoch in range(4):
            trainer.epoch(run, epoch)

    by_metric = history(client, trainer, metrics="loss")
    by_label = history(client, trainer, initializers="normal")
    by_run = history(client, trainer, runs=first)
    by_epoch = history(client, trainer, epoch_from=1, epoch_to=2)

    assert {tuple(p["metrics"]) for p in by_metric["points"]} == {("loss",)}
    assert {p["run_id"] for p in by_label["points"]} == {second}
    assert {p["run_id"] for p in by_run["points"]} == {first}
    assert sorted({p["epoch"] for p in by_epoch["points"]}) == [1, 2]
    assert len(by_epoch["points"]) == 4


def test_pages_advance_and_together_give_everything_once(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros", "normal"], epochs=5)
    for run in trainer.run_ids:
        trainer.claim(run)
        for epoch in range(5):
            trainer.epoch(run, epoch)

    seen: list[tuple[str, int]] = []
    cursor, pages = 0, 0
    while True:
        page = history(client, trainer, since=cursor, limit=3)
        assert page["cursor"] > cursor or not page["points"]
        seen += keys(page)
        cursor, pages = page["cursor"], pages + 1
        if not page["has_more"]:
            break

    assert pages == 4
    assert sorted(seen) == sorted((r, e) for r in trainer.run_ids for e in range(5))


def test_page_size_is_capped(client: TestClient, settings: Settings) -> None:
    trainer = Trainer(settings, ["zeros"], epochs=1)
    response = client.get(
        f"/v1/experiments/{trainer.experiment_id}/history", params={"limit": 10_001}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limit"


def test_max_points_keeps_first_last_and_extremes(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros"], epochs=50)
    (run,) = trainer.run_ids
    trainer.claim(run)
    for epoch in range(50):
        spike = {"loss": 9.0} if epoch == 17 else {}
        trainer.epoch(run, epoch, **spike)

    page = history(client, trainer, max_points=10, metrics="loss")

    epochs = [p["epoch"] for p in page["points"]]
    assert len(epochs) == 10
    assert epochs == sorted(epochs)
    assert {0, 49, 17} <= set(epochs)


def test_non_finite_metrics_are_null_and_the_run_is_flagged(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros"], epochs=2)
    (run,) = trainer.run_ids
    trainer.claim(run)
    trainer.epoch(run, 0, loss=float("nan"), accuracy=float("inf"))

    page = history(client, trainer)
    runs = client.get(f"/v1/experiments/{trainer.experiment_id}/runs").json()

    assert page["points"][0]["metrics"] == {"loss": None, "accuracy": None}
    assert page["diverged_runs"] == [run]
    assert runs["data"][0]["diverged"] is True
    assert runs["data"][0]["final_metrics"] == {"loss": None, "accuracy": None}


def test_run_history_shares_the_experiment_cursor(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros", "normal"], epochs=2)
    first, second = trainer.run_ids
    trainer.claim(first)
    trainer.claim(second)
    trainer.epoch(first, 0)
    trainer.epoch(second, 0)
    trainer.epoch(first, 1)

    page = client.get(f"/v1/runs/{first}/history").json()
    later = client.get(f"/v1/runs/{first}/history", params={"since": page["cursor"]})

    assert keys(page) == [(first, 0), (first, 1)]
    assert page["cursor"] == history(client, trainer)["cursor"]
    assert later.json()["points"] == []


def events(text: str) -> list[tuple[str | None, str, Any]]:
    parsed = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        parsed.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return parsed


def test_events_stream_progress_points_and_the_end_and_resume(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros"], epochs=2)
    (run,) = trainer.run_ids
    trainer.claim(run)
    trainer.epoch(run, 0)
    trainer.epoch(run, 1)
    url = f"/v1/experiments/{trainer.experiment_id}/events"

    stream = events(client.get(url, params={"interval": 0.1}).text)
    last_id = stream[1][0]
    resumed = events(
        client.get(
            url, params={"interval": 0.1}, headers={"Last-Event-ID": last_id}
        ).text
    )

    assert [kind for _, kind, _ in stream] == ["progress", "points", "done"]
    assert stream[0][2]["status"] == "succeeded"
    assert [p["epoch"] for p in stream[1][2]["points"]] == [0, 1]
    assert stream[2][2] == {"status": "succeeded"}
    assert [kind for _, kind, _ in resumed] == ["progress", "done"]


def test_events_for_an_unknown_experiment_are_404(client: TestClient) -> None:
    assert client.get("/v1/experiments/nope/events").status_code == 404


@pytest.fixture
def finished(settings: Settings) -> Trainer:
    trainer = Trainer(settings, ["zeros", "he_normal"], epochs=3, repeats=2)
    for index, run in enumerate(trainer.run_ids):
        trainer.claim(run)
        for epoch in range(3):
            trainer.epoch(run, epoch, val_loss=index + epoch / 10)
    return trainer


def test_long_csv_reads_back_into_a_frame(
    client: TestClient, finished: Trainer
) -> None:
    import io

    import pandas as pd

    response = client.get(f"/v1/experiments/{finished.experiment_id}/history.csv")
    frame = pd.read_csv(io.StringIO(response.text))

    assert response.headers["content-type"].startswith("text/csv")
    assert frame.shape == (12, 7)
    assert list(frame.columns) == [
        "run_id",
        "initializer",
        "repeat",
        "epoch",
        "accuracy",
        "loss",
        "val_loss",
    ]
    assert sorted(frame["epoch"].unique()) == [0, 1, 2]


def test_wide_csv_has_initializer_and_metric_levels(
    client: TestClient, finished: Trainer
) -> None:
    import io

    import pandas as pd

    response = client.get(
        f"/v1/experiments/{finished.experiment_id}/history.csv",
        params={"layout": "wide"},
    )
    frame = pd.read_csv(io.StringIO(response.text), header=[0, 1], index_col=0)

    assert frame.shape == (3, 6)
    assert list(frame.index) == [0, 1, 2]
    assert list(frame.columns.get_level_values(0).unique()) == ["zeros", "he_normal"]
    # zeros' two repeats have val_loss 0 + e/10 and 1 + e/10: their mean.
    assert frame[("zeros", "val_loss")].tolist() == pytest.approx([0.5, 0.6, 0.7])
    assert frame[("he_normal", "val_loss")].tolist() == pytest.approx([2.5, 2.6, 2.7])


def test_wide_exports_agree_across_csv_json_and_parquet(
    client: TestClient, finished: Trainer
) -> None:
    import io

    import pandas as pd

    url = f"/v1/experiments/{finished.experiment_id}/history"
    wide = {"layout": "wide"}
    csv = client.get(f"{url}.csv", params=wide)
    body = client.get(f"{url}.json", params=wide)
    parquet = client.get(f"{url}.parquet", params=wide)
    from_csv = pd.read_csv(io.StringIO(csv.text), header=[0, 1], index_col=0)
    from_json = pd.DataFrame.from_dict(body.json(), orient="tight")
    from_parquet = pd.read_parquet(io.BytesIO(parquet.content))

    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert "attachment" in parquet.headers["content-disposition"]
    for frame in (from_json, from_parquet):
        assert frame.columns.names == ["initializer", "metric"]
        assert frame.index.name == "epoch"
        assert frame.shape == (3, 6)
        assert frame[("zeros", "val_loss")].tolist() == pytest.approx([0.5, 0.6, 0.7])
    pd.testing.assert_frame_equal(
        from_parquet, from_json.astype("float64"), check_names=True
    )
    assert from_csv.to_numpy() == pytest.approx(from_parquet.to_numpy())


def test_long_parquet_and_json_hold_every_point_with_typed_columns(
    client: TestClient, finished: Trainer
) -> None:
    import io

    import pandas as pd

    url = f"/v1/experiments/{finished.experiment_id}/history"
    frame = pd.read_parquet(io.BytesIO(client.get(f"{url}.parquet").content))
    points = client.get(f"{url}.json").json()["points"]

    assert frame.shape == (12, 7)
    assert list(frame.columns[:4]) == ["run_id", "initializer", "repeat", "epoch"]
    assert str(frame["epoch"].dtype) == "int32"
    assert str(frame["loss"].dtype) == "float64"
    assert len(points) == 12
    assert {p["run_id"] for p in points} == set(frame["run_id"])


def test_exports_carry_non_finite_values_as_missing(
    client: TestClient, settings: Settings
) -> None:
    import io

    import pandas as pd

    trainer = Trainer(settings, ["zeros"], epochs=2)
    (run,) = trainer.run_ids
    trainer.claim(run)
    trainer.epoch(run, 0, val_loss=float("nan"))
    trainer.epoch(run, 1, val_loss=float("inf"))
    url = f"/v1/experiments/{trainer.experiment_id}/history"

    wide = client.get(f"{url}.json", params={"layout": "wide"})
    long = pd.read_parquet(io.BytesIO(client.get(f"{url}.parquet").content))
    csv = client.get(f"{url}.csv", params={"layout": "wide"})

    assert wide.status_code == 200
    column = wide.json()["columns"].index(["zeros", "val_loss"])
    assert [row[column] for row in wide.json()["data"]] == [None, None]
    assert long["val_loss"].isna().all()
    assert "nan" not in csv.text.lower()
    assert "inf" not in csv.text.lower()


def test_an_unknown_export_format_is_422_naming_it(
    client: TestClient, finished: Trainer
) -> None:
    response = client.get(f"/v1/experiments/{finished.experiment_id}/history.xlsx")
    layout = client.get(
        f"/v1/experiments/{finished.experiment_id}/history.parquet",
        params={"layout": "tall"},
    )

    assert response.status_code == layout.status_code == 422
    assert response.json()["errors"][0]["value"] == "xlsx"
    assert layout.json()["errors"][0]["field"] == "layout"


@pytest.mark.parametrize(
    ("suffix", "magic"), [("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<?xml")]
)
def test_plots_are_images(
    client: TestClient, finished: Trainer, suffix: str, magic: bytes
) -> None:
    response = client.get(f"/v1/experiments/{finished.experiment_id}/plot.{suffix}")
    other = client.get(
        f"/v1/experiments/{finished.experiment_id}/plot.{suffix}",
        params={"metric": "loss"},
    )

    assert response.status_code == other.status_code == 200
    assert response.content.startswith(magic)
    assert response.content != other.content


def test_a_plot_where_every_repeat_diverged_says_so(
    client: TestClient, settings: Settings
) -> None:
    trainer = Trainer(settings, ["zeros"], epochs=1)
    (run,) = trainer.run_ids
    trainer.claim(run)
    trainer.epoch(run, 0, loss=float("nan"))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = client.get(f"/v1/experiments/{trainer.experiment_id}/plot.svg")

    assert response.status_code == 200
    assert "every repeat diverged" in response.text
    assert "zeros (train)" not in response.text


def test_a_validation_metric_is_drawn_dashed_and_labelled_as_validation(
    client: TestClient, finished: Trainer
) -> None:
    response = client.get(
        f"/v1/experiments/{finished.experiment_id}/plot.svg",
        params={"metric": "val_loss"},
    )

    assert response.status_code == 200
    assert "zeros (val)" in response.text
    assert "(train)" not in response.text


def test_plotting_an_unrecorded_metric_is_422(
    client: TestClient, finished: Trainer
) -> None:
    response = client.get(
        f"/v1/experiments/{finished.experiment_id}/plot.png",
        params={"metric": ["loss", "auc"]},
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["field"], error["loc"]) == ("metric", ["query", "metric"])
    assert error["value"] == ["auc"]
    assert "'loss'" in error["message"]

    too_many = client.get(
        f"/v1/experiments/{finished.experiment_id}/plot.png",
        params={"metric": ["loss"] * 7},
    )
    assert too_many.status_code == 422
    assert "at most 6" in too_many.json()["errors"][0]["message"]


def test_exports_of_an_unknown_experiment_are_404(client: TestClient) -> None:
    assert client.get("/v1/experiments/nope/history.csv").status_code == 404
    assert client.get("/v1/experiments/nope/history.parquet").status_code == 404
    assert client.get("/v1/experiments/nope/plot.png").status_code == 404
    assert client.get("/v1/experiments/x/plot.gif").status_code == 422


def error_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["errors"][0]
    return error


def test_a_cursor_past_the_head_is_refused_not_served_empty(
    client: TestClient, finished: Trainer
) -> None:
    page = history(client, finished)
    url = f"/v1/experiments/{finished.experiment_id}"

    past = error_of(client.get(f"{url}/history", params={"since": page["cursor"] + 1}))
    events = [
        error_of(client.get(f"{url}/events", headers={"Last-Event-ID": value}))
        for value in (
            "99999999999999999999999",
            "9" * 5000,
            "12abc",
            "\u00b2".encode("latin-1"),
            str(page["cursor"] + 5),
            "\u00b2".encode(),
        )
    ]

    assert (past["field"], past["value"], past["loc"]) == (
        "since",
        page["cursor"] + 1,
        ["query", "since"],
    )
    assert all(error["field"] == "Last-Event-ID" for error in events)
    assert events[0]["loc"] == ["header", "Last-Event-ID"]
    assert events[-1]["value"] == "\u00b2"


def test_filters_that_match_nothing_name_what_is_unknown(
    client: TestClient, finished: Trainer
) -> None:
    url = f"/v1/experiments/{finished.experiment_id}/history"

    metric = error_of(client.get(url, params={"metrics": "loss,bogus,nope"}))
    label = error_of(client.get(url, params={"initializers": "zeros,bogus"}))
    run = error_of(client.get(url, params={"runs": "nope"}))
    epochs = error_of(client.get(url, params={"epoch_from": 5, "epoch_to": 1}))

    assert (metric["field"], metric["value"]) == ("metrics", ["bogus", "nope"])
    assert "val_loss" in metric["message"]
    assert (label["field"], label["value"]) == ("initializers", ["bogus"])
    assert (run["field"], run["value"]) == ("runs", ["nope"])
    assert (epochs["field"], epochs["value"]) == ("epoch_to", 1)

    first, other = finished.run_ids[:2]
    sibling = error_of(client.get(f"/v1/runs/{first}/history", params={"runs": other}))
    assert sibling["value"] == [other]
    assert f"of run {first} alone" in sibling["message"]
    repeated = client.get(url, params=[("metrics", "loss"), ("metrics", "val_loss")])
    assert set(repeated.json()["points"][0]["metrics"]) == {"loss", "val_loss"}
    # An empty list is no filter at all.
    everything = history(client, finished, metrics="")
    assert set(everything["points"][0]["metrics"]) == {"loss", "accuracy", "val_loss"}


def test_a_label_holding_commas_is_selectable_whole_or_repeated(
    client: TestClient, settings: Settings
) -> None:
    bounded = {"name": "random_uniform", "config": {"minval": -1.0, "maxval": 2.0}}
    trainer = Trainer(settings, [bounded, "zeros", "he_normal"], epochs=1)
    for run in trainer.run_ids:
        trainer.claim(run)
        trainer.epoch(run, 0)
    label = "random_uniform(minval=-1.0, maxval=2.0)"
    url = f"/v1/experiments/{trainer.experiment_id}/history"

    whole = client.get(url, params={"initializers": label}).json()["points"]
    repeated = client.get(
        url, params=[("initializers", label), ("initializers", "zeros")]
    )
    separated = client.get(url, params={"initializers": "zeros,he_normal"})

    within = client.get(url, params={"initializers": f"zeros,{label},he_normal"})
    empty = client.get(url, params={"initializers": ""})
    commas = client.get(url, params={"initializers": ",,"})

    assert [p["initializer"] for p in whole] == [label]
    assert {p["initializer"] for p in repeated.json()["points"]} == {label, "zeros"}
    assert {p["initializer"] for p in within.json()["points"]} == {
        label,
        "zeros",
        "he_normal",
    }
    assert len(empty.json()["points"]) == len(commas.json()["points"]) == 3
    assert {p["initializer"] for p in separated.json()["points"]} == {
        "zeros",
        "he_normal",
    }


def test_csv_cells_never_start_a_spreadsheet_formula(
    client: TestClient, settings: Settings
) -> None:
    import csv
    import io

    formula = {"name": "zeros", "config": {}, "label": '=HYPERLINK("x","y")'}
    quoted = {"name": "ones", "config": {}, "label": '\'=HYPERLINK("x","y")'}
    trainer = Trainer(settings, [formula, quoted, "he_normal"], epochs=1)
    for run in trainer.run_ids:
        trainer.claim(run)
        trainer.epoch(run, 0)
    url = f"/v1/experiments/{trainer.experiment_id}/history.csv"

    for layout in ("long", "wide"):
        text = client.get(url, params={"layout": layout}).text
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert '\'=HYPERLINK("x","y")' in cells
        assert '\'\'=HYPERLINK("x","y")' in cells
        assert not any(cell.startswith(("=", "@", "+")) for cell in cells)
