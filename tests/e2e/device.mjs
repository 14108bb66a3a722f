// Browser end-to-end test of the device authorization grant (RFC 8628), approved by face:
//   1. examples/device-cli (the real release binary) starts the flow and prints the verification URL;
//      the person opens it in headless Chromium with the head-turn video as the webcam, is sent to sign
//      in (the default policy for a device is face with liveness), passes the liveness check, sees the
//      CLI's name, the code and the scopes, approves; the CLI prints the ID token's verified claims
//      (dan, acr urn:facegate:face:live);
//   2. a second request, denied by the same (signed-in) person: the token endpoint answers access_denied;
//   3. on a facegate whose device codes live 3 seconds: the CLI stops with "expired" (exit 3), the
//      token endpoint answers expired_token, and the verification page refuses the code.
// Real facegate (release), liveness required with the challenge seed fixed to the video's head turns.
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { check, facegate, finish, launch, out, root, sleep, testdata } from './lib.mjs';

const deviceBin = process.env.DEVICE_CLI_BIN || path.join(root, 'target/release/device-cli');
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const ffmpeg = (args) => execFileSync('ffmpeg', ['-y', '-loglevel', 'error', ...args]);
const video = path.join(testdata, 'liveness/live_head_turn/real.webm');
const liveCam = path.join(out, 'device-real.y4m');
ffmpeg(['-i', video, '-vf', 'scale=640:360,fps=15', '-pix_fmt', 'yuv420p', liveCam]);
const enrolFrame = path.join(out, 'device-enrol.jpg');
ffmpeg(['-i', video, '-vf', 'select=eq(n\\,3)', '-frames:v', '1', enrolFrame]);

/// Runs device-cli; resolves `url` (verification_uri_complete) once printed, and `done` when it exits.
function runCli(issuer, clientId) {
  const child = spawn(deviceBin, ['--issuer', issuer, '--client-id', clientId], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  let gotUrl;
  const url = new Promise((resolve) => { gotUrl = resolve; });
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => {
    stderr += d;
    const m = /or open (\S+)/.exec(stderr);
    if (m) gotUrl(m[1]);
  });
  const done = new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
  return { url, done, stderr: () => stderr };
}

async function post(url, form) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

