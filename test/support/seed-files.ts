/**
 * The seed's configuration files, copied verbatim into test/fixtures/seed/
 * so that tests need nothing outside the repository.
 */
import { fileURLToPath } from 'node:url';

/** test/fixtures/seed/ (this file runs from dist/test/support/). */
export const SEED_FIXTURE_DIR = fileURLToPath(new URL('../../../test/fixtures/seed/', import.meta.url));
export const SEED_CONFIG = `${SEED_FIXTURE_DIR}nginx.conf`;
