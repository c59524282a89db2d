// The Kiosks tab: each kiosk's heartbeat, frame and decode rates, outbox, the age of its
// offline copy, camera and clock skew, polled; an alert when one goes silent or its
// clock goes too far off. The count of those online is on the Live tab.
import { api } from "./console-api.js";
import { site } from "./console-config.js";
import { dropAlert, noticeAlert, raise } from "./console-alerts.js";
import { $, dateTime, el } from "./console-dom.js";
import { t } from "./console-i18n.js";
import { onRedraw } from "./console-tabs.js";

export const KIOSK_POLL_MS = 5000;

let kiosks = [];
const wasOnline = new Map();
const wasOff = new Map(); // token id -> its clock was too far off at the last look
export async function loadKiosks() {
  try {
    kiosks = (await api(`/api/v1/sites/${site.id}/kiosks`)).kiosks;
  } catch (_) {
    return; // shown as it was; the link state tells the guard the network is down
  }
  for (const kiosk of kiosks) {
    if (wasOnline.get(kiosk.token_id) === true && !kiosk.online) raiseKioskAlert(kiosk);
    if (kiosk.online) dropAlert(`kiosk-${kiosk.token_id}`);
    wasOnline.set(kiosk.token_id, kiosk.online);
    // As scanner/clock.py's SKEW_LIMIT: a rotating code's window is 15 s either side.
    const skew = (kiosk.report || {}).clock_skew_ms;
    const off = kiosk.online && typeof skew === "number" && Math.abs(skew) > CLOCK_SKEW_LIMIT_MS;
    if (off && !wasOff.get(kiosk.token_id)) raiseClockAlert(kiosk, skew); // once, as it goes off
    if (!off) dropAlert(`clock-${kiosk.token_id}`);
    wasOff.set(kiosk.token_id, off);
  }
  renderKiosks();
}

const CLOCK_SKEW_LIMIT_MS = 10000;
function skewText(ms) {
  return typeof ms === "number" ? `${ms >= 0 ? "+" : "−"}${(Math.abs(ms) / 1000).toFixed(1)} s` : "—";
}
function raiseClockAlert(kiosk, skew) {
  const key = `clock-${kiosk.token_id}`;
  raise(key, () =>
    noticeAlert(
      { class: "alert clock-alert", "data-kiosk": kiosk.token_id, role: "alert" },
      [`⚠ ${t("kiosk_clock")}: ${skewText(skew)}`, ` · ${kiosk.label || `#${kiosk.token_id}`} · ${kiosk.gate_name}`],
      null,
      () => dropAlert(key),
    ),
  );
}

function raiseKioskAlert(kiosk) {
  const key = `kiosk-${kiosk.token_id}`;
  raise(key, () =>
    noticeAlert(
      { class: "alert kiosk-alert", "data-kiosk": kiosk.token_id },
      [t("kiosk_silent"), ` · ${kiosk.label || `#${kiosk.token_id}`} · ${kiosk.gate_name}`],
      null,
      () => dropAlert(key),
    ),
  );
}

// How old the kiosk's offline copy (revocations, suspensions, deny list) is now: its
// age at the last heartbeat, plus the time since (it ages while the kiosk is silent).
function copyAge(kiosk) {
  const age = (kiosk.report || {}).knowledge_age_s;
  if (age === undefined) return "—";
  if (age === null) return t("no_copy");
  const since = kiosk.last_heartbeat ? (Date.now() - Date.parse(kiosk.last_heartbeat)) / 1000 : 0;
  const s = age + Math.max(0, since);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function renderKiosks() {
  $("kiosks-online").textContent = `${kiosks.filter((k) => k.online).length} / ${kiosks.length}`;
  $("kiosks").replaceChildren(
    ...kiosks.map((kiosk) => {
      const report = kiosk.report || {};
      const attempts = report.decode_attempts || 0;
      const rate = attempts ? `${Math.round((100 * (report.decode_successes || 0)) / attempts)} %` : "—";
      return el(
        "tr",
        { class: kiosk.online ? "online" : "offline", "data-kiosk": kiosk.token_id },
        el("td", {}, kiosk.label || `#${kiosk.token_id}`),
        el("td", {}, kiosk.gate_name),
        el(
          "td",
          {},
          el(
            "span",
            { class: `badge ${kiosk.online ? "allow" : "deny"}` },
            t(kiosk.online ? "online" : "offline"),
          ),
        ),
        el("td", {}, kiosk.last_heartbeat ? dateTime(kiosk.last_heartbeat) : t("never")),
        el("td", {}, report.fps === undefined ? "—" : Number(report.fps).toFixed(1)),
        el("td", {}, rate),
        el("td", {}, report.outbox_depth ?? "—"),
        el("td", { class: "copy-age" }, copyAge(kiosk)),
        el(
          "td",
          {},
          report.camera_up === undefined ? "—" : t(report.camera_up ? "camera_up" : "camera_down"),
        ),
        el(
          "td",
          { class: Math.abs(report.clock_skew_ms || 0) > CLOCK_SKEW_LIMIT_MS ? "clock-skew deny" : "clock-skew" },
          skewText(report.clock_skew_ms),
        ),
      );
    }),
  );
}

onRedraw(renderKiosks);
