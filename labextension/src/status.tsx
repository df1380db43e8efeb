/**
 * The status bar item: how plugins are isolated on this server. ``nsjail`` quietly; the ``process`` level
 * (Binder, most containers) as a visible warning, because there plugins are not sandboxed.
 */

import * as React from 'react';

import { ReactWidget } from '@jupyterlab/ui-components';

import { IStatus, getStatus } from './api';

function IsolationItem(props: { status: IStatus | null; error: string; onClick: () => void }): JSX.Element {
  const { status } = props;
  if (!status) {
    return (
      <span className="synapse-Status" title={props.error || 'asking the server how plugins are isolated'}>
        Synapse: {props.error ? 'unavailable' : '...'}
      </span>
    );
  }
  const warn = status.level === 'process' || !status.allowed;
  const label = status.level === 'process' ? (status.allowed ? 'process (NOT sandboxed)' : 'refused: no nsjail') : status.level;
  return (
    <span
      className={`synapse-Status${warn ? ' synapse-Status-warn' : ''}`}
      data-level={status.level}
      title={status.warning || `plugins run under ${status.level}: ${status.description || ''}`}
      onClick={props.onClick}
    >
      {warn ? '⚠ ' : ''}Synapse: {label}
    </span>
  );
}

export class IsolationStatus extends ReactWidget {
  private _status: IStatus | null = null;
  private _error = '';

  constructor(private readonly _onClick: () => void) {
    super();
    this.addClass('synapse-StatusItem');
    void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      this._status = await getStatus();
      this._error = '';
    } catch (error) {
      this._error = String((error as Error).message || error);
    }
    this.update();
  }

  render(): JSX.Element {
    return <IsolationItem status={this._status} error={this._error} onClick={this._onClick} />;
  }
}
