// A trigger being written (kind, name, config form) and what it becomes in a request; the same
// draft serves the new-app page (created inline, then bound) and the triggers page.
import { collect, knownPaths, serverErrors, toForm, type FieldError, type JsonSchema, type ObjectNode } from '$lib/components/form/schema';
import { isSlug } from '$lib/components/form/slug';

export type KindInfo = { kind: string; schema: Record<string, unknown>; sample: Record<string, unknown> };

export type Draft = {
  kind: string;
  name: string;
  form: ObjectNode;
  raw: string | null;
  /** Config errors, by form path. */
  errors: FieldError[];
  /** Problems with the name, as form error codes. */
  nameErrors: FieldError[];
};

const schemaOf = (kind: KindInfo): JsonSchema => kind.schema as JsonSchema;

/** A new trigger of `kind`, prefilled from its sample (without the sample's placeholder secret). */
export function newDraft(kind: KindInfo, name = ''): Draft {
  return {
    kind: kind.kind,
    name,
    form: toForm(schemaOf(kind), kind.sample, { dropSecrets: true }),
    raw: null,
    errors: [],
    nameErrors: []
  };
}

/** A draft for editing a trigger as the API shows it (secrets masked; sending the mask keeps them). */
export function editDraft(kind: KindInfo, trigger: { name: string; config: Record<string, unknown> }): Draft {
  return { kind: kind.kind, name: trigger.name, form: toForm(schemaOf(kind), trigger.config), raw: null, errors: [], nameErrors: [] };
}

export function nameErrors(name: string): FieldError[] {
  if (!name) return [{ path: 'name', code: 'required' }];
  if (!isSlug(name)) return [{ path: 'name', code: 'slug' }];
  return [];
}

/** The request body for a draft, or the client-side problems that keep it from being sent. */
export function checkDraft(kind: KindInfo, draft: Draft): { body: { kind: string; name: string; config: Record<string, unknown> }; ok: boolean } {
  const { value, errors } = collect(schemaOf(kind), draft.form, draft.raw);
  draft.errors = errors;
  draft.nameErrors = nameErrors(draft.name);
  return { body: { kind: draft.kind, name: draft.name, config: value }, ok: errors.length === 0 && draft.nameErrors.length === 0 };
}

/**
 * Put an API failure on the draft's fields where it names one; true when it did, so the caller
 * only toasts what no field shows.
 */
export function showApiError(kind: KindInfo, draft: Draft, e: { code: string; details: unknown }, text: string): boolean {
  if (e.code === 'invalid_config') {
    const mapped = serverErrors(e.details, draft.raw === null ? knownPaths(schemaOf(kind), draft.form) : new Set());
    draft.errors = mapped.length ? mapped : [{ path: '', code: 'text', params: { text } }];
    return true;
  }
  if (e.code === 'duplicate' || e.code === 'invalid_slug') {
    draft.nameErrors = [{ path: 'name', code: 'text', params: { text } }];
    return true;
  }
  return false;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The JSON Merge Patch (RFC 7386) that turns `before` into `after`: changed keys, and null for
 * removed ones. PATCH /api/triggers applies config as a merge patch, so a plain new config would
 * leave removed keys in place.
 */
export function mergePatch(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    const old = before[key];
    if (isObject(old) && isObject(value)) {
      const inner = mergePatch(old, value);
      if (Object.keys(inner).length) patch[key] = inner;
    } else if (JSON.stringify(old) !== JSON.stringify(value)) patch[key] = value;
  }
  return patch;
}
