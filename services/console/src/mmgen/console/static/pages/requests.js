import { api, showProblem } from "../api.js";
import { h, facts, table, empty, errorBox, loading, when } from "../dom.js";
import { verifyReceipt } from "../verify.js";

const STATUSES = ["", "received", "in_progress", "completed", "partially_completed", "verified", "overdue", "rejected"];
const WEEK_MS = 7 * 24 * 3600 * 1000;

export async function requestsPage(main) {
  const params = new URLSearchParams(location.search);
  const status = h("select", { id: "r-status", name: "status" },
    STATUSES.map((s) => h("option", { value: s, selected: params.get("status") === s }, s ? s.replaceAll("_", " ") : "any")));
  const overdue = h("input", { id: "r-overdue", name: "overdue", type: "checkbox", checked: params.get("overdue") === "true" });
  const soon = h("input", { id: "r-soon", name: "soon", type: "checkbox", checked: params.get("soon") === "true" });
  const form = h("form", { class: "filters", "aria-label": "Filter privacy requests" },
    h("label", { for: "r-status" }, "Status", status),
    h("label", { class: "check", for: "r-overdue" }, overdue, "Overdue only"),
    h("label", { class: "check", for: "r-soon" }, soon, "Due within 7 days"),
    h("button", { type: "submit" }, "Filter"));
  const results = h("section", { "aria-labelledby": "req-title" }, h("h2", { id: "req-title" }, "Requests"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (status.value) next.set("status", status.value);
    if (overdue.checked) next.set("overdue", "true");
    if (soon.checked) next.set("soon", "true");
    history.replaceState(null, "", `/requests?${next}`);
    list(results, next);
  });
  main.replaceChildren(h("h1", {}, "Privacy requests"), form, results);
  await list(results, params);
}

async function list(results, params) {
  for (const old of results.querySelectorAll(":scope > :not(h2)")) old.remove();
  const busy = loading();
  results.append(busy);
  const query = new URLSearchParams();
  if (params.get("status")) query.set("status", params.get("status"));
  if (params.get("overdue") === "true") query.set("overdue", "true");
  query.set("limit", "100");
  try {
    let items = (await api(`/api/privacy-requests?${query}`)).items;
    if (params.get("soon") === "true") {
      const now = Date.now();
      items = items.filter((r) => !["completed", "verified", "rejected"].includes(r.status) && new Date(r.deadline.due_by) - now <= WEEK_MS);
    }
    busy.remove();
    if (items.length === 0) {
      results.append(empty("No privacy request matches."));
      return;
    }
    results.append(table("Privacy requests", ["Request", "Type", "Subject", "Status", "Received", "Due by"],
      items.map((r) => h("tr", {},
        h("td", {}, h("a", { href: `/requests/${r.request_id}` }, r.request_id)), h("td", {}, r.type),
        h("td", {}, h("a", { href: `/subjects/${r.subject_id}` }, r.subject_id)),
        h("td", {}, h("span", { class: "status" }, r.status), r.deadline.overdue ? " (overdue)" : ""),
        h("td", {}, when(r.received_at)), h("td", {}, r.deadline.due_on)))));
  } catch (error) {
    busy.remove();
    results.append(errorBox(`The requests could not be read: ${error.message}`));
  }
}

export async function requestPage(main, requestId) {
  const r = await api(`/api/privacy-requests/${encodeURIComponent(requestId)}`);
  const ext = r.deadline.extension;
  const months = h("select", { id: "x-months", name: "months" }, h("option", { value: "1" }, "1 month"), h("option", { value: "2" }, "2 months"));
  const reason = h("input", { id: "x-reason", name: "reason", maxlength: 1000 });
  const summary = h("p", { class: "error", role: "alert", hidden: true });
  const extend = h("form", { class: "editor", "aria-label": "Extend the deadline" },
    h("label", { for: "x-months" }, "Extend by", months), h("label", { for: "x-reason" }, "Reason (required)", reason),
    h("button", { type: "submit" }, "Extend deadline"), summary);
  extend.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api(`/api/privacy-requests/${encodeURIComponent(requestId)}/extension`, { method: "POST", body: { months: Number(months.value), reason: reason.value } });
      location.reload();
    } catch (error) {
      showProblem(extend, error, summary);
    }
  });
  main.replaceChildren(
    h("h1", {}, `Privacy request ${r.request_id}`),
    facts([
      ["Status", h("span", { class: "status", id: "request-status" }, r.status)], ["Type", r.type],
      ["Subject", h("a", { href: `/subjects/${r.subject_id}` }, r.subject_id)],
      ["Requested by", `${r.requested_by}${r.on_behalf ? " (on the subject's behalf)" : ""}`],
      ["Received", when(r.received_at)],
      ["Due by", `${when(r.deadline.due_by)}${r.deadline.overdue ? " — overdue" : ""}`],
      ["Extension", ext ? `${ext.months} month(s): ${ext.reason}` : "none"],
      ["Attempts", String(r.attempts)],
    ]),
    h("h2", {}, "Held categories"),
    r.held.length === 0 ? empty("Nothing is held.") :
      table("Categories kept under legal holds", ["Category", "Hold", "Legal basis", "Until"],
        r.held.map((x) => h("tr", { "data-hold": x.hold_id }, h("td", {}, x.category), h("td", {}, x.hold_id), h("td", {}, x.legal_basis), h("td", {}, when(x.until))))),
    h("h2", {}, "Services"),
    r.progress.length === 0 ? empty("No service has been asked yet.") :
      table("Each service's answer", ["Service", "State", "Detail", "Audit seq"],
        r.progress.map((p) => h("tr", {}, h("td", {}, p.service), h("td", {}, p.state), h("td", {}, p.detail || "—"),
          h("td", {}, p.audit_seq === null || p.audit_seq === undefined ? "—" : h("a", { href: `/audit/${p.audit_seq}` }, String(p.audit_seq)))))),
    h("h2", {}, "Timeline"),
    table("Every step of the request", ["When", "Step", "Status"],
      r.timeline.map((t) => h("tr", {}, h("td", {}, when(t.at)), h("td", {}, t.step), h("td", {}, t.status)))),
    ...(ext || ["completed", "verified", "rejected"].includes(r.status) ? [] : [h("h2", {}, "Deadline"), extend]),
  );
  if (r.type === "erasure" && ["verified", "partially_completed"].includes(r.status)) await receiptSection(main, r);
}

async function receiptSection(main, r) {
  const verdict = h("p", { id: "receipt-verdict", class: "verdict pending", role: "status", "aria-live": "polite" }, "checking…");
  const steps = h("ol", { class: "steps" });
  const url = `/api/privacy-requests/${encodeURIComponent(r.request_id)}/receipt`;
  main.append(h("h2", {}, "Erasure receipt"),
    h("p", {}, h("a", { href: url, download: `receipt-${r.request_id}.jws` }, "Download the signed receipt"),
      h("span", { class: "muted" }, " — hand it to the subject; ", h("code", {}, "mmgen receipt verify"), " checks it offline.")),
    verdict, steps);
  try {
    const [jws, jwks, config] = await Promise.all([api(url), api("/api/receipt-keys"), api("/api/config")]);
    await verifyReceipt(String(jws), jwks, config, (path) => api(path), (text) => steps.append(h("li", {}, text)));
    verdict.className = "verdict ok";
    verdict.textContent = "verified";
  } catch (error) {
    verdict.className = "verdict bad";
    verdict.textContent = error.status === 409 ? "not yet available: no signed head covers every answer yet" : `failed: ${error.message}`;
  }
}
