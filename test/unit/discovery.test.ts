/**
 * Service discovery pieces without a network: the DNS wire format (encode,
 * decode with compression, IPv6 text), nginx's SRV naming, resolver
 * addresses, and the servers file parser.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeQuery, parseResolverAddress } from '../../src/discovery/dns-client.js';
import { formatAddress, srvName } from '../../src/discovery/dns-resolve.js';
import { parseServersFile } from '../../src/discovery/servers-file.js';

/** A response to `query` with answers built by hand (names compressed to the question at offset 12). */
function response(query: Buffer, rcode: number, answers: Buffer[]): Buffer {
  const header = Buffer.from(query.subarray(0, 12));
  header.writeUInt16BE(0x8180 | rcode, 2);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.subarray(12), ...answers]);
}

function rr(type: number, ttl: number, rdata: Buffer, name = Buffer.from([0xc0, 12])): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([name, fixed, rdata]);
}

describe('DNS wire format', () => {
  test('a query: header with RD, labels, type and class', () => {
    const q = encodeQuery(0x1234, 'backend.example', 'SRV');
    assert.equal(q.readUInt16BE(0), 0x1234);
    assert.equal(q.readUInt16BE(2), 0x0100);
    assert.deepEqual([...q.subarray(12, 12 + 17)], [7, ...Buffer.from('backend'), 7, ...Buffer.from('example'), 0]);
    assert.equal(q.readUInt16BE(29), 33);
  });

  test('A, AAAA and SRV answers with compressed names and TTLs', () => {
    const q = encodeQuery(7, 'svc.test', 'A');
    const v6 = Buffer.alloc(16);
    v6.writeUInt16BE(0xfd00, 0);
    v6.writeUInt16BE(1, 14);
    const srv = Buffer.concat([Buffer.from([0, 10, 0, 5, 0x1f, 0x90]), Buffer.from([0xc0, 12])]);
    const m = decodeMessage(response(q, 0, [rr(1, 30, Buffer.from([10, 0, 3, 7])), rr(28, 20, v6), rr(33, 60, srv)]));
    assert.equal(m.id, 7);
    assert.equal(m.rcode, 0);
    assert.deepEqual(m.questions, [{ name: 'svc.test', type: 1 }]);
    assert.deepEqual(m.answers, [
      { type: 'A', name: 'svc.test', ttl: 30, address: '10.0.3.7' },
      { type: 'AAAA', name: 'svc.test', ttl: 20, address: 'fd00::1' },
      { type: 'SRV', name: 'svc.test', ttl: 60, priority: 10, weight: 5, port: 8080, target: 'svc.test' },
    ]);
  });

  test('NXDOMAIN, truncation and garbage', () => {
    const q = encodeQuery(9, 'gone.test', 'A');
    assert.equal(decodeMessage(response(q, 3, [])).rcode, 3);
    const tc = response(q, 0, []);
    tc.writeUInt16BE(tc.readUInt16BE(2) | 0x0200, 2);
    assert.equal(decodeMessage(tc).truncated, true);
    assert.throws(() => decodeMessage(Buffer.from([1, 2, 3])));
    const loop = response(q, 0, [rr(1, 1, Buffer.from([1, 1, 1, 1]), Buffer.from([0xc0, 0x0c + 200]))]);
    assert.throws(() => decodeMessage(loop));
  });
});

describe('nginx naming', () => {
  test('service= without a dot gets _service._tcp., with a dot it is joined as is', () => {
    assert.equal(srvName('backend.example.com', 'http'), '_http._tcp.backend.example.com');
    assert.equal(srvName('backend.example.com', '_http._tcp'), '_http._tcp.backend.example.com');
    assert.equal(srvName('example.com', 'server1.backend'), 'server1.backend.example.com');
  });

  test('addresses', () => {
    assert.equal(formatAddress('10.0.0.1', 80), '10.0.0.1:80');
    assert.equal(formatAddress('fd00::1', 80), '[fd00::1]:80');
    assert.deepEqual(parseResolverAddress('127.0.0.11'), { host: '127.0.0.11', port: 53 });
    assert.deepEqual(parseResolverAddress('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseResolverAddress('[::1]:53'), { host: '::1', port: 53 });
    assert.deepEqual(parseResolverAddress('::1'), { host: '::1', port: 53 });
    assert.equal(typeof parseResolverAddress('dns.example'), 'string');
  });
});

describe('servers file', () => {
  test('a YAML list of strings and objects, or {servers: [...]}, with defaults', () => {
    const yaml = parseServersFile('- 10.0.0.1:8080\n- { address: "10.0.0.2:8080", weight: 3, backup: true }\n', 'b.yaml');
    assert.ok(Array.isArray(yaml));
    assert.deepEqual(yaml.map((s) => [s.address, s.params?.weight, s.params?.backup, s.params?.max_fails]), [
      ['10.0.0.1:8080', 1, false, 1],
      ['10.0.0.2:8080', 3, true, 1],
    ]);
    const json = parseServersFile('{"servers": [{"address": "10.0.0.3:80", "fail_timeout": "5s"}]}', 'b.json');
    assert.ok(Array.isArray(json));
    assert.equal(json[0]!.params?.fail_timeout, 5000);
    assert.deepEqual(parseServersFile('', 'empty.yaml'), []);
  });

  test('errors name the file, the entry and the problem', () => {
    assert.match(String(parseServersFile('- { address: "10.0.0.1:80", wieght: 2 }', 'b.yaml')), /^b\.yaml: server 1: unknown key "wieght"/);
    assert.match(String(parseServersFile('- 10.0.0.1:80\n- 10.0.0.1:80\n', 'b.yaml')), /server 2: "10\.0\.0\.1:80" is listed twice/);
    assert.match(String(parseServersFile('- "unix:/tmp/x.sock"', 'b.yaml')), /unix sockets are not supported/);
    assert.match(String(parseServersFile('{"servers": 3}', 'b.json')), /expected a list of servers/);
    assert.match(String(parseServersFile('[', 'b.json')), /^b\.json: /);
  });
});
