"""The answer contract shared by `ask --json`, `llm-atlas eval`, the HTTP API and the Slack bot."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class Passage(BaseModel):
    """A retrieved chunk as shown to the answerer; `n` is its citation number."""

    n: int
    chunk_id: str
    doc_id: str
    title: str
    url: str
    section: list[str] = Field(default_factory=list)
    language: str
    start: int
    end: int
    text: str
    context: str = ""
    score: float = 0.0
    entities: list[str] = Field(default_factory=list)

    @property
    def section_path(self) -> str:
        return " > ".join(self.section)


class Citation(BaseModel):
    n: int = Field(description="The [n] marker in the answer; equals the passage's position in contexts.")
    title: str
    url: str
    section: str
    quote: str = Field(description="Exact text of the cited span in the cleaned source document.")
    doc_id: str
    start: int = Field(description="Offset of the quote in the cleaned document text.")
    end: int


class Context(BaseModel):
    text: str
    title: str
    url: str


class Answer(BaseModel):
    answer: str
    answered: bool
    citations: list[Citation] = Field(default_factory=list)
    contexts: list[Context] = Field(default_factory=list)
    mode: Literal["extractive", "llm", "refusal"] = "extractive"
    notice: str | None = Field(default=None, description="E.g. why the LLM was not used.")
    query: str | None = Field(default=None, description="The standalone query actually searched.")
    timings: dict[str, float] = Field(default_factory=dict)

    def public(self, id: str | None = None) -> dict:
        """The `ask --json` / eval line shape."""
        out: dict = {} if id is None else {"id": id}
        out.update(
            answer=self.answer,
            answered=self.answered,
            citations=[c.model_dump() for c in self.citations],  # with doc_id and offsets, to highlight
            contexts=[c.model_dump() for c in self.contexts],
        )
        return out
