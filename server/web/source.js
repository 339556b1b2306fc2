// A cleaned source document from /v1/sources/{doc_id}, for documents without a web page of their own
// (seed files): the cited span (?start=&end=, code point offsets) is marked and scrolled into view.
"use strict";

async function showDocument() {
  const params = new URLSearchParams(location.search);
  const docId = params.get("doc") || "";
  const title = document.getElementById("doc-title");
  const pre = document.getElementById("doc-text");
  const error = document.getElementById("doc-error");
  const lang = localStorage.getItem("llm-atlas.lang") || ((navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en");
  const zh = lang === "zh"; // the chat page's language choice
  if (zh) {
    document.documentElement.lang = "zh-CN";
    document.getElementById("doc-kind").textContent = "来源文档";
  }
  try {
    const response = await fetch(`/v1/sources/${encodeURIComponent(docId)}`, { headers: authHeaders() });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error?.message || response.statusText);
    document.title = `${data.title} · llm-atlas`;
    title.textContent = data.title;
    if (data.language === "zh") document.documentElement.lang = "zh-CN";
    const href = safeUrl(data.url);
    const meta = document.getElementById("doc-meta");
    meta.append(href ? el("a", { href, rel: "noopener noreferrer", text: href }) : data.url || "", ` · ${data.language}`);
    const start = Number.parseInt(params.get("start"), 10);
    const end = Number.parseInt(params.get("end"), 10);
    if (Number.isInteger(start) && Number.isInteger(end) && end > start) {
      const [before, quoted, after] = markedText(data.text, { start, end, quote: null });
      const mark = el("mark", { text: quoted });
      pre.replaceChildren(before, mark, after);
      mark.scrollIntoView({ block: "center" });
    } else {
      pre.textContent = data.text;
    }
  } catch (failure) {
    title.textContent = docId;
    error.hidden = false;
    error.textContent = failure.message;
  }
}

showDocument();
