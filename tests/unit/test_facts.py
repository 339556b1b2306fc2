"""Model fact extraction on small documents: every source shape, exact spans, despinning, the store."""

from __future__ import annotations

import json

import pytest

from ingest.despin import despin
from ingest.fact_store import ATTRIBUTES, Fact, FactStore
from ingest.facts import (
    build_fact_store,
    extract,
    extract_aliases,
    extract_facts,
    normalize_context,
    normalize_count,
    normalize_date,
    normalize_licence,
    normalize_money,
)
from ingest.names import model_key
from ingest.schema import Document


def doc(text: str, title: str = "Notes", doc_id: str = "d1", language: str = "en") -> Document:
    return Document(
        doc_id=doc_id,
        title=title,
        url=f"https://example.org/{doc_id}",
        source=f"{doc_id}.md",
        language=language,
        sha256="x",
        text=text,
    )


def facts_of(document: Document) -> list[Fact]:
    facts = extract_facts(document)
    for f in facts:  # every fact cites an exact span, and its value lies inside the quote
        assert document.text[f.start : f.end] == f.quote
        assert document.text[f.value_start : f.value_end] == f.value
        assert f.start <= f.value_start < f.value_end <= f.end
        assert f.attribute in ATTRIBUTES
    return facts


def find(facts: list[Fact], model: str, attribute: str) -> list[Fact]:
    return [f for f in facts if model_key(f.model) == model_key(model) and f.attribute == attribute]


def one(facts: list[Fact], model: str, attribute: str) -> Fact:
    found = find(facts, model, attribute)
    assert len(found) == 1, (model, attribute, found)
    return found[0]


# --- source shapes -------------------------------------------------------------------------------


def test_markdown_table_with_model_rows() -> None:
    text = (
        "# Models\n\n| Model | Size | Context Length | License | Release Date |\n|---|---|---|---|---|\n"
        "| Foo-7B | 7B | 4k | Apache 2.0 | May 5, 2023 |\n| Bar | 13B | 2,048 | MIT | 2022 |\n"
    )
    facts = facts_of(doc(text))
    assert one(facts, "Foo-7B", "parameters").normalized == (7e9,)
    assert one(facts, "Foo-7B", "context_length").normalized == 4096
    assert one(facts, "Foo-7B", "licence").normalized == "apache-2.0"
    assert one(facts, "Foo-7B", "release_date").normalized == "2023-05-05"
    # a row that names no size gets the size column's: "Bar" becomes "Bar 13B"
    assert one(facts, "Bar 13B", "context_length").normalized == 2048
    assert one(facts, "Bar 13B", "licence").quote == "| Bar | 13B | 2,048 | MIT | 2022 |"


def test_transposed_table_qualifies_the_model() -> None:
    text = (
        "| Model Name | Foo | Barlm |\n| Dataset | ShareGPT chats (70K) | Web text |\n"
        "| Training cost (7B) | $140 (training) | N/A |\n"
    )
    facts = facts_of(doc(text))
    assert one(facts, "Foo", "training_data").value == "ShareGPT chats (70K)"
    cost = one(facts, "Foo-7B", "training_cost")
    assert cost.normalized == 140 and cost.qualifier == "7B"
    assert not find(facts, "Barlm-7B", "training_cost")  # N/A says nothing


def test_benchmark_tables_give_no_facts() -> None:
    text = "| Model | MMLU | GSM8K |\n|---|---|---|\n| Foo-7B | 45.3 | 14.6 |\n| Bar-13B | 54.8 | 28.7 |\n"
    assert facts_of(doc(text)) == []


