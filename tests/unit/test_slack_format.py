"""Answer -> Slack message formatting (pure functions; no network) and the app manifest."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rag.schema import Answer, Citation
from server.slack import SeenCache, clean_user_text
from server.slack_format import (
    FIELD_LIMIT,
    MAX_BLOCKS,
    MAX_FIELDS,
    SECTION_LIMIT,
    TEXT_LIMIT,
    TRIMMED_NOTE,
    answer_message,
    comparison_message,
    display_width,
    escape,
    facts_message,
    split_text,
    to_mrkdwn,
)

MANIFEST = Path(__file__).parents[2] / "server" / "slack_manifest.yaml"


URL = "https://example.org/paper_v2?a=1&b=2"


def cite(
    n: int, url: str = URL, title: str = "Paper", section: str = "Intro", quote: str = "A quoted span."
) -> Citation:
    return Citation(n=n, title=title, url=url, section=section, quote=quote, doc_id=f"d{n}", start=0, end=10)


def limits_ok(message: dict) -> None:
    assert len(message["blocks"]) <= MAX_BLOCKS
    assert len(message["text"]) <= TEXT_LIMIT
    for block in message["blocks"]:
        texts = ([block["text"]] if "text" in block else []) + block.get("elements", [])
        assert texts or block["type"] == "divider"
        assert all(len(t["text"]) <= SECTION_LIMIT for t in texts)
        assert len(block.get("elements", [])) <= 10
        fields = block.get("fields", [])
        assert len(fields) <= MAX_FIELDS and all(len(f["text"]) <= FIELD_LIMIT for f in fields)


def block_texts(message: dict) -> list[str]:
    return [
        b["elements"][0]["text"] if b["type"] == "context" else b.get("text", {}).get("text") for b in message["blocks"]
    ]


def test_markdown_becomes_mrkdwn() -> None:
    markdown = "## Why **LoRA**\nIt is **cheap** and *fast*; see __this__ and ~~not that~~.\n- one\n* two"
    out = to_mrkdwn(markdown)
    assert out == "*Why LoRA*\nIt is *cheap* and _fast_; see *this* and ~not that~.\n• one\n• two"


def test_markers_become_links_to_their_source() -> None:
    out = to_mrkdwn("QLoRA uses 4-bit NF4 [1]. Both agree [1, 2]. Unknown [7].", [cite(1), cite(2)])
    link = "<https://example.org/paper_v2?a=1&amp;b=2|[1]>"
    assert out.startswith(f"QLoRA uses 4-bit NF4 {link}.")
    assert f"{link}<https://example.org/paper_v2?a=1&amp;b=2|[2]>" in out
    assert out.endswith("Unknown [7].")  # no such citation: left as text


def test_local_paths_are_not_linked() -> None:
    out = to_mrkdwn("From a seed file [1].", [cite(1, url="/srv/corpus/seeds/001.txt")])
    assert out == "From a seed file [1]."
    local = cite(1, url="/srv/seeds/1.txt")
    message = answer_message(Answer(answer="x [1]", answered=True, citations=[local]))
    assert "/srv/" not in str(message)


def test_retrieved_text_is_escaped_but_code_and_urls_survive() -> None:
    out = to_mrkdwn("If a < b && c > d: use `x_*y*_z < 3` or [docs](https://h.org/a_b_c) <script>")
    assert "a &lt; b &amp;&amp; c &gt; d" in out
    assert "`x_*y*_z &lt; 3`" in out  # no emphasis inside code
    assert "<https://h.org/a_b_c|docs>" in out  # underscores in URLs untouched
    assert "&lt;script&gt;" in out


def test_pipes_and_brackets_in_urls_cannot_break_the_link() -> None:
    out = to_mrkdwn("See [1].", [cite(1, url="https://x.org/a|b>c d")])
    assert out == "See <https://x.org/a%7Cb%3Ec%20d|[1]>."


def test_answer_message_layout() -> None:
    answer = Answer(
        answer="LoRA adds **low-rank** adapters [1] [2].",
        answered=True,
        notice="LLM was down",
        citations=[
            cite(2, title="B & C", section="Method > Rank", quote="  rank   r <= 8 "),
            cite(1, title="LoRA paper"),
        ],
    )
    message = answer_message(answer, header="<@U1> asked: what is LoRA?")
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds == ["context", "context", "section", "divider", "context", "context"]
    texts = block_texts(message)
    assert texts[1] == ":information_source: LLM was down"
    assert "*low-rank*" in texts[2] and "|[1]>" in texts[2]
    assert texts[4].startswith("*[1]* <https://example.org/paper_v2?a=1&amp;b=2|LoRA paper> › Intro")
    assert texts[5] == ("*[2]* <https://example.org/paper_v2?a=1&amp;b=2|B &amp; C> › Method › Rank\n“rank r &lt;= 8”")
    assert message["text"] == "LoRA adds *low-rank* adapters [1] [2]."  # notification text: plain markers
    limits_ok(message)


def test_markers_are_renumbered_in_order_of_first_use() -> None:
    # The server's n is the rank of the retrieved passage: [4] [2] [5] are the first, second and third used.
    citations = [cite(n, url=f"https://example.org/{n}", title=f"Doc {n}") for n in (2, 4, 5, 7)]
    answer = Answer(
        answer="Alpha [4]. Beta [2]. Gamma [4][5]. Code `a[7]` is not a marker.", answered=True, citations=citations
    )
    message = answer_message(answer)
    body = block_texts(message)[0]
    linked = re.findall(r"<https://example\.org/(\d)\|\[(\d)\]>", body)
    assert linked == [("4", "1"), ("2", "2"), ("4", "1"), ("5", "3")]  # each shown number links to its own source
    assert "`a[7]`" in body
    assert message["text"] == "Alpha [1]. Beta [2]. Gamma [1][3]. Code `a[7]` is not a marker."
    sources = [t for t in block_texts(message)[2:]]
    assert [re.match(r"\*\[(\d)\]\* <[^|]+\|(Doc \d)>", t).groups() for t in sources] == [
        ("1", "Doc 4"),
        ("2", "Doc 2"),
        ("3", "Doc 5"),
        ("4", "Doc 7"),  # cited but not used in the text: listed last
    ]


def test_markdown_table_becomes_an_aligned_preformatted_block() -> None:
    # As the answer code writes it: the header row's marker lands after the closing pipe.
    markdown = (
        "ChatGLM-6B needs **6 GB** [4].\n\n"
        "| **Quantization Level** | GPU Memory | [4]\n"
        "|---|:--:|\n"
        "| FP16（无量化） | 13 GB [2] |\n"
        "| `INT4` | 6 GB [1] |\n\n"
        "- **INT8**: 10 GB [2]"
    )
    out = to_mrkdwn(markdown, [cite(1), cite(2), cite(4)])
    assert out.startswith("ChatGLM-6B needs *6 GB* <https://example.org/paper_v2?a=1&amp;b=2|[1]>.\n\n```\n")
    table = out.split("```\n")[1].rstrip("\n")
    lines = table.split("\n")
    assert lines == [
        "Quantization Level | GPU Memory [1]",
        "-------------------+---------------",
        "FP16（无量化）     | 13 GB [2]",
        "INT4               | 6 GB [3]",
    ]
    # Columns line up in a monospaced font, where each CJK character takes two cells.
    assert len({display_width(line.split("|")[0]) for line in lines if "|" in line}) == 1
    assert out.endswith("```\n\n• *INT8*: 10 GB <https://example.org/paper_v2?a=1&amp;b=2|[2]>")
    assert "|---" not in out and "**" not in out


def test_quoted_table_rows_become_one_table() -> None:
    # The extractive answer quotes table rows as "header → row [n]" on one line each.
    row = "| **Quantization Level** | GPU Memory | → | {} | {} | [{}]"
    markdown = f"Deploy locally [1]. {row.format('INT8', '10 GB', 3)} {row.format('INT4', '6 GB', '3][1')} More [2]."
    out = to_mrkdwn(markdown, [cite(1), cite(2), cite(3)])
    link = "<https://example.org/paper_v2?a=1&amp;b=2|[{}]>"
    assert out == (
        f"Deploy locally {link.format(1)}.\n\n```\n"
        "Quantization Level | GPU Memory\n-------------------+------------\n"
        "INT8               | 10 GB [2]\nINT4               | 6 GB [2][1]\n```\n\n"
        f"More {link.format(3)}."
    )
    # A header with an empty first cell (the model-name column), rows without outer pipes.
    out = to_mrkdwn("||Params|Context Length| → Llama 2|*70B*|4k [1]", [cite(1)])
    assert (
        out
        == "```\n        | Params | Context Length\n--------+--------+---------------\nLlama 2 | 70B    | 4k [1]\n```"
    )
    # An arrow in prose is not a table.
    assert to_mrkdwn("GPT-3 → GPT-4 [1]", [cite(1)]).startswith("GPT-3 → GPT-4 <")


def test_source_quote_is_the_supporting_sentence() -> None:
    quote = (
        "**More Efficient Inference**: Based on Multi-Query Attention, inference is faster; "
        "under INT4 quantization, the dialogue length supported by 6G GPU memory has increased from 1K to 8K."
    )
    sentence = "under INT4 quantization, the dialogue length supported by 6G GPU memory has increased from 1K to 8K."
    answer = Answer(
        answer=f"{sentence} [3]",
        answered=True,
        citations=[cite(3, quote=quote, section="**Model Details** > `Usage`")],
    )
    line = block_texts(answer_message(answer))[-1]
    assert line == f"*[1]* <https://example.org/paper_v2?a=1&amp;b=2|Paper> › Model Details › Usage\n“{sentence}”"
    # Not found in the quote (the LLM put it in its own words): the quote, without markdown, trimmed.
    reworded = answer.model_copy(update={"answer": "It needs little memory [3]."})
    line = block_texts(answer_message(reworded))[-1]
    shown = line.split("\n")[1]
    assert shown.startswith("“More Efficient Inference: Based on Multi-Query Attention") and "**" not in shown
    assert shown.endswith("supported by 6G GPU memory has…”") and len(shown) <= 160 + 2


def fact(attribute: str, value: str, doc: str, start: int, conflict: bool = False, **extra: str) -> dict:
    citation = {
        "doc_id": doc,
        "title": f"Title of {doc}",
        "url": f"https://example.org/{doc}" if not doc.startswith("seed") else f"corpus/seeds/{doc}.txt",
        "section": "**Model Details**",
        "quote": f"The quote at {start} of {doc}.",
        "start": start,
        "end": start + 10,
    }
    return {
        "attribute": attribute,
        "value": value,
        "normalized": None,
        "conflict": conflict,
        "citation": citation,
        **extra,
    }


def test_comparison_is_one_fields_section_per_attribute() -> None:
    comparison = {
        "models": ["Alpaca", "Vicuna"],
        "attributes": ["base_model", "licence", "architecture"],
        "rows": [
            {
                "attribute": "base_model",
                "conflict": False,
                "cells": {
                    "Alpaca": [fact("base_model", "LLaMA", "a", 5), fact("base_model", "LLaMA", "seed1", 9)],
                    "Vicuna": [fact("base_model", "LLaMA", "a", 5), fact("base_model", "Llama 2", "v", 1)],
                },
            },
            {
                "attribute": "licence",
                "conflict": True,
                "cells": {
                    "Alpaca": [
                        fact("licence", "CC BY NC 4.0", "a", 50, conflict=True),
                        fact("licence", "<research> & more", "b", 7, conflict=True, qualifier="weights"),
                    ],
                    "Vicuna": [],
                },
            },
            {"attribute": "architecture", "conflict": False, "cells": {"Alpaca": [], "Vicuna": []}},
        ],
        "unknown": [
            {"query": "Nope", "error": "No model named 'Nope' in the corpus. Closest known: OPT.", "closest": ["OPT"]}
        ],
    }
    message = comparison_message(comparison)
    limits_ok(message)
    blocks = message["blocks"]
    assert [b["type"] for b in blocks] == ["context", "section", "section", "context", "divider", "context"]
    assert blocks[0]["elements"][0]["text"] == ":warning: No model named 'Nope' in the corpus. Closest known: OPT."
    base, licence = blocks[1], blocks[2]
    assert base["text"]["text"] == "*base model*" and licence["text"]["text"] == "*licence* ⚠"
    link = "<https://example.org/{}|[{}]>"
    assert [f["text"] for f in base["fields"]] == [
        f"*Alpaca*\nLLaMA {link.format('a', 1)}[2]",  # the seed file has no page: an unlinked marker
        f"*Vicuna*\nLLaMA {link.format('a', 1)}\nLlama 2 {link.format('v', 3)}",  # the same passage keeps its number
    ]
    assert [f["text"] for f in licence["fields"]] == [
        f"*Alpaca*\n⚠ CC BY NC 4.0 {link.format('a', 4)}\n"
        f"⚠ &lt;research&gt; &amp; more (weights) {link.format('b', 5)}",
        "*Vicuna*\n_not stated_",
    ]
    assert blocks[3]["elements"][0]["text"] == "_Not stated for any of them:_ architecture"
    sources = [e["text"] for e in blocks[5]["elements"]]
    assert [s.split("*")[1] for s in sources] == ["[1]", "[2]", "[3]", "[4]", "[5]"]
    assert sources[1] == "*[2]* Title of seed1 › Model Details\n“The quote at 9 of seed1.”"
    assert message["text"] == "Comparison of Alpaca, Vicuna"


def test_big_comparisons_stay_within_slack_limits() -> None:
    models = [f"Model-{m}" for m in range(8)]
    rows = [
        {
            "attribute": f"attribute_{a}",
            "conflict": False,
            "cells": {
                m: [fact(f"attribute_{a}", f"{k}" + "v" * 400, f"d{a}-{m}-{k}", k) for k in range(6)] for m in models
            },
        }
        for a in range(13)
    ]
    message = comparison_message({"models": models, "attributes": [], "rows": rows, "unknown": []})
    limits_ok(message)
    assert message["blocks"][-1]["elements"][-1]["text"].endswith("more sources.")
    assert sum(b["type"] == "section" for b in message["blocks"]) == 13
    assert all(f["text"].endswith("…") for f in message["blocks"][0]["fields"])  # 6 × 400 characters do not fit


def test_fact_sheet_message() -> None:
    sheet = {
        "query": "chatglm",
        "model": "ChatGLM-6B",
        "aliases": ["ChatGLM"],
        "facts": [
            fact("parameters", "6.2B", "g", 3),
            fact("memory_requirement", "6 GB", "g", 40, qualifier="INT4"),
            fact("parameters", "62 亿", "seed2", 8),
        ],
    }
    message = facts_message(sheet)
    limits_ok(message)
    section = message["blocks"][0]
    assert section["text"]["text"] == "*ChatGLM-6B* (also: ChatGLM)"
    assert [f["text"] for f in section["fields"]] == [
        "*parameters*\n6.2B <https://example.org/g|[1]>\n62 亿 [2]",
        "*memory requirement*\n6 GB (INT4) <https://example.org/g|[3]>",
    ]
    missing = facts_message({"query": "Foo", "error": "No model named 'Foo' in the corpus. Closest known: BLOOM."})
    assert missing["blocks"][0]["elements"][0]["text"].startswith(":warning: No model named 'Foo'")


def test_long_answers_are_trimmed_and_split_within_limits() -> None:
    sentence = "Scaling laws relate loss to compute and data [1]. "
    answer = Answer(answer=sentence * 1000, answered=True, citations=[cite(1)])
    message = answer_message(answer)
    limits_ok(message)
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert len(sections) > 1
    assert sections[-1].endswith("…")
    assert any(b["type"] == "context" and b["elements"][0]["text"] == TRIMMED_NOTE for b in message["blocks"])
    for piece in sections:  # every link is whole
        assert piece.count("<") == piece.count(">")


def test_many_sources_stay_within_fifty_blocks() -> None:
    answer = Answer(
        answer=" ".join(f"Fact {n} [{n}]." for n in range(1, 80)),
        answered=True,
        citations=[cite(n, title=f"Doc {n}") for n in range(1, 80)],
    )
    message = answer_message(answer)
    limits_ok(message)
    assert message["blocks"][-1]["elements"][0]["text"].endswith("more sources.")


def test_split_text_never_cuts_inside_a_link() -> None:
    link = "<https://example.org/" + "a" * 60 + "|[1]>"
    text = ("word " * 10 + link + " ") * 200
    pieces = split_text(text, 500)
    assert all(len(p) <= 500 for p in pieces)
    assert all(re.fullmatch(r"[^<>]*(<[^<>]+>[^<>]*)*", p) for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_escape() -> None:
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"


def test_user_text_is_cleaned() -> None:
    text = "<@UBOT> what is <https://arxiv.org/abs/2305.14314|QLoRA> &amp; LoRA &lt;3 <@UOTHER>"
    assert clean_user_text(text, "UBOT") == "what is QLoRA & LoRA <3 <@UOTHER>"


def test_seen_cache_is_bounded() -> None:
    seen = SeenCache(size=3)
    assert seen.first_time("e1", "C:1")
    assert not seen.first_time("e2", "C:1")  # same message under a new event id
    assert not seen.first_time("e1")
    for n in range(10):
        seen.first_time(f"x{n}")
    assert len(seen._keys) == 3 and seen.first_time("e1")  # evicted, oldest first


def test_manifest_has_what_the_bot_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "im:history", "channels:history", "groups:history", "commands"} <= scopes
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/ask", "/compare", "/facts"]
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"]
