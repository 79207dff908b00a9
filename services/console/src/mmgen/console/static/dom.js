// Small DOM helpers: elements are built, never parsed from strings, so no value the console
// shows (an id, a reason, a field of an entry) can become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "—")]));
}

export function table(caption, headers, rows) {
  // Focusable, so a keyboard can scroll a wide table on a narrow window.
  return h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption || "Table" },
    h("table", {},
      h("caption", { class: "muted" }, caption),
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows)));
}

export function empty(text) {
  return h("p", { class: "empty", role: "status" }, text);
}

export function errorBox(text) {
  return h("p", { class: "error", role: "alert" }, text);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status", "aria-live": "polite" }, text);
}

export function when(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace(".000Z", "Z");
}
