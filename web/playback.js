// The playback page: loads a recording through the API (IAM token) and plays it with noVNC,
// which reads the recorded server bytes as if they came from the server. Play, pause, 1x-8x,
// a timeline with markers, seeking: the service sends the recording's seekable form (its
// messages re-encoded so a fresh noVNC can start at a keyframe, and keyframes of the whole
// screen); a seek starts a fresh player at the last keyframe before the target and replays from
// there (from the start when the recording has none).
//
// Address: /playback.html#project=<id>&recording=<id>[&lang=ZH]. The IAM token is the one the
// operator page keeps in sessionStorage (`ecs-console.iam-token`), or one got here by signing in.
import RFB from '/novnc/core/rfb.js';
import { HTML_LANG, pickLang, t } from './playback-i18n.js';
import { batches, chunkIndexAfter, formatTime, handshakeBytes, keyframeBefore, parseRecording } from './playback-model.js';
import { checkInternals, kick as kickNoVnc, settled as settledNoVnc } from './novnc-replay.js';

const TOKEN_KEY = 'ecs-console.iam-token';
/** Largest message handed to noVNC at once while replaying fast. */
const FAST_BATCH = 512 * 1024;
/** Real-time playback: how often the clock advances. */
const TICK_MS = 40;

const params = new URLSearchParams(location.hash.slice(1));
const lang = pickLang(params.get('lang'));
const $ = (id) => document.getElementById(id);
const els = {
  status: $('status'), play: $('btn-play'), speed: $('speed'), scale: $('chk-scale'), timeline: $('timeline'), markers: $('markers'),
  now: $('time-now'), total: $('time-total'), info: $('info'), screen: $('screen'), notice: $('notice'), noticeTitle: $('notice-title'),
  noticeReason: $('notice-reason'), login: $('login'),
};

document.documentElement.lang = HTML_LANG[lang];
document.title = t(lang, 'title');
for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(lang, el.dataset.i18n);
for (const el of document.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(lang, el.dataset.i18nAria));

/** @type {ReturnType<typeof parseRecording> | null} */
let rec = null;
/** The player: noVNC over a channel we feed. */
let player = null;
/** Recording time shown (ms), and the next chunk to feed. */
let position = 0;
let next = 0;
let playing = false;
let wallStart = 0;
let posStart = 0;
let timer = null;
/** Seeks run one at a time; a newer one replaces a waiting one. */
let seeking = null;
let seekTarget = null;

function setState(state, reasonKey, vars) {
  document.body.dataset.state = state;
  els.status.textContent = t(lang, `state.${state}`);
  els.noticeTitle.textContent = t(lang, `state.${state}`);
  els.noticeReason.textContent = reasonKey ? t(lang, reasonKey, vars) : '';
  const showNotice = state === 'loading' || state === 'failed' || state === 'login';
  els.notice.hidden = !showNotice;
  els.login.hidden = state !== 'login';
  els.play.textContent = t(lang, state === 'playing' ? 'btn.pause' : 'btn.play');
}

function showPosition() {
  els.now.textContent = formatTime(position);
  els.timeline.value = String(position);
  document.body.dataset.position = String(Math.round(position));
}

// ---- the player's channel: a WebSocket look-alike noVNC attaches to

class ReplayChannel {
  constructor() {
    this.binaryType = 'arraybuffer';
    this.protocol = '';
    this.readyState = 'open';
    this.onerror = null;
    this.onmessage = null;
    this.onopen = null;
    this.onclose = null;
  }
  /** What noVNC sends (its handshake, update requests): nobody is listening. */
  send() {}
  close() {
    this.readyState = 'closed';
    this.onclose?.({ code: 1000, reason: '', wasClean: true });
  }
  deliver(bytes) {
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }
}

function newPlayer() {
  if (player) {
    player.rfb.disconnect();
    player = null;
  }
  const channel = new ReplayChannel();
  const rfb = new RFB(els.screen, channel, { shared: true });
  checkInternals(rfb);
  rfb.viewOnly = true;
  document.body.dataset.player = 'connecting';
  rfb.addEventListener('connect', () => (document.body.dataset.player = 'connected'));
  rfb.addEventListener('disconnect', () => {
    if (player?.rfb === rfb) document.body.dataset.player = 'failed';
  });
  rfb.scaleViewport = els.scale.checked;
  player = { rfb, channel };
  channel.deliver(handshakeBytes(rec.serverInit));
  next = 0;
  position = 0;
}

const yieldToBrowser = () => new Promise((r) => setTimeout(r, 0));

/** Feeds every chunk up to recording time `to` as fast as noVNC takes them. */
async function fastForward(to) {
  const end = chunkIndexAfter(rec.chunks, to);
  const p = player;
  for (const b of batches(rec.chunks, next, end, FAST_BATCH)) {
    if (player !== p) return;
    p.channel.deliver(b);
    await settled(p);
    await yieldToBrowser();
  }
  next = end;
  position = to;
  await settled(p);
}

/** Until noVNC has drawn everything it was given (web/novnc-replay.js). */
function settled(p) {
  return settledNoVnc(p.rfb, () => player === p);
}

function kick(p) {
  kickNoVnc(p.rfb);
}

