// Sign-in help: shown when there is no valid session. Explains the personal link, shows
// `?error=<code>` from the server's `/auth/link` route, and accepts a pasted link or token.

import { I18n } from "../shared/i18n.js";

const STRINGS = {
  en: {
    "signin.title": "Sign in · live",
    "signin.heading": "Sign in with your personal link",
    "signin.intro":
      "You sign in by opening the personal link you received from your administrator or by e-mail.",
    "signin.step1": "Find the message with your personal sign-in link.",
    "signin.step2":
      "Open the link in this browser. You are then signed in and taken to your page.",
    "signin.step3": "Do not share the link: it signs in as you.",
    "signin.pasteLabel": "Or paste your link here",
    "signin.pasteHint": "The whole link, or just the token from it.",
    "signin.pasteEmpty": "Paste the link you received.",
    "signin.submit": "Sign in",
    "signin.error.bad_link":
      "This sign-in link is not valid or no longer works. Check that you copied all of it, or ask your administrator for a new one.",
    "signin.error.invalid": "This sign-in link is not valid. Check that you copied all of it.",
    "signin.error.expired": "This sign-in link has expired. Ask your administrator for a new one.",
    "signin.error.used": "This sign-in link has already been used. Ask your administrator for a new one.",
    "signin.error.revoked": "This sign-in link was withdrawn. Ask your administrator for a new one.",
    "signin.error.missing": "The sign-in link was incomplete: it has no token.",
    "signin.error.unknown_user": "The account for this link no longer exists.",
    "signin.error.disabled": "Your account is disabled. Ask your administrator.",
    "signin.error.signed_out": "You were signed out. Use your personal link to sign in again.",
    "signin.error.session_expired": "Your session has expired. Use your personal link to sign in again.",
    "signin.error.generic": "Sign-in did not work ({code}). Ask your administrator for a new link.",
    "signin.passwordHeading": "Sign in with user name and password",
    "signin.user": "User name",
    "signin.password": "Password",
    "signin.oidcHeading": "Sign in with your organisation's account",
    "signin.oidcButton": "Continue to your organisation's sign-in",
    "signin.error.bad_credentials": "Wrong user name or password.",
    "signin.error.rate_limited": "Too many attempts. Wait a minute and try again.",
    "signin.error.oidc_no_role": "Your organisation's account has no role in live. Ask your administrator.",
    "signin.error.oidc_user_collides": "Your organisation's account collides with a local account. Ask your administrator.",
    "signin.error.network": "The server could not be reached. Try again.",
  },
  de: {
    "signin.title": "Anmelden · live",
    "signin.heading": "Mit Ihrem persönlichen Link anmelden",
    "signin.intro":
      "Sie melden sich an, indem Sie den persönlichen Link öffnen, den Sie von Ihrer Administration oder per E-Mail erhalten haben.",
    "signin.step1": "Suchen Sie die Nachricht mit Ihrem persönlichen Anmeldelink.",
    "signin.step2":
      "Öffnen Sie den Link in diesem Browser. Sie werden angemeldet und zu Ihrer Seite weitergeleitet.",
    "signin.step3": "Geben Sie den Link nicht weiter: Er meldet Sie an.",
    "signin.pasteLabel": "Oder fügen Sie Ihren Link hier ein",
    "signin.pasteHint": "Den ganzen Link oder nur das Token daraus.",
    "signin.pasteEmpty": "Fügen Sie den erhaltenen Link ein.",
    "signin.submit": "Anmelden",
    "signin.error.bad_link":
      "Dieser Anmeldelink ist ungültig oder funktioniert nicht mehr. Prüfen Sie, ob Sie ihn vollständig kopiert haben, oder bitten Sie Ihre Administration um einen neuen.",
    "signin.error.invalid":
      "Dieser Anmeldelink ist ungültig. Prüfen Sie, ob Sie ihn vollständig kopiert haben.",
    "signin.error.expired":
      "Dieser Anmeldelink ist abgelaufen. Bitten Sie Ihre Administration um einen neuen.",
    "signin.error.used":
      "Dieser Anmeldelink wurde bereits verwendet. Bitten Sie Ihre Administration um einen neuen.",
    "signin.error.revoked":
      "Dieser Anmeldelink wurde zurückgezogen. Bitten Sie Ihre Administration um einen neuen.",
    "signin.error.missing": "Der Anmeldelink war unvollständig: Es fehlt das Token.",
    "signin.error.unknown_user": "Das Konto zu diesem Link existiert nicht mehr.",
    "signin.error.disabled": "Ihr Konto ist gesperrt. Wenden Sie sich an Ihre Administration.",
    "signin.error.signed_out":
      "Sie wurden abgemeldet. Melden Sie sich mit Ihrem persönlichen Link erneut an.",
    "signin.error.session_expired":
      "Ihre Sitzung ist abgelaufen. Melden Sie sich mit Ihrem persönlichen Link erneut an.",
    "signin.error.generic":
      "Die Anmeldung hat nicht funktioniert ({code}). Bitten Sie Ihre Administration um einen neuen Link.",
    "signin.passwordHeading": "Mit Benutzername und Passwort anmelden",
    "signin.user": "Benutzername",
    "signin.password": "Passwort",
    "signin.oidcHeading": "Mit dem Konto Ihrer Organisation anmelden",
    "signin.oidcButton": "Weiter zur Anmeldung Ihrer Organisation",
    "signin.error.bad_credentials": "Benutzername oder Passwort ist falsch.",
    "signin.error.rate_limited": "Zu viele Versuche. Warten Sie eine Minute und versuchen Sie es erneut.",
    "signin.error.oidc_no_role": "Das Konto Ihrer Organisation hat keine Rolle in live. Wenden Sie sich an Ihre Administration.",
    "signin.error.oidc_user_collides": "Das Konto Ihrer Organisation kollidiert mit einem lokalen Konto. Wenden Sie sich an Ihre Administration.",
    "signin.error.network": "Der Server ist nicht erreichbar. Versuchen Sie es erneut.",
  },
};

