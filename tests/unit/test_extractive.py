"""The offline answer composer: which sentences an answer takes, and how lists come whole."""

from __future__ import annotations

from ingest.fact_store import Fact
from rag.evidence import Evidence, Scored
from rag.extractive import Quotes, best_sentences, extractive_answer, fact_span, list_block, pick, render
from rag.query import Query
from rag.schema import Passage
from rag.sentences import Sentence, split_sentences


def passage(text: str, entities: list[str] | None = None) -> Passage:
    return Passage(
        n=1,
        chunk_id="c",
        doc_id="d",
        title="t",
        url="u",
        language="en",
        start=0,
        end=len(text),
        text=text,
        entities=entities or [],
    )


def sentence_of(p: Passage, text: str) -> Sentence:
    return next(s for s in split_sentences(p) if s.text == text)


def scored(sentence: Sentence, score: float, entities: set[str]) -> Scored:
    return Scored(sentence, score, entities, [], 0.0, 0.0, "en", True)


def test_a_sentence_followed_by_an_introducing_line_brings_the_list() -> None:
    text = (
        "Orca-9 is fast. Like other small models, Orca-9 has known weaknesses. Among them:\n\n"
        "- Arithmetic: it adds long numbers badly.\n"
        "- Recall: it forgets rare names.\n\n"
        "Training took two days."
    )
    p = passage(text)
    block = [s.text for s in list_block(sentence_of(p, "Like other small models, Orca-9 has known weaknesses."))]
    assert block == [
        "Like other small models, Orca-9 has known weaknesses.",
        "Among them:",
        "- Arithmetic: it adds long numbers badly.",
        "- Recall: it forgets rare names.",
    ]


def test_a_list_answer_bullets_the_items_not_the_line_introducing_them() -> None:
    text = "Orca-9 has known weaknesses. Among them:\n\n- Arithmetic: it adds badly.\n- Recall: it forgets names."
    p = passage(text)
    chosen = scored(sentence_of(p, "Orca-9 has known weaknesses."), 1.0, {"orca9"})
    assert render([chosen], "en", Quotes(), as_list=True) == (
        "Orca-9 has known weaknesses. [1] Among them: [1]\n"
        "- Arithmetic: it adds badly. [1]\n- Recall: it forgets names. [1]"
    )


def test_a_sentence_not_followed_by_a_list_comes_alone() -> None:
    p = passage("Orca-9 is fast. It was trained in two days. Among its users are banks.")
    assert [s.text for s in list_block(sentence_of(p, "Orca-9 is fast."))] == ["Orca-9 is fast."]


def test_pick_gives_each_asked_model_its_best_sentence() -> None:
    text = "| Orca-9 | 41.2 |\n| Kelp-7 | 38.5 |\n| Reef-3 | 12.0 |\n| Tide-2 | 11.0 |"
    p = passage(text, ["orca9", "kelp7", "reef3", "tide2"])
    rows = [sentence_of(p, line) for line in text.split("\n")]
    items = [
        scored(rows[2], 3.0, {"reef3"}),
        scored(rows[3], 2.9, {"tide2"}),
        scored(rows[0], 2.5, {"orca9"}),
        scored(rows[1], 1.0, {"kelp7"}),
    ]
    # Two sentences allowed: without subjects the two best; with them, one row per asked model.
    assert [s.entities for s in pick(items, 2, 1000, floor=0.5)] == [{"reef3"}, {"tide2"}]
    chosen = pick(items, 2, 1000, floor=0.5, subjects=["orca9", "kelp7"])
    assert [s.entities for s in chosen] == [{"orca9"}, {"kelp7"}]
    # A model named by no sentence good enough gets none rather than noise.
    assert [s.entities for s in pick(items, 2, 1000, floor=2.5, subjects=["orca9", "kelp7"])] == [{"orca9"}, {"reef3"}]


