// Browser end-to-end test of enrolment with liveness required (the default): erin signs in with her
// password, opens her account page, and adds her face by passing a liveness check in front of the
// camera (its frames become her template; no photo upload is offered); she then signs in to the
// notes app with her face and liveness. The real head-turn video is the webcam, the challenge seed
// is fixed to its head turns (FACEGATE_INSECURE_TESTING=1).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { check, facegate, finish, launch, out, testdata } from './lib.mjs';

const video = path.join(testdata, 'liveness/live_head_turn/real.webm');
const liveCam = path.join(out, 'enrol-live.y4m');
execFileSync('ffmpeg', ['-y', '-loglevel', 'error', '-i', video, '-vf', 'scale=640:360,fps=15', '-pix_fmt', 'yuv420p', liveCam]);

const fg = await facegate({
  FACEGATE_LIVENESS: 'required', FACEGATE_INSECURE_TESTING: '1', FACEGATE_LIVENESS_SEED: '6',
  FACEGATE_LIVENESS_SECONDS: '60', FACEGATE_LIVENESS_CHALLENGES: 'head-turns',
  // The same video enrols and then signs in: to the frame memory that is a replayed recording.
  FACEGATE_LIVENESS_FRAME_MEMORY: 'off',
});
const text = async (page, sel) => ((await page.textContent(sel)) ?? '').trim();
let browser;
try {
  const erinId = fg.cli(['user', 'add', '--username', 'erin', '--email', 'erin@example.com', '--password-stdin'], 'correct horse battery staple\n');
  await fg.start();
  const notes = await fg.notes();

  browser = await launch(liveCam);
  let page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await page.goto(`${fg.issuer}/login`);
  await page.fill('#username', 'erin');
  await page.fill('#password', 'correct horse battery staple');
  await page.click('button[type=submit]');
  await page.waitForURL('**/account');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  check('the account page adds a face through the liveness check, with no upload',
    /Start the check/.test(await text(page, '#face-capture')) && (await page.$('#face-file')) === null, await text(page, '#face-capture'));
  await page.click('#face-capture');
  await page.waitForFunction(() => document.querySelectorAll('form[action="/account/faces/delete"]').length === 1, null, { timeout: 90000 });
  check('the passed check adds one face to her account', true);
  await page.screenshot({ path: path.join(out, 'enrol-live-1-account.png'), fullPage: true });
  await browser.close();

  browser = await launch(liveCam);
  page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await page.goto(`${notes.url}/`);
  await page.click('#sign-in');
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.fill('#username', 'erin');
  await page.click('#face-capture');
  await page.waitForURL(`${notes.url}/**`, { timeout: 90000 });
  check('with that face and a new check she signs in to the notes app', (await text(page, '#sub')) === erinId, `${await text(page, '#sub')} vs ${erinId}`);
  check('with acr urn:facegate:face:live', (await text(page, '#acr')) === 'urn:facegate:face:live', await text(page, '#acr'));
} catch (e) {
  check(`enrolment with liveness ran to the end: ${e.message}`, false);
} finally {
  if (browser) await browser.close().catch(() => {});
  fg.stop();
}
finish('enrolment with liveness');
