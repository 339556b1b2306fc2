"""Real streaming, end to end: the LLM's tokens reach `Atlas.ask_stream`, `/v1/ask/stream`, the
OpenAI-compatible stream and the `ask` command while the model is still writing, each sentence
after its citation markers are checked. The model is a local server speaking the OpenAI protocol
that streams one word every 0.1 s, 10 s in all."""

from __future__ import annotations

import json
import os
import pty
import random
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from rag.answer import LLM_CUT_SHORT, LLM_FAILED, approx_tokens
from rag.citations import MARKER_RE, MarkerStream, build_citations, claims, fix_markers
from rag.schema import Answer, Passage
from rag.service import Atlas

pytest.register_assert_rewrite("tests.integration.conftest_server", "conftest_server")
try:  # tests/ is a package in some layouts and not in others
    from tests.integration import conftest_server as srv
    from tests.integration.openai_server import Script, openai_server
except ModuleNotFoundError:
    import conftest_server as srv
    from openai_server import Script, openai_server

QUESTION = "How was Vicuna trained?"
# 100 words, one chunk every 0.1 s: the model takes 10 s, and its first sentence is over after 4 words.
# "[9]" names no passage (k=5).
FIRST = "Vicuna used ShareGPT [1]."
SLOW_REPLY = " ".join(
    [FIRST, "It was fine-tuned from LLaMA on conversations that users shared [1]."]
    + ["The conversations came from ShareGPT and were cleaned first [1]."] * 8
    + ["Training cost about $300 [9]."]
)
CHUNKS, CHUNK_DELAY = 100, 0.1
FIRST_DELTA_WITHIN = 1.5  # seconds from the request, while the whole answer takes 10 s
assert len(SLOW_REPLY.split(" ")) == CHUNKS


def with_llm(atlas: Atlas, base_url: str, **settings: object) -> Atlas:
    """The session's Atlas, answering with the LLM at `base_url`."""
    values = {"llm_base_url": base_url, "llm_api_key": "sk-test", "llm_model": "test-model", "llm_timeout": 2.0}
    clone = Atlas.__new__(Atlas)
    clone.__dict__.update(atlas.__dict__, settings=atlas.settings.model_copy(update={**values, **settings}))
    return clone


