import {
  IPluginSummary,
  applyState,
  badgeOf,
  filterPlugins,
  formatProblem,
  lastError,
  pyLiteral,
  pyName,
  relativePath,
  shortSigner
} from '../model';

function plugin(over: Partial<IPluginSummary> = {}): IPluginSummary {
  return {
    scope: 'workspace',
    path: 'plugins/echo',
    abspath: '/root/plugins/echo',
    name: 'echo',
    version: '1.0.0',
    description: 'says it back',
    valid: true,
    problems: [],
    signature: { status: 'verified', signer: 'CN=Ada, O=Lab', message: '' },
    live: null,
    ...over
  };
}

function live(stage: string, id = 1, over: object = {}) {
  return {
    key: '/root/plugins/echo',
    plugin: 'echo',
    version: '1.0.0',
    stage,
    isolation: 'nsjail',
    signer: 'CN=Ada',
    error: null,
    processes: stage === 'ACTIVE' ? [{ pid: 42, source: 'kernel', stage }] : [],
    event_id: id,
    ts: 0,
    ...over
  };
}

describe('badgeOf', () => {
  it('says READY for a valid signed plugin nothing runs', () => {
    expect(badgeOf(plugin()).label).toBe('READY');
  });
  it('prefers the live stage and names the processes', () => {
    const badge = badgeOf(plugin({ live: live('ACTIVE') }));
    expect(badge.label).toBe('ACTIVE');
    expect(badge.title).toBe('active in 1 process (kernel 42)');
  });
  it('shows static problems over a stopped state', () => {
    expect(badgeOf(plugin({ valid: false, problems: [], live: live('STOPPED') })).label).toBe('INVALID');
    expect(badgeOf(plugin({ live: live('STOPPED') })).label).toBe('STOPPED');
  });
  it('names the signature problem', () => {
    const badge = badgeOf(plugin({ signature: { status: 'tampered', signer: '', message: 'x changed' } }));
    expect(badge).toEqual({ label: 'TAMPERED', kind: 'unsigned', title: 'x changed' });
  });
  it('shows a live failure with its error', () => {
    const badge = badgeOf(plugin({ live: live('FAILED', 1, { error: 'boom' }) }));
    expect(badge).toEqual({ label: 'FAILED', kind: 'failed', title: 'boom' });
  });
});

describe('lastError and formatProblem', () => {
  it('formats problems as the CLI does', () => {
    const p = { file: 'echo/manifest.yaml', line: 7, col: 3, pointer: '/spec', message: 'bad', hint: null };
    expect(formatProblem(p)).toBe('echo/manifest.yaml:7:3: /spec: bad');
    expect(formatProblem({ ...p, line: null, col: null, pointer: null })).toBe('echo/manifest.yaml: bad');
    expect(formatProblem({ ...p, pointer: '' })).toBe('echo/manifest.yaml:7:3: /: bad');
  });
  it('takes a live error first, then the first problem', () => {
    const p = { file: 'm', line: 1, col: null, pointer: null, message: 'bad', hint: null };
    expect(lastError(plugin({ valid: false, problems: [p] }))).toBe('m:1: bad');
    expect(lastError(plugin({ live: live('FAILED', 1, { error: 'boom' }) }))).toBe('boom');
    expect(lastError(plugin())).toBe('');
  });
});

describe('filterPlugins', () => {
  const all = [
    plugin({ name: 'zeta', path: 'z', abspath: '/z' }),
    plugin({ name: 'alpha', path: 'a', abspath: '/a', description: 'sentiment of reviews', live: live('ACTIVE') }),
    plugin({ name: 'broken', path: 'b', abspath: '/b', valid: false }),
    plugin({ name: 'inst', path: 'i', abspath: '/i', scope: 'installed' })
  ];
  it('sorts by name and matches every word of the query', () => {
    expect(filterPlugins(all, '', 'all').map(p => p.name)).toEqual(['alpha', 'broken', 'inst', 'zeta']);
    expect(filterPlugins(all, 'reviews SENTIMENT', 'all').map(p => p.name)).toEqual(['alpha']);
    expect(filterPlugins(all, 'nothing', 'all')).toEqual([]);
  });
  it('filters by state and scope', () => {
    expect(filterPlugins(all, '', 'active').map(p => p.name)).toEqual(['alpha']);
    expect(filterPlugins(all, '', 'invalid').map(p => p.name)).toEqual(['broken']);
    expect(filterPlugins(all, '', 'installed').map(p => p.name)).toEqual(['inst']);
  });
});

describe('applyState', () => {
  it('updates the plugin of that folder and ignores late older states', () => {
    const before = [plugin(), plugin({ name: 'other', abspath: '/other' })];
    const after = applyState(before, live('ACTIVE', 5));
    expect(after[0].live!.stage).toBe('ACTIVE');
    expect(after[1]).toBe(before[1]);
    expect(applyState(after, live('STOPPED', 3))[0].live!.stage).toBe('ACTIVE');
  });
  it('matches by name when the state has no folder', () => {
    const after = applyState([plugin()], live('ACTIVE', 1, { key: 'name:echo' }));
    expect(after[0].live!.stage).toBe('ACTIVE');
  });
  it('returns the same list when nothing matches', () => {
    const before = [plugin()];
    expect(applyState(before, live('ACTIVE', 1, { key: '/elsewhere' }))).toBe(before);
  });
});

describe('paths and Python', () => {
  it('computes paths relative to the notebook folder', () => {
    expect(relativePath('', 'plugins/echo')).toBe('plugins/echo');
    expect(relativePath('notebooks', 'plugins/echo')).toBe('../plugins/echo');
    expect(relativePath('plugins', 'plugins/echo')).toBe('echo');
    expect(relativePath('a/b', 'a/b')).toBe('.');
  });
  it('writes JSON as Python literals', () => {
    expect(pyLiteral({ a: true, b: null, c: [1, 'x'], d: false })).toBe(
      '{\n    "a": True,\n    "b": None,\n    "c": [\n        1,\n        "x",\n    ],\n    "d": False,\n}'
    );
    expect(pyLiteral({})).toBe('{}');
    expect(pyLiteral('it\'s "quoted"')).toBe('"it\'s \\"quoted\\""');
  });
  it('makes identifiers from plugin names', () => {
    expect(pyName('sentiment-analyzer')).toBe('sentiment_analyzer');
    expect(pyName('3d')).toBe('p_3d');
  });
  it('shortens signers to their common name', () => {
    expect(shortSigner('CN=Ada Lovelace, O=Lab')).toBe('Ada Lovelace');
    expect(shortSigner('O=Lab')).toBe('O=Lab');
  });
});
