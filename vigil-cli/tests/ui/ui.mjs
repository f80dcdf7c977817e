// vigild's web interface in a real browser (Debian's Chromium through playwright-core), as a
// person uses it: log in, watch the grid's frames change, see an event arrive live, open it
// and play its clip, look at recordings, and log in as a viewer who may not see the system
// page. Screenshots of each page go to SCREENSHOTS. Any console error or page error fails.
//
// VIGIL_URL, ADMIN_PASSWORD, VIEWER_PASSWORD, CHROMIUM and SCREENSHOTS come from
// vigil-cli/tests/ui.rs, which starts vigild and runs this with node.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const base = process.env.VIGIL_URL;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run',
    '--autoplay-policy=no-user-gesture-required'],
});
const problems = [];
// Nothing here takes minutes: a hang fails the run.
setTimeout(() => { console.error(`FAILED: still running after 8 min\n${problems.join('\n')}`); process.exit(1); }, 480000).unref();
const step = (s) => console.log(`step: ${s}`);

async function open(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { context, page };
}

async function login(page, user, password) {
  await page.goto(base + '/');
  await page.waitForSelector('form.login');
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('#login');
  await page.waitForSelector('#grid img');
}

try {
  const { context, page } = await open({ width: 1280, height: 800 });

  step('a wrong password is refused on the page');
  await page.goto(base + '/');
  await page.waitForSelector('form.login');
  await page.screenshot({ path: `${shots}/login.png` });
  await page.fill('#username', 'admin');
  await page.fill('#password', 'not-the-password');
  await page.click('#login');
  await page.waitForSelector('.login .err:not(:empty)');
  // The browser logs the refused request itself; that one is expected.
  problems.length = 0;

  step('log in: the live grid');
  await login(page, 'admin', process.env.ADMIN_PASSWORD);
  const frame = async () => page.$eval('#grid img[data-camera="demo"]', async (img) => {
    if (!img.complete || !img.naturalWidth) {
      await new Promise((r) => {
        img.addEventListener('load', r, { once: true });
        img.addEventListener('error', r, { once: true });
        setTimeout(r, 3000);
      });
    }
    if (!img.naturalWidth) return `no picture (${img.src})`;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    c.getContext('2d').drawImage(img, 0, 0);
    return c.toDataURL('image/png');
  });
  await page.waitForFunction(() => {
    const img = document.querySelector('#grid img[data-camera="demo"]');
    return img && img.naturalWidth > 0;
  }, null, { timeout: 60000 });
  const first = await frame();
  if (first.startsWith('no picture')) throw new Error(`the grid shows ${first}`);
  let moved = false;
  for (let i = 0; i < 60 && !moved; i++) {
    await page.waitForTimeout(500);
    moved = (await frame()) !== first;
  }
  if (!moved) throw new Error('the grid frames did not change in 30 s');
  await page.screenshot({ path: `${shots}/live.png` });

  step('a camera page with its overlays and status');
  await page.click('a.tile[href="#/camera/demo"]');
  await page.waitForSelector('#stream');
  await page.waitForFunction(() => document.getElementById('stream').naturalWidth > 0);
  const status = await page.textContent('#status');
  if (status !== 'online') throw new Error(`camera status ${status}`);
  await page.check('input[name="zones"]');
  await page.waitForFunction(() => document.getElementById('stream').src.includes('zones=1'));
  await page.screenshot({ path: `${shots}/camera.png` });

  step('events: one arrives live, over the WebSocket');
  await page.click('a[data-nav="events"]');
  await page.waitForSelector('#events[data-loaded]');
  const before = await page.$$eval('#events .event', (els) => els.map((e) => e.dataset.id));
  await page.waitForFunction((known) => [...document.querySelectorAll('#events .event')]
    .some((e) => !known.includes(e.dataset.id)), before, { timeout: 60000 });
  await page.screenshot({ path: `${shots}/events.png` });

  step('filters: a camera and a label');
  await page.selectOption('select[name="camera"]', 'demo');
  await page.fill('input[name="label"]', 'motion');
  await page.click('form.filters button[type="submit"]');
  await page.waitForFunction(() => location.hash.includes('label=motion'));
  await page.waitForFunction(() => document.querySelector('select[name="camera"]').value === 'demo'
    && document.querySelector('#events[data-loaded]'));
  const labels = await page.$$eval('#events .event .label', (els) => els.map((e) => e.textContent));
  if (!labels.length || labels.some((l) => l !== 'motion')) throw new Error(`filtered rows: ${labels}`);

  step('an event: its snapshot and its clip playing');
  // One that has ended has its whole clip.
  const handle = await page.waitForFunction(() => {
    const done = [...document.querySelectorAll('#events .event')]
      .find((e) => !e.textContent.includes('in progress'));
    return done && done.dataset.id;
  }, null, { timeout: 90000 });
  const id = await handle.jsonValue();
  await page.goto(`${base}/#/event/${id}`);
  await page.waitForSelector('#clip');
  const played = await page.$eval('#clip', (v) => new Promise((resolve) => {
    const done = (what) => resolve(`${what} ${v.currentTime.toFixed(2)} ${v.videoWidth}x${v.videoHeight}`);
    v.addEventListener('playing', () => setTimeout(() => done('playing'), 500), { once: true });
    v.addEventListener('error', () => done(`error ${v.error && v.error.code}`), { once: true });
    v.play().catch((e) => done(`refused ${e.message}`));
    setTimeout(() => done('timeout'), 20000);
  }));
  if (!played.startsWith('playing')) throw new Error(`the clip did not play: ${played}`);
  await page.waitForFunction(() => { const s = document.getElementById('snapshot'); return !s || s.naturalWidth > 0; });
  await page.screenshot({ path: `${shots}/event.png` });

  step('review it');
  await page.click('#review');
  await page.waitForSelector('#notice:not([hidden])');
  const reviewed = await page.evaluate(async (eid) => (await (await fetch(`/api/events/${eid}`)).json()).reviewed, id);
  if (reviewed !== true) throw new Error('the review was not saved');

  step('recordings of the day');
  await page.click('a[data-nav="recordings"]');
  await page.waitForSelector('table button', { timeout: 30000 });
  await page.screenshot({ path: `${shots}/recordings.png` });

  step('the system page (admin)');
  await page.click('a[data-nav="system"]');
  await page.waitForSelector('h2');
  await page.screenshot({ path: `${shots}/system.png` });

  step('log out');
  await page.click('#logout');
  await page.waitForSelector('form.login');
  const gone = await page.evaluate(async () =>
    (await fetch('/api/cameras', { headers: { 'X-Requested-With': 'test' } })).status);
  if (gone !== 401) throw new Error(`after logging out the API answered ${gone}`);
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('401')));
  await context.close();

  step('a viewer: no system page, no review or delete');
  const phone = await open({ width: 390, height: 844 });
  await login(phone.page, 'viewer', process.env.VIEWER_PASSWORD);
  if (await phone.page.isVisible('a[data-nav="system"]')) throw new Error('a viewer sees the system link');
  await phone.page.goto(`${base}/#/system`);
  await phone.page.waitForSelector('text=This page is for admins.');
  await phone.page.goto(`${base}/#/event/${id}`);
  await phone.page.waitForSelector('#clip');
  if (await phone.page.$('#review')) throw new Error('a viewer can review');
  await phone.page.goto(`${base}/#/live`);
  await phone.page.waitForSelector('#grid img');
  await phone.page.screenshot({ path: `${shots}/live-phone.png` });

  step('the session ends: the page says so');
  await phone.context.clearCookies();
  await phone.page.click('a[data-nav="events"]');
  await phone.page.waitForSelector('text=Your session has ended');
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('401')));
  await phone.context.close();

  if (problems.length) throw new Error(`errors in the page:\n${problems.join('\n')}`);
  console.log('ok');
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
