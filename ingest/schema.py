"""The contracts between ingest stages: a loaded source, a cleaned document, a chunk."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RawSource(BaseModel):
    """A file or URL as loaded, before cleaning."""

    source: str = Field(description="File path or URL it came from.")
    content: str = Field(description="Decoded text (HTML, markdown or plain text).")
    format: str = Field(description="html, markdown, text or pdf.")
    title: str | None = None
    url: str | None = None
    license: str | None = None
    language: str | None = None
    sha256: str = Field(description="Hash of the raw bytes: the key for incremental ingest.")


class Document(BaseModel):
    """A cleaned document. Chunk offsets point into `text`, so citations can quote exact spans."""

    doc_id: str
    title: str
    url: str
    source: str
    language: str
    license: str | None = None
    sha256: str
    text: str
    raw_chars: int = 0


class Chunk(BaseModel):
    """A retrievable span of a document, with the structure it sits in."""

    chunk_id: str
    doc_id: str
    title: str
    url: str
    section: list[str] = Field(default_factory=list, description="Breadcrumb of headings above the span.")
    language: str
    start: int = Field(description="Offset of the span in the cleaned document text.")
    end: int
    text: str = Field(description="Exactly document.text[start:end].")
    context: str = Field(default="", description="Text the span needs to be read alone, e.g. a table header.")

    @property
    def section_path(self) -> str:
        return " > ".join(self.section)

    def embed_text(self) -> str:
        """What gets embedded and lexically indexed: title and section first, so a passage
        that never names its subject is still found by it."""
        head = self.title if not self.section else f"{self.title} > {self.section_path}"
        parts = [head, self.context, self.text] if self.context else [head, self.text]
        return "\n".join(parts)
