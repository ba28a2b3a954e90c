// A new deployment (a draft): a name and ordered steps, each a package or a published policy
// over some targets. Schedules, windows, rings and script steps: the API or `depot deploy`.

import { api } from '../api.js';
import { add, field, h } from '../dom.js';
import { can, navigate } from '../session.js';

async function all(path, signal) {
  const page = await api(path, { query: { page_size: 500 }, signal });
  return page.items;
}

export async function render(main, { signal }) {
  if (!can('operator')) {
    add(main, h('p', { class: 'empty' }, 'Creating deployments needs the operator role.'));
    return;
  }
  const [packages, policies, targets] = await Promise.all([
    all('/packages', signal), all('/policies', signal), all('/targets', signal)]);
  const published = policies.filter((p) => p.state === 'published');

  const name = h('input', { name: 'name', required: true, maxlength: '200', autocomplete: 'off' });
  const pipelined = h('input', { type: 'checkbox', name: 'pipelined' });
  const concurrency = h('input', { type: 'number', name: 'max_concurrent_hosts', min: '1', placeholder: 'workers\' capacity' });
  const stepsBox = h('ol', { class: 'steps-editor' });
  const error = h('div', { class: 'field-error', hidden: true, role: 'alert' });

  function addStep() {
    const index = stepsBox.children.length + 1;
    const kind = h('select', { name: 'kind' },
      h('option', { value: 'package' }, 'Package'),
      h('option', { value: 'policy', disabled: !published.length || null }, 'Published policy'));
    const pkg = h('select', { name: 'package' }, packages.map((p) => h('option', { value: String(p.id) },
      `${p.name} ${p.version} (${p.platform}, ${p.installer_type})`)));
    const policy = h('select', { name: 'policy' }, published.map((p) => h('option', { value: String(p.id) },
      `${p.name} (${p.category}, ${p.operation})`)));
    const stepName = h('input', { name: 'step_name', maxlength: '200', placeholder: 'default: the package\'s name' });
    const targetBoxes = targets.map((t) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'targets', value: String(t.id) }), ` ${t.name}`, h('span', { class: 'muted' }, ` (${t.kind})`)));
    const timeout = h('input', { type: 'number', name: 'execution_timeout', min: '1', value: '3600' });
    const contact = h('input', { type: 'number', name: 'machine_contact_timeout', min: '0', value: '0' });
    const pkgField = field('Package', pkg);
    const policyField = field('Policy', policy);
    policyField.hidden = true;
    kind.addEventListener('change', () => {
      pkgField.hidden = kind.value !== 'package';
      policyField.hidden = kind.value !== 'policy';
    });
    const item = h('li', { class: 'step-editor' },
      h('fieldset', {},
        h('legend', {}, `Step ${index}`),
        h('div', { class: 'form-grid' },
          field('Step name', stepName),
          field('Action', kind),
          pkgField, policyField,
          field('Execution timeout (s)', timeout),
          field('Machine contact timeout (s)', contact, '0: wait for an offline host indefinitely')),
        h('fieldset', { class: 'targets' }, h('legend', {}, 'Targets'),
          targetBoxes.length ? targetBoxes : h('p', { class: 'muted' }, 'No targets yet: create them through the API.')),
        index > 1 ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: () => item.remove() },
          `Remove step ${index}`) : null));
    item.read = () => {
      const step = {
        target_ids: [...item.querySelectorAll('input[name="targets"]:checked')].map((i) => Number(i.value)),
        execution_timeout: Number(timeout.value) || 3600,
        machine_contact_timeout: Number(contact.value) || 0,
      };
      if (stepName.value.trim()) step.name = stepName.value.trim();
      if (kind.value === 'policy') step.policy_id = Number(policy.value);
      else Object.assign(step, { action: 'package', package_id: Number(pkg.value) });
      return step;
    };
    stepsBox.append(item);
  }

  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create deployment');
  const form = h('form', { class: 'form card', 'aria-label': 'New deployment' },
    h('div', { class: 'form-grid' },
      field('Name', name),
      field('Max concurrent hosts', concurrency)),
    h('label', { class: 'check' }, pipelined, ' Pipelined: each host moves to its next step as soon as its own step finishes'),
    h('h2', { class: 'subhead' }, 'Steps'),
    stepsBox,
    h('button', { type: 'button', class: 'btn btn-small', onclick: () => addStep() }, 'Add step'),
    error,
    h('div', { class: 'form-actions' }, submit, h('a', { class: 'btn btn-ghost', href: '#/deployments' }, 'Cancel')));
  addStep();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const body = { name: name.value.trim(), pipelined: pipelined.checked, steps: [...stepsBox.children].map((li) => li.read()) };
    if (concurrency.value) body.max_concurrent_hosts = Number(concurrency.value);
    submit.disabled = true;
    try {
      const created = await api('/deployments', { method: 'POST', body, signal });
      navigate(`#/deployments/${created.id}`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      error.textContent = `The deployment was not created: ${e.message}`;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  if (!packages.length) add(main, h('p', { class: 'notice notice-info' }, 'No packages yet: upload one through the API or `depot deploy` first.'));
  add(main, h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/deployments' }, 'Deployments'), ' › New'),
    h('div', { class: 'page-head' }, h('h1', {}, 'New deployment')), form);
  name.focus();
}
