// The dashboard's entry point: a hash router (#/deployments/3), the signed-in user in the top bar,
// and one view at a time in <main>. A view is render(main, ctx) -> optional cleanup function;
// ctx.signal aborts when the user navigates away.

import { add, clear, clearNotices, h, notify } from './dom.js';
import { navigate, restore, session, signOut } from './session.js';
import * as deployment from './views/deployment.js';
import * as deployments from './views/deployments.js';
import * as login from './views/login.js';
import * as newDeployment from './views/newdeployment.js';
import * as packages from './views/packages.js';
import * as policies from './views/policies.js';
import * as schedules from './views/schedules.js';

const ROUTES = [
  [/^\/login$/, login.render, { open: true }],
  [/^\/deployments$/, deployments.render],
  [/^\/deployments\/new$/, newDeployment.render],
  [/^\/deployments\/(\d+)$/, deployment.render],
  [/^\/packages$/, packages.render],
  [/^\/policies$/, policies.render],
  [/^\/schedules$/, schedules.render],
];

const main = document.getElementById('main');
let current = { controller: null, cleanup: null };

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '') || '/deployments';
  const [path, qs = ''] = raw.split('?');
  return { path, query: Object.fromEntries(new URLSearchParams(qs)), raw };
}

function showUser() {
  const who = document.querySelector('.whoami');
  const nav = document.querySelector('.mainnav');
  const signedIn = Boolean(session.user);
  who.hidden = !signedIn;
  nav.hidden = !signedIn;
  if (signedIn) {
    who.querySelector('.user-name').textContent = session.user.name;
    const role = who.querySelector('.role-badge');
    role.textContent = session.user.role;
    role.className = `role-badge role-${session.user.role}`;
    role.setAttribute('aria-label', `Role: ${session.user.role}`);
  }
}

function highlightNav(path) {
  for (const link of document.querySelectorAll('.mainnav a')) {
    const active = path.startsWith(`/${link.dataset.section}`);
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function route() {
  const { path, query, raw } = parseHash();
  current.controller?.abort();
  if (typeof current.cleanup === 'function') current.cleanup();
  current = { controller: new AbortController(), cleanup: null };
  const { signal } = current.controller;

  let match = null;
  let view = null;
  let options = {};
  for (const [pattern, render, opts] of ROUTES) {
    match = path.match(pattern);
    if (match) {
      view = render;
      options = opts || {};
      break;
    }
  }
  if (!view) {
    navigate('#/deployments');
    return;
  }
  if (!options.open && !session.user) {
    let reason = null;
    try {
      await restore();
    } catch (e) {
      if (signal.aborted) return;
      if (e.status === 401) reason = e.message;
      else notify(`Cannot check your token: ${e.message}`);
    }
    if (signal.aborted) return;
    if (!session.user) {
      // A navigation that comes after the API signed the tab out keeps saying why.
      reason = reason || session.signedOut;
      const why = reason ? `&reason=${encodeURIComponent(reason)}` : '';
      navigate(`#/login?next=${encodeURIComponent(raw)}${why}`);
      return;
    }
  }
  showUser();
  highlightNav(path);
  clearNotices();
  clear(main);
  try {
    current.cleanup = await view(main, { params: match.slice(1), query, signal });
  } catch (e) {
    if (e.name === 'AbortError' || signal.aborted) return;
    add(main, h('p', { class: 'empty' }, 'This page could not be loaded.'));
    notify(e.message);
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('depot:unauthorized', (event) => {
  if (!session.user) return;
  signOut(event.detail || 'signed out');
  showUser();
  navigate(`#/login?reason=${encodeURIComponent(session.signedOut)}`);
});
document.querySelector('[data-action="sign-out"]').addEventListener('click', () => {
  signOut();
  showUser();
  navigate('#/login');
});

route();
