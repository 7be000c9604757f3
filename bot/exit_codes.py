"""The command line's exit codes (README « Command line »)."""

EXIT_OK = 0
#: Invalid knowledge, or a database problem.
EXIT_INVALID_KNOWLEDGE = 1
#: A usage error (unknown user, missing token…).
EXIT_USAGE = 2
