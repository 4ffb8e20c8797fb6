/** Bounded fuzzing of the HTTP API on a real stack: hostile methods, targets, headers and bodies. */
import { after, before } from 'node:test';
import { apiTarget } from '../../fuzz/api-target.js';
import { startApiEnv, type ApiEnv } from '../../fuzz/fuzz-env.js';
import { registerFuzzTests } from '../../fuzz/runner.js';

let env: ApiEnv;
before(async () => {
  env = await startApiEnv();
});
after(() => env.stop());

registerFuzzTests('api-http', () => apiTarget(env));
