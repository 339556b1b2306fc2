"""Question analysis on the real index: names across scripts, acronyms, attributes, kinds, parts,
follow-ups, and concept weights that a rare mistranslation cannot inflate."""

from __future__ import annotations

import pytest

from rag.query import QueryAnalyzer
from rag.schema import Turn
from rag.service import Atlas


@pytest.fixture(scope="module")
def analyzer(atlas: Atlas) -> QueryAnalyzer:
    return atlas.searcher.analyzer


def test_acronyms_are_not_unknown_models_but_new_names_are(analyzer: QueryAnalyzer) -> None:
    ceo = analyzer.analyse("Who is the CEO of the company that released Vicuna?")
    assert ceo.unknown == [] and ceo.models == ["vicuna"]
    assert analyzer.analyse("Can MPT-7B run on CPUs or only on TPUs?").unknown == []  # plural acronyms
    assert analyzer.analyse("How many parameters does Zorblax-9 have?").unknown == ["Zorblax-9"]
    # Words the corpus has, written otherwise, and known names with an English word after them.
    assert analyzer.analyse("Is the BELLE code on GitHub, and is it LLaMA-based?").unknown == []


def test_chinese_aliases_name_their_model_and_the_longest_alias_wins(analyzer: QueryAnalyzer) -> None:
    query = analyzer.analyse("小羊驼是基于什么模型训练的？")
    assert query.models == ["vicuna"] and query.lang == "zh"
    assert query.attributes == ["base_model"]


@pytest.mark.parametrize(
    ("question", "kind", "attributes"),
    [
        ("Koala 和 Alpaca 的基座模型有什么区别？", "compare", ["base_model"]),
        ("哪些模型使用了 LoRA 微调？", "list", []),
        ("Why does Mistral use a sliding window?", "how", []),
        ("How much GPU memory does ChatGLM-6B need under INT4 quantization?", "fact", ["memory_requirement"]),
        ("Under which licence was BLOOM released?", "fact", ["licence"]),
        ("Alpaca 在什么数据上训练？", "fact", ["training_data"]),  # "data ... trained", not "训练数据"
    ],
)
def test_kind_and_attributes(analyzer: QueryAnalyzer, question: str, kind: str, attributes: list[str]) -> None:
    query = analyzer.analyse(question)
    assert (query.kind, query.attributes) == (kind, attributes)


def test_each_sub_question_is_a_part(analyzer: QueryAnalyzer) -> None:
    query = analyzer.analyse("How many parameters does BLOOM have, and which licence is it released under?")
    assert len(query.parts) == 2 and query.attributes == ["parameters", "licence"]
    assert len(query.part_concepts) == 2


def test_a_follow_up_takes_its_subject_from_the_conversation(analyzer: QueryAnalyzer) -> None:
    history = [Turn(role="user", content="Tell me about Koala."), Turn(role="assistant", content="A chatbot.")]
    query = analyzer.analyse("What base model does it use?", history)
    assert query.kind == "followup" and query.models == ["koala"] and "Koala" in query.search_text


def test_the_answer_language_follows_the_request(analyzer: QueryAnalyzer) -> None:
    query = analyzer.analyse("What base model does Koala use?", language="zh")
    assert (query.lang, query.question_lang) == ("zh", "en")


def test_a_concept_weighs_by_the_union_of_its_translations(analyzer: QueryAnalyzer) -> None:
    """ "model" is common; a rare dictionary sense of it must not make it weigh like a rare word."""
    concepts = dict(analyzer.analyse("Which model is good for chat?").concepts)
    model = next(weight for options, weight in concepts.items() if "model" in options)
    assert model == min(concepts.values())
    assert model <= analyzer.idf(frozenset({"model"})) + 1e-9


