// Deployments by state, with each one's host results by status. Refreshes itself while some of
// the listed deployments are running.

import { api } from '../api.js';
import {
  DEPLOYMENT_STATES, add, badge, countsBar, countsText, fill, h, label, notify, pager, plural, sleep, table, timeEl,
} from '../dom.js';
import { can, navigate } from '../session.js';

const PAGE_SIZE = 25;
const REFRESH_MS = 5000;
const RUNNING = new Set(['active', 'paused']);

function hashFor(state, page) {
  const params = new URLSearchParams();
  if (state) params.set('state', state);
  if (page > 1) params.set('page', page);
  const qs = params.toString();
  return `#/deployments${qs ? `?${qs}` : ''}`;
}

/** Run `fn` over `items`, at most `limit` at a time. */
async function eachLimited(items, limit, fn) {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await fn(queue.shift());
  }));
}

export async function render(main, { query, signal }) {
  const state = DEPLOYMENT_STATES.includes(query.state) ? query.state : null;
  const page = Math.max(1, parseInt(query.page || '1', 10) || 1);

  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Deployment states' });
  const tabCounts = {};
  for (const s of [null, ...DEPLOYMENT_STATES]) {
    const count = h('span', { class: 'tab-count' });
    tabCounts[s ?? 'all'] = count;
    tabs.append(h('a', { href: hashFor(s, 1), class: 'tab', 'aria-current': s === state ? 'page' : null,
      dataset: { state: s ?? 'all' } }, s ? label(s) : 'All', count));
  }
  const list = h('div', { class: 'list', 'aria-busy': 'true' }, h('p', { class: 'empty' }, 'Loading…'));
  add(main, 
    h('div', { class: 'page-head' },
      h('h1', {}, state ? `${label(state)} deployments` : 'Deployments'),
      can('operator') ? h('a', { class: 'btn btn-primary', href: '#/deployments/new' }, 'New deployment') : null),
    tabs, list);

  async function loadTabCounts() {
    await Promise.all([null, ...DEPLOYMENT_STATES].map(async (s) => {
      try {
        const r = await api('/deployments', { query: { state: s, page_size: 1 }, signal });
        tabCounts[s ?? 'all'].textContent = r.total.toLocaleString();
      } catch (e) {
        if (e.name !== 'AbortError') tabCounts[s ?? 'all'].textContent = '?';
      }
    }));
  }

  const known = new Map();   // deployment id -> {state, counts}: shown at once, fetched again while it runs

  function showCounts(cell, counts) {
    fill(cell, countsBar(counts), countsText(counts));
  }

  async function fillCounts(items, cells) {
    const due = (d) => !['draft', 'ready'].includes(d.state)
      && (RUNNING.has(d.state) || known.get(d.id)?.state !== d.state);
    await eachLimited(items.filter(due), 4, async (d) => {
      try {
        const report = await api(`/deployments/${d.id}/report`, { query: { page_size: 1 }, signal });
        known.set(d.id, { state: d.state, counts: report.counts });
        showCounts(cells[d.id], report.counts);
      } catch (e) {
        if (e.name !== 'AbortError') fill(cells[d.id], h('span', { class: 'muted' }, e.message));
      }
    });
  }

  async function load() {
    const data = await api('/deployments', { query: { state, page, page_size: PAGE_SIZE }, signal });
    const cells = {};
    const columns = [
      { title: 'Deployment', cell: (d) => h('a', { href: `#/deployments/${d.id}`, class: 'strong' }, d.name) },
      { title: 'ID', class: 'num', cell: (d) => String(d.id) },
      { title: 'State', cell: (d) => badge(d.state, { kind: 'state' }) },
      { title: 'Outcome', cell: (d) => (d.outcome ? badge(d.outcome, { kind: 'outcome' }) : h('span', { class: 'muted' }, '—')) },
      { title: 'Steps', class: 'num', cell: (d) => String(d.steps.length) },
      { title: 'Hosts', class: 'wide', cell: (d) => {
        cells[d.id] = h('div', { class: 'row-counts' },
          ['draft', 'ready'].includes(d.state) ? h('span', { class: 'muted' }, 'not started') : h('span', { class: 'muted' }, '…'));
        if (known.has(d.id) && !['draft', 'ready'].includes(d.state)) showCounts(cells[d.id], known.get(d.id).counts);
        return cells[d.id];
      } },
      { title: 'Schedule', cell: (d) => (d.schedule ? h('span', { title: d.schedule.rrule },
        d.schedule.next_run_at ? ['next ', timeEl(d.schedule.next_run_at)] : d.schedule.rrule) : h('span', { class: 'muted' }, 'manual')) },
      { title: 'Started', cell: (d) => timeEl(d.started_at) },
      { title: 'Finished', cell: (d) => timeEl(d.finished_at) },
    ];
    const empty = state ? `No ${label(state).toLowerCase()} deployments.` : 'No deployments yet.';
    fill(list, 
      table(columns, data.items, { label: 'Deployments', empty }),
      data.total > PAGE_SIZE ? pager(data, (p) => navigate(hashFor(state, p)), 'Deployment pages') : null,
      h('p', { class: 'muted small' }, plural(data.total, 'deployment')));
    list.setAttribute('aria-busy', 'false');
    await fillCounts(data.items, cells);
    return data.items.some((d) => RUNNING.has(d.state));
  }

  loadTabCounts();
  let running = await load();
  (async () => {
    // Every 5 s while a listed deployment runs, else every 30 s (a schedule may start one).
    for (let tick = 1; !signal.aborted; tick += 1) {
      await sleep(REFRESH_MS, signal);
      if (signal.aborted || document.hidden || !(running || tick % 6 === 0)) continue;
      try {
        running = await load();
        await loadTabCounts();
      } catch (e) {
        if (e.name !== 'AbortError') notify(`Refresh failed: ${e.message}`, { timeout: 8000 });
      }
    }
  })();
}
