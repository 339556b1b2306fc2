"""Model names: the key two spellings of one name share, the families above a name, the alias table,
and the name-shaped words that are no model (organisations, datasets, methods, hardware, units)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from ingest.despin import despin

ALIAS_TABLE = Path(__file__).parent / "data" / "model_aliases.tsv"


@lru_cache(maxsize=65536)
def model_key(name: str) -> str:
    """Case-, punctuation- and script-insensitive key: 'ChatGLM-6B' and 'chatglm6b' meet; CJK is kept."""
    text = unicodedata.normalize("NFKC", despin(name)).lower()
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]", "", text)


# A size or version written after a name, with its separator: "Llama 2 7B", "Mistral-7B-v0.1",
# "Dolly v2 12B", "FLAN-T5 XXL", "T5 (Base)". Read on the written name, since a key has lost the
# separators ("llama27b" could be Llama 27B).
_VARIANT_SUFFIX = re.compile(
    r"(?:[\s_-]+(?:v\d+(?:\.\d+)*|\d+(?:\.\d+)?[BbMmKkTt]|\d+x\d+[Bb]|XXL|XL|Large|Base|Small|delta)|\s*\((?:Base"
    r"|Large|Small)\))$"
    r"|(?<=[a-z])(?:\d+(?:\.\d+)?[BbMm])$"
)


def variant_root(name: str) -> str:
    """The family a name belongs to, one step up: Vicuna-13B -> Vicuna, Mistral-7B-v0.1 -> Mistral-7B."""
    root = _VARIANT_SUFFIX.sub("", name.strip())
    return root if len(model_key(root)) >= 2 and root != name.strip() else name.strip()


def ancestors(name: str) -> list[str]:
    """Keys of the families above a name: 'Mistral-7B-v0.1' -> ['mistral7b', 'mistral']."""
    chain = []
    while (root := variant_root(name)) != name.strip():
        chain.append(model_key(root))
        name = root
    return chain


@lru_cache(maxsize=1)
def alias_table() -> tuple[tuple[str, str], ...]:
    """(alias, canonical) pairs from ingest/data/model_aliases.tsv."""
    pairs = []
    for line in ALIAS_TABLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        alias, _, canonical = line.partition("\t")
        pairs.append((alias.strip(), canonical.strip()))
    return tuple(pairs)


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Name-shaped words that are not models: organisations, datasets, methods, hardware, benchmarks,
# software and units. A stop list by kind, not a list of this corpus's sentences.
NOT_MODELS = word_set(
    """
    ai agi api apis llm llms lmm mllm nlp nlu plm plms nlms gpu gpus cpu cpus tpu tpus ram vram sota usd
    rlhf rl sft ppo dpo rrhf lora qlora peft ptuning ptuningv2 fsdp zero deepspeed megatron megatronlm
    megatrondeepspeed pytorch jax flax cuda triton int4 int8 fp16 fp32 bf16 bfloat16 float16 gptq ggml gguf
    alibi rope swiglu rmsnorm layernorm relu gelu flashattention flashattention2 gqa mqa moe bpe nf4 mod
    github huggingface hf openai meta metaai google microsoft nvidia amazon aws gcp azure apple ibm intel
    sharegpt sharegptcom refinedweb commoncrawl ccnet c4 mc4 pile thepile redpajamadata oig oig43m hc3
    stackexchange stackoverflow hackernews wikipedia arxiv pubmed bookcorpus books3 roots s2orc ultrachat
    ultrafeedback alpacaeval mmlu ceval bbh agieval humaneval humanevalx mbpp gsm8k truthfulqa toxigen
    hellaswag winogrande piqa siqa boolq arc openbookqa lambada triviaqa naturalquestions race wmt22 bleu
    medqa medmcqa pubmedqa leval mtbench chatbotarena lmsys bair tii fair cmu mbzuai laion eleutherai
    bigscience mosaicml databricks cerebrassystems uw thudm zhipu
    json yaml url html md pdf readme pr cli gradio colab discord wechat slack docker cmake zig python java
    javascript typescript rust go ruby lua php scala jupyter langchain transformers accelerate bitsandbytes
    sentencepiece tiktoken chatml react vllm ollama fastchat skypilot easylm llmfoundry composer sagemaker
    llamacpp alpacacpp whispercpp mps macos ios android linux windows
    gb tb mb kb tflops flops co2 tco2eq pp dp tp nccl nvlink opa apex qkv mfu lsh rtd mlm clm tlm rnn lstm
    gru cnn ocr nsfw sota qa cot mtpb mnn transformer transformers fastertransformer seq2seq
    """
)
_NOT_MODEL_SHAPES = re.compile(
    r"^(?:\d+[a-z]?|[ahv]\d{2,3}|a\d{2,3}g?|rtx\d+|tpuv?\d*|cs\d|int\d+|fp\d+|bf\d+|m\d|v\d[\d.]*|x\d+|q\d\w*"
    r"|p\d+d|pass1\d*|top\d+|\d*k|e\d+|[a-z0-9]+cpp)$"  # [a-z0-9]+cpp: a C/C++ port (whisper.cpp), software
)


@lru_cache(maxsize=65536)
def is_stop(key: str) -> bool:
    return not key or key in NOT_MODELS or bool(_NOT_MODEL_SHAPES.match(key))
