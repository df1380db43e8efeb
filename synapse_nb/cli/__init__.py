"""``synapse-cli``: the command line. Exit codes are those of :mod:`synapse_nb.errors` (see ARCHITECTURE.md).

Each command lives in its own module under ``synapse_nb/cli/`` and registers itself on a command group
(``plugin``, ``keys``, ...) through :data:`COMMANDS`; this module only assembles the parser and turns errors
into one ``error:`` line and an exit code.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any, ClassVar, NoReturn

from ..errors import SynapseError, UsageError
from .output import Output

__all__ = ["main"]

# group -> help, and the modules that add commands to it (each defines ``register(subparsers)``).
GROUPS: dict[str, str] = {
    "plugin": "create, check and run plugins",
    "keys": "developer signing key and trust store",
    "env": "built dependency environments: list, garbage-collect",
    "kernel": "Jupyter kernels with synapse_nb preloaded",
    "registry": "plugin registries: serve one, list, add, log in",
}
COMMANDS: list[str] = [
    "plugin_init",
    "plugin_validate",
    "plugin_run",
    "plugin_test",
    "plugin_bench",
    "plugin_sandbox_config",
    "plugin_sign",
    "plugin_verify",
    "keys",
    "plugin_env",
    "env",
    "doctor",  # top level: registers on the command parser itself
    "kernel",
    "plugin_pack",
    "plugin_search",
    "plugin_publish",
    "plugin_install",
    "registry",
    "serve",  # top level: registers on the command parser itself
]


_GLOBAL_OPTIONS = frozenset({"--debug", "--version", "-h", "--help"})
_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting, naming what was typed and the
    closest valid choice (``plugn`` -> ``plugin``, ``--nme`` -> ``--name``)."""

    argv: Sequence[str] = ()
    every: ClassVar[list[_Parser]] = []  # every (sub)parser built: suggestions come from all their options

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _Parser.every.append(self)

    def error(self, message: str) -> NoReturn:
        typo = self._unknown_option() if ("required" in message or "unrecognized" in message) else None
        if typo is not None:
            message = typo
        else:
            match = _INVALID_CHOICE.search(message)
            if match is not None:
                typed, choices = match.group(1), re.findall(r"'([^']*)'", match.group(2))
                close = difflib.get_close_matches(typed, choices, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; choose from {', '.join(choices)}"
                message = f"unknown command {typed!r}{hint}"
        raise UsageError(f"{self.prog}: {message} (see --help)")

    def _unknown_option(self) -> str | None:
        """An option typed on the command line that this (sub)command does not know, with the closest one."""
        known = list(self._option_string_actions)
        everywhere = sorted({o for p in _Parser.every for o in p._option_string_actions if o.startswith("--")})
        for arg in _Parser.argv:
            if arg in _GLOBAL_OPTIONS:
                continue
            if not arg.startswith("-") or arg == "-" or arg == "--":
                continue
            name = arg.split("=", 1)[0]
            if name in known or any(k.startswith(name) for k in known if name.startswith("--")):
                continue
            close = difflib.get_close_matches(name, known, n=1) or difflib.get_close_matches(name, everywhere, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"unknown option {name!r}{hint}"
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="synapse-cli",
        description="Define, validate, sign and run sandboxed synapse plugins.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=_version())
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=_Parser)
    subparsers = {}
    for name, help_text in GROUPS.items():
        group = groups.add_parser(name, help=help_text, description=help_text)
        subparsers[name] = group.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    for module_name in COMMANDS:
        module = importlib.import_module(f".{module_name}", __name__)
        module.register(subparsers, groups)
    return parser


def _version() -> str:
    from .. import __version__

    return f"synapse-cli {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``synapse-cli`` with ``argv``; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    out = Output(json_mode="--json" in args_list, debug=debug)
    try:
        _Parser.every = []
        parser = build_parser()
        _Parser.argv = args_list
        args = parser.parse_args(args_list)
        handler = getattr(args, "func", None)
        if handler is None:
            target = parser
            if args.group:
                target = next(
                    a.choices[args.group] for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                )
            target.print_help(sys.stderr)
            return UsageError.exit_code
        out.json_mode = bool(getattr(args, "json", False))
        code: int = handler(args, out)
        return code
    except SynapseError as exc:
        return out.fail(exc)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return out.internal(exc)
