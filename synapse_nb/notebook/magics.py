"""The IPython magics: ``%%synapse_plugin`` defines a plugin from a cell, ``%synapse`` drives it.

::

    %%synapse_plugin NAME [--version V|auto] [--type T] [--trigger sync|async|event] [--timeout 1500ms]
                          [--memory-mb N] [--allow-domain D]... [--gpu] [--requirements "pkg ..."]
                          [--input-schema EXPR] [--output-schema EXPR] [--example EXPR]... [--topic T]... [--dir DIR]
    <the cell body is handler.py>

    %synapse help                       every sub-command (also: %synapse?)

Option parsing lives in :mod:`.options`, the one-line rendering of errors in :mod:`.render`, the logic of a cell
plugin in :mod:`.cellplugin`; this module only wires them to IPython. Every sub-command goes through the
notebook's :class:`~synapse_nb.manager.PluginManager` and the plugins' public methods.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool

from ..errors import InvalidError, SynapseError, UsageError
from ..textsafe import escape_terminal
from . import registry_view, serve_view
from .cellplugin import CellSpec, NotebookSession, handler_problem_in_cell
from .options import COMMANDS, USAGE, ints, name_and_expr, split_options
from .render import SynapseCellError, render_error

__all__ = ["SynapseCellError", "SynapseMagics", "complete", "render_error"]


@magics_class
class SynapseMagics(Magics):
    """``%%synapse_plugin`` and ``%synapse``; one :class:`NotebookSession` per IPython shell."""

    debug = Bool(False, help="Show full Python tracebacks for synapse errors instead of one line.").tag(config=True)

    def __init__(self, shell: Any, session: NotebookSession | None = None) -> None:
        super().__init__(shell)
        self.session = session or NotebookSession()
        self.session.manager.progress = self._progress
        self._progress_bar: Any = None
        self._progress_label: Any = None

    def _progress(self, event: Any) -> None:
        """Dependency environment builds (resolving, downloading, installing...) as a live progress bar."""
        import ipywidgets as widgets

        if self._progress_bar is None or event.phase == "resolving":
            self._progress_bar = widgets.FloatProgress(min=0.0, max=1.0, description="environment")
            self._progress_label = widgets.Label()
            display(widgets.HBox([self._progress_bar, self._progress_label]))
        if event.fraction is not None:
            self._progress_bar.value = event.fraction
        self._progress_label.value = f"{event.phase}: {event.message}"
        if event.phase == "done":
            self._progress_bar.value = 1.0
            self._progress_bar = None

    # -- helpers ---------------------------------------------------------------------------------------------
    def _fail(self, error: SynapseError) -> Exception:
        return error if self.debug else SynapseCellError(error)

    def _eval(self, expr: str, what: str) -> Any:
        if not expr.strip():
            raise UsageError(f"{what}: an expression is needed (a variable name or a literal such as {{'text': 'hi'}})")
        shell = self.shell
        if shell is None:
            raise UsageError("the synapse magics need an IPython shell")
        try:
            return shell.ev(expr)
        except Exception as exc:
            raise UsageError(f"{what}: cannot evaluate {expr!r}: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _json(value: Any, what: str) -> Any:
        """``value`` as JSON carries it (tuples become lists); a clear error when it is not JSON at all."""
        try:
            return json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as exc:
            raise UsageError(f"{what} is not JSON: {exc}") from None

    @staticmethod
    def _unquote(expr: str) -> str:
        """IPython keeps the quotes of a quoted option value: ``--example '{"a": 1}'`` means ``{"a": 1}``."""
        if len(expr) >= 2 and expr[0] == expr[-1] and expr[0] in "'\"":
            return expr[1:-1]
        return expr

    def _schema(self, expr: str | None, what: str) -> Any:
        if expr is None:
            return None
        value = self._json(self._eval(self._unquote(expr), what), what)
        if not isinstance(value, (dict, bool)):
            raise UsageError(f"{what} must be a JSON Schema object (a dict) or true/false, got {type(value).__name__}")
        return value

    # -- %%synapse_plugin -------------------------------------------------------------------------------------
    @magic_arguments()
    @argument("name", help="plugin name, a lower-case DNS label")
    @argument("--version", default="0.1.0", help="SemVer version (default 0.1.0), or auto: what the changes need")
    @argument("--type", default="general", help="interface type, e.g. nlp, vision, tabular")
    @argument("--trigger", default="sync", choices=["sync", "async", "event"], help="execution trigger")
    @argument("--timeout", default="30s", help="per-call timeout, e.g. 1500ms, 2s")
    @argument("--memory-mb", type=int, default=512, help="memory limit of the worker in MiB")
    @argument("--allow-domain", action="append", default=[], help="a domain the plugin may reach (repeatable)")
    @argument("--gpu", action="store_true", help="request GPU access")
    @argument("--requirements", default="", help='space-separated requirements, e.g. "numpy>=1.26 pandas"')
    @argument("--input-schema", default=None, help="EXPR: the input JSON Schema")
    @argument("--output-schema", default=None, help="EXPR: the output JSON Schema")
    @argument("--example", action="append", default=[], help="EXPR: an example payload (repeatable)")
    @argument("--topic", action="append", default=[], help="an event topic (with --trigger event)")
    @argument("--description", default="", help="one-line description")
    @argument("--dir", default=None, help="plugin folder (default ./synapse-plugins/NAME)")
    @no_var_expand  # {"text": "hi"} is an expression for us, not IPython's {var} interpolation
    @cell_magic
    def synapse_plugin(self, line: str, cell: str) -> None:
        """Define, validate, sign and activate a plugin whose handler.py is this cell."""
        try:
            try:
                args = parse_argstring(self.synapse_plugin, line)
            except Exception as exc:  # IPython's own UsageError from argparse
                raise UsageError(f"%%synapse_plugin: {exc}") from None
            spec = CellSpec(
                name=args.name,
                handler=cell,
                version=args.version,
                type=args.type,
                trigger=args.trigger,
                timeout=args.timeout,
                memory_mb=args.memory_mb,
                domains=tuple(args.allow_domain),
                gpu=args.gpu,
                requirements=tuple(args.requirements.split()),
                input_schema=self._schema(args.input_schema, "--input-schema"),
                output_schema=self._schema(args.output_schema, "--output-schema"),
                examples=[
                    self._json(self._eval(self._unquote(e), "--example"), f"--example {e}") for e in args.example
                ],
                directory=Path(args.dir) if args.dir else None,
                description=args.description,
                topics=tuple(args.topic),
            )
            result = self.session.define(spec)
        except SynapseError as exc:
            self.session.note_failure(getattr(exc, "plugin", None) or line.split(" ", 1)[0], exc)
            problem = handler_problem_in_cell(exc) if isinstance(exc, InvalidError) else None
            if problem is not None and problem.line is not None:
                exc.message += f" (cell line {problem.line + 1})"  # the cell's first line is the magic line
            raise self._fail(exc) from None
        from .widgets import LifecycleWidget

        if result.version_choice:  # --version auto: what it chose, and why
            print("synapse: --version auto chose " + "\n  ".join(escape_terminal(x) for x in result.version_choice))
        notes = []
        if result.created_key:
            notes.append("created your developer signing key (synapse-cli keys list shows it)")
        if not result.changed:
            notes.append("unchanged: same files and digest, the warm worker keeps running")
        notes.extend(f"inferred {name} from the examples" for name in result.inferred)
        notes.extend(f"warning: {w}" for w in result.warnings)
        display(LifecycleWidget(self.session.manager, result.plugin.name, note="; ".join(notes)))

    # -- %synapse ---------------------------------------------------------------------------------------------
    @no_var_expand
    @line_magic
    def synapse(self, line: str) -> Any:
        """Run, benchmark, test, inspect and manage plugins::

        %synapse run NAME EXPR [--no-cache] [--idempotency-key K]   one input; the result and the I/O debugger
        %synapse emit TOPIC EXPR              deliver an event to the plugins subscribed to TOPIC
        %synapse bench NAME EXPR [--batch-sizes 1,8,64] [--concurrency 1] [--repeat N] [--warmup N]
        %synapse status                       every plugin: stage, calls, errors, p50, cache hit rate, circuit
        %synapse validate NAME | sign NAME | verify NAME | inspect NAME | logs NAME
        %synapse test NAME [-k KEYWORD]       the plugin's tests/, run by pytest inside its jail
        %synapse teardown NAME|--all          run teardown() and save the state
        %synapse load PATH [--debug]          activate a plugin folder (--debug: in this kernel, unsandboxed)
        %synapse isolation [--allow-process]  how plugins are isolated here (opt in to the process level)
        %synapse search [QUERY] [--category C] [--registry R] | install NAME[@RANGE] [--registry R]
        %synapse publish NAME --registry R | installed
        %synapse serve NAME... [--grpc :0] [--http :0] [--token-file F] | serve --stop
        %synapse compat NAME                  the cell's version against the previous one: each change, its bump
        %synapse help                         every sub-command
        %synapse --debug [on|off]             full tracebacks instead of one-line errors

        EXPR is a Python expression in the notebook's namespace (a variable, or a literal such as
        ``{"text": "hi"}``); it is not shell-split, and options may come before or after it.
        """
        command, _, rest = line.strip().partition(" ")
        try:
            return self._dispatch(command, rest.strip())
        except SynapseError as exc:
            raise self._fail(exc) from None

    def _handlers(self) -> dict[str, Any]:
        return {
            "run": self._run,
            "emit": self._emit,
            "bench": self._bench,
            "status": lambda _rest: _tidy(self.session.manager.status()),
            "validate": self._validate,
            "sign": self._sign,
            "verify": self._verify,
            "inspect": self._inspect,
            "logs": self._logs,
            "test": self._test,
            "teardown": self._teardown,
            "load": self._load,
            "isolation": self._isolation,
            "search": self._search,
            "install": self._install,
            "publish": self._publish,
            "installed": lambda _rest: registry_view.installed(),
            "serve": lambda rest: serve_view.serve_command(self.session, rest),
            "compat": self._compat,
            "help": lambda _rest: print(USAGE),
        }

    def _dispatch(self, command: str, rest: str) -> Any:
        if command == "--debug":
            self.debug = rest.strip().lower() not in ("off", "false", "0")
            print(f"synapse: full tracebacks {'on' if self.debug else 'off'}")
            return None
        if not command:
            print(USAGE)
            return None
        handler = self._handlers().get(command)
        if handler is None:
            import difflib

            close = difflib.get_close_matches(command, list(COMMANDS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"%synapse: unknown command {command!r}{hint} (%synapse help lists them)")
        return handler(rest)

    def _run(self, rest: str) -> Any:
        from .widgets import IODebugger

        name, expr, options = name_and_expr(rest, "run", {"no-cache", "idempotency-key"})
        plugin = self.session.plugin(name)
        payload = self._eval(expr, f"%synapse run {name}")
        note = self.session.failure_note(name)
        if note:
            print(f"synapse: {plugin.name} {plugin.version} answered; {note}")
        key = _text(options, "idempotency-key")
        if "idempotency-key" in options and key is None:
            raise UsageError("%synapse run: --idempotency-key needs a value (a string of your choice)")
        debugger = IODebugger(plugin)
        try:
            invocation = plugin.invoke(payload, cache=not options.get("no-cache"), idempotency_key=key)
        finally:
            debugger.refresh()
            display(debugger)
        served = [f"{k}: {invocation.meta[k]}" for k in ("cache", "idempotency") if k in invocation.meta]
        if invocation.meta.get("cache") == "hit" or invocation.meta.get("idempotency") == "replayed":
            print(f"synapse: {plugin.name} answered without running ({', '.join(served)})")
        return invocation.result

    def _emit(self, rest: str) -> Any:
        """``%synapse emit TOPIC EXPR``: deliver to this notebook's event plugins subscribed to TOPIC."""
        topic, _, expr = rest.strip().partition(" ")
        if not topic:
            raise UsageError(f"%synapse emit: the topic is missing; usage: %synapse {COMMANDS['emit']}")
        payload = self._eval(expr, f"%synapse emit {topic}")
        deliveries = self.session.manager.emit(topic, payload)
        if not deliveries:
            print(f"synapse: no plugin with trigger: event in this notebook subscribes to {topic!r}")
        for delivery in deliveries:
            outcome = "ok" if delivery.ok else f"FAILED: {delivery.error}"
            print(f"synapse: {escape_terminal(delivery.plugin)}: {escape_terminal(outcome)}")
        return deliveries

    def _bench(self, rest: str) -> Any:
        from ..benchmark import run_benchmark
        from .widgets import BenchmarkWidget

        name, expr, options = name_and_expr(rest, "bench", {"batch-sizes", "concurrency", "repeat", "warmup"})
        plugin = self.session.plugin(name)
        payload = self._eval(expr, f"%synapse bench {name}")
        frame = run_benchmark(
            plugin,
            payload,
            batch_sizes=ints(options, "batch-sizes", "1,8,64"),
            concurrency=ints(options, "concurrency", "1"),
            repeat=ints(options, "repeat", "20")[0],
            warmup=ints(options, "warmup", "3")[0],
        )
        widget = BenchmarkWidget(frame, title=f"{plugin.name} {plugin.version} ({plugin.isolation})")
        display(widget)
        return widget.result()  # the same DataFrame, not shown a second time by this cell

    def _folder(self, rest: str, command: str) -> Path:
        name = rest.strip().split(" ", 1)[0]
        if not name:
            raise UsageError(f"%synapse {command}: the plugin name is missing; usage: %synapse {COMMANDS[command]}")
        return self.session.folder(name)

    def _validate(self, rest: str) -> None:
        from ..anatomy import validate_folder

        folder = validate_folder(self._folder(rest, "validate"))
        print(f"ok: {folder.manifest.name} {folder.manifest.version}: handler {folder.handler_class} (static check)")

    def _sign(self, rest: str) -> None:
        from ..signing import sign_folder

        result = sign_folder(self._folder(rest, "sign"))
        print(f"signed {rest.strip()} by {result.signer_subject}")

    def _verify(self, rest: str) -> None:
        from ..manifest import load_manifest
        from ..signing import verify_folder

        folder = self._folder(rest, "verify")
        v = verify_folder(folder)
        print(f"ok: {v.plugin} {v.version} signed by {v.signer_subject} (sha256 {v.signer_fingerprint[:16]})")
        secrets = load_manifest(folder).secrets
        if secrets:
            print(f"asks for secrets: {', '.join(secrets)} (passed only if listed in secrets.allow of the config)")

    def _inspect(self, rest: str) -> None:
        from .widgets import LifecycleWidget, SchemaWidget

        plugin = self.session.plugin(rest.strip())
        display(LifecycleWidget(self.session.manager, plugin.name))
        display(SchemaWidget.for_plugin(plugin))

    def _logs(self, rest: str) -> None:
        plugin = self.session.plugin(rest.strip())
        streams = plugin.logs()
        if not streams:
            print(f"{plugin.name}: no running worker")
        for label, (text, total) in streams.items():
            print(f"--- {plugin.name} {label} ({total} bytes written) ---")
            if text.rstrip():
                print(escape_terminal(text.rstrip()))
        for event in plugin.network_events[-10:]:
            print(f"--- network refused: {event.get('host')}:{event.get('port')} ({event.get('reason')})")
        for record in list(plugin.history or [])[-5:]:
            for stream in ("stdout", "stderr"):
                text = getattr(record, stream)
                if text:
                    print(f"--- call at {record.at:.3f}: {stream} ---\n{escape_terminal(text.rstrip())}")

    def _test(self, rest: str) -> dict[str, Any]:
        from ..activation import ActivationOptions
        from ..testrun import run_plugin_tests

        name, _, extra = rest.strip().partition(" ")
        keyword = None
        if extra.strip():
            flag, _, value = extra.strip().partition(" ")
            if flag != "-k" or not value.strip():
                raise UsageError(f"%synapse test: unexpected {extra.strip()!r}; usage: %synapse {COMMANDS['test']}")
            keyword = value.strip()
        manager = self.session.manager
        options = ActivationOptions(
            config=manager.config, insecure_allow_unsigned=manager.insecure_allow_unsigned,
            allow_process_isolation=manager.allow_process_isolation, warn=manager.warn,
        )  # fmt: skip
        report = run_plugin_tests(self._folder(name, "test"), keyword=keyword, options=options)
        print(escape_terminal(report.output.rstrip()))
        error = report.error()
        if error is not None:
            raise error
        print(f"synapse: {report.counts['passed']} passed in the {report.isolation} sandbox")
        return report.to_json()

    def _teardown(self, rest: str) -> None:
        manager = self.session.manager
        if rest.strip() == "--all":
            manager.teardown_all()
            print("synapse: every plugin torn down, state saved")
            return
        state = manager.teardown(rest.strip())
        print(f"synapse: {rest.strip()} torn down; saved state: {state}")

    def _isolation(self, rest: str) -> None:
        """One visible line: how plugins will actually be isolated here. ``--allow-process`` is the explicit
        opt-in to the rlimits-only level, taken only where that level is what this host gives."""
        manager = self.session.manager
        level, why = manager.isolation()
        if level != "process":
            print(f"synapse: plugins run under {level} ({why})")
            return
        print(f"synapse: isolation here is 'process': {why}")
        if "--allow-process" in rest.split():
            manager.allow_process_isolation = True
            print("synapse: OPTED IN to process isolation for this notebook: plugins run without a sandbox")
        elif not manager.allow_process_isolation:
            print("synapse: plugins are refused until you opt in: %synapse isolation --allow-process")

    def _search(self, rest: str) -> Any:
        query, options = split_options(rest)
        unknown = set(options) - {"category", "registry"}
        if unknown:
            raise UsageError(f"%synapse search: unknown option(s) {', '.join('--' + u for u in sorted(unknown))}")
        return registry_view.search(
            query.strip() or None, category=_text(options, "category"), registry=_text(options, "registry"),
            warn=self._warn,
        )  # fmt: skip

    def _install(self, rest: str) -> Any:
        spec, options = split_options(rest)
        if not spec.strip() or set(options) - {"registry", "move-pin"}:
            raise UsageError(f"%synapse install: usage: %synapse {COMMANDS['install']}")
        return registry_view.install(
            spec.strip(), registry=_text(options, "registry"), move_pin=bool(options.get("move-pin")), warn=self._warn
        )

    def _publish(self, rest: str) -> Any:
        name, options = split_options(rest)
        registry = _text(options, "registry")
        if not name.strip() or registry is None:
            raise UsageError(f"%synapse publish: usage: %synapse {COMMANDS['publish']}")
        return registry_view.publish(self.session.folder(name.strip()), registry=registry)

    @staticmethod
    def _warn(text: str) -> None:
        print(f"synapse: warning: {escape_terminal(text)}")

    def _compat(self, rest: str) -> None:
        name, extra, _options = name_and_expr(rest, "compat", set())
        if extra:
            raise UsageError(f"%synapse compat: unexpected {extra!r}; usage: %synapse {COMMANDS['compat']}")
        print("\n".join(escape_terminal(line) for line in self.session.compat_report(name)))

    def _load(self, rest: str) -> Any:
        from .widgets import LifecycleWidget

        words = rest.split()
        debug = "--debug" in words
        path = " ".join(w for w in words if w != "--debug").strip("'\"")
        if not path:
            raise UsageError(f"%synapse load: the folder is missing; usage: %synapse {COMMANDS['load']}")
        plugin = self.session.manager.load(path, debug=debug)
        plugin.keep_history(32)
        display(LifecycleWidget(self.session.manager, plugin.name))
        return plugin


def _tidy(frame: Any) -> Any:
    """The DataFrame with rounded, NaN-free reprs (widgets/frames.py; imported on use: it needs pandas)."""
    from .widgets.frames import tidy

    return tidy(frame)


def _text(options: dict[str, str | bool], key: str) -> str | None:
    value = options.get(key)
    return value if isinstance(value, str) and value else None


def complete(magics: SynapseMagics, line: str) -> list[str]:
    """Tab completion of ``%synapse``: sub-commands first, then plugin names known to the notebook."""
    words = line.split()
    ending = line.endswith(" ")
    if len(words) <= 1 or (len(words) == 2 and not ending):
        prefix = words[1] if len(words) == 2 else ""
        return [c for c in (*COMMANDS, "--debug") if c.startswith(prefix)]
    if len(words) == 2 or (len(words) == 3 and not ending):
        prefix = words[2] if len(words) == 3 and not ending else ""
        names = sorted(set(magics.session.defined) | set(magics.session.manager.plugins))
        return [n for n in names if n.startswith(prefix)]
    return []
