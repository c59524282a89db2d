// The console's words, Vietnamese and English: the one catalogue of the console
// (service/console/words.json), which the page's config carries, as it carries the
// reasons for a verdict (checkin_core/reasons.py); and the page's language. Nothing
// here touches the page.
import { config } from "./console-config.js";

export const WORDS = config.words;

let lang = config.lang === "en" ? "en" : "vi";
export const currentLang = () => lang;
export function setLang(chosen) {
  lang = chosen === "en" ? "en" : "vi";
  document.cookie = `cg_lang=${lang}; path=/; max-age=31536000; samesite=strict`;
}

export const pick = (pair) => pair[lang === "vi" ? 0 : 1];
export const t = (key) => (WORDS[key] ? pick(WORDS[key]) : key);
export const has = (key) => key in WORDS;
export const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
// The server's words in the page's language: [vi, en] given apart.
export const either = (vi, en) => (lang === "en" ? en : vi);

// The words for a verdict come from the server (checkin_core/reasons.py), and fit the way
// the person went: an event carries its own; config has every code's, by direction.
const way = (direction) => (direction === "in" || direction === "out" ? direction : "");
export const reasonText = (code, vi, en) => {
  const given = lang === "vi" ? vi : en;
  if (given) return given;
  const known = config.reasons[code];
  return known ? pick(known[""]) : code || "";
};
export const verdictLabel = (verdict, direction) => pick(config.labels[verdict][way(direction)]);
export const warningText = (codes) =>
  (codes || []).map((code) => (config.warnings[code] ? pick(config.warnings[code]) : code)).join(", ");
