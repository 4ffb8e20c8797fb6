/** Bounded fuzzing of the console proxy against a hostile browser (after a successful token). */
import { startProxyEnv } from '../../fuzz/fuzz-env.js';
import { proxyBrowserTarget } from '../../fuzz/proxy-browser-target.js';
import { registerFuzzTestsWith } from '../../fuzz/runner.js';

registerFuzzTestsWith('proxy-browser', startProxyEnv, proxyBrowserTarget);
