// The operator's page (/operator/ on the API listener): servers with live screenshot thumbnails and
// their consoles, live sessions (end one with a reason), the audit search and export, recordings
// and their playback. It signs in with the IAM token call and then calls the admin API, the
// screenshot, remote_console and recording calls as any client does.
//
// NOTE: IAM tokens are project-scoped and live in this tab's sessionStorage only: never in a URL,
// never in local storage. The password is used once, to get a token for each of the domain's
// projects (screenshots, consoles and recordings are project calls), and then dropped.
// NOTE: text from the service (server names, reasons, audit details) only ever goes into
// textContent or attributes, never into HTML.
import { HTML_LANG, auditQuery, formatBytes, pickLang, t as translate } from './operator-i18n.js';

const STORE_KEY = 'ecs-console.operator';
/** The key the playback page reads its IAM token from (web/playback.js). */
const PLAYBACK_TOKEN_KEY = 'ecs-console.iam-token';
/**
 * Thumbnails refresh this often. The screenshot call is rate limited per server (6 a minute by
 * default, `screenshotPerServerPerMinute`): every 15 s stays under it, and a 429 waits its
 * Retry-After.
 */
const THUMB_REFRESH_MS = 15_000;
/** Screenshots asked at once. */
const THUMB_CONCURRENCY = 2;
const SESSIONS_REFRESH_MS = 5_000;
const SERVERS_PAGE = 50;
/** Most projects the sign-in gets a token for (one password check each). */
const MAX_PROJECTS = 20;

const params = new URLSearchParams(location.search);
const lang = pickLang(params.get('lang'));
const t = (key, vars) => translate(lang, key, vars);
const $ = (id) => document.getElementById(id);

document.documentElement.lang = HTML_LANG[lang];
document.title = t('title');
for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
const langLink = $('lang-switch');
langLink.textContent = t('lang.other');
langLink.href = `?lang=${lang === 'zh' ? 'EN' : 'ZH'}`;

/**
 * The signed-in operator: `{ domain, user, userId, home, tokens: {projectId: token}, projects: {projectId: name} }`.
 * @type {null | { domain: string, user: string, userId: string, home: string, tokens: Record<string, string>, projects: Record<string, string> }}
 */
let auth = null;
try {
  auth = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? 'null');
} catch {
  auth = null;
}

// ---- state and views

function setState(state, vars) {
  document.body.dataset.state = state;
  $('status').textContent = t(`state.${state}`, vars);
  $('login-view').hidden = state !== 'login' && state !== 'signing-in';
  $('denied').hidden = state !== 'denied';
  $('app').hidden = state !== 'ready';
  $('nav').hidden = state !== 'ready';
  $('btn-signout').hidden = state === 'login' || state === 'signing-in';
}

let view = 'servers';
function showView(name) {
  view = name;
  document.body.dataset.view = name;
  for (const b of document.querySelectorAll('#nav button')) b.setAttribute('aria-selected', String(b.dataset.view === name));
  for (const s of document.querySelectorAll('[data-view-panel]')) s.hidden = s.dataset.viewPanel !== name;
  if (name === 'servers') scheduleThumbs(0);
  if (name === 'sessions') void loadSessions();
  if (name === 'recordings') void loadRecordings();
}

function toast(text, kind = 'info') {
  const el = $('toast');
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = !text;
}

