"""``--config FILE.toml``: a command's options kept in a file (a sweep's shared settings, a batch
script's named configuration under version control).

Keys are the options' names as typed on the command line without the leading dashes
(``env-steps = 5000``; ``env_steps`` works too); options typed on the command line override the
file. The file's values reach the command through click's ``default_map``, so they are converted
and checked exactly like typed options, and an option that does not apply to the chosen mode is
refused as if it were typed. An unknown key is refused in one line (exit 2).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from awmctl.cli.common import print_error


def _refuse(message: str) -> None:
    """Exit 2 with one line (a parameter callback runs before the command's error mapper)."""
    print_error(message)
    raise typer.Exit(2)


def load_config(ctx: Any, param: Any, value: Path | None) -> Path | None:
    """The eager ``--config`` callback: the file's keys become the command's defaults."""
    if value is None or ctx.resilient_parsing:
        return value
    try:
        table = tomllib.loads(Path(value).read_text(encoding="utf-8"))
    except OSError as err:
        _refuse(f"--config {value}: cannot read it ({err.strerror or err})")
    except UnicodeDecodeError as err:
        _refuse(f"--config {value} is not UTF-8 text (byte {err.start}); TOML files are UTF-8")
    except tomllib.TOMLDecodeError as err:
        _refuse(f"--config {value} is not valid TOML ({err})")
    names, params = {}, {}
    for p in ctx.command.params:
        if p.name == "config_file" or not getattr(p, "opts", None):
            continue
        for opt in p.opts:
            names[opt.lstrip("-")] = p.name
            names[opt.lstrip("-").replace("-", "_")] = p.name
        names[p.name] = p.name
        params[p.name] = p
    defaults: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, setting in table.items():
        if key not in names:
            known = ", ".join(
                sorted(
                    o.lstrip("-")
                    for p in ctx.command.params
                    for o in getattr(p, "opts", ())
                    if o.startswith("--") and p.name != "config_file"
                )
            )
            _refuse(
                f"--config {value}: unknown key {key!r} for `awmctl {ctx.info_name}` (its options: "
                f"{known})"
            )
        if isinstance(setting, dict):
            _refuse(f"--config {value}: {key} is a table; give each option as a plain key = value")
        name = names[key]
        if name in given_as:
            _refuse(
                f"--config {value} gives one option twice, as {given_as[name]!r} and {key!r}; "
                "keep one"
            )
        given_as[name] = key
        takes_bool = getattr(params[name], "is_flag", False) or getattr(
            params[name], "is_bool_flag", False
        )
        if isinstance(setting, bool) and not takes_bool:
            _refuse(
                f"--config {value}: {key} = {str(setting).lower()} is a true/false value, but "
                f"--{key.replace('_', '-')} is not a flag: give it a value of its own kind"
            )
        defaults[name] = setting
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        callback=load_config,
        is_eager=True,
        show_default=False,
        help="A TOML file of this command's options (names without the dashes: env-steps = 5000); "
        "options on the command line override it.",
    ),
]


def as_toml(options: dict[str, Any], flags: dict[str, str], defaults: dict[str, Any]) -> str:
    """``options`` (as ``meta.json`` records them) as a ``--config`` file, keys as typed flags.
    Options at the command's own ``defaults`` (and None) are left out: the file says what was
    chosen, and an option of another mode at its default must not read as given."""
    lines = []
    for name, value in options.items():
        if value is None or value == defaults.get(name, object()):
            continue
        key = flags.get(name, "--" + name.replace("_", "-")).lstrip("-")
        lines.append(
            f"{key} = {json.dumps(value)}"
        )  # JSON's strings, numbers, booleans and lists are TOML's
    return "\n".join(lines) + "\n"


__all__ = ["ConfigOpt", "as_toml", "load_config"]
