"""The store's contract, run against a SQLite file and the real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
import sqlalchemy as sa

import hpo
from hpo.exceptions import DuplicatedStudyError, StorageError, StudyNotFoundError
from hpo.storage import SQLStore, _migrate
from hpo.storage._sql import _normalise_url
from hpo.trial import Direction, TrialState

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def _study(store: SQLStore, name: str = "s") -> int:
    rec = store.create_study(
        name=name,
        direction=Direction.MINIMIZE,
        space=SPACE,
        strategy="random",
        strategy_options={},
        seed=3,
        meta={"model": "mlp"},
    )
    return rec.id


def test_studies_create_get_list_delete(storage_url: str) -> None:
    store = SQLStore(storage_url)
    sid = _study(store, "a")
    _study(store, "b")
    rec = store.get_study("a")
    assert (rec.id, rec.name, rec.direction, rec.seed) == (sid, "a", Direction.MINIMIZE, 3)
    assert dict(rec.space) == SPACE and rec.meta["model"] == "mlp"
    assert rec.created_at.tzinfo is not None
    with pytest.raises(DuplicatedStudyError):
        _study(store, "a")
    assert [s.study.name for s in store.list_studies()] == ["a", "b"]
    store.delete_study("a")
    with pytest.raises(StudyNotFoundError, match=r"no study named 'a'.*Known studies: 'b'\."):
        store.get_study("a")
    store.close()


def test_trial_numbers_are_atomic_and_finished_trials_immutable(storage_url: str) -> None:
    store = SQLStore(storage_url)
    sid = _study(store)
    t0 = store.add_trial(sid, 0, {"x": 0.5})
    assert t0 is not None
    assert store.add_trial(sid, 0, {"x": 0.7}) is None  # the number is taken
    assert store.count_trials(sid) == 1
    store.report(t0, 0, 0.9)
    store.report(t0, 1, float("nan"))
    store.report(t0, 0, 0.8)  # same step overwrites
    store.set_trial_attrs(t0, user={"curve": [1.0, float("inf")]}, system={"host": "h"})
    store.report(t0, 2, 0.7, user={"epochs": 3})  # a report and attributes in one write
    assert store.finish_trial(t0, TrialState.COMPLETE, value=0.25)
    assert not store.finish_trial(t0, TrialState.FAILED, error="late")
    with pytest.raises(StorageError, match="already finished"):
        store.report(t0, 2, 0.1)
    with pytest.raises(StorageError, match="already finished"):
        store.report(t0, 3, 0.1, user={"epochs": 4})
    with pytest.raises(StorageError, match="already finished"):
        store.set_trial_attrs(t0, user={"k": 1})
    (t,) = store.get_trials(sid)
    assert t.state is TrialState.COMPLETE and t.value == 0.25
    assert t.intermediate[0] == 0.8 and math.isnan(t.intermediate[1])
    assert t.user_attrs["curve"][1] == math.inf and t.system_attrs["host"] == "h"
    assert t.intermediate[2] == 0.7 and t.user_attrs["epochs"] == 3 and 3 not in t.intermediate
    assert t.finished_at is not None and t.started_at is not None
    assert t.finished_at >= t.started_at
    # snapshots: a record read before a write does not change
    t1 = store.add_trial(sid, 1, {"x": 0.1})
    assert t1 is not None
    before = store.get_trials(sid, states=[TrialState.RUNNING])
    store.finish_trial(t1, TrialState.FAILED, error="ValueError: boom")
    assert before[0].state is TrialState.RUNNING
    assert store.get_trials(sid, min_number=1)[0].error == "ValueError: boom"
    # one trial by number, with its key and its reports only
    got = store.get_trial(sid, 0)
    assert got is not None and got.trial_id == t0 and got.intermediate[0] == 0.8
    second = store.get_trial(sid, 1)
    assert second is not None and second.trial_id == t1 and not second.intermediate
    assert store.get_trial(sid, 2) is None
    summary = store.list_studies()[0]
    assert summary.n_trials == 2 and summary.best_value == 0.25
    assert summary.states[TrialState.FAILED] == 1
    store.close()


def test_stale_running_trials_are_failed_as_interrupted(storage_url: str) -> None:
    store = SQLStore(storage_url)
    sid = _study(store)
    a = store.add_trial(sid, 0, {"x": 0.5})
    assert a is not None
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    assert store.fail_stale_trials(sid, future) == [0]
    (t,) = store.get_trials(sid)
    assert t.state is TrialState.FAILED and t.interrupted and "interrupted" in (t.error or "")
    store.close()


def test_an_interrupted_trial_is_resumed_by_exactly_one_caller(storage_url: str) -> None:
    """Store.resume_trial (issue 18): FAILED back to RUNNING once, whoever races for it; its
    number, params, values and user attributes stay, its system attributes are merged."""
    import threading

    store = SQLStore(storage_url)
    sid = _study(store)
    tid = store.add_trial(sid, 0, {"x": 0.5}, system_attrs={"host": "a", "pid": 1})
    assert tid is not None
    store.report(tid, 1, 0.25)
    store.set_trial_attrs(tid, user={"curve": [0.25]}, system={"checkpoint": {"step": 1}})
    assert not store.resume_trial(tid, {"pid": 2})  # running: nothing to resume
    store.finish_trial(tid, TrialState.FAILED, error="interrupted: killed",
                       system_attrs={"interrupted": True})  # fmt: skip
    stores = [SQLStore(storage_url) for _ in range(4)]
    won: list[bool] = []
    threads = [
        threading.Thread(target=lambda s=s, i=i: won.append(s.resume_trial(tid, {"pid": 10 + i})))
        for i, s in enumerate(stores)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(won) == [False, False, False, True]
    (t,) = store.get_trials(sid)
    assert t.state is TrialState.RUNNING and t.error is None and t.finished_at is None
    assert (t.number, dict(t.params), dict(t.intermediate)) == (0, {"x": 0.5}, {1: 0.25})
    assert t.user_attrs["curve"] == [0.25] and t.system_attrs["checkpoint"] == {"step": 1}
    assert t.system_attrs["host"] == "a" and t.system_attrs["pid"] in {10, 11, 12, 13}
    store.finish_trial(tid, TrialState.COMPLETE, value=0.1)
    assert not store.resume_trial(tid, {"pid": 3})  # complete: never resumed
    for s in [store, *stores]:
        s.close()


def test_schema_matches_migrations_and_reopens(storage_url: str) -> None:
    """The Alembic migrations build exactly the tables the code uses; reopening is a no-op."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hpo.storage._schema import metadata

    store = SQLStore(storage_url)
    with store._engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        diff = [d for d in compare_metadata(ctx, metadata) if d[0] != "remove_table"]
        assert diff == []
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version_hpo")).scalar()
    assert version == _migrate.HEAD
    store.close()
    SQLStore(storage_url).close()  # opening a current store runs nothing and succeeds


