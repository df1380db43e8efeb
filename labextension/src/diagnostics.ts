/**
 * Manifest diagnostics: the located problems the server finds in a manifest.yaml being edited, as list
 * entries with a cursor position the editor can jump to.
 */

import { IProblem } from './model';

export interface IDiagnostic {
  /** 0-based position for the editor. */
  line: number;
  column: number;
  /** ``7:14`` (1-based, as in the CLI), or ``-`` when the problem is about the whole file. */
  where: string;
  pointer: string;
  message: string;
  hint: string | null;
}

/** Editor positions for problems (1-based line/col from the server, clamped to the text's lines). */
export function toDiagnostics(problems: IProblem[], text: string): IDiagnostic[] {
  const lines = text.split('\n');
  return problems
    .map(p => {
      const line = p.line ? Math.min(Math.max(p.line - 1, 0), Math.max(lines.length - 1, 0)) : 0;
      const length = (lines[line] || '').length;
      const column = p.col ? Math.min(Math.max(p.col - 1, 0), length) : 0;
      return {
        line,
        column,
        where: p.line ? `${p.line}${p.col ? `:${p.col}` : ''}` : '-',
        pointer: p.pointer === null || p.pointer === undefined ? '' : p.pointer || '/',
        message: p.message,
        hint: p.hint
      };
    })
    .sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Whether ``path`` is a manifest the diagnostics panel follows. */
export function isManifest(path: string | null | undefined): boolean {
  return !!path && (path === 'manifest.yaml' || path.endsWith('/manifest.yaml'));
}
