// API tokens, for admins: the list, a new token (its secret shown once) and revoking one.
import { call, enc } from "./api.js";
import { h, field, table } from "./dom.js";
import { age } from "./format.js";

const ROLES = ["read", "deploy", "admin"];

export async function tokens(ctx) {
  let list;
  try {
    ({ tokens: list } = await call("GET", "/api/tokens", undefined, ctx.signal));
  } catch (error) {
    if (error.status !== 403) throw error;
    ctx.main.replaceChildren(h("h1", null, "Tokens"),
      h("p", { class: "notice", id: "tokens-forbidden" },
        "This token cannot manage tokens: that needs a token with the admin role. ",
        `(The API said: ${error.message}.)`));
    return;
  }
  const revoke = async (event, item) => {
    const ok = await ctx.confirm({ title: `Revoke ${item.name}?`, action: "Revoke token",
      text: `Token ${item.id} (${item.role}) is refused from the next request on. This cannot be undone.` });
    if (!ok) return;
    event.target.disabled = true;
    try {
      await call("DELETE", `/api/tokens/${enc(item.id)}`);
      ctx.go("#/tokens", `Revoked ${item.name}.`);
    } catch (error) {
      ctx.fail(error);
      event.target.disabled = false;
    }
  };
  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off" });
  const role = h("select", { name: "role" }, ROLES.map((value) => h("option", { value }, value)));
  const scope = h("input", { type: "text", name: "projects", autocomplete: "off", spellcheck: "false" });
  const days = h("input", { type: "number", name: "expires_in_days", min: "1", inputmode: "numeric" });
  const created = h("div", { id: "new-token" });
  const form = h("form", { class: "card", "aria-labelledby": "create-token" },
    h("h2", { id: "create-token" }, "New token"),
    field("Name", name),
    field("Role", role, "read: GET only; deploy: also deploy, cancel, promote, roll back; admin: everything."),
    field("Projects", scope, "Comma-separated; empty: every project."),
    field("Expires in days", days, "Empty: never."),
    h("button", { type: "submit", class: "primary" }, "Create token"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), role: role.value };
    const projects = scope.value.split(",").map((item) => item.trim()).filter(Boolean);
    if (projects.length) body.projects = projects;
    if (days.value) body.expires_in_days = Number(days.value);
    try {
      const made = await call("POST", "/api/tokens", body, ctx.signal);
      await tokens(ctx);
      const shown = ctx.main.querySelector("#new-token");
      shown.replaceChildren(
        h("p", null, `Token ${made.name} (${made.role}). Copy it now: it is shown this once.`),
        h("pre", { class: "secret", id: "new-token-secret", tabindex: "0", "aria-label": "New token" }, made.token));
      shown.querySelector("pre").focus();
      ctx.say(`Created token ${made.name}.`);
    } catch (error) {
      ctx.fail(error);
    }
  });
  ctx.main.replaceChildren(
    h("h1", null, "Tokens"), created,
    list.length === 0 ? h("p", null, "No tokens yet (the admin token from the settings is not listed).")
      : table("API tokens", ["Name", "Id", "Role", "Projects", "Created", "Expires", ""], list.map((item) => [
        item.name, h("code", null, item.id), item.role,
        item.projects ? item.projects.join(", ") : "all", age(item.created_at), item.expires_at || "never",
        h("button", { type: "button", class: "danger", "aria-label": `Revoke ${item.name}`,
                      onclick: (event) => revoke(event, item) }, "Revoke"),
      ])),
    form);
}
