"""Training and cross-validation through the real configs, on the synthetic data set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hybridrec.bundle import find_bundle, load_bundle
from hybridrec.constants import ITEM_COL, PREDICTION_COL, RATING_COL, TRAIN_RATINGS_COL, USER_COL
from hybridrec.embedders.factory import build_embedder, build_run_embedder
from hybridrec.errors import ConfigError
from hybridrec.evaluation.cross_validation import run_cross_validation
from hybridrec.evaluation.fold_workers import fold_workers, thread_plan
from hybridrec.training import fit_fold
from hybridrec.training.final_fit import train_and_save_bundle


def _embedder(cfg):
    return build_embedder(cfg.embedder, None)


@pytest.mark.parametrize("mapping", ["square", "linear", "sigmoid", "affine"])
@pytest.mark.parametrize("id_emb_dim", [0, 8])
def test_one_fold_trains_for_each_mapping(compose_train, tmp_path, mapping, id_emb_dim):
    cfg = compose_train(
        f"model/net/mapping={mapping}", f"model.net.id_emb_dim={id_emb_dim}", "trainer.max_epochs=2"
    )
    fitted = fit_fold(cfg, "canonical", 1, _embedder(cfg), tmp_path / "fold", "run", "run-fold1")
    assert fitted.epochs == 2
    predictions = fitted.model.predict(fitted.datamodule.test.users, fitted.datamodule.test.items)
    assert predictions.shape == (len(fitted.datamodule.test),)
    assert predictions.min() >= 1.0 and predictions.max() <= 5.0


def test_by_default_the_model_fits_the_whole_training_part(compose_train, tmp_path):
    """No validation carve-out: every training rating is fitted, for trainer.max_epochs, last weights kept."""
    cfg = compose_train("trainer.max_epochs=2")
    fitted = fit_fold(cfg, "canonical", 1, _embedder(cfg), tmp_path / "fold", "run", "run-fold1")
    dm = fitted.datamodule
    assert not dm.has_validation and len(dm.context.fit) == len(dm.split.train)
    assert fitted.epochs == 2 and fitted.best_epoch is None and fitted.val_metrics == {}
    assert list(fitted.history["epoch"]) == [1, 2] and fitted.history["train/loss"].notna().all()
    assert not (tmp_path / "fold" / "checkpoints").exists()


def test_a_validation_carve_out_chooses_the_weights(compose_train, tmp_path):
    """With data.val_fraction > 0 the fitting ratings exclude validation, which picks the best epoch."""
    cfg = compose_train("data.val_fraction=0.1", "trainer.max_epochs=3")
    fitted = fit_fold(cfg, "canonical", 1, _embedder(cfg), tmp_path / "fold", "run", "run-fold1")
    dm = fitted.datamodule
    assert dm.has_validation and len(dm.context.fit) + len(dm.val) == len(dm.split.train)
    history = fitted.history.set_index("epoch")
    assert fitted.epochs == 3 and fitted.best_epoch == history["val/rmse"].idxmin()
    assert fitted.val_metrics["val/rmse"] == pytest.approx(history["val/rmse"].min(), rel=1e-4)


def test_training_learns_the_synthetic_tastes(compose_train, tmp_path):
    cfg = compose_train("trainer.max_epochs=40", "model.optimizer.lr=0.01")
    fitted = fit_fold(cfg, "canonical", 1, _embedder(cfg), tmp_path / "fold", "run", "run-fold1")
    dm = fitted.datamodule
    rmse = float(
        np.sqrt(np.mean((fitted.model.predict(dm.test.users, dm.test.items) - dm.test.ratings) ** 2))
    )
    baseline = float(np.sqrt(np.mean((dm.context.global_mean - dm.test.ratings) ** 2)))
    assert rmse < 0.8 * baseline, f"model RMSE {rmse:.3f} vs global mean {baseline:.3f}"


def test_cross_validation_writes_a_correct_summary(compose_train):
    cfg = compose_train("cv.folds=[1,2]", "data.val_fraction=0.1")
    result = run_cross_validation(cfg, _embedder(cfg))
    run_dir = Path(cfg.paths.output_dir)
    summary = json.loads((run_dir / "cv_summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    assert [row["fold"] for row in summary["folds"]] == [1, 2]
    for key in ("fold", "test/rmse", "test/mae", "val/rmse", "epochs", "train_seconds", "test/ndcg@10"):
        assert all(key in row for row in summary["folds"])
    per_fold = []
    for row in summary["folds"]:
        predictions = pd.read_csv(f"{run_dir}/folds/{row['fold']}/test_predictions.csv")
        assert list(predictions.columns) == [
            USER_COL,
            ITEM_COL,
            RATING_COL,
            PREDICTION_COL,
            TRAIN_RATINGS_COL,
        ]
        rmse = float(np.sqrt(np.mean((predictions[PREDICTION_COL] - predictions[RATING_COL]) ** 2)))
        assert rmse == pytest.approx(row["test/rmse"], abs=1e-5)
        per_fold.append(rmse)
    assert summary["test/rmse_mean"] == pytest.approx(np.mean(per_fold), abs=1e-5)
    assert summary["test/rmse_std"] == pytest.approx(np.std(per_fold, ddof=1), abs=1e-5)
    assert "mean ± std" in (run_dir / "cv_summary.md").read_text()
    assert result.monitor_mean == pytest.approx(np.mean([r["val/rmse"] for r in summary["folds"]]))


def test_same_seed_same_numbers(compose_train):
    first = run_cross_validation(compose_train("cv.folds=[1]"), _embedder(compose_train()))
    second = run_cross_validation(compose_train("cv.folds=[1]"), _embedder(compose_train()))
    other = run_cross_validation(compose_train("cv.folds=[1]", "seed=7"), _embedder(compose_train()))
    keys = ("test/rmse", "test/mae", "test/ndcg@10")
    assert [first.rows[0][k] for k in keys] == [second.rows[0][k] for k in keys]
    assert first.rows[0]["test/rmse"] != other.rows[0]["test/rmse"]


def test_wrong_monitor_name_is_a_clear_error(compose_train, tmp_path):
    cfg = compose_train("monitor.metric=val/rsme")
    with pytest.raises(ConfigError, match="monitor.metric=val/rsme is not logged by this model"):
        fit_fold(cfg, "canonical", 1, _embedder(cfg), tmp_path / "fold", "run", "run-fold1")


def test_bundle_reloads_with_the_same_predictions(compose_train):
    cfg = compose_train("trainer.max_epochs=2")
    bundle_dir = train_and_save_bundle(cfg, _embedder(cfg))
    assert find_bundle(None, cfg.paths.output_dir) == bundle_dir
    assert find_bundle(cfg.paths.output_dir, "/nonexistent") == bundle_dir
    bundle = load_bundle(bundle_dir)
    weights = torch.load(bundle_dir / "weights.pt", weights_only=True)
    assert set(weights) == set(bundle.model.nets.state_dict())
    users = np.arange(bundle.context.n_users)
    items = (users * 7) % bundle.context.n_items
    again = load_bundle(bundle_dir).model
    assert np.array_equal(bundle.model.predict(users, items), again.predict(users, items))
    # the evidence terms come back as fitted: what is costly from the bundle, the rest from its data
    assert {"item_item", "item_knn", "tower_residuals"} <= set(bundle.model.terms)
    np.testing.assert_allclose(bundle.model.rank_scores(users), again.rank_scores(users), rtol=1e-6)
    assert len(bundle.seen) == len(bundle.items) * 0 + bundle.seen.ratings.size
    assert bundle.manifest["n_items"] == len(bundle.items)


@pytest.mark.parametrize("val_fraction", [0.0, 0.1])
def test_changing_test_ratings_changes_nothing_learned(
    compose_train, synthetic_data_dir, tmp_path, val_fraction
):
    """Leak check: rewrite every test rating of fold 1; the learned model must be identical."""
    altered = tmp_path / "altered"
    shutil.copytree(synthetic_data_dir, altered)
    folder = altered / "ml-100k"
    test = pd.read_csv(
        folder / "u1.test", sep="\t", header=None, names=[USER_COL, ITEM_COL, RATING_COL, "ts"]
    )
    test[RATING_COL] = 6 - test[RATING_COL]  # 1 <-> 5, 2 <-> 4
    test.to_csv(folder / "u1.test", sep="\t", header=False, index=False)
    data = pd.read_csv(folder / "u.data", sep="\t", header=None, names=[USER_COL, ITEM_COL, RATING_COL, "ts"])
    key = data[USER_COL] * 10_000 + data[ITEM_COL]
    flipped = key.isin(test[USER_COL] * 10_000 + test[ITEM_COL])
    data.loc[flipped, RATING_COL] = 6 - data.loc[flipped, RATING_COL]
    data.to_csv(folder / "u.data", sep="\t", header=False, index=False)

    fitted = []
    for data_dir in (synthetic_data_dir, altered):
        cfg = compose_train(f"data.val_fraction={val_fraction}", data_dir=data_dir)
        fitted.append(fit_fold(cfg, "canonical", 1, _embedder(cfg), tmp_path / data_dir.name, "run", "fold1"))
    original, changed = (f.model.nets.state_dict() for f in fitted)
    assert all(torch.equal(original[k], changed[k]) for k in original)
    assert fitted[0].val_metrics == fitted[1].val_metrics
    test = fitted[0].datamodule.test  # the same pairs in both; the terms too learned nothing of them
    for method, args in (("predict", (test.users, test.items)), ("rank_scores", (np.unique(test.users),))):
        np.testing.assert_array_equal(
            getattr(fitted[0].model, method)(*args), getattr(fitted[1].model, method)(*args)
        )
    assert not np.array_equal(fitted[0].datamodule.test.ratings, fitted[1].datamodule.test.ratings)


@pytest.mark.slow  # subprocesses or worker processes: `make test-all`
def test_ddp_on_two_cpu_processes(compose_train, tmp_path):
    """The ddp_cpu trainer config trains data-parallel over two CPU processes (gloo), without a GPU."""
    cfg = compose_train("trainer=ddp_cpu", "trainer.max_epochs=2")
    fitted = fit_fold(cfg, "canonical", 1, _embedder(cfg), tmp_path / "fold", "run", "run-fold1")
    assert fitted.epochs == 2 and fitted.best_epoch is None  # the last weights came back from rank 0
    assert list(fitted.history["epoch"]) == [1, 2]  # written by rank 0, read here
    predictions = fitted.model.predict(fitted.datamodule.test.users, fitted.datamodule.test.items)
    assert np.isfinite(predictions).all() and predictions.min() >= 1.0


@pytest.mark.slow  # subprocesses or worker processes: `make test-all`
def test_folds_in_worker_processes_give_the_numbers_of_folds_one_after_another(compose_train, tmp_path):
    """fold_workers=2: every fold is seeded on its own, so where it runs changes nothing but rounding;
    rows, files and the embedding statistics come back as from one process, in fold order."""
    sequential = run_cross_validation(compose_train("cv.folds=[1,2,3]"), _embedder(compose_train()))
    cfg = compose_train("cv.folds=[1,2,3]", "fold_workers=2")
    cfg.paths.output_dir = str(tmp_path / "parallel")
    embedder = build_run_embedder(cfg)
    parallel = run_cross_validation(cfg, embedder)
    assert [row["fold"] for row in parallel.rows] == [1, 2, 3]
    for one, other in zip(sequential.rows, parallel.rows, strict=True):
        for key in ("test/rmse", "test/mae", "test/ndcg@10"):
            assert other[key] == pytest.approx(one[key], rel=1e-3), (one["fold"], key)
    for fold in (1, 2, 3):
        assert (tmp_path / "parallel" / "folds" / str(fold) / "test_predictions.csv").is_file()
    assert embedder.total.requested > 0  # the workers' embedding, counted here


def test_a_fold_failing_in_a_worker_raises_its_own_error(compose_train):
    cfg = compose_train(
        "cv.folds=[1,2]", "fold_workers=2", "monitor.metric=val/nonsense", "data.val_fraction=0.1"
    )
    with pytest.raises(ConfigError, match="val/nonsense"):
        run_cross_validation(cfg, _embedder(cfg))


@pytest.mark.parametrize(
    ("folds", "workers", "threads", "plan"),
    [(5, 2, 2, [1, 1, 1, 1, 2]), (5, 2, 8, [4, 4, 4, 4, 8]), (4, 2, 2, [1, 1, 1, 1]), (3, 3, 2, [1, 1, 1])],
)
def test_a_last_partial_round_of_folds_shares_all_threads(folds, workers, threads, plan):
    assert thread_plan(folds, workers, threads) == plan


def test_fold_workers_is_checked_and_left_to_a_ddp_trainer(compose_train):
    with pytest.raises(ConfigError, match="fold_workers"):
        fold_workers(compose_train("fold_workers=0"), 5)
    assert fold_workers(compose_train("fold_workers=4"), 2) == 2
    assert fold_workers(compose_train("fold_workers=2", "trainer=ddp"), 5) == 1


def test_configured_callbacks_run_without_a_validation_carve_out(compose_train, tmp_path):
    """Only the callbacks that watch a validation metric are left out when none is carved."""
    touched = tmp_path / "touched"
    cfg = compose_train(
        "trainer.max_epochs=2",
        "+callbacks.touch._target_=synthetic.Touch",
        f"+callbacks.touch.path={touched}",
    )
    fit_fold(cfg, "canonical", 1, _embedder(cfg), tmp_path / "fold", "run", "run-fold1")
    assert touched.read_text() == "trained"


def test_the_python_api_cross_validates_with_the_configs(synthetic_data_dir, tmp_path):
    """``from hybridrec import cross_validate``: train.py's configs and overrides, from code."""
    from conftest import TINY

    import hybridrec

    result = hybridrec.cross_validate(
        *TINY,
        "cv=fold",
        "final_fit=false",
        f"data.data_dir={synthetic_data_dir}",
        output_dir=tmp_path / "run",
    )
    assert result.rows[0]["fold"] == 1 and np.isfinite(result.summary["test/rmse_mean"])
    assert (tmp_path / "run" / "cv_summary.json").is_file()
