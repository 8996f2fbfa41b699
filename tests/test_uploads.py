"""Uploading CSV datasets and naming them in experiments, against real
PostgreSQL and Redis, with no worker consuming."""

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.config import get_settings
from service.db.models import Dataset
from service.db.session import session_scope
from tests.helpers import counts

pytestmark = pytest.mark.integration


def stored_datasets() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Dataset)) or 0


def upload(
    client: TestClient, content: bytes, filename: str = "data.csv", **form: str
) -> Any:
    return client.post(
        "/v1/datasets", files={"file": (filename, content, "text/csv")}, data=form
    )


PETS = b"x,color,species\n1.5,red,b\n2,blue,a\n,red,b\n4.25,NA,c\n"


def test_upload_describes_columns_and_the_class_balance(client: TestClient) -> None:
    response = upload(client, PETS, "pets.csv", label="species")

    assert response.status_code == 201, response.text
    body = response.json()
    digest = hashlib.sha256(PETS).hexdigest()
    assert response.headers["location"] == f"/v1/datasets/{digest}"
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "id": digest,
        "name": "pets.csv",
        "header": True,
        "columns": [
            {"name": "x", "type": "numeric", "missing": 1},
            {"name": "color", "type": "text", "missing": 1},
            {"name": "species", "type": "text", "missing": 0},
        ],
        "rows": 4,
        "size_bytes": len(PETS),
        "class_balance": {
            "label": "species",
            "classes": [
                {"id": 0, "value": "a", "count": 1},
                {"id": 1, "value": "b", "count": 2},
                {"id": 2, "value": "c", "count": 1},
            ],
        },
    }
    assert client.get(f"/v1/datasets/{digest}").json() == body
    assert client.get("/v1/datasets").json()["data"][0] == body


def test_the_same_bytes_twice_are_one_dataset(client: TestClient) -> None:
    content = b"a,b\n1,2\n3,4\n5,6\n"
    before = stored_datasets()

    first = upload(client, content, name="first")
    second = upload(client, content, name="second")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert first.json()["name"] == "first"
    assert stored_datasets() == before + 1


def test_names_are_checked_and_long_file_names_cut(client: TestClient) -> None:
    before = stored_datasets()

    bad = upload(client, b"a,b\nx,1\n", name="a\x00b")
    long = upload(client, b"a,b\nx,2\n", "f" * 300 + ".csv")

    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "name"
    assert long.status_code == 201
    assert long.json()["name"] == "f" * 200
    assert stored_datasets() == before + 1


def test_a_byte_order_mark_is_accepted(client: TestClient) -> None:
    response = upload(client, b"\xef\xbb\xbfname,value\nx,1\ny,2\n")

    assert response.status_code == 201
    assert [c["name"] for c in response.json()["columns"]] == ["name", "value"]


def test_a_file_without_header_gets_numbered_columns(client: TestClient) -> None:
    response = upload(client, b"0.5,1\n0.25,0\n0.75,1.0\n", header="false", label="c1")

    assert response.status_code == 201, response.text
    body = response.json()
    assert [(c["name"], c["type"]) for c in body["columns"]] == [
        ("c0", "numeric"),
        ("c1", "numeric"),
    ]
    assert body["class_balance"]["classes"] == [
        {"id": 0, "value": "0", "count": 1},
        {"id": 1, "value": "1", "count": 2},
    ]


def test_listing_is_newest_first_and_paginated(client: TestClient) -> None:
    ids = [upload(client, f"k,v\n{i},1\n".encode()).json()["id"] for i in range(3)]

    page = client.get("/v1/datasets", params={"limit": 2, "offset": 1}).json()

    assert page["limit"] == 2
    assert page["offset"] == 1
    assert page["count"] == stored_datasets()
    assert [d["id"] for d in page["data"]] == [ids[1], ids[0]]


def test_unknown_dataset_is_404(client: TestClient) -> None:
    response = client.get("/v1/datasets/" + "0" * 64)

    assert response.status_code == 404
    assert response.json()["id"] == "0" * 64


BAD_FILES = [
    (
        b"name,x\ncaf\xe9,1\n",
        {},
        "file",
        "the file is not UTF-8 text: byte 0xe9 at offset 10 is not valid UTF-8",
    ),
    (b"a,b\n1,\x002\n", {}, "file", "not a CSV file: it holds a NUL byte"),
    (b'a,b\n"1"x,2\n', {}, "file", "not a CSV file: ',' expected after '\"'"),
    (b"a,b,a\n1,2,3\n", {}, "file", "the header names 'a' twice (columns 1 and 3)"),
    (b"a,,c\n1,2,3\n", {}, "file", "column 2 of the header has no name"),
    (b"a,b\n1,2\n3\n", {}, "file", "line 3 has 1 fields, expected 2"),
    (b"a,b\n", {}, "file", "the file has a header but no data rows"),
    (b"", {}, "file", "the file has no rows"),
    (b"\n\n", {"header": "false"}, "file", "the file has no rows"),
    (b"1,2\n3,4\n", {}, "header", "the first row is all numbers"),
    (b"a,b\n1,2\n", {"label": "c"}, "label", "no column has this name"),
]


