// Browser check for crates/facegate-server/static/face-capture.{js,css}.
//
// Serves a test page (the server's page contract, with the production Content-Security-Policy)
// and a mock endpoint from a tiny Node http server on 127.0.0.1, then drives Debian's Chromium
// through playwright-core with a fake camera fed from a .y4m file.
//
//   apt-get install -y chromium ffmpeg
//   ffmpeg -loop 1 -t 4 -i PHOTO.jpg -vf scale=640:480,fps=15 -pix_fmt yuv420p /tmp/face.y4m
//   npm ci && node check.mjs
//
// Environment (all optional):
//   CHROMIUM   browser binary             (default /usr/bin/chromium)
//   FAKE_Y4M   fake camera video          (default /tmp/face.y4m)
//   PHOTO      photo for the upload check (default shared/testdata/faces/deepface/person_img1/img2.jpg)
//   OUT_DIR    screenshots                (default /tmp/browser-check)
//
// Prints one line per check and closes with "N passed, N failed"; exits 1 on any failure.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const STATIC_DIR = path.join(REPO, 'crates', 'facegate-server', 'static');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FAKE_Y4M = process.env.FAKE_Y4M || '/tmp/face.y4m';
const PHOTO =
  process.env.PHOTO ||
  path.resolve(REPO, '..', 'shared', 'testdata', 'faces', 'deepface', 'person_img1', 'img2.jpg');
const OUT_DIR = process.env.OUT_DIR || '/tmp/browser-check';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; " +
  "media-src 'self' blob:; connect-src 'self'; form-action 'self'";

const CSRF = 'csrf-token-123';
const REQ = 'req-abc';
const USERNAME = 'alice';

// The provider's base page style (crates/facegate-server/src/server/html.rs), so the
// screenshots show the capture block the way it will look on the real pages.
const BASE_STYLE = `
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--fg:#1b1f24;--muted:#57606a;--accent:#1f6feb;--err:#cf222e;--border:#d0d7de}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--fg:#e6edf3;--muted:#9198a1;--accent:#4493f8;--err:#f85149;--border:#30363d}}
*{box-sizing:border-box}body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif}
main{width:min(26rem,calc(100vw - 2rem));background:var(--card);border:1px solid var(--border);border-radius:12px;padding:2rem;margin:1rem}
h1{font-size:1.35rem;margin:0 0 1rem}p{margin:.5rem 0}.muted{color:var(--muted);font-size:.9rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}input[type=text],input[type=password]{width:100%;padding:.65rem .75rem;border:1px solid var(--border);border-radius:8px;background:transparent;color:inherit;font:inherit}
button{margin-top:1.25rem;width:100%;padding:.7rem;border:0;border-radius:8px;background:var(--accent);color:#fff;font:inherit;font-weight:600;cursor:pointer}
button.secondary{background:transparent;color:var(--fg);border:1px solid var(--border)}
.error{color:var(--err);font-weight:600}ul{padding-left:1.2rem}`;

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function testPage({ endpoint, shots, auto }) {
  const title = shots > 1 ? 'Add your face' : 'Sign in with your face';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · facegate</title><style>${BASE_STYLE}</style>
<link rel="stylesheet" href="/static/face-capture.css">
<script src="/static/face-capture.js" defer></script></head><body><main>
<h1>${esc(title)}</h1>
<form id="face-form" data-endpoint="${esc(endpoint)}" data-shots="${esc(shots)}" data-auto="${esc(auto)}">
  <input type="hidden" name="csrf" value="${esc(CSRF)}"><input type="hidden" name="req" value="${esc(REQ)}">
  <label for="username">Username</label><input id="username" name="username" type="text" value="${esc(USERNAME)}" required>
  <div class="face-camera">
    <video id="face-video" playsinline muted></video>
    <canvas id="face-overlay"></canvas>
  </div>
  <p id="face-status" role="status" aria-live="polite"></p>
  <button type="button" id="face-capture">Take picture</button>
  <div id="face-upload"><label for="face-file">Or choose a photo</label><input type="file" id="face-file" accept="image/jpeg,image/png,image/webp"></div>
</form>
</main></body></html>`;
}

const DONE_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>done</title>
<style>${BASE_STYLE}</style></head><body><main><h1>Signed in</h1><p id="done">Redirect target reached.</p></main></body></html>`;

// ---------- multipart ----------

function parseMultipart(buf, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType || '');
  if (!m) return null;
  const boundary = m[1] || m[2];
  const open = Buffer.from(`--${boundary}`);
  const sep = Buffer.from(`\r\n--${boundary}`);
  const parts = [];
  let pos = buf.indexOf(open);
  if (pos < 0) return null;
  pos += open.length;
  for (;;) {
    if (buf.slice(pos, pos + 2).toString() === '--') break; // closing delimiter
    pos += 2; // CRLF after the delimiter
    const headEnd = buf.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) return null;
    const head = buf.slice(pos, headEnd).toString('utf8');
    const end = buf.indexOf(sep, headEnd + 4);
    if (end < 0) return null;
    const body = buf.slice(headEnd + 4, end);
    const disp = /content-disposition:([^\r\n]*)/i.exec(head);
    const name = disp && /\bname="([^"]*)"/i.exec(disp[1]);
    const filename = disp && /\bfilename="([^"]*)"/i.exec(disp[1]);
    const ctype = /content-type:\s*([^\r\n]*)/i.exec(head);
    parts.push({
      name: name ? name[1] : null,
      filename: filename ? filename[1] : null,
      contentType: ctype ? ctype[1].trim() : null,
      body,
    });
    pos = end + sep.length;
  }
  return parts;
}

