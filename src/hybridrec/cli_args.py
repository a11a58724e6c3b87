"""Command-line helpers that must run before Hydra parses the arguments (kept import-light)."""

from __future__ import annotations


def quote_free_text(argv: list[str], keys: tuple[str, ...]) -> list[str]:
    """Quote ``key=<free text>`` arguments so Hydra reads the text as one string.

    Hydra's override grammar gives commas, brackets, quotes and ``${`` meaning; a description such as
    ``user_text=Age: 33, gender: M. Loves sci-fi`` would otherwise be parsed as a sweep, and
    ``genres=Sci-Fi,Action`` or ``genres=Children's`` fail to parse. A list in brackets is left as it is.
    """
    quoted = []
    for arg in argv:
        name, sep, value = arg.partition("=")
        if sep and name.lstrip("+~") in keys and not _already_quoted(value) and not value.startswith("["):
            value = value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
            arg = f"{name}='{value}'"
        quoted.append(arg)
    return quoted


def _already_quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
