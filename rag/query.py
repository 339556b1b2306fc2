"""Question analysis, done once: what a question asks, about which models, in which language.

`QueryAnalyzer.analyse` turns a question (and the conversation before it) into a `Query` that
retrieval, evidence gathering, answer composition and the refusal check all read; none of them
tokenises the question or looks for model names again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ingest.chunk import detect_language
from ingest.entities import candidate_names, entity_key, family_key, looks_like_name
from ingest.tokenize import CJK_RE, TermSet, dictionary_tag, in_dictionary, is_stop_word, tokenize
from rag.schema import Turn

if TYPE_CHECKING:
    from ingest.entities import Gazetteer
    from ingest.fact_store import FactStore
    from ingest.index import Index

# What each fact-store attribute is called in a question, in English and Chinese. General vocabulary
# of the attributes, not the wording of any particular question.
ATTRIBUTE_CUES: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "developer": r"\b(who (built|made|developed|created|released|trained|open[- ]sourced)|develop(er|ed) by|"
        r"creators?|which (company|organi[sz]ation|lab))\b|谁(开发|发布|训练|推出|开源)|开发者|哪家|由谁",
        # A launch or an announcement asks its date only with a time question ("When did X launch?"); "the
        # launch party", "what X announced" do not.
        "release_date": r"\b(release date|launch date|(when|what year|which year|what month|which month)\b.*"
        r"\b(releas(e|es|ed)|(?<!the )(?<!a )launch(es|ed)?|announc(e|es|ed)|publish(es|ed)?|unveil(s|ed)?))\b"
        r"|发布时间|什么时候(发布|推出|公布)|何时(发布|推出)|哪一年(发布|推出)",
        "parameters": r"\b(parameters?|params|how (big|large) is)\b"
        r"|(?<!vocabulary )(?<!batch )(?<!context )(?<!window )(?<!hidden )\bsizes?\b|参数|规模|尺寸",
        "base_model": r"\b(base model|based on|built on|fine-?tuned from|derived from|backbone)\b|"
        r"基座|底座|基于|基础模型|基模",
        "architecture": r"\barchitecture\b|架构",
        "training_data": r"\b(training data|data ?sets?|trained on|fine-?tuned on|pre-?training (data|corpus))\b"
        r"|训练数据|数据集|语料|数据.{0,6}训练|训练.{0,6}数据",
        "training_tokens": r"\b(how many tokens|training tokens|tokens of|token counts?|number of (training )?tokens)\b"
        r"|多少.{0,3}token|token ?数|词元",
        "context_length": r"\b(context( length| window| size)|sequence length|max(imum)? length)\b"
        r"|上下文|窗口|序列长度",
        "licence": r"\b(licen[cs]e[ds]?|commercial(ly)?)\b|许可|协议|商用|授权",
        "languages": r"\b(languages\b|multilingual|bilingual|which languages?|what languages?)"
        r"|多语|双语|种语言|哪些语言|什么语言",
        "training_cost": r"\b(costs?|prices?|spend(ing)?|dollars?|budgets?)\b|成本|花费|多少钱|费用",
        "training_hardware": r"\b(gpus?|tpus?|hardware|chips?|a100s?|h100s?|v100s?|clusters?)\b|显卡|硬件|芯片|集群",
        "memory_requirement": r"\b(memory|vram|gpu ram)\b|显存|内存",
    }.items()
}
COMPARE_RE = re.compile(
    r"\b(compar(e[ds]?|ing|ison)|versus|vs\.?|differ|difference|better|more permissive|which of)\b"
    r"|对比|比较|区别|相比|哪个|不同|差异",
    re.IGNORECASE,
)
EACH_RE = re.compile(r"\b(respectively|each|both)\b|分别|各自|都", re.IGNORECASE)
# "Which/what" before a plural noun asks for several things ("What artifacts did ...", "Which five
# datasets ..."); auxiliaries ending in s ("what is", "what does") are not plural nouns.
HYPHENATED_RE = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)+")
LIST_RE = re.compile(
    r"\b(which|what)\s+(?:[\w-]+\s+){0,2}?(?!(?:is|was|does|has|this|its|makes|uses|means|needs|takes|gives|allows|supports|causes|helps|happens|seems|goes|comes)\b)[a-z-]+[^s\W]s\b"
    r"|\bwho (?:are|were)\b|\blist\b|有哪些|哪些|哪几|列出",
    re.IGNORECASE,
)
HOW_RE = re.compile(
    r"^\s*(how|why|what is|what are|what does|explain)\b|为什么|如何|怎么|怎样|是什么|什么是", re.IGNORECASE
)
NUMERIC_RE = re.compile(
    r"\b(how (many|much|long|large|big)|what year|size|cost|score|number|count|rate|average|accuracy)\b"
    r"|多少|(?<!哪)几(?!乎)|多长|多大|何时|什么时候|哪一年|成本|花费|得分|分数",
    re.IGNORECASE,
)
# What a quantity question counts follows its cue: "how many GPUs", "多少小时", "几层".
COUNT_CUE_RE = re.compile(r"\bhow (?:many|much)\b|多少|(?<!哪)几(?!乎)", re.IGNORECASE)
SUBQUESTION_RE = re.compile(
    r"[?？;；]|,?\s+and\s+(?=(how|what|which|when|who|where|why|on|in|with)\b)|，(?=.*[?？])", re.IGNORECASE
)
PRONOUN_RE = re.compile(r"\b(it|its|they|them|their|this model|that model)\b|它|其|该模型|这个模型", re.IGNORECASE)
# "How long", "how large": the degree word is part of the question word, not a concept to find.
HOW_DEGREE_RE = re.compile(
    r"\bhow\s+(long|large|big|old|fast|well|often|far|high|small|good|quickly|soon)\b", re.IGNORECASE
)
# A lone character right after a count cue, ending the phrase: the unit counted ("多少层？", "几天").
# A comma or 、 may share the noun after it ("多少块、什么型号的 GPU"): it ends the phrase only before
# another count ("多少层、多少个注意力头").
PHRASE_END = r"\s*(?:$|[?？。；;！!]|[、，,]\s*(?:多少|几))"
COUNTED_UNIT_RE = re.compile(r"(?:多少|(?<!哪)几(?!乎))\s*([\u4e00-\u9fff])(?=" + PHRASE_END + ")")
# "How did Koala use the datasets ...": a question of manner wants no list of them.
MANNER_RE = re.compile(r"^\s*(how|why)\b|为什么|如何|怎么|怎样", re.IGNORECASE)
# Attributes whose value is a list of things.
LISTED_ATTRIBUTES = frozenset({"training_data"})
QUESTION_WORDS = frozenset({"how", "what", "which", "when", "who", "where", "why", "on", "in", "with"})
# Chinese locatives that follow a noun: 表里 "in the table", 文档中 "in the document".
LOCATIVES = frozenset("里中内上")
# Words that only say "compare" ask for nothing by themselves.
COMPARE_STEMS = frozenset({"compar", "differ", "versus", "vs", "区别", "比较", "对比", "相比", "差异", "不同"})
# Translation weight relative to the question's own words, in lexical search.
EXPANSION_WEIGHT = 0.5


Span = tuple[int, int]


@dataclass(frozen=True)
class Counted:
    """What a "how many" question counts: the concept's words and the attributes whose value is that count."""

    options: frozenset[str]
    attributes: tuple[str, ...] = ()
    # Read as the head of an English phrase ("GPU memory" -> memory): a passage must count it as a head
    # too. A Chinese compound's piece (注意力 of 注意力头) may stand as a modifier ("attention heads").
    head: bool = False
    # Spans of the question that only say which or of what is counted ("TPU " of "TPU hours", "的 TPU" of
    # "多少小时的 TPU"): they ask for no attribute of their own (`asked_attributes`).
    modifiers: tuple[Span, ...] = ()


