// Browser end-to-end test of the liveness check, as a person sees it:
//   1. the real head-turn video is the webcam: the login page shows the challenge (arrows, progress),
//      streams frames, passes, and the relying party gets an ID token with acr urn:facegate:face:live
//      and amr ["face", "user"];
//   2. a still photo held to the camera: the check never passes, the time runs out, the page says so
//      and the relying party is never reached.
// Real facegate (release binary, liveness required as by default, challenge seed fixed to the video's
// head turns), real headless Chromium, webcams made with ffmpeg. Screenshots in target/e2e/liveness-*.
// Ends with "e2e: N passed, N failed".
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
const ffmpeg = (args) => execFileSync('ffmpeg', ['-y', '-loglevel', 'error', ...args]);

function launch(camera) {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${camera}`],
  });
}

// Webcams: the real video (looped by Chromium), and a still photo with sensor noise.
const video = path.join(testdata, 'liveness/live_head_turn/real.webm');
const liveCam = path.join(out, 'liveness-real.y4m');
ffmpeg(['-i', video, '-vf', 'scale=640:360,fps=15', '-pix_fmt', 'yuv420p', liveCam]);
const photoCam = path.join(out, 'liveness-photo.y4m');
ffmpeg(['-loop', '1', '-t', '4', '-i', path.join(testdata, 'faces/deepface/person_img1/img1.jpg'),
  '-vf', 'scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,noise=alls=6:allf=t,fps=15', '-pix_fmt', 'yuv420p', photoCam]);
const enrolFrame = path.join(out, 'liveness-enrol.jpg');
ffmpeg(['-i', video, '-vf', 'select=eq(n\\,3)', '-frames:v', '1', enrolFrame]);

const data = fs.mkdtempSync(path.join(os.tmpdir(), 'facegate-e2e-liveness-'));
const port = await freePort();
const rpPort = await freePort();
const issuer = `http://localhost:${port}`;
const env = { ...process.env, FACEGATE_DATA: data, FACEGATE_LISTEN: `127.0.0.1:${port}`, FACEGATE_ISSUER: issuer,
  FACEGATE_LIVENESS_SEED: '6', FACEGATE_LIVENESS_SECONDS: '25', FACEGATE_LIVENESS_CHALLENGES: 'head-turns,nose-target,blink,smile' };
delete env.FACEGATE_LIVENESS;
const cli = (args, input) => execFileSync(bin, args, { env, input, encoding: 'utf8' }).trim();

const danId = cli(['user', 'add', '--username', 'dan', '--email', 'dan@example.com', '--password-stdin'], 'correct horse battery staple\n');
cli(['user', 'enroll', '--username', 'dan', enrolFrame]);
const redirect = `http://127.0.0.1:${rpPort}/cb`;
const client = JSON.parse(cli(['client', 'add', '--name', 'E2E liveness', '--redirect-uri', redirect, '--skip-consent', '--json']));

const results = [];
const rp = http.createServer(async (req, res) => {
  const url = new URL(req.url, redirect);
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: url.searchParams.get('code') ?? '', redirect_uri: redirect });
  const auth = Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64');
  const t = await (await fetch(`${issuer}/token`, { method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/x-www-form-urlencoded' }, body })).json();
  const claims = t.id_token ? JSON.parse(Buffer.from(t.id_token.split('.')[1], 'base64url').toString()) : null;
  results.push({ state: url.searchParams.get('state'), claims });
  res.writeHead(200, { 'content-type': 'text/html' }).end(`<p>Signed in as ${claims?.sub}</p>`);
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
  // 1. The live person.
  let browser = await launch(liveCam);
  let page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await page.goto(authorizeUrl('live'));
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  check('the login page offers the liveness check, not a photo upload', (await page.$('#face-file')) === null && /Start the check/.test(await page.textContent('#face-capture')));
  await page.fill('#username', 'dan');
  const seen = [];
  const poll = setInterval(async () => { try { const t = await page.textContent('#face-status'); if (seen[seen.length - 1] !== t) seen.push(t); } catch { /* closed */ } }, 200);
  await page.click('#face-capture');
  await page.waitForSelector('#face-form[data-challenge="head-turns"]', { timeout: 10000 });
  const prompt = await page.textContent('#face-status');
  check('the page shows the challenge and what to do', /turn your head|look straight/i.test(prompt ?? ''), prompt);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: path.join(out, 'liveness-1-challenge.png'), fullPage: true });
  try {
    await page.waitForURL(`${redirect}**`, { timeout: 40000 });
  } catch (e) {
    await page.screenshot({ path: path.join(out, 'liveness-1-stuck.png'), fullPage: true });
    console.log('statuses:', JSON.stringify(seen));
    throw e;
  }
  const live = results.find((r) => r.state === 'live');
  check('the live person reaches the relying party', live?.claims?.sub === danId, JSON.stringify(live));
  check('acr says the face was checked live', live?.claims?.acr === 'urn:facegate:face:live', live?.claims?.acr);
  check('amr = ["face", "user"]', JSON.stringify(live?.claims?.amr) === '["face","user"]', JSON.stringify(live?.claims?.amr));
  await browser.close();

  // 2. A photo held to the camera.
  browser = await launch(photoCam);
  page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await page.goto(authorizeUrl('photo'));
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.fill('#username', 'dan');
  await page.click('#face-capture');
  await page.waitForSelector('#face-status.error', { timeout: 45000 });
  const refused = await page.textContent('#face-status');
  check('a held photo never passes: the time runs out and the page says so', /time .* ran out|did not pass|could not confirm/i.test(refused ?? ''), refused);
  check('and never reaches the relying party', !results.some((r) => r.state === 'photo'));
  await page.screenshot({ path: path.join(out, 'liveness-2-photo-refused.png'), fullPage: true });
  await browser.close();
  exitCode = failed ? 1 : 0;
} catch (e) {
  failed++;
  console.log(`FAIL  ${e.stack ?? e}`);
} finally {
  server.kill();
  rp.close();
  fs.rmSync(data, { recursive: true, force: true });
}
console.log(`e2e: ${passed} passed, ${failed} failed`);
process.exit(exitCode);
