/**
 * The Synapse sidebar: the workspace's plugins (and the installed ones) with a live lifecycle badge,
 * version, isolation level, signer and last error; a search box and a filter. Click a plugin to open its panel.
 */

import * as React from 'react';

import { ReactWidget, refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Signal, ISignal } from '@lumino/signaling';

import { EventStream, listPlugins } from './api';
import {
  Filter,
  IListing,
  IPluginSummary,
  applyState,
  badgeOf,
  filterPlugins,
  lastError,
  shortSigner
} from './model';

/** The sidebar's state, shared with the plugin panels (they read live states from it). */
export class PluginsModel {
  listing: IListing | null = null;
  error = '';
  loading = false;
  private _changed = new Signal<this, void>(this);

  constructor(readonly stream: EventStream) {
    stream.message.connect((_, message) => {
      if (message.type === 'state' && this.listing && message.state) {
        const plugins = applyState(this.listing.plugins, message.state);
        if (plugins !== this.listing.plugins) {
          this.listing = { ...this.listing, plugins };
          this._changed.emit();
        }
      }
    });
    // After a reconnection states may have been missed: list again.
    stream.connected.connect((_, up) => {
      if (up && this.listing) {
        void this.refresh();
      }
    });
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  find(scope: string, path: string): IPluginSummary | undefined {
    return this.listing ? this.listing.plugins.find(p => p.scope === scope && p.path === path) : undefined;
  }

  /** List the plugins: a quick listing first (shown at once), then the checked one replaces it. */
  async refresh(): Promise<void> {
    this.loading = true;
    this._changed.emit();
    try {
      if (!this.listing) {
        this._take(await listPlugins(true));
      }
      this._take(await listPlugins(false));
      this.error = '';
    } catch (error) {
      this.error = String((error as Error).message || error);
    } finally {
      this.loading = false;
      this._changed.emit();
    }
  }

  /** A new listing keeps live states that arrived while it was computed. */
  private _take(listing: IListing): void {
    const previous = new Map((this.listing ? this.listing.plugins : []).map(p => [p.abspath, p.live]));
    listing.plugins = listing.plugins.map(p => {
      const known = previous.get(p.abspath);
      return known && (!p.live || known.event_id > p.live.event_id) ? { ...p, live: known } : p;
    });
    this.listing = listing;
    this._changed.emit();
  }
}

const FILTERS: { value: Filter; label: string }[] = [
  { value: 'all', label: 'All' },
  { value: 'active', label: 'Active' },
  { value: 'failed', label: 'Failed' },
  { value: 'invalid', label: 'Invalid' },
  { value: 'unsigned', label: 'Unsigned' },
  { value: 'installed', label: 'Installed' }
];

function PluginRow(props: { plugin: IPluginSummary; onOpen: (p: IPluginSummary) => void }): JSX.Element {
  const { plugin } = props;
  const badge = badgeOf(plugin);
  const error = lastError(plugin);
  const isolation = plugin.live && plugin.live.isolation;
  const signer = shortSigner((plugin.live && plugin.live.signer) || (plugin.signature && plugin.signature.signer) || '');
  return (
    <li
      className="synapse-PluginRow"
      data-plugin={plugin.name}
      data-stage={badge.label}
      title={`${plugin.scope}: ${plugin.path}`}
      onClick={() => props.onOpen(plugin)}
    >
      <div className="synapse-PluginRow-head">
        <span className="synapse-PluginRow-name">{plugin.name}</span>
        <span className="synapse-PluginRow-version">{plugin.version}</span>
        <span className={`synapse-Badge synapse-Badge-${badge.kind}`} title={badge.title}>
          {badge.label}
        </span>
      </div>
      <div className="synapse-PluginRow-meta">
        {isolation ? (
          <span className={`synapse-Isolation${isolation === 'process' ? ' synapse-warn' : ''}`}>{isolation}</span>
        ) : null}
        {signer ? <span className="synapse-Signer">{signer}</span> : null}
        {plugin.scope === 'installed' ? <span className="synapse-Scope">installed</span> : null}
      </div>
      {error ? (
        <div className="synapse-PluginRow-error" title={error}>
          {error}
        </div>
      ) : null}
    </li>
  );
}

function Sidebar(props: { model: PluginsModel; onOpen: (p: IPluginSummary) => void }): JSX.Element {
  const { model } = props;
  const [, setTick] = React.useState(0);
  const [query, setQuery] = React.useState('');
  const [filter, setFilter] = React.useState<Filter>('all');
  React.useEffect(() => {
    const update = (): void => setTick(t => t + 1);
    model.changed.connect(update);
    return () => {
      model.changed.disconnect(update);
    };
  }, [model]);
  const listing = model.listing;
  const shown = listing ? filterPlugins(listing.plugins, query, filter) : [];
  return (
    <div className="synapse-Sidebar">
      <div className="synapse-Sidebar-header">
        <h2>Synapse plugins</h2>
        <button
          className="jp-ToolbarButtonComponent synapse-Refresh"
          title="List the plugins again"
          onClick={() => void model.refresh()}
        >
          <refreshIcon.react tag="span" />
        </button>
      </div>
      <div className="synapse-Sidebar-controls">
        <input
          className="synapse-Search jp-mod-styled"
          type="search"
          placeholder="Search plugins"
          value={query}
          onChange={e => setQuery(e.target.value)}
        />
        <select
          className="synapse-Filter jp-mod-styled"
          value={filter}
          onChange={e => setFilter(e.target.value as Filter)}
        >
          {FILTERS.map(f => (
            <option key={f.value} value={f.value}>
              {f.label}
            </option>
          ))}
        </select>
      </div>
      {model.error ? <div className="synapse-Error">error: {model.error}</div> : null}
      {listing && listing.truncated.length ? (
        <div className="synapse-Note">{listing.truncated.join('; ')}</div>
      ) : null}
      {!listing && model.loading ? <div className="synapse-Note">Looking for plugins...</div> : null}
      {listing && !listing.plugins.length ? (
        <div className="synapse-Note">
          No plugins under {listing.root}. Define one with %%synapse_plugin in a notebook, or run synapse-cli plugin
          init.
        </div>
      ) : null}
      <ul className="synapse-PluginList" data-count={shown.length}>
        {shown.map(p => (
          <PluginRow key={`${p.scope}:${p.path}`} plugin={p} onOpen={props.onOpen} />
        ))}
      </ul>
      {listing ? (
        <div className="synapse-Sidebar-footer">
          {shown.length} of {listing.plugins.length} plugins (listed in {Math.round(listing.elapsed_ms)} ms)
        </div>
      ) : null}
    </div>
  );
}

/** The sidebar as a Lumino widget for the left area. */
export class SidebarWidget extends ReactWidget {
  constructor(
    readonly model: PluginsModel,
    private readonly _onOpen: (p: IPluginSummary) => void
  ) {
    super();
    this.addClass('synapse-SidebarWidget');
  }

  /** The plugins are listed the first time the sidebar is shown (not at start-up). */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (!this.model.listing && !this.model.loading) {
      void this.model.refresh();
    }
  }

  render(): JSX.Element {
    return <Sidebar model={this.model} onOpen={this._onOpen} />;
  }
}
