"""Turn one call-list record into an account row, or into the reason it cannot be imported.

Pure functions over plain data (no database), so batches can be parsed in worker processes.
Phone numbers go through ``phonenumbers`` (cached by raw text: lists repeat a number once per
debt) and amounts through :mod:`voiceagent.dialer.amounts`.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import Any, NamedTuple

import phonenumbers
from babel.core import get_global
from babel.numbers import get_territory_currencies, is_currency
from phonenumbers import PhoneNumberType
from phonenumbers.timezone import time_zones_for_geographical_number

from voiceagent.crm.types import minor_exponent, to_minor
from voiceagent.dialer.amounts import AmountError, parse_amount, region_locale
from voiceagent.dialer.readers import FIELDS, REQUIRED, Cell, ListFormatError

CACHE_SIZE = 1 << 16
_LOCALE_BY_REGION = {"BR": "pt-BR", "US": "en-US", "CA": "en-US", "PR": "en-US"}
"""Dialplan locale by country, as in ``dialog/routing.py`` (Spanish otherwise)."""
_PHONE_TYPES = {PhoneNumberType.MOBILE: "mobile", PhoneNumberType.FIXED_LINE: "fixed"}
_GEOGRAPHIC = (
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_JSON = json.JSONEncoder(ensure_ascii=False).encode
"""One encoder for every row (``json.dumps`` with options builds a new one per call)."""
_LIMITS = {"name": 200, "document": 40, "document_type": 20, "external_ref": 100, "email": 254}


def normalize_column(name: str) -> str:
    """Column-name key for matching: trimmed, case-folded."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each field is in a record, and which columns are kept only as extra data."""

    header: tuple[str, ...]
    fields: dict[str, int]
    """Field name -> column index."""
    extras: tuple[tuple[str, int], ...]
    """(column name, index) of columns that feed no field."""
    keys: tuple[str, ...]
    """Key of each column in a row's raw data: its trimmed name, made unique."""


def map_columns(header: Sequence[str], mapping: Mapping[str, str] | None = None) -> Columns:
    """Match the header to fields: default names, or ``mapping`` (column name -> field).

    Raises:
        ListFormatError: An unknown field or column in the mapping, two columns for one field,
            or a required column (name, phone) missing.
    """
    keys = [normalize_column(h) for h in header]
    fields: dict[str, int] = {}
    explicit: dict[int, str] = {}
    for column, target in (mapping or {}).items():
        if target not in FIELDS:
            raise ListFormatError(
                f"unknown field {target!r} in mapping; fields: {', '.join(FIELDS)}"
            )
        key = normalize_column(column)
        if key not in keys:
            raise ListFormatError(
                f"mapped column {column!r} not found; columns found: {_listing(header)}"
            )
        explicit[keys.index(key)] = target
    for index, key in enumerate(keys):
        target = explicit.get(index) or (key if key in FIELDS else "")
        if not target or (index not in explicit and target in explicit.values()):
            continue
        if target in fields:
            first = header[fields[target]]
            raise ListFormatError(f"columns {first!r} and {header[index]!r} both feed {target!r}")
        fields[target] = index
    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        raise ListFormatError(
            f"missing required column {' and '.join(repr(m) for m in missing)}; "
            f"columns found: {_listing(header)} (map others with --map COLUMN=FIELD)"
        )
    used = set(fields.values())
    extras = tuple((h.strip(), i) for i, h in enumerate(header) if i not in used and h.strip())
    raw_keys: list[str] = []
    for index, name in enumerate(header):
        key = name.strip() or f"_column_{index + 1}"
        raw_keys.append(key if key not in raw_keys else f"{key}_{index + 1}")
    return Columns(tuple(header), fields, extras, tuple(raw_keys))


def _listing(header: Sequence[str]) -> str:
    return ", ".join(repr(h) for h in header) or "none"


class AccountValues(NamedTuple):
    """An account's columns as one record gives them (dedup and refresh compare these)."""

    external_ref: str
    debtor_name: str
    document_type: str | None
    document_number: str | None
    amount_owed_minor: int
    """Minor units of ``currency``."""
    currency: str
    days_past_due: int
    timezone: str
    email: str | None
    locale: str
    extra: str
    """JSON object of the columns that feed no field."""


