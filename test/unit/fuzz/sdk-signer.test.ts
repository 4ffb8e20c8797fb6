/** Bounded fuzzing of the SDK-HMAC-SHA256 parsers (Authorization, CanonicalQuery, CanonicalURI, X-Sdk-Date). */
import { registerFuzzTests } from '../../fuzz/runner.js';
import { authorizationTarget, canonicalQueryTarget, canonicalUriTarget, sdkDateTarget } from '../../fuzz/sdk-signer-targets.js';

registerFuzzTests(authorizationTarget.name, () => authorizationTarget);
registerFuzzTests(canonicalQueryTarget.name, () => canonicalQueryTarget);
registerFuzzTests(canonicalUriTarget.name, () => canonicalUriTarget);
registerFuzzTests(sdkDateTarget.name, () => sdkDateTarget);
