import { describe, expect, it } from 'vitest';
import { tabOf, tabHref } from './tabs';
import { duration, parseReason, readableConfig, problemLines, prettyJson, askedPowers, clashingApps, configSummary } from './format';
import { diffPatch } from './mergePatch';
import { rowsFromEnv, envBody, envProblems, blankRow, parseDotenv, mergeDotenv } from './env';
import { rowsFromVolumes, volumeBody, volumeProblems, blankVolume } from './volumes';

describe('tabs', () => {
  it('falls back to overview', () => {
    expect(tabOf(null)).toBe('overview');
    expect(tabOf('nope')).toBe('overview');
    expect(tabOf('env')).toBe('env');
  });
  it('builds tab addresses without stale parameters', () => {
    const url = new URL('http://x/apps/wl_1?tab=deployments&d=dp_1');
    expect(tabHref(url, 'overview')).toBe('/apps/wl_1');
    expect(tabHref(url, 'env')).toBe('/apps/wl_1?tab=env');
    expect(tabHref(url, 'deployments', { d: 'dp_2' })).toBe('/apps/wl_1?tab=deployments&d=dp_2');
  });
});

describe('duration', () => {
  const t0 = '2024-01-01T00:00:00Z';
  const at = (s: number) => new Date(Date.parse(t0) + s * 1000).toISOString();
  it('is null before start', () => expect(duration(null, null)).toBeNull());
  it('picks a unit', () => {
    expect(duration(t0, at(0.25))).toEqual({ unit: 'ms', n: 250 });
    expect(duration(t0, at(1.23))).toEqual({ unit: 's', n: 1.2 });
    expect(duration(t0, at(42.4))).toEqual({ unit: 's', n: 42 });
    expect(duration(t0, at(125))).toEqual({ unit: 'm', m: 2, s: 5 });
    expect(duration(t0, at(3 * 3600 + 7 * 60 + 5))).toEqual({ unit: 'h', h: 3, m: 7 });
  });
  it('counts up to now while running', () => {
    expect(duration(t0, null, Date.parse(t0) + 5000)).toEqual({ unit: 's', n: 5 });
  });
});

describe('parseReason', () => {
  it('splits known reasons', () => {
    expect(parseReason('manual')).toEqual({ key: 'manual', ref: '' });
    expect(parseReason('trigger:tr_1')).toEqual({ key: 'trigger', ref: 'tr_1' });
    expect(parseReason('chain:wl_9')).toEqual({ key: 'chain', ref: 'wl_9' });
    expect(parseReason('weird')).toEqual({ key: 'other', ref: 'weird' });
  });
});

describe('readableConfig', () => {
  it('pulls multi-line strings out of the JSON', () => {
    const out = readableConfig({ compose: 'services:\n  web: {}\n' });
    expect(out.json).toBe('');
    expect(out.blocks).toEqual([{ key: 'compose', text: 'services:\n  web: {}\n' }]);
    expect(readableConfig({ image: 'a:1' }).json).toBe('{\n  "image": "a:1"\n}');
  });
});

describe('prettyJson', () => {
  it('keeps short flat lists on one line and nests the rest', () => {
    const text = prettyJson({ command: ['httpd', '-f'], ports: [{ container: 8080 }], empty: [], n: null });
    expect(text).toBe('{\n  "command": ["httpd", "-f"],\n  "ports": [\n    {"container": 8080}\n  ],\n  "empty": [],\n  "n": null\n}');
    expect(JSON.parse(text)).toEqual({ command: ['httpd', '-f'], ports: [{ container: 8080 }], empty: [], n: null });
  });
  it('breaks long flat lists', () => {
    const long = Array.from({ length: 12 }, (_, i) => `argument-${i}`);
    expect(prettyJson(long).split('\n')).toHaveLength(14);
  });
});

describe('problemLines', () => {
  it('formats field/message details', () => {
    expect(problemLines([{ field: 'ports.0.container', message: 'too big' }, { message: 'x' }])).toEqual([
      'ports.0.container: too big',
      'x'
    ]);
    expect(problemLines(null)).toEqual([]);
  });
});

describe('askedPowers', () => {
  it('reads the service, power and detail of a needs_admin answer', () => {
    const details = [
      { field: 'config', service: 'volumes.data', power: 'volume_driver', detail: 'driver_opts device=/', message: 'x' },
      { field: 'config', message: 'not a power' },
      'junk'
    ];
    expect(askedPowers(details)).toEqual([{ service: 'volumes.data', power: 'volume_driver', detail: 'driver_opts device=/' }]);
    expect(askedPowers(null)).toEqual([]);
  });
});

describe('diffPatch', () => {
  const before = { image: 'a:1', ports: [{ container: 80 }], health: { http: '/', port: 80 }, init: true };
  it('is empty when nothing changed', () => expect(diffPatch(before, structuredClone(before))).toEqual({}));
  it('sends changes, removals as null, nested objects as patches', () => {
    const after = { image: 'a:2', ports: [{ container: 81 }], health: { http: '/' }, command: ['x'] };
    expect(diffPatch(before, after)).toEqual({
      image: 'a:2',
      ports: [{ container: 81 }],
      health: { port: null },
      init: null,
      command: ['x']
    });
  });
  it('leaves an untouched masked secret out', () => {
    const b = { registry_auth: { username: 'u', password: '**********' } };
    expect(diffPatch(b, { registry_auth: { username: 'v', password: '**********' } })).toEqual({
      registry_auth: { username: 'v' }
    });
  });
});

