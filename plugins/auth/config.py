"""``[plugins.auth]``: where authorization decisions are made, and how failed logins are throttled.

The embedded evaluator is the default; naming an OPA server with ``opa_url`` is all it takes to move
decisions there (``ANNOTA_AUTH_OPA_URL=http://opa:8181``). The ``failed_logins_*`` keys are
explained in ``annota.plugins.auth.throttle`` (``ANNOTA_AUTH_FAILED_LOGINS_PER_ACCOUNT=5``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec


class AuthConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: an OPA server's base URL (``http://opa:8181``); empty: evaluate the policies in-process
    opa_url: str = ""
    #: seconds to wait for one decision from the OPA server
    opa_timeout: float = 2.0
    #: an ``Authorization: Bearer`` token for the OPA server, if it requires one
    opa_token: str = ""
    #: throttle failed password logins (login, HTTP Basic) per client address and per account
    throttle_logins: bool = True
    #: failed logins one client address may make at once, whatever the accounts...
    failed_logins_per_address: Annotated[int, msgspec.Meta(ge=1)] = 30
    #: ...and the seconds after which one of them is forgiven
    address_forgiveness_seconds: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    #: failed logins one account may receive at once, from anywhere...
    failed_logins_per_account: Annotated[int, msgspec.Meta(ge=1)] = 10
    #: ...and the seconds after which one of them is forgiven
    account_forgiveness_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    #: while an account is over its limit, each client address may still try it once this often
    #: (in seconds): its owner is delayed, never locked out
    throttled_account_retry_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    #: seconds a verified token, session or password is remembered (0: never): this process
    #: forgets at once whatever a logout, revocation or user change voids; other processes'
    #: changes are seen after at most this long
    identity_cache_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
