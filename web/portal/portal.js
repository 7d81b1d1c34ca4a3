// SPDX-License-Identifier: Apache-2.0
// vigo's portal: a page over vigod's API (docs/api.md) with the user's
// bearer token, kept in this tab's sessionStorage only. Workspace states
// are live: the page follows GET /v1/events (read with fetch, since
// EventSource cannot send the token) and lists again when a state changes;
// a slow poll (every 10 s) covers a stream that broke. Every value from the
// server is put into the page as text (textContent), never as HTML.
'use strict';

const state = { token: sessionStorage.getItem('vigo-token') || '', admin: false, timer: null, events: null };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const init = { method, headers: { Authorization: 'Bearer ' + state.token } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: String(res.status), message: text };
    const e = new Error(err.message + (err.field ? ' (' + err.field + ')' : ''));
    e.status = res.status;
    throw e;
  }
  return data;
}

function say(text, ok) {
  const m = $('message');
  m.textContent = text;
  m.className = ok ? 'ok' : '';
}

function cell(row, value, cls) {
  const td = document.createElement('td');
  td.textContent = value === null || value === undefined ? '' : String(value);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function button(td, label, action) {
  const b = document.createElement('button');
  b.textContent = label;
  b.dataset.action = label;
  b.addEventListener('click', async () => {
    try { await action(); } catch (e) { say(label + ' failed: ' + e.message); }
  });
  td.appendChild(b);
}

async function refreshWorkspaces() {
  const data = await api('GET', state.admin ? '/v1/workspaces?all=true' : '/v1/workspaces');
  const body = $('workspaces').querySelector('tbody');
  body.replaceChildren();
  for (const w of data.workspaces) {
    const tr = document.createElement('tr');
    tr.dataset.id = w.id;
    tr.dataset.name = w.name;
    cell(tr, w.id);
    cell(tr, w.name);
    cell(tr, w.owner);
    cell(tr, w.state, 'state state-' + w.state);
    cell(tr, w.vms.map((v) => v.name + '@' + v.host + ' ' + v.state).join(', '));
    const actions = cell(tr, '');
    button(actions, 'console', () => showConsole(w.id));
    button(actions, 'checkpoint', async () => {
      const name = prompt('Checkpoint name', w.name + '-cp');
      if (!name) return;
      await api('POST', '/v1/workspaces/' + w.id + '/checkpoint', { name });
      say('checkpoint ' + name + ' taken', true);
      await refreshCheckpoints();
    });
    button(actions, 'delete', async () => {
      await api('DELETE', '/v1/workspaces/' + w.id);
      say('workspace ' + w.name + ' deleted', true);
      await refreshWorkspaces();
    });
    body.appendChild(tr);
  }
}

async function refreshCheckpoints() {
  const data = await api('GET', '/v1/checkpoints');
  const body = $('checkpoints').querySelector('tbody');
  body.replaceChildren();
  for (const c of data.checkpoints) {
    const tr = document.createElement('tr');
    cell(tr, c.id);
    cell(tr, c.name);
    cell(tr, c.workspace);
    cell(tr, c.created_at);
    button(cell(tr, ''), 'clone', async () => {
      const name = prompt('Name of the clone', c.name + '-clone');
      if (!name) return;
      await api('POST', '/v1/workspaces', { name, profile: $('create-profile').value, checkpoint: c.name });
      say('clone ' + name + ' created', true);
      await refreshWorkspaces();
    });
    body.appendChild(tr);
  }
  await refreshSources(data.checkpoints);
}

async function refreshSources(checkpoints) {
  const images = (await api('GET', '/v1/images')).images;
  const select = $('create-source');
  const keep = select.value;
  select.replaceChildren();
  for (const i of images.filter((x) => x.kind === 'disk')) {
    const o = document.createElement('option');
    o.value = 'image:' + i.name;
    o.textContent = 'image ' + i.name + '@' + i.version;
    select.appendChild(o);
  }
  for (const c of checkpoints) {
    const o = document.createElement('option');
    o.value = 'checkpoint:' + c.name;
    o.textContent = 'checkpoint ' + c.name;
    select.appendChild(o);
  }
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

async function showConsole(id) {
  const data = await api('GET', '/v1/workspaces/' + id + '/console?bytes=8192');
  $('console-id').textContent = id;
  $('console').textContent = data.vms.map((v) => '--- ' + v.name + ' ---\n' + v.console).join('\n');
  $('console-section').hidden = false;
}

function fillTable(table, rows, columns) {
  const head = document.createElement('tr');
  for (const c of columns) {
    const th = document.createElement('th');
    th.textContent = c;
    head.appendChild(th);
  }
  table.querySelector('thead').replaceChildren(head);
  const body = table.querySelector('tbody');
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const c of columns) cell(tr, typeof r[c] === 'object' ? JSON.stringify(r[c]) : r[c]);
    body.appendChild(tr);
  }
}

