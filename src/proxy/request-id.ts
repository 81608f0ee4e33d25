/**
 * Request IDs: a client's X-Request-ID is kept when it looks sane (so a trace
 * started upstream of fulcrum continues), otherwise fulcrum makes one. Made
 * IDs are a random per-process prefix plus a counter: unique, cheap (no
 * crypto call per request) and sortable within a process.
 */
import { randomBytes } from 'node:crypto';

const VALID_ID = /^[A-Za-z0-9._:\-]{1,128}$/;
const PREFIX = randomBytes(6).toString('hex');
let counter = 0;
const ZEROS = ['', '0', '00', '000', '0000', '00000', '000000', '0000000'];

export function nextRequestId(fromClient: string | undefined): string {
  if (fromClient !== undefined && VALID_ID.test(fromClient)) return fromClient;
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  const hex = counter.toString(16);
  return hex.length >= 8 ? PREFIX + hex : PREFIX + ZEROS[8 - hex.length] + hex; // padStart(8, '0') without its garbage
}
