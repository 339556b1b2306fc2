"""Model fact sheets: each model's key facts, extracted offline, each value cited to an exact span.

`extract_facts(doc)` is a pure function of one cleaned document, so ingest can re-extract only the
documents that changed. Facts come from six shapes of text:

  table        markdown rows (`| a | b |`, with or without edge pipes): a header names the attribute,
               a row or a column names the model
  flat_table   tables whose separators were lost (`Encoder-OnlyBERT110M, 340M2018-137B`): the header
               is split by known column names and each row is parsed back by the shape of its cells
  front_matter YAML at the top of a model card (`license: mit`): the model is the card's model
  list         a post listing models as a name line followed by a one-line description
  key_value    `Context Length: 2048`, `- **License:** Apache 2.0`, `参数量：62亿`, a bold label or a
               heading with its value on the next line
  prose        sentence patterns in English and Chinese (`fine-tuned from LLaMA`, `62 亿参数`)

Matching runs on a despun view of the text (ingest.despin: same length, so offsets carry over);
`value` and `quote` are always substrings of the cleaned text itself. The subject of a sentence is a
model named before the pattern in the same clause or sentence (not one that is an object there:
"fine-tuning LLaMA", "outperforms Llama 2"), else the model its paragraph opens with, its list item's
(or dated update entry's), its section heading's or the document's model. Precision comes first: a
value is emitted only where the shape says what it is, and a fact whose model is unclear is dropped.

Gathering, conflicts and lookups are the fact store's (`ingest.fact_store`).
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache

from ingest.despin import despin
from ingest.entities import COMMON_WORDS
from ingest.fact_store import ATTRIBUTES, Fact, FactStore, Normalized
from ingest.names import NOT_MODELS, alias_table, is_stop, model_key, word_set
from ingest.schema import Document

# Bump when extraction changes, so stored facts of unchanged documents are extracted again.
EXTRACTOR_VERSION = 3


# ---------------------------------------------------------------------------------------------
# Normalising values
# ---------------------------------------------------------------------------------------------

NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_UNITS = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_WORD_UNITS = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_ZH_UNITS = {"万亿": 1e12, "千亿": 1e11, "百亿": 1e10, "十亿": 1e9, "亿": 1e8, "千万": 1e7, "百万": 1e6, "万": 1e4}
_ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
UNIT = r"(?:[KkMmBbTt](?![A-Za-z])|thousand|million|billion|trillion|万亿|千亿|百亿|十亿|亿|千万|百万|万)"
# A quantity with a unit: 7B, 1.4T, 62亿, 6.2 billion, 一万亿, 2.22E+09.
QUANTITY = rf"(?:(?:{NUMBER}|[一二两三四五六七八九十])\s?{UNIT}|\d+(?:\.\d+)?[eE][+-]?\d+)"
_QUANTITY_RE = re.compile(
    rf"(?P<n>{NUMBER}|[一二两三四五六七八九十])\s?(?P<u>{UNIT})|(?P<sci>\d+(?:\.\d+)?[eE][+-]?\d+)"
)


def quantity(text: str) -> float | None:
    """7B -> 7e9, 62亿 -> 6.2e9, 3.5 trillion -> 3.5e12, 2.22E+09 -> 2.22e9; None without a unit."""
    m = _QUANTITY_RE.search(text)
    if not m:
        return None
    if m.group("sci"):
        return float(m.group("sci"))
    n = m.group("n")
    base = float(_ZH_DIGITS[n]) if n in _ZH_DIGITS else float(n.replace(",", ""))
    unit = m.group("u")
    if unit in _ZH_UNITS:
        return base * _ZH_UNITS[unit]
    if unit.lower() in _WORD_UNITS:
        return base * _WORD_UNITS[unit.lower()]
    return base * _UNITS[unit.lower()]


def quantities(text: str) -> tuple[float, ...]:
    """Every quantity with a unit in a text, in order: '7B, 13B, 33B and 65B' -> (7e9, 1.3e10, ...)."""
    values = []
    for m in _QUANTITY_RE.finditer(text):
        value = quantity(m.group(0))
        if value is not None and value not in values:
            values.append(value)
    return tuple(values)


def normalize_count(text: str) -> float | tuple[float, ...] | None:
    """A size or token count: one number, or a tuple for a list or a range ('2-3 trillion')."""
    m = re.search(rf"({NUMBER})\s*(?:-|~|to|到|至)\s*({NUMBER})\s?({UNIT})", text)
    if m:
        return (quantity(m.group(1) + m.group(3)) or 0.0, quantity(m.group(2) + m.group(3)) or 0.0)
    values = quantities(text)
    if not values:
        plain = re.fullmatch(r"\s*(\d{1,3}(?:,\d{3}){2,})\s*", text)  # 176,247,271,424
        return float(plain.group(1).replace(",", "")) if plain else None
    return values[0] if len(values) == 1 else values


def normalize_context(text: str) -> int | None:
    """Context length in tokens; 4k -> 4096 (k counts 1024 here, as context windows do)."""
    m = re.search(r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s?([kK])?(?![\d.])", text)
    if not m:
        return None
    value = float(m.group(1).replace(",", ""))
    if m.group(2):
        value *= 1024
    return int(value) if 64 <= value <= 10_000_000 else None


def normalize_money(text: str) -> float | tuple[float, ...] | None:
    """USD: '$300' -> 300, '$1K' -> 1000, '$2-5M' -> (2e6, 5e6), '$500 (data) + $100' -> 600, '300美元'."""
    text = text.replace(",", "")
    m = re.search(r"\$\s?(\d+(?:\.\d+)?)\s?-\s?(\d+(?:\.\d+)?)\s?([KkMm])\b", text)
    if m:
        scale = _UNITS[m.group(3).lower()]
        return (float(m.group(1)) * scale, float(m.group(2)) * scale)
    amounts = []
    for m in re.finditer(r"\$\s?(\d+(?:\.\d+)?)\s?([KkMm](?![a-z]))?|(\d+(?:\.\d+)?)\s*(万)?\s*(?:美元|美金)", text):
        if m.group(1):
            amounts.append(float(m.group(1)) * (_UNITS[m.group(2).lower()] if m.group(2) else 1))
        else:
            amounts.append(float(m.group(3)) * (1e4 if m.group(4) else 1))
    if not amounts:
        return None
    # "$500 (data) + $100 (training)": the parts of one cost add up
    return sum(amounts) if "+" in text else amounts[0]


_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?"
    r"|Nov(?:ember)?|Dec(?:ember)?)"
)
YEAR = r"(?:19|20)\d\d"
_DATE_PATTERNS = [
    re.compile(rf"(?P<y>{YEAR})[-/.](?P<m>\d{{1,2}})(?:[-/.](?P<d>\d{{1,2}}))?(?!\d)"),
    re.compile(rf"(?P<y>{YEAR})\s*年(?:\s*(?P<m>\d{{1,2}})\s*月(?:\s*(?P<d>\d{{1,2}})\s*日)?)?"),
    re.compile(rf"(?P<mon>{MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>{YEAR})"),
    re.compile(rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th)?[\s.]+(?P<mon>{MONTH})[\s.,]+(?P<y>{YEAR})"),
    re.compile(rf"(?P<mon>{MONTH})\.?,?\s+(?P<y>{YEAR})"),
    re.compile(rf"(?<!\d)(?P<y>{YEAR})(?!\d)"),
]
DATE = (
    rf"(?:{YEAR}[-/.]\d{{1,2}}(?:[-/.]\d{{1,2}})?|{YEAR}\s*年(?:\s*\d{{1,2}}\s*月(?:\s*\d{{1,2}}\s*日)?)?"
    rf"|{MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+{YEAR}|\d{{1,2}}(?:st|nd|rd|th)?[\s.]+{MONTH}[\s.,]+{YEAR}"
    rf"|{MONTH}\.?,?\s+{YEAR}|(?<!\d){YEAR}(?!\d))"
)


def normalize_date(text: str) -> str | None:
    """ISO date at the precision written: 2018, 2023-03, 2022-05-03."""
    for pattern in _DATE_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        groups = m.groupdict()
        month = int(groups["m"]) if groups.get("m") else _MONTHS.get((groups.get("mon") or "").lower()[:4].rstrip("."))
        if groups.get("mon") and month is None:
            month = _MONTHS.get(groups["mon"].lower()[:3])
        day = int(groups["d"]) if groups.get("d") else None
        if month and not 1 <= month <= 12 or day and not 1 <= day <= 31:
            continue
        date = groups["y"]
        if month:
            date += f"-{month:02d}"
            if day:
                date += f"-{day:02d}"
        return date
    return None


LICENCE = (
    r"(?:Apache(?:[ -]License)?(?:[ -]?(?:v(?:ersion)?\s?)?2\.0)?|MIT(?: [Ll]icen[cs]e)?"
    r"|CC[- ]BY(?:[- ](?:NC|SA|ND))*(?:[- ]\d\.\d)?"
    r"|(?:BigScience[- ])?(?:BLOOM[- ])?(?:Open)?RAIL(?:-M)?(?: License)?(?: v?\d\.\d)?"
    r"|Llama 2 Community License(?: Agreement)?|GPL[- ]?v?\d(?:\.\d)?|BSD(?:[- ]\d-Clause)?)"
)


def normalize_licence(text: str) -> str | None:
    """A short licence id: apache-2.0, mit, cc-by-nc-4.0, bigscience-rail, llama2-community, non-commercial."""
    t = text.lower().replace("_", "-")
    if re.search(r"llama\s*-?\s*2", t) and ("communit" in t or re.fullmatch(r"\W*llama\s*-?\s*2\W*", t)):
        return "llama2-community"
    m = re.search(r"\bcc[\s-]*by((?:[\s-]*(?:nc|sa|nd)\b)*)(?:[\s-]*(\d\.\d))?", t)
    if m:
        parts = re.findall(r"nc|sa|nd", m.group(1))
        return "-".join(["cc-by", *parts] + ([m.group(2)] if m.group(2) else []))
    if "openrail" in t:
        return "openrail"
    if re.search(r"\brail\b|bloom-rail|bigscience.*rail", t):
        return "bigscience-rail"
    if "apache" in t:
        return "apache-2.0"
    if re.search(r"\bmit\b", t):
        return "mit"
    m = re.search(r"\bgpl[\s-]*v?(\d(?:\.\d)?)", t)
    if m:
        return f"gpl-{m.group(1)}"
    if re.search(r"\bbsd\b", t):
        return "bsd"
    if "custom commercial" in t:
        return "custom-commercial"
    if re.search(
        r"non[\s-]?commercial|research (?:use|purposes?)(?: only)?|academic research only|research and learning only"
        r"|仅供(?:学术)?研究|非商业|commercial:\s*false",
        t,
    ):
        return "non-commercial"
    return None


_LANGUAGES = {
    "english": "en",
    "chinese": "zh",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "japanese": "ja",
    "korean": "ko",
    "romanian": "ro",
    "russian": "ru",
    "arabic": "ar",
    "portuguese": "pt",
    "italian": "it",
    "hindi": "hi",
    "vietnamese": "vi",
    "英语": "en",
    "英文": "en",
    "中文": "zh",
    "汉语": "zh",
    "法语": "fr",
    "德语": "de",
    "日语": "ja",
    "韩语": "ko",
}
LANGUAGE = (
    r"(?:English|Chinese|French|German|Spanish|Japanese|Korean|Romanian|Russian|Arabic|Portuguese|Italian|Hindi"
    r"|Vietnamese|英语|英文|中文|汉语|法语|德语|日语|韩语)"
)
_ISO_CODE = re.compile(r"^[a-z]{2,3}$")


def normalize_languages(text: str) -> tuple[str, ...] | None:
    codes: list[str] = []
    if re.search(r"中英|英中", text):
        codes += ["zh", "en"]
    for m in re.finditer(LANGUAGE, text, re.IGNORECASE):
        code = _LANGUAGES[m.group(0).lower()]
        if code not in codes:
            codes.append(code)
    if not codes and _ISO_CODE.match(text.strip()):
        codes.append(text.strip())
    return tuple(codes) or None


def normalize_architecture(text: str) -> str | None:
    t = text.lower()
    if re.search(r"encoder[\s-]*decoder|编码器[-\s]?解码器", t):
        return "encoder-decoder"
    if re.search(r"decoder[\s-]*(?:only|style)|causal decoder|仅解码器|只有解码器", t):
        return "decoder-only"
    if re.search(r"encoder[\s-]*only|仅编码器", t):
        return "encoder-only"
    if re.search(r"mixture[\s-]+of[\s-]+(?:\d+\s+)?experts|\bmoe\b|混合专家", t):
        return "moe"
    return None


CHIP = r"(?:A100|H100|V100|A800|H800|A10G?|RTX\s?\d{4}|TPU\s?v\d|CS-2|GPUs?)"
_HARDWARE_RE = re.compile(
    rf"(?P<n>\d[\d,]*|thousand|a single|single|one)?\s*(?:个|张|块|x|×)?\s*\*?\s*(?:\d+\s?G[Bi]?B?\s*)?"
    rf"(?:NVIDIA\s+|Nvidia\s+)?(?P<chip>{CHIP})",
)


def normalize_hardware(text: str) -> str | None:
    """'8 A100 GPUs' -> '8xA100', '8个80GB A100' -> '8xA100', 'TPU v3 or TPU v4' -> 'TPUv3'."""
    for m in _HARDWARE_RE.finditer(text):
        chip = re.sub(r"\s", "", m.group("chip"))
        if chip.upper().startswith("GPU"):
            chip = "GPU"
        count = m.group("n")
        if count in {"a single", "single", "one"}:
            count = "1"
        elif count == "thousand":
            count = "1000"
        return f"{count.replace(',', '')}x{chip}" if count else chip
    return None


def normalize_memory(text: str) -> float | None:
    """GB of memory: '6GB' -> 6.0, '13 GB' -> 13.0, '6G' -> 6.0."""
    m = re.search(r"(\d+(?:\.\d+)?)\s?(?:GB|GiB|G)(?![A-Za-z])", text)
    return float(m.group(1)) if m else None


def normalize(attribute: str, value: str) -> Normalized:
    if attribute in ("parameters", "training_tokens"):
        count = normalize_count(value)
        return (count,) if isinstance(count, float) and attribute == "parameters" else count
    if attribute == "release_date":
        return normalize_date(value)
    if attribute == "context_length":
        return normalize_context(value)
    if attribute == "licence":
        return normalize_licence(value)
    if attribute == "languages":
        return normalize_languages(value)
    if attribute == "architecture":
        return normalize_architecture(value)
    if attribute == "training_cost":
        return normalize_money(value)
    if attribute == "training_hardware":
        return normalize_hardware(value)
    if attribute == "memory_requirement":
        return normalize_memory(value)
    return clean_name(value) if attribute == "base_model" else None


def clean_name(value: str) -> str:
    return despin(value).strip(" `*_\"'")


# A normalised value the attribute cannot do without: a licence must be recognised, a size must
# have a unit. Values that fail this are dropped rather than stored as unparsed text.
NEEDS_NORMALIZED = frozenset(
    {
        "parameters",
        "release_date",
        "context_length",
        "licence",
        "languages",
        "training_tokens",
        "memory_requirement",
    }
)


def plausible(attribute: str, normalized: Normalized) -> bool:
    """Sanity bounds: a model trained on fewer than a billion tokens is a misread (8K context, 370M)."""
    numbers = normalized if isinstance(normalized, tuple) else (normalized,)
    if attribute == "training_tokens":
        return all(isinstance(n, float) and 1e9 <= n <= 1e15 for n in numbers)
    if attribute == "parameters":
        return all(isinstance(n, float) and 1e6 <= n <= 1e14 for n in numbers)
    if attribute == "memory_requirement":
        return isinstance(normalized, float) and 0.5 <= normalized <= 100_000
    return True


# ---------------------------------------------------------------------------------------------
# Model names
# ---------------------------------------------------------------------------------------------


_ACRONYM = re.compile(r"[A-Z]{2,6}")


@lru_cache(maxsize=65536)
def looks_like_model(token: str) -> bool:
    """Inner capitals, letters with digits or a size: ChatGLM-6B, LLaMA, GPT-3, T5, dolly-v2-12b."""
    if len(token) < 2:
        return False
    if _ACRONYM.fullmatch(token):  # all capitals: an acronym unless known (BERT, OPT, MPT)
        return False
    inner_upper = any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)
    has_digit = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    return inner_upper or has_digit


# Well-known model families written as plain capitalised words, which no name shape reveals
# ("fine-tuned from Llama", "Mistral 7B"); the alias table's names count too.
FAMILY_NAMES = (
    "Llama",
    "Mistral",
    "Mixtral",
    "Falcon",
    "Vicuna",
    "Alpaca",
    "Koala",
    "Guanaco",
    "Pythia",
    "Dolly",
    "Bloom",
    "Gemma",
    "Gemini",
    "Claude",
    "Zephyr",
    "Orca",
    "Grok",
    "Gopher",
    "Chinchilla",
    "Galactica",
    "Qwen",
    "Baichuan",
)


@lru_cache(maxsize=1)
def _known_keys() -> frozenset[str]:
    names = [*FAMILY_NAMES, *(name for pair in alias_table() for name in pair)]
    return frozenset(model_key(name) for name in names)


# A model mention: a name token, optionally with a version ("Llama 2", "ERNIE 3.0", "Dolly v2") and a
# size written apart ("Falcon 180B", "LLaMA 7B"). ASCII-only boundaries, since CJK counts as \w.
_NAME_RE = re.compile(
    r"(?<![A-Za-z0-9_+.\-])[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*(?:\+(?![A-Za-z0-9]))?"
    r"(?:[ -](?:v\d+(?:\.\d+)?|\d{1,2}(?:\.\d)?)(?![A-Za-z0-9%]|\.\d|[,.]\d))?"
    r"(?: \d+(?:\.\d+)?[BbMm](?![A-Za-z0-9]))?"
)
_SIZE_WORD = re.compile(r"\s(?:XXL|XL|Large|Base|Small)\b")


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    name: str  # despun text of the mention

    @property
    def key(self) -> str:
        return model_key(self.name)


# ---------------------------------------------------------------------------------------------
# Document structure
# ---------------------------------------------------------------------------------------------

# emphasis and code marks, but not a "*" that opens a list item
_MARKUP_RE = re.compile(
    r"\*\*|(?<![A-Za-z0-9\n ])\*|(?<=[A-Za-z0-9])\*(?![A-Za-z0-9])|(?<=[ ])\*(?=[A-Za-z0-9])|`|(?<![A-Za-z0-9])_"
    r"|_(?![A-Za-z0-9])|\\(?=[*_$~])"
)
_BLOCKQUOTE_RE = re.compile(r"^(\s*)>", re.MULTILINE)


_URL_RE = re.compile(r"https?://\S+|www\.\S+")


def markup_view(text: str) -> str:
    """Emphasis, code ticks and blockquote markers blanked out, so patterns see plain words; links
    blanked too (a '176b-parameters' in a URL states nothing)."""
    text = _URL_RE.sub(lambda m: "\0" * len(m.group(0)), text)
    text = _MARKUP_RE.sub(lambda m: " " * len(m.group(0)), text)
    return _BLOCKQUOTE_RE.sub(lambda m: m.group(1) + " ", text)


@dataclass
class Heading:
    line: int
    level: int
    start: int
    end: int
    model: str | None


@dataclass
class Item:
    """A list item: its lead model ('MPT-7B-Chat: a chatbot...') and the item it is nested in."""

    indent: int
    lead: str | None
    parent: Item | None

    def model(self) -> str | None:
        item: Item | None = self
        while item is not None:
            if item.lead:
                return item.lead
            item = item.parent
        return None


@dataclass
class Context:
    """Everything the extractors need to know about one document, computed once."""

    doc: Document
    text: str
    view: str  # despun, markup blanked: what patterns match against
    line_starts: list[int]
    lines: list[str]  # lines of `view`
    mentions: list[Mention]
    mention_starts: list[int]
    doc_model: str | None
    known: set[str]
    blocked: set[int] = field(default_factory=set)  # lines claimed by a table or front matter
    headings: list[Heading] = field(default_factory=list)
    heading_lines: set[int] = field(default_factory=set)
    line_section: list[tuple[str, str | None]] = field(default_factory=list)  # per line: path, model
    line_item: list[Item | None] = field(default_factory=list)
    list_pairs: dict[int, int] = field(default_factory=dict)  # description line -> name line

    def line_of(self, pos: int) -> int:
        return bisect.bisect_right(self.line_starts, pos) - 1

    def paragraph_start(self, pos: int) -> int:
        """Start of the paragraph (blank-line separated block) a position is in."""
        line = self.line_of(pos)
        while line > 0 and self.lines[line - 1].strip(" \t\0"):
            line -= 1
        return self.line_starts[line]

    def line_span(self, index: int) -> tuple[int, int]:
        start = self.line_starts[index]
        return start, start + len(self.lines[index])

    def mentions_in(self, start: int, end: int) -> list[Mention]:
        i = bisect.bisect_left(self.mention_starts, start)
        found = []
        while i < len(self.mentions) and self.mentions[i].start < end:
            if self.mentions[i].end <= end:
                found.append(self.mentions[i])
            i += 1
        return found

    def section(self, pos: int) -> str:
        return self.line_section[self.line_of(pos)][0] if self.line_section else ""

    def fallback_model(self, pos: int) -> str | None:
        line = self.line_of(pos)
        item = self.line_item[line] if self.line_item else None
        if item is not None and item.model():
            return item.model()
        if self.line_section and self.line_section[line][1]:
            return self.line_section[line][1]
        return self.doc_model


def _split_lines(text: str) -> tuple[list[int], list[str]]:
    starts, lines, pos = [], [], 0
    for line in text.split("\n"):
        starts.append(pos)
        lines.append(line)
        pos += len(line) + 1
    return starts, lines


# Words that may stand capitalised before "model" without being a name: "The model", "Base model".
_COMMON = frozenset(COMMON_WORDS) | word_set(
    """this that our their its your these those each every base pretrained pre-trained new larger smaller same
    other first final chat original released trained tuned large small language foundation reward moderation
    generic code coding student teacher target source reference best whole entire single multimodal"""
)


def _is_model_token(token: str, key: str, known: set[str], after: str) -> bool:
    verdict = _static_verdict(token, key, known)
    return _followed_by_model(token, after) if verdict is None else verdict


def _static_verdict(token: str, key: str, known: set[str]) -> bool | None:
    """Whether a token names a model by itself; None when that depends on the words after it."""
    shape = _token_shape(token, key)
    if shape == "stop":
        return False
    if key in known or key in _known_keys():
        return True
    if shape in ("compound", "common"):
        return False
    return True if shape == "shaped" else None


_ADJECTIVE_SUFFIX = re.compile(r"-(?:based|style|like|only|aware|level|tuned)$", re.IGNORECASE)
_TITLE_COMPOUND = re.compile(r"[A-Z][a-z]+(?:-[A-Z][a-z]+)+")


@lru_cache(maxsize=65536)
def _token_shape(token: str, key: str) -> str:
    """What a token's spelling alone says: stop, compound, shaped, common or plain."""
    if is_stop(key) or key.endswith("cpp") or _ADJECTIVE_SUFFIX.search(token) or "_" in token:
        return "stop"  # LoRA-based, llama.cpp, train_3.5M_CN: not names
    if _TITLE_COMPOUND.fullmatch(token):
        return "compound"  # Full-Parameter, Open-Source, Multi-Query: capitalised compounds, not names
    if looks_like_model(token):
        return "shaped"
    if token.lower() in _COMMON or not token[:1].isupper():
        return "common"
    return "plain"


