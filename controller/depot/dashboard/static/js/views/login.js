// Sign in by pasting an API token (`depot admin create NAME` prints the first admin's; POST
// /api/v1/tokens makes more). The token is checked with GET /api/v1/tokens/current.

import { add, h, notify } from '../dom.js';
import { navigate, signIn } from '../session.js';

export async function render(main, { query }) {
  // (A stored token stays until another one is signed in with, or Sign out: a controller that
  // could not be reached a moment ago does not cost the user their sign-in.)
  document.querySelector('.whoami').hidden = true;
  document.querySelector('.mainnav').hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, placeholder: 'dpt_…', 'aria-describedby': 'token-hint token-error' });
  const error = h('p', { id: 'token-error', class: 'field-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const form = h('form', { class: 'login-form', 'aria-label': 'Sign in' },
    h('div', { class: 'field' },
      h('label', { for: 'token' }, 'API token'),
      input,
      h('p', { id: 'token-hint', class: 'hint' },
        'Paste a token: ', h('code', {}, 'depot admin create NAME'), ' prints the first admin\'s; ',
        h('code', {}, 'POST /api/v1/tokens'), ' makes more. It is kept in this tab only.'),
      error),
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await signIn(input.value.trim());
      navigate(query.next && query.next.startsWith('/') ? `#${query.next}` : '#/deployments');
    } catch (e) {
      const message = `Sign-in failed: ${e.message}`;
      error.textContent = message;
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      notify(message);
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  add(main, h('div', { class: 'login' },
    h('div', { class: 'login-card' },
      h('h1', {}, 'Sign in to Depot'),
      h('p', { class: 'muted' }, 'Software deployments with per-host status.'),
      query.reason ? h('p', { class: 'notice notice-info', role: 'status' }, `You were signed out: ${query.reason}`) : null,
      form)));
  input.focus();
}
