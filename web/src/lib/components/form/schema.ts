// Forms generated from a kind's JSON schema (pydantic's output), kept free of Svelte so it can be
// unit-tested: resolve $ref and nullable anyOf, list an object's fields with a widget each, turn a
// config value into editable form state and back (with client-side checks), and put server-side
// validation errors back on the fields they name.

export type JsonSchema = {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  writeOnly?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  additionalProperties?: boolean | JsonSchema;
};

export type Widget =
  | 'string'
  | 'secret'
  | 'textarea'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'enum'
  | 'lines'
  | 'object'
  | 'list'
  | 'json';

export type Field = {
  key: string;
  /** The schema's title or the humanized key: data from the kind, not translated. */
  label: string;
  help: string;
  /** The title of the model that holds the field (pydantic's class name): the translation key. */
  model: string;
  required: boolean;
  nullable: boolean;
  widget: Widget;
  /** The field's schema with $ref and the null branch of anyOf resolved away. */
  schema: JsonSchema;
  options: string[];
};

export type TextNode = { t: 'text'; v: string };
export type BoolNode = { t: 'bool'; v: boolean };
export type ObjectNode = {
  t: 'object';
  /** False for an optional object the user left unset. */
  on: boolean;
  f: Record<string, FormNode>;
  /** Keys the schema does not know (from raw JSON): kept so a round trip loses nothing. */
  extra: Record<string, unknown>;
};
export type ListNode = { t: 'list'; items: ObjectNode[] };
export type FormNode = TextNode | BoolNode | ObjectNode | ListNode;

export type Params = Record<string, string | number>;
/** A problem with one field (`path` like `ports.0.container`; '' for the form as a whole). */
export type FieldError = { path: string; code: string; params?: Params };

// Names that hold credentials even when the schema does not say `format: password`.
const SECRETISH = /(^|_)(password|passwd|secret|token|api_?key|private_?key)($|_)/i;
// Strings without a short maximum are free text (a Compose file, say): a textarea fits them.
const SHORT_TEXT = 2048;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function lookupRef(root: JsonSchema, ref: string): JsonSchema {
  if (!ref.startsWith('#/')) return {};
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = isObject(node) ? node[part] : undefined;
  }
  return isObject(node) ? (node as JsonSchema) : {};
}

/** Follow $ref (and a lone allOf) to the schema it names; keywords beside the $ref win. */
export function deref(schema: JsonSchema, root: JsonSchema): JsonSchema {
  let current = schema;
  for (let depth = 0; depth < 32; depth++) {
    if (current.$ref) {
      const { $ref, ...rest } = current;
      current = { ...lookupRef(root, $ref), ...rest };
    } else if (current.allOf?.length === 1) {
      const { allOf, ...rest } = current;
      current = { ...allOf[0], ...rest };
    } else break;
  }
  return current;
}

function isNull(schema: JsonSchema): boolean {
  return schema.type === 'null';
}

/** The schema without its `null` alternative, and whether null was allowed. */
export function unwrap(schema: JsonSchema, root: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  const s = deref(schema, root);
  const members = s.anyOf ?? s.oneOf;
  if (members) {
    const real = members.filter((m) => !isNull(deref(m, root)));
    const nullable = real.length < members.length;
    if (real.length === 1) {
      const { anyOf: _a, oneOf: _o, ...outer } = s;
      return { schema: { ...deref(real[0], root), ...outer }, nullable };
    }
    return { schema: s, nullable };
  }
  if (Array.isArray(s.type)) {
    const types = s.type.filter((x) => x !== 'null');
    return { schema: { ...s, type: types.length === 1 ? types[0] : types }, nullable: types.length < s.type.length };
  }
  return { schema: s, nullable: false };
}

/** Which input edits a value of this (unwrapped) schema. */
export function widgetOf(schema: JsonSchema, root: JsonSchema, key = ''): Widget {
  if (schema.anyOf || schema.oneOf || Array.isArray(schema.type)) return 'json';
  if (schema.enum) return 'enum';
  switch (schema.type) {
    case 'boolean':
      return 'boolean';
    case 'integer':
      return 'integer';
    case 'number':
      return 'number';
    case 'string':
      if (schema.format === 'password' || schema.writeOnly || SECRETISH.test(key)) return 'secret';
      return schema.maxLength === undefined || schema.maxLength > SHORT_TEXT ? 'textarea' : 'string';
    case 'object':
      return schema.properties ? 'object' : 'json';
    case 'array': {
      const item = schema.items ? unwrap(schema.items, root) : undefined;
      if (item && !item.nullable && item.schema.type === 'object' && item.schema.properties) return 'list';
      if (item && !item.nullable && item.schema.type === 'string' && !item.schema.enum) return 'lines';
      return 'json';
    }
    default:
      return 'json';
  }
}

