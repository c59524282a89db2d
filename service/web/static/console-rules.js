// The site settings tab, first part: the site's door rules (GET/PUT
// /api/v1/sites/{id}/door-rules) as a form. An admin saves them; an auditor reads them.
// A refusal's words for each field (vi and en, from the server) show beside that field.
import { ApiFailure, api } from "./console-api.js";
import { isAdmin, site } from "./console-config.js";
import { $, el, say } from "./console-dom.js";
import { t } from "./console-i18n.js";
import { onRedraw, onTab } from "./console-tabs.js";

// Each rule the form shows: its path in the rules, and how it is typed. An empty
// optional one is sent as null (the rule is off).
const FIELDS = [
  { name: "anti_passback", choices: { strict: "ap_strict", warn: "ap_warn" } },
  { name: "auto_checkout.at", text: "23:00", optional: true },
  { name: "auto_checkout.after_minutes", number: true, optional: true },
  { name: "auto_checkout.expected_departure", flag: true },
  { name: "silent_after_minutes", number: true },
  { name: "trace_estimated_end", choices: { closure: "end_closure", last_evidence: "end_last_evidence" } },
  { name: "static_pass", choices: { allow: "sp_allow", guard_check: "sp_guard_check", deny: "sp_deny" } },
  { name: "override_window_s", number: true },
  { name: "shared_pass_window_s", number: true },
  { name: "clock_skew_s", number: true },
  { name: "max_replay_age_h", number: true },
  { name: "max_offline_age_s", number: true },
];

let rules = null; // as the server last said
let refused = null; // the last refusal, shown again in a new language
let said = null; // [word key, ok] of the last message

const valueAt = (object, path) => path.split(".").reduce((o, part) => (o == null ? o : o[part]), object);
function setAt(object, path, value) {
  const parts = path.split(".");
  const last = parts.pop();
  const parent = parts.reduce((o, part) => (o[part] = o[part] && typeof o[part] === "object" ? o[part] : {}), object);
  parent[last] = value;
}

// What the form holds now, as the rules to send: the stored ones with the form's
// values over them (a rule this form does not show is kept as it is).
function typed(formNode) {
  const body = structuredClone(rules || {});
  for (const field of FIELDS) {
    const input = formNode.elements[field.name];
    let value;
    if (field.flag) value = input.checked;
    else if (field.choices) value = input.value;
    else {
      const raw = input.value.trim();
      if (raw === "" && field.optional) value = null;
      // A whole number goes as a number; anything else as typed, for the server to name.
      else if (field.number) value = /^-?\d+$/.test(raw) ? Number(raw) : raw || null;
      else value = raw;
    }
    setAt(body, field.name, value);
  }
  return body;
}

function input(field, value) {
  const attrs = { name: field.name, id: `rule-${field.name}`, disabled: !isAdmin, "aria-describedby": `rule-error-${field.name}` };
  if (field.flag) return el("input", { ...attrs, type: "checkbox", checked: Boolean(value) });
  if (field.choices) {
    return el(
      "select",
      attrs,
      ...Object.entries(field.choices).map(([choice, word]) => el("option", { value: choice, selected: choice === value }, t(word))),
    );
  }
  const node = el("input", {
    ...attrs,
    type: "text",
    inputmode: field.number ? "numeric" : "text",
    maxlength: 12,
    placeholder: field.optional ? [field.text, `(${t("empty_is_off")})`].filter(Boolean).join(" ") : "",
    autocomplete: "off",
  });
  node.value = value === null || value === undefined ? "" : String(value);
  return node;
}

function render(values) {
  const box = $("door-rules");
  if (!box) return;
  const message = el("p", { class: "row-message", id: "rules-message", role: "status" });
  const formNode = el(
    "form",
    { id: "rules-form", class: "desk-form rules-form", novalidate: true },
    el("h2", {}, t("rules_heading")),
    ...FIELDS.map((field) =>
      el(
        "div",
        { class: "rule-field", "data-field": field.name },
        el("label", { for: `rule-${field.name}` }, t(`rule_${field.name}`)),
        " ",
        input(field, valueAt(values, field.name)),
        el("span", { class: "field-error", id: `rule-error-${field.name}`, role: "alert" }),
      ),
    ),
    isAdmin ? el("button", { type: "submit", class: "save-rules" }, t("save")) : el("p", { class: "muted" }, t("read_only")),
    message,
  );
  formNode.addEventListener("submit", save);
  box.replaceChildren(formNode);
  if (said) say(message, t(said[0]), said[1]);
  if (refused) showRefusal(refused);
}

function showRefusal(failure) {
  const message = $("rules-message");
  const others = [];
  for (const f of failure.fields) {
    const spot = document.querySelector(`#rules-form [data-field="${CSS.escape(f.field)}"]`);
    if (!spot) {
      others.push(`${f.field}: ${ApiFailure.fieldText(f)}`);
      continue;
    }
    spot.classList.add("invalid");
    spot.querySelector(".field-error").textContent = ApiFailure.fieldText(f);
    spot.querySelector("input, select").setAttribute("aria-invalid", "true");
  }
  const head = failure.fields.length ? t("not_saved") : `${t("error")}: ${failure.said()}`;
  say(message, others.length ? `${head} (${others.join("; ")})` : head);
}

async function save(submit) {
  submit.preventDefault();
  const body = typed(submit.target);
  say($("rules-message"), ""); // what the last save said is not this one's answer
  try {
    rules = (await api(`/api/v1/sites/${site.id}/door-rules`, { method: "PUT", body })).rules;
    refused = null;
    said = ["saved", true];
    render(rules);
  } catch (failure) {
    refused = failure;
    said = null;
    render(body); // what was typed stays, with what is wrong beside it
  }
}

async function load() {
  try {
    rules = (await api(`/api/v1/sites/${site.id}/door-rules`)).rules;
    refused = null;
    said = null;
    render(rules);
  } catch (failure) {
    render({});
    say($("rules-message"), `${t("error")}: ${failure.text()}`);
  }
}

onTab("settings", load);
onRedraw(() => {
  const formNode = $("rules-form");
  if (formNode) render(typed(formNode));
});
