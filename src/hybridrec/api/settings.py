"""Service settings, from the environment (``HYBRIDREC_*``); ``serve.py`` turns its Hydra config into them."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HYBRIDREC_", extra="ignore")

    bundle: str | None = Field(
        None, description="bundle folder, or a run folder holding one; None: the newest"
    )
    search_root: str = Field("outputs", description="where the newest bundle is looked for")
    text_cache_size: int = Field(10_000, ge=1, description="users' texts whose embeddings are kept in memory")
    text_budget_s: float = Field(10.0, gt=0, description="time a remote embedder gets per user text")
    rate_limit: str | None = Field("600/minute", description="requests per client address; empty: no limit")
    cold_start_slots: int = Field(2, ge=1, description="new users' texts embedded at once")
    cold_start_wait_s: float = Field(2.0, ge=0, description="wait for a cold-start slot before 503")
    explanation_cache: str | None = Field(None, description="SQLite cache for Gemini explanations")
    explainer: dict = Field(
        default_factory=lambda: {"_target_": "hybridrec.explain.grounded.GroundedExplainer"},
        description="Hydra-style config of the explainer (JSON in the environment)",
    )
    max_text_chars: int = Field(2000, ge=1, description="longest accepted user text")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="larger request bodies get 413")
    body_timeout_s: float = Field(10.0, gt=0, description="a body not in after this long gets 408")
    cors_origins: list[str] = Field(default_factory=list, description="allowed CORS origins; empty: CORS off")
    experiment: dict | None = Field(
        None,
        description="an A/B experiment (JSON in the environment): name, variants {name: {share, bundle, "
        "lists}}, interleaving, event_log; None: none runs",
    )

    @field_validator("rate_limit")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


@lru_cache
def get_settings() -> Settings:
    return Settings()
