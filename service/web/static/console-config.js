// What the page was rendered with (service/console/pages.py puts it in data-config):
// the site, the caller and their role, the reasons' words, the server's clock.
export const config = JSON.parse(document.body.dataset.config);
export const site = config.site;
export const role = config.user.role;
export const isAdmin = role === "admin";
// A health officer reads neither presence nor kiosks (the API refuses): not asked.
export const atTheDoor = role !== "health";
export const mayOverride = ["guard", "admin"].includes(role); // as POST /overrides

// Alerts are for denials happening now, while an override is still possible: the
// site's override window, on the server's clock (the page's may be wrong).
export const ALERT_WINDOW_MS = (config.override_window_s || 300) * 1000;
const clockOffsetMs = Date.parse(config.server_now) - Date.now();
export const serverNow = () => Date.now() + clockOffsetMs;
