import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseNginxFile, parseNginxText, type Directive, type ParseResult } from '../../src/config/nginx/parse.js';
import type { SourceLocation } from '../../src/config/errors.js';

import { SEED_CONFIG as SEED } from '../support/seed-files.js';

/** `LINE:COL message` for each diagnostic: compact and exact. */
function diagnostics(result: ParseResult): string[] {
  return result.diagnostics.map((d) => `${d.loc ? `${d.loc.line}:${d.loc.column}` : '-'} ${d.message}`);
}

function at(loc: SourceLocation): string {
  return `${loc.line}:${loc.column}`;
}

/** The directive tree as [name, args] pairs, blocks nested: easy to compare whole. */
type Shape = [string, string[]] | [string, string[], Shape[]];
function shape(directives: Directive[]): Shape[] {
  return directives.map((d) => (d.block ? [d.name, d.args, shape(d.block)] : [d.name, d.args]));
}

function only(text: string): Directive {
  const result = parseNginxText(text, 't.conf');
  assert.deepEqual(diagnostics(result), []);
  assert.equal(result.directives.length, 1);
  return result.directives[0]!;
}

function child(directive: Directive | undefined, name: string, nth = 0): Directive {
  const found = (directive?.block ?? []).filter((d) => d.name === name)[nth];
  assert.ok(found, `no ${name} #${nth} in ${directive?.name}`);
  return found;
}

describe('seed configuration', () => {
  const result = parseNginxFile(SEED);
  const [events, http] = result.directives;

  test('parses with zero diagnostics and reads one file', () => {
    assert.deepEqual(result.diagnostics, []);
    assert.deepEqual(result.files, [SEED]);
    assert.deepEqual(result.directives.map((d) => d.name), ['events', 'http']);
  });

  test('events and the redirecting server', () => {
    assert.deepEqual(shape([events!]), [['events', [], [['worker_connections', ['1024']]]]]);
    assert.equal(at(child(events, 'worker_connections').loc), '4:5');
    const plain = child(http, 'server', 0);
    assert.deepEqual(shape(plain.block!).slice(0, 2), [['listen', ['80']], ['server_name', ['blarybus.seunghooo.p-e.kr']]]);
    const ret = child(child(plain, 'location', 1), 'return');
    assert.deepEqual(ret.args, ['301', 'https://$host$request_uri']);
    assert.equal(at(ret.loc), '18:13');
    assert.deepEqual(ret.argLocs.map(at), ['18:20', '18:24']);
  });

  test('upstream and TLS server', () => {
    const upstream = child(http, 'upstream');
    assert.deepEqual(upstream.args, ['backend_servers']);
    assert.equal(at(upstream.loc), '22:5');
    assert.deepEqual(child(upstream, 'server').args, ['ubuntu_backend_1:8080', 'max_fails=3', 'fail_timeout=30s']);
    assert.equal(upstream.block!.length, 3);
    const tls = child(http, 'server', 1);
    assert.deepEqual(child(tls, 'listen').args, ['443', 'ssl']);
    assert.deepEqual(child(tls, 'ssl_ciphers').args, ['HIGH:!aNULL:!MD5']);
    const api = child(tls, 'location');
    const proxyPass = child(api, 'proxy_pass');
    assert.deepEqual(proxyPass.args, ['http://backend_servers']);
    assert.deepEqual(proxyPass.loc, { file: SEED, line: 42, column: 13 });
    assert.deepEqual(child(api, 'proxy_set_header', 2).args, ['X-Forwarded-For', '$proxy_add_x_forwarded_for']);
    assert.equal(api.block!.length, 11);
  });
});

