// The Inside tab: who is inside in three groups (inside, probably gone, checked out
// automatically today), with the guard's one-tap "seen" / "gone" and an exit by hand;
// the count against the capacity on the Live tab; the link to the printable roll call.
import { api } from "./console-api.js";
import { atTheDoor, site } from "./console-config.js";
import { $, dateTime, el } from "./console-dom.js";
import { has, t } from "./console-i18n.js";
import { onRedraw } from "./console-tabs.js";

let insideTimer = null;
let inside = null;
export function refreshSoon() {
  if (!atTheDoor) return;
  clearTimeout(insideTimer);
  insideTimer = setTimeout(loadInside, 300);
}

export async function loadInside() {
  inside = await api(`/api/v1/sites/${site.id}/presence`);
  renderInside();
}

function renderInside() {
  if (!inside) return;
  const groups = inside.groups;
  $("inside-count").textContent = inside.likely_inside;
  $("inside-count-2").textContent = inside.inside;
  $("likely-inside").textContent = inside.likely_inside;
  $("capacity").textContent = inside.capacity ?? "∞";
  $("capacity-part").hidden = inside.capacity === null;
  const full = inside.capacity !== null && inside.likely_inside >= inside.capacity;
  $("inside-count").classList.toggle("full", full);
  $("group-inside-count").textContent = groups.inside.length;
  $("group-probably-gone-count").textContent = groups.probably_gone.length;
  $("group-checked-out-count").textContent = groups.checked_out_today.length;
  $("inside").replaceChildren(...groups.inside.map(openStayRow));
  $("probably-gone").replaceChildren(...groups.probably_gone.map(openStayRow));
  $("checked-out-today").replaceChildren(
    ...groups.checked_out_today.map((person) =>
      el(
        "tr",
        { "data-person-id": person.person_id },
        el("td", {}, person.full_name),
        el("td", {}, t(person.kind)),
        el("td", {}, person.organisation || ""),
        el("td", {}, dateTime(person.entered_at)),
        el("td", {}, dateTime(person.exited_at)),
        el("td", {}, has(`rule_${person.rule}`) ? t(`rule_${person.rule}`) : ""),
      ),
    ),
  );
}

// A row of someone with an open stay: when and where they were last seen, why they
// are probably gone, and the guard's actions (seen, gone, an exit with a reason).
function openStayRow(person) {
  const exitReason = el("input", {
    type: "text",
    class: "exit-reason",
    placeholder: t("reason_ph"),
    maxlength: 500,
    "aria-label": t("reason_ph"),
  });
  const message = el("span", { class: "row-message" });
  const send = async (path, body) => {
    try {
      await api(`/api/v1/sites/${site.id}/presence/${person.person_id}/${path}`, {
        method: "POST",
        body,
      });
      refreshSoon();
    } catch (failure) {
      message.textContent = `${t("error")}: ${failure.text()}`;
    }
  };
  const recordExit = () => {
    const reason = exitReason.value.trim();
    if (reason.length < 3) {
      message.textContent = t("reason_needed");
      return;
    }
    send("exit", { reason });
  };
  const where = person.last_gate || (person.last_seen_by === "guard" ? t("by_guard") : "");
  const why = person.why.map((reason) => t(reason)).join(", ");
  return el(
    "tr",
    { "data-person-id": person.person_id, "data-group": person.group },
    el("td", {}, person.full_name),
    el("td", {}, t(person.kind)),
    el("td", {}, person.organisation || ""),
    el("td", {}, dateTime(person.entered_at)),
    el("td", {}, `${dateTime(person.last_seen_at)}${where ? ` · ${where}` : ""}${why ? ` (${why})` : ""}`),
    el(
      "td",
      { class: "actions" },
      el("button", { type: "button", class: "small seen", onclick: () => send("confirm", { status: "seen" }) }, t("seen")),
      el("button", { type: "button", class: "small ghost gone", onclick: () => send("confirm", { status: "gone" }) }, t("gone")),
      exitReason,
      el("button", { type: "button", class: "small record-exit", onclick: recordExit }, t("record_exit")),
      message,
    ),
  );
}
$("rollcall-link").href = `/console/rollcall?site_id=${site.id}`;

onRedraw(renderInside);
