"""Errors that mean 'the user asked for something we cannot do': the CLI prints the message and
exits with status 2, no traceback."""


class UserError(ValueError):
    """Bad input from the command line or a config: the message says what was wrong and what is
    accepted."""
