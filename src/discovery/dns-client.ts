/**
 * A small DNS stub resolver (RFC 1035) for service discovery: A, AAAA and
 * SRV queries over UDP (TCP when the answer is truncated), with the records'
 * TTLs, which Node's getaddrinfo-based dns.lookup() does not give and
 * dns.Resolver does not give for SRV. Queries go to the `resolver`
 * addresses in turn until one answers or `resolver_timeout` runs out.
 *
 * It only speaks to the resolvers it is given (Docker's 127.0.0.11, a
 * dnsmasq, a cluster DNS) and needs no recursion of its own.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { randomInt } from 'node:crypto';

export const TYPE = { A: 1, CNAME: 5, SOA: 6, AAAA: 28, SRV: 33 } as const;
export type QueryType = 'A' | 'AAAA' | 'SRV';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export type DnsRecord =
  | { type: 'A' | 'AAAA'; name: string; ttl: number; address: string }
  | { type: 'SRV'; name: string; ttl: number; priority: number; weight: number; port: number; target: string }
  | { type: 'CNAME'; name: string; ttl: number; target: string }
  | { type: 'SOA'; name: string; ttl: number; minimum: number };

export interface DnsMessage {
  id: number;
  flags: number;
  rcode: number;
  truncated: boolean;
  questions: { name: string; type: number }[];
  answers: DnsRecord[];
  authority: DnsRecord[];
  additional: DnsRecord[];
}

export interface DnsServerAddress {
  host: string;
  port: number;
}

export class DnsError extends Error {
  constructor(
    message: string,
    readonly code: 'TIMEOUT' | 'SERVFAIL' | 'REFUSED' | 'FORMERR' | 'BADRESPONSE',
  ) {
    super(message);
  }
}

/** Parses `resolver` addresses: "10.0.0.1", "10.0.0.1:5353", "[::1]:53", "::1". */
export function parseResolverAddress(text: string): DnsServerAddress | string {
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?$/.exec(text);
  if (v6 !== null) return { host: v6[1]!, port: v6[2] === undefined ? 53 : +v6[2] };
  if (net.isIPv6(text)) return { host: text, port: 53 };
  const m = /^([0-9.]+)(?::([0-9]+))?$/.exec(text);
  if (m !== null && net.isIPv4(m[1]!)) {
    const port = m[2] === undefined ? 53 : +m[2];
    if (port < 1 || port > 65535) return `invalid port in resolver "${text}"`;
    return { host: m[1]!, port };
  }
  return `resolver "${text}" must be an IP address (with an optional port)`;
}

// ---------------------------------------------------------------- wire format

export function encodeQuery(id: number, name: string, type: QueryType): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l !== '');
  const qname = Buffer.concat([
    ...labels.map((l) => {
      const b = Buffer.from(l, 'ascii');
      if (b.length > 63) throw new DnsError(`label too long in "${name}"`, 'FORMERR');
      return Buffer.concat([Buffer.from([b.length]), b]);
    }),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(TYPE[type], 0);
  tail.writeUInt16BE(1, 2); // IN
  return Buffer.concat([header, qname, tail]);
}

function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  for (let hops = 0; hops < 64; hops++) {
    if (pos >= buf.length) throw new DnsError('name runs past the message', 'BADRESPONSE');
    const len = buf[pos]!;
    if (len === 0) {
      if (next < 0) next = pos + 1;
      return { name: labels.join('.'), next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1]!;
      continue;
    }
    labels.push(buf.toString('ascii', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new DnsError('compression loop', 'BADRESPONSE');
}

function readRecord(buf: Buffer, offset: number): { record: DnsRecord | undefined; next: number } {
  const { name, next: afterName } = readName(buf, offset);
  if (afterName + 10 > buf.length) throw new DnsError('truncated record', 'BADRESPONSE');
  const type = buf.readUInt16BE(afterName);
  const ttl = buf.readUInt32BE(afterName + 4);
  const rdlength = buf.readUInt16BE(afterName + 8);
  const rdata = afterName + 10;
  const next = rdata + rdlength;
  if (next > buf.length) throw new DnsError('truncated record data', 'BADRESPONSE');
  switch (type) {
    case TYPE.A:
      if (rdlength !== 4) return { record: undefined, next };
      return { record: { type: 'A', name, ttl, address: `${buf[rdata]}.${buf[rdata + 1]}.${buf[rdata + 2]}.${buf[rdata + 3]}` }, next };
    case TYPE.AAAA: {
      if (rdlength !== 16) return { record: undefined, next };
      const parts: string[] = [];
      for (let i = 0; i < 16; i += 2) parts.push(buf.readUInt16BE(rdata + i).toString(16));
      return { record: { type: 'AAAA', name, ttl, address: compressV6(parts) }, next };
    }
    case TYPE.CNAME:
      return { record: { type: 'CNAME', name, ttl, target: readName(buf, rdata).name }, next };
    case TYPE.SRV:
      return {
        record: { type: 'SRV', name, ttl, priority: buf.readUInt16BE(rdata), weight: buf.readUInt16BE(rdata + 2), port: buf.readUInt16BE(rdata + 4), target: readName(buf, rdata + 6).name },
        next,
      };
    case TYPE.SOA: {
      const mname = readName(buf, rdata);
      const rname = readName(buf, mname.next);
      const minimum = rname.next + 16 <= buf.length ? buf.readUInt32BE(rname.next + 16) : ttl;
      return { record: { type: 'SOA', name, ttl, minimum }, next };
    }
    default:
      return { record: undefined, next };
  }
}

function compressV6(parts: string[]): string {
  // RFC 5952: the longest run of zero groups becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < parts.length; ) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < parts.length && parts[j] === '0') j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return parts.join(':');
  return `${parts.slice(0, bestStart).join(':')}::${parts.slice(bestStart + bestLen).join(':')}`;
}

export function decodeMessage(buf: Buffer): DnsMessage {
  if (buf.length < 12) throw new DnsError('short DNS message', 'BADRESPONSE');
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)] as const;
  let pos = 12;
  const questions: DnsMessage['questions'] = [];
  for (let i = 0; i < counts[0]; i++) {
    const { name, next } = readName(buf, pos);
    questions.push({ name, type: buf.readUInt16BE(next) });
    pos = next + 4;
  }
  const sections: DnsRecord[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      const { record, next } = readRecord(buf, pos);
      if (record !== undefined) sections[s]!.push(record);
      pos = next;
    }
  }
  return { id, flags, rcode: flags & 0xf, truncated: (flags & 0x0200) !== 0, questions, answers: sections[0]!, authority: sections[1]!, additional: sections[2]! };
}

