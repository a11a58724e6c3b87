"""Model bundles: everything needed to serve a trained model, with a checksummed manifest.

A bundle folder holds the resolved config, the weights (the hybrid's members, or a baseline's
fitted values), what the evidence terms learned that is costly to learn again, the blend weights,
the context the model was trained with (rating histories, frozen embeddings), the catalog and user
metadata, and ``manifest.json`` listing each file's sha256. It is written to a temporary folder and
renamed into place, so a bundle is either complete or absent; loading verifies every checksum first
and rebuilds the model without Lightning. Training writes bundles; inference only loads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import uuid
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from hybridrec import __version__
from hybridrec.constants import ITEM_COL, USER_COL
from hybridrec.data.context import FoldContext, Interactions, ProfileEmbeddings
from hybridrec.data.movielens import DEMOGRAPHIC_COLUMNS, RatingScale
from hybridrec.errors import HybridRecError
from hybridrec.io import file_sha256, replace_folder, staging_folder, write_json
from hybridrec.models.base import Recommender
from hybridrec.models.blend import BlendWeights
from hybridrec.models.ensemble import build_members
from hybridrec.models.recommender import HybridRecommender, fit_evidence

log = logging.getLogger(__name__)

FORMAT = "hybridrec-bundle/4"
MANIFEST = "manifest.json"
FILES = ("config.yaml", "weights.pt", "context.npz", "items.csv", "users.csv")
HYBRID_FILES = ("evidence.npz", "blend.json")  # the hybrid recommender's, beside FILES
# A bundle is data, not code: the only classes its config may name, and so the only code loading it
# may run (weights load with weights_only=True). One list, checked before anything is built.
ALLOWED_TARGETS = frozenset(
    [
        "hybridrec.models.hybrid.HybridRecModel",
        *(
            f"hybridrec.models.mappings.{m}Mapping"
            for m in ("Sigmoid", "Affine", "Ordinal", "Square", "Linear")
        ),
        "hybridrec.models.evidence.nearest_users.NearestKnownUsers",
        "hybridrec.models.evidence.item_item.ItemItem",
        "hybridrec.models.evidence.text_neighbours.TextNeighbours",
        "hybridrec.models.evidence.item_knn.ItemKNN",
        "hybridrec.models.evidence.tower_residuals.TowerResiduals",
        "hybridrec.models.evidence.cold_baseline.ColdBaseline",
        "hybridrec.models.evidence.cold_neighbours.ColdNeighbourRatings",
        "hybridrec.models.evidence.text_match.TextMatch",
        "hybridrec.models.evidence.named_films.NamedFilms",
        "hybridrec.models.evidence.asked_genres.AskedGenres",
        *(
            f"hybridrec.models.baselines.{b}"
            for b in (
                "GlobalMean",
                "Biases",
                "ItemKNN",
                "Popularity",
                "MatrixFactorization",
                "EASE",
                "GenreMean",
                "GenrePopularity",
            )
        ),
        *(
            f"hybridrec.models.text_baselines.{b}"
            for b in ("GenreKeywords", "NamedFilmNeighbours", "BM25Films")
        ),
        "hybridrec.embedders.minilm.MiniLMEmbedder",
        "hybridrec.embedders.hashing.HashingEmbedder",
        "hybridrec.embedders.static.StaticMiniLMEmbedder",
        "hybridrec.embedders.gemini.GeminiEmbedder",
    ]
)

DATA_NOTICE = (
    "This bundle holds the ratings it was trained on and (where the data set has them) the users' age, "
    "gender and occupation: built on MovieLens, whose licence forbids redistribution, it must not be shared."
)


class BundleError(HybridRecError):
    """A bundle is missing, incomplete or fails its checksums."""


@dataclass
class Bundle:
    """A verified, loaded bundle."""

    path: Path
    manifest: dict
    config: DictConfig
    context: FoldContext
    seen: Interactions  # every rating the model was trained on: what a user has already seen
    items: pd.DataFrame
    users: pd.DataFrame
    model: Recommender

    @property
    def bundle_id(self) -> str:
        return self.manifest["bundle_id"]


def save_bundle(
    target: Path,
    cfg: DictConfig,
    model: Recommender,
    context: FoldContext,
    seen: Interactions,
    items: pd.DataFrame,
    users: pd.DataFrame,
    metrics: dict | None = None,
    split: dict | None = None,
) -> Path:
    """Write a bundle beside ``target`` and put it in place whole (an older bundle there stays whole
    until then); ``split`` says what it was trained on (protocol and fold: the test part of that fold
    is what it may be evaluated on; ``all`` for the final fit)."""
    target = Path(target)
    tmp = staging_folder(target)
    try:
        (tmp / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        files = FILES
        if isinstance(model, HybridRecommender):
            torch.save(model.nets.state_dict(), tmp / "weights.pt")
            states = {f"{name}/{key}": v for name, t in model.terms.items() for key, v in t.state().items()}
            np.savez(tmp / "evidence.npz", **states)
            write_json(tmp / "blend.json", model.blend.as_dict())
            files = FILES + HYBRID_FILES
        else:
            torch.save(model.state_dict(), tmp / "weights.pt")
        arrays = {
            "fit_users": context.fit.users,
            "fit_items": context.fit.items,
            "fit_ratings": context.fit.ratings,
            "global_mean": np.array(context.global_mean),
            "n_users": np.array(context.n_users),
            "n_items": np.array(context.n_items),
            "rating_scale": np.array(astuple(context.rating_scale)),  # what inference clips to
        }
        if context.embeddings is not None:
            arrays.update(
                emb_user=context.embeddings.user,
                emb_user_demographic=context.embeddings.user_demographic,
                emb_item=context.embeddings.item,
                emb_genres=context.embeddings.genres,
                **(
                    {}
                    if context.embeddings.user_described is None
                    else {"emb_user_described": context.embeddings.user_described}
                ),
                genre_names=np.array(context.embeddings.genre_names),
                embedder=np.array(context.embeddings.embedder),
            )
        if len(seen) != len(context.fit) or not np.array_equal(seen.items, context.fit.items):
            # (only when validation was carved from the final fit: the films seen beyond those fitted)
            arrays.update(seen_users=seen.users, seen_items=seen.items, seen_ratings=seen.ratings)
        np.savez(tmp / "context.npz", **arrays)
        catalog = items.assign(genres=items["genres"].map("|".join))
        columns = [ITEM_COL, "title", "display_title", "year", "genres"]
        if "tags" in items and items["tags"].map(len).any():  # 10M and later: a JSON list per film
            catalog["tags"] = items["tags"].map(lambda tags: json.dumps(list(tags), ensure_ascii=False))
            columns.append("tags")
        catalog[columns].to_csv(tmp / "items.csv", index=False)
        demographics = [c for c in DEMOGRAPHIC_COLUMNS if c in users]  # those the data set has
        users[[USER_COL, *demographics]].to_csv(tmp / "users.csv", index=False)
        manifest = {
            "format": FORMAT,
            "bundle_id": f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}",
            "created": time.time(),
            "hybridrec_version": __version__,
            "torch_version": torch.__version__,
            "model": OmegaConf.select(cfg, "model._target_"),
            "embedder": context.embeddings.embedder if context.embeddings is not None else None,
            "n_users": context.n_users,
            "n_items": context.n_items,
            "rating_scale": asdict(context.rating_scale),
            "split": split or {"protocol": "all", "fold": 0},
            "metrics": metrics or {},
            "data_notice": DATA_NOTICE,
            "files": {name: file_sha256(tmp / name) for name in files},
        }
        manifest["checksum"] = _manifest_checksum(manifest)
        write_json(tmp / MANIFEST, manifest)
        replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved model bundle %s to %s", manifest["bundle_id"], target)
    return target


def _manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest without its own checksum, keys sorted: a changed manifest shows."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def verify_bundle(path: Path) -> dict:
    """The manifest of a complete bundle (its own checksum right, every file a loader reads listed and
    matching its checksum, its config naming only allowed classes), else BundleError."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"no model bundle at {path} (no {MANIFEST}); train one with `make train`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as err:
        raise BundleError(f"model bundle at {path} has an unreadable manifest: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleError(f"model bundle at {path} has format {found!r}, expected {FORMAT}")
    if manifest.get("checksum") != _manifest_checksum(manifest):
        raise BundleError(f"model bundle at {path} is corrupt: its manifest does not match its checksum")
    files = manifest.get("files")
    required = FILES + (
        HYBRID_FILES if "blend.json" in (files or {}) or (path / "blend.json").exists() else ()
    )
    if not isinstance(files, dict) or set(required) - set(files):
        missing = sorted(set(required) - set(files or {}))
        raise BundleError(
            f"model bundle at {path} is incomplete: its manifest does not list {', '.join(missing)}"
        )
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"model bundle at {path} is incomplete: {name} is missing")
        if file_sha256(file) != expected:
            raise BundleError(f"model bundle at {path} is corrupt: {name} does not match its checksum")
    check_targets(OmegaConf.load(path / "config.yaml"), path)
    return manifest