@dataclass(frozen=True)
class CountPhrase:
    """The noun phrase after a count cue, as read by `english_count_phrase` or `chinese_count_phrase`."""

    options: frozenset[str]  # the counted concept
    named: str  # the words that name the attribute counted, read after the cue
    modifiers: tuple[Span, ...]
    head: bool


def english_count_phrase(
    question: str, start: int, concepts: Sequence[tuple[frozenset[str], float]]
) -> CountPhrase | None:
    """The head of the English noun phrase from `start`, right after "how many" / "how much": its last
    word with a concept, before the first function word or verb ("GPU memory does" -> memory, "A100 GPUs
    trained" -> GPUs). An English compound's last noun is what is counted; the words beside it only say
    which, and are its modifiers."""
    words = []
    # Words that start within 40 characters of the cue, read whole, up to the clause's end.
    for word in re.finditer(r"\S+", re.split(r"[,;?.!]", question[start:])[0]):
        if word.start() >= 40:
            break
        # A function word, Chinese, or a verb's past form after the noun ("GPUs trained ...").
        text = word.group()
        if is_stop_word(text) or CJK_RE.search(text) or (words and text.lower().endswith("ed")):
            break
        words.append(word)
    for i in reversed(range(len(words))):
        options = next((o for token in tokenize(words[i].group()) for o, _ in concepts if token in o), None)
        if options is not None:
            # A word before the head goes with the space after it, one after the head with the space before.
            modifiers = tuple(
                (start + w.start(), start + words[j + 1].start())
                if j < i
                else (start + words[j - 1].end(), start + w.end())
                for j, w in enumerate(words)
                if j != i
            )
            return CountPhrase(options, " " + words[i].group(), modifiers, head=True)
    return None


