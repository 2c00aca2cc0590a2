"""The final model (issue 16): augmentation, onecycle, label smoothing, retrain + test, export."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import hpo
from hpo.data import MnistData, load_mnist
from hpo.exceptions import HpoError, SpaceError
from hpo.training import (
    TrainConfig,
    evaluate_study,
    load_model,
    make_objective,
    make_optimizer,
    make_scheduler,
    read_model_file,
    score_model,
)
from hpo.training._augment import augment_batch


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> MnistData:
    """200 real training images, 800 validation, and the 1,000 held-out test images."""
    return load_mnist(cache_dir=tmp_path_factory.mktemp("c"), download=False, max_train=200)


def test_augmentation_moves_images_per_image_and_repeats_with_the_seed(tiny: MnistData) -> None:
    x = tiny.train_x[:16]
    g = torch.Generator().manual_seed(1)
    assert augment_batch(x, 0.0, 0.0, g) is x
    a = augment_batch(x, 3.0, 15.0, torch.Generator().manual_seed(1))
    b = augment_batch(x, 3.0, 15.0, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    moved = (a - x).abs().flatten(1).sum(1)
    assert bool((moved > 1.0).all())  # every image moved
    # A warp keeps the digit: the ink stays roughly the same (bilinear, the digit stays inside).
    ink = a.flatten(1).sum(1) / x.flatten(1).sum(1)
    assert bool(((ink > 0.85) & (ink < 1.15)).all())
    # A pure shift of up to 1 pixel moves the centre of mass by at most about a pixel.
    s = augment_batch(x, 1.0, 0.0, torch.Generator().manual_seed(2))
    cols = torch.arange(28.0)
    cx = (x.sum(2).squeeze(1) * cols).sum(1) / x.sum((1, 2, 3))
    sx = (s.sum(2).squeeze(1) * cols).sum(1) / s.sum((1, 2, 3))
    assert float((cx - sx).abs().max()) < 1.3


def test_onecycle_warms_up_then_anneals_and_new_knobs_are_checked() -> None:
    config = TrainConfig.from_params(
        {"lr": 0.01, "lr_schedule": "onecycle", "label_smoothing": 0.1, "augment_shift": 2}
    )
    assert (config.label_smoothing, config.augment_shift, config.augment_rotate) == (0.1, 2, 0)
    net = torch.nn.Linear(2, 2)
    opt = make_optimizer(config, net.parameters())
    sched = make_scheduler(config, opt, 100)
    assert sched is not None
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = max(range(100), key=lrs.__getitem__)
    assert 25 <= peak <= 35 and math.isclose(max(lrs), 0.01, rel_tol=1e-3)
    assert lrs[0] < 0.001 and lrs[-1] < 1e-4
    for bad in ({"label_smoothing": 0.5}, {"augment_shift": -1}, {"augment_rotate": 90}):
        with pytest.raises(SpaceError, match=next(iter(bad))):
            TrainConfig.from_params(bad)


def test_evaluate_study_stores_the_test_result_and_the_exported_model_reproduces_it(
    tiny: MnistData, tmp_path: Path
) -> None:
    space = hpo.SearchSpace(
        {"lr": hpo.Float(5e-3, 1e-2, log=True), "units": hpo.Int(32, 64)},
    )
    meta = {"model": "mlp", "budget": {"epochs": 2, "max_train_images": 200}}
    study = hpo.create_study(
        space=space,
        strategy="random",
        direction="maximize",
        storage=f"sqlite:///{tmp_path}/hpo.db",
        name="final",
        meta=meta,
    )
    objective = make_objective(meta)
    study.optimize(objective, n_trials=2)
    assert study.evaluation is None
    best = study.best_trial
    ev, _ = evaluate_study(study, data=tiny, model_dir=tmp_path / "models")
    assert ev.trial_number == best.number and ev.retrained
    assert ev.epochs == best.user_attrs["best_epoch"]
    assert ev.info["n_train"] == 200 + 800 and ev.info["n_test"] == 1000  # train + validation
    assert ev.info["test_source"].startswith("held out: 1,000")
    assert ev.info["val_accuracy"] == best.value
    matrix = torch.tensor(ev.confusion)
    assert int(matrix.sum()) == 1000 and bool((matrix.sum(1) == 100).all())
    assert ev.test_accuracy == int(matrix.trace()) / 1000 > 0.6  # chance is 0.1
    again = hpo.load_study("final", storage=f"sqlite:///{tmp_path}/hpo.db").evaluation
    assert again is not None and again.test_accuracy == ev.test_accuracy

    path = Path(ev.info["model_path"])
    assert path == tmp_path / "models" / "final.pt"
    net = load_model(path)
    assert not net.training
    loss, acc, confusion = score_model(net, tiny.test_x, tiny.test_y, 10)
    assert acc == ev.test_accuracy and confusion == [list(r) for r in ev.confusion]
    assert math.isclose(loss, ev.test_loss, rel_tol=1e-5)
    assert read_model_file(path)["params"] == dict(best.params)

    # --no-retrain repeats the trial's own run: the train split only, the same seed.
    ev2, _ = evaluate_study(study, data=tiny, retrain=False, model_dir=None)
    assert not ev2.retrained and ev2.info["n_train"] == 200 and ev2.info["model_path"] is None
    assert [e.id for e in study.evaluations] == [ev.id, ev2.id]


def test_bad_model_files_and_studies_without_a_model_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(HpoError, match="no model file at"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(HpoError, match="is not an hpo model file"):
        load_model(tmp_path / "junk.pt")
    study = hpo.create_study(space=hpo.SearchSpace({"x": hpo.Float(0, 1)}), strategy="random")
    study.optimize(lambda t: t.params["x"], n_trials=1)
    with pytest.raises(HpoError, match="has no model to evaluate"):
        evaluate_study(study)


def test_the_final_model_is_a_run_of_the_study_in_mlflow(
    tiny: MnistData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    from hpo.tracking import MlflowTracker

    study = hpo.create_study(
        space=hpo.SearchSpace({"units": hpo.Int(8, 16)}), strategy="random",
        direction="maximize", storage=f"sqlite:///{tmp_path}/hpo.db", name="tracked-final",
        meta={"model": "mlp"},
    )  # fmt: skip
    study.optimize(lambda t: 0.5, n_trials=1)
    ev, _ = evaluate_study(study, data=tiny, model_dir=tmp_path / "models")
    # A file store: no database to create and migrate (seconds under load); the mapping to
    # runs is the same as on a server (test_tracking.py covers the server).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    tracker = MlflowTracker(uri, background=False)
    run_id = tracker.log_final_model(study, ev, ev.info["model_path"])
    assert tracker.end_study(study)
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "final-model"
    assert run.data.tags["hpo.kind"] == "final" and run.data.tags["hpo.retrained"] == "true"
    assert run.data.tags["hpo.test_split"].startswith("held out")
    assert run.data.metrics["test_accuracy"] == ev.test_accuracy
    assert run.data.metrics["val_accuracy"] == 0.5
    assert run.data.params == {"units": str(study.best_trial.params["units"])}
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["hpo.kind"] == "study" and parent.info.status == "FINISHED"
    files = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "model")
    }
    assert {"confusion.json", "model/tracked-final.pt"} <= files
    local = client.download_artifacts(run_id, "model/tracked-final.pt", str(tmp_path))
    _, acc, _ = score_model(load_model(local), tiny.test_x, tiny.test_y, 10)
    assert acc == ev.test_accuracy
