// The chat page: streams answers from /v1/ask/stream, compares models through /v1/compare and
// /v1/facts, and shows each cited quote inside its source text.
// Answer and source text come from retrieved documents and are untrusted: answers are rendered
// from markdown with raw HTML escaped, then sanitised by DOMPurify; everything else is put into
// the page as text nodes (textContent), never as HTML.
"use strict";

const LANG_STORAGE = "llm-atlas.lang";
const MAX_HISTORY_TURNS = 12; // keeps follow-ups well under the server's body limit
const MAX_COMPARE = 8; // the server's limit on /v1/compare

const STRINGS = {
  en: {
    tagline: "Cited answers about large language models",
    newChat: "New chat",
    apiKey: "API key",
    welcome: "Ask about LLMs: models, context lengths, licenses, training data. Every claim cites its source.",
    placeholder: "Ask a question about LLMs…",
    send: "Ask",
    stop: "Stop",
    modeAsk: "Ask",
    modeCompare: "Compare",
    modeFacts: "Facts",
    comparePlaceholder: "Models to compare, comma separated: Alpaca, Vicuna, Koala",
    factsPlaceholder: "A model name: ChatGLM-6B",
    compareSend: "Compare",
    factsSend: "Facts",
    compareLabel: "Compare",
    factsLabel: "Facts",
    needTwo: "Give at least two model names, separated by commas.",
    tooMany: `Compare at most ${MAX_COMPARE} models at a time.`,
    attribute: "Attribute",
    notStated: "not stated",
    conflict: "The sources disagree on this value",
    noFacts: "The sources state no facts about this model.",
    fromFacts: "from the fact sheets",
    lookingUp: "Looking it up…",
    original: "Original page",
    localSource: "Source document",
    showSource: "Show in the source text",
    keyNeeded: "This server needs an API key.",
    keyWrong: "The API key was refused. Enter the right one.",
    cancel: "Cancel",
    save: "Save",
    thinking: "Searching the sources…",
    sources: "Sources",
    loading: "The index is still loading; answers will work in a moment.",
    failed: "Something went wrong: ",
    stopped: "Stopped.",
    seconds: "s",
    modes: { extractive: "quoted from the sources", llm: "written by the LLM", refusal: "not found in the sources" },
    attributes: {},
    other: "中文",
  },
  zh: {
    tagline: "关于大语言模型的问答，每个回答都注明出处",
    newChat: "新对话",
    apiKey: "API 密钥",
    welcome: "可以问模型、上下文长度、许可证、训练数据等问题。每个结论都附带来源。",
    placeholder: "输入关于大语言模型的问题…",
    send: "提问",
    stop: "停止",
    modeAsk: "提问",
    modeCompare: "对比",
    modeFacts: "档案",
    comparePlaceholder: "要对比的模型，用逗号分隔：Alpaca, Vicuna, Koala",
    factsPlaceholder: "模型名称：ChatGLM-6B",
    compareSend: "对比",
    factsSend: "查询",
    compareLabel: "对比",
    factsLabel: "档案",
    needTwo: "请至少输入两个模型名称，用逗号分隔。",
    tooMany: `一次最多对比 ${MAX_COMPARE} 个模型。`,
    attribute: "属性",
    notStated: "未提及",
    conflict: "来源对此说法不一",
    noFacts: "来源中没有关于该模型的事实。",
    fromFacts: "来自模型档案",
    lookingUp: "正在查询…",
    original: "原始网页",
    localSource: "来源文档",
    showSource: "在原文中查看",
    keyNeeded: "此服务器需要 API 密钥。",
    keyWrong: "API 密钥被拒绝，请重新输入。",
    cancel: "取消",
    save: "保存",
    thinking: "正在检索资料…",
    sources: "来源",
    loading: "索引仍在加载，请稍候。",
    failed: "出错了：",
    stopped: "已停止。",
    seconds: "秒",
    modes: { extractive: "摘自来源", llm: "由大模型撰写", refusal: "来源中未找到" },
    attributes: {
      developer: "开发者",
      release_date: "发布日期",
      parameters: "参数量",
      base_model: "基座模型",
      architecture: "架构",
      training_data: "训练数据",
      training_tokens: "训练词元数",
      context_length: "上下文长度",
      licence: "许可证",
      languages: "语言",
      training_cost: "训练成本",
      training_hardware: "训练硬件",
      memory_requirement: "显存需求",
    },
    other: "English",
  },
};

