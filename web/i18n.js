// The page's strings in English and Simplified Chinese, chosen by the URL's `lang` parameter
// (Huawei's console URLs carry `lang=EN` or `lang=ZH`). Pure data and functions, no DOM: the
// unit tests import this file in Node and check that both languages have every key.

/** Languages the page speaks; the first is the default. */
export const LANGS = Object.freeze(['en', 'zh']);

/** Value of <html lang> for each language. */
export const HTML_LANG = Object.freeze({ en: 'en', zh: 'zh-CN' });

/**
 * The page language for a `lang` query value: `ZH`, `zh`, `zh-CN`, `zh_cn` give Chinese;
 * anything else (missing, `EN`, unknown) gives English.
 *
 * @param {string | null | undefined} raw
 * @returns {'en' | 'zh'}
 */
export function pickLang(raw) {
  const v = String(raw ?? '').trim().toLowerCase().replace('_', '-');
  return v === 'zh' || v === 'zh-cn' ? 'zh' : 'en';
}

export const STRINGS = Object.freeze({
  en: Object.freeze({
    'title': 'Remote console',
    'state.checking': 'Checking the console link…',
    'state.connecting': 'Connecting…',
    'state.connected': 'Connected',
    'state.failed': 'Not connected',
    'state.disconnected': 'Disconnected',
    'server.unnamed': 'Server',
    'btn.ctrl-alt-del': 'Ctrl+Alt+Del',
    'btn.ctrl-alt-del.hint': 'Send Ctrl+Alt+Del to the server',
    'btn.text': 'Paste / type text',
    'btn.text.hint': 'Send text to the server: to its clipboard, or typed as key presses',
    'btn.scale': 'Scale to window',
    'btn.fullscreen': 'Full screen',
    'btn.fullscreen.exit': 'Exit full screen',
    'btn.retry': 'Try again',
    'dialog.title': 'Send text to the server',
    'dialog.label': 'Text',
    'dialog.help': '“Paste to clipboard” puts the text on the server’s clipboard; paste it there as usual. “Type text” types it as key presses, for screens without clipboard support such as login prompts.',
    'dialog.paste': 'Paste to clipboard',
    'dialog.type': 'Type text',
    'dialog.stop': 'Stop typing',
    'dialog.close': 'Close',
    'dialog.typing': 'Typing… {done} of {total} characters',
    'dialog.skipped': '{count} characters have no key and were skipped.',
    'reason.token-missing': 'This link has no console token.',
    'reason.token-expired': 'This console link has expired.',
    'reason.token-used': 'This console link has already been used.',
    'reason.token-unknown': 'This console link is not valid.',
    'reason.server-not-active': 'The server is not running.',
    'reason.server-deleted': 'The server was deleted.',
    'reason.console-moved': 'The server’s console was moved since this link was issued.',
    'reason.link-revoked': 'This console link was revoked.',
    'reason.credential-revoked': 'The access key or user that requested this console was deactivated, deleted or disabled.',
    'reason.throttled': 'Too many attempts from your network.',
    'reason.backend-unreachable': 'The console service could not reach the server’s console.',
    'reason.backend-auth-failed': 'The console service could not log in to the server’s console.',
    'reason.backend-protocol-error': 'The server’s console answered the console service in an unexpected way.',
    'reason.server-unavailable': 'The server was stopped or deleted, or its console changed.',
    'reason.operator-ended': 'An administrator ended this session.',
    'reason.idle-timeout': 'The session was closed because there was no input for too long.',
    'reason.max-duration': 'The session reached its maximum duration.',
    'reason.proxy-shutdown': 'The console service is shutting down.',
    'reason.backend-closed': 'The server’s console closed the connection.',
    'reason.bad-client-data': 'The console service rejected data sent by this page.',
    'reason.closed': 'The session was closed.',
    'reason.serial-port-busy': 'Another node of the console service holds this server’s serial port.',
    'reason.too-slow': 'This page did not keep up with the serial console’s output.',
    'serial.title': 'Serial console',
    'serial.writer': 'You are typing',
    'serial.viewer': 'Watching: {writer} is typing',
    'serial.viewer.nobody': 'Watching: nobody is typing',
    'serial.take': 'Take over typing',
    'serial.take.hint': 'Type on this serial console; whoever typed before only watches from now on',
    'serial.copy': 'Copy',
    'serial.copy.hint': 'Copy the selected text (or select with the mouse and press Ctrl+Shift+C)',
    'serial.paste': 'Paste',
    'serial.paste.hint': 'Paste the clipboard into the serial console (or press Ctrl+Shift+V)',
    'serial.copied': 'Copied',
    'reason.security-failure': 'The console service refused the connection.',
    'reason.connect-failed': 'Could not connect to the console service.',
    'reason.connection-lost': 'The connection to the console service was lost.',
    'advice.new-url': 'Each console link works once. To open the console again, request a new remote login URL (from the API or the management console).',
    'advice.start-server': 'Make sure the server is running, then request a new remote login URL (from the API or the management console).',
    'advice.deleted': 'The server no longer exists, so there is no console to open.',
    'advice.wait': 'Wait a minute, then try again.',
    'advice.network': 'Check your network connection, then try again. If it keeps failing, request a new remote login URL (from the API or the management console).',
    'advice.later': 'Wait a moment, then request a new remote login URL (from the API or the management console).',
    'advice.operator': 'This is not a problem with your link: a new remote login URL would fail the same way. The administrator of the console service must check this server’s console settings; please contact them.',
    'detail': 'Details: {text}',
    'operator.reason': 'Reason given: {text}',
    'noscript': 'The remote console needs JavaScript.',
  }),
  zh: Object.freeze({
    'title': '远程登录',
    'state.checking': '正在检查登录链接…',
    'state.connecting': '正在连接…',
    'state.connected': '已连接',
    'state.failed': '未连接',
    'state.disconnected': '已断开',
    'server.unnamed': '云服务器',
    'btn.ctrl-alt-del': 'Ctrl+Alt+Del',
    'btn.ctrl-alt-del.hint': '向云服务器发送 Ctrl+Alt+Del',
    'btn.text': '粘贴 / 输入文本',
    'btn.text.hint': '向云服务器发送文本：放入其剪贴板，或模拟键盘输入',
    'btn.scale': '缩放至窗口',
    'btn.fullscreen': '全屏',
    'btn.fullscreen.exit': '退出全屏',
    'btn.retry': '重试',
    'dialog.title': '向云服务器发送文本',
    'dialog.label': '文本',
    'dialog.help': '“粘贴到剪贴板”将文本放入云服务器的剪贴板，然后在云服务器中照常粘贴。“输入文本”以模拟按键的方式输入，适用于不支持剪贴板的界面（如登录提示）。',
    'dialog.paste': '粘贴到剪贴板',
    'dialog.type': '输入文本',
    'dialog.stop': '停止输入',
    'dialog.close': '关闭',
    'dialog.typing': '正在输入… 已输入 {done} / {total} 个字符',
    'dialog.skipped': '有 {count} 个字符无法通过按键输入，已跳过。',
    'reason.token-missing': '该链接缺少登录令牌。',
    'reason.token-expired': '该远程登录链接已过期。',
    'reason.token-used': '该远程登录链接已被使用。',
    'reason.token-unknown': '该远程登录链接无效。',
    'reason.server-not-active': '云服务器未处于运行状态。',
    'reason.server-deleted': '云服务器已被删除。',
    'reason.console-moved': '自该链接生成以来，云服务器的控制台已变更。',
    'reason.link-revoked': '该远程登录链接已被撤销。',
    'reason.credential-revoked': '申请该控制台的访问密钥或用户已被停用、删除或禁用。',
    'reason.throttled': '来自您网络的尝试次数过多。',
    'reason.backend-unreachable': '控制台服务无法连接到云服务器的控制台。',
    'reason.backend-auth-failed': '控制台服务无法登录云服务器的控制台。',
    'reason.backend-protocol-error': '云服务器的控制台向控制台服务返回了异常的响应。',
    'reason.server-unavailable': '云服务器已关机或已删除，或其控制台已变更。',
    'reason.operator-ended': '管理员已结束本次会话。',
    'reason.idle-timeout': '长时间无操作，会话已关闭。',
    'reason.max-duration': '会话已达到最长时长。',
    'reason.proxy-shutdown': '控制台服务正在关闭。',
    'reason.backend-closed': '云服务器控制台关闭了连接。',
    'reason.bad-client-data': '控制台服务拒绝了本页面发送的数据。',
    'reason.closed': '会话已关闭。',
    'reason.serial-port-busy': '该云服务器的串口正由控制台服务的另一个节点占用。',
    'reason.too-slow': '本页面未能及时接收串口控制台的输出。',
    'serial.title': '串口控制台',
    'serial.writer': '您正在输入',
    'serial.viewer': '仅查看：{writer} 正在输入',
    'serial.viewer.nobody': '仅查看：当前无人输入',
    'serial.take': '接管输入',
    'serial.take.hint': '在此串口控制台中输入；之前输入的人此后只能查看',
    'serial.copy': '复制',
    'serial.copy.hint': '复制所选文本（或用鼠标选择后按 Ctrl+Shift+C）',
    'serial.paste': '粘贴',
    'serial.paste.hint': '将剪贴板内容粘贴到串口控制台（或按 Ctrl+Shift+V）',
    'serial.copied': '已复制',
    'reason.security-failure': '控制台服务拒绝了连接。',
    'reason.connect-failed': '无法连接到控制台服务。',
    'reason.connection-lost': '与控制台服务的连接已断开。',
    'advice.new-url': '每个登录链接只能使用一次。如需再次登录，请通过 API 或管理控制台重新获取远程登录地址。',
    'advice.start-server': '请确认云服务器处于运行状态，然后通过 API 或管理控制台重新获取远程登录地址。',
    'advice.deleted': '该云服务器已不存在，无法打开其控制台。',
    'advice.wait': '请稍等一分钟后重试。',
    'advice.network': '请检查网络连接后重试。如果仍然失败，请通过 API 或管理控制台重新获取远程登录地址。',
    'advice.later': '请稍后通过 API 或管理控制台重新获取远程登录地址。',
    'advice.operator': '这不是登录链接的问题：重新获取远程登录地址也会同样失败。需要控制台服务的管理员检查该云服务器的控制台配置，请联系管理员。',
    'detail': '详细信息：{text}',
    'operator.reason': '原因：{text}',
    'noscript': '远程登录需要启用 JavaScript。',
  }),
});

/**
 * The string for `key` in `lang` (English when missing, the key itself as a last resort), with
 * `{name}` placeholders replaced by `vars`. The result is text: callers put it in textContent.
 *
 * @param {'en' | 'zh'} lang
 * @param {string} key
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function translate(lang, key, vars = {}) {
  return translateIn(STRINGS, lang, key, vars);
}

/**
 * `translate` over another page's strings (`{ en: {...}, zh: {...} }`).
 *
 * @param {Record<string, Record<string, string>>} strings
 * @param {string} lang
 * @param {string} key
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function translateIn(strings, lang, key, vars = {}) {
  const table = strings[lang] ?? strings.en;
  const text = table[key] ?? strings.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (Object.hasOwn(vars, name) ? String(vars[name]) : m));
}