def test_a_row_that_holds_a_chosen_headings_words_still_adds_its_figures() -> None:
    text = "Orca-9-13B\n\n| Orca-9-13B | 40 | 5120 |\n\nOrca-9-13B"
    p = passage(text, ["orca9"])
    heading, row = sentence_of(p, "Orca-9-13B"), sentence_of(p, "| Orca-9-13B | 40 | 5120 |")
    repeat = Sentence(p, text.rindex("Orca-9-13B"), len(text))
    items = [scored(heading, 3.0, {"orca9"}), scored(row, 2.0, {"orca9"}), scored(repeat, 1.0, {"orca9"})]
    chosen = pick(items, 3, 1000, floor=0.0)
    assert [s.sentence.text for s in chosen] == ["Orca-9-13B", "| Orca-9-13B | 40 | 5120 |"]  # no repeat
    # The other way round the heading adds nothing.
    items = [scored(row, 3.0, {"orca9"}), scored(heading, 2.0, {"orca9"}), scored(repeat, 1.0, {"orca9"})]
    assert [s.sentence.text for s in pick(items, 3, 1000, floor=0.0)] == ["| Orca-9-13B | 40 | 5120 |"]


def test_a_fact_whose_quote_the_chunker_cut_is_cited_by_its_value() -> None:
    document = "## Model Date\n\nMay 5, 2023\n\n## Licence\n\nApache-2.0"
    quote_start, value_start = document.index("Model Date"), document.index("May 5, 2023")
    fact = Fact(
        model="Orca-9",
        attribute="release_date",
        value="May 5, 2023",
        normalized="2023-05-05",
        doc_id="d",
        section="Model Date",
        quote=document[quote_start : value_start + 11],
        start=quote_start,
        end=value_start + 11,
        value_start=value_start,
        value_end=value_start + 11,
    )
    # The chunk holding the value begins after the heading the quote starts with.
    chunk_start = document.index("\n\nMay") + 2
    p = passage(document[chunk_start:]).model_copy(update={"start": chunk_start})
    evidence = Evidence(Query("q", "en", "en", "q"), [p], [], fact_passage={("d", fact.start, fact.end): 1})
    span = fact_span(evidence, fact)
    assert span is not None and span.text == "May 5, 2023"
    assert document[span.doc_start : span.doc_end] == "May 5, 2023"
    # A passage holding neither the quote nor the value gives no span.
    other = p.model_copy(update={"text": "Licence: Apache-2.0", "end": chunk_start + 19})
    assert fact_span(Evidence(evidence.query, [other], [], fact_passage=evidence.fact_passage), fact) is None


def test_a_concept_with_no_word_in_the_texts_language_is_not_held_against_it() -> None:
    from ingest.tokenize import TermSet
    from rag.query import concept_share

    # "agent" has no Chinese word in the dictionary; "train" does (训练).
    concepts = [(frozenset({"agent"}), 4.0), (frozenset({"train", "训练"}), 1.0)]
    chinese = TermSet("他们使用强化学习训练模型")
    assert concept_share(chinese, concepts) == 0.2  # judged on every concept: "agent" counts as missing
    assert concept_share(chinese, concepts, {"zh"}, known={"agent", "train"}) == 1.0  # not judged in Chinese
    # A word the corpus never uses counts whatever the language: it says the question is off its topic.
    assert concept_share(chinese, concepts, {"zh"}, known={"train"}) == 0.2
    english = TermSet("the model was trained with reinforcement learning")
    assert concept_share(english, concepts, {"en"}, known={"agent", "train"}) == 0.2  # judged in English
    # The same concept twice (a question repeating a word) still gives a share of at most 1.
    assert concept_share(english, [concepts[1], concepts[1], concepts[0]]) == 2 / 6


def test_a_label_in_the_other_language_is_quoted_after_the_quote_intro() -> None:
    p = passage("Orca-9 模型:\n对于每个块,我们检索两个邻居。")
    p = p.model_copy(update={"language": "zh"})
    line = sentence_of(p, "对于每个块,我们检索两个邻居。")
    item = Scored(line, 1.0, {"orca9"}, [], 0.0, 0.0, "zh", True, subject="Orca-9 模型")
    text = render([item], "en", Quotes())
    assert text == "The Chinese sources say: “Orca-9 模型”: “对于每个块,我们检索两个邻居。” [1]"