def test_a_pronoun_keeps_the_earlier_subject_beside_a_new_name(analyzer: QueryAnalyzer) -> None:
    history = [Turn(role="user", content="What is Med-PaLM?"), Turn(role="assistant", content="A medical model.")]
    query = analyzer.analyse("How was it adapted from PaLM?", history)
    assert query.models == ["medpalm", "palm"] and query.subject_from_history
    koala = [Turn(role="user", content="Tell me about Koala."), Turn(role="assistant", content="A chatbot.")]
    assert analyzer.analyse("Compare it with Alpaca.", koala).kind == "compare"


def test_a_capitalised_name_in_lower_case_is_the_plain_word(analyzer: QueryAnalyzer) -> None:
    # The corpus names a model PLUG; "plug" in a question that uses capitals elsewhere is the verb.
    assert "plug" not in analyzer.analyse("Can I plug Dolly into LangChain?").models
    assert "bloom" in analyzer.analyse("What is BLOOM?").models


def test_the_pieces_of_a_chinese_compound_are_one_concept(analyzer: QueryAnalyzer) -> None:
    concepts = [options for options, _ in analyzer.analyse("Cerebras-GPT 是在哪台超级计算机上训练的？").concepts]
    compound = next(options for options in concepts if "超级计算机" in options)
    assert {"超级", "计算机"} <= compound
    assert not any(options & {"超级", "计算机"} for options in concepts if options is not compound)
    assert not any(any(t.startswith("哪") for t in options) for options in concepts)  # "which" asks nothing


def test_sizes_of_one_model_are_two_subjects_of_a_comparison(analyzer: QueryAnalyzer) -> None:
    query = analyzer.analyse("Compare Pythia 1B and Pythia 12B on the Pile.")
    assert query.kind == "compare" and query.subjects == [("pythia", "1B"), ("pythia", "12B")]
    # A name that holds its size needs none, and a name without one has "".
    assert analyzer.analyse("Compare Vicuna-13B and Alpaca 7B.").subjects == [("vicuna13b", ""), ("alpaca", "7B")]


def test_versions_of_one_model_are_two_subjects_and_compared_with_is_a_comparison(analyzer: QueryAnalyzer) -> None:
    query = analyzer.analyse("What licence did Vicuna v1.3 have, compared with Vicuna v1.5?")
    assert query.kind == "compare" and query.subjects == [("vicuna", "v1.3"), ("vicuna", "v1.5")]
    assert analyzer.analyse("How was Koala trained, comparing it to Alpaca?").kind == "compare"
    # Models side by side are asked the same thing; a model only mentioned is not compared.
    assert analyzer.analyse("Which optimizers were used to train MPT-7B and Cerebras-GPT?").kind == "compare"
    assert analyzer.analyse("Falcon-7B、MPT-7B 的许可证是什么？").kind == "compare"
    assert analyzer.analyse("How was Vicuna fine-tuned from LLaMA?").kind != "compare"


def test_segmentation_pieces_and_question_words_are_no_concepts(analyzer: QueryAnalyzer) -> None:
    for question in ("Vicuna 训练时用了几张显卡？", "ChatGLM-6B 的上下文有多长？"):
        words = {w for options, _ in analyzer.analyse(question).concepts for w in options}
        assert not any(len(w) == 1 and "\u4e00" <= w <= "\u9fff" for w in words), words
        assert not words & {"时用", "几张", "多长"}, words


def test_a_model_the_corpus_writes_in_lower_case_is_named_so(analyzer: QueryAnalyzer) -> None:
    assert analyzer.analyse("ziya 是基于什么模型训练的？").models == ["ziya"]
    assert analyzer.analyse("Which recipe did they plug in?").models == []


