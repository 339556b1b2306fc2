"""Settings for answering, read from LLM_ATLAS_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ingest.settings import IngestSettings


class RagSettings(IngestSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_ATLAS_", extra="ignore")

    top_k: int = Field(default=5, ge=1, le=20, description="Passages shown to the answerer and returned.")
    max_question_chars: int = Field(default=2000, ge=10, description="Longer questions are refused.")
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint, e.g. http://localhost:8080/v1"
    )
    llm_api_key: str | None = Field(default=None, description="API key for the LLM endpoint.")
    llm_model: str = Field(default="gpt-4o-mini", description="Model name sent to the endpoint.")
    llm_timeout: float = Field(default=30.0, gt=0, description="Seconds before falling back to extractive.")
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    llm_max_tokens: int = Field(default=600, ge=16, description="Longest answer the LLM may write.")
    use_llm: bool | None = Field(default=None, description="Force the LLM on/off; default: on when an endpoint is set.")

    @property
    def llm_enabled(self) -> bool:
        return self.use_llm if self.use_llm is not None else bool(self.llm_base_url)