def test_flattened_table_is_split_by_its_header() -> None:
    text = (
        "模型列表\n\nTypeModel Name#ParametersReleaseBase ModelsOpen Source#Tokens\n"
        "Encoder-OnlyBERT110M, 340M2018-137B\n"
        "GPT FamilyGPT-3125M, 350M, 760M, 1.3B, 2.7B, 6.7B, 13B, 175B2020-300B\n"
        "GPT FamilyWebGPT760M, 13B, 175B2021GPT-3-\n"
        "LLaMA FamilyLLaMA27B, 13B, 34B, 70B2023-2T\n"
        "LLaMA FamilyVicuna-13B13B2023LLaMA1-\n"
        "LLaMA FamilyCode Llama342023LLaMA2500B\n"
        "Other Popular LLMsERNIE 4.010B2023-4TB\n"
        "Other Popular LLMsMixtral-8x7B46.7B2023--\n\n前期研究\n"
    )
    facts = facts_of(doc(text, title="大语言模型综述", language="zh"))
    assert one(facts, "WebGPT", "parameters").normalized == (760e6, 13e9, 175e9)
    assert one(facts, "WebGPT", "release_date").normalized == "2021"
    assert one(facts, "WebGPT", "base_model").value == "GPT-3"
    assert one(facts, "BERT", "architecture").normalized == "encoder-only"
    assert one(facts, "BERT", "training_tokens").normalized == 137e9
    # the size list is ascending, so "LLaMA27B, 13B" is LLaMA2 with 7B, not LLaMA with 27B
    assert one(facts, "LLaMA2", "parameters").normalized == (7e9, 13e9, 34e9, 70e9)
    assert one(facts, "Vicuna-13B", "parameters").normalized == (13e9,)
    assert one(facts, "Mixtral-8x7B", "parameters").normalized == (46.7e9,)
    # a base model the table itself names wins over a longer token count: LLaMA2 + 500B
    assert one(facts, "Code Llama", "base_model").value == "LLaMA2"
    assert one(facts, "Code Llama", "training_tokens").normalized == 500e9
    assert not find(facts, "Code Llama", "parameters")  # "34" has no unit
    assert not find(facts, "ERNIE 4.0", "parameters")  # a row that does not fit is skipped
    assert one(facts, "WebGPT", "parameters").quote == "GPT FamilyWebGPT760M, 13B, 175B2021GPT-3-"


def test_front_matter_belongs_to_the_cards_model() -> None:
    text = (
        "---\nlicense: mit\nlanguage: en\ndatasets:\n- databricks/dolly-15k\ncommercial: false\n---\n\n"
        "# Foo-7B\n\nHello.\n"
    )
    facts = facts_of(doc(text, title="Foo-7B"))
    licences = {f.normalized for f in find(facts, "Foo-7B", "licence")}
    assert licences == {"mit", "non-commercial"}
    assert one(facts, "Foo-7B", "languages").normalized == ("en",)
    assert one(facts, "Foo-7B", "training_data").value == "databricks/dolly-15k"
    assert one(facts, "Foo-7B", "languages").quote == "language: en"


def test_front_matter_without_a_model_gives_nothing() -> None:
    assert facts_of(doc("---\nlicense: mit\n---\n\nSome notes about nothing.\n", title="Notes on things")) == []


def test_name_and_description_list() -> None:
    text = (
        "开源模型\n\nColossalChat\n\nHPC-AI Tech谢源的Llama+RLHF微调\n\n"
        "StackLLama\n\nLLama应用Stackexchange数据+SFT+RL\n\n"
        "Dolly-v两\n\n否商用7b指令微调谢源模子正在GPT-J-6B上微调\n\nBloom\n\nBigScience没品,规模最年夜176B\n"
    )
    facts = facts_of(doc(text, title="开源大模型汇总", language="zh"))
    assert one(facts, "ColossalChat", "developer").value == "HPC-AI Tech"
    assert one(facts, "ColossalChat", "base_model").value == "Llama"
    assert one(facts, "StackLLama", "base_model").value == "LLama"
    assert one(facts, "StackLLama", "training_data").value == "Stackexchange"
    # the spun name line is despun for the model, the quote stays the text as written
    dolly = one(facts, "Dolly-v2", "base_model")
    assert dolly.model == "Dolly-v2" and dolly.value == "GPT-J-6B"
    assert one(facts, "Bloom", "parameters").normalized == (176e9,)
    assert one(facts, "Bloom", "developer").value == "BigScience"
    assert all(f.shape == "list" for f in facts)


