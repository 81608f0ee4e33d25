/**
 * Differential fuzz test of fulcrum's HTTP/1.1 request codec against llhttp,
 * the parser inside Node (strict mode, no lenient flags).
 *
 * Both parsers read the same bytes: llhttp through Node's HTTPParser binding,
 * fulcrum through a replica of the reading half of Http1Connection (find
 * CRLFCRLF, skip leading CRLFs, parseRequestHead, then Content-Length or
 * ChunkedDecoder for the body; stop at the first error or after a request
 * that does not keep the connection alive).
 *
 * Safety properties (request smuggling):
 *  1. fulcrum never accepts a request head, body byte or message end that
 *     llhttp rejects;
 *  2. whenever both accept, they frame it identically: same number of
 *     messages, same method, target, version and header fields, same body
 *     bytes, same end offset of every message (so the same split point
 *     between pipelined requests);
 *  3. fulcrum's result does not depend on how the bytes are split into reads.
 * fulcrum rejecting what llhttp accepts is allowed (it is stricter): those
 * cases are counted and printed.
 *
 * Reproduce a run: FUZZ_SEED=<seed> (printed), FUZZ_SEED=random for a fresh
 * seed, FUZZ_RUNS=<n> to change the number of cases (default 20000).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import fc from 'fast-check';
import { ChunkedDecoder } from '../../src/http/chunked.js';
import { DEFAULT_HEAD_LIMITS, RequestHead, incompleteHeadIsInvalid, parseRequestHead, type HeadLimits } from '../../src/http/request-head.js';

// ============================================================ shared result model

/** One request as seen by a parser. Strings are latin1 (one char per byte). */
interface Message {
  method: string;
  url: string;
  major: number;
  minor: number;
  /** name, value, name, value... */
  headers: string[];
  body: string;
  complete: boolean;
  /** Offset in the input just past the message (set when complete). */
  end: number;
  keepAlive: boolean;
  upgrade: boolean;
}

/**
 * open: no error, waiting for more bytes (or idle); closed: stopped after a
 * request that closes the connection; upgrade: stopped after an upgrade
 * request; error: rejected.
 */
type Outcome = 'open' | 'closed' | 'upgrade' | 'error';

interface Framing {
  messages: Message[];
  outcome: Outcome;
  /** Index of the message being read when the error happened. */
  errorIndex: number;
  /** fulcrum: the status it answers with; llhttp: the llhttp error code. */
  error: string;
  /** Why (fulcrum's error reason, llhttp's message); not compared. */
  detail: string;
}

// ============================================================ llhttp side

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(data: Buffer): number | Error;
  [callback: number]: unknown;
}
interface LlhttpParserClass {
  new (): LlhttpParser;
  REQUEST: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}

const require = createRequire(import.meta.url);
const { HTTPParser, methods } = require('node:_http_common') as { HTTPParser: LlhttpParserClass; methods: string[] };

/**
 * llhttp's method enum, by number (llhttp.h). Node's `methods` lists the HTTP
 * ones in enum order up to SOURCE (33), then QUERY (46); the RTSP methods in
 * between are not exported, so they are spelled out here. A sanity test
 * checks this table against llhttp.
 */
const LLHTTP_METHODS: string[] = [
  ...methods.slice(0, 34),
  'PRI', 'DESCRIBE', 'ANNOUNCE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER', 'REDIRECT', 'RECORD', 'FLUSH',
  ...methods.slice(34),
];

/** Larger than fulcrum's head limit, so that limits are not what the test compares. */
const LLHTTP_MAX_HEADER_SIZE = 65536;

class LlhttpRecorder {
  private readonly parser = new HTTPParser();
  private messages: Message[] = [];
  private inMessage = false;
  private pendingHeaders: string[] = [];
  private pendingUrl = '';

  constructor() {
    const p = this.parser;
    // More than 32 fields are flushed early through kOnHeaders; trailers come this way too.
    p[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      if (this.inMessage) return; // trailer fields: dropped, like fulcrum does
      this.pendingHeaders.push(...headers);
      this.pendingUrl += url;
    };
    p[HTTPParser.kOnHeadersComplete] = (
      major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined,
      _status: unknown, _statusMessage: unknown, upgrade: boolean, keepAlive: boolean,
    ) => {
      this.messages.push({
        method: LLHTTP_METHODS[method] ?? `#${method}`,
        url: this.pendingUrl + (url ?? ''),
        major,
        minor,
        headers: headers === undefined ? this.pendingHeaders : this.pendingHeaders.concat(headers),
        body: '',
        complete: false,
        end: -1,
        keepAlive,
        upgrade,
      });
      this.pendingHeaders = [];
      this.pendingUrl = '';
      this.inMessage = true;
      return 0;
    };
    p[HTTPParser.kOnBody] = (chunk: Buffer) => {
      this.messages[this.messages.length - 1]!.body += chunk.toString('latin1');
    };
    p[HTTPParser.kOnMessageComplete] = () => {
      this.messages[this.messages.length - 1]!.complete = true;
      this.inMessage = false;
    };
  }

