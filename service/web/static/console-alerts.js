// The alerts above the tabs: a denial at the door now (with the guard's override or
// one-tap ID check), an offline opening against the gate's policy, a hold set or lifted
// by the health desk, and (admins) bursts of failed logins. Kiosk alerts: console-kiosks.js.
import { api } from "./console-api.js";
import { mayOverride } from "./console-config.js";
import { $, clock, el, gateName } from "./console-dom.js";
import { reasonText, t } from "./console-i18n.js";
import { onRedraw } from "./console-tabs.js";

const alerts = new Map(); // event_id or kiosk-N -> {node, build}

function beep() {
  if (!$("sound").checked) return;
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.4);
  } catch (_) {
    /* no sound device: the red banner still shows */
  }
}

export function raise(key, build) {
  if (alerts.has(key)) return;
  const node = build();
  alerts.set(key, { node, build });
  $("alerts").prepend(node);
  beep();
}

export function dropAlert(key) {
  const entry = alerts.get(key);
  if (entry) entry.node.remove();
  alerts.delete(key);
}

export const raiseAlert = (event) => raise(event.event_id, () => denyAlert(event));

function denyAlert(event) {
  const reasonInput = el("input", {
    type: "text",
    class: "override-reason",
    placeholder: t("reason_ph"),
    maxlength: 500,
    "aria-label": t("reason_ph"),
  });
  const message = el("span", { class: "alert-message", role: "alert" });
  // A printed pass at a guard_check site: the papers seen, one tap lets them through.
  const idCheck = async () => {
    try {
      await api("/api/v1/id-checks", { method: "POST", body: { event_id: event.event_id } });
      dropAlert(event.event_id);
    } catch (failure) {
      message.textContent = `${t("override_refused")}: ${failure.text()}`;
      message.dataset.code = failure.code;
    }
  };
  const checkingId = event.reason === "guard_check" && event.person_id && mayOverride;
  const allow = async () => {
    const reason = reasonInput.value.trim();
    if (reason.length < 3) {
      message.textContent = t("reason_needed");
      reasonInput.focus();
      return;
    }
    try {
      await api("/api/v1/overrides", { method: "POST", body: { event_id: event.event_id, reason } });
      dropAlert(event.event_id);
    } catch (failure) {
      // Why the server refused (too late, admin only, already through): in words.
      message.textContent = `${t("override_refused")}: ${failure.text()}`;
      message.dataset.code = failure.code;
    }
  };
  return el(
    "div",
    { class: "alert", "data-event-id": event.event_id },
    el(
      "div",
      { class: "alert-head" },
      el("strong", {}, `${t("denied_at")}: ${event.name || t("nobody")}`),
      el("span", {}, ` · ${gateName(event.gate_id)} · ${clock(event.occurred_at)}`),
    ),
    el("div", { class: "alert-reason" }, reasonText(event.reason, event.message_vi, event.message_en)),
    el(
      "div",
      { class: "alert-actions" },
      checkingId
        ? el("button", { type: "button", class: "id-checked", onclick: idCheck }, t("id_checked_button"))
        : null,
      event.person_id && mayOverride && !checkingId ? reasonInput : null,
      event.person_id && mayOverride && !checkingId
        ? el(
            "button",
            { type: "button", class: "allow-once", onclick: allow },
            t(event.direction === "out" ? "let_out_once" : "allow_once"),
          )
        : null,
      el(
        "button",
        { type: "button", class: "dismiss ghost", onclick: () => dropAlert(event.event_id) },
        t("dismiss"),
      ),
      message,
    ),
  );
}

// An alert that only informs: a heading, perhaps a reason, and Dismiss.
export function noticeAlert(attrs, [strong, rest], reason, dismiss) {
  return el(
    "div",
    attrs,
    el("div", { class: "alert-head" }, el("strong", {}, strong), el("span", {}, rest)),
    reason === null ? null : el("div", { class: "alert-reason" }, ...[reason].flat()),
    el("div", { class: "alert-actions" }, el("button", { type: "button", class: "dismiss ghost", onclick: dismiss }, t("dismiss"))),
  );
}

export function raisePolicyAlert(event) {
  const key = `policy-${event.event_id}`;
  raise(key, () =>
    noticeAlert(
      { class: "alert policy-alert", "data-event-id": event.event_id, role: "alert" },
      [`⚠ ${t("policy_breach")}: ${event.name || t("nobody")}`, ` · ${gateName(event.gate_id)} · ${clock(event.occurred_at)}`],
      t(event.offline_against_policy),
      () => dropAlert(key),
    ),
  );
}

// Held at the door (or let go) by the health desk: the guard should know who, and why.
const SUSPENSION_ALERTS = 3; // the latest ones; the feed keeps every one
const suspensionAlerts = [];
export function raiseSuspensionAlert(event) {
  const key = `suspension-${event.seq}`;
  suspensionAlerts.push(key);
  while (suspensionAlerts.length > SUSPENSION_ALERTS) dropAlert(suspensionAlerts.shift());
  raise(key, () =>
    noticeAlert(
      { class: `alert suspension-alert ${event.kind}`, "data-person-id": event.person_id, role: "status" },
      [`${t(event.kind)}: ${event.name || t("nobody")}`, ` · ${clock(event.occurred_at)}`],
      [
        t(`cause_${event.reason}`),
        event.kind === "suspension" ? ` — ${reasonText(event.reason, event.message_vi, event.message_en)}` : "",
      ],
      () => dropAlert(key),
    ),
  );
}

// --- security alerts (admins) ---------------------------------------------------------
export async function loadSecurityAlerts() {
  let found;
  try {
    found = (await api("/api/v1/security/alerts")).alerts;
  } catch (_) {
    return;
  }
  for (const alert of found) {
    if (!dismissedBursts.has(`login-burst-${alert.id}`)) raiseBurstAlert(alert);
  }
}

function raiseBurstAlert(alert) {
  const key = `login-burst-${alert.id}`;
  const detail = alert.detail || {};
  const top = (detail.top_addresses || []).map((a) => `${a.address} (${a.attempts})`).join(", ");
  raise(key, () =>
    noticeAlert(
      { class: "alert security-alert", "data-alert": key },
      [t("login_burst"), ` · ${clock(alert.occurred_at)}`],
      `${detail.attempts} ${t("login_burst_detail")} ${detail.window_s} s · ` +
        `${detail.addresses} ${t("addresses")}${top ? `: ${top}` : ""}`,
      () => dismissBurst(key),
    ),
  );
}

const dismissedBursts = new Set(); // not raised again by the next poll
function dismissBurst(key) {
  dismissedBursts.add(key);
  dropAlert(key);
}

// A new language: every alert built again in it.
onRedraw(() => {
  for (const entry of alerts.values()) {
    const fresh = entry.build();
    entry.node.replaceWith(fresh);
    entry.node = fresh;
  }
});
