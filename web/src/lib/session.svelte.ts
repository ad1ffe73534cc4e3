// Who is logged in, and what their role lets the UI offer.
import { api, setCsrf, unwrap, type Schemas, type User } from '$lib/api/client';
import { members } from '$lib/api/members';

export type Role = Schemas['UserIn']['role'];
/** The roles, lowest first: each may do what those before it may. */
export const ROLES = members<Role>()(['viewer', 'operator', 'admin']);

export const session = $state<{ user: User | null; checked: boolean }>({ user: null, checked: false });

/** True when the current user's role is at least `role`. */
export function can(role: Role): boolean {
  const mine = session.user?.role as Role | undefined;
  return mine !== undefined && ROLES.indexOf(mine) >= ROLES.indexOf(role);
}

export async function refreshSession(): Promise<void> {
  try {
    const out = await unwrap(api.GET('/api/session'));
    session.user = out.user;
    setCsrf(out.csrf_token);
  } catch {
    session.user = null;
  } finally {
    session.checked = true;
  }
}

export async function logIn(username: string, password: string): Promise<void> {
  const out = await unwrap(api.POST('/api/session', { body: { username, password } }));
  session.user = out.user;
  setCsrf(out.csrf_token);
}

export async function logOut(): Promise<void> {
  try {
    await unwrap(api.DELETE('/api/session'));
  } finally {
    session.user = null;
    setCsrf('');
  }
}
