"""The registration form's agreements: listing them, and checking a registration accepted the
required ones (CVAT's ``confirmations``)."""

from __future__ import annotations

from collections.abc import Sequence

from annota.core.errors import ValidationError
from annota.core.schemas.user_agreements import Confirmation, UserAgreement, UserAgreementRead


def read(agreements: Sequence[UserAgreement]) -> list[UserAgreementRead]:
    return [
        UserAgreementRead(
            name=item.name, required=item.required, textPrefix=item.text_prefix, url=item.url,
            urlDisplayText=item.display_text,
        )
        for item in agreements
    ]  # fmt: skip


def check(agreements: Sequence[UserAgreement], confirmations: Sequence[Confirmation]) -> None:
    """Refuse confirmations of unknown agreements and registrations missing a required one."""
    known = {item.name for item in agreements}
    unknown = sorted({answer.name for answer in confirmations} - known)
    if unknown:
        raise ValidationError.for_field("confirmations", f"Unknown agreement(s): {', '.join(unknown)}.")
    accepted = {answer.name for answer in confirmations if answer.value}
    missing = [item.name for item in agreements if item.required and item.name not in accepted]
    if missing:
        raise ValidationError.for_field(
            "confirmations", f"These agreements must be accepted to register: {', '.join(missing)}."
        )


__all__ = ["check", "read"]
