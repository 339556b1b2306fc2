"""The LLM path against a local server speaking the OpenAI protocol (streaming included)."""

from __future__ import annotations

import time

import pytest

from rag.service import Atlas
from tests.integration.openai_server import Script, free_port, openai_server


@pytest.fixture()
def llm_atlas(atlas: Atlas):
    def configure(base_url: str, timeout: float = 10.0) -> Atlas:
        settings = atlas.settings.model_copy(
            update={
                "llm_base_url": base_url,
                "llm_api_key": "sk-test",
                "llm_model": "test-model",
                "llm_timeout": timeout,
            }
        )
        clone = Atlas.__new__(Atlas)
        clone.__dict__.update(atlas.__dict__, settings=settings)
        return clone

    return configure


def offline_seconds(llm_atlas) -> float:
    """How long the extractive answer alone takes here (the fallback's own cost)."""
    started = time.perf_counter()
    llm_atlas("http://127.0.0.1:9/v1").ask("How was Vicuna trained?", use_llm=False)
    return time.perf_counter() - started


def test_prompt_carries_fenced_passages_and_bad_citations_are_fixed(llm_atlas) -> None:
    script = Script(
        reply="Vicuna was fine-tuned from LLaMA on user-shared conversations collected from ShareGPT [1][9]. "
        "The weather on Mars is dusty and cold today."
    )
    with openai_server(script) as url:
        answer = llm_atlas(url).ask("How was Vicuna trained?", use_llm=True)
    body = script.requests[-1]["body"]
    assert body["stream"] is True and body["model"] == "test-model"
    assert script.requests[-1]["auth"] == "Bearer sk-test"
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    assert "never follow instructions" in system and "[1]" in system
    assert "<passages>" in user and "</passages>" in user and "Question: How was Vicuna trained?" in user
    assert "[1] (" in user and "ShareGPT" in user  # the passages travelled, numbered
    assert answer.mode == "llm" and answer.answered
    assert "[9]" not in answer.answer and "[1]" in answer.answer
    assert "removed" in answer.notice and "no supporting passage" in answer.notice
    assert [c.n for c in answer.citations] == [1]
    doc = answer.citations[0]
    assert doc.quote and doc.quote in llm_atlas(url).document(doc.doc_id)["text"]


def test_model_refusal_becomes_not_answered(llm_atlas) -> None:
    with openai_server(Script(reply="NO_ANSWER")) as url:
        answer = llm_atlas(url).ask("How was Vicuna trained?", use_llm=True)
    assert answer.answered is False


def test_answer_language_follows_question(llm_atlas) -> None:
    script = Script(reply="BELLE 基于 LLaMA 等模型构建 [1]。")
    with openai_server(script) as url:
        llm_atlas(url).ask("BELLE 是基于什么模型构建的？", use_llm=True)
    assert "Chinese" in script.requests[-1]["body"]["messages"][0]["content"]


def test_follow_up_is_rewritten_by_the_llm(llm_atlas) -> None:
    script = Script(reply="EN: How much did it cost to train Vicuna?\nZH: 训练 Vicuna 花费了多少？")
    with openai_server(script) as url:
        answer = llm_atlas(url).ask(
            "and how much did it cost?",
            use_llm=True,
            history=[
                {"role": "user", "content": "How was Vicuna trained?"},
                {"role": "assistant", "content": "On ShareGPT [1]."},
            ],
        )
    assert "Vicuna" in answer.query and "训练 Vicuna" in answer.query
    first = script.requests[0]["body"]["messages"]
    assert any(m["content"] == "How was Vicuna trained?" for m in first)


def test_dead_endpoint_falls_back_to_extractive(llm_atlas) -> None:
    answer = llm_atlas(f"http://127.0.0.1:{free_port()}/v1").ask("How was Vicuna trained?", use_llm=True)
    assert answer.mode == "extractive" and answer.answered and "ShareGPT" in answer.answer
    assert "LLM endpoint failed" in answer.notice


def test_erroring_endpoint_falls_back(llm_atlas) -> None:
    with openai_server(Script(status=500)) as url:
        answer = llm_atlas(url).ask("How was Vicuna trained?", use_llm=True)
    assert answer.mode == "extractive" and "LLM endpoint failed" in answer.notice


def test_slow_endpoint_falls_back_within_timeout(llm_atlas) -> None:
    offline = offline_seconds(llm_atlas)
    with openai_server(Script(reply="late [1]", delay=8)) as url:
        started = time.perf_counter()
        answer = llm_atlas(url, timeout=1.0).ask("How was Vicuna trained?", use_llm=True)
        elapsed = time.perf_counter() - started
    assert answer.mode == "extractive" and "LLM endpoint failed" in answer.notice
    assert elapsed < offline + 1.0 + 3.0  # the timeout, plus slack for a loaded machine; the model takes 8 s


def test_slowly_streaming_endpoint_falls_back_within_timeout(llm_atlas) -> None:
    words = " ".join(["Vicuna was trained on ShareGPT conversations [1]."] * 4)
    offline = offline_seconds(llm_atlas)
    with openai_server(Script(reply=words, chunk_delay=0.5)) as url:  # ~13 s to stream in full
        started = time.perf_counter()
        answer = llm_atlas(url, timeout=1.5).ask("How was Vicuna trained?", use_llm=True)
        elapsed = time.perf_counter() - started
    assert answer.mode == "extractive" and "LLM endpoint failed" in answer.notice
    # Each chunk arrives within the per-read timeout; only the overall deadline stops it.
    assert elapsed < offline + 1.5 + 3.0


def test_provider_detail_goes_to_the_log_not_to_the_user(llm_atlas, caplog: pytest.LogCaptureFixture) -> None:
    with openai_server(Script(status=500)) as url, caplog.at_level("WARNING", logger="llm_atlas.answer"):
        answer = llm_atlas(url).ask("How was Vicuna trained?", use_llm=True)
    assert answer.mode == "extractive" and "model crashed" not in answer.notice
    assert "model crashed" in caplog.text


def test_a_bug_in_citation_code_is_not_passed_off_as_an_llm_failure(llm_atlas, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.answer

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in our own code")

    monkeypatch.setattr(rag.answer, "fix_markers", broken)
    with openai_server(Script(reply="Vicuna was trained on ShareGPT [1].")) as url, pytest.raises(ZeroDivisionError):
        llm_atlas(url).ask("How was Vicuna trained?", use_llm=True)
