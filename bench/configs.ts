/**
 * Renders the config templates in bench/configs/ into the run's temp dir.
 * Templates use {{NAME}} placeholders; a placeholder without a value, or a
 * value the template does not use, is an error, so a typo cannot silently
 * produce a config that benchmarks something else.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_DIR } from './paths.js';
import type { TlsFiles } from './tls.js';

export type TemplateValues = Record<string, string | number>;

export function renderTemplate(templateName: string, values: TemplateValues): string {
  const text = readFileSync(join(CONFIG_DIR, templateName), 'utf8');
  const used = new Set<string>();
  const out = text.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_match, name: string) => {
    if (!(name in values)) throw new Error(`${templateName}: no value for {{${name}}}`);
    used.add(name);
    return String(values[name]);
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`${templateName}: template does not use ${unused.join(', ')}`);
  return out;
}

/** Renders a template to outPath and returns outPath. */
export function writeConfig(templateName: string, values: TemplateValues, outPath: string): string {
  writeFileSync(outPath, renderTemplate(templateName, values));
  return outPath;
}

export interface ProxyConfigParams {
  port: number;
  backendPorts: readonly [number, number, number];
  workers: number;
  /** Terminate TLS on the listening port with these files. */
  tls?: TlsFiles;
  /** Render the seed's own server block (seed.conf, which needs `tls`) instead of proxy.conf. */
  seed?: boolean;
}

function backendValues(ports: readonly [number, number, number]): TemplateValues {
  return { BACKEND_PORT_1: ports[0], BACKEND_PORT_2: ports[1], BACKEND_PORT_3: ports[2] };
}

/** The seed's TLS settings (protocols, session cache) with the session's certificate; nothing for plain HTTP. */
function nginxTlsValues(tls: TlsFiles | undefined): TemplateValues {
  if (tls === undefined) return { LISTEN_TLS: '', TLS_DIRECTIVES: '' };
  const directives = [
    `ssl_certificate ${tls.cert};`,
    `ssl_certificate_key ${tls.key};`,
    'ssl_protocols TLSv1.2 TLSv1.3;',
    'ssl_session_cache shared:SSL:10m;',
  ];
  return { LISTEN_TLS: ' ssl', TLS_DIRECTIVES: directives.map((d) => `\n        ${d}`).join('') };
}

/** The nginx-syntax file shared by nginx and fulcrum. */
export function writeProxyConf(dir: string, p: ProxyConfigParams): string {
  if (p.seed) {
    if (p.tls === undefined) throw new Error('seed.conf needs the session certificate');
    return writeConfig(
      'seed.conf',
      { PORT: p.port, WORKER_PROCESSES: p.workers, ...backendValues(p.backendPorts), CERT: p.tls.cert, KEY: p.tls.key },
      join(dir, `seed-${p.port}.conf`),
    );
  }
  return writeConfig(
    'proxy.conf',
    { PORT: p.port, WORKER_PROCESSES: p.workers, ...backendValues(p.backendPorts), ...nginxTlsValues(p.tls) },
    join(dir, `proxy-${p.port}.conf`),
  );
}

/** HAProxy's equivalent, from the same parameters (workers become threads). */
export function writeHaproxyCfg(dir: string, p: ProxyConfigParams, maxconn: number): string {
  if (p.seed) throw new Error('HAProxy has no equivalent of the seed scenario (an nginx configuration)');
  return writeConfig(
    'haproxy.cfg',
    { PORT: p.port, THREADS: p.workers, MAXCONN: maxconn, ...backendValues(p.backendPorts), BIND_TLS: p.tls ? ` ssl crt ${p.tls.pem}` : '' },
    join(dir, `haproxy-${p.port}.cfg`),
  );
}

export function writeBackendsConf(dir: string, ports: readonly [number, number, number]): string {
  return writeConfig('backends.conf', { TMP: dir, ...backendValues(ports) }, join(dir, 'backends.conf'));
}
