import { api } from "../api.js";
import { h, facts, table, empty, errorBox, loading, when } from "../dom.js";
import { openCheckpoint, verifyEntry } from "../verify.js";

const FILTERS = [
  ["subject_id", "Subject id"], ["actor_id", "Actor id"], ["action", "Action"],
  ["event_type", "Event type"], ["producer", "Producer"],
];
const ACTIONS = ["", "create", "read", "update", "delete", "share", "consent", "deny", "erase"];

function toIso(local) {
  // datetime-local is the officer's local time; the audit log wants an instant.
  return local ? new Date(local).toISOString() : "";
}

export async function auditPage(main) {
  const params = new URLSearchParams(location.search);
  const inputs = FILTERS.map(([name, label]) => {
    const input = name === "action"
      ? h("select", { id: `f-${name}`, name }, ACTIONS.map((a) => h("option", { value: a, selected: params.get(name) === a }, a || "any")))
      : h("input", { id: `f-${name}`, name, value: params.get(name) || "", autocomplete: "off" });
    return h("label", { for: `f-${name}` }, label, input);
  });
  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", step: 1 });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", step: 1 });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Search the audit log" },
    inputs,
    h("label", { for: "f-since" }, "Recorded from", since),
    h("label", { for: "f-until" }, "Recorded before", until),
    h("button", { type: "submit" }, "Search"));
  const results = h("section", { "aria-labelledby": "results-title", "aria-busy": "false" },
    h("h2", { id: "results-title" }, "Entries"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [name] of FILTERS) if (form[name].value.trim()) next.set(name, form[name].value.trim());
    if (since.value) next.set("since", toIso(since.value));
    if (until.value) next.set("until", toIso(until.value));
    history.replaceState(null, "", `/audit?${next}`);
    search(results, next);
  });
  const health = h("section", { "aria-labelledby": "head-title" }, h("h2", { id: "head-title" }, "Latest signed head"), loading("Checking the log's latest signed head…"));
  main.replaceChildren(h("h1", {}, "Audit log"),
    h("p", { class: "muted" }, "Search by subject, actor, action, event type, producer and time. The console asks the audit log with your own token, under the purpose legal compliance."),
    health, form, results);
  latestHead(health);
  if ([...params.keys()].length) await search(results, params);
  else results.append(empty("Enter a subject, an actor or another filter to search."));
}

// The log's health as the browser sees it: the latest head, checked with the pinned keys.
async function latestHead(section) {
  try {
    const [head, config] = await Promise.all([api("/api/audit/checkpoints/latest"), api("/api/config")]);
    const opened = await openCheckpoint(head.note, config.audit_log_key, config.witness_keys, config.witness_quorum);
    section.querySelector(".loading").replaceWith(facts([
      ["Entries", String(opened.size)],
      ["Signed at", when(opened.extensions.find((line) => line.startsWith("timestamp "))?.slice(10))],
      ["Witnesses", opened.witnesses.length ? opened.witnesses.join(", ") : "none"],
      ["In your browser", h("span", { id: "head-verdict", class: "status" }, "signature verified with the pinned keys")],
    ]));
  } catch (error) {
    section.querySelector(".loading")?.replaceWith(errorBox(`The latest signed head does not verify: ${error.message}`));
  }
}

