/** Bounded fuzzing of the console proxy against a hostile VNC server. */
import { startProxyEnv } from '../../fuzz/fuzz-env.js';
import { proxyBackendTarget } from '../../fuzz/proxy-backend-target.js';
import { registerFuzzTestsWith } from '../../fuzz/runner.js';

registerFuzzTestsWith('proxy-backend', startProxyEnv, proxyBackendTarget);
