/**
 * The one table mapping domain errors to Huawei error bodies (see the contract's error table).
 * Service errors: {"error":{"code","message"}}; gateway errors: {"error_code","error_msg","request_id"}.
 */
import { ConsoleError, type ErrorCode } from '../errors.js';

export type ErrorShape = 'service' | 'gateway';

export interface HuaweiError {
  readonly status: number;
  readonly shape: ErrorShape;
  readonly code: string;
  readonly message: string;
}

interface Row {
  status: number;
  shape: ErrorShape;
  code: string;
  /** Fixed message; when absent the domain error's own (safe) message is used. */
  message?: string;
}

const TABLE: Partial<Record<ErrorCode, Row>> = {
  AUTH_MISSING: { status: 401, shape: 'gateway', code: 'APIGW.0301' },
  AUTH_INVALID: { status: 401, shape: 'gateway', code: 'APIGW.0301' },
  AUTH_SKEW: { status: 401, shape: 'gateway', code: 'APIGW.0301' },
  AUTH_LOCKED: { status: 401, shape: 'gateway', code: 'APIGW.0301' },
  AUTH_TOKEN_INVALID: { status: 401, shape: 'gateway', code: 'APIGW.0301' },
  FORBIDDEN: { status: 403, shape: 'service', code: 'Pdp.0001' },
  PROJECT_MISMATCH: { status: 400, shape: 'service', code: 'Common.0018' },
  BODY_EMPTY: { status: 400, shape: 'service', code: 'Common.0002', message: 'The request body is empty.' },
  BODY_INVALID: { status: 400, shape: 'service', code: 'Ecs.0005' },
  VALIDATION: { status: 400, shape: 'service', code: 'Ecs.0005' },
  SERVER_NOT_FOUND: { status: 404, shape: 'service', code: 'Ecs.0114' },
  // Our extensions' other objects (recordings).
  NOT_FOUND: { status: 404, shape: 'service', code: 'Ecs.0404' },
  SERVER_NOT_ACTIVE: { status: 400, shape: 'service', code: 'Ecs.0100' },
  BODY_TOO_LARGE: { status: 413, shape: 'gateway', code: 'APIGW.0201', message: 'Request entity too large' },
  RATE_LIMITED: { status: 429, shape: 'gateway', code: 'APIGW.0308' },
  // Our extensions' backend failures (screenshots): the hypervisor's words stay in our log.
  BACKEND_UNREACHABLE: { status: 502, shape: 'service', code: 'Ecs.0502', message: 'The server\'s VNC console could not be reached.' },
  BACKEND_AUTH_FAILED: { status: 502, shape: 'service', code: 'Ecs.0502', message: 'Authentication to the server\'s VNC console failed.' },
  BACKEND_PROTOCOL: { status: 502, shape: 'service', code: 'Ecs.0502', message: 'The server\'s VNC console answered with an unexpected protocol.' },
};

/** Unknown path or method. */
export const ROUTE_NOT_FOUND: HuaweiError = { status: 404, shape: 'gateway', code: 'APIGW.0101', message: 'The API does not exist or has not been published in the environment' };
/** Anything unmapped: generic text, details only in the log. */
export const INTERNAL: HuaweiError = { status: 500, shape: 'service', code: 'Common.0001', message: 'Internal server error. Please try again later or contact the administrator.' };

export function toHuaweiError(e: unknown): HuaweiError {
  if (e instanceof ConsoleError) {
    const row = TABLE[e.code];
    if (row) return { status: row.status, shape: row.shape, code: row.code, message: row.message ?? e.message };
  }
  return INTERNAL;
}

export function huaweiBody(err: HuaweiError, requestId: string): unknown {
  return err.shape === 'gateway'
    ? { error_code: err.code, error_msg: err.message, request_id: requestId }
    : { error: { code: err.code, message: err.message } };
}