  run(input: Buffer): Framing {
    this.parser.initialize(HTTPParser.REQUEST, {}, LLHTTP_MAX_HEADER_SIZE, HTTPParser.kLenientNone);
    this.messages = [];
    this.inMessage = false;
    this.pendingHeaders = [];
    this.pendingUrl = '';
    const r = this.parser.execute(input);
    const messages = this.messages;
    const last = messages[messages.length - 1];
    if (r instanceof Error) {
      const code = (r as Error & { code?: string }).code ?? r.message;
      // Strict llhttp refuses bytes after a request that closes the connection.
      if (code === 'HPE_CLOSED_CONNECTION') return { messages, outcome: 'closed', errorIndex: -1, error: '', detail: '' };
      const detail = (r as Error & { reason?: string }).reason ?? '';
      return { messages, outcome: 'error', errorIndex: this.inMessage ? messages.length - 1 : messages.length, error: code, detail };
    }
    let outcome: Outcome = 'open';
    if (last !== undefined && last.upgrade) outcome = 'upgrade';
    else if (last !== undefined && last.complete && !last.keepAlive) outcome = 'closed';
    return { messages, outcome, errorIndex: -1, error: '', detail: '' };
  }

  /** How many messages llhttp completes on the first `n` bytes of `input`. */
  completedOnPrefix(input: Buffer, n: number): number {
    return this.run(input.subarray(0, n)).messages.filter((m) => m.complete).length;
  }
}

// ============================================================ fulcrum side

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/** Whether fulcrum's Exchange turns this request into a tunnel (mirrors Exchange.startProxy). */
function fulcrumUpgrade(head: RequestHead): boolean {
  return head.connectionUpgrade && head.upgrade !== undefined && head.method === 'GET' && head.upgrade.toLowerCase() !== 'h2c';
}

/**
 * The reading half of Http1Connection (src/listeners/http1-connection.ts),
 * step for step, without sockets or exchanges. A request is "done" as soon
 * as its body is complete (the real connection waits for the response first,
 * buffering what comes meanwhile: same bytes, same order).
 *
 * One deliberate difference: when the buffered head is incomplete, parseHead
 * returns false and the loop waits for more bytes. The real processBuffer()
 * loops forever there (see the report on Http1Connection).
 */
class FulcrumReader {
  readonly messages: Message[] = [];
  outcome: Outcome = 'open';
  errorIndex = -1;
  error = '';
  detail = '';
  private state: 'head' | 'body' | 'stopped' = 'head';
  private buffer: Buffer | null = null;
  private searchFrom = 0;
  /** Bytes pushed so far: the absolute offset of the end of the input seen. */
  private received = 0;
  private readonly head = new RequestHead();
  private readonly decoder = new ChunkedDecoder();
  private bodyChunked = false;
  private bodyRemaining = 0;

  constructor(private readonly limits: HeadLimits = DEFAULT_HEAD_LIMITS) {}

  get result(): Framing {
    return { messages: this.messages, outcome: this.outcome, errorIndex: this.errorIndex, error: this.error, detail: this.detail };
  }

  push(data: Buffer): void {
    this.received += data.length;
    if (this.state === 'head') this.buffer = this.buffer === null ? data : Buffer.concat([this.buffer, data]);
    else if (this.state === 'body') this.feedBody(data, 0);
    else return;
    while (this.state === 'head' && this.buffer !== null) {
      if (!this.parseHead()) break;
    }
  }

  /** Returns false when more bytes are needed (or it stopped). */
  private parseHead(): boolean {
    let buf = this.buffer!;
    let start = 0;
    while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
    if (start > 0) {
      buf = start === buf.length ? Buffer.alloc(0) : buf.subarray(start);
      this.searchFrom = 0;
      if (buf.length === 0) {
        this.buffer = null;
        return true;
      }
      this.buffer = buf;
    }
    const found = buf.indexOf(CRLFCRLF, this.searchFrom);
    if (found < 0) {
      if (buf.length > this.limits.maxHeadBytes) return this.fail(buf.indexOf(0x0a) < 0 ? 414 : 431, this.messages.length, 'incomplete head too large');
      if (incompleteHeadIsInvalid(buf, 0, buf.length)) return this.fail(400, this.messages.length, 'incomplete head invalid');
      this.searchFrom = Math.max(0, buf.length - 3);
      this.buffer = buf;
      return false;
    }
    const end = found + 4;
    const headEndAbs = this.received - buf.length + end;
    this.searchFrom = 0;
    this.buffer = end < buf.length ? buf.subarray(end) : null;
    const head = this.head;
    head.reset();
    const status = parseRequestHead(buf.toString('latin1', 0, found), head, this.limits);
    if (status !== 0) return this.fail(status, this.messages.length, head.error);
    const headers: string[] = [];
    for (let i = 0; i < head.names.length; i++) headers.push(head.names[i]!, head.values[i]!);
    this.messages.push({
      method: head.method,
      url: head.target,
      major: 1,
      minor: head.versionMinor,
      headers,
      body: '',
      complete: false,
      end: -1,
      keepAlive: head.wantsKeepAlive,
      upgrade: fulcrumUpgrade(head),
    });
    if (head.hasBody) {
      this.state = 'body';
      this.bodyChunked = head.chunked;
      this.bodyRemaining = head.contentLength;
      if (head.chunked) this.decoder.reset();
      if (this.buffer !== null) {
        const rest = this.buffer;
        this.buffer = null;
        this.feedBody(rest, 0);
      }
    } else {
      this.messageDone(headEndAbs, this.buffer);
    }
    return this.state === 'head';
  }

