// Env rows as edited in the UI, and the PUT body they become.
// A stored secret comes back as value null; sending null again keeps it (moorage/services/env.py).
import type { Schemas } from '$lib/api/client';

export type EnvValue = Schemas['EnvValue'];
export type EnvRow = {
  key: string;
  value: string;
  secret: boolean;
  /** A secret whose value stays on the server; true until the user types a new value. */
  kept: boolean;
};
export type EnvProblem = 'key_invalid' | 'key_duplicate' | 'needs_value';

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;

export function rowsFromEnv(env: Record<string, EnvValue>): EnvRow[] {
  return Object.entries(env).map(([key, v]) => ({
    key,
    value: v.value ?? '',
    secret: Boolean(v.secret),
    kept: Boolean(v.secret) && v.value === null
  }));
}

export function blankRow(): EnvRow {
  return { key: '', value: '', secret: false, kept: false };
}

/** A row nobody filled in: ignored on save rather than refused. */
function blank(row: EnvRow): boolean {
  return !row.key.trim() && !row.value && !row.kept;
}

/** Problems by row index (empty when the rows can be saved). */
export function envProblems(rows: EnvRow[]): Map<number, EnvProblem> {
  const problems = new Map<number, EnvProblem>();
  const seen = new Set<string>();
  rows.forEach((row, i) => {
    if (blank(row)) return;
    const key = row.key.trim();
    if (!KEY_RE.test(key)) problems.set(i, 'key_invalid');
    else if (seen.has(key)) problems.set(i, 'key_duplicate');
    // The server refuses to turn a kept secret plain: its value would show on read.
    else if (row.kept && !row.secret) problems.set(i, 'needs_value');
    seen.add(key);
  });
  return problems;
}

export function envBody(rows: EnvRow[]): Record<string, EnvValue> {
  const body: Record<string, EnvValue> = {};
  for (const row of rows) {
    if (blank(row)) continue;
    body[row.key.trim()] = { value: row.kept && row.secret ? null : row.value, secret: row.secret };
  }
  return body;
}
