// vigild's web interface in a real browser (Debian's Chromium through playwright-core), as a
// person uses it: log in, add an RTSP camera in the settings and watch its frames move in the
// grid, see an event arrive live, open it and play its clip, draw a zone and a mask and see
// them saved, set retention, make an account, an API key and an alert rule, scrub and play
// recordings, read the live log, and log in as a viewer who may not see the settings.
// Screenshots of each page go to SCREENSHOTS. Any console error or page error fails.
//
// VIGIL_URL, RTSP_URL, ADMIN_PASSWORD, VIEWER_PASSWORD, CHROMIUM and SCREENSHOTS come from
// vigil-cli/tests/ui.rs, which starts vigild and the RTSP server and runs this with node.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

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
// axe-core checks each page for what keeps people from using it (labels, names, contrast,
// keyboard order); it is given to the page through the debugger, which the page's content
// security policy does not govern.
const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const audited = [];
async function audit(page, name) {
  await page.evaluate(`${axe}\n;0`);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  if (found.length) throw new Error(`accessibility, page ${name}:\n  ${found.join('\n  ')}`);
  audited.push(name);
}
const check = (ok, what) => { if (!ok) throw new Error(what); };

let last = null;
async function open(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  last = page;
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
  await audit(page, 'login');
  await page.fill('#username', 'admin');
  await page.fill('#password', 'not-the-password');
  await page.click('#login');
  await page.waitForSelector('.login .err:not(:empty)');
  // The browser logs the refused request itself; that one is expected.
  problems.length = 0;

  step('log in: the live grid');
  await login(page, 'admin', process.env.ADMIN_PASSWORD);
  // The refused login's 401, when the browser reports it late.
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('401')));
  const frame = async (cam) => page.$eval(`#grid img[data-camera="${cam}"]`, async (img) => {
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
  const moving = async (cam) => {
    await page.waitForFunction((c) => {
      const img = document.querySelector(`#grid img[data-camera="${c}"]`);
      return img && img.naturalWidth > 0;
    }, cam, { timeout: 60000 });
    const first = await frame(cam);
    if (first.startsWith('no picture')) throw new Error(`the grid shows ${first} for ${cam}`);
    for (let i = 0; i < 60; i++) {
      await page.waitForTimeout(500);
      if ((await frame(cam)) !== first) return;
    }
    throw new Error(`the grid frames of ${cam} did not change in 30 s`);
  };
  await moving('demo');

  step('settings: add an RTSP camera, see its frames move in the grid');
  await page.click('a[data-nav="settings"]');
  await page.waitForSelector('#cameras tr[data-camera="demo"]');
  await page.click('#add-camera');
  await page.waitForSelector('#camera-form');
  await page.fill('input[name="name"]', 'porch');
  await page.fill('input[name="url"]', process.env.RTSP_URL);
  await page.fill('input[name="labels"]', 'person, car');
  await page.screenshot({ path: `${shots}/camera-form.png` });
  await audit(page, 'camera form');
  await page.click('#save-camera');
  await page.waitForSelector('#cameras tr[data-camera="porch"]');
  await page.waitForSelector('#notice:has-text("porch added.")');
  await page.screenshot({ path: `${shots}/settings.png` });
  await audit(page, 'settings');
  await page.click('a[data-nav="live"]');
  await moving('porch');
  await page.screenshot({ path: `${shots}/live.png` });
  await audit(page, 'live');

  step('a detector toggle is saved');
  await page.click('a[data-nav="settings"]');
  await page.uncheck('#cameras tr[data-camera="porch"] input[data-toggle="motion"]');
  await page.waitForSelector('#notice:has-text("porch: motion off.")');
  const porch = await page.evaluate(async () => (await (await fetch('/api/cameras/porch')).json()));
  check(porch.motion.enabled === false && porch.detect.labels.join() === 'person,car', `porch saved as ${JSON.stringify(porch)}`);

  step('edit a camera: one setting changes, the others stay');
  await page.click('#cameras tr[data-camera="porch"] a:has-text("Edit")');
  await page.waitForSelector('#camera-form');
  check(await page.evaluate(() => document.activeElement?.name === 'name'), 'the form does not start at its first field');
  await page.fill('input[name="fps"]', '4');
  await page.click('#save-camera');
  await page.waitForSelector('#notice:has-text("porch saved.")');
  const edited = await page.evaluate(async () => (await (await fetch('/api/cameras/porch')).json()));
  check(edited.detect.fps === 4 && edited.motion.enabled === false && edited.url === porch.url,
    `porch edited to ${JSON.stringify(edited)}`);

  step('a camera page with its overlays and status');
  await page.click('a[data-nav="live"]');
  await page.click('a.tile[href="#/camera/demo"]');
  await page.waitForSelector('#stream');
  await page.waitForFunction(() => document.getElementById('stream').naturalWidth > 0);
  const status = await page.textContent('#status');
  if (status !== 'online') throw new Error(`camera status ${status}`);
  await page.check('input[name="zones"]');
  await page.waitForFunction(() => document.getElementById('stream').src.includes('zones=1'));
  await page.screenshot({ path: `${shots}/camera.png` });
  await audit(page, 'camera');

  step('events: one arrives live, over the WebSocket');
  await page.click('a[data-nav="events"]');
  await page.waitForSelector('#events[data-loaded]');
  const before = await page.$$eval('#events .event', (els) => els.map((e) => e.dataset.id));
  await page.waitForFunction((known) => [...document.querySelectorAll('#events .event')]
    .some((e) => !known.includes(e.dataset.id)), before, { timeout: 60000 });
  await page.screenshot({ path: `${shots}/events.png` });
  await audit(page, 'events');

  step('filters: a camera and a label');
  await page.selectOption('select[name="camera"]', 'demo');
  await page.fill('input[name="label"]', 'motion');
  await page.click('form.filters button[type="submit"]');
  await page.waitForFunction(() => location.hash.includes('label=motion'));
  // The new list, not the one still shown while it loads.
  await page.waitForSelector('#events[data-loaded*="labels=motion"][data-loaded*="cameras=demo"]');
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
  await audit(page, 'event');

  step('review it');
  await page.click('#review');
  await page.waitForSelector('#notice:not([hidden])');
  const reviewed = await page.evaluate(async (eid) => (await (await fetch(`/api/events/${eid}`)).json()).reviewed, id);
  if (reviewed !== true) throw new Error('the review was not saved');

  step('draw a zone on the picture and see it saved');
  await page.goto(`${base}/#/settings/zones/demo`);
  await page.waitForFunction(() => document.getElementById('zone-picture')?.naturalWidth > 0);
  const box = await page.locator('#drawing').boundingBox();
  const corners = [[0.1, 0.5], [0.6, 0.5], [0.6, 0.95], [0.1, 0.95]];
  for (const [x, y] of corners) await page.mouse.click(box.x + x * box.width, box.y + y * box.height);
  await page.fill('#zone-name', 'driveway');
  await page.fill('#zone-labels', 'person');
  await page.screenshot({ path: `${shots}/zones.png` });
  await audit(page, 'zones');
  await page.click('#save-shape');
  await page.waitForSelector('#shapes li:has-text("Zone driveway")');
  const zones = await page.evaluate(async () => (await (await fetch('/api/cameras/demo/zones')).json()));
  const zone = (zones.zones || zones).find((z) => z.name === 'driveway');
  check(zone && zone.polygon.length === 4 && zone.polygon.every(([x, y], i) =>
    Math.abs(x - corners[i][0]) < 0.02 && Math.abs(y - corners[i][1]) < 0.02), `zones saved: ${JSON.stringify(zones)}`);
  check(zone.labels.join() === 'person', `zone labels ${zone.labels}`);

  step('a motion mask, typed as corners');
  await page.selectOption('#kind', 'motion');
  await page.fill('#corners', '0,0 0.3,0 0.3,0.1 0,0.1');
  await page.dispatchEvent('#corners', 'change');
  await page.click('#save-shape');
  await page.waitForSelector('#shapes li:has-text("Motion mask 1")');
  const demo = await page.evaluate(async () => (await (await fetch('/api/cameras/demo')).json()));
  check(demo.motion.masks.length === 1 && demo.motion.masks[0].length === 4, `masks ${JSON.stringify(demo.motion.masks)}`);
  await page.waitForFunction(() => document.getElementById('zone-picture')?.naturalWidth > 0);
  await page.screenshot({ path: `${shots}/zones-saved.png` });

  step('storage: the disk budget and the days kept');
  await page.goto(`${base}/#/settings/storage`);
  await page.fill('input[name="max_percent"]', '95');
  await page.click('#save-budget');
  await page.waitForSelector('#notice:has-text("Disk budget saved.")');
  const config = await page.evaluate(async () => (await (await fetch('/api/system/config')).json()));
  check(config.storage.max_percent === 95, `budget ${JSON.stringify(config.storage)}`);
  await page.fill('#retention tr[data-camera="demo"] input[name="continuous_days"]', '3');
  await page.click('#retention tr[data-camera="demo"] button');
  await page.waitForSelector('#notice:has-text("Retention of")');
  const kept = await page.evaluate(async () => (await (await fetch('/api/cameras/demo')).json()).record.retain_continuous_days);
  check(kept === 3, `continuous days ${kept}`);

  step('accounts: make the viewer');
  await page.goto(`${base}/#/settings/accounts`);
  await page.fill('input[name="new_username"]', 'viewer');
  await page.selectOption('select[name="role"]', 'viewer');
  await page.fill('input[name="new_password"]', process.env.VIEWER_PASSWORD);
  await page.click('#save-account');
  await page.waitForSelector('#accounts tr[data-user="viewer"]');

  step('API keys: the key is shown once and works');
  await page.goto(`${base}/#/settings/keys`);
  await page.fill('input[name="key_name"]', 'script');
  await page.click('#make-key');
  const key = (await page.textContent('#key-value', { timeout: 10000 })).trim();
  const keyed = await page.evaluate(async (k) => (await fetch('/api/cameras', { credentials: 'omit', headers: { 'X-API-Key': k } })).status, key);
  check(keyed === 200, `the new key got ${keyed}`);
  await page.waitForSelector('#keys tr[data-key="script"]');

  step('an alert rule, and what it would match');
  await page.goto(`${base}/#/settings/alerts`);
  await page.fill('input[name="rule_name"]', 'motion on demo');
  await page.selectOption('select[name="rule_cameras"]', 'demo');
  await page.fill('input[name="rule_labels"]', 'motion');
  await page.fill('input[name="min_score"]', '0');
  await page.click('#save-rule');
  await page.waitForSelector('#rules tr[data-rule="motion on demo"]');
  await page.click('#rules tr[data-rule="motion on demo"] button:has-text("Test")');
  await page.waitForSelector('#notice:has-text("motion on demo matches")');
  const matched = await page.textContent('#notice');
  check(!/matches 0 of/.test(matched), `the rule matched nothing: ${matched}`);
  await page.screenshot({ path: `${shots}/alerts.png` });
  await audit(page, 'alert rules');

  step('recordings: scrub a segment, play it, play a range');
  let rows = 0;
  for (let i = 0; i < 30 && !rows; i++) {
    await page.goto(`${base}/#/recordings?camera=demo&t=${i}`);
    await page.waitForSelector('#recordings');
    await page.waitForTimeout(i ? 3000 : 500);
    rows = (await page.$$('#recordings tr[data-sprite]')).length;
  }
  check(rows, 'no recording with a sprite sheet in 90 s');
  const scrub = page.locator('#recordings tr[data-sprite] canvas').first();
  await scrub.scrollIntoViewIfNeeded();
  const sb = await scrub.boundingBox();
  await page.mouse.move(sb.x + 5, sb.y + sb.height / 2);
  for (let i = 1; i <= 8; i++) {
    await page.mouse.move(sb.x + (i / 8) * sb.width - 2, sb.y + sb.height / 2);
    await page.waitForTimeout(100);
  }
  await page.waitForFunction(() => document.querySelector('#recordings tr[data-sprite] canvas')?.dataset.tile === '9', null, { timeout: 10000 })
    .catch(async () => { throw new Error(`the scrubber shows tile ${await scrub.getAttribute('data-tile')} at the right edge`); });
  await page.screenshot({ path: `${shots}/recordings.png` });
  await audit(page, 'recordings');
  const plays = async (what) => page.$eval('#player', (v) => new Promise((resolve) => {
    const done = (s) => resolve(`${s} ${v.currentTime.toFixed(2)} ${v.videoWidth}x${v.videoHeight}`);
    if (!v.paused && v.readyState >= 3) { done('playing'); return; }
    v.addEventListener('playing', () => setTimeout(() => done('playing'), 300), { once: true });
    v.addEventListener('error', () => done(`error ${v.error && v.error.code}`), { once: true });
    setTimeout(() => done('timeout'), 20000);
  })).then((r) => check(r.startsWith('playing'), `${what} did not play: ${r}`));
  await scrub.click();
  await plays('a clicked segment');
  const first = await page.evaluate(async () => {
    const q = new URLSearchParams({ cameras: 'demo', limit: '1', sort_order: 'asc' });
    const r = (await (await fetch(`/api/recordings?${q}`)).json()).recordings[0];
    const d = new Date(r.start_time);
    const hhmm = (t) => `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}`;
    return [hhmm(d), hhmm(new Date(Math.min(d.getTime() + 120000, new Date(d).setHours(23, 59))))];
  });
  await page.fill('input[name="from"]', first[0]);
  await page.fill('input[name="to"]', first[1]);
  await page.click('#play-range');
  await plays('a range');
  check(await page.isVisible('#range-download'), 'no download link for the range');

  step('the system page: storage, detectors, the live log');
  await page.click('a[data-nav="system"]');
  await page.waitForSelector('#disk-used');
  await page.waitForSelector('#log[data-live]', { timeout: 20000 });
  await page.evaluate(async () => {
    const csrf = (await (await fetch('/api/account/my-token')).text()).trim();
    await fetch('/api/logs/frontend', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-TOKEN': csrf },
      body: JSON.stringify({ level: 'warning', message: 'hello from the browser test' }) });
  });
  await page.waitForSelector('#log li:has-text("hello from the browser test")', { timeout: 20000 });
  await page.screenshot({ path: `${shots}/system.png` });
  await audit(page, 'system');

  step('log out');
  await page.click('#logout');
  await page.waitForSelector('form.login');
  const gone = await page.evaluate(async () =>
    (await fetch('/api/cameras', { headers: { 'X-Requested-With': 'test' } })).status);
  if (gone !== 401) throw new Error(`after logging out the API answered ${gone}`);
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('401')));
  await context.close();

  step('a viewer: no settings or system page, no review or delete');
  const phone = await open({ width: 390, height: 844 });
  // With the keyboard only: the form starts at the user field.
  await phone.page.goto(base + '/');
  await phone.page.waitForSelector('form.login');
  await phone.page.keyboard.type('viewer');
  await phone.page.keyboard.press('Tab');
  await phone.page.keyboard.type(process.env.VIEWER_PASSWORD);
  await phone.page.keyboard.press('Enter');
  await phone.page.waitForSelector('#grid img');
  check(!(await phone.page.isVisible('a[data-nav="system"]')), 'a viewer sees the system link');
  check(!(await phone.page.isVisible('a[data-nav="settings"]')), 'a viewer sees the settings link');
  for (const page of ['system', 'settings', 'settings/zones/demo', 'settings/accounts']) {
    await phone.page.goto(`${base}/#/live`);
    await phone.page.waitForSelector('#grid');
    await phone.page.goto(`${base}/#/${page}`);
    await phone.page.waitForSelector('text=This page is for admins.', { timeout: 10000 })
      .catch(() => { throw new Error(`a viewer opening #/${page} is not refused`); });
  }
  const refused = await phone.page.evaluate(async () => (await fetch('/api/accounts', { headers: { 'X-Requested-With': 'test' } })).status);
  check(refused === 403, `a viewer asking for the accounts got ${refused}`);
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('403')));
  // An event opened with the keyboard from the list (of reviewed ones: it was reviewed above).
  await phone.page.goto(`${base}/#/events?reviewed=1`);
  await phone.page.waitForSelector(`#events .event[data-id="${id}"]`);
  await phone.page.focus(`#events .event[data-id="${id}"]`);
  await phone.page.keyboard.press('Enter');
  await phone.page.waitForSelector('#clip');
  if (await phone.page.$('#review')) throw new Error('a viewer can review');
  await phone.page.goto(`${base}/#/live`);
  await phone.page.waitForSelector('#grid img');
  await phone.page.screenshot({ path: `${shots}/live-phone.png` });
  await audit(phone.page, 'live on a phone');

  step('the session ends: the page says so');
  await phone.context.clearCookies();
  await phone.page.click('a[data-nav="events"]');
  await phone.page.waitForSelector('text=Your session has ended');
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('401')));
  await phone.context.close();

  step('an admin on a phone: the settings fit the screen');
  const small = await open({ width: 390, height: 844 });
  await login(small.page, 'admin', process.env.ADMIN_PASSWORD);
  for (const [hash, ready, name] of [['#/settings/cameras', '#cameras', 'settings-phone'],
    ['#/settings/zones/demo', '#drawing', 'zones-phone'], ['#/recordings?camera=demo', '#recordings', 'recordings-phone'],
    ['#/system', '#disk-used', 'system-phone']]) {
    await small.page.goto(`${base}/${hash}`);
    await small.page.waitForSelector(ready);
    // Wide tables scroll inside their box; the page itself never scrolls sideways.
    const wide = await small.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(wide <= 0, `${hash} is ${wide} px wider than a phone's screen`);
    await small.page.screenshot({ path: `${shots}/${name}.png` });
    await audit(small.page, name);
  }
  await small.context.close();

  if (problems.length) throw new Error(`errors in the page:\n${problems.join('\n')}`);
  console.log(`accessibility checked: ${audited.join(', ')}`);
  console.log('ok');
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  if (last) await last.screenshot({ path: `${shots}/failure.png` }).then(() => console.error(`at ${last.url()}: ${shots}/failure.png`), () => {});
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