def test_key_value_lines() -> None:
    text = (
        "# Foo-7B\n\n## Model Details\n\n- **Developed by:** Example Labs\n- **License:** Apache 2.0\n"
        "- **Finetuned from model:** Llama 2\nContext Length: 2048\n\n**Model date**\nFoo was trained in March 2023\n\n"
        "## Model Date\n\nMay 5, 2023\n"
    )
    facts = facts_of(doc(text, title="Foo-7B"))
    assert one(facts, "Foo-7B", "developer").value == "Example Labs"
    assert one(facts, "Foo-7B", "licence").normalized == "apache-2.0"
    assert one(facts, "Foo-7B", "base_model").value == "Llama 2"
    assert one(facts, "Foo-7B", "context_length").normalized == 2048
    # "Model date: ... was trained in March 2023" is a training date; the heading's bare date is the release
    assert one(facts, "Foo-7B", "release_date").normalized == "2023-05-05"


def test_key_value_in_chinese() -> None:
    facts = facts_of(doc("# Bar-6B\n\n参数量：62亿\n", title="Bar-6B", language="zh"))
    assert one(facts, "Bar-6B", "parameters").normalized == (6.2e9,)


def test_nested_key_value_belongs_to_its_list_item() -> None:
    text = (
        "# Foo-7B\n\n* Foo-7B-Chat: a chatbot.\nBuilt by finetuning Foo-7B on the ShareGPT-Vicuna and HC3 datasets.\n"
        "  * License: _CC-By-NC-SA-4.0_\n\n* Foo-7B-Instruct: short instructions.\n  * License: Apache 2.0\n"
    )
    facts = facts_of(doc(text, title="Foo-7B"))
    assert one(facts, "Foo-7B-Chat", "licence").normalized == "cc-by-nc-sa-4.0"
    assert one(facts, "Foo-7B-Instruct", "licence").normalized == "apache-2.0"
    assert one(facts, "Foo-7B-Chat", "base_model").value == "Foo-7B"
    assert not find(facts, "Foo-7B", "licence")


def test_prose_in_chinese() -> None:
    text = (
        "ChatGLM-6B 是一个开源的、支持中英双语的对话语言模型,具有 62 亿参数。结合模型量化技术,用户可以在消费级的显卡上"
        "进行本地部署(INT4 量化级别下最低只需 6GB 显存)。\n\nVicuna-13B的训练成本仅为300美元。\n\n"
        "LLaMA 是 Meta AI 发布的包含 7B、13B、33B 和 65B 四种参数规模的基础语言模型集合。\n\n"
        "Alpaca是从LLaMA-7B模型微调而来。它于2023年3月发布。\n"
    )
    facts = facts_of(doc(text, language="zh"))
    assert one(facts, "ChatGLM-6B", "parameters").normalized == (6.2e9,)
    memory = one(facts, "ChatGLM-6B", "memory_requirement")
    assert memory.normalized == 6.0 and memory.qualifier == "INT4"
    assert one(facts, "ChatGLM-6B", "languages").normalized == ("zh", "en")
    assert one(facts, "Vicuna-13B", "training_cost").normalized == 300
    assert one(facts, "LLaMA", "developer").value == "Meta AI"
    assert one(facts, "LLaMA", "parameters").normalized == (7e9, 13e9, 33e9, 65e9)
    assert one(facts, "Alpaca", "base_model").value == "LLaMA-7B"
    assert one(facts, "Alpaca", "release_date").normalized == "2023-03"  # "它" continues the paragraph's model


