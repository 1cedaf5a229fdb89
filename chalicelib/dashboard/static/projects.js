// Projects: the list, one project (addresses, branches, deployments, promote and rollback)
// and the create form.
import { call, enc } from "./api.js";
import { h, field, link, table } from "./dom.js";
import { deploymentRows, DEPLOYMENT_COLUMNS } from "./deployments.js";
import { ACTIVE, age } from "./format.js";

export async function projects(ctx) {
  const { projects: list } = await call("GET", "/api/projects", undefined, ctx.signal);
  ctx.main.replaceChildren(
    h("div", { class: "heading" }, h("h1", null, "Projects"),
      h("a", { class: "button primary", href: "#/projects/new" }, "New project")),
    list.length === 0
      ? h("p", null, "No projects yet. ", h("a", { href: "#/projects/new" }, "Create one"), ".")
      : table("Projects", ["Name", "Production", "Repository", "Created"], list.map((item) => [
        h("a", { href: `#/projects/${enc(item.name)}` }, item.name),
        item.production_deployment ? link(item.url) : h("span", { class: "muted" }, "not deployed yet"),
        h("code", null, item.repo_url),
        age(item.created_at),
      ])));
}

export async function project(ctx, name) {
  const path = `/api/projects/${enc(name)}`;
  const [view, { deployments: list }] = await Promise.all([
    call("GET", path, undefined, ctx.signal),
    call("GET", `${path}/deployments`, undefined, ctx.signal),
  ]);
  const act = async (button, request, done) => {
    button.disabled = true;
    try {
      const result = await request();
      ctx.go(done.hash ? done.hash(result) : `#/projects/${enc(name)}`, done.message(result));
    } catch (error) {
      ctx.fail(error);
    } finally {
      button.disabled = false;
    }
  };
  const promote = async (event, record) => {
    const ok = await ctx.confirm({ title: `Promote ${record.id}?`, action: "Promote",
      text: `${view.url} will serve deployment ${record.id} (${record.branch || "?"} at ` +
            `${(record.commit || "").slice(0, 7)}). New production deployments stop taking the address until you promote the newest again.` });
    if (ok) await act(event.target, () => call("POST", `${path}/promote`, { deployment_id: record.id }),
      { message: () => `Promoted ${record.id}: production serves it now.` });
  };
  const rollback = async (event) => {
    const ok = await ctx.confirm({ title: "Roll back production?", action: "Roll back",
      text: `${view.url} goes back to the deployment that served it before ${view.production_deployment}.` });
    if (ok) await act(event.target, () => call("POST", `${path}/rollback`),
      { message: (result) => `Rolled back: production serves ${result.production_deployment} now.` });
  };
  const remove = async (event) => {
    const ok = await ctx.confirm({ title: `Delete project ${name}?`, action: "Delete project",
      text: "Its addresses stop answering and every deployment of it is taken down. This cannot be undone." });
    if (ok) await act(event.target, () => call("DELETE", path),
      { hash: () => "#/projects", message: () => `Deleted project ${name}.` });
  };
  const ref = h("input", { type: "text", name: "ref", placeholder: view.production_branch || "main",
                           autocomplete: "off", spellcheck: "false" });
  const deployForm = h("form", { class: "inline" },
    field("Branch", ref, `Empty: the production branch (${view.production_branch || "main"}).`),
    h("button", { type: "submit", class: "primary" }, "Deploy"));
  deployForm.addEventListener("submit", (event) => {
    event.preventDefault();
    act(deployForm.querySelector("button"),
      () => call("POST", `${path}/deployments`, ref.value.trim() ? { ref: ref.value.trim() } : {}),
      { hash: (created) => `#/deployments/${enc(created.id)}`, message: (created) => `Started deployment ${created.id}.` });
  });
  const branches = Object.entries(view.branches || {});
  ctx.main.replaceChildren(
    h("div", { class: "heading" }, h("h1", null, name),
      h("button", { type: "button", class: "danger", onclick: remove }, "Delete project")),
    h("dl", { class: "facts" },
      h("dt", null, "Production"),
      h("dd", null, link(view.url), " ", view.production_deployment
        ? h("a", { href: `#/deployments/${enc(view.production_deployment)}`, id: "production-deployment" }, view.production_deployment)
        : h("span", { class: "muted" }, "not deployed yet")),
      h("dt", null, "Auto-promote"),
      h("dd", null, view.auto_promote ? "on: the newest production deployment takes the address"
        : "off: production stays where it was put until the newest is promoted"),
      h("dt", null, "Repository"), h("dd", null, h("code", null, view.repo_url)),
      h("dt", null, "Production branch"), h("dd", null, view.production_branch || "main")),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: rollback, disabled: !view.production_deployment }, "Roll back production")),
    deployForm,
    h("h2", null, "Branches"),
    branches.length === 0 ? h("p", { class: "muted" }, "No branch deployed yet.")
      : table("Branches and their preview addresses", ["Branch", "Deployment", "Preview"],
        branches.map(([branch, id]) => [
          branch, h("a", { href: `#/deployments/${enc(id)}` }, id), link(view.preview_urls[branch]),
        ])),
    h("h2", null, "Deployments"),
    list.length === 0 ? h("p", { class: "muted" }, "No deployments yet.")
      : table(`Deployments of ${name}`, [...DEPLOYMENT_COLUMNS, ""], deploymentRows(list).map((cells, index) => {
        const record = list[index];
        const live = record.id === view.production_deployment;
        return [...cells, live ? h("strong", null, "Production")
          : record.status === "deployed"
            ? h("button", { type: "button", "aria-label": `Promote ${record.id}`, onclick: (event) => promote(event, record) }, "Promote")
            : ""];
      })));
  // While a build runs, the page follows it, but never under someone typing a ref or with a
  // dialog open: a redraw would drop what they typed or the button the dialog returns to.
  if (list.some((record) => ACTIVE.has(record.status))) follow(ctx, name, ref);
}

