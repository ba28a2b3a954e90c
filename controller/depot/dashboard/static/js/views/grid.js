// The hosts × steps grid of a deployment, virtualised: only the rows in view (and a few around
// them) are in the DOM, and pages of hosts are fetched from /deployments/{id}/grid as they scroll
// into view, so 10,000 hosts cost what 30 do. Live changes from the stream update the cells in
// place; a cell keeps the newest transition it has seen, so a late event never undoes a newer one.

import { api } from '../api.js';
import { clear, fill, h, label } from '../dom.js';

const ROW_H = 36;         // px; every row has this height (the CSS reads --row-h)
const PAGE = 100;         // hosts per request
const OVERSCAN = 8;       // rows rendered above and below the visible ones
const MAX_PAGES = 40;     // pages kept in memory
const LOG_MAX = 20000;    // recent live changes kept, re-applied over pages fetched meanwhile
const FILTER_REFRESH_MS = 1200;
const TERMINAL = new Set(['success', 'success_reboot_pending', 'failed', 'unreachable', 'cancelled', 'unknown']);

export class VirtualGrid {
  constructor({ deploymentId, steps, onSelect, signal, onLoaded }) {
    this.deploymentId = deploymentId;
    this.steps = steps.map((s) => ({ position: s.position, name: s.name, step_id: s.id, counts: {} }));
    this.onSelect = onSelect;
    this.onLoaded = onLoaded;
    this.signal = signal;
    this.filter = { statuses: [], host: '' };
    this.total = null;
    this.pages = new Map();      // page index -> items
    this.loading = new Map();    // page index -> generation
    this.byId = new Map();       // host result id -> {item, col}
    this.generation = 0;
    this.seq = 0;
    this.log = [];               // [{seq, change}]
    this.frame = null;
    this.refreshTimer = null;
    this.selected = null;        // host result id

    this.head = h('div', { class: 'grid-head', role: 'rowgroup' });
    this.spacer = h('div', { class: 'grid-spacer' });
    this.rows = h('div', { class: 'grid-rows', role: 'rowgroup' });
    this.message = h('p', { class: 'grid-message', hidden: true });
    this.viewport = h('div', { class: 'grid-viewport' }, this.spacer, this.rows, this.message);
    this.el = h('div', { class: 'grid', role: 'table', 'aria-label': 'Host status by step' }, this.head, this.viewport);
    this.el.style.setProperty('--row-h', `${ROW_H}px`);
    this.viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.resizeObserver = new ResizeObserver(() => this.schedule());
    this.resizeObserver.observe(this.viewport);
    this.layout();
  }

  destroy() {
    this.resizeObserver.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
    clearTimeout(this.refreshTimer);
  }

  layout() {
    this.el.style.setProperty('--steps', String(Math.max(this.steps.length, 1)));
    this.el.setAttribute('aria-colcount', String(this.steps.length + 1));
    this.renderHead();
  }

  renderHead() {
    const cells = [h('div', { role: 'columnheader', class: 'gh gh-host' }, 'Host')];
    for (const step of this.steps) {
      const counts = step.counts || {};
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      const done = Object.entries(counts).filter(([s]) => TERMINAL.has(s)).reduce((a, [, n]) => a + n, 0);
      cells.push(h('div', { role: 'columnheader', class: 'gh' },
        h('span', { class: 'gh-pos' }, String(step.position)),
        h('span', { class: 'gh-name', title: step.name }, step.name),
        total ? h('span', { class: 'gh-progress', title: `${done} of ${total} finished` },
          `${done.toLocaleString()}/${total.toLocaleString()}`) : null));
    }
    fill(this.head, h('div', { role: 'row', class: 'grid-row', 'aria-rowindex': '1' }, cells));
  }

  setStepCounts(stepCounts) {
    if (!stepCounts) return;
    for (const step of this.steps) step.counts = stepCounts[step.position] || stepCounts[String(step.position)] || {};
    this.renderHead();
  }

