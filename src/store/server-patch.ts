/** Patch application shared by the SQL adapters' updateServer (the SQL around it differs). */
import type { Server, ServerPatch } from '../inventory/types.js';

/** The server after `patch` at `now`: a new console target bumps the console revision. */
export function applyServerPatch(before: Server, patch: ServerPatch, now: number): Server {
  return {
    ...before,
    name: patch.name ?? before.name,
    status: patch.status ?? before.status,
    availabilityZone: patch.availabilityZone ?? before.availabilityZone,
    console: patch.console ?? before.console,
    consoleRevision: patch.console && !patch.keepConsoleRevision ? before.consoleRevision + 1 : before.consoleRevision,
    updatedAt: now,
  };
}
