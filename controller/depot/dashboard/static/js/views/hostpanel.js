// The details of one host in a deployment: every step it is in, with status, rc, outcome,
// reason, attempts and the tail of its log; the whole run log on request.

import { api } from '../api.js';
import { add, badge, clear, fill, fmtSeconds, h, timeEl } from '../dom.js';

const RELOAD_MS = 600;
const RUN_LOG_MAX = 64 * 1024;

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [
    h('dt', {}, k), h('dd', {}, v === null || v === '' ? h('span', { class: 'muted' }, '—') : v)]));
}

function attemptsTable(attempts) {
  if (!attempts || !attempts.length) return h('p', { class: 'muted small' }, 'No attempts recorded.');
  return h('table', { class: 'data compact', 'aria-label': 'Attempts' },
    h('thead', {}, h('tr', {}, ['#', 'rc', 'class', 'status', 'duration', 'detected before → after']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, attempts.map((a, i) => h('tr', {},
      h('td', {}, String(i + 1)),
      h('td', { class: 'mono' }, a.rc == null ? '—' : String(a.rc)),
      h('td', {}, a.class ?? '—'),
      h('td', {}, a.status ?? '—'),
      h('td', {}, a.duration == null ? '—' : `${Number(a.duration).toFixed(1)} s`),
      h('td', {}, `${a.detected_before ?? '—'} → ${a.detected_after ?? '—'}`)))));
}

export class HostPanel {
  constructor({ deploymentId, signal, onClose }) {
    this.deploymentId = deploymentId;
    this.signal = signal;
    this.onClose = onClose;
    this.host = null;
    this.focusPosition = null;
    this.timer = null;
    this.body = h('div', { class: 'panel-body' });
    this.title = h('h2', { class: 'panel-title' }, 'Host');
    this.el = h('section', { class: 'panel', role: 'region', 'aria-label': 'Host details', hidden: true },
      h('div', { class: 'panel-head' }, this.title,
        h('button', { type: 'button', class: 'btn btn-ghost btn-small', 'aria-label': 'Close host details',
          onclick: () => this.close() }, '✕')),
      this.body);
  }

  async show({ host, position }) {
    this.host = host;
    this.focusPosition = position;
    this.el.hidden = false;
    this.title.textContent = host;
    await this.load();
    this.el.scrollIntoView({ block: 'nearest' });
  }

  close() {
    this.host = null;
    this.el.hidden = true;
    clear(this.body);
    this.onClose?.();
  }

  /** Live changes: reload when one is about this host. */
  notify(changes) {
    if (!this.host || !changes.some((c) => c.host === this.host)) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), RELOAD_MS);
  }

  reload() {
    if (this.host) this.load();
  }

  async load() {
    const host = this.host;
    let report;
    try {
      report = await api(`/deployments/${this.deploymentId}/report`, { query: { host, page_size: 100 }, signal: this.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(this.body, h('p', { class: 'field-error', role: 'alert' }, `Could not load ${host}: ${e.message}`));
      return;
    }
    if (host !== this.host) return;
    const open = new Set([...this.body.querySelectorAll('details[open]')].map((d) => d.dataset.position));
    fill(this.body, report.items.map((r) => this.step(r, open)));
    if (!report.items.length) add(this.body, h('p', { class: 'muted' }, 'No results for this host.'));
  }

  step(r, open) {
    const runLog = h('div', { class: 'runlog' });
    const logTail = r.log_tail
      ? h('pre', { class: 'log', tabindex: '0', 'aria-label': `Log tail of step ${r.position}` }, r.log_tail)
      : h('p', { class: 'muted small' }, 'No log yet.');
    const showLog = async (button) => {
      button.disabled = true;
      try {
        let text = await api(`/runs/${r.run_id}/log`, { text: true, signal: this.signal });
        if (text.length > RUN_LOG_MAX) text = `… (${text.length - RUN_LOG_MAX} earlier characters left out)\n${text.slice(-RUN_LOG_MAX)}`;
        fill(runLog, h('pre', { class: 'log', tabindex: '0', 'aria-label': `Run ${r.run_id} log` }, text));
      } catch (e) {
        if (e.name !== 'AbortError') fill(runLog, h('p', { class: 'field-error' }, `Run log: ${e.message}`));
      } finally {
        button.disabled = false;
      }
    };
    const section = h('article', { class: `host-step${r.position === this.focusPosition ? ' focused' : ''}`,
      'aria-label': `Step ${r.position} ${r.step_name}` },
      h('header', { class: 'host-step-head' },
        h('h3', {}, `Step ${r.position} · ${r.step_name}`), badge(r.status)),
      dl([
        ['Status', badge(r.status)],
        ['Exit code', r.rc == null ? null : h('span', { class: 'mono' }, String(r.rc))],
        ['Outcome', r.outcome],
        ['Reason', r.reason],
        ['Queued behind', r.queued_behind == null ? undefined : `deployment ${r.queued_behind}`],
        ['Attempts', String(r.attempts.length)],
        ['Contact attempts', String(r.contact_attempts)],
        ['Retries done', r.retries_done ? String(r.retries_done) : undefined],
        ['Ring', r.ring ? String(r.ring + 1) : undefined],
        ['Started', timeEl(r.started_at)],
        ['Finished', timeEl(r.finished_at)],
        ['Next attempt', r.next_attempt_at ? timeEl(r.next_attempt_at) : undefined],
        ['Duration', r.started_at && r.finished_at
          ? fmtSeconds(Math.round((new Date(r.finished_at) - new Date(r.started_at)) / 1000)) : undefined],
      ]),
      h('details', { class: 'attempts', dataset: { position: String(r.position) }, open: open.has(String(r.position)) || null },
        h('summary', {}, `Attempts (${r.attempts.length})`), attemptsTable(r.attempts)),
      h('h4', { class: 'log-title' }, 'Log tail'),
      logTail,
      r.run_id ? h('div', { class: 'runlog-actions' },
        h('button', { type: 'button', class: 'btn btn-small', onclick: (e) => showLog(e.currentTarget) },
          `Show run ${r.run_id} log`), runLog) : null);
    return section;
  }
}
