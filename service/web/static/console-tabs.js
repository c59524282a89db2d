// The tab switcher, and the hooks the tabs share: a tab shown, an event from the feed,
// the page redrawn in another language. Tabs a role may not use stay hidden (the API
// refuses them anyway).
import { role } from "./console-config.js";

const tabHooks = {};
const eventHooks = [];
const redrawHooks = [];

export const onTab = (name, show) => (tabHooks[name] = [...(tabHooks[name] || []), show]);
export const onEvent = (hook) => eventHooks.push(hook);
export const onRedraw = (hook) => redrawHooks.push(hook);
export const emitEvent = (event) => {
  for (const hook of eventHooks) hook(event);
};
export const redrawAll = () => {
  for (const hook of redrawHooks) hook();
};

// A hold set or lifted (here, in another console, by a test result), once per burst.
export function onSuspension(hook) {
  let timer = null;
  onEvent((event) => {
    if (!event.kind.startsWith("suspension")) return;
    clearTimeout(timer);
    timer = setTimeout(hook, 300);
  });
}

export function showTab(name) {
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === name));
  }
  for (const panel of document.querySelectorAll(".tab")) panel.hidden = panel.id !== `tab-${name}`;
  for (const show of tabHooks[name] || []) show();
}

export function startTabs() {
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  for (const button of document.querySelectorAll("[data-roles]")) {
    button.hidden = !button.dataset.roles.split(" ").includes(role);
  }
}
