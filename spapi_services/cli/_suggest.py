"""Better advice than click's for an option a command does not have.

click suggests the option whose spelling is closest (``--to`` → ``--json``), which is
often the wrong one.  Here an unknown option is first read as a person meant it: a
natural spelling of an option the command has (``--to x.sqlite`` for ``sync --db``,
``--count`` for ``--limit``), or a global option typed after the command
(``jobs list --marketplace ID``, which goes before it).  Only when neither fits is
click's own guess kept.
"""

from __future__ import annotations

import click

__all__ = ["better_suggestion"]

# What people type, by the option they mean.  Read only for options the command has.
_MEANT: dict[str, tuple[str, ...]] = {
    "--db": ("--to", "--out", "--output", "-o", "--file", "--sqlite", "--database", "--into"),
    "--limit": ("--max", "--max-items", "--count", "-n", "--top", "--first", "--head"),
    "--since": ("--from", "--after", "--created-since"),
    "--created-after": ("--from", "--after"),
    "--until": ("--to", "--before"),
    "--status": ("--statuses", "--state"),
    "--store": ("--store-id", "--stores"),
    "--asin": ("--asins", "--product"),
    "--marketplace": ("--marketplace-id", "--marketplaces", "--market"),
    "--technician": ("--tech", "--technician-id", "--resource", "--resource-id"),
    "--reason": ("--reason-code", "--code"),
    "--duration": ("--minutes", "--length"),
    "--start": ("--at", "--time", "--when", "--start-time"),
    "--end": ("--end-time", "--finish"),
    "--json": ("--format", "-j", "--output-json"),
    "--debug": ("--verbose", "-v", "--trace"),
    "--content-type": ("--type", "--mime", "--mime-type"),
    "--port": ("-p",),
}

# How to say what an option takes, where its name alone would not tell.
_TAKES = {
    "--db": "--db PATH (a SQLite file)",
    "--jsonl": "--jsonl PATH (a JSON Lines file)",
}


def _names(command: click.Command) -> set[str]:
    return {name for param in command.params for name in getattr(param, "opts", ())}


def better_suggestion(exc: click.NoSuchOption) -> str | None:
    """A message for ``exc`` that names the option meant, or ``None`` to keep click's."""
    ctx = exc.ctx
    if ctx is None:
        return None
    typed = exc.option_name.split("=", 1)[0]
    has = _names(ctx.command)
    meant = [option for option, spellings in _MEANT.items() if typed in spellings]
    found = [option for option in meant if option in has]
    if "--db" in found and "--jsonl" in has:
        found.insert(found.index("--db") + 1, "--jsonl")
    if found:
        shown = [_TAKES.get(option, option) for option in found]
        choices = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
        return f"No such option: {typed}.  Did you mean {choices}?"
    root = ctx.find_root()
    if root is not ctx and typed in _names(root.command):
        path = " ".join(ctx.command_path.split()[1:])
        return (
            f"No such option: {typed} after `{path}`: it is a global option, given before "
            f"the command: {root.info_name} {typed} ... {path} ..."
        )
    return None
