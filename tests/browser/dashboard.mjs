#!/usr/bin/env node
// End-to-end browser check of the web dashboard.
//
//   BASE_URL=http://127.0.0.1:38080 USER_TOKEN=... SHOP_KEY=... BUYER_ID=<uuid> ORDER_ID=<id> \
//   EXPECTED_TOTAL='₹25.00' SCREENSHOT=test-artifacts/dashboard.png node tests/browser/dashboard.mjs
//
// Signs in with USER_TOKEN, waits for the live stream (#status = "live") and the total, then POSTs a
// purchase to {BASE_URL}/v1/purchases with SHOP_KEY and waits (bounded, no sleeps) until #total shows
// EXPECTED_TOTAL (or, if unset, any change) and a new <li> appears in #ticker, without reloading.
// Saves a desktop full-page screenshot to SCREENSHOT and a 390x844 one to SCREENSHOT with "-mobile".
// Prints one line of JSON; exit 0 on success, 1 on failure (a screenshot is still attempted).
// Optional: CHROMIUM (browser path, default /usr/bin/chromium), WAIT_MS (default 20000),
// PURCHASE_AMOUNT (default "2000.00"), PURCHASE_PROFIT (default "500.00").
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const env = process.env;
const WAIT_MS = Number(env.WAIT_MS || 20000);
const started = Date.now();
const result = { ok: false };
let browser;
let page;

function need(name) {
  const v = env[name];
  if (!v || !v.trim()) throw new Error(`missing env ${name}`);
  return v.trim();
}
const mobilePath = (p) => (/\.png$/i.test(p) ? p.replace(/\.png$/i, '-mobile.png') : `${p}-mobile.png`);

async function snapshotDom() {
  if (!page) return {};
  try {
    return await page.evaluate(() => {
      const t = (id) => document.getElementById(id)?.textContent?.trim() ?? null;
      const alert = document.getElementById('alert');
      return {
        status: t('status'),
        total: t('total'),
        alert: alert && !alert.hidden ? t('alert') : null,
        signin_message: t('signin-message') || null,
        ticker_items: document.querySelectorAll('#ticker li:not(.empty)').length,
        url: location.href,
      };
    });
  } catch (e) {
    return { dom_error: String(e.message || e) };
  }
}

