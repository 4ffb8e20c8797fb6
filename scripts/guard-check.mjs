#!/usr/bin/env node
// Removes each security guard in turn from the compiled code (dist/) and runs the tests that
// claim to hold it: every run must FAIL. A guard whose removal leaves its tests green is a
// promise without a test. Restores every file afterwards. Run after `npm run build`.
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const T = (...names) => names.map((n) => `dist/test/${n}.test.js`);

/** [promise, compiled file, code to remove, what replaces it, tests that must fail]. */
const GUARDS = [
  ['Origin allow-list before the upgrade', 'src/proxy/proxy-server.js', '!this.allowedOrigins.has(origin)', 'false', T('unit/proxy/console-proxy')],
  ['token consumed exactly once', 'src/proxy/proxy-server.js', 'const consumed = await this.deps.tokens.consume(presented ?? token, this.deps.config.nodeId);', 'const consumed = { ok: true, token: rec };', T('unit/proxy/console-proxy')],
  ['target re-checked at connect (CVE-2013-0335)', 'src/proxy/proxy-server.js', 'if (!usable(server, consumed.token))', 'if (!server)', T('unit/proxy/console-proxy')],
  ['unknown-token throttle per address', 'src/proxy/proxy-server.js', 'if (this.failedTokens.blocked(addr))\n                return this.refuse(socket, R.throttled', 'if (false)\n                return this.refuse(socket, R.throttled', T('unit/proxy/session-limits')],
  ['idle timeout', 'src/proxy/proxy-server.js', 'else if (idleMs > 0 && now - s.lastInputAt >= idleMs)', 'else if (false)', T('unit/proxy/session-limits')],
  ['maximum session duration', 'src/proxy/proxy-server.js', 'if (maxMs > 0 && now - s.startedAt >= maxMs)', 'if (false)', T('unit/proxy/session-limits')],
  ['browser offered security type None only', 'src/proxy/console-session.js', 'securityTypes: [SecurityType.None]', 'securityTypes: [SecurityType.VncAuthentication, SecurityType.None], password: \'x\'', T('unit/proxy/console-proxy')],
  ['desktop name from the inventory, never the backend', 'src/proxy/console-session.js', '{ ...init, name: this.info.serverName }', 'init', T('unit/proxy/console-proxy')],
  ['no query string in the access log', 'src/api/api-server.js', 'path: pathOnly(req.url)', 'path: req.url', T('unit/api/log-redaction')],
  ['secret keys sealed at rest', 'src/identity/identity-service.js', 'skSealed: this.box.seal(sk, `sk:${ak}`)', 'skSealed: sk', T('unit/tokens/console-tokens', 'unit/api/huawei-sdk')],
  ['only token hashes stored', 'src/tokens/console-token-service.js', 'hash: consoleTokenHash(token), serverId', 'hash: token, serverId', T('unit/tokens/console-tokens')],
  ['(AK, address) locked after repeated failures', 'src/identity/identity-service.js', 'if (lockedFor > 0)', 'if (false)', T('unit/api/error-table', 'unit/api/ak-lockout')],
  ['the lock is per (AK, source address)', 'src/identity/identity-service.js', 'const address = req.sourceAddress;', "const address = '*';", T('unit/api/error-table', 'unit/api/ak-lockout')],
  ['unknown AKs counted and locked like known ones', 'src/identity/identity-service.js', 'if (!good || !key) {', 'if (!key) throw new AuthError(\'AUTH_INVALID\', `${AUTH_PREFIX}verify aksk signature fail`);\n        if (!good) {', T('unit/api/ak-lockout')],
  ['signed body: an X-Sdk-Content-Sha256 header never replaces the body\'s hash unchecked', 'src/identity/identity-service.js', 'const payloadHash = signedPayloadHash(req, signed);', "const payloadHash = req.header('x-sdk-content-sha256') ?? signedPayloadHash(req, signed);", T('unit/api/signed-body', 'unit/fuzz/sdk-signer')],
  ['signed body: X-Sdk-Content-Sha256 used only when signed', 'src/identity/identity-service.js', 'if (!signed.includes(CONTENT_SHA))', 'if (req.header(CONTENT_SHA) === undefined)', T('unit/api/signed-body')],
  ['signed body: a signed X-Sdk-Content-Sha256 is the hash of the body received', 'src/identity/identity-service.js', 'if (claimed.toLowerCase() !== bodyHash)', 'if (false)', T('unit/api/signed-body')],
  ['IAM token details for the same user only', 'src/identity/identity-service.js', 'if (caller.userId === tokenUser.id)\n            return;', 'return;', T('unit/api/iam-tokens')],
  ['another user\'s IAM token: only an administrator of its domain', 'src/identity/identity-service.js', 'if (caller.admin && caller.domainId === tokenUser.domainId)', 'if (true)', T('unit/api/iam-admin-auth')],
  ['administration for domain administrators only', 'src/identity/identity-service.js', 'if (!caller.admin || caller.domainId !== domainId)', 'if (false)', T('unit/api/iam-admin-auth', 'unit/api/iam-sdk-lifecycle')],
  ['an inactive access key is refused', 'src/identity/identity-service.js', "if ((key.status ?? 'active') === 'inactive')", 'if (false)', T('unit/api/iam-sdk-lifecycle')],
  ['a disabled user\'s keys are refused', 'src/identity/identity-service.js', "if (user.enabled === false)\n            throw new AuthError('AUTH_INVALID'", "if (false)\n            throw new AuthError('AUTH_INVALID'", T('unit/api/iam-sdk-lifecycle')],
  ['a disabled user\'s IAM tokens are refused', 'src/identity/identity-service.js', "if (user.enabled === false)\n            throw new AuthError('AUTH_TOKEN_INVALID'", "if (false)\n            throw new AuthError('AUTH_TOKEN_INVALID'", T('unit/api/iam-sdk-lifecycle')],
  ['a disabled user cannot log in', 'src/identity/identity-service.js', "if (user.enabled === false)\n            throw new AuthError('AUTH_INVALID', 'The user is disabled.');", '', T('unit/api/iam-sdk-lifecycle')],
  ['temporary credentials: their signed security token, until they expire', 'src/identity/identity-service.js', 'this.checkTemporary(key, req, signed, now);', ';', T('unit/api/iam-sdk-lifecycle')],
  ['Huawei\'s limit of 2 permanent keys per user', 'src/identity/iam-admin-service.js', 'insertPermanentAccessKey(key, MAX_PERMANENT_KEYS)', 'insertPermanentAccessKey(key, 1000)', T('unit/api/iam-sdk-lifecycle', 'unit/cli/identity-lifecycle')],
  ['unused console URLs of a revoked credential are revoked', 'src/identity/iam-admin-service.js', "await this.consoleTokens.revokeIssuedConsoleTokens(by, 'credential-revoked', at);", '', T('unit/proxy/credential-revoked')],
  ['consoles of a revoked credential close on every proxy (change feed)', 'src/proxy/proxy-server.js', "if (ch.kind === 'credential-revoked') {", 'if (false) {', T('unit/proxy/credential-revoked')],
  ['login failures per address', 'src/identity/login-throttle.js', 'if (addressFor > 0)', 'if (false)', T('unit/api/login-throttle')],
  ['login places per address', 'src/util/concurrency-gate.js', 'if (mine >= this.opts.maxPerKey)', 'if (false)', T('unit/api/login-throttle', 'unit/util/concurrency-gate')],
  ['signature time skew', 'src/identity/identity-service.js', 'if (Math.abs(now - t) > this.opts.maxSkewMs) {', 'if (false) {', T('unit/api/error-table')],
  ['another project\'s server is not found', 'src/tokens/remote-console-service.js', 'if (!server || server.projectId !== projectId)', 'if (!server)', T('unit/api/huawei-sdk', 'unit/api/error-table')],
  ['tokens revoked when a server changes', 'src/inventory/inventory-service.js', 'await this.tokens.revokeServerConsoleTokens(s.id, reason, this.clock.now());', '', T('unit/tokens/console-tokens')],
  ['a master key that is not the store\'s refuses to start', 'src/secrets/key-check.js', 'if (!accepts(box, checks))\n            throw refuse(checks);', '', T('unit/secrets/key-check')],
  ['a key that opens no stored secret is not recorded as the store\'s', 'src/secrets/key-check.js', 'if (secrets.length > 0 && readable === 0) {', 'if (false) {', T('unit/secrets/key-check')],
  ['a missing key file never becomes a new key for a store that holds secrets', 'src/app.js', 'if (held)\n            throw new MasterKeyError', 'if (false)\n            throw new MasterKeyError', T('unit/secrets/key-check')],
  ['commands other than serve and init create no key', 'src/app.js', "if (mode === 'existing')\n            throw new MasterKeyError", "if (false)\n            throw new MasterKeyError", T('unit/cli/creation')],
  ['a real serve refuses a store holding the demo\'s objects', 'src/cli/demo-mode.js', 'if (!demoProject)\n            return;\n        throw new ConflictError(`the store', 'if (true)\n            return;\n        throw new ConflictError(`the store', T('unit/cli/demo-apart')],
  ['a reloaded key ring must seal with a key of the store', 'src/app.js', 'if (!accepts(candidate, checks)) {', 'if (false) {', T('unit/secrets/key-rotation')],
  ['a rotation retires no key while a secret opens with no key of the ring', 'src/secrets/key-rotation.js', 'if (unreadable.length > 0) {', 'if (false) {', T('unit/secrets/key-rotation')],
  ['a rotation retires the old keys only after a pass found nothing left to re-seal', 'src/secrets/key-rotation.js', 'if (old === 0) {', 'if (true) {', T('unit/secrets/key-rotation')],
  ['re-sealing writes only rows that still hold what was read', 'src/store/sqlite/sqlite-key-check-store.js', ' AND ${r.column} = ?`).run(c.to, r.id, c.from)', '`).run(c.to, r.id)', T('unit/store/sqlite-store')],
  ['a backup file is created 0600', 'src/store/sqlite/sqlite-backup.js', "closeSync(openSync(tmp, 'wx', 0o600));", "closeSync(openSync(tmp, 'wx', 0o644));", T('unit/cli/backup-restore')],
  ['restore checks that the master key opens the backup before writing', 'src/cli/backup-command.js', 'if (!(await keyOpens(backup.keyChecks, box))) {', 'if (false) {', T('unit/cli/backup-restore')],
  ['page pre-checks log a token reference, never the token', 'src/proxy/proxy-server.js', 'tokenRef: tokenRef(token), server: peek.record.serverId', 'tokenRef: token, server: peek.record.serverId', T('unit/log/log-lines')],
  ['readiness: the master key that seals must be a key of the store', 'src/app.js', 'if (!accepts(services.box, checks)) {', 'if (false) {', T('unit/proxy/readiness')],
  ['readiness: a proxy at its session cap is not ready', 'src/proxy/proxy-server.js', 'if (this.registry.full())\n            return `the console proxy is at', 'if (false)\n            return `the console proxy is at', T('unit/proxy/readiness')],
  ['TLS: forward-secret AEAD suites only', 'src/util/tls.js', 'ciphers: TLS_CIPHERS,', '', T('system/tls')],
  ['backend bytes waiting for the browser\'s handshake capped (hostile backend)', 'src/proxy/console-session.js', 'if (!this.backendPaused && reader.bufferedLength > BACKEND_EARLY_BYTES)', 'if (false)', T('unit/proxy/hostile-backend-memory')],
  ['relay: the backend is not read while the browser is behind', 'src/proxy/console-session.js', 'if (!this.backendPaused && this.ws.bufferedAmount > HIGH_WATER)', 'if (false)', T('unit/proxy/hostile-backend-memory')],
  ['relay: the browser is not read while the backend is not reading', 'src/proxy/console-session.js', 'if (!backend.write(chunk))', 'if (!backend.write(chunk) && false)', T('unit/proxy/hostile-backend-memory')],
  ['extended clipboard only to a server that announced it', 'src/proxy/console-session.js', 'type === ClientMessageType.ClientCutText && buf.readInt32BE(off + 4) < 0 && !caps.extendedClipboard', 'false', T('unit/proxy/extended-clipboard')],
  ['extended clipboard flags well formed', 'src/rfb/client-message-framer.js', 'if (problem !== undefined)', 'if (false)', T('unit/proxy/extended-clipboard', 'unit/rfb/client-message-framer')],
  ['subprotocol offers checked before the token is spent', 'src/proxy/proxy-server.js', 'if (!offersSubprotocol(req))', 'if (false)', T('unit/proxy/handshake-and-origins')],
  ['one-time VNC password: set and used one session at a time per VM', 'src/backends/drivers.js', 'return await locks.withLock(key, signal, fn);', 'return await fn();', T('unit/backends/qemu-qmp')],
  ['one-time VNC password: expired as soon as it was used', 'src/backends/drivers.js', 'await steps.expire()', 'await Promise.resolve()', T('unit/backends/qemu-qmp')],
  ['no downgrade to plain VNC for a target that requires TLS', 'src/rfb/client-handshake.js', 'if (tlsRequired) {', 'if (false) {', T('unit/rfb/vencrypt')],
  ['the hypervisor\'s certificate is verified against the configured CA', 'src/backends/backend-tls.js', 'rejectUnauthorized: true,', 'rejectUnauthorized: false,', T('system/qemu-qmp')],
  ['the hypervisor\'s certificate must carry the target\'s name', 'src/backends/backend-tls.js', 'checkServerIdentity: (_host, cert) => checkServerIdentity(serverName, cert),', 'checkServerIdentity: () => undefined,', T('system/qemu-qmp')],
  ['paths starting with // refused (CVE-2021-3654)', 'src/web/static-handler.js', "if (target.startsWith('//') || target.startsWith('/\\\\'))", 'if (false)', T('unit/web/static-handler')],
  ['the re-check at connect is the store\'s (read with the consumption), not the node cache\'s', 'src/proxy/proxy-server.js', 'if (consumed.server === undefined || !sameServer(before, consumed.server)) {', 'if (false) {', T('unit/proxy/setup-round-trips')],
  ['a change read while a session is set up still ends it', 'src/proxy/proxy-server.js', 'this.replayChanges(session, seq0);', '', T('unit/proxy/setup-round-trips')],
  ['a console token opens only its own kind of console (VNC or serial)', 'src/proxy/proxy-server.js', "if ((rec.kind ?? 'vnc') !== kind)", 'if (false)', T('unit/serial/serial-console')],
  ['only the typist\'s keys reach a serial port', 'src/serial/serial-hub.js', 'if (port.closed || port.writer !== entry || !port.conn)', 'if (port.closed || !port.conn)', T('unit/serial/serial-console')],
  ['console output needs the console permission', 'src/serial/console-output-service.js', 'this.identity.authorize(p, projectId, ACTION_VNC);', '', T('unit/serial/serial-console')],
  ['a serial viewer that falls behind pauses the port, and is ended if it stays behind', 'src/serial/serial-hub.js', 'if (port.pausedAt === 0 && port.viewers.some((e) => e.viewer.backlog() > HIGH_WATER))', 'if (false)', T('unit/serial/serial-hub')],
  ['Nova API: the URL\'s project must be the token\'s', 'src/api/nova-routes.js', 'if (p.projectId !== projectId) {', 'if (false) {', T('unit/api/nova-api')],
  ['Nova API: os-console-auth-tokens for domain administrators only', 'src/api/nova-routes.js', "deps.identity.requireDomainAdmin(p, 'os_compute_api:os-console-auth-tokens');", '', T('unit/api/nova-api')],
  ['Nova API: another project\'s server is not found', 'src/api/nova-routes.js', 'if (!s || s.projectId !== projectId)', 'if (!s)', T('unit/api/nova-api')],
  ['recording playback: a file that differs from the store\'s digest chain is tampered', 'src/recording/recording-file.js', "if (index === expected.chunks && digest.toString('hex') !== expected.digest)", 'if (false)', T('unit/recording/recording-file')],
  ['recording playback: a file with fewer chunks than the store knows is tampered', 'src/recording/recording-file.js', 'if (index < expected.chunks)\n        tampered = true;', '', T('unit/recording/recording-file')],
  ['recording files: a new recording never opens a file that exists', 'src/recording/file-appender.js', "at === 0 ? 'wx+' : 'r+'", "at === 0 ? 'w+' : 'r+'", T('unit/recording/file-appender')],
  ['recording files: every append whole on disk when it returns (the partial block too)', 'src/recording/file-appender.js', 'if (end > whole)\n            await writeAll(fd, buf, whole, end - whole, start + whole);', '', T('unit/recording/file-appender')],
  ['recording: keystrokes recorded only when the policy says so', 'src/recording/recording-service.js', 'if (this.keystrokes)\n                    this.svc.channel.append', 'if (true)\n                    this.svc.channel.append', T('unit/recording/session-recording')],
  ['recordings: the getRecording action is needed', 'src/api/recording-routes.js', 'deps.identity.authorize(req.principal, projectId, ACTION_RECORDING_GET);', '', T('unit/recording/session-recording')],
  ['recordings: another project\'s recording is not found', 'src/api/recording-routes.js', 'if (!r || r.projectId !== projectId)', 'if (!r)', T('unit/recording/session-recording')],
  ['screenshots: no image without its audit entry', 'src/api/screenshot-routes.js', "await audit('ok', {", "void audit('ok', {", T('unit/api/screenshot')],
];

