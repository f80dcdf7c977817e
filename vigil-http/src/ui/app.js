// Vigil's web interface: one page, no build step, nothing from outside vigild. Views are
// chosen by the URL's hash (#/live, #/camera/ID, #/events, #/event/ID, #/recordings,
// #/system, #/settings/...); every element is made with h() or svg() (text is never parsed as
// HTML).
'use strict';

const state = { me: null, csrf: null, socket: null, timers: [], view: 0, streams: [], said: '', picture: null, hash: '' };

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

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = v; else el.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid) el.append(kid);
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
// An answer that came after the page moved on to another view: the view that asked is gone,
// and must not draw over the one shown now.
class Stale extends Error {}

// What went wrong with an action, said in the notice (a session that ended has said it already).
function report(err) {
  if (!(err instanceof SessionEnded) && !(err instanceof Stale)) notice(err.message);
}

// For screen readers: a short sentence, read when it changes (new events, saved settings).
function announce(text) {
  const a = document.getElementById('announce');
  a.textContent = '';
  setTimeout(() => { a.textContent = text; }, 50);
}

// A validation error's detail, FastAPI's [{loc, msg}], as a sentence naming the fields.
function detailText(d) {
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) {
    return d.map((x) => {
      const loc = (x.loc || []).filter((p) => p !== 'body' && p !== 'query' && p !== 'path');
      return loc.length ? `${loc.join('.')}: ${x.msg}` : String(x.msg);
    }).join('; ');
  }
  return JSON.stringify(d);
}

