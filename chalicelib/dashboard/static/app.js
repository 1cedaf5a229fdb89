// The app shell: sign-in, the hash router, the live message region and the confirm dialog.
import { ApiError, call, token } from "./api.js";
import { h, field } from "./dom.js";
import { deployment, deployments } from "./deployments.js";
import { newProject, project, projects } from "./projects.js";
import { tokens } from "./tokens.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const status = document.getElementById("status");

const ROUTES = [
  [/^#\/projects\/new$/, newProject],
  [/^#\/projects\/([^/]+)$/, project],
  [/^#\/projects$/, projects],
  [/^#\/deployments\/([^/]+)$/, deployment],
  [/^#\/deployments$/, deployments],
  [/^#\/tokens$/, tokens],
];

let current = null;

function say(message, kind = "info") {
  status.className = `status ${kind}`;
  status.replaceChildren(message ? h("p", null, message) : "");
}

function fail(error) {
  if (error && error.name === "AbortError") return;
  if (error instanceof ApiError && error.status === 401) {
    token.clear();
    render();
    say(`Signed out: ${error.message}`, "error");
    return;
  }
  const where = error && error.field ? ` (field: ${error.field})` : "";
  const code = error && error.status ? `${error.status} ` : "";
  say(`Error ${code}${error ? error.message : "unknown"}${where}`, "error");
}

// A modal <dialog>: focus is held inside, Escape cancels, and Cancel has focus first, so a
// stray Enter never confirms a destructive action.
function confirm({ title, text, action }) {
  const dialog = document.getElementById("confirm");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  ok.textContent = action;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const done = (answer) => {
      ok.removeEventListener("click", yes);
      cancel.removeEventListener("click", no);
      dialog.removeEventListener("close", no);
      if (dialog.open) dialog.close();
      if (opener && opener.isConnected) opener.focus();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = () => done(false);
    ok.addEventListener("click", yes);
    cancel.addEventListener("click", no);
    dialog.addEventListener("close", no);
    dialog.showModal();
    cancel.focus();
  });
}

// A message to show once the next view is up (a hash change clears the region first).
let pending = "";

function go(hash, message = "") {
  if (location.hash === hash) {
    render().then(() => say(message));
  } else {
    pending = message;
    location.hash = hash;
  }
}

function signIn() {
  nav.hidden = true;
  const input = h("input", { type: "password", name: "token", id: "token", autocomplete: "off",
                             required: true, spellcheck: "false" });
  const form = h("form", { class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", null, "Paste an API token. It is kept in this tab only (sessionStorage) and sent as a bearer token."),
    field("API token", input),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    token.set(input.value.trim());
    try {
      await call("GET", "/api/projects");
    } catch (error) {
      token.clear();
      say(`Sign-in failed: ${error.message}`, "error");
      input.focus();
      return;
    }
    say("Signed in.");
    if (!location.hash || location.hash === "#/") go("#/projects");
    else render();
  });
  main.replaceChildren(form);
}

async function render(focus = false) {
  if (current) current.abort();
  current = new AbortController();
  if (!token.get()) {
    signIn();
    return;
  }
  nav.hidden = false;
  const hash = location.hash && location.hash !== "#/" ? location.hash : "#/projects";
  for (const link of nav.querySelectorAll("a")) {
    if (hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const match = ROUTES.map(([pattern, view]) => [hash.match(pattern), view]).find(([found]) => found);
  const ctx = { signal: current.signal, say, fail, confirm, go, main };
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    if (!match) main.replaceChildren(h("h1", null, "Not found"), h("p", null, h("a", { href: "#/projects" }, "Projects")));
    else await match[1](ctx, ...match[0].slice(1).map(decodeURIComponent));
  } catch (error) {
    main.replaceChildren(h("h1", null, "Something went wrong"));
    fail(error);
  }
  if (focus) {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  token.clear();
  render();
  say("Signed out.");
});
window.addEventListener("hashchange", () => {
  say(pending);
  pending = "";
  render(true);
});
render();
