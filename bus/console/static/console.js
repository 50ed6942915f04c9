// demat-bus console: live updates from the API's event stream (/v1/events), and the
// actions the pages send to the API (dead letters, acte follow-ups) with the session's
// CSRF token. No dependency; pages work without it (only live updates and actions need it).
"use strict";

const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
const say = (text) => { const live = document.getElementById("live"); if (live) live.textContent = text; };
// the stream's event types (bus/webhooks/events.py): each frame is named by its type
const EVENT_TYPES = ["document.submitted", "document.completed", "document.error",
  "document.rejected", "document.duplicate", "document.replayed", "document.discarded",
  "document.waiting", "step.done", "dead-letter", "partner-reply"];
const LETTER_OF = { "document.replayed": "replayed", "document.discarded": "discarded" };
const LABELS = JSON.parse(document.documentElement.dataset.labels || "{}");

function api(path, body, isForm) {
  const headers = { "X-CSRF-Token": csrf() };
  if (!isForm) headers["Content-Type"] = "application/json";
  return fetch(path, { method: "POST", credentials: "same-origin", headers,
                       body: isForm ? body : JSON.stringify(body) })
    .then((r) => r.json().then((data) => ({ ok: r.ok, data })));
}

function onEvent(payload) {
  const doc = payload.document;
  const type = payload.type;
  const state = (payload.data || {}).state;
  if (!doc || !type) return;
  document.querySelectorAll(`[data-doc-id="${CSS.escape(doc)}"]`).forEach((row) => {
    const cell = row.querySelector('[data-field="state"]');
    if (state && cell) { cell.textContent = LABELS["state." + state] || state; cell.dataset.state = state; }
    const letter = LETTER_OF[type];
    const status = row.querySelector('[data-field="letter-status"]');
    if (letter && status) { status.textContent = LABELS["dlq.status_" + letter] || letter; status.dataset.status = letter; }
    row.classList.add("updated");
  });
  const page = document.querySelector("[data-live-doc]");
  if (page && page.dataset.liveDoc === doc && state) {
    const cell = page.querySelector('[data-field="state"]');
    if (cell) { cell.textContent = LABELS["state." + state] || state; cell.dataset.state = state; }
  }
  say(`${doc} : ${type}`);
}

function follow() {
  const holder = document.querySelector("[data-live-tenants]");
  if (!holder || !window.EventSource) return;
  // a page of figures is not reloaded under its reader (WCAG 3.2.5): it says that
  // events came and offers to refresh
  const notice = document.getElementById("refresh");
  let seen = 0;
  holder.dataset.liveTenants.split(",").filter(Boolean).forEach((tenant) => {
    const source = new EventSource(`/v1/events?tenant=${encodeURIComponent(tenant)}`);
    source.onopen = () => { holder.dataset.live = "open"; };
    const received = (e) => {
      try { onEvent(JSON.parse(e.data)); } catch (err) { return; }
      if (notice) {
        seen += 1;
        notice.hidden = false;
        notice.querySelector("[data-count]").textContent = String(seen);
      }
    };
    EVENT_TYPES.forEach((type) => source.addEventListener(type, received));
  });
}

function letters(form) {
  const result = form.querySelector(".result");
  form.querySelectorAll("button[data-action]").forEach((button) => {
    button.addEventListener("click", () => {
      const chosen = [...form.querySelectorAll('input[name="ids"]:checked')].map((b) => b.value);
      if (!chosen.length) { result.textContent = LABELS["dlq.select_first"] || "?"; return; }
      const action = button.dataset.action;
      const body = action === "replay"
        ? { ids: chosen, dry_run: button.dataset.dryRun === "true",
            rate: parseFloat(form.querySelector("#rate").value) || 10 }
        : { ids: chosen, reason: form.querySelector("#reason").value };
      result.textContent = "…";
      api(`/v1/dead-letters/${action}`, body).then(({ ok, data }) => {
        result.textContent = ok
          ? `${data.dry_run ? (LABELS["dlq.would"] || "") : (LABELS["dlq.done_" + action] || action)} ${data.count}`
          : `${(data.error || {}).message || "?"}`;
        result.dataset.outcome = ok ? "ok" : "error";
      });
    });
  });
}

function apiForms() {
  document.querySelectorAll("form.api-form").forEach((form) => {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const asJson = form.dataset.json === "true";
      const body = asJson ? Object.fromEntries(new FormData(form)) : new FormData(form);
      const result = form.parentElement.querySelector(".result");
      api(form.dataset.api, body, !asJson).then(({ ok, data }) => {
        result.textContent = ok ? `${LABELS["action.accepted"] || "OK"} ${data.id || ""}`
                                : `${(data.error || {}).message || "?"}`;
      });
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  follow();
  const form = document.getElementById("dlq-actions");
  if (form) letters(form);
  apiForms();
});
