/** Bounded fuzzing of the RFB codec: client message framer, both handshakes, handshake decoders. */
import { registerFuzzTests } from '../../fuzz/runner.js';
import { clientHandshakeTarget, framerTarget, protocolVersionTarget, serverInitTarget, serverNegotiateTarget } from '../../fuzz/rfb-codec-targets.js';

registerFuzzTests(framerTarget.name, () => framerTarget);
registerFuzzTests(clientHandshakeTarget.name, () => clientHandshakeTarget);
registerFuzzTests(serverNegotiateTarget.name, () => serverNegotiateTarget);
registerFuzzTests(protocolVersionTarget.name, () => protocolVersionTarget);
registerFuzzTests(serverInitTarget.name, () => serverInitTarget);
