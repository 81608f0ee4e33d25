/**
 * nginx's rewrite module (ngx_http_rewrite_module): `rewrite`, `set`,
 * `break`, `return` and `if` run in configuration order, at the server level
 * before location matching and at the location level after it. A rewrite
 * that changes the URI without `break` makes the request look for its
 * location again (at most 10 times, then 500), as in nginx.
 */
import * as fs from 'node:fs';
import type { IfCondition, RewriteOpConfig } from '../config/schema.js';
import type { ReturnRuntime } from './table.js';
import type { Template } from '../variables/template.js';
import type { VariableContext } from '../variables/context.js';

export type RewriteRuntimeOp =
  | { kind: 'rewrite'; regex: RegExp; replacement: Template; flag: 'last' | 'break' | 'redirect' | 'permanent' | undefined; redirect: boolean }
  | { kind: 'set'; name: string; value: Template }
  | { kind: 'break' }
  | { kind: 'return'; ret: ReturnRuntime }
  | { kind: 'if'; test: (ctx: VariableContext) => RegExpExecArray | boolean; ops: readonly RewriteRuntimeOp[] };

/** How a program ended. */
export const enum RewriteOutcome {
  /** Ran to its end. */
  Continue,
  /** `break` (or a rewrite's `break` flag): no more rewrite directives; the location stays. */
  Break,
  /** A rewrite's `last` flag: look for the location of the new URI. */
  Last,
  /** A response was sent (return, or a redirecting rewrite). */
  Done,
}

/** What a program acts on: the Exchange. */
export interface RewriteSubject extends VariableContext {
  uri: string;
  args: string;
  captures: readonly string[] | null;
  setVariable(name: string, value: string): void;
  /** Sets a rewritten URI (normalised); false when it is invalid (the subject has answered 400). */
  rewriteUri(uri: string): boolean;
  rewriteReturn(ret: ReturnRuntime): void;
  rewriteRedirect(code: number, url: string): void;
}

export function runRewrites(ops: readonly RewriteRuntimeOp[], s: RewriteSubject): RewriteOutcome {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.kind) {
      case 'set':
        s.setVariable(op.name, op.value.constant ?? op.value.expand(s));
        break;
      case 'break':
        return RewriteOutcome.Break;
      case 'return':
        s.rewriteReturn(op.ret);
        return RewriteOutcome.Done;
      case 'if': {
        const hit = op.test(s);
        if (hit === false) break;
        if (hit !== true) s.captures = [...hit];
        const outcome = runRewrites(op.ops, s);
        if (outcome !== RewriteOutcome.Continue) return outcome;
        break;
      }
      case 'rewrite': {
        const m = op.regex.exec(s.uri);
        if (m === null) break;
        s.captures = [...m];
        const replaced = op.replacement.constant ?? op.replacement.expand(s);
        if (op.redirect) {
          // nginx appends the request's arguments to a redirect unless the replacement ends with "?" or has its own.
          const url = replaced.endsWith('?') ? replaced.slice(0, -1) : replaced.includes('?') || s.args === '' ? replaced : replaced + '?' + s.args;
          s.rewriteRedirect(op.flag === 'permanent' ? 301 : 302, url);
          return RewriteOutcome.Done;
        }
        const q = replaced.indexOf('?');
        if (q >= 0) {
          const own = replaced.slice(q + 1);
          // "?" at the end: the new arguments replace the old ones; else the old ones follow.
          s.args = own.endsWith('?') ? own.slice(0, -1) : s.args === '' ? own : own === '' ? s.args : own + '&' + s.args;
        }
        if (!s.rewriteUri(q >= 0 ? replaced.slice(0, q) : replaced)) return RewriteOutcome.Done;
        if (op.flag === 'last') return RewriteOutcome.Last;
        if (op.flag === 'break') return RewriteOutcome.Break;
        break;
      }
    }
  }
  return RewriteOutcome.Continue;
}

/** The names `set` gives values to, anywhere in these programs. */
export function setVariableNames(ops: readonly RewriteOpConfig[] | undefined, into: Set<string>): void {
  if (ops === undefined) return;
  for (const op of ops) {
    if (op.op === 'set') into.add(op.variable);
    else if (op.op === 'if') setVariableNames(op.ops, into);
  }
}

/**
 * An `if` condition as a test. Regex matches give their captures ($1..$9 after the `if`).
 * File tests look at the disk synchronously: they are rare, and a stat of a cached inode is microseconds.
 */
export function compileCondition(c: IfCondition, subject: Template, operand: Template | undefined, regex: RegExp | undefined): (ctx: VariableContext) => RegExpExecArray | boolean {
  const value = (ctx: VariableContext): string => subject.constant ?? subject.expand(ctx);
  switch (c.operator) {
    case undefined:
      return (ctx) => {
        const v = value(ctx);
        return v !== '' && v !== '0';
      };
    case '=':
      return (ctx) => value(ctx) === (operand!.constant ?? operand!.expand(ctx));
    case '!=':
      return (ctx) => value(ctx) !== (operand!.constant ?? operand!.expand(ctx));
    case '~':
    case '~*':
      return (ctx) => regex!.exec(value(ctx)) ?? false;
    case '!~':
    case '!~*':
      return (ctx) => !regex!.test(value(ctx));
    default: {
      const negate = c.operator.startsWith('!');
      const test = c.operator.slice(negate ? 2 : 1);
      return (ctx) => fileTest(value(ctx), test) !== negate;
    }
  }
}

function fileTest(file: string, test: string): boolean {
  try {
    const st = fs.statSync(file);
    if (test === 'f') return st.isFile();
    if (test === 'd') return st.isDirectory();
    if (test === 'x') return (st.mode & 0o111) !== 0 && st.isFile();
    return true;
  } catch {
    return false;
  }
}
