"""The operators' command line: the `booking` command and the functions behind it."""
