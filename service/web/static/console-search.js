// The Search tab: people by name, phone or ID number, with their declaration and pass;
// one opened shows their movements and (admins) revoke and deny-list, each after a
// confirmation step. What is shown is asked for again when that person changes.
import { api } from "./console-api.js";
import { isAdmin, site } from "./console-config.js";
import { $, confirmStep, dateTime, el } from "./console-dom.js";
import { fill, t } from "./console-i18n.js";
import { onRedraw } from "./console-tabs.js";

let lastQuery = "";
let shownPerson = null; // the id of the person open under the results
const listed = new Set(); // the ids of the people in the results
let searchTimer = null;

$("search-form").addEventListener("submit", (submit) => {
  submit.preventDefault();
  const q = $("search-q").value.trim();
  $("person").hidden = true;
  shownPerson = null;
  lastQuery = q.length < 2 ? "" : q;
  if (!lastQuery) {
    $("search-message").textContent = t("search_short");
    return;
  }
  runSearch();
});

// A pass revoked or a declaration reviewed (here, in another console or from the
// command line), a scan, a deny-list change: what the search shows of that person is
// out of date, so it is asked for again.
export function personChanged(personId) {
  if (!personId || !(listed.has(personId) || personId === shownPerson)) return;
  clearTimeout(searchTimer);
  searchTimer = setTimeout(refreshSearch, 300);
}
function refreshSearch() {
  if (lastQuery) runSearch();
  if (shownPerson !== null) showPerson(shownPerson).catch(() => {});
}

// A pass revoked because a newer declaration replaced it is not a revocation to a guard.
const passWord = (state, revokedReason) =>
  state === "revoked" && revokedReason === "superseded" ? "superseded" : state;
const statusTag = (what, status) => el("span", { class: `status ${status}` }, `${t(what)}: ${t(status)}`);

async function runSearch() {
  try {
    const found = await api(`/api/v1/people?site_id=${site.id}&q=${encodeURIComponent(lastQuery)}`);
    listed.clear();
    for (const person of found.people) listed.add(person.id);
    $("search-message").textContent = found.people.length ? "" : t("no_results");
    $("search-results").replaceChildren(
      ...found.people.map((person) =>
        el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              class: "result",
              "data-person-id": person.id,
              onclick: () => showPerson(person.id),
            },
            el("strong", {}, person.full_name),
            el(
              "span",
              { class: "muted" },
              ` · ${t(person.kind)}${person.organisation ? ` · ${person.organisation}` : ""}${person.phone_masked ? ` · ${person.phone_masked}` : ""}`,
            ),
            statusTag("declaration", person.declaration ? person.declaration.status : "none"),
            statusTag(
              "pass",
              person.pass ? passWord(person.pass.status, person.pass.revoked_reason) : "none",
            ),
            person.inside ? el("span", { class: "status inside" }, t("is_inside")) : null,
          ),
        ),
      ),
    );
  } catch (failure) {
    $("search-message").textContent = `${t("error")}: ${failure.text()}`;
  }
}

async function showPerson(personId, note = "") {
  const box = $("person");
  const again = personId === shownPerson && !box.hidden;
  const typed = again && box.querySelector(".admin-reason") ? box.querySelector(".admin-reason").value : "";
  const said = again && !note && box.querySelector(".admin-actions .row-message");
  const [detail, history] = await Promise.all([
    api(`/api/v1/people/${personId}`),
    api(`/api/v1/people/${personId}/movements`),
  ]);
  shownPerson = personId;
  const person = detail.person;
  const here = detail.current_declarations.filter((d) => d.site_id === site.id);
  const declaration = here[0];
  const declarationState = (d) => (Date.parse(d.valid_until) <= Date.now() ? "expired" : d.status);
  const adminMessage = el("p", { class: "row-message", role: "status" }, note || (said ? said.textContent : ""));
  const adminReason = el("input", {
    type: "text",
    class: "admin-reason",
    placeholder: t("reason_ph"),
    maxlength: 500,
    "aria-label": t("reason_ph"),
  });
  adminReason.value = typed;
  const adminAction = (revoke) => async () => {
    const reason = adminReason.value.trim();
    if (reason.length < 3) {
      adminMessage.textContent = t("reason_needed");
      adminReason.focus();
      return;
    }
    const names = { name: person.full_name, site: site.name };
    const confirmed = await confirmStep({
      title: fill(t(revoke ? "confirm_revoke" : "confirm_deny"), names),
      body: fill(t(revoke ? "confirm_revoke_body" : "confirm_deny_body"), names),
      reason,
      action: t(revoke ? "confirm_revoke_ok" : "confirm_deny_ok"),
    });
    if (!confirmed) {
      adminMessage.textContent = t("cancelled");
      return;
    }
    let done;
    try {
      if (revoke) {
        const answer = await api(`/api/v1/people/${personId}/revoke-passes`, {
          method: "POST",
          body: { reason },
        });
        const n = answer.revoked.length;
        done = n ? fill(t("revoked_some"), { n }) : t("revoked_none");
      } else {
        await api("/api/v1/deny-list", {
          method: "POST",
          body: { person_id: personId, site_id: site.id, reason },
        });
        done = t("deny_added");
      }
    } catch (failure) {
      adminMessage.textContent = `${t("error")}: ${failure.text()}`;
      return;
    }
    adminReason.value = "";
    await showPerson(personId, done); // the pass as it is now, not as it was
    if (lastQuery) runSearch();
  };
  box.replaceChildren(
    el("h2", {}, person.full_name),
    el(
      "dl",
      {},
      el("dt", {}, t("kind")),
      el("dd", {}, t(person.kind)),
      el("dt", {}, t("organisation")),
      el("dd", {}, person.organisation || "—"),
      el("dt", {}, t("declaration")),
      el(
        "dd",
        { class: "declaration-status" },
        declaration
          ? `${t(declarationState(declaration))} (${dateTime(declaration.submitted_at)})`
          : t("none"),
      ),
      el("dt", {}, t("pass")),
      el(
        "dd",
        { class: "pass-status" },
        declaration && declaration.pass
          ? t(passWord(declaration.pass.state, declaration.pass.revoked_reason))
          : t("none"),
      ),
    ),
    el("h3", {}, t("movements")),
    el(
      "table",
      { class: "list movements" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", {}, t("entered")),
          el("th", {}, t("gate")),
          el("th", {}, t("exited")),
          el("th", {}, t("gate")),
        ),
      ),
      el(
        "tbody",
        {},
        ...history.movements.map((m) =>
          el(
            "tr",
            {},
            el("td", {}, dateTime(m.entered_at)),
            el("td", {}, m.entry_gate || ""),
            el("td", {}, m.exited_at ? dateTime(m.exited_at) : t("still_inside")),
            el("td", {}, m.exit_gate || ""),
          ),
        ),
      ),
    ),
    ...(isAdmin ? [adminActions()] : []),
  );
  box.dataset.personId = personId;
  box.hidden = false;

  function adminActions() {
    return el(
      "div",
      { class: "admin-actions" },
      adminReason,
      el("button", { type: "button", class: "danger revoke", onclick: adminAction(true) }, t("revoke")),
      el("button", { type: "button", class: "danger deny-add", onclick: adminAction(false) }, t("deny_add")),
      adminMessage,
    );
  }
}

onRedraw(() => {
  if (lastQuery) refreshSearch();
});
