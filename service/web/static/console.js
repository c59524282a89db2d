// The guard console, as ES modules with no build step: this one starts the page (the
// header, the language, the tabs); each tab is its own module (console-live.js,
// console-inside.js, console-search.js, console-kiosks.js, console-chart.js; the desk's
// console-review.js, console-health.js, console-holds.js and the admin's
// console-rules.js, console-webhook.js, which the page loads for the roles that use
// them), over shared ones: console-i18n.js (every word), console-api.js,
// console-dom.js, console-tabs.js, console-config.js.
import { loadSecurityAlerts } from "./console-alerts.js";
import { config, atTheDoor, isAdmin, site } from "./console-config.js";
import { $, el } from "./console-dom.js";
import { currentLang, setLang, t } from "./console-i18n.js";
import { loadInside } from "./console-inside.js";
import { KIOSK_POLL_MS, loadKiosks } from "./console-kiosks.js";
import { connect, renderFeed } from "./console-live.js";
import { redrawAll, startTabs } from "./console-tabs.js";
import "./console-chart.js";
import "./console-search.js";

const SECURITY_POLL_MS = 15000; // admins: login bursts (GET /api/v1/security/alerts)
const INSIDE_POLL_MS = 30000;

function applyWords() {
  document.documentElement.lang = currentLang();
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  $("lang-switch").textContent = t("switch_lang");
  $("search-q").placeholder = t("search_ph");
  document.title = `${t("title")} · ${site.name}`;
}
$("lang-switch").addEventListener("click", () => {
  setLang(currentLang() === "vi" ? "en" : "vi");
  applyWords();
  redrawAll();
});

startTabs();
$("site-name").textContent = site.name;
$("user").textContent = config.user.username;
if (config.sites.length > 1) {
  const picker = $("site-picker");
  picker.replaceChildren(...config.sites.map((s) => el("option", { value: s.id, selected: s.id === site.id }, s.name)));
  picker.hidden = false;
  picker.addEventListener("change", () => location.assign(`/console?site_id=${picker.value}`));
}
$("sound").checked = localStorage.getItem("cg_sound") === "1";
$("sound").addEventListener("change", () => localStorage.setItem("cg_sound", $("sound").checked ? "1" : "0"));
applyWords();
renderFeed();
connect();
if (atTheDoor) {
  loadInside().catch(() => {});
  loadKiosks();
  setInterval(loadKiosks, KIOSK_POLL_MS);
  setInterval(() => loadInside().catch(() => {}), INSIDE_POLL_MS);
}
if (isAdmin) {
  loadSecurityAlerts();
  setInterval(loadSecurityAlerts, SECURITY_POLL_MS);
}