// A request to vigild: JSON in and out, the CSRF token on changes, and a session that ended
// (401) sends the page back to the login form with a message.
async function api(method, path, body, retried) {
  const view = state.view;
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
  // A change's answer is always told (in the notice, wherever the page is now).
  if (method === 'GET' && view !== state.view) throw new Stale();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!r.ok) {
    const d = data && data.detail;
    throw new Error(d ? detailText(d) : `HTTP ${r.status}`);
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

// An instant as the API gives it (ISO 8601, or microseconds since the epoch where a record
// is shown as stored) in the browser's time zone.
function localTime(t) {
  if (!t) return '-';
  const d = new Date(typeof t === 'number' ? t / 1000 : t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function bytes(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${Math.round(n / 1e3)} kB`;
}

function hours(us) {
  const m = us / 6e7;
  return m < 90 ? `${Math.round(m)} min` : `${(m / 60).toFixed(1)} h`;
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
  const tiles = new Map();
  for (const c of cameras) {
    const img = h('img', { alt: `${c.name || c.id}, live`, 'data-camera': c.id });
    const status = h('span', {});
    const waiting = h('div', { class: 'waiting', text: 'No picture yet' });
    const tile = { img, status, waiting, ready: false };
    // Its pipeline restarted, or it was disabled: wait for the next camera list.
    img.addEventListener('error', () => { tile.ready = false; waiting.hidden = false; img.removeAttribute('src'); });
    tiles.set(c.id, tile);
    grid.append(h('a', { class: 'tile', href: `#/camera/${enc(c.id)}` }, h('div', { class: 'pic' }, img, waiting),
      h('div', { class: 'cap' }, h('span', { text: c.name || c.id }), status)));
  }
  // Only cameras with a picture are asked for one (the others would answer 503).
  const update = (list) => {
    for (const c of list) {
      const t = tiles.get(c.id);
      if (!t) continue;
      t.status.className = c.status;
      t.status.textContent = c.status;
      t.ready = c.has_picture;
      t.waiting.hidden = c.has_picture;
    }
  };
  const refresh = () => {
    for (const [id, t] of tiles) {
      if (t.ready && (t.img.complete || !t.img.src)) t.img.src = `/api/${enc(id)}/latest.jpg?h=360&t=${Date.now()}`;
    }
  };
  update(cameras);
  refresh();
  main().replaceChildren(h('h1', { text: 'Live' }),
    cameras.length ? grid : h('p', { text: 'No camera yet: add one in the settings or with `vigil cameras add`.' }));
  // A still per camera, refreshed every second while the page is shown; the cameras' state
  // every five (which also tells the page when the session ended).
  let ticks = 0;
  state.timers.push(setInterval(() => {
    if (document.hidden) return;
    refresh();
    if (++ticks % 5 === 0) api('GET', '/api/cameras').then((r) => update(r.cameras)).catch(() => {});
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

// A WebSocket feed for the view shown now: each JSON message goes to `onMessage`. Dropped
// (vigild restarted, or this page was too slow), it connects again, less and less often.
function follow(path, onMessage, onOpen) {
  const view = state.view;
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  let wait = 1000;
  const connect = () => {
    if (view !== state.view) return;
    const ws = new WebSocket(`${proto}://${location.host}${path}`);
    state.socket = ws;
    ws.onopen = () => { wait = 1000; if (onOpen) onOpen(); };
    ws.onclose = () => { setTimeout(connect, wait); wait = Math.min(wait * 2, 30000); };
    ws.onmessage = (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch (_) { return; }
      onMessage(msg);
    };
  };
  connect();
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
    more.onclick = () => load(page.next_cursor).catch(report);
    if (!list.children.length) list.append(h('p', { id: 'no-events', text: 'No events.' }));
    // What was asked, for whoever waits for this list rather than the one before it.
    list.dataset.loaded = q.toString();
  };
  await load();
  if (view !== state.view) return;

  // Live: events as they start, change and end, without reloading.
  const matches = (e) => (!p.get('camera') || e.camera === p.get('camera'))
    && (!p.get('label') || e.label === p.get('label'))
    && (!p.get('zone') || (e.zones || []).includes(p.get('zone')))
    && !p.get('date') && !p.get('reviewed');
  const rows = () => new Map([...list.querySelectorAll('.event')].map((el) => [el.dataset.id, el]));
  follow('/ws/events', (msg) => {
    if (msg.type === 'event' && matches(msg.data)) {
      const row = eventRow(msg.data);
      const old = rows().get(String(msg.data.id));
      const none = document.getElementById('no-events');
      if (none) none.remove();
      if (old) old.replaceWith(row);
      else {
        list.prepend(row);
        announce(`New event: ${msg.data.label} on ${msg.data.camera}.`);
      }
    } else if (msg.type === 'event_deleted') {
      const old = rows().get(String(msg.data.id));
      if (old) old.remove();
    }
  });
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
    } catch (err) { report(err); }
  };
  const del = h('button', { type: 'button', class: 'danger', id: 'delete' }, 'Delete');
  del.onclick = async () => {
    if (!confirm('Delete this event?')) return;
    try {
      await api('DELETE', `/api/events/${e.id}`);
      state.said = 'Event deleted.';
      if (history.length > 1) history.back(); else location.hash = '#/events';
    } catch (err) { report(err); }
  };
  main().replaceChildren(h('h1', { text: `${e.label} on ${e.camera}` }),
    h('div', { class: 'cols' },
      h('div', {}, video),
      h('div', { class: 'panel' },
        e.has_snapshot ? h('figure', { class: 'best' }, h('img', { id: 'snapshot', alt: `Best snapshot of the ${e.label}`,
          src: `/api/events/${e.id}/snapshot.jpg?bbox=1`, class: 'snapshot' }), h('figcaption', { class: 'dim', text: 'Best snapshot' })) : null,
        h('dl', {},
        h('dt', { text: 'Start' }), h('dd', { text: localTime(e.start_time) }),
        h('dt', { text: 'End' }), h('dd', { text: e.in_progress ? 'in progress' : localTime(e.end_time) }),
        h('dt', { text: 'Score' }), h('dd', { text: `${Math.round((e.top_score || 0) * 100)}%` }),
        h('dt', { text: 'Zones' }), h('dd', { text: (e.zones || []).join(', ') || '-' })),
        state.me.role === 'admin' ? h('div', { class: 'row' }, review, del) : null,
        e.has_clip ? h('p', {}, h('a', { href: `/api/events/${e.id}/clip.mp4`, download: `${e.camera}-${e.id}.mp4` }, 'Download the clip')) : null)));
}

// --- recordings

// Epoch seconds of a local day's time of day ("HH:MM").
function at(day, hhmm) {
  const [y, m, d] = day.split('-').map(Number);
  const [hh, mm] = hhmm.split(':').map(Number);
  return Math.floor(new Date(y, m - 1, d, hh, mm).getTime() / 1000);
}

// A recording's thumbnail that scrubs through its sprite sheet (ten pictures across the
// segment) as the pointer moves over it; a click plays the segment from that point.
function scrubber(r, play) {
  const canvas = h('canvas', { width: 160, height: 90, class: 'scrub', role: 'img',
    'aria-label': `Segment of ${localTime(r.start_time)}` });
  const ctx = canvas.getContext('2d');
  const thumb = new Image();
  const sheet = new Image();
  const drawThumb = () => { if (thumb.naturalWidth) ctx.drawImage(thumb, 0, 0, 160, 90); };
  thumb.onload = drawThumb;
  if (r.thumbnailMediaUrl) thumb.src = r.thumbnailMediaUrl;
  const frac = (ev) => {
    const b = canvas.getBoundingClientRect();
    return Math.min(0.999, Math.max(0, (ev.clientX - b.left) / b.width));
  };
  let over = null;
  const drawTile = () => {
    if (over === null || !sheet.naturalWidth) return;
    const n = 10;
    const tile = Math.floor(over * n);
    const tw = sheet.naturalWidth / n;
    ctx.drawImage(sheet, tile * tw, 0, tw, sheet.naturalHeight, 0, 0, 160, 90);
    canvas.dataset.tile = String(tile);
  };
  sheet.onload = drawTile;
  canvas.addEventListener('pointermove', (ev) => {
    if (!r.sprite_url) return;
    over = frac(ev);
    // The sheet is fetched the first time the pointer comes over the picture.
    if (!sheet.src) sheet.src = r.sprite_url;
    drawTile();
  });
  canvas.addEventListener('pointerleave', () => { over = null; delete canvas.dataset.tile; drawThumb(); });
  canvas.addEventListener('click', (ev) => play(frac(ev) * r.duration));
  return canvas;
}

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
  const player = h('video', { id: 'player', controls: true, muted: true, playsinline: true });
  const playing = h('p', { id: 'playing', class: 'dim' });
  const play = (src, what, offset) => {
    // A media fragment starts it at the offset (no listener left over for the next video).
    player.src = offset ? `${src}#t=${offset.toFixed(1)}` : src;
    playing.textContent = what;
    player.play().catch(() => {});
  };
  player.addEventListener('error', () => {
    const e = player.error;
    notice(`${playing.textContent}: could not be played${e && e.message ? ` (${e.message})` : ''}; nothing may be recorded then.`);
  });

  // Any stretch of the day, cut by vigild from the segments that cover it.
  const hhmm = (d) => `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  const now = new Date();
  const recent = day === today() && now.getHours() * 60 + now.getMinutes() >= 5;
  const from = h('input', { type: 'time', name: 'from', required: true,
    value: recent ? hhmm(new Date(now.getTime() - 300000)) : '00:00' });
  const to = h('input', { type: 'time', name: 'to', required: true, value: recent ? hhmm(now) : '00:05' });
  const download = h('a', { id: 'range-download', hidden: true }, 'Download this range');
  const range = h('form', { class: 'filters', 'aria-label': 'Play a range' },
    h('label', {}, 'From', from), h('label', {}, 'To', to),
    h('button', { type: 'submit', id: 'play-range' }, 'Play range'), download);
  range.addEventListener('submit', (ev) => {
    ev.preventDefault();
    // What the camera and day fields show, even before "Show" is pressed.
    const [c, d] = [camera.value, date.value || day];
    const [s, e] = [at(d, from.value), at(d, to.value)];
    if (!(e > s)) { notice('The end of the range must be after its start.'); return; }
    const url = `/api/${enc(c)}/start/${s}/end/${e}/clip.mp4`;
    download.hidden = true;
    play(url, `${c}, ${d} ${from.value} to ${to.value}`);
    player.addEventListener('loadedmetadata', () => {
      if (!player.src.startsWith(location.origin + url)) return;
      download.href = url;
      download.setAttribute('download', `${c}-${d}-${from.value.replace(':', '')}-${to.value.replace(':', '')}.mp4`);
      download.hidden = false;
    }, { once: true });
  });

  const body = h('tbody', {});
  const more = h('button', { type: 'button', id: 'later', hidden: true }, 'Later segments');
  const none = h('p', { text: 'No recordings on that day.', hidden: true });
  main().replaceChildren(h('h1', { text: 'Recordings' }), form, player, playing, range,
    h('div', { class: 'scroll' }, h('table', { id: 'recordings' }, h('thead', {}, h('tr', {},
      ['Preview', 'Start', 'Length', 'Size', ''].map((t) => h('th', { text: t })))), body)),
    none, h('div', { class: 'row' }, more));
  if (!cam) { none.hidden = false; return; }
  const [start, end] = localDay(day);
  const q = new URLSearchParams({ cameras: cam, after: start, before: end, limit: '100', sort_order: 'asc' });
  const load = async (cursor) => {
    if (cursor) q.set('cursor', cursor);
    const page = await api('GET', `/api/recordings?${q}`);
    for (const r of page.recordings) {
      const file = `/api/recordings/${r.id}/file`;
      const what = `${r.camera}, ${localTime(r.start_time)}`;
      body.append(h('tr', { 'data-id': r.id, 'data-sprite': r.sprite_url ? 'yes' : null },
        h('td', {}, scrubber(r, (offset) => play(file, what, offset))),
        h('td', { text: localTime(r.start_time) }),
        h('td', { text: `${Math.round(r.duration)} s` }),
        h('td', { text: bytes(r.size_bytes) }),
        h('td', {}, h('button', { type: 'button', onclick: () => play(file, what) }, 'Play'),
          ' ', h('a', { href: file, download: `${r.camera}-${r.id}.mp4` }, 'Download'))));
    }
    none.hidden = body.children.length > 0;
    more.hidden = !page.next_cursor;
    more.onclick = () => load(page.next_cursor).catch(report);
  };
  await load();
}

// --- system (admins)

function sparkline(points) {
  const max = Math.max(1, ...points.map((p) => p.max_ms));
  const xs = points.map((p, i) => `${points.length > 1 ? (i * 200) / (points.length - 1) : 100},${40 - (p.mean_ms / max) * 38}`);
  return svg('svg', { viewBox: '0 0 200 40', class: 'spark', role: 'img',
    'aria-label': `mean inference time per minute, up to ${max} ms` },
  svg('polyline', { points: xs.join(' '), fill: 'none', stroke: 'currentColor', 'stroke-width': 1.5 }));
}

async function showSystem() {
  // The live log opens first, so that nothing written while the history loads is missed.
  const early = [];
  let sink = (e) => early.push(e);
  let open = false;
  follow('/api/logs', (e) => sink(e), () => {
    open = true;
    const l = document.getElementById('log');
    if (l) l.dataset.live = 'yes';
  });
  const [storage, stats, history, logs] = await Promise.all([
    api('GET', '/api/system/storage').catch(() => null),
    api('GET', '/api/stats'),
    api('GET', '/api/system/model-zoo/latency/history').catch(() => ({ models: {} })),
    api('GET', '/logs/api?limit=100'),
  ]);
  const dets = Object.entries(stats.detectors || {}).map(([name, d]) =>
    h('tr', {}, h('td', { text: name }), h('td', { text: `${d.inference_speed} ms` }),
      h('td', {}, (history.models[name] || []).length ? sparkline(history.models[name]) : '-')));
  const perCamera = storage ? Object.entries(storage.by_camera || {}).map(([cam, s]) =>
    h('tr', {}, h('td', { text: cam }), h('td', { text: String(s.count) }),
      h('td', { text: hours(s.duration_us) }), h('td', { text: bytes(s.size_bytes) }))) : [];
  const log = h('ol', { id: 'log', class: 'log', tabindex: 0, 'aria-label': 'Live log, newest first' });
  const line = (level, time, source, message) => h('li', { class: `lvl-${level.toLowerCase()}` },
    h('time', { text: localTime(time) }), ' ', h('b', { text: level.toUpperCase() }), ' ',
    h('span', { class: 'dim', text: source }), ' ', message);
  for (const e of logs) log.append(line(e.level, e.ts, e.source, e.message));
  if (open) log.dataset.live = 'yes';
  main().replaceChildren(h('h1', { text: 'System' }),
    h('div', { class: 'cols' },
      h('div', { class: 'panel' }, h('h2', { text: 'Storage' }), storage ? [h('dl', {},
        h('dt', { text: 'Disk used' }), h('dd', { id: 'disk-used', text: `${storage.percent}%` }),
        h('dt', { text: 'Free' }), h('dd', { text: bytes(storage.free_bytes) }),
        h('dt', { text: 'Recordings' }), h('dd', { text: bytes(storage.recordings.size_bytes) }),
        h('dt', { text: 'Oldest' }), h('dd', { text: localTime(storage.oldest) }),
        h('dt', { text: 'Budget' }), h('dd', { text: storage.budget.max_percent ? `${storage.budget.max_percent}% of the disk`
          : (storage.budget.max_bytes ? bytes(storage.budget.max_bytes) : 'none') })),
      perCamera.length ? h('table', {}, h('thead', {}, h('tr', {}, ['Camera', 'Segments', 'Length', 'Size'].map((t) => h('th', { text: t })))),
        h('tbody', {}, perCamera)) : null] : h('p', { text: '-' })),
      h('div', { class: 'panel' }, h('h2', { text: 'Detectors' }),
        dets.length ? h('table', {}, h('thead', {}, h('tr', {}, ['Detector', 'Inference', 'Last hour'].map((t) => h('th', { text: t })))),
          h('tbody', { id: 'detectors' }, dets)) : h('p', { text: 'Motion only.' }))),
    h('div', { class: 'panel' }, h('h2', { text: 'Log' }), log));

  // Then each entry vigild stores, as it stores it (those the history has already, once).
  const add = (e) => {
    log.prepend(line(e.level || 'info', new Date((e.time || 0) / 1000).toISOString(), e.src || '', e.msg || ''));
    while (log.children.length > 300) log.lastChild.remove();
  };
  const known = new Set(logs.map((e) => `${Math.floor(Date.parse(e.ts))} ${e.message}`));
  for (const e of early) if (!known.has(`${Math.floor((e.time || 0) / 1000)} ${e.msg}`)) add(e);
  sink = add;
}

// --- settings (admins)

const SETTINGS = [['cameras', 'Cameras'], ['storage', 'Storage'], ['accounts', 'Accounts'],
  ['keys', 'API keys'], ['alerts', 'Alert rules']];

function settingsPage(current, title, ...content) {
  main().replaceChildren(h('h1', { text: title }),
    h('nav', { class: 'subnav', 'aria-label': 'Settings' }, SETTINGS.map(([k, t]) =>
      h('a', { href: `#/settings/${k}`, 'aria-current': k === current ? 'page' : null }, t))),
    ...content);
}

