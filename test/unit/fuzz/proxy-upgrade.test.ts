/** Bounded fuzzing of the console proxy's WebSocket upgrade (tokens, headers, targets). */
import { proxyUpgradeTarget, startUpgradeEnv } from '../../fuzz/proxy-upgrade-target.js';
import { registerFuzzTestsWith } from '../../fuzz/runner.js';

registerFuzzTestsWith('proxy-upgrade', startUpgradeEnv, proxyUpgradeTarget);
