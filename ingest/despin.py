"""Undo machine "spinning" of Chinese text without moving a single character.

Spinners rewrite scraped posts so they look original: digits inside names and sizes become Chinese
numerals (`LLama两` for Llama2, `InternLM二 7B+两0B` for InternLM2 7B+20B, `Dolly-v两` for Dolly-v2)
and common words become look-alikes (`谢源` for 开源 "open source", `领布` for 发布 "release").

Every replacement here is one character for one character (or a word for a word of the same
length), so `despin(text)` has exactly the length of `text` and an offset into one is an offset into
the other: matching runs on the despun text, citations quote the original.
"""

from __future__ import annotations

import re

NUMERALS = {
    "〇": "0",
    "零": "0",
    "一": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
_NUM = "〇零一二两三四五六七八九"
# Characters that make a numeral part of a Chinese word rather than a digit: 三阶段, 两个, 二代, 一样.
_WORDY_NEXT = "个种位款者项类部名条倍大阶代篇次轮期层年月日天些样份半句点段代届则致起般直切共同并"

_SPUN_NUMERAL = re.compile(
    # after a digit, or after a letter/digit and a hyphen or dot: 3两K, GPT-四, Yuan-二.0, 1两.5
    rf"(?<=[0-9])[{_NUM}]"
    rf"|(?<=[A-Za-z0-9][-.])[{_NUM}]"
    # right after a Latin name: LLama两, InternLM二 (not SFT三阶段, not 一: Alpaca一样 is a word)
    rf"|(?<=[A-Za-z])[二两三四五六七八九](?![{_WORDY_NEXT}])"
    # before a digit or decimal point: 两0B, 二00K, 二.6B
    rf"|[{_NUM}](?=[0-9]|\.[0-9])"
    # before a size unit that is not the start of a word: 两B, 二56K (handled above), 两5w
    rf"|(?<![A-Za-z{_NUM}])[{_NUM}](?=[BKMTbkmt](?![A-Za-z]))"
)

# Look-alike words a spinner substitutes, each the same length as the word it replaces. Only forms
# that are not ordinary words in writing about language models are listed.
SPUN_WORDS = {
    "谢源": "开源",  # open source
    "领布": "发布",  # release
    "拉没": "推出",  # launch
    "没品": "出品",  # produced by
    "模子": "模型",  # model
    "数据散": "数据集",  # dataset
    "上高文": "上下文",  # context
    "底子": "基础",  # base
    "入止": "进行",  # carry out
    "微硬": "微软",  # Microsoft
    "浑华": "清华",  # Tsinghua
    "斯坦祸": "斯坦福",  # Stanford
    "阿面": "阿里",  # Alibaba
    "通义千答": "通义千问",  # Qwen
    "措辞模子": "语言模型",  # language model (措辞 alone is also a real word: wording)
    "外英": "中英",  # Chinese-English
    "外科院": "中科院",  # Chinese Academy of Sciences
    "钻研院": "研究院",  # research institute
    "野生智能": "人工智能",  # artificial intelligence
    "撑持": "支持",  # support
    "拉理": "推理",  # inference
    "机能": "性能",  # performance
    "罪能": "功能",  # capability
    "散团": "集团",  # group (company)
    "深度供索": "深度求索",  # DeepSeek
    "否商用": "可商用",  # commercially usable
    "收费商用": "免费商用",  # free for commercial use
    "领有": "拥有",  # have
    "答问": "问答",  # question answering
    "窗心": "窗口",  # window
    "超少": "超长",  # very long
    "形貌": "描述",  # description
    "海内": "国内",  # domestic
}
_SPUN_WORD_RE = re.compile("|".join(sorted(map(re.escape, SPUN_WORDS), key=len, reverse=True)))


def despin(text: str) -> str:
    """The text with spun numerals and look-alike words restored; same length, same offsets."""
    text = _SPUN_NUMERAL.sub(lambda m: NUMERALS[m.group(0)], text)
    return _SPUN_WORD_RE.sub(lambda m: SPUN_WORDS[m.group(0)], text)
