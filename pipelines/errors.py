"""The exception that pipelines raise for bad data; the CLI prints it as one line."""


class DataError(ValueError):
    """Bad or missing data; the message names the input (file, row, column, value)."""