const $ = (id) => document.getElementById(id);
const state = {
  lang: localStorage.getItem(LANG_STORAGE) || (navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en"),
  mode: "ask", // ask | compare | facts
  history: [], // {role, content} turns sent with each follow-up
  controller: null, // AbortController of the answer being streamed
  activeCite: null,
  shown: 0, // which citation the panel shows, so a late document fetch cannot overwrite a newer one
};
const documents = new Map(); // doc_id -> Promise of /v1/sources/{doc_id}

function t(key) {
  return STRINGS[state.lang][key] ?? STRINGS.en[key];
}

function attributeLabel(attribute) {
  return t("attributes")[attribute] || attribute.replaceAll("_", " ");
}

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  $("lang-toggle").textContent = t("other");
  if (!state.controller) $("send").textContent = t("send");
  setMode(state.mode);
}

function askForKey(message) {
  const dialog = $("key-dialog");
  dialog.querySelector("p").textContent = message || t("keyNeeded");
  $("key-input").value = localStorage.getItem(KEY_STORAGE) || "";
  dialog.returnValue = ""; // Escape must not repeat an earlier "save"
  if (!dialog.open) dialog.showModal();
}

function setStatus(message) {
  $("status").textContent = message || "";
  $("status").hidden = !message;
}

// ------------------------------------------------------------ markdown

const MARKER = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;
const SAFE_TAGS = [
  "p", "br", "strong", "em", "del", "code", "pre", "ul", "ol", "li", "blockquote", "hr", "a",
  "table", "thead", "tbody", "tr", "th", "td", "h1", "h2", "h3", "h4", "h5", "h6",
];

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const markdown = new marked.Marked({ gfm: true, breaks: true, async: false });
markdown.use({
  renderer: {
    html: ({ text }) => escapeHtml(text), // HTML inside retrieved text is shown as typed, never run
    image: ({ text }) => escapeHtml(text), // no images from retrieved text: their alt text only
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName !== "A") return;
  const href = safeUrl(node.getAttribute("href") || "");
  if (href) {
    node.setAttribute("href", href);
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  } else {
    node.removeAttribute("href"); // only http(s) links: no javascript:, no relative paths
  }
});

function repairTables(text) {
  // The answer code puts a sentence's [n] after its line, which for a table row is after the closing
  // pipe: that row then has one cell too many and the whole table stays plain text. Move the markers
  // into the row's last cell (a delimiter row's go to the header row above it).
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const match = lines[i].match(/^(\s*\|.*\|)\s*((?:\[\d{1,3}(?:\s*,\s*\d{1,3})*\]\s*)+)$/);
    if (!match) continue;
    const [, row, markers] = match;
    if (/^\s*\|(\s*:?-+:?\s*\|)+$/.test(row) && i > 0 && lines[i - 1].trimEnd().endsWith("|")) {
      lines[i] = row;
      lines[i - 1] = `${lines[i - 1].trimEnd().slice(0, -1).trimEnd()} ${markers.trim()} |`;
    } else {
      lines[i] = `${row.slice(0, -1).trimEnd()} ${markers.trim()} |`;
    }
  }
  return lines.join("\n");
}

function tableCells(row) {
  // "| a | b |", "a|b" and "||b|c|" (an empty first header cell) alike: one outer pipe each side is the border.
  return row.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
}

