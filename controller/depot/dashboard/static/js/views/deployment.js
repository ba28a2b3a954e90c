// One deployment: its state and actions, steps, schedule and windows, counts, and the live
// hosts × steps grid (depot.deployments.stream sends the changes as they happen).

import { api, serverEvents } from '../api.js';
import {
  HOST_STATUSES, add, badge, card, clear, countsBar, countsText, fill, fmtSeconds, h, label, notify, plural, sleep, table, timeEl,
} from '../dom.js';
import { can } from '../session.js';
import { VirtualGrid } from './grid.js';
import { HostPanel } from './hostpanel.js';

// Which action is offered in which state, and the role it needs (privileged when the deployment
// has script steps or command lines: the API checks the same and has the last word).
const ACTIONS = [
  { name: 'ready', text: 'Mark ready', states: ['draft'], privileged: true },
  { name: 'start', text: 'Start', states: ['ready'], privileged: true, primary: true },
  { name: 'pause', text: 'Pause', states: ['active'] },
  { name: 'resume', text: 'Resume', states: ['paused'], privileged: true, primary: true },
  { name: 'cancel', text: 'Cancel deployment', states: ['active', 'paused'], danger: true,
    confirm: 'Hosts that have not started are cancelled now; running ones finish their current step.' },
  { name: 'archive', text: 'Archive', states: ['draft', 'ready', 'completed'],
    confirm: 'An archived deployment is kept for the record and can no longer change.' },
];
const COMMAND_OPTIONS = ['install_command', 'uninstall_command', 'arguments', 'reboot_command', 'boot_time_command',
  'test_command'];
const FINISHED = new Set(['completed', 'archived']);
const LIVE_TEXT = {
  connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', finished: 'Finished', off: 'Not live',
};

function needsPrivilege(deployment, policies) {
  return deployment.steps.some((s) => s.action === 'script'
    || COMMAND_OPTIONS.some((o) => o in (s.options || {}))
    || (s.policy_id && policies.get(s.policy_id)?.category === 'script'));
}

async function lookup(path, signal) {
  try {
    const page = await api(path, { query: { page_size: 500 }, signal });
    return new Map(page.items.map((item) => [item.id, item]));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return new Map();
  }
}

