"""Errors that mean 'the user asked for something we cannot do' (the CLI prints the message and
exits with status 2, no traceback), an interruption that says what was kept (exit 130), and the
one-line text of an error that a results row or a log keeps."""


class UserError(ValueError):
    """Bad input from the command line or a config: the message says what was wrong and what is
    accepted."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a long run, re-raised with one line saying what was saved and how to go on
    (the CLI prints it and exits with status 130, no traceback)."""


def error_text(err: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, cut to ``limit`` characters (a CSV cell, a log line)."""
    text = f"{type(err).__name__}: {err}".strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
