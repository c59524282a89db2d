// The health desk (Y tế): record an official test or a confirmed case for a person
// found with the people search; a case's contacts with their overlap, suspended by
// choice or all (F2 listed on request); the site's suspensions with their clearance;
// flagged areas, whose re-screen answer is shown. Health officers and admins only.
import { api } from "./console-api.js";
import { site } from "./console-config.js";
import { $, ask, clock, dateTime, el, failInto as fail, form, say } from "./console-dom.js";
import { fill, t } from "./console-i18n.js";
import { onRedraw, onSuspension, onTab } from "./console-tabs.js";

// --- finding the person, with the people search ------------------------------------
const chosen = {}; // form name -> {id, full_name}
function picker(box) {
  const name = box.dataset.for;
  const input = el("input", { type: "search", minlength: 2, maxlength: 100, class: "pick-q", "aria-label": t("find_person") });
  input.placeholder = t("find_person");
  const results = el("ul", { class: "results pick-results" });
  const shown = el("p", { class: "pick-chosen", role: "status" });
  if (chosen[name]) shown.textContent = `${t("chosen")}: ${chosen[name].full_name}`;
  const find = async () => {
    const q = input.value.trim();
    if (q.length < 2) return;
    try {
      const found = await api(`/api/v1/people?site_id=${site.id}&q=${encodeURIComponent(q)}`);
      results.replaceChildren(
        ...found.people.map((p) =>
          el(
            "li",
            {},
            el(
              "button",
              { type: "button", class: "result", "data-person-id": p.id, onclick: () => choose(p) },
              el("strong", {}, p.full_name),
              el("span", { class: "muted" }, ` · ${t(p.kind)}${p.phone_masked ? ` · ${p.phone_masked}` : ""}`),
            ),
          ),
        ),
      );
      if (!found.people.length) results.replaceChildren(el("li", { class: "muted" }, t("no_results")));
    } catch (failure) {
      fail(shown)(failure);
    }
  };
  const choose = (p) => {
    chosen[name] = p;
    results.replaceChildren();
    shown.textContent = `${t("chosen")}: ${p.full_name}`;
  };
  input.addEventListener("keydown", (key) => {
    if (key.key === "Enter") {
      key.preventDefault();
      find();
    }
  });
  box.replaceChildren(
    el("div", { class: "pick-row" }, input, el("button", { type: "button", class: "small", onclick: find }, t("find"))),
    results,
    shown,
  );
}
document.querySelectorAll(".person-pick").forEach(picker);

// Times are typed and shown on the site's clock, whatever the laptop's zone says.
const wall = new Intl.DateTimeFormat("en-CA", {
  timeZone: site.timezone,
  hourCycle: "h23",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
});
const siteNow = () => {
  const v = Object.fromEntries(wall.formatToParts(new Date()).map((p) => [p.type, p.value]));
  return `${v.year}-${v.month}-${v.day}T${v.hour}:${v.minute}`;
};
// "YYYY-MM-DDTHH:MM" on the site's clock -> the instant (the zone's offset then).
const fromSiteTime = (text) => {
  const asUtc = Date.parse(`${text}:00Z`);
  const v = Object.fromEntries(wall.formatToParts(new Date(asUtc)).map((p) => [p.type, p.value]));
  const offset = Date.parse(`${v.year}-${v.month}-${v.day}T${v.hour}:${v.minute}:00Z`) - asUtc;
  return new Date(asUtc - offset).toISOString();
};

// --- an official test ------------------------------------------------------------------
$("test-form").addEventListener("submit", async (submit) => {
  submit.preventDefault();
  const message = $("test-form").querySelector(".row-message");
  const who = chosen.test;
  if (!who) return say(message, t("choose_person"));
  const f = form("test-form");
  try {
    const answer = await api("/api/v1/tests", {
      method: "POST",
      body: {
        person_id: who.id,
        kind: f.kind.value,
        result: f.result.value,
        taken_at: fromSiteTime(f.taken_at.value),
        source: f.source.value.trim(),
      },
    });
    const parts = [fill(t("test_recorded"), { name: who.full_name })];
    if (answer.cleared.length) parts.push(fill(t("test_cleared"), { n: answer.cleared.length }));
    if (answer.cases.length) parts.push(t("test_case"));
    say(message, parts.join(" "), true);
    if (answer.cases.length) showCase(answer.cases[0].id);
  } catch (failure) {
    fail(message)(failure);
  }
});

// --- a case and its contacts -------------------------------------------------------------
$("case-form").addEventListener("submit", async (submit) => {
  submit.preventDefault();
  const message = $("case-form").querySelector(".row-message");
  const who = chosen.case;
  if (!who) return say(message, t("choose_person"));
  const f = form("case-form");
  const names = { name: who.full_name };
  if (!(await ask(fill(t("confirm_case"), names), t("confirm_case_body"), f.note.value || "—", t("record_case"))))
    return say(message, t("cancelled"));
  try {
    const answer = await api("/api/v1/cases", {
      method: "POST",
      body: { person_id: who.id, onset_on: f.onset_on.value, note: f.note.value.trim() },
    });
    say(message, fill(t("case_of"), { id: answer.id, name: who.full_name }), true);
    await showCase(answer.id);
  } catch (failure) {
    fail(message)(failure);
  }
});

let shownCase = null; // {case, f2}
async function showCase(caseId, withF2 = false) {
  const found = await api(`/api/v1/cases/${caseId}`);
  const f2 = withF2 ? (await api(`/api/v1/cases/${caseId}/contacts?depth=2`)).contacts.filter((c) => c.depth === 2) : null;
  shownCase = { case: found, f2 };
  renderCase();
}