describe('words', () => {
  test('quotes: spaces kept, empty argument, quoted flags', () => {
    const d = only(`a "a b" 'c d' "" '' plain;`);
    assert.deepEqual(d.args, ['a b', 'c d', '', '', 'plain']);
    assert.deepEqual(d.quoted, [true, true, true, true, false]);
  });

  test('escapes nginx applies: \\" \\\' \\\\ \\n \\r \\t', () => {
    const d = only(String.raw`a 'it\'s' "say \"hi\"" "back\\slash" "x\ny" "x\ry" "x\ty";`);
    assert.deepEqual(d.args, ["it's", 'say "hi"', 'back\\slash', 'x\ny', 'x\ry', 'x\ty']);
  });

  test('other backslash pairs are kept as written (regexes survive)', () => {
    const d = only(String.raw`location ~ "^/\d+\.php$" {}`);
    assert.deepEqual(d.args, ['~', String.raw`^/\d+\.php$`]);
    assert.deepEqual(d.block, []);
  });

  test('unquoted backslash keeps the next character in the word, and the backslash too (as nginx)', () => {
    const d = only(String.raw`a b\ c d\;e f\{g \"h\";`);
    assert.deepEqual(d.args, ['b\\ c', 'd\\;e', 'f\\{g', '"h"']);
    assert.deepEqual(d.quoted, [false, false, false, false]);
  });

  test('quotes inside a word are ordinary characters', () => {
    assert.deepEqual(only(`a b"c"d;`).args, ['b"c"d']);
  });

  test('a quoted word may span lines; the location is its opening quote', () => {
    const d = only(`a "x\ny" z;`);
    assert.deepEqual(d.args, ['x\ny', 'z']);
    assert.deepEqual(d.argLocs.map(at), ['1:3', '2:4']);
  });

  test('comments start only where a word could', () => {
    const result = parseNginxText('# header\nset $x a#b; # trailing ; { }\nb c#d;\n#', 't.conf');
    assert.deepEqual(diagnostics(result), []);
    assert.deepEqual(shape(result.directives), [['set', ['$x', 'a#b']], ['b', ['c#d']]]);
    assert.equal(at(result.directives[1]!.loc), '3:1');
  });

  test('${var}: the brace belongs to the word; a later brace still opens a block', () => {
    assert.deepEqual(only('return 200 ${host}x;').args, ['200', '${host}x']);
    assert.deepEqual(only('set $a "${b}c";').args, ['$a', '${b}c']);
    const d = only('x ${a}{ y; }');
    assert.deepEqual(shape([d]), [['x', ['${a}'], [['y', []]]]]);
    assert.deepEqual(only('x a{ }').args, ['a']);
  });

  test('a "}" inside a word does not close a block (nginx)', () => {
    assert.deepEqual(shape([only('x { y a}b; }')]), [['x', [], [['y', ['a}b']]]]]);
  });

  test('return 301 https://$host$request_uri;', () => {
    const d = only('return 301 https://$host$request_uri;');
    assert.deepEqual([d.name, d.args, d.quoted], ['return', ['301', 'https://$host$request_uri'], [false, false]]);
  });

  test('")" may follow a closing quote (if conditions)', () => {
    const d = only('if ($a = "b") { return 404; }');
    assert.deepEqual(d.args, ['($a', '=', 'b', ')']);
    assert.deepEqual(d.quoted, [false, false, true, false]);
  });

  test('blocks: empty, nested, no space before "{"', () => {
    const result = parseNginxText('events{}\nhttp { server { listen 80; } }', 't.conf');
    assert.deepEqual(diagnostics(result), []);
    assert.deepEqual(shape(result.directives), [['events', [], []], ['http', [], [['server', [], [['listen', ['80']]]]]]]);
  });

  test('names are case-sensitive and may be quoted', () => {
    const result = parseNginxText('Listen 80; "listen" 81;', 't.conf');
    assert.deepEqual(result.directives.map((d) => d.name), ['Listen', 'listen']);
  });
});