// Width and height from a JPEG's SOF marker.
function jpegSize(buf) {
  let i = 2;
  while (i + 9 < buf.length) {
    if (buf[i] !== 0xff) return null;
    const marker = buf[i + 1];
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + len;
  }
  return null;
}

// A 32x24 grey thumbnail (raw bytes) of an image file, through ffmpeg.
function thumb(file, hflip = false) {
  const vf = `${hflip ? 'hflip,' : ''}scale=32:24,format=gray`;
  return execFileSync('ffmpeg', ['-loglevel', 'error', '-i', file, '-vf', vf, '-f', 'rawvideo', '-'], {
    maxBuffer: 1 << 20,
  });
}

function meanAbsDiff(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

// ---------- mock server ----------

const posts = []; // every POST to /mock/*: {mode, at, headers, parts}
let mode429Count = 0;

function send(res, status, body, type, extra = {}) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...extra });
  res.end(body);
}

function json(res, status, obj, extra = {}) {
  send(res, status, JSON.stringify(obj), 'application/json', extra);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/page') {
    const html = testPage({
      endpoint: url.searchParams.get('endpoint') || '/mock/ok',
      shots: url.searchParams.get('shots') || '1',
      auto: url.searchParams.get('auto') || '0',
    });
    send(res, 200, html, 'text/html; charset=utf-8', {
      'content-security-policy': CSP,
      'set-cookie': 'fg_session=cookie-xyz; Path=/; HttpOnly; SameSite=Lax',
    });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/done') {
    send(res, 200, DONE_PAGE, 'text/html; charset=utf-8', { 'content-security-policy': CSP });
    return;
  }
  if (req.method === 'GET' && url.pathname.startsWith('/static/')) {
    const name = path.basename(url.pathname);
    const types = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
    const type = types[path.extname(name)];
    const file = path.join(STATIC_DIR, name);
    if (!type || !fs.existsSync(file)) return send(res, 404, 'not found', 'text/plain');
    send(res, 200, fs.readFileSync(file), type, { 'x-content-type-options': 'nosniff' });
    return;
  }
  if (req.method === 'POST' && url.pathname.startsWith('/mock/')) {
    const mode = url.pathname.slice('/mock/'.length);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const parts = parseMultipart(body, req.headers['content-type']);
      posts.push({ mode, at: Date.now(), headers: req.headers, parts });
      const n = posts.filter((p) => p.mode === mode).length;
      // Answer a little later, as a real server doing face detection would.
      setTimeout(() => {
        if (mode === 'ok') {
          json(res, 200, { ok: true, message: `Picture ${n} saved.`, redirect: '/done' });
        } else if (mode === 'upload') {
          json(res, 200, { ok: true, message: 'Your photo was accepted.' });
        } else if (mode === 'reject') {
          json(res, 422, { ok: false, error: 'No face was found in the picture; move closer and try again.' });
        } else if (mode === 'ratelimit') {
          mode429Count += 1;
          // The wording of the real server (routes/face.rs), which already says when.
          json(res, 429, { ok: false, error: 'Too many attempts. Try again in 3 seconds.', retry_after: 3 });
        } else if (mode === 'drop') {
          req.socket.destroy(); // no answer at all, as when the connection is lost
        } else {
          json(res, 404, { ok: false, error: 'unknown mock' });
        }
      }, 250);
    });
    return;
  }
  send(res, 404, 'not found', 'text/plain');
});

