// Who is signed in, what their role lets them do, and navigation.

import { api, clearToken, getToken, setToken } from './api.js';

export const ROLES = ['viewer', 'operator', 'privileged', 'admin'];
// signedOut: why the API signed this tab out (a revoked or expired token), shown on the sign-in
// page until the next sign-in, whichever navigation gets there first.
export const session = { user: null, token: null, signedOut: null };

/** Whether the signed-in user has at least `role`. */
export function can(role) {
  return Boolean(session.user) && ROLES.indexOf(session.user.role) >= ROLES.indexOf(role);
}

/** Check a token with the API; keeps it (this tab only) when it is valid. Rejects with ApiError. */
export async function signIn(token) {
  const current = await api('/tokens/current', { token });
  setToken(token);
  session.user = current.user;
  session.token = current.token;
  session.signedOut = null;
  return current;
}

/** The user of the stored token, or null (no token, or no longer valid). */
export async function restore() {
  const token = getToken();
  if (!token) return null;
  try {
    return await signIn(token);
  } catch (e) {
    if (e.status === 401) clearToken();
    throw e;
  }
}

export function signOut(reason = null) {
  clearToken();
  session.user = null;
  session.token = null;
  session.signedOut = reason;
}

export function navigate(hash) {
  if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else window.location.hash = hash;
}
