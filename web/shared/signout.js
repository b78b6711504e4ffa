// The "Sign out" button every signed-in page carries (`#signout` in the top bar).
//
// Signing out revokes the session on the server (a copy of the cookie stops working on
// every node), then goes to the sign-in page. The label is translated by the page's own
// i18n (`data-i18n="auth.signOut"`, one of the common strings).

const button = /** @type {HTMLButtonElement | null} */ (document.getElementById("signout"));

async function csrfToken() {
  const response = await fetch("/api/me", { credentials: "same-origin" });
  if (!response.ok) return null;
  const me = await response.json();
  return typeof me.csrf_token === "string" ? me.csrf_token : null;
}

/** @param {HTMLButtonElement} button */
async function signOut(button) {
  button.disabled = true;
  try {
    const token = await csrfToken();
    if (token) {
      await fetch("/auth/signout", {
        method: "POST",
        headers: { "X-CSRF-Token": token },
        credentials: "same-origin",
      });
    }
  } finally {
    window.location.assign("/signin/?error=signed_out");
  }
}

if (button) {
  button.addEventListener("click", () => signOut(button));
  csrfToken()
    .then((token) => {
      button.hidden = !token;
    })
    .catch(() => {});
}
