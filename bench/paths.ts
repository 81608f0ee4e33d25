/**
 * Where things are. The harness runs compiled from dist/bench/ (clients from
 * dist/bench/clients/), but reads its config templates from the source tree
 * (bench/configs/), so paths are resolved relative to this compiled file.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: dist/bench/paths.js -> ../../ */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Config templates (nginx-syntax proxy config, backend config, HAProxy config). */
export const CONFIG_DIR = join(REPO_ROOT, 'bench', 'configs');

/** Compiled load clients that run as their own (pinned) processes. */
export const CLIENTS_DIR = fileURLToPath(new URL('./clients/', import.meta.url));

/** The document whose results section `--write` replaces. */
export const DOC_PATH = join(REPO_ROOT, 'docs', 'benchmarks.md');
