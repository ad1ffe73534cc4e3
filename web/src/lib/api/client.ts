// The one way the UI talks to Moorage: openapi-fetch over the generated schema.
// Sends the session cookie, adds the CSRF header to every mutating request, and turns
// error bodies into ApiError so pages can show a translated message for the code.
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths, components } from './schema';

export type Schemas = components['schemas'];
export type Workload = Schemas['WorkloadOut'];
export type Deployment = Schemas['DeploymentOut'];
export type Snapshot = Schemas['SnapshotOut'];
export type Restore = Schemas['RestoreOut'];
export type Trigger = Schemas['TriggerOut'];
export type Kind = Schemas['KindOut'];
export type User = Schemas['UserOut'];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null
  ) {
    super(message);
  }
}

let csrfToken = '';
export function setCsrf(token: string): void {
  csrfToken = token;
}
/** The CSRF token for requests made outside this module (an upload with progress, say). */
export function csrf(): string {
  return csrfToken;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
let onUnauthenticated: () => void = () => {};
export function whenUnauthenticated(handler: () => void): void {
  onUnauthenticated = handler;
}

const auth: Middleware = {
  onRequest({ request }) {
    if (MUTATING.has(request.method) && csrfToken) request.headers.set('X-CSRF-Token', csrfToken);
    return request;
  },
  onResponse({ response, request }) {
    if (response.status === 401 && !request.url.endsWith('/api/session')) onUnauthenticated();
    return response;
  }
};

/**
 * fetch, with one retry of a read that failed on the network: creating a container network
 * makes browsers drop requests in flight (ERR_NETWORK_CHANGED), and a read is safe to repeat.
 */
export async function fetchWithRetry(input: Request): Promise<Response> {
  const retry = input.method === 'GET' || input.method === 'HEAD' ? input.clone() : null;
  try {
    return await fetch(input);
  } catch (e) {
    if (!retry) throw e;
    await new Promise((r) => setTimeout(r, 300));
    return fetch(retry);
  }
}

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin', fetch: fetchWithRetry });
api.use(auth);

/** Turn any error body (or a network failure) into an ApiError. */
export async function toApiError(response: Response | undefined, body: unknown): Promise<ApiError> {
  const status = response?.status ?? 0;
  const err = (body as { error?: { code?: string; message?: string; details?: unknown } } | undefined)
    ?.error;
  if (err?.code) return new ApiError(status, err.code, err.message ?? '', err.details ?? null);
  return new ApiError(status, status ? `http_${status}` : 'network', String(body ?? ''));
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/** Await an openapi-fetch call and return its data, or throw ApiError. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await call;
  } catch (e) {
    throw new ApiError(0, 'network', String(e));
  }
  if (result.error !== undefined || !result.response.ok) {
    throw await toApiError(result.response, result.error);
  }
  return result.data as T;
}

/** The raw fetch for what the typed client cannot do: streamed uploads and custom headers. */
export async function send(url: string, init: RequestInit): Promise<unknown> {
  const headers = new Headers(init.headers);
  if (MUTATING.has((init.method ?? 'GET').toUpperCase()) && csrfToken) headers.set('X-CSRF-Token', csrfToken);
  let response: Response;
  try {
    response = await fetchWithRetry(new Request(url, { ...init, headers, credentials: 'same-origin' }));
  } catch (e) {
    throw new ApiError(0, 'network', String(e));
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    if (response.status === 401) onUnauthenticated();
    throw await toApiError(response, body);
  }
  return body;
}
