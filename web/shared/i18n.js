// Tiny i18n helper shared by every page of `live`.
//
// Language choice, in order: `?lang=en|de` in the URL, the choice stored by the EN/DE switch
// (localStorage), `navigator.language`, English. Strings live in plain objects, one per
// language; a page passes its own strings and gets the common ones below merged in.
// Markup opts in with `data-i18n="key"` (text content) and
// `data-i18n-attr="aria-label:key; title:other.key"` (attributes).

export const LANGUAGES = Object.freeze(["en", "de"]);
const STORAGE_KEY = "live.lang";

/** Strings every page uses (header, language switch, roles, signed-out notice). */
export const COMMON = {
  en: {
    "product.name": "live",
    "product.tagline": "Silent monitoring",
    "lang.group": "Language",
    "lang.en": "English",
    "lang.de": "German",
    "role.supervisor": "Supervisor",
    "role.auditor": "Auditor",
    "role.admin": "Administrator",
    "role.agent": "Agent",
    "nav.home": "Home",
    "auth.signedOut": "You are signed out. Use your personal sign-in link to sign in again.",
    "auth.signinPage": "Sign-in help",
    "auth.signOut": "Sign out",
    "noscript": "This page needs JavaScript.",
  },
  de: {
    "product.name": "live",
    "product.tagline": "Stilles Mithören",
    "lang.group": "Sprache",
    "lang.en": "Englisch",
    "lang.de": "Deutsch",
    "role.supervisor": "Teamleitung",
    "role.auditor": "Prüfer/in",
    "role.admin": "Administrator/in",
    "role.agent": "Agent/in",
    "nav.home": "Startseite",
    "auth.signedOut": "Sie sind abgemeldet. Melden Sie sich mit Ihrem persönlichen Anmeldelink erneut an.",
    "auth.signinPage": "Hilfe zur Anmeldung",
    "auth.signOut": "Abmelden",
    "noscript": "Diese Seite benötigt JavaScript.",
  },
};

/** @typedef {Record<string, string>} StringTable */
/** @typedef {{en: StringTable, de: StringTable}} PageStrings */

/**
 * @param {string | null | undefined} lang
 * @returns {"en" | "de" | null}
 */
function normalise(lang) {
  const short = String(lang || "").trim().toLowerCase().slice(0, 2);
  return short === "en" || short === "de" ? short : null;
}

function readStored() {
  try {
    return normalise(window.localStorage.getItem(STORAGE_KEY));
  } catch {
    return null; // storage disabled (privacy mode, file://): fall through
  }
}

/** @param {string} lang */
function writeStored(lang) {
  try {
    window.localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    /* not persisted; the switch still works for this page */
  }
}

/** The language to start with, following the order in the header comment. */
export function detectLanguage() {
  const fromUrl = normalise(new URLSearchParams(window.location.search).get("lang"));
  return fromUrl || readStored() || normalise(navigator.language) || "en";
}

/**
 * @param {string} text
 * @param {Record<string, unknown> | null | undefined} params
 */
function interpolate(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (/** @type {string} */ whole, /** @type {string} */ name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

export class I18n {
  /** @param {PageStrings} pageStrings */
  constructor(pageStrings = { en: {}, de: {} }) {
    /** @type {PageStrings} */
    this.strings = {
      en: { ...COMMON.en, ...(pageStrings.en || {}) },
      de: { ...COMMON.de, ...(pageStrings.de || {}) },
    };
    /** @type {"en" | "de"} */
    this.lang = detectLanguage();
    /** @type {Set<(lang: string) => void>} */
    this._listeners = new Set();
    /** @type {Element[]} */
    this._switches = [];
  }

  /** @param {string} key */
  has(key) {
    return key in this.strings[this.lang] || key in this.strings.en;
  }

  /** Translate `key`; missing German falls back to English, missing English to `fallback`/key. */
  /**
   * @param {string} key
   * @param {Record<string, unknown> | null} [params]
   * @param {string} [fallback]
   * @returns {string}
   */
  t(key, params, fallback) {
    const text = this.strings[this.lang][key] ?? this.strings.en[key] ?? fallback ?? key;
    return interpolate(text, params);
  }

  /** Translate an id from the server (purpose, reason): `prefix.id`, else the raw id. */
  /**
   * @param {string} prefix
   * @param {unknown} id
   */
  label(prefix, id) {
    if (id === null || id === undefined || id === "") return "";
    return this.t(`${prefix}.${id}`, null, String(id));
  }

  /** @param {string} lang */
  setLanguage(lang) {
    const next = normalise(lang);
    if (!next) return;
    writeStored(next);
    // Keep an explicit ?lang= in the address in step, so a reload shows the chosen language.
    const url = new URL(window.location.href);
    if (url.searchParams.has("lang")) {
      url.searchParams.set("lang", next);
      window.history.replaceState(window.history.state, "", url);
    }
    if (next === this.lang) return;
    this.lang = next;
    this.apply();
    for (const fn of this._listeners) fn(next);
  }

  /** Call `fn(lang)` after every language change (to re-render dynamic text). */
  /** @param {(lang: string) => void} fn */
  onChange(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  /** Translate all marked-up elements under `root`. */
  /** @param {Document | Element} root */
  apply(root = document) {
    if (root === document) document.documentElement.lang = this.lang;
    for (const el of root.querySelectorAll("[data-i18n]")) {
      el.textContent = this.t(el.getAttribute("data-i18n") || "");
    }
    for (const el of root.querySelectorAll("[data-i18n-attr]")) {
      for (const pair of (el.getAttribute("data-i18n-attr") || "").split(";")) {
        const [attr, key] = pair.split(":").map((s) => s.trim());
        if (attr && key) el.setAttribute(attr, this.t(key));
      }
    }
    this._syncSwitches();
  }

  /**
   * Fill `container` (any element, usually `data-testid="lang-switch"`) with an EN/DE toggle.
   * Buttons carry `data-lang` and `aria-pressed`.
   */
  /** @param {Element} container */
  mountSwitch(container) {
    container.setAttribute("role", "group");
    container.classList.add("lang-switch");
    container.replaceChildren();
    for (const lang of LANGUAGES) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.lang = lang;
      button.lang = lang;
      button.textContent = lang.toUpperCase();
      button.addEventListener("click", () => this.setLanguage(lang));
      container.append(button);
    }
    this._switches = [...this._switches, container];
    this._syncSwitches();
  }

  _syncSwitches() {
    for (const container of this._switches) {
      container.setAttribute("aria-label", this.t("lang.group"));
      for (const button of container.querySelectorAll("button[data-lang]")) {
        const lang = button.getAttribute("data-lang") === "de" ? "de" : "en";
        button.setAttribute("aria-pressed", String(lang === this.lang));
        // Name each language in its own language, the usual convention for switches.
        button.setAttribute("aria-label", this.strings[lang][`lang.${lang}`]);
        button.setAttribute("title", this.strings[lang][`lang.${lang}`]);
      }
    }
  }
}

