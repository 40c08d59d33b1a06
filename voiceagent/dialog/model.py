"""The dialplan schema: what a negotiation is made of, validated when a file is loaded."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from voiceagent.nlu.lexicon import INTENTS

Result = Literal[
    "promise",
    "refused",
    "wrong_party",
    "callback",
    "transfer",
    "already_paid",
    "stop_contact",
    "dispute",
    "no_answer",
    "hangup",
]
RESULTS: tuple[str, ...] = get_args(Result)
"""Every call result a dialplan can record (``outcome.result`` of ``voiceagent chat``)."""
StateId = Annotated[str, Field(pattern=r"^(\$repeat|\$return|[a-z][a-z0-9_]*)$")]
"""A state name, or ``$repeat`` (say the current prompts again) / ``$return`` (go back)."""
PromptId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
RECORD_ACTIONS = (
    "record_stop_contact",
    "record_dispute",
    "record_wrong_number",
    "record_already_paid",
    "record_refusal",
)
"""Entry actions that write to the CRM before the state's prompts are spoken."""
SLIP_CHANNELS = ("sms", "email", "whatsapp")


class Strict(BaseModel):
    """Base: unknown keys are errors (a typo never silently disables a rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Prompt(Strict):
    """One thing the agent says; ``{placeholders}`` are filled from the account and the call."""

    text: str = Field(min_length=1)
    interruptible: bool = True
    """False for legal disclosures: debtor speech does not cut them off (barge-in is ignored)."""


class Header(Strict):
    """Identity of a dialplan."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: int = Field(ge=1)
    locale: Literal["es-419", "pt-BR", "en-US"]
    description: str = ""
    agent_name: str = Field(min_length=1)


class Compliance(Strict):
    """Prompts the law or the contact centre requires, checked at load."""

    bot_disclosure: PromptId
    """Said in the first state: the debtor is told at once they talk to a virtual assistant."""
    recording_notice: PromptId
    """Said in the first state, before anything is discussed."""
    collector_disclosure: PromptId | None = None
    """US FDCPA "mini-Miranda": first thing after right-party verification, non-interruptible."""


class Machine(Strict):
    """What an outbound call does when an answering machine or a call screener answers."""

    voicemail: PromptId | None = None
    """Left after the beep. Limited content: it may name the agent and a number to call back,
    never the debt, the creditor's business or any amount (checked at load)."""
    on_machine: Literal["message", "hangup"] = "message"
    """Leave ``voicemail`` (when set) or hang up at once."""