def check_targets(config: DictConfig, path: Path) -> None:
    """Refuse a bundle whose config names a class outside ``ALLOWED_TARGETS`` where loading builds."""

    def walk(node, where: str) -> None:
        if isinstance(node, DictConfig):
            target = node.get("_target_")
            if target is not None and target not in ALLOWED_TARGETS:
                raise BundleError(
                    f"model bundle at {path} names {target} at {where}, which a bundle may not build"
                )
            for key in node:
                walk(node[key], f"{where}.{key}")

    model = config.get("model")
    built = [
        "model.net" if isinstance(model, DictConfig) and "net" in model else "model",
        "evidence",
        "embedder",
    ]
    for part in built:  # what loading builds: the hybrid's members (not its trainer), or a baseline
        walk(OmegaConf.select(config, part), part)


def find_bundle(path: str | Path | None, search_root: str | Path) -> Path:
    """``path`` (a bundle folder, or a run folder holding ``bundle/``), else the newest bundle under ``search_root``."""
    if path:
        path = Path(path).expanduser()
        for candidate in (path, path / "bundle"):
            if (candidate / MANIFEST).is_file():
                return candidate
        raise BundleError(
            f"no model bundle at {path}; pass a bundle folder or a training run folder that holds one"
        )
    manifests = sorted(Path(search_root).glob(f"**/bundle/{MANIFEST}"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        raise BundleError(f"no model bundle found under {search_root}; train one with `make train`")
    return manifests[-1].parent


def load_bundle(path: Path) -> Bundle:
    """Verify and load a bundle; the model is rebuilt from its config, weights and fitted evidence."""
    path = Path(path)
    manifest = verify_bundle(path)
    try:
        config = OmegaConf.load(path / "config.yaml")
        arrays = np.load(path / "context.npz")
        n_users, n_items = int(arrays["n_users"]), int(arrays["n_items"])
        fit = Interactions(arrays["fit_users"], arrays["fit_items"], arrays["fit_ratings"], n_users, n_items)
        seen = fit
        if "seen_users" in arrays:
            seen = Interactions(
                arrays["seen_users"], arrays["seen_items"], arrays["seen_ratings"], n_users, n_items
            )
        embeddings = None
        if "emb_item" in arrays:
            embeddings = ProfileEmbeddings(
                embedder=str(arrays["embedder"]),
                user=arrays["emb_user"],
                user_demographic=arrays["emb_user_demographic"],
                item=arrays["emb_item"],
                genres=arrays["emb_genres"],
                genre_names=tuple(str(g) for g in arrays["genre_names"]),
                user_described=arrays.get("emb_user_described"),
            )
        items = pd.read_csv(
            path / "items.csv", keep_default_na=False, dtype={"title": str, "display_title": str}
        )
        items["genres"] = items["genres"].map(lambda g: tuple(g.split("|")) if g else ())
        items["tags"] = (
            items["tags"].map(lambda t: tuple(json.loads(t))) if "tags" in items else [()] * len(items)
        )
        items["year"] = pd.to_numeric(items["year"], errors="coerce").astype("Int16")
        catalog = items.sort_values(ITEM_COL, ignore_index=True)
        scale = RatingScale(*arrays["rating_scale"].tolist())
        context = FoldContext(fit, embeddings, float(arrays["global_mean"]), scale, catalog)
        users = pd.read_csv(path / "users.csv", keep_default_na=False)
        weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        model = _rebuild(path, config, context, weights)
    except BundleError:
        raise
    except Exception as err:  # a bundle that passed its checksums but cannot be rebuilt
        raise BundleError(f"model bundle at {path} could not be loaded: {type(err).__name__}: {err}") from err
    return Bundle(path, manifest, config, context, seen, items, users, model)


def _rebuild(path: Path, config: DictConfig, context: FoldContext, weights: dict) -> Recommender:
    """The hybrid recommender (members, fitted evidence, blend), or a baseline with its fitted values."""
    from hybridrec.config import instantiate

    if "net" not in config.model:  # a baseline
        model = instantiate(config.model)(context=context)
        model.load_state_dict(weights)
        model.eval()
        return model
    nets = build_members(
        instantiate(config.model.net),
        context,
        int(config.model.members),
        ranking=config.model.rank_weight > 0,
    )
    nets.load_state_dict(weights)
    nets.eval()
    blend = BlendWeights.from_config(json.loads((path / "blend.json").read_text()))
    saved = np.load(path / "evidence.npz")
    states: dict[str, dict] = {}
    for key in saved.files:
        name, part = key.split("/", 1)
        states.setdefault(name, {})[part] = saved[key]
    terms, nearest = fit_evidence(instantiate(config.evidence), blend, context, states)
    return HybridRecommender(nets, terms, nearest, blend)
