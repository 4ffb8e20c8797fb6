// The playback page's strings in English and Simplified Chinese (the URL's `lang`, as the
// console page). Pure data: the unit tests check both languages have every key.
export { pickLang, HTML_LANG } from './i18n.js';

export const PLAYBACK_STRINGS = Object.freeze({
  en: Object.freeze({
    'title': 'Session recording',
    'state.login': 'Sign in to play this recording',
    'state.loading': 'Loading the recording…',
    'state.ready': 'Ready',
    'state.playing': 'Playing',
    'state.paused': 'Paused',
    'state.ended': 'End of the recording',
    'state.failed': 'The recording cannot be played',
    'btn.play': 'Play',
    'btn.pause': 'Pause',
    'label.speed': 'Speed',
    'btn.scale-window': 'Scale to window',
    'label.timeline': 'Position in the recording',
    'login.domain': 'Account (domain)',
    'login.user': 'User name',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.failed': 'Signing in failed: check the account, user name and password.',
    'marker.pointer': 'Mouse click',
    'marker.key': 'Key press',
    'marker.clipboard': 'Clipboard text sent',
    'legend': 'Markers: mouse clicks, key presses (when recorded), clipboard text.',
    'info': '{server} · started {started} · {duration}',
    'integrity.verified': 'Integrity verified',
    'integrity.verified-with-tail': 'Integrity verified (the end was written after the last index update)',
    'integrity.tampered': 'Warning: this recording was altered or cut short after it was written',
    'error.missing': 'This page needs #project=<id>&recording=<id> in its address.',
    'error.http': 'The service answered {status}: {message}',
    'error.network': 'The service could not be reached.',
    'error.empty': 'Nothing was recorded in this session.',
  }),
  zh: Object.freeze({
    'title': '会话录像',
    'state.login': '请登录后播放此录像',
    'state.loading': '正在加载录像…',
    'state.ready': '就绪',
    'state.playing': '正在播放',
    'state.paused': '已暂停',
    'state.ended': '录像已结束',
    'state.failed': '无法播放此录像',
    'btn.play': '播放',
    'btn.pause': '暂停',
    'label.speed': '速度',
    'btn.scale-window': '缩放至窗口',
    'label.timeline': '录像进度',
    'login.domain': '账号（帐户名）',
    'login.user': '用户名',
    'login.password': '密码',
    'login.submit': '登录',
    'login.failed': '登录失败：请检查账号、用户名和密码。',
    'marker.pointer': '鼠标点击',
    'marker.key': '按键',
    'marker.clipboard': '发送剪贴板文本',
    'legend': '标记：鼠标点击、按键（如已录制）、剪贴板文本。',
    'info': '{server} · 开始于 {started} · {duration}',
    'integrity.verified': '完整性已校验',
    'integrity.verified-with-tail': '完整性已校验（末尾部分写入于最后一次索引更新之后）',
    'integrity.tampered': '警告：此录像在写入后被修改或截断',
    'error.missing': '页面地址中需要 #project=<id>&recording=<id>。',
    'error.http': '服务返回 {status}：{message}',
    'error.network': '无法连接到服务。',
    'error.empty': '此会话没有录制到任何内容。',
  }),
});

/**
 * @param {'en' | 'zh'} lang
 * @param {string} key
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function t(lang, key, vars = {}) {
  const table = PLAYBACK_STRINGS[lang] ?? PLAYBACK_STRINGS.en;
  const text = table[key] ?? PLAYBACK_STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (Object.hasOwn(vars, name) ? String(vars[name]) : m));
}
