"""Agreements a person accepts when registering (terms of use, a privacy policy...)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class UserAgreement(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One agreement as the ``user_agreements`` setting declares it."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    #: the link's text on the registration form
    display_text: str
    url: str
    #: registration is refused unless it is accepted
    required: bool = False
    #: text before the link (``I accept the``)
    text_prefix: str = ""


class UserAgreementRead(msgspec.Struct, kw_only=True):
    """What the registration form of CVAT's web UI reads (its wire names)."""

    name: str
    required: bool
    textPrefix: str
    url: str
    urlDisplayText: str
    value: bool = False


class Confirmation(msgspec.Struct, kw_only=True):
    """An answer to an agreement, sent with the registration."""

    name: str
    value: bool


__all__ = ["Confirmation", "UserAgreement", "UserAgreementRead"]