  private feedBody(data: Buffer, offset: number): void {
    const msg = this.messages[this.messages.length - 1]!;
    const base = this.received - data.length; // absolute offset of data[0]
    if (!this.bodyChunked) {
      const available = data.length - offset;
      if (available <= this.bodyRemaining) {
        this.bodyRemaining -= available;
        msg.body += data.toString('latin1', offset);
        if (this.bodyRemaining === 0) this.messageDone(this.received, null);
        return;
      }
      const end = offset + this.bodyRemaining;
      this.bodyRemaining = 0;
      msg.body += data.toString('latin1', offset, end);
      this.messageDone(base + end, data.subarray(end));
      return;
    }
    const decoder = this.decoder;
    let pos = offset;
    while (pos < data.length) {
      const before = pos;
      pos = decoder.execute(data, pos);
      if (decoder.failed) {
        this.fail(400, this.messages.length - 1, decoder.error);
        return;
      }
      if (decoder.spanEnd > decoder.spanStart) msg.body += data.toString('latin1', decoder.spanStart, decoder.spanEnd);
      if (decoder.done) return this.messageDone(base + pos, pos < data.length ? data.subarray(pos) : null);
      if (pos === before) throw new Error(`ChunkedDecoder made no progress at offset ${base + pos}`);
    }
  }

  private messageDone(endAbs: number, rest: Buffer | null): void {
    const msg = this.messages[this.messages.length - 1]!;
    msg.complete = true;
    msg.end = endAbs;
    this.buffer = null;
    if (!msg.keepAlive) {
      this.state = 'stopped';
      this.outcome = 'closed';
    } else if (msg.upgrade) {
      this.state = 'stopped';
      this.outcome = 'upgrade';
    } else {
      this.state = 'head';
      if (rest !== null && rest.length > 0) this.buffer = rest;
    }
  }

  private fail(status: number, index: number, detail: string): false {
    this.state = 'stopped';
    this.buffer = null;
    this.outcome = 'error';
    this.errorIndex = index;
    this.error = String(status);
    this.detail = detail;
    return false;
  }
}

function fulcrumFrame(input: Buffer, cuts: number[] = []): Framing {
  const reader = new FulcrumReader();
  let prev = 0;
  for (const cut of cuts) {
    if (cut > prev && cut < input.length) {
      reader.push(input.subarray(prev, cut));
      prev = cut;
    }
  }
  reader.push(input.subarray(prev));
  return reader.result;
}

// ============================================================ the comparison

type Verdict = 'accepted by both' | 'rejected by fulcrum only' | 'rejected by both' | 'rejected by llhttp, not accepted by fulcrum';

/** Why fulcrum alone refused, counted over a fuzz run (what "stricter" means in practice). */
const stricterReasons = new Map<string, number>();

const llhttp = new LlhttpRecorder();

function show(s: string): string {
  return JSON.stringify(s);
}

