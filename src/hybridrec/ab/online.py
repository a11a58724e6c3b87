"""An online experiment in the service: named variants (bundles, or a bundle whose lists come from a
baseline fitted on its own training ratings) with traffic shares, sticky assignment, optional
team-draft interleaving of two variants, and the event log their exposures and feedback go to.

Built from ``Settings.experiment`` (``serve.py ab=<file of configs/ab/>``); without one the service
runs as it always did and every response's variant is null.
"""

from __future__ import annotations

import copy
import logging
import random
import uuid
from dataclasses import dataclass

import numpy as np

from hybridrec.ab.assignment import Assignment, bucket
from hybridrec.ab.events import EXPOSURE, Event, EventLog
from hybridrec.ab.interleaving import team_draft
from hybridrec.errors import ConfigError, InvalidInputError, UnknownIdError
from hybridrec.inference.engine import RecommendationEngine
from hybridrec.service import ExplainedList, RecommendationService

log = logging.getLogger(__name__)


class ListsFrom:
    """A bundle's model whose lists come from ``lists`` (a baseline fitted on the bundle's own
    training ratings, the same list for everyone); ratings and everything else stay the bundle's."""

    def __init__(self, model, lists):
        self.model, self.lists = model, lists
        rows = np.asarray(lists.rank_scores(np.array([0, lists.n_users - 1])), dtype=np.float64)
        if not np.array_equal(rows[0], rows[-1]):
            raise ConfigError(
                f"the {lists.name} lists differ from user to user; a variant's lists must be the same for "
                "everyone (popularity), so that new users get them too"
            )
        self._row = rows[0]

    def __getattr__(self, name):
        return getattr(self.model, name)

    def rank_scores(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._row, (len(users), len(self._row))).copy()

    def text_user_scores(self, query):
        ratings, rank = self.model.text_user_scores(query)
        return ratings, self.rank_scores(np.zeros(len(rank), dtype=np.int64))


def with_lists(engine: RecommendationEngine, lists_config: dict) -> RecommendationEngine:
    """A copy of ``engine`` whose lists come from the baseline ``lists_config`` (a config of
    configs/model/), fitted on the bundle's own training ratings."""
    from omegaconf import OmegaConf

    from hybridrec.config import instantiate

    context = engine.bundle.context
    baseline = instantiate(OmegaConf.create(lists_config))(context=context).fit(context)
    variant = copy.copy(engine)
    variant.model = ListsFrom(engine.model, baseline)
    return variant


@dataclass
class Shown:
    """A list as the experiment showed it: rows, the variant of each, and the response's variant."""

    listed: ExplainedList
    rows: list[dict]
    variants: list[str]
    variant: str  # the variant, or "<first>+<second>" when interleaved


