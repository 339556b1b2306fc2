"""Answers from the real index: citations, refusals, comparisons, follow-ups, the CLI and eval."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag.service import Atlas, QuestionError

REPO = Path(__file__).parents[2]


def test_answer_cites_exact_spans(atlas: Atlas) -> None:
    answer = atlas.ask("Which conversations was Vicuna fine-tuned on?")
    assert answer.answered and answer.mode == "extractive"
    assert "ShareGPT" in answer.answer and "[" in answer.answer
    # The k passages retrieved, and before them the passages the fact sheet's values come from.
    assert len(answer.contexts) >= atlas.settings.top_k
    for c in answer.citations:
        doc = atlas.document(c.doc_id)
        assert doc["text"][c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.answer
        assert c.title and c.url
    public = answer.public(id="q1")
    assert set(public) == {"id", "answer", "answered", "citations", "contexts"}
    assert set(public["citations"][0]) == {"n", "title", "url", "section", "quote", "doc_id", "start", "end"}


def test_english_question_finds_chinese_evidence(atlas: Atlas) -> None:
    answer = atlas.ask("How many natural languages does BLOOM support, and how many programming languages?")
    assert "46" in answer.answer and "13" in answer.answer
    assert any(c.language == "zh" for c in atlas.searcher.search(answer.query, 5).passages)


def test_chinese_question(atlas: Atlas) -> None:
    answer = atlas.ask("ChatGLM-6B 有多少参数？")
    assert answer.answered and "62 亿" in answer.answer


@pytest.mark.parametrize(
    "question",
    [
        "How many layers does GPT-7 have?",
        "Qwen-3 的上下文窗口有多长？",
        "What is the recipe for a good sourdough bread?",
    ],
)
def test_refuses_what_the_corpus_does_not_support(atlas: Atlas, question: str) -> None:
    answer = atlas.ask(question)
    # The passages searched come along (contexts), so a reader can check the refusal; nothing is cited.
    assert answer.answered is False and not answer.citations
    assert "does not say" in answer.answer or "没有相关信息" in answer.answer


def test_comparison_is_a_cited_table(atlas: Atlas) -> None:
    answer = atlas.ask("Compare Koala and Alpaca: what base model and how many parameters?")
    lines = answer.answer.splitlines()
    assert lines[0].startswith("| Model |") and "base model" in lines[0] and "parameters" in lines[0]
    rows = {line.split("|")[1].strip(): line for line in lines[2:] if line.startswith("|")}
    assert set(rows) == {"Koala", "Alpaca"}
    # Every filled cell cites its source, and the citation quotes a span that holds the value.
    for row in rows.values():
        assert re.search(r"LLaMA[^|]*\[\d+\]", row), row
    quotes = {c.n: c.quote for c in answer.citations}
    for n in map(int, re.findall(r"\[(\d+)\]", answer.answer)):
        assert n in quotes


def test_comparison_cells_the_facts_lack_come_from_passages(atlas: Atlas) -> None:
    answer = atlas.ask("Compare Vicuna with Alpaca: base model, training data, cost of training.")
    assert answer.answer.startswith("| Model |")
    if "not stated" in answer.answer:
        assert "**Alpaca**" in answer.answer or "**Vicuna**" in answer.answer


def test_follow_up_carries_the_model(atlas: Atlas) -> None:
    history = [
        {"role": "user", "content": "What is Vicuna fine-tuned from?"},
        {"role": "assistant", "content": "On ShareGPT conversations [1]."},
    ]
    answer = atlas.ask("And how much did it cost to train?", history=history)
    assert "Vicuna" in answer.query
    assert "300" in answer.answer


def test_bad_questions_are_clear_errors(atlas: Atlas) -> None:
    with pytest.raises(QuestionError, match="empty"):
        atlas.ask("   ")
    with pytest.raises(QuestionError, match="limit is 2000"):
        atlas.ask("why " * 1000)


def test_other_language_enters_only_when_competitive(atlas: Atlas) -> None:
    """One fused ranking; a language missing from the top k gets its best passage in only when that
    scores at least `admit_ratio` of the k-th (0: always, above 1: never)."""
    from rag.retrieve import HybridSearcher
    from rag.weights import load_weights

    fitted = load_weights().retrieval
    question = "How many parameters does Falcon-7B have and what licence is it under?"
    languages = {}
    for ratio in (0.0, 10.0):
        searcher = HybridSearcher(atlas.index, atlas.embedder, fitted.model_copy(update={"admit_ratio": ratio}))
        languages[ratio] = {p.language for p in searcher.search(question, 5).passages}
    assert languages[0.0] == {"en", "zh"}
    assert languages[10.0] <= languages[0.0] and len(languages[10.0]) >= 1


@pytest.mark.parametrize(
    ("question", "evidence"),
    [
        ("What share of Falcon-7B's pretraining data comes from each source?", "RefinedWeb-English"),
        (
            "In Vicuna's comparison table, how large were the training datasets of LLaMA, Alpaca and Vicuna?",
            "52K samples",
        ),
    ],
)
def test_the_fitted_reranker_lifts_the_passage_that_answers(atlas: Atlas, question: str, evidence: str) -> None:
    """The fused ranking has the answering passage below its top five; the reranker (fitted on the
    training sets, questions other than these) brings it in."""
    from rag.retrieve import HybridSearcher
    from rag.weights import PASSAGE_FEATURES, load_weights

    fitted = load_weights().retrieval
    assert fitted.rerank is not None and set(fitted.rerank.coefficients) == set(PASSAGE_FEATURES)
    top = {}
    for name, weights in (("fused", fitted.model_copy(update={"rerank": None})), ("reranked", fitted)):
        searcher = HybridSearcher(atlas.index, atlas.embedder, weights)
        pools: list = []
        top[name] = [p.text for p in searcher.search(question, 5, record=pools).passages]
        assert pools and all(set(f) == set(PASSAGE_FEATURES) for pool in pools for f, _ in pool)
    assert not any(evidence in text for text in top["fused"])
    assert any(evidence in text for text in top["reranked"])


@pytest.mark.parametrize(
    ("question", "stated"),
    [
        ("How many days did it take to train MPT-7B?", 1.0),  # "for about 9.5 days"
        ("How many hours did it take to train MPT-7B?", 0.0),  # no figure in hours anywhere
        ("How many parameters does Falcon-7B have?", 1.0),  # the parameters fact is the count
    ],
)
def test_a_count_is_stated_only_by_a_figure_beside_what_is_counted(atlas: Atlas, question: str, stated: float) -> None:
    from rag.evidence import gather
    from rag.weights import load_weights

    searcher = atlas.searcher
    query = searcher.analyzer.analyse(question)
    evidence = gather(query, searcher.search(query, 5), searcher, atlas.index.facts, load_weights())
    assert evidence.features["count_stated"] == stated


@pytest.mark.parametrize(
    ("question", "supported"),
    [
        # "1T tokens" and "9.5 days" stand in different sentences: each part is given its figure.
        ("How many tokens was MPT-7B trained on, and how many days did its training take?", 1.0),
        ("How many tokens was MPT-7B trained on, and how many TPU pods did its training use?", 0.5),
    ],
)
def test_a_question_of_several_quantities_is_judged_part_by_part(atlas: Atlas, question: str, supported: float) -> None:
    from rag.evidence import gather
    from rag.weights import load_weights

    searcher = atlas.searcher
    query = searcher.analyzer.analyse(question)
    evidence = gather(query, searcher.search(query, 5), searcher, atlas.index.facts, load_weights())
    assert evidence.features["numeric_supported"] == supported


def test_a_table_question_is_answered_by_its_cells(atlas: Atlas) -> None:
    answer = atlas.ask(
        "What PubMedQA scores do InstructGPT 175B and Task-tuned LLaMA 7B (Full) reach in LMFlow's task tuning results?"
    )
    assert answer.answered
    first, second = answer.answer.split("\n")[:2]
    assert first.startswith("InstructGPT 175B: PubMedQA 73.2 [") and second.startswith(
        "Task-tuned LLaMA 7B (Full): PubMedQA 75.1 ["
    )
    cited = {c.n: c.quote for c in answer.citations}
    assert "| InstructGPT 175B | 73.2 |" in cited[int(first.split("[")[1].split("]")[0])]
    assert "Human (expert)" not in answer.answer  # the other rows of the table do not follow


def run_cli(*args: str, index: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLM_ATLAS_INDEX_DIR": str(index)}
    env.pop("LLM_ATLAS_LLM_BASE_URL", None)
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=300)


def test_ask_cli_json(bundled_index: Path) -> None:
    out = run_cli("ask", "How was Vicuna trained?", "--json", index=bundled_index)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["answered"] and data["citations"] and data["contexts"]
    assert {"n", "title", "url", "section", "quote", "doc_id", "start", "end"} == set(data["citations"][0])


def test_ask_cli_pretty_and_errors(bundled_index: Path) -> None:
    out = run_cli("ask", "What is QLoRA?", index=bundled_index)
    assert out.returncode == 0 and "Sources" in out.stdout and "[1]" in out.stdout
    empty = run_cli("ask", "", index=bundled_index)
    assert empty.returncode == 2 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    huge = run_cli("ask", "x" * 5000, index=bundled_index)
    assert huge.returncode == 2 and "limit" in huge.stderr and "Traceback" not in huge.stderr


def test_ask_builds_the_index_when_missing(tmp_path: Path) -> None:
    out = run_cli("ask", "What is llama.cpp?", "--json", index=tmp_path / "fresh")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["answered"]
    assert (tmp_path / "fresh" / "current" / "manifest.json").exists()


def test_ask_reports_a_corrupt_index(tmp_path: Path, bundled_index: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bundled_index, broken, symlinks=True)
    (broken / "current" / "store.sqlite").write_bytes(b"not a database")
    out = run_cli("ask", "How was Vicuna trained?", index=broken)
    assert out.returncode == 2 and "llm-atlas ingest --index" in out.stderr and "Traceback" not in out.stderr


def test_default_ask_never_imports_torch(bundled_index: Path) -> None:
    code = (
        "import sys; sys.argv=['ask','How was Vicuna trained?','--json']\n"
        "from server.cli import ask_main\n"
        "try:\n    ask_main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules or 'sentence_transformers' in sys.modules else 'NO-TORCH')"
    )
    out = run_cli(sys.executable, "-c", code, index=bundled_index)
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout[-300:] + out.stderr[-500:]


def test_eval_command_writes_answers_and_scores(tmp_path: Path, bundled_index: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "\n".join(
            json.dumps(q, ensure_ascii=False)
            for q in [
                {
                    "id": "a",
                    "question": "How was Vicuna trained?",
                    "type": "fact",
                    "facts": [["ShareGPT"]],
                    "evidence": [["ShareGPT"]],
                },
                {
                    "id": "b",
                    "question": "And what did it cost?",
                    "type": "numeric",
                    "facts": [["300"]],
                    "evidence": [],
                    "history": [{"role": "user", "content": "How was Vicuna trained?"}],
                },
                {
                    "id": "c",
                    "question": "What is the parameter count of GPT-5?",
                    "type": "unanswerable",
                    "facts": [],
                    "evidence": [],
                },
            ]
        ),
        encoding="utf-8",
    )
    out = run_cli("llm-atlas", "eval", str(qa), "--out", str(tmp_path / "answers.jsonl"), index=bundled_index)
    assert out.returncode == 0, out.stderr
    assert "evidence_recall@5=1.0" in out.stdout and "refusal_accuracy=1.0" in out.stdout
    lines = [json.loads(x) for x in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c"]
    assert lines[2]["answered"] is False and "300" in lines[1]["answer"]


def test_a_list_question_gets_the_whole_list_one_cited_item_per_line(atlas: Atlas) -> None:
    answer = atlas.ask("Which artifacts has the Koala team released?")
    items = [line for line in answer.answer.splitlines() if line.startswith("- ")]
    assert len(items) >= 4 and all(re.search(r"\[\d+\]$", item) for item in items), answer.answer
    assert any("EasyLM" in item for item in items) and any("demo" in item for item in items)


def test_a_line_under_a_bare_model_name_is_answered_with_that_name(atlas: Atlas) -> None:
    """The survey's model table lost its cells: a name line, then its description line."""
    answer = atlas.ask("How was PandaLLM trained?")
    assert answer.answered and "COIG" in answer.answer
    described = answer.answer[: answer.answer.index("COIG")]
    assert "PandaLLM" in described  # the description is introduced by the name it describes


