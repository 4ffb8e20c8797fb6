// The console page: reads the one-time token from the URL, hides it, asks the proxy whether the
// token is still good (without consuming it), then opens the WebSocket and hands it to noVNC.
//
// State for people is in the header and the notice; state for tests is body[data-state]
// (checking | connecting | connected | failed | disconnected) and body[data-reason] (reasons.js).
// NOTE: server-provided text (server name, failure reasons) only ever goes into textContent,
// never parsed as HTML (CVE-2017-18635).
import RFB from '/novnc/core/rfb.js';
import KeyTable from '/novnc/core/input/keysym.js';
import keysyms from '/novnc/core/input/keysymdef.js';
import { HTML_LANG, pickLang, translate } from './i18n.js';
import { adviceKey, canRetry, closeOutcome, operatorReason, precheck } from './reasons.js';

/** How long to wait for the WebSocket's close event after noVNC reports a disconnect. */
const CLOSE_WAIT_MS = 3_000;
/** Pause between typed characters, so slow guests (BIOS, login prompts) keep up. */
const TYPE_DELAY_MS = 8;
/** Characters that need Shift on a US layout: sent with Shift held, as a keyboard would. */
const SHIFTED = '~!@#$%^&*()_+{}|:"<>?';

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el;
};

const els = {
  serverName: $('server-name'),
  status: $('status'),
  screen: $('screen'),
  notice: $('notice'),
  noticeTitle: $('notice-title'),
  noticeReason: $('notice-reason'),
  noticeDetail: $('notice-detail'),
  noticeAdvice: $('notice-advice'),
  retry: $('btn-retry'),
  cad: $('btn-cad'),
  text: $('btn-text'),
  scale: $('chk-scale'),
  fullscreen: $('btn-fullscreen'),
  dialog: $('text-dialog'),
  textInput: $('text-input'),
  textProgress: $('text-progress'),
  paste: $('btn-paste'),
  type: $('btn-type'),
  close: $('btn-close'),
};

const params = new URLSearchParams(location.search);
const token = params.get('token') ?? '';
const rawLang = params.get('lang');
const lang = pickLang(rawLang);
const t = (key, vars) => translate(lang, key, vars);

// NOTE: the token leaves the address bar before anything else happens, so it is not in the
// history entry, a bookmark, a screenshot of the page or a link copied from the address bar.
// It stays in this module's memory only; a reload cannot reuse it (and must not: one use).
history.replaceState(null, '', location.pathname + (rawLang === null ? '' : `?lang=${encodeURIComponent(rawLang)}`));

/** The live session: { rfb, socket } while connecting or connected, else null. */
let session = null;
/** Name shown in the header: from the pre-check, else from the RFB ServerInit. */
let serverName = null;
/** Set while "Type text" runs; the loop stops when it is cleared. */
let typing = null;

function localize() {
  document.documentElement.lang = HTML_LANG[lang];
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  updateTitle();
}

function updateTitle() {
  document.title = serverName ? `${serverName} – ${t('title')}` : t('title');
}

function showName(name) {
  if (!name) return;
  serverName = name;
  els.serverName.textContent = name;
  updateTitle();
}

/** Moves the page to `state` and shows it; `reason` (a reasons.js key) explains failed/disconnected. */
function setState(state, reason = null, detail = null, detailKey = 'detail') {
  document.body.dataset.state = state;
  if (reason) document.body.dataset.reason = reason;
  else delete document.body.dataset.reason;

  els.status.textContent = t(`state.${state}`);
  const live = state === 'connected';
  for (const b of [els.cad, els.text]) b.disabled = !live;
  els.fullscreen.disabled = !live || !document.fullscreenEnabled;
  if (!live) stopTyping();
  if (!live && els.dialog.open) els.dialog.close();

  els.notice.hidden = live;
  els.noticeTitle.textContent = t(`state.${state}`);
  els.noticeReason.textContent = reason ? t(`reason.${reason}`) : '';
  els.noticeAdvice.textContent = reason ? t(adviceKey(reason)) : '';
  els.noticeDetail.hidden = !detail;
  els.noticeDetail.textContent = detail ? t(detailKey, { text: detail }) : '';
  els.retry.hidden = !(reason && canRetry(reason) && token);
}

async function start() {
  if (!token) {
    setState('failed', 'token-missing');
    return;
  }
  setState('checking');
  const check = await precheck(token);
  if (!check.proceed) {
    setState('failed', check.reason);
    return;
  }
  showName(check.name);
  connect();
}