_MODEL_AFTER = re.compile(r"\s?(?:模型|model\b|\d+(?:\.\d+)?[BM]\b)")


def _followed_by_model(token: str, after: str) -> bool:
    # a capitalised word followed by "model" or a size is a name: "Koala model", "Falcon 180B"
    return bool(_MODEL_AFTER.match(after))


def find_mentions(view: str, known: set[str]) -> list[Mention]:
    found = []
    verdicts: dict[str, bool | None] = {}  # token -> verdict, None where the words after decide
    for m in _NAME_RE.finditer(view):
        token = m.group(0).rstrip("-_.")
        end = m.start() + len(token)
        key = model_key(token)
        if " " in token and key not in known:
            # "Llama 2", "Falcon 180B" only when the word itself is a model: not "Figure 1", "massive 3.5"
            head = token.split(" ")[0]
            head_key = model_key(head)
            if not (head_key in known or head_key in _known_keys() or looks_like_model(head)) or is_stop(head_key):
                token = head
                end = m.start() + len(head)
                key = head_key
        if token not in verdicts:
            verdicts[token] = _static_verdict(token, key, known)
        verdict = verdicts[token]
        if verdict is None:
            verdict = _followed_by_model(token, view[end : end + 8])
        if verdict:
            found.append(Mention(m.start(), end, token))
    return found


def first_model_in(text: str, known: set[str]) -> Mention | None:
    return next(iter(find_mentions(text, known)), None)


_LISTING_TITLE = re.compile(r"汇总|概览|梳理|笔记|盘点|合集|大全|survey|overview|models? list", re.IGNORECASE)


_TITLE_NAME = re.compile(
    r"^(?:Model [Cc]ard for |Introducing )?(?P<n>[A-Za-z][A-Za-z0-9.+\-]*(?: v?\d+(?:\.\d+)?)?(?: \d+(?:\.\d+)?[BM])?)"
    r"(?= Model [Cc]ard\b| Weights\b|\s*[:：(]|$)"
)


# What a "Subject: description" title is about.
_TITLE_SUBJECT = re.compile(r"\s*([^\s:：][^:：]{0,39})[:：]")


def title_model(title: str, known: set[str]) -> str | None:
    """The model a document is about, from its title; None for surveys and lists of models."""
    view = markup_view(despin(title)).strip()
    if _LISTING_TITLE.search(view):
        return None
    named = _TITLE_NAME.match(view)
    if named and not is_stop(model_key(named.group("n"))) and named.group("n").lower() not in _COMMON:
        return named.group("n")  # "Llama 2 Model Card", "Model Card for Mistral-7B-v0.1", "Introducing Qwen"
    mentions = find_mentions(view, known | _known_keys())
    lead = (
        mentions[0]
        if mentions and mentions[0].start == 0 and view[mentions[0].end :].lstrip().startswith((":", "："))
        else None
    )
    if lead:
        return lead.name  # "Vicuna: An Open-Source Chatbot Impressing GPT-4 ..."
    subject = _TITLE_SUBJECT.match(view)
    if subject and is_stop(model_key(subject.group(1))):
        return None  # "llama.cpp: Inference of LLaMA model in pure C/C++" is about software, not LLaMA
    if len({m.key for m in mentions}) >= 3:
        return None
    for mention in mentions:
        after = view[mention.end : mention.end + 3]
        if after.startswith(("类", "系列", "等")):
            continue
        name = mention.name
        size = _SIZE_WORD.match(view, mention.end)
        if size:
            name = view[mention.start : size.end()]
        return name
    return None


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_UPDATE_LINE = re.compile(
    rf"^\s*[-*]?\s*\[?{YEAR}[/-]\d{{1,2}}[/-]\d{{1,2}}\]?\s*(?:Release[sd]?|发布了?|开放了?|推出了?)\s+(?P<m>\S+)"
)
_BULLET = re.compile(r"^(\s*)(?:[-*+•]|\d+[.)、])\s+")


def _heading_model(text: str, known: set[str]) -> str | None:
    mention = first_model_in(text, known)
    return mention.name if mention else None


def _name_line(line: str) -> bool:
    """A line that is only a model name: 'ColossalChat', 'Dolly-v2', 'Qwen1-7B+14B+70B', 'UltraLM系列'."""
    s = line.strip()
    if not s or len(s) > 40 or not re.match(r"[A-Za-z]", s):
        return False
    if re.search(r"[,，。.:：;；!！?？]\s|[，。：；！？]", s + " ") and not re.fullmatch(r"[\w.+\-/ ]+", s):
        return False
    cjk = sum(1 for c in s if "\u4e00" <= c <= "\u9fff")
    return cjk <= 2 and len(s.split()) <= 4


def _paragraph_lines(lines: list[str]) -> list[int]:
    """Indices of lines that are a paragraph on their own (blank line before and after)."""
    single = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        before = i == 0 or not lines[i - 1].strip()
        after = i == len(lines) - 1 or not lines[i + 1].strip()
        if before and after:
            single.append(i)
    return single


