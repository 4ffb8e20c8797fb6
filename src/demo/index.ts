/** The built-in demo VNC server. */
export { DemoVncServer, type DemoVncServerOptions } from './demo-vnc-server.js';
export { runDemoVnc, parseListenAddress, type RunDemoVncOptions } from './run-demo-vnc.js';
export { loadDefaultFont, parseBdf, type BitmapFont } from './bitmap-font.js';