const span = (c) => `${dateTime(c.first_overlap_at)} – ${clock(c.last_overlap_at)}`;
const minutes = (c) => Number(Number(c.overlap_minutes).toFixed(1));
const gates = (c) => c.gates.map((g) => g.name || `#${g.id}`).join(", ");

function renderCase() {
  if (!shownCase) return;
  const { case: found, f2 } = shownCase;
  const box = $("case");
  // Redrawn when a hold changes: what was ticked, and said, stays.
  const ticked = new Set([...box.querySelectorAll("input.pick:checked")].map((b) => Number(b.value)));
  const said = box.querySelector(".case-actions .row-message");
  const message = el("p", { class: `row-message${said && said.classList.contains("ok") ? " ok" : ""}`, role: "status" });
  if (said && box.dataset.caseId === String(found.id)) message.textContent = said.textContent;
  const rows = found.contacts.map((c) =>
    el(
      "tr",
      { "data-person-id": c.person_id, class: c.suspended ? "held" : "" },
      el(
        "td",
        {},
        el("input", { type: "checkbox", class: "pick", value: c.person_id, "aria-label": c.name, checked: ticked.has(c.person_id) }),
      ),
      el("td", {}, c.name),
      el("td", {}, c.phone || ""),
      el("td", {}, c.organisation || ""),
      el("td", { class: "num" }, minutes(c)),
      el("td", {}, gates(c)),
      el("td", {}, span(c)),
      el("td", { class: "state" }, el("span", { class: `status ${c.suspended ? "rejected" : "none"}` }, t(c.suspended ? "held" : "not_held"))),
    ),
  );
  const suspend = (all) => async () => {
    const ids = [...box.querySelectorAll("input.pick:checked")].map((b) => Number(b.value));
    if (!all && !ids.length) return say(message, t("select_some"));
    const n = all ? found.contacts.length : ids.length;
    const names = { n, site: site.name };
    if (!(await ask(fill(t("confirm_suspend"), names), fill(t("confirm_suspend_body"), names), fill(t("case_of"), found), t("suspend"))))
      return say(message, t("cancelled"));
    try {
      const answer = await api(`/api/v1/cases/${found.id}/contacts/suspend`, {
        method: "POST",
        body: all ? { all: true } : { person_ids: ids },
      });
      for (const b of box.querySelectorAll("input.pick")) b.checked = false; // done with
      await showCase(found.id, f2 !== null);
      say($("case").querySelector(".row-message"), fill(t("suspended_n"), { n: answer.suspended.length }), true);
    } catch (failure) {
      fail(message)(failure);
    }
  };
  const head = (...names) => el("thead", {}, el("tr", {}, ...names.map((n) => el("th", {}, n ? t(n) : ""))));
  box.replaceChildren(
    el("h2", {}, fill(t("case_of"), found)),
    el("p", { class: "muted" }, `${t("onset_on")}: ${found.onset_on} · ${t("window")}: ${dateTime(found.window.from)} – ${dateTime(found.window.to)}${found.note ? ` · ${found.note}` : ""}`),
    el("h3", {}, `${t("contacts")}: ${found.contacts.length}`),
    found.contacts.length
      ? el("table", { class: "list contacts" }, head("", "name", "phone", "organisation", "overlap", "gates", "times", "state"), el("tbody", {}, ...rows))
      : el("p", { class: "muted" }, t("no_contacts")),
    el(
      "div",
      { class: "case-actions" },
      el("button", { type: "button", class: "danger suspend-selected", onclick: suspend(false), disabled: !found.contacts.length }, t("suspend_selected")),
      el("button", { type: "button", class: "danger suspend-all", onclick: suspend(true), disabled: !found.contacts.length }, t("suspend_all")),
      el("button", { type: "button", class: "ghost show-f2", onclick: () => showCase(found.id, true).catch(fail(message)) }, t("show_f2")),
      message,
    ),
    f2 === null
      ? null
      : el(
          "div",
          { class: "f2" },
          el("h3", {}, `${t("f2")}: ${f2.length}`),
          el(
            "table",
            { class: "list contacts-f2" },
            head("name", "phone", "overlap", "gates", "times", "via"),
            el(
              "tbody",
              {},
              ...f2.map((c) =>
                el(
                  "tr",
                  { "data-person-id": c.person_id },
                  el("td", {}, c.name),
                  el("td", {}, c.phone || ""),
                  el("td", { class: "num" }, minutes(c)),
                  el("td", {}, gates(c)),
                  el("td", {}, span(c)),
                  el("td", {}, c.via.map((id) => (found.contacts.find((f) => f.person_id === id) || { name: `#${id}` }).name).join(", ")),
                ),
              ),
            ),
          ),
        ),
  );
  box.dataset.caseId = found.id;
  box.hidden = false;
}

// --- start ---------------------------------------------------------------------------------
// A suspension or clearance (here, another console, a test result): the case's
// contacts show whether each is held now.
onSuspension(() => {
  if (shownCase) showCase(shownCase.case.id, shownCase.f2 !== null).catch(() => {});
});
onTab("health", () => {
  const f = form("test-form");
  if (!f.taken_at.value) f.taken_at.value = siteNow();
  if (!form("case-form").onset_on.value) form("case-form").onset_on.value = siteNow().slice(0, 10);
});
onRedraw(() => {
  document.querySelectorAll(".person-pick").forEach(picker);
  renderCase();
});