def test_a_store_from_before_evaluations_upgrades_and_keeps_its_studies(
    storage_url: str,
) -> None:
    """A store written by an hpo without final evaluations (schema 0001) opens, gains the
    evaluations table, and keeps its studies and trials."""
    engine = sa.create_engine(_normalise_url(storage_url))
    _migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        assert not sa.inspect(conn).has_table("hpo_evaluations")
        conn.execute(
            sa.text(
                "INSERT INTO hpo_studies (name, direction, space, strategy, strategy_options, "
                "seed, created_at, meta, user_attrs) VALUES ('old', 'maximize', '{}', 'random', "
                "'{}', 0, '2026-11-30 10:00:00', '{}', '{}')"
            )
        )
    engine.dispose()
    store = SQLStore(storage_url)
    rec = store.get_study("old")
    assert store.add_trial(rec.id, 0, {"x": 1}) is not None
    assert store.get_evaluations(rec.id) == []
    ev = store.add_evaluation(
        rec.id,
        trial_number=0,
        test_accuracy=0.9,
        test_loss=0.3,
        epochs=2,
        retrained=True,
        confusion=[[9, 1], [0, 10]],
        info={"test_source": "held out"},
    )
    assert ev.confusion == ((9, 1), (0, 10)) and ev.retrained and ev.info["test_source"]
    store.close()


def test_evaluations_are_stored_in_order_and_go_with_their_study(storage_url: str) -> None:
    store = SQLStore(storage_url)
    sid = _study(store)
    other = store.create_study(
        name="other", direction=Direction.MAXIMIZE, space={}, strategy="random",
        strategy_options={}, seed=0, meta={},
    )  # fmt: skip
    for acc in (0.91, 0.93):
        store.add_evaluation(
            sid,
            trial_number=3,
            test_accuracy=acc,
            test_loss=0.25,
            epochs=4,
            retrained=acc > 0.92,
            confusion=[[5, 0], [1, 4]],
            info={"n_test": 10, "nan": float("nan")},
        )
    first, second = store.get_evaluations(sid)
    assert (first.test_accuracy, second.test_accuracy) == (0.91, 0.93)
    assert not first.retrained and second.retrained and second.epochs == 4
    assert second.info["n_test"] == 10 and math.isnan(second.info["nan"])
    assert second.created_at.tzinfo is not None and first.id < second.id
    assert store.get_evaluations(other.id) == []
    store.delete_study(store.get_study("s").name)
    assert store.get_evaluations(sid) == []
    store.close()