@pytest.mark.parametrize(("content", "form", "field", "message"), BAD_FILES)
def test_unreadable_files_are_422_and_store_nothing(
    client: TestClient,
    content: bytes,
    form: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = stored_datasets()

    response = upload(client, content, **form)

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == field
    assert error["message"].startswith(message), error["message"]
    assert stored_datasets() == before


def test_a_file_over_the_limit_is_413_naming_the_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 100)
    before = stored_datasets()

    just_over = upload(client, b"a,b\n" + b"1,2\n" * 25)
    far_over = upload(client, b"a,b\n" + b"1,2\n" * 100_000)

    for response in (just_over, far_over):
        assert response.status_code == 413
        (error,) = response.json()["errors"]
        assert error["field"] == "file"
        assert error["message"] == "the upload is larger than the limit of 100 bytes"
    assert upload(client, b"a,b\n" + b"1,2\n" * 24).status_code == 201
    assert stored_datasets() == before + 1


def test_a_streamed_body_is_read_only_up_to_the_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.setattr(get_settings(), "max_upload_bytes", 100)
    before = stored_datasets()
    boundary = "limitcheck"
    chunks = [
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\na,b\n'
        ).encode(),
        *([b"1,2\n" * 4096] * 1000),
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        more = pulled < len(chunks)
        return {"type": "http.request", "body": chunks[pulled - 1], "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/datasets",
        "raw_path": b"/v1/datasets",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }

    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]

    assert sent[0]["status"] == 413
    assert b"limit of 100 bytes" in sent[1]["body"]
    assert pulled < 10
    assert stored_datasets() == before


TABLE = b"f1,f2,color,same,kind,score\n" + b"".join(
    f"{i},{'' if i % 5 == 0 else i * 2},{['red', 'blue'][i % 2]},s,"
    f"{['yes', 'no'][i % 2]},{i / 10}\n".encode()
    for i in range(20)
)


@pytest.fixture(scope="module")
def table_id(client: TestClient) -> str:
    response = upload(client, TABLE, "table.csv")
    assert response.status_code in {200, 201}, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def on_table(table_id: str, **dataset: Any) -> dict[str, Any]:
    return {
        "dataset": {"id": table_id, "label": "kind", **dataset},
        "batch_size": 4,
    }


def test_an_experiment_on_an_uploaded_dataset_is_stored(
    client: TestClient, table_id: str
) -> None:
    spec = on_table(
        table_id,
        features=["f1", "f2", "color", "score"],
        one_hot=["color"],
        impute="mean",
        stratify=True,
    )

    response = client.post("/v1/experiments", json=spec)

    assert response.status_code == 201, response.text
    assert response.json()["spec"]["dataset"] == {
        "id": table_id,
        "label": "kind",
        "features": ["f1", "f2", "color", "score"],
        "one_hot": ["color"],
        "impute": "mean",
        "standardize": "train",
        "stratify": True,
    }


def bad_experiments(table_id: str) -> list[tuple[dict[str, Any], str, Any]]:
    return [
        (on_table("ab" * 32), "dataset.id", "ab" * 32),
        (on_table(table_id, label="nope"), "dataset.label", "nope"),
        (on_table(table_id, features=["f1", "color"]), "dataset.features.1", "color"),
        (on_table(table_id, features=["f1", "f9"]), "dataset.features.1", "f9"),
        (on_table(table_id, features=["f1", "f2"]), "dataset.impute", "refuse"),
        (on_table(table_id, label="same", features=["f1"]), "dataset.label", "same"),
        (
            on_table(table_id, features=["f1"], one_hot=["color"]),
            "dataset.one_hot.0",
            "color",
        ),
        ({**on_table(table_id, features=["f1"]), "batch_size": 15}, "batch_size", 15),
        (
            {"dataset": {"id": table_id, "label": "kind", "source": "uci:banknote"}},
            "dataset",
            None,
        ),
        ({"dataset": {"id": table_id}}, "dataset", None),
        ({"dataset": {"source": "uci:banknote", "label": "class"}}, "dataset", None),
        ({"dataset": {"id": "not-a-sha"}}, "dataset.id", "not-a-sha"),
        (
            {
                **on_table(table_id, label="color", features=["f1"]),
                "loss": "mse",
                "model": {"layers": [{"units": 1}]},
            },
            "dataset.label",
            "color",
        ),
        (
            {
                **on_table(table_id, features=["f1"]),
                "loss": "sparse_categorical_crossentropy",
                "model": {"layers": [{"units": 3, "activation": "softmax"}]},
            },
            "model.layers.0",
            {"units": 3, "activation": "softmax"},
        ),
    ]


@pytest.mark.parametrize("case", range(14))
def test_experiments_that_cannot_use_the_dataset_are_422(
    client: TestClient, redis_client: Any, table_id: str, case: int
) -> None:
    spec, field, value = bad_experiments(table_id)[case]
    queue = get_settings().queue_name("cpu")
    stored, queued = counts(), redis_client.llen(queue)

    response = client.post("/v1/experiments", json=spec)

    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == field
    if value is not None:
        assert error["value"] == value
    assert error["message"]
    assert counts() == stored
    assert redis_client.llen(queue) == queued
