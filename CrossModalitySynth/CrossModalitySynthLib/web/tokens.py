"""The secret links of a served reader study: one random token per reader and one for the coordinator.

The tokens live in ``STUDY_web_tokens.json`` beside the study folder (like the answer key, never
inside it, so a reader given the folder cannot read them), written once with mode 0600 and read
again on every start, so the links a coordinator sent out keep working after a restart.
Looking a token up compares it in constant time with every token of the study.
"""

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from typing import Dict, Optional

from ..errors import InputError
from ..reader_study.study import Study, write_json_atomic

#: 32 random bytes, URL-safe base64 (43 characters).
TOKEN_BYTES = 32
COORDINATOR = "coordinator"


def tokens_path_for(study_dir: str) -> str:
    """``STUDY_web_tokens.json`` beside the folder ``STUDY``."""
    return os.path.normpath(os.path.abspath(os.fspath(study_dir))) + "_web_tokens.json"


@dataclass
class Tokens:
    """reader id -> token, plus the coordinator's token."""

    readers: Dict[str, str]
    coordinator: str

    def lookup(self, token: str) -> Optional[str]:
        """The reader id (or :data:`COORDINATOR`) whose token is ``token``; None for any other string.

        Every stored token is compared, each with :func:`hmac.compare_digest`, so the time taken
        does not tell how much of a guess was right, nor which reader it was close to."""
        given = token.encode("utf-8", "replace")
        found = None
        for owner, value in [(COORDINATOR, self.coordinator)] + sorted(self.readers.items()):
            if hmac.compare_digest(given, value.encode("ascii")):
                found = owner
        return found


def load_or_create_tokens(study: Study) -> Tokens:
    """The study's tokens, made (and written, mode 0600) the first time."""
    path = tokens_path_for(study.root)
    if os.path.exists(path):
        try:
            with open(path, "r", encoding="utf-8") as f:
                data = json.load(f)
            readers = {str(k): str(v) for k, v in data["readers"].items()}
            coordinator = str(data["coordinator"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"The token file {path} cannot be read ({exc}); move it away to make new links.") from None
        if data.get("study_id") != study.study_id:
            raise InputError(f"The token file {path} belongs to another study; move it away to make new links.")
        missing = [r for r in study.readers if r not in readers]
        if not missing:
            return Tokens(readers, coordinator)
        for reader in missing:  # readers added to the study since: new links for them only
            readers[reader] = secrets.token_urlsafe(TOKEN_BYTES)
    else:
        readers = {r: secrets.token_urlsafe(TOKEN_BYTES) for r in study.readers}
        coordinator = secrets.token_urlsafe(TOKEN_BYTES)
    data = {"study_id": study.study_id, "readers": readers, "coordinator": coordinator}
    write_json_atomic(path, data, overwrite=True)
    os.chmod(path, 0o600)
    return Tokens(readers, coordinator)
