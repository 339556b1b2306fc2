"""A deterministic synthetic corpus for scale runs: documents, chunks and SYNTHETIC vectors.

Text imitates the bundled corpus: each language has a token bigram chain learnt from the bundled
chunks (jieba words for Chinese, whitespace words for English), chunk lengths are drawn from the
bundled chunks' lengths, titles and sections are real ones, and ~1/3 of documents are Chinese.
A small share of tokens is swapped for pseudo-words drawn from a Zipf law, so the vocabulary keeps
growing with the corpus (Heaps' law) as a real one does, instead of stopping at the bundled words.

The vectors are NOT embeddings of the text: embedding a million chunks with USE-m3 on two cores
takes hours. They are Gaussian, with the mean and the principal directions and variances of the
real USE-m3 vectors of the bundled corpus, and chunks of one document share a component (as real
chunks of one document do: centred cosine ~0.26). Every number measured on them says so.

Output depends only on (seed, number of chunks): documents are made in fixed blocks, each from its
own seeded generator, so the first 100k chunks of the 1M corpus are the 100k corpus.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.schema import Chunk, Document

DOCS_PER_BLOCK = 256
ZH_SHARE = 1 / 3
RARE_SHARE = 0.04  # tokens replaced by a Zipf-drawn pseudo-word
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "an", "er", "on")]


@dataclass
class Chain:
    """A token bigram chain: successors of token t are succ[offsets[t]:offsets[t+1]], with repeats,
    so a uniform pick among them follows the bigram frequencies."""

    tokens: np.ndarray  # token id -> text (object array)
    lengths: np.ndarray  # token id -> characters
    offsets: np.ndarray
    succ: np.ndarray
    starts: np.ndarray  # token ids that begin a chunk
    joiner: str

    @classmethod
    def learn(cls, pieces: Sequence[list[str]], joiner: str) -> Chain:
        vocab: dict[str, int] = {}
        pairs: list[tuple[int, int]] = []
        starts = []
        for tokens in pieces:
            ids = [vocab.setdefault(t, len(vocab)) for t in tokens]
            if ids:
                starts.append(ids[0])
            pairs.extend(zip(ids, ids[1:]))
        pair_array = np.array(pairs or [(0, 0)], dtype=np.int64)
        order = np.argsort(pair_array[:, 0], kind="stable")
        counts = np.bincount(pair_array[:, 0], minlength=len(vocab))
        offsets = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        tokens = np.empty(len(vocab), dtype=object)
        tokens[:] = list(vocab)
        return cls(
            tokens=tokens,
            lengths=np.array([len(t) for t in vocab], dtype=np.int64),
            offsets=offsets,
            succ=pair_array[order, 1].astype(np.int32),
            starts=np.array(starts or [0], dtype=np.int32),
            joiner=joiner,
        )

    def walk(self, rng: np.random.Generator, targets: np.ndarray) -> list[list[int]]:
        """One token-id list per target length (characters), all chains stepped together."""
        n = len(targets)
        current = self.starts[rng.integers(0, len(self.starts), n)]
        steps = [current]
        total = self.lengths[current] + (len(self.joiner) if self.joiner else 0)
        while (total < targets).any():
            begin, end = self.offsets[current], self.offsets[current + 1]
            dead = end == begin  # no successor seen: start a new sentence
            pick = begin + (rng.random(n) * np.maximum(end - begin, 1)).astype(np.int64)
            current = np.where(
                dead, self.starts[rng.integers(0, len(self.starts), n)], self.succ[pick % len(self.succ)]
            )
            steps.append(current)
            total = total + self.lengths[current] + len(self.joiner)
        matrix = np.stack(steps, axis=1)
        cum = np.cumsum(self.lengths[matrix] + len(self.joiner), axis=1)
        keep = np.minimum((cum < targets[:, None]).sum(axis=1) + 1, matrix.shape[1])
        return [matrix[i, : keep[i]].tolist() for i in range(n)]


def pseudo_word(rank: int, language: str, characters: str) -> str:
    """A stable made-up word for a Zipf rank: syllables for English, corpus characters for Chinese."""
    out = []
    base = len(characters) if language == "zh" else len(SYLLABLES)
    rank += base  # at least two units
    while rank:
        rank, digit = divmod(rank, base)
        out.append(characters[digit] if language == "zh" else SYLLABLES[digit])
    return "".join(out)


@dataclass
class VectorModel:
    """Gaussian vectors with the real vectors' mean and principal variances; `shared` of the variance
    is common to a document's chunks."""

    mean: np.ndarray
    basis: np.ndarray  # k x d, orthonormal rows
    scales: np.ndarray  # standard deviation along each row of `basis`
    residual: float  # standard deviation per dimension of what the k directions leave out
    shared: float

    @classmethod
    def fit(cls, vectors: np.ndarray, doc_ids: Sequence[str], k: int = 256) -> VectorModel:
        vectors = np.asarray(vectors, dtype=np.float64)
        mean = vectors.mean(axis=0)
        centred = vectors - mean
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        k = min(k, len(singular))
        variance = singular**2 / max(len(vectors) - 1, 1)
        residual = float(np.sqrt(max(variance[k:].sum(), 1e-12) / vectors.shape[1]))
        return cls(mean, vt[:k], np.sqrt(variance[:k]), residual, same_document_share(centred, doc_ids))

    def sample(self, rng: np.random.Generator, doc_of_chunk: np.ndarray) -> np.ndarray:
        """Unit vectors, one per chunk; chunks with the same value in doc_of_chunk share a component."""
        docs, inverse = np.unique(doc_of_chunk, return_inverse=True)
        k, d = self.basis.shape
        doc_part = rng.standard_normal((len(docs), k))[inverse]
        own = rng.standard_normal((len(doc_of_chunk), k))
        latent = (np.sqrt(self.shared) * doc_part + np.sqrt(1 - self.shared) * own) * self.scales
        vectors = self.mean + latent @ self.basis + self.residual * rng.standard_normal((len(doc_of_chunk), d))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors.astype(np.float32)


