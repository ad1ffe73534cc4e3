import { describe, expect, it } from 'vitest';
import kinds from './fixtures/kinds.json';
import {
  byPath,
  collect,
  deref,
  fieldsOf,
  itemSchema,
  fromForm,
  knownPaths,
  nearestPath,
  newItem,
  parseRaw,
  placeholderOf,
  sampleAt,
  serverErrors,
  toForm,
  unwrap,
  type JsonSchema,
  type ListNode,
  type ObjectNode,
  type TextNode
} from './schema';

// The real schemas and samples, as GET /api/kinds serves them. fixtures/kinds.json is a dump of
// that answer: refresh it from a running server (curl …/api/kinds) when a kind's config changes.
function kind(name: string): { schema: JsonSchema; sample: Record<string, unknown> } {
  const found = kinds.items.find((k) => k.kind === name);
  if (!found) throw new Error(name);
  return found as unknown as { schema: JsonSchema; sample: Record<string, unknown> };
}
const image = kind('image');
const webhook = kind('webhook');
const schedule = kind('schedule');
const poll = kind('image-poll');
const compose = kind('compose');

const widgets = (schema: JsonSchema) => Object.fromEntries(fieldsOf(schema, schema).map((f) => [f.key, f.widget]));

describe('schema resolution', () => {
  it('follows $ref and keeps the keywords beside it', () => {
    const s = deref({ $ref: '#/$defs/PortMapping', description: 'mine' }, image.schema);
    expect(s.title).toBe('PortMapping');
    expect(s.description).toBe('mine');
  });

  it('drops the null branch of anyOf and reports it', () => {
    const health = image.schema.properties!.health;
    const { schema, nullable } = unwrap(health, image.schema);
    expect(nullable).toBe(true);
    expect(schema.type).toBe('object');
    expect(Object.keys(schema.properties!)).toContain('http');
  });

  it('picks a widget per field of the image kind', () => {
    expect(widgets(image.schema)).toEqual({
      image: 'string',
      command: 'lines',
      ports: 'list',
      health: 'object',
      init: 'boolean',
      stop_timeout: 'integer',
      registry_auth: 'object'
    });
  });

  it('treats password formats and free text right', () => {
    const auth = fieldsOf(image.schema, image.schema).find((f) => f.key === 'registry_auth')!;
    expect(widgets(auth.schema as JsonSchema & { $defs?: never })).toMatchObject({ password: 'secret', username: 'string' });
    expect(widgets(webhook.schema)).toMatchObject({ provider: 'enum', secret: 'secret', filters: 'object', rate_limit_per_minute: 'integer' });
    expect(widgets(compose.schema)).toEqual({ compose: 'textarea' });
    expect(widgets(schedule.schema)).toEqual({ cron: 'string', timezone: 'string', action: 'enum', snapshot_mode: 'enum' });
  });

  it('marks required fields, labels from titles and help from descriptions', () => {
    const fields = fieldsOf(image.schema, image.schema);
    const img = fields.find((f) => f.key === 'image')!;
    expect(img.required).toBe(true);
    expect(img.label).toBe('Image');
    expect(img.help).toBe('Image reference to run');
    const health = fields.find((f) => f.key === 'health')!;
    expect(health.required).toBe(false);
    expect(health.nullable).toBe(true);
    // No title beside the anyOf: the humanized key, not the model's class name.
    expect(health.label).toBe('Health');
    // The model docstring's first paragraph, without reST markup.
    expect(health.help).toBe('How a deploy decides the new container is healthy.');
    const mode = fieldsOf(schedule.schema, schedule.schema).find((f) => f.key === 'snapshot_mode')!;
    expect(mode.options).toEqual(['stop', 'pause', 'none']);
    expect(mode.nullable).toBe(true);
  });
});

