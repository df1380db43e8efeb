"""The IPython magics: ``%%synapse_plugin`` defines a plugin from a cell, ``%synapse`` drives it.

::

    %%synapse_plugin NAME [--version V] [--type T] [--trigger sync|async|event] [--timeout 1500ms]
                          [--memory-mb N] [--allow-domain D]... [--gpu] [--requirements "pkg ..."]
                          [--input-schema EXPR] [--output-schema EXPR] [--example EXPR]... [--topic T]... [--dir DIR]
    <the cell body is handler.py>

    %synapse run NAME EXPR              # returns the result, shows the I/O debugger
    %synapse bench NAME EXPR [--batch-sizes 1,8,64] [--concurrency 1] [--repeat N]   # returns a DataFrame
    %synapse status | validate NAME | sign NAME | verify NAME | inspect NAME | logs NAME | test NAME
    %synapse teardown NAME|--all | load PATH | --debug [on|off] | isolation [--allow-process]

EXPR is a Python expression evaluated in the notebook's namespace (a variable, or a literal such as
``{"text": "hi"}``); it is not shell-split, and options may come before or after it. Errors show as one line
(``error: ...`` naming the plugin, the location and the exit-code name); ``%synapse --debug`` or
``%config SynapseMagics.debug = True`` shows the full traceback instead.
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool

from ..errors import InvalidError, SynapseError, UsageError
from .cellplugin import CellSpec, NotebookSession, handler_problem_in_cell

__all__ = ["SynapseCellError", "SynapseMagics", "split_options"]

# %synapse subcommand options that take a value; the rest of the line is the EXPR.
VALUE_OPTIONS = {"batch-sizes", "concurrency", "repeat", "warmup"}


class SynapseCellError(Exception):
    """A synapse error as a notebook shows it: one ``error:`` line (IPython calls ``_render_traceback_``)."""

    def __init__(self, error: SynapseError) -> None:
        super().__init__(str(error))
        self.error = error

    def _render_traceback_(self) -> list[str]:
        return render_error(self.error)


def render_error(error: SynapseError) -> list[str]:
    """One line; validation problems add up to five lines naming the other failing places (no tracebacks)."""
    from ..errors import InvalidError

    lines = [f"error: {error} [{error.code}, exit {error.exit_code}]"]
    if isinstance(error, InvalidError):
        lines.extend(f"  {d}" for d in error.details[:5])
    return lines


def split_options(line: str) -> tuple[str, dict[str, str | bool]]:
    """Split ``EXPR --opt value --flag`` (options anywhere, outside brackets and strings) into (EXPR, options)."""
    options: dict[str, str | bool] = {}
    spans: list[tuple[int, int]] = []
    depth = 0
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif (
            depth == 0
            and tok.type == tokenize.OP
            and tok.string in ("--", "-")
            and i + 1 < len(tokens)
            and (tok.string == "--" or tokens[i + 1].string == "-")
        ):
            # "--name" tokenizes as '-' '-' NAME (or '--'? never in Python); take the text up to whitespace.
            start = tok.start[1]
            end = start
            while end < len(line) and not line[end].isspace():
                end += 1
            name = line[start:end].lstrip("-")
            value: str | bool = True
            if name in VALUE_OPTIONS:
                rest = line[end:].lstrip()
                value_end = end + (len(line[end:]) - len(rest))
                stop = value_end
                while stop < len(line) and not line[stop].isspace():
                    stop += 1
                value = line[value_end:stop]
                end = stop
            options[name] = value
            spans.append((start, end))
            while i < len(tokens) and tokens[i].start[1] < end and tokens[i].type != tokenize.NEWLINE:
                i += 1
            continue
        i += 1
    expr = line
    for start, end in reversed(spans):
        expr = expr[:start] + expr[end:]
    return expr.strip(), options


@magics_class
class SynapseMagics(Magics):
    """``%%synapse_plugin`` and ``%synapse``; one :class:`NotebookSession` per IPython shell."""

    debug = Bool(False, help="Show full Python tracebacks for synapse errors instead of one line.").tag(config=True)

    def __init__(self, shell: Any, session: NotebookSession | None = None) -> None:
        super().__init__(shell)
        self.session = session or NotebookSession()
        self.session.manager.progress = self._progress
        self._progress_bar: Any = None

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

    def _json(self, value: Any, what: str) -> Any:
        """``value`` as JSON carries it (tuples become lists); a clear error when it is not JSON at all."""
        import json

        try:
            return json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
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
    @argument("--version", default="0.1.0", help="SemVer version (default 0.1.0)")
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
            problem = handler_problem_in_cell(exc) if isinstance(exc, InvalidError) else None
            if problem is not None and problem.line is not None:
                exc.message += f" (cell line {problem.line + 1})"  # the cell's first line is the magic line
            raise self._fail(exc) from None
        from .widgets import LifecycleWidget

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
        """Run, benchmark, inspect and manage plugins (see the module docstring)."""
        command, _, rest = line.strip().partition(" ")
        try:
            return self._dispatch(command, rest.strip())
        except SynapseError as exc:
            raise self._fail(exc) from None

    def _dispatch(self, command: str, rest: str) -> Any:
        if command == "--debug":
            self.debug = rest.strip().lower() not in ("off", "false", "0")
            print(f"synapse: full tracebacks {'on' if self.debug else 'off'}")
            return None
        handlers = {
            "run": self._run,
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
        }
        handler = handlers.get(command)
        if handler is None:
            known = ", ".join(handlers)
            raise UsageError(f"%synapse: unknown command {command!r}; use one of: {known}, --debug")
        return handler(rest)

    def _name_and_expr(self, rest: str, command: str) -> tuple[str, str, dict[str, str | bool]]:
        name, _, remainder = rest.partition(" ")
        if not name:
            raise UsageError(f"%synapse {command} NAME EXPR: the plugin name is missing")
        expr, options = split_options(remainder)
        unknown = set(options) - VALUE_OPTIONS
        if unknown:
            raise UsageError(f"%synapse {command}: unknown option(s) {', '.join('--' + u for u in sorted(unknown))}")
        return name, expr, options

    def _run(self, rest: str) -> Any:
        from .widgets import IODebugger

        name, expr, _options = self._name_and_expr(rest, "run")
        plugin = self.session.plugin(name)
        payload = self._eval(expr, f"%synapse run {name}")
        debugger = IODebugger(plugin)
        try:
            result = plugin.run(payload)
        finally:
            debugger.refresh()
            display(debugger)
        return result

    def _bench(self, rest: str) -> Any:
        from ..benchmark import run_benchmark
        from .widgets import BenchmarkWidget

        name, expr, options = self._name_and_expr(rest, "bench")
        plugin = self.session.plugin(name)
        payload = self._eval(expr, f"%synapse bench {name}")

        def ints(key: str, default: str) -> list[int]:
            text = str(options.get(key, default))
            try:
                values = [int(v) for v in text.split(",") if v]
            except ValueError:
                raise UsageError(f"--{key}: expected comma-separated integers, got {text!r}") from None
            return values

        frame = run_benchmark(
            plugin,
            payload,
            batch_sizes=ints("batch-sizes", "1,8,64"),
            concurrency=ints("concurrency", "1"),
            repeat=ints("repeat", "20")[0],
            warmup=ints("warmup", "3")[0],
        )
        widget = BenchmarkWidget(frame, title=f"{plugin.name} {plugin.manifest.version} ({plugin.isolation})")
        display(widget)
        return widget.result()  # the same DataFrame, not shown a second time by this cell

    def _folder(self, name: str) -> Path:
        return self.session.plugin(name).source

    def _validate(self, rest: str) -> None:
        from ..anatomy import validate_folder

        folder = validate_folder(self._folder(rest.strip()))
        print(f"ok: {folder.manifest.name} {folder.manifest.version}: handler {folder.handler_class}")

    def _sign(self, rest: str) -> None:
        from ..signing import sign_folder

        result = sign_folder(self._folder(rest.strip()))
        print(f"signed {rest.strip()} by {result.signer_subject}")

    def _verify(self, rest: str) -> None:
        from ..signing import verify_folder

        v = verify_folder(self._folder(rest.strip()))
        print(f"ok: {v.plugin} {v.version} signed by {v.signer_subject} (sha256 {v.signer_fingerprint[:16]})")

    def _inspect(self, rest: str) -> None:
        from .widgets import LifecycleWidget, SchemaWidget

        plugin = self.session.plugin(rest.strip())
        display(LifecycleWidget(self.session.manager, plugin.name))
        display(SchemaWidget.for_plugin(plugin))

    def _logs(self, rest: str) -> None:
        plugin = self.session.plugin(rest.strip())
        worker = plugin.worker
        if worker is None:
            print(f"{plugin.name}: no running worker")
            return
        for label, ring in (("stdout", worker.stdout), ("stderr", worker.stderr), ("sandbox", worker.jail_log)):
            text = ring.text().rstrip()
            print(f"--- {plugin.name} {label} ({ring.total} bytes written) ---")
            if text:
                print(text)
        for event in list(getattr(plugin, "network_events", None) or [])[-10:]:
            print(f"--- network refused: {event.get('host')}:{event.get('port')} ({event.get('reason')})")
        for record in list(plugin.history or [])[-5:]:
            for stream in ("stdout", "stderr"):
                text = getattr(record, stream)
                if text:
                    print(f"--- call at {record.at:.3f}: {stream} ---\n{text.rstrip()}")

    def _test(self, rest: str) -> int:
        import subprocess
        import sys

        folder = self._folder(rest.strip())
        proc = subprocess.run(
            [sys.executable, "-m", "synapse_nb", "plugin", "test", str(folder)], capture_output=True, text=True
        )
        print(proc.stdout + proc.stderr)
        if proc.returncode:
            raise UsageError(f"%synapse test {rest.strip()}: tests failed (exit {proc.returncode})")
        return proc.returncode

    def _teardown(self, rest: str) -> None:
        manager = self.session.manager
        if rest.strip() == "--all":
            manager.teardown_all()
            print("synapse: every plugin torn down, state saved")
            return
        state = manager.teardown(rest.strip())
        print(f"synapse: {rest.strip()} torn down; saved state: {state}")

    def _isolation(self, rest: str) -> None:
        """One visible line: how plugins are isolated here. ``--allow-process`` is the explicit opt-in to the
        rlimits-only level, taken only where nsjail cannot run (Binder and most containers)."""
        from ..sandbox.host import detect_host
        from ..sandbox.isolation import LEVELS, probe

        caps = probe(detect_host(self.session.manager.config.sandbox.nsjail))
        if caps.level != "process":
            print(f"synapse: plugins run under {caps.level} ({LEVELS[caps.level]})")
            return
        print(f"synapse: this host cannot run nsjail ({caps.reason}); isolation here is 'process': {LEVELS['process']}")
        if "--allow-process" in rest.split():
            self.session.manager.allow_process_isolation = True
            print("synapse: OPTED IN to process isolation for this notebook: plugins run without a sandbox")
        else:
            print("synapse: plugins are refused until you opt in: %synapse isolation --allow-process")

    def _load(self, rest: str) -> Any:
        from .widgets import LifecycleWidget

        path = rest.strip().strip("'\"")
        plugin = self.session.manager.load(path)
        if hasattr(plugin, "keep_history"):
            plugin.keep_history(32)
        display(LifecycleWidget(self.session.manager, plugin.name))
        return plugin


def _tidy(frame: Any) -> Any:
    """The DataFrame with rounded, NaN-free reprs (widgets/frames.py; imported on use: it needs pandas)."""
    from .widgets.frames import tidy

    return tidy(frame)


def custom_exception_handler(magics: SynapseMagics) -> Any:
    """For synapse errors raised by API calls in cells (``plugin.run(...)``): one line unless debugging."""

    def handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        if magics.debug or not isinstance(value, SynapseError):
            stb: list[str] = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        else:
            stb = render_error(value)
        shell._showtraceback(etype, value, stb)  # IPython does not show what a custom handler returns
        return stb

    return handler
