// The admin console in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser is ever downloaded). Started by tests/tests/suite/admin_console.rs
// against a real server, with a paid request ready for a dispute:
// BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD, BUYER_EMAIL, BUYER_PASSWORD, BUYER_TOKEN,
// SELLER_TOKEN, REQUEST_ID; OTHER_BUYER_TOKEN and LATE_PAYMENT_ID (a payment completed after its
// request was cancelled, whose buyer has no payout address yet); SCREENSHOT (optional): where
// to save a picture of the console; PHOTO_ID and PDF_ID: the buyer's uploads to add as evidence;
// DELIVER_REQUEST_ID with DELIVER_SELLER_TOKEN and DELIVER_BUYER_TOKEN: another paid request,
// which its seller delivers and its buyer then completes while the console watches.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { WAIT, assertClean, env, launch, openConsole as open, rest as call, signIn } from "./kit.mjs";

const BASE = env("BASE_URL");

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const openConsole = (viewport) => open(browser, BASE, viewport);
const rest = (method, path, token, body) => call(BASE, method, path, token, body);

test("a non-admin gets a clear error and sees no data", async () => {
  const { context, page, seen } = await openConsole();
  await signIn(page, env("BUYER_EMAIL"), env("BUYER_PASSWORD"));
  const error = page.locator("#login-error");
  await error.waitFor({ state: "visible", ...WAIT });
  assert.match(await error.textContent(), /admins only/i);
  assert.equal(await page.locator("#app-view").isVisible(), false, "the console is shown");
  assert.equal(await page.locator("[data-dispute-id]").count(), 0, "disputes are shown");
  assert.equal(await page.locator("#feed li").count(), 0, "events are shown");
  // Nothing but the page, its assets and the login call: no data endpoint, no socket.
  const calls = seen.urls.filter((u) => u.includes("/api/") && !u.endsWith("/api/auth/login"));
  assert.deepEqual(calls, []);
  assert.equal(seen.urls.filter((u) => u.includes("/socket.io/")).length, 0, "a socket was opened");
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "the token was kept");
  assertClean(seen);
  await context.close();
});

test("an admin follows a dispute live and resolves it from the page", async () => {
  const { context, page, seen } = await openConsole();
  await signIn(page, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  await page.locator("#live[data-state=live]").waitFor(WAIT);
  await page.locator("#disputes-empty").waitFor({ state: "visible", ...WAIT });
  // The nodes table fills from the heartbeat; this server has one node with our socket.
  await page.locator("#nodes tr td.num").first().waitFor(WAIT);

  // Opened over REST: it appears without a reload.
  const requestId = env("REQUEST_ID");
  const buyer = env("BUYER_TOKEN");
  const opened = await rest("POST", `/api/requests/${requestId}/disputes`, buyer, { reason: "The frame is cracked." });
  assert.equal(opened.status, 201, JSON.stringify(opened.body));
  const card = page.locator(`[data-dispute-id="${opened.body.id}"]`);
  await card.waitFor(WAIT);
  assert.match(await card.textContent(), /The frame is cracked\./);
  await card.locator("[data-request-status=disputed]").waitFor(WAIT);
  await card.getByText("No evidence yet").waitFor(WAIT);
  await page.locator('#feed [data-event="dispute:opened"]').first().waitFor(WAIT);

  // Evidence added over REST appears in the card.
  const evidence = await rest("POST", `/api/disputes/${opened.body.id}/evidence`, buyer, {
    description: "Photo of the crack near the seat tube",
    attachmentUrl: "https://example.com/crack.jpg",
  });
  assert.equal(evidence.status, 201, JSON.stringify(evidence.body));
  await card.locator(`[data-evidence-id="${evidence.body.id}"]`).waitFor(WAIT);
  assert.match(await card.textContent(), /Photo of the crack near the seat tube/);
  await page.locator('#feed [data-event="dispute:evidence-added"]').first().waitFor(WAIT);

  // Evidence with files: the photo shows as its thumbnail, the PDF as a link, both with
  // their SHA-256.
  const withFiles = await rest("POST", `/api/disputes/${opened.body.id}/evidence`, buyer, {
    description: "Close-up and the receipt",
    attachmentIds: [env("PHOTO_ID"), env("PDF_ID")],
  });
  assert.equal(withFiles.status, 201, JSON.stringify(withFiles.body));
  const photo = card.locator(`[data-attachment-id="${env("PHOTO_ID")}"]`);
  const thumb = photo.locator("img.thumb");
  await thumb.waitFor(WAIT);
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await thumb.elementHandle(), WAIT);
  assert.match(await photo.textContent(), new RegExp(`sha256 ${withFiles.body.attachments[0].sha256}`));
  const pdf = card.locator(`[data-attachment-id="${env("PDF_ID")}"]`);
  await pdf.waitFor(WAIT);
  assert.match(await pdf.textContent(), /receipt\.pdf/);
  assert.equal(await pdf.locator("a").getAttribute("href"), withFiles.body.attachments[1].url);

  if (process.env.SCREENSHOT) {
    // The next heartbeat and refresh (5 s each) count this page's socket.
    await page.locator("#sockets-total:not(:text-is('0'))").waitFor({ timeout: 30_000 });
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }

  // A refund to a buyer without a payout address: the contract's error, shown plainly.
  await card.getByLabel("Refund the buyer").check();
  await card.getByLabel(/^Note/).fill("Damaged in transit.");
  await card.getByRole("button", { name: "Resolve dispute" }).click();
  const alert = card.locator("[role=alert]");
  await alert.waitFor({ state: "visible", ...WAIT });
  assert.match(await alert.textContent(), /no_payout_address/);
  assert.match(await alert.textContent(), /no payout address/i);

  // Release to the seller instead, using only the keyboard for the choice.
  await card.getByLabel("Release to the seller").focus();
  await page.keyboard.press("Space");
  assert.equal(await card.getByLabel("Release to the seller").isChecked(), true);
  await card.getByLabel(/^Note/).fill("Seller showed the bike was fine when shipped.");
  await card.getByRole("button", { name: "Resolve dispute" }).click();
  await card.waitFor({ state: "detached", ...WAIT });
  await page.locator('#feed [data-event="dispute:resolved"]').first().waitFor(WAIT);

  // Checked over REST: the request moved and the payout to the seller started.
  const request = await rest("GET", `/api/requests/${requestId}`, buyer);
  assert.equal(request.body.status, "completed");
  const payouts = await rest("GET", "/api/payouts", env("SELLER_TOKEN"));
  assert.equal(payouts.status, 200);
  assert.equal(payouts.body.items.length, 1);
  assert.equal(payouts.body.items[0].kind, "release");
  assert.equal(payouts.body.items[0].requestId, requestId);

  assertClean(seen);
  await context.close();
});