function expandTableRows(text) {
  // The extractive answer quotes a table row on one line, after its header: "| h1 | h2 | → | v1 | v2 | [n]".
  // Those become real tables; consecutive rows under the same header share one, each row keeping its markers.
  const out = [];
  let last = 0;
  let table = null; // {header, rows} being built
  const flush = () => {
    if (!table) return;
    const line = (cells) => `| ${cells.join(" | ")} |`;
    out.push(`\n\n${line(table.header)}\n|${" --- |".repeat(table.header.length)}\n${table.rows.map(line).join("\n")}\n\n`);
    table = null;
  };
  const markers = [...text.matchAll(/(?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+/g)];
  for (const match of markers) {
    const segment = text.slice(last, match.index);
    const lead = segment.match(/^[\s.,;:!?。，；：！？]*/)[0]; // the previous sentence's "[1]." ends here
    const rest = segment.slice(lead.length);
    const arrow = rest.indexOf(" → ");
    const header = arrow > 0 ? tableCells(rest.slice(0, arrow)) : [];
    const row = arrow > 0 ? tableCells(rest.slice(arrow + 3)) : [];
    const isRow = arrow > 0 && rest.slice(0, arrow).includes("|") && header.length >= 2 && row.length === header.length;
    if (isRow) {
      if (lead.trim() || (table && table.header.join("|") !== header.join("|"))) {
        flush();
        out.push(lead.trim());
      }
      if (!table) table = { header, rows: [] };
      row[row.length - 1] = `${row[row.length - 1]} ${match[0].trim()}`;
      table.rows.push(row);
    } else {
      flush();
      out.push(segment, match[0]);
    }
    last = match.index + match[0].length;
  }
  flush();
  out.push(text.slice(last));
  return out.join("");
}

function renderMarkdown(text) {
  const html = markdown.parse(repairTables(expandTableRows(text)));
  return DOMPurify.sanitize(html, { ALLOWED_TAGS: SAFE_TAGS, ALLOWED_ATTR: ["href", "align", "start"],
    RETURN_DOM_FRAGMENT: true });
}

function linkMarkers(root, byNumber) {
  // Turns [n] in the rendered text into buttons, numbered 1..k in order of first use (the server's
  // n is the rank of the retrieved passage, so only some numbers are cited). Returns n -> shown number.
  // While streaming (byNumber null) every marker is numbered; once the answer is in, only those with a source.
  const shown = new Map();
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.parentElement?.closest("code, pre") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const text = node.data;
    const pieces = [];
    let last = 0;
    for (const match of text.matchAll(MARKER)) {
      pieces.push(text.slice(last, match.index));
      for (const n of match[1].split(",").map(Number)) {
        const citation = byNumber ? byNumber.get(n) : null;
        if (citation || !byNumber) {
          if (!shown.has(n)) shown.set(n, shown.size + 1);
          pieces.push(citeButton(shown.get(n), citation, n));
        } else {
          pieces.push(citeButton(null, null, n)); // a number without a source: shown as the server wrote it
        }
      }
      last = match.index + match[0].length;
    }
    if (!pieces.length) continue;
    pieces.push(text.slice(last));
    node.replaceWith(...pieces);
  }
  return shown;
}

function citeButton(number, citation, n) {
  const button = el("button", { class: "cite", type: "button", text: `[${number ?? n}]` });
  if (n != null) button.dataset.n = String(n);
  if (citation) button.addEventListener("click", () => showCitation(citation, button, number, supportedText(button)));
  else button.disabled = true; // still streaming, or a number without a source
  return button;
}

function supportedText(button) {
  // The answer text this marker stands behind: from the previous marker (or the start of its
  // paragraph, list item or cell) up to the marker. For "…text [1][2]" both markers get "…text".
  const block = button.closest("p, li, td, th, blockquote, h1, h2, h3, h4, h5, h6, .text");
  if (!block) return "";
  let text = "";
  let previous = "";
  const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node === button) break;
    if (node.nodeType === Node.ELEMENT_NODE) {
      if (node.classList.contains("cite")) {
        if (text.trim()) previous = text;
        text = "";
      }
    } else if (!node.parentElement.classList.contains("cite")) {
      text += node.data;
    }
  }
  // What follows the previous marker may start with that sentence's closing punctuation.
  return (text.trim() || previous).replace(/\s+/g, " ").replace(/^[\s.,;:!?)。，；：、！？）]+/, "").trim();
}

function findSupport(quote, sentence) {
  // Where the answer's sentence lies inside the quote, ignoring whitespace and markdown emphasis
  // (an answer drops the ** of "**Title**: …"); [from, to) in UTF-16 units of `quote`, or null.
  const ignored = /[\s*_`]/;
  const kept = [];
  let flat = "";
  for (let i = 0; i < quote.length; i++) {
    if (ignored.test(quote[i])) continue;
    kept.push(i);
    flat += quote[i];
  }
  const wanted = sentence.replace(/[\s*_`]/g, "");
  if (wanted.length < 8 || wanted.length >= flat.length) return null; // nothing to narrow down
  const at = flat.indexOf(wanted);
  if (at < 0) return null;
  return [kept[at], kept[at + wanted.length - 1] + 1];
}

