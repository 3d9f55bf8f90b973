"""rnn-toy: sums three numbers (a minimal app that exercises the shared CLI, training, export).

predict takes numbers on the command line, three per example.
"""

from apps.core import cli
from toy_app.app import APP


def main(argv: list[str] | None = None) -> int:
    return cli.main(APP, argv)