// ---- calls

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the service with a project's token (the sign-in's own when `project` is omitted). */
async function call(method, path, { project, body, raw } = {}) {
  const token = auth?.tokens[project ?? auth.home];
  if (!token) throw new HttpError(0, t('thumb.no-access'));
  let res;
  try {
    res = await fetch(path, {
      method, cache: 'no-store',
      headers: { 'X-Auth-Token': token, ...(body ? { 'Content-Type': 'application/json' } : {}), 'X-Language': lang === 'zh' ? 'zh-cn' : 'en-us' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    throw new HttpError(0, t('error.network'));
  }
  if (res.status === 401) {
    signOut('login.expired');
    throw new HttpError(401, t('login.expired'));
  }
  if (!res.ok) {
    let message = res.statusText;
    try {
      const b = await res.json();
      message = b?.error?.message ?? b?.error_msg ?? message;
    } catch { /* not JSON */ }
    const e = new HttpError(res.status, t('error.http', { status: res.status, message }));
    e.retryAfter = Number(res.headers.get('Retry-After')) || 0;
    throw e;
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

// ---- sign-in

async function issueToken(domain, user, password, scope) {
  const res = await fetch('/v3/auth/tokens', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, cache: 'no-store',
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: domain } } } }, scope: { project: scope } } }),
  });
  const token = res.headers.get('X-Subject-Token');
  if (res.status !== 201 || !token) return { status: res.status };
  const b = await res.json();
  return { status: res.status, token, projectId: b.token.project.id, projectName: b.token.project.name, userId: b.token.user.id };
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const domain = $('login-domain').value.trim();
  const user = $('login-user').value.trim();
  const passwordField = $('login-password');
  let password = passwordField.value;
  passwordField.value = '';
  const project = $('login-project').value.trim();
  $('login-error').textContent = '';
  setState('signing-in');
  try {
    const first = await issueToken(domain, user, password, /^[0-9a-f]{32}$/.test(project) ? { id: project } : { name: project });
    if (!first.token) {
      setState('login');
      $('login-error').textContent = t(first.status === 429 ? 'login.throttled' : 'login.failed');
      return;
    }
    auth = { domain, user, userId: first.userId, home: first.projectId, tokens: { [first.projectId]: first.token }, projects: { [first.projectId]: first.projectName } };
    // Only domain administrators may use the admin API: say so plainly to anyone else.
    try {
      await call('GET', '/admin/v1/servers?limit=1');
    } catch (e) {
      if (e.status === 403) {
        password = '';
        save();
        setState('denied');
        return;
      }
      throw e;
    }
    // A token for each of the domain's projects, while the password is at hand (then dropped).
    const list = await call('GET', '/v3/auth/projects');
    for (const p of (list?.projects ?? []).slice(0, MAX_PROJECTS)) {
      auth.projects[p.id] = p.name;
      if (auth.tokens[p.id]) continue;
      const more = await issueToken(domain, user, password, { id: p.id }).catch(() => ({}));
      if (more.token) auth.tokens[p.id] = more.token;
    }
    password = '';
    save();
    start();
  } catch (e) {
    password = '';
    if (document.body.dataset.state !== 'login') {
      auth = null;
      setState('login');
      $('login-error').textContent = e instanceof HttpError ? e.message : t('error.network');
    }
  }
});

function save() {
  sessionStorage.setItem(STORE_KEY, JSON.stringify(auth));
}

function signOut(messageKey) {
  // The tokens are revoked where the service allows it; forgotten here either way.
  if (auth) {
    for (const token of new Set(Object.values(auth.tokens))) {
      void fetch('/v3/auth/tokens', { method: 'DELETE', headers: { 'X-Auth-Token': token, 'X-Subject-Token': token } }).catch(() => undefined);
    }
  }
  auth = null;
  sessionStorage.removeItem(STORE_KEY);
  sessionStorage.removeItem(PLAYBACK_TOKEN_KEY);
  stopTimers();
  setState('login');
  $('login-error').textContent = messageKey ? t(messageKey) : '';
}

$('btn-signout').addEventListener('click', () => signOut());
for (const b of document.querySelectorAll('#nav button')) b.addEventListener('click', () => showView(b.dataset.view));

// ---- servers and thumbnails

/** Server id -> { server, card, img, note, nextAt }. */
const cards = new Map();
let serversMarker = null;

async function loadServers(more = false) {
  if (!more) {
    cards.clear();
    $('servers').textContent = '';
    serversMarker = null;
  }
  const q = new URLSearchParams({ limit: String(SERVERS_PAGE) });
  if (more && serversMarker) q.set('marker', serversMarker);
  try {
    const page = await call('GET', `/admin/v1/servers?${q}`);
    for (const s of page.servers) addCard(s);
    serversMarker = page.next_marker;
    $('servers-more').hidden = !serversMarker;
    $('servers-empty').hidden = cards.size > 0;
    document.body.dataset.servers = String(cards.size);
    scheduleThumbs(0);
  } catch (e) {
    toast(e.message, 'bad');
  }
}