def test_prose_in_english() -> None:
    text = (
        "# Foo-7B\n\nFoo-7B is a 7B parameters causal decoder-only model built by Example Institute and trained on "
        "1,500B tokens of RefinedWeb. It is made available under the Apache 2.0 license.\n\n"
        "Foo-7B was trained on 384 A100 40GB GPUs. Foo-7B is fine-tuned from LLaMA with a context length of 4096.\n\n"
        "The code is released under the MIT license.\n"
    )
    facts = facts_of(doc(text, title="Foo-7B"))
    assert one(facts, "Foo-7B", "parameters").normalized == (7e9,)
    assert one(facts, "Foo-7B", "architecture").normalized == "decoder-only"
    assert one(facts, "Foo-7B", "developer").value == "Example Institute"
    assert one(facts, "Foo-7B", "training_tokens").normalized == 1.5e12
    assert one(facts, "Foo-7B", "training_data").value == "RefinedWeb"
    assert one(facts, "Foo-7B", "training_hardware").normalized == "384xA100"
    assert one(facts, "Foo-7B", "base_model").value == "LLaMA"
    assert one(facts, "Foo-7B", "context_length").normalized == 4096
    # the model's licence, not the code's
    assert [f.normalized for f in find(facts, "Foo-7B", "licence")] == ["apache-2.0"]


def test_subject_is_not_the_object_of_the_sentence() -> None:
    text = (
        "# Bar-7B\n\nBuilt by finetuning Foo-7B with a context length of 65k tokens on fiction.\n\n"
        "It outperforms comparable models (e.g., Baz-7B), thanks to being trained on 1,000B tokens.\n"
    )
    facts = facts_of(doc(text, title="Bar-7B"))
    assert one(facts, "Bar-7B", "context_length").normalized == 65 * 1024
    assert one(facts, "Bar-7B", "training_tokens").normalized == 1e12
    assert not find(facts, "Foo-7B", "context_length") and not find(facts, "Baz-7B", "training_tokens")


def test_recommendations_and_examples_are_not_facts() -> None:
    text = "Chinchilla 论文中推荐在 200B 的 tokens 上训练 10B 规模的模型,而 LLaMA 使用了 1.4T tokens 训练 7B的模型。"
    facts = facts_of(doc(text, language="zh"))
    assert not find(facts, "Chinchilla", "training_tokens")
    assert one(facts, "LLaMA", "training_tokens").normalized == 1.4e12


def test_a_fact_without_a_subject_is_dropped() -> None:
    assert facts_of(doc("The training cost is around $300 and it has 7 billion parameters.", title="Some notes")) == []


# --- despinning ----------------------------------------------------------------------------------


def test_despin_keeps_every_offset() -> None:
    for spun, plain in [
        ("LLama两", "LLama2"),
        ("InternLM二 7B+两0B", "InternLM2 7B+20B"),
        ("Dolly-v两", "Dolly-v2"),
        ("GPT-四、PaLM", "GPT-4、PaLM"),
        ("支持3两K上下文", "支持32K上下文"),
        ("谢源的模子", "开源的模型"),
        ("外科院谢源,机能媲美GPT-3.5", "中科院开源,性能媲美GPT-3.5"),
        ("撑持多言语的年夜措辞模子,否商用", "支持多言语的年夜语言模型,可商用"),
    ]:
        assert despin(spun) == plain and len(despin(spun)) == len(spun)
    # Real words stay, and so does a look-alike that only straddles two real words (语言|语言).
    for word in ("第两代", "两个版本", "SFT三阶段训练", "Alpaca一样", "不同措辞的提示", "跨语言语言模型"):
        assert despin(word) == word


def test_spun_sizes_keep_exact_spans() -> None:
    text = (
        "InternLM二\n\n在一个包罗两.5万亿token的数据上进行了训练,存在140亿参数\n\n"
        "Baichuan两\n\n领有最年夜3两K上高文\n\nYuan\n\n海潮领布\n"
    )
    d = doc(text, title="国产模型汇总", language="zh")
    facts = facts_of(d)
    tokens = one(facts, "InternLM2", "training_tokens")
    assert tokens.value == "两.5万亿" and tokens.normalized == 2.5e12  # the value as written, normalised despun
    assert d.text[tokens.value_start : tokens.value_end] == "两.5万亿"
    assert one(facts, "Baichuan2", "context_length").normalized == 32768


