"""The service clients' secrets, left in the local state folder under `mmgen up`.

Other services (`mmgen.platform.service_tokens`) and `mmgen admin` (client `admin-cli`) read
their secret there to obtain service tokens from identity. Only in development with a state
folder; the file is written atomically, readable by its owner only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mmgen.identity.adapters.hashing import service_secret
from mmgen.identity.settings import IdentitySettings
from mmgen.platform import Environment
from mmgen.platform.service_tokens import CLIENTS_FILE


def write_client_secrets(settings: IdentitySettings, credentials_key: bytes) -> Path | None:
    """Write `<state>/secrets/<CLIENTS_FILE>` (0600); None when there is nowhere to write."""
    if settings.environment is not Environment.development or settings.state_dir is None:
        return None
    folder = Path(settings.state_dir) / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / CLIENTS_FILE
    content = {
        "identity_url": f"http://{settings.host}:{settings.port}",
        "clients": {
            name: service_secret(credentials_key, name) for name in settings.service_clients
        },
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)
    tmp.replace(path)
    return path
