"""Answer -> Slack message formatting (pure functions; no network) and the app manifest."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rag.schema import Answer, Citation
from server.slack import SeenCache, clean_user_text
from server.slack_format import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    TEXT_LIMIT,
    TRIMMED_NOTE,
    answer_message,
    escape,
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
        texts = [block["text"]] if "text" in block else block.get("elements", [])
        assert all(len(t["text"]) <= SECTION_LIMIT for t in texts)


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
    texts = [
        b["elements"][0]["text"] if b["type"] == "context" else b.get("text", {}).get("text") for b in message["blocks"]
    ]
    assert texts[1] == ":information_source: LLM was down"
    assert "*low-rank*" in texts[2] and "|[1]>" in texts[2]
    assert texts[4].startswith("*[1]* <https://example.org/paper_v2?a=1&amp;b=2|LoRA paper> › Intro")
    assert texts[5] == (
        "*[2]* <https://example.org/paper_v2?a=1&amp;b=2|B &amp; C> › Method &gt; Rank\n“rank r &lt;= 8”"
    )
    assert message["text"] == "LoRA adds *low-rank* adapters [1] [2]."  # notification text: plain markers
    limits_ok(message)


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
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/ask"]
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"]