def chinese_count_phrase(
    question: str, start: int, concepts: Sequence[tuple[frozenset[str], float]]
) -> CountPhrase | None:
    """The first concept among the words from `start`, right after "多少" / "几" (a classifier such as 块 or 个
    is no concept and is passed over); what follows 的 only says of what ("多少小时的 TPU" counts hours)."""
    phrase = re.split(r"[、，,;；?？。的]", question[start : start + 16])[0]
    for token in tokenize(phrase):
        options = next((o for o, _ in concepts if token in o), None)
        if options is not None:
            # "小时的 TPU": hours, of TPUs. Only a 的 right after the counted word says of what, and only the
            # one word after it ("多少个参数和它的许可证" asks the licence too).
            of = re.match(
                rf"\s*{re.escape(phrase)}\s*的\s*(?:[A-Za-z0-9][\w.+-]*|[\u4e00-\u9fff]{{1,2}})", question[start:]
            )
            modifiers = ((start + len(phrase), start + of.end()),) if of and phrase.strip().endswith(token) else ()
            return CountPhrase(options, phrase, modifiers, head=False)
        if not (len(token) == 1 and CJK_RE.match(token)):
            return None
    return None


def counted_concepts(question: str, concepts: Sequence[tuple[frozenset[str], float]]) -> list[Counted]:
    """For each "how many X" / "多少X" in the question, the concept X with the fact-store attributes that
    count it: the head names the attribute ("how many TPU hours" asks no hardware, "how much GPU memory"
    memory). The words after the cue are read as an English phrase first, and as Chinese when no English
    word there has a concept ("多少 GPU 显存" is read as English up to its Chinese, "多少块 GPU" as Chinese)."""
    counted: list[Counted] = []
    for cue in COUNT_CUE_RE.finditer(question):
        phrase = english_count_phrase(question, cue.end(), concepts) or chinese_count_phrase(
            question, cue.end(), concepts
        )
        if phrase is not None and all(c.options != phrase.options for c in counted):
            attributes = tuple(named_attributes(cue.group() + phrase.named))
            counted.append(Counted(phrase.options, attributes, phrase.head, phrase.modifiers))
    return counted


