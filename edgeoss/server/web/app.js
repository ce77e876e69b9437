// edgeoss web chat: no framework, no CDN; conversations live in this browser's localStorage.
"use strict";

const STORE = "edgeoss.conversations";
const CURRENT = "edgeoss.current";
const KEY = "edgeoss.apiKey";

const $ = (id) => document.getElementById(id);
let conversations = JSON.parse(localStorage.getItem(STORE) || "[]");
let current = localStorage.getItem(CURRENT);
let controller = null;

function save() {
  localStorage.setItem(STORE, JSON.stringify(conversations));
  if (current) localStorage.setItem(CURRENT, current);
}

function conversation() {
  let c = conversations.find((x) => x.id === current);
  if (!c) {
    c = { id: String(Date.now()), title: "New chat", messages: [] };
    conversations.unshift(c);
    current = c.id;
    save();
  }
  return c;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = localStorage.getItem(KEY);
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function renderList() {
  const list = $("conversations");
  list.replaceChildren();
  for (const c of conversations) {
    const li = document.createElement("li");
    if (c.id === current) li.className = "active";
    const open = document.createElement("button");
    open.className = "open";
    open.type = "button";
    open.textContent = c.title;
    open.onclick = () => { current = c.id; save(); renderAll(); };
    const del = document.createElement("button");
    del.className = "delete";
    del.type = "button";
    del.title = "Delete";
    del.textContent = "×";
    del.onclick = () => {
      conversations = conversations.filter((x) => x.id !== c.id);
      if (current === c.id) current = conversations.length ? conversations[0].id : null;
      save();
      renderAll();
    };
    li.append(open, del);
    list.append(li);
  }
}

// Model output is markdown, rendered by marked and then sanitized by DOMPurify (both
// shipped in /static/vendor). Raw HTML in the output is never markup: marked's html
// tokens are written back as escaped text, so "<b>" reads as "<b>"; DOMPurify is the
// second wall (no script, no event handlers, links only to http, https and mailto).
const escapeHtml = (text) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const markdown = new marked.Marked({
  gfm: true,
  breaks: false,
  renderer: { html: (token) => escapeHtml(token.text ?? token.raw ?? "") },
});
const SAFE_URL = /^(?:https?:|mailto:|#)/i;

function renderMarkdown(element, text) {
  const html = DOMPurify.sanitize(markdown.parse(text), {
    ALLOWED_URI_REGEXP: SAFE_URL,
    FORBID_TAGS: ["style", "form", "input", "button", "iframe", "img", "svg", "math"],
  });
  element.innerHTML = html;
  for (const link of element.querySelectorAll("a[href]")) {
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  }
  for (const pre of element.querySelectorAll("pre")) {
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy";
    copy.textContent = "Copy";
    copy.onclick = () => {
      const code = pre.querySelector("code");
      navigator.clipboard.writeText((code || pre).textContent).then(
        () => { copy.textContent = "Copied"; setTimeout(() => { copy.textContent = "Copy"; }, 1500); },
        () => { copy.textContent = "Copy failed"; },
      );
    };
    pre.prepend(copy);
  }
}

// What edgeoss's tools did (python): folded blocks beside the reasoning, text only.
function toolView(activity) {
  const details = document.createElement("details");
  details.className = "tool";
  const summary = document.createElement("summary");
  const first = (activity.output || "").trim().split("\n")[0] || "no output";
  summary.textContent = `${activity.tool}: ${first.slice(0, 80)}`;
  const code = document.createElement("pre");
  code.className = "tool-input";
  code.textContent = activity.input;
  const output = document.createElement("pre");
  output.className = "tool-output";
  output.textContent = activity.output;
  details.append(summary, code, output);
  return details;
}

function messageView(m) {
  const div = document.createElement("div");
  div.className = "message " + m.role;
  if (m.role === "user") {
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = m.content;
    div.append(bubble);
    return { div };
  }
  const details = document.createElement("details");
  details.className = "reasoning";
  const summary = document.createElement("summary");
  summary.textContent = m.reasoningSummary || "Reasoning";
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = m.reasoning || "";
  details.append(summary, text);
  details.hidden = !m.reasoning;
  const tools = document.createElement("div");
  tools.className = "tools";
  for (const activity of m.tools || []) tools.append(toolView(activity));
  const answer = document.createElement("div");
  answer.className = "answer";
  renderMarkdown(answer, m.content || "");
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = m.meta || "";
  div.append(details, tools, answer, meta);
  if (m.error) {
    const error = document.createElement("div");
    error.className = "error";
    error.textContent = m.error;
    div.append(error);
  }
  return { div, details, summary, text, tools, answer, meta };
}

function renderMessages() {
  const box = $("messages");
  box.replaceChildren();
  const c = conversations.find((x) => x.id === current);
  if (!c) return;
  for (const m of c.messages) box.append(messageView(m).div);
  box.scrollTop = box.scrollHeight;
}

function renderAll() { renderList(); renderMessages(); }

async function refreshStatus() {
  try {
    const r = await fetch("/health");
    const h = await r.json();
    $("model-name").textContent = h.model;
    $("backend").textContent = h.backend || "llama.cpp";
    $("state").textContent = h.status;
    $("demo-banner").hidden = !h.demo;
  } catch (e) {
    $("state").textContent = "unreachable";
  }
}

function busy(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
  $("prompt").disabled = on;
}

async function send(text) {
  const c = conversation();
  if (c.messages.length === 0) c.title = text.slice(0, 40);
  c.messages.push({ role: "user", content: text });
  const reply = { role: "assistant", content: "", reasoning: "", tools: [] };
  c.messages.push(reply);
  save();
  renderAll();
  const view = messageView(reply);
  $("messages").lastChild.replaceWith(view.div);

  const history = c.messages.slice(0, -1).map((m) => ({ role: m.role, content: m.content }));
  controller = new AbortController();
  busy(true);
  const started = performance.now();
  let firstReasoning = null;
  let reasoningDone = null;
  try {
    let response = await post(history, controller.signal);
    if (response.status === 401) {
      const key = window.prompt("This server needs its API key:");
      if (key) {
        localStorage.setItem(KEY, key);
        response = await post(history, controller.signal);
      }
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let usage = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        // A reply that fails once under way (a worker lost) ends with an error event, not [DONE].
        if (chunk.error) throw new Error(chunk.error.message || "the server could not finish the reply");
        if (chunk.usage) usage = chunk.usage;
        for (const choice of chunk.choices || []) {
          const delta = choice.delta || {};
          if (delta.reasoning_content) {
            if (firstReasoning === null) firstReasoning = performance.now();
            reply.reasoning += delta.reasoning_content;
            view.text.textContent = reply.reasoning;
            view.details.hidden = false;
            view.summary.textContent = "Reasoning…";
          }
          if (delta.content) {
            if (firstReasoning !== null && reasoningDone === null) {
              reasoningDone = performance.now();
              reply.reasoningSummary = `Reasoned for ${((reasoningDone - firstReasoning) / 1000).toFixed(1)} s`;
              view.summary.textContent = reply.reasoningSummary;
            }
            reply.content += delta.content;
            renderMarkdown(view.answer, reply.content);
          }
          for (const activity of (delta.edgeoss && delta.edgeoss.tool_activity) || []) {
            reply.tools.push(activity);
            view.tools.append(toolView(activity));
          }
          if (choice.finish_reason && choice.finish_reason !== "stop") {
            reply.meta = "finished: " + choice.finish_reason;
          }
        }
        $("messages").scrollTop = $("messages").scrollHeight;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    if (usage) {
      const rate = usage.completion_tokens / seconds;
      reply.meta = `${usage.completion_tokens} tokens, ${rate.toFixed(1)} tokens/s` + (reply.meta ? "; " + reply.meta : "");
    }
  } catch (e) {
    if (e.name === "AbortError") reply.meta = "stopped";
    else reply.error = "Error: " + e.message;
  } finally {
    if (firstReasoning !== null && !reply.reasoningSummary) reply.reasoningSummary = "Reasoning";
    controller = null;
    busy(false);
    save();
    renderMessages();
    $("prompt").focus();
  }
}

function post(messages, signal) {
  return fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers(),
    signal,
    body: JSON.stringify({
      messages,
      stream: true,
      stream_options: { include_usage: true },
      reasoning_effort: $("effort").value,
    }),
  });
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("new-chat").addEventListener("click", () => { current = null; conversation(); renderAll(); });

renderAll();
refreshStatus();
setInterval(refreshStatus, 5000);