const fg = await facegate({
  FACEGATE_LIVENESS: 'required', FACEGATE_INSECURE_TESTING: '1', FACEGATE_LIVENESS_SEED: '6', FACEGATE_LIVENESS_SECONDS: '25',
  FACEGATE_LIVENESS_CHALLENGES: 'head-turns,nose-target,blink,smile',
});
const short = await facegate({ FACEGATE_FACE: 'off', FACEGATE_DEVICE_CODE_SECONDS: '3' });
let browser;
try {
  const danId = fg.cli(['user', 'add', '--username', 'dan', '--email', 'dan@example.com', '--password-stdin'], 'correct horse battery staple\n');
  fg.cli(['user', 'enroll', '--username', 'dan', enrolFrame]);
  const client = JSON.parse(fg.cli(['client', 'add', '--name', 'Terminal CLI', '--public', '--grant-types', DEVICE_GRANT, '--json']));
  await fg.start();
  const discovery = await (await fetch(`${fg.issuer}/.well-known/openid-configuration`)).json();
  check('discovery advertises the device authorization endpoint and grant',
    discovery.device_authorization_endpoint === `${fg.issuer}/device_authorization` && discovery.grant_types_supported.includes(DEVICE_GRANT));

  // 1. The CLI, approved with the face.
  const cli = runCli(fg.issuer, client.client_id);
  const url = await Promise.race([cli.url, sleep(15000).then(() => null)]);
  check('the CLI prints where to enter its code', !!url && /enter the code [A-Z]{4}-[A-Z]{4}/.test(cli.stderr()), cli.stderr());
  const code = /user_code=([A-Z-]+)/.exec(url ?? '')?.[1];
  browser = await launch(liveCam);
  const page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await page.goto(url);
  check('the verification page sends a person who is not signed in to sign in', /\/login\?req=/.test(page.url()), page.url());
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.fill('#username', 'dan');
  await page.click('#face-capture');
  await page.waitForSelector('button[value="approve"]', { timeout: 45000 });
  const approval = (await page.textContent('main')) ?? '';
  check('after the face and liveness check, the page names the CLI and shows its code',
    approval.includes('Terminal CLI') && approval.includes(code), approval);
  check('and lists the scopes asked for', /Know who you are/.test(approval) && /email address/.test(approval), approval);
  await page.screenshot({ path: path.join(out, 'device-1-approve.png'), fullPage: true });
  await page.click('button[value="approve"]');
  await page.waitForSelector('text=Device connected', { timeout: 10000 });
  const result = await Promise.race([cli.done, sleep(30000).then(() => ({ code: null, stdout: '', stderr: 'timeout' }))]);
  let claims = {};
  try { claims = JSON.parse(result.stdout); } catch { /* checked below */ }
  check('the CLI gets tokens and prints the verified ID token claims of dan', result.code === 0 && claims.sub === danId, `${result.code} ${result.stdout} ${result.stderr}`);
  check('signed in with face and liveness (acr urn:facegate:face:live)', claims.acr === 'urn:facegate:face:live', claims.acr);

  // 2. A request the person denies.
  const start = await post(`${fg.issuer}/device_authorization`, { client_id: client.client_id, scope: 'openid' });
  check('a second device request starts', start.status === 200, JSON.stringify(start.body));
  const poll = () => post(`${fg.issuer}/token`, { grant_type: DEVICE_GRANT, device_code: start.body.device_code, client_id: client.client_id });
  const pending = await poll();
  check('before an answer the device is told authorization_pending', pending.body?.error === 'authorization_pending', JSON.stringify(pending.body));
  const tooFast = await poll();
  check('polling again at once is told slow_down', tooFast.body?.error === 'slow_down', JSON.stringify(tooFast.body));
  await page.goto(start.body.verification_uri_complete);
  await page.waitForSelector('button[value="deny"]', { timeout: 10000 });
  await page.click('button[value="deny"]');
  await page.waitForSelector('text=Request denied', { timeout: 10000 });
  const denied = await poll();
  check('a denied request gets access_denied', denied.status === 400 && denied.body?.error === 'access_denied', JSON.stringify(denied.body));

  // 3. A code nobody answers in time (device codes live 3 s on this facegate).
  short.cli(['user', 'add', '--username', 'erin', '--password-stdin'], 'correct horse battery staple\n');
  const shortClient = JSON.parse(short.cli(['client', 'add', '--name', 'Terminal CLI', '--public', '--grant-types', DEVICE_GRANT, '--json']));
  await short.start();
  const late = await post(`${short.issuer}/device_authorization`, { client_id: shortClient.client_id, scope: 'openid' });
  const expiringCli = runCli(short.issuer, shortClient.client_id);
  const expiredRun = await Promise.race([expiringCli.done, sleep(30000).then(() => ({ code: null, stderr: 'timeout' }))]);
  check('the CLI stops when its code expires (exit 3)', expiredRun.code === 3 && /expired/.test(expiredRun.stderr), `${expiredRun.code} ${expiredRun.stderr}`);
  await sleep(500);
  const expired = await post(`${short.issuer}/token`, { grant_type: DEVICE_GRANT, device_code: late.body.device_code, client_id: shortClient.client_id });
  check('an expired code gets expired_token', expired.status === 400 && expired.body?.error === 'expired_token', JSON.stringify(expired.body));
  await page.goto(late.body.verification_uri_complete);
  check('and the verification page refuses it', /not right, or it has expired/.test((await page.textContent('main')) ?? ''));
} catch (e) {
  check('device e2e ran to the end', false, e.stack ?? String(e));
} finally {
  await browser?.close();
  fg.stop();
  short.stop();
}
finish('device');
