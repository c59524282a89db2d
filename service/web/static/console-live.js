// The Live tab: the event stream's socket (reconnected with a backoff, given up when the
// session ends), the feed of the latest scans and door actions, and what each event
// sets off: an alert, a refresh of who is inside, of a person shown in the search.
import { SIGNED_OUT_URL, api } from "./console-api.js";
import { raiseAlert, dropAlert, raisePolicyAlert, raiseSuspensionAlert } from "./console-alerts.js";
import { ALERT_WINDOW_MS, config, serverNow, site } from "./console-config.js";
import { $, clock, el, gateName } from "./console-dom.js";
import { reasonText, t, verdictLabel, warningText } from "./console-i18n.js";
import { refreshSoon } from "./console-inside.js";
import { personChanged } from "./console-search.js";
import { emitEvent, onRedraw } from "./console-tabs.js";

const FEED_ROWS = 200;
const DOOR_KINDS = new Set([
  "scan",
  "override",
  "id_check",
  "manual_exit",
  "door_correction",
  "deny_list_add",
  "deny_list_remove",
  "pass_revoked",
  "declaration_reviewed",
  "suspension",
  "suspension_cleared",
  "auto_exit",
  "presence_confirmed",
  "overstay",
]);
// The feed is closed with this code when the login behind it ends (logout, account
// disabled, password changed, session expired): reconnecting cannot help.
const SESSION_ENDED = 4401;
let lastSeq = config.after_seq;
const shown = []; // events in the feed, newest first
let retries = 0;
let socket = null;

function setLink(state) {
  const link = $("link");
  link.dataset.state = state;
  link.textContent = t(state);
}

export function connect() {
  setLink("connecting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(
    `${scheme}://${location.host}/api/v1/events/stream?site_id=${site.id}&after_seq=${lastSeq}`,
  );
  socket.addEventListener("message", (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "hello") {
      retries = 0;
      setLink("live");
    } else if (data.type !== "resync") {
      onEvent(data);
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === SESSION_ENDED) {
      setLink("signed_out");
      location.assign(SIGNED_OUT_URL);
      return;
    }
    setLink("down");
    const delay = Math.min(10000, 500 * 2 ** retries++);
    setTimeout(async () => {
      // A socket refused because the session ended would retry for ever: ask first.
      try {
        await api(`/api/v1/sites/${site.id}`);
      } catch (_) {
        /* the network is still down: try again later */
      }
      connect();
    }, delay);
  });
}

function onEvent(event) {
  if (typeof event.seq !== "number" || event.seq <= lastSeq) return; // seen already
  lastSeq = event.seq;
  emitEvent(event);
  if (!DOOR_KINDS.has(event.kind)) return; // exports, traces, purges: not the door's business
  shown.unshift(event);
  if (shown.length > FEED_ROWS) shown.pop();
  renderFeed();
  personChanged(event.person_id);
  if (happeningNow(event)) raiseAlert(event);
  if (event.kind.startsWith("suspension") && serverNow() - Date.parse(event.occurred_at) <= ALERT_WINDOW_MS)
    raiseSuspensionAlert(event);
  // Replayed when the kiosk is back, however late: the door opened when it must not have.
  if (event.offline_against_policy) raisePolicyAlert(event);
  const moves = ["scan", "override", "id_check", "manual_exit", "door_correction", "auto_exit", "presence_confirmed"];
  if (moves.includes(event.kind)) {
    if (["override", "id_check"].includes(event.kind)) dropAlert(event.detail && event.detail.overrides);
    refreshSoon();
  }
}

// A denial at the door now: not one an offline kiosk replays late (recorded long
// after it happened, or with a time nobody can trust), nor one that is old by now
// (the feed catching up after a login or a reconnect).
function happeningNow(event) {
  if (event.kind !== "scan" || event.decision !== "deny") return false;
  if (event.offline && event.clock_untrusted) return false;
  const at = Date.parse(event.occurred_at);
  const recordedLate = Date.parse(event.recorded_at || event.occurred_at) - at > ALERT_WINDOW_MS;
  return !recordedLate && serverNow() - at <= ALERT_WINDOW_MS;
}

function feedRow(event) {
  const verdict = event.decision || (["override", "id_check"].includes(event.kind) ? "allow" : null);
  const said = reasonText(event.reason, event.message_vi, event.message_en);
  const warned = warningText(event.warnings);
  const detail = event.detail || {};
  const why = detail.reason ? `: ${detail.reason === "superseded" ? t("superseded") : detail.reason}` : "";
  let label = `${t(event.kind)}${why}`;
  if (event.kind === "scan") label = warned ? `${said} (${warned})` : said;
  else if (event.kind === "override") label = `${said}${why}`; // "let in" or "let out"
  else if (event.kind === "id_check") label = said;
  else if (event.kind === "overstay")
    label = `${t(event.kind)}: ${(detail.why || []).map((w) => t(`overstay_${w}`)).join(", ")}`;
  else if (event.kind.startsWith("suspension")) label = `${t(event.kind)}: ${t(`cause_${event.reason}`)}`;
  else if (event.kind === "declaration_reviewed")
    label = `${t(event.kind)}: ${t(detail.decision === "approve" ? "cleared" : "rejected")}${detail.note ? ` (${detail.note})` : ""}`;
  const breach = event.offline_against_policy
    ? el("span", { class: "badge breach" }, `⚠ ${t("policy_breach")} (${t(event.offline_against_policy)})`)
    : null;
  return el(
    "tr",
    { class: `kind-${event.kind} ${verdict ? `verdict-${verdict}` : ""}`, "data-seq": event.seq },
    el("td", {}, clock(event.occurred_at)),
    el("td", {}, gateName(event.gate_id)),
    el("td", {}, event.name || "—"),
    el(
      "td",
      {},
      verdict ? el("span", { class: `badge ${verdict}` }, verdictLabel(verdict, event.direction)) : "",
    ),
    el("td", { class: "reason" }, label, breach ? " " : "", breach),
  );
}

export function renderFeed() {
  $("feed").replaceChildren(...shown.map(feedRow));
  $("feed-empty").hidden = shown.length > 0;
}

onRedraw(() => {
  setLink($("link").dataset.state);
  renderFeed();
});