// ---------- checks ----------

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed += 1;
  else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
}

function checkPost(label, p, { filename, jpeg = true }) {
  const parts = p && p.parts;
  const field = (n) => parts && parts.find((x) => x.name === n);
  check(`${label}: multipart/form-data`, !!parts && /^multipart\/form-data/.test(p.headers['content-type']));
  check(`${label}: Accept: application/json`, p && p.headers.accept === 'application/json');
  check(`${label}: same-origin cookie sent`, p && /fg_session=cookie-xyz/.test(p.headers.cookie || ''));
  check(`${label}: csrf field`, !!field('csrf') && field('csrf').body.toString() === CSRF);
  check(`${label}: req field`, !!field('req') && field('req').body.toString() === REQ);
  check(`${label}: username field`, !!field('username') && field('username').body.toString() === USERNAME);
  const img = field('image');
  check(
    `${label}: one image part`,
    !!parts && parts.filter((x) => x.name === 'image').length === 1 && parts.every((x) => x.name),
    parts ? parts.map((x) => x.name).join(',') : 'unparsed'
  );
  check(`${label}: image filename ${filename}`, !!img && img.filename === filename, img && img.filename);
  if (jpeg) {
    check(
      `${label}: image is JPEG (FF D8)`,
      !!img && img.body[0] === 0xff && img.body[1] === 0xd8 && img.contentType === 'image/jpeg',
      img ? `${img.body.length} bytes, ${img.contentType}` : ''
    );
  }
  return img;
}

async function waitFor(pred, ms, what) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`  (timed out waiting for ${what})`);
  return false;
}

const BASE_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
const CAMERA_ARGS = [
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  `--use-file-for-fake-video-capture=${FAKE_Y4M}`,
];

async function newPage(browser, base, opts = {}) {
  const context = await browser.newContext({
    viewport: opts.viewport || { width: 560, height: 900 },
    deviceScaleFactor: 1,
    colorScheme: opts.colorScheme || 'light',
  });
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  if (opts.init) await page.addInitScript(opts.init);
  return { context, page, logs };
}

async function pageProblems(page, logs) {
  const csp = await page.evaluate(() => window.__csp || []).catch(() => []);
  const errs = logs.filter((l) => /^(error|pageerror)/.test(l) && !/status of 4\d\d/.test(l));
  return [...csp.map((c) => `CSP: ${c}`), ...errs];
}

