/**
 * nginx's ngx_http_realip_module: when the connection comes from a trusted
 * proxy (set_real_ip_from), the client address is taken from a request
 * header (real_ip_header), following ngx_http_get_forwarded_addr exactly:
 * the header is read from the right; without real_ip_recursive the last
 * address is the client, with it addresses that are themselves trusted are
 * skipped. Repeated X-Forwarded-For fields are read last field first.
 */
import * as net from 'node:net';
import type { HeaderLines } from '../http/header-lines.js';

export interface RealIpRuntime {
  /** The trusted sources; undefined when no set_real_ip_from applies. */
  trusted: TrustedSources | undefined;
  /** Lowercase header name ("x-real-ip", "x-forwarded-for" or another). */
  header: string;
  recursive: boolean;
}

export class TrustedSources {
  private readonly list = new net.BlockList();
  /** `set_real_ip_from unix:`: trusts unix-socket connections (fulcrum listens on none). */
  unix = false;

  /** Adds an address or CIDR block; returns an error message, or a warning prefixed "warn:". */
  add(source: string): string | undefined {
    if (source === 'unix:') {
      this.unix = true;
      return undefined;
    }
    const slash = source.indexOf('/');
    const addr = slash < 0 ? source : source.slice(0, slash);
    const bitsText = slash < 0 ? undefined : source.slice(slash + 1);
    const family = net.isIP(addr);
    const max = family === 6 ? 128 : 32;
    if (family === 0 || (bitsText !== undefined && !/^[0-9]{1,3}$/.test(bitsText)) || (bitsText !== undefined && +bitsText > max)) {
      return `invalid address or CIDR "${source}" (host names are not supported)`;
    }
    this.list.addSubnet(addr, bitsText === undefined ? max : +bitsText, family === 6 ? 'ipv6' : 'ipv4');
    return undefined;
  }

  has(address: string): boolean {
    // A v4-mapped IPv6 address is matched as IPv4, as nginx's ngx_cidr_match does.
    if (address.startsWith('::ffff:') && net.isIPv4(address.slice(7))) return this.list.check(address.slice(7), 'ipv4');
    const family = net.isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

export interface RealAddress {
  address: string;
  /** 0 when the header gave none. */
  port: number;
}

/**
 * The client address the header gives for a connection from `connectionAddr`,
 * or undefined when it changes nothing (untrusted source, no header, nothing
 * usable in it).
 */
export function realAddress(realIp: RealIpRuntime, connectionAddr: string, head: HeaderLines): RealAddress | undefined {
  const trusted = realIp.trusted!;
  if (realIp.header !== 'x-forwarded-for') {
    // X-Real-IP and other headers: nginx reads the first field of that name.
    const value = head.header(realIp.header);
    if (value === undefined) return undefined;
    const found = fromValue(trusted, { address: connectionAddr, port: 0 }, value, realIp.recursive);
    return found.changed ? found.addr : undefined;
  }
  let current: RealAddress = { address: connectionAddr, port: 0 };
  let changed = false;
  let sawAny = false;
  for (let i = head.count - 1; i >= 0; i--) {
    if (!head.nameIs(i, 'x-forwarded-for')) continue;
    sawAny = true;
    const found = fromValue(trusted, current, head.value(i), realIp.recursive);
    if (found.changed) {
      current = found.addr;
      changed = true;
    }
    // Without recursion only the last field counts; with it, the walk goes on
    // to the field before only while every address so far was trusted.
    if (!realIp.recursive || !found.complete) break;
  }
  return sawAny && changed ? current : undefined;
}

/** ngx_http_get_forwarded_addr_internal over one field value. */
function fromValue(trusted: TrustedSources, start: RealAddress, value: string, recursive: boolean): { addr: RealAddress; changed: boolean; complete: boolean } {
  let addr = start;
  let changed = false;
  let end = value.length;
  for (;;) {
    if (!trusted.has(addr.address)) return { addr, changed, complete: false };
    let p = end - 1;
    while (p > 0 && (value.charCodeAt(p) === 0x20 || value.charCodeAt(p) === 0x2c)) {
      p--;
      end--;
    }
    while (p > 0 && value.charCodeAt(p) !== 0x20 && value.charCodeAt(p) !== 0x2c) p--;
    if (p > 0) p++;
    const parsed = parseAddrPort(value.slice(p, end));
    if (parsed === undefined) return { addr, changed, complete: false };
    addr = parsed;
    changed = true;
    end = p - 1;
    if (!recursive || p <= 0) return { addr, changed, complete: true };
  }
}

/** nginx's ngx_parse_addr_port: "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80"; addresses come back as nginx prints them. */
export function parseAddrPort(text: string): RealAddress | undefined {
  let host = text;
  let port = 0;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== '') {
      if (!/^:[0-9]{1,5}$/.test(after)) return undefined;
      port = +after.slice(1);
    }
  } else {
    const colon = text.indexOf(':');
    if (colon >= 0 && text.indexOf(':', colon + 1) < 0) {
      if (!/^[0-9]{1,5}$/.test(text.slice(colon + 1))) return undefined;
      host = text.slice(0, colon);
      port = +text.slice(colon + 1);
    }
  }
  if (text !== host && (port < 1 || port > 65535)) return undefined;
  if (net.isIPv4(host)) return { address: host, port };
  if (!net.isIPv6(host)) return undefined;
  return { address: new net.SocketAddress({ address: host, family: 'ipv6' }).address, port };
}