def find_list_pairs(lines: list[str]) -> dict[int, int]:
    """Runs of at least three 'name line, description line' pairs: description line -> name line."""
    single = _paragraph_lines(lines)
    pairs: dict[int, int] = {}
    run: list[tuple[int, int]] = []
    i = 0
    while i < len(single) - 1:
        name, desc = single[i], single[i + 1]
        adjacent = desc - name <= 2
        if adjacent and _name_line(lines[name]) and not _name_line(lines[desc]) and len(lines[desc].strip()) <= 160:
            run.append((name, desc))
            i += 2
            continue
        if len(run) >= 3:
            pairs.update({d: n for n, d in run})
        run = []
        i += 1
    if len(run) >= 3:
        pairs.update({d: n for n, d in run})
    return pairs


def _add_known(known: set[str], head: str, heading: bool) -> None:
    """A heading or table cell that opens with an acronym (OPT, BLOOM) or a name-shaped word names a
    model; a plain capitalised word does only as a Chinese section title ('Gopher模型的性能分析:',
    'Orca:模仿推理过程的模型:'), never as an English one ('## Overview', '## Training')."""
    token = re.match(r"\s*([A-Za-z][A-Za-z0-9.+\-]*)", head)
    if not token:
        return
    word = token.group(1).rstrip(".-")
    key = model_key(word)
    if is_stop(key):
        return
    rest = head[token.end() :]
    titled = (
        heading
        and word[:1].isupper()
        and bool(re.match(r"\s*(?:[:：]\s*[\u4e00-\u9fff]|模型|家族|系列|[:：]?\s*$)", rest))
    )
    if titled and not re.search(r"[\u4e00-\u9fff]", head) and rest.strip(" :：#*"):
        titled = False
    if titled and not re.search(r"[\u4e00-\u9fff]", head) and len(head.split()) == 1:
        titled = False  # a one-word English heading is a section name: Overview, Training, Serving
    if re.fullmatch(r"[A-Z]{2,6}\d*", word) or looks_like_model(word) or titled:
        known.add(key)


def build_context(doc: Document) -> Context:
    text = doc.text
    view = markup_view(despin(text))
    line_starts, lines = _split_lines(view)
    known: set[str] = set()
    list_pairs = find_list_pairs(lines)
    name_lines = set(list_pairs.values())  # a set: this loop runs over every line of the document
    # names the document itself presents as models: headings, name lines, table model cells
    standalone = set(_paragraph_lines(lines))
    for i, line in enumerate(lines):
        if i in name_lines:
            known.add(model_key(line))  # a list post's name line is a model name, whatever its shape
            continue
        m = _MD_HEADING.match(line)
        short = i in standalone and len(line.strip()) <= 40 and i not in list_pairs
        head = m.group(2) if m else line if short else None
        if head:
            _add_known(known, head, heading=True)
    for m in re.finditer(r"^\s*\|?\s*([A-Za-z][\w.+\- ]{1,30}?)\s*\|", view, re.MULTILINE):
        _add_known(known, m.group(1), heading=False)
    known -= {k for k in known if is_stop(k)}
    doc_model = title_model(doc.title, known)
    if doc_model is None:
        first = next((ln for ln in lines if ln.strip()), "")
        heading = _MD_HEADING.match(first)
        if heading:
            doc_model = title_model(heading.group(2), known)
    if doc_model:
        # the document's own model is a name wherever it appears, whatever its shape ("Llama 2"), and
        # so is its first word ("Dolly" in a card for "Dolly v2 12B")
        known.add(model_key(doc_model))
        head = doc_model.split(" ")[0]
        if head[:1].isupper() and not is_stop(model_key(head)) and head.lower() not in _COMMON:
            known.add(model_key(head))
    mentions = find_mentions(view, known)
    return Context(
        doc=doc,
        text=text,
        view=view,
        line_starts=line_starts,
        lines=lines,
        mentions=mentions,
        mention_starts=[m.start for m in mentions],
        doc_model=doc_model,
        known=known,
        list_pairs=list_pairs,
    )


def _plain_heading(lines: list[str], i: int, known: set[str]) -> str | None:
    """A short standalone line, as scraped posts write section titles: the model it names ('GPT-3模型:'),
    "" for a title naming none ('模型列表'), None for a line that is not a title."""
    s = lines[i].strip()
    if not s or len(s) > 40 or re.search(r"[。！？!?.]$", s) or _BULLET.match(lines[i]):
        return None
    if (i > 0 and lines[i - 1].strip()) or (i + 1 < len(lines) and lines[i + 1].strip()):
        return None
    mention = first_model_in(s, known)
    # "Stanford Alpaca": one capitalised word may come before the name
    if mention is None or (mention.start > 0 and not re.fullmatch(r"[A-Z][a-z]+\s+", s[: mention.start])):
        return ""
    rest = s[mention.end :]
    # "BERT模型:", "Alpaca:", "Med-PaLM:面向医疗领域的专用模型:", "LLaMA家族"
    if rest and not re.match(r"\s*(?:[:：]|模型|家族|系列|的|\(|（|$)", rest) and len(rest) > 12:
        return ""
    return mention.name


def annotate_structure(ctx: Context) -> None:
    """Headings, the section each line is in (with its model) and the list item each line is in."""
    section: list[tuple[int, str, str | None]] = []  # (level, title, model)
    # scraped text has no markup: there a short standalone line is a section title
    markdown = any(_MD_HEADING.match(line) for line in ctx.lines)
    items: list[Item] = []
    ctx.line_section = []
    ctx.line_item = []
    for i, line in enumerate(ctx.lines):
        heading = None
        if i not in ctx.blocked:
            m = _MD_HEADING.match(line)
            if m:
                title = m.group(2).strip()
                heading = (len(m.group(1)), title, _heading_model(title, ctx.known), m.start(2))
            elif i in ctx.list_pairs.values():
                heading = (1, line.strip(), line.strip(), 0)
            elif i not in ctx.list_pairs and not ctx.list_pairs and not markdown:
                model = _plain_heading(ctx.lines, i, ctx.known)
                if model is not None and (model or len(line.strip()) <= 30):
                    heading = (1, line.strip(), model or None, 0)
        if heading:
            level, title, model, offset = heading
            while section and section[-1][0] >= level:
                section.pop()
            section.append((level, title, model))
            start = ctx.line_starts[i] + offset
            ctx.headings.append(Heading(i, level, start, ctx.line_starts[i] + len(line), model))
            ctx.heading_lines.add(i)
            items = []
        path = " > ".join(title for _, title, _ in section)
        model = next((m for _, _, m in reversed(section) if m), None)
        ctx.line_section.append((path, model))
        bullet = _BULLET.match(line)
        if heading:
            ctx.line_item.append(None)
            continue
        update = _UPDATE_LINE.match(line)
        if update:
            # "[2023/06/25] Release ChatGLM2-6B, ...": the items that follow describe that model
            named = first_model_in(update.group("m"), ctx.known)
            items = [Item(-1, named.name if named else None, None)]
            ctx.line_item.append(items[-1])
            continue
        if bullet:
            indent = len(bullet.group(1))
            while items and items[-1].indent >= indent:
                items.pop()
            lead = re.match(
                r"\s*(?:\[[^\]]*\]\s*)?([A-Za-z][\w.+\-]*(?: v?\d+(?:\.\d+)?)?)\s*(?:[:：,]|\s-\s)",
                line[bullet.end() :],
            )
            lead_name = None
            if lead and _is_model_token(lead.group(1), model_key(lead.group(1)), ctx.known, ""):
                lead_name = lead.group(1)
            version = re.search(r"\b(?:weights|version)\s+(v\d+(?:\.\d+)*)\b", line[bullet.end() :])
            if lead_name is None and version and ctx.doc_model:
                lead_name = f"{ctx.doc_model} {version.group(1)}"  # "Major updates of weights v1.5"
            items.append(Item(indent, lead_name, items[-1] if items else None))
        elif not line.strip():
            nxt = ctx.lines[i + 1] if i + 1 < len(ctx.lines) else ""
            if not _BULLET.match(nxt) and not nxt.startswith(" ") and not (items and items[0].indent < 0):
                items = []
        ctx.line_item.append(items[-1] if items else None)


# ---------------------------------------------------------------------------------------------
# Building facts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    model: str
    attribute: str
    value_start: int
    value_end: int
    quote_start: int
    quote_end: int
    shape: str
    qualifier: str = ""
    normalized: Normalized = None
    has_normalized: bool = False
    coordinated: bool = False  # shares its value span with the candidate before it ("GPT-1和GPT-2")


def _trim(text: str, start: int, end: int, chars: str = " \t\n*_`\"'.,;:，。；：、()（）[]|") -> tuple[int, int]:
    while start < end and text[start] in chars:
        start += 1
    while end > start and text[end - 1] in chars:
        end -= 1
    # keep a closing bracket that belongs to the value: "T5 (Base)", "Falcon (40B)"
    if (
        end < len(text)
        and text[end] in ")）"
        and text[start:end].count("(") + text[start:end].count("（")
        > (text[start:end].count(")") + text[start:end].count("）"))
    ):
        end += 1
    return start, end


def make_fact(ctx: Context, c: Candidate) -> Fact | None:
    text = ctx.text
    vs, ve = _trim(text, c.value_start, c.value_end)
    qs, qe = _trim(text, c.quote_start, c.quote_end, " \t\n")
    if not (qs <= vs < ve <= qe) or c.attribute not in ATTRIBUTES:
        return None
    value = text[vs:ve]
    normalized = c.normalized if c.has_normalized else normalize(c.attribute, ctx.view[vs:ve])
    if normalized is None and c.attribute in NEEDS_NORMALIZED:
        return None
    if not plausible(c.attribute, normalized):
        return None
    if c.attribute == "training_hardware" and normalized in ("GPU", None) and c.shape == "prose":
        return None  # "fits on your GPUs" names no hardware
    model = clean_name(c.model)
    if not model_key(model) or is_stop(model_key(model)):
        return None
    if c.attribute == "base_model" and model_key(value) == model_key(model):
        return None
    return Fact(
        model=model,
        attribute=c.attribute,
        value=value,
        normalized=normalized,
        doc_id=ctx.doc.doc_id,
        section=ctx.section(qs),
        quote=text[qs:qe],
        start=qs,
        end=qe,
        value_start=vs,
        value_end=ve,
        qualifier=c.qualifier,
        shape=c.shape,
    )


# ---------------------------------------------------------------------------------------------
# Front matter
# ---------------------------------------------------------------------------------------------

_FM_KEYS = {
    "license": "licence",
    "licence": "licence",
    "language": "languages",
    "languages": "languages",
    "datasets": "training_data",
    "base_model": "base_model",
    "date": "release_date",
    "commercial": "licence",
    "hardware_used": "training_hardware",
}


def front_matter(ctx: Context) -> Iterator[Candidate]:
    lines = ctx.lines
    if not lines or lines[0].strip() != "---":
        return
    end = next((i for i in range(1, min(len(lines), 400)) if lines[i].strip() == "---"), None)
    if end is None:
        return
    ctx.blocked.update(range(0, end + 1))
    model = ctx.doc_model
    if not model:
        return
    current: str | None = None  # the top-level key whose list items follow
    for i in range(1, end):
        line = lines[i]
        start = ctx.line_starts[i]
        item = re.match(r"^(\s*)-\s+(.+?)\s*$", line)
        pair = re.match(r"^(\s*)([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$", line)
        if item and current:
            vs = start + item.start(2)
            yield Candidate(model, current, vs, start + item.end(2), start, start + len(line), "front_matter")
            continue
        if not pair:
            current = None
            continue
        indent, key, value = pair.group(1), pair.group(2).lower(), pair.group(3)
        attribute = _FM_KEYS.get(key)
        if indent and key != "hardware_used":
            continue
        current = attribute if (attribute and not value) else None
        if attribute in ("training_data",) and value:
            current = None
        if not attribute or not value:
            continue
        vs, ve = start + pair.start(3), start + pair.end(3)
        if key == "commercial":
            if value.lower() == "false":
                yield Candidate(
                    model, "licence", vs, ve, start, start + len(line), "front_matter", "", "non-commercial", True
                )
            continue
        if key == "date":
            date = normalize_date(value)
            if date:
                yield Candidate(
                    model, attribute, vs, ve, start, start + len(line), "front_matter", "post date", date, True
                )
            continue
        yield Candidate(model, attribute, vs, ve, start, start + len(line), "front_matter")


# ---------------------------------------------------------------------------------------------
# Markdown tables
# ---------------------------------------------------------------------------------------------

_HEADERS: list[tuple[str, str]] = [
    (
        r"#?\s*param(?:eter)?s?|model params|model size|size|number of parameters|n_parameters"
        r"|参数|参数量|参数规模|模型参数",
        "parameters",
    ),
    (r"release(?: date)?|released|发布(?:时间|日期)?|date", "release_date"),
    (r"base models?|基座(?:模型)?|基础模型|backbone|finetuned from|fine-tuned from", "base_model"),
    (r"licen[cs]e|model licen[cs]e|许可证?|协议|开源协议", "licence"),
    (
        r"context(?: length| window| size)?|max(?:imum)? length|sequence length|max seq(?:uence)? len(?:gth)?"
        r"|上下文(?:长度)?",
        "context_length",
    ),
    (
        r"#?\s*(?:of )?(?:pretrained |pre-trained |training |seen )?tokens|# of pretrained tokens"
        r"|pretraining length|n tokens|训练\s*tokens?",
        "training_tokens",
    ),
    (r"training data|data ?set|pre-?training data|fine-?tuning data|训练数据|数据集", "training_data"),
    (r"developer|developed by|organi[sz]ation|owner|开发者|机构|研发机构", "developer"),
    (r"training cost(?: \(\w+\))?|cost|训练成本", "training_cost"),
    (r"training hardware|hardware|训练硬件", "training_hardware"),
    (r"gpu memory|memory|vram|显存|minimum requirement|minimum gpu memory(?: usage)?", "memory_requirement"),
    (r"architecture|arch|架构|模型结构", "architecture"),
    (r"languages?|语言", "languages"),
]
_HEADER_RES = [(re.compile(rf"^(?:{p})$", re.IGNORECASE), a) for p, a in _HEADERS]
_MODEL_HEADER = re.compile(r"^(?:models?|model name|name|model family|模型|模型名称|名称)$", re.IGNORECASE)
_VERSION_HEADER = re.compile(r"^(?:weights? )?version$", re.IGNORECASE)
_DATA_HEADER = re.compile(r"^(?:data ?source|dataset|source|task|metric|category|no)$", re.IGNORECASE)
_KV_HEADER = re.compile(r"^(?:hyper-?parameters?|parameter|property|key|field)$", re.IGNORECASE)
_EMPTY_CELL = re.compile(r"^(?:-+|—|n/?a|none|\\-|✗|✓|✔|\s*)$", re.IGNORECASE)