async function search(results, params, cursor = null, rows = null) {
  const query = new URLSearchParams(params);
  query.set("limit", "50");
  if (cursor) query.set("cursor", cursor);
  for (const old of results.querySelectorAll(":scope > :not(h2)")) if (!rows || !old.matches(".table-wrap")) old.remove();
  results.setAttribute("aria-busy", "true");
  const busy = loading("Searching…");
  results.append(busy);
  try {
    const page = await api(`/api/audit/entries?${query}`);
    busy.remove();
    if (!rows && page.items.length === 0) {
      results.append(empty("No entries match these filters."));
      return;
    }
    const body = rows || h("tbody");
    for (const e of page.items) {
      body.append(h("tr", {},
        h("td", {}, h("a", { href: `/audit/${e.seq}` }, String(e.seq))),
        h("td", {}, when(e.recorded_at)), h("td", {}, e.event_type), h("td", {}, e.action),
        h("td", {}, e.subject_id ? h("a", { href: `/subjects/${encodeURIComponent(e.subject_id)}` }, e.subject_id) : "—"),
        h("td", {}, e.actor_id ? `${e.actor_id} (${e.actor_role})` : "—"), h("td", {}, e.purpose || "—")));
    }
    if (!rows) {
      const wrap = table("Matching audit entries, oldest first", ["Seq", "Recorded", "Event type", "Action", "Subject", "Actor", "Purpose"], []);
      wrap.querySelector("tbody").replaceWith(body);
      results.append(wrap);
    }
    if (page.next_cursor) {
      results.append(h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary", onclick: () => search(results, params, page.next_cursor, body) }, "More entries")));
    }
  } catch (error) {
    busy.remove();
    results.append(errorBox(`The search failed: ${error.message}`));
  } finally {
    results.setAttribute("aria-busy", "false");
  }
}

export async function entryPage(main, seq) {
  const entry = await api(`/api/audit/entries/${seq}`);
  const config = await api("/api/config");
  const verdict = h("p", { id: "verdict", class: "verdict pending", role: "status", "aria-live": "polite" }, "checking…");
  const steps = h("ol", { class: "steps" });
  main.replaceChildren(
    h("h1", {}, `Audit entry ${entry.seq}`),
    facts([
      ["Event", entry.event_type], ["Action", entry.action], ["Producer", `${entry.producer} #${entry.producer_seq ?? "—"}`],
      ["Subject", entry.subject_id ? h("a", { href: `/subjects/${encodeURIComponent(entry.subject_id)}` }, entry.subject_id) : "—"],
      ["Actor", entry.actor_id ? `${entry.actor_id} (${entry.actor_role})` : "—"], ["Purpose", entry.purpose],
      ["Resource", entry.resource ? `${entry.resource.type} ${entry.resource.id}` : "—"],
      ["Categories", (entry.categories || []).join(", ") || "—"],
      ["Occurred", when(entry.occurred_at)], ["Recorded", when(entry.recorded_at)],
      ["Event id", h("code", {}, entry.event_id)], ["Previous hash", h("code", {}, entry.prev_hash)], ["Hash", h("code", {}, entry.hash)],
    ]),
    h("h2", {}, "Verified in your browser"),
    h("p", { class: "muted" }, "Your browser recomputes this entry's hash and leaf from its canonical bytes, checks its inclusion proof against the latest signed head, and checks the head's signatures with the keys pinned in the console's settings. It does not take the server's word for any of it."),
    verdict, steps,
    h("h2", {}, "Pinned keys"),
    facts([["Audit log", h("code", {}, config.audit_log_key || "none pinned")],
           ...config.witness_keys.map((k, i) => [`Witness ${i + 1}`, h("code", {}, k)]),
           ["Witness quorum", String(config.witness_quorum)]]),
  );
  try {
    await verifyEntry(entry, config, (path) => api(path), (text) => steps.append(h("li", {}, text)));
    verdict.className = "verdict ok";
    verdict.textContent = "verified";
  } catch (error) {
    verdict.className = "verdict bad";
    verdict.textContent = `failed: ${error.message}`;
  }
}

export async function subjectPage(main, subjectId) {
  const report = await api(`/api/audit/subjects/${encodeURIComponent(subjectId)}/report`);
  const sections = Object.entries(report).filter(([, v]) => typeof v === "object" && v !== null);
  const scalars = Object.entries(report).filter(([k, v]) => k !== "subject_id" && (typeof v !== "object" || v === null));
  main.replaceChildren(
    h("h1", {}, "Subject report (Art. 15)"),
    facts([["Subject", subjectId], ...scalars.map(([k, v]) => [label(k), String(v)])]),
    h("p", {}, h("a", { href: `/audit?subject_id=${encodeURIComponent(subjectId)}` }, "This subject's audit entries")),
    ...sections.map(([name, value]) => h("section", {},
      h("h2", {}, label(name)),
      Array.isArray(value) && value.length === 0 ? empty("None.") : render(value))),
  );
}

const label = (key) => key.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());

function render(value) {
  if (Array.isArray(value)) {
    if (value.every((x) => typeof x !== "object" || x === null)) return h("p", {}, value.join(", "));
    const keys = [...new Set(value.flatMap((x) => Object.keys(x)))];
    return table("Details", keys.map(label),
      value.map((row) => h("tr", {}, keys.map((k) => h("td", {}, cell(row[k]))))));
  }
  return facts(Object.entries(value).map(([k, v]) => [label(k), cell(v)]));
}

function cell(v) {
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.map((x) => (typeof x === "object" ? JSON.stringify(x) : x)).join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