// ------------------------------------------------------------ rendering an answer

function renderText(container, text, citations) {
  const byNumber = citations ? new Map(citations.map((c) => [c.n, c])) : null;
  const fragment = renderMarkdown(text);
  const shown = linkMarkers(fragment, byNumber);
  container.replaceChildren(fragment);
  return shown;
}

function renderSources(item, entries) {
  // entries: [{number, citation}] in the order they are shown.
  if (!entries.length) return;
  const list = el("ol", { class: "sources", "aria-label": t("sources") });
  for (const { number, citation } of entries) {
    const section = cleanSection(citation.section, citation.title);
    const button = el("button", { type: "button" },
      el("span", { class: "cite", text: `[${number}]` }), " ",
      el("span", { class: "source-title", text: citation.title }),
      section ? el("span", { class: "source-section", text: ` › ${section}` }) : "");
    button.addEventListener("click", () => showCitation(citation, button.querySelector(".cite"), number));
    list.append(el("li", {}, button, " ", sourceLink(citation, "source-link")));
  }
  item.append(list);
}

function sourceLink(citation, className) {
  // The original page where there is one; a document without a URL (a seed file) gets the local view.
  const href = safeUrl(citation.url);
  if (href) {
    return el("a", { class: className, href, target: "_blank", rel: "noopener noreferrer", text: new URL(href).hostname });
  }
  if (!citation.doc_id) return "";
  return el("a", { class: `${className} local`, href: localSourceUrl(citation), target: "_blank",
    rel: "noopener", text: t("localSource") });
}

function renderAnswer(item, answer) {
  item.classList.remove("pending");
  const body = item.querySelector(".text");
  const shown = renderText(body, answer.answer, answer.citations);
  if (answer.notice) item.append(el("p", { class: "notice", text: answer.notice }));
  // Sources in the order the answer first uses them; any cited but unused ones after, in the server's order.
  const byNumber = new Map(answer.citations.map((c) => [c.n, c]));
  const used = [...shown].filter(([n]) => byNumber.has(n)).map(([n, number]) => ({ number, citation: byNumber.get(n) }));
  for (const c of answer.citations) {
    if (!shown.has(c.n)) used.push({ number: used.length + 1, citation: c });
  }
  renderSources(item, used);
  const seconds = answer.timings && (answer.timings.server ?? answer.timings.total);
  const mode = t("modes")[answer.mode] || answer.mode;
  item.append(el("p", { class: "meta", text: seconds != null ? `${mode} · ${seconds.toFixed(2)} ${t("seconds")}` : mode }));
}

// ------------------------------------------------------------ the citation panel

function fetchDocument(docId) {
  if (!documents.has(docId)) {
    const request = fetch(`/v1/sources/${encodeURIComponent(docId)}`, { headers: authHeaders() }).then(async (response) => {
      const data = await response.json();
      if (!response.ok) throw new Error(data.error?.message || response.statusText);
      return data;
    });
    request.catch(() => documents.delete(docId)); // a failed fetch is retried on the next click
    documents.set(docId, request);
  }
  return documents.get(docId);
}

function showCitation(citation, button, number, sentence = "") {
  if (state.activeCite) state.activeCite.classList.remove("active");
  state.activeCite = button;
  button.classList.add("active");
  const shown = ++state.shown;
  $("citation-number").textContent = String(number ?? citation.n);
  $("citation-title").textContent = citation.title;
  $("citation-section").textContent = cleanSection(citation.section, citation.title);
  const quote = $("citation-quote");
  quote.classList.remove("in-context");
  quote.replaceChildren(quoteMark(citation.quote, sentence));
  const link = $("citation-url");
  const href = safeUrl(citation.url);
  link.hidden = !href;
  if (href) link.href = href;
  else link.removeAttribute("href");
  const local = $("citation-local");
  local.hidden = Boolean(href) || !citation.doc_id;
  if (!local.hidden) local.href = localSourceUrl(citation);
  const sourceButton = $("citation-source");
  sourceButton.hidden = !citation.doc_id;
  sourceButton.onclick = () => showSource(citation);
  $("source-text").hidden = true;
  $("source-text").replaceChildren();
  $("citation-panel").hidden = false;
  if (citation.doc_id) showInContext(citation, shown, sentence);
}