function projectName(id) {
  return auth?.projects[id] ?? id;
}

function addCard(s) {
  const card = document.createElement('article');
  card.className = 'card';
  card.dataset.serverId = s.id;
  card.dataset.status = s.status;
  const thumb = document.createElement('div');
  thumb.className = 'thumb';
  const img = document.createElement('img');
  img.alt = t('thumb.alt', { server: s.name });
  img.hidden = true;
  img.decoding = 'async';
  const note = document.createElement('span');
  note.className = 'thumb-note';
  thumb.append(img, note);
  const body = document.createElement('div');
  body.className = 'card-body';
  const name = document.createElement('h2');
  name.className = 'card-name';
  name.textContent = s.name;
  name.title = s.id;
  const meta = document.createElement('p');
  meta.className = 'card-meta';
  const status = document.createElement('span');
  status.className = 'badge';
  status.dataset.status = s.status;
  status.textContent = s.status;
  const proj = document.createElement('span');
  proj.textContent = t('server.project', { project: projectName(s.project_id) });
  meta.append(status, proj);
  const actions = document.createElement('div');
  actions.className = 'card-actions';
  actions.append(consoleButton(s, 'vnc'));
  // A serial console only for a server whose console target has a serial port (server add --serial).
  if (s.console?.serial) actions.append(consoleButton(s, 'serial'));
  body.append(name, meta, actions);
  card.append(thumb, body);
  $('servers').append(card);
  const entry = { server: s, card, img, note, nextAt: 0, loaded: 0 };
  cards.set(s.id, entry);
  if (s.status !== 'ACTIVE') note.textContent = t('thumb.stopped');
  else if (!auth.tokens[s.project_id]) note.textContent = t('thumb.no-access');
  else note.textContent = t('thumb.loading');
}

let thumbTimer = null;
let thumbsRunning = false;

function scheduleThumbs(ms) {
  clearTimeout(thumbTimer);
  thumbTimer = setTimeout(() => void refreshThumbs(), ms);
}

/** Refreshes the due thumbnails of the servers shown, a few at a time, then sleeps until the next is due. */
async function refreshThumbs() {
  if (thumbsRunning || !auth || document.body.dataset.state !== 'ready') return;
  if (view !== 'servers' || document.visibilityState === 'hidden') return;
  thumbsRunning = true;
  try {
    const due = [...cards.values()].filter((c) => c.server.status === 'ACTIVE' && auth.tokens[c.server.project_id] && c.nextAt <= Date.now());
    const work = async () => {
      for (let c = due.shift(); c; c = due.shift()) await refreshThumb(c);
    };
    await Promise.all(Array.from({ length: THUMB_CONCURRENCY }, work));
  } finally {
    thumbsRunning = false;
  }
  const next = Math.min(...[...cards.values()].map((c) => c.nextAt).filter((n) => n > 0), Date.now() + THUMB_REFRESH_MS);
  scheduleThumbs(Math.max(1000, next - Date.now()));
}

