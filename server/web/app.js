// The chat page: streams answers from /v1/ask/stream and shows the cited passages.
// Answer and source text come from retrieved documents and are untrusted, so everything is
// put into the page as text nodes (textContent), never as HTML.
"use strict";

const KEY_STORAGE = "llm-atlas.apiKey";
const LANG_STORAGE = "llm-atlas.lang";
const MAX_HISTORY_TURNS = 12; // keeps follow-ups well under the server's body limit

const STRINGS = {
  en: {
    tagline: "Cited answers about large language models",
    newChat: "New chat",
    apiKey: "API key",
    welcome: "Ask about LLMs: models, context lengths, licenses, training data. Every claim cites its source.",
    placeholder: "Ask a question about LLMs…",
    send: "Ask",
    stop: "Stop",
    original: "Original page",
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
    original: "原始网页",
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
    other: "English",
  },
};

const $ = (id) => document.getElementById(id);
const state = {
  lang: localStorage.getItem(LANG_STORAGE) || (navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en"),
  history: [], // {role, content} turns sent with each follow-up
  controller: null, // AbortController of the answer being streamed
  activeCite: null,
};

function t(key) {
  return STRINGS[state.lang][key] ?? STRINGS.en[key];
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children); // strings become text nodes
  return node;
}

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  $("lang-toggle").textContent = t("other");
  if (!state.controller) $("send").textContent = t("send");
}

function authHeaders() {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
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

// ------------------------------------------------------------ rendering an answer

function renderText(container, text, citations) {
  // Split on [n] markers: plain text stays text, markers become buttons that open the citation.
  const byNumber = new Map((citations || []).map((c) => [c.n, c]));
  container.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(/\[(\d{1,2})\]/g)) {
    container.append(text.slice(last, match.index));
    const citation = byNumber.get(Number(match[1]));
    const button = el("button", { class: "cite", type: "button", text: match[0] });
    if (citation) button.addEventListener("click", () => showCitation(citation, button));
    else button.disabled = true; // still streaming, or a number without a source
    container.append(button);
    last = match.index + match[0].length;
  }
  container.append(text.slice(last));
}

function renderAnswer(item, answer) {
  item.classList.remove("pending");
  const body = item.querySelector(".text");
  renderText(body, answer.answer, answer.citations);
  if (answer.notice) item.append(el("p", { class: "notice", text: answer.notice }));
  if (answer.citations.length) {
    const list = el("ol", { class: "sources", "aria-label": t("sources") });
    for (const c of answer.citations) {
      const button = el("button", { type: "button" },
        el("span", { class: "cite", text: `[${c.n}]` }), " ",
        el("span", { class: "source-title", text: c.title }),
        c.section ? el("span", { class: "source-section", text: ` › ${c.section}` }) : "");
      button.addEventListener("click", () => showCitation(c, button.querySelector(".cite")));
      list.append(el("li", {}, button));
    }
    item.append(list);
  }
  const seconds = answer.timings && (answer.timings.server ?? answer.timings.total);
  const mode = t("modes")[answer.mode] || answer.mode;
  item.append(el("p", { class: "meta", text: seconds != null ? `${mode} · ${seconds.toFixed(2)} ${t("seconds")}` : mode }));
}

function safeUrl(url) {
  // Source URLs come from documents: only ever link to http(s).
  try {
    const parsed = new URL(url); // relative or local paths throw: the source text button covers those
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function showCitation(citation, button) {
  if (state.activeCite) state.activeCite.classList.remove("active");
  state.activeCite = button;
  button.classList.add("active");
  $("citation-number").textContent = String(citation.n);
  $("citation-title").textContent = citation.title;
  $("citation-section").textContent = citation.section || "";
  $("citation-quote").textContent = citation.quote;
  const link = $("citation-url");
  const href = safeUrl(citation.url);
  link.hidden = !href;
  if (href) link.href = href;
  else link.removeAttribute("href");
  const sourceButton = $("citation-source");
  sourceButton.hidden = !citation.doc_id;
  sourceButton.onclick = () => showSource(citation);
  $("source-text").hidden = true;
  $("source-text").replaceChildren();
  $("citation-panel").hidden = false;
}

function splitAt(text, citation) {
  // The server's offsets count code points; JavaScript strings count UTF-16 units, which differ
  // after any emoji or rare CJK character. Array.from splits by code point.
  const chars = Array.from(text);
  const start = Math.max(0, Math.min(citation.start, chars.length));
  const end = Math.max(start, Math.min(citation.end, chars.length));
  const parts = [chars.slice(0, start), chars.slice(start, end), chars.slice(end)].map((c) => c.join(""));
  if (parts[1] === citation.quote) return parts;
  const found = text.indexOf(citation.quote); // offsets from another index version: find the quote instead
  if (found < 0 || !citation.quote) return parts;
  return [text.slice(0, found), citation.quote, text.slice(found + citation.quote.length)];
}

async function showSource(citation) {
  const pre = $("source-text");
  pre.hidden = false;
  pre.textContent = "…";
  try {
    const response = await fetch(`/v1/sources/${encodeURIComponent(citation.doc_id)}`, { headers: authHeaders() });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error?.message || response.statusText);
    const [before, quoted, after] = splitAt(data.text, citation);
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
  const send = $("send");
  send.textContent = busy ? t("stop") : t("send");
  send.classList.toggle("stop", busy);
  send.type = busy ? "button" : "submit";
}

async function ask(question) {
  $("welcome").hidden = true;
  const conversation = $("conversation");
  conversation.append(el("li", { class: "msg user", text: question }));
  const item = el("li", { class: "msg assistant pending" }, el("div", { class: "text", text: t("thinking") }));
  conversation.append(item);
  item.scrollIntoView({ block: "end" });

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
    item.classList.remove("pending");
    const message = error.name === "AbortError" ? t("stopped") : t("failed") + error.message;
    item.append(el("p", { class: "error", text: message }));
  } finally {
    state.controller = null;
    setBusy(false);
  }
}

function submit() {
  const input = $("question");
  const question = input.value.trim();
  if (!question || state.controller) return;
  input.value = "";
  ask(question);
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

function start() {
  applyLanguage();
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("send").addEventListener("click", () => {
    if (state.controller) state.controller.abort();
  });
  $("question").addEventListener("keydown", (event) => {
    // Enter asks, Shift+Enter is a new line; Enter that confirms an IME composition (Chinese input) is not a send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  });
  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => {
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