// A button's action: the notice says what happened, or what went wrong.
function action(label, attrs, fn) {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.onclick = async () => {
    b.disabled = true;
    try { await fn(); } catch (err) { report(err); } finally { b.disabled = false; }
  };
  return b;
}

// A table cell of buttons and links, side by side.
const tdActions = (...kids) => h('td', {}, h('div', { class: 'actions' }, ...kids));

// The notice is a live region: screen readers read it too.
const saved = notice;

// A form's action: its submit button is disabled while the request runs (a double click
// makes one thing, not two), and what went wrong is said in the notice.
function onSubmit(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const b = form.querySelector('[type="submit"]');
    if (b) b.disabled = true;
    try { await fn(); } catch (err) { report(err); } finally { if (b) b.disabled = false; }
  });
}

const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
const field = (label, el, hint) => h('label', {}, label, el, hint ? h('small', { text: hint }) : null);

async function showCameraSettings() {
  const { cameras } = await api('GET', '/api/cameras');
  const toggle = (c, name, on, patch) => h('input', {
    type: 'checkbox', 'data-toggle': name, checked: on, 'aria-label': `${name}: ${c.name || c.id}`,
    onchange: async (ev) => {
      const box = ev.target;
      try {
        await api('PATCH', `/api/cameras/${enc(c.id)}`, patch(box.checked));
        saved(`${c.name || c.id}: ${name} ${box.checked ? 'on' : 'off'}.`);
      } catch (err) { box.checked = !box.checked; report(err); }
    },
  });
  const rows = cameras.map((c) => h('tr', { 'data-camera': c.id },
    h('td', {}, h('a', { href: `#/camera/${enc(c.id)}` }, c.name || c.id)),
    h('td', { class: c.status, text: c.status }),
    h('td', { class: 'url', text: c.url || '-' }),
    h('td', {}, toggle(c, 'enabled', c.enabled !== false, (v) => ({ enabled: v }))),
    h('td', {}, toggle(c, 'objects', !c.detect || c.detect.enabled !== false, (v) => ({ detect: { enabled: v } }))),
    h('td', {}, toggle(c, 'motion', !c.motion || c.motion.enabled !== false, (v) => ({ motion: { enabled: v } }))),
    tdActions(h('a', { href: `#/settings/camera/${enc(c.id)}` }, 'Edit'),
      h('a', { href: `#/settings/zones/${enc(c.id)}` }, 'Zones and masks'),
      action('Remove', { class: 'danger' }, async () => {
        if (!confirm(`Remove ${c.name || c.id}? Its recordings stay.`)) return;
        await api('DELETE', `/api/cameras/${enc(c.id)}`);
        saved(`${c.name || c.id} removed.`);
        route();
      }))));
  settingsPage('cameras', 'Settings',
    h('div', { class: 'scroll' }, h('table', { id: 'cameras' }, h('thead', {}, h('tr', {},
      ['Camera', 'Status', 'Stream', 'Enabled', 'Objects', 'Motion', ''].map((t) => h('th', { text: t })))),
    h('tbody', {}, rows))),
    h('p', {}, h('a', { href: '#/settings/new-camera', id: 'add-camera', class: 'button' }, 'Add a camera')));
}