/** Checks the safety properties on one input; throws with a description when one fails. */
function checkInput(input: Buffer, cuts: number[] = []): Verdict {
  const text = input.toString('latin1');
  const f = fulcrumFrame(input);
  const l = llhttp.run(input);
  const where = () => `\ninput: ${show(text)}\nfulcrum: ${JSON.stringify(f)}\nllhttp: ${JSON.stringify(l)}`;

  // 3. fulcrum does not depend on how reads are split.
  if (cuts.length > 0) {
    // The reason may differ (an early reject of an incomplete head), the status may not.
    const split = fulcrumFrame(input, cuts);
    assert.deepEqual({ ...split, detail: '' }, { ...f, detail: '' }, `fulcrum frames differently when the input is cut at ${cuts.join(',')}${where()}`);
  }

  // Compare message by message, up to and including the first upgrade (after it,
  // the bytes belong to another protocol on either side).
  for (let i = 0; i < f.messages.length; i++) {
    const fm = f.messages[i]!;
    const lm = l.messages[i];
    if (lm === undefined) {
      const why = l.outcome === 'error' ? `rejected it (${l.error})` : l.outcome === 'closed' ? 'had closed the connection' : l.outcome === 'upgrade' ? 'had switched protocols' : 'had no complete head';
      assert.fail(`fulcrum accepted the head of message ${i}; llhttp ${why}${where()}`);
    }
    assert.equal(fm.method, lm.method, `method of message ${i}${where()}`);
    assert.equal(fm.url, lm.url, `target of message ${i}${where()}`);
    assert.deepEqual([fm.major, fm.minor], [lm.major, lm.minor], `version of message ${i}${where()}`);
    assert.deepEqual(fm.headers, lm.headers, `header fields of message ${i}${where()}`);
    if (fm.complete) {
      if (!lm.complete) assert.fail(`fulcrum completed message ${i}; llhttp did not (${l.outcome} ${l.error})${where()}`);
      assert.equal(fm.body, lm.body, `body of message ${i}${where()}`);
      // Same end offset: llhttp completes message i exactly when its last byte arrives.
      const n = i + 1;
      assert.ok(llhttp.completedOnPrefix(input, fm.end) >= n, `llhttp needs more than ${fm.end} bytes to complete message ${i}${where()}`);
      assert.ok(llhttp.completedOnPrefix(input, fm.end - 1) < n, `llhttp completes message ${i} before offset ${fm.end}${where()}`);
    } else {
      // fulcrum never forwards a byte as body that llhttp does not take as body.
      assert.ok(lm.body.startsWith(fm.body), `fulcrum's partial body of message ${i} is not a prefix of llhttp's${where()}`);
      if (f.outcome === 'open' && lm.complete) assert.fail(`llhttp completed message ${i}; fulcrum waits for more body${where()}`);
    }
    if (fm.upgrade || lm.upgrade) break;
  }

  const fErr = f.outcome === 'error' ? f.errorIndex : Infinity;
  const lErr = l.outcome === 'error' ? l.errorIndex : Infinity;
  if (fErr === Infinity && lErr === Infinity) return 'accepted by both';
  if (fErr === lErr) return 'rejected by both';
  if (fErr < lErr) {
    const key = `${f.error} ${f.detail}`;
    stricterReasons.set(key, (stricterReasons.get(key) ?? 0) + 1);
    return 'rejected by fulcrum only';
  }
  return 'rejected by llhttp, not accepted by fulcrum';
}

// ============================================================ the generator

const CRLF = '\r\n';
const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
/** Bytes both parsers take in a path or query (llhttp's strict URL set, minus '#' and '?'). */
const PATH_CHARS = "abcxyzAZ09-._~!$&'()*+,;=:@/%\"<>\\^`{|}[]".split('');
const VALUE_CHARS = 'abcXYZ019 \t-_.,;:=/"()<>@[]?{}\\\'!#$%&*+^`|~'.split('').concat(['\x80', '\xe9', '\xff']);
const BINARY = fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b));
/** Bytes that matter to HTTP framing, for the byte-level mutations. */
const INTERESTING = ['\r', '\n', '\0', ' ', '\t', ':', ';', ',', '=', '"', '\\', '0', '1', 'a', 'F', '/', '?', '#', '@', '\x7f', '\x80', '\xff', '\x01', '\x0b', '\x0c'];

const str = (chars: string[], minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...chars), minLength, maxLength });

/**
 * The parts of a request the generator can make odd. A request is built
 * with every part valid, with exactly one part odd, or "wild" (a random set
 * of parts drawn from valid and odd choices alike); byte mutations come on
 * top. Odd choices include both unusual-but-valid and invalid forms.
 */
const PARTS = [
  'lead', 'method', 'target', 'version', 'lineForm', 'host', 'connection', 'other', 'separator', 'framingName', 'clValue', 'teValue',
  'dupFraming', 'chunkSize', 'chunkExt', 'chunkLineEnd', 'dataEnd', 'lastChunk', 'trailers', 'headEnd',
] as const;
type Part = (typeof PARTS)[number];
type Mode = 'valid' | 'odd' | 'wild';
type Choices<T> = [number, fc.Arbitrary<T>][];

const k = <T>(v: T) => fc.constant(v);
/** Constant choices: [weight, value]... */
const consts = <T>(...items: [number, T][]): Choices<T> => items.map(([weight, v]) => [weight, k(v)]);
function choose<T>(mode: Mode, valid: Choices<T>, odd: Choices<T>): fc.Arbitrary<T> {
  const items = mode === 'valid' ? valid : mode === 'odd' ? odd : [...valid, ...odd];
  return fc.oneof(...items.map(([weight, arbitrary]) => ({ weight, arbitrary })));
}

const validHost = consts<string>([8, 'a.example'], [2, 'localhost:8080'], [2, '127.0.0.1'], [1, '[::1]:80'], [1, 'A.Example'], [1, 'xn--bcher-kva.example'], [1, 'a.example:']);
const oddHost = consts<string>(
  [1, 'a@b'], [1, 'a/b'], [1, 'a b'], [1, '..'], [1, 'a..b'], [1, ''], [1, 'a:b:c'], [1, 'a%20b'], [1, '[::1'], [1, 'a.example:99999'], [1, "a!$&'()*+,;=b"], [1, 'a\x80'],
);
const originPath = fc
  .tuple(str(PATH_CHARS, 0, 12), fc.option(str(PATH_CHARS.concat(['?']), 0, 8), { nil: undefined }))
  .map(([path, query]) => '/' + path + (query === undefined ? '' : '?' + query));