async function refreshAdmin() {
  const hosts = (await api('GET', '/v1/hosts')).hosts;
  fillTable($('hosts'), hosts, ['name', 'network', 'state', 'vcpus', 'alloc_vcpus', 'memory_mb', 'alloc_memory_mb', 'vms', 'labels']);
  const cap = (await api('GET', '/v1/gis/capacity?by=site')).capacity;
  fillTable($('capacity'), cap, ['name', 'hosts_up', 'hosts', 'vcpus', 'free_vcpus', 'memory_mb', 'free_memory_mb']);
}

// Follows the event stream until sign-out; reconnects after 2 s when it
// breaks, resuming after the last event id seen.
async function followEvents() {
  const controller = new AbortController();
  state.events = controller;
  let lastId = '';
  let pending = null;
  const changed = () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      refreshWorkspaces().catch((e) => say('refresh failed: ' + e.message));
    }, 100);
  };
  while (!controller.signal.aborted) {
    try {
      const headers = { Authorization: 'Bearer ' + state.token, Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const res = await fetch('/v1/events', { headers, signal: controller.signal });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      $('live').textContent = 'live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of block.split('\n')) {
            if (line.startsWith('id:')) lastId = line.slice(3).trim();
            if (line.startsWith('data:')) changed();
          }
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
    }
    $('live').textContent = 'reconnecting';
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function signIn(token) {
  state.token = token;
  const me = await api('GET', '/v1/whoami');
  sessionStorage.setItem('vigo-token', token);
  state.admin = me.admin;
  $('who').textContent = 'signed in as ' + me.user + (me.admin ? ' (admin)' : '');
  $('sign-in').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  $('admin').hidden = !me.admin;
  await Promise.all([refreshWorkspaces(), refreshCheckpoints(), me.admin ? refreshAdmin() : null]);
  state.timer = setInterval(() => refreshWorkspaces().catch((e) => say('refresh failed: ' + e.message)), 10000);
  followEvents();
}

function signOut() {
  sessionStorage.removeItem('vigo-token');
  state.token = '';
  clearInterval(state.timer);
  if (state.events) state.events.abort();
  state.events = null;
  $('sign-in').hidden = false;
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('who').textContent = '';
}

document.addEventListener('DOMContentLoaded', () => {
  $('sign-in-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await signIn($('token').value.trim());
    } catch (e) {
      signOut();
      alert('Sign-in failed: ' + e.message);
    }
  });
  $('sign-out').addEventListener('click', signOut);
  $('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const [kind, name] = $('create-source').value.split(/:(.*)/s);
    const body = { name: $('create-name').value, profile: $('create-profile').value,
                   count: Number($('create-count').value) };
    body[kind] = name;
    try {
      const w = await api('POST', '/v1/workspaces', body);
      say('workspace ' + w.name + ' created (id ' + w.id + ')', true);
      await refreshWorkspaces();
    } catch (e) {
      say('create failed: ' + e.message);
    }
  });
  if (state.token) signIn(state.token).catch(signOut);
});
