"""``[plugins.auth]``: where authorization decisions are made.

The embedded evaluator is the default; naming an OPA server with ``opa_url`` is all it takes to move
decisions there (``ANNOTA_AUTH_OPA_URL=http://opa:8181``).
"""

from __future__ import annotations

import msgspec


class AuthConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: an OPA server's base URL (``http://opa:8181``); empty: evaluate the policies in-process
    opa_url: str = ""
    #: seconds to wait for one decision from the OPA server
    opa_timeout: float = 2.0
    #: an ``Authorization: Bearer`` token for the OPA server, if it requires one
    opa_token: str = ""
