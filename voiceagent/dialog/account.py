"""The debtor account a conversation is about (what ``ACCOUNT.json`` holds)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Account(BaseModel):
    """A debtor account; unknown keys are kept and usable in prompt templates."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    document_last4: str = Field(pattern=r"^\d{4}$")
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    """Needed only by dialplans that verify with it (checked before the call)."""
    amount_owed: Decimal = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    days_past_due: int = Field(ge=0)
    creditor: str = Field(min_length=1)
    portfolio: str = Field(min_length=1)
    phone: str = Field(pattern=r"^\+[1-9]\d{6,14}$")
    """E.164."""
    due_date: date | None = None
    email: str | None = None

    @field_validator("document_last4", mode="before")
    @classmethod
    def _digits_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @property
    def first_name(self) -> str:
        """The first word of the name ("María Fernanda López" -> "María")."""
        return self.name.split()[0]

    def extra_fields(self) -> dict[str, Any]:
        """The keys beyond the standard ones (usable as ``{key}`` in prompts)."""
        return dict(self.model_extra or {})
