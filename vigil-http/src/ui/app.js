// Vigil's web interface: one page, no build step, nothing from outside vigild. Views are
// chosen by the URL's hash (#/live, #/camera/ID, #/events, #/event/ID, #/recordings,
// #/system); every element is made with h() (text is never parsed as HTML).
'use strict';

const state = { me: null, csrf: null, socket: null, timers: [], view: 0, streams: [], said: '' };

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const main = () => document.getElementById('main');
const enc = encodeURIComponent;

function notice(text) {
  const n = document.getElementById('notice');
  n.textContent = text || '';
  n.hidden = !text;
}

class SessionEnded extends Error {}

// A request to vigild: JSON in and out, the CSRF token on changes, and a session that ended
// (401) sends the page back to the login form with a message.
async function api(method, path, body, retried) {
  // X-Requested-With: a 401 comes without the browser's password dialog; the page asks.
  const headers = { 'X-Requested-With': 'vigil-ui' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-TOKEN'] = state.csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // CSRF tokens live in vigild's memory: after a restart, fetch the new one and try again.
  if (r.status === 403 && method !== 'GET' && state.me && state.me.via !== 'none' && !retried) {
    state.csrf = await csrfToken();
    return api(method, path, body, true);
  }
  if (r.status === 401 && state.me) {
    endSession('Your session has ended: log in again.');
    throw new SessionEnded();
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!r.ok) {
    const d = data && data.detail;
    throw new Error(typeof d === 'string' ? d : (d ? JSON.stringify(d) : `HTTP ${r.status}`));
  }
  return data;
}

async function csrfToken() {
  const r = await fetch('/api/account/my-token', { headers: { 'X-Requested-With': 'vigil-ui' } });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return (await r.text()).trim();
}

function stopLive() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  // A removed <img> may go on loading its MJPEG stream: end it.
  for (const img of state.streams) img.removeAttribute('src');
  state.streams = [];
  if (state.socket) { state.socket.onclose = null; state.socket.close(); state.socket = null; }
  state.view += 1;
}

function endSession(message) {
  stopLive();
  state.me = null;
  state.csrf = null;
  location.hash = '#/login';
  showLogin(message);
}

function localTime(iso) {
  if (!iso) return '-';
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

function duration(e) {
  if (e.in_progress) return 'in progress';
  const s = Math.round(e.duration_seconds || 0);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

// --- login

function showLogin(message) {
  document.getElementById('bar').hidden = true;
  const err = h('p', { class: 'err', role: 'alert', text: message || '' });
  const user = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'login', 'aria-label': 'Log in' },
    h('h1', { text: 'Vigil' }),
    h('label', { for: 'username' }, 'User', user),
    h('label', { for: 'password' }, 'Password', pass),
    err,
    h('button', { type: 'submit', id: 'login' }, 'Log in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      await api('POST', '/api/auth/login', { username: user.value, password: pass.value });
      await startSession();
      if (location.hash === '#/login' || !location.hash) location.hash = '#/live';
      else route();
    } catch (e) {
      err.textContent = e.message === 'HTTP 401' ? 'Wrong user or password.' : e.message;
    }
  });
  main().replaceChildren(form);
  user.focus();
}

async function startSession() {
  state.me = await api('GET', '/api/auth/me');
  // A vigild run with --no-auth has no accounts, so no CSRF token and no logging out.
  const open = state.me.via === 'none';
  state.csrf = open ? null : await csrfToken();
  document.getElementById('bar').hidden = false;
  document.getElementById('logout').hidden = open;
  document.getElementById('who').textContent = open ? 'no authentication' : `${state.me.username} (${state.me.role})`;
  for (const a of document.querySelectorAll('[data-admin]')) a.hidden = state.me.role !== 'admin';
}

// --- live

