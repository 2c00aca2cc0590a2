"""Where a tracker's runs live in MLflow: the client (no long retries), the study's experiment,
and its parent run — found by its tags, made when missing, and the same one for every process
that tracks the study (duplicates made at once are deleted, their trials moved to the one kept)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.study import Study

__all__ = ["_MlflowRuns", "_ms"]

log = logging.getLogger("hpo.tracking")


def _ms(t: Any) -> int | None:
    return None if t is None else int(t.timestamp() * 1000)


class _MlflowRuns:
    """The MLflow side of :class:`hpo.tracking.MlflowTracker`: its client and the experiment
    and parent run of each study it tracks."""

    def __init__(self, uri: str, timeout: float) -> None:
        self.uri = uri
        self.timeout = timeout
        self._client: Any = None
        self._experiments: dict[str, str] = {}
        self._parents: dict[str, str] = {}
        self._logged: dict[str, list[str]] = {}  # the trial runs this tracker made, by study

    # -- plumbing ------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            # Fail fast on a dead server instead of MLflow's default minutes of retries.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(self.timeout)))
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            from mlflow.tracking import MlflowClient

            # MLflow's own chatter (table creation, pip-requirement notes) is not our user's.
            logging.getLogger("mlflow").setLevel(logging.WARNING)
            logging.getLogger("alembic").setLevel(logging.WARNING)
            logging.getLogger("mlflow.utils.requirements_utils").setLevel(logging.ERROR)
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _experiment_id(self, name: str) -> str:
        if name in self._experiments:
            return self._experiments[name]
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            try:
                eid = self.client.create_experiment(name, tags={"hpo.study": name})
            except Exception:
                exp = self.client.get_experiment_by_name(name)  # made by another process
                if exp is None:
                    raise
                eid = exp.experiment_id
        else:
            eid = exp.experiment_id
        self._experiments[name] = eid
        return eid

    def _find_runs(self, eid: str, filter_string: str) -> list[Any]:
        runs = self.client.search_runs([eid], filter_string=filter_string, max_results=1000)
        # Every process must order them alike, oldest first: parent runs share their start
        # time (the study's creation), so when each was made (its tag; 0 for runs made
        # before the tag existed), then the run id, decide.
        return sorted(
            runs,
            key=lambda r: (
                int(r.data.tags.get("hpo.created_ns", "0")),
                r.info.start_time or 0,
                r.info.run_id,
            ),
        )

    @staticmethod
    def _parent_filter(name: str) -> str:
        return f"tags.`hpo.kind` = 'study' and tags.`hpo.study` = '{name}'"

    def _parent_run(self, study: Study) -> str:
        name = study.name
        if name in self._parents:
            return self._parents[name]
        eid = self._experiment_id(name)
        flt = self._parent_filter(name)
        runs = self._find_runs(eid, flt)
        if not runs:
            rec = study.record
            self.client.create_run(
                eid,
                start_time=_ms(rec.created_at),
                run_name=name,
                tags={
                    "hpo.kind": "study",
                    "hpo.study": name,
                    "hpo.strategy": rec.strategy,
                    "hpo.direction": rec.direction.value,
                    "hpo.storage": _mask(study.storage_url),
                    "hpo.created_ns": str(time.time_ns()),
                },
            )
            # Two processes may both have created one: all agree on the first in order. (One
            # that looked before the other's run existed picked its own; _reconcile, at the
            # next flush, moves its trials to the survivor.)
            runs = self._find_runs(eid, flt)
            self._delete_runs(runs[1:])
        elif runs[0].info.status != "RUNNING":  # a run of the study ended; this one goes on
            self.client.update_run(runs[0].info.run_id, status="RUNNING")
        run_id = str(runs[0].info.run_id)
        self._parents[name] = run_id
        return run_id

    def _delete_runs(self, runs: Sequence[Any]) -> None:
        for extra in runs:
            try:
                self.client.delete_run(extra.info.run_id)
            except Exception as e:  # another process deleted it first
                log.debug("could not delete duplicate parent run: %s", e)

    def _reconcile(self) -> None:
        """Make this tracker's trial runs point at the one parent run every process agrees
        on, should processes that started a study at once have picked different ones."""
        for name, chosen in list(self._parents.items()):
            runs = self._find_runs(self._experiment_id(name), self._parent_filter(name))
            if not runs:
                continue
            self._delete_runs(runs[1:])
            survivor = str(runs[0].info.run_id)
            if survivor != chosen:
                for run_id in self._logged.get(name, []):
                    self.client.set_tag(run_id, "mlflow.parentRunId", survivor)
                self._parents[name] = survivor


def _mask(url: str) -> str:
    from hpo.storage import mask_url

    return mask_url(url)
