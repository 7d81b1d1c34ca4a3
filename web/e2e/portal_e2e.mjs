// SPDX-License-Identifier: Apache-2.0
// The portal end to end in Debian's headless Chromium, driven by
// playwright-core: sign in with a token, create a workspace from an image,
// see it reach `running` (the page is live through GET /v1/events), open
// its console, delete it and see it go. Exits 0 when every step passed,
// 1 with the step that failed otherwise (and a screenshot when asked).
//
// Run by tests/web/api_itest.cc (PortalE2e), which starts a real vigod over
// a real guest and passes, in the environment:
//   VIGO_URL       https://127.0.0.1:PORT
//   VIGO_TOKEN     a user's bearer token
//   VIGO_SPKI      base64 SHA-256 of the server certificate's public key:
//                  Chromium trusts exactly that key, nothing else
//   VIGO_SOURCE    the create form's source, e.g. image:tiny-root
//   VIGO_PROFILE   the VM profile (default tiny)
//   VIGO_NAME      the workspace name (default e2e)
//   VIGO_TIMEOUT_S how long a workspace may take to run (default 300)
//   VIGO_SCREENSHOT_DIR  where to put screenshots (optional)
//   CHROMIUM       the browser (default /usr/bin/chromium)
import { chromium } from 'playwright-core';
import path from 'node:path';

const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error('the environment lacks ' + name);
    return fallback;
  }
  return v;
};

const url = env('VIGO_URL');
const token = env('VIGO_TOKEN');
const spki = env('VIGO_SPKI');
const source = env('VIGO_SOURCE');
const profile = env('VIGO_PROFILE', 'tiny');
const name = env('VIGO_NAME', 'e2e');
const timeoutMs = Number(env('VIGO_TIMEOUT_S', '300')) * 1000;
const shots = process.env.VIGO_SCREENSHOT_DIR || '';

let step = 'launching Chromium';
const problems = [];
const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  // The machine's network is closed: no background traffic; the server's
  // certificate is self-signed: trust its key alone.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--ignore-certificate-errors-spki-list=' + spki],
});
let page;
try {
  const context = await browser.newContext();
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/net::ERR_ABORTED|aborted/i.test(m.text())) problems.push('console: ' + m.text());
  });

  step = 'opening the portal';
  const res = await page.goto(url + '/');
  if (!res || res.status() !== 200) throw new Error('GET / answered ' + (res ? res.status() : 'nothing'));

  step = 'signing in';
  await page.fill('#token', token);
  await page.click('#sign-in-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('who').textContent.startsWith('signed in as'),
                             null, { timeout: 15000 });
  if (await page.isVisible('#sign-in')) throw new Error('the sign-in form is still shown');

  step = 'waiting for the live event stream';
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', null, { timeout: 15000 });

  step = 'creating workspace ' + name + ' from ' + source;
  await page.waitForSelector(`#create-source option[value="${source}"]`, { state: 'attached', timeout: 15000 });
  await page.selectOption('#create-source', source);
  await page.fill('#create-name', name);
  await page.fill('#create-profile', profile);
  await page.click('#create-form button[type=submit]');
  const row = `#workspaces tr[data-name="${name}"]`;
  await page.waitForSelector(row, { timeout: 15000 });

  step = 'waiting for ' + name + ' to run';
  const started = Date.now();
  await page.waitForSelector(`${row} td.state-running`, { timeout: timeoutMs });
  console.log(`portal e2e: ${name} running after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (shots) await page.screenshot({ path: path.join(shots, 'portal-running.png'), fullPage: true });

  step = 'showing the console';
  await page.click(`${row} button[data-action=console]`);
  await page.waitForSelector('#console-section:not([hidden])', { timeout: 15000 });

  step = 'deleting ' + name;
  await page.click(`${row} button[data-action=delete]`);
  await page.waitForSelector(row, { state: 'detached', timeout: 120000 });
  if (problems.length > 0) throw new Error(problems.join('; '));
  if (shots) await page.screenshot({ path: path.join(shots, 'portal-deleted.png'), fullPage: true });
  console.log('portal e2e: ok (signed in, created, saw running, console, deleted)');
} catch (e) {
  console.error(`portal e2e: failed while ${step}: ${e.message}`);
  if (problems.length > 0) console.error('portal e2e: also: ' + problems.join('; '));
  if (page && shots) {
    await page.screenshot({ path: path.join(shots, 'portal-failure.png'), fullPage: true }).catch(() => {});
  }
  if (page) console.error('portal e2e: message line: ' + (await page.textContent('#message').catch(() => '?')));
  process.exitCode = 1;
} finally {
  await browser.close();
}
