"""Where a study's checkpoints live, and how they are written, read and deleted.

Layout: ``ROOT/STUDY/trial-N/epoch-E.pt``. ``ROOT`` is a local folder (by default the SQLite
store's file name plus ``.checkpoints``), any fsspec URL (``s3://bucket/ckpt``,
``file:///shared/ckpt``, ``memory://x``) or an MLflow tracking server's artifact store
(``mlflow-artifacts:/ckpt``, kept as ``mlflow-artifacts://HOST:PORT/ckpt``). A trial
records where its checkpoints are in its system attribute ``checkpoint``::

    {"dir": "ROOT/STUDY/trial-N", "files": ["epoch-3.pt"], "step": 3, "saved": 3}

so any process that can reach ``ROOT`` can pick the trial up, whatever flags it was given.
Files are written atomically: to a temporary name first, then renamed, so a process killed
mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import posixpath
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.exceptions import HpoError
from hpo.trial._state import Direction, TrialState

if TYPE_CHECKING:
    from hpo.study import Study
    from hpo.trial._frozen import FrozenTrial

__all__ = [
    "MIN_FREE_BYTES",
    "Checkpointing",
    "clean_checkpoints",
    "default_checkpoint_dir",
    "mlflow_artifacts_url",
    "rank",
    "study_folder",
]

log = logging.getLogger("hpo")

#: A local checkpoint location with less free space than this is refused at start.
MIN_FREE_BYTES = 64 * 1024 * 1024


_MLFLOW = "mlflow-artifacts:"


def _is_local(path: str) -> bool:
    return ("://" not in path and not path.startswith(_MLFLOW)) or path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def _fs(url: str) -> tuple[Any, str]:
    if url.startswith(_MLFLOW):
        return _MlflowArtifacts.from_url(url)
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    return fs, root


def mlflow_artifacts_url(url: str, tracking_uri: str | None = None) -> str:
    """``mlflow-artifacts:/PATH`` made self-contained, ``mlflow-artifacts://HOST:PORT/PATH``,
    with the host of ``tracking_uri`` (default: MLflow's current one), so that a process on
    another machine, with another tracking URI, finds the same files. A URL with a host is
    returned as it is.

    Raises:
        HpoError: the URL has no host and the tracking URI is not an ``http(s)`` server.
    """
    from urllib.parse import urlparse

    parsed = urlparse(url)
    path = parsed.path.strip("/")
    if not path:
        raise HpoError(
            f"checkpoint location {url!r} names no folder; write mlflow-artifacts:/FOLDER."
        )
    if parsed.netloc:
        return f"{_MLFLOW}//{parsed.netloc}/{path}"
    if tracking_uri is None:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
    track = urlparse(tracking_uri)
    if track.scheme not in ("http", "https") or not track.netloc:
        raise HpoError(
            f"checkpoint location {url!r} is on an MLflow tracking server, but the tracking "
            f"URI is {tracking_uri!r}: pass --mlflow-uri http://HOST:PORT (or set "
            f"MLFLOW_TRACKING_URI), or write mlflow-artifacts://HOST:PORT/{path}."
        )
    return f"{_MLFLOW}//{track.netloc}/{path}"


class _MlflowArtifacts:
    """The few file-system calls checkpoints make, on the artifact store an MLflow tracking
    server proxies (``mlflow server`` serves one by default): paths are relative to the
    server's artifact root. Requests go through MLflow's own HTTP client, so its credentials
    (``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``) and retries apply.
    The store has no rename: a file is written under its final name, and the store records
    it only once the upload has completed."""

    can_rename = False

    def __init__(self, netloc: str) -> None:
        from urllib.parse import urlparse

        import mlflow

        self.netloc = netloc
        # The scheme (and any path prefix) of the current tracking URI when it is this
        # server; plain http otherwise.
        current = mlflow.get_tracking_uri()
        self.tracking_uri = (
            current
            if urlparse(current).netloc == netloc and current.startswith("http")
            else f"http://{netloc}"
        )

    @classmethod
    def from_url(cls, url: str) -> tuple[_MlflowArtifacts, str]:
        from urllib.parse import urlparse

        parsed = urlparse(mlflow_artifacts_url(url))
        return cls(parsed.netloc), parsed.path.strip("/")

    def _repo(self, path: str) -> Any:
        from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

        return MlflowArtifactsRepository(
            f"{_MLFLOW}//{self.netloc}/{path.strip('/')}", tracking_uri=self.tracking_uri
        )

    def probe(self) -> None:
        """Fail within seconds when the server does not answer (MLflow's own client retries
        for minutes)."""
        import urllib.request

        base = self.tracking_uri.rstrip("/")
        with urllib.request.urlopen(f"{base}/health", timeout=5):
            pass

    def makedirs(self, path: str, exist_ok: bool = True) -> None:
        """Nothing to do: a folder exists once a file is in it."""

    def pipe_file(self, path: str, data: bytes) -> None:
        parent, name = posixpath.split(path)
        with tempfile.TemporaryDirectory(prefix="hpo-ckpt-") as d:
            local = os.path.join(d, name)
            with open(local, "wb") as f:
                f.write(data)
            self._repo(parent).log_artifact(local)

    def cat_file(self, path: str) -> bytes:
        # One GET, as MLflow's own download does, without its progress bar and listing.
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import augmented_raise_for_status, http_request

        parent, name = posixpath.split(path)
        creds = get_default_host_creds(self._repo(parent).artifact_uri)
        resp = http_request(creds, f"/{name}", "GET")
        if resp.status_code == 404:
            raise FileNotFoundError(f"no checkpoint {path!r} on {self.netloc}")
        augmented_raise_for_status(resp)
        return bytes(resp.content)

    def exists(self, path: str) -> bool:
        parent, name = posixpath.split(path)
        listed = self._repo(parent).list_artifacts()
        return any(posixpath.basename(f.path) == name for f in listed)

    def rm_file(self, path: str) -> None:
        parent, name = posixpath.split(path)
        self._repo(parent).delete_artifacts(name)  # a missing file is no error

    def rm(self, path: str, recursive: bool = False) -> None:
        self._repo(path).delete_artifacts()


def _join(root: str, *parts: str) -> str:
    if _is_local(root):
        return os.path.join(_local(root), *parts)
    return posixpath.join(root, *parts)


def default_checkpoint_dir(store_url: str) -> str | None:
    """``FILE.checkpoints`` next to a SQLite file store; None for in-memory or server stores
    (a local folder is not shared by the machines a PostgreSQL study spans)."""
    if not store_url.startswith("sqlite"):
        return None
    rest = store_url.split("://", 1)[1]
    path = rest[1:] if rest.startswith("/") else rest
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return os.path.abspath(os.path.expanduser(path)) + ".checkpoints"


@dataclass(frozen=True)
class Checkpointing:
    """How a study's trials keep checkpoints.

    Args:
        dir: The root: a local folder or an fsspec URL.
        every: The built-in training loop saves after every ``every``-th epoch (and the last).
        overhead: The most time the built-in loop spends on checkpoints, as a fraction of its
            training time (default 0.01). Where one save costs more than that share of the
            epochs since the last one (an MLP whose epochs last 0.1 s), the loop waits more
            epochs before the next save, so a lost trial loses at most ~``1/overhead`` times
            one save's time of training; epochs of a second or more are all saved. 0 saves
            every ``every``-th epoch whatever it costs.
        keep: Newest checkpoints kept per trial while it runs.
        best: Finished trials whose checkpoints are kept: the best ``best`` completed ones
            (the others' are deleted when a trial finishes).
    """

    dir: str
    every: int = 1
    keep: int = 1
    best: int = 1
    overhead: float = 0.01

    def __post_init__(self) -> None:
        o = self.overhead
        if isinstance(o, bool) or not isinstance(o, int | float) or not 0 <= o < 1:
            raise HpoError(f"checkpoint overhead must be a number in [0, 1), got {o!r}.")
        for name, low in (("every", 1), ("keep", 1), ("best", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise HpoError(f"checkpoint {name} must be an integer >= {low}, got {v!r}.")
        if not isinstance(self.dir, str) or not self.dir:
            raise HpoError(f"checkpoint dir must be a folder or a URL, got {self.dir!r}.")
        if _is_local(self.dir):
            local = os.path.abspath(os.path.expanduser(_local(self.dir)))
            object.__setattr__(self, "dir", local)
        elif self.dir.startswith(_MLFLOW):
            object.__setattr__(self, "dir", mlflow_artifacts_url(self.dir))

    # -- places --------------------------------------------------------------------------
    def trial_dir(self, study: str, number: int) -> str:
        return _join(self.dir, study, f"trial-{number}")

    def study_dir(self, study: str) -> str:
        return _join(self.dir, study)

    # -- start-up check ------------------------------------------------------------------
    def check(self) -> None:
        """Make the root and write (then delete) a small file in it.

        Raises:
            HpoError: the location cannot be made or written, or (a local disk) has less
                than :data:`MIN_FREE_BYTES` free; the message names the location.
        """
        probe_name = f".hpo-probe-{secrets.token_hex(4)}"
        fix = "choose another with --checkpoint-dir, or turn them off with --no-checkpoints"
        try:
            if _is_local(self.dir):
                os.makedirs(self.dir, exist_ok=True)
                probe = os.path.join(self.dir, probe_name)
                with open(probe, "wb") as f:
                    f.write(b"hpo")
                os.remove(probe)
                free = shutil.disk_usage(self.dir).free
                if free < MIN_FREE_BYTES:
                    raise HpoError(
                        f"checkpoint location {self.dir!r} has only {free / 2**20:.1f} MiB "
                        f"free (at least {MIN_FREE_BYTES / 2**20:.0f} MiB needed); free some "
                        f"space or {fix}."
                    )
            else:
                fs, root = _fs(self.dir)
                if isinstance(fs, _MlflowArtifacts):
                    fs.probe()
                fs.makedirs(root, exist_ok=True)
                probe = posixpath.join(root, probe_name)
                fs.pipe_file(probe, b"hpo")
                fs.rm_file(probe)
        except HpoError:
            raise
        except Exception as e:
            raise HpoError(
                f"cannot write checkpoints to {self.dir!r}: {type(e).__name__}: {e}; {fix}."
            ) from None

    # -- files ---------------------------------------------------------------------------
    @staticmethod
    def write(trial_dir: str, name: str, state: Any) -> None:
        """``torch.save(state)`` to ``trial_dir/name``, atomically (temporary name, rename)."""
        import torch

        tmp_name = f".{name}.{os.getpid()}-{secrets.token_hex(3)}.tmp"
        if _is_local(trial_dir):
            d = _local(trial_dir)
            os.makedirs(d, exist_ok=True)
            tmp = os.path.join(d, tmp_name)
            try:
                with open(tmp, "wb") as f:
                    torch.save(state, f, _use_new_zipfile_serialization=False)
                os.replace(tmp, os.path.join(d, name))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
            return
        buf = io.BytesIO()
        torch.save(state, buf, _use_new_zipfile_serialization=False)
        fs, root = _fs(trial_dir)
        fs.makedirs(root, exist_ok=True)
        if not getattr(fs, "can_rename", True):
            fs.pipe_file(posixpath.join(root, name), buf.getvalue())
            return
        tmp = posixpath.join(root, tmp_name)
        fs.pipe_file(tmp, buf.getvalue())
        fs.mv(tmp, posixpath.join(root, name))

    @staticmethod
    def read(trial_dir: str, name: str, map_location: Any = None) -> Any:
        """The state saved in ``trial_dir/name``.

        Checkpoints hold RNG states and optimiser settings, not only tensors, so they load
        with ``weights_only=False``: read only checkpoints that your own studies wrote.
        """
        import torch

        if _is_local(trial_dir):
            with open(os.path.join(_local(trial_dir), name), "rb") as f:
                return torch.load(f, map_location=map_location, weights_only=False)
        fs, root = _fs(trial_dir)
        data = fs.cat_file(posixpath.join(root, name))
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)

    @staticmethod
    def exists(trial_dir: str, name: str) -> bool:
        if _is_local(trial_dir):
            return os.path.isfile(os.path.join(_local(trial_dir), name))
        fs, root = _fs(trial_dir)
        return bool(fs.exists(posixpath.join(root, name)))

    @staticmethod
    def remove(trial_dir: str, names: list[str]) -> None:
        """Delete files of a trial's folder; missing ones are fine."""
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                if _is_local(trial_dir):
                    os.remove(os.path.join(_local(trial_dir), name))
                else:
                    fs, root = _fs(trial_dir)
                    fs.rm_file(posixpath.join(root, name))

    @staticmethod
    def remove_tree(path: str) -> bool:
        """Delete a folder and everything in it; False when there was none."""
        if _is_local(path):
            p = _local(path)
            if not os.path.exists(p):
                return False
            shutil.rmtree(p, ignore_errors=True)
            return True
        fs, root = _fs(path)
        if not fs.exists(root):
            return False
        fs.rm(root, recursive=True)
        return True


def rank(direction: Direction, value: float | None, number: int) -> tuple[float, int]:
    """Where a completed trial ranks for keeping its checkpoint: smaller is better (the
    better value first, the earlier trial on a tie)."""
    sign = -1.0 if direction is Direction.MAXIMIZE else 1.0
    return sign * float(value or 0.0), number


def study_folder(trial_dir: str) -> str:
    """The study's folder, ``ROOT/STUDY``, of a trial's ``ROOT/STUDY/trial-N`` (the layout
    :meth:`Checkpointing.trial_dir` makes); a folder of another shape is returned as it is."""
    trimmed = trial_dir.rstrip("/")
    parent, _, base = trimmed.rpartition("/")
    return parent if parent and re.fullmatch(r"trial-\d+", base) else trimmed


def clean_checkpoints(study: Study, settings: Checkpointing, cleaned: set[int]) -> list[int]:
    """Delete the checkpoints of ``study``'s finished trials except those of the best
    ``settings.best`` completed ones (see :meth:`hpo.study.Study.clean_checkpoints`); the
    numbers of the trials whose checkpoints went, which join ``cleaned`` (skipped next time).
    Interrupted and paused trials keep theirs: they may go on from them.
    """
    trials = study.get_trials(cached=True)

    def files(t: FrozenTrial) -> bool:
        info = t.system_attrs.get("checkpoint")
        return isinstance(info, Mapping) and bool(info.get("files"))

    finished = [
        t
        for t in trials
        if t.state.is_finished
        and not t.interrupted
        and not t.paused
        and files(t)
        and t.number not in cleaned
    ]
    if not finished:
        return []
    complete = [t for t in trials if t.state is TrialState.COMPLETE and files(t)]
    complete.sort(key=lambda t: rank(study.direction, t.value, t.number))
    keep = {t.number for t in complete[: settings.best]}
    gone = []
    for t in finished:
        if t.number in keep:
            continue
        info = dict(t.system_attrs["checkpoint"])
        try:
            Checkpointing.remove_tree(str(info["dir"]))
            study.store.annotate_trial(
                int(t.system_attrs["trial_id"]),
                {"checkpoint": {**info, "files": [], "deleted": True}},
            )
        except Exception as e:  # a full or gone location: tried again next time
            log.warning("could not delete the checkpoints of trial %d: %s", t.number, e)
            continue
        cleaned.add(t.number)
        gone.append(t.number)
    return gone
