"""Command lines for the apps' CLIs in tests, short enough to read on one line."""

from __future__ import annotations


def command_line(words: str, *settings: str, **options: object) -> list[str]:
    """`words` split on spaces, then `--name value` per option, then `--set` per setting.

    Option names take dashes for underscores (`max_trials` -> `--max-trials`); their values,
    paths included, stay one argument each.
    """
    arguments = words.split()
    for name, value in options.items():
        arguments += [f"--{name.replace('_', '-')}", str(value)]
    for setting in settings:
        arguments += ["--set", setting]
    return arguments
