/**
 * Talking to the server extension: REST calls under ``/synapse/api/`` (authenticated and XSRF-protected by
 * JupyterLab's ServerConnection) and the events WebSocket, reconnected when it drops.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { Signal, ISignal } from '@lumino/signaling';

import { IEventRow, IListing, ILiveState, IProblem, IPluginSummary, Scope } from './model';

export interface IActionError {
  code: string;
  exit_code: number;
  message: string;
  pointer?: string;
  problems?: IProblem[];
  [key: string]: any;
}

/** The CLI's ``--json`` shape, which every action answers with. */
export interface IActionResult {
  ok: boolean;
  result?: any;
  error?: IActionError;
  meta?: { [key: string]: any };
}

export interface IStatus {
  level: string;
  description?: string;
  allowed: boolean;
  warning: string | null;
  nsjail?: string | null;
  registry: boolean;
  root: string;
}

export interface IPluginDetail extends IPluginSummary {
  manifest: { [key: string]: any } | null;
  schemas: { [name: string]: any };
  permissions: {
    network_access: { domains: string[] };
    system_resources: { gpu: boolean; memory_mb: number };
  } | null;
  secrets: string[];
  requirements: string[];
  history: { calls: IEventRow[]; benchmarks: IEventRow[] };
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: any
  ) {
    super(message);
  }
}

/** One request to the server extension; JSON in and out; a one-line ApiError for non-2xx answers. */
export async function requestAPI<T>(endPoint: string, init: RequestInit = {}, query: { [k: string]: string } = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let url = URLExt.join(settings.baseUrl, 'synapse', 'api', endPoint);
  const params = new URLSearchParams(query).toString();
  if (params) {
    url += `?${params}`;
  }
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = text;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: keep the text for the message
  }
  if (!response.ok) {
    const message =
      (data && data.error && data.error.message) || (data && data.message) || `HTTP ${response.status}`;
    throw new ApiError(message, response.status, data);
  }
  return data as T;
}

/** Every plugin; ``quick``: without checks not made yet (fast for long lists; follow with a full listing). */
export function listPlugins(quick = false): Promise<IListing> {
  return requestAPI<IListing>('plugins', {}, quick ? { quick: '1' } : {});
}

export function getPlugin(scope: Scope, path: string): Promise<IPluginDetail> {
  return requestAPI<IPluginDetail>('plugin', {}, { scope, path });
}

export function getStatus(): Promise<IStatus> {
  return requestAPI<IStatus>('status');
}

/** Run an action; request-level refusals (4xx) come back in the same shape as action failures. */
export async function runAction(
  action: 'validate' | 'sign' | 'verify' | 'test' | 'run',
  scope: Scope,
  path: string,
  extra: { payload?: unknown; endpoint?: string | null } = {}
): Promise<IActionResult> {
  try {
    return await requestAPI<IActionResult>(`actions/${action}`, {
      method: 'POST',
      body: JSON.stringify({ scope, path, ...extra })
    });
  } catch (error) {
    if (error instanceof ApiError && error.body && error.body.error) {
      return error.body as IActionResult;
    }
    return { ok: false, error: { code: 'internal', exit_code: 1, message: String((error as Error).message || error) } };
  }
}

export function diagnose(path: string, text: string): Promise<{ ok: boolean; problems: IProblem[] }> {
  return requestAPI('diagnostics', { method: 'POST', body: JSON.stringify({ path, text }) });
}

/** One line for an action's outcome: ``ok: ...`` or ``error: ... [code, exit N]``. */
export function oneLine(action: string, result: IActionResult): string {
  if (result.ok) {
    const r = result.result || {};
    switch (action) {
      case 'validate':
        return `ok: ${r.plugin} ${r.version} is valid`;
      case 'sign':
        return `ok: signed ${r.plugin} ${r.version} by ${r.signer} (${r.files} files)`;
      case 'verify':
        return `ok: ${r.plugin} ${r.version} signed by ${(r.signer && r.signer.subject) || '?'}`;
      case 'test':
        return `ok: ${r.passed} passed${r.skipped ? `, ${r.skipped} skipped` : ''}`;
      default:
        return `ok in ${result.meta && result.meta.duration_ms} ms (${result.meta && result.meta.isolation})`;
    }
  }
  const e = result.error || { code: 'internal', exit_code: 1, message: 'unknown error' };
  return `error: ${e.message} [${e.code}, exit ${e.exit_code}]`;
}

export type StreamMessage =
  | { type: 'hello'; cursor: number }
  | { type: 'state'; state: ILiveState }
  | { type: 'event'; event: IEventRow };

/** The events WebSocket: emits every message; reconnects with a growing delay when the socket drops. */
export class EventStream {
  private _socket: WebSocket | null = null;
  private _message = new Signal<this, StreamMessage>(this);
  private _connected = new Signal<this, boolean>(this);
  private _disposed = false;
  private _delay = 500;

  get message(): ISignal<this, StreamMessage> {
    return this._message;
  }

  get connected(): ISignal<this, boolean> {
    return this._connected;
  }

  start(): void {
    if (this._disposed || this._socket) {
      return;
    }
    const settings = ServerConnection.makeSettings();
    let url = URLExt.join(settings.wsUrl, 'synapse', 'api', 'events');
    if (settings.token) {
      url += `?token=${encodeURIComponent(settings.token)}`;
    }
    const socket = new settings.WebSocket(url);
    this._socket = socket;
    socket.onopen = () => {
      this._delay = 500;
      this._connected.emit(true);
    };
    socket.onmessage = event => {
      try {
        this._message.emit(JSON.parse(String(event.data)) as StreamMessage);
      } catch {
        // ignore a malformed frame
      }
    };
    socket.onclose = () => {
      this._socket = null;
      this._connected.emit(false);
      if (!this._disposed) {
        setTimeout(() => this.start(), this._delay);
        this._delay = Math.min(this._delay * 2, 10000);
      }
    };
  }

  dispose(): void {
    this._disposed = true;
    if (this._socket) {
      this._socket.close();
    }
    Signal.clearData(this);
  }
}
