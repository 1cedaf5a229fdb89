// How records read on screen: short commits, ages, durations, status badges.
import { h } from "./dom.js";

export const ACTIVE = new Set(["uploading", "queued", "building"]);

export function shortCommit(commit) {
  return commit ? commit.slice(0, 7) : "—";
}

function seconds(stamp) {
  const at = Date.parse(stamp || "");
  return Number.isNaN(at) ? null : at / 1000;
}

export function span(total) {
  if (total === null || total < 0) return "—";
  if (total < 60) return `${Math.round(total)}s`;
  if (total < 3600) return `${Math.floor(total / 60)}m ${Math.round(total % 60)}s`;
  if (total < 86400) return `${Math.floor(total / 3600)}h ${Math.floor((total % 3600) / 60)}m`;
  return `${Math.floor(total / 86400)}d`;
}

export function age(stamp) {
  const at = seconds(stamp);
  if (at === null) return "—";
  const time = h("time", { datetime: stamp, title: stamp }, `${span(Date.now() / 1000 - at)} ago`);
  return time;
}

// A finished deployment's time from its creation to its end; a running one's so far.
export function duration(record) {
  const start = seconds(record.created_at);
  const end = ACTIVE.has(record.status) ? Date.now() / 1000 : seconds(record.updated_at);
  return start === null || end === null ? "—" : span(end - start);
}

export function badge(status) {
  return h("span", { class: `badge s-${status}` }, status);
}
