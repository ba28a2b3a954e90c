// The REST API (/api/v1) with the signed-in token, and the live stream of a deployment.
// The token lives in sessionStorage (this tab only, gone when it closes) and only ever travels in
// the Authorization header — never in a URL.

const TOKEN_KEY = 'depot.token';
export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The API's `detail` as one readable sentence (422s carry a list of {loc, msg}). */
export function describeDetail(detail) {
  if (detail == null) return '';
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => {
      const loc = (e.loc || []).filter((p) => p !== 'body').join('.');
      return loc ? `${loc}: ${e.msg}` : e.msg;
    }).join('; ');
  }
  return JSON.stringify(detail);
}

async function errorOf(response) {
  let detail = null;
  try {
    const body = await response.json();
    detail = body.detail ?? body;
  } catch {
    detail = response.statusText;
  }
  const text = describeDetail(detail) || `HTTP ${response.status}`;
  return new ApiError(response.status, text, detail);
}

function headers(token, extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
  }
  const qs = params.toString();
  return API + path + (qs ? `?${qs}` : '');
}

/**
 * A request to the API: resolves to the parsed JSON body (null for 204), or rejects with an
 * ApiError whose message is the API's own detail. A 401 also tells the app (the token is no
 * longer valid: sign in again).
 */
export async function api(path, { method = 'GET', body, query, signal, token = getToken(), text = false } = {}) {
  const init = { method, headers: headers(token), signal, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the controller cannot be reached (${e.message})`, null);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && token === getToken()) {
      window.dispatchEvent(new CustomEvent('depot:unauthorized', { detail: error.message }));
    }
    throw error;
  }
  if (response.status === 204) return null;
  return text ? response.text() : response.json();
}

/**
 * Server-sent events of `path`, read with fetch() so the token goes in a header (EventSource
 * cannot send one). Yields {event, data, id}; returns when the server ends the stream.
 */
export async function* serverEvents(path, { signal, lastEventId } = {}) {
  const extra = { Accept: 'text/event-stream' };
  if (lastEventId != null) extra['Last-Event-ID'] = String(lastEventId);
  const token = getToken();
  const response = await fetch(url(path), { headers: headers(token, extra), signal, cache: 'no-store' });
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401) {
      window.dispatchEvent(new CustomEvent('depot:unauthorized', { detail: error.message }));
    }
    throw error;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { event: 'message', data: [], id: null };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === '') {
          if (event.data.length) {
            yield { event: event.event, data: JSON.parse(event.data.join('\n')), id: event.id };
          }
          event = { event: 'message', data: [], id: null };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') event.data.push(value);
        else if (field === 'event') event.event = value;
        else if (field === 'id') event.id = value;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