describe('value <-> form', () => {
  it('round-trips every sample unchanged (secrets included)', () => {
    for (const k of [image, webhook, schedule, poll, compose]) {
      const form = toForm(k.schema, k.sample);
      const { value, errors } = fromForm(k.schema, form);
      expect(errors).toEqual([]);
      for (const [key, v] of Object.entries(k.sample)) {
        // Objects may gain the defaults the form shows (a port's protocol, say).
        if (typeof v === 'object' && v !== null) expect(value[key]).toMatchObject(v);
        else expect(value[key]).toEqual(v);
      }
    }
  });

  it('coerces typed text back to numbers and lines to lists', () => {
    const form = toForm(image.schema, image.sample);
    expect((form.f.stop_timeout as TextNode).v).toBe('10');
    expect((form.f.command as TextNode).v).toBe('httpd\n-f\n-p\n8080');
    (form.f.stop_timeout as TextNode).v = ' 30 ';
    (form.f.command as TextNode).v = 'sh\n\n-c\r\necho hi';
    const { value } = fromForm(image.schema, form);
    expect(value.stop_timeout).toBe(30);
    expect(value.command).toEqual(['sh', '-c', 'echo hi']);
    expect(value.ports).toEqual([{ container: 8080, host: 18080, protocol: 'tcp' }]);
  });

  it('leaves an unset optional object and empty optional fields out', () => {
    const form = toForm(image.schema, { image: 'x' });
    expect((form.f.registry_auth as ObjectNode).on).toBe(false);
    expect((form.f.health as ObjectNode).on).toBe(false);
    const { value, errors } = fromForm(image.schema, form);
    expect(errors).toEqual([]);
    // Defaults are shown in the form, and so sent; unset optional parts are not.
    expect(value).toEqual({ image: 'x', init: true, stop_timeout: 10 });
  });

  it('drops secrets from a sample when asked', () => {
    const form = toForm(webhook.schema, webhook.sample, { dropSecrets: true });
    expect((form.f.secret as TextNode).v).toBe('');
    expect(fromForm(webhook.schema, form).value).not.toHaveProperty('secret');
  });

  it('keeps keys the schema does not know', () => {
    const form = toForm(poll.schema, { interval_seconds: 60, surprise: [1] });
    expect(fromForm(poll.schema, form).value).toEqual({ interval_seconds: 60, surprise: [1] });
  });

  it('adds list items at their defaults', () => {
    const form = toForm(image.schema, { image: 'x' });
    const ports = fieldsOf(image.schema, image.schema).find((f) => f.key === 'ports')!;
    const item = newItem(ports, image.schema);
    (item.f.container as TextNode).v = '80';
    (form.f.ports as ListNode).items.push(item);
    expect(fromForm(image.schema, form).value.ports).toEqual([{ container: 80, protocol: 'tcp' }]);
  });

  it('maps an enum choice back to the enum value and empty to unset', () => {
    const form = toForm(schedule.schema, { cron: '* * * * *', snapshot_mode: 'pause' });
    expect(fromForm(schedule.schema, form).value.snapshot_mode).toBe('pause');
    (form.f.snapshot_mode as TextNode).v = '';
    expect(fromForm(schedule.schema, form).value).not.toHaveProperty('snapshot_mode');
  });
});

describe('client-side checks', () => {
  it('flags required, number, integer and bounds', () => {
    const form = toForm(image.schema, image.sample);
    (form.f.image as TextNode).v = '';
    (form.f.stop_timeout as TextNode).v = '1.5';
    const port = (form.f.ports as ListNode).items[0];
    (port.f.container as TextNode).v = '0';
    (port.f.host as TextNode).v = 'abc';
    const health = form.f.health as ObjectNode;
    (health.f.timeout_seconds as TextNode).v = '0';
    const { value, errors } = fromForm(image.schema, form);
    expect(errors).toEqual([
      { path: 'image', code: 'required' },
      { path: 'ports.0.container', code: 'minimum', params: { min: 1 } },
      { path: 'ports.0.host', code: 'not_a_number' },
      { path: 'health.timeout_seconds', code: 'exclusive_minimum', params: { min: 0 } },
      { path: 'stop_timeout', code: 'not_integer' }
    ]);
    // What was typed stays in the value, for the raw view.
    expect((value.ports as Record<string, unknown>[])[0].host).toBe('abc');
  });

  it('checks string length and pattern', () => {
    const form = toForm(webhook.schema, { secret: 'short' });
    const filters = form.f.filters as ObjectNode;
    filters.on = true;
    const health = toForm(image.schema, { image: 'x', health: { http: 'no-slash' } });
    expect(fromForm(webhook.schema, form).errors).toEqual([{ path: 'secret', code: 'min_length', params: { count: 8 } }]);
    expect(fromForm(image.schema, health).errors.map((e) => e.path + ':' + e.code)).toEqual(['health.http:pattern']);
  });

  it('checks the required fields of an optional object only once it is set', () => {
    const form = toForm(image.schema, { image: 'x' });
    expect(fromForm(image.schema, form).errors).toEqual([]);
    (form.f.registry_auth as ObjectNode).on = true;
    expect(fromForm(image.schema, form).errors.map((e) => e.path)).toEqual(['registry_auth.username', 'registry_auth.password']);
  });
});

