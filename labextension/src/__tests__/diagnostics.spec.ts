import { isManifest, toDiagnostics } from '../diagnostics';

const TEXT = 'apiVersion: synapse.io/v1\nkind: AIPlugin\nmetadata:\n  nme: x\n';

describe('toDiagnostics', () => {
  it('turns 1-based server positions into 0-based editor positions, sorted', () => {
    const found = toDiagnostics(
      [
        { file: 'm', line: 4, col: 3, pointer: '/metadata/nme', message: "unknown key 'nme'", hint: 'name' },
        { file: 'm', line: 3, col: 1, pointer: '/metadata', message: "missing required key 'name'", hint: null }
      ],
      TEXT
    );
    expect(found.map(d => [d.line, d.column, d.where])).toEqual([
      [2, 0, '3:1'],
      [3, 2, '4:3']
    ]);
    expect(found[1].hint).toBe('name');
    expect(found[1].pointer).toBe('/metadata/nme');
  });
  it('clamps positions past the end of the text and handles file-wide problems', () => {
    const [whole, beyond] = toDiagnostics(
      [
        { file: 'm', line: 99, col: 99, pointer: '', message: 'x', hint: null },
        { file: 'm', line: null, col: null, pointer: null, message: 'y', hint: null }
      ],
      TEXT
    );
    expect(whole).toMatchObject({ line: 0, column: 0, where: '-', pointer: '' });
    expect(beyond).toMatchObject({ line: 4, column: 0, pointer: '/' });
  });
});

describe('isManifest', () => {
  it('follows manifest.yaml files only', () => {
    expect(isManifest('plugins/echo/manifest.yaml')).toBe(true);
    expect(isManifest('manifest.yaml')).toBe(true);
    expect(isManifest('plugins/echo/my-manifest.yaml')).toBe(false);
    expect(isManifest(null)).toBe(false);
  });
});
