// Durations for people, one rule on every page: round to whole seconds, then
// "1 h 02 min", "5 min 03 s", "42 s" (German "1 Std. 02 Min.", "5 Min. 03 Sek.", "42 Sek.").

const UNITS = {
  en: { h: "h", min: "min", s: "s" },
  de: { h: "Std.", min: "Min.", s: "Sek." },
};

/** `seconds` (any number) as text in `lang` ("en" | "de"; anything else is English). */
export function formatDuration(seconds, lang = "en") {
  const unit = UNITS[lang] || UNITS.en;
  const total = Math.max(0, Math.round(Number(seconds) || 0));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (hours > 0) return `${hours} ${unit.h} ${two(minutes)} ${unit.min}`;
  if (minutes > 0) return `${minutes} ${unit.min} ${two(rest)} ${unit.s}`;
  return `${rest} ${unit.s}`;
}