def header_attribute(cell: str) -> tuple[str | None, str]:
    """The attribute a header or row label names, and its parenthesised qualifier: 'Training cost (7B)'."""
    text = cell.strip().strip("*`_").strip()
    qualifier = ""
    m = re.match(r"^(.*?)\s*[(（]([^)）]{1,20})[)）]\s*$", text)
    if m:
        text, qualifier = m.group(1), m.group(2)
    for pattern, attribute in _HEADER_RES:
        if pattern.match(text):
            return attribute, qualifier
    return None, ""


@dataclass
class Cell:
    start: int
    end: int
    text: str


def split_row(ctx: Context, index: int) -> list[Cell]:
    line = ctx.lines[index]
    base = ctx.line_starts[index]
    s, e = 0, len(line)
    while s < e and line[s] == " ":
        s += 1
    while e > s and line[e - 1] in " \t":
        e -= 1
    if s < e and line[s] == "|":
        s += 1
    if e > s and line[e - 1] == "|":
        e -= 1
    cells, pos = [], s
    for part in line[s:e].split("|"):
        raw_start, raw_end = pos, pos + len(part)
        cs, ce = raw_start, raw_end
        while cs < ce and line[cs] in " *`_":
            cs += 1
        while ce > cs and line[ce - 1] in " *`_":
            ce -= 1
        cells.append(Cell(base + cs, base + ce, line[cs:ce]))
        pos = raw_end + 1
    return cells


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*", line))


def table_blocks(ctx: Context) -> Iterator[list[int]]:
    block: list[int] = []
    for i, line in enumerate(ctx.lines):
        if (
            i not in ctx.blocked
            and line.count("|") >= 1
            and len(line.strip()) > 2
            and not line.strip().startswith("- ")
        ):
            block.append(i)
            continue
        if len(block) >= 2:
            yield block
        block = []
    if len(block) >= 2:
        yield block


def _cell_model(ctx: Context, text: str) -> bool:
    key = model_key(text)
    if not key or is_stop(key) or re.fullmatch(r"[\d.,\s]+[KMBT]?|[\d.]+[KMBT]?\s*\w*", text.strip()):
        return False
    head = re.match(r"[A-Za-z][\w.+\-]*", text.strip())
    if not head:
        return False
    head_key = model_key(head.group(0))
    # a data source named after its corpus ("RefinedWeb-English") is not a model
    return not (is_stop(head_key) or head_key.startswith(("refinedweb", "redpajama", "commoncrawl", "wikipedia")))


def table_facts(ctx: Context) -> Iterator[Candidate]:
    for block in table_blocks(ctx):
        ctx.blocked.update(block)
        rows = [i for i in block if not _is_separator(ctx.lines[i])]
        if not rows:
            continue
        headerless = _is_separator(ctx.lines[block[0]])
        header = [] if headerless else split_row(ctx, rows[0])
        body = rows if headerless else rows[1:]
        yield from _table(ctx, header, [split_row(ctx, i) for i in body], body)


def _table(ctx: Context, header: list[Cell], rows: list[list[Cell]], row_lines: list[int]) -> Iterator[Candidate]:
    labels = [c.text for c in header]
    attrs = [header_attribute(label) for label in labels]
    # label | value tables (hyperparameters, specifications): one fact per row
    if not header or (len(header) >= 2 and _KV_HEADER.match(labels[0]) and re.match(r"(?i)value", labels[1])):
        for cells, line in zip(rows, row_lines):
            if len(cells) < 2:
                continue
            attribute, qualifier = header_attribute(cells[0].text)
            model = ctx.fallback_model(cells[0].start)
            if attribute and model and not _EMPTY_CELL.match(cells[1].text):
                yield _cell_candidate(ctx, model, attribute, cells[1], line, qualifier)
        return
    # transposed: the header row names the models, the first column the attributes
    model_cols = [j for j, label in enumerate(labels[1:], 1) if _cell_model(ctx, label)]
    if (
        _MODEL_HEADER.match(labels[0])
        and len(model_cols) >= 2
        and any(header_attribute(r[0].text)[0] for r in rows if r)
    ):
        for cells, line in zip(rows, row_lines):
            attribute, qualifier = header_attribute(cells[0].text) if cells else (None, "")
            if not attribute:
                continue
            for j in model_cols:
                if j < len(cells) and not _EMPTY_CELL.match(cells[j].text):
                    model = labels[j] if not qualifier else f"{labels[j]}-{qualifier}"
                    yield _cell_candidate(ctx, model, attribute, cells[j], line, qualifier)
        return
    if not any(a for a, _ in attrs) or (labels and _DATA_HEADER.match(labels[0])):
        return
    model_col = next((j for j, label in enumerate(labels) if _MODEL_HEADER.match(label)), None)
    version_col = next((j for j, label in enumerate(labels) if _VERSION_HEADER.match(label)), None)
    if model_col is None and version_col is None and labels and not attrs[0][0]:
        names = [r[0].text for r in rows if r and r[0].text]
        if names and sum(_cell_model(ctx, n) for n in names) * 2 > len(names):
            model_col = 0
    size_col = next((j for j, (a, _) in enumerate(attrs) if a == "parameters"), None)
    for cells, line in zip(rows, row_lines):
        if len(cells) < 2:
            continue
        if model_col is not None:
            if model_col >= len(cells) or not _cell_model(ctx, cells[model_col].text):
                continue
            model = cells[model_col].text
            size = cells[size_col].text if size_col is not None and size_col < len(cells) else ""
            if size and quantity(size) and not re.search(r"\d(?:\.\d+)?\s?[BMbm]\b", model):
                size_text = re.match(r"[\d.]+\s?[KMBTkmbt]?", size.strip())
                model = f"{model} {size_text.group(0)}" if size_text else model
        elif version_col is not None and ctx.doc_model:
            model = f"{ctx.doc_model} {cells[version_col].text}"
        else:
            # no model column: only a per-setting memory table belongs to the section's model
            model = ctx.fallback_model(cells[0].start) or ""
            if not model or not any(a == "memory_requirement" for a, _ in attrs):
                continue
        qualifier = " ".join(
            cells[j].text
            for j, (a, _) in enumerate(attrs)
            if j < len(cells) and a is None and j not in (model_col, version_col) and len(cells[j].text) <= 24
        )
        for j, (attribute, _) in enumerate(attrs):
            if (
                attribute
                and j < len(cells)
                and j not in (model_col, version_col)
                and not _EMPTY_CELL.match(cells[j].text)
            ):
                if attribute == "training_data" and re.fullmatch(rf"{QUANTITY}\s*\w*", cells[j].text):
                    continue  # "370M tokens" is an amount, not a dataset
                q = qualifier if attribute == "memory_requirement" else ""
                yield _cell_candidate(ctx, model, attribute, cells[j], line, q)


def _cell_candidate(ctx: Context, model: str, attribute: str, cell: Cell, line: int, qualifier: str) -> Candidate:
    qs, qe = ctx.line_span(line)
    vs, ve = cell.start, cell.end
    if attribute in ("base_model", "developer", "training_data"):
        # "BigScience (website)": the parenthesis is a link that did not survive cleaning
        m = re.match(r"^(.*?)\s*\((?:website|link[^)]*)\)\s*$", cell.text)
        if m:
            ve = vs + len(m.group(1))
    return Candidate(model, attribute, vs, ve, qs, qe, "table", qualifier)


# ---------------------------------------------------------------------------------------------
# Flattened tables
# ---------------------------------------------------------------------------------------------

# Column names a flattened header may be made of, and the shape of their cells.
_FLAT_COLUMNS: list[tuple[str, str, str | None]] = [
    ("Type", "category", "architecture"),
    ("Model Name", "name", None),
    ("Model", "name", None),
    ("#Parameters", "sizes", "parameters"),
    ("# Parameters", "sizes", "parameters"),
    ("Number of parameters", "sizes", "parameters"),
    ("Parameters", "sizes", "parameters"),
    ("Params", "sizes", "parameters"),
    ("Size", "sizes", "parameters"),
    ("Release Date", "year", "release_date"),
    ("Release", "year", "release_date"),
    ("Year", "year", "release_date"),
    ("Base Models", "basename", "base_model"),
    ("Base Model", "basename", "base_model"),
    ("Open Source", "check", None),
    ("Open-Source", "check", None),
    ("#Tokens", "sizes", "training_tokens"),
    ("# Tokens", "sizes", "training_tokens"),
    ("n tokens", "sizes", "training_tokens"),
    ("Tokens", "sizes", "training_tokens"),
    ("dimension", "int", None),
    ("n heads", "int", None),
    ("n layers", "int", None),
    ("Learning rate", "sci", None),
    ("Learn rate", "sci", None),
    ("Batch size", "size_or_int", None),
]
_FLAT_LOOKUP = sorted(_FLAT_COLUMNS, key=lambda c: -len(c[0]))


_FLAT_START = re.compile("|".join(re.escape(c[0]) for c in _FLAT_LOOKUP), re.IGNORECASE)


def split_flat_header(line: str) -> list[tuple[str, str, str | None]] | None:
    """'TypeModel Name#ParametersRelease...' -> its columns, if known column names cover it exactly."""
    s = line.strip()
    if len(s) > 200 or "|" in s or not _FLAT_START.match(s):
        return None

    @cache
    def parse(pos: int) -> tuple[tuple[str, str, str | None], ...] | None:
        while pos < len(s) and s[pos] == " ":
            pos += 1
        if pos == len(s):
            return ()
        for column in _FLAT_LOOKUP:
            label = column[0]
            if s[pos : pos + len(label)].lower() == label.lower():
                rest = parse(pos + len(label))
                if rest is not None:
                    return (column, *rest)
        return None

    columns = parse(0)
    if not columns or len(columns) < 3 or "|" in s:
        return None
    kinds = [c[1] for c in columns]
    if not any(c[2] for c in columns) or not ("name" in kinds or "sizes" in kinds):
        return None
    return list(columns)


_SIZE_ITEM = r"(?:[1-9]\d*|0)(?:\.\d+)?[KMBT]"
_SIZE_LIST_RE = re.compile(rf"{_SIZE_ITEM}(?:,\s*{_SIZE_ITEM})*")
_CATEGORY_RE = re.compile(
    r"(?i:encoder-only|decoder-only|encoder-decoder)|[A-Z][A-Za-z0-9]*(?: [A-Z][A-Za-z0-9]*)* Family"
    r"|Other(?: [A-Za-z]+)*? LLMs"
)


def _ends(kind: str, s: str, pos: int) -> Iterator[tuple[int, bool]]:
    """Where a cell of this kind starting at pos may end; the flag marks a unitless size."""
    if kind in ("sizes", "year", "basename", "check", "size_or_int") and s.startswith("-", pos):
        yield pos + 1, False
    if kind in ("check", "basename", "sizes"):
        yield pos, False  # an empty cell
    if kind == "check":
        if pos < len(s) and s[pos] in "✓✗✔":
            yield pos + 1, False
    elif kind == "category":
        m = _CATEGORY_RE.match(s, pos)
        if m:
            yield m.end(), False
    elif kind in ("name", "basename"):
        for end in range(pos + 1, min(len(s), pos + 40) + 1):
            cell = s[pos:end]
            if (
                not re.match(r"[A-Za-z]", cell)
                or cell[-1] in " -.("
                or ", " in cell
                or cell.count("(") != cell.count(")")
            ):
                continue
            if end < len(s) and cell[-1].isalpha() and s[end].islower():
                continue  # never split inside a word
            yield end, False
    elif kind in ("sizes", "size_or_int"):
        m = _SIZE_LIST_RE.match(s, pos)
        if m:
            for item in re.finditer(_SIZE_ITEM, s[pos : m.end()]):
                yield pos + item.end(), False
        if kind == "size_or_int" or not m:
            m2 = re.match(r"[1-9]\d*", s[pos:])
            if m2:
                for k in range(1, len(m2.group(0)) + 1):
                    yield pos + k, kind == "sizes"
    elif kind == "year":
        if re.match(YEAR, s[pos : pos + 4]):
            yield pos + 4, False
    elif kind == "int":
        m = re.match(r"\d+", s[pos:])
        if m:
            for k in range(1, len(m.group(0)) + 1):
                yield pos + k, False
    elif kind == "sci":
        m = re.match(r"\d+(?:\.\d+)?\.?E[-+]?\d{2}", s[pos:])
        if m:
            yield pos + m.end(), False


def parse_flat_row(s: str, kinds: Sequence[str], limit: int = 400) -> list[list[tuple[int, int, bool]]]:
    """Every way the row splits into cells of these kinds (at most `limit`)."""
    parses: list[list[tuple[int, int, bool]]] = []

    def walk(col: int, pos: int, acc: list[tuple[int, int, bool]]) -> None:
        if len(parses) >= limit:
            return
        while pos < len(s) and s[pos] == " ":
            pos += 1
        if col == len(kinds):
            if pos == len(s):
                parses.append(list(acc))
            return
        for end, unitless in _ends(kinds[col], s, pos):
            acc.append((pos, end, unitless))
            walk(col + 1, end, acc)
            acc.pop()

    walk(0, 0, [])
    return parses


def _ascending(s: str, span: tuple[int, int, bool]) -> bool:
    values = [quantity(v) or 0.0 for v in re.findall(_SIZE_ITEM, s[span[0] : span[1]])]
    return all(a < b for a, b in zip(values, values[1:]))


def flat_table_facts(ctx: Context) -> Iterator[Candidate]:
    i = 0
    while i < len(ctx.lines):
        columns = split_flat_header(ctx.lines[i]) if i not in ctx.blocked else None
        if not columns:
            i += 1
            continue
        kinds = [c[1] for c in columns]
        ctx.blocked.add(i)
        rows: list[tuple[int, list[list[tuple[int, int, bool]]]]] = []
        j = i + 1
        while j < len(ctx.lines):
            s = ctx.lines[j].strip()
            if not s:
                j += 1
                continue
            parses = parse_flat_row(s, kinds)
            if not parses:
                # a row whose cells do not fit (ERNIE's "4TB") is skipped; a paragraph ends the table
                if not ctx.lines[j - 1].strip() or re.search(r"[。！？]|\s{2,}\S+\s", s) or len(s) > 120:
                    break
                ctx.blocked.add(j)
                j += 1
                continue
            rows.append((j, parses))
            ctx.blocked.add(j)
            j += 1
        yield from _flat_rows(ctx, columns, rows)
        i = j


