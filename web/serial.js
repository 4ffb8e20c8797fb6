// The serial console page: reads the one-time token from the URL, hides it, asks the proxy
// whether it is still good, then opens the serial WebSocket and shows it in xterm.js.
//
// Binary frames are the serial port's bytes (both ways: keys are sent only while this page types);
// text frames are JSON control messages: {"type":"role","role":"writer"|"viewer","writer":label}
// from the proxy, {"type":"take"} and {"type":"resize",...} from the page.
// State for tests: body[data-state] (checking | connecting | connected | failed | disconnected),
// body[data-reason] (reasons.js) and body[data-role] (writer | viewer).
// NOTE: server-provided text only ever goes into textContent or the terminal, never parsed as HTML.
import { Terminal } from '/xterm/lib/xterm.mjs';
import { FitAddon } from '/xterm-fit/lib/addon-fit.mjs';
import { HTML_LANG, pickLang, translate } from './i18n.js';
import { adviceKey, closeOutcome, precheck } from './reasons.js';

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el;
};
const els = {
  serverName: $('server-name'), status: $('status'), role: $('role'), notice: $('notice'), noticeTitle: $('notice-title'),
  noticeReason: $('notice-reason'), noticeAdvice: $('notice-advice'), take: $('btn-take'), copy: $('btn-copy'), paste: $('btn-paste'), term: $('term'),
};

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? '';
const rawLang = params.get('lang');
const lang = pickLang(rawLang);
const t = (key, vars) => translate(lang, key, vars);
// NOTE: the token leaves the address bar at once (history, bookmarks, screenshots).
history.replaceState(null, '', location.pathname + (rawLang === null ? '' : `?lang=${encodeURIComponent(rawLang)}`));

let serverName = null;
let socket = null;
let role = 'none';
let writer = null;
const encoder = new TextEncoder();

const term = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000, fontSize: 14, theme: { background: '#000000' } });
const fit = new FitAddon();
term.loadAddon(fit);
term.open(els.term);
fit.fit();

function localize() {
  document.documentElement.lang = HTML_LANG[lang];
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  document.title = serverName ? `${serverName} – ${t('serial.title')}` : t('serial.title');
}

function showRole() {
  document.body.dataset.role = role;
  els.role.textContent = role === 'writer' ? t('serial.writer') : role === 'viewer' ? (writer ? t('serial.viewer', { writer }) : t('serial.viewer.nobody')) : '';
  els.take.disabled = role !== 'viewer';
  els.paste.disabled = role !== 'writer';
}

function setState(state, reason = null) {
  document.body.dataset.state = state;
  if (reason) document.body.dataset.reason = reason;
  else delete document.body.dataset.reason;
  els.status.textContent = t(`state.${state}`);
  const live = state === 'connected';
  els.notice.hidden = live;
  els.copy.disabled = !live;
  if (!live) {
    role = 'none';
    showRole();
  }
  els.noticeTitle.textContent = t(`state.${state}`);
  els.noticeReason.textContent = reason ? t(`reason.${reason}`) : '';
  els.noticeAdvice.textContent = reason ? t(adviceKey(reason)) : '';
}

function send(data) {
  if (!socket || socket.readyState !== WebSocket.OPEN || role !== 'writer') return;
  socket.send(typeof data === 'string' ? encoder.encode(data) : data);
}

function control(m) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(m));
}

term.onData((d) => send(d));
term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
term.onResize(({ cols, rows }) => control({ type: 'resize', cols, rows }));
// Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes (Ctrl+C and Ctrl+V go to the VM).
term.attachCustomKeyEventHandler((e) => {
  if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey) return true;
  if (e.code === 'KeyC') {
    void copy();
    return false;
  }
  if (e.code === 'KeyV') {
    void paste();
    return false;
  }
  return true;
});

async function copy() {
  const text = term.getSelection();
  if (!text) return;
  try {
    await navigator.clipboard.writeText(text);
    els.status.textContent = t('serial.copied');
  } catch {
    // No clipboard permission: the selection stays for the browser's own copy.
  }
}

async function paste() {
  try {
    const text = await navigator.clipboard.readText();
    if (text) term.paste(text);
  } catch {
    // No clipboard permission: the browser's own paste (Ctrl+Shift+V in xterm's textarea) still works.
  }
}

els.copy.addEventListener('click', () => void copy());
els.paste.addEventListener('click', () => void paste());
els.take.addEventListener('click', () => control({ type: 'take' }));
window.addEventListener('resize', () => fit.fit());

function connect() {
  setState('connecting');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let connected = false;
  let finished = false;
  try {
    socket = new WebSocket(`${scheme}//${location.host}/serial-websocket?token=${encodeURIComponent(token)}`);
  } catch {
    setState('failed', 'connect-failed');
    return;
  }
  socket.binaryType = 'arraybuffer';
  socket.addEventListener('message', (e) => {
    if (typeof e.data === 'string') {
      let m = null;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (m && m.type === 'role') {
        role = m.role === 'writer' ? 'writer' : 'viewer';
        writer = typeof m.writer === 'string' ? m.writer.slice(0, 128) : null;
        if (!connected) {
          connected = true;
          setState('connected');
          term.focus();
        }
        showRole();
      }
      return;
    }
    term.write(new Uint8Array(e.data));
  });
  socket.addEventListener('close', (e) => {
    if (finished) return;
    finished = true;
    socket = null;
    const out = closeOutcome({ code: e.code === 1006 ? null : e.code, wasConnected: connected, securityFailure: false });
    setState(out.state, out.reason);
  });
}

async function start() {
  localize();
  if (!token) return setState('failed', 'token-missing');
  setState('checking');
  const check = await precheck(token);
  if (!check.proceed) return setState('failed', check.reason);
  if (check.name) {
    serverName = check.name;
    els.serverName.textContent = check.name;
    localize();
  }
  connect();
}

void start();
