"""A gazetteer of model names found in the corpus, with aliases.

Names are found by shape, not by a list: tokens with inner capitals or digits
(ChatGLM-6B, QLoRA, GPT-3), and capitalised words the corpus never writes in lower
case (Vicuna, Alpaca). Spellings that differ only in case, hyphens or a size suffix
share one key: LLaMA / Llama / LLama -> "llama"; Vicuna-13B -> "vicuna13b", family "vicuna".
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from ingest.despin import despin

NAME_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*(?![A-Za-z0-9])")
SIZE_SUFFIX_RE = re.compile(r"(\d+(\.\d+)?[bmkt]|\d+x\d+b)$")
COMMON_WORDS = frozenset(
    [
        "the",
        "this",
        "that",
        "these",
        "those",
        "we",
        "our",
        "you",
        "your",
        "it",
        "its",
        "in",
        "on",
        "at",
        "to",
        "for",
        "of",
        "and",
        "or",
        "but",
        "with",
        "from",
        "by",
        "as",
        "an",
        "a",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "has",
        "have",
        "had",
        "not",
        "no",
        "yes",
        "if",
        "then",
        "than",
        "so",
        "such",
        "all",
        "any",
        "each",
        "more",
        "most",
        "other",
        "some",
        "can",
        "may",
        "will",
        "table",
        "figure",
        "note",
        "see",
        "also",
        "use",
        "using",
        "used",
        "how",
        "what",
        "which",
        "who",
        "when",
        "where",
        "why",
        "model",
        "models",
        "data",
        "training",
        "chinese",
        "english",
        "github",
        "paper",
        "code",
        "license",
        "readme",
        "http",
        "https",
        "www",
        "com",
        "html",
        "md",
    ]
)


def entity_key(name: str) -> str:
    """Canonical spelling: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", despin(name).lower())


def family_key(key: str) -> str:
    """Strip a size or version-size suffix: vicuna13b -> vicuna, llama27b stays llama27b."""
    stripped = SIZE_SUFFIX_RE.sub("", key)
    return stripped if len(stripped) >= 2 else key


def looks_like_name(token: str) -> bool:
    """Inner capitals, letters with digits, or a dotted name: ChatGLM, QLoRA, GPT-3, T5, llama.cpp."""
    if len(token) < 2:
        return False
    inner_upper = any(c.isupper() for c in token[1:])
    has_digit = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    dotted = bool(re.fullmatch(r"[A-Za-z]{2,}\.[A-Za-z]{2,4}", token))
    return inner_upper or has_digit or dotted


# A capital only says "name" in the middle of an English sentence or inside Chinese text (after a
# Chinese character or punctuation mark, or a colon closing Chinese: "图18:Sparrow"), not at the start
# of a sentence or heading.
MID_SENTENCE_RE = re.compile(r"([a-z,;(] |[\u4e00-\u9fff]\s?|[：，、（]\s?|[\u4e00-\u9fff0-9]:)$")


# "Claude 3", "LLaMA 2": a name and a version number written apart.
# Not "QLoRA 4-bit" or "QLoRA 4位": a unit after the number makes it a quantity, not a version.
NAME_VERSION_RE = re.compile(
    r"(?<![A-Za-z0-9])([A-Z][A-Za-z]+)[ -](\d{1,2}(?:\.\d)?)(?![\d.]*[0-9A-Za-z\u4e00-\u9fff])(?!-[A-Za-z])"
)


def candidate_names(text: str) -> Iterable[str]:
    text = despin(text)
    for match in NAME_RE.finditer(text):
        yield match.group(0).strip("-_.")
    for match in NAME_VERSION_RE.finditer(text):
        yield f"{match.group(1)} {match.group(2)}"


def candidate_names_in_context(text: str) -> Iterable[tuple[str, bool]]:
    """Name candidates with whether they stand mid-sentence."""
    text = despin(text)
    for match in NAME_RE.finditer(text):
        before = text[max(0, match.start() - 2) : match.start()]
        yield match.group(0).strip("-_."), bool(MID_SENTENCE_RE.search(before))


class Gazetteer:
    """Entity keys -> surface forms seen, and the families they belong to."""

    def __init__(self, names: dict[str, list[str]], vocabulary: set[str] | None = None):
        self.names = names  # key -> surface forms
        self.vocabulary = vocabulary or set(names)  # every name-like key the corpus contains
        self.families: dict[str, set[str]] = defaultdict(set)
        for key in names:
            self.families[family_key(key)].add(key)

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 2) -> Gazetteer:
        shaped: Counter = Counter()
        capitalised: Counter = Counter()
        lower: Counter = Counter()
        surfaces: dict[str, Counter] = defaultdict(Counter)
        versioned: set[str] = set()
        for text in texts:
            versioned.update(entity_key(f"{m.group(1)}{m.group(2)}") for m in NAME_VERSION_RE.finditer(despin(text)))
            for token, mid_sentence in candidate_names_in_context(text):
                key = entity_key(token)
                if not key or key in COMMON_WORDS or key.isdigit():
                    continue
                surfaces[key][token] += 1
                if looks_like_name(token):
                    shaped[key] += 1
                elif token[0].isupper():
                    if mid_sentence:
                        capitalised[key] += 1
                else:
                    lower[key] += 1
        names = {}
        vocabulary = set(surfaces) | versioned
        for key, forms in surfaces.items():
            # A name by shape (GPT-3, ChatGLM) counts at once; a capitalised word must recur.
            if shaped[key] == 0 and capitalised[key] < min_count:
                continue
            # A word written lower-case as often as not is a word, not a name.
            if shaped[key] == 0 and lower[key] * 4 > capitalised[key]:
                continue
            if shaped[key] == 0 and len(key) < 4:
                continue
            names[key] = [form for form, _ in forms.most_common(5)]
        return cls(names, vocabulary)

    def is_written_as_name(self, token: str, key: str) -> bool:
        """'vicuna' names Vicuna (the corpus never writes it in lower case); 'recipe' names nothing
        unless capitalised, since the corpus also uses it as a plain word."""
        if token[:1].isupper() or looks_like_name(token):
            return True
        return all(form[:1].isupper() or looks_like_name(form) for form in self.names[key])

    def find(self, text: str) -> list[str]:
        """Entity keys named in a text, in order of first mention, without repeats."""
        found: list[str] = []
        for token in candidate_names(text):
            key = entity_key(token)
            if key in self.names and key not in found and self.is_written_as_name(token, key):
                found.append(key)
        return found

    def unknown(self, text: str) -> list[str]:
        """Name-shaped words in a text that the corpus never mentions (e.g. GPT-5, Claude 3)."""
        missing: dict[str, str] = {}  # key -> first spelling, so "GPT-5" is not also reported as "GPT 5"
        for token in candidate_names(text):
            key = entity_key(token)
            name_like = looks_like_name(token) or " " in token
            if name_like and key and key not in self.vocabulary:
                missing.setdefault(key, token)
        return list(missing.values())

    def to_json(self) -> dict:
        return {"names": self.names, "vocabulary": sorted(self.vocabulary)}

    @classmethod
    def from_json(cls, data: dict) -> Gazetteer:
        return cls({k: list(v) for k, v in data["names"].items()}, set(data.get("vocabulary", [])))
