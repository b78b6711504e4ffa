// The console at 375 px, in English and German: nothing scrolls sideways, nothing sticks out
// on the right, and the first row's Listen button is on screen with its words.
//
// args: {base, token (a supervisor's), rows, listen: {en, de}}

import { signIn } from "./signin.mjs";
import { waitRows } from "./console.mjs";

export default async function (t) {
  for (const lang of ["en", "de"]) {
    const page = await signIn(t, t.args.token, "/console/", { width: 375, height: 740, lang });
    await waitRows(t, page, `${lang}: the roster at 375 px`, t.args.rows);
    await t.noHorizontalScroll(page, `${lang}: the console does not scroll sideways at 375 px`);
    const layout = await page.evaluate(() => {
      const width = document.documentElement.clientWidth;
      const button = document.querySelector('[data-testid="call-row"] [data-testid="listen-button"]');
      const box = button.getBoundingClientRect();
      const outside = [...document.querySelectorAll("body *")]
        .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().right > width + 1)
        .map((e) => `${e.tagName.toLowerCase()}.${e.className}`)
        .slice(0, 5);
      return { outside, left: box.left, right: box.right, top: box.top, bottom: box.bottom,
        width, height: window.innerHeight, text: button.textContent };
    });
    t.check(layout.outside.length === 0, `${lang}: nothing sticks out on the right`, layout);
    t.check(layout.left >= 0 && layout.right <= layout.width && layout.top >= 0 && layout.bottom <= layout.height,
      `${lang}: the first Listen button is on screen`, layout);
    t.check(layout.text === t.args.listen[lang], `${lang}: it says "${t.args.listen[lang]}"`, layout.text);
    await page.close();
  }
}
