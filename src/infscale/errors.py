"""The one exception type that means "the user gave bad input"."""


class InputError(ValueError):
    """Bad argument, file or config value; the CLI prints it on one line and exits 2."""


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line, as the command line and the scripts print it."""
    return " ".join(str(error).split())
