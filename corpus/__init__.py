"""The default corpus shipped with llm-atlas: documents plus a manifest of their provenance."""

from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = CORPUS_DIR / "manifest.json"
