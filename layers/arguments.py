"""Argument checks the layers share; each error names the argument and the value received."""


def check_positive_integers(**arguments) -> None:
    """Raises a ValueError naming the first of `arguments` that is not a positive integer."""
    for name, value in arguments.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def check_window_fits(window: int, input_shape) -> None:
    """Raises a ValueError when a `(batch, time, ...)` input is shorter than `window` steps."""
    if input_shape[1] is not None and input_shape[1] < window:
        raise ValueError(f"`window` ({window}) is longer than the input's {input_shape[1]} steps.")