function requestArb(mode: (part: Part) => Mode): fc.Arbitrary<string> {
  const lead = choose(mode('lead'), consts([12, ''], [2, CRLF], [1, CRLF + CRLF]), consts([1, '\n'], [1, '\r'], [1, '\r\r\n'], [1, ' ']));
  const method = choose(
    mode('method'),
    [[8, fc.constantFrom('GET', 'POST', 'PUT')], [3, fc.constantFrom('HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'QUERY', 'M-SEARCH', 'PROPFIND', 'PURGE')]],
    [[1, fc.constantFrom('CONNECT', 'TRACE', 'get', 'FOO', 'GET ', '', 'PRI', 'DESCRIBE', 'G\x00T', 'GET\t')]],
  );
  const targetMode = mode('target');
  const target = choose(
    targetMode,
    [[10, originPath], [2, fc.tuple(fc.constantFrom('http://', 'https://', 'HTTP://'), choose('valid', validHost, []), fc.constantFrom('', '/', '/x', '?q', '/a?b')).map((t) => t.join(''))]],
    [
      [2, fc.tuple(fc.constantFrom('http://', 'ftp://', 'http:/', 'http:'), choose('wild', validHost, oddHost), fc.constantFrom('', '/', '/#f', 'x')).map((t) => t.join(''))],
      [2, fc.constantFrom('*', '/a#f', '/#', 'a', '/a b', '', '/\x80', '/\x7f', '/\t', '//x', 'a.example:443', '/a\\b')],
    ],
  );
  const version = choose(mode('version'), consts([12, 'HTTP/1.1'], [4, 'HTTP/1.0']), consts([1, 'HTTP/2.0'], [1, 'HTTP/1.2'], [1, 'HTTP/0.9'], [1, 'http/1.1'], [1, 'HTTP/11'], [1, 'HTTP/1.1 '], [1, 'HTTP/3']));
  type LineForm = (m: string, t: string, v: string) => string;
  const lineForm = choose<LineForm>(
    mode('lineForm'),
    consts<LineForm>([1, (m, t, v) => `${m} ${t} ${v}`]),
    consts<LineForm>([1, (m, t) => `${m} ${t}`], [1, (m, t, v) => `${m}  ${t} ${v}`], [1, (m, t, v) => ` ${m} ${t} ${v}`], [1, (m, t, v) => `${m} ${t}\t${v}`]),
  );
  const requestLine = fc.tuple(lineForm, method, target, version).map(([form, m, t, v]) => form(m, t, v));

  const sepMode = mode('separator');
  const sep = choose(sepMode, consts([10, ': '], [3, ':'], [1, ':\t'], [1, ':  ']), consts([1, ' : '], [1, ' :'], [1, '\t:'], [1, ':\x0b']));
  const ows = choose(sepMode, consts([10, ''], [1, ' '], [1, '\t'], [1, ' \t ']), consts([1, '\x0b'], [1, '\x00']));
  const field = (name: fc.Arbitrary<string>, value: fc.Arbitrary<string>) => fc.tuple(name, sep, value, ows).map(([n, s, v, t]) => n + s + v + t);

  const hostMode = mode('host');
  const host = choose<string[]>(
    hostMode,
    [[12, field(fc.constantFrom('Host', 'host', 'HOST'), choose('valid', validHost, [])).map((h) => [h])], [1, k([])]],
    [[2, field(k('Host'), choose('wild', validHost, oddHost)).map((h) => [h])], [1, fc.array(field(k('Host'), choose('wild', validHost, oddHost)), { minLength: 2, maxLength: 2 })]],
  );
  const connection = choose<string[]>(
    mode('connection'),
    [[8, k([])], [4, fc.array(field(fc.constantFrom('Connection', 'connection'), fc.constantFrom('close', 'keep-alive', 'Keep-Alive', 'upgrade', 'close, x-foo', 'keep-alive, upgrade', 'te')), { minLength: 1, maxLength: 2 })]],
    [[1, fc.array(field(k('Connection'), fc.constantFrom('CLOSE', 'clos', 'close x', ',close', 'close,', 'x,close', 'keep-alive, close', 'x-foo, close', '\tclose', 'close\t', '"close"', 'close;q=1', '')), { minLength: 1, maxLength: 2 })]],
  );
  const other = choose<string[]>(
    mode('other'),
    [[4, k([])], [4, fc.array(fc.oneof(
      { weight: 6, arbitrary: field(fc.constantFrom('X-A', 'User-Agent', 'Accept', 'x-request-id', 'Cookie'), str(VALUE_CHARS, 0, 16)) },
      { weight: 2, arbitrary: field(str(TCHARS, 1, 10), str(VALUE_CHARS, 0, 10)) },
      { weight: 1, arbitrary: field(fc.constantFrom('Expect', 'Upgrade', 'Keep-Alive', 'TE', 'Trailer'), fc.constantFrom('100-continue', 'websocket', 'h2c', 'timeout=5', 'trailers')) },
    ), { minLength: 1, maxLength: 3 })]],
    [[1, fc.constantFrom(' folded', '\tfolded: x', 'X-Bad\x01: v', 'X: a\x00b', 'X: a\x7fb', 'no-colon', ': empty-name', 'X\x80: v', 'X:\x0bv', 'Expect: foo', 'X: a\rb', 'X: a\nb').map((l) => [l])]],
  );

  // Framing: none, Content-Length or chunked; odd parts break names, values, counts.
  const nameMode = mode('framingName');
  const clName = choose(nameMode, consts([12, 'Content-Length'], [2, 'content-length'], [1, 'CONTENT-LENGTH']), consts([1, 'Content-Length '], [1, ' Content-Length'], [1, 'Content_Length'], [1, 'Content-Length\t']));
  const teName = choose(nameMode, consts([12, 'Transfer-Encoding'], [2, 'transfer-encoding'], [1, 'TRANSFER-ENCODING']), consts([1, 'Transfer-Encoding '], [1, ' Transfer-Encoding'], [1, 'Transfer_Encoding']));
  const clValueMode = mode('clValue');
  const clValue = (n: number) => choose(clValueMode, consts([16, String(n)], [1, `00${n}`], [1, ` ${n} `]), consts(
    [1, String(n + 1)], [1, String(Math.max(0, n - 1))], [1, `${n}, ${n}`], [1, `${n},${n}`], [1, `+${n}`], [1, `0x${n.toString(16)}`], [1, '-1'], [1, ''],
    [1, `${n} ${n}`], [1, '99999999999999999999'], [1, '18446744073709551616'], [1, '9007199254740993'], [1, `${n}.0`], [1, `${n}\t`], [1, `${n}\x0b`], [1, `"${n}"`],
  ));
  const teValue = choose(mode('teValue'), consts([16, 'chunked'], [2, 'Chunked'], [1, 'CHUNKED'], [1, ' chunked ']), consts(
    [1, 'gzip, chunked'], [1, ',chunked'], [1, 'chunked,'], [1, 'chunked, chunked'], [1, 'identity'], [1, 'chunked, identity'], [1, 'xchunked'],
    [1, 'chunked;q=1'], [1, '"chunked"'], [1, ''], [1, 'chunked\t'], [1, 'chunked\x0b'], [1, 'chun ked'], [1, 'gzip'],
  ));

  type SizeForm = (n: number) => string;
  const chunkSize = choose<SizeForm>(
    mode('chunkSize'),
    consts<SizeForm>([14, (n) => n.toString(16)], [2, (n) => n.toString(16).toUpperCase()], [1, (n) => '00' + n.toString(16)]),
    consts<SizeForm>(
      [1, (n) => (n + 1).toString(16)], [1, (n) => (n - 1).toString(16)], [1, (n) => n.toString(16) + ' '], [1, (n) => n.toString(16) + '\t'],
      [1, (n) => '0x' + n.toString(16)], [1, (n) => '-' + n.toString(16)], [1, (n) => '+' + n.toString(16)], [1, () => 'fffffffffffffffffff'],
      [1, () => ''], [1, (n) => ' ' + n.toString(16)], [1, (n) => '0000000000000000' + n.toString(16)], [1, (n) => n.toString(16) + 'g'],
    ),
  );
  const chunkExt = choose(
    mode('chunkExt'),
    consts([14, ''], [2, ';a'], [2, ';a=b'], [1, ';name=val;x'], [1, ';a="q s"'], [1, ';a="\\""'], [1, ';a=\x80']),
    consts([1, ' ;a'], [1, ';a =b'], [1, ';a= b'], [1, ';'], [1, ';a='], [1, ';a="x'], [1, ';=b'], [1, ';a=b c'], [1, ';a=\x01'], [1, ';a\tb'], [1, ';a="\r"'], [1, ';a\n'], [1, ';a;'], [1, ';a="\\\x01"']),
  );
  const chunkLineEnd = choose(mode('chunkLineEnd'), consts([1, CRLF]), consts([1, '\n'], [1, '\r'], [1, '\r\r\n'], [1, ' \r\n']));
  const dataEnd = choose(mode('dataEnd'), consts([1, CRLF]), consts([1, ''], [1, '\n'], [1, '\r'], [1, 'x\r\n'], [1, '\r\r\n']));
  const chunk = fc
    .tuple(str(VALUE_CHARS.concat(['\r', '\n', '0']), 1, 12), chunkSize, chunkExt, chunkLineEnd, dataEnd)
    .map(([data, size, ext, sizeEnd, end]) => size(data.length) + ext + sizeEnd + data + end);
  const lastChunk = choose(mode('lastChunk'), consts([10, '0'], [1, '000'], [1, '0;x=y']), consts([1, '0 '], [1, ''], [1, '00000000000000000'], [1, '0\t'], [1, 'x']));
  const trailers = choose<string[]>(
    mode('trailers'),
    [[6, k([])], [2, fc.array(fc.constantFrom('X-Trailer: v', 'x-t:v', 'Host: b', 'X: a\x80', 'Expires: 0'), { minLength: 1, maxLength: 2 })]],
    [[1, fc.array(fc.constantFrom('Content-Length: 5', 'Transfer-Encoding: chunked', 'Connection: close', ' x: y', 'x : y', 'X: a\x01', 'x', ':v', 'X: a\n'), { minLength: 1, maxLength: 2 })]],
  );
  const chunkedBody = fc
    .tuple(fc.array(chunk, { maxLength: 3 }), lastChunk, chunkLineEnd, trailers, chunkLineEnd)
    .map(([chunks, last, lastEnd, tr, end]) => chunks.join('') + last + lastEnd + tr.map((t) => t + CRLF).join('') + end);

  const payload = fc.string({ unit: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...VALUE_CHARS) }, { weight: 1, arbitrary: BINARY }), maxLength: 24 });
  const clField = (n: number) => field(clName, clValue(n));
  const teField = field(teName, teValue);
  interface Framed {
    lines: string[];
    body: string;
  }
  const framing: fc.Arbitrary<Framed> = choose<Framed>(
    mode('dupFraming'),
    [
      [6, k({ lines: [], body: '' })],
      [6, payload.chain((p) => clField(p.length).map((l) => ({ lines: [l], body: p })))],
      [6, fc.tuple(teField, chunkedBody).map(([l, body]) => ({ lines: [l], body }))],
    ],
    [
      [2, payload.chain((p) => fc.tuple(clField(p.length), clField(p.length)).map(([a, b]) => ({ lines: [a, b], body: p })))],
      [2, fc.tuple(teField, teField, chunkedBody).map(([a, b, body]) => ({ lines: [a, b], body }))],
      [2, fc.tuple(chunkedBody, field(clName, fc.nat(30).map(String)), teField, fc.boolean()).map(([body, cl, te, clFirst]) => ({ lines: clFirst ? [cl, te] : [te, cl], body }))],
    ],
  );
  const headEnd = choose(mode('headEnd'), consts([1, CRLF]), consts([1, '\n'], [1, '\r'], [1, ' \r\n']));

  return fc
    .tuple(lead, requestLine, host, connection, other, framing, fc.array(fc.nat(), { minLength: 12, maxLength: 12 }), headEnd)
    .map(([ld, line, h, conn, oth, framed, order, end]) => {
      // Header lines in a random order (the request line stays first).
      const lines = [...h, ...conn, ...oth, ...framed.lines];
      const keyed = lines.map((l, i) => [order[i % order.length]! + i / 100, l] as const).sort((a, b) => a[0] - b[0]);
      return ld + line + CRLF + keyed.map(([, l]) => l + CRLF).join('') + end + framed.body;
    });
}

