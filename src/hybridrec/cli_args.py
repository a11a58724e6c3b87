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


HYDRA_FLAGS = (
    "-h",
    "--help",
    "--hydra-help",
    "-c",
    "--cfg",
    "--info",
    "--resolve",
    "-p",
    "--package",
    "--version",
)


def check_overrides(argv: list[str], config_name: str, config_dir: str) -> None:
    """Compose the entry point's config with the command line's overrides before Hydra runs: a bad
    argument (a setting that does not exist, an unreadable value) is one line on stderr and exit 2,
    where Hydra prints several lines and exits 1. Sweeps (``-m``) and Hydra's own flags are left to it."""
    import sys

    arguments = argv[1:]
    if any(a in ("-m", "--multirun") or a.startswith(HYDRA_FLAGS) for a in arguments):
        return
    from hydra import compose, initialize_config_dir

    overrides = [a for a in arguments if not a.startswith("hydra.") and not a.startswith("hydra/")]
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            base = compose(config_name)
            composed = compose(config_name, overrides=overrides)
    except Exception as err:  # Hydra's parse and composition errors: their first line says it
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if first.startswith("Could not override '"):
            first = _not_a_setting(first.split("'")[1], base)
        print(f"error: {first}", file=sys.stderr)
        sys.exit(2)
    known = set(base)  # (``in`` says False of a mandatory value not given yet; iterating does not)
    added = [key for key in composed if key not in known]
    if added:
        print(f"error: {_not_a_setting(added[0], base)}", file=sys.stderr)
        sys.exit(2)


def _not_a_setting(name: str, config) -> str:
    return f"{name} is not a setting; the settings: {', '.join(k for k in config if k != 'hydra')}"