class TransferFallback(Strict):
    """When a transfer to a human is refused (nobody available): a callback, not a drop."""

    no_agents: PromptId | None = None
    """Said when the transfer fails; may use ``{callback_when}``. None: just hang up."""
    callback_at: str = Field(default="10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """Local time, the next day, of the callback scheduled instead (HH:MM)."""


class PayInFull(Strict):
    """Pay the whole balance by a date."""

    within_days: int = Field(ge=0, le=120)


class Installments(Strict):
    """Up to ``max_count`` instalments of at least ``min_amount``; the first is promised now."""

    max_count: int = Field(ge=1, le=60)
    min_amount: Decimal = Field(ge=0)
    """In the account's currency; the minimum is also at least balance / max_count."""
    first_within_days: int = Field(ge=0, le=120)


class Discount(Strict):
    """A settlement discount, offered only from ``min_days_past_due`` on."""

    min_days_past_due: int = Field(ge=0)
    percent: Decimal = Field(gt=0, lt=100)
    within_days: int = Field(ge=0, le=120)


class Offers(Strict):
    """What the agent may accept; anything outside is countered, never accepted."""

    pay_in_full: PayInFull
    installments: Installments | None = None
    discount: Discount | None = None
    hardship: Installments | None = None
    """Softer instalment terms, used once the debtor says they cannot pay."""


class Limits(Strict):
    """How many times the agent retries before giving up on a question."""

    no_input: int = Field(default=2, ge=0, le=5)
    no_match: int = Field(default=2, ge=0, le=5)
    counter_offers: int = Field(default=2, ge=0, le=5)


class Handlers(Strict):
    """Intent -> state handlers that apply in every state unless the state handles the intent."""

    any: dict[str, StateId] = {}
    unverified: dict[str, StateId] = {}
    """Only before right-party verification (must never disclose the debt)."""
    verified: dict[str, StateId] = {}
    """Only after right-party verification."""

    @field_validator("any", "unverified", "verified")
    @classmethod
    def _known_intents(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_intents(value)


class Fallback(Strict):
    """What to do on silence (no input) or on an answer the state does not expect (no match)."""

    reprompt: PromptId | None = None
    """Said instead of the state's prompts when retrying; default: the state's prompts again."""
    then: StateId | None = None
    """Where to go once the retries are used up; default: the plan's ``defaults``."""


class StateBase(Strict):
    """Fields shared by every kind of state."""

    say: list[PromptId] = []
    do: list[str | dict[str, str]] = []
    """Entry actions, executed (and committed) before ``say`` is spoken."""
    outcome: Result | None = None
    """Entering this state sets the call result (a weaker result never replaces a stronger one)."""
    on: dict[str, StateId] = {}
    next: StateId | None = None
    """Go on without waiting for the debtor once ``say`` is spoken."""
    no_input: Fallback | None = None
    no_match: Fallback | None = None
    reprompt: PromptId | None = None
    """Said when coming back to this state after a side question."""

    @field_validator("on")
    @classmethod
    def _known_intents(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_intents(value, extra=cls.extra_events())

    @classmethod
    def extra_events(cls) -> tuple[str, ...]:
        """Events besides intents that this kind of state can transition on."""
        return ()

    @field_validator("do")
    @classmethod
    def _known_actions(cls, value: list[str | dict[str, str]]) -> list[str | dict[str, str]]:
        for item in value:
            if isinstance(item, str):
                if item not in RECORD_ACTIONS:
                    raise ValueError(f"unknown action {item!r}; expected one of {RECORD_ACTIONS}")
            elif set(item) == {"send_slip"}:
                if item["send_slip"] not in SLIP_CHANNELS:
                    raise ValueError(f"send_slip channel must be one of {SLIP_CHANNELS}")
            elif set(item) != {"transfer"}:
                raise ValueError(f"unknown action {item!r}; expected send_slip: or transfer:")
        return value


class TalkState(StateBase):
    """Say something, then wait for an intent (``on``) or go on (``next``)."""

    kind: Literal["talk"] = "talk"

    @model_validator(mode="after")
    def _goes_somewhere(self) -> TalkState:
        if not self.on and self.next is None:
            raise ValueError("a talk state needs `on` (wait for an answer) or `next`")
        return self


class VerifyState(StateBase):
    """Right-party verification: compare digits the debtor says (or keys) with the account."""

    kind: Literal["verify"]
    factor: Literal["document_last4", "birth_year"]
    attempts: int = Field(default=2, ge=1, le=3)
    retry: PromptId
    """Said after a wrong answer while attempts remain."""

    @classmethod
    def extra_events(cls) -> tuple[str, ...]:
        """A verify state transitions on the comparison result."""
        return ("verified", "not_verified")

    @model_validator(mode="after")
    def _both_results(self) -> VerifyState:
        missing = {"verified", "not_verified"} - set(self.on)
        if missing:
            raise ValueError(f"a verify state needs `on` for {sorted(missing)}")
        return self


class PromiseSpec(Strict):
    """How a promise to pay is negotiated and confirmed."""

    plan: Literal["full", "installment", "settlement", "any"] = "any"
    """Which offer the promise falls under; ``any`` lets the amount decide."""
    default_amount: Literal["none", "full", "settlement"] = "none"
    """Amount assumed when the debtor names only a date ("sí, el lunes" to a full-payment offer)."""
    ask_date: PromptId
    ask_amount: PromptId
    counter_date: PromptId
    """Says the latest acceptable date ({counter_date}) and asks to accept it."""
    counter_amount: PromptId
    """Says the minimum acceptable amount ({counter_amount}) and asks to accept it."""
    past_date: PromptId
    confirm: PromptId
    """Reads back {promise_amount} and {promise_date} and asks yes/no."""
    recorded: StateId
    """Next state, entered only after the promise is committed to the CRM."""
    gave_up: StateId
    """Where to go when counter-offers are used up."""


class PromiseState(StateBase):
    """Capture a promise to pay: date and amount, negotiated into policy, confirmed back."""

    kind: Literal["promise"]
    promise: PromiseSpec


class CallbackSpec(Strict):
    """How a callback is scheduled."""

    ask_when: PromptId
    confirm: PromptId
    """Reads back {callback_when} and asks yes/no."""
    scheduled: StateId
    """Next state, entered only after the callback is committed."""
    default_time: str = Field(default="10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """Used when the debtor gives a day but no time."""


class CallbackState(StateBase):
    """Schedule a callback at the day and time the debtor says."""

    kind: Literal["callback"]
    callback: CallbackSpec


class ChoiceState(StateBase):
    """Pick an option by keywords the debtor says ("por SMS", "por correo")."""

    kind: Literal["choice"]
    options: dict[StateId, list[str]] = Field(min_length=1)
    """Target state -> phrases that choose it."""


BranchCondition = Literal[
    "settlement_available", "installments_available", "has_email", "has_due_date", "hardship"
]


class Case(Strict):
    """One branch: go to ``goto`` when ``if`` holds for this account today."""

    if_: BranchCondition = Field(alias="if")
    goto: StateId


class BranchState(StateBase):
    """Choose the next state from the account and today's terms, without speaking."""

    kind: Literal["branch"]
    cases: list[Case] = Field(min_length=1)
    otherwise: StateId


class EndState(StateBase):
    """Say goodbye (or transfer), then the call ends."""

    kind: Literal["end"]

    @model_validator(mode="after")
    def _ends(self) -> EndState:
        if self.on or self.next:
            raise ValueError("an end state has no `on` or `next`")
        return self


State = Annotated[
    TalkState | VerifyState | PromiseState | CallbackState | ChoiceState | BranchState | EndState,
    Field(discriminator="kind"),
]


class Defaults(Strict):
    """Where calls go when retries run out."""

    no_input: StateId
    no_match: StateId


class Dialplan(Strict):
    """A whole negotiation script, as loaded from ``dialplans/<locale>/<name>.yaml``."""

    dialplan: Header
    compliance: Compliance
    offers: Offers
    limits: Limits = Limits()
    machine: Machine = Machine()
    transfer: TransferFallback = TransferFallback()
    account_fields: list[str] = []
    """Extra account keys the prompts use; an account without them is rejected before the call."""
    start: StateId
    defaults: Defaults
    handlers: Handlers = Handlers()
    dtmf: dict[str, str] = {"1": "affirm", "2": "deny", "0": "request_human"}
    """Key -> intent outside identity checks ("press 1 to confirm")."""
    prompts: dict[PromptId, str | Prompt]
    states: dict[StateId, State]

    @field_validator("states", mode="before")
    @classmethod
    def _talk_by_default(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                k: {"kind": "talk", **v} if isinstance(v, dict) and "kind" not in v else v
                for k, v in value.items()
            }
        return value

    @field_validator("dtmf")
    @classmethod
    def _dtmf_intents(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in "0123456789*#" or len(key) != 1:
                raise ValueError(f"dtmf key {key!r} must be one of 0-9, * or #")
        return _check_intents({v: k for k, v in value.items()})

    def prompt(self, prompt_id: str) -> Prompt:
        """Return a prompt by id (plain strings become interruptible prompts)."""
        value = self.prompts[prompt_id]
        return value if isinstance(value, Prompt) else Prompt(text=value)


def _check_intents(value: dict[str, str], extra: tuple[str, ...] = ()) -> dict[str, str]:
    allowed = set(INTENTS) | set(extra)
    for key in value:
        if key not in allowed:
            raise ValueError(f"unknown intent {key!r}; expected one of {sorted(allowed)}")
    return value
