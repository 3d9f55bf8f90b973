"""The one exception type that the CLI reports as a single line instead of a traceback."""


class UserError(ValueError):
    """Bad input from the user: a missing file, an unknown key, a malformed row.

    The CLI prints `error: <message>` and exits with status 2; library callers can catch it
    as a `ValueError`.
    """