async function showCameraForm(id) {
  const fresh = id === null;
  const c = fresh ? {} : await api('GET', `/api/cameras/${enc(id)}`);
  const rec = c.record || {};
  const det = c.detect || {};
  const mot = c.motion || {};
  const snap = c.snapshots || {};
  const input = (name, value, attrs) => h('input', { name, value: value === undefined || value === null ? '' : value, ...attrs });
  const num = (name, value, min, max) => input(name, value, { type: 'number', min, max, step: 1, required: true, inputmode: 'numeric' });
  const f = {
    name: input('name', c.name || '', { required: true }),
    url: input('url', c.url || '', { required: true, placeholder: 'rtsp://192.168.1.20:554/stream1', size: 40 }),
    detect_url: input('detect_url', c.detect_url || '', { placeholder: 'a lower-resolution stream (optional)', size: 40 }),
    username: input('username', c.username || '', { autocomplete: 'off' }),
    password: input('password', '', { type: 'password', autocomplete: 'new-password',
      placeholder: c.password ? 'unchanged' : '' }),
    enabled: input('enabled', '', { type: 'checkbox', checked: c.enabled !== false }),
    mode: h('select', { name: 'mode' }, [['continuous', 'Continuous'], ['events', 'Around events'], ['off', 'Off']]
      .map(([v, t]) => h('option', { value: v, selected: (rec.mode || 'continuous') === v }, t))),
    pre: num('pre_capture_s', rec.pre_capture_s ?? 5, 0, 300),
    post: num('post_capture_s', rec.post_capture_s ?? 5, 0, 300),
    cont: num('retain_continuous_days', rec.retain_continuous_days ?? 7, 0, 3650),
    evts: num('retain_events_days', rec.retain_events_days ?? 30, 0, 3650),
    snaps: num('snapshot_retain_days', snap.retain_days ?? 30, 0, 3650),
    detect: input('detect', '', { type: 'checkbox', checked: det.enabled !== false }),
    labels: input('labels', (det.labels || ['person']).join(', '), { placeholder: 'person, car, dog' }),
    fps: num('fps', det.fps ?? 5, 1, 30),
    motion: input('motion', '', { type: 'checkbox', checked: mot.enabled !== false }),
    threshold: num('threshold', mot.threshold ?? 30, 1, 255),
  };
  const form = h('form', { class: 'settings', id: 'camera-form', 'aria-label': fresh ? 'Add a camera' : 'Edit the camera' },
    h('fieldset', {}, h('legend', { text: 'Stream' }),
      field('Name', f.name), field('Stream URL', f.url), field('Detection stream URL', f.detect_url),
      field('User', f.username), field('Password', f.password),
      h('label', { class: 'check' }, f.enabled, 'Enabled')),
    h('fieldset', {}, h('legend', { text: 'Recording and retention' }),
      field('Records', f.mode), field('Seconds before an event', f.pre), field('Seconds after an event', f.post),
      field('Days of continuous recording', f.cont, '0: until the disk budget needs the space'),
      field('Days of event recording', f.evts), field('Days of snapshots', f.snaps)),
    h('fieldset', {}, h('legend', { text: 'Detection' }),
      h('label', { class: 'check' }, f.detect, 'Object detection'), field('Objects', f.labels), field('Frames per second', f.fps),
      h('label', { class: 'check' }, f.motion, 'Motion detection'), field('Motion threshold (1-255)', f.threshold)),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'save-camera' }, fresh ? 'Add the camera' : 'Save'),
      h('a', { href: '#/settings/cameras' }, 'Cancel')));
  onSubmit(form, async () => {
    const n = (el) => Number(el.value);
    const body = {
      name: f.name.value.trim(),
      enabled: f.enabled.checked,
      username: f.username.value || null,
      record: { mode: f.mode.value, pre_capture_s: n(f.pre), post_capture_s: n(f.post),
        retain_continuous_days: n(f.cont), retain_events_days: n(f.evts) },
      snapshots: { retain_days: n(f.snaps) },
      detect: { enabled: f.detect.checked, labels: list(f.labels.value), fps: n(f.fps) },
      motion: { enabled: f.motion.checked, threshold: n(f.threshold) },
    };
    // The URLs come back with their passwords masked: sent only when changed.
    if (fresh || f.url.value !== (c.url || '')) body.url = f.url.value.trim();
    if (fresh || f.detect_url.value !== (c.detect_url || '')) body.detect_url = f.detect_url.value.trim() || null;
    if (f.password.value) body.password = f.password.value;
    for (const [k, el] of [['url', f.url], ['detect_url', f.detect_url]]) {
      if (body[k] && body[k].includes(':***@')) {
        notice('The password in a stream URL is shown as ***: type the real one to change the URL.');
        el.focus();
        return;
      }
    }
    const out = fresh ? await api('POST', '/api/cameras', body) : await api('PATCH', `/api/cameras/${enc(c.id)}`, body);
    state.said = `${out.name || out.id} ${fresh ? 'added' : 'saved'}.`;
    location.hash = '#/settings/cameras';
  });
  settingsPage('cameras', fresh ? 'Add a camera' : `Edit ${c.name || c.id}`, form);
  f.name.focus();
}

