"""Download MNIST into a local cache, verifying each file's checksum.

Rules:
    * The cache folder is ``cache_dir`` when given, else ``$HPO_CACHE/mnist``, else
      ``~/.cache/hpo/mnist``.
    * ``HPO_OFFLINE=1`` (or ``true``/``yes``) forbids any network access.
    * Before downloading, each mirror's host must accept a TCP connection within a shared
      deadline of ``PROBE_SECONDS`` (name lookup included, in a helper thread, because a name
      lookup cannot be given a timeout); so a machine without network gives up in at most that
      long, logs one line saying why at INFO level (each mirror's reason at DEBUG), and the
      caller falls back to another source.
    * A file lands in the cache only after its MD5 matches the published one (the digests
      torchvision pins); a partial or corrupt download is deleted, never left half-written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "MIRRORS",
    "MNIST_FILES",
    "PROBE_SECONDS",
    "default_cache_dir",
    "download_mnist",
    "offline",
]

logger = logging.getLogger("hpo.data")

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_FILES: dict[str, str] = {  # file name -> MD5 of the gzip file
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
PROBE_SECONDS = 2.5
_READ_TIMEOUT = 20.0


def offline() -> bool:
    """True when the environment variable ``HPO_OFFLINE`` forbids network access."""
    return os.environ.get("HPO_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def default_cache_dir() -> Path:
    """``$HPO_CACHE/mnist`` when ``HPO_CACHE`` is set, else ``~/.cache/hpo/mnist``."""
    root = os.environ.get("HPO_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "hpo") / "mnist"


def _reachable(url: str, timeout: float) -> str | None:
    """None when ``url``'s host accepts a TCP connection within ``timeout`` s, else the reason."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as e:
            outcome.append(f"{host}:{port} unreachable ({e})")

    t = threading.Thread(target=probe, name="hpo-mnist-probe", daemon=True)
    t.start()
    t.join(timeout)
    return outcome[0] if outcome else f"{host}:{port} gave no answer within {timeout:.1f} s"


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest`` atomically; raises OSError on a network or checksum error."""
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=_READ_TIMEOUT) as r, tmp.open("wb") as f:
            for chunk in iter(lambda: r.read(1 << 20), b""):
                f.write(chunk)
        got = _md5(tmp)
        if got != md5:
            raise OSError(f"{url}: MD5 must be {md5}, got {got}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download_mnist(cache_dir: Path, *, probe_seconds: float = PROBE_SECONDS) -> str | None:
    """Download the four MNIST files into ``cache_dir``; return the mirror used, or None.

    Files already in the cache with the right MD5 are kept. Never raises for network trouble:
    it logs the reason and returns None, so the caller can fall back.
    """
    if offline():
        logger.info("MNIST download skipped: HPO_OFFLINE is set.")
        return None
    deadline = time.monotonic() + probe_seconds
    reasons: list[str] = []
    for mirror in MIRRORS:
        left = deadline - time.monotonic()
        if left <= 0:
            reasons.append(f"{mirror}: no time left of the {probe_seconds:.1f} s probe budget")
            continue
        reason = _reachable(mirror, left)
        if reason is not None:
            logger.debug("MNIST download: mirror %s skipped: %s.", mirror, reason)
            reasons.append(reason)
            continue
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            for name, md5 in MNIST_FILES.items():
                dest = cache_dir / name
                if not (dest.is_file() and _md5(dest) == md5):
                    logger.info("MNIST download: fetching %s%s", mirror, name)
                    _fetch(mirror + name, dest, md5)
        except (OSError, urllib.error.URLError) as e:
            logger.debug("MNIST download from %s failed: %s.", mirror, e)
            reasons.append(f"{mirror}: {e}")
            continue
        return mirror
    logger.info("MNIST download skipped: %s.", reasons[0] if reasons else "no mirror configured")
    return None
