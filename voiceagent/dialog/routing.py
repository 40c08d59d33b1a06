"""Pick the dialplan and offers for an account: portfolio, days-past-due bucket and locale."""

from __future__ import annotations

from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from voiceagent.dialog.account import Account
from voiceagent.dialog.loader import Problem, _field, _plain, line_of, parse_yaml
from voiceagent.dialog.model import Dialplan, Offers

_LOCALE_BY_REGION = {"BR": "pt-BR", "US": "en-US", "CA": "en-US", "PR": "en-US"}


class RoutingError(ValueError):
    """The routing file is invalid, or no route matches an account."""


def locale_of(account: Account) -> str:
    """The account's locale: an explicit ``locale`` key, else from the phone's country."""
    explicit = account.extra_fields().get("locale")
    if explicit:
        return str(explicit)
    region = phonenumbers.region_code_for_number(phonenumbers.parse(account.phone, None))
    return _LOCALE_BY_REGION.get(region or "", "es-419")


class Route(BaseModel):
    """One routing rule; the first that matches an account wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    locale: str
    portfolios: list[str] = ["*"]
    """Shell-style patterns ("cards-*")."""
    days_past_due: tuple[int, int] = (0, 100_000)
    """Inclusive bucket."""
    dialplan: str
    """Path relative to the dialplans directory."""
    offers: Offers | None = None
    """Replaces the dialplan's own offers for this bucket."""

    @model_validator(mode="after")
    def _bucket(self) -> Route:
        low, high = self.days_past_due
        if low > high:
            raise ValueError("days_past_due must be [low, high] with low <= high")
        return self

    def matches(self, account: Account, locale: str) -> bool:
        """Whether this route applies to the account."""
        low, high = self.days_past_due
        return (
            self.locale == locale
            and low <= account.days_past_due <= high
            and any(fnmatch(account.portfolio, p) for p in self.portfolios)
        )

    def apply(self, plan: Dialplan) -> Dialplan:
        """The plan with this route's offers, if it has its own."""
        return plan if self.offers is None else plan.model_copy(update={"offers": self.offers})


class Routing(BaseModel):
    """The whole ``routing.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: list[Route] = Field(min_length=1)

    def select(self, account: Account) -> Route:
        """The first route that matches the account."""
        locale = locale_of(account)
        for route in self.routes:
            if route.matches(account, locale):
                return route
        raise RoutingError(
            f"no route for portfolio {account.portfolio!r}, {account.days_past_due} days past due, "
            f"locale {locale}"
        )


@lru_cache(maxsize=4)
def load_routing(path: Path) -> Routing:
    """Load and validate the routing file (errors name the line)."""
    text = path.read_text(encoding="utf-8")
    tree = parse_yaml(text, str(path))
    try:
        routing = Routing.model_validate(_plain(tree))
    except ValidationError as exc:
        problems = [
            Problem(str(path), line_of(tree, e["loc"]), _field(e["loc"]), e["msg"])
            for e in exc.errors()
        ]
        raise RoutingError("\n".join(map(str, problems))) from None
    for i, route in enumerate(routing.routes):
        if not (path.parent / route.dialplan).is_file():
            line = line_of(tree, ("routes", i, "dialplan"))
            raise RoutingError(
                f"{path}:{line}: routes.{i}.dialplan: no such file {route.dialplan!r}"
            )
    return routing
