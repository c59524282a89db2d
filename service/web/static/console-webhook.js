// The site settings tab, second part: the site's webhook (PUT/DELETE
// /api/v1/sites/{id}/webhook, admins) and its delivery log (GET, admins and auditors),
// asked for again while the tab is open. The signing secret is shown once, as saved.
import { ApiFailure, api } from "./console-api.js";
import { isAdmin, site } from "./console-config.js";
import { $, ask, dateTime, el, say } from "./console-dom.js";
import { fill, has, t } from "./console-i18n.js";
import { onRedraw, onTab } from "./console-tabs.js";

const POLL_MS = 5000; // deliveries make no event of their own

let hook = null; // {webhook, deliveries} as the server last said
let secret = null; // from the last save, on this page only
let said = null; // [word key, ok]
let refused = null; // the last refusal of the URL
let timer = null;

const stateOf = (d) => (d.delivered_at ? "delivered" : d.next_attempt_at ? "retrying" : "given_up");
const when = (iso) => (iso ? dateTime(iso) : "—");

function deliveryRow(d) {
  const state = stateOf(d);
  return el(
    "tr",
    { "data-delivery-id": d.id, "data-type": d.type, "data-state": state },
    el("td", {}, when(d.created_at)),
    el("td", { class: "delivery-type" }, has(`wh_${d.type}`) ? t(`wh_${d.type}`) : d.type),
    el("td", { class: "delivery-state" }, el("span", { class: `badge ${state === "delivered" ? "allow" : "deny"}` }, t(state))),
    el("td", { class: "attempts" }, d.attempts),
    el("td", {}, when(d.next_attempt_at)),
    el("td", {}, when(d.delivered_at)),
    el("td", { class: "last-status" }, d.last_status ?? "—"),
    el("td", { class: "last-error" }, d.last_error || ""),
  );
}

function urlForm(current) {
  const url = el("input", {
    type: "text",
    name: "url",
    id: "webhook-url",
    maxlength: 2000,
    autocomplete: "off",
    placeholder: "https://",
    "aria-describedby": "webhook-url-error",
  });
  url.value = current;
  const error = el("span", { class: "field-error", id: "webhook-url-error", role: "alert" });
  const formNode = el(
    "form",
    { id: "webhook-form", class: "webhook-form", novalidate: true },
    el("div", { class: "rule-field", "data-field": "url" }, el("label", { for: "webhook-url" }, t("webhook_url")), " ", url, error),
    el("button", { type: "submit", class: "save-webhook" }, t("webhook_save")),
    " ",
    hook && hook.webhook ? el("button", { type: "button", class: "danger delete-webhook", onclick: remove }, t("webhook_delete")) : null,
  );
  formNode.addEventListener("submit", saveUrl);
  if (refused) {
    const mine = refused.fields.find((f) => f.field === "url");
    if (mine) {
      error.textContent = ApiFailure.fieldText(mine);
      formNode.querySelector(".rule-field").classList.add("invalid");
      url.setAttribute("aria-invalid", "true");
    }
  }
  return formNode;
}

const currentLine = () => {
  const current = hook && hook.webhook;
  return el(
    "p",
    { class: "webhook-current" },
    current ? `${t("webhook_current")}: ${current.url} (${dateTime(current.updated_at)})` : t("webhook_none"),
  );
};

function log() {
  const deliveries = (hook && hook.deliveries) || [];
  const columns = ["created_at", "delivery_type", "delivery_state", "attempts", "next_attempt_at", "delivered_at", "last_status", "last_error"];
  const rows = deliveries.length
    ? deliveries.map(deliveryRow)
    : [el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, t("no_deliveries")))];
  return el(
    "div",
    { class: "delivery-log" },
    el("h3", {}, `${t("deliveries")} (${deliveries.length})`),
    el(
      "table",
      { class: "list deliveries" },
      el("thead", {}, el("tr", {}, ...columns.map((key) => el("th", {}, t(key))))),
      el("tbody", { id: "deliveries" }, ...rows),
    ),
  );
}

function render(shownUrl) {
  const box = $("webhook");
  if (!box) return;
  const current = hook && hook.webhook;
  const message = el("p", { class: "row-message", id: "webhook-message", role: "status" });
  if (said) say(message, t(said[0]), said[1]);
  if (refused && !refused.fields.some((f) => f.field === "url")) say(message, `${t("error")}: ${refused.text()}`);
  const parts = [
    el("h2", {}, t("webhook_heading")),
    currentLine(),
    isAdmin ? urlForm(shownUrl ?? (current ? current.url : "")) : null,
    secret ? el("p", { class: "webhook-secret" }, `${t("webhook_secret")}: `, el("code", {}, secret)) : null,
    message,
    log(),
  ];
  box.replaceChildren(...parts.filter(Boolean));
}

// The URL being typed survives a poll's redraw.
const typedUrl = () => ($("webhook-url") ? $("webhook-url").value : undefined);

// Whole, or (a poll) only what the server says, so what is being typed is left alone.
async function load(poll = false) {
  try {
    hook = await api(`/api/v1/sites/${site.id}/webhook`);
  } catch (failure) {
    if (poll) return; // shown as it was
    refused = failure;
  }
  const box = $("webhook");
  if (poll && box.querySelector(".delivery-log")) {
    box.querySelector(".webhook-current").replaceWith(currentLine());
    box.querySelector(".delivery-log").replaceWith(log());
  } else render(typedUrl());
}

async function saveUrl(submit) {
  submit.preventDefault();
  const url = $("webhook-url").value.trim();
  say($("webhook-message"), "");
  try {
    const answer = await api(`/api/v1/sites/${site.id}/webhook`, { method: "PUT", body: { url } });
    secret = answer.secret;
    refused = null;
    said = ["webhook_saved", true];
    await load();
    render(); // the saved URL, not what was typed
  } catch (failure) {
    refused = failure;
    said = null;
    render(url);
  }
}

async function remove() {
  const names = { site: site.name };
  const current = hook && hook.webhook ? hook.webhook.url : "";
  if (!(await ask(fill(t("confirm_webhook_delete"), names), t("confirm_webhook_delete_body"), current, t("webhook_delete")))) {
    said = ["cancelled", false];
    return render(typedUrl());
  }
  try {
    await api(`/api/v1/sites/${site.id}/webhook`, { method: "DELETE" });
    secret = null;
    refused = null;
    said = ["webhook_deleted", true];
    await load();
    render();
  } catch (failure) {
    refused = failure;
    render(typedUrl());
  }
}

onTab("settings", () => {
  said = null;
  refused = null;
  load();
  clearInterval(timer);
  timer = setInterval(() => {
    if (!$("tab-settings").hidden) load(true);
  }, POLL_MS);
});
onRedraw(() => render(typedUrl()));