describe('positions', () => {
  test('1-based lines and columns, tabs count one column, CRLF lines', () => {
    const result = parseNginxText('\tlisten\t80;\r\n  server_name  a  b;\r\n', '/etc/x.conf');
    const [listen, name] = result.directives;
    assert.deepEqual(listen!.loc, { file: '/etc/x.conf', line: 1, column: 2 });
    assert.deepEqual(listen!.argLocs.map(at), ['1:9']);
    assert.equal(at(name!.loc), '2:3');
    assert.deepEqual(name!.argLocs.map(at), ['2:16', '2:19']);
  });

  test('a character outside the BMP is one column', () => {
    assert.deepEqual(only('a "\u{1F600}" b;').argLocs.map(at), ['1:3', '1:7']);
  });
});

describe('errors', () => {
  const cases: [string, string, string[]][] = [
    ['"}" at top level', 'a;\n}\nb;', ['2:1 unexpected "}"']],
    ['"}" ending a directive', 'server {\n  listen 80 }\n', ['2:13 unexpected "}"']],
    ['"}" right after a quote', 'server {\n  listen "80"}\n', ['2:14 unexpected "}"']],
    ['end of file inside a directive', 'a;\nlisten 80', ['2:10 unexpected end of file, expecting ";" or "}"']],
    ['end of file after a quoted word', 'listen "80"\n', ['2:1 unexpected end of file, expecting ";" or "}"']],
    ['end of file inside a block', 'http {\n  a;\n', ['3:1 unexpected end of file, expecting "}"']],
    ['"{" with no directive name', 'a;\n  { b; }\nc;', ['2:3 unexpected "{"']],
    ['";" with no directive name', 'a;\n ;\nb;', ['2:2 unexpected ";"']],
    ['character glued to a closing quote', 'a "b"c;', ['1:6 unexpected "c"']],
    ['comment glued to a closing quote', "a 'b'#c\n;", ['1:6 unexpected "#"']],
    ['unterminated double quote', 'a;\nb "c;\nd;\n', ['2:3 unbalanced quotes: missing terminating " character']],
    ['unterminated single quote', "http {\n  b 'c;\n}\n", ["2:5 unbalanced quotes: missing terminating ' character"]],
  ];
  for (const [name, text, expected] of cases) {
    test(name, () => assert.deepEqual(diagnostics(parseNginxText(text, 't.conf')), expected));
  }

  test('diagnostics carry the file and, when known, the directive', () => {
    const [d] = parseNginxText('listen "80"x;', '/etc/nginx/x.conf').diagnostics;
    assert.deepEqual(d, { loc: { file: '/etc/nginx/x.conf', line: 1, column: 12 }, message: 'unexpected "x"', directive: 'listen' });
  });

  test('recovery keeps the surrounding tree', () => {
    const result = parseNginxText('server {\n  listen 80 }\nb "c"d;\n{ e; }\nf;', 't.conf');
    assert.deepEqual(shape(result.directives), [['server', [], [['listen', ['80']]]], ['b', ['c', 'd']], ['f', []]]);
  });

  test('several errors in one file are reported together, in order', () => {
    const text = [';', 'a "b"c;', '}', 'ok 1;', 'server {', '  listen 80 }', '{ x; }', 'd "e;'].join('\n');
    const result = parseNginxText(text, 't.conf');
    assert.deepEqual(diagnostics(result), [
      '1:1 unexpected ";"',
      '2:6 unexpected "c"',
      '3:1 unexpected "}"',
      '6:13 unexpected "}"',
      '7:1 unexpected "{"',
      '8:3 unbalanced quotes: missing terminating " character',
    ]);
    assert.deepEqual(result.directives.map((d) => d.name), ['a', 'ok', 'server', 'd']);
  });

  test('one end-of-file error, however many blocks are open', () => {
    assert.deepEqual(diagnostics(parseNginxText('a {\n b {\n  c {\n', 't.conf')), ['4:1 unexpected end of file, expecting "}"']);
    assert.deepEqual(diagnostics(parseNginxText('a {\n b {\n  c', 't.conf')), ['3:4 unexpected end of file, expecting ";" or "}"']);
  });

  test('deep nesting does not overflow the stack', () => {
    const depth = 100_000;
    const result = parseNginxText('a {'.repeat(depth) + '}'.repeat(depth), 't.conf');
    assert.deepEqual(result.diagnostics, []);
    const stray = parseNginxText('{'.repeat(depth) + '}'.repeat(depth + 1), 't.conf');
    assert.equal(stray.diagnostics.length, depth + 1);
  });
});

