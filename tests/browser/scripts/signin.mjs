// Shared steps of the page scripts: sign in through a personal link.

/** Open `t.args.base` + /auth/link?token=… in a new page of `width` and land on `landing`. */
export async function signIn(t, token, landing, { width = 1280, height = 900, lang = "en" } = {}) {
  const page = await t.newPage({ width, height });
  await page.goto(`${t.args.base}/auth/link?token=${encodeURIComponent(token)}`);
  await t.waitFor(page, `signed in, on ${landing}`, (path) => window.location.pathname === path, landing);
  if (lang !== "en") {
    await page.goto(`${t.args.base}${landing}?lang=${lang}`);
  }
  return page;
}

/** Text of every element matching `selector`. */
export function texts(page, selector) {
  return page.$$eval(selector, (els) => els.map((el) => el.textContent.trim()));
}
