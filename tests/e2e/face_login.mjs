// Browser end-to-end test of face login, through the secret-notes example app (examples/notes), as a
// person sees it:
//   1. alice signs in to facegate with her password and enrols her face from the (fake) webcam;
//   2. she opens the notes app, signs in with her face (live guidance first), sees who and how
//      (sub, amr, acr) and writes a note;
//   3. she signs out (the notes app, then facegate through its end-session endpoint), signs in with her
//      face again and finds her note;
//   4. someone else's face for alice's account is refused, with a message, and never reaches the app;
//   5. bob, with his own account and face, signs in to the notes app and never sees alice's note;
//   6. with camera permission refused the page falls back to an uploaded photo, which signs alice in.
// Real programs (release builds of facegate and notes), real headless Chromium (Debian package),
// webcams made from test photos with ffmpeg. Screenshots go to target/e2e/ (the README's come from
// liveness.mjs).
import path from 'node:path';
import { check, facegate, finish, launch, out, testdata, webcam, results } from './lib.mjs';

const fg = await facegate();
const aliceId = fg.cli(['user', 'add', '--username', 'alice', '--email', 'alice@example.com', '--name', 'Alice Example', '--password-stdin'], 'correct horse battery staple\n');
const bobId = fg.cli(['user', 'add', '--username', 'bob', '--email', 'bob@example.com', '--password-stdin'], 'bob password for the e2e\n');
const SECRET = "Alice's secret: the spare key is under the blue flower pot";

async function enrol(browser, username, password, shot) {
  const page = await (await browser.newContext({ viewport: { width: 420, height: 900 } })).newPage();
  await page.goto(`${fg.issuer}/login`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL('**/account');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  if (shot) await page.screenshot({ path: path.join(out, shot), fullPage: true });
  await page.click('#face-capture');
  await page.waitForFunction(() => document.querySelectorAll('form[action="/account/faces/delete"]').length === 3, null, { timeout: 30000 });
  await page.context().close();
}

/// From the notes app's front page to facegate's face login page, username filled in.
async function toFaceLogin(page, notes, username) {
  await page.goto(`${notes.url}/`);
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login**`);
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"], #face-form[data-state="no-camera"]', { timeout: 15000 });
  await page.fill('#username', username);
}

const text = async (page, sel) => ((await page.textContent(sel)) ?? '').trim();

let browser, page;
try {
  await fg.start();
  const notes = await fg.notes();
  const aliceCam = webcam('deepface/person_img1/img2.jpg', 'alice');
  const bobCam = webcam('deepface/person_img8/img48.jpg', 'bob');

  // 1. Enrolment from the webcam.
  browser = await launch(aliceCam);
  await enrol(browser, 'alice', 'correct horse battery staple', '1-enrol.png');
  check('alice enrols three pictures from the webcam', true);

  // 2. Face login through the notes app.
  page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await page.goto(`${notes.url}/`);
  check('the notes app shows nothing before sign-in', (await page.locator('.note').count()) === 0 && await page.isVisible('#sign-in'));
  await toFaceLogin(page, notes, 'alice');
  await page.waitForFunction(() => /Looks good/.test(document.getElementById('face-status').textContent), null, { timeout: 15000 });
  check('live guidance says the picture would be good before it is taken', true);
  await page.screenshot({ path: path.join(out, '2-face-login.png'), fullPage: true });
  await page.click('#face-capture');
  await page.waitForURL(`${notes.url}/`, { timeout: 30000 });
  check('face login lands back in the notes app, signed in', (await text(page, '#who')) === 'Alice Example', await text(page, '#who'));
  check('the notes app shows alice\'s sub', (await text(page, '#sub')) === aliceId, `${await text(page, '#sub')} vs ${aliceId}`);
  check('and how she signed in: amr ["face"]', (await text(page, '#amr')) === '["face"]', await text(page, '#amr'));
  check('and acr urn:facegate:face', (await text(page, '#acr')) === 'urn:facegate:face', await text(page, '#acr'));
  await page.fill('#note-text', SECRET);
  await page.click('#add-note');
  await page.waitForSelector('.note');
  check('alice writes a note and sees it', (await text(page, '.note .text')) === SECRET, await text(page, '.note .text'));
  await page.screenshot({ path: path.join(out, '3-notes.png'), fullPage: true });

  // 3. Sign out through facegate's end-session endpoint, then sign in with the face again.
  await page.click('#sign-out');
  await page.waitForURL(`${notes.url}/`);
  await page.waitForSelector('#sign-in');
  check('signing out returns to the notes app, signed out', (await page.locator('.note').count()) === 0);
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login**`);
  check('facegate\'s session ended too: it asks who you are again', true);
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.fill('#username', 'alice');
  await page.click('#face-capture');
  await page.waitForURL(`${notes.url}/`, { timeout: 30000 });
  await page.waitForSelector('.note');
  check('signed in with her face again, alice sees her note', (await text(page, '.note .text')) === SECRET);
  await browser.close();

  // 4. Someone else's face for alice's account.
  browser = await launch(bobCam);
  page = await (await browser.newContext()).newPage();
  await toFaceLogin(page, notes, 'alice');
  await page.click('#face-capture');
  await page.waitForSelector('#face-status.error', { timeout: 30000 });
  const message = await text(page, '#face-status');
  check('a different person is refused with a message', /did not work/i.test(message), message);
  check('and stays at facegate, not signed in to the notes app', page.url().startsWith(fg.issuer), page.url());
  await page.screenshot({ path: path.join(out, '4-refused.png'), fullPage: true });

  // 5. bob, with his own account and face, never sees alice's note.
  await enrol(browser, 'bob', 'bob password for the e2e');
  page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await toFaceLogin(page, notes, 'bob');
  await page.click('#face-capture');
  await page.waitForURL(`${notes.url}/`, { timeout: 30000 });
  check('bob signs in to the notes app with his face', (await text(page, '#sub')) === bobId, await text(page, '#sub'));
  const bobPage = (await page.content());
  check('bob sees no notes, and nothing of alice\'s', (await page.isVisible('#no-notes')) && !bobPage.includes('spare key'));
  await browser.close();

  // 6. Camera permission refused (the browser has a camera, the person says no): upload a photo.
  browser = await launch(aliceCam);
  page = await (await browser.newContext()).newPage();
  await page.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
  });
  await toFaceLogin(page, notes, 'alice');
  await page.waitForSelector('#face-form[data-state="no-camera"]', { timeout: 15000 });
  const refusedText = await text(page, '#face-status');
  check('the page says the camera was refused and offers an upload', /permission was refused/i.test(refusedText), refusedText);
  await page.screenshot({ path: path.join(out, '5-camera-refused.png'), fullPage: true });
  await page.setInputFiles('#face-file', path.join(testdata, 'faces/deepface/person_img1/img10.jpg'));
  await page.waitForURL(`${notes.url}/`, { timeout: 30000 });
  await page.waitForSelector('.note');
  check('with the camera refused, an uploaded photo signs alice in to her notes', (await text(page, '.note .text')) === SECRET);
  await browser.close();
  browser = null;
} catch (e) {
  results.failed++;
  console.log(`FAIL  ${e.stack ?? e}`);
  if (page) {
    console.log(`      at ${page.url()}: ${(await page.textContent('body').catch(() => '')).replace(/\s+/g, ' ').slice(0, 400)}`);
    await page.screenshot({ path: path.join(out, 'face-login-failure.png'), fullPage: true }).catch(() => {});
  }
  if (browser) await browser.close().catch(() => {});
} finally {
  fg.stop();
}
finish('face login through the notes app');