// `node scripts/guard-check.mjs proxy/console-session relay`: only the guards whose promise or
// compiled file contains one of the words given (all of them without arguments).
const only = process.argv.slice(2);
const chosen = GUARDS.filter(([promise, rel]) => only.length === 0 || only.some((w) => promise.includes(w) || rel.includes(w)));
if (chosen.length === 0) {
  console.error(`no guard matches ${only.join(', ')}`);
  process.exit(1);
}

let survived = 0;
for (const [promise, rel, find, replace, tests] of chosen) {
  const file = `dist/${rel}`;
  const original = readFileSync(file, 'utf8');
  if (!original.includes(find)) {
    console.error(`✖ ${promise}: the guard's code was not found in ${file} (was it rewritten? update scripts/guard-check.mjs)`);
    survived++;
    continue;
  }
  writeFileSync(file, original.replace(find, replace));
  try {
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=dot', '--test-timeout=60000', ...tests], { encoding: 'utf8', timeout: 300_000 });
    if (r.status === 0) {
      console.error(`✖ ${promise}: removing it left ${tests.join(', ')} green`);
      survived++;
    } else {
      console.log(`✔ ${promise}: removing it fails ${tests.map((t) => t.replace(/^dist\//, '').replace(/\.js$/, '.ts')).join(', ')}`);
    }
  } finally {
    writeFileSync(file, original);
  }
}
if (survived > 0) {
  console.error(`${survived} guard(s) not held by a test`);
  process.exit(1);
}
console.log(`all ${chosen.length} guards${only.length > 0 ? ` matching ${only.join(', ')}` : ''} are held by tests`);
