// Browser end-to-end test of face login, as a person and a relying party see it:
//   1. alice signs in with her password and enrols her face from the (fake) webcam on the account page;
//   2. a relying party sends her to facegate; she signs in with her face; the RP exchanges the code and
//      checks the ID token's sub and amr;
//   3. a different person's face for alice's account is refused, with a message on the page;
//   4. when camera permission is refused the page falls back to uploading a photo, which signs her in.
// Real facegate (release binary), real headless Chromium (Debian package), webcams made from test photos
// with ffmpeg. Screenshots go to target/e2e/. Ends with "e2e: N passed, N failed".
import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.FACEGATE_BIN || path.join(root, 'target/release/facegate');
const testdata = process.env.FACEGATE_TESTDATA || path.join(root, '../shared/testdata');
const out = path.join(root, 'target/e2e');
fs.mkdirSync(out, { recursive: true });
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok    ${name}`); } else { failed++; console.log(`FAIL  ${name} ${detail}`); }
}

const freePort = () => new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });

function webcam(photo, name) {
  const file = path.join(out, `${name}.y4m`);
  execFileSync('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-t', '3', '-i', path.join(testdata, 'faces', photo),
    '-vf', 'scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,fps=10', '-pix_fmt', 'yuv420p', file]);
  return file;
}

function launch(camera) {
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream'];
  if (camera) args.push('--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${camera}`);
  return chromium.launch({ executablePath: chromiumPath, args });
}

const data = fs.mkdtempSync(path.join(os.tmpdir(), 'facegate-e2e-'));
const port = await freePort();
const rpPort = await freePort();
const issuer = `http://localhost:${port}`;
const env = { ...process.env, FACEGATE_DATA: data, FACEGATE_LISTEN: `127.0.0.1:${port}`, FACEGATE_ISSUER: issuer, FACEGATE_LIVENESS: 'off' };
const cli = (args, input) => execFileSync(bin, args, { env, input, encoding: 'utf8' }).trim();

const aliceId = cli(['user', 'add', '--username', 'alice', '--email', 'alice@example.com', '--password-stdin'], 'correct horse battery staple\n');
const redirect = `http://127.0.0.1:${rpPort}/cb`;
const client = JSON.parse(cli(['client', 'add', '--name', 'E2E notes', '--redirect-uri', redirect, '--skip-consent', '--json']));

// The relying party: exchanges the code and keeps the ID token's claims.
const results = [];
const rp = http.createServer(async (req, res) => {
  const url = new URL(req.url, redirect);
  const code = url.searchParams.get('code');
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: code ?? '', redirect_uri: redirect });
  const auth = Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64');
  const t = await (await fetch(`${issuer}/token`, { method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' }, body })).json();
  const claims = t.id_token ? JSON.parse(Buffer.from(t.id_token.split('.')[1], 'base64url').toString()) : null;
  results.push({ state: url.searchParams.get('state'), claims, error: url.searchParams.get('error') });
  res.writeHead(200, { 'content-type': 'text/html' }).end(`<h1>Notes</h1><p>Signed in as ${claims?.sub}</p>`);
});
await new Promise((r) => rp.listen(rpPort, '127.0.0.1', r));

const server = spawn(bin, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
for (let i = 0; i < 100; i++) {
  try { if ((await fetch(`${issuer}/.well-known/openid-configuration`)).ok) break; } catch { /* starting */ }
  await new Promise((r) => setTimeout(r, 100));
}
const authorizeUrl = (state) => `${issuer}/authorize?client_id=${client.client_id}&redirect_uri=${encodeURIComponent(redirect)}&response_type=code&scope=openid&state=${state}`;

let exitCode = 1;
try {
  const aliceCam = webcam('deepface/person_img1/img2.jpg', 'alice');
  const strangerCam = webcam('deepface/person_img8/img48.jpg', 'stranger');

  // 1. Enrolment from the webcam.
  let browser = await launch(aliceCam);
  let page = await (await browser.newContext({ viewport: { width: 420, height: 900 } })).newPage();
  await page.goto(`${issuer}/login`);
  await page.fill('#username', 'alice');
  await page.fill('#password', 'correct horse battery staple');
  await page.click('button[type=submit]');
  await page.waitForURL('**/account');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.screenshot({ path: path.join(out, '1-enrol.png'), fullPage: true });
  await page.click('#face-capture');
  await page.waitForFunction(() => document.querySelectorAll('form[action="/account/faces/delete"]').length === 3, null, { timeout: 30000 });
  check('enrolment from the webcam stores three faces', true);
  await page.screenshot({ path: path.join(out, '2-enrolled.png'), fullPage: true });

  // 2. Face login through the relying party.
  page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await page.goto(authorizeUrl('face-1'));
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.fill('#username', 'alice');
  await page.waitForFunction(() => /Looks good/.test(document.getElementById('face-status').textContent), null, { timeout: 15000 });
  check('live guidance says the picture would be good before it is taken', true);
  await page.screenshot({ path: path.join(out, '3-face-login.png'), fullPage: true });
  await page.click('#face-capture');
  await page.waitForURL(`${redirect}**`, { timeout: 30000 });
  const first = results.find((r) => r.state === 'face-1');
  check('face login reaches the relying party with a code', !!first?.claims, JSON.stringify(first));
  check('the ID token names alice (sub)', first?.claims?.sub === aliceId, `${first?.claims?.sub} vs ${aliceId}`);
  check('the ID token says how (amr = ["face"])', JSON.stringify(first?.claims?.amr) === '["face"]', JSON.stringify(first?.claims?.amr));
  await browser.close();

  // 3. Someone else's face for alice's account.
  browser = await launch(strangerCam);
  page = await (await browser.newContext()).newPage();
  await page.goto(authorizeUrl('face-2'));
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.fill('#username', 'alice');
  await page.click('#face-capture');
  await page.waitForSelector('#face-status.error', { timeout: 30000 });
  const message = await page.textContent('#face-status');
  check('a different person is refused with a message', /did not work/i.test(message ?? ''), message);
  check('and never reaches the relying party', !results.some((r) => r.state === 'face-2'));
  await page.screenshot({ path: path.join(out, '4-refused.png'), fullPage: true });
  await browser.close();

  // 4. Camera permission refused (the browser has a camera, the person says no): upload a photo instead.
  browser = await launch(aliceCam);
  page = await (await browser.newContext()).newPage();
  await page.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
  });
  await page.goto(authorizeUrl('face-3'));
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="no-camera"]', { timeout: 15000 });
  const refusedText = await page.textContent('#face-status');
  check('the page says the camera was refused and offers an upload', /permission was refused/i.test(refusedText ?? ''), refusedText);
  await page.screenshot({ path: path.join(out, '5-camera-refused.png'), fullPage: true });
  await page.fill('#username', 'alice');
  await page.setInputFiles('#face-file', path.join(testdata, 'faces/deepface/person_img1/img10.jpg'));
  await page.waitForURL(`${redirect}**`, { timeout: 30000 });
  const third = results.find((r) => r.state === 'face-3');
  check('with the camera refused, an uploaded photo signs in', third?.claims?.sub === aliceId, JSON.stringify(third));
  await browser.close();
  exitCode = failed === 0 ? 0 : 1;
} catch (e) {
  failed++;
  console.log(`FAIL  ${e.stack ?? e}`);
} finally {
  server.kill('SIGINT');
  rp.close();
  fs.rmSync(data, { recursive: true, force: true });
}
console.log(`screenshots in ${out}`);
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(exitCode);
