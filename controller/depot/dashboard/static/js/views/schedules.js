// Preview a schedule before saving it: the next occurrences in the zone's local time, their DST
// adjustment, and whether a maintenance window is open then (POST /api/v1/schedules/preview).

import { api } from '../api.js';
import { add, field, fill, h, notify } from '../dom.js';
import { occurrences } from './deployment.js';

function localNow() {
  const now = new Date();
  now.setSeconds(0, 0);
  const pad = (n) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}T${pad(now.getHours())}:${pad(now.getMinutes())}`;
}

export async function render(main, { signal }) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const rrule = h('input', { name: 'rrule', required: true, value: 'FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=30', class: 'mono' });
  const timezone = h('input', { name: 'timezone', required: true, value: zone });
  const start = h('input', { name: 'start', type: 'datetime-local', required: true, value: localNow() });
  const count = h('input', { name: 'count', type: 'number', min: '1', max: '100', value: '10' });
  const withWindow = h('input', { type: 'checkbox', name: 'with_window' });
  const windowRule = h('input', { name: 'window_rrule', value: 'FREQ=DAILY;BYHOUR=1', class: 'mono' });
  const windowHours = h('input', { name: 'window_hours', type: 'number', min: '1', max: '168', value: '4' });
  const windowFields = h('fieldset', { class: 'subfields', disabled: true },
    h('legend', {}, 'Maintenance window'),
    field('Window rule', windowRule, 'Opens at each occurrence, in the same time zone, from the same start.'),
    field('Open for (hours)', windowHours));
  withWindow.addEventListener('change', () => { windowFields.disabled = !withWindow.checked; });
  const result = h('div', { class: 'preview-result', 'aria-live': 'polite' });
  const error = h('p', { class: 'field-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Preview');
  const form = h('form', { class: 'form card', 'aria-label': 'Schedule' },
    h('div', { class: 'form-grid' },
      field('Recurrence rule (RFC 5545)', rrule, 'E.g. FREQ=DAILY;COUNT=1 (once), FREQ=HOURLY;INTERVAL=4, FREQ=DAILY;BYHOUR=8,12,16'),
      field('Time zone (IANA)', timezone),
      field('Start (local wall time)', start),
      field('Occurrences', count)),
    h('label', { class: 'check' }, withWindow, ' With a maintenance window'),
    windowFields,
    error,
    h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    const body = {
      schedule: { rrule: rrule.value.trim(), timezone: timezone.value.trim(), start: `${start.value}:00`.slice(0, 19) },
      count: Number(count.value) || 10,
    };
    if (withWindow.checked) {
      body.windows = [{ kind: 'recurring', rrule: windowRule.value.trim(), timezone: timezone.value.trim(),
        start: body.schedule.start, duration_seconds: Math.round(Number(windowHours.value) * 3600) }];
    }
    try {
      const preview = await api('/schedules/preview', { method: 'POST', body, signal });
      fill(result, h('h2', { class: 'subhead' }, `Next ${preview.occurrences.length} occurrences of ${preview.rrule} (${preview.timezone})`),
        occurrences(preview.occurrences));
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = `Preview failed: ${e.message}`;
      error.hidden = false;
      notify(`Preview failed: ${e.message}`);
    } finally {
      submit.disabled = false;
    }
  });
  add(main, h('div', { class: 'page-head' }, h('h1', {}, 'Schedule preview')),
    h('p', { class: 'muted' }, 'When a schedule would run, by the clocks of its time zone — DST gaps and folds included.'),
    form, result);
}
