"""The `mmgen` command-line tool."""