function connect() {
  setState('connecting');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = `${scheme}//${location.host}/websockify?token=${encodeURIComponent(token)}`;

  let connected = false;
  let securityReason = null;
  let finished = false;
  let closeTimer = null;

  // Our own socket (rather than a URL for noVNC) so that the close code and reason are ours to read.
  let socket;
  try {
    socket = new WebSocket(url, ['binary']);
  } catch {
    setState('failed', 'connect-failed');
    return;
  }

  const finish = (code, closeText = '') => {
    if (finished) return;
    finished = true;
    clearTimeout(closeTimer);
    session = null;
    const out = closeOutcome({ code, wasConnected: connected, securityFailure: securityReason !== null });
    // The proxy's English reason is shown only when no code of ours explains the failure; an
    // operator's own words when it ended the session.
    if (out.reason === 'operator-ended') setState(out.state, out.reason, operatorReason(closeText), 'operator.reason');
    else setState(out.state, out.reason, out.reason === 'security-failure' ? securityReason : null);
  };

  // 1006 is the browser's own code for "no close frame": nothing from us, so no code to map.
  socket.addEventListener('close', (e) => finish(e.code === 1006 ? null : e.code, e.reason));

  let rfb;
  try {
    rfb = new RFB(els.screen, socket, { shared: true });
  } catch {
    socket.close();
    finish(null);
    return;
  }
  session = { rfb, socket };
  rfb.scaleViewport = els.scale.checked;
  rfb.clipViewport = false;
  rfb.background = '#111418';

  rfb.addEventListener('connect', () => {
    connected = true;
    setState('connected');
    rfb.focus({ preventScroll: true });
  });
  rfb.addEventListener('desktopname', (e) => {
    if (!serverName && typeof e.detail?.name === 'string') showName(e.detail.name.slice(0, 256));
  });
  rfb.addEventListener('securityfailure', (e) => {
    securityReason = typeof e.detail?.reason === 'string' ? e.detail.reason.slice(0, 256) : '';
  });
  // noVNC reports a disconnect before the socket's close event arrives; the close code decides.
  rfb.addEventListener('disconnect', () => {
    closeTimer = setTimeout(() => finish(null), CLOSE_WAIT_MS);
  });
}

// ---- controls ----

els.cad.addEventListener('click', () => {
  if (!session) return;
  session.rfb.sendCtrlAltDel();
  session.rfb.focus({ preventScroll: true });
});

els.scale.addEventListener('change', () => {
  if (session) session.rfb.scaleViewport = els.scale.checked;
});

els.fullscreen.addEventListener('click', () => {
  if (document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  } else {
    els.screen.requestFullscreen().catch(() => {});
  }
});

document.addEventListener('fullscreenchange', () => {
  els.fullscreen.textContent = t(document.fullscreenElement ? 'btn.fullscreen.exit' : 'btn.fullscreen');
  if (session) session.rfb.focus({ preventScroll: true });
});

els.text.addEventListener('click', () => {
  if (!session) return;
  els.textProgress.hidden = true;
  els.dialog.showModal();
  els.textInput.focus();
});

els.close.addEventListener('click', () => els.dialog.close());

els.dialog.addEventListener('close', () => {
  stopTyping();
  if (session) session.rfb.focus({ preventScroll: true });
});

els.paste.addEventListener('click', () => {
  if (!session) return;
  session.rfb.clipboardPasteFrom(els.textInput.value);
  els.dialog.close();
});

els.type.addEventListener('click', () => {
  if (typing) stopTyping();
  else typeText(els.textInput.value);
});

els.retry.addEventListener('click', () => {
  // A manual retry only, and only for reasons where the token was not consumed; the pre-check
  // runs again first, so a token used or expired meanwhile is reported, not retried.
  if (!session) start();
});

/** The key to send for one character, or null when no key types it. */
function keyFor(ch) {
  if (ch === '\n') return { keysym: KeyTable.XK_Return, code: 'Enter', shift: false };
  if (ch === '\t') return { keysym: KeyTable.XK_Tab, code: 'Tab', shift: false };
  const cp = ch.codePointAt(0);
  if (cp === undefined || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return null;
  return { keysym: keysyms.lookup(cp), code: null, shift: (ch >= 'A' && ch <= 'Z') || SHIFTED.includes(ch) };
}

/**
 * Types `text` as key presses (for screens without clipboard support). Characters that need
 * Shift on a US layout are sent with Shift held: some VNC servers (QEMU) map keysyms to key
 * codes and would otherwise type the unshifted character.
 */
async function typeText(text) {
  const chars = [...text.replace(/\r\n?/g, '\n')];
  const run = { stop: false };
  typing = run;
  els.type.textContent = t('dialog.stop');
  els.paste.disabled = true;
  els.textProgress.hidden = false;
  let skipped = 0;
  for (let i = 0; i < chars.length && !run.stop && session; i++) {
    const key = keyFor(chars[i]);
    if (!key) {
      skipped++;
      continue;
    }
    const { rfb } = session;
    if (key.shift) rfb.sendKey(KeyTable.XK_Shift_L, 'ShiftLeft', true);
    rfb.sendKey(key.keysym, key.code);
    if (key.shift) rfb.sendKey(KeyTable.XK_Shift_L, 'ShiftLeft', false);
    if (i % 10 === 0 || i === chars.length - 1) els.textProgress.textContent = t('dialog.typing', { done: i + 1, total: chars.length });
    await new Promise((r) => setTimeout(r, TYPE_DELAY_MS));
  }
  if (typing !== run) return;
  typing = null;
  els.type.textContent = t('dialog.type');
  els.paste.disabled = false;
  if (skipped > 0) {
    els.textProgress.textContent = t('dialog.skipped', { count: skipped });
  } else if (!run.stop && els.dialog.open) {
    els.dialog.close();
  }
}

function stopTyping() {
  if (!typing) return;
  typing.stop = true;
  typing = null;
  els.type.textContent = t('dialog.type');
  els.paste.disabled = false;
  els.textProgress.hidden = true;
}

localize();
start();
