// The JSON API, called with the session cookie and the CSRF token; a refusal becomes an
// ApiFailure that says what went wrong in the page's language, field by field.
import { config } from "./console-config.js";
import { currentLang } from "./console-i18n.js";

export const SIGNED_OUT_URL = "/console/login?ended=1";

export class ApiFailure extends Error {
  constructor(status, code, message, words, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.words = words; // [vi, en] when the server gives both
    this.fields = fields || []; // per-field errors of a 422, each with its own words
  }
  // The server's words in the page's language, else its message.
  said() {
    return this.words ? this.words[currentLang() === "en" ? 1 : 0] : this.message;
  }
  // Why one field was refused, in the page's language.
  static fieldText(f) {
    return (currentLang() === "en" ? f.reason_en : f.reason_vi) || f.reason;
  }
  // What a person reads: what was said, and what is wrong with each field.
  text() {
    const why = this.fields.map((f) => `${f.field}: ${ApiFailure.fieldText(f)}`);
    return why.length ? `${this.said()} (${why.join("; ")})` : this.said();
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = config.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    location.assign(SIGNED_OUT_URL);
    throw new ApiFailure(401, "unauthorized", "");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = data.error || {};
    const words = error.message_vi && error.message_en ? [error.message_vi, error.message_en] : null;
    throw new ApiFailure(response.status, error.code || "error", error.message || response.statusText, words, error.fields);
  }
  return data;
}
