"""Text decoding: UTF-16 in every form is text, NUL bytes anywhere mark binary, and the result is valid Unicode."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ingest.load import LoadError, decode_text, iter_sources, valid_unicode

ENGLISH = "Vicuna was fine-tuned from LLaMA on 70K user-shared ChatGPT conversations.\nIt costs $300 to train.\n"
CHINESE = (
    "大语言模型是种基于深度学习的自然语言处理模型，它通过在海量文本上预训练来学习语言的规律。"
    "羊驼模型由斯坦福大学微调得到。"
)
MIXED = "ChatGLM-6B 是一个开源的、支持中英双语的对话语言模型，具有 62 亿参数。\n"
# Chinese whose UTF-16 has no NUL byte at all: no pattern to see, only the characters tell.
NO_NUL_CHINESE = "".join(ch for ch in CHINESE if 0 not in ch.encode("utf-16-le"))


@pytest.mark.parametrize("text", [ENGLISH, CHINESE, MIXED, NO_NUL_CHINESE, "Café crème, naïve façade. " * 4])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])  # "utf-16" writes a BOM
def test_utf16_is_decoded_with_or_without_bom(text: str, encoding: str) -> None:
    data = text.encode(encoding)
    if text is NO_NUL_CHINESE and encoding != "utf-16":
        assert b"\x00" not in data
    assert decode_text(data) == text


def test_utf16_files_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "en.txt").write_bytes(ENGLISH.encode("utf-16"))
    (tmp_path / "zh.md").write_bytes(("# 羊驼\n\n" + CHINESE).encode("utf-16-le"))
    items = list(iter_sources([str(tmp_path)], 1_000_000, timeout=5))
    assert {i.source: i.content for i in items} == {
        f"{tmp_path.name}/en.txt": ENGLISH,
        f"{tmp_path.name}/zh.md": "# 羊驼\n\n" + CHINESE,
    }


@pytest.mark.parametrize("offset", [10, 8191, 8192, 20_000, 99_999])
def test_a_nul_byte_anywhere_means_binary(offset: int) -> None:
    """NULs are not stripped: in a file that is not UTF-16 they mark binary data (or a corrupt file),
    and indexing the rest would index garbage."""
    data = bytearray(b"Alpaca is a model fine-tuned from LLaMA. " * 2500)
    data[offset] = 0
    with pytest.raises(LoadError, match="binary"):
        decode_text(bytes(data))


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_binary(seed: int) -> None:
    data = random.Random(seed).randbytes(4000)
    with pytest.raises(LoadError, match="binary"):
        decode_text(data)


@pytest.mark.parametrize("data", [b"\x00\xff" * 100, b"\xff\x00" * 100, b"\x00\x01" * 50, bytes(range(256)) * 40])
def test_nul_patterned_binary_is_not_utf16(data: bytes) -> None:
    """Every other byte NUL is how UTF-16 ASCII looks, but also how some binary data looks."""
    with pytest.raises(LoadError, match="binary"):
        decode_text(data)


def test_gbk_still_wins_over_utf16_guesses() -> None:
    text = "大语言模型是一种基于深度学习的自然语言处理模型" * 5
    assert decode_text(text.encode("gbk")) == text


@pytest.mark.parametrize(
    "data",
    [
        b"ok \xed\xa0\x80 then text",  # a surrogate encoded in UTF-8: not valid UTF-8
        ("Vicuna 是一个开源模型，" * 20).encode() + b"\xff\xfe\xfd" + b" the rest of the document" * 20,
        ("Vicuna \ud800 was trained on ShareGPT. " * 10).encode("utf-16-le", "surrogatepass"),
        "\ufeffBOM then a lone \udc80".encode("utf-16-be", "surrogatepass"),
    ],
)
def test_decoded_text_is_always_valid_unicode(data: bytes) -> None:
    text = decode_text(data)
    assert text.encode("utf-8")  # raises on a lone surrogate
    assert text.strip()


def test_mostly_utf8_text_with_a_damaged_byte_is_kept() -> None:
    data = ("Vicuna 是一个开源模型，" * 20).encode() + b"\xff" + b" the rest of the document" * 20
    text = decode_text(data)
    assert text.startswith("Vicuna 是一个开源模型") and "\ufffd the rest of the document" in text


def test_valid_unicode_replaces_lone_surrogates() -> None:
    assert valid_unicode("a\ud800b\udfffc") == "a\ufffdb\ufffdc"
    assert valid_unicode("正常 text") == "正常 text"


def test_empty_utf16_is_empty() -> None:
    with pytest.raises(LoadError, match="empty file"):
        decode_text("   \n".encode("utf-16"))
