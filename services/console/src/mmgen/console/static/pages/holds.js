import { api, showProblem } from "../api.js";
import { h, table, empty, errorBox, loading, when } from "../dom.js";

function field(id, name, label, attrs = {}) {
  return h("label", { for: id }, label, h("input", { id, name, autocomplete: "off", ...attrs }));
}

function editor(label, fields, submitText, send) {
  const summary = h("p", { class: "error", role: "alert", hidden: true });
  const form = h("form", { class: "editor", "aria-label": label, novalidate: true }, fields,
    h("button", { type: "submit" }, submitText), summary);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    summary.hidden = true;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await send(form);
      location.reload();
    } catch (error) {
      showProblem(form, error, summary);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export async function holdsPage(main) {
  const form = editor("Place a legal hold", [
    field("h-subject", "subject_id", "Subject id"),
    field("h-categories", "categories", "Categories (comma-separated)", { placeholder: "consent, payment" }),
    field("h-basis", "legal_basis", "Legal basis"),
    field("h-owner", "owner", "Owner"),
    field("h-until", "until", "Until (optional)", { type: "date" }),
  ], "Place hold", (f) => api("/api/retention/holds", { method: "POST", body: {
    subject_id: f.subject_id.value.trim(),
    categories: f.categories.value.split(",").map((c) => c.trim()).filter(Boolean),
    legal_basis: f.legal_basis.value.trim(), owner: f.owner.value.trim(),
    until: f.until.value ? `${f.until.value}T23:59:59Z` : null,
  } }));
  const list = h("section", { "aria-labelledby": "holds-title" }, h("h2", { id: "holds-title" }, "Holds"), loading());
  main.replaceChildren(h("h1", {}, "Legal holds"),
    h("p", { class: "muted" }, "While a hold is active its categories are kept from erasure; the erasure ends partially completed, naming the hold. Releasing it lets the erasure finish."),
    h("h2", {}, "Place a hold"), form, list);
  try {
    const holds = (await api("/api/retention/holds?limit=100")).items;
    list.querySelector(".loading").remove();
    if (holds.length === 0) {
      list.append(empty("No legal hold has been placed."));
      return;
    }
    list.append(table("Legal holds, active and released", ["Hold", "Subject", "Categories", "Legal basis", "Owner", "Until", "State", ""],
      holds.map((x) => h("tr", { "data-hold": x.hold_id },
        h("td", {}, x.hold_id), h("td", {}, h("a", { href: `/subjects/${x.subject_id}` }, x.subject_id)),
        h("td", {}, x.categories.join(", ")), h("td", {}, x.legal_basis), h("td", {}, x.owner), h("td", {}, when(x.until)),
        h("td", {}, x.released_at ? `released ${when(x.released_at)}` : "active"),
        h("td", {}, x.released_at ? "" : h("button", { type: "button", class: "secondary", "aria-label": `Release hold ${x.hold_id}`,
          onclick: async (event) => {
            event.target.disabled = true;
            try {
              await api(`/api/retention/holds/${x.hold_id}`, { method: "DELETE" });
              location.reload();
            } catch (error) {
              event.target.disabled = false;
              event.target.after(errorBox(`Not released: ${error.message}`));
            }
          } }, "Release"))))));
  } catch (error) {
    list.querySelector(".loading")?.remove();
    list.append(errorBox(`The holds could not be read: ${error.message}`));
  }
}

export async function policiesPage(main) {
  const action = h("label", { for: "p-action" }, "Action",
    h("select", { id: "p-action", name: "action" }, h("option", { value: "erase" }, "erase"), h("option", { value: "anonymize" }, "anonymize")));
  const form = editor("Define a retention policy", [
    field("p-category", "category", "Category", { placeholder: "usage" }),
    field("p-trigger", "trigger_event", "Trigger event", { placeholder: "subject.inactive" }),
    field("p-period", "period", "Period (ISO 8601)", { placeholder: "P13M" }),
    action,
    field("p-basis", "legal_basis", "Legal basis"),
  ], "Define policy", (f) => api("/api/retention/policies", { method: "POST", body: {
    category: f.category.value.trim(), trigger_event: f.trigger_event.value.trim(), period: f.period.value.trim(),
    action: f.action.value, legal_basis: f.legal_basis.value.trim(),
  } }));
  const list = h("section", { "aria-labelledby": "pol-title" }, h("h2", { id: "pol-title" }, "Policies"), loading());
  main.replaceChildren(h("h1", {}, "Retention policies"), h("h2", {}, "Define a policy"), form, list);
  try {
    const policies = (await api("/api/retention/policies")).items;
    list.querySelector(".loading").remove();
    if (policies.length === 0) {
      list.append(empty("No retention policy is defined."));
      return;
    }
    list.append(table("Retention policies in force", ["Category", "Trigger", "Period", "Action", "Legal basis"],
      policies.map((p) => h("tr", {}, h("td", {}, p.category), h("td", {}, p.trigger_event), h("td", {}, p.period),
        h("td", {}, p.action), h("td", {}, p.legal_basis)))));
  } catch (error) {
    list.querySelector(".loading")?.remove();
    list.append(errorBox(`The policies could not be read: ${error.message}`));
  }
}
