/**
 * ChunkedDecoder (src/http/chunked.ts): strict RFC 9112 7.1 decoding, the
 * same result however the bytes are split into reads, and never a byte
 * consumed past the end of the message.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ChunkedDecoder, LAST_CHUNK, chunkHeader } from '../../src/http/chunked.js';

const B = (s: string) => Buffer.from(s, 'latin1');

interface Decoded {
  /** The de-chunked data (latin1). */
  data: string;
  /** How many data spans execute() exposed. */
  spans: number;
  done: boolean;
  failed: boolean;
  error: string;
  /** Absolute offset of the first byte not consumed (end of message, or where it failed). */
  stop: number;
}

/**
 * Feeds `input` to a fresh decoder as separate Buffers cut at `cuts`, the way
 * Http1Connection feeds socket reads: execute() until the read is used up,
 * the message ends or it fails.
 */
function decode(input: string | Buffer, cuts: number[] = []): Decoded {
  const buf = typeof input === 'string' ? B(input) : input;
  const d = new ChunkedDecoder();
  let data = '';
  let spans = 0;
  let base = 0;
  const bounds = [...new Set(cuts.filter((c) => c > 0 && c < buf.length))].sort((a, b) => a - b).concat([buf.length]);
  for (const bound of bounds) {
    const piece = Buffer.from(buf.subarray(base, bound)); // a copy: a separate read
    let pos = 0;
    while (pos < piece.length) {
      const before = pos;
      pos = d.execute(piece, pos);
      if (d.failed) return { data, spans, done: false, failed: true, error: d.error, stop: base + pos };
      if (d.spanEnd > d.spanStart) {
        spans++;
        data += piece.toString('latin1', d.spanStart, d.spanEnd);
      }
      if (d.done) return { data, spans, done: true, failed: false, error: '', stop: base + pos };
      assert.notEqual(pos, before, 'execute() must make progress');
    }
    base = bound;
  }
  return { data, spans, done: d.done, failed: d.failed, error: d.error, stop: buf.length };
}

/** Every way of cutting `input` once, plus byte by byte: all must decode like the whole. */
function assertSplitInvariant(input: string): Decoded {
  const whole = decode(input);
  // Span counts follow the cuts; so does the offset of a failure found in a
  // size-limited scan (extension, trailers): compare everything else.
  const strip = (r: Decoded) => ({ ...r, spans: 0, stop: r.failed ? -1 : r.stop });
  for (let i = 1; i < input.length; i++) assert.deepEqual(strip(decode(input, [i])), strip(whole), `cut at ${i} of ${JSON.stringify(input)}`);
  const bytes = Array.from({ length: input.length }, (_, i) => i);
  assert.deepEqual(strip(decode(input, bytes)), strip(whole), `byte by byte: ${JSON.stringify(input)}`);
  return whole;
}

describe('valid bodies, whole and split at every point', () => {
  const cases: [string, string, string][] = [
    ['one chunk', '5\r\nhello\r\n0\r\n\r\n', 'hello'],
    ['two chunks', '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', 'hello world'],
    ['empty body (last chunk only)', '0\r\n\r\n', ''],
    ['uppercase and lowercase hex', 'A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n', '0123456789abcdefghijk'],
    ['leading zeros in sizes', '005\r\nhello\r\n000\r\n\r\n', 'hello'],
    ['data holding CR, LF and NUL', '6\r\n\r\n\0\r\r\n\r\n0\r\n\r\n', '\r\n\0\r\r\n'],
    ['data that looks like a last chunk', '5\r\n0\r\n\r\n\r\n0\r\n\r\n', '0\r\n\r\n'],
    ['extensions', '5;a\r\nhello\r\n1;name=value;flag\r\n!\r\n0;last=1\r\n\r\n', 'hello!'],
    ['quoted extension values', '2;a="x y";b="\\"q\\""\r\nhi\r\n0\r\n\r\n', 'hi'],
    ['trailers are dropped', '2\r\nhi\r\n0\r\nX-Checksum: abc\r\nx-empty:\r\nExpires: 0\r\n\r\n', 'hi'],
    ['obs-text in a trailer value', '0\r\nX-T: caf\xe9\r\n\r\n', ''],
  ];
  for (const [name, input, data] of cases) {
    test(name, () => {
      const r = assertSplitInvariant(input);
      assert.equal(r.failed, false, r.error);
      assert.equal(r.done, true);
      assert.equal(r.data, data);
      assert.equal(r.stop, input.length);
    });
  }

  test('a big chunk arrives as several spans, without copies', () => {
    const data = 'x'.repeat(1000);
    const input = B(`3e8\r\n${data}\r\n0\r\n\r\n`);
    const d = new ChunkedDecoder();
    const end = d.execute(input, 0, 100);
    assert.equal(end, 100);
    assert.deepEqual([d.spanStart, d.spanEnd], [5, 100]);
    const r = decode(input, [100, 500, 900]);
    assert.equal(r.data, data);
    assert.equal(r.spans, 4);
  });

  test('execute() stops right after each run of chunk data', () => {
    const input = B('2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n');
    const d = new ChunkedDecoder();
    let pos = d.execute(input, 0);
    assert.deepEqual([pos, d.spanStart, d.spanEnd], [5, 3, 5]);
    pos = d.execute(input, pos);
    assert.deepEqual([pos, d.spanStart, d.spanEnd], [13, 10, 13]);
    pos = d.execute(input, pos);
    assert.equal(d.spanStart, d.spanEnd, 'no data in the last call');
    assert.equal(d.done, true);
    assert.equal(pos, input.length);
  });

  test('random chunk lists decode to their data at any split (property)', () => {
    const chunkArb = fc.tuple(
      fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 40 }),
      fc.constantFrom('', ';a', ';a=b', ';k="v v"'),
      fc.boolean(),
    );
    fc.assert(
      fc.property(fc.array(chunkArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), fc.constantFrom('', 'X-T: 1\r\n'), (chunks, cuts, trailer) => {
        let wire = '';
        for (const [data, ext, upper] of chunks) {
          const size = data.length.toString(16);
          wire += (upper ? size.toUpperCase() : size) + ext + '\r\n' + data + '\r\n';
        }
        wire += '0\r\n' + trailer + '\r\n';
        const r = decode(wire + 'NEXT', cuts.map((c) => c % (wire.length + 4)));
        assert.equal(r.failed, false, r.error);
        assert.equal(r.done, true);
        assert.equal(r.data, chunks.map(([d]) => d).join(''));
        assert.equal(r.stop, wire.length, 'stops at the end of the message');
      }),
      { seed: 7, numRuns: 500 },
    );
  });
});

