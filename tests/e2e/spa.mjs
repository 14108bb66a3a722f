// Browser end-to-end test of the single-page app (examples/spa): oidc-client-ts in headless Chromium
// signs in with facegate (code + PKCE, public client, token and userinfo called cross-origin), the
// page shows the ID token's claims, and signing out ends facegate's session too.
import path from 'node:path';
import { check, facegate, finish, launch, out, results } from './lib.mjs';

const fg = await facegate();
const aliceId = fg.cli(['user', 'add', '--username', 'alice', '--email', 'alice@example.com', '--name', 'Alice Example', '--password-stdin'], 'correct horse battery staple\n');

const claim = async (page, table, name) => ((await page.textContent(`#${table} tr[data-claim="${name}"] td`).catch(() => null)) ?? '').trim();

let browser, page;
try {
  await fg.start();
  const spa = await fg.spa();
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  const corsErrors = [];
  page.on('console', (m) => {
    if (/CORS|Access-Control/i.test(m.text())) corsErrors.push(m.text());
    if (process.env.E2E_VERBOSE) console.log(`      console: ${m.text()}`);
  });
  const tokenCalls = [];
  page.on('response', (r) => { if (r.url() === `${fg.issuer}/token`) tokenCalls.push(r.status()); });

  await page.goto(`${spa.url}/`);
  await page.waitForSelector('#signed-out:not([hidden])');
  check('the SPA starts signed out', (await page.textContent('#status')).includes('not signed in'));
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login**`);
  const authorize = new URL(page.url());
  check('the SPA sent the browser to facegate', authorize.origin === fg.issuer);
  await page.fill('#username', 'alice');
  await page.fill('#password', 'correct horse battery staple');
  await page.click('button[type=submit]');
  await page.waitForURL(`${spa.url}/`, { timeout: 15000 });
  await page.waitForSelector('#signed-in:not([hidden])', { timeout: 15000 });
  check('the code was exchanged from the browser (cross-origin /token)', tokenCalls.length === 1 && tokenCalls[0] === 200, JSON.stringify(tokenCalls));
  check('no CORS errors in the console', corsErrors.length === 0, corsErrors.join(' | '));
  check('the page shows the ID token\'s sub', (await claim(page, 'claims', 'sub')) === aliceId);
  check('iss is facegate', (await claim(page, 'claims', 'iss')) === fg.issuer, await claim(page, 'claims', 'iss'));
  check('aud is the SPA\'s client id', (await claim(page, 'claims', 'aud')) === spa.client.client_id, await claim(page, 'claims', 'aud'));
  check('amr says a password', (await claim(page, 'claims', 'amr')) === '["pwd"]', await claim(page, 'claims', 'amr'));
  check('acr is shown', (await claim(page, 'claims', 'acr')) === 'urn:facegate:pwd', await claim(page, 'claims', 'acr'));
  check('auth_time is shown as a date', /\d{10}\s+\(\d{4}-\d\d-\d\dT/.test(await claim(page, 'claims', 'auth_time')), await claim(page, 'claims', 'auth_time'));
  check('the nonce came back', (await claim(page, 'claims', 'nonce')).length > 10);
  check('userinfo (cross-origin, bearer) gave the email', (await claim(page, 'userinfo', 'email')) === 'alice@example.com', await claim(page, 'userinfo', 'email'));
  check('the page greets alice by name', (await page.textContent('#who')) === 'Alice Example');
  await page.screenshot({ path: path.join(out, 'spa.png'), fullPage: true });

  // The access token is revoked and facegate's session ended on sign-out.
  await page.click('#sign-out');
  await page.waitForURL(`${spa.url}/`, { timeout: 15000 });
  await page.waitForSelector('#signed-out:not([hidden])');
  check('signing out returns to the SPA, signed out', true);
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login**`);
  check('facegate asks for a sign-in again after the SPA signed out', true);
  await browser.close();
  browser = null;
} catch (e) {
  results.failed++;
  console.log(`FAIL  ${e.stack ?? e}`);
  if (page) {
    console.log(`      at ${page.url()}: ${(await page.textContent('body').catch(() => '')).replace(/\s+/g, ' ').slice(0, 400)}`);
    await page.screenshot({ path: path.join(out, 'spa-failure.png'), fullPage: true }).catch(() => {});
  }
  if (browser) await browser.close().catch(() => {});
} finally {
  fg.stop();
}
finish('single-page app');