def _flat_rows(ctx: Context, columns, rows) -> Iterator[Candidate]:
    kinds = [c[1] for c in columns]
    name_col = kinds.index("name") if "name" in kinds else None
    base_col = kinds.index("basename") if "basename" in kinds else None
    size_cols = [k for k, c in enumerate(columns) if c[2] == "parameters"]
    token_cols = [k for k, c in enumerate(columns) if c[2] == "training_tokens"]

    def score(s: str, parse, known: set[str]) -> tuple:
        asc = all(_ascending(s, parse[k]) for k in size_cols)
        unitless = sum(parse[k][2] for k in range(len(parse)))
        in_table = in_world = True
        if base_col is not None:
            b = s[parse[base_col][0] : parse[base_col][1]]
            # a base the table itself lists as a row beats a name known from elsewhere
            in_table = b in ("", "-") or model_key(b) in known
            in_world = in_table or model_key(b) in _known_keys()
        sizes = sum(parse[k][1] - parse[k][0] for k in size_cols)
        tokens = sum(parse[k][1] - parse[k][0] for k in token_cols)
        filled = all(parse[k][1] > parse[k][0] for k in size_cols)
        return (asc, filled, -unitless, in_table, in_world, sizes, tokens)

    def best(s: str, parses, known: set[str]):
        scored = [(score(s, p, known), p) for p in parses]
        top = max(sc for sc, _ in scored)
        return [p for sc, p in scored if sc == top]

    # first pass: the rows' own names, so a base model cell can prefer a name the table uses
    known: set[str] = set()
    if name_col is not None:
        for j, parses in rows:
            s = ctx.lines[j].strip()
            for p in best(s, parses, set()):
                known.add(model_key(s[p[name_col][0] : p[name_col][1]]))
    for j, parses in rows:
        line = ctx.lines[j]
        offset = ctx.line_starts[j] + (len(line) - len(line.lstrip()))
        s = line.strip()
        chosen = best(s, parses, known)
        cells = []
        for k in range(len(columns)):
            spans = {(p[k][0], p[k][1], p[k][2]) for p in chosen}
            cells.append(next(iter(spans)) if len(spans) == 1 else None)  # ambiguous cells say nothing
        if name_col is not None:
            if cells[name_col] is None:
                continue
            model = s[cells[name_col][0] : cells[name_col][1]]
        else:
            base = ctx.fallback_model(offset)
            size = cells[size_cols[0]] if size_cols else None
            if not base or size is None:
                continue
            model = f"{base} {s[size[0] : size[1]]}"
        qs, qe = ctx.line_span(j)
        for k, (_, _kind, attribute) in enumerate(columns):
            cell = cells[k]
            if not attribute or cell is None or cell[0] == cell[1] or cell[2]:
                continue
            value = s[cell[0] : cell[1]]
            if value == "-":
                continue
            if attribute == "architecture" and not normalize_architecture(value):
                continue
            yield Candidate(model, attribute, offset + cell[0], offset + cell[1], qs, qe, "flat_table")


# ---------------------------------------------------------------------------------------------
# Key-value lines
# ---------------------------------------------------------------------------------------------

_KEYS: list[tuple[str, str]] = [
    (
        r"developed by|developers?|model developers?|organi[sz]ation developing the model|organi[sz]ation|owner"
        r"|开发者|研发机构|开发机构|发布者",
        "developer",
    ),
    (r"release date(?: estimate)?|released|model dates?|发布时间|发布日期", "release_date"),
    (r"parameters|params|number of parameters|n_parameters|参数|参数量|参数规模|模型参数|model size", "parameters"),
    (r"base model|finetuned from model|fine-tuned from(?: model)?|finetuned from|基座模型|基础模型", "base_model"),
    (r"licen[cs]e|model licen[cs]e|许可证?|开源协议|协议", "licence"),
    (
        r"context length|context window|sequence length|max(?:imum)? sequence length(?: \(context\))?"
        r"|max(?:imum)? length|上下文长度|最大长度",
        "context_length",
    ),
    (r"(?:total )?(?:seen |training |pretraining )?tokens|训练tokens?|训练数据量", "training_tokens"),
    (r"training data(?:set)?|data ?set|datasets|训练数据|数据集", "training_data"),
    (r"architecture|model architecture|架构|模型结构", "architecture"),
    (r"languages?|language\(s\)(?: \(nlp\))?|语言|支持语言", "languages"),
    (r"training cost|estimated cost of training|cost|训练成本|训练费用", "training_cost"),
    (r"hardware(?: type)?|training hardware|gpus|训练硬件", "training_hardware"),
    (r"gpu memory|memory requirements?|显存|vram|minimum gpu memory", "memory_requirement"),
]
_KEY_RES = [(re.compile(rf"^(?:{p})$", re.IGNORECASE), a) for p, a in _KEYS]
_KV_LINE = re.compile(
    r"^\s*(?:[-*+•]\s+)?(?:\*\*(?P<bold>[^*\n]{2,50}?):?\*\*:?|(?P<plain>[A-Za-z][A-Za-z ()/_-]{1,50}?"
    r"|[\u4e00-\u9fff]{2,8})\s*[:：])"
    r"\s*(?P<value>\S.*?)\s*$",
    re.MULTILINE,
)
_BOLD_LABEL = re.compile(r"^\s*\*\*(?P<label>[^*\n]{2,50}?):?\*\*\s*$")


def key_attribute(label: str) -> str | None:
    label = re.sub(r"\s+", " ", label.strip().strip(":：")).lower()
    for pattern, attribute in _KEY_RES:
        if pattern.match(label):
            return attribute
    return None


def _kv_value_ok(attribute: str, value: str) -> bool:
    """A key's value must be a value, not a sentence: 'Model date: LLaMA was trained between ...'."""
    if len(value) > 90 or re.search(r"\b(?:was|were|is|are)\s+trained\b|训练了?于|trained between", value):
        return False
    if attribute == "release_date":
        return normalize_date(value) is not None and not re.search(r"train", value, re.IGNORECASE)
    if attribute in ("developer", "base_model"):
        return len(value) <= 60 and not re.search(r"[。！？]|\. [A-Z]", value)
    if attribute == "memory_requirement" and re.search(r"per (?:node|gpu|device)", value, re.IGNORECASE):
        return False  # a machine's specification, not what the model needs
    if attribute == "architecture":
        return normalize_architecture(value) is not None or (
            len(value) <= 40 and not re.search(r"\b(?:is|are)\b", value)
        )
    if attribute == "licence":
        # "Code and data are licensed under the Apache 2.0 license." is the code's licence, not the model's
        return not (_NON_MODEL_SUBJECT.search(value) and not re.search(r"weights?|model", value, re.IGNORECASE))
    return True


def key_value_facts(ctx: Context) -> Iterator[Candidate]:
    text = ctx.text
    for i, line in enumerate(text.split("\n")):
        if i in ctx.blocked or i in ctx.heading_lines:
            continue
        start = ctx.line_starts[i]
        m = _KV_LINE.match(line)
        if m:
            label = m.group("bold") or m.group("plain")
            attribute = key_attribute(label)
            value = ctx.view[start + m.start("value") : start + m.end("value")].replace("\0", "").strip()
            if attribute and _kv_value_ok(attribute, value):
                model = ctx.fallback_model(start)
                if model:
                    yield _kv_candidate(
                        ctx,
                        model,
                        attribute,
                        start + m.start("value"),
                        start + m.end("value"),
                        start,
                        start + len(line),
                    )
            continue
        # a bold label alone, its value on the next line: "**License**" / "Non-commercial bespoke license"
        bold = _BOLD_LABEL.match(line)
        heading = ctx.headings and i in ctx.heading_lines
        if (bold or heading) and i + 1 < len(ctx.lines):
            label = bold.group("label") if bold else ""
            attribute = key_attribute(label) if bold else None
            if attribute:
                j = i + 1
                nxt = ctx.lines[j]
                if nxt.strip() and _kv_value_ok(attribute, nxt.strip()):
                    model = ctx.fallback_model(start)
                    ns = ctx.line_starts[j]
                    if model:
                        yield _kv_candidate(ctx, model, attribute, ns, ns + len(nxt), start, ns + len(nxt))
    # a heading that names an attribute, its value a short paragraph: "## Model License" / "Apache-2.0"
    for h in ctx.headings:
        title = re.sub(r"^#+\s*", "", ctx.view[h.start : h.end]).strip()
        title = re.split(r"\s+(?:and|&)\s+", title)[0]  # "Model Architecture and Objective"
        attribute = key_attribute(re.sub(r"^model ", "", title, flags=re.IGNORECASE)) or key_attribute(title)
        if not attribute:
            continue
        j = h.line + 1
        while j < len(ctx.lines) and not ctx.lines[j].strip():
            j += 1
        if j >= len(ctx.lines) or j in ctx.blocked or j in ctx.heading_lines:
            continue
        if attribute in ("architecture", "training_hardware"):
            # "### Model Architecture" / "* Decoder-only architecture": the first bullet that says it
            yield from _heading_bullets(ctx, h, attribute)
            continue
        value = ctx.lines[j].strip()
        after_blank = j + 1 >= len(ctx.lines) or not ctx.lines[j + 1].strip()
        if len(value) <= 40 and after_blank and _kv_value_ok(attribute, value):
            model = ctx.fallback_model(ctx.line_starts[j])
            if model:
                vs = ctx.line_starts[j]
                yield _kv_candidate(ctx, model, attribute, vs, vs + len(ctx.lines[j]), h.start, vs + len(ctx.lines[j]))


def _heading_bullets(ctx: Context, h: Heading, attribute: str) -> Iterator[Candidate]:
    j = h.line + 1
    while j < len(ctx.lines) and j not in ctx.heading_lines:
        line = ctx.lines[j]
        bullet = _BULLET.match(line)
        if bullet and j not in ctx.blocked:
            body = line[bullet.end() :]
            start = ctx.line_starts[j] + bullet.end()
            if attribute == "architecture" and normalize_architecture(body) and len(body) <= 40:
                m = re.search(r"(?i)decoder[- ]only|encoder[- ]only|encoder[- ]decoder|mixture[- ]of[- ]experts", body)
                if m:
                    model = ctx.fallback_model(start)
                    if model:
                        yield Candidate(
                            model,
                            attribute,
                            start + m.start(),
                            start + m.end(),
                            ctx.line_starts[j],
                            ctx.line_starts[j] + len(line),
                            "key_value",
                        )
                    return
            if attribute == "training_hardware":
                m = re.match(rf"(\d[\d,]*\s+(?:NVIDIA\s+)?{CHIP}(?:\s+\d+\s?GB)?(?:\s+GPUs)?)", body)
                if m:
                    model = ctx.fallback_model(start)
                    if model:
                        yield Candidate(
                            model,
                            attribute,
                            start,
                            start + m.end(),
                            ctx.line_starts[j],
                            ctx.line_starts[j] + len(line),
                            "key_value",
                        )
                    return
        j += 1


def _kv_candidate(ctx: Context, model: str, attribute: str, vs: int, ve: int, qs: int, qe: int) -> Candidate:
    value = ctx.view[vs:ve]
    # "BigScience (website)", "RAIL License v1.0 (link / article and FAQ)": drop a dead link's parenthesis
    m = re.search(r"\s*\((?:website|link[^)]*|see [^)]*)\)\s*$", value)
    if m:
        ve = vs + m.start()
    if attribute == "parameters":
        q = re.search(QUANTITY, ctx.view[vs:ve])
        if q:
            vs, ve = vs + q.start(), vs + q.end()
    return Candidate(model, attribute, vs, ve, qs, qe, "key_value")


