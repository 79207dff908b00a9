import { h, table, when } from "../dom.js";

const KEEP = 200;

export async function tailPage(main) {
  const state = h("p", { id: "tail-state", class: "status", role: "status", "aria-live": "polite" }, "connecting…");
  const wrap = table("Newest entries first; the page keeps the last 200", ["Seq", "Recorded", "Event type", "Action", "Subject", "Actor", "Purpose"], []);
  const body = wrap.querySelector("tbody");
  body.id = "tail-rows";
  const waiting = h("p", { class: "empty", id: "tail-empty" }, "No new entry yet: entries appear here as they are logged.");
  main.replaceChildren(h("h1", {}, "Live tail"),
    h("p", { class: "muted" }, "Entries as the audit log records them. After a disconnect the stream resumes after the last entry shown."),
    state, waiting, wrap);
  // EventSource sends Last-Event-ID itself when it reconnects, so nothing is skipped.
  const source = new EventSource("/api/audit/stream");
  source.addEventListener("open", () => { state.textContent = "live"; });
  source.addEventListener("error", () => {
    state.textContent = source.readyState === EventSource.CLOSED ? "disconnected: reload the page" : "reconnecting…";
  });
  source.addEventListener("entry", (event) => {
    const e = JSON.parse(event.data);
    waiting.remove();
    body.prepend(h("tr", { "data-seq": e.seq },
      h("td", {}, h("a", { href: `/audit/${e.seq}` }, String(e.seq))), h("td", {}, when(e.recorded_at)),
      h("td", {}, e.event_type), h("td", {}, e.action), h("td", {}, e.subject_id || "—"),
      h("td", {}, e.actor_id ? `${e.actor_id} (${e.actor_role})` : "—"), h("td", {}, e.purpose || "—")));
    while (body.children.length > KEEP) body.lastElementChild.remove();
  });
  addEventListener("pagehide", () => source.close());
}
