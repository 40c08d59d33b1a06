"""Every shipped pack at its window edges, holidays, caps, DST and zone intersections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from voiceagent.dialer.ledger import phone_zones
from voiceagent.dialer.packs import get_pack
from voiceagent.dialer.rules import (
    Contact,
    Decision,
    Flags,
    Ledger,
    Pack,
    StatedWindow,
    check,
)

BOG, NY, LIMA, MEX = "America/Bogota", "America/New_York", "America/Lima", "America/Mexico_City"
SAO, SCL, BUE = "America/Sao_Paulo", "America/Santiago", "America/Argentina/Buenos_Aires"
VOICE = Flags(authorized_channels=frozenset({"voice"}))


def at(zone: str, *parts: int) -> datetime:
    """A local wall time in ``zone`` as an aware UTC datetime."""
    return datetime(*parts, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def run(
    jurisdiction: str,
    zone: str | list[str],
    when: datetime,
    *,
    sub: str | None = None,
    ledger: Ledger | None = None,
    flags: Flags = VOICE,
    person: Ledger | None = None,
) -> Decision:
    zones = [zone] if isinstance(zone, str) else zone
    return check(
        get_pack(jurisdiction), when, zones, sub, ledger or Ledger(), flags, person_ledger=person
    )


def attempts(*moments: datetime, channel: str = "voice") -> tuple[Contact, ...]:
    return tuple(Contact(m, channel) for m in sorted(moments))


# (pack, zone, subdivision, a day the window is open, open "HH:MM", close "HH:MM")
EDGES = [
    ("US", NY, None, (2026, 6, 10), (8, 0), (21, 0)),  # Wednesday
    ("US", NY, None, (2026, 6, 14), (8, 0), (21, 0)),  # Sunday: Reg F has no weekday limit
    ("CO", BOG, None, (2026, 6, 10), (7, 0), (19, 0)),
    ("CO", BOG, None, (2026, 6, 13), (8, 0), (15, 0)),  # Saturday
    ("PE", LIMA, None, (2026, 6, 10), (7, 0), (20, 0)),
    ("MX", MEX, None, (2026, 6, 10), (7, 0), (22, 0)),
    ("MX", MEX, None, (2026, 6, 14), (7, 0), (22, 0)),  # Sunday
    ("BR", SAO, None, (2026, 6, 10), (9, 0), (19, 0)),  # strictest table (RJ)
    ("BR", SAO, "SP", (2026, 6, 10), (8, 0), (20, 0)),
    ("BR", SAO, "SP", (2026, 6, 13), (8, 0), (14, 0)),  # Saturday in SP
    ("CL", SCL, None, (2026, 6, 10), (8, 0), (20, 0)),
    ("CL", SCL, None, (2026, 6, 13), (8, 0), (20, 0)),  # Saturday
    ("AR", BUE, None, (2026, 6, 10), (9, 0), (20, 0)),
]


@pytest.mark.parametrize(("pack", "zone", "sub", "day", "open_", "close"), EDGES)
def test_window_edges_one_minute_either_side(
    pack: str,
    zone: str,
    sub: str | None,
    day: tuple[int, int, int],
    open_: tuple[int, int],
    close: tuple[int, int],
) -> None:
    opening = at(zone, *day, *open_)
    closing = at(zone, *day, *close)
    before = run(pack, zone, opening - timedelta(minutes=1), sub=sub)
    assert not before.allowed
    assert before.rule_id == f"{pack.lower()}.hours"
    assert before.next_allowed_at == opening
    assert run(pack, zone, opening, sub=sub).allowed
    assert run(pack, zone, opening + timedelta(minutes=1), sub=sub).allowed
    assert run(pack, zone, closing - timedelta(minutes=1), sub=sub).allowed
    after = run(pack, zone, closing + timedelta(minutes=1), sub=sub)
    assert not after.allowed and after.rule_id == f"{pack.lower()}.hours"
    assert after.next_allowed_at is not None and after.next_allowed_at > closing
    assert not run(pack, zone, closing, sub=sub).allowed  # the window is half-open


def test_allowed_decision_names_no_rule_and_now() -> None:
    when = at(BOG, 2026, 6, 10, 10, 0)
    assert run("CO", BOG, when) == Decision(True, None, when)


def test_reserved_before_close_aborted_at_connect_in_bogota() -> None:
    pack = get_pack("CO")
    reserve, connect = at(BOG, 2026, 6, 10, 18, 59, 58), at(BOG, 2026, 6, 10, 19, 0, 3)
    assert check(pack, reserve, [BOG], None, Ledger(), VOICE).allowed
    again = check(pack, connect, [BOG], None, Ledger(), VOICE)
    assert not again.allowed and again.rule_id == "co.hours"
    assert again.next_allowed_at == at(BOG, 2026, 6, 11, 7, 0)


@pytest.mark.parametrize(
    ("pack", "zone", "sunday", "monday_open"),
    [
        ("CO", BOG, (2026, 6, 21), (2026, 6, 22, 7, 0)),
        ("PE", LIMA, (2026, 6, 21), (2026, 6, 22, 7, 0)),
        ("CL", SCL, (2026, 6, 14), (2026, 6, 15, 8, 0)),
        ("BR", SAO, (2026, 6, 14), (2026, 6, 15, 9, 0)),
        ("AR", BUE, (2026, 6, 21), (2026, 6, 22, 9, 0)),
    ],
)
def test_never_on_sunday(
    pack: str, zone: str, sunday: tuple[int, int, int], monday_open: tuple[int, ...]
) -> None:
    d = run(pack, zone, at(zone, *sunday, 11, 0))
    assert not d.allowed and d.rule_id == f"{pack.lower()}.hours"
    assert d.next_allowed_at == at(zone, *monday_open)


def test_saturday_refused_in_peru_until_monday() -> None:
    d = run("PE", LIMA, at(LIMA, 2026, 6, 13, 10, 0))
    assert not d.allowed and d.next_allowed_at == at(LIMA, 2026, 6, 15, 7, 0)


@pytest.mark.parametrize(
    ("pack", "zone", "sub", "holiday", "next_open"),
    [
        # Inmaculada Concepción (Tuesday)
        ("CO", BOG, None, (2026, 12, 8), (2026, 12, 9, 7, 0)),
        # Independence days 28 and 29 July: the run of holidays is skipped at once
        ("PE", LIMA, None, (2026, 7, 28), (2026, 7, 30, 7, 0)),
        # Fiestas Patrias Fri 18 and Sat 19 September, then Sunday
        ("CL", SCL, None, (2026, 9, 18), (2026, 9, 21, 8, 0)),
        # Emancipação de Alagoas: a state holiday, only with the subdivision
        ("BR", SAO, "AL", (2026, 9, 16), (2026, 9, 17, 8, 0)),
        # Independence Day Thu 9 July, bridge holiday Fri 10 July, then the weekend
        ("AR", BUE, None, (2026, 7, 9), (2026, 7, 13, 9, 0)),
    ],
)
def test_holidays_refused_until_the_next_business_morning(
    pack: str, zone: str, sub: str | None, holiday: tuple[int, int, int], next_open: tuple[int, ...]
) -> None:
    d = run(pack, zone, at(zone, *holiday, 10, 0), sub=sub)
    assert not d.allowed and d.rule_id == f"{pack.lower()}.holidays"
    assert d.next_allowed_at == at(zone, *next_open)
    assert d.reason is not None and str(holiday[0]) in d.reason


def test_state_holiday_does_not_apply_in_another_state() -> None:
    assert run("BR", SAO, at(SAO, 2026, 9, 16, 10, 0), sub="SP").allowed


def test_us_has_no_holiday_rule() -> None:
    assert run("US", NY, at(NY, 2026, 7, 3, 10, 0)).allowed  # Independence Day (observed)


def test_brazil_defaults_to_the_strictest_state_table() -> None:
    saturday = at(SAO, 2026, 6, 13, 10, 0)
    assert run("BR", SAO, saturday, sub="SP").allowed
    assert run("BR", SAO, saturday, sub="AL").allowed
    for sub in (None, "RJ", "MG"):  # unknown, its own table without Saturday, no table at all
        d = run("BR", SAO, saturday, sub=sub)
        assert not d.allowed and d.rule_id == "br.hours"
        assert d.next_allowed_at == at(SAO, 2026, 6, 15, 9, 0)
    early = at(SAO, 2026, 6, 10, 8, 30)
    assert run("BR", SAO, early, sub="ES").allowed
    assert not run("BR", SAO, early).allowed


def test_brazil_no_calls_at_work_when_told() -> None:
    when = at(SAO, 2026, 6, 10, 10, 0)
    assert run("BR", SAO, when, flags=Flags(at_work=True)).allowed
    d = run("BR", SAO, when, flags=Flags(at_work=True, no_calls_at_work=True))
    assert not d.allowed and d.rule_id == "br.not_at_work" and d.next_allowed_at is None


# --- DST and several time zones ------------------------------------------------------------


def test_us_spring_forward_opens_at_eight_daylight_time() -> None:
    # 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT; 08:00 EDT is 12:00 UTC.
    d = run("US", NY, datetime(2026, 3, 8, 5, 0, tzinfo=UTC))  # 00:00 EST
    assert not d.allowed and d.next_allowed_at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert not run("US", NY, datetime(2026, 3, 8, 11, 59, tzinfo=UTC)).allowed  # 07:59 EDT
    assert run("US", NY, datetime(2026, 3, 8, 12, 1, tzinfo=UTC)).allowed
    assert run("US", NY, datetime(2026, 3, 9, 0, 59, tzinfo=UTC)).allowed  # 20:59 EDT
    late = run("US", NY, datetime(2026, 3, 9, 1, 1, tzinfo=UTC))  # 21:01 EDT
    assert not late.allowed and late.next_allowed_at == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)


def test_us_fall_back_opens_at_eight_standard_time() -> None:
    d = run("US", NY, datetime(2026, 11, 1, 4, 30, tzinfo=UTC))  # 00:30 EDT
    assert d.next_allowed_at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # 08:00 EST


def test_number_spanning_two_zones_uses_the_intersection() -> None:
    zones = list(phone_zones("+12084561234"))  # Idaho: Mountain and Pacific
    assert sorted(zones) == ["America/Boise", "America/Los_Angeles"]
    boise_830 = at("America/Boise", 2026, 6, 10, 8, 30)  # 07:30 in Los Angeles
    d = run("US", zones, boise_830)
    assert not d.allowed and d.rule_id == "us.hours"
    assert d.next_allowed_at == at("America/Los_Angeles", 2026, 6, 10, 8, 0)
    assert run("US", ["America/Boise"], boise_830).allowed
    assert run("US", zones, at("America/Boise", 2026, 6, 10, 20, 59)).allowed
    assert not run("US", zones, at("America/Boise", 2026, 6, 10, 21, 0)).allowed


def test_address_zone_and_number_zone_intersect() -> None:
    # Number in New York, address in Los Angeles: 08:30 New York is 05:30 in Los Angeles.
    d = run("US", [NY, "America/Los_Angeles"], at(NY, 2026, 6, 10, 8, 30))
    assert not d.allowed and d.next_allowed_at == at(NY, 2026, 6, 10, 11, 0)


def test_zone_intersection_with_holidays_counts_every_local_date() -> None:
    # 23:30 on 7 Dec in Bogotá is already 8 Dec (a holiday) further east; later 8 Dec is blocked.
    d = run("CO", [BOG, "Asia/Tokyo"], at(BOG, 2026, 12, 8, 18, 0))
    assert not d.allowed


# --- contact caps --------------------------------------------------------------------------


def test_us_seventh_call_in_seven_days_allowed_eighth_refused() -> None:
    days = [at(NY, 2026, 6, d, 10, 0) for d in range(4, 10)]  # Thu 4 .. Tue 9 June
    now = at(NY, 2026, 6, 10, 10, 0)
    assert run("US", NY, now, ledger=Ledger(attempts(*days))).allowed  # the 7th
    seven = Ledger(attempts(*days, at(NY, 2026, 6, 10, 9, 0)))
    d = run("US", NY, now, ledger=seven)  # the 8th
    assert not d.allowed and d.rule_id == "us.seven_in_seven"
    # The 4 June call leaves the 7-day period when 11 June starts; then the hours rule: 08:00.
    assert d.next_allowed_at == at(NY, 2026, 6, 11, 8, 0)


def test_us_unanswered_attempts_from_eight_days_ago_do_not_count() -> None:
    old = [at(NY, 2026, 6, 2, h, 0) for h in range(9, 17)]
    assert run("US", NY, at(NY, 2026, 6, 10, 10, 0), ledger=Ledger(attempts(*old))).allowed


def test_us_none_within_seven_days_after_a_conversation() -> None:
    talk = at(NY, 2026, 6, 8, 10, 0)  # Monday: day 1
    ledger = Ledger(attempts(talk), (talk,))
    d = run("US", NY, at(NY, 2026, 6, 14, 20, 0), ledger=ledger)  # Sunday: day 7
    assert not d.allowed and d.rule_id == "us.after_conversation"
    assert d.next_allowed_at == at(NY, 2026, 6, 15, 8, 0)
    assert run("US", NY, at(NY, 2026, 6, 15, 8, 1), ledger=ledger).allowed


def test_massachusetts_second_call_allowed_third_refused() -> None:
    now = at(NY, 2026, 6, 10, 10, 0)
    one = Ledger(attempts(at(NY, 2026, 6, 5, 10, 0)))
    two = Ledger(attempts(at(NY, 2026, 6, 5, 10, 0), at(NY, 2026, 6, 8, 10, 0)))
    assert run("US", NY, now, sub="MA", ledger=one).allowed
    d = run("US", NY, now, sub="MA", ledger=two)
    assert not d.allowed and d.rule_id == "us-ma.two_in_seven"
    assert d.rule is not None and "940 CMR 7.04(1)(f)" in d.rule
    assert d.next_allowed_at == at(NY, 2026, 6, 12, 8, 0)
    assert run("US", NY, now, sub="NY", ledger=two).allowed  # federal 7-in-7 only


def test_chile_one_call_a_week() -> None:
    last = at(SCL, 2026, 6, 8, 11, 0)  # Monday
    ledger = Ledger(attempts(last))
    d = run("CL", SCL, at(SCL, 2026, 6, 13, 10, 0), ledger=ledger)
    assert not d.allowed and d.rule_id == "cl.one_a_week"
    assert d.next_allowed_at == at(SCL, 2026, 6, 15, 8, 0)
    assert run("CL", SCL, at(SCL, 2026, 6, 15, 8, 1), ledger=ledger).allowed
    assert run("CL", SCL, at(SCL, 2026, 6, 13, 10, 0)).allowed  # the first of the week


def test_colombia_once_a_day_after_a_contact() -> None:
    morning = at(BOG, 2026, 6, 10, 9, 0)
    afternoon = at(BOG, 2026, 6, 10, 15, 0)
    unanswered = Ledger(attempts(morning))
    assert run("CO", BOG, afternoon, ledger=unanswered).allowed  # no contact yet: no daily cap
    reached = Ledger(attempts(morning), (morning,))
    d = run("CO", BOG, afternoon, ledger=reached)
    assert not d.allowed and d.rule_id == "co.once_a_day"
    assert d.next_allowed_at == at(BOG, 2026, 6, 11, 7, 0)
    assert run("CO", BOG, at(BOG, 2026, 6, 11, 7, 1), ledger=reached).allowed


def test_colombia_one_channel_a_week_after_a_contact() -> None:
    talk = at(BOG, 2026, 6, 16, 9, 0)
    sms = Contact(at(BOG, 2026, 6, 23, 9, 0), "sms")
    ledger = Ledger((Contact(talk), sms), (talk,))
    d = run("CO", BOG, at(BOG, 2026, 6, 24, 10, 0), ledger=ledger)
    assert not d.allowed and d.rule_id == "co.one_channel_a_week"
    assert d.next_allowed_at == at(BOG, 2026, 6, 30, 7, 0)  # 29 June is a holiday
    assert run("CO", BOG, at(BOG, 2026, 6, 24, 10, 0), ledger=Ledger((sms,))).allowed


def test_colombia_counts_the_persons_other_debts_chile_too_the_us_per_debt() -> None:
    """Colombia's once a day and Chile's once a week are about the person; Reg F's caps about
    the debt: a call about another debt of the same debtor counts only for the former."""
    morning = at(BOG, 2026, 6, 10, 9, 0)
    other_debt = Ledger(attempts(morning), (morning,))  # reached this morning about debt 1
    afternoon = at(BOG, 2026, 6, 10, 15, 0)
    assert run("CO", BOG, afternoon).allowed  # debt 2 alone: never called
    d = run("CO", BOG, afternoon, person=other_debt)
    assert not d.allowed and d.rule_id == "co.once_a_day"
    assert d.next_allowed_at == at(BOG, 2026, 6, 11, 7, 0)
    santiago = "America/Santiago"
    call = at(santiago, 2026, 6, 8, 10, 0)
    d = run("CL", santiago, at(santiago, 2026, 6, 10, 10, 0), person=Ledger(attempts(call)))
    assert not d.allowed and d.rule_id.startswith("cl.")
    now = at(NY, 2026, 6, 10, 10, 0)  # 7 calls about debt 1 in the 7 days up to now
    week = [at(NY, 2026, 6, d, 10, 0) for d in range(4, 10)] + [at(NY, 2026, 6, 10, 9, 0)]
    assert run("US", NY, now, person=Ledger(attempts(*week))).allowed
    assert not run("US", NY, now, ledger=Ledger(attempts(*week))).allowed


def test_argentina_is_marked_for_legal_review() -> None:
    assert get_pack("AR").legal_review
    assert not get_pack("CO").legal_review


# --- flags and channels --------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["cease", "attorney", "dispute", "wrong_party"])
@pytest.mark.parametrize("pack", ["US", "CO", "PE", "MX", "BR", "CL", "AR"])
def test_restriction_flags_forbid_for_good(pack: str, flag: str) -> None:
    zone = get_pack(pack).default_timezone
    flags = Flags(restrictions=frozenset({flag}), authorized_channels=frozenset({"voice"}))
    d = run(pack, zone, at(zone, 2026, 6, 10, 12, 0), flags=flags)
    assert not d.allowed and d.rule_id == f"{pack.lower()}.restrictions"
    assert d.next_allowed_at is None


def test_colombia_only_authorized_channels() -> None:
    when = at(BOG, 2026, 6, 10, 10, 0)
    d = run("CO", BOG, when, flags=Flags())
    assert not d.allowed and d.rule_id == "co.authorized_channels" and d.next_allowed_at is None
    sms_only = Flags(authorized_channels=frozenset({"sms"}))
    assert not run("CO", BOG, when, flags=sms_only).allowed


def test_us_artificial_voice_to_a_mobile_needs_consent() -> None:
    when = at(NY, 2026, 6, 10, 10, 0)
    d = run("US", NY, when, flags=Flags(phone_type="mobile"))
    assert not d.allowed and d.rule_id == "us.consent"
    assert run("US", NY, when, flags=Flags(phone_type="fixed")).allowed


def test_us_time_the_debtor_said_is_inconvenient() -> None:
    mornings = StatedWindow(frozenset(range(5)), 8 * 3600, 12 * 3600)
    flags = Flags(authorized_channels=frozenset({"voice"}), inconvenient=(mornings,))
    d = run("US", NY, at(NY, 2026, 6, 10, 9, 0), flags=flags)
    assert not d.allowed and d.rule_id == "us.stated_preferences"
    assert d.next_allowed_at == at(NY, 2026, 6, 10, 12, 0)


# --- the search itself ---------------------------------------------------------------------


def test_first_refusing_rule_is_reported_and_all_rules_hold_at_next() -> None:
    # Sunday night, then a capped Monday before the 8 December holiday.
    sunday_night = at(BOG, 2026, 12, 6, 22, 0)
    d = run("CO", BOG, sunday_night)
    assert d.rule_id == "co.hours"
    assert d.next_allowed_at == at(BOG, 2026, 12, 7, 7, 0)  # Monday 7 Dec is a workday
    reached = Ledger(attempts(at(BOG, 2026, 12, 7, 7, 5)), (at(BOG, 2026, 12, 7, 7, 5),))
    d = run("CO", BOG, at(BOG, 2026, 12, 7, 8, 0), ledger=reached)
    assert d.rule_id == "co.once_a_day"
    assert d.next_allowed_at == at(BOG, 2026, 12, 9, 7, 0)  # 8 Dec holiday skipped too


def test_nothing_within_the_horizon_gives_none() -> None:
    pack: Pack = get_pack("PE")
    friday_night = at(LIMA, 2026, 6, 12, 21, 0)
    d = check(pack, friday_night, [LIMA], None, Ledger(), VOICE, horizon=timedelta(days=1))
    assert not d.allowed and d.next_allowed_at is None and d.rule_id == "pe.hours"


def test_naive_moment_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        check(get_pack("CO"), datetime(2026, 6, 10, 10), [BOG], None, Ledger(), VOICE)


def test_empty_zone_list_uses_the_pack_default() -> None:
    pack = get_pack("CO")
    assert not check(pack, at(BOG, 2026, 6, 10, 6, 0), [], None, Ledger(), VOICE).allowed