def test_a_word_finds_the_translations_of_its_other_forms(analyzer: QueryAnalyzer) -> None:
    # The stemmer makes "modifications" "modif" and "modify" "modifi"; the dictionary has the verb.
    assert not analyzer.lexicon.to_chinese("modif") and "修改" in analyzer.lexicon.to_chinese("modifi")
    concepts = analyzer.analyse("Which modifications did the team apply to Orca-9?").concepts
    assert any("modif" in options and "修改" in options for options, _ in concepts)
    assert analyzer.stem_variants("modif") == ["modifi"]
    # Only forms of one word: neither a short stem nor a longer word sharing five letters ("modifier").
    assert analyzer.stem_variants("train") == [] and "modifiable" not in analyzer.stem_variants("modifi")
    # A word and its own translation are one concept, not two.
    concepts = [options for options, _ in analyzer.analyse("Which model 模型 does Orca-9 use?").concepts]
    assert len(concepts) == len(set(concepts))


def test_lone_characters_are_classifiers_or_the_end_of_a_compound(analyzer: QueryAnalyzer) -> None:
    concepts = [set(options) for options, _ in analyzer.analyse("Orca-9 用了多少台服务器？它的模型卡在哪里？").concepts]
    assert not any("台" in options for options in concepts)  # "how many (machines)": a classifier
    assert any({"卡", "模型"} <= options for options in concepts)  # 模型卡 is one concept with 模型
    # A verb's character after a verb stays its own concept: it may say the question is off the topic.
    food = [set(options) for options, _ in analyzer.analyse("Orca-9 的作者喜欢吃什么菜？").concepts]
    assert any(options == {"菜"} for options in food)
    assert not any({"喜欢", "吃"} <= options for options in food)


def test_who_and_glued_locatives_are_no_concepts(analyzer: QueryAnalyzer) -> None:
    words = {w for options, _ in analyzer.analyse("在 Falcon-7B 的评测表里，谁的得分最高？").concepts for w in options}
    assert not words & {"谁", "表里"}, words
    assert "表" in words or "评测表" in words  # the noun stays, without "in"


def test_a_count_question_knows_what_it_counts(analyzer: QueryAnalyzer) -> None:
    gpus = analyzer.analyse("How many GPUs did MPT-7B train on?").counted
    assert len(gpus) == 1 and "gpus" in gpus[0].options and gpus[0].attributes == ("training_hardware",)
    params = analyzer.analyse("Falcon-7B 有多少参数？").counted
    assert len(params) == 1 and "参数" in params[0].options and params[0].attributes == ("parameters",)
    hours = analyzer.analyse("How many hours did it take to train MPT-7B?").counted
    assert len(hours) == 1 and "hour" in hours[0].options and hours[0].attributes == ()
    # 哪几 asks which ones, not how many; a classifier (块) before a comma counts nothing.
    assert analyzer.analyse("OpenChatKit 包含哪几个组成部分？").counted == []
    assert analyzer.analyse("Falcon-7B 在多少块、什么型号的 GPU 上训练？").counted == []


def test_which_ones_and_how_long_are_question_words(analyzer: QueryAnalyzer) -> None:
    # 哪几 asks which ones: no quantity is asked, so no figure need stand beside the words.
    assert not analyzer.analyse("OpenChatKit 包含哪几个组成部分？").numeric
    assert analyzer.analyse("OpenChatKit 有几个组成部分？").numeric
    # The degree word of "how long" is part of the question word, not something to find in a passage.
    query = analyzer.analyse("How long did the Guanaco finetuning take?")
    assert query.numeric and not any("long" in options for options, _ in query.concepts)
    assert any("long" in options for options, _ in analyzer.analyse("Does Guanaco support long inputs?").concepts)


def test_each_sub_question_says_whether_it_asks_a_quantity(analyzer: QueryAnalyzer) -> None:
    query = analyzer.analyse("Which company made Guanaco, and how many GPUs did its finetuning use?")
    assert len(query.parts) == 2 and query.numeric_parts == [False, True]
    assert analyzer.analyse("How many GPUs did MPT-7B train on?").numeric_parts == []  # one part: the question


