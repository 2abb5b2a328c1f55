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

$('logout').addEventListener('click', async () => { await api('/api/logout', { method: 'POST' }); state.me = null; stopFeed(); render(); });
window.addEventListener('hashchange', render);

function render() {
  const signedIn = !!state.me;
  $('login').hidden = signedIn;
  $('nav').hidden = !signedIn;
  $('logout').hidden = !signedIn;
  $('who').textContent = signedIn ? `${state.me.user} (${state.me.role})` : '';
  const view = $('view');
  view.replaceChildren();
  if (!signedIn) { $('login-user').focus(); return; }
  const [, name, arg] = (location.hash || '#/feed').split('/');
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === name);
  if (name !== 'feed') stopFeed();
  if (name === 'devices' && arg) deviceView(view, decodeURIComponent(arg));
  else if (name === 'devices') devicesView(view);
  else if (name === 'alerts') alertsView(view);
  else feedView(view);
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
  const outcome = el('select', { id: 'f-outcome' }, el('option', { value: '' }, 'any'), el('option', { value: 'deny' }, 'deny'), el('option', { value: 'allow' }, 'allow'));
  const reason = el('input', { id: 'f-reason', placeholder: 'e.g. device_revoked' });
  const device = el('input', { id: 'f-device', placeholder: 'serial' });
  const pause = el('button', { id: 'pause', type: 'button', class: 'secondary' }, 'Pause');
  const apply = el('button', { id: 'apply', type: 'button' }, 'Apply filters');
  const status = el('span', { id: 'feed-status', class: 'muted' }, '');
  view.append(
    el('div', { class: 'grid2' },
      el('div', { class: 'card' }, el('h2', {}, 'Allowed / denied per minute (last hour)'), el('div', { id: 'chart' })),
      el('div', { class: 'card' }, el('h2', {}, 'Top deny reasons'), el('ol', { id: 'top-reasons' }))),
    el('div', { class: 'card' },
      el('h2', {}, 'Live decisions'),
      el('div', { class: 'toolbar' }, el('label', {}, 'Outcome', outcome), el('label', {}, 'Reason', reason), el('label', {}, 'Device', device), apply, pause, status),
      el('div', { class: 'scroll' }, decisionTable('feed'))));
  pause.addEventListener('click', () => { state.paused = !state.paused; pause.textContent = state.paused ? 'Resume' : 'Pause'; status.textContent = state.paused ? 'paused: new decisions are held' : 'live'; if (!state.paused) flushHeld(); });
  apply.addEventListener('click', () => startFeed());
  startFeed();
  summary();
}

function filters() {
  const p = new URLSearchParams();
  const o = $('f-outcome')?.value, r = $('f-reason')?.value.trim(), d = $('f-device')?.value.trim();
  if (o) p.set('outcome', o); if (r) p.set('reason', r); if (d) p.set('device', d);
  return p;
}

async function startFeed() {
  stopFeed();
  const generation = state.generation = (state.generation || 0) + 1; // a newer start supersedes this one
  const body = document.querySelector('#feed tbody');
  body.replaceChildren();
  const p = filters();
  p.set('limit', '100');
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
  loading = false;
  if (!state.paused) flushHeld();
  state.timer = setInterval(summary, 10000);
}

function addRow(d) {
  const body = document.querySelector('#feed tbody');
  if (!body || body.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`)) return; // at least once: shown once
  body.prepend(decisionRow(d));
  while (body.rows.length > 500) body.deleteRow(-1);
}

function flushHeld() { for (const d of state.held.splice(0)) addRow(d); }

function stopFeed() {
  if (state.source) { state.source.close(); state.source = null; }
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
}

async function summary() {
  const s = await api('/api/summary');
  const chart = $('chart');
  if (!chart) return;
  const max = Math.max(1, ...s.perMinute.map((m) => m.allow + m.deny));
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('viewBox', '0 0 600 140');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'allowed and denied decisions per minute');
  s.perMinute.forEach((m, i) => {
    const a = (m.allow / max) * 130, d = (m.deny / max) * 130;
    for (const [h, y, color] of [[a, 135 - a - d, '#1f8a4c'], [d, 135 - d, '#c62f2f']]) {
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      r.setAttribute('x', String(i * 10 + 1)); r.setAttribute('width', '8'); r.setAttribute('y', String(y)); r.setAttribute('height', String(Math.max(0, h))); r.setAttribute('fill', color);
      const t = document.createElementNS('http://www.w3.org/2000/svg', 'title'); t.textContent = `${time(m.minute)}: ${m.allow} allowed, ${m.deny} denied`; r.append(t);
      svg.append(r);
    }
  });
  chart.replaceChildren(svg);
  $('top-reasons').replaceChildren(...(s.topDenyReasons.length ? s.topDenyReasons.map((r) => el('li', {}, `${r.reason}: ${r.count}`)) : [el('li', { class: 'muted' }, 'no denials yet')]));
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
async function alertsView(view) {
  const body = el('tbody');
  view.append(el('div', { class: 'card' }, el('h2', {}, 'Alerts'),
    el('table', { id: 'alerts' }, el('thead', {}, el('tr', {}, ...['Time (UTC)', 'Alert', 'Subject', 'Source', 'Detail', 'Acknowledged'].map((h) => el('th', { scope: 'col' }, h)))), body)));
  const alerts = await api('/api/alerts?limit=500');
  body.replaceChildren(...alerts.map((a) => {
    const ack = a.acknowledgedBy ? `${a.acknowledgedBy}, ${time(a.acknowledgedAt)}` : el('button', { type: 'button', class: 'secondary', onclick: async (e) => { await api(`/api/alerts/${encodeURIComponent(a.id)}/ack`, { method: 'POST' }); e.target.replaceWith(document.createTextNode(`${state.me.user}, now`)); } }, 'Acknowledge');
    return el('tr', { class: 'kind-alert' }, el('td', {}, time(a.time)), el('td', { class: 'deny' }, a.reason), el('td', {}, a.subject || '-'), el('td', {}, a.sourceAddress || '-'), el('td', { title: a.detail || '' }, a.detail || a.route || '-'), el('td', {}, ack));
  }));
  if (!alerts.length) body.append(el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No alerts.')));
}

start();
