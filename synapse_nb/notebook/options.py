"""Parsing ``%synapse`` lines: the sub-commands, their options, and ``EXPR`` (a Python expression, not shell-split).

``%synapse bench NAME {"text": "x"} --batch-sizes 1,8`` and ``%synapse bench NAME --batch-sizes 1,8 {"text": "x"}``
are the same: options may come before or after the expression, and brackets, quotes and spaces inside the
expression are kept as written.
"""

from __future__ import annotations

import io
import tokenize

from ..errors import UsageError

__all__ = ["COMMANDS", "USAGE", "VALUE_OPTIONS", "ints", "name_and_expr", "split_options"]

# %synapse subcommand options that take a value; the rest of the line is the EXPR.
VALUE_OPTIONS = {"batch-sizes", "concurrency", "repeat", "warmup", "timeout", "category", "registry"}

# sub-command -> one line of usage (the order is the help's order)
COMMANDS: dict[str, str] = {
    "run": "run NAME EXPR                 run one input; returns the result and shows the I/O debugger",
    "bench": "bench NAME EXPR [--batch-sizes 1,8,64] [--concurrency 1] [--repeat N] [--warmup N]   a DataFrame",
    "status": "status                        every plugin of this notebook: stage, version, calls, errors, p50",
    "validate": "validate NAME                 static checks of the folder (nothing is run)",
    "sign": "sign NAME                     sign with your developer key",
    "verify": "verify NAME                   check the signature; names the secrets the plugin asks for",
    "inspect": "inspect NAME                  the lifecycle widget and the schemas",
    "logs": "logs NAME                     the worker's raw stdout/stderr, sandbox log, refused network calls",
    "test": "test NAME [-k KEYWORD]        the plugin's tests/, run by pytest inside its jail",
    "teardown": "teardown NAME|--all           run teardown() and save the state",
    "load": "load PATH [--debug]           activate a plugin folder (--debug: in this kernel, unsandboxed)",
    "isolation": "isolation [--allow-process]   how plugins are isolated here (opt in to the process level)",
    "search": "search [QUERY] [--category C] [--registry R]   plugins in the configured registries (a DataFrame)",
    "install": "install NAME[@RANGE] [--registry R]   install from a registry, verified, into $SYNAPSE_HOME",
    "publish": "publish NAME --registry R     pack the plugin and upload it to a registry",
    "installed": "installed                     the plugins installed from registries",
    "serve": "serve NAME... [--grpc :0] [--http :0] [--token-file F] | serve --stop   serve in this kernel",
    "help": "help                          this text",
}

USAGE = (
    "%synapse COMMAND ...  (EXPR is a Python expression in the notebook's namespace; options may come before or "
    "after it)\n" + "\n".join(f"  %synapse {line}" for line in COMMANDS.values()) + "\n  %synapse --debug [on|off]"
    "         full tracebacks instead of one-line errors"
)


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
            # "--name" tokenizes as '-' '-' NAME; take the text up to whitespace.
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


def name_and_expr(rest: str, command: str, allowed: set[str] | None = None) -> tuple[str, str, dict[str, str | bool]]:
    """``NAME EXPR [--options]`` of a sub-command; UsageError naming what is missing or unknown."""
    name, _, remainder = rest.strip().partition(" ")
    if not name:
        raise UsageError(f"%synapse {command}: the plugin name is missing; usage: %synapse {COMMANDS[command]}")
    expr, options = split_options(remainder)
    unknown = set(options) - (VALUE_OPTIONS if allowed is None else allowed)
    if unknown:
        listed = ", ".join("--" + u for u in sorted(unknown))
        raise UsageError(f"%synapse {command}: unknown option(s) {listed}; usage: %synapse {COMMANDS[command]}")
    return name, expr, options


def ints(options: dict[str, str | bool], key: str, default: str) -> list[int]:
    """``--key 1,8,64`` as integers; UsageError naming the option when it is not."""
    text = str(options.get(key, default))
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise UsageError(f"--{key}: expected comma-separated integers, got {text!r}") from None
