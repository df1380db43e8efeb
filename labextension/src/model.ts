/**
 * The sidebar's data: plugin summaries from GET /synapse/api/plugins, live states from the event stream,
 * and the pure functions the views use (badge, filter and search, relative paths, Python literals).
 * Nothing here touches the DOM or JupyterLab, so jest tests it directly.
 */

export type Scope = 'workspace' | 'installed';

export interface IProblem {
  file: string;
  line: number | null;
  col: number | null;
  pointer: string | null;
  message: string;
  hint: string | null;
}

export interface ISignature {
  status: string;
  signer: string;
  message: string;
}

export interface IProcess {
  pid: number;
  source: string;
  stage: string;
}

export interface ILiveState {
  key: string;
  plugin: string;
  version: string;
  stage: string;
  isolation: string;
  signer: string;
  error: string | null;
  processes: IProcess[];
  event_id: number;
  ts: number;
}

export interface IPluginSummary {
  scope: Scope;
  path: string;
  abspath: string;
  name: string;
  version: string;
  description: string;
  category?: string | null;
  trigger?: string;
  valid: boolean;
  /** false in a quick listing: only manifest.yaml was read; the full listing that follows says more. */
  checked?: boolean;
  problems: IProblem[];
  signature?: ISignature;
  live?: ILiveState | null;
}

export interface IListing {
  root: string;
  installed_dir: string;
  installed_available: boolean;
  plugins: IPluginSummary[];
  truncated: string[];
  elapsed_ms: number;
  cursor: number;
}

export interface IEventRow {
  id: number;
  ts: number;
  kind: 'lifecycle' | 'call' | 'calls' | 'bench';
  plugin: string;
  version: string;
  stage: string;
  pid: number;
  source: string;
  path: string;
  data: { [key: string]: any };
}

/** What the badge of one plugin says, and its CSS modifier. */
export interface IBadge {
  label: string;
  kind: 'active' | 'busy' | 'failed' | 'invalid' | 'unsigned' | 'ready' | 'stopped';
  title: string;
}

/** The badge: the live stage when a process reported one, else what the static checks found. */
export function badgeOf(plugin: IPluginSummary): IBadge {
  const live = plugin.live;
  if (live) {
    const where = live.processes.length
      ? ` in ${live.processes.length} process${live.processes.length > 1 ? 'es' : ''} (${live.processes
          .map(p => `${p.source} ${p.pid}`)
          .join(', ')})`
      : '';
    switch (live.stage) {
      case 'ACTIVE':
        return { label: 'ACTIVE', kind: 'active', title: `active${where}` };
      case 'ACTIVATING':
      case 'TEARING_DOWN':
        return { label: live.stage, kind: 'busy', title: live.stage.toLowerCase() };
      case 'FAILED':
        return { label: 'FAILED', kind: 'failed', title: live.error || 'failed' };
      case 'STOPPED':
        break; // fall through to the static view, which says whether it would start again
      default:
        break;
    }
  }
  if (plugin.checked === false) {
    return { label: 'CHECKING', kind: 'busy', title: 'validating and verifying the signature' };
  }
  if (!plugin.valid) {
    const n = plugin.problems.length;
    return { label: 'INVALID', kind: 'invalid', title: `${n} problem${n === 1 ? '' : 's'}` };
  }
  if (plugin.signature && plugin.signature.status !== 'verified') {
    return { label: plugin.signature.status.toUpperCase(), kind: 'unsigned', title: plugin.signature.message };
  }
  if (live && live.stage === 'STOPPED') {
    return { label: 'STOPPED', kind: 'stopped', title: 'stopped; runs again on the next call' };
  }
  return { label: 'READY', kind: 'ready', title: 'valid and signed: activates on first use' };
}

/** The last error worth one line in the sidebar: a live failure, else the first static problem. */
export function lastError(plugin: IPluginSummary): string {
  if (plugin.live && plugin.live.error) {
    return plugin.live.error;
  }
  if (!plugin.valid && plugin.problems.length) {
    return formatProblem(plugin.problems[0]);
  }
  if (plugin.signature && plugin.signature.status !== 'verified') {
    return plugin.signature.message;
  }
  return '';
}

