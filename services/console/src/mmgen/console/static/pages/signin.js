import { api, setCsrf } from "../api.js";
import { h } from "../dom.js";

export function signInPage() {
  const status = h("p", { class: "error", role: "alert", id: "signin-error", hidden: true });
  const code = h("input", { id: "totp", name: "totp", inputmode: "numeric", autocomplete: "one-time-code",
                            pattern: "[0-9]{6,8}", "aria-describedby": "totp-hint" });
  const form = h("form", { class: "signin", novalidate: true },
    h("label", { for: "email" }, "Email", h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true })),
    h("label", { for: "password" }, "Password", h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true })),
    h("label", { for: "totp" }, "One-time code", code,
      h("span", { id: "totp-hint", class: "muted" }, "The six digits your authenticator app shows.")),
    status,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.hidden = true;
    const body = { email: form.email.value.trim(), password: form.password.value };
    if (code.value.trim()) body.totp = code.value.trim();
    const button = form.querySelector("button");
    button.disabled = true;
    button.textContent = "Signing in…";
    try {
      const session = await api("/api/session", { method: "POST", body, redirect: false });
      setCsrf(session.csrf_token);
      const next = new URLSearchParams(location.search).get("next");
      location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/audit");
    } catch (error) {
      status.textContent = `Sign-in refused: ${error.message}`;
      status.hidden = false;
      if (error.problem?.code === "mfa_required") code.focus();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });
  return h("section", { "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", {}, "For compliance staff, with password and one-time code. Your session stays on the console's server."),
    form);
}
