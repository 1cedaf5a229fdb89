// Deployments: the list, and one deployment whose status and build log follow the build live.
import { call, enc } from "./api.js";
import { h, link, table } from "./dom.js";
import { ACTIVE, age, badge, duration, shortCommit } from "./format.js";

export const DEPLOYMENT_COLUMNS = ["Deployment", "Status", "Project", "Branch", "Commit", "Age", "Framework", "Duration"];
const POLL_MS = 1000;

export function deploymentRows(list) {
  return list.map((record) => [
    h("a", { href: `#/deployments/${enc(record.id)}` }, record.id),
    badge(record.status),
    record.project ? h("a", { href: `#/projects/${enc(record.project)}` }, record.project) : "—",
    record.branch || record.ref || "—",
    h("code", { title: record.commit || "" }, shortCommit(record.commit)),
    age(record.created_at),
    record.framework || "—",
    duration(record),
  ]);
}

export async function deployments(ctx) {
  const { deployments: list } = await call("GET", "/api/deployments?limit=100", undefined, ctx.signal);
  ctx.main.replaceChildren(
    h("h1", null, "Deployments"),
    list.length === 0 ? h("p", null, "No deployments yet.")
      : table("All deployments, newest first", DEPLOYMENT_COLUMNS, deploymentRows(list)));
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

export async function deployment(ctx, id) {
  const path = `/api/deployments/${enc(id)}`;
  let record = await call("GET", path, undefined, ctx.signal);
  // Which deployment production serves, so this one offers Promote only when it is not it.
  let production = record.project
    ? (await call("GET", `/api/projects/${enc(record.project)}`, undefined, ctx.signal).catch(() => ({}))).production_deployment
    : null;
  const heading = h("h1", null, "Deployment ", h("code", null, id));
  const facts = h("dl", { class: "facts" });
  const actions = h("div", { class: "actions" });
  const log = h("pre", { class: "log", id: "log", tabindex: "0", "aria-label": "Build log" });
  const logState = h("p", { class: "muted", id: "log-state" }, "Waiting for the log…");
  ctx.main.replaceChildren(heading, facts, actions, h("h2", null, "Build log"), logState, log);

  const act = async (button, request, message, after) => {
    button.disabled = true;
    try {
      const result = await request();
      ctx.say(message(result));
      if (after) after(result);
      else show(await call("GET", path, undefined, ctx.signal));
    } catch (error) {
      ctx.fail(error);
    } finally {
      button.disabled = false;
    }
  };
  const cancel = async (event) => {
    if (await ctx.confirm({ title: `Cancel ${id}?`, action: "Cancel deployment",
                            text: "The build stops; a running build is killed." })) {
      await act(event.target, () => call("POST", `${path}/cancel`), () => `Cancelled ${id}.`);
    }
  };
  const remove = async (event) => {
    if (await ctx.confirm({ title: `Delete ${id}?`, action: "Delete deployment",
                            text: "Its address answers 410 Gone from now on. This cannot be undone." })) {
      await act(event.target, () => call("DELETE", path), () => `Deleted ${id}.`,
                () => ctx.go(record.project ? `#/projects/${enc(record.project)}` : "#/deployments", `Deleted ${id}.`));
    }
  };
  const promote = async (event) => {
    if (await ctx.confirm({ title: `Promote ${id}?`, action: "Promote",
                            text: `Production of ${record.project} will serve this deployment.` })) {
      await act(event.target, () => call("POST", `/api/projects/${enc(record.project)}/promote`, { deployment_id: id }),
                (view) => {
                  production = view.production_deployment;
                  shown = "";
                  return `Promoted ${id}: production of ${record.project} serves it now.`;
                });
    }
  };

  let shown = "";
  function show(next) {
    // Redrawn only when something changed, so a focused link or button keeps its focus.
    const now = JSON.stringify(next) + (ACTIVE.has(next.status) ? duration(next) : "");
    if (now === shown) return;
    shown = now;
    record = next;
    facts.replaceChildren(
      h("dt", null, "Status"), h("dd", null, h("span", { id: "deployment-status" }, badge(record.status)),
        record.error ? h("span", { class: "error-text" }, ` ${record.error}`) : null),
      h("dt", null, "Address"), h("dd", null, record.status === "deployed" ? link(record.url) : h("code", null, record.url)),
      h("dt", null, "Project"), h("dd", null, record.project
        ? h("a", { href: `#/projects/${enc(record.project)}` }, record.project) : "—"),
      h("dt", null, "Target"), h("dd", null, record.target || "—"),
      h("dt", null, "Branch"), h("dd", null, record.branch || record.ref || "—"),
      h("dt", null, "Commit"), h("dd", null, h("code", { title: record.commit || "" }, shortCommit(record.commit))),
      h("dt", null, "Framework"), h("dd", null, record.framework || "—"),
      h("dt", null, "Created"), h("dd", null, age(record.created_at)),
      h("dt", null, "Duration"), h("dd", null, duration(record)),
      h("dt", null, "Repository"), h("dd", null, h("code", null, record.repo_url || "—")));
    const keep = document.activeElement && actions.contains(document.activeElement)
      ? document.activeElement.textContent : null;
    actions.replaceChildren(...[
      ACTIVE.has(record.status) ? h("button", { type: "button", onclick: cancel }, "Cancel deployment") : null,
      record.project && record.status === "deployed" && production === id
        ? h("strong", null, "Serving production") : null,
      record.project && record.status === "deployed" && production !== id
        ? h("button", { type: "button", onclick: promote }, "Promote to production") : null,
      record.status !== "deleted" ? h("button", { type: "button", class: "danger", onclick: remove }, "Delete deployment") : null,
    ].filter(Boolean));
    if (keep) [...actions.querySelectorAll("button")].find((button) => button.textContent === keep)?.focus();
  }
  show(record);
  follow(ctx, path, log, logState, show).catch(ctx.fail);
}

// Reads the log from its cursor and the record, once a second while the build runs, until the
// log says it is done and the record has left uploading/queued/building.
async function follow(ctx, path, log, logState, show) {
  let cursor = "";
  for (;;) {
    const query = cursor ? `?cursor=${enc(cursor)}` : "";
    const [page, record] = await Promise.all([
      call("GET", `${path}/logs${query}`, undefined, ctx.signal),
      call("GET", path, undefined, ctx.signal),
    ]);
    if (ctx.signal.aborted) return;
    if (page.lines.length) {
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(page.lines.map((line) => `${line}\n`).join(""));
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
    cursor = page.cursor || cursor;
    show(record);
    const active = ACTIVE.has(record.status);
    logState.textContent = active ? "Live: following the build." : page.done ? "The build has ended." : "Reading the rest of the log…";
    if (!active && page.done) return;
    await sleep(POLL_MS, ctx.signal);
    if (ctx.signal.aborted) return;
  }
}