function quoteMark(quote, sentence) {
  // The quote, with the sentence that the clicked marker stands behind in bold when it lies inside it.
  const mark = el("mark");
  const support = sentence ? findSupport(quote, sentence) : null;
  if (support) {
    const [from, to] = support;
    mark.append(quote.slice(0, from), el("strong", { class: "support", text: quote.slice(from, to) }), quote.slice(to));
  } else {
    mark.textContent = quote;
  }
  return mark;
}

async function showInContext(citation, shown, sentence) {
  // The quote is the sentence that supports the marker; show it marked inside the text around it.
  try {
    const data = await fetchDocument(citation.doc_id);
    const context = quoteInContext(data.text, citation);
    if (shown !== state.shown || !context) return;
    const quote = $("citation-quote");
    quote.replaceChildren(
      el("span", { class: "context", text: context.before }),
      quoteMark(context.quote, sentence),
      el("span", { class: "context", text: context.after }),
    );
    quote.classList.add("in-context");
  } catch {
    // The quote alone is already shown; the source text button reports the error.
  }
}

async function showSource(citation) {
  const pre = $("source-text");
  pre.hidden = false;
  pre.textContent = "…";
  try {
    const data = await fetchDocument(citation.doc_id);
    const [before, quoted, after] = markedText(data.text, citation);
    const mark = el("mark", { text: quoted });
    pre.replaceChildren(before, mark, after);
    pre.scrollTop = Math.max(0, mark.offsetTop - pre.clientHeight / 3); // scroll the text, not the panel
  } catch (error) {
    pre.textContent = t("failed") + error.message;
  }
}

// ------------------------------------------------------------ asking