# --- normalisers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7B, 13B, 33B and 65B", (7e9, 13e9, 33e9, 65e9)),
        ("62亿", 6.2e9),
        ("3.5 trillion", 3.5e12),
        ("一万亿", 1e12),
        ("2-3 trillion", (2e12, 3e12)),
        ("176,247,271,424", 176247271424.0),
        ("1,500B", 1.5e12),
    ],
)
def test_counts(text: str, expected: object) -> None:
    assert normalize_count(text) == expected


def test_dates_money_context_licences() -> None:
    assert normalize_date("May 3rd 2022") == "2022-05-03"
    assert normalize_date("2023年7月") == "2023-07"
    assert normalize_date("Monday, 11.July.2022") == "2022-07-11"
    assert normalize_date("[2023/06/25]") == "2023-06-25"
    assert normalize_money("$500 (data) + $100 (training)") == 600
    assert normalize_money("Equivalent of $2-5M") == (2e6, 5e6)
    assert normalize_money("300美元") == 300
    assert normalize_context("4k") == 4096 and normalize_context("8,192 tokens") == 8192
    assert normalize_licence("bigscience-bloom-rail-1.0") == "bigscience-rail"
    assert normalize_licence("Llama 2 Community License Agreement") == "llama2-community"
    assert normalize_licence("CC BY NC 4.0") == "cc-by-nc-4.0"
    assert normalize_licence("_CC-By-NC-SA-4.0_") == "cc-by-nc-sa-4.0"
    assert normalize_licence("Non-commercial bespoke license") == "non-commercial"
    assert normalize_licence("other") is None


# --- aliases and the store -----------------------------------------------------------------------


def test_aliases_stated_in_a_document() -> None:
    d = doc(
        "We release Qwen (abbr. Tongyi Qianwen), Qwen-7B.\n\n百川 (Baichuan) 与 大型语言模型(LLM)。\n", title="Qwen"
    )
    pairs = extract_aliases(d)
    assert ("Tongyi Qianwen", "Qwen") in pairs and ("百川", "Baichuan") in pairs
    assert not any(b == "LLM" for _, b in pairs)  # a term's translation is not a model alias
    zh = extract_aliases(
        doc("阿里的通义千问（Qwen）很强。多语言大型序列到序列(seq2seq)模型。", title="x", language="zh")
    )
    assert zh == [("通义千问", "Qwen")]


def store_of(*docs: Document) -> FactStore:
    return build_fact_store(docs)


def test_lookup_across_scripts_and_spellings() -> None:
    store = store_of(
        doc("# Baichuan-7B\n\nBaichuan-7B is developed by Baichuan Intelligent Technology.\n", title="Baichuan-7B"),
        doc(
            "Baichuan\n\n百川智能谢源7B年夜模子\n\nQwen\n\n阿里谢源\n\nYi\n\n元一智能谢源\n", title="汇总", doc_id="d2"
        ),
    )
    sheet = store.sheet("百川")  # from the alias table
    assert sheet is not None and sheet.model == "Baichuan"
    assert "Baichuan-7B" in sheet.variants
    assert [f.value for f in store.get("百川", "developer")] == ["百川智能"]
    assert store.get("baichuan7b", "developer")[0].value == "Baichuan Intelligent Technology"
    assert store.get("BAICHUAN-7B", "developer") == store.get("Baichuan 7B", "developer")
    assert store.knows("百川") and store.knows("Baichuan") and not store.knows("百度")


def test_family_lookups() -> None:
    text = (
        "| Model | Size | Context Length |\n|---|---|---|\n| Foo | 7B | 4k |\n| Foo | 70B | 4k |\n\n"
        "# Foo\n\nFoo is developed by Example Labs.\n"
    )
    store = store_of(doc(text, title="Foo"))
    assert {f.model for f in store.get("Foo", "context_length")} == {"Foo 7B", "Foo 70B"}  # from the variants
    assert store.get("Foo 7B", "developer")[0].value == "Example Labs"  # inherited from the family
    assert store.get("Foo 7B", "parameters")[0].normalized == (7e9,)
    assert store.sheet("Foo 70B").model == "Foo 70B"
    assert store.sheet("Nothing-1B") is None and store.get("Nothing-1B", "developer") == []
    # `knows` answers as `sheet` does, for a model, an alias and a family known through its variants.
    for name in ("Foo", "Foo 70B", "foo 7b", "Nothing-1B"):
        assert store.knows(name) == (store.sheet(name) is not None)


