/**
 * The status page (GET /status on the admin listener): one self-contained
 * HTML document, no external resources. It subscribes to /api/events
 * (server-sent events, one status snapshot per second) and redraws every
 * upstream and server: state, request rate, error rate, latency, requests in
 * flight and connections. Cards reflow to one column on a phone.
 *
 * With an admin token entered (kept in the browser's localStorage), each
 * server gets Drain and Enable buttons, which call the admin API with
 * `Authorization: Bearer <token>`.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fulcrum status</title>
<style>
  :root { --bg: #f6f7f9; --card: #fff; --text: #1d232b; --muted: #5f6b7a; --up: #1f8a4c; --down: #c62828; --warn: #b26a00; --off: #6b7280; --line: #dde2e8; }
  @media (prefers-color-scheme: dark) { :root { --bg: #12161b; --card: #1b2128; --text: #e6e9ed; --muted: #9aa5b1; --line: #2c343d; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
  header { display: flex; flex-wrap: wrap; gap: .5rem 1.25rem; align-items: baseline; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); position: sticky; top: 0; }
  header h1 { font-size: 1.15rem; margin: 0; }
  .meta { color: var(--muted); font-size: .9rem; }
  #live { font-size: .85rem; padding: .1rem .5rem; border-radius: 1rem; background: var(--off); color: #fff; }
  #live.on { background: var(--up); }
  main { padding: 1rem; max-width: 1200px; margin: 0 auto; }
  section { margin-bottom: 1.5rem; }
  section h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
  section h2 small { color: var(--muted); font-weight: normal; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: .75rem; }
  .server { background: var(--card); border: 1px solid var(--line); border-left: 6px solid var(--off); border-radius: 8px; padding: .6rem .75rem; }
  .server[data-state="up"] { border-left-color: var(--up); }
  .server[data-state="full"] { border-left-color: var(--warn); }
  .server[data-state="down"], .server[data-state="unhealthy"] { border-left-color: var(--down); }
  .server[data-state="draining"] { border-left-color: var(--warn); }
  .top { display: flex; justify-content: space-between; gap: .5rem; align-items: baseline; }
  .addr { font-weight: 600; word-break: break-all; }
  .state { font-size: .8rem; font-weight: 700; text-transform: uppercase; padding: .05rem .45rem; border-radius: .3rem; color: #fff; background: var(--off); white-space: nowrap; }
  .server[data-state="up"] .state { background: var(--up); }
  .server[data-state="down"] .state, .server[data-state="unhealthy"] .state { background: var(--down); }
  .server[data-state="draining"] .state, .server[data-state="full"] .state { background: var(--warn); }
  .tags { color: var(--muted); font-size: .8rem; margin: .1rem 0 .4rem; }
  dl { display: grid; grid-template-columns: repeat(3, 1fr); gap: .2rem .5rem; margin: 0; }
  dt { color: var(--muted); font-size: .75rem; }
  dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600; }
  .actions { display: flex; gap: .5rem; margin-top: .5rem; }
  .actions[hidden] { display: none; }
  button { font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid var(--line); background: var(--bg); color: var(--text); cursor: pointer; min-height: 2.4rem; }
  button:hover { border-color: var(--muted); }
  form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin-left: auto; }
  input { font: inherit; padding: .4rem .5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--text); width: 12rem; }
  #message { min-height: 1.4rem; color: var(--muted); }
  #message.error { color: var(--down); }
</style>
</head>
<body>
<header>
  <h1>fulcrum</h1>
  <span class="meta" id="summary">connecting…</span>
  <span id="live">offline</span>
  <form id="token-form" autocomplete="off">
    <input id="token" type="password" placeholder="admin token" aria-label="admin token">
    <button type="submit" id="token-save">Use token</button>
    <button type="button" id="token-clear" hidden>Forget token</button>
  </form>
</header>
<main>
  <div id="message" role="status"></div>
  <div id="upstreams"></div>
</main>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = 'fulcrum-admin-token';
  let token = '';
  try { token = localStorage.getItem(KEY) || ''; } catch (e) {}
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get('token')) { token = hash.get('token'); history.replaceState(null, '', location.pathname + location.search); }
  let last = null;

  function setToken(t) {
    token = t;
    try { if (t) localStorage.setItem(KEY, t); else localStorage.removeItem(KEY); } catch (e) {}
    $('token').value = '';
    $('token').hidden = !!t; $('token-save').hidden = !!t; $('token-clear').hidden = !t;
    if (last) render(last);
  }
  $('token-form').addEventListener('submit', (e) => { e.preventDefault(); if ($('token').value) setToken($('token').value); });
  $('token-clear').addEventListener('click', () => setToken(''));
  setToken(token);

  const fmt = {
    rate: (v) => v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2),
    pct: (v) => (v * 100).toFixed(v > 0 && v < 0.1 ? 1 : 0) + '%',
    ms: (v) => v >= 100 ? v.toFixed(0) + ' ms' : v.toFixed(1) + ' ms',
  };
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function say(text, error) { const m = $('message'); m.textContent = text; m.className = error ? 'error' : ''; }

  async function act(upstream, server, action) {
    say(action + ' ' + server + '…');
    try {
      const res = await fetch('/api/upstreams/' + encodeURIComponent(upstream) + '/servers/' + encodeURIComponent(server) + '/' + action, {
        method: 'POST', headers: { Authorization: 'Bearer ' + token },
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) say(action + ' ' + server + ' failed: ' + (body.error || res.status), true);
      else say(action + ' ' + server + ': done');
    } catch (e) { say(action + ' ' + server + ' failed: ' + e.message, true); }
  }

  function render(v) {
    last = v;
    $('summary').textContent = 'v' + v.version + ' · ' + (v.mode === 'workers' ? v.pids.length + ' workers' : 'pid ' + v.pids[0]) +
      ' · config #' + v.generation + ' · ' + v.connections + ' connections · ' + fmt.rate(v.rps) + ' req/s';
    const root = $('upstreams');
    root.replaceChildren();
    for (const u of v.upstreams) {
      const sec = el('section', { 'data-upstream': u.name });
      const h = el('h2', {}, u.name + ' ');
      h.appendChild(el('small', {}, u.method + (u.implicit ? ' · from proxy_pass' : '') + ' · ' + u.servers.length + ' server' + (u.servers.length === 1 ? '' : 's')));
      sec.appendChild(h);
      const grid = el('div', { class: 'grid' });
      for (const s of u.servers) {
        const card = el('article', { class: 'server', 'data-server': s.address, 'data-state': s.state });
        const top = el('div', { class: 'top' });
        top.appendChild(el('span', { class: 'addr' }, s.address));
        top.appendChild(el('span', { class: 'state' }, s.state));
        card.appendChild(top);
        card.appendChild(el('div', { class: 'tags' }, [s.source, s.backup ? 'backup' : '', 'weight ' + s.weight].filter(Boolean).join(' · ')));
        const dl = el('dl');
        const add = (label, value, cls) => { dl.appendChild(el('dt', {}, label)); dl.appendChild(el('dd', { class: cls }, value)); };
        add('req/s', fmt.rate(s.rps), 'rps');
        add('errors', fmt.pct(s.errorRate), 'errors');
        add('latency', fmt.ms(s.latencyMs), 'latency');
        add('active', String(s.active), 'active');
        add('conns', String(s.connections), 'conns');
        add('requests', String(s.requests), 'requests');
        card.appendChild(dl);
        if (!u.implicit) {
          const actions = el('div', { class: 'actions' });
          actions.hidden = !token;
          const drain = el('button', { type: 'button', 'data-action': 'drain' }, 'Drain');
          drain.addEventListener('click', () => act(u.name, s.address, 'drain'));
          const enable = el('button', { type: 'button', 'data-action': 'enable' }, 'Enable');
          enable.addEventListener('click', () => act(u.name, s.address, 'enable'));
          actions.append(drain, enable);
          card.appendChild(actions);
        }
        grid.appendChild(card);
      }
      sec.appendChild(grid);
      root.appendChild(sec);
    }
  }

  function connect() {
    const source = new EventSource('/api/events' + location.search);
    source.addEventListener('status', (e) => { $('live').textContent = 'live'; $('live').className = 'on'; render(JSON.parse(e.data)); });
    source.onerror = () => { $('live').textContent = 'reconnecting'; $('live').className = ''; };
  }
  connect();
})();
</script>
</body>
</html>
`;
