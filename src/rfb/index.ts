/**
 * The RFB (VNC) protocol codec: messages, handshake steps, VNC authentication, ZRLE. No sockets:
 * callers push bytes in and get bytes out. Imports only `node:*` and the error classes.
 */
export * from './byte-reader.js';
export * from './client-handshake.js';
export * from './client-message-framer.js';
export * from './client-messages.js';
export * from './constants.js';
export * from './extended-clipboard.js';
export * from './handshake-messages.js';
export * from './pixel-format.js';
export * from './server-capability-scanner.js';
export * from './server-handshake.js';
export * from './server-messages.js';
export * from './vencrypt.js';
export * from './vnc-auth.js';
export * from './zrle-encoder.js';
