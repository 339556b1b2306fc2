"""Settings of the interfaces (HTTP service, Slack bot), from the environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from rag.settings import RagSettings


class ServerSettings(RagSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_ATLAS_", extra="ignore", populate_by_name=True)

    api_key: str | None = Field(default=None, description="Bearer key required on /v1/* when set.")
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(default=64_000, description="Larger request bodies get 413.")
    rate_limit_per_minute: int = Field(default=0, ge=0, description="Requests per client per minute; 0 = off.")

    slack_bot_token: str | None = Field(default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET"))
    slack_app_token: str | None = Field(default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN"))
    slack_api_url: str | None = Field(default=None, validation_alias=AliasChoices("SLACK_API_URL"))
