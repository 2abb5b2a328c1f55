// KtZeroTrust SOC console: plain JavaScript, no external assets. Data is always inserted as text, never as HTML.
'use strict';

const state = { me: null, antiforgery: null, paused: false, source: null, feedRows: [] };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    credentials: 'same-origin',
    // The anti-forgery token GET /api/me hands out, on every call (the server checks it on writes).
    headers: { 'X-ZT-Console': state.antiforgery || '', ...(options.body ? { 'Content-Type': 'application/json' } : {}), ...(options.headers || {}) },
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) { const e = new Error((body && (body.detail || body.title)) || response.statusText); e.status = response.status; e.body = body; throw e; }
  return body;
}

const time = (t) => t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) : '-';

// ---- sign in ----
// Who is signed in, and the anti-forgery token for this session's writes.
async function whoAmI() {
  try { state.me = await api('/api/me'); state.antiforgery = state.me.antiforgeryToken; } catch { state.me = null; state.antiforgery = null; }
}

async function start() {
  await whoAmI();
  try { $('sso').hidden = !(await api('/api/oidc')).enabled; } catch { $('sso').hidden = true; }
  const error = new URLSearchParams((location.hash.split('?')[1]) || '').get('error');
  if (error) $('login-error').textContent = `Identity provider sign-in refused: ${error}`;
  render();
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  const body = { user: $('login-user').value, password: $('login-password').value };
  if (!$('login-new-row').hidden) body.newPassword = $('login-new').value;
  try {
    await api('/api/login', { method: 'POST', body: JSON.stringify(body) });
    await whoAmI(); // the session's anti-forgery token is bound to the signed-in user
    if (location.hash === '#/feed') render(); else location.hash = '#/feed'; // hashchange renders
  } catch (e) {
    if (e.status === 403 && e.body && e.body.mustChangePassword) {
      $('login-new-row').hidden = false;
      $('login-new').focus();
      $('login-error').textContent = 'One-time password accepted: choose a new password.';
    } else {
      $('login-error').textContent = e.message;
    }
  }
});

$('logout').addEventListener('click', async () => { await api('/api/logout', { method: 'POST' }); state.me = null; stopFeed(); stopAlerts(); render(); });
window.addEventListener('hashchange', render);

function render() {
  const signedIn = !!state.me;
  $('login').hidden = signedIn;
  $('nav').hidden = !signedIn;
  $('logout').hidden = !signedIn;
  $('who').textContent = signedIn ? `${state.me.user} (${state.me.role})` : '';
  const view = $('view');
  view.replaceChildren();
  if (!signedIn) { stopAlerts(); $('login-user').focus(); return; }
  const [, hashView, arg] = (location.hash || '#/feed').split('/');
  const name = (hashView || '').split('?')[0]; // #/capacity?range=day: the view, then its query
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === name);
  if (name !== 'feed') stopFeed();
  watchAlerts();
  const route = (arg || '').split('?')[0];
  const shown = name === 'devices' && route ? deviceView(view, decodeURIComponent(route))
    : name === 'devices' ? devicesView(view)
      : name === 'alerts' ? alertsView(view)
        : name === 'case' && route ? caseView(view, decodeURIComponent(route))
          : name === 'map' ? mapView(view)
            : name === 'capacity' ? capacityView(view)
            : feedView(view);
  Promise.resolve(shown).catch((e) => view.replaceChildren(el('div', { class: 'card' }, el('p', { class: 'error', role: 'alert' }, `Could not load this view: ${e.message}`))));
}

// The query in the address (#/feed?device=FC-0001&outcome=deny): what a shared link carries.
const hashQuery = () => new URLSearchParams(location.hash.split('?')[1] || '');

// ---- open alerts in the navigation: polled, and refreshed on each live alert ----
async function refreshAlertCount() {
  const badge = $('alert-count');
  try {
    const o = await api('/api/alerts/open');
    badge.textContent = String(o.open);
    badge.hidden = o.open === 0;
    badge.className = `badge ${o.bySeverity.critical ? 'sev-critical' : o.bySeverity.high ? 'sev-high' : 'sev-medium'}`;
    badge.setAttribute('aria-label', `${o.open} open alerts: ${Object.entries(o.bySeverity).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}`);
  } catch { badge.hidden = true; }
}

function watchAlerts() {
  if (state.alertSource) return;
  refreshAlertCount();
  state.alertSource = new EventSource('/api/decisions/stream?kind=alert');
  state.alertSource.onmessage = () => {
    refreshAlertCount();
    if ((location.hash || '').startsWith('#/alerts')) { const v = $('view'); v.replaceChildren(); alertsView(v); } // the list follows live alerts
  };
  state.alertTimer = setInterval(refreshAlertCount, 30000);
}

function stopAlerts() {
  if (state.alertSource) { state.alertSource.close(); state.alertSource = null; }
  if (state.alertTimer) { clearInterval(state.alertTimer); state.alertTimer = null; }
}

// ---- live feed ----
function decisionRow(d) {
  return el('tr', { class: `kind-${d.kind}`, 'data-id': d.id },
    el('td', {}, time(d.time)),
    el('td', { class: d.outcome }, d.outcome === 'allow' ? 'allow' : 'DENY'),
    el('td', {}, d.reason),
    el('td', {}, d.subject ? (d.listener === 'user' || d.listener === 'console' ? d.subject : el('a', { href: `#/devices/${encodeURIComponent(d.subject)}` }, d.subject)) : '-'),
    el('td', {}, d.sourceAddress || '-'),
    el('td', {}, d.kind),
    el('td', {}, d.listener),
    el('td', { title: d.detail || '' }, [d.route, d.path].filter(Boolean).join(' ') || '-'));
}

