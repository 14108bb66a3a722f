// Browser end-to-end test of accounts (issue 15), as a new person and an operator see them:
//   1. dana opens the sign-up page from the notes app's sign-in, creates her account, and is told
//      to check her mail; the confirmation mail (the outbox, since no SMTP server is set) holds the
//      link, which she opens and confirms;
//   2. she signs in with her password, enrols her face from the (fake) webcam on her account page,
//      and signs in to the notes app with her face;
//   3. the operator disables her account (`facegate admin disable`); her next sign-in is refused
//      with a clear message and never reaches the notes app;
//   4. "forgot password" answers the same for her address and an unknown one.
import fs from 'node:fs';
import path from 'node:path';
import { check, facegate, finish, launch, out, sleep, webcam } from './lib.mjs';

const fg = await facegate({ FACEGATE_SIGNUP: 'open' });
const text = async (page, sel) => ((await page.textContent(sel)) ?? '').trim();
const PASSWORD = 'a quiet lantern by the river';

/// The newest mail in the outbox to `to`, waiting for it (mail goes out in the background).
async function mailTo(to, after = 0) {
  const dir = path.join(fg.data, 'outbox');
  for (let i = 0; i < 100; i++) {
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).sort() : [];
    const mails = files.map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).filter((m) => m.includes(to));
    if (mails.length > after) return mails[mails.length - 1].replace(/=\r?\n/g, '').replace(/=3D/g, '=');
    await sleep(100);
  }
  throw new Error(`no mail to ${to}`);
}

let browser;
try {
  await fg.start();
  const notes = await fg.notes();
  browser = await launch(webcam('deepface/person_img1/img2.jpg', 'dana'));
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  let page = await ctx.newPage();

  // 1. Sign-up from the sign-in page, then the mail.
  await page.goto(`${notes.url}/`);
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login**`);
  await page.click('text=Create an account');
  await page.fill('#username', 'dana');
  await page.fill('#email', 'dana@example.com');
  await page.fill('#password', 'password123');
  await page.click('button[type=submit]');
  check('a common password is refused with a reason', /most common passwords/.test(await text(page, '.error')), await text(page, '.error'));
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
  check('sign-up says to check the mail', /Check your mail/.test(await text(page, 'h1')), await text(page, 'h1'));
  await page.screenshot({ path: path.join(out, 'accounts-1-signup.png'), fullPage: true });
  const mail = await mailTo('dana@example.com');
  const link = (/(http:\/\/localhost:\d+\/account\/verify\?token=[A-Za-z0-9_-]+)/.exec(mail) || [])[1];
  check('the confirmation mail holds the link', Boolean(link), mail.slice(0, 400));
  await page.goto(link);
  await page.click('button[type=submit]');
  check('the link confirms the address', /Address confirmed/.test(await text(page, 'h1')), await text(page, 'h1'));

  // 2. Password sign-in, face enrolment, face sign-in to the notes app.
  await page.goto(`${fg.issuer}/login`);
  await page.fill('#username', 'dana');
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL('**/account');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.click('#face-capture');
  await page.waitForFunction(() => document.querySelectorAll('form[action="/account/faces/delete"]').length === 3, null, { timeout: 30000 });
  check('she enrols her face on her account page', true);
  await page.screenshot({ path: path.join(out, 'accounts-2-account.png'), fullPage: true });
  await ctx.clearCookies();
  page = await ctx.newPage();
  await page.goto(`${notes.url}/`);
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login**`);
  await page.click('text=Sign in with your face instead');
  await page.waitForSelector('#face-form[data-state="ready"]', { timeout: 15000 });
  await page.fill('#username', 'dana');
  await page.click('#face-capture');
  await page.waitForURL(`${notes.url}/`, { timeout: 30000 });
  const danaId = fg.cli(['admin', 'users', '--search', 'dana']).split('\t')[1];
  check('she signs in to the notes app with her face', (await text(page, '#sub')) === danaId, `${await text(page, '#sub')} vs ${danaId}`);

  // 3. Disabled by the operator: the next sign-in is refused, clearly.
  fg.cli(['admin', 'disable', 'dana']);
  await ctx.clearCookies();
  page = await ctx.newPage();
  await page.goto(`${notes.url}/`);
  await page.click('#sign-in');
  await page.waitForURL(`${fg.issuer}/login**`);
  await page.fill('#username', 'dana');
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForLoadState();
  check('a disabled account is told so and stays on facegate', page.url().startsWith(fg.issuer) && /disabled by the operator/.test(await text(page, 'main')), `${page.url()} ${await text(page, 'main')}`);
  await page.screenshot({ path: path.join(out, 'accounts-3-disabled.png'), fullPage: true });

  // 4. Forgot password: the same answer whatever the address.
  const answer = async (email) => {
    const p = await ctx.newPage();
    await p.goto(`${fg.issuer}/password/forgot`);
    await p.fill('#email', email);
    await p.click('button[type=submit]');
    const t = await text(p, 'main');
    await p.close();
    return t;
  };
  check('forgot-password answers the same for a known and an unknown address', (await answer('dana@example.com')) === (await answer('nobody@example.com')));
} catch (e) {
  check(`accounts ran to the end: ${e.message}`, false);
} finally {
  if (browser) await browser.close().catch(() => {});
  fg.stop();
}
finish('accounts');