class Clock:
    """When the first and last piece came, counted from the start of the request."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.first: float | None = None
        self.last = 0.0

    def tick(self) -> None:
        now = time.monotonic() - self.started
        self.first = now if self.first is None else self.first
        self.last = now

    def check(self, what: str) -> None:
        assert self.first is not None, f"{what}: nothing was streamed"
        print(f"\n{what}: first delta after {self.first:.2f} s of {self.last:.2f} s ({self.first / self.last:.0%})")
        assert self.last >= CHUNKS * CHUNK_DELAY  # the model really took its time...
        assert self.first < 0.4 * self.last  # ...and its first sentence was out long before it finished
        assert self.first < FIRST_DELTA_WITHIN


def check_consistent(text: str, answer: dict | Answer) -> None:
    """The final answer is the streamed text, and its citations are those of that text."""
    data = answer.public() if isinstance(answer, Answer) else answer
    assert data["answer"] == text
    assert "[9]" not in text
    assert [c["n"] for c in data["citations"]] == sorted({int(n) for n in MARKER_RE.findall(text)})


@pytest.fixture(scope="module")
def slow_llm(atlas: Atlas) -> Iterator[tuple[str, Script]]:
    atlas.ask(QUESTION, use_llm=False)  # loads what the first answer loads, which is not what is measured here
    script = Script(reply=SLOW_REPLY, chunk_delay=CHUNK_DELAY)
    with openai_server(script) as url:
        yield url, script


# ---------------------------------------------------------------- Atlas.ask_stream


def test_ask_stream_sends_sentences_while_the_model_writes(atlas: Atlas, slow_llm: tuple[str, Script]) -> None:
    url, script = slow_llm
    llm_atlas = with_llm(atlas, url)  # llm_timeout 2 s: the deadline is on the first token, not on all 10 s
    clock, pieces = Clock(), []
    for item in llm_atlas.ask_stream(QUESTION, use_llm=True):
        if isinstance(item, Answer):
            answer = item
        else:
            clock.tick()
            pieces.append(item)
    clock.check("Atlas.ask_stream")
    assert answer.mode == "llm" and answer.answered and "LLM" not in (answer.notice or "")
    assert len(pieces) >= 3 and pieces[0] == FIRST
    assert not any("[9]" in piece for piece in pieces)
    check_consistent("".join(pieces), answer)
    assert "removed" in answer.notice  # the [9] was taken out, and said so
    assert script.requests[-1]["body"]["stream"] is True

    # The same reply, not streamed, gives the same answer.
    with openai_server(Script(reply=SLOW_REPLY)) as fast:
        whole = with_llm(atlas, fast).ask(QUESTION, use_llm=True)
    assert whole.answer == answer.answer and whole.citations == answer.citations and whole.notice == answer.notice


def test_a_refusal_and_the_extractive_answer_come_in_one_piece(atlas: Atlas) -> None:
    with openai_server(Script(reply="NO_ANSWER")) as url:
        items = list(with_llm(atlas, url).ask_stream(QUESTION, use_llm=True))
    assert len(items) == 2 and items[1].answered is False and items[0] == items[1].answer
    items = list(atlas.ask_stream(QUESTION, use_llm=False))
    assert len(items) == 2 and items[1].mode == "extractive" and items[0] == items[1].answer


def test_failure_before_the_first_token_falls_back_to_the_extractive_answer(atlas: Atlas) -> None:
    for script in (Script(status=500), Script(reply="late [1].", delay=4)):
        with openai_server(script) as url:
            started = time.monotonic()
            items = list(with_llm(atlas, url, llm_timeout=1.0).ask_stream(QUESTION, use_llm=True))
            elapsed = time.monotonic() - started
        answer = items[-1]
        assert answer.mode == "extractive" and answer.notice == LLM_FAILED
        assert items[:-1] == [answer.answer] and "ShareGPT" in answer.answer
        assert elapsed < 1.0 + 3.0  # the timeout, plus retrieval and slack; the slow model takes 4 s


@pytest.mark.parametrize("failure", ["stall", "drop"])
def test_failure_mid_stream_ends_with_what_was_sent(atlas: Atlas, failure: str) -> None:
    # Two sentences are out when the model goes silent (longer than llm_timeout) or hangs up mid-sentence.
    broken = {"stall": {"stall_after": 16, "stall_seconds": 3.0}, "drop": {"drop_after": 16}}[failure]
    with openai_server(Script(reply=SLOW_REPLY, chunk_delay=0.02, **broken)) as url:
        started = time.monotonic()
        items = list(with_llm(atlas, url, llm_timeout=1.0).ask_stream(QUESTION, use_llm=True))
        elapsed = time.monotonic() - started
    answer, pieces = items[-1], items[:-1]
    assert answer.mode == "llm" and answer.notice.startswith(LLM_CUT_SHORT)
    text = "".join(pieces)
    assert text.endswith("users shared [1].") and "Training" not in text  # the unfinished sentence is left out
    check_consistent(text, answer)
    assert elapsed < 1.0 + 2.5  # a stall ends at the timeout, not when the model wakes up


# ---------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def llm_server(atlas: Atlas, slow_llm: tuple[str, Script]) -> Iterator[srv.LiveServer]:
    with srv.running(with_llm(atlas, slow_llm[0], llm_max_tokens=100)) as server:
        yield server


def sse_stream(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream, as they arrive."""
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield event, "\n".join(data)
            event, data = "message", []