// ---------------------------------------------------------------- transport

export interface DnsAnswer {
  rcode: number;
  records: DnsRecord[];
  /** For NXDOMAIN and empty answers: how long the absence may be cached (SOA), seconds. */
  negativeTtl: number | undefined;
}

export class DnsClient {
  constructor(
    readonly servers: readonly DnsServerAddress[],
    /** Total time for one query over every server (nginx's resolver_timeout). */
    readonly timeoutMs: number,
  ) {}

  /** Resolves with the answer (NXDOMAIN included); rejects on timeout, SERVFAIL or REFUSED from every server. */
  async query(name: string, type: QueryType): Promise<DnsAnswer> {
    if (this.servers.length === 0) throw new DnsError('no resolver address', 'REFUSED');
    const deadline = performance.now() + this.timeoutMs;
    let lastError: DnsError = new DnsError(`no answer for ${name} ${type}`, 'TIMEOUT');
    for (let attempt = 0; performance.now() < deadline; attempt++) {
      const server = this.servers[attempt % this.servers.length]!;
      const remaining = deadline - performance.now();
      const perTry = Math.max(50, Math.min(remaining, 1000 * (1 + Math.floor(attempt / this.servers.length))));
      try {
        const message = await exchange(server, name, type, perTry);
        if (message.rcode === RCODE.SERVFAIL || message.rcode === RCODE.REFUSED || message.rcode === RCODE.FORMERR || message.rcode === RCODE.NOTIMP) {
          lastError = new DnsError(`${server.host}:${server.port} answered rcode ${message.rcode} for ${name} ${type}`, message.rcode === RCODE.REFUSED ? 'REFUSED' : 'SERVFAIL');
          continue;
        }
        const soa = message.authority.find((r): r is Extract<DnsRecord, { type: 'SOA' }> => r.type === 'SOA');
        return { rcode: message.rcode, records: [...message.answers, ...message.additional], negativeTtl: soa === undefined ? undefined : Math.min(soa.ttl, soa.minimum) };
      } catch (err) {
        lastError = err instanceof DnsError ? err : new DnsError((err as Error).message, 'TIMEOUT');
      }
    }
    throw lastError;
  }
}

function exchange(server: DnsServerAddress, name: string, type: QueryType, timeoutMs: number): Promise<DnsMessage> {
  const id = randomInt(0, 65536);
  const query = encodeQuery(id, name, type);
  return new Promise<DnsMessage>((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => finish(new DnsError(`no answer from ${server.host}:${server.port} within ${Math.round(timeoutMs)} ms`, 'TIMEOUT')), timeoutMs);
    let done = false;
    const finish = (result: DnsMessage | Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.on('error', (err) => finish(err));
    socket.on('message', (buf) => {
      let message: DnsMessage;
      try {
        message = decodeMessage(buf);
      } catch (err) {
        return finish(err as Error);
      }
      if (message.id !== id) return; // not ours (spoofed or late): keep waiting
      if (!message.truncated) return finish(message);
      done = true;
      clearTimeout(timer);
      socket.close();
      exchangeTcp(server, query, id, timeoutMs).then(resolve, reject);
    });
    socket.send(query, server.port, server.host, (err) => {
      if (err) finish(err);
    });
  });
}

function exchangeTcp(server: DnsServerAddress, query: Buffer, id: number, timeoutMs: number): Promise<DnsMessage> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DnsError(`no TCP answer from ${server.host}:${server.port}`, 'TIMEOUT'));
    }, timeoutMs);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(query.length);
    socket.on('connect', () => socket.write(Buffer.concat([length, query])));
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length < 2 || all.length < 2 + all.readUInt16BE(0)) return;
      clearTimeout(timer);
      socket.destroy();
      try {
        const message = decodeMessage(all.subarray(2, 2 + all.readUInt16BE(0)));
        if (message.id !== id) reject(new DnsError('mismatched TCP answer', 'BADRESPONSE'));
        else resolve(message);
      } catch (err) {
        reject(err as Error);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