/** A modal confirmation; resolves true when the user confirms. */
function confirmAction(title, text, confirmText, danger) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog', 'aria-label': title },
      h('h2', {}, title), h('p', {}, text),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', value: 'no', onclick: () => dialog.close('no') }, 'Keep it'),
        h('button', { type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`,
          onclick: () => dialog.close('yes') }, confirmText)));
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'yes');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

function windowText(w) {
  if (w.kind === 'one_off') return [timeEl(w.start), ' – ', timeEl(w.end)];
  return `${w.rrule} (${w.timezone}) from ${w.start.replace('T', ' ')}, open ${fmtSeconds(w.duration_seconds)}`;
}

export async function render(main, { params, signal }) {
  const id = Number(params[0]);
  const [initial, targets, packages, policies] = await Promise.all([
    api(`/deployments/${id}`, { signal }), lookup('/targets', signal), lookup('/packages', signal),
    lookup('/policies', signal)]);
  let d = initial;
  let counts = {};
  let stepCounts = {};
  let countsTotal = null;
  let busy = false;
  let grid = null;     // the hosts × steps grid, the host panel and the live stream (made below)
  let panel = null;
  let follower = null;

  // --- header and actions ------------------------------------------------------------------------
  const title = h('h1', {}, d.name);
  const badges = h('div', { class: 'badges' });
  const liveBadge = h('span', { class: 'live live-off', role: 'status', 'aria-label': 'Live updates' }, LIVE_TEXT.off);
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Deployment actions' });
  const meta = h('div', { class: 'meta' });
  const pauseNote = h('p', { class: 'notice notice-warn', hidden: true });

  function renderHeader() {
    title.textContent = d.name;
    fill(badges, badge(d.state, { kind: 'state' }), d.outcome ? badge(d.outcome, { kind: 'outcome' }) : null,
      d.cancel_requested && !FINISHED.has(d.state) ? h('span', { class: 'badge state-cancelling' }, 'Cancelling') : null);
    badges.setAttribute('aria-label', `State: ${label(d.state)}${d.outcome ? `, outcome: ${label(d.outcome)}` : ''}`);
    const facts = [
      ['ID', String(d.id)], ['Created', timeEl(d.created_at)], ['Started', timeEl(d.started_at)],
      ['Finished', timeEl(d.finished_at)],
      ['Order', d.pipelined ? 'pipelined (each host moves on alone)' : 'step by step (CCM)'],
      ['Concurrency', d.max_concurrent_hosts ? plural(d.max_concurrent_hosts, 'host') : 'workers\' capacity'],
    ];
    if (d.failure_budget) {
      facts.push(['Failure budget', `${d.failure_budget.max_failure_percent}% after ${d.failure_budget.min_sample}`]);
    }
    if (d.rings?.length) facts.push(['Rings', d.rings.join(' → ') + ' → rest']);
    fill(meta, ...facts.map(([k, v]) => h('span', { class: 'meta-item' }, h('span', { class: 'meta-key' }, k), v)));
    pauseNote.hidden = !(d.state === 'paused' && d.pause_reason);
    pauseNote.textContent = d.pause_reason ? `Paused: ${d.pause_reason}` : '';
    renderActions();
  }

  function renderActions() {
    clear(actions);
    if (!can('operator')) return;
    const privileged = needsPrivilege(d, policies);
    for (const action of ACTIONS) {
      if (!action.states.includes(d.state)) continue;
      if (action.privileged && privileged && !can('privileged')) continue;
      if (action.name === 'cancel' && d.cancel_requested) continue;
      actions.append(h('button', {
        type: 'button', class: `btn ${action.primary ? 'btn-primary' : ''} ${action.danger ? 'btn-danger' : ''}`,
        disabled: busy, onclick: () => run(action),
      }, action.text));
    }
  }

  async function run(action) {
    if (action.confirm && !(await confirmAction(`${action.text}: ${d.name}?`, action.confirm, action.text, action.danger))) {
      return;
    }
    busy = true;
    renderActions();
    try {
      const result = await api(`/deployments/${id}/${action.name}`, { method: 'POST', signal });
      setDeployment(result.deployment ?? result);
      if (action.name === 'start') {
        notify(`Started: ${plural(result.host_results, 'host result')}.`, { kind: 'info', timeout: 6000 });
      }
      grid?.refresh();
      follower?.ensure();
    } catch (e) {
      if (e.name === 'AbortError') return;
      notify(`${action.text} failed: ${e.message}`);
    } finally {
      busy = false;
      renderActions();
    }
  }

  const headerKey = () => JSON.stringify([d.name, d.state, d.outcome, d.cancel_requested, d.pause_reason, d.started_at,
    d.finished_at]);

  function setDeployment(next) {
    const before = d.state;
    const key = headerKey();
    d = { ...d, ...next };
    if (headerKey() !== key) renderHeader();   // (re-made buttons would swallow a click in progress)
    if (before !== d.state) {
      if (['draft', 'ready'].includes(before)) grid?.refresh();
      follower?.ensure();
    }
  }

  // --- counts --------------------------------------------------------------------------------------
  const summary = h('div', { class: 'summary' });
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Filter hosts by status' });
  const selected = new Set();

  function setCounts(next, byStep, { fromGrid = false } = {}) {
    if (next) counts = next;
    if (byStep) stepCounts = byStep;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const finished = ['success', 'success_reboot_pending', 'failed', 'unreachable', 'cancelled', 'unknown']
      .reduce((a, s) => a + (counts[s] || 0), 0);
    fill(summary, 
      h('div', { class: 'summary-line' },
        h('strong', {}, total ? `${finished.toLocaleString()} of ${plural(total, 'host result')} finished` : 'No host results yet'),
        total ? countsText(counts) : null),
      countsBar(counts));
    renderChips();
    grid?.setStepCounts(stepCounts);
    renderSteps();
    if (!fromGrid && countsTotal !== null && total !== countsTotal) grid?.refresh();   // hosts added (a start, a rerun)
    countsTotal = total;
  }

  // The chips are updated in place (counts change while the user may be clicking one).
  const allChip = h('button', { type: 'button', class: 'chip', onclick: () => {
    selected.clear();
    applyFilter();
  } }, 'All');
  const chipOf = new Map(HOST_STATUSES.map((status) => {
    const count = h('span', { class: 'chip-count' });
    const chip = h('button', {
      type: 'button', class: `chip chip-${status}`, dataset: { status },
      onclick: () => {
        if (selected.has(status)) selected.delete(status);
        else selected.add(status);
        applyFilter();
      },
    }, h('span', { class: 'dot', 'aria-hidden': 'true' }), label(status), count);
    chip.count = count;
    return [status, chip];
  }));
  chips.append(allChip, ...chipOf.values());

  function renderChips() {
    allChip.setAttribute('aria-pressed', selected.size ? 'false' : 'true');
    for (const [status, chip] of chipOf) {
      const n = counts[status] || 0;
      chip.hidden = !n && !selected.has(status);
      chip.setAttribute('aria-pressed', selected.has(status) ? 'true' : 'false');
      chip.setAttribute('aria-label', `${label(status)}: ${n}`);
      chip.count.textContent = n.toLocaleString();
    }
  }

  const search = h('input', { type: 'search', class: 'search', placeholder: 'Filter hosts by name', 'aria-label': 'Filter hosts by name' });
  let searchTimer = null;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(applyFilter, 300);
  });

  function applyFilter() {
    renderChips();
    grid?.setFilter({ statuses: [...selected], host: search.value.trim() });
  }

  // --- steps, schedule -----------------------------------------------------------------------------
  const stepsBox = h('div');

  function actionText(s) {
    if (s.policy_id) {
      const p = policies.get(s.policy_id);
      return p ? h('span', {}, `policy ${p.name}`, h('div', { class: 'small muted' }, `${p.category}, ${p.operation}`))
        : `policy #${s.policy_id}`;
    }
    if (s.action === 'package') {
      const p = packages.get(s.package_id);
      return p ? h('span', {}, `package ${p.name} ${p.version}`, h('div', { class: 'small muted' }, p.installer_type))
        : `package #${s.package_id}`;
    }
    return h('span', {}, 'script ', h('code', { class: 'clip', title: s.script }, s.script));
  }

  function renderSteps() {
    fill(stepsBox, table([
      { title: '#', class: 'num', cell: (s) => String(s.position) },
      { title: 'Step', cell: (s) => h('strong', {}, s.name) },
      { title: 'Action', cell: actionText },
      { title: 'Targets', cell: (s) => s.target_ids.map((t) => targets.get(t)?.name ?? `#${t}`).join(', ') || '—' },
      { title: 'Timeout', cell: (s) => fmtSeconds(s.execution_timeout) },
      { title: 'Contact timeout', cell: (s) => (s.machine_contact_timeout ? fmtSeconds(s.machine_contact_timeout) : 'wait indefinitely') },
      { title: 'If unsuccessful', cell: (s) => [
        s.fail_deployment_if_unsuccessful ? 'fails deployment' : 'deployment goes on',
        s.only_run_further_steps_if_successful ? 'host stops' : 'host goes on',
        s.retry_count ? `${s.retry_count}× retry after ${fmtSeconds(s.retry_interval)}` : null,
      ].filter(Boolean).map((t) => h('div', { class: 'small' }, t)) },
      { title: 'Progress', class: 'progress-col', cell: (s) => {
        const c = stepCounts[s.position] || stepCounts[String(s.position)];
        if (!c) return h('span', { class: 'muted' }, '—');
        const total = Object.values(c).reduce((a, b) => a + b, 0);
        const done = ['success', 'success_reboot_pending', 'failed', 'unreachable', 'cancelled', 'unknown']
          .reduce((a, st) => a + (c[st] || 0), 0);
        return h('div', { class: 'row-counts' }, countsBar(c), h('span', { class: 'small muted' },
          `${done.toLocaleString()} of ${total.toLocaleString()} finished`));
      } },
    ], d.steps, { label: 'Steps', empty: 'No steps.' }));
  }

  const scheduleBox = h('div', { class: 'schedule' });

  async function renderSchedule() {
    const s = d.schedule;
    const parts = [];
    if (s) {
      parts.push(h('dl', { class: 'facts' },
        h('dt', {}, 'Rule'), h('dd', { class: 'mono' }, s.rrule),
        h('dt', {}, 'Time zone'), h('dd', {}, s.timezone),
        h('dt', {}, 'From'), h('dd', {}, `${s.start.replace('T', ' ')} (local)`),
        h('dt', {}, 'Missed runs'), h('dd', {}, `${label(s.misfire)}${s.misfire === 'run_late' ? ` within ${fmtSeconds(s.grace_seconds)}` : ''}`),
        h('dt', {}, 'Reruns'), h('dd', {}, s.rerun ? label(s.rerun) : '—'),
        h('dt', {}, 'Next run'), h('dd', {}, timeEl(s.next_run_at)),
        h('dt', {}, 'Last fired'), h('dd', {}, timeEl(s.last_fired))));
    } else {
      parts.push(h('p', { class: 'muted' }, 'No schedule: it starts when an operator starts it.'));
    }
    const windows = (list, name) => (list.length
      ? h('div', {}, h('h3', { class: 'subhead' }, name), h('ul', { class: 'plain' }, list.map((w) => h('li', {}, windowText(w)))))
      : null);
    parts.push(windows(d.windows, 'Maintenance windows') || h('p', { class: 'muted small' }, 'No maintenance windows: always open.'));
    parts.push(windows(d.exclusions, 'Exclusions'));
    const preview = h('div', {}, s ? h('p', { class: 'muted small' }, 'Loading the next occurrences…') : null);
    parts.push(preview);
    fill(scheduleBox, ...parts);
    if (!s) return;
    try {
      const p = await api(`/deployments/${id}/schedule/preview`, { query: { count: 5 }, signal });
      fill(preview, h('h3', { class: 'subhead' }, 'Next occurrences'), occurrences(p.occurrences));
    } catch (e) {
      if (e.name !== 'AbortError') fill(preview, h('p', { class: 'muted small' }, `Preview: ${e.message}`));
    }
  }

  // --- grid and the host panel --------------------------------------------------------------------
  panel = new HostPanel({ deploymentId: id, signal, onClose: () => grid.select(null) });
  grid = new VirtualGrid({
    deploymentId: id, steps: d.steps, signal,
    onLoaded: (page, newest) => {
      if (newest) setCounts(page.counts, Object.fromEntries(page.steps.map((s) => [s.position, s.counts])), { fromGrid: true });
    },
    onSelect: (cell) => {
      grid.select(cell.id);
      panel.show(cell);
    },
  });

  // --- live updates -------------------------------------------------------------------------------
  follower = {
    running: false,
    lastEventId: null,
    setLive(stateName) {
      liveBadge.textContent = LIVE_TEXT[stateName];
      liveBadge.className = `live live-${stateName}`;
    },
    ensure() {
      if (this.running || signal.aborted) return;
      this.running = true;
      this.loop().finally(() => { this.running = false; });
    },
    async loop() {
      let delay = 1000;
      this.setLive('connecting');
      while (!signal.aborted) {
        let ended = false;
        try {
          for await (const event of serverEvents(`/deployments/${id}/stream`, { signal, lastEventId: this.lastEventId })) {
            if (event.id != null) this.lastEventId = event.id;
            delay = 1000;
            if (event.event === 'hello') {
              this.setLive(FINISHED.has(event.data.deployment.state) ? 'finished' : 'live');
              setDeployment(event.data.deployment);
              setCounts(event.data.counts, event.data.step_counts);
              grid.refresh();   // whatever changed before this connection: the rows in view, fresh
            } else if (event.event === 'update') {
              grid.apply(event.data.hosts);
              panel.notify(event.data.hosts);
              if (event.data.deployment) setDeployment(event.data.deployment);
              if (event.data.counts) setCounts(event.data.counts, event.data.step_counts);
            } else if (event.event === 'end') {
              ended = true;
              if (event.data.deployment) setDeployment(event.data.deployment);
              if (event.data.reason === 'deleted') notify('This deployment was deleted.');
            }
          }
        } catch (e) {
          if (e.name === 'AbortError' || signal.aborted) return;
          if (e.status === 401 || e.status === 403 || e.status === 404) {
            this.setLive('off');
            notify(`Live updates stopped: ${e.message}`);
            return;
          }
          this.setLive('reconnecting');
          await sleep(delay, signal);
          delay = Math.min(delay * 2, 15000);
          continue;
        }
        if (ended) {
          this.setLive('finished');
          grid.refresh();
          panel.reload();
          return;
        }
        // The server closed the stream (its lifetime, a restart): reconnect where it left off.
      }
    },
  };

  // --- layout --------------------------------------------------------------------------------------
  add(main, 
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/deployments' }, 'Deployments'), ' › ', d.name),
    h('div', { class: 'page-head' },
      h('div', { class: 'title-block' }, h('div', { class: 'title-line' }, title, badges, liveBadge), meta),
      actions),
    pauseNote,
    summary,
    h('div', { class: 'columns' }, card('Steps', stepsBox), card('Schedule and windows', scheduleBox)),
    h('section', { class: 'card hosts-card', 'aria-label': 'Hosts' },
      h('div', { class: 'card-head' }, h('h2', { class: 'card-title' }, 'Hosts'), search),
      chips,
      h('div', { class: 'grid-and-panel' }, grid.el, panel.el)));
  renderHeader();
  setCounts({}, {});
  renderSchedule();
  grid.schedule();
  follower.ensure();
  return () => {
    grid.destroy();
    document.querySelectorAll('dialog.dialog').forEach((dialog) => dialog.remove());
  };
}

export function occurrences(list) {
  return table([
    { title: 'Local time', cell: (o) => `${o.local.replace('T', ' ')}` },
    { title: 'UTC', cell: (o) => timeEl(o.at) },
    { title: 'DST', cell: (o) => (o.adjustment === 'gap' ? 'shifted (spring gap)' : o.adjustment === 'fold' ? 'first of two (fold)' : '—') },
    { title: 'Window', cell: (o) => (o.in_window ? h('span', { class: 'badge status-success' }, 'open')
      : h('span', { class: 'badge status-deferred' }, 'closed')) },
  ], list, { label: 'Occurrences', empty: 'No occurrences after now.' });
}
