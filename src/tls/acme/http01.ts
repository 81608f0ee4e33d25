/**
 * Answering ACME HTTP-01 challenges on plain-HTTP servers.
 *
 * The ACME client (in the supervisor with several workers, or in the single
 * process) writes one file per token into `<acme_storage>/http-01/`, so any
 * worker can answer. A server that receives the CA's requests gets its
 * location matcher wrapped: a request for `/.well-known/acme-challenge/TOKEN`
 * whose token file exists is served from that directory, before the
 * server's own locations and before a server-level `return` or
 * `redirect_https`; anything else goes where it went before (so an external
 * certbot's webroot location keeps working beside it). Only requests under
 * that prefix pay the one `stat`; other requests see one `startsWith`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocationMatcher, type LocationMatch } from '../../router/locations.js';
import type { EffectiveSettings, LocationRuntime, ReturnRuntime } from '../../runtime/table.js';
import { ACME_CHALLENGE_PREFIX } from './spec.js';

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export class AcmeChallengeLocations extends LocationMatcher<LocationRuntime> {
  private readonly challenge: LocationMatch<LocationRuntime>;
  private readonly otherwise: LocationMatch<LocationRuntime> | undefined;

  constructor(
    private readonly tokenDir: string,
    private readonly inner: LocationMatcher<LocationRuntime>,
    settings: EffectiveSettings,
    /** The server-level return it replaces (Exchange applies it when this matcher returns it). */
    serverReturn: ReturnRuntime | undefined,
  ) {
    super([]);
    this.challenge = {
      captures: null,
      value: {
        label: `location ^~ ${ACME_CHALLENGE_PREFIX} (acme)`,
        match: { kind: 'prefix_no_regex', pattern: ACME_CHALLENGE_PREFIX },
        settings: { ...settings, access: undefined, addHeaders: [] },
        action: { kind: 'static', files: { directory: tokenDir, alias: { prefix: ACME_CHALLENGE_PREFIX } } },
      },
    };
    this.otherwise =
      serverReturn === undefined
        ? undefined
        : {
            captures: null,
            // A server-level return comes before access rules and body limits (nginx's rewrite phase): keep it so.
            value: { label: 'server return', match: { kind: 'prefix', pattern: '/' }, settings: { ...settings, access: undefined, clientMaxBodySize: 0 }, action: { kind: 'return', ret: serverReturn } },
          };
  }

  override find(uri: string): LocationMatch<LocationRuntime> | undefined {
    if (uri.startsWith(ACME_CHALLENGE_PREFIX)) {
      const token = uri.slice(ACME_CHALLENGE_PREFIX.length);
      if (TOKEN.test(token) && fs.existsSync(path.join(this.tokenDir, token))) return this.challenge;
    }
    return this.otherwise ?? this.inner.find(uri);
  }
}