class GoodRow(NamedTuple):
    """A record that becomes (or matches) an account with one phone.

    Tuples, not dataclasses: batches cross process boundaries, and tuples pickle in C.
    """

    line_no: int
    portfolio: str | None
    """Portfolio named in the row; ``None`` means the list's default."""
    e164: str
    phone_type: str
    account: AccountValues
    raw: str
    """JSON object ``{column: value}`` of the whole record."""


class BadRow(NamedTuple):
    """A record that cannot be imported, and why."""

    line_no: int
    reason: str
    values: list[Cell]
    raw: str
    """JSON object ``{column: value}`` of the whole record."""


class RowError(ValueError):
    """One field of a record is invalid (the message is the reason shown to the user)."""


class PhoneInfo(NamedTuple):
    """What the numbering plan says about a valid number."""

    e164: str
    type: str
    """``mobile``, ``fixed`` or ``unknown``."""
    country_code: int
    region: str
    zones: tuple[str, ...]
    """IANA zones the number may be in (empty when unknown)."""


@lru_cache(maxsize=CACHE_SIZE)
def phone_info(text: str, region: str | None) -> PhoneInfo | str:
    """Facts about a number, or the reason it is not valid (cached by raw text)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            if region is None:
                return f"phone {text!r} has no country code (give --region or a country column)"
            return f"phone {text!r} has an invalid country code"
        return f"invalid phone number {text!r}"
    # number_type is UNKNOWN exactly when is_valid_number is false; one call does both.
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        where = f" for {region}" if region and not text.lstrip().startswith("+") else ""
        return f"invalid phone number {text!r}{where}"
    country_code = number.country_code or 0
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) == 1:
        number_region = regions[0]
    else:
        number_region = phonenumbers.region_code_for_number(number) or region or ""
    zones = _territory_zones(number_region)
    if len(zones) != 1 and kind in _GEOGRAPHIC:
        zones = tuple(z for z in time_zones_for_geographical_number(number) if z != "Etc/Unknown")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    kind_name = _PHONE_TYPES.get(kind, "unknown")
    return PhoneInfo(e164, kind_name, country_code, number_region, zones)


@lru_cache(maxsize=512)
def _territory_zones(region: str) -> tuple[str, ...]:
    return tuple(get_global("territory_zones").get(region, ()))


@lru_cache(maxsize=512)
def _region_currency(region: str) -> str | None:
    found = get_territory_currencies(region)
    return found[0] if found else None


@lru_cache(maxsize=512)
def _currency_ok(code: str) -> bool:
    return bool(is_currency(code))


@lru_cache(maxsize=512)
def _exponent(currency: str) -> int:
    return minor_exponent(currency)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _number(value: Cell) -> Decimal | None:
    """A typed number from XLSX (never re-read with a locale)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return None