describe('env', () => {
  const env = { A: { value: '1', secret: false }, S: { value: null, secret: true } };
  it('keeps an untouched secret by sending null', () => {
    expect(envBody(rowsFromEnv(env))).toEqual({ A: { value: '1', secret: false }, S: { value: null, secret: true } });
  });
  it('sends a retyped secret', () => {
    const rows = rowsFromEnv(env);
    rows[1] = { ...rows[1], value: 'new', kept: false };
    expect(envBody(rows).S).toEqual({ value: 'new', secret: true });
  });
  it('ignores blank rows and trims keys', () => {
    const rows = [blankRow(), { key: ' B ', value: 'x', secret: false, kept: false }];
    expect(envBody(rows)).toEqual({ B: { value: 'x', secret: false } });
    expect(envProblems(rows).size).toBe(0);
  });
  it('finds bad, duplicate keys and a kept secret made plain', () => {
    const rows = [
      { key: '1X', value: 'a', secret: false, kept: false },
      { key: 'A', value: 'a', secret: false, kept: false },
      { key: 'A', value: 'b', secret: false, kept: false },
      { key: 'S', value: '', secret: false, kept: true }
    ];
    expect([...envProblems(rows)]).toEqual([
      [0, 'key_invalid'],
      [2, 'key_duplicate'],
      [3, 'needs_value']
    ]);
  });
});

describe('volumes', () => {
  it('locks absolute volumes for non-admins and builds the body', () => {
    const items = [
      { name: 'data', scope: 'stage', source: 'd', target: '/data', read_only: false, shared: true, host_path: '/x' },
      { name: 'abs', scope: 'absolute', source: '/srv/a', target: '/a', read_only: true, shared: false, host_path: null, problem: 'no' }
    ];
    const rows = rowsFromVolumes(items, false);
    expect(rows.map((r) => r.locked)).toEqual([false, true]);
    expect(rowsFromVolumes(items, true)[1].locked).toBe(false);
    expect(volumeBody(rows)).toEqual([
      { name: 'data', scope: 'stage', source: 'd', target: '/data', read_only: false, shared: true },
      { name: 'abs', scope: 'absolute', source: '/srv/a', target: '/a', read_only: true, shared: false }
    ]);
  });

  it('names the missing fields of a blank or partly filled row', () => {
    const rows = rowsFromVolumes(
      [{ name: 'data', scope: 'stage', source: 'd', target: '/data', read_only: false, shared: false, host_path: '/x' }],
      true
    );
    expect(volumeProblems(rows)).toEqual({});
    const partial = { ...blankVolume(), name: 'logs', target: ' ' };
    expect(volumeProblems([...rows, blankVolume(), partial])).toEqual({
      1: ['name', 'source', 'target'],
      2: ['source', 'target']
    });
  });
});

describe('clashingApps', () => {
  it('names each other app a refusal points at, once', () => {
    const details = [
      { field: 'data', workload: 'wl_a', workload_name: 'web', volume: 'data' },
      { field: 'logs', workload: 'wl_a', workload_name: 'web', volume: 'logs' },
      { field: 'config.ports', port: 8080, workload: 'wl_b' },
      { field: 'x', message: 'no workload here' },
      'text'
    ];
    expect(clashingApps(details)).toEqual(['web', 'wl_b']);
    expect(clashingApps(null)).toEqual([]);
    expect(clashingApps({ workload: 'wl_a' })).toEqual([]);
  });
});

describe('configSummary', () => {
  it('reads the image and the ports of a config', () => {
    const config = { image: 'web:1', ports: [{ container: 8080 }, { container: 53, host: 5353, protocol: 'udp' }] };
    expect(configSummary(config)).toEqual({ image: 'web:1', ports: ['8080', '5353→53/udp'] });
  });
  it('is empty for a config without them', () => {
    expect(configSummary({ compose: 'services: {}' })).toEqual({ image: '', ports: [] });
    expect(configSummary({ ports: ['x', null, { host: 1 }] })).toEqual({ image: '', ports: [] });
  });
});

describe('a pasted .env', () => {
  it('reads pairs, quotes, exports and comments, and names the bad lines', () => {
    const text = [
      '# database',
      'DB_HOST=db.internal',
      'export PORT = 5432',
      "GREETING='hello # not a comment'",
      'MULTI="a\\nb \\"q\\""  # trailing',
      'EMPTY=',
      'PLAIN=x y # comment',
      'not a line',
      '1BAD=x',
      ''
    ].join('\n');
    expect(parseDotenv(text)).toEqual({
      pairs: [
        ['DB_HOST', 'db.internal'],
        ['PORT', '5432'],
        ['GREETING', 'hello # not a comment'],
        ['MULTI', 'a\nb "q"'],
        ['EMPTY', ''],
        ['PLAIN', 'x y']
      ],
      bad: [8, 9]
    });
  });

  it('updates keys already there and adds the rest', () => {
    const rows = [
      { key: 'A', value: '1', secret: false, kept: false },
      { key: 'S', value: '', secret: true, kept: true },
      blankRow()
    ];
    expect(mergeDotenv(rows, [['S', 'new'], ['B', '2']], false)).toEqual([
      { key: 'A', value: '1', secret: false, kept: false },
      { key: 'S', value: 'new', secret: true, kept: false },
      { key: 'B', value: '2', secret: false, kept: false }
    ]);
    expect(mergeDotenv([], [['T', 'x']], true)).toEqual([{ key: 'T', value: 'x', secret: true, kept: false }]);
  });
});
