// Building elements from data. Text always goes in as text nodes, never as markup, so nothing
// the API returns can become HTML.

export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  add(element, children);
  return element;
}

function add(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

// Only http(s) addresses become links: a stored value can never be a javascript: URL.
export function link(url, text) {
  let parsed = null;
  try {
    parsed = new URL(url);
  } catch {
    parsed = null;
  }
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) return h("span", null, text || url || "");
  return h("a", { href: parsed.href, target: "_blank", rel: "noreferrer" }, text || url);
}

// A table that becomes a list of cards on a narrow screen: each cell carries its column's
// name for the stylesheet to show beside it.
export function table(caption, columns, rows) {
  return h("table", { class: "rows" },
    h("caption", null, caption),
    h("thead", null, h("tr", null, columns.map((column) => h("th", { scope: "col" }, column)))),
    h("tbody", null, rows.map((cells) => h("tr", null, cells.map((cell, index) =>
      h("td", { "data-label": columns[index] }, cell))))));
}

export function field(label, input, hint) {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
           hint ? h("small", { id: hintId }, hint) : null);
}
