// The Occupancy tab: the day's entries per 15 minutes, the people inside, the automatic
// check-outs and the capacity, in plain SVG, for a day chosen with the date field.
import { api } from "./console-api.js";
import { site } from "./console-config.js";
import { $, el, svg } from "./console-dom.js";
import { fill, t } from "./console-i18n.js";
import { onRedraw, onTab } from "./console-tabs.js";

let occupancy = null;
async function loadChart() {
  const day = $("chart-date").value;
  occupancy = await api(`/api/v1/sites/${site.id}/occupancy${day ? `?date=${day}` : ""}`);
  if (!day && occupancy.date) $("chart-date").value = occupancy.date;
  renderChart();
}
$("chart-date").addEventListener("change", loadChart);

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

onTab("chart", () => loadChart().catch(() => {}));
onRedraw(renderChart);
