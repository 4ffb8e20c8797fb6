/**
 * Bounded fuzzing of the SDK-HMAC-SHA256 parsers (Authorization, CanonicalQuery, CanonicalURI,
 * X-Sdk-Date) and of the verifier's binding of the body to the signature.
 */
import { startSignerEnv } from '../../fuzz/fuzz-env.js';
import { registerFuzzTests, registerFuzzTestsWith } from '../../fuzz/runner.js';
import { authorizationTarget, bodyBindingTarget, canonicalQueryTarget, canonicalUriTarget, sdkDateTarget } from '../../fuzz/sdk-signer-targets.js';

registerFuzzTests(authorizationTarget.name, () => authorizationTarget);
registerFuzzTests(canonicalQueryTarget.name, () => canonicalQueryTarget);
registerFuzzTests(canonicalUriTarget.name, () => canonicalUriTarget);
registerFuzzTests(sdkDateTarget.name, () => sdkDateTarget);
registerFuzzTestsWith('sdk-body-binding', startSignerEnv, bodyBindingTarget);
