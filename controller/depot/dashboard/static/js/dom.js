// Small DOM helpers. Every string from the API goes in as text (textContent), never as HTML.

/**
 * h('button', {class: 'btn', onclick: fn, 'aria-label': 'x'}, 'text', child, [more])
 * Attributes: `class`, `text`, `on<event>`, `dataset`, booleans (true sets, false/null omits).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** Append children (nested arrays flattened; null, undefined and false skipped). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

/** Replace the children. */
export function fill(el, ...children) {
  return add(clear(el), ...children);
}

// --- states and statuses -------------------------------------------------------------------------

export const HOST_STATUSES = ['ready', 'active', 'deferred', 'success', 'success_reboot_pending', 'failed',
  'unreachable', 'inconclusive', 'cancelled', 'unknown'];
export const DEPLOYMENT_STATES = ['draft', 'ready', 'active', 'paused', 'completed', 'archived'];

const LABELS = {
  ready: 'Ready', active: 'Active', success: 'Success', success_reboot_pending: 'Reboot pending',
  failed: 'Failed', unreachable: 'Unreachable', inconclusive: 'Inconclusive', deferred: 'Deferred',
  cancelled: 'Cancelled', unknown: 'Unknown', draft: 'Draft', paused: 'Paused', completed: 'Completed',
  archived: 'Archived', published: 'Published',
};

export function label(value) {
  if (value == null) return '';
  return LABELS[value] || String(value).replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

/** A coloured badge with the status in words (colour is never the only cue). */
export function badge(value, { kind = 'status', title } = {}) {
  return h('span', { class: `badge ${kind}-${value}`, title }, label(value));
}

// --- formatting ----------------------------------------------------------------------------------

export function fmtTime(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit',
    minute: '2-digit', second: '2-digit' });
}

export function timeEl(value) {
  if (!value) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: value, title: value }, fmtTime(value));
}

export function fmtSeconds(s) {
  if (s == null) return '—';
  if (s === 0) return '0 s';
  const parts = [];
  let rest = s;
  for (const [unit, n] of [['d', 86400], ['h', 3600], ['min', 60]]) {
    if (rest >= n) {
      parts.push(`${Math.floor(rest / n)} ${unit}`);
      rest %= n;
    }
  }
  if (rest) parts.push(`${rest} s`);
  return parts.slice(0, 2).join(' ');
}

export function fmtBytes(n) {
  if (n == null) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function plural(n, word, many = `${word}s`) {
  return `${n.toLocaleString()} ${n === 1 ? word : many}`;
}

// --- notices -------------------------------------------------------------------------------------

const notices = () => document.querySelector('.notices');

/** Show a message at the top of the page (errors stay until dismissed or the page changes). */
export function notify(message, { kind = 'error', timeout } = {}) {
  const box = h('div', { class: `notice notice-${kind}` },
    h('span', { class: 'notice-text' }, message),
    h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss message',
      onclick: () => box.remove() }, '×'));
  notices().append(box);
  if (timeout) setTimeout(() => box.remove(), timeout);
  return box;
}

export function clearNotices() {
  clear(notices());
}

// --- building blocks -----------------------------------------------------------------------------

/** A table; columns: [{title, cell: (item) => node|string, class}]. */
export function table(columns, items, { caption, empty = 'Nothing here yet.', label: name } = {}) {
  if (!items.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data', 'aria-label': name },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.title)))),
      h('tbody', {}, items.map((item) => h('tr', {},
        columns.map((c) => h('td', { class: c.class }, c.cell(item))))))));
}

/** Previous/next paging of a Page response; `go(page)` loads another. */
export function pager(page, go, name = 'Pages') {
  const pages = Math.max(1, Math.ceil(page.total / page.page_size));
  const first = page.total ? (page.page - 1) * page.page_size + 1 : 0;
  const last = Math.min(page.total, page.page * page.page_size);
  return h('nav', { class: 'pager', 'aria-label': name },
    h('button', { type: 'button', class: 'btn btn-small', disabled: page.page <= 1,
      onclick: () => go(page.page - 1) }, '‹ Previous'),
    h('span', { class: 'pager-info' }, `${first.toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()}`),
    h('button', { type: 'button', class: 'btn btn-small', disabled: page.page >= pages,
      onclick: () => go(page.page + 1) }, 'Next ›'));
}

/** A stacked bar of counts by status, with the numbers as its accessible description. */
export function countsBar(counts, { total } = {}) {
  const sum = total ?? Object.values(counts || {}).reduce((a, b) => a + b, 0);
  const bar = h('div', { class: 'countsbar', role: 'img' });
  const words = [];
  for (const status of HOST_STATUSES) {
    const n = (counts || {})[status] || 0;
    if (!n) continue;
    words.push(`${n} ${label(status).toLowerCase()}`);
    const seg = h('span', { class: `seg status-${status}` });
    seg.style.width = `${(100 * n) / Math.max(sum, 1)}%`;
    bar.append(seg);
  }
  bar.setAttribute('aria-label', words.length ? words.join(', ') : 'no host results');
  return bar;
}

export function countsText(counts) {
  const parts = [];
  for (const status of HOST_STATUSES) {
    const n = (counts || {})[status] || 0;
    if (n) parts.push(h('span', { class: `count status-text-${status}` }, `${n.toLocaleString()} ${label(status).toLowerCase()}`));
  }
  if (!parts.length) return h('span', { class: 'muted' }, 'no host results');
  const out = [];
  parts.forEach((p, i) => {
    if (i) out.push(' · ');
    out.push(p);
  });
  return h('span', { class: 'counts' }, out);
}

export function card(title, ...body) {
  return h('section', { class: 'card', 'aria-label': title },
    h('h2', { class: 'card-title' }, title), ...body);
}

export function field(labelText, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id }, labelText),
    control,
    hint ? h('p', { class: 'hint' }, hint) : null);
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