@dataclass(frozen=True)
class RowParser:
    """Validates records of one file; picklable, so worker processes can run it."""

    columns: Columns
    region: str | None = None
    """Default region (ISO 3166 alpha-2) for numbers written without a country code."""

    def raw(self, values: Sequence[Cell]) -> dict[str, Any]:
        """The record as ``{column: value}`` (surplus values under ``_column_N``)."""
        keys = self.columns.keys
        raw = dict(zip(keys, values, strict=False))
        for index in range(len(keys), len(values)):
            raw[f"_column_{index + 1}"] = values[index]
        return raw

    def parse(self, line_no: int, values: list[Cell]) -> GoodRow | BadRow:
        """Validate one record."""
        raw = _JSON(self.raw(values))
        try:
            return self._good(line_no, values, raw)
        except (RowError, AmountError) as exc:
            return BadRow(line_no, str(exc), values, raw)

    def _fields(self, values: Sequence[Cell]) -> dict[str, str]:
        if len(values) >= len(self.columns.header):
            found = {name: str(values[index]).strip() for name, index in self._field_items}
        else:
            size = len(values)
            found = {
                name: str(values[index]).strip() if index < size else ""
                for name, index in self._field_items
            }
        for name, limit in self._limits:
            if len(found[name]) > limit:
                raise RowError(f"{name} longer than {limit} characters")
        return found

    @cached_property
    def _field_items(self) -> tuple[tuple[str, int], ...]:
        return tuple(self.columns.fields.items())

    @cached_property
    def _limits(self) -> tuple[tuple[str, int], ...]:
        """Length limits of the fields this file has."""
        return tuple((n, limit) for n, limit in _LIMITS.items() if n in self.columns.fields)

    def _good(self, line_no: int, values: list[Cell], raw: str) -> GoodRow:
        width = len(self.columns.header)
        if len(values) > width and any(v != "" for v in values[width:]):
            raise RowError(f"{len(values)} fields but the header has {width} columns")
        get = self._fields(values).get
        name = get("name", "")
        if not name:
            raise RowError("missing name")
        phone_text = get("phone", "")
        if not phone_text:
            raise RowError("missing phone")
        country = get("country", "").upper()
        if country and country not in phonenumbers.SUPPORTED_REGIONS:
            raise RowError(f"unknown country {country!r} (use an ISO 3166 code such as CO)")
        phone = phone_info(phone_text, country or self.region)
        if isinstance(phone, str):
            raise RowError(phone)
        if country and phonenumbers.country_code_for_region(country) != phone.country_code:
            raise RowError(f"phone {phone.e164} is not a number of country {country}")
        region = country or phone.region
        currency = get("currency", "").upper() or _region_currency(region)
        if not currency or not _currency_ok(currency):
            raise RowError(f"unknown currency {currency!r}" if currency else "missing currency")
        zone = get("timezone", "")
        if zone and zone not in _zones():
            raise RowError(f"unknown time zone {zone!r}")
        if not zone and not phone.zones:
            raise RowError(f"time zone of {phone.e164} unknown: add a timezone column")
        email = get("email", "")
        if email and not _EMAIL.fullmatch(email):
            raise RowError(f"invalid e-mail {email!r}")
        document = get("document", "")
        extras = {
            h: values[i] for h, i in self.columns.extras if i < len(values) and values[i] != ""
        }
        account = AccountValues(
            external_ref=get("external_ref", "") or document or phone.e164,
            debtor_name=name,
            document_type=get("document_type", "") or None,
            document_number=document or None,
            amount_owed_minor=self._amount(values, region, currency),
            currency=currency,
            days_past_due=_days(get("days_past_due", "")),
            timezone=zone or phone.zones[0],
            email=email or None,
            locale=_LOCALE_BY_REGION.get(region, "es-419"),
            extra=_JSON(extras),
        )
        portfolio = get("portfolio", "") or None
        return GoodRow(line_no, portfolio, phone.e164, phone.type, account, raw)

    def _amount(self, values: Sequence[Cell], region: str, currency: str) -> int:
        index = self.columns.fields.get("amount_owed")
        cell = values[index] if index is not None and index < len(values) else ""
        amount = _number(cell)
        if amount is None:
            text = str(cell).strip()
            if not text:
                return 0
            amount = parse_amount(text, region_locale(region))
        if amount < 0:
            raise RowError(f"negative amount {cell!r}")
        try:
            if amount == amount.to_integral_value():  # the common case, without Decimal scaling
                return int(amount) * 10 ** _exponent(currency)
            return to_minor(amount, currency)
        except (ValueError, InvalidOperation):
            raise RowError(f"amount {cell!r} has more decimals than {currency} allows") from None


def _days(text: str) -> int:
    if not text:
        return 0
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit() or len(text) > 6:
        raise RowError(f"invalid days_past_due {text!r} (a whole number of days)")
    return int(text)


def parse_batch(parser: RowParser, batch: list[tuple[int, list[Cell]]]) -> list[GoodRow | BadRow]:
    """Validate a batch of records."""
    return [parser.parse(line_no, values) for line_no, values in batch]


Packed = list[tuple[Any, ...]]
"""A parsed batch as plain tuples: what crosses from a worker process to the writer.

Named tuples pickle as a call to their Python ``__new__`` per row; plain tuples load in C
(5x less time for a batch, measured in ``benchmarks/importer.py``'s profile).
"""


def parse_batch_packed(parser: RowParser, batch: list[tuple[int, list[Cell]]]) -> Packed:
    """:func:`parse_batch` for a worker process: its result as plain tuples."""
    return [
        (*row[:4], tuple(row.account), row.raw) if type(row) is GoodRow else tuple(row)
        for row in parse_batch(parser, batch)
    ]


def unpack_batch(packed: Packed) -> list[GoodRow | BadRow]:
    """The rows of a :func:`parse_batch_packed` result (a good row has 6 fields, a bad one 4)."""
    new = tuple.__new__
    return [
        new(GoodRow, (*row[:4], new(AccountValues, row[4]), row[5]))
        if len(row) == 6
        else new(BadRow, row)
        for row in packed
    ]
