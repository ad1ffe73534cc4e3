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

export type Dotenv = { pairs: [string, string][]; bad: number[] };

/**
 * A pasted `.env` file: `KEY=value` lines, `export KEY=value`, `#` comments and blank lines;
 * values in single quotes are literal, in double quotes `\n`, `\"` and `\\` are escapes, and
 * an unquoted value ends at ` #`. `bad` lists the 1-based lines that are none of these.
 */
export function parseDotenv(text: string): Dotenv {
  const pairs: [string, string][] = [];
  const bad: number[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed);
    if (!m) {
      bad.push(i + 1);
      return;
    }
    const raw = m[2];
    let value: string;
    const quote = raw[0];
    if ((quote === '"' || quote === "'") && raw.length > 1) {
      const end = raw.lastIndexOf(quote);
      if (end <= 0 || !/^(\s+#.*)?\s*$/.test(raw.slice(end + 1))) {
        bad.push(i + 1);
        return;
      }
      value = raw.slice(1, end);
      if (quote === '"') value = value.replace(/\\([n"\\])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    } else {
      value = raw.replace(/\s+#.*$/, '').trim();
    }
    pairs.push([m[1], value]);
  });
  return { pairs, bad };
}

/** Rows with the pasted pairs applied: a key already there takes the new value, a new key is
 * added (a secret when `secret`); the rest are left as they were. */
export function mergeDotenv(rows: EnvRow[], pairs: [string, string][], secret: boolean): EnvRow[] {
  const out = rows.filter((r) => !blank(r)).map((r) => ({ ...r }));
  for (const [key, value] of pairs) {
    const row = out.find((r) => r.key.trim() === key);
    if (row) Object.assign(row, { value, kept: false, secret: row.secret || secret });
    else out.push({ key, value, secret, kept: false });
  }
  return out;
}