async function refreshThumb(c) {
  const s = c.server;
  try {
    const res = await call('GET', `/v1/${encodeURIComponent(s.project_id)}/cloudservers/${encodeURIComponent(s.id)}/screenshot?format=png`, { project: s.project_id, raw: true });
    const url = await dataUrl(await res.blob());
    await new Promise((resolve) => {
      c.img.onload = resolve;
      c.img.onerror = resolve;
      c.img.src = url;
    });
    c.img.hidden = false;
    c.loaded++;
    c.img.dataset.loaded = String(c.loaded);
    c.card.dataset.thumb = 'ok';
    c.note.textContent = '';
    c.img.title = t('thumb.updated', { time: new Date().toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en') });
    c.nextAt = Date.now() + THUMB_REFRESH_MS;
  } catch (e) {
    if (e.status === 401) return;
    c.card.dataset.thumb = e.status === 429 ? 'throttled' : 'failed';
    if (!c.loaded) c.note.textContent = e.status === 429 ? t('thumb.throttled') : t('thumb.failed', { message: e.message });
    c.nextAt = Date.now() + Math.max(THUMB_REFRESH_MS, (e.retryAfter ?? 0) * 1000);
  }
}

/** The image as a data: URL (the page's CSP allows data: images, and nothing from elsewhere). */
function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}

/** What remote_console is asked for each kind of console (the serial one is our documented extension), and the button's label. */
const CONSOLE_KINDS = {
  vnc: { request: { type: 'novnc', protocol: 'vnc' }, className: 'open-console', label: 'server.open' },
  serial: { request: { type: 'serial', protocol: 'serial' }, className: 'open-serial', label: 'server.open-serial' },
};

function consoleButton(s, kind) {
  const k = CONSOLE_KINDS[kind];
  const b = document.createElement('button');
  b.type = 'button';
  b.className = k.className;
  if (kind !== 'vnc') b.classList.add('secondary');
  b.textContent = t(k.label);
  b.disabled = s.status !== 'ACTIVE' || !auth.tokens[s.project_id];
  b.addEventListener('click', () => void openConsole(s, b, kind));
  return b;
}

/**
 * Opens a server's console (`vnc`: noVNC's page; `serial`: serial.html) in a new tab: a one-time
 * console URL from remote_console (the server's project's token). The tab is opened at the click,
 * so that pop-up blockers let it through, and pointed at the URL when it comes; it does not get
 * this page as its opener.
 */
async function openConsole(s, button, kind) {
  const k = CONSOLE_KINDS[kind];
  const tab = window.open('', '_blank');
  if (tab) tab.opener = null;
  button.disabled = true;
  button.textContent = t('server.opening');
  try {
    const r = await call('POST', `/v1/${encodeURIComponent(s.project_id)}/cloudservers/${encodeURIComponent(s.id)}/remote_console`,
      { project: s.project_id, body: { remote_console: k.request } });
    const url = r.remote_console.url;
    if (tab) tab.location.replace(url);
    else toast(t('error.popup'), 'bad');
  } catch (e) {
    tab?.close();
    toast(e.message, 'bad');
  } finally {
    button.disabled = false;
    button.textContent = t(k.label);
  }
}

$('servers-more').addEventListener('click', () => void loadServers(true));
$('servers-refresh').addEventListener('click', () => void loadServers(false));
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && auth) {
    if (view === 'servers') scheduleThumbs(0);
    if (view === 'sessions') void loadSessions();
  }
});

// ---- live sessions

let sessionsTimer = null;

function cell(tr, text, className) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  if (className) td.className = className;
  tr.append(td);
  return td;
}

/** Names each cell after its column (a phone shows rows as blocks, each value after its name). */
function labelCells(tbody) {
  const names = [...tbody.closest('table').querySelectorAll('thead th')].map((th) => th.textContent);
  for (const tr of tbody.rows) [...tr.cells].forEach((td, i) => { if (names[i]) td.dataset.label = names[i]; });
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso ?? '') : d.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en');
}

async function loadSessions() {
  clearTimeout(sessionsTimer);
  if (!auth || view !== 'sessions') return;
  try {
    const r = await call('GET', '/admin/v1/sessions');
    const rows = $('sessions-rows');
    rows.textContent = '';
    for (const s of r.sessions) {
      const tr = document.createElement('tr');
      tr.dataset.sessionId = s.id;
      tr.dataset.serverId = s.server_id;
      cell(tr, s.server_name ?? s.server_id).title = s.server_id;
      cell(tr, s.user_id ?? s.credential ?? '');
      cell(tr, s.client_address ?? '');
      cell(tr, s.node_id ?? '');
      cell(tr, when(s.started_at));
      cell(tr, `${formatBytes(s.bytes_to_client)} / ${formatBytes(s.bytes_to_backend)}`, 'num');
      const actions = cell(tr, '');
      const end = document.createElement('button');
      end.type = 'button';
      end.className = 'danger end-session';
      end.textContent = t('session.end');
      end.addEventListener('click', () => askEnd(s));
      actions.append(end);
      rows.append(tr);
    }
    labelCells(rows);
    $('sessions-empty').hidden = r.sessions.length > 0;
    document.body.dataset.sessions = String(r.sessions.length);
  } catch (e) {
    toast(e.message, 'bad');
  }
  if (view === 'sessions' && document.visibilityState !== 'hidden') sessionsTimer = setTimeout(() => void loadSessions(), SESSIONS_REFRESH_MS);
}

