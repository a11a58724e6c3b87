"""Service settings, from the environment (``HYBRIDREC_*``); ``serve.py`` turns its Hydra config into them."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HYBRIDREC_", extra="ignore")

    bundle: str | None = Field(
        None, description="bundle folder, or a run folder holding one; None: the newest"
    )
    search_root: str = Field("outputs", description="where the newest bundle is looked for")
    embedding_cache: str | None = Field(None, description="SQLite cache for text embeddings (None: no cache)")
    explanation_cache: str | None = Field(None, description="SQLite cache for Gemini explanations")
    explainer: dict = Field(
        default_factory=lambda: {"_target_": "hybridrec.explain.grounded.GroundedExplainer"},
        description="Hydra-style config of the explainer (JSON in the environment)",
    )
    max_text_chars: int = Field(2000, ge=1, description="longest accepted user text")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="larger request bodies get 413")
    body_timeout_s: float = Field(10.0, gt=0, description="a body not in after this long gets 408")
    cors_origins: list[str] = Field(default_factory=list, description="allowed CORS origins; empty: CORS off")


@lru_cache
def get_settings() -> Settings:
    return Settings()