// Zones, motion masks and object masks of a camera, drawn with the pointer on its newest
// picture (or typed as corners, for the keyboard). Corners are fractions of the frame.
async function showZones(id) {
  const c = await api('GET', `/api/cameras/${enc(id)}`);
  const zones = c.zones || [];
  const masks = (c.motion && c.motion.masks) || [];
  const filters = (c.detect && c.detect.filters) || [];
  const draft = [];
  const round = (x) => Math.round(Math.min(1, Math.max(0, x)) * 1000) / 1000;
  const pts = (poly) => poly.map(([x, y]) => `${x * 1000},${y * 1000}`).join(' ');
  const layer = svg('svg', { id: 'drawing', viewBox: '0 0 1000 1000', preserveAspectRatio: 'none',
    'aria-hidden': 'true' });
  // The same picture stays while the page is drawn again after a save (the camera's
  // pipeline restarts then).
  if (!state.picture || state.picture.camera !== c.id || !state.picture.img.src) {
    const img = h('img', { id: 'zone-picture', alt: `${c.name || c.id}: the picture zones are drawn on`,
      class: c.has_picture ? null : 'blank', src: c.has_picture ? `/api/${enc(c.id)}/latest.jpg?h=720&t=${Date.now()}` : null });
    state.picture = { camera: c.id, img };
  }
  const picture = state.picture.img;
  const corners = h('input', { name: 'corners', id: 'corners', size: 50,
    placeholder: '0.1,0.5 0.6,0.5 0.6,0.9 0.1,0.9' });
  const kind = h('select', { name: 'kind', id: 'kind' },
    [['zone', 'Zone'], ['motion', 'Motion mask'], ['object', 'Object mask']].map(([v, t]) => h('option', { value: v }, t)));
  const name = h('input', { name: 'zone_name', id: 'zone-name', placeholder: 'driveway' });
  const labels = h('input', { name: 'zone_labels', id: 'zone-labels', placeholder: 'all objects' });
  const redraw = () => {
    const shapes = [];
    for (const z of zones) {
      shapes.push(svg('polygon', { points: pts(z.polygon), class: 'zone' }));
      if (z.polygon.length) {
        shapes.push(svg('text', { x: z.polygon[0][0] * 1000 + 6, y: z.polygon[0][1] * 1000 + 28, class: 'tag', text: z.name }));
      }
    }
    for (const m of masks) shapes.push(svg('polygon', { points: pts(m), class: 'mask' }));
    for (const fl of filters) for (const m of fl.masks || []) shapes.push(svg('polygon', { points: pts(m), class: 'omask' }));
    if (draft.length) {
      shapes.push(svg('polygon', { points: pts(draft), class: 'draft' }));
      for (const [x, y] of draft) shapes.push(svg('circle', { cx: x * 1000, cy: y * 1000, r: 8, class: 'corner' }));
    }
    layer.replaceChildren(...shapes);
    corners.value = draft.map(([x, y]) => `${x},${y}`).join(' ');
  };
  layer.addEventListener('click', (ev) => {
    const b = layer.getBoundingClientRect();
    draft.push([round((ev.clientX - b.left) / b.width), round((ev.clientY - b.top) / b.height)]);
    redraw();
  });
  corners.addEventListener('change', () => {
    const parsed = corners.value.trim().split(/\s+/).filter(Boolean).map((p) => p.split(',').map(Number));
    if (parsed.some((p) => p.length !== 2 || p.some((v) => !(v >= 0 && v <= 1)))) {
      notice('Corners are x,y pairs of fractions between 0 and 1, separated by spaces.');
      return;
    }
    draft.splice(0, draft.length, ...parsed);
    redraw();
  });
  const patch = async (body, text) => {
    await api('PATCH', `/api/cameras/${enc(c.id)}`, body);
    saved(text);
    route();
  };
  const save = action('Save', { id: 'save-shape' }, async () => {
    if (draft.length < 3) { notice('Draw at least three corners: click on the picture.'); return; }
    const polygon = draft.map((p) => [...p]);
    if (kind.value === 'zone') {
      if (!name.value.trim()) { notice('A zone needs a name.'); name.focus(); return; }
      await api('POST', `/api/cameras/${enc(c.id)}/zones`, { name: name.value.trim(), polygon, labels: list(labels.value) });
      saved(`Zone ${name.value.trim()} saved.`);
      route();
    } else if (kind.value === 'motion') {
      await patch({ motion: { masks: [...masks, polygon] } }, 'Motion mask saved.');
    } else {
      const wanted = list(labels.value);
      if (!wanted.length) { notice('An object mask needs the objects it hides (person, car...).'); labels.focus(); return; }
      const next = filters.map((x) => ({ ...x, masks: [...(x.masks || [])] }));
      for (const l of wanted) {
        let fl = next.find((x) => x.label === l);
        if (!fl) { fl = { label: l, masks: [] }; next.push(fl); }
        fl.masks.push(polygon);
      }
      await patch({ detect: { filters: next } }, `Object mask for ${wanted.join(', ')} saved.`);
    }
  });
  const shapeRow = (what, text, remove) => h('li', {}, h('span', { text }), ' ',
    action('Remove', { class: 'danger', 'aria-label': `Remove ${what}` }, remove));
  const existing = h('ul', { id: 'shapes', class: 'shapes' },
    zones.map((z) => shapeRow(`zone ${z.name}`, `Zone ${z.name}${(z.labels || []).length ? ` (${z.labels.join(', ')})` : ''}`, async () => {
      await api('DELETE', `/api/cameras/${enc(c.id)}/zones/${enc(z.name)}`);
      saved(`Zone ${z.name} removed.`);
      route();
    })),
    masks.map((m, i) => shapeRow(`motion mask ${i + 1}`, `Motion mask ${i + 1}`, () =>
      patch({ motion: { masks: masks.filter((_, j) => j !== i) } }, 'Motion mask removed.'))),
    filters.flatMap((fl) => (fl.masks || []).map((m, i) => shapeRow(`${fl.label} mask ${i + 1}`, `Object mask ${i + 1} for ${fl.label}`, () =>
      patch({ detect: { filters: filters.map((x) => (x === fl ? { ...x, masks: x.masks.filter((_, j) => j !== i) } : x)) } },
        'Object mask removed.')))));
  if (!existing.children.length) existing.append(h('li', { text: 'No zone or mask yet.' }));
  settingsPage('cameras', `Zones and masks: ${c.name || c.id}`,
    h('div', { class: 'cols' },
      h('div', {}, h('div', { class: 'draw' }, picture, layer),
        h('p', { class: 'dim', text: c.has_picture ? 'Click on the picture to add corners; the shape closes itself.'
          : 'No picture from this camera yet (it is offline, or detection is off): type the corners, or come back later.' })),
      h('div', { class: 'panel' },
        h('form', { class: 'settings', 'aria-label': 'New zone or mask', onsubmit: (ev) => ev.preventDefault() },
          field('Kind', kind), field('Zone name', name), field('Objects', labels, 'a zone: those it counts (empty: all); an object mask: those it hides'),
          field('Corners', corners),
          h('div', { class: 'row' }, save,
            h('button', { type: 'button', onclick: () => { draft.pop(); redraw(); } }, 'Undo corner'),
            h('button', { type: 'button', onclick: () => { draft.length = 0; redraw(); } }, 'Clear'))),
        h('h2', { text: 'Saved' }), existing)));
  redraw();
}