async function showLive() {
  const { cameras } = await api('GET', '/api/cameras');
  const grid = h('div', { class: 'grid', id: 'grid' });
  for (const c of cameras) {
    const img = h('img', { alt: `${c.name || c.id}, live`, 'data-camera': c.id,
      src: `/api/${enc(c.id)}/latest.jpg?h=360&t=${Date.now()}` });
    grid.append(h('a', { class: 'tile', href: `#/camera/${enc(c.id)}` }, img,
      h('div', { class: 'cap' }, h('span', { text: c.name || c.id }),
        h('span', { class: c.status, text: c.status }))));
  }
  main().replaceChildren(h('h1', { text: 'Live' }),
    cameras.length ? grid : h('p', { text: 'No camera yet: add one in the settings or with `vigil cameras add`.' }));
  // A still per camera, refreshed every second while the page is shown.
  let ticks = 0;
  state.timers.push(setInterval(() => {
    if (document.hidden) return;
    for (const img of grid.querySelectorAll('img')) {
      if (img.complete) img.src = `/api/${enc(img.dataset.camera)}/latest.jpg?h=360&t=${Date.now()}`;
    }
    // The stills cannot tell the page that the session ended; this can.
    if (++ticks % 15 === 0) api('GET', '/api/auth/me').catch(() => {});
  }, 1000));
}

const OVERLAYS = ['bbox', 'zones', 'mask', 'motion', 'regions', 'timestamp'];

async function showCamera(id) {
  const c = await api('GET', `/api/cameras/${enc(id)}`);
  const on = new Set(['bbox', 'timestamp']);
  const img = h('img', { alt: `${c.name || c.id}, live`, id: 'stream' });
  state.streams.push(img);
  const setSrc = () => {
    const q = OVERLAYS.map((o) => `${o}=${on.has(o) ? 1 : 0}`).join('&');
    img.src = `/api/${enc(c.id)}?h=720&fps=5&${q}`;
  };
  const toggles = h('fieldset', { class: 'toggles' }, h('legend', { text: 'Overlays' }),
    OVERLAYS.map((o) => h('label', {},
      h('input', { type: 'checkbox', name: o, checked: on.has(o), onchange: (ev) => {
        if (ev.target.checked) on.add(o); else on.delete(o);
        setSrc();
      } }), ' ', o)));
  const st = c.stream || {};
  main().replaceChildren(h('h1', { text: c.name || c.id }),
    h('div', { class: 'cols' },
      h('div', { class: 'frame' }, img, toggles),
      h('div', { class: 'panel' }, h('dl', {},
        h('dt', { text: 'Status' }), h('dd', { class: c.status, id: 'status', text: c.status }),
        h('dt', { text: 'Frame rate' }), h('dd', { text: st.fps ? `${st.fps.toFixed(1)} fps` : '-' }),
        h('dt', { text: 'Last frame' }), h('dd', { text: localTime(c.last_seen_at) }),
        h('dt', { text: 'Last error' }), h('dd', { text: c.error || '-' }),
        h('dt', { text: 'Recording' }), h('dd', { text: (c.record && c.record.mode) || '-' }),
        h('dt', { text: 'Zones' }), h('dd', { text: (c.zones || []).map((z) => z.name).join(', ') || '-' })),
        h('p', {}, h('a', { href: `#/events?camera=${enc(c.id)}` }, 'Its events')))));
  setSrc();
}

// --- events

function eventRow(e) {
  return h('a', { class: 'event', href: `#/event/${e.id}`, 'data-id': e.id },
    e.has_snapshot
      ? h('img', { alt: `${e.label} on ${e.camera}`, loading: 'lazy', src: `/api/events/${e.id}/thumbnail.jpg` })
      : h('div', { class: 'nothumb', 'aria-hidden': 'true', text: e.label }),
    h('div', { class: 'meta' },
      h('span', { class: 'label', text: `${e.label}${e.sub_label ? ' (' + e.sub_label + ')' : ''}` }),
      h('span', { text: `${e.camera} · ${localTime(e.start_time)} · ${duration(e)}` }),
      h('span', { text: `score ${Math.round((e.top_score || 0) * 100)}%` }),
      h('span', {}, (e.zones || []).map((z) => h('span', { class: 'badge', text: z })),
        e.reviewed ? h('span', { class: 'badge', text: 'reviewed' }) : null)));
}