def same_document_share(centred: np.ndarray, doc_ids: Sequence[str], pairs: int = 20_000) -> float:
    """The share of a chunk's variance its document's other chunks have in common with it."""
    docs = np.asarray(doc_ids)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(docs), (2, pairs))
    same = (docs[i] == docs[j]) & (i != j)
    if not same.any():
        return 0.25
    dots = np.einsum("ij,ij->i", centred[i[same]], centred[j[same]])
    return float(np.clip(dots.mean() / (centred**2).sum(axis=1).mean(), 0.0, 0.9))


@dataclass
class Batch:
    documents: list[tuple[Document, str]]  # with the text hash the index keeps
    chunks: list[Chunk]
    vectors: np.ndarray


class SyntheticCorpus:
    """Learn from real chunks once, then make any number of synthetic ones."""

    def __init__(
        self,
        records: Sequence[dict[str, Any]],
        vectors: np.ndarray,
        seed: int = 0,
        zh_share: float = ZH_SHARE,
    ):
        from ingest.tokenize import CJK_RE

        self.seed = seed
        self.zh_share = zh_share
        self.chains: dict[str, Chain] = {}
        self.lengths: dict[str, np.ndarray] = {}
        self.titles: dict[str, list[str]] = {}
        self.sections: dict[str, list[list[str]]] = {}
        for lang in ("zh", "en"):
            mine = [r for r in records if r["language"] == lang] or list(records)
            pieces = [zh_words(r["text"]) if lang == "zh" else r["text"].split() for r in mine]
            self.chains[lang] = Chain.learn(pieces, "" if lang == "zh" else " ")
            self.lengths[lang] = np.array([max(20, len(r["text"])) for r in mine], dtype=np.int64)
            self.titles[lang] = sorted({r["title"] for r in mine})
            self.sections[lang] = [list(r["section"]) for r in mine]
        text = "".join(r["text"] for r in records)
        counts: dict[str, int] = {}
        for ch in CJK_RE.findall(text):
            counts[ch] = counts.get(ch, 0) + 1
        self.characters = "".join(sorted(counts, key=lambda c: (-counts[c], c))[:400]) or "的模型训练数据"
        self.chunks_per_doc = np.array(sorted(Counter(r["doc_id"] for r in records).values()) or [20])
        self.vector_model = VectorModel.fit(vectors, [r["doc_id"] for r in records])
        self._rare: dict[tuple[str, int], str] = {}

    @classmethod
    def from_index(cls, index: Any, seed: int = 0, zh_share: float = ZH_SHARE) -> SyntheticCorpus:
        records = index.chunks(list(range(len(index))))
        return cls(records, np.asarray(index.vectors()), seed=seed, zh_share=zh_share)

    def batches(self, total: int) -> Iterator[Batch]:
        """Blocks of documents until `total` chunks have been made (the last document is cut short)."""
        made = 0
        block = 0
        while made < total:
            batch = self.block(block)
            if made + len(batch.chunks) > total:  # cut the whole block, so a prefix stays a prefix
                keep = total - made
                batch.chunks = batch.chunks[:keep]
                batch.vectors = batch.vectors[:keep]
                wanted = {c.doc_id for c in batch.chunks}
                batch.documents = [d for d in batch.documents if d[0].doc_id in wanted]
            made += len(batch.chunks)
            block += 1
            yield batch

    def block(self, block: int) -> Batch:
        """DOCS_PER_BLOCK documents, made from their own seeded generator."""
        rng = np.random.default_rng([self.seed, block])
        sizes = rng.choice(self.chunks_per_doc, DOCS_PER_BLOCK)
        languages = np.where(rng.random(len(sizes)) < self.zh_share, "zh", "en")
        texts: list[str] = [""] * int(sizes.sum())
        doc_of_chunk = np.repeat(np.arange(len(sizes)), sizes)
        for lang in ("zh", "en"):
            where = np.flatnonzero(languages[doc_of_chunk] == lang)
            if len(where):
                for i, text in zip(where, self.texts(rng, lang, len(where))):
                    texts[i] = text
        vectors = self.vector_model.sample(rng, doc_of_chunk)
        documents, chunks = [], []
        first = 0
        for d, (size, lang) in enumerate(zip(sizes, languages)):
            number = block * DOCS_PER_BLOCK + d
            doc_id = f"synthetic-{number:07d}"
            title = f"{self.titles[lang][int(rng.integers(len(self.titles[lang])))]} ({number})"
            url = f"synthetic://{doc_id}"
            parts, offset = [], 0
            for j in range(first, first + int(size)):
                section = self.sections[lang][int(rng.integers(len(self.sections[lang])))]
                chunk_text = texts[j]
                chunks.append(
                    Chunk(
                        chunk_id=f"{doc_id}-{j - first:03d}",
                        doc_id=doc_id,
                        title=title,
                        url=url,
                        section=section,
                        language=str(lang),
                        start=offset,
                        end=offset + len(chunk_text),
                        text=chunk_text,
                    )
                )
                parts.append(chunk_text)
                offset += len(chunk_text) + 2
            doc_text = "\n\n".join(parts)
            sha = hashlib.sha256(doc_text.encode()).hexdigest()
            document = Document(
                doc_id=doc_id,
                title=title,
                url=url,
                source=url,
                language=str(lang),
                license="synthetic",
                sha256=sha,
                text=doc_text,
                raw_chars=len(doc_text),
            )
            documents.append((document, sha))
            first += int(size)
        return Batch(documents, chunks, vectors)

    def texts(self, rng: np.random.Generator, lang: str, n: int) -> list[str]:
        chain = self.chains[lang]
        targets = rng.choice(self.lengths[lang], n)
        out = []
        for ids in chain.walk(rng, targets):
            words = chain.tokens[ids].tolist()
            rare = np.flatnonzero(rng.random(len(words)) < RARE_SHARE)
            if len(rare):
                ranks = rng.zipf(1.3, len(rare))
                for position, rank in zip(rare.tolist(), ranks.tolist()):
                    words[position] = self.rare_word(lang, int(rank) % 5_000_000)
            out.append(chain.joiner.join(words).strip())
        return out

    def rare_word(self, lang: str, rank: int) -> str:
        key = (lang, rank)
        if key not in self._rare:
            self._rare[key] = pseudo_word(rank, lang, self.characters)
        return self._rare[key]

    def query_vectors(self, n: int) -> np.ndarray:
        """Held-out vectors from the same distribution (documents the corpus does not contain)."""
        rng = np.random.default_rng([self.seed, 10**9])
        return self.vector_model.sample(rng, np.arange(n) // 4)


def zh_words(text: str) -> list[str]:
    from ingest.tokenize import _jieba

    return [w for w in _jieba().lcut(text) if w != "\n"] if re.search(r"\S", text) else []