describe('include', () => {
  let root = '';
  const write = (relative: string, text: string): string => {
    const file = path.join(root, relative);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  };
  const parseMain = (text: string): ParseResult => parseNginxFile(write('nginx.conf', text));

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-nginx-parse-'));
    // Written out of order, so sorted results are not an accident of creation order.
    write('conf.d/b.conf', 'server { listen 81; }\n');
    write('conf.d/a.conf', '\nserver {\n  listen 80;\n  include snippets/common.conf;\n}\n');
    write('conf.d/9-late.conf', 'nine;\n');
    write('conf.d/10-early.conf', 'ten;\n');
    write('conf.d/B-upper.conf', 'upper;\n');
    write('conf.d/.hidden.conf', 'hidden;\n');
    write('conf.d/notes.txt', 'notes;\n');
    // Would be picked if includes resolved against the including file's directory.
    write('conf.d/snippets/common.conf', 'wrong_directory;\n');
    write('snippets/common.conf', 'proxy_set_header Host $host;\n');
    write('mime.types', 'types {\n  text/html html;\n}\n');
  });

  after(() => fs.rmSync(root, { recursive: true, force: true }));

  test('globs splice sorted files, relative to the prefix, with their own locations', () => {
    const result = parseMain('http {\n  include conf.d/[ab].conf;\n  include mime.types;\n}\n');
    assert.deepEqual(result.diagnostics, []);
    assert.deepEqual(shape(result.directives), [
      ['http', [], [
        ['server', [], [['listen', ['80']], ['proxy_set_header', ['Host', '$host']]]],
        ['server', [], [['listen', ['81']]]],
        ['types', [], [['text/html', ['html']]]],
      ]],
    ]);
    const server = child(result.directives[0], 'server');
    assert.deepEqual(server.loc, { file: path.join(root, 'conf.d/a.conf'), line: 2, column: 1 });
    assert.deepEqual(child(server, 'proxy_set_header').loc, { file: path.join(root, 'snippets/common.conf'), line: 1, column: 1 });
    assert.deepEqual(result.files, ['nginx.conf', 'conf.d/a.conf', 'snippets/common.conf', 'conf.d/b.conf', 'mime.types'].map((f) => path.join(root, f)));
  });

  test('"*" sorts byte-wise and skips hidden files', () => {
    const result = parseMain('include conf.d/*.conf;');
    assert.deepEqual(result.diagnostics, []);
    assert.deepEqual(result.directives.map((d) => d.name), ['ten', 'nine', 'upper', 'server', 'server']);
    assert.deepEqual(parseMain('include conf.d/.*.conf;').directives.map((d) => d.name), ['hidden']);
  });

  test('wildcards in a directory segment', () => {
    assert.deepEqual(parseMain('include */common.conf;').directives.map((d) => d.name), ['proxy_set_header']);
    assert.deepEqual(parseMain('include conf.d/*/common.conf;').directives.map((d) => d.name), ['wrong_directory']);
  });

  test('a glob that matches nothing is not an error', () => {
    const result = parseMain('include nowhere/*.conf;\ninclude conf.d/*.none;\na;');
    assert.deepEqual(result.diagnostics, []);
    assert.deepEqual(result.directives.map((d) => d.name), ['a']);
  });

  test('a missing file is an error at the include', () => {
    const result = parseMain('a;\n  include missing.conf;\nb;');
    assert.deepEqual(result.diagnostics, [{
      loc: { file: path.join(root, 'nginx.conf'), line: 2, column: 3 },
      message: `open() "${path.join(root, 'missing.conf')}" failed (No such file or directory)`,
      directive: 'include',
    }]);
    assert.deepEqual(result.directives.map((d) => d.name), ['a', 'b']);
  });

  test('a directory matched by a glob fails to read, as in nginx', () => {
    const result = parseMain('include conf.d/snip*;');
    assert.deepEqual(diagnostics(result), [`1:1 read() "${path.join(root, 'conf.d/snippets')}" failed (Is a directory)`]);
  });

  test('an absolute path ignores the prefix; the prefix option overrides the main file directory', () => {
    const absolute = parseMain(`include ${path.join(root, 'snippets/common.conf')};`);
    assert.deepEqual(absolute.directives.map((d) => d.name), ['proxy_set_header']);
    const main = write('sub/main.conf', 'include snippets/common.conf;');
    assert.deepEqual(parseNginxFile(main, { prefix: root }).directives.map((d) => d.name), ['proxy_set_header']);
    assert.match(diagnostics(parseNginxFile(main))[0] ?? '', /open\(\) ".*sub\/snippets\/common.conf" failed/);
  });

  test('the same file may be included twice; it is listed once', () => {
    const result = parseMain('include snippets/common.conf;\ninclude snippets/common.conf;');
    assert.deepEqual(result.directives.map((d) => at(d.loc)), ['1:1', '1:1']);
    assert.deepEqual(result.files, [path.join(root, 'nginx.conf'), path.join(root, 'snippets/common.conf')]);
  });

  test('cycles are reported, not followed', () => {
    write('loop/a.conf', 'in_a;\ninclude loop/b.conf;\n');
    write('loop/b.conf', 'in_b;\n  include loop/a.conf;\n');
    const result = parseMain('include loop/a.conf;');
    const [a, b, main] = ['loop/a.conf', 'loop/b.conf', 'nginx.conf'].map((f) => path.join(root, f));
    assert.deepEqual(result.diagnostics, [{
      loc: { file: b!, line: 2, column: 3 },
      message: `include cycle: ${main} -> ${a} -> ${b} -> ${a}`,
      directive: 'include',
    }]);
    assert.deepEqual(result.directives.map((d) => d.name), ['in_a', 'in_b']);
    const self = parseMain('include *.conf;\nafter;');
    assert.deepEqual(diagnostics(self), [`1:1 include cycle: ${main} -> ${main}`]);
    assert.deepEqual(self.directives.map((d) => d.name), ['after']);
  });

  test('each included file is parsed on its own, like nginx', () => {
    write('bad/stray.conf', 'x;\n}\n');
    write('bad/open.conf', 'y {\n');
    const result = parseMain('http {\n  include bad/stray.conf;\n  include bad/open.conf;\n  z;\n}\n');
    assert.deepEqual(result.diagnostics.map((d) => `${path.relative(root, d.loc!.file)}:${at(d.loc!)} ${d.message}`), [
      'bad/stray.conf:2:1 unexpected "}"',
      'bad/open.conf:2:1 unexpected end of file, expecting "}"',
    ]);
    assert.deepEqual(shape(result.directives), [['http', [], [['x', []], ['y', [], []], ['z', []]]]]);
  });

  test('include syntax errors', () => {
    const result = parseMain('include;\ninclude a b;\ninclude x { y; }\nz;');
    assert.deepEqual(diagnostics(result), [
      '1:1 invalid number of arguments in "include" directive',
      '2:1 invalid number of arguments in "include" directive',
      '3:1 directive "include" is not terminated by ";"',
    ]);
    assert.deepEqual(result.directives.map((d) => d.name), ['z']);
  });

  test('a missing main file is a diagnostic without a location', () => {
    const missing = path.join(root, 'absent.conf');
    const result = parseNginxFile(missing);
    assert.deepEqual(result, {
      directives: [],
      diagnostics: [{ loc: undefined, message: `open() "${missing}" failed (No such file or directory)` }],
      files: [],
    });
  });

  test('readFile and expandGlob can be injected', () => {
    const files = new Map([['/cfg/one.conf', 'one;'], ['/cfg/two.conf', 'two;'], ['/cfg/fixed.conf', 'fixed;']]);
    const globs: string[] = [];
    const result = parseNginxText('include sites/*.conf;\ninclude fixed.conf;\ninclude gone.conf;', '/etc/main.conf', {
      prefix: '/cfg',
      readFile: (file) => {
        const text = files.get(file);
        if (text === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT', syscall: 'open' });
        return text;
      },
      expandGlob: (pattern) => {
        globs.push(pattern);
        return ['/cfg/two.conf', '/cfg/one.conf'];
      },
    });
    assert.deepEqual(globs, ['/cfg/sites/*.conf']);
    assert.deepEqual(result.directives.map((d) => d.name), ['two', 'one', 'fixed']);
    assert.deepEqual(result.files, ['/etc/main.conf', '/cfg/two.conf', '/cfg/one.conf', '/cfg/fixed.conf']);
    assert.deepEqual(diagnostics(result), ['3:1 open() "/cfg/gone.conf" failed (No such file or directory)']);
  });
});