async function* readEvents(response) {
  // Server-sent events from a fetch body (EventSource cannot POST or send headers).
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

async function errorMessage(response) {
  try {
    const data = await response.json();
    return data.error?.message || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function setBusy(busy) {
  for (const send of [$("send"), $("lookup-send")]) {
    send.textContent = busy ? t("stop") : send === $("send") ? t("send") : lookupLabel();
    send.classList.toggle("stop", busy);
    send.type = busy ? "button" : "submit";
  }
}

function startExchange(userText, pendingText) {
  $("welcome").hidden = true;
  const conversation = $("conversation");
  conversation.append(el("li", { class: "msg user", text: userText }));
  const item = el("li", { class: "msg assistant pending" }, el("div", { class: "text", text: pendingText }));
  conversation.append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

async function ask(question) {
  const item = startExchange(question, t("thinking"));
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  let text = "";
  try {
    const response = await fetch("/v1/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
      body: JSON.stringify({ question, history: state.history.slice(-MAX_HISTORY_TURNS) }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const message = await errorMessage(response);
      if (response.status === 401) askForKey(localStorage.getItem(KEY_STORAGE) ? t("keyWrong") : t("keyNeeded"));
      throw new Error(message);
    }
    for await (const { event, data } of readEvents(response)) {
      if (event === "delta") {
        text += data.text;
        renderText(item.querySelector(".text"), text, null);
      } else if (event === "answer") {
        renderAnswer(item, data);
        state.history.push({ role: "user", content: question }, { role: "assistant", content: data.answer });
      } else if (event === "error") {
        throw new Error(data.error?.message || "error");
      }
      item.scrollIntoView({ block: "end" });
    }
  } catch (error) {
    failed(item, error);
  } finally {
    state.controller = null;
    setBusy(false);
  }
}

function failed(item, error) {
  item.classList.remove("pending");
  const message = error.name === "AbortError" ? t("stopped") : t("failed") + error.message;
  item.append(el("p", { class: "error", text: message }));
}

// ------------------------------------------------------------ comparing models

class SourceNumbers {
  // Numbers the cited passages 1..k in order of first use; the same passage keeps its number.
  constructor() {
    this.numbers = new Map();
    this.entries = [];
  }

  number(citation) {
    const key = `${citation.doc_id}\u0000${citation.start}\u0000${citation.end}`;
    if (!this.numbers.has(key)) {
      this.numbers.set(key, this.entries.length + 1);
      this.entries.push({ number: this.entries.length + 1, citation });
    }
    return this.numbers.get(key);
  }
}

function factCell(facts, sources) {
  // One cell: each distinct value once, with the markers of every passage that states it.
  const cell = el("td");
  if (!facts.length) {
    cell.append(el("span", { class: "not-stated", text: t("notStated") }));
    return cell;
  }
  const values = new Map();
  for (const fact of facts) {
    const key = JSON.stringify([fact.value, fact.qualifier || "", fact.stated_for || ""]);
    if (!values.has(key)) values.set(key, { fact, cited: [], conflict: false });
    const value = values.get(key);
    value.cited.push({ number: sources.number(fact.citation), citation: fact.citation });
    value.conflict ||= fact.conflict;
  }
  for (const { fact, cited, conflict } of values.values()) {
    const line = el("div", { class: "fact" });
    if (conflict) line.append(el("span", { class: "conflict", title: t("conflict"), "aria-label": t("conflict"), text: "⚠" }), " ");
    line.append(el("span", { class: "value", text: fact.value }));
    if (fact.qualifier) line.append(" ", el("span", { class: "qualifier", text: fact.qualifier }));
    if (fact.stated_for) line.append(" ", el("span", { class: "stated-for", text: fact.stated_for }));
    const seen = new Set();
    for (const { number, citation } of cited.sort((a, b) => a.number - b.number)) {
      if (seen.has(number)) continue;
      seen.add(number);
      line.append(citeButton(number, citation, null));
    }
    cell.append(line);
  }
  return cell;
}

function factTable(models, rows, sources) {
  // rows: [{attribute, cells: {model: [facts]}, conflict}], one column per model.
  const head = el("tr", {}, el("th", { scope: "col", text: t("attribute") }),
    ...models.map((model) => el("th", { scope: "col", text: model })));
  const body = el("tbody");
  for (const row of rows) {
    const name = el("th", { scope: "row", text: attributeLabel(row.attribute) });
    name.dataset.attribute = row.attribute;
    if (row.conflict) name.append(" ", el("span", { class: "conflict", title: t("conflict"), text: "⚠" }));
    body.append(el("tr", {}, name, ...models.map((model) => factCell(row.cells[model] || [], sources))));
  }
  return el("div", { class: "table-wrap" }, el("table", { class: "facts" }, el("thead", {}, head), body));
}

function sheetRows(sheet) {
  // A fact sheet's facts, one row per attribute in the order the sheet gives them.
  const rows = new Map();
  for (const fact of sheet.facts) {
    if (!rows.has(fact.attribute)) rows.set(fact.attribute, { attribute: fact.attribute, cells: { [sheet.model]: [] }, conflict: false });
    const row = rows.get(fact.attribute);
    row.cells[sheet.model].push(fact);
    row.conflict ||= fact.conflict;
  }
  return [...rows.values()];
}

function modelNames(text) {
  return [...new Set(text.split(/[,，、;；\n]/).map((name) => name.trim()).filter(Boolean))];
}

async function getJSON(url, options = {}) {
  const response = await fetch(url, { ...options, headers: { ...options.headers, ...authHeaders() } });
  if (!response.ok) {
    if (response.status === 401) askForKey(localStorage.getItem(KEY_STORAGE) ? t("keyWrong") : t("keyNeeded"));
    const error = new Error(await errorMessage(response));
    error.status = response.status;
    throw error;
  }
  return response.json();
}

async function lookup(kind, names) {
  const label = kind === "compare" ? t("compareLabel") : t("factsLabel");
  const item = startExchange(`${label}: ${names.join(", ")}`, t("lookingUp"));
  item.classList.add("lookup");
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const started = performance.now();
  try {
    if (kind === "compare" && names.length < 2) throw new Error(t("needTwo"));
    if (kind === "compare" && names.length > MAX_COMPARE) throw new Error(t("tooMany"));
    const sources = new SourceNumbers();
    const parts = [];
    const notices = [];
    if (kind === "compare") {
      const data = await getJSON("/v1/compare", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ models: names }),
        signal: controller.signal,
      });
      notices.push(...data.unknown.map((unknown) => unknown.error));
      if (data.models.length) parts.push(factTable(data.models, data.rows, sources));
    } else {
      for (const name of names) {
        try {
          const sheet = await getJSON(`/v1/facts/${encodeURIComponent(name)}`, { signal: controller.signal });
          const aliases = sheet.aliases.length ? ` (${sheet.aliases.join(", ")})` : "";
          parts.push(el("h3", { class: "sheet-title", text: sheet.model + aliases }));
          parts.push(sheet.facts.length ? factTable([sheet.model], sheetRows(sheet), sources)
            : el("p", { class: "not-stated", text: t("noFacts") }));
        } catch (error) {
          if (error.status !== 404) throw error;
          notices.push(error.message); // names the closest known models
        }
      }
    }
    item.classList.remove("pending");
    item.querySelector(".text").replaceChildren(...parts);
    for (const notice of notices) item.append(el("p", { class: "notice", text: notice }));
    renderSources(item, sources.entries);
    const seconds = (performance.now() - started) / 1000;
    item.append(el("p", { class: "meta", text: `${t("fromFacts")} · ${seconds.toFixed(2)} ${t("seconds")}` }));
  } catch (error) {
    item.querySelector(".text").replaceChildren();
    failed(item, error);
  } finally {
    state.controller = null;
    setBusy(false);
    item.scrollIntoView({ block: "end" });
  }
}

// ------------------------------------------------------------ the composer

function lookupLabel() {
  return state.mode === "facts" ? t("factsSend") : t("compareSend");
}

function setMode(mode) {
  state.mode = mode;
  for (const button of document.querySelectorAll(".mode")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
  }
  $("ask-form").hidden = mode !== "ask";
  $("lookup-form").hidden = mode === "ask";
  $("models").placeholder = mode === "facts" ? t("factsPlaceholder") : t("comparePlaceholder");
  if (!state.controller) $("lookup-send").textContent = lookupLabel();
}

function submit() {
  const input = $("question");
  const question = input.value.trim();
  if (!question || state.controller) return;
  input.value = "";
  ask(question);
}

function submitLookup() {
  const input = $("models");
  const names = modelNames(input.value);
  if (!names.length || state.controller) return;
  lookup(state.mode, names);
}

// ------------------------------------------------------------ start-up

async function checkServer() {
  // Tell the user early when the index is loading or a key is needed.
  try {
    const ready = await fetch("/readyz");
    setStatus(ready.ok ? "" : t("loading"));
    if (!ready.ok) setTimeout(checkServer, 3000);
    const models = await fetch("/v1/models", { headers: authHeaders() });
    if (models.status === 401) askForKey(localStorage.getItem(KEY_STORAGE) ? t("keyWrong") : t("keyNeeded"));
  } catch {
    setTimeout(checkServer, 3000);
  }
}

function stopOnClick(button) {
  button.addEventListener("click", (event) => {
    if (!state.controller) return;
    event.preventDefault();
    state.controller.abort();
  });
}

function start() {
  applyLanguage();
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("lookup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitLookup();
  });
  stopOnClick($("send"));
  stopOnClick($("lookup-send"));
  $("question").addEventListener("keydown", (event) => {
    // Enter asks, Shift+Enter is a new line; Enter that confirms an IME composition (Chinese input) is not a send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  });
  $("models").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.isComposing || event.keyCode === 229)) event.preventDefault();
  });
  for (const button of document.querySelectorAll(".mode")) {
    button.addEventListener("click", () => {
      setMode(button.dataset.mode);
      (state.mode === "ask" ? $("question") : $("models")).focus();
    });
  }
  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => {
      if (button.dataset.compare) {
        setMode("compare");
        $("models").value = button.dataset.compare;
        submitLookup();
        return;
      }
      setMode("ask");
      $("question").value = button.textContent;
      submit();
    });
  }
  $("new-chat").addEventListener("click", () => {
    if (state.controller) state.controller.abort();
    state.history = [];
    $("conversation").replaceChildren();
    $("citation-panel").hidden = true;
    $("welcome").hidden = false;
    $("question").focus();
  });
  $("lang-toggle").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem(LANG_STORAGE, state.lang);
    applyLanguage();
  });
  $("key-button").addEventListener("click", () => askForKey(t("keyNeeded")));
  $("key-dialog").addEventListener("close", () => {
    if ($("key-dialog").returnValue !== "save") return;
    const key = $("key-input").value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    documents.clear(); // fetched with the old key (or refused)
    checkServer();
  });
  $("citation-close").addEventListener("click", () => {
    $("citation-panel").hidden = true;
    if (state.activeCite) state.activeCite.classList.remove("active");
  });
  $("question").focus();
  checkServer();
}

start();
