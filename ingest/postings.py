"""Which chunks name which entity: a postings list per gazetteer key, as two .npy arrays.

The retriever asks for every chunk naming a model ("all chunks about LLaMA") on each comparison
question. At a million chunks a popular family is named by ~100k of them; a SQLite scan or even an
indexed SELECT spent ~46 ms per question turning those rows into Python objects. Here the rows of
a key are one contiguous int32 slice, so the answer is a few array operations.

    entity_keys.json     ["alpaca", "llama", ...]        key i's rows are
    entity_offsets.npy   int64, len(keys) + 1             rows[offsets[i]:offsets[i + 1]]
    entity_rows.npy      int32, ascending within a key
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FILES = ("entity_keys.json", "entity_offsets.npy", "entity_rows.npy")


class PostingsBuilder:
    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self._key_ids = array("i")
        self._rows = array("i")

    def add(self, first_row: int, chunk_entities: Sequence[list[str]]) -> None:
        for row, keys in enumerate(chunk_entities, first_row):
            for key in keys:
                self._key_ids.append(self.keys.setdefault(key, len(self.keys)))
                self._rows.append(row)

    def save(self, folder: Path) -> None:
        key_ids = np.frombuffer(self._key_ids, dtype=np.int32)
        rows = np.frombuffer(self._rows, dtype=np.int32)
        order = np.argsort(key_ids, kind="stable")  # rows were added in ascending order
        offsets = np.zeros(len(self.keys) + 1, dtype=np.int64)
        np.cumsum(np.bincount(key_ids, minlength=len(self.keys)), out=offsets[1:])
        (folder / FILES[0]).write_text(json.dumps(list(self.keys), ensure_ascii=False), encoding="utf-8")
        np.save(folder / FILES[1], offsets, allow_pickle=False)
        np.save(folder / FILES[2], rows[order], allow_pickle=False)


class Postings:
    def __init__(self, folder: Path):
        keys = json.loads((folder / FILES[0]).read_text(encoding="utf-8"))
        self.keys = {key: i for i, key in enumerate(keys)}
        self.offsets = np.load(folder / FILES[1], allow_pickle=False)
        self.rows = np.load(folder / FILES[2], allow_pickle=False, mmap_mode="r")

    @staticmethod
    def exists(folder: Path) -> bool:
        return all((folder / name).exists() for name in FILES)

    def rows_naming(self, keys: Sequence[str]) -> np.ndarray:
        """Ascending, distinct rows of the chunks naming any of the keys (int64)."""
        parts = [
            np.asarray(self.rows[self.offsets[i] : self.offsets[i + 1]])
            for i in (self.keys.get(k) for k in keys)
            if i is not None
        ]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts)).astype(np.int64)