@dataclass
class Query:
    """A question, analysed. `search_text` is what is embedded and matched (the question plus the
    follow-up's resolved subject); `models` are gazetteer keys, most specific first."""

    question: str
    lang: str  # the language the answer is written in
    question_lang: str
    search_text: str
    models: list[str] = field(default_factory=list)
    model_names: dict[str, str] = field(default_factory=dict)  # key -> how to write it in the answer
    unknown: list[str] = field(default_factory=list)  # name-shaped words the corpus never mentions
    attributes: list[str] = field(default_factory=list)  # fact-store attributes asked for
    parts: list[str] = field(default_factory=list)  # sub-questions, each to be answered
    kind: str = "fact"  # fact | compare | list | how | followup
    numeric: bool = False
    # The concept a "how many X" question counts (GPUs, 小时): a figure should stand beside it.
    counted: list[Counted] = field(default_factory=list)
    terms: dict[str, float] = field(default_factory=dict)  # lexical tokens -> weight
    concepts: list[tuple[frozenset[str], float]] = field(default_factory=list)  # content words, weighted
    part_concepts: list[list[tuple[frozenset[str], float]]] = field(default_factory=list)
    numeric_parts: list[bool] = field(default_factory=list)  # which sub-questions ask for a quantity
    subject_from_history: bool = False
    known_terms: frozenset[str] = frozenset()  # the question's concept words that the index holds
    # Models named by their fact sheet only: the index did not tag chunks with them, so their
    # passages are found by the name's spelling.
    spelled: dict[str, re.Pattern[str]] = field(default_factory=dict)
    # The models as the question sizes them ("Llama 2 70B" -> ("llama2", "70B")), one per mention;
    # a model named without a size has "" for it.
    subjects: list[tuple[str, str]] = field(default_factory=list)

    def entities_of(self, entities: Sequence[str], title: str, text: str) -> list[str]:
        """A passage's entity keys, with the models known only by spelling that its title or text names."""
        extra = [
            k
            for k, pattern in self.spelled.items()
            if k not in entities and (pattern.search(title) or pattern.search(text))
        ]
        return [*entities, *extra] if extra else list(entities)

    @cached_property
    def by_rarity(self) -> list[tuple[frozenset[str], float]]:
        """The concepts, rarest (heaviest) first; computed once, read for every candidate sentence."""
        return sorted(self.concepts, key=lambda c: -c[1])

    @property
    def families(self) -> set[str]:
        return set(self.models) | {family_key(k) for k in self.models}

    @property
    def compare(self) -> bool:
        return self.kind == "compare"

    @property
    def wants_items(self) -> bool:
        """A list question, or one asking what an attribute is whose value is a list of things (the
        datasets a model was trained on; not how they were used): its answer names every item."""
        return self.kind == "list" or (
            self.kind == "fact"
            and bool(LISTED_ATTRIBUTES & set(self.attributes))
            and not MANNER_RE.search(self.question)
        )


def concept_share(
    tokens: TermSet,
    concepts: Sequence[tuple[frozenset[str], float]],
    languages: Collection[str] = (),
    known: Collection[str] = (),
) -> float:
    """IDF-weighted share of the concepts the text holds; a question with none ("What is QLoRA?")
    asks only about its model, which every candidate sentence is judged on separately. With the text's
    `languages`, a concept the corpus uses (some word of it is `known`) but with no word in any of those
    languages (an English word the dictionary cannot put into Chinese, for Chinese passages) is not held
    against the text: it cannot be judged there. A word the corpus never uses always counts ("菜")."""
    held_weight = total = 0.0
    for options, weight in concepts:
        held = tokens.any_of(set(options))
        if held:
            held_weight += weight
        judged = not languages or any(has_form(options, lang) for lang in languages)
        if held or judged or not any(word in known for word in options):
            total += weight
    return held_weight / total if total else 1.0


def has_form(options: frozenset[str], language: str) -> bool:
    """Whether a concept has a word in the language (figures and names are in both)."""
    return any(bool(CJK_RE.match(o)) == (language == "zh") or not o.isalpha() for o in options)


# Tried at every word start (a lookahead, so matches overlap): "How do Llama 1 65B" holds "Llama 1 65B".
SIZED_NAME_RE = re.compile(
    r"(?=(?<![\w.-])([A-Za-z][\w.-]*(?: [A-Z0-9][\w.]*)*?)[ -](\d+(?:\.\d+)?[BMKbmk]|[vV]\d+(?:\.\d+)*)\b)"
)


def sized_subjects(question: str, models: Sequence[str]) -> list[tuple[str, str]]:
    """Each model once, with the sizes or versions the question gives it: "Cerebras-GPT 111M and
    Cerebras-GPT 13B" are two subjects of one model, so are "Vicuna v1.3" and "Vicuna v1.5". A model
    whose name holds the size ("Vicuna-13B") needs none."""
    sized: dict[str, list[str]] = {}
    for match in SIZED_NAME_RE.finditer(question):
        name, size = match.group(1), match.group(2)
        size = size.lower() if size[0] in "vV" else size.upper()  # a version ("v1.5") or a size ("13B")
        key = entity_key(name)
        if key in models and entity_key(f"{name}{size}") not in models and size not in sized.get(key, []):
            sized.setdefault(key, []).append(size)
    subjects = [(key, size) for key in models for size in sized.get(key, [""])]
    # A name a sized mention already makes specific is no subject of its own ("Llama" beside "Llama 2 70B").
    specific = [k for k, size in subjects if size]
    return [(k, size) for k, size in subjects if size or not any(o != k and o.startswith(k) for o in specific)]