def test_a_list_the_chunker_cut_is_answered_whole(atlas: Atlas) -> None:
    """OPT's card lists its five datasets across two chunks, one item wrapped over two lines."""
    answer = atlas.ask("List the filtered datasets that make up the OPT pretraining corpus.")
    items = [line for line in answer.answer.splitlines() if line.startswith("- ")]
    for name in ("BookCorpus", "CC-Stories", "The Pile", "Pushshift.io Reddit", "CCNewsV2"):
        assert any(name in item for item in items), name
    # The wrapped item is one item, not an item and a fragment.
    assert any("Baumgartner et al. (2020) and processed in Roller et al. (2021)" in item for item in items)
    for c in answer.citations:
        assert atlas.document(c.doc_id)["text"][c.start : c.end] == c.quote


def test_a_compared_model_without_a_fact_sheet_keeps_its_row(atlas: Atlas) -> None:
    answer = atlas.ask("Compare the training hardware of BLOOM and OPT-175B.")
    rows = [line for line in answer.answer.splitlines() if line.startswith("| ")]
    assert any(row.startswith("| BLOOM |") and "A100" in row for row in rows)
    assert any(row.startswith("| OPT-175B |") for row in rows)  # "not stated" or a cited value, never dropped


def test_compared_models_of_one_family_get_their_own_sentences(atlas: Atlas) -> None:
    answer = atlas.ask("How much training data did Vicuna-13B use, compared with Vicuna v1.5?")
    blocks = [b for b in answer.answer.split("\n\n") if b.startswith("**")]
    assert [b.split("**")[1] for b in blocks] == ["Vicuna-13B", "Vicuna v1.5"]
    general, versioned = (re.sub(r"\s*\[\d+\]", "", b.split("**: ", 1)[1]) for b in blocks)
    assert "v1.5" in versioned and "125K" in versioned
    # A sentence naming Vicuna-13B belongs to its block, not to the family's, and no block repeats another's.
    assert "Vicuna-13B" not in versioned and "v1.5" not in general


def test_a_list_question_names_every_item_of_the_section_that_lists_them(atlas: Atlas) -> None:
    """Koala's blog gives one bold-led paragraph per dataset, spread over several chunks and two
    subsections: the answer lists them all, each cited."""
    answer = atlas.ask("List the datasets Koala was fine-tuned on.", use_llm=False)
    assert answer.answered
    for name in ("ShareGPT", "HC3", "Open Instruction Generalist", "Stanford Alpaca", "Anthropic HH", "WebGPT"):
        assert f"**{name}" in answer.answer or name in answer.answer, name
    items = [line for line in answer.answer.splitlines() if line.startswith("- **")]
    assert len(items) == 7 and all(re.search(r"\[\d+\]$", line) for line in items)  # each once
