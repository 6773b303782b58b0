"""Errors that mean 'the user asked for something we cannot do' (the CLI prints the message and
exits with status 2, no traceback), and an interruption that says what was kept (exit 130)."""


class UserError(ValueError):
    """Bad input from the command line or a config: the message says what was wrong and what is
    accepted."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a long run, re-raised with one line saying what was saved and how to go on
    (the CLI prints it and exits with status 130, no traceback)."""
