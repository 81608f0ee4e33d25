/**
 * nginx's limit_req (ngx_http_limit_req_module): a leaky bucket per key.
 * Each key's state is its `excess` (requests above the rate, in thousandths)
 * and when it was last updated; a request adds 1000 after the bucket leaked
 * `rate` thousandths per second since then. Over `burst` the request is
 * refused (503); within it, the part above `delay` waits until the bucket
 * has leaked that much (`nodelay`: nothing waits). The arithmetic is nginx's,
 * integer milliseconds and all, so the same traffic gets the same answers.
 *
 * Zones live as long as the process (a reload keeps their state, as nginx's
 * shared zones survive a reload) and are per worker process (nginx shares
 * them between workers). Memory is bounded by the zone's size as nginx's is:
 * about 64 bytes a key, least recently used keys dropped first.
 */
import type { Template } from '../variables/template.js';

interface KeyState {
  excess: number;
  last: number;
}

export class LimitReqZone {
  /** Insertion order is recency order: a key is moved to the end when used. */
  private readonly keys = new Map<string, KeyState>();

  constructor(
    readonly name: string,
    /** Thousandths of a request per second (nginx's ctx->rate): 10r/s is 10000. */
    public rate: number,
    public maxKeys: number,
  ) {}

  /** The excess this request would have (thousandths), or -1 when it is over `burst` (thousandths). Nothing is recorded. */
  excessFor(key: string, now: number): number {
    const state = this.keys.get(key);
    if (state === undefined) return 0;
    let ms = now - state.last;
    if (ms < -60_000) ms = 1;
    else if (ms < 0) ms = 0;
    const excess = state.excess - Math.trunc((this.rate * ms) / 1000) + 1000;
    return excess < 0 ? 0 : excess;
  }

  record(key: string, excess: number, now: number): void {
    const state = this.keys.get(key);
    if (state !== undefined) {
      this.keys.delete(key);
      state.excess = excess;
      state.last = now;
      this.keys.set(key, state);
      return;
    }
    this.keys.set(key, { excess, last: now });
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value!);
  }

  get size(): number {
    return this.keys.size;
  }
}

const ZONES = new Map<string, LimitReqZone>();

/** The process's zone of that name, created or resized for this configuration. */
export function limitReqZone(name: string, rate: number, sizeBytes: number): LimitReqZone {
  const maxKeys = Math.max(1, Math.floor(sizeBytes / 64));
  let zone = ZONES.get(name);
  if (zone === undefined) ZONES.set(name, (zone = new LimitReqZone(name, rate, maxKeys)));
  zone.rate = rate;
  zone.maxKeys = maxKeys;
  return zone;
}

/** One `limit_req` line in force at a location. */
export interface LimitReqRule {
  zone: LimitReqZone;
  key: Template;
  /** Thousandths of a request. */
  burst: number;
  /** Thousandths of a request; Infinity for `nodelay`. */
  delay: number;
}

/** What limit_req says about a request. */
export interface LimitReqVerdict {
  /** Refused by this rule's zone (the request is not counted anywhere). */
  refusedBy: LimitReqRule | undefined;
  /** The excess (thousandths) that made the refusal, for the log. */
  excess: number;
  /** How long the request must wait, in ms (0: none). */
  delayMs: number;
}

/**
 * Checks every rule; the request is counted in every zone only if none
 * refuses it, and waits as long as the strictest rule says.
 */
export function checkLimitReq(rules: readonly LimitReqRule[], keyOf: (rule: LimitReqRule) => string, now: number): LimitReqVerdict {
  const keys: string[] = [];
  const excesses: number[] = [];
  let delayMs = 0;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    const key = keyOf(rule);
    keys.push(key);
    // nginx: an empty key is not limited.
    if (key === '') {
      excesses.push(-1);
      continue;
    }
    const excess = rule.zone.excessFor(key, now);
    if (excess > rule.burst) return { refusedBy: rule, excess, delayMs: 0 };
    excesses.push(excess);
    if (excess > rule.delay) delayMs = Math.max(delayMs, Math.trunc(((excess - rule.delay) * 1000) / rule.zone.rate));
  }
  for (let i = 0; i < rules.length; i++) if (excesses[i]! >= 0) rules[i]!.zone.record(keys[i]!, excesses[i]!, now);
  return { refusedBy: undefined, excess: 0, delayMs };
}