let ending = null;
function askEnd(s) {
  ending = s;
  $('end-server').textContent = s.server_name ?? s.server_id;
  $('end-reason').value = '';
  $('end-dialog').showModal();
  $('end-reason').focus();
}

$('end-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const s = ending;
  if (!s) return;
  const reason = $('end-reason').value.trim();
  const q = reason ? `?${new URLSearchParams({ reason })}` : '';
  try {
    await call('DELETE', `/admin/v1/sessions/${encodeURIComponent(s.id)}${q}`);
    $('end-dialog').close();
    toast(t('end.done'));
    setTimeout(() => void loadSessions(), 500);
  } catch (e) {
    toast(e.message, 'bad');
  }
});
$('end-cancel').addEventListener('click', () => $('end-dialog').close());

// ---- audit

let auditMarker = null;

function auditFields() {
  const f = {};
  for (const el of $('audit-form').querySelectorAll('[name]')) f[el.name] = el.value;
  return f;
}

async function searchAudit(marker = null) {
  const fields = auditFields();
  const q = auditQuery(fields);
  if (marker) q.set('marker', marker);
  try {
    const r = await call('GET', `/admin/v1/audit?${q}`);
    const rows = $('audit-rows');
    rows.textContent = '';
    for (const e of r.events) rows.append(auditRow(e));
    labelCells(rows);
    auditMarker = r.next_marker;
    $('audit-next').hidden = !auditMarker;
    $('audit-first').hidden = !marker;
    $('audit-empty').hidden = r.events.length > 0;
    document.body.dataset.audit = String(r.events.length);
  } catch (e) {
    toast(e.message, 'bad');
  }
}

function auditRow(e) {
  const tr = document.createElement('tr');
  tr.dataset.kind = e.kind;
  if (e.session_id) tr.dataset.sessionId = e.session_id;
  cell(tr, when(e.at));
  cell(tr, t(`kind.${e.kind}`)).title = e.kind;
  cell(tr, e.outcome ? t(`outcome.${e.outcome}`) : '');
  const srv = cards.get(e.server_id ?? '')?.server.name ?? e.server_id ?? '';
  cell(tr, srv).title = e.server_id ?? '';
  cell(tr, e.session_id ? e.session_id.slice(0, 8) : '').title = e.session_id ?? '';
  cell(tr, e.actor_user_id ?? e.actor_credential ?? '');
  cell(tr, e.client_address ?? '');
  const detail = e.detail && Object.keys(e.detail).length ? JSON.stringify(e.detail) : '';
  cell(tr, detail, 'detail');
  const actions = cell(tr, '');
  if (e.session_id && e.project_id && (e.kind === 'closed' || e.kind === 'connected')) {
    const play = document.createElement('button');
    play.type = 'button';
    play.className = 'play-session';
    play.textContent = t('audit.play');
    // A closed session's record names its recording; otherwise it is looked up by session.
    const recording = typeof e.detail?.recording === 'string' ? e.detail.recording : null;
    play.addEventListener('click', () => void playSession(e.project_id, e.session_id, recording));
    actions.append(play);
  }
  return tr;
}

/**
 * Plays the recording of an audited session in a new tab, opened at the click (pop-up blockers)
 * and pointed at the player when the recording is found.
 */
async function playSession(project, sessionId, recordingId) {
  if (recordingId) return openPlayback(project, recordingId);
  const tab = playbackTab(project);
  try {
    const r = await call('GET', `/v1/${encodeURIComponent(project)}/recordings?${new URLSearchParams({ session_id: sessionId, limit: '1' })}`, { project });
    const rec = r.recordings[0];
    if (!rec) {
      tab?.close();
      toast(t('audit.no-recording'));
      return;
    }
    if (tab) tab.location.replace(playbackUrl(project, rec.id));
    else toast(t('error.popup'), 'bad');
  } catch (e) {
    tab?.close();
    toast(e.message, 'bad');
  }
}