const request = fc
  .tuple(
    fc.oneof({ weight: 4, arbitrary: k('valid' as const) }, { weight: 4, arbitrary: k('one' as const) }, { weight: 2, arbitrary: k('wild' as const) }),
    fc.nat(PARTS.length - 1),
    fc.array(fc.boolean(), { minLength: PARTS.length, maxLength: PARTS.length }),
  )
  .chain(([kind, oddIndex, mask]) =>
    requestArb((part) => {
      const i = PARTS.indexOf(part);
      return kind === 'valid' ? 'valid' : kind === 'one' ? (i === oddIndex ? 'odd' : 'valid') : mask[i] ? 'wild' : 'valid';
    }),
  );

interface Mutation {
  op: 'ins' | 'del' | 'rep';
  at: number;
  byte: string;
}
const mutation: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('ins', 'del', 'rep'),
  at: fc.nat(),
  byte: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...INTERESTING) }, { weight: 1, arbitrary: BINARY }),
});

function mutate(s: string, mutations: Mutation[]): string {
  for (const m of mutations) {
    if (s.length === 0) return m.op === 'ins' ? m.byte : s;
    const at = m.at % (m.op === 'ins' ? s.length + 1 : s.length);
    if (m.op === 'ins') s = s.slice(0, at) + m.byte + s.slice(at);
    else if (m.op === 'del') s = s.slice(0, at) + s.slice(at + 1);
    else s = s.slice(0, at) + m.byte + s.slice(at + 1);
  }
  return s;
}

