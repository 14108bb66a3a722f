// Shared by the browser end-to-end tests: checks and the summary line, free ports, fake webcams made
// from test photos, headless Debian Chromium, and the real programs (facegate, the notes app, the
// single-page app's server) started on fresh ports with fresh data.
import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const bin = process.env.FACEGATE_BIN || path.join(root, 'target/release/facegate');
export const notesBin = process.env.NOTES_BIN || path.join(root, 'target/release/notes');
export const testdata = process.env.FACEGATE_TESTDATA || path.join(root, '../shared/testdata');
export const out = path.join(root, 'target/e2e');
fs.mkdirSync(out, { recursive: true });
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

export const results = { passed: 0, failed: 0 };
export function check(name, ok, detail = '') {
  if (ok) { results.passed++; console.log(`ok    ${name}`); } else { results.failed++; console.log(`FAIL  ${name} ${detail}`); }
}

export const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// A y4m webcam showing one test photo (640x480, 10 fps, 3 s, looped by Chromium).
export function webcam(photo, name) {
  const file = path.join(out, `${name}.y4m`);
  execFileSync('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-t', '3', '-i', path.join(testdata, 'faces', photo),
    '-vf', 'scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,fps=10', '-pix_fmt', 'yuv420p', file]);
  return file;
}

/// Headless Chromium. `camera`: a y4m file, 'pattern' for Chromium's built-in fake camera (a test
/// pattern, no person), or nothing for no camera at all.
export function launch(camera) {
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream'];
  if (camera) args.push('--use-fake-device-for-media-stream');
  if (camera && camera !== 'pattern') args.push(`--use-file-for-fake-video-capture=${camera}`);
  return chromium.launch({ executablePath: chromiumPath, args });
}

async function waitFor(url, what) {
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(url)).ok) return; } catch { /* starting */ }
    await sleep(100);
  }
  throw new Error(`${what} did not start (${url})`);
}

/// A fresh facegate: data in a temporary folder, the CLI bound to it, `start()` serves it.
/// `extraEnv`: settings for this facegate. Without FACEGATE_LIVENESS in it, liveness is off: the
/// webcams of these tests are still photos, which the liveness check (on by default) rightly refuses;
/// liveness.mjs runs with it on and a real video as the webcam.
export async function facegate(extraEnv = {}) {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'facegate-e2e-'));
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const env = { ...process.env, FACEGATE_DATA: data, FACEGATE_LISTEN: `127.0.0.1:${port}`, FACEGATE_ISSUER: issuer, FACEGATE_LIVENESS: 'off', ...extraEnv };
  const cli = (args, input) => execFileSync(bin, args, { env, input, encoding: 'utf8' }).trim();
  const children = [];
  return {
    issuer, data, cli,
    async start() {
      children.push(spawn(bin, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] }));
      await waitFor(`${issuer}/.well-known/openid-configuration`, 'facegate');
    },
    /// The notes app (examples/notes), registered as a confidential client.
    async notes(extraNotesEnv = {}) {
      const nport = await freePort();
      const url = `http://localhost:${nport}`;
      const client = JSON.parse(cli(['client', 'add', '--name', 'Secret notes', '--redirect-uri', `${url}/callback`,
        '--post-logout-redirect-uri', `${url}/`, '--skip-consent', '--json']));
      const nenv = { ...process.env, NOTES_ISSUER: issuer, NOTES_CLIENT_ID: client.client_id, NOTES_CLIENT_SECRET: client.client_secret,
        NOTES_LISTEN: `127.0.0.1:${nport}`, NOTES_PUBLIC_URL: url, NOTES_DATABASE: path.join(data, `notes-${nport}.db`), RUST_LOG: 'warn', ...extraNotesEnv };
      children.push(spawn(notesBin, [], { env: nenv, stdio: ['ignore', 'inherit', 'inherit'] }));
      await waitFor(`${url}/`, 'the notes app');
      return { url, client };
    },
    /// The single-page app (examples/spa), registered as a public client.
    async spa() {
      const sport = await freePort();
      const url = `http://localhost:${sport}`;
      const client = JSON.parse(cli(['client', 'add', '--name', 'Single-page app', '--public', '--redirect-uri', `${url}/callback`,
        '--post-logout-redirect-uri', `${url}/`, '--skip-consent', '--json']));
      children.push(spawn(process.execPath, [path.join(root, 'examples/spa/serve.mjs')], {
        env: { ...process.env, SPA_ISSUER: issuer, SPA_CLIENT_ID: client.client_id, SPA_LISTEN: `127.0.0.1:${sport}`, SPA_PUBLIC_URL: url },
        stdio: ['ignore', 'inherit', 'inherit'],
      }));
      await waitFor(`${url}/`, 'the single-page app');
      return { url, client };
    },
    stop() {
      for (const c of children.reverse()) c.kill('SIGINT');
      fs.rmSync(data, { recursive: true, force: true });
    },
  };
}

/// Ends a test file: the summary line `make e2e` adds up, and the exit code.
export function finish(name) {
  console.log(`screenshots in ${out}`);
  console.log(`e2e ${name}: ${results.passed} passed, ${results.failed} failed`);
  process.exit(results.failed === 0 && results.passed > 0 ? 0 : 1);
}