// The start and end of a day (YYYY-MM-DD) in the browser's time zone, as ISO instants.
function localDay(day) {
  const [y, m, d] = day.split('-').map(Number);
  return [new Date(y, m - 1, d).toISOString(), new Date(y, m - 1, d + 1).toISOString()];
}

function today() {
  const n = new Date();
  return `${n.getFullYear()}-${String(n.getMonth() + 1).padStart(2, '0')}-${String(n.getDate()).padStart(2, '0')}`;
}

function params() {
  const i = location.hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1));
}

async function showEvents() {
  const p = params();
  const { cameras } = await api('GET', '/api/cameras');
  const field = (label, el) => h('label', {}, label, el);
  const camera = h('select', { name: 'camera' }, h('option', { value: '' }, 'All cameras'),
    cameras.map((c) => h('option', { value: c.id, selected: p.get('camera') === c.id }, c.name || c.id)));
  const label = h('input', { name: 'label', placeholder: 'person, car…', value: p.get('label') || '', size: 10 });
  const zone = h('input', { name: 'zone', value: p.get('zone') || '', size: 8 });
  const date = h('input', { name: 'date', type: 'date', value: p.get('date') || '' });
  const reviewed = h('select', { name: 'reviewed' },
    [['', 'Any'], ['0', 'Not reviewed'], ['1', 'Reviewed']].map(([v, t]) =>
      h('option', { value: v, selected: (p.get('reviewed') || '') === v }, t)));
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' },
    field('Camera', camera), field('Label', label), field('Zone', zone), field('Day', date),
    field('Reviewed', reviewed), h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, el] of [['camera', camera], ['label', label], ['zone', zone], ['date', date], ['reviewed', reviewed]]) {
      if (el.value) q.set(k, el.value);
    }
    location.hash = `#/events?${q}`;
  });
  const list = h('div', { class: 'events', id: 'events' });
  const more = h('button', { type: 'button', hidden: true }, 'Older events');
  main().replaceChildren(h('h1', { text: 'Events' }), form, list, h('div', { class: 'row' }, more));

  const q = new URLSearchParams({ limit: '50' });
  if (p.get('camera')) q.set('cameras', p.get('camera'));
  if (p.get('label')) q.set('labels', p.get('label'));
  if (p.get('zone')) q.set('zones', p.get('zone'));
  if (p.get('reviewed')) q.set('reviewed', p.get('reviewed'));
  if (p.get('date')) {
    const [start, end] = localDay(p.get('date'));
    q.set('after', start);
    q.set('before', end);
  }
  const view = state.view;
  const load = async (cursor) => {
    if (cursor) q.set('cursor', cursor);
    const page = await api('GET', `/api/events?${q}`);
    for (const e of page.events) list.append(eventRow(e));
    more.hidden = !page.next_cursor;
    more.onclick = () => load(page.next_cursor).catch((e) => notice(e.message));
    if (!list.children.length) list.append(h('p', { id: 'no-events', text: 'No events.' }));
    list.dataset.loaded = 'yes';
  };
  await load();
  if (view !== state.view) return;

  // Live: events as they start, change and end, without reloading.
  const matches = (e) => (!p.get('camera') || e.camera === p.get('camera'))
    && (!p.get('label') || e.label === p.get('label'))
    && (!p.get('zone') || (e.zones || []).includes(p.get('zone')))
    && !p.get('date') && !p.get('reviewed');
  const rows = () => new Map([...list.querySelectorAll('.event')].map((el) => [el.dataset.id, el]));
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  let wait = 1000;
  const connect = () => {
    if (view !== state.view) return;
    const ws = new WebSocket(`${proto}://${location.host}/ws/events`);
    state.socket = ws;
    ws.onopen = () => { wait = 1000; };
    // Dropped (vigild restarted, or this page was too slow): connect again, less and less often.
    ws.onclose = () => { setTimeout(connect, wait); wait = Math.min(wait * 2, 30000); };
    ws.onmessage = onMessage;
  };
  const onMessage = (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch (_) { return; }
    if (msg.type === 'event' && matches(msg.data)) {
      const row = eventRow(msg.data);
      const old = rows().get(String(msg.data.id));
      const none = document.getElementById('no-events');
      if (none) none.remove();
      if (old) old.replaceWith(row); else list.prepend(row);
    } else if (msg.type === 'event_deleted') {
      const old = rows().get(String(msg.data.id));
      if (old) old.remove();
    }
  };
  connect();
}