function decisionTable(id) {
  return el('table', { id },
    el('thead', {}, el('tr', {}, ...['Time (UTC)', 'Outcome', 'Reason', 'Subject', 'Source', 'Kind', 'Listener', 'Route / path'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', { 'aria-live': 'polite' }));
}

function feedView(view) {
  const q = hashQuery();
  const outcome = el('select', { id: 'f-outcome' }, el('option', { value: '' }, 'any'), el('option', { value: 'deny' }, 'deny'), el('option', { value: 'allow' }, 'allow'));
  outcome.value = q.get('outcome') || '';
  const reason = el('input', { id: 'f-reason', placeholder: 'e.g. device_revoked', value: q.get('reason') || '' });
  const device = el('input', { id: 'f-device', placeholder: 'serial', value: q.get('device') || '' });
  const site = el('input', { id: 'f-site', placeholder: 'site id', value: q.get('site') || '' });
  const since = el('input', { id: 'f-since', type: 'datetime-local', step: '1', value: localInput(q.get('since')) });
  const until = el('input', { id: 'f-until', type: 'datetime-local', step: '1', value: localInput(q.get('until')) });
  const pause = el('button', { id: 'pause', type: 'button', class: 'secondary' }, 'Pause');
  const apply = el('button', { id: 'apply', type: 'button' }, 'Apply filters');
  const clear = el('button', { id: 'clear', type: 'button', class: 'secondary' }, 'Clear');
  const status = el('span', { id: 'feed-status', class: 'muted', role: 'status' }, '');
  const csv = el('a', { id: 'export-csv', class: 'button secondary', href: '#', download: '' }, 'Export CSV');
  const ocsf = el('a', { id: 'export-ocsf', class: 'button secondary', href: '#', download: '' }, 'Export OCSF');
  const share = el('button', { id: 'share', type: 'button', class: 'secondary' }, 'Copy link');
  const range = el('select', { id: 'chart-range', 'aria-label': 'Chart range' }, ...[['hour', 'Last hour'], ['day', 'Last day'], ['week', 'Last week'], ['custom', 'Custom (since/until)']].map(([v, t]) => el('option', { value: v }, t)));
  range.value = q.get('range') || 'hour';
  view.append(
    el('div', { class: 'grid2' },
      el('div', { class: 'card' },
        el('div', { class: 'toolbar' }, el('h2', { id: 'chart-title' }, 'Allowed and denied'), el('label', {}, 'Range', range)),
        el('div', { id: 'chart' }), el('div', { id: 'chart-legend', class: 'legend' })),
      el('div', { class: 'card' }, el('h2', {}, 'Top deny reasons'), el('ol', { id: 'top-reasons' }))),
    el('div', { class: 'card' },
      el('h2', {}, 'Decisions'),
      el('div', { class: 'toolbar' }, el('label', {}, 'Outcome', outcome), el('label', {}, 'Reason', reason), el('label', {}, 'Device', device), el('label', {}, 'Site', site),
        el('label', {}, 'Since (UTC)', since), el('label', {}, 'Until (UTC)', until), apply, clear, pause, csv, ocsf, share, status),
      el('div', { class: 'scroll' }, decisionTable('feed'))));
  pause.addEventListener('click', () => { state.paused = !state.paused; pause.textContent = state.paused ? 'Resume' : 'Pause'; status.textContent = state.paused ? 'paused: new decisions are held' : 'live'; if (!state.paused) flushHeld(); });
  apply.addEventListener('click', () => startFeed());
  clear.addEventListener('click', () => { for (const i of [reason, device, site, since, until]) i.value = ''; outcome.value = ''; startFeed(); });
  share.addEventListener('click', async () => {
    const link = `${location.origin}/#/feed?${filters()}${range.value !== 'hour' ? `&range=${range.value}` : ''}`;
    try { await navigator.clipboard.writeText(link); status.textContent = 'link copied'; } catch { status.textContent = link; }
  });
  range.addEventListener('change', () => summary());
  startFeed();
  summary();
}

// datetime-local shows UTC here (the console's times are UTC throughout).
const localInput = (iso) => iso ? new Date(iso).toISOString().slice(0, 19) : '';
const fromInput = (v) => v ? new Date(`${v}Z`).toISOString() : '';

function filters() {
  const p = new URLSearchParams();
  const o = $('f-outcome')?.value, r = $('f-reason')?.value.trim(), d = $('f-device')?.value.trim(), s = $('f-site')?.value.trim();
  const from = fromInput($('f-since')?.value), to = fromInput($('f-until')?.value);
  if (o) p.set('outcome', o); if (r) p.set('reason', r); if (d) p.set('device', d); if (s) p.set('site', s);
  if (from) p.set('since', from); if (to) p.set('until', to);
  return p;
}

async function startFeed() {
  stopFeed();
  const generation = state.generation = (state.generation || 0) + 1; // a newer start supersedes this one
  const body = document.querySelector('#feed tbody');
  body.replaceChildren();
  const p = filters();
  p.set('limit', '100');
  for (const [a, format] of [['export-csv', 'csv'], ['export-ocsf', 'ocsf']]) { const link = $(a); if (link) link.href = `/api/decisions/export?format=${format}&${filters()}`; }
  // Live stream first, history second: a decision made between the two is in one or the other (rows are de-duplicated
  // by id), never in neither. Live rows wait in 'held' until the history is shown.
  state.held = [];
  let loading = true;
  state.source = new EventSource(`/api/decisions/stream?${filters()}`);
  state.source.onmessage = (m) => { const d = JSON.parse(m.data); if (state.paused || loading) state.held.push(d); else addRow(d); };
  const opened = new Promise((resolve) => { state.source.onopen = () => { const s = $('feed-status'); if (s && !state.paused) s.textContent = 'live'; resolve(); }; });
  await Promise.race([opened, new Promise((r) => setTimeout(r, 5000))]);
  const initial = await api(`/api/decisions?${p}`);
  if (generation !== state.generation || !body.isConnected) return;
  for (const d of initial) body.append(decisionRow(d));
  if (!initial.length) body.append(el('tr', { class: 'empty' }, el('td', { colspan: '8', class: 'muted' }, 'No decisions match.')));
  loading = false;
  if (!state.paused) flushHeld();
  state.timer = setInterval(summary, 10000);
}

function addRow(d) {
  const body = document.querySelector('#feed tbody');
  if (!body || body.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`)) return; // at least once: shown once
  body.querySelector('tr.empty')?.remove();
  body.prepend(decisionRow(d));
  while (body.rows.length > 500) body.deleteRow(-1);
}

function flushHeld() { for (const d of state.held.splice(0)) addRow(d); }

function stopFeed() {
  if (state.source) { state.source.close(); state.source = null; }
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
}

// Colours of the chart's series: allowed, then deny reasons (fixed order of first appearance); all >= 3:1 on white.
const palette = ['#b3261e', '#d9480f', '#8e44ad', '#a61e4d', '#5f3dc4', '#c2255c', '#e8590c', '#862e9c'];
const svgEl = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c));
  return node;
};

async function summary() {
  const range = $('chart-range')?.value || 'hour';
  const p = new URLSearchParams({ range });
  if (range === 'custom') {
    const from = fromInput($('f-since')?.value), to = fromInput($('f-until')?.value);
    if (!from || !to) { $('chart').replaceChildren(el('p', { class: 'muted' }, 'Set Since and Until for a custom range.')); return; }
    p.set('since', from); p.set('until', to);
  }
  let s;
  try { s = await api(`/api/summary?${p}`); } catch (e) { const c = $('chart'); if (c) c.replaceChildren(el('p', { class: 'error' }, e.message)); return; }
  const chart = $('chart');
  if (!chart) return;
  const reasons = [...new Set(s.buckets.flatMap((b) => Object.keys(b.denyByReason)))];
  const colour = (r) => palette[reasons.indexOf(r) % palette.length];
  const { svg, slot, left, top, bottom, H, labelEvery, stack, finish } = barFrame(s.buckets.length, Math.max(...s.buckets.map((b) => b.allow + b.deny)),
    { role: 'group', 'aria-label': `Decisions per ${s.bucketSeconds / 60} minutes, ${s.range}` });
  s.buckets.forEach((b, i) => {
    const x = left + i * slot;
    const end = new Date(new Date(b.at).getTime() + s.bucketSeconds * 1000).toISOString();
    const bar = svgEl('g', { class: 'bar', tabindex: '0', role: 'button', 'aria-label': `${time(b.at)}: ${b.allow} allowed, ${b.deny} denied${b.deny ? ` (${Object.entries(b.denyByReason).map(([r, n]) => `${r} ${n}`).join(', ')})` : ''}. Show these decisions.` });
    stack(bar, x, [[b.allow, '#1f8a4c'], ...Object.entries(b.denyByReason).sort().map(([r, n]) => [n, colour(r)])]);
    bar.append(svgEl('rect', { x, width: slot, y: top, height: H - top - bottom, fill: 'transparent' }), svgEl('title', {}, bar.getAttribute('aria-label')));
    const pick = () => { $('f-since').value = localInput(b.at); $('f-until').value = localInput(end); if (b.deny && !b.allow) $('f-outcome').value = 'deny'; startFeed(); };
    bar.addEventListener('click', pick);
    bar.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
    svg.append(bar);
    if (i % labelEvery === 0) {
      const at = new Date(b.at);
      const label = s.bucketSeconds >= 86400 || s.range === 'week' ? at.toISOString().slice(5, 13).replace('T', ' ') + 'h' : at.toISOString().slice(11, 16);
      svg.append(svgEl('text', { x: x + slot / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis' }, label));
    }
  });
  chart.replaceChildren(finish());
  $('chart-title').textContent = `Allowed and denied per ${s.bucketSeconds >= 3600 ? `${s.bucketSeconds / 3600} h` : `${s.bucketSeconds / 60} min`} (UTC)${s.stored ? '' : ', live only'}`;
  $('chart-legend').replaceChildren(el('span', {}, el('i', { class: 'swatch' }), 'allowed'), ...reasons.map((r) => el('span', {}, el('i', { class: 'swatch', 'data-colour': colour(r) }), r)));
  for (const sw of $('chart-legend').querySelectorAll('i[data-colour]')) sw.style.background = sw.dataset.colour; // CSSOM, not inline style text (CSP)
  $('chart-legend').querySelector('i:not([data-colour])').style.background = '#1f8a4c';
  $('top-reasons').replaceChildren(...(s.topDenyReasons.length ? s.topDenyReasons.map((r) => el('li', {}, el('a', { href: `#/feed?outcome=deny&reason=${encodeURIComponent(r.reason)}` }, r.reason), `: ${r.count}`)) : [el('li', { class: 'muted' }, 'no denials in this range')]));
}

// The frame both bar charts draw in: the scale, the grid and its labels; finish() adds the axes over the bars.
function barFrame(count, highest, attrs) {
  const [W, H, left, bottom, top] = [640, 190, 46, 26, 8];
  const max = Math.max(1, highest);
  const step = niceStep(max);
  const yMax = Math.ceil(max / step) * step;
  const y = (v) => top + (H - top - bottom) * (1 - v / yMax);
  const slot = (W - left - 4) / Math.max(1, count);
  const svg = svgEl('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, ...attrs });
  for (let v = 0; v <= yMax; v += step) {
    svg.append(svgEl('line', { x1: left, x2: W - 2, y1: y(v), y2: y(v), class: 'grid' }), svgEl('text', { x: left - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, String(v)));
  }
  // One bar of stacked [value, fill] segments at x, bottom up.
  const stack = (bar, x, segments) => {
    let base = 0;
    for (const [value, fill] of segments) {
      if (value > 0) bar.append(svgEl('rect', { x: x + 1, width: Math.max(1, slot - 2), y: y(base + value), height: Math.max(0.5, y(base) - y(base + value)), fill }));
      base += value;
    }
  };
  const finish = () => {
    svg.append(svgEl('line', { x1: left, x2: left, y1: top, y2: H - bottom, class: 'axisline' }), svgEl('line', { x1: left, x2: W - 2, y1: H - bottom, y2: H - bottom, class: 'axisline' }));
    return svg;
  };
  return { svg, slot, left, top, bottom, H, labelEvery: Math.ceil(count / 8), stack, finish };
}

function niceStep(max) {
  const raw = max / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  return Math.max(1, [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw) || p * 10); // whole decisions
}

// ---- devices ----
async function devicesView(view) {
  const stateSel = el('select', { id: 'd-state' }, el('option', { value: '' }, 'any'), ...['Provisioned', 'Active', 'Suspended', 'Revoked', 'Decommissioned'].map((s) => el('option', { value: s }, s)));
  const q = el('input', { id: 'd-q', placeholder: 'serial or model' });
  const body = el('tbody');
  const go = el('button', { type: 'button' }, 'Search');
  view.append(el('div', { class: 'card' }, el('h2', {}, 'Device inventory'),
    el('div', { class: 'toolbar' }, el('label', {}, 'State', stateSel), el('label', {}, 'Search', q), go),
    el('table', { id: 'devices' }, el('thead', {}, el('tr', {}, ...['Serial', 'State', 'Model', 'Site', 'Firmware', 'Last seen', 'Source', 'Certificate expiry'].map((h) => el('th', { scope: 'col' }, h)))), body)));
  const load = async () => {
    const p = new URLSearchParams({ pageSize: '200' });
    if (stateSel.value) p.set('state', stateSel.value);
    if (q.value.trim()) p.set('q', q.value.trim());
    const result = await api(`/api/devices?${p}`);
    body.replaceChildren(...result.items.map((d) => el('tr', {},
      el('td', {}, el('a', { href: `#/devices/${encodeURIComponent(d.serial)}` }, d.serial)),
      el('td', { class: `state-${d.state}` }, d.state), el('td', {}, d.model), el('td', {}, d.site || '-'), el('td', {}, d.firmware || '-'),
      el('td', {}, time(d.lastSeen)), el('td', {}, d.sourceAddress || '-'), el('td', {}, time(d.certificateExpiry)))));
  };
  go.addEventListener('click', load);
  q.addEventListener('keydown', (e) => { if (e.key === 'Enter') load(); });
  await load();
}

async function deviceView(view, serial) {
  const data = await api(`/api/devices/${encodeURIComponent(serial)}`);
  const d = data.device;
  const isAdmin = state.me.role === 'soc-admin';
  const action = el('select', { id: 'action', disabled: !isAdmin }, ...['suspend', 'resume', 'revoke', 'decommission'].map((a) => el('option', { value: a }, a)));
  const reason = el('input', { id: 'action-reason', placeholder: 'reason (required, audited)', disabled: !isAdmin, required: true });
  const submit = el('button', { id: 'action-submit', type: 'submit', class: 'danger', disabled: !isAdmin }, 'Apply');
  const message = el('p', { id: 'action-message', role: 'status' }, isAdmin ? '' : 'Actions need the soc-admin role.');
  const form = el('form', { class: 'toolbar' }, el('label', {}, 'Action', action), el('label', {}, 'Reason', reason), submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!reason.value.trim()) { message.textContent = 'A reason is required.'; reason.focus(); return; }
    try {
      const r = await api(`/api/devices/${encodeURIComponent(serial)}/actions`, { method: 'POST', body: JSON.stringify({ action: action.value, reason: reason.value }) });
      message.textContent = `${serial} is now ${r.state}.`;
      $('device-state').textContent = r.state;
      $('device-state').className = `state-${r.state}`;
    } catch (err) { message.textContent = err.message; }
  });

  const timeline = [
    ...data.history.map((h) => ({ at: h.at, what: `lifecycle: ${h.from ?? '-'} → ${h.to}`, detail: `${h.actor}: ${h.reason}` })),
    ...data.attestations.map((a) => ({ at: a.at, what: `attestation ${a.passed ? 'passed' : 'failed'}`, detail: [a.firmwareVersion, a.reasons.join(', '), a.sourceAddress].filter(Boolean).join(' · ') })),
    ...data.certificates.map((c) => ({ at: c.issuedAt, what: 'certificate issued', detail: `serial ${c.certificateSerialNumber}, expires ${time(c.notAfter)}${c.revokedAt ? `, ${c.revocationReason} ${time(c.revokedAt)}` : ''}` })),
    ...data.decisions.map((x) => ({ at: x.time, what: `${x.kind} ${x.outcome}: ${x.reason}`, detail: [x.route, x.path, x.sourceAddress, x.detail].filter(Boolean).join(' · '), deny: x.outcome === 'deny' })),
  ].sort((a, b) => new Date(b.at) - new Date(a.at));

  view.append(
    el('div', { class: 'grid2' },
      el('div', { class: 'card' }, el('h2', {}, `Device ${d.serial}`),
        el('dl', {},
          el('dt', {}, 'State'), el('dd', { id: 'device-state', class: `state-${d.state}` }, d.state),
          el('dt', {}, 'Model'), el('dd', {}, d.model), el('dt', {}, 'Site'), el('dd', {}, d.site || '-'),
          el('dt', {}, 'Firmware'), el('dd', {}, d.firmware || '-'), el('dt', {}, 'Last attested'), el('dd', {}, time(d.lastAttestedAt)),
          el('dt', {}, 'Last seen'), el('dd', {}, `${time(d.lastSeen)} ${d.sourceAddress ? `from ${d.sourceAddress}` : ''}`))),
      el('div', { class: 'card' }, el('h2', {}, 'Actions'), form, message)),
    el('div', { class: 'card' }, el('h2', {}, 'Timeline'),
      el('table', { id: 'timeline' }, el('thead', {}, el('tr', {}, el('th', {}, 'Time (UTC)'), el('th', {}, 'Event'), el('th', {}, 'Detail'))),
        el('tbody', {}, ...timeline.map((t) => el('tr', {}, el('td', {}, time(t.at)), el('td', { class: t.deny ? 'deny' : '' }, t.what), el('td', { title: t.detail }, t.detail)))))));
}

// ---- alerts ----
const severityBadge = (s) => el('span', { class: `badge sev-${s}` }, s);

async function alertsView(view) {
  const openOnly = el('input', { id: 'alerts-open', type: 'checkbox', checked: hashQuery().get('status') === 'open' });
  const body = el('tbody');
  view.append(el('div', { class: 'card' }, el('div', { class: 'toolbar' }, el('h2', {}, 'Alerts'), el('label', { class: 'inline' }, openOnly, 'Open only')),
    el('table', { id: 'alerts' }, el('thead', {}, el('tr', {}, ...['Time (UTC)', 'Severity', 'Alert', 'Subject', 'Source', 'Detail', 'Assignee', 'Acknowledged', 'Case'].map((h) => el('th', { scope: 'col' }, h)))), body)));
  const load = async () => {
    const alerts = await api(`/api/alerts?limit=500${openOnly.checked ? '&status=open' : ''}`);
    body.replaceChildren(...alerts.map((a) => {
      const ack = a.acknowledgedBy ? `${a.acknowledgedBy}, ${time(a.acknowledgedAt)}` : el('button', { type: 'button', class: 'secondary', onclick: async (e) => { await api(`/api/alerts/${encodeURIComponent(a.id)}/ack`, { method: 'POST' }); e.target.replaceWith(document.createTextNode(`${state.me.user}, now`)); refreshAlertCount(); } }, 'Acknowledge');
      return el('tr', { class: 'kind-alert' }, el('td', {}, time(a.time)), el('td', {}, severityBadge(a.severity)), el('td', { class: 'deny' }, a.reason), el('td', {}, a.subject || '-'), el('td', {}, a.sourceAddress || '-'),
        el('td', { title: a.detail || '' }, a.detail || a.route || '-'), el('td', {}, a.assignee || '-'), el('td', {}, ack), el('td', {}, el('a', { href: `#/case/${encodeURIComponent(a.id)}` }, 'Open case')));
    }));
    if (!alerts.length) body.append(el('tr', {}, el('td', { colspan: '9', class: 'muted' }, 'No alerts.')));
  };
  openOnly.addEventListener('change', load);
  await load();
}

// ---- an alert's case ----
async function caseView(view, id) {
  const c = await api(`/api/alerts/${encodeURIComponent(id)}/case`);
  const a = c.alert;
  const isAdmin = state.me.role === 'soc-admin';
  const message = el('p', { id: 'case-message', role: 'status' });
  const act = async (path, body, done) => {
    try { await api(`/api/alerts/${encodeURIComponent(id)}/${path}`, { method: 'POST', ...(body ? { body: JSON.stringify(body) } : {}) }); message.textContent = done; refreshAlertCount(); await redraw(); } catch (e) { message.textContent = e.message; }
  };
  const redraw = async () => { const v = $('view'); v.replaceChildren(); await caseView(v, id); $('case-message').textContent = message.textContent; };
  const assignee = el('input', { id: 'case-assignee', value: c.assignee || state.me.user, autocomplete: 'off' });
  const note = el('textarea', { id: 'case-note', rows: '3', maxlength: '4000' });
  const reason = el('input', { id: 'case-reason', placeholder: 'reason (required, audited)', disabled: !isAdmin });
  const ackButton = el('button', { id: 'case-ack', type: 'button', disabled: !!a.acknowledgedBy }, a.acknowledgedBy ? `Acknowledged by ${a.acknowledgedBy}` : 'Acknowledge');
  ackButton.addEventListener('click', () => act('ack', null, 'Acknowledged.'));
  const assign = el('form', { class: 'toolbar', id: 'case-assign' }, el('label', {}, 'Assign to', assignee), el('button', { type: 'submit', class: 'secondary' }, 'Assign'));
  assign.addEventListener('submit', (e) => { e.preventDefault(); act('assign', { analyst: assignee.value.trim() }, `Assigned to ${assignee.value.trim()}.`); });
  const noteForm = el('form', { id: 'case-note-form' }, el('label', {}, 'Note', note), el('button', { type: 'submit', class: 'secondary' }, 'Add note'));
  noteForm.addEventListener('submit', (e) => { e.preventDefault(); if (note.value.trim()) act('notes', { text: note.value.trim() }, 'Note added.'); });
  const deviceActions = el('form', { class: 'toolbar', id: 'case-actions' }, el('label', {}, 'Reason', reason),
    el('button', { type: 'submit', value: 'suspend', class: 'danger', disabled: !isAdmin || !c.device }, 'Suspend device'),
    el('button', { type: 'submit', value: 'revoke', class: 'danger', disabled: !isAdmin || !c.device }, 'Revoke device'));
  deviceActions.addEventListener('submit', (e) => {
    e.preventDefault();
    const action = e.submitter?.value;
    if (!reason.value.trim()) { message.textContent = 'A reason is required.'; reason.focus(); return; }
    act('actions', { action, reason: reason.value.trim() }, `${c.device.serial}: ${action} done.`);
  });

  const ev = c.evidence;
  const evidence = ev.kind === 'clone' ? el('div', {}, el('p', {}, 'The same identity connected from these addresses in the 10 minutes before the alert:'),
    el('table', { id: 'case-sources' }, el('thead', {}, el('tr', {}, ...['Source', 'Allowed', 'Denied', 'First', 'Last', 'Gateway nodes'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...ev.sources.map((s) => el('tr', {}, el('td', {}, s.address), el('td', {}, String(s.allowed)), el('td', { class: s.denied ? 'deny' : '' }, String(s.denied)), el('td', {}, time(s.first)), el('td', {}, time(s.last)), el('td', {}, s.nodes.join(', ') || '-'))))))
    : ev.kind === 'burst' ? el('div', {}, el('p', {}, `${ev.denied} denials from ${ev.source} in the 10 minutes before the alert, by reason:`),
      el('ul', { id: 'case-reasons' }, ...ev.reasons.map((r) => el('li', {}, `${r.reason}: ${r.count}`))), ev.subjects.length ? el('p', { class: 'muted' }, `Subjects: ${ev.subjects.join(', ')}`) : '')
      : ev.kind === 'move' ? el('div', { id: 'case-move' }, el('p', {}, ev.distanceMeters != null ? `Reported position moved ${Math.round(ev.distanceMeters)} m between the last two attestations` : 'Fewer than two positioned attestations.'),
        ev.fromSiteMeters != null ? el('p', {}, `Latest position is ${Math.round(ev.fromSiteMeters)} m from the site (radius ${c.site ? Math.round(c.site.radiusMeters) : '?'} m).`) : '',
        el('ul', {}, ...ev.positions.map((p) => el('li', {}, `${p.latitude.toFixed(5)}, ${p.longitude.toFixed(5)} at ${time(p.at)}`))))
        : ev.kind === 'source' ? el('p', {}, `${ev.source} is outside the site's prefixes: ${ev.allowedPrefixes.join(', ') || 'none configured'}.`)
          : el('p', {}, ev.detail || 'No further evidence recorded.');

  const alertTime = new Date(a.time).getTime();
  const timeline = c.timeline.map((x) => el('tr', { class: `kind-${x.kind}${x.id === a.id ? ' current' : ''}` }, el('td', {}, `${time(x.time)} (${relative(new Date(x.time).getTime() - alertTime)})`),
    el('td', { class: x.outcome }, x.outcome === 'allow' ? 'allow' : 'DENY'), el('td', {}, x.reason), el('td', {}, x.sourceAddress || '-'), el('td', {}, x.node || '-'), el('td', { title: x.detail || '' }, [x.route, x.path].filter(Boolean).join(' ') || x.detail || '-')));

  view.append(
    el('div', { class: 'card', id: 'case' },
      el('h1', {}, severityBadge(c.severity), ` ${a.reason} `, el('span', { class: 'muted' }, time(a.time))),
      el('p', {}, a.detail || ''),
      el('p', { class: 'muted' }, `Alert ${a.id} · link: `, el('a', { href: `#/case/${encodeURIComponent(a.id)}` }, `${location.origin}/#/case/${a.id}`))),
    el('div', { class: 'grid2' },
      el('div', { class: 'card' }, el('h2', {}, 'Evidence'), evidence),
      el('div', { class: 'card' }, el('h2', {}, 'Device and site'),
        c.device ? el('dl', {},
          el('dt', {}, 'Device'), el('dd', {}, el('a', { href: `#/devices/${encodeURIComponent(c.device.serial)}` }, c.device.serial)),
          el('dt', {}, 'State'), el('dd', { id: 'case-state', class: `state-${c.device.state}` }, c.device.state),
          el('dt', {}, 'Model'), el('dd', {}, c.device.model), el('dt', {}, 'Firmware'), el('dd', {}, c.device.firmware || '-'),
          el('dt', {}, 'Site'), el('dd', {}, c.site ? `${c.site.id} (${c.site.latitude.toFixed(4)}, ${c.site.longitude.toFixed(4)}, ${Math.round(c.site.radiusMeters)} m)` : (c.device.site || '-')),
          el('dt', {}, 'Last attested'), el('dd', {}, time(c.device.lastAttestedAt))) : el('p', { class: 'muted' }, `${a.subject || 'No subject'}: not a registered device.`))),
    el('div', { class: 'grid2' },
      el('div', { class: 'card' }, el('h2', {}, 'Act'), el('div', { class: 'toolbar' }, ackButton), assign, noteForm,
        el('h3', {}, 'Device'), deviceActions, isAdmin ? '' : el('p', { class: 'muted' }, 'Suspend and revoke need the soc-admin role.'), message),
      el('div', { class: 'card' }, el('h2', {}, 'Case'), el('p', {}, `Assigned to: ${c.assignee || 'nobody'}`),
        el('ol', { id: 'case-steps' }, ...(c.steps.length ? c.steps.map((s) => el('li', {}, `${time(s.at)} ${s.by}: ${s.action}${s.text ? ` — ${s.text}` : ''}`)) : [el('li', { class: 'muted' }, 'No steps yet.')])))),
    el('div', { class: 'card' }, el('h2', {}, 'Decisions around the alert (±1 h)'),
      el('div', { class: 'scroll' }, el('table', { id: 'case-timeline' }, el('thead', {}, el('tr', {}, ...['Time (UTC)', 'Outcome', 'Reason', 'Source', 'Node', 'Route / path'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, ...(timeline.length ? timeline : [el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No decisions of this device around the alert.'))]))))),
    el('div', { class: 'grid2' },
      el('div', { class: 'card' }, el('h2', {}, 'Certificates'), el('ul', {}, ...c.certificates.map((x) => el('li', {}, `${x.certificateSerialNumber}: ${time(x.notBefore)} → ${time(x.notAfter)}${x.revokedAt ? ` (revoked ${time(x.revokedAt)})` : ''}`)))),
      el('div', { class: 'card' }, el('h2', {}, 'Attestations'), el('ul', {}, ...c.attestations.map((x) => el('li', { class: x.passed ? '' : 'deny' }, `${time(x.at)} ${x.passed ? 'passed' : 'failed'} ${x.firmwareVersion || ''} ${x.latitude != null ? `at ${x.latitude.toFixed(4)}, ${x.longitude.toFixed(4)}` : ''} ${x.reasons.join(', ')}`))))));
}

const relative = (ms) => `${ms < 0 ? '-' : '+'}${Math.round(Math.abs(ms) / 1000)} s`;

// ---- the fleet map: an offline outline (simplified South Korea, bundled), sites by state and alerts ----
const COUNTRY = [
  [[126.1, 37.7], [126.7, 37.95], [127.1, 38.25], [127.6, 38.3], [128.1, 38.3], [128.35, 38.6], [128.6, 38.2], [128.9, 37.8], [129.2, 37.4], [129.35, 37.0],
    [129.45, 36.5], [129.45, 36.0], [129.55, 35.8], [129.35, 35.5], [129.1, 35.1], [128.6, 35.0], [128.0, 34.9], [127.6, 34.7], [127.3, 34.5], [126.8, 34.4],
    [126.4, 34.3], [126.3, 34.6], [126.4, 35.0], [126.5, 35.5], [126.7, 35.95], [126.5, 36.3], [126.2, 36.7], [126.6, 37.0], [126.7, 37.4], [126.5, 37.6]],
  [[126.15, 33.3], [126.4, 33.2], [126.8, 33.3], [126.95, 33.45], [126.6, 33.55], [126.3, 33.5]],
];

// ---- capacity: enrollments served, deferred and handshakes shed, fleet-wide from the stored decisions ----
const CAPACITY_SERIES = [['served', '#1f8a4c'], ['deferred', '#d9480f'], ['shed', '#8e44ad']];
async function capacityView(view) {
  const range = hashQuery().get('range') === 'day' ? 'day' : 'hour';
  const c = await api(`/api/capacity?range=${range}`);
  const picker = el('select', { id: 'capacity-range', 'aria-label': 'Range' }, el('option', { value: 'hour' }, 'Last hour'), el('option', { value: 'day' }, 'Last day'));
  picker.value = range;
  picker.addEventListener('change', () => { location.hash = `#/capacity?range=${picker.value}`; });
  const total = (k) => c.buckets.reduce((n, b) => n + b[k], 0);
  const gauges = Object.entries(c.node);
  view.append(
    el('div', { class: 'card' },
      el('div', { class: 'toolbar' }, el('h1', {}, 'Enrollment and handshake capacity'), picker),
      c.stored
        ? el('p', { id: 'capacity-totals' }, `${total('served')} attestation and enrollment requests served, `, el('strong', {}, `${total('deferred')} deferred`), ` (enrollment_deferred), ${total('shed')} device handshakes shed (listener_busy), ${range === 'hour' ? 'last hour' : 'last day'}, all nodes.`)
        : el('p', { class: 'muted' }, 'Per-minute counts need the decision store; the breakdowns below read the decisions themselves.'),
      c.stored ? capacityChart(c) : '',
      el('p', { id: 'capacity-legend', class: 'legend' }, ...CAPACITY_SERIES.map(([k, colour]) => { const i = el('i', { class: 'swatch' }); i.style.background = colour; return el('span', {}, i, k); }))),
    el('div', { class: 'grid2' },
      el('div', { class: 'card' }, el('h2', {}, 'Who was deferred'),
        breakdownTable('capacity-sites', 'Site', c.deferred.bySite, (k) => k === '(no site)' ? null : `#/feed?site=${encodeURIComponent(k)}&reason=enrollment_deferred`),
        breakdownTable('capacity-prefixes', 'Source prefix', c.deferred.byPrefix, null),
        breakdownTable('capacity-nodes', 'Node', c.deferred.byNode, null),
        c.deferred.complete ? '' : el('p', { class: 'muted' }, `Of the newest ${c.deferred.sampled} deferrals.`)),
      el('div', { class: 'card' }, el('h2', {}, 'This node now'),
        gauges.length ? el('dl', { id: 'capacity-node' }, ...gauges.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v))]))
          : el('p', { class: 'muted' }, 'This console runs no attestation or gateway role: each node reports its own on /metrics.'),
        el('h2', {}, 'Handshakes shed'),
        breakdownTable('capacity-shed', 'Source prefix', c.shed.byPrefix, null),
        breakdownTable('capacity-shed-nodes', 'Node', c.shed.byNode, null))));
}

function breakdownTable(id, label, rows, link) {
  if (!rows.length) return el('p', { id, class: 'muted' }, `${label}: none in this range.`);
  return el('table', { id }, el('thead', {}, el('tr', {}, el('th', {}, label), el('th', {}, 'Count'))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, el('td', {}, link && link(r.key) ? el('a', { href: link(r.key) }, r.key) : r.key), el('td', {}, String(r.count))))));
}

function capacityChart(c) {
  const { svg, slot, left, H, labelEvery, stack, finish } = barFrame(c.buckets.length, Math.max(...c.buckets.map((b) => b.served + b.deferred + b.shed)),
    { id: 'capacity-chart', role: 'img', 'aria-label': `Served, deferred and shed per ${c.bucketSeconds / 60} minutes` });
  c.buckets.forEach((b, i) => {
    const x = left + i * slot;
    const bar = svgEl('g', { class: 'bar' }, svgEl('title', {}, `${time(b.at)}: ${b.served} served, ${b.deferred} deferred, ${b.shed} shed`));
    stack(bar, x, CAPACITY_SERIES.map(([k, fill]) => [b[k], fill]));
    svg.append(bar);
    if (i % labelEvery === 0) svg.append(svgEl('text', { x: x + slot / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis' }, new Date(b.at).toISOString().slice(11, 16)));
  });
  return finish();
}

async function mapView(view) {
  const m = await api('/api/fleet/map');
  const points = [...COUNTRY.flat(), ...m.sites.map((s) => [s.longitude, s.latitude]), ...m.moved.map((u) => [u.longitude, u.latitude])];
  const [minX, maxX] = [Math.min(...points.map((p) => p[0])) - 0.2, Math.max(...points.map((p) => p[0])) + 0.2];
  const [minY, maxY] = [Math.min(...points.map((p) => p[1])) - 0.2, Math.max(...points.map((p) => p[1])) + 0.2];
  const k = Math.cos(((minY + maxY) / 2) * Math.PI / 180); // equirectangular, scaled for the latitude
  const W = 640, H = Math.round(W * (maxY - minY) / ((maxX - minX) * k));
  const px = ([lon, lat]) => [((lon - minX) / (maxX - minX)) * W, ((maxY - lat) / (maxY - minY)) * H];
  const svg = svgEl('svg', { id: 'fleet-map', class: 'map', viewBox: `0 0 ${W} ${H}`, role: 'group', 'aria-label': `Fleet map: ${m.sites.length} sites` });
  for (const ring of COUNTRY) svg.append(svgEl('polygon', { points: ring.map((p) => px(p).join(',')).join(' '), class: 'land' }));
  const siteXY = Object.fromEntries(m.sites.map((s) => [s.id, px([s.longitude, s.latitude])]));
  for (const u of m.moved) {
    const [x1, y1] = siteXY[u.site], [x2, y2] = px([u.longitude, u.latitude]);
    const g = svgEl('g', { class: 'moved', tabindex: '0', role: 'link', 'aria-label': `${u.serial} reported ${Math.round(u.distanceMeters)} m from site ${u.site}` },
      svgEl('line', { x1, y1, x2, y2 }), svgEl('rect', { x: x2 - 5, y: y2 - 5, width: 10, height: 10 }), svgEl('title', {}, `${u.serial}: reported ${Math.round(u.distanceMeters)} m from ${u.site} at ${time(u.at)}`));
    const open = () => { location.hash = `#/devices/${encodeURIComponent(u.serial)}`; };
    g.addEventListener('click', open); g.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    svg.append(g);
  }
  for (const s of m.sites) {
    const [x, y] = siteXY[s.id];
    const bad = (s.states.Suspended || 0) + (s.states.Revoked || 0);
    const cls = s.worstSeverity === 'critical' || s.worstSeverity === 'high' ? 'site-alert' : s.openAlerts ? 'site-warn' : bad ? 'site-warn' : (s.states.Active || 0) ? 'site-ok' : 'site-idle';
    const label = `${s.id}: ${s.units} units (${Object.entries(s.states).map(([k2, n]) => `${n} ${k2}`).join(', ') || 'none'}), ${s.openAlerts} open alerts${s.worstSeverity ? `, worst ${s.worstSeverity}` : ''}`;
    const g = svgEl('g', { class: `site ${cls}`, tabindex: '0', role: 'link', 'aria-label': label }, svgEl('circle', { cx: x, cy: y, r: 4 + Math.min(8, Math.sqrt(s.units)) }), svgEl('title', {}, label));
    const open = () => { location.hash = `#/feed?site=${encodeURIComponent(s.id)}`; };
    g.addEventListener('click', open); g.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    svg.append(g);
  }
  const rows = m.sites.map((s) => el('tr', {}, el('td', {}, el('a', { href: `#/feed?site=${encodeURIComponent(s.id)}` }, s.id)), el('td', {}, String(s.units)),
    el('td', {}, Object.entries(s.states).map(([k2, n]) => `${n} ${k2}`).join(', ') || '-'), el('td', {}, String(s.openAlerts)), el('td', {}, s.worstSeverity ? severityBadge(s.worstSeverity) : '-')));
  view.append(el('div', { class: 'grid2' },
    el('div', { class: 'card' }, el('h2', {}, 'Fleet map'), svg,
      el('div', { class: 'legend' }, ...[['site-ok', 'all active'], ['site-warn', 'suspended/revoked units or open alerts'], ['site-alert', 'high or critical alert'], ['site-idle', 'no active unit']].map(([c2, t]) => el('span', {}, el('i', { class: `swatch ${c2}` }), t)),
        el('span', {}, el('i', { class: 'swatch moved' }), 'reported position of a moved unit'))),
    el('div', { class: 'card' }, el('h2', {}, 'Sites'), el('table', { id: 'sites' }, el('thead', {}, el('tr', {}, ...['Site', 'Units', 'States', 'Open alerts', 'Worst'].map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, ...rows)))));
}

start();