/** ``file:line:col: /pointer: message`` as the CLI prints it. */
export function formatProblem(p: IProblem): string {
  let where = p.file;
  if (p.line !== null && p.line !== undefined) {
    where += `:${p.line}`;
    if (p.col !== null && p.col !== undefined) {
      where += `:${p.col}`;
    }
  }
  const pointer = p.pointer !== null && p.pointer !== undefined ? ` ${p.pointer || '/'}:` : '';
  return `${where}:${pointer} ${p.message}`;
}

/** The signer's common name (``CN=Ada Lovelace, O=...`` -> ``Ada Lovelace``). */
export function shortSigner(subject: string): string {
  const match = /CN=([^,]+)/.exec(subject || '');
  return match ? match[1].trim() : subject || '';
}

export type Filter = 'all' | 'active' | 'failed' | 'invalid' | 'unsigned' | 'installed';

/** Plugins matching the filter and every word of the query (name, description, path, category), by name. */
export function filterPlugins(plugins: IPluginSummary[], query: string, filter: Filter): IPluginSummary[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return plugins
    .filter(p => {
      const badge = badgeOf(p);
      switch (filter) {
        case 'active':
          return badge.kind === 'active' || badge.kind === 'busy';
        case 'failed':
          return badge.kind === 'failed' || !!(p.live && p.live.error);
        case 'invalid':
          return !p.valid;
        case 'unsigned':
          return p.valid && badge.kind === 'unsigned';
        case 'installed':
          return p.scope === 'installed';
        default:
          return true;
      }
    })
    .filter(p => {
      const text = `${p.name} ${p.description} ${p.path} ${p.category || ''} ${p.version}`.toLowerCase();
      return words.every(w => text.includes(w));
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.path.localeCompare(b.path));
}

/** A state pushed by the server, applied to the plugin whose folder (or, without a folder, name) it is. */
export function applyState(plugins: IPluginSummary[], state: ILiveState): IPluginSummary[] {
  let matched = false;
  const next = plugins.map(p => {
    const same = state.key.startsWith('name:') ? p.name === state.plugin : p.abspath === state.key;
    if (!same) {
      return p;
    }
    matched = true;
    if (p.live && p.live.event_id > state.event_id) {
      return p; // an older state arriving late
    }
    return { ...p, live: state };
  });
  return matched ? next : plugins;
}

/** ``to`` relative to the folder ``fromDir`` (both relative to the server root, POSIX separators). */
export function relativePath(fromDir: string, to: string): string {
  const from = fromDir.split('/').filter(s => s && s !== '.');
  const target = to.split('/').filter(s => s && s !== '.');
  let common = 0;
  while (common < from.length && common < target.length && from[common] === target[common]) {
    common++;
  }
  const up = from.slice(common).map(() => '..');
  const rest = target.slice(common);
  const parts = [...up, ...rest];
  return parts.length ? parts.join('/') : '.';
}

/** A JSON value written as a Python literal (``true`` -> ``True``, ``null`` -> ``None``). */
export function pyLiteral(value: unknown, indent = 0): string {
  const pad = ' '.repeat(indent + 4);
  const end = ' '.repeat(indent);
  if (value === null || value === undefined) {
    return 'None';
  }
  if (value === true) {
    return 'True';
  }
  if (value === false) {
    return 'False';
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      return value > 0 ? "float('inf')" : value < 0 ? "float('-inf')" : "float('nan')";
    }
    return String(value);
  }
  if (typeof value === 'string') {
    return JSON.stringify(value); // a JSON string is a valid Python string literal
  }
  if (Array.isArray(value)) {
    if (!value.length) {
      return '[]';
    }
    return `[\n${value.map(v => pad + pyLiteral(v, indent + 4)).join(',\n')},\n${end}]`;
  }
  const entries = Object.entries(value as { [key: string]: unknown });
  if (!entries.length) {
    return '{}';
  }
  const body = entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${pyLiteral(v, indent + 4)}`).join(',\n');
  return `{\n${body},\n${end}}`;
}

/** A Python identifier made from a plugin name (``sentiment-analyzer`` -> ``sentiment_analyzer``). */
export function pyName(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(clean) ? `p_${clean}` : clean || 'plugin';
}