async function main() {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  for (const f of [CHROMIUM, FAKE_Y4M, PHOTO]) {
    if (!fs.existsSync(f)) {
      console.error(`missing ${f} (see the comment at the top of check.mjs)`);
      process.exit(2);
    }
  }
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  console.log(`test server on ${base}; static files from ${STATIC_DIR}`);

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-browser-'));
  const launch = (args) =>
    chromium.launch({ executablePath: CHROMIUM, headless: true, args, env: { ...process.env, HOME: profile } });

  const withCamera = await launch([...BASE_ARGS, ...CAMERA_ARGS]);
  try {
    // (a) enrolment: 3 pictures, then the redirect.
    {
      const { context, page, logs } = await newPage(withCamera, base);
      await page.goto(`${base}/page?shots=3&endpoint=/mock/ok`);
      await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
      await page.waitForTimeout(400); // a few frames on screen
      const status = await page.textContent('#face-status');
      // The page's CSP must really be in force, or "no CSP violations" below would prove nothing:
      // an inserted inline script must be refused and reported.
      const cspInForce = await page.evaluate(async () => {
        const s = document.createElement('script');
        s.textContent = 'window.__inlineRan = true';
        document.head.appendChild(s);
        await new Promise((r) => setTimeout(r, 100));
        const seen = window.__csp.length;
        window.__csp = [];
        return { ran: window.__inlineRan === true, reported: seen };
      });
      check('(a) page CSP in force (inline script refused and reported)', !cspInForce.ran && cspInForce.reported === 1, JSON.stringify(cspInForce));
      logs.length = 0; // forget the console line of that deliberate violation
      check('(a) camera ready status', status === 'Look at the camera and fit your face in the oval', status);
      const layout = await page.evaluate(() => {
        const v = document.getElementById('face-video').getBoundingClientRect();
        const c = document.getElementById('face-overlay').getBoundingClientRect();
        const vs = getComputedStyle(document.getElementById('face-video'));
        return {
          video: [v.x, v.y, v.width, v.height].map(Math.round),
          canvas: [c.x, c.y, c.width, c.height].map(Math.round),
          transform: vs.transform,
          native: [document.getElementById('face-video').videoWidth, document.getElementById('face-video').videoHeight],
        };
      });
      check('(a) overlay exactly over the video', JSON.stringify(layout.video) === JSON.stringify(layout.canvas), JSON.stringify(layout));
      check('(a) preview is 4:3 and at most 480 px wide', layout.video[2] <= 480 && Math.abs(layout.video[2] / layout.video[3] - 4 / 3) < 0.02);
      check('(a) preview mirrored with CSS', /matrix\(-1, 0, 0, 1/.test(layout.transform), layout.transform);
      await page.screenshot({ path: path.join(OUT_DIR, 'a1-camera-ready.png') });

      // Keyboard: Tab to the button and press Enter, as a keyboard user would.
      await page.focus('#face-capture');
      const t0 = Date.now();
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => /Picture 2 of 3/.test(document.getElementById('face-status').textContent), null, { timeout: 10000 }).catch(() => {});
      const midStatus = await page.textContent('#face-status').catch(() => '');
      const midDisabled = await page.isDisabled('#face-capture').catch(() => null);
      await page.screenshot({ path: path.join(OUT_DIR, 'a2-taking-pictures.png') }).catch(() => {});
      check('(a) progress status "Picture 2 of 3…"', /Picture 2 of 3…/.test(midStatus), midStatus);
      check('(a) capture button disabled while sending', midDisabled === true);

      await page.waitForURL(`${base}/done`, { timeout: 20000 }).catch(() => {});
      check('(a) navigated to the redirect after the last shot', page.url() === `${base}/done`, page.url());
      const ok = posts.filter((p) => p.mode === 'ok');
      check('(a) exactly 3 POSTs', ok.length === 3, `${ok.length}`);
      ok.forEach((p, i) => {
        const img = checkPost(`(a) POST ${i + 1}`, p, { filename: 'capture.jpg' });
        const size = img && jpegSize(img.body);
        check(`(a) POST ${i + 1}: native size 640x480`, !!size && size.width === 640 && size.height === 480, JSON.stringify(size));
      });
      const gaps = ok.slice(1).map((p, i) => p.at - ok[i].at);
      check('(a) shots spaced ~700 ms + answer time', gaps.length === 2 && gaps.every((g) => g >= 900 && g < 4000), gaps.join(', ') + ' ms');
      check('(a) first shot soon after the keypress', ok.length > 0 && ok[0].at - t0 < 3000, ok.length ? `${ok[0].at - t0} ms` : '');

      // The sent picture must be the camera's own view, not the mirrored preview.
      if (ok.length) {
        const captured = path.join(OUT_DIR, 'a-captured-1.jpg');
        fs.writeFileSync(captured, ok[0].parts.find((x) => x.name === 'image').body);
        const got = thumb(captured);
        const straight = meanAbsDiff(got, thumb(PHOTO));
        const flipped = meanAbsDiff(got, thumb(PHOTO, true));
        check('(a) captured picture is not mirrored', straight < flipped, `diff straight ${straight.toFixed(1)} vs flipped ${flipped.toFixed(1)}`);
      }
      await page.screenshot({ path: path.join(OUT_DIR, 'a3-redirected.png') });
      const probs = await pageProblems(page, logs);
      check('(a) no CSP violations or script errors', probs.length === 0, probs.join(' | '));
      await context.close();
    }

    // (b) the endpoint refuses the picture with 422.
    {
      const { context, page, logs } = await newPage(withCamera, base);
      await page.goto(`${base}/page?shots=1&endpoint=/mock/reject`);
      await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
      await page.click('#face-capture');
      await page.waitForSelector('#face-status.error', { timeout: 10000 }).catch(() => {});
      const status = await page.textContent('#face-status');
      check('(b) error text shown', status === 'No face was found in the picture; move closer and try again.', status);
      check('(b) status has class error', await page.$eval('#face-status', (e) => e.classList.contains('error')));
      check('(b) capture button enabled again', !(await page.isDisabled('#face-capture')));
      check('(b) file input enabled again', !(await page.isDisabled('#face-file')));
      check('(b) one POST', posts.filter((p) => p.mode === 'reject').length === 1);
      check('(b) stayed on the page', page.url().startsWith(`${base}/page`));
      await page.screenshot({ path: path.join(OUT_DIR, 'b-error.png') });
      const probs = (await pageProblems(page, logs)).filter((l) => !/422/.test(l));
      check('(b) no CSP violations or script errors', probs.length === 0, probs.join(' | '));
      await context.close();
    }

    // (d) rate limited: 429 with retry_after disables capture with a countdown.
    {
      const { context, page } = await newPage(withCamera, base);
      await page.goto(`${base}/page?shots=1&endpoint=/mock/ratelimit`);
      await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
      await page.click('#face-capture');
      await page.waitForSelector('#face-form[data-state="waiting"]', { timeout: 10000 }).catch(() => {});
      const label = await page.textContent('#face-capture');
      const status = await page.textContent('#face-status');
      check('(d) 429: countdown on the button', /\(\d s\)/.test(label), label);
      check('(d) 429: status says when, once', status === 'Too many attempts. Try again in 3 seconds.', status);
      check('(d) 429: capture and upload disabled', (await page.isDisabled('#face-capture')) && (await page.isDisabled('#face-file')));
      await page.screenshot({ path: path.join(OUT_DIR, 'd-rate-limited.png') });
      await page.waitForSelector('#face-capture:not([disabled])', { timeout: 6000 }).catch(() => {});
      check('(d) 429: enabled again after retry_after', !(await page.isDisabled('#face-capture')), await page.textContent('#face-capture'));
      check('(d) 429: label restored', (await page.textContent('#face-capture')) === 'Take picture');
      await context.close();
    }

    // (e) login page with data-auto="1": one picture without a click.
    {
      const { context, page } = await newPage(withCamera, base, { colorScheme: 'dark', viewport: { width: 390, height: 844 } });
      const before = posts.filter((p) => p.mode === 'upload').length;
      await page.goto(`${base}/page?shots=1&auto=1&endpoint=/mock/upload`);
      await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
      const ready = Date.now();
      await page.screenshot({ path: path.join(OUT_DIR, 'e-auto-dark-phone.png') });
      await waitFor(() => posts.filter((p) => p.mode === 'upload').length > before, 6000, 'auto POST');
      const p = posts.filter((x) => x.mode === 'upload')[before];
      check('(e) auto: picture sent without a click', !!p, p ? `${p.at - ready} ms after ready` : '');
      check('(e) auto: ~1.5 s after the camera started', !!p && p.at - ready >= 1200 && p.at - ready < 4000);
      if (p) checkPost('(e) auto POST', p, { filename: 'capture.jpg' });
      await page.waitForSelector('#face-status.success', { timeout: 5000 }).catch(() => {});
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(OUT_DIR, 'e-auto-dark-phone-done.png') });
      await page.waitForTimeout(2500);
      check('(e) auto: only once', posts.filter((x) => x.mode === 'upload').length === before + 1);
      await context.close();
    }

    // (f) the connection drops: the network message, and everything usable again.
    {
      // Count fetch() calls in the page: Chromium itself retries a POST whose connection was
      // reset before any answer, so the server may see it more than once.
      const { context, page } = await newPage(withCamera, base, {
        init: () => {
          window.__fetches = 0;
          const orig = window.fetch;
          window.fetch = function (...args) {
            window.__fetches += 1;
            return orig.apply(this, args);
          };
        },
      });
      await page.goto(`${base}/page?shots=3&endpoint=/mock/drop`);
      await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
      await page.click('#face-capture');
      await page.waitForSelector('#face-status.error', { timeout: 10000 }).catch(() => {});
      const status = await page.textContent('#face-status');
      check('(f) network failure message', status === 'Could not reach the server; check your connection and try again.', status);
      const fetches = await page.evaluate(() => window.__fetches);
      const seen = posts.filter((p) => p.mode === 'drop').length;
      check('(f) series stopped after the failed shot (one fetch)', fetches === 1, `${fetches} fetch() calls, ${seen} POSTs seen by the server`);
      check('(f) capture enabled again', !(await page.isDisabled('#face-capture')));
      await page.screenshot({ path: path.join(OUT_DIR, 'f-network-error.png') });
      await context.close();
    }
  } finally {
    await withCamera.close();
  }

  // (c) no camera: browser without the fake device, permission prompts denied; then a
  // page whose getUserMedia reports no device. The upload must work in both.
  const noCamera = await launch([...BASE_ARGS, '--deny-permission-prompts']);
  try {
    const variants = [
      { tag: 'c1', init: null, expect: /camera|Camera/ },
      {
        tag: 'c2',
        init: () => {
          navigator.mediaDevices.getUserMedia = () =>
            Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));
        },
        expect: /^No camera was found\. You can choose a photo instead\.$/,
      },
      {
        tag: 'c3',
        init: () => {
          navigator.mediaDevices.getUserMedia = () =>
            Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
        },
        expect: /^Camera permission was refused\. You can choose a photo instead\.$/,
      },
    ];
    for (const v of variants) {
      const { context, page, logs } = await newPage(noCamera, base, { init: v.init });
      await page.goto(`${base}/page?shots=1&endpoint=/mock/upload`);
      await page.waitForSelector('#face-form[data-state="no-camera"]', { timeout: 15000 }).catch(() => {});
      const status = await page.textContent('#face-status');
      check(`(${v.tag}) status explains and offers the upload`, v.expect.test(status) && /choose a photo/.test(status), status);
      check(`(${v.tag}) camera block hidden`, !(await page.isVisible('.face-camera')));
      check(`(${v.tag}) capture button hidden`, !(await page.isVisible('#face-capture')));
      check(`(${v.tag}) file input usable`, (await page.isVisible('#face-file')) && !(await page.isDisabled('#face-file')));
      await page.screenshot({ path: path.join(OUT_DIR, `${v.tag}-no-camera.png`) });
      const before = posts.filter((p) => p.mode === 'upload').length;
      await page.setInputFiles('#face-file', PHOTO);
      await waitFor(() => posts.filter((p) => p.mode === 'upload').length > before, 8000, 'upload POST');
      const p = posts.filter((x) => x.mode === 'upload')[before];
      check(`(${v.tag}) upload POST received`, !!p);
      if (p) {
        const img = checkPost(`(${v.tag}) upload`, p, { filename: path.basename(PHOTO) });
        check(`(${v.tag}) upload: file bytes unchanged`, !!img && img.body.equals(fs.readFileSync(PHOTO)));
      }
      await page.waitForSelector('#face-status.success', { timeout: 5000 }).catch(() => {});
      const after = await page.textContent('#face-status');
      check(`(${v.tag}) success message shown`, after === 'Your photo was accepted.', after);
      check(`(${v.tag}) upload enabled again`, !(await page.isDisabled('#face-file')));
      if (v.tag === 'c2') await page.screenshot({ path: path.join(OUT_DIR, 'c2-uploaded.png') });
      const probs = await pageProblems(page, logs);
      check(`(${v.tag}) no CSP violations or script errors`, probs.length === 0, probs.join(' | '));
      await context.close();
    }
  } finally {
    await noCamera.close();
  }

  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
  console.log(`screenshots in ${OUT_DIR}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