def test_native_stream_over_http(llm_server: srv.LiveServer) -> None:
    clock, deltas, answers = Clock(), [], []
    body = {"question": QUESTION, "llm": True}
    with httpx.stream("POST", f"{llm_server.url}/v1/ask/stream", json=body, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for event, data in sse_stream(response):
            if event == "delta":
                clock.tick()
                deltas.append(json.loads(data)["text"])
            elif event == "answer":
                answers.append(json.loads(data))
    clock.check("/v1/ask/stream")
    assert len(answers) == 1 and answers[0]["mode"] == "llm" and len(deltas) >= 3
    assert not any("[9]" in delta for delta in deltas)
    check_consistent("".join(deltas), answers[0])
    assert all(c["quote"] and c["doc_id"] for c in answers[0]["citations"])


def test_a_client_that_hangs_up_stops_the_model(atlas: Atlas) -> None:
    # 30 words: the second sentence is over after 12 of them, the third takes 18 more.
    reply = f"{FIRST} It was fine-tuned from LLaMA on conversations [1]. " + " ".join(["Training"] * 17) + " [1]."
    script = Script(reply=reply, chunk_delay=CHUNK_DELAY)
    with openai_server(script) as url, srv.running(with_llm(atlas, url)) as server:
        body = {"question": QUESTION, "llm": True}
        started = time.monotonic()
        with httpx.stream("POST", f"{server.url}/v1/ask/stream", json=body, timeout=60) as response:
            for event, _ in sse_stream(response):
                if event == "delta":
                    break  # the reader goes away after the first sentence
        # The worker waiting for the second sentence learns of it when that sentence is ready, and then
        # stops reading the model, which would otherwise go on to its 30th word.
        time.sleep(max(0.0, 30 * CHUNK_DELAY + 1.0 - (time.monotonic() - started)))
        print(f"\nhung up after the first sentence: the model sent {len(script.sent)} of 30 words")
        assert len(script.sent) < 20


def test_openai_stream_sends_the_limit_and_english_sources(
    llm_server: srv.LiveServer, slow_llm: tuple[str, Script]
) -> None:
    url, script = slow_llm
    client = openai.OpenAI(base_url=f"{llm_server.url}/v1", api_key="unused", max_retries=0, timeout=60)
    clock, content, finished = Clock(), [], []
    stream = client.chat.completions.create(
        model="llm-atlas", messages=[{"role": "user", "content": QUESTION}], stream=True, max_tokens=50
    )
    for chunk in stream:
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta:
            clock.tick()
            content.append(delta)
        if chunk.choices and chunk.choices[0].finish_reason:
            finished.append(chunk)
    clock.check("/v1/chat/completions stream (openai client)")
    assert script.requests[-1]["body"]["max_completion_tokens"] == 50  # the client's limit reached the model
    *pieces, tail = content
    assert len(pieces) >= 3 and tail.startswith("\n\n") and "\n\nSources:\n[1] " in tail and "来源" not in tail
    assert not any("[9]" in piece for piece in pieces)
    check_consistent("".join(pieces), {"answer": "".join(pieces), "citations": finished[0].model_extra["citations"]})


@pytest.fixture(scope="module")
def fast_llm(atlas: Atlas) -> Iterator[tuple[srv.LiveServer, Script]]:
    """A server whose model answers at once, in English quoting Chinese, with the model's limit at 100."""
    script = Script(reply="Vicuna was trained on ShareGPT conversations [1]. 它的训练成本约为 300 美元 [1].")
    with openai_server(script) as url, srv.running(with_llm(atlas, url, llm_max_tokens=100)) as server:
        yield server, script


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_max_tokens_reaches_the_model_capped(fast_llm: tuple[srv.LiveServer, Script], stream: bool) -> None:
    server, script = fast_llm
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": QUESTION}]
    for limits, sent in [({"max_tokens": 7}, 7), ({"max_completion_tokens": 10**6}, 100), ({}, 100)]:
        reply = client.chat.completions.create(model="llm-atlas", messages=messages, stream=stream, **limits)
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
        else:
            text = reply.choices[0].message.content
        assert script.requests[-1]["body"]["max_completion_tokens"] == sent
        # An English question: an English heading, though the answer quotes Chinese.
        assert "\n\nSources:\n[1] " in text and "来源" not in text


def test_max_tokens_cuts_the_extractive_answer_at_a_sentence_end(fast_llm: tuple[srv.LiveServer, Script]) -> None:
    server, _ = fast_llm
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": "How was LLaMA 2 Chat fine-tuned?"}]  # a prose answer
    offline = {"llm": False}
    full = client.chat.completions.create(model="llm-atlas", messages=messages, extra_body=offline)
    whole = full.model_extra
    full_text = full.choices[0].message.content
    answer_full = full_text[: full_text.index("\n\nSources:")]
    assert approx_tokens(answer_full) > 60, answer_full  # long enough to be cut
    for stream in (False, True):
        reply = client.chat.completions.create(
            model="llm-atlas", messages=messages, extra_body=offline, max_tokens=40, stream=stream
        )
        if stream:
            chunks = list(reply)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            extra = next(c for c in chunks if c.choices and c.choices[0].finish_reason).model_extra
        else:
            text, extra = reply.choices[0].message.content, reply.model_extra
        answer = text[: text.index("\n\nSources:")]
        assert answer_full.startswith(answer) and answer_full[len(answer)] in " \n"  # cut between sentences
        following = claims(answer_full[len(answer) :])[0][0]  # the sentence that would not fit
        assert approx_tokens(answer) <= 40 < approx_tokens(answer + following)
        assert re.search(r"[.。!?！？\]]$", answer), answer
        cited = sorted({int(n) for n in MARKER_RE.findall(answer)})
        assert [c["n"] for c in extra["citations"]] == cited and cited  # only what the cut answer cites
        assert whole["mode"] == extra["mode"] == "extractive"


# ---------------------------------------------------------------- the ask command, in a terminal


def test_ask_prints_as_the_model_writes_in_a_terminal(bundled_index: Path) -> None:
    script = Script(reply=SLOW_REPLY, chunk_delay=CHUNK_DELAY)
    with openai_server(script) as url:
        env = {
            **os.environ,
            "LLM_ATLAS_INDEX_DIR": str(bundled_index),
            "LLM_ATLAS_LLM_BASE_URL": url,
            "LLM_ATLAS_LLM_API_KEY": "sk-test",
            "LLM_ATLAS_LLM_MODEL": "test-model",
            "LLM_ATLAS_LLM_TIMEOUT": "2",
            "COLUMNS": "200",
        }
        main, terminal = pty.openpty()  # stdout is a terminal, as for a person typing `ask`
        code = "import sys; from server.cli import ask_main; sys.argv[0] = 'ask'; ask_main()"
        process = subprocess.Popen(
            [sys.executable, "-c", code, QUESTION],
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=env,
            cwd=Path(__file__).parents[2],
        )
        os.close(terminal)
        output, seen = b"", {}
        while True:
            ready, _, _ = select.select([main], [], [], 120)
            if not ready:
                process.kill()
                pytest.fail(f"ask printed nothing for 120 s: {output!r}")
            try:
                data = os.read(main, 4096)
            except OSError:  # the terminal closes when the process ends
                break
            if not data:
                break
            output += data
            for mark in ("ShareGPT", "Sources"):
                if mark.encode() in output:
                    seen.setdefault(mark, time.monotonic())
        os.close(main)
        assert process.wait(60) == 0, process.stderr.read().decode()
    text = output.decode()
    asked = script.requests[-1]["at"]  # from when the model was asked: loading the index is not streaming
    first, last = seen["ShareGPT"] - asked, seen["Sources"] - asked
    print(f"\nask in a terminal: first sentence after {first:.2f} s of {last:.2f} s ({first / last:.0%})")
    assert last >= CHUNKS * CHUNK_DELAY and first < 0.4 * last
    assert FIRST in text and "[9]" not in text


# ---------------------------------------------------------------- the checker itself

DOC = (
    "Intro. Vicuna is trained by fine-tuning LLaMA on 70K conversations from ShareGPT. "
    "The training cost was around $300. Alpaca used 52K instruction-following demonstrations."
)
PASSAGES = [
    Passage(n=n, chunk_id=f"c{n}", doc_id="doc", title="T", url="u", language="en", start=a, end=b, text=DOC[a:b])
    for n, (a, b) in enumerate([(7, 117), (117, len(DOC))], start=1)
]
WORDS = [
    "Vicuna", " was", " fine-tuned", " from", " LLaMA", " on", " ShareGPT", " conversations", " Alpaca", " used",
    " 52K", " demonstrations", " $300", " 3.5", ".", ". ", "。", "；", "[1]", "[2]", "[9]", " [1]", " [7]", "[",
    "1", "]", "9", "\n", "\n\n", " ", "  ", "\t", "!", "?", "！", "？", "- ", "**", "训练", "成本", "约", "美元",
    " \n", "。[2]", "x", "NO", "\n  \n",
]  # fmt: skip


def test_checking_as_text_arrives_gives_what_checking_the_whole_text_gives() -> None:
    rng = random.Random(7)
    for _ in range(4000):
        text = "".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 12))))
        pieces = list(text) if rng.random() < 0.3 else [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        checker = MarkerStream(PASSAGES)
        out = [checker.feed(piece) for piece in pieces] + [checker.finish()]
        streamed = "".join(out)
        assert streamed == checker.text and {int(n) for n in MARKER_RE.findall(streamed)} <= {1, 2}
        fixed, removed, unsupported = fix_markers(text, PASSAGES)
        if re.search(r"\[\d*\[", text):  # "[[9]7]": fix_markers leaves the "[7]" it makes; the stream removes it
            continue
        assert (streamed, checker.removed, checker.unsupported) == (fixed, removed, unsupported), (text, pieces)
        assert build_citations(streamed, PASSAGES) == build_citations(fixed, PASSAGES)


def test_a_sentence_is_sent_once_it_is_over_and_a_marker_split_over_tokens_is_still_removed() -> None:
    checker = MarkerStream(PASSAGES)
    sent = [checker.feed(t) for t in ["Vicuna used ShareGPT", " conversations [", "9", "].", " [", "1]", " Then"]]
    # Nothing goes before the sentence is over: "[1]" after its full stop still belongs to it.
    assert sent == ["", "", "", "", "", "", "Vicuna used ShareGPT conversations. [1]"]
    assert checker.removed == 1
    checker, clause, rest = MarkerStream(PASSAGES), "训练成本约为 300 美元；", "Alpaca used 52K demonstrations"
    assert checker.feed(clause) == clause  # a finished clause goes at once: checking only changes a sentence's end
    assert checker.feed(rest) == ""
    assert clause + checker.finish() == fix_markers(clause + rest, PASSAGES)[0] == f"{clause}{rest} [2]"
