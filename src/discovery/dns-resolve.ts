/**
 * nginx's `server NAME resolve` and `server NAME service=S resolve`, as data:
 * one config server becomes the list of addresses DNS has for it now, and
 * the time until it should be asked again (the smallest TTL seen, or
 * `resolver valid=` when set).
 *
 * - A name gives every A and AAAA record as one server each, on the
 *   configured port (nginx does this too): Docker Compose's
 *   `--scale backend=5` gives five records for `backend`, so five servers.
 * - `service=http` looks up SRV `_http._tcp.NAME`; a service with a dot is
 *   joined as is (`service=_http._tcp` -> `_http._tcp.NAME`). The targets
 *   with the lowest priority value are the primary servers, the others are
 *   backups; for a server marked `backup`, the lowest priority gives backups
 *   and the rest is ignored (nginx's rules). The SRV port and weight are used.
 * - NXDOMAIN or no records: no servers (an empty answer is an answer).
 *   A timeout or SERVFAIL is an error: the caller keeps what it had.
 */
import * as net from 'node:net';
import type { UpstreamServerConfig } from '../config/schema.js';
import type { DiscoveredServer } from '../runtime/membership.js';
import { parseServerAddress } from '../upstream/group.js';
import { DnsError, RCODE, type DnsAnswer, type DnsClient, type DnsRecord } from './dns-client.js';

/** Re-resolution never happens more often than this, whatever the TTL (dnsmasq's default local TTL is 0). */
export const MIN_TTL_MS = 1000;
/** An absence with no SOA to say how long it lasts is asked again after this. */
export const DEFAULT_NEGATIVE_TTL_MS = 5000;

export interface Resolution {
  servers: DiscoveredServer[];
  /** When to ask again, ms. */
  ttlMs: number;
}

/** The SRV name nginx queries for `server NAME service=SERVICE`. */
export function srvName(host: string, service: string): string {
  return service.includes('.') ? `${service}.${host}` : `_${service}._tcp.${host}`;
}

export function formatAddress(ip: string, port: number): string {
  return net.isIPv6(ip) ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export async function resolveServer(client: DnsClient, server: UpstreamServerConfig, validMs: number | undefined): Promise<Resolution> {
  const endpoint = parseServerAddress(server.address);
  if (typeof endpoint === 'string') throw new Error(endpoint);
  const result = server.service === undefined ? await resolveAddresses(client, endpoint.host, endpoint.port) : await resolveSrv(client, endpoint.host, server.service, server.backup);
  result.servers.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { servers: result.servers, ttlMs: Math.max(MIN_TTL_MS, validMs ?? result.ttlMs) };
}

/** A and AAAA records of `host`, each as `ip:port`. */
async function resolveAddresses(client: DnsClient, host: string, port: number): Promise<Resolution> {
  const ips = await lookupIps(client, host);
  return { servers: ips.addresses.map((ip) => ({ address: formatAddress(ip, port) })), ttlMs: ips.ttlMs };
}

async function lookupIps(client: DnsClient, host: string): Promise<{ addresses: string[]; ttlMs: number }> {
  const [a, aaaa] = await Promise.allSettled([client.query(host, 'A'), client.query(host, 'AAAA')]);
  if (a.status === 'rejected' && aaaa.status === 'rejected') throw a.reason;
  const answers = [a, aaaa].filter((r): r is PromiseFulfilledResult<DnsAnswer> => r.status === 'fulfilled').map((r) => r.value);
  const addresses = new Set<string>();
  let ttl = Infinity;
  let negative = Infinity;
  for (const answer of answers) {
    const records = addressRecords(answer.records, host);
    for (const r of records) {
      addresses.add(r.address);
      ttl = Math.min(ttl, r.ttl * 1000);
    }
    if (records.length === 0) negative = Math.min(negative, negativeTtlMs(answer));
  }
  // An empty AAAA answer next to A records says nothing about when the A records change.
  if (addresses.size === 0) ttl = negative;
  // One family failing (some resolvers refuse AAAA) while the other answered: the answer stands, with its TTL.
  return { addresses: [...addresses], ttlMs: ttl === Infinity ? DEFAULT_NEGATIVE_TTL_MS : ttl };
}

/** Address records for `name`, following CNAMEs in the answer. */
function addressRecords(records: readonly DnsRecord[], name: string): Extract<DnsRecord, { type: 'A' | 'AAAA' }>[] {
  const names = new Set([lower(name)]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of records) {
      if (r.type === 'CNAME' && names.has(lower(r.name)) && !names.has(lower(r.target))) {
        names.add(lower(r.target));
        changed = true;
      }
    }
  }
  return records.filter((r): r is Extract<DnsRecord, { type: 'A' | 'AAAA' }> => (r.type === 'A' || r.type === 'AAAA') && names.has(lower(r.name)));
}

async function resolveSrv(client: DnsClient, host: string, service: string, backup: boolean): Promise<Resolution> {
  const name = srvName(host, service);
  const answer = await client.query(name, 'SRV');
  const records = answer.records.filter((r): r is Extract<DnsRecord, { type: 'SRV' }> => r.type === 'SRV' && lower(r.name) === lower(name) && r.target !== '' && r.target !== '.');
  if (records.length === 0) return { servers: [], ttlMs: answer.rcode === RCODE.NXDOMAIN || answer.rcode === RCODE.NOERROR ? negativeTtlMs(answer) : DEFAULT_NEGATIVE_TTL_MS };
  const best = Math.min(...records.map((r) => r.priority));
  const chosen = backup ? records.filter((r) => r.priority === best) : records;
  let ttl = Math.min(...records.map((r) => r.ttl * 1000));
  const servers: DiscoveredServer[] = [];
  const lookups = await Promise.all(
    chosen.map(async (r) => {
      if (net.isIP(r.target) !== 0) return { r, addresses: [r.target], ttlMs: Infinity };
      try {
        return { r, ...(await lookupIps(client, r.target)) };
      } catch (err) {
        if (err instanceof DnsError) return { r, addresses: [] as string[], ttlMs: DEFAULT_NEGATIVE_TTL_MS };
        throw err;
      }
    }),
  );
  for (const { r, addresses, ttlMs } of lookups) {
    ttl = Math.min(ttl, ttlMs);
    for (const ip of addresses) {
      servers.push({ address: formatAddress(ip, r.port), weight: r.weight, backup: backup || r.priority !== best });
    }
  }
  return { servers: dedupe(servers), ttlMs: ttl };
}

function dedupe(servers: DiscoveredServer[]): DiscoveredServer[] {
  const seen = new Map<string, DiscoveredServer>();
  for (const s of servers) {
    const old = seen.get(s.address);
    // The same address under two priorities: the primary one wins.
    if (old === undefined || (old.backup === true && s.backup !== true)) seen.set(s.address, s);
  }
  return [...seen.values()];
}

function negativeTtlMs(answer: DnsAnswer): number {
  return answer.negativeTtl === undefined ? DEFAULT_NEGATIVE_TTL_MS : Math.max(answer.negativeTtl * 1000, MIN_TTL_MS);
}

function lower(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
