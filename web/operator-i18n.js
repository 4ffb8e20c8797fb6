// The operator page's strings in English and Simplified Chinese (the URL's `lang`, as the console
// page). Pure data and functions, no DOM: the unit tests check that both languages have every key.
import { translateIn } from './i18n.js';

export { pickLang, HTML_LANG } from './i18n.js';

export const OPERATOR_STRINGS = Object.freeze({
  en: Object.freeze({
    'title': 'Console operations',
    'lang.other': '中文',
    'nav.servers': 'Servers',
    'nav.sessions': 'Live sessions',
    'nav.audit': 'Audit',
    'nav.recordings': 'Recordings',
    'btn.signout': 'Sign out',
    'state.login': 'Signed out',
    'state.signing-in': 'Signing in…',
    'state.ready': 'Signed in as {user} ({domain})',
    'state.denied': 'Not an administrator',
    'login.title': 'Sign in with an IAM user of your account',
    'login.domain': 'Account (domain)',
    'login.user': 'User name',
    'login.password': 'Password',
    'login.project': 'Project (name or id)',
    'login.submit': 'Sign in',
    'login.failed': 'Signing in failed: check the account, user name, password and project.',
    'login.throttled': 'Too many attempts. Wait a minute and try again.',
    'login.expired': 'Your sign-in expired. Sign in again.',
    'login.note': 'The page keeps its sign-in in this tab only, never in a link; the password is not kept.',
    'denied.title': 'This page is for domain administrators',
    'denied.text': 'You signed in, but your user is not in the administrators group (admin) of its account, so the admin API refuses it. Ask an administrator of your account to add you, or open consoles through the API.',
    'servers.empty': 'No servers.',
    'servers.more': 'More servers',
    'servers.refresh': 'Refresh',
    'server.open': 'Open console',
    'server.open-serial': 'Open serial console',
    'server.opening': 'Opening…',
    'server.project': 'Project {project}',
    'thumb.loading': 'Loading the screen…',
    'thumb.stopped': 'Not running: no screen',
    'thumb.no-access': 'No token for this project',
    'thumb.failed': 'No screen: {message}',
    'thumb.throttled': 'Screenshot limit reached; retrying later',
    'thumb.alt': 'Screen of {server}',
    'thumb.updated': 'Updated {time}',
    'sessions.empty': 'No live sessions.',
    'col.server': 'Server',
    'col.user': 'User',
    'col.client': 'Client address',
    'col.node': 'Node',
    'col.started': 'Started',
    'col.bytes': 'Bytes to client / to server',
    'col.actions': '',
    'col.time': 'Time',
    'col.kind': 'Record',
    'col.outcome': 'Outcome',
    'col.session': 'Session',
    'col.actor': 'Who',
    'col.detail': 'Detail',
    'col.duration': 'Duration',
    'col.size': 'Size',
    'col.keys': 'Keys',
    'session.end': 'End session',
    'end.title': 'End this session',
    'end.text': 'The user’s console closes and shows your reason. It is kept in the audit trail.',
    'end.reason': 'Reason (shown to the user)',
    'end.confirm': 'End session',
    'end.cancel': 'Cancel',
    'end.done': 'Session ended.',
    'audit.server': 'Server id',
    'audit.project': 'Project',
    'audit.any': 'Any',
    'audit.user': 'User id',
    'audit.ak': 'Access key',
    'audit.client': 'Client address',
    'audit.kind': 'Record',
    'audit.outcome': 'Outcome',
    'audit.from': 'From',
    'audit.to': 'To',
    'audit.limit': 'Per page',
    'audit.search': 'Search',
    'audit.next': 'Older records',
    'audit.first': 'Newest',
    'audit.export-csv': 'Export CSV',
    'audit.export-json': 'Export JSON',
    'audit.empty': 'No matching records.',
    'audit.play': 'Play recording',
    'audit.no-recording': 'No recording of this session.',
    'kind.issued': 'Console URL issued',
    'kind.connected': 'Session opened',
    'kind.rejected': 'Refused',
    'kind.closed': 'Session closed',
    'kind.revoked': 'Revoked',
    'kind.ak-locked': 'Access key locked',
    'kind.ak-unlocked': 'Access key unlocked',
    'kind.operator': 'Operator action',
    'outcome.ok': 'OK',
    'outcome.refused': 'Refused',
    'recordings.empty': 'No recordings.',
    'recordings.play': 'Play',
    'yes': 'yes',
    'no': 'no',
    'error.http': 'The service answered {status}: {message}',
    'error.network': 'The service could not be reached.',
    'error.popup': 'The browser blocked the new tab: allow pop-ups for this page.',
  }),
  zh: Object.freeze({
    'title': '控制台运维',
    'lang.other': 'English',
    'nav.servers': '云服务器',
    'nav.sessions': '在线会话',
    'nav.audit': '审计',
    'nav.recordings': '录像',
    'btn.signout': '退出登录',
    'state.login': '未登录',
    'state.signing-in': '正在登录…',
    'state.ready': '已登录：{user}（{domain}）',
    'state.denied': '不是管理员',
    'login.title': '使用账号下的 IAM 用户登录',
    'login.domain': '账号（帐户名）',
    'login.user': '用户名',
    'login.password': '密码',
    'login.project': '项目（名称或 ID）',
    'login.submit': '登录',
    'login.failed': '登录失败：请检查账号、用户名、密码和项目。',
    'login.throttled': '尝试次数过多，请稍等一分钟后重试。',
    'login.expired': '登录已过期，请重新登录。',
    'login.note': '登录信息只保存在此标签页中，不会出现在链接里；不保存密码。',
    'denied.title': '此页面仅供账号管理员使用',
    'denied.text': '您已登录，但您的用户不在其账号的管理员用户组（admin）中，管理 API 拒绝了请求。请联系账号管理员将您加入，或通过 API 打开控制台。',
    'servers.empty': '没有云服务器。',
    'servers.more': '更多云服务器',
    'servers.refresh': '刷新',
    'server.open': '打开控制台',
    'server.open-serial': '打开串口控制台',
    'server.opening': '正在打开…',
    'server.project': '项目 {project}',
    'thumb.loading': '正在加载屏幕…',
    'thumb.stopped': '未运行：没有屏幕',
    'thumb.no-access': '没有此项目的令牌',
    'thumb.failed': '无法获取屏幕：{message}',
    'thumb.throttled': '已达截图次数上限，稍后重试',
    'thumb.alt': '{server} 的屏幕',
    'thumb.updated': '更新于 {time}',
    'sessions.empty': '没有在线会话。',
    'col.server': '云服务器',
    'col.user': '用户',
    'col.client': '客户端地址',
    'col.node': '节点',
    'col.started': '开始时间',
    'col.bytes': '发往客户端 / 发往服务器的字节数',
    'col.actions': '',
    'col.time': '时间',
    'col.kind': '记录',
    'col.outcome': '结果',
    'col.session': '会话',
    'col.actor': '操作者',
    'col.detail': '详情',
    'col.duration': '时长',
    'col.size': '大小',
    'col.keys': '按键',
    'session.end': '结束会话',
    'end.title': '结束此会话',
    'end.text': '用户的控制台将关闭并显示您填写的原因，原因会记录在审计日志中。',
    'end.reason': '原因（将显示给用户）',
    'end.confirm': '结束会话',
    'end.cancel': '取消',
    'end.done': '会话已结束。',
    'audit.server': '云服务器 ID',
    'audit.project': '项目',
    'audit.any': '全部',
    'audit.user': '用户 ID',
    'audit.ak': '访问密钥',
    'audit.client': '客户端地址',
    'audit.kind': '记录',
    'audit.outcome': '结果',
    'audit.from': '起始时间',
    'audit.to': '结束时间',
    'audit.limit': '每页条数',
    'audit.search': '搜索',
    'audit.next': '更早的记录',
    'audit.first': '最新',
    'audit.export-csv': '导出 CSV',
    'audit.export-json': '导出 JSON',
    'audit.empty': '没有符合条件的记录。',
    'audit.play': '播放录像',
    'audit.no-recording': '此会话没有录像。',
    'kind.issued': '已签发控制台地址',
    'kind.connected': '会话已建立',
    'kind.rejected': '已拒绝',
    'kind.closed': '会话已关闭',
    'kind.revoked': '已撤销',
    'kind.ak-locked': '访问密钥已锁定',
    'kind.ak-unlocked': '访问密钥已解锁',
    'kind.operator': '管理操作',
    'outcome.ok': '成功',
    'outcome.refused': '已拒绝',
    'recordings.empty': '没有录像。',
    'recordings.play': '播放',
    'yes': '是',
    'no': '否',
    'error.http': '服务返回 {status}：{message}',
    'error.network': '无法连接到服务。',
    'error.popup': '浏览器阻止了新标签页：请允许此页面弹出窗口。',
  }),
});

/**
 * @param {'en' | 'zh'} lang
 * @param {string} key
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function t(lang, key, vars = {}) {
  return translateIn(OPERATOR_STRINGS, lang, key, vars);
}

/**
 * The audit filters of the form as the admin API's query (empty fields left out; `datetime-local`
 * values, which have no zone, read as local time and sent as ISO 8601 UTC).
 *
 * @param {Record<string, string>} fields
 * @returns {URLSearchParams}
 */
export function auditQuery(fields) {
  const q = new URLSearchParams();
  for (const [k, raw] of Object.entries(fields)) {
    const v = String(raw ?? '').trim();
    if (v === '') continue;
    if (k === 'from' || k === 'to') {
      const d = new Date(v);
      if (!Number.isNaN(d.getTime())) q.set(k, d.toISOString());
    } else {
      q.set(k, v);
    }
  }
  return q;
}

/** Bytes as text (1.5 KiB, 2.0 MiB). @param {number} n */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(n || 0))} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
