// Helpers shared by the chat page (app.js) and the source document page (source.js).
"use strict";

const KEY_STORAGE = "llm-atlas.apiKey";

function authHeaders() {
  const key = localStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
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

function safeUrl(url) {
  // Source URLs come from documents: only ever link to http(s).
  try {
    const parsed = new URL(url); // relative or local paths (seed files) throw: they get a local source link
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function localSourceUrl(citation) {
  // The page that shows the cleaned document from /v1/sources, with the quote marked.
  const params = new URLSearchParams({ doc: citation.doc_id });
  if (citation.end > citation.start) {
    params.set("start", citation.start);
    params.set("end", citation.end);
  }
  return `/web/source.html?${params}`;
}

function cleanSection(section, title = "") {
  // Breadcrumbs are built from the source's markdown headings: show them without the markup, and
  // without a first heading that only repeats the document's title.
  const parts = (section || "")
    .split(" > ")
    .map((part) =>
      part
        .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // [text](url), ![alt](src)
        .replace(/`+([^`]*)`+/g, "$1")
        .replace(/(\*\*|__|~~)(.+?)\1/g, "$2")
        .replace(/(^|[^\w*])([*_])(?=\S)(.+?)(?<=\S)\2(?![\w*])/g, "$1$3")
        .replace(/^#+\s*|\s*#+$/g, "")
        .replace(/[*_]{2,}/g, "") // unpaired leftovers such as "**Title"
        .replace(/\s+/g, " ")
        .trim(),
    )
    .filter(Boolean);
  const loose = (text) => text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
  if (parts.length && title && loose(parts[0]) === loose(title)) parts.shift();
  return parts.join(" › ");
}

function locateQuote(text, citation) {
  // [start, end) of the quote in `text`, in code points (what Array.from gives), or null.
  // The server's offsets count code points; JavaScript strings count UTF-16 units, which differ
  // after any emoji or rare CJK character.
  const chars = Array.from(text);
  const { start, end, quote } = citation;
  if (Number.isInteger(start) && Number.isInteger(end) && end > start && end <= chars.length) {
    if (!quote || chars.slice(start, end).join("") === quote) return [chars, start, end];
  }
  const found = quote ? text.indexOf(quote) : -1; // offsets from another index version: find the quote instead
  if (found < 0) return [chars, null, null];
  const from = Array.from(text.slice(0, found)).length;
  return [chars, from, from + Array.from(quote).length];
}

function markedText(text, citation) {
  // The whole text as [before, quote, after]; the quote part is empty when it cannot be found.
  const [chars, start, end] = locateQuote(text, citation);
  if (start === null) return [text, "", ""];
  return [chars.slice(0, start), chars.slice(start, end), chars.slice(end)].map((c) => c.join(""));
}

function quoteInContext(text, citation, span = 320) {
  // The quote with up to `span` code points either side, cut at line ends where there are some,
  // so that the panel shows the sentence inside its passage rather than the passage alone.
  const [chars, start, end] = locateQuote(text, citation);
  if (start === null) return null;
  let from = Math.max(0, start - span);
  let to = Math.min(chars.length, end + span);
  const lineStart = chars.indexOf("\n", from);
  if (from > 0 && lineStart >= 0 && lineStart < start) from = lineStart + 1;
  const lineEnd = chars.lastIndexOf("\n", to - 1);
  if (to < chars.length && lineEnd >= end) to = lineEnd;
  const before = chars.slice(from, start).join("").replace(/^\s+/, "");
  const after = chars.slice(end, to).join("").replace(/\s+$/, "");
  return {
    before: (from > 0 ? "…" : "") + before,
    quote: chars.slice(start, end).join(""),
    after: after + (to < chars.length ? "…" : ""),
  };
}
