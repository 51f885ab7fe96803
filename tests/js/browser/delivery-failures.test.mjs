// The admin console's "Mail and push failures" panel in headless Chromium. Started by
// tests/tests/suite/admin_console.rs against a real server where one email was refused for good
// (BOUNCED_EMAIL) and one push was refused by its push service (PUSH_USER_ID):
// BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD, BOUNCED_EMAIL, PUSH_USER_ID, PUSH_ORIGIN.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { WAIT, assertClean, env, launch, openConsole, signIn } from "./kit.mjs";

const BASE = env("BASE_URL");
let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test("an admin sees the bounced email and the refused push", async () => {
  const { context, page, seen } = await openConsole(browser, BASE);
  await signIn(page, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  const mail = page.locator("#delivery [data-mail-failure-id]");
  const push = page.locator("#delivery [data-push-failure-id]");
  await mail.first().waitFor(WAIT);
  await push.first().waitFor(WAIT);
  assert.equal(await page.locator("#delivery-count").textContent(), "2");
  const mailText = await mail.first().textContent();
  assert.match(mailText, /email bounced/);
  assert.ok(mailText.includes(env("BOUNCED_EMAIL")), mailText);
  assert.match(mailText, /550/);
  const pushText = await push.first().textContent();
  assert.match(pushText, /push failed/);
  assert.ok(pushText.includes(env("PUSH_ORIGIN")), pushText);
  assert.ok(pushText.includes(env("PUSH_USER_ID").slice(-8)), pushText);
  assert.match(pushText, /400/);
  assert.equal(await page.locator("#delivery-empty").isVisible(), false);
  assertClean(seen);
  await context.close();
});