describe('invalid framing', () => {
  const cases: [string, string, RegExp][] = [
    // chunk size
    ['empty size', '\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['non-hex size', 'g\r\n', /invalid chunk size/],
    ['SP after the size', '5 \r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['HTAB after the size', '5\t\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['SP before the size', ' 5\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['0x prefix', '0x5\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['sign', '+5\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['negative', '-5\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['size overflow (20 hex digits)', 'ffffffffffffffffffff\r\n', /too large/],
    ['14 digits, even with leading zeros', '00000000000005\r\nhello\r\n0\r\n\r\n', /too large/],
    // line endings of the size line
    ['bare LF after the size', '5\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['bare CR after the size', '5\rhello\r\n0\r\n\r\n', /expected LF after chunk size/],
    ['bare LF after the last chunk size', '0\n\r\n', /invalid chunk size/],
    // after the data
    ['missing CRLF after data', '5\r\nhelloX\r\n0\r\n\r\n', /expected CRLF after chunk data/],
    ['data longer than the size', '3\r\nhello\r\n0\r\n\r\n', /expected CRLF after chunk data/],
    ['bare LF after data', '5\r\nhello\n0\r\n\r\n', /expected CRLF after chunk data/],
    ['bare CR after data', '5\r\nhello\r0\r\n\r\n', /expected CRLF after chunk data/],
    // extensions
    ['SP before ";"', '5 ;a\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
    ['lone ";"', '5;\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['empty extension name', '5;=b\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['SP before "="', '5;a =b\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['SP after "="', '5;a= b\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['empty extension value', '5;a=\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['SP inside a token value', '5;a=b c\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['unterminated quoted value', '5;a="b\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['CR inside a quoted value', '5;a="\r"\r\nhello\r\n0\r\n\r\n', /invalid chunk extension|expected LF/],
    ['control character in an extension', '5;a=\x01\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['bare LF inside an extension', '5;a\nb\r\nhello\r\n0\r\n\r\n', /invalid chunk extension/],
    ['extension on the last chunk, invalid', '0;\r\n\r\n', /invalid chunk extension/],
    ['extension too long', `5;a=${'x'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`, /extension too long/],
    // trailers
    ['trailer starting with SP (obs-fold)', '0\r\n x: y\r\n\r\n', /invalid trailer field/],
    ['trailer with SP before the colon', '0\r\nx : y\r\n\r\n', /invalid trailer field/],
    ['trailer without a colon', '0\r\nxyz\r\n\r\n', /invalid trailer field/],
    ['trailer with an empty name', '0\r\n: y\r\n\r\n', /invalid trailer field/],
    ['trailer with a control character', '0\r\nX: a\x01b\r\n\r\n', /invalid trailer field/],
    ['trailer with NUL', '0\r\nX: a\0b\r\n\r\n', /invalid trailer field/],
    ['trailer with a bare LF', '0\r\nX: a\nY: b\r\n\r\n', /invalid trailer field/],
    ['bare CR in the trailer section', '0\r\nX: a\rY\r\n\r\n', /expected LF in trailer section/],
    ['Content-Length trailer', '0\r\nContent-Length: 5\r\n\r\n', /invalid trailer field/],
    ['Transfer-Encoding trailer', '0\r\ntransfer-encoding: chunked\r\n\r\n', /invalid trailer field/],
    ['Connection trailer', '0\r\nConnection: close\r\n\r\n', /invalid trailer field/],
    ['trailer section too large', `0\r\n${Array.from({ length: 20 }, (_, i) => `X-${i}: ${'v'.repeat(1000)}\r\n`).join('')}\r\n`, /trailer section too large/],
    ['bare LF ending the trailer section', '0\r\n\n\r\n', /invalid trailer field/],
  ];
  for (const [name, input, error] of cases) {
    test(name, () => {
      const r = assertSplitInvariant(input);
      assert.equal(r.failed, true, `${JSON.stringify(input)} was accepted`);
      assert.match(r.error, error);
      assert.equal(r.done, false);
    });
  }

  test('a failed decoder stays failed and consumes nothing more', () => {
    const d = new ChunkedDecoder();
    const buf = B('g\r\n5\r\nhello\r\n');
    assert.equal(d.execute(buf, 0), 0);
    assert.equal(d.failed, true);
    assert.equal(d.execute(buf, 1), 1);
    assert.equal(d.failed, true);
  });

  test('13 hex digits is the largest size accepted', () => {
    const d = new ChunkedDecoder();
    const buf = B('fffffffffffff\r\nabc');
    assert.equal(d.execute(buf, 0), buf.length);
    assert.equal(d.failed, false);
    assert.deepEqual([d.spanStart, d.spanEnd], [15, 18]);
  });
});

describe('end of message', () => {
  test('bytes after the last chunk are not consumed', () => {
    const body = '3\r\nabc\r\n0\r\n\r\n';
    for (const garbage of ['GET / HTTP/1.1\r\n', 'garbage', '\r\n', '0\r\n\r\n', '\0']) {
      const r = assertSplitInvariant(body + garbage);
      assert.equal(r.done, true);
      assert.equal(r.stop, body.length, JSON.stringify(garbage));
      assert.equal(r.data, 'abc');
    }
  });

  test('a done decoder returns the offset it was given', () => {
    const d = new ChunkedDecoder();
    const buf = B('0\r\n\r\nXYZ');
    assert.equal(d.execute(buf, 0), 5);
    assert.equal(d.done, true);
    assert.equal(d.execute(buf, 5), 5);
    assert.equal(d.execute(buf, 6), 6);
    assert.equal(d.spanStart, d.spanEnd);
  });

  test('an incomplete body is neither done nor failed', () => {
    for (const partial of ['', '5', '5\r', '5\r\nhel', '5\r\nhello', '5\r\nhello\r', '5\r\nhello\r\n0', '5\r\nhello\r\n0\r\n', '5\r\nhello\r\n0\r\nX-T: 1\r\n', '5;a="x']) {
      const r = decode(partial);
      assert.equal(r.done, false, JSON.stringify(partial));
      assert.equal(r.failed, false, JSON.stringify(partial));
    }
  });

  test('execute() honours its end argument', () => {
    const d = new ChunkedDecoder();
    const buf = B('5\r\nhello\r\n0\r\n\r\n');
    assert.equal(d.execute(buf, 0, 2), 2);
    assert.equal(d.execute(buf, 2, 6), 6);
    assert.deepEqual([d.spanStart, d.spanEnd], [3, 6]);
    assert.equal(d.done, false);
  });

  test('reset() makes the decoder reusable, also after a failure', () => {
    const d = new ChunkedDecoder();
    d.execute(B('zz'), 0);
    assert.equal(d.failed, true);
    d.reset();
    assert.equal(d.failed, false);
    assert.equal(d.error, '');
    const buf = B('1\r\nx\r\n0\r\n\r\n');
    let pos = 0;
    while (!d.done) pos = d.execute(buf, pos);
    assert.equal(pos, buf.length);
  });
});

describe('encoding helpers', () => {
  test('LAST_CHUNK ends a body', () => {
    assert.equal(LAST_CHUNK, '0\r\n\r\n');
    const r = decode(LAST_CHUNK);
    assert.equal(r.done, true);
    assert.equal(r.data, '');
    assert.equal(r.stop, 5);
  });

  test('chunkHeader() writes the size line in lowercase hex', () => {
    assert.equal(chunkHeader(1), '1\r\n');
    assert.equal(chunkHeader(255), 'ff\r\n');
    assert.equal(chunkHeader(65536), '10000\r\n');
    const body = chunkHeader(11) + 'hello world' + '\r\n' + LAST_CHUNK;
    assert.equal(decode(body).data, 'hello world');
  });
});
