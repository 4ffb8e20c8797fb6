/** Serial consoles: the store port of their output and of which node holds each port. */

/** What the store keeps of one server's serial console. */
export interface SerialOutputRecord {
  readonly serverId: string;
  /** The node holding the port (connected to it), or the last one that did. */
  readonly holder: string;
  /** Until when (epoch ms) the holder's claim lasts unless renewed; 0 when it let go. */
  readonly heldUntil: number;
  /** Byte offset just past the last byte the port ever sent (the output cursor of what is new). */
  readonly endOffset: number;
  /** The last bytes of the output (at most 1 MiB), ending at `endOffset`. */
  readonly data: Buffer;
  readonly updatedAt: number;
}

/**
 * Persistence of serial output and of the fleet-wide claim on each port: QEMU's socket chardev
 * serves one client at a time, so one node holds a port, saves its output here (every node
 * answers output calls from it), and renews its claim while it holds the port.
 */
export interface SerialOutputStore {
  /**
   * Claims (or renews) the port of `serverId` for `holder` until `heldUntil`: succeeds when no
   * node holds it, its claim ran out at `now`, or `holder` holds it already. Creates the row
   * (no output yet) on the first claim; keeps the output of an earlier holder.
   */
  claimSerialPort(serverId: string, holder: string, now: number, heldUntil: number): Promise<boolean>;
  /** Saves the output as the holder, renewing its claim; false when another node holds the port now. */
  saveSerialOutput(serverId: string, holder: string, out: { endOffset: number; data: Buffer; now: number; heldUntil: number }): Promise<boolean>;
  /** Lets go of the port (its output stays). */
  releaseSerialPort(serverId: string, holder: string): Promise<void>;
  getSerialOutput(serverId: string): Promise<SerialOutputRecord | null>;
  /** Forgets a server's output (the server was deleted). */
  deleteSerialOutput(serverId: string): Promise<void>;
}