async function showEvent(id) {
  const e = await api('GET', `/api/events/${enc(id)}`);
  const video = e.has_clip
    ? h('video', { id: 'clip', controls: true, muted: true, playsinline: true, preload: 'metadata',
      src: `/api/events/${e.id}/clip.mp4` })
    : h('p', { id: 'noclip', text: 'No clip: nothing was recorded for this event.' });
  const review = h('button', { type: 'button', id: 'review' }, e.reviewed ? 'Mark not reviewed' : 'Mark reviewed');
  review.onclick = async () => {
    try {
      const v = await api('PATCH', `/api/events/${e.id}`, { reviewed: !e.reviewed });
      e.reviewed = v.reviewed;
      review.textContent = e.reviewed ? 'Mark not reviewed' : 'Mark reviewed';
      notice(e.reviewed ? 'Marked reviewed.' : 'Marked not reviewed.');
    } catch (err) { if (!(err instanceof SessionEnded)) notice(err.message); }
  };
  const del = h('button', { type: 'button', class: 'danger', id: 'delete' }, 'Delete');
  del.onclick = async () => {
    if (!confirm('Delete this event?')) return;
    try {
      await api('DELETE', `/api/events/${e.id}`);
      state.said = 'Event deleted.';
      if (history.length > 1) history.back(); else location.hash = '#/events';
    } catch (err) { if (!(err instanceof SessionEnded)) notice(err.message); }
  };
  main().replaceChildren(h('h1', { text: `${e.label} on ${e.camera}` }),
    h('div', { class: 'cols' },
      h('div', {}, video,
        e.has_snapshot ? h('img', { id: 'snapshot', alt: `Best snapshot of the ${e.label}`,
          src: `/api/events/${e.id}/snapshot.jpg?bbox=1`, class: 'snapshot' }) : null),
      h('div', { class: 'panel' }, h('dl', {},
        h('dt', { text: 'Start' }), h('dd', { text: localTime(e.start_time) }),
        h('dt', { text: 'End' }), h('dd', { text: e.in_progress ? 'in progress' : localTime(e.end_time) }),
        h('dt', { text: 'Score' }), h('dd', { text: `${Math.round((e.top_score || 0) * 100)}%` }),
        h('dt', { text: 'Zones' }), h('dd', { text: (e.zones || []).join(', ') || '-' })),
        state.me.role === 'admin' ? h('div', { class: 'row' }, review, del) : null,
        e.has_clip ? h('p', {}, h('a', { href: `/api/events/${e.id}/clip.mp4`, download: `${e.camera}-${e.id}.mp4` }, 'Download the clip')) : null)));
}

// --- recordings