COORDINATION_RE = re.compile(r"\s*(?:,|，|、|and|or|和|与|及|以及|跟)\s*(?:the\s+)?$", re.IGNORECASE)


def mentions(question: str, names: dict[str, str]) -> list[tuple[int, int, str]]:
    """Where the question writes each named model: (start, end, key), in reading order."""
    return sorted(
        (m.start(), m.end(), key)
        for key, name in names.items()
        for m in re.finditer(re.escape(name), question, re.IGNORECASE)
    )


def coordinated(question: str, names: dict[str, str]) -> bool:
    """Whether two of the named models stand side by side ("Falcon-7B and MPT-7B", "A、B 和 C"): the
    question asks the same thing of each."""
    spans = mentions(question, names)
    return any(COORDINATION_RE.fullmatch(question[a[1] : b[0]]) for a, b in zip(spans, spans[1:]))


def qualifiers(question: str, names: dict[str, str]) -> set[str]:
    """Names written only right before another one ("Stanford Alpaca", "Meta LLaMA"): they say whose
    model it is, and are no subject of their own."""
    spans = mentions(question, names)
    before: dict[str, bool] = {}
    for i, (_, end, key) in enumerate(spans):
        follows = i + 1 < len(spans) and spans[i + 1][2] != key and question[end : spans[i + 1][0]] == " "
        before[key] = before.get(key, True) and follows
    return {key for key, only_before in before.items() if only_before}


def sub_questions(question: str) -> list[str]:
    """'How many tokens ..., and on how many chips?' -> two parts, each to be answered."""
    parts = [p.strip() for p in SUBQUESTION_RE.split(question) if p and len(p.strip()) > 3]
    return [p for p in parts if p.lower() not in QUESTION_WORDS] or [question]


def named_attributes(text: str) -> list[str]:
    """The fact-store attributes a text speaks of, in the order it names them."""
    matches = [(m.start(), name) for name, cue in ATTRIBUTE_CUES.items() if (m := cue.search(text))]
    return [name for _, name in sorted(matches)]


def asked_attributes(question: str, counted: Sequence[Counted] = ()) -> list[str]:
    """The fact-store attributes the question asks for, in the order it asks them (a comparison's columns
    follow it). A count phrase asks by its head: "How many TPU hours ..." and "多少小时的 TPU" ask for hours,
    and the TPU they name asks for no hardware."""
    cut = {i for c in counted for lo, hi in c.modifiers for i in range(lo, hi)}
    text = "".join(ch for i, ch in enumerate(question) if i not in cut)
    found = named_attributes(text)
    # "How many tokens was it trained on?" asks for a count, not for the datasets; "How many GPUs was it
    # trained on?" for hardware (what languages or conversations it was trained on may be the data's).
    counts = "training_tokens" in found or any("training_hardware" in c.attributes for c in counted)
    if counts and "training_data" in found and not re.search(r"data|数据|语料", text, re.I):
        found.remove("training_data")
    # "What GPU memory does it need?", "多少 GPU 显存": memory, not the hardware it was trained on.
    if "memory_requirement" in found and "training_hardware" in found and not re.search(r"train|训练", text, re.I):
        found.remove("training_hardware")
    return found


def is_acronym(token: str) -> bool:
    """CEO, API, GPU (and their plurals, CPUs): upper-case letters only, which name a thing, not a model
    the corpus lacks."""
    singular = token[:-1] if len(token) > 2 and token.endswith("s") else token
    return singular.isalpha() and singular.isupper()


def lone_character_roles(text: str, words: Sequence[str]) -> tuple[set[str], dict[str, str]]:
    """Of the question's lone Chinese characters: the classifiers (a measure word with a noun after it),
    and the nouns that end a compound with the noun written just before them (头 -> 注意力 in "注意力头")."""
    classifiers, suffixes = set(), {}
    longer = sorted((w for w in words if len(w) > 1 and CJK_RE.match(w)), key=len, reverse=True)
    for character in (w for w in words if len(w) == 1 and CJK_RE.match(w)):
        tag = dictionary_tag(character)
        if tag == "q":
            # "多少块 GPU": 块 only measures the noun after it; "有多少层？": nothing follows, 层 is what is counted.
            if not re.search(re.escape(character) + PHRASE_END, text):
                classifiers.add(character)
        elif tag == "n":
            before = next((w for w in longer if w + character in text), None)
            if before is not None and dictionary_tag(before).startswith("n"):
                suffixes[character] = before
    return classifiers, suffixes