def test_an_english_count_counts_the_head_of_its_phrase(analyzer: QueryAnalyzer) -> None:
    def counted(question: str) -> list[set[str]]:
        return [set(c.options) for c in analyzer.analyse(question).counted]

    assert any("memori" in c for c in counted("How much GPU memory does QLoRA need?"))
    assert any("hour" in c for c in counted("How many TPU hours did FLAN-T5 take?"))
    assert any("gpus" in c for c in counted("How many A100 GPUs trained Falcon-7B?"))  # a verb ends the phrase
    gpus = analyzer.analyse("How many GPUs did MPT-7B train on?").counted
    assert gpus and all(c.head for c in gpus)
    # Only the word after a 的 that follows the counted word says of what; the licence is asked too.
    both = analyzer.analyse("BLOOM 有多少个参数和它的许可证？")
    assert "parameters" in both.attributes and "licence" in both.attributes


def test_a_measure_word_that_ends_a_count_is_what_is_counted(analyzer: QueryAnalyzer) -> None:
    """'有多少层？': 层 is the unit asked for, put into English by its first dictionary sense; '多少块 GPU': 块
    only measures GPU."""
    layers = analyzer.analyse("Grok-1 有多少层？").counted
    assert len(layers) == 1 and {"层", "layer"} <= layers[0].options
    both = analyzer.analyse("BLOOM 有多少层、多少个注意力头？").counted
    assert len(both) == 2 and "层" in both[0].options and "注意力" in both[1].options
    assert [c.options for c in analyzer.analyse("Falcon-7B 在多少块 A100 GPU 上训练？").counted] == [
        frozenset({"a100"})
    ]


def test_what_a_count_phrase_modifies_asks_for_no_attribute(analyzer: QueryAnalyzer) -> None:
    """'TPU hours' counts hours: the TPU only says of what, so the hardware fact does not answer it."""
    assert "training_hardware" not in analyzer.analyse("How many TPU hours did Gopher's training take?").attributes
    assert "training_hardware" not in analyzer.analyse("训练 Gopher 用了多少小时的 TPU？").attributes
    assert "training_hardware" in analyzer.analyse("How many TPUs was Gopher trained on?").attributes
    assert "training_hardware" in analyzer.analyse("Gopher 在多少块 TPU 上训练？").attributes
    # The modifiers are spans of the question as written; the hardware named outside the count is asked.
    for question, modifiers in [
        ("How many TPU v3 hours did Gopher take?", ["TPU ", "v3 "]),
        ("训练 Gopher 用了多少小时的 TPU？", ["的 TPU"]),
    ]:
        query = analyzer.analyse(question)
        assert [question[lo:hi] for c in query.counted for lo, hi in c.modifiers] == modifiers
    # A word that runs past the 40 characters after the cue is read whole.
    long = "How many tokens Falcon-180B-Instruct-Chat-Extended-Edition saw in pretraining?"
    assert any("edit" in c.options for c in analyzer.analyse(long).counted)  # not cut at "...-Extende"
    both = analyzer.analyse("Which TPUs trained Gopher, and how many TPU hours did that take?")
    assert "training_hardware" in both.attributes and [c.modifiers for c in both.counted] != [()]


def test_a_launch_asks_its_date_only_with_a_time_question(analyzer: QueryAnalyzer) -> None:
    assert "release_date" in analyzer.analyse("When did Falcon 180B launch?").attributes
    assert "release_date" in analyzer.analyse("In which month was Falcon 180B announced?").attributes
    assert "release_date" in analyzer.analyse("What is the release date of Falcon 180B?").attributes
    assert "release_date" not in analyzer.analyse("Which band played at the Falcon 180B launch?").attributes
    assert "release_date" not in analyzer.analyse("What did TII announce alongside Falcon 180B?").attributes
    assert "release_date" in analyzer.analyse("When did TII release Falcon 180B?").attributes
    assert "release_date" in analyzer.analyse("When does TII announce its models?").attributes
    assert "release_date" not in analyzer.analyse("When was the launch party for Falcon 180B?").attributes
