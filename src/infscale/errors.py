"""The one exception type that means "the user gave bad input"."""


class InputError(ValueError):
    """Bad argument, file or config value; the CLI prints it on one line and exits 2."""
