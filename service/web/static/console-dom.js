// Small DOM helpers. Every value from the server goes into the page as text
// (textContent, text nodes), never as HTML.
import { config, site } from "./console-config.js";
import { currentLang, t } from "./console-i18n.js";

export const $ = (id) => document.getElementById(id);

export function el(name, attrs = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(name, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const locale = () => (currentLang() === "vi" ? "vi-VN" : "en-GB");
export const clock = (iso) => new Date(iso).toLocaleTimeString(locale(), { timeZone: site.timezone, hour12: false });
export const dateTime = (iso) =>
  new Date(iso).toLocaleString(locale(), {
    timeZone: site.timezone,
    hour12: false,
    dateStyle: "short",
    timeStyle: "short",
  });
export const gateName = (id) => (id === null || id === undefined ? "" : config.gates[String(id)] || `#${id}`);

export const form = (id) => $(id).elements;

// What an action did (ok: done; else a refusal or a hint, in red), in words.
export function say(node, text, ok = false) {
  node.textContent = text;
  node.classList.toggle("ok", ok);
}
export const failInto = (node) => (failure) => say(node, `${t("error")}: ${failure.text()}`);

// --- the confirmation step before revoking, deny-listing, suspending ---------------------
export function confirmStep({ title, body, reason, action }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-body").textContent = body;
  $("confirm-reason").textContent = `${t("confirm_reason")}: ${reason}`;
  $("confirm-ok").textContent = action;
  $("confirm-cancel").textContent = t("cancel");
  dialog.returnValue = "";
  dialog.showModal();
  $("confirm-cancel").focus(); // the safe answer is the default one
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}
export const ask = (title, body, reason, action) => confirmStep({ title, body, reason, action });
$("confirm-ok").addEventListener("click", () => $("confirm").close("ok"));
$("confirm-cancel").addEventListener("click", () => $("confirm").close("cancel"));
