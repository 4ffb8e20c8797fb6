/** Bounded fuzzing of the HTTP API on a real stack: hostile methods, targets, headers and bodies. */
import { apiTarget } from '../../fuzz/api-target.js';
import { startApiEnv } from '../../fuzz/fuzz-env.js';
import { registerFuzzTestsWith } from '../../fuzz/runner.js';

registerFuzzTestsWith('api-http', startApiEnv, apiTarget);
