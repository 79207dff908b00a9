"""Container entrypoint: secrets from files, then the command (exec'd, so it gets the signals).

Orchestrators mount secrets as files (compose `secrets:`, Kubernetes Secret volumes). For every
`<NAME>_FILE=<path>` in the environment this sets `<NAME>` to the file's contents (a trailing
newline removed) and drops `<NAME>_FILE`, so the services' settings, which read
`<PREFIX>_<FIELD>` variables, get the value without it ever being in an image, a compose file
or a manifest. A missing or unreadable file stops the container with the variable's name.
`<NAME>` set directly as well as through a file is refused: two sources of one secret hide
which one is used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

SUFFIX = "_FILE"
#: Like sysexits' EX_CONFIG: the container's configuration is wrong, restarting will not help.
EXIT_CONFIG = 78


class SecretFileError(Exception):
    """A `<NAME>_FILE` variable that cannot be honoured."""


def resolve_secret_files(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment with every `<NAME>_FILE` replaced by `<NAME>` = the file's contents."""
    resolved = dict(environ)
    for variable, path in environ.items():
        if not variable.endswith(SUFFIX) or len(variable) == len(SUFFIX):
            continue
        name = variable[: -len(SUFFIX)]
        if name in environ:
            raise SecretFileError(f"{name} is set both directly and through {variable}")
        try:
            with open(path, encoding="utf-8") as handle:
                value = handle.read()
        except OSError as exc:
            raise SecretFileError(f"{variable}={path}: {exc.strerror or exc}") from exc
        resolved[name] = value.removesuffix("\n").removesuffix("\r")
        del resolved[variable]
    return resolved


def main(argv: list[str], environ: MutableMapping[str, str]) -> int:
    if not argv:
        print("entrypoint: no command given", file=sys.stderr)
        return EXIT_CONFIG
    try:
        env = resolve_secret_files(environ)
    except SecretFileError as exc:
        print(f"entrypoint: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    os.execvpe(argv[0], argv, env)  # noqa: S606 - the container's own command
    return 0  # pragma: no cover - execvpe does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