async function showStorageSettings() {
  const [cfg, { cameras }] = await Promise.all([api('GET', '/api/system/config'), api('GET', '/api/cameras')]);
  let b = cfg.storage || {};
  const pct = h('input', { name: 'max_percent', type: 'number', min: 1, max: 100, step: 'any', value: b.max_percent ?? '' });
  const gb = h('input', { name: 'max_gb', type: 'number', min: 0.1, step: 'any', value: b.max_bytes ? b.max_bytes / 1e9 : '' });
  const budget = h('form', { class: 'settings', id: 'budget', 'aria-label': 'Disk budget' },
    h('p', { text: 'When the disk is fuller than this, or the recordings take more, the oldest recordings not kept by an event go first. Empty: no budget.' }),
    field('Disk full (%)', pct), field('Recordings at most (GB)', gb),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'save-budget' }, 'Save the budget')));
  onSubmit(budget, async () => {
    const want = {};
    if (pct.value) want.max_percent = Number(pct.value);
    if (gb.value) want.max_bytes = Math.round(Number(gb.value) * 1e9);
    const set = async (storage) => (await api('PATCH', '/api/system/config', { storage })).storage || {};
    // A limit left empty is dropped: start again from no budget, then set what is asked (and
    // put the old budget back if that fails).
    if ((b.max_percent && !want.max_percent) || (b.max_bytes && !want.max_bytes) || !Object.keys(want).length) {
      const old = { ...b };
      b = await set({ enabled: false });
      if (Object.keys(want).length) {
        try { b = await set(want); } catch (err) {
          if (old.max_percent || old.max_bytes) b = await set(old).catch(() => b);
          throw err;
        }
      }
    } else {
      b = await set(want);
    }
    saved('Disk budget saved.');
  });
  const days = cameras.map((c) => {
    const rec = c.record || {};
    const n = (name, v) => h('input', { name, type: 'number', min: 0, max: 3650, step: 1, required: true, value: v,
      'aria-label': `${name.replace(/_/g, ' ')}: ${c.name || c.id}` });
    const cont = n('continuous_days', rec.retain_continuous_days ?? 7);
    const evts = n('event_days', rec.retain_events_days ?? 30);
    const snaps = n('snapshot_days', (c.snapshots || {}).retain_days ?? 30);
    return h('tr', { 'data-camera': c.id }, h('td', { text: c.name || c.id }), h('td', {}, cont), h('td', {}, evts), h('td', {}, snaps),
      h('td', {}, action('Save', { 'aria-label': `Save retention: ${c.name || c.id}` }, async () => {
        if (![cont, evts, snaps].every((el) => el.reportValidity())) return;
        await api('PATCH', `/api/cameras/${enc(c.id)}`, {
          record: { retain_continuous_days: Number(cont.value), retain_events_days: Number(evts.value) },
          snapshots: { retain_days: Number(snaps.value) },
        });
        saved(`Retention of ${c.name || c.id} saved.`);
      })));
  });
  settingsPage('storage', 'Settings', h('h2', { text: 'Disk budget' }), budget,
    h('h2', { text: 'Days kept, per camera' }),
    h('div', { class: 'scroll' }, h('table', { id: 'retention' }, h('thead', {}, h('tr', {},
      ['Camera', 'Continuous', 'Events', 'Snapshots', ''].map((t) => h('th', { text: t })))), h('tbody', {}, days))));
}