async function showRecordings() {
  const p = params();
  const { cameras } = await api('GET', '/api/cameras');
  const cam = p.get('camera') || (cameras[0] && cameras[0].id) || '';
  const day = p.get('date') || today();
  const camera = h('select', { name: 'camera' }, cameras.map((c) => h('option', { value: c.id, selected: c.id === cam }, c.name || c.id)));
  const date = h('input', { type: 'date', name: 'date', value: day });
  const form = h('form', { class: 'filters', 'aria-label': 'Camera and day' },
    h('label', {}, 'Camera', camera), h('label', {}, 'Day', date), h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/recordings?camera=${enc(camera.value)}&date=${enc(date.value)}`;
  });
  const [start, end] = localDay(day);
  const q = new URLSearchParams({ cameras: cam, after: start, before: end, limit: '200', sort_order: 'asc' });
  const page = cam ? await api('GET', `/api/recordings?${q}`) : { recordings: [] };
  const player = h('video', { id: 'player', controls: true, muted: true, playsinline: true });
  const rows = page.recordings.map((r) => h('tr', {},
    h('td', {}, r.thumbnailMediaUrl ? h('img', { src: r.thumbnailMediaUrl, alt: '', width: 96, loading: 'lazy' }) : null),
    h('td', { text: localTime(r.start_time) }),
    h('td', { text: `${Math.round(r.duration)} s` }),
    h('td', {}, h('button', { type: 'button', onclick: () => { player.src = `/api/recordings/${r.id}/file`; player.play().catch(() => {}); } }, 'Play'),
      ' ', h('a', { href: `/api/recordings/${r.id}/file`, download: `${r.camera}-${r.id}.mp4` }, 'Download'))));
  main().replaceChildren(h('h1', { text: 'Recordings' }), form, player,
    rows.length ? h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, ['', 'Start', 'Length', ''].map((t) => h('th', { text: t })))), h('tbody', {}, rows)))
      : h('p', { text: 'No recordings on that day.' }),
    page.next_cursor ? h('p', { text: 'The first 200 segments of the day are shown.' }) : null);
}

// --- system (admins)

async function showSystem() {
  const [storage, stats] = await Promise.all([
    api('GET', '/api/system/storage').catch(() => null),
    api('GET', '/api/stats'),
  ]);
  const dets = Object.entries(stats.detectors || {}).map(([name, d]) =>
    h('tr', {}, h('td', { text: name }), h('td', { text: `${d.inference_speed} ms` })));
  main().replaceChildren(h('h1', { text: 'System' }),
    h('div', { class: 'cols' },
      h('div', { class: 'panel' }, h('h2', { text: 'Storage' }), storage ? h('dl', {},
        h('dt', { text: 'Used' }), h('dd', { text: `${storage.percent}%` }),
        h('dt', { text: 'Free' }), h('dd', { text: `${(storage.free_bytes / 1e9).toFixed(1)} GB` })) : h('p', { text: '-' })),
      h('div', { class: 'panel' }, h('h2', { text: 'Detectors' }),
        dets.length ? h('table', {}, h('tbody', {}, dets)) : h('p', { text: 'Motion only.' }))));
}

// --- routing

const VIEWS = [
  [/^#\/live$/, showLive, 'live'],
  [/^#\/camera\/([^?]+)$/, (m) => showCamera(decodeURIComponent(m[1])), 'live'],
  [/^#\/events(\?.*)?$/, showEvents, 'events'],
  [/^#\/event\/([^?]+)$/, (m) => showEvent(decodeURIComponent(m[1])), 'events'],
  [/^#\/recordings(\?.*)?$/, showRecordings, 'recordings'],
  [/^#\/system$/, showSystem, 'system', 'admin'],
];

async function route() {
  if (!state.me) return;
  stopLive();
  const hash = location.hash || '#/live';
  if (hash === '#/login') { location.hash = '#/live'; return; }
  const found = VIEWS.find(([re]) => re.test(hash));
  if (!found) { location.hash = '#/live'; return; }
  const [re, view, nav, need] = found;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (need === 'admin' && state.me.role !== 'admin') {
    main().replaceChildren(h('h1', { text: 'Not allowed' }), h('p', { text: 'This page is for admins.' }));
    return;
  }
  const mine = state.view;
  try {
    await view(hash.match(re));
    if (mine === state.view) main().focus({ preventScroll: true });
  } catch (e) {
    if (!(e instanceof SessionEnded) && mine === state.view) {
      main().replaceChildren(h('p', { class: 'err', role: 'alert', text: e.message }));
    }
  }
}

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api('POST', '/api/auth/logout');
  } catch (e) {
    if (e instanceof SessionEnded) return;
    notice(`Could not log out: ${e.message}`);
    return;
  }
  endSession('You are logged out.');
});
window.addEventListener('hashchange', () => { notice(state.said); state.said = ''; route(); });
// The skip link moves the focus; it is not a route.
document.querySelector('.skip').addEventListener('click', (ev) => { ev.preventDefault(); main().focus(); });

(async () => {
  try {
    await startSession();
    route();
  } catch (_) {
    state.me = null;
    showLogin('');
  }
})();
