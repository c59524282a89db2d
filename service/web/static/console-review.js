// The review desk (Xét duyệt): declarations of the site waiting for review, oldest
// first, with the answers that sent them there; approve or reject with a note. An
// approval shows the new pass (QR and printable page) to the officer. Health officers
// and admins only (the page loads this file for them; the API decides anyway).
import { api } from "./console-api.js";
import { site } from "./console-config.js";
import { $, confirmStep, dateTime, el, failInto, say } from "./console-dom.js";
import { currentLang, fill, t } from "./console-i18n.js";
import { onEvent, onRedraw, onTab } from "./console-tabs.js";

const POLL_MS = 15000; // new declarations make no event: the queue is asked again

let queue = [];
const decided = []; // what this console decided, newest first, with the answer
let timer = null;
const typed = new Map(); // notes carried over a redraw

async function load() {
  try {
    queue = (await api(`/api/v1/sites/${site.id}/reviews`)).declarations;
    $("review-message").textContent = "";
  } catch (failure) {
    failInto($("review-message"))(failure);
  }
  render();
}

// Each waiting one keeps its node across reloads (the poll, another console's
// decision), so a note being typed and a message shown stay; a new language redraws.
const nodes = new Map();
function render(redraw = false) {
  $("review-count").textContent = queue.length;
  for (const [id, node] of nodes) {
    if (redraw || !queue.some((d) => d.id === id)) nodes.delete(id);
    if (redraw) typed.set(id, node.querySelector("textarea").value);
  }
  for (const d of queue) if (!nodes.has(d.id)) nodes.set(d.id, queueItem(d));
  $("reviews").replaceChildren(...decided.map(decidedItem), ...queue.map((d) => nodes.get(d.id)));
  if (!queue.length && !$("review-message").textContent) $("review-message").textContent = t("review_empty");
}

const answerLines = (answers) => {
  const a = answers || {};
  const symptoms = (a.symptoms || []).map((s) => t(s)).join(", ") || t("no_symptoms");
  const test = a.last_test ? `${t(a.last_test.kind)} · ${t(a.last_test.result)} · ${a.last_test.taken_at}` : "—";
  return [
    [t("symptoms"), symptoms, (a.symptoms || []).length > 0],
    [t("contact_f0_q"), t(a.contact_f0 ? "yes" : "no"), a.contact_f0],
    [t("contact_f1_q"), t(a.contact_f1 ? "yes" : "no"), a.contact_f1],
    [t("travel"), (a.travel_areas || []).join(", ") || "—", (a.travel_areas || []).length > 0],
    [t("last_test"), test, false],
  ];
};

function queueItem(d) {
  const note = el("textarea", { class: "review-note", rows: 2, maxlength: 300, "aria-label": t("note_ph") });
  note.placeholder = t("note_ph");
  note.value = typed.get(d.id) || "";
  typed.delete(d.id);
  const message = el("p", { class: "row-message", role: "status" });
  const decide = (decision) => async () => {
    const names = { name: d.full_name, site: site.name };
    const text = note.value.trim();
    const ok = await confirmStep({
      title: fill(t(`confirm_${decision}`), names),
      body: fill(t(`confirm_${decision}_body`), names),
      reason: text || t("no_note"),
      action: t(decision),
    });
    if (!ok) {
      say(message, t("cancelled"));
      return;
    }
    try {
      const answer = await api(`/api/v1/declarations/${d.id}/review`, {
        method: "POST",
        body: { decision, note: text || null },
      });
      decided.unshift({ declaration: d, answer, note: text });
      queue = queue.filter((q) => q.id !== d.id);
      render();
    } catch (failure) {
      failInto(message)(failure);
    }
  };
  return el(
    "li",
    { class: "review", "data-declaration-id": d.id },
    head(d),
    el(
      "div",
      { class: "review-body" },
      el("h3", {}, t("why_review")),
      el(
        "ul",
        { class: "review-reasons" },
        ...d.reasons.map((r) => el("li", { "data-code": r.code }, currentLang() === "en" ? r.message_en : r.message_vi)),
      ),
      el("h3", {}, t("answers")),
      el(
        "dl",
        { class: "review-answers" },
        ...answerLines(d.answers).flatMap(([label, value, flagged]) => [
          el("dt", {}, label),
          el("dd", { class: flagged ? "flagged" : "" }, value),
        ]),
      ),
    ),
    el(
      "div",
      { class: "review-actions" },
      note,
      el("button", { type: "button", class: "approve", onclick: decide("approve") }, t("approve")),
      el("button", { type: "button", class: "danger reject", onclick: decide("reject") }, t("reject")),
      message,
    ),
  );
}

function head(d) {
  return el(
    "div",
    { class: "review-head" },
    el("strong", {}, d.full_name),
    el("span", { class: "muted" }, ` · ${t(d.kind)}${d.organisation ? ` · ${d.organisation}` : ""}`),
    d.identity_check ? el("span", { class: "status review" }, t("identity_check")) : null,
    el(
      "span",
      { class: "muted when" },
      ` · ${t("submitted")} ${dateTime(d.submitted_at)} · ${t("review_until")} ${dateTime(d.valid_until)}`,
    ),
  );
}

function decidedItem({ declaration, answer, note }) {
  const pass = answer.pass;
  const approved = answer.status === "cleared";
  const said = approved ? (pass ? "approved" : "approved_no_pass") : "rejected_done";
  return el(
    "li",
    { class: `review decided ${answer.status}`, "data-declaration-id": declaration.id },
    head(declaration),
    el("p", { class: `decision ${answer.status}`, role: "status" }, t(said), note ? ` (${note})` : ""),
    pass
      ? el(
          "div",
          { class: "issued-pass" },
          el("img", { class: "qr", src: pass.qr_svg_url, alt: t("pass"), width: 160, height: 160 }),
          el(
            "p",
            {},
            el("a", { href: pass.print_url, target: "_blank", rel: "noopener", class: "print-pass" }, t("print_pass")),
            " · ",
            el("a", { href: pass.qr_png_url, download: `pass-${pass.id}.png` }, t("pass_png")),
          ),
        )
      : null,
  );
}

$("review-refresh").addEventListener("click", load);
onTab("review", () => {
  load();
  clearInterval(timer);
  timer = setInterval(() => {
    if (!$("tab-review").hidden) load();
  }, POLL_MS);
});
// Decided elsewhere (another console, the API): not waiting any more.
onEvent((event) => {
  if (event.kind === "declaration_reviewed" && !$("tab-review").hidden) load();
});
onRedraw(() => render(true));
