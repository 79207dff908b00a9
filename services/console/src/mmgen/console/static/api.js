// The console's own API: the session cookie goes along (same origin); writes carry the
// session's CSRF token. A 401 means the session ended: back to the sign-in page.

let csrf = null;

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function setCsrf(token) {
  csrf = token;
}

export async function api(path, { method = "GET", body, redirect = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401 && redirect && location.pathname !== "/signin") {
      location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    throw new ApiError(response.status, typeof data === "object" ? data : { detail: data });
  }
  return data;
}

// Problems that name fields (422 `errors[].field`) are shown next to those fields.
export function showProblem(form, error, summary) {
  for (const old of form.querySelectorAll(".field-error")) old.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
  const unplaced = [];
  for (const item of error.problem?.errors || []) {
    const input = form.elements.namedItem(String(item.field).split(".")[0]);
    if (!input || !input.id) {
      unplaced.push(`${item.field}: ${item.msg}`);
      continue;
    }
    const note = document.createElement("span");
    note.className = "field-error";
    note.id = `${input.id}-error`;
    note.textContent = item.msg;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    input.closest("label").append(note);
  }
  summary.textContent = [error.message, ...unplaced].join(" — ");
  summary.hidden = false;
}