async function main() {
  const base = need('BASE_URL').replace(/\/+$/, '');
  const userToken = need('USER_TOKEN');
  const shopKey = need('SHOP_KEY');
  const buyerId = need('BUYER_ID');
  const orderId = need('ORDER_ID');
  const shot = need('SCREENSHOT');
  const expected = env.EXPECTED_TOTAL ? env.EXPECTED_TOTAL.trim() : null;
  result.screenshot = shot;
  mkdirSync(dirname(shot) || '.', { recursive: true });

  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-IN', timezoneId: 'UTC' });
  page = await context.newPage();
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  result.console_errors = consoleErrors;

  // 1. Sign in.
  const resp = await page.goto(`${base}/`, { waitUntil: 'domcontentloaded', timeout: WAIT_MS });
  if (!resp || !resp.ok()) throw new Error(`GET / returned ${resp ? resp.status() : 'no response'}`);
  const csp = resp.headers()['content-security-policy'] || '';
  if (!csp.includes("frame-ancestors 'none'")) throw new Error(`GET / has no framing policy: ${JSON.stringify(csp)}`);
  await page.locator('#token').fill(userToken, { timeout: WAIT_MS });
  await page.locator('#sign-in').click();

  // 2. Wait for the live stream and a loaded total.
  try {
    await page.waitForFunction(() => {
      const s = document.getElementById('status')?.textContent?.trim();
      const t = document.getElementById('total')?.textContent?.trim() || '';
      return s === 'live' && /^−?₹\d/.test(t);
    }, null, { timeout: WAIT_MS, polling: 100 });
  } catch {
    throw new Error(`dashboard did not become live within ${WAIT_MS} ms`);
  }
  // Mark the current document and ticker rows so we can prove "no reload" and detect new rows.
  result.total_before = await page.evaluate(() => {
    window.__dashboardTestMarker = 'same-document';
    for (const li of document.querySelectorAll('#ticker li')) li.dataset.testSeen = '1';
    return document.getElementById('total').textContent.trim();
  });

  // 3. Post a purchase as the shop.
  const body = { order_id: orderId, user_id: buyerId, amount: env.PURCHASE_AMOUNT || '2000.00', profit: env.PURCHASE_PROFIT || '500.00' };
  const pr = await fetch(`${base}/v1/purchases`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${shopKey}`, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  result.purchase_status = pr.status;
  const prText = await pr.text();
  if (pr.status !== 202) throw new Error(`POST /v1/purchases returned ${pr.status}: ${prText.slice(0, 300)}`);

  // 4. Wait for the live update (no reload, no sleeps).
  try {
    await page.waitForFunction(({ expected, before }) => {
      const t = document.getElementById('total')?.textContent?.trim();
      const fresh = document.querySelector('#ticker li:not([data-test-seen]):not(.empty)');
      return (expected ? t === expected : t !== before) && !!fresh;
    }, { expected, before: result.total_before }, { timeout: WAIT_MS, polling: 100 });
  } catch {
    throw new Error(`total did not become ${expected ? JSON.stringify(expected) : 'different'} with a new ticker row within ${WAIT_MS} ms`);
  }
  const after = await page.evaluate(() => ({
    total: document.getElementById('total').textContent.trim(),
    ticker: document.querySelector('#ticker li:not([data-test-seen]):not(.empty)')?.textContent.replace(/\s+/g, ' ').trim(),
    marker: window.__dashboardTestMarker,
    status: document.getElementById('status').textContent.trim(),
  }));
  if (after.marker !== 'same-document') throw new Error('page was reloaded during the live update');
  result.total_after = after.total;
  result.new_ticker_row = after.ticker;
  result.status = after.status;

  // 5. Screenshots: desktop, then phone-sized viewport.
  await page.screenshot({ path: shot, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  result.mobile_horizontal_overflow_px = await page.evaluate(
    () => Math.max(0, document.documentElement.scrollWidth - window.innerWidth));
  result.screenshot_mobile = mobilePath(shot);
  await page.screenshot({ path: result.screenshot_mobile, fullPage: true });

  // 6. The page works under its Content-Security-Policy: nothing it does was refused.
  const refused = consoleErrors.filter((e) => /Content Security Policy/i.test(e));
  if (refused.length) throw new Error(`the page broke its Content-Security-Policy: ${refused[0]}`);

  // 7. An admin (no user of their own) signs in to the admin panel, with nothing to
  //    complain about, and views the user by id.
  if (env.ADMIN_TOKEN) {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.locator('#sign-out').click();
    await page.locator('#token').fill(need('ADMIN_TOKEN'), { timeout: WAIT_MS });
    await page.locator('#sign-in').click();
    try {
      await page.waitForFunction(() => !document.getElementById('admin-panel').hidden,
        null, { timeout: WAIT_MS, polling: 100 });
    } catch {
      throw new Error(`the admin panel did not open within ${WAIT_MS} ms`);
    }
    const alert = await page.evaluate(() => {
      const a = document.getElementById('alert');
      return a && !a.hidden ? a.textContent.trim() : null;
    });
    if (alert) throw new Error(`an admin's sign-in showed an alert: ${alert}`);
    await page.locator('#view-user-id').fill(need('VIEW_USER_ID'));
    await page.locator('#view-user').click();
    try {
      await page.waitForFunction((expected) => {
        const t = document.getElementById('total')?.textContent?.trim();
        return expected ? t === expected : /^−?₹\d/.test(t || '');
      }, expected, { timeout: WAIT_MS, polling: 100 });
    } catch {
      throw new Error(`the admin's view of the user did not show ${expected} within ${WAIT_MS} ms`);
    }
    result.admin_view = 'ok';
  }

  result.ok = true;
}

const hardStop = setTimeout(() => {
  console.log(JSON.stringify({ ...result, ok: false, reason: 'hard timeout', elapsed_ms: Date.now() - started }));
  process.exit(1);
}, WAIT_MS * 3 + 30000);
hardStop.unref();

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  result.ok = false;
  result.reason = String(err && err.message ? err.message : err).split('\n')[0];
  result.page = await snapshotDom();
  if (page && result.screenshot) {
    try { await page.screenshot({ path: result.screenshot, fullPage: true }); } catch (e) { result.screenshot_error = String(e.message || e).split('\n')[0]; }
  }
}
try { if (browser) await browser.close(); } catch { /* ignore */ }
result.elapsed_ms = Date.now() - started;
if (!result.console_errors?.length) delete result.console_errors;
console.log(JSON.stringify(result));
process.exit(code);