async function seek(to) {
  seekTarget = Math.max(0, Math.min(rec.durationMs, to));
  if (seeking) return seeking;
  seeking = (async () => {
    while (seekTarget !== null) {
      const target = seekTarget;
      seekTarget = null;
      const started = performance.now();
      const kf = keyframeBefore(rec.keyframes, chunkIndexAfter(rec.chunks, target));
      if (target < position || !player || (kf && kf.index > next)) {
        newPlayer();
        if (kf) {
          player.channel.deliver(kf.bytes);
          next = kf.index;
        }
      }
      await fastForward(target);
      document.body.dataset.seekMs = String(Math.round(performance.now() - started));
      posStart = position;
      wallStart = performance.now();
      showPosition();
    }
    seeking = null;
  })();
  return seeking;
}

function tick() {
  if (!playing || seeking) return;
  const speed = Number(els.speed.value) || 1;
  const now = Math.min(rec.durationMs, posStart + (performance.now() - wallStart) * speed);
  const end = chunkIndexAfter(rec.chunks, now);
  for (const b of batches(rec.chunks, next, end, FAST_BATCH)) player.channel.deliver(b);
  kick(player);
  next = end;
  position = now;
  showPosition();
  if (now >= rec.durationMs) pause('ended');
}

function play() {
  if (!rec) return;
  if (position >= rec.durationMs) {
    void seek(0).then(play);
    return;
  }
  playing = true;
  posStart = position;
  wallStart = performance.now();
  timer ??= setInterval(tick, TICK_MS);
  setState('playing');
}

function pause(state = 'paused') {
  playing = false;
  if (timer) clearInterval(timer);
  timer = null;
  setState(state);
}

// ---- loading

async function api(path, token, asBytes) {
  let res;
  try {
    res = await fetch(path, { headers: { 'X-Auth-Token': token }, cache: 'no-store' });
  } catch {
    throw { key: 'error.network' };
  }
  if (res.status === 401) throw { key: 'login' };
  if (!res.ok) {
    let message = res.statusText;
    try {
      const body = await res.json();
      message = body?.error?.message ?? body?.error_msg ?? message;
    } catch { /* not JSON */ }
    throw { key: 'error.http', vars: { status: res.status, message } };
  }
  return asBytes ? { bytes: await res.arrayBuffer(), integrity: res.headers.get('X-Recording-Integrity') } : res.json();
}

function drawMarkers() {
  els.markers.textContent = '';
  const d = Math.max(1, rec.durationMs);
  for (const m of rec.markers) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'marker';
    b.dataset.kind = m.kind;
    b.style.left = `${(m.t / d) * 100}%`;
    b.title = `${t(lang, `marker.${m.kind}`)} · ${formatTime(m.t)}`;
    b.setAttribute('aria-label', b.title);
    b.addEventListener('click', () => void seek(m.t));
    els.markers.append(b);
  }
}

async function load(token) {
  setState('loading');
  const project = params.get('project');
  const id = params.get('recording');
  if (!project || !id) return setState('failed', 'error.missing');
  try {
    const meta = await api(`/v1/${encodeURIComponent(project)}/recordings/${encodeURIComponent(id)}`, token);
    const data = await api(`/v1/${encodeURIComponent(project)}/recordings/${encodeURIComponent(id)}/data?seekable=1`, token, true);
    rec = parseRecording(data.bytes);
    if (!rec.serverInit) return setState('failed', 'error.empty');
    const r = meta.recording;
    els.info.textContent = `${t(lang, 'info', { server: r.server_id, started: new Date(r.started).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en'), duration: formatTime(rec.durationMs) })} · ${t(lang, `integrity.${data.integrity}`)}`;
    els.info.dataset.integrity = data.integrity ?? '';
    els.timeline.max = String(rec.durationMs);
    els.total.textContent = formatTime(rec.durationMs);
    drawMarkers();
    newPlayer();
    for (const el of [els.play, els.speed, els.timeline]) el.disabled = false;
    setState('ready');
    showPosition();
    document.body.dataset.duration = String(rec.durationMs);
  } catch (e) {
    if (e?.key === 'login') {
      sessionStorage.removeItem(TOKEN_KEY);
      return setState('login');
    }
    setState('failed', e?.key ?? 'error.network', e?.vars);
  }
}

els.login.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const body = {
    auth: {
      identity: { methods: ['password'], password: { user: { name: $('login-user').value, password: $('login-password').value, domain: { name: $('login-domain').value } } } },
      scope: { project: { id: params.get('project') ?? '' } },
    },
  };
  try {
    const res = await fetch('/v3/auth/tokens', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const token = res.ok ? res.headers.get('X-Subject-Token') : null;
    if (!token) return setState('login', 'login.failed');
    $('login-password').value = '';
    sessionStorage.setItem(TOKEN_KEY, token);
    await load(token);
  } catch {
    setState('login', 'error.network');
  }
});

els.play.addEventListener('click', () => (playing ? pause() : play()));
els.timeline.addEventListener('input', () => void seek(Number(els.timeline.value)));
els.scale.addEventListener('change', () => {
  if (player) player.rfb.scaleViewport = els.scale.checked;
});
els.speed.addEventListener('change', () => {
  posStart = position;
  wallStart = performance.now();
});

const token = sessionStorage.getItem(TOKEN_KEY);
if (token) void load(token);
else setState('login');

// For tests and the operator page's own controls.
globalThis.ecsPlayback = { seek, play, pause, get position() { return position; }, get rfb() { return player?.rfb ?? null; }, get chunks() { return rec?.chunks.length ?? 0; }, get keyframes() { return rec?.keyframes.length ?? 0; } };