/**
 * A new tab for the playback page. The player reads the project's token from its sessionStorage,
 * which a tab opened from this one starts with a copy of (taken now): so the token never goes in
 * a URL.
 */
function playbackTab(project, url = '') {
  sessionStorage.setItem(PLAYBACK_TOKEN_KEY, auth.tokens[project]);
  return window.open(url, '_blank');
}

function playbackUrl(project, recordingId) {
  return `/playback.html#${new URLSearchParams({ project, recording: recordingId, lang: lang === 'zh' ? 'ZH' : 'EN' })}`;
}

function openPlayback(project, recordingId) {
  if (!playbackTab(project, playbackUrl(project, recordingId))) toast(t('error.popup'), 'bad');
}

/** Export: fetched with the token (a plain link would need it in its URL), saved as a file. */
async function exportAudit(format) {
  const q = auditQuery(auditFields());
  q.delete('limit');
  q.set('format', format);
  try {
    const res = await call('GET', `/admin/v1/audit/export?${q}`, { raw: true });
    const blob = await res.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `audit.${format === 'csv' ? 'csv' : 'jsonl'}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  } catch (e) {
    toast(e.message, 'bad');
  }
}

$('audit-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void searchAudit();
});
$('audit-next').addEventListener('click', () => void searchAudit(auditMarker));
$('audit-first').addEventListener('click', () => void searchAudit());
$('audit-csv').addEventListener('click', () => void exportAudit('csv'));
$('audit-json').addEventListener('click', () => void exportAudit('json'));

function fillProjects() {
  const sel = $('audit-project');
  sel.length = 1;
  for (const [id, name] of Object.entries(auth.projects)) {
    const o = document.createElement('option');
    o.value = id;
    o.textContent = name;
    sel.append(o);
  }
}

// ---- recordings

async function loadRecordings() {
  if (!auth) return;
  const all = [];
  const failures = [];
  for (const project of Object.keys(auth.tokens)) {
    try {
      const r = await call('GET', `/v1/${encodeURIComponent(project)}/recordings?limit=50`, { project });
      for (const rec of r.recordings) all.push(rec);
    } catch (e) {
      failures.push(e.message);
    }
  }
  all.sort((a, b) => String(b.started).localeCompare(String(a.started)));
  const rows = $('recordings-rows');
  rows.textContent = '';
  for (const r of all) {
    const tr = document.createElement('tr');
    tr.dataset.recordingId = r.id;
    tr.dataset.sessionId = r.session_id;
    cell(tr, when(r.started));
    cell(tr, cards.get(r.server_id)?.server.name ?? r.server_id).title = r.server_id;
    cell(tr, r.session_id.slice(0, 8)).title = r.session_id;
    cell(tr, `${Math.round((r.duration_ms ?? 0) / 1000)} s`, 'num');
    cell(tr, formatBytes(r.bytes), 'num');
    cell(tr, t(r.keystrokes ? 'yes' : 'no'));
    const actions = cell(tr, '');
    const play = document.createElement('button');
    play.type = 'button';
    play.className = 'play-recording';
    play.textContent = t('recordings.play');
    play.addEventListener('click', () => openPlayback(r.project_id, r.id));
    actions.append(play);
    rows.append(tr);
  }
  labelCells(rows);
  $('recordings-empty').hidden = all.length > 0;
  if (failures.length) toast(failures[0], 'bad');
}

// ---- start

function stopTimers() {
  clearTimeout(thumbTimer);
  clearTimeout(sessionsTimer);
}

function start() {
  setState('ready', { user: auth.user, domain: auth.domain });
  fillProjects();
  showView(view);
  void loadServers();
}

if (auth?.tokens && auth.home) {
  // A denied sign-in was kept only to say so: check again (an administrator may have added the user).
  void call('GET', '/admin/v1/servers?limit=1').then(() => start(), (e) => {
    if (e.status === 403) setState('denied');
    else if (e.status !== 401) start();
  });
} else {
  setState('login');
}
