// How long something lasted, shown the same way on every page and in every document.
//
// The rule (the same as live/l10n/durations.py on the server): whole seconds, rounded to the
// nearest second with halves rounded up, never below zero. Two renderings of those seconds:
// `clock` (m:ss, or h:mm:ss from one hour on) for tables and timers, and `spoken` (words,
// per language) for sentences.

/** @type {Readonly<Record<string, string[]>>} */
const UNITS = Object.freeze({
  en: ["h", "min", "s"],
  de: ["Std.", "Min.", "Sek."],
});

/**
 * The rule: nearest whole second, halves up, never below zero.
 * @param {unknown} seconds
 * @returns {number}
 */
export function wholeSeconds(seconds) {
  const value = Number(seconds);
  if (!Number.isFinite(value)) return 0;
  return Math.max(0, Math.floor(value + 0.5));
}

/**
 * @param {unknown} seconds
 * @returns {[number, number, number]} hours, minutes, seconds
 */
function parts(seconds) {
  const s = wholeSeconds(seconds);
  return [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
}

/**
 * `m:ss`, or `h:mm:ss` from one hour on.
 * @param {unknown} seconds
 * @returns {string}
 */
export function clock(seconds) {
  const [hours, minutes, secs] = parts(seconds);
  const ss = String(secs).padStart(2, "0");
  if (hours > 0) return `${hours}:${String(minutes).padStart(2, "0")}:${ss}`;
  return `${minutes}:${ss}`;
}

/**
 * `m:ss–m:ss`: a duration known only within bounds (a listen cut by a server crash).
 * @param {unknown} shortest
 * @param {unknown} longest
 * @returns {string}
 */
export function clockSpan(shortest, longest) {
  return `${clock(shortest)}–${clock(longest)}`;
}

/**
 * `3 min 12 s`, `1 h 2 min` (German `3 Min. 12 Sek.`): zero parts left out, `0 s` for none.
 * @param {unknown} seconds
 * @param {string} [lang]
 * @returns {string}
 */
export function spoken(seconds, lang = "en") {
  const units = UNITS[lang] || UNITS.en;
  const words = parts(seconds)
    .map((value, index) => (value ? `${value} ${units[index]}` : ""))
    .filter(Boolean);
  return words.join(" ") || `0 ${units[2]}`;
}