# ---------------------------------------------------------------------------------------------
# Prose (and the descriptions of a list post)
# ---------------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(
    r"[。！？!?；]+"
    r"|\.(?=\s)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bet al\.)(?<!\bvs\.)(?<!\bNo\.)(?<!\bJan\.)(?<!\bFeb\.)(?<!\bMar\.)"
    r"(?<!\bApr\.)(?<!\bAug\.)(?<!\bSep\.)(?<!\bOct\.)(?<!\bNov\.)(?<!\bDec\.)(?<!\bDecember\.)(?<![A-Z]\.)"
    r"|\n(?=\s*(?:[-*+•]|\d+[.)、])\s)|\n(?=\s*\[\d{4})|\n\s*\n"
)
_CLAUSE_END = re.compile(r"[，,；;]\s*|\s+(?:while|whereas|but)\s+|而")
_NEGATIVE = re.compile(
    r"推荐|建议|如果|例如|比如|即使|相比|recommend|suggest|for example|for instance|e\.g\."
    r"|\ban example\b|\bexample (?:for|of)\b|if you|\beven |such as|compared"
    r"|configuration",
    re.IGNORECASE,
)
_NON_MODEL_SUBJECT = re.compile(
    r"\b(?:code|codes|repository|repo|scripts?|resources|dataset|data|demo|app|tokenizer|source files)\b"
    r"|代码|数据集|仓库",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    list_name: str | None = None  # in a list post: the model the description line describes


def sentences(ctx: Context, prose: str) -> list[Sentence]:
    found = []
    pos = 0
    for m in _SENTENCE_END.finditer(prose):
        end = m.end() if m.group(0).strip() else m.start()
        if prose[pos:end].strip():
            found.append((pos, end))
        pos = m.end()
    if prose[pos:].strip():
        found.append((pos, len(prose)))
    result = []
    for s, e in found:
        while s < e and prose[s] in " \t\n\0":
            s += 1
        line = ctx.line_of(s)
        name_line = ctx.list_pairs.get(line)
        list_name = clean_name(ctx.lines[name_line]) if name_line is not None else None
        result.append(Sentence(s, e, list_name))
    return result


def prose_view(ctx: Context) -> str:
    """The view with everything that is not running text blanked (tables, front matter, headings)."""
    chars = list(ctx.view)
    for i in ctx.blocked | ctx.heading_lines:
        s, e = ctx.line_span(i)
        # NUL, not space: no pattern matches it, and a \s* never runs across a blanked table
        chars[s:e] = "\0" * (e - s)
    return "".join(chars)


MODEL_SLOT = "@@M"  # where a pattern expects a model name; filled from the mentions, not by regex


@dataclass(frozen=True)
class Pattern:
    attribute: str
    regex: re.Pattern[str]
    subject: str = "sentence"  # sentence, after (the model after the value), m (the slot), list (list mode only)
    # A pattern that opens with a variable part is only tried near its cheap literal trigger, so it
    # does not run from every position of the text.
    trigger: re.Pattern[str] | None = None
    back: int = 60
    not_after: re.Pattern[str] | None = None  # the text just before the match must not end like this


def _p(
    attribute: str,
    pattern: str,
    subject: str = "sentence",
    flags: int = re.IGNORECASE,
    trigger: str | None = None,
    not_after: str | None = None,
) -> Pattern:
    return Pattern(
        attribute,
        re.compile(pattern, flags | re.MULTILINE),
        subject,
        re.compile(trigger) if trigger else None,
        60,
        re.compile(not_after + r"\s*$", re.IGNORECASE) if not_after else None,
    )


# What may follow a would-be base model and show it is not one.
_NOT_A_BASE = (
    "数据",
    "架构",
    "框架",
    "结构",
    "技术",
    "方法",
    "论文",
    "产生",
    "生成",
    "得到",
    "打分",
    "评估",
    "的数据",
    "的方法",
)
_NOT_A_BASE_EN = (
    r"(?:attention|technique|method|approach|algorithm|architecture|framework|paper|strategy|librar|toolkit"
    r"|codebase|code|dataset|data\b|corpus|prompts?\b)"
)

# "an evaluation framework based on GPT-4" says nothing about a base model
_NOT_BASED_ON = (
    r"\b(?:framework|evaluations?|platform|tool|system|app|application|interface|benchmark|method|approach"
    r"|implementation|judge|code|scripts?|demo|data|dataset|generated|obtained|answers?|responses?)"
)


SIZE = rf"{QUANTITY}"
SIZE_LIST = rf"{SIZE}(?:\s*(?:,|、|/|和|及|and|, and)\s*{SIZE})+"
RANGE_EN = rf"from\s+{SIZE}(?:\s+parameters)?\s+to\s+{SIZE}"
RANGE_ZH = rf"(?:从\s*)?{SIZE}\s*(?:到|至|~|-)\s*{SIZE}"
ORG_EN = (
    r"(?:the\s+)?[A-Z][\w.&'-]*(?:\s+(?:of|the|and|&|for|at|[A-Z][\w.&'-]*))*?(?:\s+(?:team|group|lab|labs|institute))?"
)
ORG_ZH = r"[A-Za-z][\w .&-]{1,30}?|[\u4e00-\u9fffA-Za-z·]{2,14}?"
DEV_VERB_ZH = r"(?:开源|发布|推出|出品|研发|开发|训练|提出|构建)"


@lru_cache(maxsize=1)
def extraction_patterns() -> list[Pattern]:
    """The prose patterns, compiled on first extraction: reading the fact store (what `ask` does) needs
    none of them, so a cold `ask` does not compile a hundred regexes it never runs."""
    patterns: list[Pattern] = [
        # parameters
        _p("parameters", rf"{MODEL_SLOT},\s+an?\s+(?P<v>{SIZE})[- ]param(?:eter)?s?\b", "m", trigger=r",\s+an?\s+\d"),
        _p("parameters", rf"(?P<v>{RANGE_EN})\s+parameters"),
        _p("parameters", rf"ranging\s+(?:in scale\s+)?(?P<v>{RANGE_EN})"),
        _p(
            "parameters",
            rf"(?:sizes?|comes in|includes|variants?)[^.。\n]{{0,30}}?[:—–-]?\s*(?P<v>{SIZE_LIST})(?:\s+(?:parameters"
            rf"|models))?",
        ),
        _p(
            "parameters",
            rf"(?<![\w.])(?P<v>{SIZE})[- ]param(?:eter)?s?\b",
            trigger=r"[- ]param",
            not_after=r"\b(?:train|fine-?tune|finetune|run|load|fit|serve|on|for)\s+(?:a|an|the)",
        ),
        _p("parameters", rf"(?<![\w.])(?P<v>{SIZE})\s+parameters", trigger=r"\sparameters"),
        _p("parameters", rf"(?P<v>{NUMBER}\s?(?:billion|million|trillion))\s+parameters?", trigger=r"illion\s+param"),
        _p("parameters", r"(?<![\d.,])(?P<v>(?:\d{1,3},)(?:\d{3},)+\d{3})\s+parameters"),
        _p("parameters", rf"(?P<v>{RANGE_ZH})\s*(?:个)?\s*(?:参数|的\s*\d+\s*个\s*模型)", trigger="参数|个模型"),
        _p("parameters", rf"参数(?:量|规模)?(?:范围)?\s*(?P<v>{RANGE_ZH})"),
        _p(
            "parameters",
            rf"(?<![到至~\-\d.])(?P<v>{SIZE})\s*(?:个)?\s*参数(?!量?的?\s*\d+\s*多个)",
            "after",
            trigger="参数",
        ),
        _p("parameters", rf"参数(?:量|规模|数量)?(?:多达|达到?|为|约为?|高达|最高达|有)\s*(?P<v>{SIZE})"),
        _p(
            "parameters",
            rf"(?:包含|包括|有)\s*(?P<v>{SIZE_LIST})\s*(?:[一二三四五六七八九十\d]+\s*(?:个|种))?\s*(?:不同的)?\s*(?:参数)?规模",
        ),
        _p("parameters", rf"规模[^，。\d]{{0,4}}(?P<v>{RANGE_ZH}|{SIZE})"),
        _p(
            "parameters",
            rf"^[ \t]*(?:\S{{0,8}}?)(?P<v>{SIZE}(?:\s*[,，、/ ]\s*{SIZE})*)\s*(?:的)?(?:大|年夜)?模型",
            "list",
        ),
        # training tokens
        _p(
            "training_tokens",
            rf"(?:trained|pretrained|pre-trained|training|pre-training)\b[^.;。\n]{{0,40}}?\b(?:on|for"
            rf"|with)\s+(?:a total of\s+|a massive\s+|approximately\s+|about\s+|around\s+|over\s+|roughly\s+|~)?"
            rf"(?P<v>{NUMBER}(?:\s*-\s*{NUMBER})?\s?(?:trillion|billion|million"
            rf"|[TBM](?![A-Za-z])))\s+(?:[\w-]+\s+){{0,2}}?tokens\b",
        ),
        _p("training_tokens", rf"(?:training data|data)\s+contains\s+(?P<v>{SIZE})\s+tokens"),
        _p(
            "training_tokens",
            rf"(?P<v>(?:{NUMBER}|[一二两三四五六七八九十])\s?(?:[TB](?![A-Za-z])|万亿|千亿|亿))\s*(?:个)?\s*(?:的\s*)?(?:tokens?|标记"
            rf"|标识符)[^，。；]{{0,24}}?(?:预训练|训练)",
            trigger=r"(?i)tokens?|标记|标识符",
        ),
        # context length
        _p(
            "context_length",
            rf"context\s+length(?:\s+of\s+[\w ]{{1,20}}?)?\s+from\s+(?P<w>\d[\d,]*\s?[kK]?)\s+in\s+{MODEL_SLOT}"
            r"\s+to\s+(?P<v>\d[\d,]*\s?[kK]?)(?!\w|\.\d)",
        ),
        _p(
            "context_length",
            r"context\s+(?:length|window(?:\s+length)?|size)\s+(?:of\s+"
            r"|is\s+)?(?:up to\s+)?(?P<v>\d[\d,]*\s?[kK]?)(?!\w|\.\d)",
        ),
        _p("context_length", r"(?P<v>\d[\d,]*\s?[kK]?)\s+(?:tokens?\s+)?context(?:\s+length|\s+window)"),
        _p(
            "context_length",
            r"(?:sequence length|receptive field)\s+(?:of\s+|is\s+|to\s+)?(?P<v>\d[\d,]*\s?[kK]?)(?!\w|\.\d)",
        ),
        _p("context_length", r"sequences\s+of\s+(?P<v>\d[\d,]*)\s+(?:consecutive\s+)?tokens"),
        _p("context_length", r"max(?:imum)?\s+(?P<v>\d[\d,]*)\s+sequence length"),
        _p("context_length", r"(?P<v>\d+\s?[kK]?)\s*(?:的)?\s*(?:上下文|上文|感受野)"),
        _p(
            "context_length",
            r"(?:上下文|上下文长度|上下文窗口)(?:大小|长度)?\s*(?:从\s*\d+\s*)?(?:增加|扩展|为|是|达到?)?至?\s*(?P<v>\d+\s?[kK]?)",
        ),
        # release dates
        _p(
            "release_date",
            rf"(?:released|introduced|launched|announced|open-sourced|published)\b[^.;。\n]{{0,60}}?\b(?:on"
            rf"|in)\s+(?P<v>{DATE})",
        ),
        _p("release_date", rf"(?:于|在)\s*(?P<v>{DATE})\s*(?:正式)?(?:发布|推出|公布|开源|发表)"),
        _p(
            "release_date",
            rf"(?P<v>{DATE})\s*[,，]\s*[^，。]{{0,16}}?(?:发布|推出)了\s*{MODEL_SLOT}",
            "m",
            trigger="(?:发布|推出)了",
        ),
        _p(
            "release_date",
            rf"^[ \t]*\[?(?P<v>{YEAR}[/-]\d{{1,2}}[/-]\d{{1,2}})\]?\s*"
            rf"(?:Release[sd]?|发布了?|开放了?|推出了?)\s+{MODEL_SLOT}",
            "m",
        ),
        # developers
        _p(
            "developer",
            rf"(?:developed|built|created|released|trained|made"
            rf"|open-sourced)\b[^.;。\n]{{0,50}}?\bby\s+(?:members of\s+)?(?P<v>{ORG_EN})(?=[\s,.;)]|$)",
            flags=0,
        ),
        _p(
            "developer",
            rf"(?P<v>{ORG_EN})\s+(?:developed|released|introduced|open-sourced)(?:\s+and\s+\w+)?\s+(?:the\s+)?{MODEL_SLOT}",
            "m",
            flags=0,
            trigger=r"\s(?:developed|released|introduced|open-sourced)\s",
        ),
        _p(
            "developer",
            rf"(?<![\w])(?P<v>[A-Z][\w.-]*(?:\s[A-Z][\w.-]*)?)(?:['’]s|['’])\s+{MODEL_SLOT}",
            "m",
            flags=0,
            trigger=r"\w['’]s?\s",
        ),
        _p(
            "developer",
            rf"由\s*(?P<v>{ORG_ZH})\s*(?:公司|团队|的研究人员|研究人员)?\s*(?:在\s*{DATE}\s*)?{DEV_VERB_ZH}",
            "after",
        ),
        _p("developer", rf"是\s*(?P<v>{ORG_ZH})\s*{DEV_VERB_ZH}的"),
        _p(
            "developer",
            rf"(?P<v>{ORG_ZH})\s*(?:与[^，。]{{1,10}}合作)?(?:发布|推出)了\s*{MODEL_SLOT}",
            "m",
            trigger="(?:发布|推出)了",
        ),
        _p("developer", rf"^[ \t]*(?P<v>{ORG_ZH})\s*(?:新|最新|正式)?{DEV_VERB_ZH}(?:的|了)?", "list"),
        _p("developer", r"^[ \t]*(?P<v>[A-Z]{2,}[\w-]*)\s+[\w-]+\s+model\b", "list", flags=0),
        # base models: a trigger, then the model right after it (filled from the mentions)
        _p("base_model", rf"fine-?tun(?:ing|es|e)\s+{MODEL_SLOT}"),
        _p("base_model", rf"fine-?tuned\s+from\s+{MODEL_SLOT}"),
        _p(
            "base_model",
            rf"(?:finetuned|fine-tuned|trained|built)\s+on\s+(?:top\s+of\s+)?{MODEL_SLOT}(?!\s+(?:data|dataset"
            rf"|conversations|corpus))",
        ),
        _p("base_model", rf"based on\s+{MODEL_SLOT}", not_after=_NOT_BASED_ON),
        _p("base_model", rf"derived from\s+{MODEL_SLOT}"),
        _p("base_model", rf"variant of\s+{MODEL_SLOT}"),
        _p("base_model", rf"initiali[sz]ed\s+(?:using|from|with)\s+{MODEL_SLOT}"),
        _p(
            "base_model",
            rf"(?:use|using|uses|used|utilizing|selected|chose|choose)\s+{MODEL_SLOT}\s+as\s+(?:the\s+)?base(?:\s+model)?",
            trigger=r"(?i)\sas\s+(?:the\s+)?base",
        ),
        _p("base_model", rf"with\s+the\s+{MODEL_SLOT}\s+base\b"),
        _p("base_model", rf"基于\s*{MODEL_SLOT}"),
        _p("base_model", rf"(?:从|由)\s*{MODEL_SLOT}\s*(?:模型)?\s*微调而来"),
        _p(
            "base_model",
            rf"在\s*{MODEL_SLOT}\s*(?:模型)?\s*(?:的基础上|基础上|上)\s*(?:进行|使用[^，。]{{0,12}})?\s*(?:指令|持续|连续|增量|二次)?\s*(?:微调|训练"
            rf"|预训练|扩展)",
        ),
        _p("base_model", rf"以\s*{MODEL_SLOT}\s*(?:模型)?\s*为\s*(?:基础|基座|底座)"),
        _p("base_model", rf"{MODEL_SLOT}\s*(?:模型)?\s*(?:基座|底座)", trigger="基座|底座"),
        _p("base_model", rf"(?:基座|底座)模型\s*{MODEL_SLOT}"),
        _p("base_model", rf"微调(?:了|后的|的)?\s*{MODEL_SLOT}"),
        _p("base_model", rf"对\s*{MODEL_SLOT}\s*(?:模型)?\s*进行\s*(?:指令)?微调"),
        _p("base_model", rf"(?:是|为)\s*{MODEL_SLOT}\s*的(?:另一个)?(?:衍生|变体|派生)"),
        _p("base_model", rf"{MODEL_SLOT}\s*(?:\+\s*[A-Za-z]+)+\s*微调", trigger="微调"),
        _p("base_model", rf"^[ \t]*{MODEL_SLOT}\s*(?:上|应用|使用|利用|运用|[\u4e00-\u9fff]{{0,8}}?微调)", "list"),
        # training data
        _p(
            "training_data",
            r"(?:trained|fine-?tuned|finetuned|pretrained|pre-trained|fine-?tuning\s+\S+(?:\s+base\s+model)?"
            r"|fine-?tune\s+\S+)\s+(?:(?!based\b)[\w'-]+\s+){0,2}?(?:on"
            r"|using)\s+(?P<v>[^.;:()\[\]。]{3,120}?)(?=[.;:()\[\]。]|,\s+[a-z]|\s+(?:with|for|to|in order|which|that"
            r"|generated|based)\b|\n\s*\n|\Z)",
        ),
        _p("training_data", r"training data\s+(?:is|includes|consists of)\s+(?P<v>[^.;:()。]{3,100}?)(?=[.;:()。]|$)"),
        _p(
            "training_data",
            rf"dataset for\s+{MODEL_SLOT}\s+consists\s+(?:\w+\s+)?of\s+(?P<v>[^.;:()。]{{3,80}}?)(?=[.;:()。]|$)",
            "m",
        ),
        _p(
            "training_data",
            rf"(?P<v>(?:the\s+)?(?-i:[A-Z])[\w.-]*(?:\s+[\w.-]+){{0,2}}\s+dataset)\s+(?:that|which)?\s*(?:was"
            rf"|is)?\s*used\s+to\s+(?:train|fine-?tune)\s+{MODEL_SLOT}",
            "m",
            trigger=r"used\s+to\s+(?:train|fine-?tune)",
        ),
        _p(
            "training_data",
            r"(?:trained|pretrained)\s+(?:on|using)\s+the\s+following\s+(?:\w+\s+){0,3}?(?:data|datasets?"
            r"|sources?)(?:\s+of\s+data)?:\s*(?P<v>(?:[^.\n]|\.\d)+)",
        ),
        _p(
            "training_data",
            r"(?:使用|利用|应用|运用)\s*(?:了)?\s*(?P<v>(?-i:[A-Za-z])[A-Za-z0-9.+\- ]{1,40}?|\d+[kK])\s*"
            r"(?:的)?\s*(?:对话|指令)?\s*(?:数据集?|语料)",
        ),
        _p(
            "training_data",
            r"在\s*(?P<v>[A-Za-z][A-Za-z0-9.+\-]{1,30})\s*(?:数据集?|语料库?)\s*上[^。]{0,20}?(?:训练|微调|预训练)",
        ),
        _p("training_data", r"(?:训练于|在)\s*(?P<v>[A-Z][A-Za-z0-9.+\-]{1,30})\s*语料库\s*上?\s*(?:训练|预训练)?"),
        _p("training_data", r"从\s*(?P<v>[A-Za-z][A-Za-z0-9.+\-]{1,30})\s*收集的"),
        # training cost
        _p(
            "training_cost",
            r"cost\s+of\s+training\s+{MODEL_SLOT}\s+(?:is|was)\s+(?:around\s+|about\s+|approximately\s+"
            r"|only\s+)?(?P<v>\$\s?\d[\d,.]*\s?[KkMm]?)".replace("{MODEL_SLOT}", MODEL_SLOT),
            "m",
        ),
        _p(
            "training_cost",
            r"(?:training\s+(?:run\s+)?|train\w*[^.]{0,40}?)costs?\s+(?:less than\s+|around\s+|about\s+|under\s+"
            r"|only\s+)?(?P<v>\$\s?\d[\d,.]*\s?[KkMm]?)",
        ),
        _p("training_cost", r"训练成本[^，。\d$]{0,6}(?P<v>\d[\d.,]*\s*万?\s*(?:美元|美金))"),
        _p(
            "training_cost",
            r"训练[^。，]{0,20}?[,，]\s*(?:不到|花费|仅需|只需|约)\s*(?P<v>\d[\d.,]*\s*万?\s*(?:美元|美金))",
        ),
        # hardware
        _p(
            "training_hardware",
            rf"(?:trained|training"
            rf"|train)\b[^.。;\n]{{0,80}}?\bon\s+(?:a\s+)?(?:single\s+)?(?:[\w-]+\s+){{0,6}}?"
            rf"(?P<v>(?:up to\s+)?(?:\d[\d,]*|a single|single)?\s*x?\s*\*?\s*(?:\d+\s?GB\s+)?(?:NVIDIA\s+"
            rf"|Nvidia\s+)?{CHIP}(?:[- ]?\d+\s?GBs?)?(?:\s+GPUs)?(?:\s+or\s+{CHIP})?(?:\s+pods)?)",
        ),
        _p(
            "training_hardware",
            rf"在\s*(?P<v>\d+\s*(?:个|张|块)\s*(?:\d+\s?GB\s*)?{CHIP}(?:\s*芯片)?)\s*上[^。]{{0,20}}?训练",
        ),
        # memory
        _p("memory_requirement", r"(?P<v>\d+(?:\.\d+)?\s?GB)\s+of\s+GPU\s+memory", trigger=r"GB\s+of\s+GPU"),
        _p(
            "memory_requirement",
            r"require[sd]?\s+(?:about\s+|around\s+|at least\s+)?(?P<v>\d+(?:\.\d+)?\s?GB)\s+of\s+GPU\s+memory",
        ),
        _p(
            "memory_requirement",
            r"GPU memory usage is\s+(?:about\s+)?(?P<v>\d+(?:\.\d+)?\s?GB)\s+under\s+(?P<q>[\w-]+\s+quantization)",
        ),
        _p("memory_requirement", r"and\s+only\s+(?P<v>\d+(?:\.\d+)?\s?GB)\s+under\s+(?P<q>[\w-]+\s+quantization)"),
        _p("memory_requirement", r"(?:最低|至少)?(?:只需|仅需|需要)\s*(?P<v>\d+(?:\.\d+)?\s?G(?:B)?)\s*显存"),
        # architecture
        _p(
            "architecture",
            r"(?P<v>decoder[- ]only|decoder-style|causal decoder-only|encoder[- ]only|encoder[- ]decoder"
            r"|mixture[- ]of[- ]experts|仅解码器|仅编码器|编码器-?解码器)",
            trigger=r"(?i)decoder|encoder|mixture|解码器|编码器",
        ),
        _p("architecture", r"based on\s+(?P<v>General Language Model\s*\(GLM\))\s+(?:framework|architecture)"),
        _p("architecture", r"基于\s*(?P<v>General Language Model\s*\(GLM\))\s*架构"),
        # languages
        _p(
            "languages",
            rf"(?:supports?|support for|bilingual|capable of|with a focus on|pretrained with|trained on|use in|(?:text"
            rf"|data|corpus) in)\s+(?:both\s+)?(?:the\s+)?(?P<v>{LANGUAGE}(?:\s*(?:,|and"
            rf"|&)\s*{LANGUAGE})*)(?:\s+(?:languages?|text|data))?",
        ),
        _p(
            "languages",
            rf"(?P<v>{LANGUAGE}(?:\s*(?:,|and)\s*{LANGUAGE})*)\s+language\s+only",
            trigger=r"language\s+only",
        ),
        _p("languages", r"(?P<v>中英双语|中英|双语\s*[(（]\s*英语和中文\s*[)）])"),
        # licences
        _p(
            "licence",
            rf"(?:released|available|licensed|made available|distributed|provided)\b[^.;。]{{0,80}}?\bunder\s+(?:the\s+"
            rf"|a\s+|an\s+)?(?:permissive\s+)?(?P<v>{LICENCE})",
        ),
        _p("licence", rf"(?:comply with|subject to|governed by)\s+(?:the\s+)?(?P<v>{LICENCE})"),
        _p("licence", r"with\s+a\s+(?:fully\s+)?permissive\s+(?P<v>Apache)\s+license"),
        _p("licence", rf"(?:weights?|weight diff)\s+(?:is|are)\s+(?:also\s+)?(?P<v>{LICENCE})"),
        _p(
            "licence",
            r"(?:licensed|available|intended)\s+(?:and licensed\s+)?for\s+(?P<v>non-commercial(?:\s+use)?(?:\s+only)?"
            r"|research(?:\s+use)?(?:\s+only)?)",
        ),
        _p("licence", r"(?P<v>for non-commercial use only|for research and learning only)"),
    ]
    return [_compile_slots(p) for p in patterns if p.attribute in ATTRIBUTES]


# Where a model slot is expected: "@@M" becomes a named group matched against the mentions.
_SLOT_RE = re.compile(r"(?P<m>[A-Za-z][A-Za-z0-9.+\-_]*(?:[ -]v?\d+(?:\.\d+)?)?(?: \d+(?:\.\d+)?[BbMm])?)")
_FILLER = (
    r"(?:(?:a|an|the|pretrained|pre-trained|original)\s+|[A-Za-z0-9.-]+['’]s\s+|Meta\s+|[A-Za-z][A-Za-z0-9-]*的\s*"
    r"|\d+(?:\.\d+)?[BM](?:/\d+(?:\.\d+)?[BM])?\s*的?\s*|[\u4e00-\u9fff]{1,4}的\s*)*"
)


def _compile_slots(pattern: Pattern) -> Pattern:
    if MODEL_SLOT not in pattern.regex.pattern:
        return pattern
    # a slot that opens the pattern takes the name as is: a leading filler would be tried everywhere
    leading = re.match(r"^\^?(?:\[ \\t\]\*)?" + re.escape(MODEL_SLOT), pattern.regex.pattern)
    filler = "" if leading else _FILLER
    source = pattern.regex.pattern.replace(MODEL_SLOT, filler + _SLOT_RE.pattern)
    return dataclasses.replace(pattern, regex=re.compile(source, pattern.regex.flags))


def _mention_at(ctx: Context, start: int, end: int) -> Mention | None:
    """The model mention a slot matched, if the slot text is one (or begins with one)."""
    for mention in ctx.mentions_in(start, end + 16):
        if mention.start == start:
            return mention
    return None


# A model named right after these is an object, not the subject: "finetuning MPT-7B with a context
# length of 65k", "outperforms Llama 2 13B", "对LLaMA模型进行微调", "和Alpaca一样".
_OBJECT_BEFORE = re.compile(
    r"(?:fine-?tun\w*|finetun\w*|train\w*|from|than|like|vs\.?|versus|on|of|to|with|based on|over|surpass\w*|"
    r"outperform\w*|compared to|beat\w*|and|or|in|into|for|at|by|e\.g\.,?|i\.e\.,?|such as|inherit\w*|"
    r"与|和|比|对|在|基于|从|由|微调|以及|、)"
    r"\s*(?:(?:the|a|an)\s+)?$",
    re.IGNORECASE,
)


def _subject(ctx: Context, sentence: Sentence, match_start: int, exclude: tuple[int, int]) -> str | None:
    if sentence.list_name:
        return sentence.list_name
    clause_start = sentence.start
    for m in _CLAUSE_END.finditer(ctx.view, sentence.start, match_start):
        clause_start = m.end()
    # "It is ...", "The model ...": the sentence's subject is the one already under discussion
    if clause_start != sentence.start and _PRONOUN_START.match(ctx.view, clause_start):
        clause_mentions = [
            x for x in ctx.mentions_in(clause_start, match_start) if x.end <= exclude[0] or x.start >= exclude[1]
        ]
        if not clause_mentions:
            return ctx.fallback_model(sentence.start)
    pronoun = _PRONOUN_START.match(ctx.view, sentence.start)
    for lo in (clause_start,) if pronoun else (clause_start, sentence.start):
        for mention in ctx.mentions_in(lo, match_start):
            if not (mention.end <= exclude[0] or mention.start >= exclude[1]):
                continue
            if _OBJECT_BEFORE.search(ctx.view, max(lo, mention.start - 16), mention.start):
                continue
            before = ctx.view[lo : mention.start]
            if before.count("(") + before.count("（") > before.count(")") + before.count("）"):
                continue  # inside a parenthesised aside: "(e.g., MPT-7B, StableLM)"
            return mention.name
    # topic continuity: a paragraph that opens with a model keeps talking about it
    para = ctx.paragraph_start(sentence.start)
    if para < sentence.start:
        opener = ctx.mentions_in(para, min(sentence.start, para + 80))
        if opener and not ctx.view[para : opener[0].start].strip(" \t\n\0-*+•#"):
            return opener[0].name
    return ctx.fallback_model(sentence.start)


_PRONOUN_START = re.compile(
    r"[\s\-*+•\d.)]*(?:[Ii]t|[Tt]his|[Tt]hese|[Tt]hey|[Ii]ts|[Oo]ur|[Ww]e|[Tt]he (?:model|models|chat model"
    r"|base model|pretrained model))\b"
    r"|[\s\-*+•]*(?:它|该模型|这个模型|此模型|我们|其)"
)


def prose_facts(ctx: Context) -> Iterator[Candidate]:
    prose = prose_view(ctx)
    sents = sentences(ctx, prose)
    starts = [s.start for s in sents]
    for pattern in extraction_patterns():
        if pattern.subject == "list" and not ctx.list_pairs:
            continue
        for m in _matches(pattern, prose):
            anchor = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
            k = bisect.bisect_right(starts, anchor) - 1
            if k < 0:
                continue
            sentence = sents[k]
            if m.end() > sentence.end + 1:
                continue
            if pattern.subject == "list" and (not sentence.list_name or anchor < sentence.start):
                continue
            if pattern.subject == "list" and prose[sentence.start : anchor].strip():
                continue
            candidate = _from_match(ctx, pattern, m, sentence, prose)
            if isinstance(candidate, list):
                yield from candidate
            elif candidate:
                yield candidate
                if m.groupdict().get("w") and m.groupdict().get("m"):
                    # "from 512 in alpaca to 2048": the 'from' value belongs to the model named there
                    named = _mention_at(ctx, m.start("m"), m.end("m"))
                    if named:
                        yield dataclasses.replace(
                            candidate, model=named.name, value_start=m.start("w"), value_end=m.end("w")
                        )


def _matches(pattern: Pattern, prose: str) -> Iterator[re.Match[str]]:
    if pattern.trigger is None:
        yield from pattern.regex.finditer(prose)
        return
    seen: set[tuple[int, int]] = set()
    for t in pattern.trigger.finditer(prose):
        lo = max(0, t.start() - pattern.back)
        for m in pattern.regex.finditer(prose, lo, min(len(prose), t.end() + 80)):
            if m.start() <= t.start() and m.end() >= t.end() and m.span() not in seen:
                seen.add(m.span())
                yield m


_PARAMETERS_OF = re.compile(r"\s*(?:个)?\s*参数(?:的)?\s*")
_MADE_BY_OF = re.compile(r"[^，。,]{0,12}?的\s*")


def _from_match(
    ctx: Context, pattern: Pattern, m: re.Match[str], sentence: Sentence, prose: str
) -> Candidate | list[Candidate] | None:
    attribute = pattern.attribute
    if pattern.not_after and pattern.not_after.search(prose, max(0, m.start() - 30), m.start()):
        return None
    groups = m.groupdict()
    others: list[str] = []
    slot = (m.start("m"), m.end("m")) if groups.get("m") is not None else None
    slot_mention = _mention_at(ctx, *slot) if slot else None
    if slot and slot_mention is None:
        return None  # the slot did not land on a model name
    clause_start = sentence.start
    for c in _CLAUSE_END.finditer(prose, sentence.start, m.start()):
        clause_start = c.end()
    if _NEGATIVE.search(prose, clause_start, m.start() + 1) and not sentence.list_name:
        return None
    if attribute == "base_model":
        vs, ve = slot_mention.start, slot_mention.end
        if re.match(r"(?i)fine-?tun", m.group(0)) and not prose[sentence.start : m.start()].strip(" -*+•\t\n"):
            return None  # "Fine-tuning Llama-2-7B-32K-beta" as a task title, not a model's origin
        after = prose[ve : ve + 24].lstrip()
        if after.startswith(_NOT_A_BASE) or re.match(_NOT_A_BASE_EN, after, re.IGNORECASE):
            return None  # "基于Transformer架构", "Based on Multi-Query Attention technique", "基于ChatGPT产生的数据"
        subject = _subject(ctx, sentence, m.start(), (vs, ve))
    elif groups.get("v") is not None:
        vs, ve = m.start("v"), m.end("v")
        if pattern.subject == "m" and slot_mention:
            subject = slot_mention.name
        elif pattern.subject == "after":
            after = [x for x in ctx.mentions_in(ve, ve + 60) if x.start <= ve + 16]
            # "62 亿参数的 ChatGLM-6B", "由OpenAI开发的GPT-1": the model named right after the pattern
            tail = _PARAMETERS_OF if attribute == "parameters" else _MADE_BY_OF
            nxt = next(
                (x for x in after if tail.fullmatch(prose, m.end() if attribute != "parameters" else ve, x.start)), None
            )
            subject = nxt.name if nxt else _subject(ctx, sentence, m.start(), (vs, ve))
            if nxt:
                # "由OpenAI开发的GPT-1和GPT-2": every model of the coordination
                following = ctx.mentions_in(nxt.end, nxt.end + 40)
                co = [x for x in following if re.fullmatch(r"\s*(?:和|与|及|、|,|and)\s*", prose[nxt.end : x.start])][
                    :1
                ]
                others = [x.name for x in co]
        else:
            subject = _subject(ctx, sentence, m.start(), (vs, ve))
        if slot_mention and attribute == "architecture" and groups.get("m") is not None:
            vs, ve = slot_mention.start, slot_mention.end
    else:
        return None
    if not subject:
        return None
    if attribute == "architecture" and pattern.subject == "sentence" and not sentence.list_name:
        # "仅解码器的预训练语言模型中" describes a kind of model: the subject must be named before it
        named = [x for x in ctx.mentions_in(clause_start, vs) if x.name == subject]
        if not named:
            return None
    if (
        attribute == "licence"
        and _NON_MODEL_SUBJECT.search(prose, clause_start, m.start())
        and not re.search(r"weights?|model", prose[clause_start : m.start()], re.IGNORECASE)
    ):
        return None
    if attribute == "developer" and pattern.subject == "sentence" and re.search(r"\bby\b", m.group(0)):
        by = m.group(0).rfind(" by ")
        verbs = [
            v.start()
            for v in re.finditer(r"developed|built|created|released|trained|made|open-sourced", m.group(0))
            if v.start() < by
        ]
        head = prose[max(clause_start, m.start() - 40) : m.start() + (verbs[-1] if verbs else 0)]
        # "models trained by Eleuther AI", "the OIG dataset built by LAION": the verb is about something else
        if re.search(r"(?i)(?:models|LLMs|versions|checkpoints|datasets?|data|corpus|code)\s+$", head):
            return None
        if _NON_MODEL_SUBJECT.search(prose, clause_start, m.start()) and not re.search(
            r"(?i)\bmodel\b|weights", prose[clause_start : m.start()]
        ):
            return None
    if attribute == "developer":
        # "created by Direct Users": read the whole capitalised name before judging it
        tail = re.match(r"(?:[ \t]+(?:of[ \t]+|the[ \t]+|and[ \t]+)*[A-Z][\w&'-]*)+", prose[ve : ve + 60])
        if tail and groups.get("m") is None:
            ve += len(tail.group(0))
        if not _valid_org(ctx, vs, ve):
            return None
    if attribute == "training_data":
        # "应用Stackexchange数据": the Chinese patterns say outright that the name is data
        span = _data_span(ctx, prose, vs, ve, strict=not re.search(r"[\u4e00-\u9fff]", m.group(0)))
        if span is None:
            return None
        vs, ve = span
    if attribute == "release_date":
        # "trained between January 2023 and July 2023" dates the training, not the release
        trained = re.search(r"trained between|train\w* in|cutoff|until|直到", prose[sentence.start : m.end()], re.I)
        released = re.search(r"releas|发布|推出|公布", prose[max(sentence.start, m.start() - 40) : m.start("v")], re.I)
        if trained and not released:
            return None
    qualifier = ""
    if groups.get("q"):
        qualifier = m.group("q")
    elif attribute == "memory_requirement":
        q = re.search(r"INT\d|FP16|BF16|\d+-bit", prose[sentence.start : sentence.end])
        qualifier = q.group(0) if q else ""
        if re.search(
            r"微调|fine-?tun|tuning", prose[max(sentence.start, m.start() - 30) : m.end() + 20], re.IGNORECASE
        ):
            qualifier = (qualifier + " fine-tuning").strip()
    shape = "list" if sentence.list_name else "prose"
    candidate = Candidate(subject, attribute, vs, ve, sentence.start, sentence.end, shape, qualifier)
    if pattern.subject == "after" and attribute != "parameters" and others:
        return [candidate, *(dataclasses.replace(candidate, model=o, coordinated=True) for o in others)]
    return candidate


def _valid_org(ctx: Context, vs: int, ve: int) -> bool:
    org = ctx.view[vs:ve].strip()
    key = model_key(org)
    if not key or len(org) > 60 or re.search(r"[、，,。!！]", org):
        return False
    if re.match(
        r"(?i)(?:the\s+)?(?:we|our|us|users?|researchers|community|authors?|fine-?tuning|this|that|it|他们|我们|用户)\b",
        org,
    ):
        return False
    if re.search(
        r"(?i)\b(?:users?|people|groups? of|humans?|annotators|employees|volunteers|contributors|the llm)\b", org
    ):
        return False
    if model_key(re.sub(r"(?i)^the\s+", "", org)) in {"llm", "llms", "ai", "model", "models", "api"}:
        return False
    first = re.match(r"[A-Za-z][\w.+\-]*", org)
    first_key = model_key(first.group(0)) if first else ""
    named_after = (
        first and len(org.split()) > 1 and not re.search(r"[\u4e00-\u9fff]", org)
    )  # Baichuan Intelligent Technology
    names_model = first_key in ctx.known or first_key in _known_keys() or (first and looks_like_model(first.group(0)))
    if first and not named_after and names_model and not is_stop(first_key):
        return False  # "Alpaca前成员等" names a model, not an organisation
    if re.search(r"[\u4e00-\u9fff]", org):
        # a Chinese organisation name is a noun, not a clause: no function words, no measure words
        if re.search(r"一个|[的由是了个这该其我们他它还在和与及或并等]|通过|进行|使用", org) or len(org) > 14:
            return False
        # short, or ending like an organisation: 谷歌, 百川智能, 阿联酋技术研究所, 地工团队
        if len(org) > 4 and not re.search(
            r"(?:公司|团队|大学|研究院|研究所|实验室|学院|科技|智能|集团|院|所|室|中心|社区|AI|Lab|Tech)$", org
        ):
            return False
    return not re.fullmatch(r"(?:数百名)?研究人员|团队|公司|组织", org)


_DATASET_TOKEN = re.compile(
    r"[A-Z][a-z]+[A-Z]\w*|[A-Za-z]+-?\d+[A-Za-z]*|\b[A-Z]{2,}\w*|\b\d+(?:\.\d+)?[KkMm]\b|\bPile\b|Wikipedia"
    r"|Stack\s?[Ee]xchange|"
    r"[a-z]+-[a-z]+-\d+k"
)


def _data_span(ctx: Context, prose: str, vs: int, ve: int, strict: bool = True) -> tuple[int, int] | None:
    """A dataset phrase must name something (ShareGPT, the Pile, 52K examples), not just 'data'."""
    phrase = prose[vs:ve]
    tokens = re.search(rf"{QUANTITY}\s+(?:[\w-]+\s+)?tokens\s+(?:of|from|using)\s+(.+)", phrase)
    if tokens:
        vs += tokens.start(1)
        phrase = tokens.group(1)
    elif re.search(
        r"\btokens?\b|GPUs?\b|\bA100\b|scratch|a single|optimi[sz]er|learning rate|batch|hardware|framework|librar|"
        rf"objective|loss\b|technique|method|approach|strategy|precision|parallel|instances?\b|cluster|task\b|example|"
        rf"infrastructure|supercomputer|{CHIP}|pods?\b|SageMaker|AWS|Azure|GCP|cloud|platform|server|"
        rf"bfloat16|float16|fp16|bf16|int8|int4|\d+-bit",
        phrase,
        re.IGNORECASE,
    ):
        return None
    if strict and not _DATASET_TOKEN.search(phrase):
        return None
    key = model_key(phrase)
    if key in ctx.known and key not in NOT_MODELS:
        return None  # a model alone ("ChatGPT") is where data came from, not the data
    if any(x.start == vs for x in ctx.mentions_in(vs, vs + 60)) and not re.match(r"(?i)the\s", phrase):
        return None  # "GPT-NeoXT-Chat-Base-20B from Eleuther AI" is a model, not data
    return vs, vs + len(phrase.rstrip())


# ---------------------------------------------------------------------------------------------
# The whole document
# ---------------------------------------------------------------------------------------------


def extract_facts(doc: Document) -> list[Fact]:
    """Every fact one document states, each with its exact span in `doc.text`."""
    return _facts(build_context(doc))


def _facts(ctx: Context) -> list[Fact]:
    candidates: list[Candidate] = []
    candidates += front_matter(ctx)
    candidates += flat_table_facts(ctx)
    candidates += table_facts(ctx)
    annotate_structure(ctx)
    candidates += key_value_facts(ctx)
    candidates += prose_facts(ctx)
    facts: list[Fact] = []
    seen: set[tuple] = set()
    claimed: dict[str, list[tuple[int, int]]] = defaultdict(list)  # a value span says one thing once
    for candidate in candidates:
        fact = make_fact(ctx, candidate)
        if fact is None:
            continue
        ident = (model_key(fact.model), fact.attribute, _value_id(fact.normalized, fact.value), fact.qualifier)
        spans = claimed[fact.attribute]
        overlaps = not candidate.coordinated and any(s < fact.value_end and fact.value_start < e for s, e in spans)
        if ident in seen or overlaps:
            continue
        seen.add(ident)
        spans.append((fact.value_start, fact.value_end))
        facts.append(fact)
    return facts


def _value_id(normalized: Normalized, value: str) -> str:
    return repr(normalized) if normalized is not None else model_key(value)


_ALIAS_PATTERNS = [
    # the Chinese name must start at a word boundary: not "多语言大型序列到序列(seq2seq)"
    re.compile(
        r"(?:(?<=[的是叫称即、，,。：:\s(（])|^)(?P<a>(?:(?!的)[\u4e00-\u9fff·]){2,8})\s*[（(]\s*"
        r"(?P<b>[A-Za-z][A-Za-z0-9 .\-]{1,30}?)\s*[)）]",
        re.MULTILINE,
    ),
    re.compile(r"(?P<b>[A-Za-z][A-Za-z0-9.\-]{1,30})\s*[（(]\s*(?P<a>[\u4e00-\u9fff·]{2,8})\s*[)）]"),
    re.compile(
        r"(?P<b>[A-Za-z][A-Za-z0-9.\-]{1,30})\s*[（(,，]\s*"
        r"(?:abbr\.|also known as|a\.k\.a\.?|aka|简称|又称|又名|也称|英文名|中文名)\s*:?\s*"
        r"(?P<a>[A-Za-z\u4e00-\u9fff][\w .\-·]{1,30}?)\s*(?:[)）,，.。]|$)"
    ),
]
_GENERIC_ZH = re.compile(
    r"(?:模型|模子|网络|单元|机制|嵌入|注意力|优化|目标|任务|检测|预训练|框架|技术|方法|适配器|提示|建模|语言|系列|学习|算法|数据|格式)$"
)
_ORG_ZH = re.compile(
    r"^(?:清华(?:大学)?|智谱|阿里(?:巴巴|云)?|百度|腾讯|华为|商汤|复旦|北大|中科院|智源|达摩院|斯坦福|谷歌|微软)$"
)


def extract_aliases(doc: Document) -> list[tuple[str, str]]:
    """(alias, model) pairs a document states: 通义千问（Qwen）, Qwen (abbr. Tongyi Qianwen), 百川 (Baichuan)."""
    return _aliases(build_context(doc))


def extract(doc: Document) -> tuple[list[Fact], list[tuple[str, str]]]:
    """Facts and alias pairs of one document, reading it once (what ingest calls per changed document)."""
    ctx = build_context(doc)
    return _facts(ctx), _aliases(ctx)


def _aliases(ctx: Context) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for pattern in _ALIAS_PATTERNS:
        for m in pattern.finditer(ctx.view):
            a, b = m.group("a").strip(), m.group("b").strip()
            b_key = model_key(b)
            if not _is_model_token(b, b_key, ctx.known, "") or model_key(a) == b_key:
                continue
            if re.search(r"[\u4e00-\u9fff]", a) and (_GENERIC_ZH.search(a) or _ORG_ZH.match(a)):
                continue
            pair = (clean_name(a), clean_name(b))
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def build_fact_store(documents: Iterable[Document]) -> FactStore:
    """Extract every document's facts and gather them in a store (ingest keeps the records instead, to
    re-extract only changed documents)."""
    facts: list[Fact] = []
    aliases: list[tuple[str, str]] = []
    for doc in documents:
        doc_facts, doc_aliases = extract(doc)
        facts += doc_facts
        aliases += doc_aliases
    return FactStore(facts, aliases)
