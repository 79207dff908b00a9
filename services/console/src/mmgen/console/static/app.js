// The console's pages, routed by path. Every read goes through the console's API, which calls
// the services with the officer's token under `X-Purpose: legal_compliance`.

import { api, setCsrf } from "./api.js";
import { h, loading, errorBox } from "./dom.js";
import { signInPage } from "./pages/signin.js";
import { auditPage, entryPage, subjectPage } from "./pages/audit.js";
import { tailPage } from "./pages/tail.js";
import { requestsPage, requestPage } from "./pages/requests.js";
import { holdsPage, policiesPage } from "./pages/holds.js";

const routes = [
  [/^\/audit\/?$/, auditPage, "Audit log"],
  [/^\/audit\/(\d+)$/, entryPage, "Audit entry"],
  [/^\/subjects\/([^/]+)$/, subjectPage, "Subject report"],
  [/^\/tail$/, tailPage, "Live tail"],
  [/^\/requests\/?$/, requestsPage, "Privacy requests"],
  [/^\/requests\/([^/]+)$/, requestPage, "Privacy request"],
  [/^\/holds$/, holdsPage, "Legal holds"],
  [/^\/policies$/, policiesPage, "Retention policies"],
];

async function start() {
  const main = document.getElementById("main");
  const path = location.pathname;
  if (path === "/signin") {
    document.title = "Sign in · Compliance console";
    main.replaceChildren(signInPage());
    return;
  }
  let session;
  try {
    session = await api("/api/session");
  } catch (error) {
    if (error.status !== 401) main.replaceChildren(errorBox(`The console could not be reached: ${error.message}`));
    return;
  }
  setCsrf(session.csrf_token);
  showNav(path);
  const found = routes.find(([pattern]) => pattern.test(path));
  if (!found) {
    main.replaceChildren(h("h1", {}, "Not found"), errorBox(`There is no page at ${path}.`));
    return;
  }
  const [pattern, page, title] = found;
  document.title = `${title} · Compliance console`;
  main.replaceChildren(loading());
  try {
    await page(main, ...path.match(pattern).slice(1).map(decodeURIComponent));
  } catch (error) {
    main.append(errorBox(`Something went wrong: ${error.message}`));
  }
}

function showNav(path) {
  const nav = document.getElementById("nav");
  nav.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    const target = link.getAttribute("href");
    if (path === target || (path.startsWith(`${target}/`) && target !== "/")) link.setAttribute("aria-current", "page");
  }
  document.getElementById("sign-out").addEventListener("click", async () => {
    await api("/api/session", { method: "DELETE" }).catch(() => null);
    location.assign("/signin");
  });
}

start();
