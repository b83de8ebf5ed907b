"""What an API answer shows of personal data, by role.

Topics and the database keep full data (the court's record); an HTTP answer
to a principal without CASE_READ_PERSONAL has resident ID numbers and mobile
numbers masked (shared.masking decides what a valid ID or mobile number is).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.masking import mask_value
from shared.security.principal import Principal, can_see_personal_data


def present(principal: Principal, payload: Any) -> Any:
    """The payload as this principal may see it: unchanged, or with ID/phone numbers masked.

    Pydantic models are dumped to JSON-ready dicts first, so the answer can be
    returned directly from a route.
    """
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    if can_see_personal_data(principal):
        return payload
    return mask_value(payload)