def test_a_sentence_in_the_answers_language_comes_before_its_twin_in_the_other() -> None:
    zh = passage("Orca-9 的训练成本仅为300美元。").model_copy(update={"language": "zh"})
    en = passage("Training Orca-9 cost about $300. Orca-9 runs on one GPU.").model_copy(update={"n": 2})
    twin = Scored(sentence_of(zh, "Orca-9 的训练成本仅为300美元。"), 2.0, {"orca9"}, [], 1.0, 0.3, "zh", True)
    cost = Scored(sentence_of(en, "Training Orca-9 cost about $300."), 1.8, {"orca9"}, [], 1.0, 0.3, "en", True)
    gpu = Scored(sentence_of(en, "Orca-9 runs on one GPU."), 1.9, {"orca9"}, [], 1.0, 0.3, "en", True)
    evidence = Evidence(Query("q", "en", "en", "q", models=["orca9"]), [zh, en], [twin, gpu, cost])
    assert best_sentences(evidence, 0.7, 6, 1000) == [cost, gpu]  # the Chinese twin says nothing more
    evidence.query = Query("q", "zh", "zh", "q", models=["orca9"])
    assert twin in best_sentences(evidence, 0.7, 6, 1000)  # a Chinese answer keeps the Chinese sentence


def test_a_passage_cut_inside_a_wrapped_list_item_runs_on_to_the_lists_end() -> None:
    from rag.evidence import continued

    doc = (
        "We use three objectives:\n\n"
        "- **Short spans**: masks a few tokens of the input so\n"
        "the model learns facts. Unlike later objectives, it\n"
        "keeps most of the input visible to the model at each step, which is what\n"
        "makes it cheap.\n\n"
        "- **Long spans**: masks half of the input.\n\n"
        "- **Prefix**: predicts the second half from the first.\n\n"
        "The mixture is sampled per batch.\n"
    )
    cut = doc.index("Unlike later") + len("Unlike later objectives, it")
    head = Passage(n=1, chunk_id="c", doc_id="d", title="t", url="u", language="en", start=0, end=cut, text=doc[:cut])
    whole = continued(head, {"d": doc}, None)  # type: ignore[arg-type]  # the document is at hand
    assert doc[whole.start : whole.end] == whole.text
    assert "**Prefix**: predicts the second half from the first." in whole.text
    assert "The mixture is sampled" not in whole.text


def test_a_figure_counts_the_head_of_a_phrase_beside_it() -> None:
    from rag.evidence import counts_in

    gpus = {"gpu", "gpus"}
    assert counts_in("MPT-7B was trained on 440 A100-40GB GPUs in 9.5 days", gpus)
    assert counts_in("the run used 8 x 80GB A100 GPUs", gpus)
    assert counts_in("| GPUs | 64 |", gpus)
    assert not counts_in("runs in FP16 with a minimum of 3G GPU memory", gpus)  # it counts memory
    assert not counts_in("3G of memory, or no GPU at all", gpus)  # no figure beside GPU
    assert not counts_in("Falcon-7B runs on GPUs", gpus)  # a digit inside a name counts nothing
    assert counts_in("QLoRA needs 48GB of memory", {"memori"})  # matched by stem
    # A piece of a Chinese compound (注意力 of 注意力头) may stand as a modifier in English text.
    assert counts_in("70 layers, 112 attention heads", {"attent", "注意力"}, as_head=False)
    assert not counts_in("70 layers, 112 attention heads", {"attent", "注意力"})


def test_a_list_question_takes_in_a_section_of_bold_led_items() -> None:
    from dataclasses import replace

    from rag.evidence import section_roster

    doc = (
        "# Overview\n\nA chatbot tuned on public data.\n\n"
        "# Datasets\n\nWe gather dialogue data from the web.\n\n## Distilled\n\n"
        "**ShareGPT.** About 30K dialogues shared by users.\n\n"
        "**HC3.** Human and ChatGPT answers to 24K questions.\n\n## Open\n\n"
        "**OIG.** A subset chosen by hand.\n\n"
        "**Anthropic HH.** 160K rated pairs of responses.\n\n"
        "## Evaluation\n\nWe evaluate on two test sets and the models compare well.\n"
    )
    start = doc.index("We evaluate")
    end = len(doc) - 1
    hit = Passage(
        n=1, chunk_id="c", doc_id="d", title="t", url="u", language="en", start=start, end=end, text=doc[start:end]
    )
    query = replace(
        Query(question="Which datasets went into the chatbot?", lang="en", question_lang="en", search_text=""),
        kind="list",
        concepts=[(frozenset({"dataset"}), 2.0)],
    )
    roster = section_roster(hit, doc, query)
    assert roster is not None and doc[roster.start : roster.end] == roster.text
    assert all(name in roster.text for name in ("ShareGPT", "HC3", "OIG", "Anthropic HH"))
    assert roster.start == doc.index("# Datasets") and roster.end == len(doc) - 1
    # A heading that holds none of the question's words lists nothing asked.
    other = replace(query, concepts=[(frozenset({"licens"}), 2.0)])
    assert section_roster(hit, doc, other) is None


