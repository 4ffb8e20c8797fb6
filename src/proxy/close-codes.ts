/**
 * WebSocket close codes the proxy sends after the upgrade (4000-4999 are for applications,
 * RFC 6455 7.4.2). The console page maps each to a localized explanation; the reason text is
 * English, for logs and non-browser clients, and never carries token material.
 */
export const CloseCode = {
  Normal: 1000,
  BackendUnreachable: 4100,
  BackendAuthFailed: 4101,
  BackendProtocol: 4102,
  /** Serial consoles: another node of the fleet holds the server's serial port. */
  SerialPortBusy: 4103,
  Revoked: 4200,
  Killed: 4201,
  IdleTimeout: 4202,
  MaxDuration: 4203,
  ShuttingDown: 4204,
  BackendClosed: 4205,
  /** The credential (access key, IAM token) or user that requested the console was deactivated, deleted or disabled. */
  CredentialRevoked: 4210,
  BadClientData: 4400,
  /** Serial consoles: a viewer that does not read fast enough (the port is not held up for it). */
  TooSlow: 4402,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

/** Short reason keys used in audit records, logs and metric labels. */
export const CloseReasonKey: Record<CloseCodeValue, string> = {
  1000: 'client-closed',
  4100: 'backend-unreachable',
  4101: 'backend-auth-failed',
  4102: 'backend-protocol',
  4103: 'serial-port-busy',
  4200: 'revoked',
  4201: 'killed',
  4202: 'idle-timeout',
  4203: 'max-duration',
  4204: 'shutting-down',
  4205: 'backend-closed',
  4210: 'credential-revoked',
  4400: 'bad-client-data',
  4402: 'too-slow',
};
