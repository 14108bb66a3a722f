// Browser end-to-end test of step-up, as a person sees it: alice signs in to one notes app with her
// password; a second notes app that asks facegate for a face (acr_values=urn:facegate:face) does not
// get her in on that password: facegate asks her to confirm it is her with the camera (no password
// again), and the second app then shows acr urn:facegate:face with amr pwd, face, mfa. Someone else's
// face at that step is refused and the app is never reached.
// Real facegate and two notes apps (release builds), headless Chromium, webcams made with ffmpeg.
import path from 'node:path';
import { check, facegate, finish, launch, out, testdata, webcam } from './lib.mjs';

const fg = await facegate();
const aliceId = fg.cli(['user', 'add', '--username', 'alice', '--email', 'alice@example.com', '--name', 'Alice Example', '--password-stdin'], 'correct horse battery staple\n');
fg.cli(['user', 'enroll', '--username', 'alice', path.join(testdata, 'faces/deepface/person_img1/img1.jpg')]);
const text = async (page, sel) => ((await page.textContent(sel)) ?? '').trim();

let browser;
try {
  await fg.start();
  const plain = await fg.notes();
  const vault = await fg.notes({ NOTES_ACR_VALUES: 'urn:facegate:face' });

  // Someone else at the camera: the step-up is refused.
  browser = await launch(webcam('deepface/person_img8/img48.jpg', 'stepup-bob'));
  let page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  const passwordIn = async () => {
    await page.goto(`${plain.url}/`);
    await page.click('#sign-in');
    await page.waitForURL(`${fg.issuer}/login**`);
    await page.fill('#username', 'alice');
    await page.fill('#password', 'correct horse battery staple');
    await page.click('button[type=submit]');
    await page.waitForURL(`${plain.url}/`);
  };
  await passwordIn();
  await page.goto(`${vault.url}/`);
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login/face**`, { timeout: 15000 });
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.click('#face-capture');
  await page.waitForFunction(() => /did not work/i.test(document.getElementById('face-status').textContent), null, { timeout: 30000 });
  check('someone else\'s face at the step-up is refused with a message', !page.url().startsWith(vault.url), page.url());
  await browser.close();

  // Alice herself.
  browser = await launch(webcam('deepface/person_img1/img2.jpg', 'stepup-alice'));
  page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  await passwordIn();
  check('the first app signs alice in with her password: acr urn:facegate:pwd', (await text(page, '#acr')) === 'urn:facegate:pwd', await text(page, '#acr'));
  await page.goto(`${vault.url}/`);
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login/face**`, { timeout: 15000 });
  const body = await page.textContent('body');
  check('the app that asks for a face sends her to the face step, not past it', /Confirm it is you/.test(body ?? ''), page.url());
  check('without asking for the password again', (await page.$('#password')) === null);
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.screenshot({ path: path.join(out, 'step-up-1-face.png'), fullPage: true });
  await page.click('#face-capture');
  await page.waitForURL(`${vault.url}/`, { timeout: 30000 });
  check('after the face step she reaches the second app as herself', (await text(page, '#sub')) === aliceId, `${await text(page, '#sub')} vs ${aliceId}`);
  check('with acr urn:facegate:face', (await text(page, '#acr')) === 'urn:facegate:face', await text(page, '#acr'));
  check('and amr ["pwd","face","mfa"]', (await text(page, '#amr')) === '["pwd","face","mfa"]', await text(page, '#amr'));
  await page.screenshot({ path: path.join(out, 'step-up-2-vault.png'), fullPage: true });
} catch (e) {
  check(`step-up run: ${e.message}`, false);
} finally {
  if (browser) await browser.close().catch(() => {});
  fg.stop();
}
finish('step-up');