async function showAccountSettings() {
  const accounts = Object.values(await api('GET', '/api/accounts'));
  const rows = accounts.map((a) => h('tr', { 'data-user': a.username },
    h('td', { text: a.username }), h('td', { text: a.role }), h('td', { text: localTime(a.last_login) }),
    h('td', {}, a.id === state.me.id ? h('span', { class: 'dim', text: 'you' })
      : action('Delete', { class: 'danger', 'aria-label': `Delete ${a.username}` }, async () => {
        if (!confirm(`Delete the account ${a.username}?`)) return;
        await api('DELETE', `/api/account?id=${enc(a.id)}`);
        saved(`${a.username} deleted.`);
        route();
      }))));
  const user = h('input', { name: 'new_username', required: true, autocomplete: 'off' });
  const role = h('select', { name: 'role' }, h('option', { value: 'viewer' }, 'Viewer'), h('option', { value: 'admin' }, 'Admin'));
  const pass = h('input', { name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const form = h('form', { class: 'settings', id: 'account-form', 'aria-label': 'Add or change an account' },
    field('User', user), field('Role', role), field('Password', pass, 'an existing user gets this role and password'),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'save-account' }, 'Save the account')));
  // An existing user keeps their role unless it is changed here.
  user.addEventListener('change', () => {
    const old = accounts.find((a) => a.username === user.value.trim());
    if (old) role.value = old.role;
  });
  onSubmit(form, async () => {
    const old = accounts.find((a) => a.username === user.value.trim());
    await api('PUT', '/api/account', { id: old ? old.id : undefined, username: user.value.trim(), role: role.value, plainPassword: pass.value });
    saved(`${user.value.trim()} saved.`);
    route();
  });
  settingsPage('accounts', 'Settings',
    h('div', { class: 'scroll' }, h('table', { id: 'accounts' }, h('thead', {}, h('tr', {}, ['User', 'Role', 'Last login', ''].map((t) => h('th', { text: t })))), h('tbody', {}, rows))),
    h('h2', { text: 'Add or change an account' }), form);
}

async function showKeySettings() {
  const { keys } = await api('GET', '/api/keys');
  const keyRow = (k) => h('tr', { 'data-key': k.name },
    h('td', { text: k.name }), h('td', { text: k.role }), h('td', { text: `${k.prefix}…` }),
    h('td', { text: localTime(k.last_used) }),
    h('td', {}, action('Revoke', { class: 'danger', 'aria-label': `Revoke ${k.name}` }, async () => {
      if (!confirm(`Revoke the key ${k.name}? Scripts using it stop working.`)) return;
      await api('DELETE', `/api/keys/${enc(k.id)}`);
      saved(`${k.name} revoked.`);
      route();
    })));
  const rows = keys.map(keyRow);
  const name = h('input', { name: 'key_name', required: true, placeholder: 'backup script' });
  const role = h('select', { name: 'key_role' }, h('option', { value: 'viewer' }, 'Viewer'), h('option', { value: 'admin' }, 'Admin'));
  const shown = h('div', { id: 'new-key', class: 'panel', hidden: true });
  const form = h('form', { class: 'settings', 'aria-label': 'Make an API key' },
    field('Name', name), field('Role', role),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'make-key' }, 'Make a key')));
  onSubmit(form, async () => {
    const k = await api('POST', '/api/keys', { name: name.value.trim(), role: role.value });
    shown.replaceChildren(h('p', { text: `The key ${k.name}: copy it now, it is not shown again. Send it as the X-API-Key header.` }),
      h('code', { id: 'key-value', text: k.key }));
    shown.hidden = false;
    document.querySelector('#keys tbody').append(keyRow(k));
    announce(`Key ${k.name} made: it is shown below the form, once.`);
  });
  settingsPage('keys', 'Settings',
    h('div', { class: 'scroll' }, h('table', { id: 'keys' }, h('thead', {}, h('tr', {}, ['Name', 'Role', 'Key', 'Last used', ''].map((t) => h('th', { text: t })))), h('tbody', {}, rows))),
    h('h2', { text: 'Make a key' }), form, shown);
}

