/**
 * `new Date(ms).toISOString()`, cheaper when called many times a second (every log line, every
 * console URL's audit record): the part up to the seconds is built once per second and kept.
 */

/** Years 0000-9999: the range toISOString writes with four digits and no sign. */
const MAX_MS = 253_402_300_800_000;

let cachedSecond = Number.NaN;
/** `YYYY-MM-DDTHH:MM:SS.` of cachedSecond. */
let cachedPrefix = '';

/** The ISO 8601 form of a time in ms since the epoch, exactly as `Date.prototype.toISOString` writes it. */
export function isoTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= MAX_MS) return new Date(ms).toISOString();
  const second = ms - (ms % 1000);
  if (second !== cachedSecond) {
    cachedPrefix = new Date(second).toISOString().slice(0, 20);
    cachedSecond = second;
  }
  const frac = ms - second;
  return `${cachedPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}
