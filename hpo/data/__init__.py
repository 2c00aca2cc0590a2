"""Data for the searchable models: MNIST from IDX files, a cached download, or the embedded set.

``load_mnist`` returns :class:`MnistData` (in-memory tensors, a deterministic stratified
train/validation split and a sentence naming the source). ``read_idx``/``write_idx`` read and
write the IDX format; ``DataError`` is the error every loader raises for a bad source.
"""

from __future__ import annotations

from ._download import MIRRORS, MNIST_FILES, default_cache_dir, download_mnist, offline
from ._errors import DataError
from ._idx import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx, write_idx
from ._mnist import MnistData, load_mnist
from ._split import stratified_split, stratified_subset

__all__ = [
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "MIRRORS",
    "MNIST_FILES",
    "DataError",
    "MnistData",
    "default_cache_dir",
    "download_mnist",
    "load_mnist",
    "offline",
    "read_idx",
    "stratified_split",
    "stratified_subset",
    "write_idx",
]