def test_an_answer_never_quotes_a_cards_yaml_header() -> None:
    """The header scores best here (it names the licence), yet the answer quotes the prose after it,
    in sentence answers as in comparison blocks."""
    card = passage("---\nlicense: apache-2.0\ntags:\n- chat\n---\n\nOrca-9 is released under the Apache 2.0 licence.\n")
    header = [s for s in split_sentences(card) if s.in_front_matter]
    prose = sentence_of(card, "Orca-9 is released under the Apache 2.0 licence.")
    assert header
    for kind in ("fact", "compare"):
        query = Query("What licence does Orca-9 have?", "en", "en", "licence", models=["orca9"], kind=kind)
        sentences = [scored(s, 5.0, {"orca9"}) for s in header] + [scored(prose, 2.0, {"orca9"})]
        text, spans = extractive_answer(Evidence(query, [card], sentences))
        quoted = [s.text for quotes in spans.values() for s in quotes]
        assert quoted == [prose.text], (kind, text)


def test_a_section_runs_to_the_next_heading_of_its_level_or_above() -> None:
    from rag.evidence import listed_sections

    doc = (
        "# Orca-9\n\nIntro.\n\n## Datasets\n\n**Alpha** is one.\n\n**Beta** is two.\n\n### Also\n\n"
        "**Gamma** is three.\n\n## Results\n\n**Delta** is no dataset.\n"
    )
    found = {(s.heading, s.items, doc[s.start : s.stop].rstrip().rsplit("\n", 1)[-1]) for s in listed_sections(doc)}
    # "## Datasets" takes in its subsection, not "## Results"; the document's title section takes in all.
    assert found == {
        ("## Datasets", 3, "**Gamma** is three."),
        ("# Orca-9", 4, "**Delta** is no dataset."),
    }


def test_a_table_a_sentence_introduces_is_its_list() -> None:
    """'... the following token counts:', a blank line and a table: the passage runs on through the table,
    and the sentence brings the table's rows (not its header) as the items it introduces."""
    from rag.evidence import continued

    doc = (
        "Zebra-Data holds three sources, with the following token counts:\n\n"
        "| Source | Tokens |\n|---|---|\n| Web | 800 Billion |\n| Code | 60 Billion |\n| Total | 1 Trillion |\n\n"
        "## Setup\n\nInstall it."
    )
    head = passage(doc[: doc.index("\n")])
    whole = continued(head, {"d": doc}, None)  # type: ignore[arg-type]  # the document is at hand
    assert whole.text.endswith("| Total | 1 Trillion |") and doc[whole.start : whole.end] == whole.text
    intro = split_sentences(whole)[0]
    assert intro.text.endswith("token counts:")
    assert [s.text for s in list_block(intro)[1:]] == [
        "| Web | 800 Billion |",
        "| Code | 60 Billion |",
        "| Total | 1 Trillion |",
    ]


def test_a_list_does_not_run_on_into_a_table_or_past_one() -> None:
    """A passage cut inside a bullet list stops at the list's end, not at a table further down; a table
    that is the list ends it, and the paragraph after the table stays out."""
    from rag.evidence import list_tail

    assert list_tail("\n- item c\n\n| Model | MMLU |\n|---|---|\n| X | 1 |\n") == "\n- item c"
    table = list_tail("\n\n| Source | Tokens |\n|---|---|\n| Web | 800B |\nThe model was then evaluated on MMLU.\n")
    assert table.endswith("| Web | 800B |") and "evaluated" not in table