async function showAlertSettings() {
  const [{ rules }, { cameras }] = await Promise.all([api('GET', '/api/alerts/rules'), api('GET', '/api/cameras')]);
  const where = (r) => r.channels.map((ch) => (ch.type === 'webhook' ? ch.url : ch.type === 'mqtt' ? `MQTT ${ch.topic}` : 'push')).join(', ');
  const rows = rules.map((r) => h('tr', { 'data-rule': r.name },
    h('td', {}, h('input', { type: 'checkbox', checked: r.enabled, 'aria-label': `${r.name} enabled`,
      onchange: async (ev) => {
        try {
          await api('PUT', `/api/alerts/rules/${enc(r.id)}`, { enabled: ev.target.checked });
          saved(`${r.name} ${ev.target.checked ? 'enabled' : 'disabled'}.`);
        } catch (err) { ev.target.checked = !ev.target.checked; report(err); }
      } })),
    h('td', { text: r.name }), h('td', { text: r.severity }),
    h('td', { text: [r.cameras.join(', ') || 'all cameras', r.labels.join(', ') || 'any object', r.zones.join(', ')].filter(Boolean).join(' · ') }),
    h('td', { text: where(r) }),
    tdActions(
      action('Test', { 'aria-label': `Test ${r.name}` }, async () => {
        const t = await api('POST', `/api/alerts/rules/${enc(r.id)}/test`);
        saved(`${r.name} matches ${t.events_matched} of the last ${t.events_tested} events.`);
      }),
      action('Delete', { class: 'danger', 'aria-label': `Delete ${r.name}` }, async () => {
        if (!confirm(`Delete the rule ${r.name}?`)) return;
        await api('DELETE', `/api/alerts/rules/${enc(r.id)}`);
        saved(`${r.name} deleted.`);
        route();
      }))));
  const name = h('input', { name: 'rule_name', required: true, placeholder: 'person at night' });
  const severity = h('select', { name: 'severity' }, ['low', 'medium', 'high', 'critical'].map((s) => h('option', { value: s, selected: s === 'medium' }, s)));
  const cams = h('select', { name: 'rule_cameras', multiple: true, size: Math.min(4, Math.max(2, cameras.length)) },
    cameras.map((c) => h('option', { value: c.id }, c.name || c.id)));
  const labels = h('input', { name: 'rule_labels', placeholder: 'person, car (empty: any)' });
  const zones = h('input', { name: 'rule_zones', placeholder: 'empty: anywhere' });
  const score = h('input', { name: 'min_score', type: 'number', min: 0, max: 1, step: 0.01, value: 0.5, required: true });
  const cooldown = h('input', { name: 'cooldown', type: 'number', min: 0, step: 1, value: 60, required: true });
  const channel = h('select', { name: 'channel' }, [['push', 'This page and apps (push)'], ['webhook', 'Webhook'], ['mqtt', 'MQTT']]
    .map(([v, t]) => h('option', { value: v }, t)));
  const target = h('input', { name: 'target', placeholder: 'URL or topic', size: 30 });
  const form = h('form', { class: 'settings', id: 'rule-form', 'aria-label': 'Add an alert rule' },
    field('Name', name), field('Severity', severity), field('Cameras (none chosen: all)', cams), field('Objects', labels),
    field('Zones', zones), field('Lowest score', score), field('Seconds between alerts', cooldown),
    field('Sent to', channel), field('Webhook URL or MQTT topic', target),
    h('div', { class: 'row' }, h('button', { type: 'submit', id: 'save-rule' }, 'Add the rule')));
  onSubmit(form, async () => {
    const ch = channel.value === 'webhook' ? { type: 'webhook', url: target.value.trim() }
      : channel.value === 'mqtt' ? { type: 'mqtt', topic: target.value.trim() } : { type: 'push' };
    await api('POST', '/api/alerts/rules', {
      name: name.value.trim(), severity: severity.value, cameras: [...cams.selectedOptions].map((o) => o.value),
      labels: list(labels.value), zones: list(zones.value), min_score: Number(score.value),
      cooldown_seconds: Number(cooldown.value), channels: [ch],
    });
    saved(`${name.value.trim()} added.`);
    route();
  });
  settingsPage('alerts', 'Settings',
    rules.length ? h('div', { class: 'scroll' }, h('table', { id: 'rules' }, h('thead', {}, h('tr', {},
      ['On', 'Rule', 'Severity', 'Matches', 'Sent to', ''].map((t) => h('th', { text: t })))), h('tbody', {}, rows)))
      : h('p', { text: 'No alert rule yet.' }),
    h('h2', { text: 'Add a rule' }), form);
}

// --- routing

const VIEWS = [
  [/^#\/live$/, showLive, 'live'],
  [/^#\/camera\/([^?]+)$/, (m) => showCamera(decodeURIComponent(m[1])), 'live'],
  [/^#\/events(\?.*)?$/, showEvents, 'events'],
  [/^#\/event\/([^?]+)$/, (m) => showEvent(decodeURIComponent(m[1])), 'events'],
  [/^#\/recordings(\?.*)?$/, showRecordings, 'recordings'],
  [/^#\/system$/, showSystem, 'system', 'admin'],
  [/^#\/settings(\/cameras)?$/, showCameraSettings, 'settings', 'admin'],
  [/^#\/settings\/new-camera$/, () => showCameraForm(null), 'settings', 'admin'],
  [/^#\/settings\/camera\/([^?]+)$/, (m) => showCameraForm(decodeURIComponent(m[1])), 'settings', 'admin'],
  [/^#\/settings\/zones\/([^?]+)$/, (m) => showZones(decodeURIComponent(m[1])), 'settings', 'admin'],
  [/^#\/settings\/storage$/, showStorageSettings, 'settings', 'admin'],
  [/^#\/settings\/accounts$/, showAccountSettings, 'settings', 'admin'],
  [/^#\/settings\/keys$/, showKeySettings, 'settings', 'admin'],
  [/^#\/settings\/alerts$/, showAlertSettings, 'settings', 'admin'],
];

async function route() {
  if (!state.me) return;
  stopLive();
  const hash = location.hash || '#/live';
  if (hash === '#/login') { location.hash = '#/live'; return; }
  // The zones page keeps its picture only while it is drawn again after a save.
  if (hash !== state.hash) state.picture = null;
  state.hash = hash;
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
    // A view that put the focus somewhere (a form's first field) keeps it there.
    if (mine === state.view && !main().contains(document.activeElement)) main().focus({ preventScroll: true });
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
    // Whether the login cookie is still good, asked where no answer is a 401 (a refused
    // request would show as an error in the browser's console at every visit).
    const r = await fetch('/auth/status', { headers: { 'X-Requested-With': 'vigil-ui' } });
    const st = r.ok ? await r.json() : { enabled: true, valid: null };
    if (st.enabled && st.valid !== true) throw new Error('not logged in');
    await startSession();
    route();
  } catch (_) {
    state.me = null;
    showLogin('');
  }
})();