const i18n = new I18n(STRINGS);
const errorBox = /** @type {HTMLElement} */ (document.getElementById("signin-error"));
const form = /** @type {HTMLFormElement} */ (document.getElementById("signin-form"));
const input = /** @type {HTMLInputElement} */ (document.getElementById("signin-link"));
const formError = /** @type {HTMLElement} */ (document.getElementById("signin-form-error"));

// Error codes may come as "expired" or "link-expired"; compare in one spelling.
const errorCode = (new URLSearchParams(window.location.search).get("error") || "").trim();
const errorKey = `signin.error.${errorCode.toLowerCase().replace(/^link[-_]/, "").replace(/-/g, "_")}`;

function renderError() {
  if (!errorCode) return;
  errorBox.hidden = false;
  // textContent only: the code comes from the address bar.
  errorBox.textContent = i18n.has(errorKey)
    ? i18n.t(errorKey)
    : i18n.t("signin.error.generic", { code: errorCode.slice(0, 80) });
}

/** The token from a pasted link (`…/auth/link?token=…`) or a bare token. */
/** @param {string} text */
function tokenFrom(text) {
  const value = text.trim();
  if (!value) return null;
  try {
    const url = new URL(value);
    return url.searchParams.get("token");
  } catch {
    return /^[\w.~-]+$/.test(value) ? value : null;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = tokenFrom(input.value);
  if (!token) {
    formError.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  // Always this server's route, whatever host a pasted link names.
  window.location.assign(`/auth/link?token=${encodeURIComponent(token)}`);
});
input.addEventListener("input", () => {
  formError.hidden = true;
  input.removeAttribute("aria-invalid");
});

// User name and password (local users), and the organisation's sign-in when configured.
const passwordForm = /** @type {HTMLFormElement} */ (document.getElementById("password-form"));
const passwordError = /** @type {HTMLElement} */ (document.getElementById("password-error"));
/** @type {string | null} */
let passwordErrorKey = null;

function showPasswordError() {
  passwordError.hidden = !passwordErrorKey;
  if (passwordErrorKey) {
    passwordError.textContent = i18n.has(`signin.error.${passwordErrorKey}`)
      ? i18n.t(`signin.error.${passwordErrorKey}`)
      : i18n.t("signin.error.generic", { code: passwordErrorKey.slice(0, 80) });
  }
}

passwordForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = /** @type {HTMLInputElement} */ (document.getElementById("signin-user")).value.trim();
  const password = /** @type {HTMLInputElement} */ (document.getElementById("signin-password")).value;
  try {
    const response = await fetch("/auth/signin", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user, password }),
      credentials: "same-origin",
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      window.location.assign(typeof body.home === "string" && body.home.startsWith("/") ? body.home : "/");
      return;
    }
    passwordErrorKey = String(body?.error?.code || response.status);
  } catch {
    passwordErrorKey = "network";
  }
  showPasswordError();
});

async function showMethods() {
  try {
    const response = await fetch("/auth/methods", { credentials: "same-origin" });
    const methods = await response.json();
    /** @type {HTMLElement} */ (document.getElementById("oidc-card")).hidden = !methods.oidc;
    /** @type {HTMLElement} */ (document.getElementById("password-card")).hidden = !methods.password;
    const next = new URLSearchParams(window.location.search).get("next");
    if (next && next.startsWith("/") && !next.startsWith("//")) {
      /** @type {HTMLAnchorElement} */ (document.getElementById("oidc-link")).href = `/auth/oidc/login?next=${encodeURIComponent(next)}`;
    }
  } catch {
    // keep the defaults: link and password shown
  }
}

i18n.mountSwitch(/** @type {HTMLElement} */ (document.getElementById("lang-switch")));
i18n.apply();
renderError();
i18n.onChange(renderError);
i18n.onChange(showPasswordError);
showMethods();