test("money that needs attention is refunded from the page", async () => {
  const { context, page, seen } = await openConsole();
  await signIn(page, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  const item = page.locator(`[data-attention-id="${env("LATE_PAYMENT_ID")}"]`);
  await item.waitFor(WAIT);
  assert.match(await item.textContent(), /Paid after cancel/);
  const refund = item.getByRole("button", { name: "Refund the buyer" });
  // The buyer has no payout address: the contract's refusal, spelled out.
  await refund.click();
  const alert = item.locator("[role=alert]");
  await alert.waitFor({ state: "visible", ...WAIT });
  assert.match(await alert.textContent(), /no_payout_address/);
  const buyer = env("OTHER_BUYER_TOKEN");
  const patched = await rest("PATCH", "/api/users/me", buyer, { payoutAddress: "bc1q-late-buyer" });
  assert.equal(patched.status, 200);
  await refund.click();
  await item.waitFor({ state: "detached", ...WAIT });
  // Checked over REST: one refund payout to the buyer.
  const payouts = await rest("GET", "/api/payouts", buyer);
  assert.equal(payouts.body.items.length, 1);
  assert.equal(payouts.body.items[0].kind, "refund");
  assert.equal(payouts.body.items[0].paymentId, env("LATE_PAYMENT_ID"));
  assertClean(seen);
  await context.close();
});

test("a delivered request shows when it completes by itself, and leaves when its buyer completes it", async () => {
  const { context, page, seen } = await openConsole();
  await signIn(page, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  await page.locator("#live[data-state=live]").waitFor(WAIT);
  const requestId = env("DELIVER_REQUEST_ID");
  const row = page.locator(`[data-delivered-id="${requestId}"]`);
  assert.equal(await row.count(), 0, "shown before it was delivered");

  const delivered = await rest("POST", `/api/requests/${requestId}/deliver`, env("DELIVER_SELLER_TOKEN"));
  assert.equal(delivered.status, 200, JSON.stringify(delivered.body));
  assert.equal(delivered.body.status, "delivered");
  // Picked up without a reload, with its automatic completion time and a countdown.
  await row.waitFor(WAIT);
  const shown = await row.locator("time").first().getAttribute("datetime");
  assert.equal(new Date(shown).getTime(), new Date(delivered.body.autoCompleteAt).getTime());
  assert.match(await row.locator("[data-countdown]").textContent(), /^in (13 d 23 h|14 d 0 h)$/);
  assert.match(await row.textContent(), /completes by itself/);
  assert.notEqual(await page.locator("#delivered-count").textContent(), "0");

  // The buyer completes it: it leaves the list at once (the console follows its room).
  const completed = await rest("POST", `/api/requests/${requestId}/complete`, env("DELIVER_BUYER_TOKEN"));
  assert.equal(completed.status, 200, JSON.stringify(completed.body));
  await row.waitFor({ state: "detached", timeout: 4_000 });
  await page.locator('#feed [data-event="request:status-updated"]').first().waitFor(WAIT);
  assertClean(seen);
  await context.close();
});

test("the console is readable at phone width", async () => {
  const { context, page, seen } = await openConsole({ width: 390, height: 844 });
  await signIn(page, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  await page.locator("#live[data-state=live]").waitFor(WAIT);
  // One column, nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  if (process.env.SCREENSHOT) {
    await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, "-phone.png") });
  }
  // Signing out forgets the token.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.locator("#login-view").waitFor(WAIT);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assertClean(seen);
  await context.close();
});