class QueryAnalyzer:
    """Analyses questions against one index version: its names, aliases and term statistics."""

    def __init__(self, index: Index, facts: FactStore | None = None):
        self.index = index
        self.gazetteer: Gazetteer = index.gazetteer
        self.lexicon = index.lexicon
        self.facts = facts
        self._df: dict[frozenset[str], float] = {}
        # Aliases written in Chinese (百川 -> Baichuan): a question in Chinese may name a model so.
        self._cjk_aliases: list[tuple[str, str]] = []
        if facts is not None:
            pairs = {(a, b) for a, b in facts.alias_pairs} | {(b, a) for a, b in facts.alias_pairs}
            self._cjk_aliases = sorted(
                ((alias, other) for alias, other in pairs if CJK_RE.search(alias) and not CJK_RE.search(other)),
                key=lambda p: -len(p[0]),
            )

    # --- names ----------------------------------------------------------------------------------
    @property
    def known_names(self) -> Collection[str]:
        """Every name key the corpus holds (gazetteer keys)."""
        return self.gazetteer.names.keys()

    def models_in(self, text: str) -> list[str]:
        """Models the text names. Organisations, hardware, datasets and methods the gazetteer also holds
        (Meta, GPU, LoRA) are the subject only when nothing else is named."""
        from ingest.names import is_stop

        found = [k for k in self.gazetteer.find(text) if not self.is_plain_word(k, text)]
        rest = text
        for alias, other in self._cjk_aliases:  # longest first: 小羊驼 (Vicuna) is not 羊驼 (Alpaca)
            if alias in rest:
                rest = rest.replace(alias, " ")
                key = entity_key(other)
                if key in self.gazetteer.names and key not in found:
                    found.append(key)
        if self.facts is not None:
            # A model with a fact sheet is a name even where the corpus is too small for the
            # gazetteer to have learnt it (a three-document index writes "vicuna" in URLs).
            for token in candidate_names(text):
                key = entity_key(token)
                if key and key not in found and self.facts.knows(token) and self.written_as_sheet(token):
                    found.append(key)
        models = [k for k in found if not is_stop(k)]
        return models or found

    def written_as_sheet(self, token: str) -> bool:
        """A capitalised name, or one written as the corpus writes its sheet's model ("ziya" is the
        model where the corpus only ever writes it in lower case)."""
        assert self.facts is not None
        return token[:1].isupper() or self.facts.name(self.facts.key(token)) == token

    def is_plain_word(self, key: str, text: str) -> bool:
        """'plug' in "If I plug it into LangChain" is the word, not PLUG: a name the corpus only ever
        writes in capitals, in lower case in a question that otherwise uses capitals."""
        forms = self.gazetteer.names.get(key, [])
        if not forms or not all(f.isupper() for f in forms) or any(f in text for f in forms):
            return False
        return any(c.isupper() for c in text)

    def surface(self, key: str) -> str:
        """How the corpus mostly writes a model."""
        forms = self.gazetteer.names.get(key)
        if forms:
            return forms[0]
        return self.facts.name(self.facts.key(key)) if self.facts is not None else key

    def unknown_in(self, text: str) -> list[str]:
        names = []
        for token in self.gazetteer.unknown(text):
            if is_acronym(token):
                continue
            # The corpus has the very word, written otherwise ("GitHub" as "github"); "Claude 3" is
            # not "Claude".
            whole = re.sub(r"[^a-z0-9]", "", token.lower())
            if whole and self.index.has_term(whole):
                continue
            # "LLaMA-based", "GPT-4-judged": a known name with an English word after it.
            head, _, tail = token.rpartition("-")
            if head and tail.isalpha() and tail.islower() and entity_key(head) in self.gazetteer.vocabulary:
                continue
            if self.facts is not None and self.facts.knows(token):
                continue
            names.append(token)
        return names

    # --- terms ----------------------------------------------------------------------------------
    def as_tokens(self, word: str) -> list[str]:
        """A lexicon word as index tokens; lexicon words are index terms already, which spares English
        questions from loading the Chinese segmenter."""
        return [word] if self.index.has_term(word) else tokenize(word)

    def stem_variants(self, stem: str) -> list[str]:
        """The lexicon keys that are other forms of one word: the stemmer makes "modifications"
        "modif" but "modify" "modifi", so a question's noun would miss its verb's translations."""
        if len(stem) < 5:
            return []
        return [
            key
            for key in self.lexicon.english_words(stem[:5])
            if key != stem and (key.startswith(stem) or stem.startswith(key)) and abs(len(key) - len(stem)) <= 2
        ]

    def translations(self, tokens: Sequence[str]) -> dict[str, list[str]]:
        """Each token's translations into the other language (as index tokens)."""
        names = self.gazetteer.names
        out: dict[str, list[str]] = {t: [] for t in tokens}
        en = [t for t in tokens if not CJK_RE.match(t) and t not in names]
        for i, t in enumerate(en):
            keys = [t] + ([f"{t} {en[i + 1]}"] if i + 1 < len(en) else [])
            if not self.lexicon.to_chinese(t):  # a cached lookup, reused just below
                keys += self.stem_variants(t)
            for key in keys:
                for zh in self.lexicon.to_chinese(key):
                    out[t].extend(self.as_tokens(zh))
                    if " " in key:
                        out.setdefault(en[i + 1], []).extend(self.as_tokens(zh))
        for t in tokens:
            if CJK_RE.match(t):
                for key in self.lexicon.to_english(t):
                    out[t].extend(key.split())
        return {t: list(dict.fromkeys(alts)) for t, alts in out.items()}

    def idf(self, options: frozenset[str]) -> float:
        """IDF of a concept from the chunks holding any of its alternatives: a common translation
        raises the concept's frequency, so it cannot make a common word weigh like a rare one."""
        if options not in self._df:
            if len(self._df) > 100_000:  # a long-running server meets endless new words
                self._df.clear()
            df = int(self.index.term_rows(options).sum())
            self._df[options] = math.log(1 + len(self.index) / (df + 1))
        return self._df[options]

    def is_artifact(self, token: str) -> bool:
        """Segmentation, not something the question asks about: a lone Chinese character the corpus's
        own segmentation also yields (多, 大, 时: function words and pieces of words), or a token the
        corpus never uses that the segmenter's dictionary does not know (时用, from 训练时用了). A lone
        character the corpus never has stays: "吃" and "菜" say the question is about food."""
        if not CJK_RE.match(token):
            return False
        if len(token) == 1:
            return self.index.has_term(token)
        return not self.index.has_term(token) and not in_dictionary(token)

    def without_locative(self, token: str) -> str:
        """A locative the segmenter glued to a noun ("表里", in the table; "卡里", in the card): a word
        the corpus never uses is the noun without it."""
        if len(token) > 1 and token[-1] in LOCATIVES and CJK_RE.match(token) and not self.index.has_term(token):
            return token[:-1]
        return token

    def concepts(self, text: str, skip: set[str]) -> list[tuple[frozenset[str], float]]:
        """The question's content words, each with its translations, weighted by rarity. The Chinese
        segmenter also yields the pieces of a compound (超级计算机: 超级, 计算, 计算机); they are
        alternatives of the compound, not concepts of their own. "哪台", "哪种" only ask which, "几张" how many,
        "谁" who, "how long" how long."""
        degree = {t for word in HOW_DEGREE_RE.findall(text) for t in tokenize(word)}
        units = set(COUNTED_UNIT_RE.findall(text))  # "有多少层？": 层 is asked, though the corpus has it alone
        tokens = [
            self.without_locative(t)
            for t in dict.fromkeys(tokenize(text))
            if not t.startswith(("哪", "几", "谁")) and t not in degree and (t in units or not self.is_artifact(t))
        ]
        compounds = [t for t in tokens if CJK_RE.match(t)]
        owner = {t: max((u for u in compounds if t != u and t in u), key=len, default=t) for t in compounds}
        if any(len(t) == 1 for t in compounds):
            classifiers, suffixes = lone_character_roles(text, compounds)
            # "多少台" asks how many of something: the classifier 台 is no concept. "模型卡", "注意力头":
            # a noun character after a noun is the end of a compound the segmenter did not know.
            tokens = [t for t in tokens if t not in classifiers]
            owner.update({c: owner.get(noun, noun) for c, noun in suffixes.items()})
        translated = self.translations(tokens)
        # Likewise the pieces of a hyphenated word ("CS-2" gives cs2, cs and 2).
        for word in HYPHENATED_RE.findall(text):
            joined, *pieces = tokenize(word) or [""]
            owner.update({p: joined for p in pieces if p != joined})
        grouped: dict[str, set[str]] = {}
        for t, alts in translated.items():
            if t in skip or t in COMPARE_STEMS:
                continue
            grouped.setdefault(owner.get(t, t), set()).update({t, *alts})
        # Two words with the same alternatives ("model 模型") are one concept, weighed once.
        unique = dict.fromkeys(frozenset(options) for options in grouped.values())
        return [(options, self.idf(options)) for options in unique]

    def weighted_terms(self, tokens: Sequence[str], translated: dict[str, list[str]]) -> dict[str, float]:
        """Question tokens (weight 1) plus their translations into the other language (weight < 1)."""
        weights: dict[str, float] = dict.fromkeys(tokens, 1.0)
        for alts in translated.values():
            for alt in alts:
                weights.setdefault(alt, EXPANSION_WEIGHT / max(1, len(alts)) * 2)
        return weights

    # --- the analysis ---------------------------------------------------------------------------
    def analyse(self, question: str, history: Sequence[Turn] = (), language: str | None = None) -> Query:
        question_lang = detect_language(question)
        models = self.models_in(question)
        search_text, from_history = question, False
        # "How was it adapted from PaLM?" after "What is Med-PaLM?": a pronoun keeps the earlier subject.
        if (not models or PRONOUN_RE.search(question)) and history:
            for turn in reversed(history):
                earlier = self.models_in(turn.content) if turn.role == "user" else []
                if earlier and not set(earlier) <= set(models):
                    models, from_history = [*earlier, *(k for k in models if k not in earlier)], True
                    names = [self.surface(k) for k in earlier]
                    search_text = f"{question} ({', '.join(names)})"
                    break
        model_tokens = {t for key in models for t in tokenize(self.surface(key))}
        skip = model_tokens | set(models)
        tokens = tokenize(search_text)
        translated = self.translations(tokens)
        parts = sub_questions(question)
        concepts = self.concepts(question, skip)
        counted = counted_concepts(question, concepts)
        attributes = asked_attributes(question, counted)
        names = self.display_names(question, models)
        subjects = [s for s in sized_subjects(question, models) if s[0] not in qualifiers(question, names)]
        numeric = bool(NUMERIC_RE.search(question))
        # Two or more models, or two sizes of one.
        if len(subjects) >= 2 and (
            COMPARE_RE.search(question) or EACH_RE.search(question) or coordinated(question, names)
        ):
            kind = "compare"
        elif from_history:
            kind = "followup"
        elif LIST_RE.search(question):
            kind = "list"
        elif HOW_RE.search(question) and not attributes:
            kind = "how"
        else:
            kind = "fact"
        return Query(
            question=question,
            lang=language or question_lang,
            question_lang=question_lang,
            search_text=search_text,
            models=models,
            model_names=names,
            unknown=self.unknown_in(question),
            attributes=attributes,
            parts=parts,
            kind=kind,
            numeric=numeric,
            subjects=subjects,
            terms=self.weighted_terms(tokens, translated),
            concepts=concepts,
            counted=counted,
            part_concepts=[self.concepts(p, skip) for p in parts] if len(parts) > 1 else [],
            numeric_parts=[bool(NUMERIC_RE.search(p)) for p in parts] if len(parts) > 1 else [],
            subject_from_history=from_history,
            spelled=self.spellings([k for k in models if k not in self.gazetteer.names]),
            known_terms=frozenset(
                t for t in tokens + [a for alts in translated.values() for a in alts] if self.index.has_term(t)
            ),
        )

    def spellings(self, keys: Sequence[str]) -> dict[str, re.Pattern[str]]:
        out = {}
        for key in keys:
            sheet = self.facts.sheet(key) if self.facts is not None else None
            names = [sheet.model, *sheet.aliases] if sheet is not None else [key]
            alternatives = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
            out[key] = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z])", re.IGNORECASE)
        return out

    def display_names(self, question: str, models: Sequence[str]) -> dict[str, str]:
        """How the answer writes each model: as the question wrote it, else as the corpus mostly does."""
        written = {}
        for match in re.finditer(r"[A-Za-z][A-Za-z0-9]*(?:[-_. ][A-Za-z0-9]+)*", question):
            for token in (match.group(0), *match.group(0).split()):
                if looks_like_name(token) or token[:1].isupper():
                    written.setdefault(entity_key(token), token)
        return {key: written.get(key) or self.surface(key) for key in models}