class OnlineExperiment:
    """The variants' services, who is assigned to which, and the log of what was shown and done."""

    def __init__(
        self,
        assignment: Assignment,
        services: dict[str, RecommendationService],
        event_log: EventLog,
        interleaving: bool = False,
    ):
        if interleaving and len(assignment.variants) != 2:
            raise ConfigError("interleaving takes exactly two variants")
        self.assignment, self.services, self.log, self.interleaving = (
            assignment,
            services,
            event_log,
            interleaving,
        )

    @property
    def name(self) -> str:
        return self.assignment.experiment

    def describe(self) -> dict:
        """What GET /experiment answers."""
        return {
            "name": self.name,
            "variants": [{"name": n, "share": s} for n, s in self.assignment.variants],
            "interleaving": self.interleaving,
        }

    def variants_for(self, unit: str) -> list[str]:
        """Whose lists a unit's request needs: its variant's, or both when interleaving."""
        return self.assignment.names if self.interleaving else [self.assignment.variant_of(unit)]

    def show(self, unit: str, lists: dict[str, ExplainedList], n: int) -> Shown:
        """The list a unit sees: its variant's, or the two variants' team-draft interleaved (the
        coin flips seeded by the unit, so its lists interleave the same way each time)."""
        if not self.interleaving:
            ((variant, listed),) = lists.items()
            rows = listed.rows()
            return Shown(listed, rows, [variant] * len(rows), variant)
        first, second = self.assignment.names
        rows = {name: {row["item_id"]: row for row in lists[name].rows()} for name in (first, second)}
        rng = random.Random(int(bucket(self.name, unit) * 2**53))
        drafted = team_draft(list(rows[first]), list(rows[second]), n, rng)
        names = (first, second)
        return Shown(
            lists[first],
            [rows[names[team]][item] for item, team in drafted],
            [names[team] for _, team in drafted],
            f"{first}+{second}",
        )

    def log_exposures(self, unit: str, shown: Shown) -> None:
        """Queue one exposure per film shown, without waiting for the commit (a clean shutdown
        writes them out; a crash may lose the last ones, which were never acknowledged)."""
        impression = uuid.uuid4().hex
        events = [
            Event(
                self.name,
                EXPOSURE,
                unit,
                variant,
                int(row["item_id"]),
                rank=rank,
                impression=impression,
                interleaved=self.interleaving,
            )
            for rank, (row, variant) in enumerate(zip(shown.rows, shown.variants, strict=True), start=1)
        ]
        if events:
            self.log.submit(events).add_done_callback(_report_failure)

    def feedback_event(self, unit: str, item_id: int, event: str, value, variant: str | None) -> Event:
        """A checked feedback event: a film some variant serves (404 otherwise), a variant of this
        experiment (422), a rating within the stars of the data (422). Without a variant it is the
        unit's own (when interleaving, the report finds it from what the unit was shown)."""
        if not any(_knows_item(s.engine, item_id) for s in self.services.values()):
            raise UnknownIdError(f"unknown item_id {item_id!r}")
        if variant is not None and variant not in self.services:
            raise InvalidInputError(
                f"unknown variant {variant!r}; experiment {self.name} has {', '.join(self.assignment.names)}"
            )
        if value is not None:
            scale = next(iter(self.services.values())).engine.bundle.context.rating_scale
            if not scale.min <= value <= scale.max:
                raise InvalidInputError(
                    f"a rating must lie within {scale.min:g}-{scale.max:g}, got {value:g}"
                )
        if variant is None and not self.interleaving:
            variant = self.assignment.variant_of(unit)
        return Event(self.name, event, unit, variant, int(item_id), value=value)

    def close(self) -> None:
        self.log.close()


def _knows_item(engine: RecommendationEngine, item_id: int) -> bool:
    try:
        engine.item_position(item_id)
    except UnknownIdError:
        return False
    return True


def _report_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("exposures were not logged: %s", future.exception())


def build_experiment(spec: dict, engine: RecommendationEngine, explainer, settings) -> OnlineExperiment:
    """The experiment of ``spec`` (``Settings.experiment``): each variant's bundle loaded once (null:
    the served one), with its lists replaced where the variant names a baseline for them."""
    from hybridrec.inference.engine import load_engine

    for key in ("name", "variants", "event_log"):
        if not spec.get(key):
            raise ConfigError(f"the experiment's {key} must be set")
    variants = spec["variants"]
    if not isinstance(variants, dict):
        raise ConfigError("the experiment's variants must map each name to its share, bundle and lists")
    assignment = Assignment(
        str(spec["name"]), tuple((str(name), float(v.get("share", 0))) for name, v in variants.items())
    )
    engines: dict[str | None, RecommendationEngine] = {None: engine}
    services = {}
    for name, variant in variants.items():
        unknown = set(variant) - {"share", "bundle", "lists"}
        if unknown:
            raise ConfigError(
                f"variant {name} has unknown settings {sorted(unknown)}; it takes share, bundle, lists"
            )
        path = variant.get("bundle")
        if path not in engines:
            engines[path] = load_engine(
                path,
                settings.search_root,
                settings.text_cache_size,
                settings.max_text_chars,
                text_budget_s=settings.text_budget_s,
            )
        served = engines[path]
        if variant.get("lists"):
            served = with_lists(served, variant["lists"])
        services[name] = RecommendationService(served, explainer)
    event_log = EventLog(
        spec["event_log"],
        {
            "name": assignment.experiment,
            "variants": dict(assignment.variants),
            "interleaving": bool(spec.get("interleaving")),
        },
    )
    log.info(
        "experiment %s: %s%s; events to %s",
        assignment.experiment,
        ", ".join(f"{n} {s:.0%}" for n, s in assignment.variants),
        " (team-draft interleaved)" if spec.get("interleaving") else "",
        event_log.path,
    )
    return OnlineExperiment(assignment, services, event_log, bool(spec.get("interleaving")))