describe('raw JSON', () => {
  it('parses an object and refuses anything else', () => {
    expect(parseRaw('{"image": "x"}')).toEqual({ value: { image: 'x' }, errors: [] });
    expect(parseRaw('[1]').errors[0].code).toBe('not_object');
    expect(parseRaw('{').errors[0].code).toBe('invalid_json');
  });

  it('sends the raw text verbatim instead of the form', () => {
    const form = toForm(image.schema, image.sample);
    expect(collect(image.schema, form, '{"image": "y", "extra": 1}').value).toEqual({ image: 'y', extra: 1 });
    expect(collect(image.schema, form, null).value.image).toBe(image.sample.image);
  });
});

describe('server errors', () => {
  const form = toForm(image.schema, image.sample);
  const known = knownPaths(image.schema, form);

  it('knows the paths the form shows', () => {
    expect(known).toContain('ports.0.container');
    expect(known).toContain('health.port');
    expect(known).not.toContain('registry_auth.username');
  });

  it('puts details on the nearest field the form shows', () => {
    expect(nearestPath('command.0', known)).toBe('command');
    expect(nearestPath('registry_auth.password', known)).toBe('registry_auth');
    expect(nearestPath('foo', known)).toBe('');
    // What validate_config answered for a broken image config.
    const details = [
      { field: 'ports.0.container', message: 'Input should be greater than or equal to 1' },
      { field: 'foo', message: 'Extra inputs are not permitted' }
    ];
    const mapped = serverErrors(details, known);
    expect(mapped.map((e) => e.path)).toEqual(['ports.0.container', '']);
    expect(mapped[1].params).toEqual({ field: 'foo', message: 'Extra inputs are not permitted' });
    expect(Object.keys(byPath(mapped))).toEqual(['ports.0.container', '']);
  });

  it('strips the request-body prefix and ignores junk', () => {
    expect(serverErrors([{ field: 'config.image', message: 'm' }], known, 'config')[0].path).toBe('image');
    expect(serverErrors(null, known)).toEqual([]);
    expect(serverErrors(['x', 1], known)).toEqual([]);
  });
});

describe('an empty form with the sample as placeholders', () => {
  const fieldAt = (schema: JsonSchema, path: string) => {
    let s = schema;
    let found = fieldsOf(s, image.schema)[0];
    for (const part of path.split('.')) {
      if (/^\d+$/.test(part)) {
        s = itemSchema(found, image.schema);
        continue;
      }
      found = fieldsOf(s, image.schema).find((f) => f.key === part)!;
      s = found.schema;
    }
    return found;
  };

  it('starts empty: no image, no command, no ports, no health check', () => {
    const form = toForm(image.schema, {});
    const { value, errors } = fromForm(image.schema, form);
    expect(value).toEqual({ init: true, stop_timeout: 10 });
    expect(errors).toEqual([{ path: 'image', code: 'required' }]);
    expect((form.f.health as ObjectNode).on).toBe(false);
  });

  it('reads the sample at a path, every list item from the first', () => {
    expect(sampleAt(image.sample, 'ports.3.container')).toBe(8080);
    expect(sampleAt(image.sample, 'nothing.here')).toBeUndefined();
  });

  it('shows the sample, and the container port in the health check port', () => {
    const form = toForm(image.schema, {});
    expect(placeholderOf(fieldAt(image.schema, 'image'), 'image', image.sample, form)).toBe(image.sample.image);
    expect(placeholderOf(fieldAt(image.schema, 'command'), 'command', image.sample, form)).toBe('httpd\n-f\n-p\n8080');
    const port = fieldAt(image.schema, 'health.port');
    expect(placeholderOf(port, 'health.port', image.sample, form)).toBe('8080');
    const withPort = toForm(image.schema, { image: 'x', ports: [{ container: 3000 }] });
    expect(placeholderOf(port, 'health.port', image.sample, withPort)).toBe('3000');
  });
});
