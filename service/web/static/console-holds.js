// The health desk's holds (Y tế): who is held at the site's doors, and why, with the
// clearance of one or of every area hold; the flagged areas, whose re-screen answer
// ({rescreened, suspended}) is shown when one is added. Health officers and admins only.
import { api } from "./console-api.js";
import { site } from "./console-config.js";
import { $, ask, dateTime, el, failInto as fail, form, say } from "./console-dom.js";
import { fill, t } from "./console-i18n.js";
import { onRedraw, onSuspension, onTab } from "./console-tabs.js";

// --- the site's suspensions -------------------------------------------------------------
let held = [];
async function loadSuspensions() {
  try {
    held = (await api(`/api/v1/sites/${site.id}/suspensions`)).suspensions;
  } catch (failure) {
    fail($("suspension-message"))(failure);
  }
  renderSuspensions();
}

async function clear(body, title) {
  const message = $("suspension-message");
  const note = $("clear-note").value.trim();
  if (!note) {
    say(message, t("clear_note_needed"));
    $("clear-note").focus();
    return;
  }
  if (!(await ask(title, t("confirm_clear_body"), note, t("clear")))) return say(message, t("cancelled"));
  try {
    const answer = await api(`/api/v1/sites/${site.id}/suspensions/clear`, { method: "POST", body: { ...body, note } });
    say(message, fill(t("cleared_n"), { n: answer.cleared.length }), true);
    $("clear-note").value = "";
    loadSuspensions();
  } catch (failure) {
    fail(message)(failure);
  }
}

function renderSuspensions() {
  $("suspension-count").textContent = held.length;
  $("clear-note").placeholder = t("clear_note_ph");
  $("clear-note").setAttribute("aria-label", t("clear_note_ph"));
  $("clear-areas").disabled = !held.some((s) => s.cause === "area_flagged");
  const rows = held.map((s) =>
    el(
      "tr",
      { "data-person-id": s.person_id, "data-cause": s.cause },
      el("td", {}, s.full_name),
      el("td", { class: "cause" }, t(`cause_${s.cause}`)),
      el("td", {}, dateTime(s.created_at)),
      el("td", {}, s.clear_after ? dateTime(s.clear_after) : "—"),
      el(
        "td",
        {},
        el(
          "button",
          {
            type: "button",
            class: "small clear-one",
            onclick: () => clear({ cause: s.cause, person_ids: [s.person_id] }, fill(t("confirm_clear"), { name: s.full_name })),
          },
          t("clear"),
        ),
      ),
    ),
  );
  $("suspensions").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, t("no_suspensions")))]));
}
$("clear-areas").addEventListener("click", () => clear({ cause: "area_flagged" }, t("confirm_clear_areas")));

// --- flagged areas ------------------------------------------------------------------------
let areas = [];
async function loadAreas() {
  try {
    areas = (await api(`/api/v1/sites/${site.id}/flagged-areas`)).flagged_areas;
  } catch (failure) {
    fail($("area-message"))(failure);
  }
  renderAreas();
}

function renderAreas() {
  $("areas").replaceChildren(
    ...areas.map((a) =>
      el(
        "tr",
        { "data-area-id": a.id },
        el("td", {}, a.name),
        el("td", {}, a.code || ""),
        el("td", {}, a.flagged_from),
        el("td", {}, a.flagged_until || t("open_ended")),
        el("td", {}, el("button", { type: "button", class: "small ghost remove-area", onclick: () => removeArea(a) }, t("remove"))),
      ),
    ),
  );
}

async function removeArea(area) {
  const message = $("area-message");
  if (!(await ask(fill(t("confirm_remove"), area), t("confirm_remove_body"), area.name, t("remove"))))
    return say(message, t("cancelled"));
  try {
    await api(`/api/v1/sites/${site.id}/flagged-areas/${area.id}`, { method: "DELETE" });
    say(message, t("area_removed"), true);
    loadAreas();
  } catch (failure) {
    fail(message)(failure);
  }
}

$("area-form").addEventListener("submit", async (submit) => {
  submit.preventDefault();
  const f = form("area-form");
  try {
    const answer = await api(`/api/v1/sites/${site.id}/flagged-areas`, {
      method: "POST",
      body: {
        name: f.name.value.trim(),
        code: f.code.value.trim() || null,
        flagged_from: f.flagged_from.value,
        flagged_until: f.flagged_until.value || null,
      },
    });
    say($("area-message"), fill(t("rescreened"), answer), true);
    $("area-form").reset();
    loadAreas();
    loadSuspensions();
  } catch (failure) {
    fail($("area-message"))(failure);
  }
});

// --- start ---------------------------------------------------------------------------------
onSuspension(() => {
  if (!$("tab-health").hidden) loadSuspensions();
});
onTab("health", () => {
  loadSuspensions();
  loadAreas();
});
onRedraw(() => {
  renderSuspensions();
  renderAreas();
});
