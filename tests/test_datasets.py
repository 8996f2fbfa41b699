"""The banknote loader: data folder, checksum, cache and download (loopback)."""

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.catalog import DATASET_SHAPES, DatasetShape
from service.config import Settings
from tests.conftest import SHARED_DATA
from worker.datasets import (
    BANKNOTE_FILE,
    DatasetError,
    Table,
    banknote_bytes,
    load_table,
    parse_banknote,
    split,
    uploaded_table,
)

UCI_BYTES = (SHARED_DATA / BANKNOTE_FILE).read_bytes()


class FileServer:
    """Serves fixed bytes at any path on 127.0.0.1, counting requests."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *_: object) -> None:
                return

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{BANKNOTE_FILE}"


@pytest.fixture
def serve() -> Iterator[list[FileServer]]:
    servers: list[FileServer] = []
    yield servers
    for server in servers:
        server.server.shutdown()
        server.server.server_close()


def start(servers: list[FileServer], body: bytes) -> FileServer:
    server = FileServer(body)
    server.thread.start()
    servers.append(server)
    return server


def offline(tmp_path: Path, url: str) -> Settings:
    return Settings(
        home=tmp_path, data_dir=None, cache_dir=tmp_path / "cache", banknote_url=url
    )


def test_reads_uci_file_from_the_data_folder() -> None:
    table = load_table("uci:banknote", Settings(data_dir=SHARED_DATA))

    assert table.features.shape == (1372, 4)
    assert table.feature_names == ("variance", "skewness", "curtosis", "entropy")
    assert np.bincount(table.labels.astype(int)).tolist() == [762, 610]


def test_reads_the_course_csv_when_only_it_is_there(tmp_path: Path) -> None:
    (tmp_path / "banknotes.csv").write_bytes(
        (SHARED_DATA / "banknotes.csv").read_bytes()
    )

    assert banknote_bytes(Settings(data_dir=tmp_path)) == UCI_BYTES


def test_a_tampered_file_in_the_data_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / BANKNOTE_FILE).write_bytes(UCI_BYTES.replace(b"3.6216", b"3.6217", 1))

    with pytest.raises(DatasetError, match="SHA-256"):
        banknote_bytes(Settings(data_dir=tmp_path))


def test_an_empty_data_folder_says_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=BANKNOTE_FILE):
        banknote_bytes(Settings(data_dir=tmp_path))


def test_downloads_verifies_and_caches(tmp_path: Path, serve: list[FileServer]) -> None:
    server = start(serve, UCI_BYTES)
    settings = offline(tmp_path, server.url)

    assert banknote_bytes(settings) == UCI_BYTES
    assert banknote_bytes(settings) == UCI_BYTES
    assert server.requests == 1
    assert (tmp_path / "cache" / BANKNOTE_FILE).read_bytes() == UCI_BYTES


def test_a_download_with_the_wrong_checksum_is_refused_and_not_cached(
    tmp_path: Path, serve: list[FileServer]
) -> None:
    server = start(serve, UCI_BYTES[:-10])

    with pytest.raises(DatasetError, match="SHA-256"):
        banknote_bytes(offline(tmp_path, server.url))
    assert not (tmp_path / "cache" / BANKNOTE_FILE).exists()


def test_a_corrupt_cache_is_replaced(tmp_path: Path, serve: list[FileServer]) -> None:
    server = start(serve, UCI_BYTES)
    cached = tmp_path / "cache" / BANKNOTE_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"garbage")

    assert banknote_bytes(offline(tmp_path, server.url)) == UCI_BYTES
    assert cached.read_bytes() == UCI_BYTES
    assert server.requests == 1


def test_an_unreachable_source_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{BANKNOTE_FILE}"

    with pytest.raises(DatasetError, match="download failed"):
        banknote_bytes(offline(tmp_path, url))


def test_unknown_source_is_refused() -> None:
    with pytest.raises(DatasetError, match="uci:nothing"):
        load_table("uci:nothing", Settings(data_dir=SHARED_DATA))


def test_split_is_scikit_learns_and_standardizes_on_the_training_rows() -> None:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    table = parse_banknote(UCI_BYTES)
    x_train, x_val, y_train, _ = train_test_split(
        table.features, table.labels, test_size=0.3, random_state=42
    )
    scaler = StandardScaler().fit(x_train)

    data = split(table, test_size=0.3, split_seed=42, standardize="train")

    assert data.x_train.shape == (960, 4)
    assert data.x_val.shape == (412, 4)
    np.testing.assert_allclose(data.x_train, scaler.transform(x_train), atol=1e-6)
    np.testing.assert_allclose(data.x_val, scaler.transform(x_val), atol=1e-6)
    np.testing.assert_array_equal(data.y_train.ravel(), y_train)


def test_standardize_all_reproduces_the_classic_lesson() -> None:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    table = parse_banknote(UCI_BYTES)
    scaled = StandardScaler().fit_transform(table.features)
    x_train, _, _, _ = train_test_split(
        scaled, table.labels, test_size=0.3, random_state=42
    )

    data = split(table, test_size=0.3, split_seed=42, standardize="all")

    np.testing.assert_allclose(data.x_train, x_train, atol=1e-6)


def test_standardize_none_keeps_raw_features() -> None:
    table = parse_banknote(UCI_BYTES)

    data = split(table, test_size=0.3, split_seed=42, standardize="none")

    assert np.isclose(np.abs(data.x_train).max(), np.abs(table.features).max())


@pytest.mark.parametrize(
    "source", [name for name in DATASET_SHAPES if name.startswith("sklearn:")]
)
def test_sklearn_shapes_in_the_catalog_match_scikit_learn(source: str) -> None:
    import sklearn.datasets

    name = source.removeprefix("sklearn:")
    x, y = getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)
    classes = 0 if name == "diabetes" else len(np.unique(y))

    table = load_table(source, Settings(data_dir=SHARED_DATA))

    assert DATASET_SHAPES[source] == DatasetShape(
        rows=x.shape[0], features=x.shape[1], classes=classes
    )
    assert table.features.shape == x.shape
    np.testing.assert_array_equal(table.labels, y)


def test_stratified_split_keeps_each_class_share() -> None:
    table = load_table("sklearn:iris", Settings(data_dir=SHARED_DATA))

    data = split(table, test_size=0.2, split_seed=3, standardize="none", stratify=True)

    assert np.bincount(data.y_train.ravel().astype(int)).tolist() == [40, 40, 40]
    assert np.bincount(data.y_val.ravel().astype(int)).tolist() == [10, 10, 10]


def test_uploaded_table_one_hot_encodes_and_split_imputes_training_means() -> None:
    content = b"x,colour,kind\n1,red,b\n,blue,a\n3,,b\n5,red,a\n"

    table, classes = uploaded_table(
        content,
        header=True,
        label="kind",
        features=None,
        one_hot=["colour"],
        classification=True,
    )

    assert classes == 2
    assert table.feature_names == ("x", "colour=blue", "colour=red")
    np.testing.assert_array_equal(table.labels, [1, 0, 1, 0])
    np.testing.assert_array_equal(
        table.features,
        [[1, 0, 1], [np.nan, 1, 0], [3, np.nan, np.nan], [5, 0, 1]],
    )
    data = split(table, test_size=0.25, split_seed=0, standardize="none")
    assert not np.isnan(data.x_train).any()
    assert not np.isnan(data.x_val).any()
    everything = np.vstack([data.x_train, data.x_val])
    assert sorted(everything[:, 0]) == sorted(
        [1.0, 3.0, 5.0, float(np.nanmean(train_x(table, 0.25)[:, 0]))]
    )


def train_x(table: Table, test_size: float) -> np.ndarray:
    from sklearn.model_selection import train_test_split

    x_train, _ = train_test_split(table.features, test_size=test_size, random_state=0)
    return np.asarray(x_train)
