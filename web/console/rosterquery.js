// What the roster shows and in which order, as pure functions over the calls of
// `/api/events`: the filter (search text, team, queue, consent, being listened), the sort
// orders, and the counts per team. No DOM here.
//
// Order is stable on purpose: every sort key is something a call keeps for its life (agent,
// team, queue, start), so a row never moves when another call starts or ends, or when its
// own consent or listeners change. Ties fall back to the start time, then the call id.

export const SORTS = Object.freeze(["started", "agent", "team", "queue"]);
export const LISTENED = Object.freeze(["any", "listened", "unlistened", "mine"]);
export const CONSENTS = Object.freeze(["any", "granted", "denied", "unknown"]);

/** The name people know the agent by: the server's `agent_name`, else the id. */
export function agentLabel(call) {
  return (call && (call.agent_name || call.agent_id)) || "?";
}

export function emptyFilter() {
  return { text: "", team: "", queue: "", consent: "any", listened: "any" };
}

function folded(value) {
  return String(value || "")
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase();
}

/** The words a search looks in, computed once per call version. */
export function searchText(call) {
  return folded([call.agent_name, call.agent_id, call.queue, call.team].join(" "));
}

/**
 * Whether `call` passes `filter`. `meId` is the signed-in user's id (for "listened by me").
 * Every word of the search text must occur (agent name or id, queue, team).
 */
export function matches(call, filter, meId, text = searchText(call)) {
  if (filter.team && (call.team || "") !== filter.team) return false;
  if (filter.queue && (call.queue || "") !== filter.queue) return false;
  if (filter.consent !== "any" && (call.consent || "unknown") !== filter.consent) return false;
  const listeners = call.listeners || [];
  if (filter.listened === "listened" && listeners.length === 0) return false;
  if (filter.listened === "unlistened" && listeners.length > 0) return false;
  if (filter.listened === "mine" && !listeners.some((l) => l.user_id === meId)) return false;
  const words = folded(filter.text).split(/\s+/).filter(Boolean);
  return words.every((word) => text.includes(word));
}

const collator = () => new Intl.Collator(undefined, { sensitivity: "base", numeric: true });

/** A comparator for sort `key` (one of SORTS). */
export function comparator(key, locale) {
  const names = new Intl.Collator(locale, { sensitivity: "base", numeric: true });
  const byStart = (a, b) =>
    a.started_at - b.started_at || String(a.call_id).localeCompare(String(b.call_id));
  const byText = (field) => (a, b) => {
    const x = field(a);
    const y = field(b);
    if (!x !== !y) return x ? -1 : 1; // calls without a team or queue go last
    return names.compare(x, y) || byStart(a, b);
  };
  switch (key) {
    case "agent":
      return byText(agentLabel);
    case "team":
      return byText((c) => c.team || "");
    case "queue":
      return byText((c) => c.queue || "");
    default:
      return byStart;
  }
}

/** Where `call` goes in `ordered` (sorted by `compare`): binary search, O(log n). */
export function insertionIndex(ordered, call, compare) {
  let low = 0;
  let high = ordered.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (compare(ordered[mid], call) <= 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Calls per team, and the queues seen: `{teams: [[team, count]], queues: [queue]}`. */
export function summarise(calls) {
  const teams = new Map();
  const queues = new Set();
  for (const call of calls) {
    const team = call.team || "";
    teams.set(team, (teams.get(team) || 0) + 1);
    if (call.queue) queues.add(call.queue);
  }
  const names = collator();
  return {
    teams: [...teams.entries()].sort(([a], [b]) => (!a !== !b ? (a ? -1 : 1) : names.compare(a, b))),
    queues: [...queues].sort(names.compare),
  };
}