const fuzzCase = fc.record({
  /** 1 to 3 pipelined requests. */
  requests: fc.oneof({ weight: 5, arbitrary: fc.array(request, { minLength: 1, maxLength: 1 }) }, { weight: 5, arbitrary: fc.array(request, { minLength: 2, maxLength: 3 }) }),
  tail: choose('wild', consts([10, '']), consts([1, 'G'], [1, CRLF], [1, 'GET / HTTP/1.1\r\n'], [1, '\n'], [1, '0\r\n\r\n'])),
  mutations: fc.oneof({ weight: 3, arbitrary: k([] as Mutation[]) }, { weight: 2, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) }),
  /** Where fulcrum's input is cut into separate reads for the split-read check. */
  cuts: fc.array(fc.nat(), { maxLength: 5 }),
});

// ============================================================ the tests

function seedFromEnv(): number {
  const env = process.env['FUZZ_SEED'];
  if (env === undefined || env === '') return 0x5eed_f01c;
  if (env === 'random') return (Date.now() ^ (Math.random() * 0x1_0000_0000)) | 0;
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED must be an integer or "random", not ${env}`);
  return n;
}

const B = (s: string) => Buffer.from(s, 'latin1');

test('differential harness sanity: both parsers see the same pipelined requests', () => {
  const input = B('GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\n' +
    'PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;e=1\r\nhi\r\n0\r\nX-T: 1\r\n\r\n');
  const f = fulcrumFrame(input);
  const l = llhttp.run(input);
  assert.equal(f.messages.length, 3);
  assert.deepEqual(f.messages.map((m) => [m.method, m.url, m.body, m.complete]), [['GET', '/a', '', true], ['POST', '/b', 'abc', true], ['PUT', '/c', 'hi', true]]);
  assert.deepEqual(l.messages.map((m) => [m.method, m.url, m.body, m.complete]), [['GET', '/a', '', true], ['POST', '/b', 'abc', true], ['PUT', '/c', 'hi', true]]);
  assert.deepEqual(f.messages.map((m) => m.end), [28, 79, 161]);
  assert.equal(checkInput(input, [1, 30, 80, 100]), 'accepted by both');
});

test('differential harness sanity: llhttp method numbers map to their names', () => {
  assert.equal(methods[33], 'SOURCE');
  for (const m of methods) {
    const r = llhttp.run(B(`${m} / HTTP/1.1\r\nHost: x\r\n\r\n`));
    assert.equal(r.messages[0]?.method, m);
  }
});

test('differential harness sanity: llhttp is strict (no lenient flags)', () => {
  for (const bad of [
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET / HTTP/1.1\nHost: x\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n',
  ]) {
    assert.equal(llhttp.run(B(bad)).outcome, 'error', show(bad));
    assert.equal(checkInput(B(bad)), 'rejected by both', show(bad));
  }
});

test('differential regressions: inputs where fulcrum once disagreed with llhttp', () => {
  const cases: [string, Verdict][] = [
    // Framing and connection fields in the trailer section: llhttp rejects CL and TE there and
    // honours Connection: close, so fulcrum must not accept them (src/http/chunked.ts).
    ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n', 'rejected by both'],
    ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n', 'rejected by both'],
    ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n', 'rejected by fulcrum only'],
  ];
  for (const [input, verdict] of cases) assert.equal(checkInput(B(input)), verdict, show(input));
});

test('differential fuzz: fulcrum never accepts what llhttp rejects, and frames identically', () => {
  const seed = seedFromEnv();
  const numRuns = Number(process.env['FUZZ_RUNS'] ?? 20000);
  const counts = new Map<Verdict, number>();
  let bytes = 0;
  const started = performance.now();
  console.log(`http-differential: seed ${seed} (set FUZZ_SEED=${seed} to reproduce), ${numRuns} cases`);
  fc.assert(
    fc.property(fuzzCase, ({ requests, tail, mutations, cuts }) => {
      const input = B(mutate(requests.join('') + tail, mutations));
      bytes += input.length;
      const verdict = checkInput(input, cuts.map((c) => c % (input.length + 1)).sort((a, b) => a - b));
      counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
    }),
    { seed, numRuns, includeErrorInReport: true },
  );
  const c = (v: Verdict) => counts.get(v) ?? 0;
  console.log(
    `http-differential summary: ${numRuns} cases (${bytes} bytes) in ${Math.round(performance.now() - started)} ms; ` +
      `accepted by both ${c('accepted by both')}, rejected by fulcrum only ${c('rejected by fulcrum only')}, ` +
      `rejected by both ${c('rejected by both')}, rejected by llhttp while fulcrum waited or had stopped ${c('rejected by llhttp, not accepted by fulcrum')}`,
  );
  const reasons = [...stricterReasons].sort((a, b) => b[1] - a[1]).slice(0, 12);
  console.log(`http-differential: fulcrum stricter than llhttp, top reasons: ${reasons.map(([r, n]) => `${r} (${n})`).join('; ')}`);
  // The generator must keep exercising both sides of the boundary.
  assert.ok(c('accepted by both') > numRuns / 10, 'too few valid requests generated');
  assert.ok(c('rejected by both') > numRuns / 20, 'too few invalid requests generated');
});