def test_a_store_from_a_newer_hpo_is_refused(sqlite_url: str) -> None:
    SQLStore(sqlite_url).close()
    eng = sa.create_engine(sqlite_url)
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version_hpo SET version_num = '9999'"))
    eng.dispose()
    with pytest.raises(StorageError, match="written by a newer hpo"):
        SQLStore(sqlite_url)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("hpo.db", "is not a URL"),
        ("mongodb://localhost/x", "scheme 'mongodb' is not supported"),
        ("sqlite:////no/such/folder/hpo.db", "folder '/no/such/folder' does not exist"),
        ("postgresql://postgres:secret@127.0.0.1:1/test", "cannot open the database"),
    ],
)
def test_bad_storage_urls_get_one_clear_line(url: str, fragment: str) -> None:
    with pytest.raises(StorageError) as e:
        SQLStore(url)
    assert fragment in str(e.value)
    assert "secret" not in str(e.value)


def test_in_memory_store_is_the_default() -> None:
    study = hpo.create_study(space=SPACE, strategy="random")
    study.optimize(lambda t: t.params["x"], n_trials=3)
    assert study.storage_url == "sqlite://" and len(study.trials) == 3


# A study as hpo before migration 0003 stored it: the pruner inside `meta` (rows copied from a
# store that main wrote with `hpo.create_study(..., pruner="asha", pruner_options=...)`).
_OLD_META = (
    '{"model": "cnn", "dataset": "mnist", "metric": "val_accuracy", "direction": "maximize", '
    '"trials": 40, "default_pruner": "asha", "timeout": 540, "budget": {"epochs": 12, '
    '"max_train_images": null}, "space_name": "old", "pruner": {"name": "asha", "options": '
    '{"reduction_factor": 3, "min_resource": 1, "max_resource": 12}}}'
)


def test_a_store_from_before_pruner_columns_upgrades_and_keeps_each_pruner(
    storage_url: str,
) -> None:
    """A store at schema 0002 (the pruner kept in the study's meta) opens: the pruner moves to
    its columns, and the study reads back, and reopens, with the same pruner and meta."""
    engine = sa.create_engine(_normalise_url(storage_url))
    _migrate.upgrade(engine, "0002")
    rows = [
        ("old-asha", _OLD_META),
        ("old-none", '{"model": "mlp", "pruner": {"name": "none", "options": {}}}'),
        ("older", '{"model": "mlp"}'),  # from before pruners were stored
    ]
    with engine.begin() as conn:
        for name, meta in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO hpo_studies (name, direction, space, strategy, strategy_options,"
                    " seed, created_at, meta, user_attrs) VALUES (:name, 'maximize', :space, "
                    "'random', '{}', 0, '2026-12-01 10:00:00', :meta, '{}')"
                ),
                {
                    "name": name,
                    "meta": meta,
                    "space": '{"x": {"type": "int", "low": 1, "high": 4}}',
                },
            )
    engine.dispose()
    store = SQLStore(storage_url)
    old = store.get_study("old-asha")
    assert old.pruner == "asha"
    assert dict(old.pruner_options) == {
        "reduction_factor": 3,
        "min_resource": 1,
        "max_resource": 12,
    }
    assert dict(old.meta) == json.loads(_OLD_META)  # readers of meta see what they saw
    assert old.spec.model == "cnn" and old.spec.epochs == 12 and old.spec.pruner == "asha"
    assert (store.get_study("old-none").pruner, store.get_study("older").pruner) == ("none", None)
    assert "pruner" not in store.get_study("older").meta
    with store._engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT meta FROM hpo_studies WHERE name = 'old-asha'"))
        assert "pruner" not in json.loads(raw.scalar_one())  # moved, not copied
    study = hpo.load_study("old-asha", storage=store)
    assert isinstance(study.pruner, hpo.ASHA)
    assert study.pruner.options() == dict(old.pruner_options)
    assert isinstance(hpo.load_study("older", storage=store).pruner, hpo.NoPruner)
    # a new study stores its pruner in the columns, the same way
    new = hpo.create_study(
        space={"x": hpo.Int(1, 4)}, storage=store, name="new", pruner="median"
    ).record
    assert (new.pruner, new.meta["pruner"]["name"]) == ("median", "median")
    store.close()
