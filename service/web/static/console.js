// The guard console: live feed with deny alerts, who is inside, person search, kiosk
// health and the day's occupancy, drawn from the JSON API with the session cookie.
// Every value from the server goes into the page as text (textContent), never as HTML.
"use strict";

(() => {
  const config = JSON.parse(document.body.dataset.config);
  const site = config.site;
  const isAdmin = config.user.role === "admin";
  // A health officer reads neither presence nor kiosks (the API refuses): not asked.
  const atTheDoor = config.user.role !== "health";
  const mayOverride = ["guard", "admin"].includes(config.user.role); // as POST /overrides
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
  ]);
  // Alerts are for denials happening now, while an override is still possible: the
  // site's override window, on the server's clock (the page's may be wrong).
  const ALERT_WINDOW_MS = (config.override_window_s || 300) * 1000;
  const clockOffsetMs = Date.parse(config.server_now) - Date.now();
  const serverNow = () => Date.now() + clockOffsetMs;
  const KIOSK_POLL_MS = 5000;
  const SECURITY_POLL_MS = 15000; // admins: login bursts (GET /api/v1/security/alerts)
  // The feed is closed with this code when the login behind it ends (logout, account
  // disabled, password changed, session expired): reconnecting cannot help.
  const SESSION_ENDED = 4401;
  const SIGNED_OUT_URL = "/console/login?ended=1";
  let lang = config.lang === "en" ? "en" : "vi";

  const WORDS = {
    title: ["Bảng điều khiển bảo vệ", "Guard console"],
    sound: ["Âm thanh", "Sound"],
    logout: ["Đăng xuất", "Log out"],
    switch_lang: ["English", "Tiếng Việt"],
    tab_live: ["Trực tiếp", "Live"],
    tab_inside: ["Đang ở trong", "Inside"],
    tab_search: ["Tra cứu", "Search"],
    tab_kiosks: ["Máy quét", "Kiosks"],
    tab_chart: ["Lưu lượng trong ngày", "Occupancy"],
    feed: ["Lượt quét mới nhất", "Latest scans"],
    feed_empty: ["Chưa có lượt quét nào.", "No scans yet."],
    time: ["Giờ", "Time"],
    gate: ["Cổng", "Gate"],
    name: ["Họ tên", "Name"],
    verdict: ["Kết quả", "Verdict"],
    reason: ["Lý do", "Reason"],
    live: ["Trực tiếp", "Live"],
    connecting: ["Đang kết nối…", "Connecting…"],
    down: ["Mất kết nối, đang thử lại…", "Disconnected, retrying…"],
    signed_out: ["Đã hết phiên đăng nhập", "Signed out"],
    inside_now: ["Đang ở trong", "Inside now"],
    kiosks_online: ["Máy quét hoạt động", "Kiosks online"],
    kind: ["Loại", "Kind"],
    organisation: ["Đơn vị", "Organisation"],
    since: ["Vào lúc", "Since"],
    staff: ["Cán bộ", "Staff"],
    visitor: ["Khách", "Visitor"],
    rollcall: ["Điểm danh sơ tán", "Evacuation roll call"],
    record_exit: ["Ghi nhận ra", "Record exit"],
    likely_inside: ["Có lẽ đang ở trong (tính vào sức chứa)", "Likely inside (counted against the capacity)"],
    group_inside: ["Đang ở trong", "Inside"],
    group_probably_gone: ["Có thể đã ra về", "Probably gone"],
    group_checked_out_today: ["Đã tự động ghi ra hôm nay", "Checked out automatically today"],
    last_seen: ["Lần cuối thấy", "Last seen"],
    checked_out_at: ["Ghi ra lúc", "Checked out at"],
    rule: ["Quy tắc", "Rule"],
    seen: ["Vẫn thấy", "Seen"],
    gone: ["Đã về", "Gone"],
    by_guard: ["bảo vệ", "guard"],
    silent: ["lâu không quét", "silent"],
    past_departure: ["quá giờ dự kiến về", "past expected departure"],
    rule_at: ["giờ cố định", "time of day"],
    rule_after_minutes: ["quá thời lượng", "stay too long"],
    rule_expected_departure: ["giờ dự kiến về", "expected departure"],
    rule_daily_reset: ["đặt lại hằng ngày", "daily reset"],
    rule_guard_gone: ["bảo vệ xác nhận đã về", "guard confirmed gone"],
    auto_exit: ["Tự động ghi ra", "Checked out automatically"],
    presence_confirmed: ["Bảo vệ xác nhận", "Confirmed by a guard"],
    denied_at: ["Bị từ chối", "Denied"],
    allow_once: ["Cho vào một lần", "Allow once"],
    let_out_once: ["Cho ra một lần", "Let out once"],
    dismiss: ["Bỏ qua", "Dismiss"],
    reason_ph: ["Lý do (bắt buộc)", "Reason (required)"],
    reason_needed: ["Cần nhập lý do, ít nhất 3 ký tự.", "A reason of 3 characters or more is needed."],
    nobody: ["Không xác định được người", "Nobody identified"],
    policy_breach: ["Cửa đã mở khi ngoại tuyến trái chính sách", "The door opened offline against its policy"],
    gate_policy_deny: ["cổng này không cho ai vào khi mất mạng", "this gate lets nobody in while offline"],
    not_a_valid_pass: ["mã này không phải thẻ hợp lệ ở đây", "the code is no valid pass here"],
    search: ["Tìm", "Search"],
    search_ph: ["Họ tên, số điện thoại hoặc CCCD", "Name, phone or ID number"],
    search_short: ["Nhập ít nhất 2 ký tự.", "Type at least 2 characters."],
    no_results: ["Không tìm thấy ai.", "Nobody found."],
    declaration: ["Khai báo y tế", "Health declaration"],
    pass: ["Mã QR", "Pass"],
    movements: ["Lịch sử ra vào", "Movements"],
    entered: ["Vào", "In"],
    exited: ["Ra", "Out"],
    still_inside: ["Còn ở trong", "Still inside"],
    is_inside: ["Đang ở trong", "Inside"],
    revoke: ["Thu hồi mã QR", "Revoke pass"],
    deny_add: ["Đưa vào danh sách cấm", "Add to deny list"],
    done: ["Đã ghi nhận.", "Recorded."],
    kiosk: ["Máy quét", "Kiosk"],
    state: ["Trạng thái", "State"],
    online: ["Hoạt động", "Online"],
    offline: ["Mất tín hiệu", "Offline"],
    last_heartbeat: ["Tín hiệu cuối", "Last heartbeat"],
    fps: ["Khung hình/giây", "Frames/s"],
    decode_rate: ["Tỉ lệ đọc mã", "Decode rate"],
    outbox: ["Hàng chờ gửi", "Outbox"],
    offline_copy: ["Dữ liệu ngoại tuyến", "Offline copy"],
    no_copy: ["chưa có", "none"],
    camera: ["Camera", "Camera"],
    camera_down: ["Hỏng", "Down"],
    camera_up: ["Tốt", "Up"],
    never: ["Chưa từng", "Never"],
    kiosk_silent: ["Máy quét mất tín hiệu", "Kiosk went silent"],
    clock_skew: ["Lệch đồng hồ", "Clock skew"],
    id_checked_button: ["Đã kiểm tra giấy tờ — cho qua", "ID checked — let through"],
    id_check: ["Bảo vệ kiểm tra giấy tờ", "ID checked by the guard"],
    kiosk_clock: ["Đồng hồ máy quét lệch quá nhiều", "Kiosk clock too far off"],
    login_burst: ["Nhiều lượt đăng nhập sai", "Many failed logins"],
    login_burst_detail: ["lượt trong", "attempts in"],
    addresses: ["địa chỉ", "addresses"],
    entries_15: ["Lượt vào mỗi 15 phút", "Entries per 15 minutes"],
    people_inside: ["Số người ở trong", "People inside"],
    capacity: ["Sức chứa", "Capacity"],
    capacity_above: ["▲ Sức chứa {n}, cao hơn thang đo", "▲ Capacity {n}, above this scale"],
    manual_exit: ["Ghi ra thủ công", "Exit recorded by hand"],
    door_correction: ["Hiệu chỉnh", "Correction"],
    deny_list_add: ["Thêm vào danh sách cấm", "Added to the deny list"],
    deny_list_remove: ["Gỡ khỏi danh sách cấm", "Removed from the deny list"],
    pass_revoked: ["Thu hồi mã QR", "Pass revoked"],
    declaration_reviewed: ["Duyệt khai báo", "Declaration reviewed"],
    suspension: ["Tạm dừng ra vào", "Entry suspended"],
    suspension_cleared: ["Hết tạm dừng ra vào", "Suspension lifted"],
    // Why the health desk holds someone, as the console names it (the door says more).
    cause_case_confirmed: ["Ca bệnh xác định (F0)", "Confirmed case (F0)"],
    cause_contact_traced: ["Tiếp xúc với ca bệnh (F1)", "Traced contact of a case (F1)"],
    cause_area_flagged: ["Đã đến vùng có dịch", "Travelled to a flagged area"],
    cleared: ["Đạt", "Cleared"],
    review: ["Chờ duyệt", "Under review"],
    rejected: ["Không đạt", "Rejected"],
    expired: ["Hết hạn", "Expired"],
    none: ["Chưa có", "None"],
    valid: ["Còn hiệu lực", "Valid"],
    revoked: ["Đã thu hồi", "Revoked"],
    superseded: ["Đã thay bằng mã mới", "Replaced by a newer pass"],
    cancel: ["Huỷ", "Cancel"],
    confirm_reason: ["Lý do", "Reason"],
    confirm_revoke: ["Thu hồi mọi mã QR của {name}?", "Revoke every pass of {name}?"],
    confirm_revoke_body: [
      "Mã QR còn hiệu lực của người này sẽ bị từ chối ở mọi cổng cho đến khi họ khai báo lại và được cấp mã mới.",
      "Their valid passes will be refused at every gate until they declare again and get a new one.",
    ],
    confirm_revoke_ok: ["Thu hồi", "Revoke"],
    confirm_deny: ["Đưa {name} vào danh sách cấm?", "Add {name} to the deny list?"],
    confirm_deny_body: [
      "Người này sẽ bị từ chối ở mọi cổng của {site}, dù mã QR còn hiệu lực, cho đến khi quản trị viên gỡ khỏi danh sách.",
      "They will be refused at every gate of {site}, whatever their pass says, until an admin removes them.",
    ],
    confirm_deny_ok: ["Đưa vào danh sách cấm", "Add to deny list"],
    cancelled: ["Đã huỷ; không có gì thay đổi.", "Cancelled; nothing changed."],
    revoked_some: ["Đã thu hồi {n} mã QR.", "Passes revoked: {n}."],
    revoked_none: ["Không có mã QR nào còn hiệu lực để thu hồi.", "There was no valid pass to revoke."],
    deny_added: ["Đã đưa vào danh sách cấm.", "Added to the deny list."],
    not_yet_valid: ["Chưa hiệu lực", "Not yet valid"],
    error: ["Lỗi", "Error"],
    override_refused: ["Không thể cho vào", "Cannot let in"],
  };
  const pick = (pair) => pair[lang === "vi" ? 0 : 1];
  const t = (key) => (WORDS[key] ? pick(WORDS[key]) : key);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
  // The words for a verdict come from the server (checkin_core/reasons.py), and fit the way
  // the person went: an event carries its own; config has every code's, by direction.
  const way = (direction) => (direction === "in" || direction === "out" ? direction : "");
  const reasonText = (code, vi, en) => {
    const given = lang === "vi" ? vi : en;
    if (given) return given;
    const known = config.reasons[code];
    return known ? pick(known[""]) : code || "";
  };
  const verdictLabel = (verdict, direction) => pick(config.labels[verdict][way(direction)]);
  const warningText = (codes) =>
    (codes || []).map((code) => (config.warnings[code] ? pick(config.warnings[code]) : code)).join(", ");

  // --- small DOM helpers -----------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  function el(name, attrs = {}, ...children) {
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
  const clock = (iso) =>
    new Date(iso).toLocaleTimeString(lang === "vi" ? "vi-VN" : "en-GB", {
      timeZone: site.timezone,
      hour12: false,
    });
  const dateTime = (iso) =>
    new Date(iso).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB", {
      timeZone: site.timezone,
      hour12: false,
      dateStyle: "short",
      timeStyle: "short",
    });
  const gateName = (id) => (id === null || id === undefined ? "" : config.gates[String(id)] || `#${id}`);

  // --- the API ---------------------------------------------------------------------
  class ApiFailure extends Error {
    constructor(status, code, message, words, fields) {
      super(message);
      this.status = status;
      this.code = code;
      this.words = words; // [vi, en] when the server gives both
      this.fields = fields || []; // per-field errors of a 422, each with its own words
    }
    // What a person reads: the server's words in the page's language, else its message,
    // and what is wrong with each field.
    text() {
      const said = this.words ? this.words[lang === "en" ? 1 : 0] : this.message;
      const why = this.fields.map((f) => `${f.field}: ${(lang === "en" ? f.reason_en : f.reason_vi) || f.reason}`);
      return why.length ? `${said} (${why.join("; ")})` : said;
    }
  }
  async function api(path, { method = "GET", body } = {}) {
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
      throw new ApiFailure(
        response.status,
        error.code || "error",
        error.message || response.statusText,
        words,
        error.fields,
      );
    }
    return data;
  }

  // --- language --------------------------------------------------------------------
  function applyWords() {
    document.documentElement.lang = lang;
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    $("lang-switch").textContent = t("switch_lang");
    $("search-q").placeholder = t("search_ph");
    document.title = `${t("title")} · ${site.name}`;
  }
  $("lang-switch").addEventListener("click", () => {
    lang = lang === "vi" ? "en" : "vi";
    document.cookie = `cg_lang=${lang}; path=/; max-age=31536000; samesite=strict`;
    applyWords();
    redrawAll();
  });

  // --- the live feed -----------------------------------------------------------------
  let lastSeq = config.after_seq;
  const shown = []; // events in the feed, newest first
  const alerts = new Map(); // event_id or kiosk-N -> {node, build}
  let retries = 0;
  let socket = null;

  function setLink(state) {
    const link = $("link");
    link.dataset.state = state;
    link.textContent = t(state);
  }

  function connect() {
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
    for (const hook of eventHooks) hook(event);
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

  function renderFeed() {
    $("feed").replaceChildren(...shown.map(feedRow));
    $("feed-empty").hidden = shown.length > 0;
  }

  // --- deny alerts -----------------------------------------------------------------
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

  function raise(key, build) {
    if (alerts.has(key)) return;
    const node = build();
    alerts.set(key, { node, build });
    $("alerts").prepend(node);
    beep();
  }

  function dropAlert(key) {
    const entry = alerts.get(key);
    if (entry) entry.node.remove();
    alerts.delete(key);
  }

  const raiseAlert = (event) => raise(event.event_id, () => denyAlert(event));

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

  // --- who is inside -----------------------------------------------------------------
  let insideTimer = null;
  let inside = null;
  function refreshSoon() {
    if (!atTheDoor) return;
    clearTimeout(insideTimer);
    insideTimer = setTimeout(loadInside, 300);
  }

  async function loadInside() {
    inside = await api(`/api/v1/sites/${site.id}/presence`);
    renderInside();
  }

  function renderInside() {
    if (!inside) return;
    const groups = inside.groups;
    $("inside-count").textContent = inside.likely_inside;
    $("inside-count-2").textContent = inside.inside;
    $("likely-inside").textContent = inside.likely_inside;
    $("capacity").textContent = inside.capacity ?? "∞";
    $("capacity-part").hidden = inside.capacity === null;
    const full = inside.capacity !== null && inside.likely_inside >= inside.capacity;
    $("inside-count").classList.toggle("full", full);
    $("group-inside-count").textContent = groups.inside.length;
    $("group-probably-gone-count").textContent = groups.probably_gone.length;
    $("group-checked-out-count").textContent = groups.checked_out_today.length;
    $("inside").replaceChildren(...groups.inside.map(openStayRow));
    $("probably-gone").replaceChildren(...groups.probably_gone.map(openStayRow));
    $("checked-out-today").replaceChildren(
      ...groups.checked_out_today.map((person) =>
        el(
          "tr",
          { "data-person-id": person.person_id },
          el("td", {}, person.full_name),
          el("td", {}, t(person.kind)),
          el("td", {}, person.organisation || ""),
          el("td", {}, dateTime(person.entered_at)),
          el("td", {}, dateTime(person.exited_at)),
          el("td", {}, WORDS[`rule_${person.rule}`] ? t(`rule_${person.rule}`) : ""),
        ),
      ),
    );
  }

  // A row of someone with an open stay: when and where they were last seen, why they
  // are probably gone, and the guard's actions (seen, gone, an exit with a reason).
  function openStayRow(person) {
    const exitReason = el("input", {
      type: "text",
      class: "exit-reason",
      placeholder: t("reason_ph"),
      maxlength: 500,
      "aria-label": t("reason_ph"),
    });
    const message = el("span", { class: "row-message" });
    const send = async (path, body) => {
      try {
        await api(`/api/v1/sites/${site.id}/presence/${person.person_id}/${path}`, {
          method: "POST",
          body,
        });
        refreshSoon();
      } catch (failure) {
        message.textContent = `${t("error")}: ${failure.text()}`;
      }
    };
    const recordExit = () => {
      const reason = exitReason.value.trim();
      if (reason.length < 3) {
        message.textContent = t("reason_needed");
        return;
      }
      send("exit", { reason });
    };
    const where = person.last_gate || (person.last_seen_by === "guard" ? t("by_guard") : "");
    const why = person.why.map((reason) => t(reason)).join(", ");
    return el(
      "tr",
      { "data-person-id": person.person_id, "data-group": person.group },
      el("td", {}, person.full_name),
      el("td", {}, t(person.kind)),
      el("td", {}, person.organisation || ""),
      el("td", {}, dateTime(person.entered_at)),
      el("td", {}, `${dateTime(person.last_seen_at)}${where ? ` · ${where}` : ""}${why ? ` (${why})` : ""}`),
      el(
        "td",
        { class: "actions" },
        el("button", { type: "button", class: "small seen", onclick: () => send("confirm", { status: "seen" }) }, t("seen")),
        el("button", { type: "button", class: "small ghost gone", onclick: () => send("confirm", { status: "gone" }) }, t("gone")),
        exitReason,
        el("button", { type: "button", class: "small record-exit", onclick: recordExit }, t("record_exit")),
        message,
      ),
    );
  }
  $("rollcall-link").href = `/console/rollcall?site_id=${site.id}`;

  // --- person search -----------------------------------------------------------------
  let lastQuery = "";
  let shownPerson = null; // the id of the person open under the results
  const listed = new Set(); // the ids of the people in the results
  let searchTimer = null;

  $("search-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const q = $("search-q").value.trim();
    $("person").hidden = true;
    shownPerson = null;
    lastQuery = q.length < 2 ? "" : q;
    if (!lastQuery) {
      $("search-message").textContent = t("search_short");
      return;
    }
    runSearch();
  });

  // A pass revoked or a declaration reviewed (here, in another console or from the
  // command line), a scan, a deny-list change: what the search shows of that person is
  // out of date, so it is asked for again.
  function personChanged(personId) {
    if (!personId || !(listed.has(personId) || personId === shownPerson)) return;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refreshSearch, 300);
  }
  function refreshSearch() {
    if (lastQuery) runSearch();
    if (shownPerson !== null) showPerson(shownPerson).catch(() => {});
  }

  // A pass revoked because a newer declaration replaced it is not a revocation to a guard.
  const passWord = (state, revokedReason) =>
    state === "revoked" && revokedReason === "superseded" ? "superseded" : state;
  const statusTag = (what, status) => el("span", { class: `status ${status}` }, `${t(what)}: ${t(status)}`);

  async function runSearch() {
    try {
      const found = await api(`/api/v1/people?site_id=${site.id}&q=${encodeURIComponent(lastQuery)}`);
      listed.clear();
      for (const person of found.people) listed.add(person.id);
      $("search-message").textContent = found.people.length ? "" : t("no_results");
      $("search-results").replaceChildren(
        ...found.people.map((person) =>
          el(
            "li",
            {},
            el(
              "button",
              {
                type: "button",
                class: "result",
                "data-person-id": person.id,
                onclick: () => showPerson(person.id),
              },
              el("strong", {}, person.full_name),
              el(
                "span",
                { class: "muted" },
                ` · ${t(person.kind)}${person.organisation ? ` · ${person.organisation}` : ""}${person.phone_masked ? ` · ${person.phone_masked}` : ""}`,
              ),
              statusTag("declaration", person.declaration ? person.declaration.status : "none"),
              statusTag(
                "pass",
                person.pass ? passWord(person.pass.status, person.pass.revoked_reason) : "none",
              ),
              person.inside ? el("span", { class: "status inside" }, t("is_inside")) : null,
            ),
          ),
        ),
      );
    } catch (failure) {
      $("search-message").textContent = `${t("error")}: ${failure.text()}`;
    }
  }

  // --- the confirmation step before revoking or deny-listing ---------------------------
  function confirmStep({ title, body, reason, action }) {
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
  $("confirm-ok").addEventListener("click", () => $("confirm").close("ok"));
  $("confirm-cancel").addEventListener("click", () => $("confirm").close("cancel"));

  async function showPerson(personId, note = "") {
    const box = $("person");
    const again = personId === shownPerson && !box.hidden;
    const typed = again && box.querySelector(".admin-reason") ? box.querySelector(".admin-reason").value : "";
    const said = again && !note && box.querySelector(".admin-actions .row-message");
    const [detail, history] = await Promise.all([
      api(`/api/v1/people/${personId}`),
      api(`/api/v1/people/${personId}/movements`),
    ]);
    shownPerson = personId;
    const person = detail.person;
    const here = detail.current_declarations.filter((d) => d.site_id === site.id);
    const declaration = here[0];
    const declarationState = (d) => (Date.parse(d.valid_until) <= Date.now() ? "expired" : d.status);
    const adminMessage = el("p", { class: "row-message", role: "status" }, note || (said ? said.textContent : ""));
    const adminReason = el("input", {
      type: "text",
      class: "admin-reason",
      placeholder: t("reason_ph"),
      maxlength: 500,
      "aria-label": t("reason_ph"),
    });
    adminReason.value = typed;
    const adminAction = (revoke) => async () => {
      const reason = adminReason.value.trim();
      if (reason.length < 3) {
        adminMessage.textContent = t("reason_needed");
        adminReason.focus();
        return;
      }
      const names = { name: person.full_name, site: site.name };
      const confirmed = await confirmStep({
        title: fill(t(revoke ? "confirm_revoke" : "confirm_deny"), names),
        body: fill(t(revoke ? "confirm_revoke_body" : "confirm_deny_body"), names),
        reason,
        action: t(revoke ? "confirm_revoke_ok" : "confirm_deny_ok"),
      });
      if (!confirmed) {
        adminMessage.textContent = t("cancelled");
        return;
      }
      let done;
      try {
        if (revoke) {
          const answer = await api(`/api/v1/people/${personId}/revoke-passes`, {
            method: "POST",
            body: { reason },
          });
          const n = answer.revoked.length;
          done = n ? fill(t("revoked_some"), { n }) : t("revoked_none");
        } else {
          await api("/api/v1/deny-list", {
            method: "POST",
            body: { person_id: personId, site_id: site.id, reason },
          });
          done = t("deny_added");
        }
      } catch (failure) {
        adminMessage.textContent = `${t("error")}: ${failure.text()}`;
        return;
      }
      adminReason.value = "";
      await showPerson(personId, done); // the pass as it is now, not as it was
      if (lastQuery) runSearch();
    };
    box.replaceChildren(
      el("h2", {}, person.full_name),
      el(
        "dl",
        {},
        el("dt", {}, t("kind")),
        el("dd", {}, t(person.kind)),
        el("dt", {}, t("organisation")),
        el("dd", {}, person.organisation || "—"),
        el("dt", {}, t("declaration")),
        el(
          "dd",
          { class: "declaration-status" },
          declaration
            ? `${t(declarationState(declaration))} (${dateTime(declaration.submitted_at)})`
            : t("none"),
        ),
        el("dt", {}, t("pass")),
        el(
          "dd",
          { class: "pass-status" },
          declaration && declaration.pass
            ? t(passWord(declaration.pass.state, declaration.pass.revoked_reason))
            : t("none"),
        ),
      ),
      el("h3", {}, t("movements")),
      el(
        "table",
        { class: "list movements" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            el("th", {}, t("entered")),
            el("th", {}, t("gate")),
            el("th", {}, t("exited")),
            el("th", {}, t("gate")),
          ),
        ),
        el(
          "tbody",
          {},
          ...history.movements.map((m) =>
            el(
              "tr",
              {},
              el("td", {}, dateTime(m.entered_at)),
              el("td", {}, m.entry_gate || ""),
              el("td", {}, m.exited_at ? dateTime(m.exited_at) : t("still_inside")),
              el("td", {}, m.exit_gate || ""),
            ),
          ),
        ),
      ),
      ...(isAdmin ? [adminActions()] : []),
    );
    box.dataset.personId = personId;
    box.hidden = false;

    function adminActions() {
      return el(
        "div",
        { class: "admin-actions" },
        adminReason,
        el("button", { type: "button", class: "danger revoke", onclick: adminAction(true) }, t("revoke")),
        el("button", { type: "button", class: "danger deny-add", onclick: adminAction(false) }, t("deny_add")),
        adminMessage,
      );
    }
  }

  // --- kiosk health -------------------------------------------------------------------
  let kiosks = [];
  const wasOnline = new Map();
  const wasOff = new Map(); // token id -> its clock was too far off at the last look
  async function loadKiosks() {
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

  function raisePolicyAlert(event) {
    const key = `policy-${event.event_id}`;
    raise(key, () =>
      el(
        "div",
        { class: "alert policy-alert", "data-event-id": event.event_id, role: "alert" },
        el(
          "div",
          { class: "alert-head" },
          el("strong", {}, `⚠ ${t("policy_breach")}: ${event.name || t("nobody")}`),
          el("span", {}, ` · ${gateName(event.gate_id)} · ${clock(event.occurred_at)}`),
        ),
        el("div", { class: "alert-reason" }, t(event.offline_against_policy)),
        el(
          "div",
          { class: "alert-actions" },
          el(
            "button",
            { type: "button", class: "dismiss ghost", onclick: () => dropAlert(key) },
            t("dismiss"),
          ),
        ),
      ),
    );
  }

  // Held at the door (or let go) by the health desk: the guard should know who, and why.
  const SUSPENSION_ALERTS = 3; // the latest ones; the feed keeps every one
  const suspensionAlerts = [];
  function raiseSuspensionAlert(event) {
    const key = `suspension-${event.seq}`;
    suspensionAlerts.push(key);
    while (suspensionAlerts.length > SUSPENSION_ALERTS) dropAlert(suspensionAlerts.shift());
    raise(key, () =>
      el(
        "div",
        { class: `alert suspension-alert ${event.kind}`, "data-person-id": event.person_id, role: "status" },
        el(
          "div",
          { class: "alert-head" },
          el("strong", {}, `${t(event.kind)}: ${event.name || t("nobody")}`),
          el("span", {}, ` · ${clock(event.occurred_at)}`),
        ),
        el(
          "div",
          { class: "alert-reason" },
          t(`cause_${event.reason}`),
          event.kind === "suspension" ? ` — ${reasonText(event.reason, event.message_vi, event.message_en)}` : "",
        ),
        el(
          "div",
          { class: "alert-actions" },
          el("button", { type: "button", class: "dismiss ghost", onclick: () => dropAlert(key) }, t("dismiss")),
        ),
      ),
    );
  }

  const CLOCK_SKEW_LIMIT_MS = 10000;
  function skewText(ms) {
    return typeof ms === "number" ? `${ms >= 0 ? "+" : "−"}${(Math.abs(ms) / 1000).toFixed(1)} s` : "—";
  }
  function raiseClockAlert(kiosk, skew) {
    const key = `clock-${kiosk.token_id}`;
    raise(key, () =>
      el(
        "div",
        { class: "alert clock-alert", "data-kiosk": kiosk.token_id, role: "alert" },
        el(
          "div",
          { class: "alert-head" },
          el("strong", {}, `⚠ ${t("kiosk_clock")}: ${skewText(skew)}`),
          el("span", {}, ` · ${kiosk.label || `#${kiosk.token_id}`} · ${kiosk.gate_name}`),
        ),
        el(
          "div",
          { class: "alert-actions" },
          el("button", { type: "button", class: "dismiss ghost", onclick: () => dropAlert(key) }, t("dismiss")),
        ),
      ),
    );
  }

  function raiseKioskAlert(kiosk) {
    const key = `kiosk-${kiosk.token_id}`;
    raise(key, () =>
      el(
        "div",
        { class: "alert kiosk-alert", "data-kiosk": kiosk.token_id },
        el(
          "div",
          { class: "alert-head" },
          el("strong", {}, t("kiosk_silent")),
          el("span", {}, ` · ${kiosk.label || `#${kiosk.token_id}`} · ${kiosk.gate_name}`),
        ),
        el(
          "div",
          { class: "alert-actions" },
          el(
            "button",
            { type: "button", class: "dismiss ghost", onclick: () => dropAlert(key) },
            t("dismiss"),
          ),
        ),
      ),
    );
  }

  // --- security alerts (admins) ---------------------------------------------------------
  async function loadSecurityAlerts() {
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
      el(
        "div",
        { class: "alert security-alert", "data-alert": key },
        el(
          "div",
          { class: "alert-head" },
          el("strong", {}, t("login_burst")),
          el("span", {}, ` · ${clock(alert.occurred_at)}`),
        ),
        el(
          "div",
          { class: "alert-reason" },
          `${detail.attempts} ${t("login_burst_detail")} ${detail.window_s} s · ` +
            `${detail.addresses} ${t("addresses")}${top ? `: ${top}` : ""}`,
        ),
        el(
          "div",
          { class: "alert-actions" },
          el(
            "button",
            { type: "button", class: "dismiss ghost", onclick: () => dismissBurst(key) },
            t("dismiss"),
          ),
        ),
      ),
    );
  }

  const dismissedBursts = new Set(); // not raised again by the next poll
  function dismissBurst(key) {
    dismissedBursts.add(key);
    dropAlert(key);
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

  // --- occupancy chart (plain SVG) -----------------------------------------------------
  let occupancy = null;
  async function loadChart() {
    const day = $("chart-date").value;
    occupancy = await api(`/api/v1/sites/${site.id}/occupancy${day ? `?date=${day}` : ""}`);
    if (!day && occupancy.date) $("chart-date").value = occupancy.date;
    renderChart();
  }
  $("chart-date").addEventListener("change", loadChart);

  function svg(name, attrs = {}, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    for (const child of children)
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function renderChart() {
    if (!occupancy) return;
    const buckets = occupancy.buckets;
    const width = 960,
      height = 320,
      left = 40,
      bottom = 28,
      top = 12;
    const plotH = height - bottom - top,
      step = (width - left) / buckets.length;
    // Scaled to the day's own figures, so two people inside show as clearly as two
    // hundred; the capacity is a line when it is on that scale, else a note at the top.
    const { top: top1, step: tick } = chartScale(
      Math.max(0, ...buckets.map((b) => b.entries), ...buckets.map((b) => b.inside ?? 0)),
    );
    const y = (v) => top + plotH - (plotH * v) / top1;
    const parts = [];
    for (let v = 0; v <= top1; v += tick) {
      parts.push(svg("line", { x1: left, x2: width, y1: y(v), y2: y(v), class: "grid", "data-value": v }));
      parts.push(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, v));
    }
    buckets.forEach((b, i) => {
      if (b.entries > 0) {
        parts.push(
          svg(
            "rect",
            {
              x: left + i * step + 1,
              y: y(b.entries),
              width: Math.max(1, step - 2),
              height: y(0) - y(b.entries),
              class: "bar",
            },
            svg("title", {}, `${b.start.slice(11, 16)} · ${b.entries}`),
          ),
        );
      }
      if (b.auto_exits > 0) {
        // Automatic check-outs: estimated ends, marked on the baseline (not seen exits).
        parts.push(
          svg(
            "circle",
            { cx: left + (i + 0.5) * step, cy: y(0) - 4, r: 4, class: "auto-exit" },
            svg("title", {}, `${b.start.slice(11, 16)} · ${t("auto_exit")}: ${b.auto_exits}`),
          ),
        );
      }
      if (i % 12 === 0)
        parts.push(svg("text", { x: left + i * step, y: height - 8, class: "axis" }, b.start.slice(11, 16)));
    });
    const points = buckets
      .map((b, i) =>
        b.inside === null || b.inside === undefined ? null : `${left + (i + 1) * step},${y(b.inside)}`,
      )
      .filter(Boolean);
    if (points.length) parts.push(svg("polyline", { points: points.join(" "), class: "inside-line" }));
    const capacity = occupancy.capacity;
    if (capacity && capacity <= top1) {
      parts.push(
        svg("line", { x1: left, x2: width, y1: y(capacity), y2: y(capacity), class: "capacity-line" }),
        svg(
          "text",
          { x: width - 4, y: y(capacity) - 5, "text-anchor": "end", class: "capacity-label" },
          `${t("capacity")} ${capacity}`,
        ),
      );
    } else if (capacity) {
      parts.push(
        svg(
          "text",
          { x: width - 4, y: top + 12, "text-anchor": "end", class: "capacity-note" },
          fill(t("capacity_above"), { n: capacity }),
        ),
      );
    }
    $("chart").replaceChildren(
      svg(
        "svg",
        { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": t("tab_chart"), "data-top": top1 },
        ...parts,
      ),
      el(
        "p",
        { class: "legend" },
        el("span", { class: "key bar" }),
        ` ${t("entries_15")}   `,
        el("span", { class: "key inside-line" }),
        ` ${t("people_inside")}`,
        buckets.some((b) => b.auto_exits > 0) ? el("span", { class: "key auto-exit" }) : null,
        buckets.some((b) => b.auto_exits > 0) ? ` ${t("auto_exit")}   ` : null,
        capacity ? el("span", { class: "key capacity-line" }) : null,
        capacity ? ` ${t("capacity")}: ${capacity}` : null,
      ),
    );
  }

  // A round top just above the highest value, in at most five steps of 1, 2 or 5 × 10ⁿ.
  function chartScale(highest) {
    const wanted = Math.max(1, highest * 1.1);
    for (let power = 1; ; power *= 10) {
      for (const step of [power, 2 * power, 5 * power]) {
        if (Math.ceil(wanted / step) <= 5) return { top: Math.ceil(wanted / step) * step, step };
      }
    }
  }

  // --- tabs, header and start ----------------------------------------------------------
  function showTab(name) {
    for (const button of document.querySelectorAll("[data-tab]")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === name));
    }
    for (const panel of document.querySelectorAll(".tab")) panel.hidden = panel.id !== `tab-${name}`;
    if (name === "chart") loadChart().catch(() => {});
    for (const show of tabHooks[name] || []) show();
  }
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }

  function redrawAll() {
    setLink($("link").dataset.state);
    renderFeed();
    renderInside();
    renderKiosks();
    renderChart();
    if (lastQuery) refreshSearch();
    for (const hook of redrawHooks) hook();
    for (const entry of alerts.values()) {
      const fresh = entry.build();
      entry.node.replaceWith(fresh);
      entry.node = fresh;
    }
  }

  // --- what the desk's tabs (console-review.js, console-health.js) share ---------------
  const tabHooks = {};
  const eventHooks = [];
  const redrawHooks = [];
  window.consoleKit = {
    config,
    site,
    el,
    api,
    fill,
    confirmStep,
    dateTime,
    clock,
    gateName,
    reasonText,
    t,
    lang: () => lang,
    words(more) {
      Object.assign(WORDS, more);
      applyWords();
    },
    onTab: (name, show) => (tabHooks[name] = [...(tabHooks[name] || []), show]),
    onEvent: (hook) => eventHooks.push(hook),
    // A hold set or lifted (here, in another console, by a test result), once per burst.
    onSuspension(hook) {
      let timer = null;
      eventHooks.push((event) => {
        if (!event.kind.startsWith("suspension")) return;
        clearTimeout(timer);
        timer = setTimeout(hook, 300);
      });
    },
    form: (id) => $(id).elements,
    // What an action did (ok: done; else a refusal or a hint, in red), in words.
    say(node, text, ok = false) {
      node.textContent = text;
      node.classList.toggle("ok", ok);
    },
    failInto: (node) => (failure) => window.consoleKit.say(node, `${t("error")}: ${failure.text()}`),
    ask: (title, body, reason, action) => confirmStep({ title, body, reason, action }),
    onRedraw: (hook) => redrawHooks.push(hook),
  };
  for (const button of document.querySelectorAll("[data-roles]")) {
    button.hidden = !button.dataset.roles.split(" ").includes(config.user.role);
  }

  $("site-name").textContent = site.name;
  $("user").textContent = config.user.username;
  if (config.sites.length > 1) {
    const picker = $("site-picker");
    picker.replaceChildren(
      ...config.sites.map((s) => el("option", { value: s.id, selected: s.id === site.id }, s.name)),
    );
    picker.hidden = false;
    picker.addEventListener("change", () => location.assign(`/console?site_id=${picker.value}`));
  }
  $("sound").checked = localStorage.getItem("cg_sound") === "1";
  $("sound").addEventListener("change", () =>
    localStorage.setItem("cg_sound", $("sound").checked ? "1" : "0"),
  );
  applyWords();
  renderFeed();
  connect();
  if (atTheDoor) {
    loadInside().catch(() => {});
    loadKiosks();
    setInterval(loadKiosks, KIOSK_POLL_MS);
    setInterval(() => loadInside().catch(() => {}), 30000);
  }
  if (isAdmin) {
    loadSecurityAlerts();
    setInterval(loadSecurityAlerts, SECURITY_POLL_MS);
  }
})();