function humanize(key: string): string {
  const words = key.replace(/[_-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// A model's docstring can run to paragraphs with reST markup; its first paragraph is the gist.
function gist(text: string | undefined): string {
  return (text ?? '').split(/\n\s*\n/)[0].replace(/``/g, '').replace(/\s+/g, ' ').trim();
}

/** The fields of an object schema, in the schema's order. */
export function fieldsOf(objectSchema: JsonSchema, root: JsonSchema): Field[] {
  const s = deref(objectSchema, root);
  const required = new Set(s.required ?? []);
  return Object.entries(s.properties ?? {}).map(([key, raw]) => {
    const { schema, nullable } = unwrap(raw, root);
    const own = deref(raw, root);
    return {
      key,
      label: own.title ?? humanize(key),
      help: gist(own.description ?? schema.description),
      model: s.title ?? '',
      required: required.has(key),
      nullable,
      widget: widgetOf(schema, root, key),
      schema,
      options: (schema.enum ?? []).map(String)
    };
  });
}

/** The object schema of a list field's items. */
export function itemSchema(field: Field, root: JsonSchema): JsonSchema {
  return unwrap(field.schema.items ?? {}, root).schema;
}

export type ToFormOptions = {
  /** Leave secret fields empty instead of copying them (a sample's placeholder secret, say). */
  dropSecrets?: boolean;
};

function textOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : String(value);
}

function nodeFor(field: Field, root: JsonSchema, value: unknown, opts: ToFormOptions): FormNode {
  const given = value !== undefined && value !== null;
  const fallback = field.schema.default ?? undefined;
  const v = given ? value : fallback;
  switch (field.widget) {
    case 'boolean':
      return { t: 'bool', v: typeof v === 'boolean' ? v : false };
    case 'secret':
      return { t: 'text', v: opts.dropSecrets ? '' : textOf(v) };
    case 'lines':
      return { t: 'text', v: Array.isArray(v) ? v.map(textOf).join('\n') : '' };
    case 'json':
      return { t: 'text', v: v === undefined || v === null ? '' : JSON.stringify(v, null, 2) };
    case 'object':
      return objectNode(field.schema, root, isObject(value) ? value : undefined, !field.nullable || isObject(value), opts);
    case 'list': {
      const items = Array.isArray(v) ? v : [];
      return { t: 'list', items: items.map((x) => objectNode(itemSchema(field, root), root, isObject(x) ? x : undefined, true, opts)) };
    }
    default:
      return { t: 'text', v: textOf(v) };
  }
}

function objectNode(
  schema: JsonSchema,
  root: JsonSchema,
  value: Record<string, unknown> | undefined,
  on: boolean,
  opts: ToFormOptions
): ObjectNode {
  const data = value ?? {};
  const f: Record<string, FormNode> = {};
  const fields = fieldsOf(schema, root);
  for (const field of fields) f[field.key] = nodeFor(field, root, data[field.key], opts);
  const known = new Set(fields.map((x) => x.key));
  const extra = Object.fromEntries(Object.entries(data).filter(([k]) => !known.has(k)));
  return { t: 'object', on, f, extra };
}

/** Editable form state for a config value; missing fields start at the schema's default. */
export function toForm(schema: JsonSchema, value: unknown, opts: ToFormOptions = {}): ObjectNode {
  return objectNode(schema, schema, isObject(value) ? value : undefined, true, opts);
}

/** A fresh item for a list field (a new port mapping, say), at its defaults. */
export function newItem(field: Field, root: JsonSchema): ObjectNode {
  return objectNode(itemSchema(field, root), root, undefined, true, {});
}

export function join(path: string, key: string | number): string {
  return path ? `${path}.${key}` : String(key);
}

const OMIT = Symbol('omit');
type Read = unknown | typeof OMIT;

function checkNumber(s: JsonSchema, n: number, path: string, errors: FieldError[]): void {
  if (s.minimum !== undefined && n < s.minimum) errors.push({ path, code: 'minimum', params: { min: s.minimum } });
  if (s.exclusiveMinimum !== undefined && n <= s.exclusiveMinimum)
    errors.push({ path, code: 'exclusive_minimum', params: { min: s.exclusiveMinimum } });
  if (s.maximum !== undefined && n > s.maximum) errors.push({ path, code: 'maximum', params: { max: s.maximum } });
  if (s.exclusiveMaximum !== undefined && n >= s.exclusiveMaximum)
    errors.push({ path, code: 'exclusive_maximum', params: { max: s.exclusiveMaximum } });
}

function checkString(s: JsonSchema, text: string, path: string, errors: FieldError[]): void {
  const length = [...text].length;
  if (s.minLength !== undefined && length < s.minLength) errors.push({ path, code: 'min_length', params: { count: s.minLength } });
  if (s.maxLength !== undefined && length > s.maxLength) errors.push({ path, code: 'max_length', params: { count: s.maxLength } });
  if (s.pattern) {
    let re: RegExp | null = null;
    try {
      re = new RegExp(s.pattern, 'u');
    } catch {
      re = null; // a pattern JavaScript cannot read is left to the server
    }
    if (re && !re.test(text)) errors.push({ path, code: 'pattern', params: { pattern: s.pattern } });
  }
}

function checkCount(s: JsonSchema, count: number, path: string, errors: FieldError[]): void {
  if (s.minItems !== undefined && count < s.minItems) errors.push({ path, code: 'min_items', params: { min: s.minItems } });
  if (s.maxItems !== undefined && count > s.maxItems) errors.push({ path, code: 'max_items', params: { max: s.maxItems } });
}

function readText(field: Field, raw: string, path: string, errors: FieldError[]): Read {
  const s = field.schema;
  const blank = field.widget === 'integer' || field.widget === 'number' ? raw.trim() === '' : raw === '';
  if (blank && field.widget !== 'lines') {
    if (field.required) errors.push({ path, code: 'required' });
    return OMIT;
  }
  switch (field.widget) {
    case 'integer':
    case 'number': {
      const n = Number(raw.trim());
      if (!Number.isFinite(n)) {
        errors.push({ path, code: 'not_a_number' });
        return raw; // kept as typed, so the raw JSON view shows what is wrong
      }
      if (field.widget === 'integer' && !Number.isInteger(n)) errors.push({ path, code: 'not_integer' });
      checkNumber(s, n, path, errors);
      return n;
    }
    case 'enum':
      return s.enum?.find((option) => String(option) === raw) ?? raw;
    case 'lines': {
      const items = raw.split(/\r?\n/).filter((line) => line.trim() !== '');
      if (items.length === 0) {
        if (field.required) errors.push({ path, code: 'required' });
        return OMIT;
      }
      checkCount(s, items.length, path, errors);
      return items;
    }
    case 'json':
      try {
        return JSON.parse(raw);
      } catch {
        errors.push({ path, code: 'invalid_json' });
        return OMIT;
      }
    default:
      checkString(s, raw, path, errors);
      return raw;
  }
}

function readField(field: Field, root: JsonSchema, node: FormNode, path: string, errors: FieldError[]): Read {
  switch (node.t) {
    case 'bool':
      return node.v;
    case 'text':
      return readText(field, node.v, path, errors);
    case 'object':
      return node.on ? readObject(field.schema, root, node, path, errors) : OMIT;
    case 'list': {
      const items = node.items.map((item, i) => readObject(itemSchema(field, root), root, item, join(path, i), errors));
      if (items.length === 0 && !field.required) return OMIT;
      checkCount(field.schema, items.length, path, errors);
      return items;
    }
  }
}

function readObject(
  schema: JsonSchema,
  root: JsonSchema,
  node: ObjectNode,
  path: string,
  errors: FieldError[]
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...node.extra };
  for (const field of fieldsOf(schema, root)) {
    const child = node.f[field.key];
    if (!child) continue;
    const value = readField(field, root, child, join(path, field.key), errors);
    if (value !== OMIT) out[field.key] = value;
  }
  return out;
}

/**
 * The config value a form describes, with what the client can already tell is wrong.
 * The value is always produced (invalid numbers kept as typed) so the raw view can show it.
 */
export function fromForm(schema: JsonSchema, node: ObjectNode): { value: Record<string, unknown>; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const value = readObject(schema, schema, node, '', errors);
  return { value, errors };
}

/** Parse the raw JSON view: it must hold one object. */
export function parseRaw(text: string): { value: Record<string, unknown> | null; errors: FieldError[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { value: null, errors: [{ path: '', code: 'invalid_json' }] };
  }
  if (!isObject(parsed)) return { value: null, errors: [{ path: '', code: 'not_object' }] };
  return { value: parsed, errors: [] };
}

/** What to submit: the form's value, or the raw JSON verbatim when the user switched to it. */
export function collect(
  schema: JsonSchema,
  node: ObjectNode,
  raw: string | null
): { value: Record<string, unknown>; errors: FieldError[] } {
  if (raw === null) return fromForm(schema, node);
  const parsed = parseRaw(raw);
  return { value: parsed.value ?? {}, errors: parsed.errors };
}

/** Every path the form currently shows a field for (list items and set objects included). */
export function knownPaths(schema: JsonSchema, node: ObjectNode): Set<string> {
  const out = new Set<string>();
  const walk = (s: JsonSchema, n: ObjectNode, path: string): void => {
    for (const field of fieldsOf(s, schema)) {
      const child = n.f[field.key];
      if (!child) continue;
      const here = join(path, field.key);
      out.add(here);
      if (child.t === 'object' && child.on) walk(field.schema, child, here);
      if (child.t === 'list')
        child.items.forEach((item, i) => {
          out.add(join(here, i));
          walk(itemSchema(field, schema), item, join(here, i));
        });
    }
  };
  walk(schema, node, '');
  return out;
}

/** The longest known path that `field` starts with, or '' when the form has no such field. */
export function nearestPath(field: string, known: Set<string>): string {
  const parts = field.split('.');
  for (let n = parts.length; n > 0; n--) {
    const candidate = parts.slice(0, n).join('.');
    if (known.has(candidate)) return candidate;
  }
  return '';
}

/**
 * Server-side validation errors (`details: [{field, message}]`) put back on form paths.
 * `strip` drops a leading prefix, e.g. `config` when the request body as a whole was checked.
 */
export function serverErrors(details: unknown, known: Set<string>, strip = ''): (FieldError & { message: string })[] {
  if (!Array.isArray(details)) return [];
  return details
    .filter((d): d is { field?: unknown; message?: unknown } => isObject(d))
    .map((d) => {
      let field = typeof d.field === 'string' ? d.field : '';
      if (strip && (field === strip || field.startsWith(`${strip}.`))) field = field.slice(strip.length + 1);
      const message = typeof d.message === 'string' ? d.message : '';
      return { path: nearestPath(field, known), code: 'server', params: { field, message }, message };
    });
}

/** Errors grouped by path, for fields to pick up their own. */
export function byPath(errors: FieldError[]): Record<string, FieldError[]> {
  const out: Record<string, FieldError[]> = {};
  for (const e of errors) (out[e.path] ??= []).push(e);
  return out;
}

/** The example value at a form path in a kind's sample (list items all read the first one). */
export function sampleAt(sample: unknown, path: string): unknown {
  let node: unknown = sample;
  for (const part of path.split('.')) {
    if (Array.isArray(node)) node = /^\d+$/.test(part) ? node[0] : undefined;
    else node = isObject(node) ? node[part] : undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** The text a form node at `path` holds now ('' when there is none or it is not text). */
export function textAt(node: ObjectNode, path: string): string {
  let current: FormNode | undefined = node;
  for (const part of path.split('.')) {
    if (!current) return '';
    if (current.t === 'object') current = current.f[part];
    else if (current.t === 'list') current = /^\d+$/.test(part) ? current.items[Number(part)] : undefined;
    else return '';
  }
  return current?.t === 'text' ? current.v : '';
}

/**
 * What an empty field shows greyed out: the value it follows (`x-follows`, a path the kind
 * declares, e.g. the health check's port follows the first container port), else the kind's
 * sample there. Never a value: an empty field is sent as unset.
 */
export function placeholderOf(field: Field, path: string, sample: unknown, form: ObjectNode | null): string {
  const follows = (field.schema as { 'x-follows'?: unknown })['x-follows'];
  if (typeof follows === 'string' && form) {
    const now = textAt(form, follows);
    if (now) return now;
  }
  const v = sampleAt(sample, path);
  if (v === undefined || v === null || typeof v === 'boolean') return '';
  if (field.widget === 'secret') return '';
  if (field.widget === 'lines' && Array.isArray(v)) return v.map(String).join('\n');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