  setFilter(filter) {
    this.filter = { ...this.filter, ...filter };
    this.viewport.scrollTop = 0;
    this.reset();
  }

  /** Drop every page and fetch what is in view again (after a reconnect, a filter change). */
  reset() {
    this.generation += 1;
    this.pages.clear();
    this.loading.clear();
    this.byId.clear();
    this.total = null;
    this.schedule();
  }

  /** Fetch the pages in view again but keep showing the current ones meanwhile. */
  refresh() {
    this.generation += 1;
    this.loading.clear();
    for (const index of this.visiblePages()) this.fetch(index);
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.render();
    });
  }

  range() {
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 600;
    const total = this.total ?? PAGE;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(total - 1, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    return [first, last];
  }

  visiblePages() {
    const [first, last] = this.range();
    const pages = [];
    for (let p = Math.floor(first / PAGE); p <= Math.floor(Math.max(last, first) / PAGE); p += 1) pages.push(p);
    return pages;
  }

  async fetch(index) {
    const generation = this.generation;
    if (this.loading.get(index) === generation) return;
    this.loading.set(index, generation);
    const startSeq = this.seq;
    let page;
    try {
      page = await api(`/deployments/${this.deploymentId}/grid`, {
        query: { page: index + 1, page_size: PAGE, status: this.filter.statuses, host: this.filter.host || null },
        signal: this.signal,
      });
    } catch (e) {
      if (e.name === 'AbortError' || generation !== this.generation) return;
      this.loading.delete(index);
      this.showMessage(`Hosts could not be loaded: ${e.message}`);
      return;
    }
    if (generation !== this.generation) return;
    this.loading.delete(index);
    if (page.steps.length !== this.steps.length) {
      this.steps = page.steps.map((s) => ({ ...s }));
      this.layout();
    } else {
      this.setStepCounts(Object.fromEntries(page.steps.map((s) => [s.position, s.counts])));
    }
    this.total = page.total;
    // Changes that arrived while this page was on its way are newer than it: apply them again.
    for (const { seq, change } of this.log) if (seq > startSeq) this.applyTo(page.items, change);
    this.pages.set(index, page.items);
    this.evict(index);
    this.reindex();
    // Its counts are the newest known unless live changes arrived while it was on its way.
    this.onLoaded?.(page, this.seq === startSeq);
    this.schedule();
  }

  evict(keep) {
    if (this.pages.size <= MAX_PAGES) return;
    const byDistance = [...this.pages.keys()].sort((a, b) => Math.abs(b - keep) - Math.abs(a - keep));
    for (const index of byDistance.slice(0, this.pages.size - MAX_PAGES)) this.pages.delete(index);
  }

  reindex() {
    this.byId.clear();
    for (const items of this.pages.values()) {
      for (const item of items) {
        item.cells.forEach((cell, col) => {
          if (cell) this.byId.set(cell.id, { item, col });
        });
      }
    }
  }

  applyTo(items, change) {
    for (const item of items) {
      if (item.host !== change.host) continue;
      for (const cell of item.cells) if (cell && cell.id === change.id) this.update(cell, change);
    }
  }

  update(cell, change) {
    if ((cell.t ?? 0) > change.t) return false;
    Object.assign(cell, { status: change.status, rc: change.rc, outcome: change.outcome, reason: change.reason,
      t: change.t });
    return true;
  }

  /** Live host changes from the stream. */
  apply(changes) {
    if (!changes.length) return;
    let dirty = false;
    for (const change of changes) {
      this.seq += 1;
      this.log.push({ seq: this.seq, change });
      const found = this.byId.get(change.id);
      if (found && this.update(found.item.cells[found.col], change)) dirty = true;
    }
    if (this.log.length > LOG_MAX) this.log.splice(0, this.log.length - LOG_MAX);
    if (this.filter.statuses.length || this.total === 0) {
      // Which hosts match the filter may have changed: fetch the rows in view again, soon.
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.refresh(), FILTER_REFRESH_MS);
    }
    if (dirty) this.schedule();
  }

  showMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  select(id) {
    this.selected = id;
    this.schedule();
  }

  render() {
    const missing = this.visiblePages().filter((p) => !this.pages.has(p));
    for (const p of missing) this.fetch(p);
    if (this.total === null) {
      this.showMessage('Loading hosts…');
      return;
    }
    this.el.setAttribute('aria-rowcount', String(this.total + 1));
    this.spacer.style.height = `${this.total * ROW_H}px`;
    this.viewport.style.height = `${this.total * ROW_H + 1}px`;   // CSS caps it (max-height): then it scrolls
    if (this.total === 0) {
      clear(this.rows);
      this.showMessage(this.filter.statuses.length || this.filter.host ? 'No hosts match the filters.'
        : 'No host results yet: they appear when the deployment starts.');
      return;
    }
    this.showMessage('');
    const [first, last] = this.range();
    const focused = document.activeElement?.dataset?.result;
    // A row whose content did not change keeps its element: a click on it is never lost to a
    // live update, and only what changed is rebuilt.
    const current = new Map([...this.rows.children].map((el) => [el.dataset.sig, el]));
    const rows = [];
    for (let i = first; i <= last; i += 1) {
      const items = this.pages.get(Math.floor(i / PAGE));
      const item = items ? items[i % PAGE] : null;
      const sig = this.signature(item, i);
      let el = current.get(sig);
      if (!el) {
        el = item ? this.row(item, i) : this.placeholder(i);
        el.dataset.sig = sig;
      }
      rows.push(el);
    }
    this.rows.style.transform = `translateY(${first * ROW_H}px)`;
    const same = rows.length === this.rows.children.length && rows.every((el, k) => this.rows.children[k] === el);
    if (!same) this.rows.replaceChildren(...rows);
    if (focused && document.activeElement?.dataset?.result !== focused) {
      this.rows.querySelector(`[data-result="${CSS.escape(focused)}"]`)?.focus();
    }
  }

  signature(item, i) {
    if (!item) return `${i}:…`;
    const cells = item.cells.map((c) => (c ? `${c.id}/${c.status}/${c.rc}/${c.reason}/${c.id === this.selected}` : '-'));
    return `${i}:${item.host}:${cells.join('|')}`;
  }

  placeholder(i) {
    return h('div', { role: 'row', class: 'grid-row placeholder', 'aria-rowindex': String(i + 2) },
      h('div', { role: 'rowheader', class: 'gc gc-host' }, h('span', { class: 'skeleton' })));
  }

  row(item, i) {
    if (!item) return this.placeholder(i);
    const cells = [h('div', { role: 'rowheader', class: 'gc gc-host', title: item.host }, item.host)];
    item.cells.forEach((cell, col) => {
      const step = this.steps[col];
      if (!cell) {
        cells.push(h('div', { role: 'cell', class: 'gc gc-none', 'aria-label': `${item.host} is not in step ${step.position}` }, '—'));
        return;
      }
      const extra = cell.status === 'failed' && cell.rc != null ? ` · ${cell.rc}` : '';
      const name = `${item.host}, step ${step.position} ${step.name}: ${label(cell.status)}${extra}`;
      cells.push(h('div', { role: 'cell', class: 'gc' },
        h('button', {
          type: 'button', class: `cellbtn status-${cell.status}${this.selected === cell.id ? ' selected' : ''}`,
          'aria-label': name, title: cell.reason || name, 'aria-pressed': this.selected === cell.id ? 'true' : 'false',
          dataset: { result: String(cell.id), status: cell.status, step: String(step.position) },
          onclick: () => this.onSelect?.({ host: item.host, position: step.position, id: cell.id }),
        }, h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'cell-label' }, label(cell.status) + extra))));
    });
    return h('div', { role: 'row', class: 'grid-row', 'aria-rowindex': String(i + 2), 'aria-label': item.host,
      dataset: { host: item.host } }, cells);
  }
}