/**
 * Runs in a worker thread, so that a parser stuck in a loop can be stopped by
 * the watchdog below and reported as a failure instead of hanging the suite.
 * Self-contained: its source is sent to the worker as text.
 */
async function fuzzInWorker(): Promise<void> {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { parseNginxText: parse } = (await import(workerData.parseModule)) as typeof import('../../src/config/nginx/parse.js');
  const alphabet = ['{', '}', ';', '"', "'", '\\', '#', '$', 'a', 'b', '\n', ' '];
  let seed = workerData.seed as number;
  const random = (): number => {
    // mulberry32: a tiny seeded generator, so a failure can be replayed.
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const checkTree = (directives: { args: string[]; quoted: boolean[]; argLocs: unknown[]; block?: unknown[] }[]): void => {
    for (const d of directives) {
      if (d.args.length !== d.quoted.length || d.args.length !== d.argLocs.length) throw new Error('ragged directive');
      if (d.block) checkTree(d.block as typeof directives);
    }
  };
  let diagnosticsSeen = 0;
  for (let run = 0; run < workerData.runs; run++) {
    const length = Math.floor(random() * 80);
    let text = '';
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
    try {
      const result = parse(text, 'fuzz.conf');
      checkTree(result.directives);
      const lines = text.split('\n').length;
      for (const d of result.diagnostics) {
        if (!d.loc || d.loc.line < 1 || d.loc.line > lines || d.loc.column < 1) throw new Error(`bad location ${JSON.stringify(d)}`);
      }
      diagnosticsSeen += result.diagnostics.length;
    } catch (error) {
      parentPort?.postMessage({ failed: true, input: text, error: String(error) });
      return;
    }
  }
  parentPort?.postMessage({ failed: false, diagnosticsSeen });
}

test('fuzz: 2,000 random inputs never throw and always terminate', async () => {
  const parseModule = new URL('../../src/config/nginx/parse.js', import.meta.url).href;
  const worker = new Worker(`(${fuzzInWorker.toString()})()`, {
    eval: true,
    workerData: { parseModule, runs: 2000, seed: 20240601 },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = await Promise.race([
      new Promise<{ failed: boolean; input?: string; error?: string; diagnosticsSeen?: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('parser did not terminate within 20s')), 20_000);
      }),
    ]);
    assert.equal(outcome.failed, false, `input ${JSON.stringify(outcome.input)}: ${outcome.error}`);
    // The alphabet is mostly punctuation, so most inputs are broken: errors must be seen.
    assert.ok((outcome.diagnosticsSeen ?? 0) > 1000);
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
});
