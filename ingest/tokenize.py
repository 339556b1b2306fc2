"""One lexical tokenizer for Chinese and English, shared by indexing and querying.

Chinese goes through jieba's search-mode cut (compounds also yield their parts, so
预训练 matches 训练); English words are lower-cased and stemmed. A model name keeps
its joined form too ("Vicuna-13B" -> vicuna, 13b, vicuna13b) so names match exactly.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from ingest.despin import despin

TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*|[\u4e00-\u9fff]+")
CJK_RE = re.compile(r"[\u4e00-\u9fff]")

ZH_STOPWORDS = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "和",
        "与",
        "及",
        "或",
        "等",
        "也",
        "都",
        "就",
        "而",
        "被",
        "把",
        "对",
        "从",
        "到",
        "为",
        "以",
        "于",
        "上",
        "中",
        "下",
        "这",
        "那",
        "其",
        "之",
        "个",
        "们",
        "一个",
        "我们",
        "你",
        "我",
        "他",
        "它",
        "有",
        "没有",
        "不",
        "很",
        "更",
        "最",
        "又",
        "还",
        "并",
        "但",
        "如",
        "如果",
        "因为",
        "所以",
        "可以",
        "能",
        "会",
        "将",
        "该",
        "此",
        "这些",
        "那些",
        "这个",
        "那个",
        "什么",
        "多少",
        "哪些",
        "怎么",
        "如何",
        "吗",
        "呢",
        "吧",
        "啊",
        "着",
        "过",
        "用",
        "使用",
        "进行",
        "通过",
        "基于",
        "由",
        "给",
        "让",
        # The other question words: a question is not about them, as it is not about "what" or "which".
        "什么样",
        "哪",
        "哪个",
        "哪几",
        "哪几个",
        "几",
        "几个",
        "哪里",
        "怎样",
        "怎么样",
        "为什么",
        "为何",
        "是否",
        # Function words that say how a question is put, not what it is about.
        "它们",
        "能不能",
        "不能",
        "能否",
        "分别",
        "各自",
        "根据",
        "依照",
        "按照",
        "此外",
        "除了",
        "之外",
        "以外",
        "大概",
        "大约",
        "时候",
        # "How long / big / many / far": the Chinese "how" + adjective words, asking a degree.
        "多长",
        "多久",
        "多大",
        "多高",
        "多远",
        "多重",
        "多快",
    ]
)
# British spellings, so a question's "licence" finds the corpus's "license".
BRITISH = {"licence": "license", "licences": "licenses", "licenced": "licensed", "licencing": "licensing"}


@lru_cache(maxsize=1)
def _en_stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS  # NLTK's English list

    return frozenset(STOPWORDS_EN_PLUS) | {
        "what",
        "which",
        "how",
        "who",
        "when",
        "does",
        "did",
        "do",
        "much",
        "many",
        "use",
        "used",
        "uses",
        "using",
    }


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def cut_chinese(text: str) -> list[str]:
    return [w for w in _jieba().lcut_for_search(text) if w.strip()]


@lru_cache(maxsize=1)
def _dictionary_text() -> str:
    handle = _jieba().get_dict_file()
    try:
        data = handle.read()
    finally:
        handle.close()
    return data.decode("utf-8") if isinstance(data, bytes) else data


@lru_cache(maxsize=1)
def _character_tags() -> dict[str, str]:
    """The tags of the dictionary's one-character words (about 12k), read once."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\S) \d+ (\w+)$", _dictionary_text(), re.MULTILINE)}


@lru_cache(maxsize=4096)
def dictionary_tag(word: str) -> str:
    """The word's part of speech in jieba's dictionary (n noun, v verb, q classifier, ...), or "".
    Read from the dictionary file: jieba.posseg would spend 0.2 s loading every word's tag first."""
    if len(word) == 1:
        return _character_tags().get(word, "")
    match = re.search(rf"^{re.escape(word)} \d+ (\w+)$", _dictionary_text(), re.MULTILINE)
    return match.group(1) if match else ""


def in_dictionary(word: str) -> bool:
    """Whether the segmenter's dictionary has the word; jieba's HMM also makes up words from
    characters it cannot place (训练时用了 gives 时用)."""
    return bool(_jieba().dt.FREQ.get(word))


class TermSet:
    """Membership test for index terms in a text without segmenting its Chinese: a Chinese term
    is looked up as a substring, an English one among the stemmed words. Cheaper than
    `tokenize` (no jieba), for scoring many short sentences."""

    def __init__(self, text: str):
        self.text = despin(text)
        self.words = set(tokenize(CJK_RE.sub(" ", self.text)))

    def __contains__(self, term: str) -> bool:
        return term in self.text if CJK_RE.match(term) else term in self.words

    def any_of(self, terms: set[str]) -> bool:
        return any(t in self for t in terms)


def is_stop_word(word: str) -> bool:
    """An English function word ("were", "of", "does"): it ends a noun phrase."""
    return word.lower() in _en_stopwords()


@lru_cache(maxsize=16_384)
def term_set(text: str) -> TermSet:
    """The TermSet of a text, kept: the same passages, sentences and headings come up question after
    question (do not change the returned set)."""
    return TermSet(text)


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    stop_en = _en_stopwords()
    for match in TOKEN_RE.finditer(despin(text)):
        piece = match.group(0)
        if CJK_RE.match(piece):
            tokens.extend(w for w in cut_chinese(piece) if w not in ZH_STOPWORDS)
            continue
        lower = piece.lower()
        lower = BRITISH.get(lower, lower)
        parts = re.split(r"[-_.]", lower)
        if len(parts) > 1:
            tokens.append("".join(parts))
        for part in parts:
            if part and part not in stop_en:
                tokens.append(stem(part) if part.isalpha() else part)
    return tokens