def test_conflicts_are_marked_and_kept() -> None:
    store = store_of(
        doc("# Foo-7B\n\nFoo-7B was released in March 2023.\n", title="Foo-7B", doc_id="a"),
        doc("# Foo-7B\n\nFoo-7B was released in June 2022.\n", title="Foo-7B", doc_id="b"),
        doc(
            "# Foo-7B\n\nFoo-7B was released in 2023.\n\nFoo-7B is fine-tuned from LLaMA.\n", title="Foo-7B", doc_id="c"
        ),
    )
    dates = store.get("Foo-7B", "release_date")
    assert len(dates) == 3 and all(f.conflict for f in dates)
    assert [f.conflict for f in store.get("Foo-7B", "base_model")] == [False]
    agree = store_of(
        doc("Foo-7B was released in 2023.", title="Foo-7B", doc_id="a"),
        doc("Foo-7B was released in March 2023.", title="Foo-7B", doc_id="b"),
    )
    assert not any(f.conflict for f in agree.get("Foo-7B", "release_date"))  # 2023 and 2023-03 agree


def test_closest_names_for_an_unknown_model() -> None:
    store = store_of(
        doc("| Model | Size |\n|---|---|\n| Vicuna-13B | 13B |\n| Vicuna-7B | 7B |\n| Koala-13B | 13B |\n")
    )
    assert store.sheet("Vicunna-13B") is None
    assert store.closest("Vicunna-13B")[0] == "Vicuna-13B"
    assert "Koala-13B" not in store.closest("Vicuna", n=2)


def test_compare_is_a_table_per_attribute() -> None:
    store = store_of(
        doc("| Model | Size | License |\n|---|---|---|\n| Foo-7B | 7B | MIT |\n| Bar-7B | 7B | Apache 2.0 |\n")
    )
    table = store.compare(["Foo-7B", "Bar-7B", "Baz-1B"], ["licence", "training_cost"])
    assert [f.normalized for f in table["licence"]["Foo-7B"]] == ["mit"]
    assert table["training_cost"]["Bar-7B"] == [] and table["licence"]["Baz-1B"] == []


def test_json_round_trip() -> None:
    store = store_of(
        doc(
            "# Foo-7B\n\nFoo-7B comes in sizes: 7B, 13B and 70B parameters. Foo-7B was released in 2023.\n",
            title="Foo-7B",
        )
    )
    data = json.loads(json.dumps(store.to_json(), ensure_ascii=False))  # plain JSON, no pickle
    again = FactStore.from_json(data)
    assert again.facts == store.facts
    assert again.get("Foo-7B", "parameters")[0].normalized == (7e9, 13e9, 70e9)


def test_extract_reads_a_document_once_for_both() -> None:
    d = doc("通义千问（Qwen）支持32K上下文。\n", title="Qwen", language="zh")
    facts, aliases = extract(d)
    assert facts == extract_facts(d) and aliases == extract_aliases(d)
    assert ("通义千问", "Qwen") in aliases


def test_a_project_named_in_its_title_lends_its_facts_to_no_model() -> None:
    """'vLLM: fast inference of Falcon' is about software: its licence badge is not Falcon's."""
    for project in ("vLLM", "fastlm.cpp"):  # a stop-listed tool; any C/C++ port
        text = f"# {project}\n\nLicense: MIT\n\nInference of Falcon models in pure C++.\n"
        facts = facts_of(doc(text, title=f"{project}: fast inference of Falcon"))
        assert not find(facts, "Falcon", "licence"), project
    card = facts_of(doc("# Falcon\n\nLicense: MIT\n\nFalcon is a causal decoder.\n", title="Falcon: a model card"))
    assert one(card, "Falcon", "licence").normalized == "mit"