function follow(ctx, name, ref) {
  const timer = setTimeout(() => {
    if (ctx.signal.aborted) return;
    if (ref.value || document.activeElement === ref || document.getElementById("confirm").open) follow(ctx, name, ref);
    else project(ctx, name).catch(ctx.fail);
  }, 3000);
  ctx.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
}

const OPTIONAL = [
  ["production_branch", "Production branch", "Default main."],
  ["root_dir", "Root directory", "Where the app sits in the repository, if not at its root."],
  ["install_command", "Install command", "Default: detected from the lockfile."],
  ["build_command", "Build command", "Default: detected from the framework."],
  ["output_dir", "Output directory", "Default: detected from the framework."],
  ["node_version", "Node.js version", "e.g. 22 or 20.x; default: from the project."],
];

export async function newProject(ctx) {
  const input = (name, required) => h("input", { type: "text", name, required, autocomplete: "off", spellcheck: "false" });
  const form = h("form", { class: "card", "aria-labelledby": "new-title" },
    h("h1", { id: "new-title" }, "New project"),
    field("Name", input("name", true), "A DNS label: lower-case letters, digits and hyphens."),
    field("Repository URL", input("repo_url", true), "A git URL the server can clone."),
    OPTIONAL.map(([name, label, hint]) => field(label, input(name, false), hint)),
    h("button", { type: "submit", class: "primary" }, "Create project"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const element of form.querySelectorAll("input")) {
      if (element.value.trim()) body[element.name] = element.value.trim();
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const created = await call("POST", "/api/projects", body, ctx.signal);
      showSecret(ctx, created);
    } catch (error) {
      ctx.fail(error);
      if (error.field) form.querySelector(`[name="${CSS.escape(error.field)}"]`)?.focus();
    } finally {
      button.disabled = false;
    }
  });
  ctx.main.replaceChildren(form);
}

function showSecret(ctx, created) {
  ctx.main.replaceChildren(
    h("h1", null, `Project ${created.name} created`),
    h("p", null, "Its webhook secret, for your forge's push webhook. It is shown this once:"),
    h("pre", { class: "secret", tabindex: "0", "aria-label": "Webhook secret" }, created.webhook_secret),
    h("p", null, h("a", { class: "button primary", href: `#/projects/${enc(created.name)}` }, `Go to ${created.name}`)));
  ctx.say(`Created project ${created.name}.`);
  ctx.main.querySelector("h1").tabIndex = -1;
  ctx.main.querySelector("h1").focus();
}
