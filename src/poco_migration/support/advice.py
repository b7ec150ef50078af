"""What a support agent tells a person about a row that did not move, as data.

One line per situation: every quarantine reason a move can give (``moves.REASONS``), a
held row (moved, then invalid on POCO), a row still waiting for its market's next sync,
and the ways a row is out of scope. Each has two answers: while the person's market
still syncs (``open``: fix it on POCO and the next daily sync moves it) and once the
market is frozen (``closed``: the POCO site is read-only, nothing moves by itself any
more; what the archive keeps and how a claim is handled). The lookup, the statements
and the README read this one table; a test checks that every reason has its line.

``{cutover}`` and ``{shutdown}`` are filled with the market's dates.
"""

from __future__ import annotations

from dataclasses import dataclass

# Situations that are not quarantine reasons.
PENDING = "pending"  # in scope, in neither place yet: its market's next sync moves it
HELD = "held"  # moved, then invalid on POCO: the Xiaomi row stays as it was
DELETED_BEFORE_MOVE = "deleted_before_move"  # a review deleted on POCO before its first move
ZERO_BALANCE = "zero_balance"  # a points account holding 0 points
INITIATIVE_NOT_IN_SCOPE = "initiative_not_in_scope"  # a draft or cancelled initiative

# What the archive keeps and how a claim is handled, once nothing moves by itself any more.
_CLAIM = (
    "The POCO record is kept in the migration's archive (written at the shutdown on {shutdown}); "
    "open a support case with the POCO user id: after-sales checks the archive and an operator "
    "corrects it on the Xiaomi side by hand."
)


@dataclass(frozen=True)
class Advice:
    """What to tell the person while the market syncs (``open``) and once it is frozen (``closed``)."""

    open: str
    closed: str


ADVICE: dict[str, Advice] = {
    "unlinked_account": Advice(
        "Link a Mi account to the POCO account before {cutover} (the market's cutover); the next daily sync then "
        "moves it.",
        "The POCO account had no Mi account linked when its market closed on {cutover}. " + _CLAIM,
    ),
    "negative_balance": Advice(
        "The POCO balance is below zero, which the Mi ledger does not take; POCO support corrects the balance "
        "before {cutover}, then the next daily sync moves it.",
        "The POCO balance was below zero when its market closed on {cutover}. " + _CLAIM,
    ),
    "invalid_balance": Advice(
        "The POCO account has no balance on record; POCO support corrects it before {cutover}, then the next daily "
        "sync moves it.",
        "The POCO account had no balance on record when its market closed on {cutover}. " + _CLAIM,
    ),
    "out_of_range": Advice(
        "A number on the POCO record is larger than the Mi platform holds; an operator reviews it before {cutover}.",
        "A number on the POCO record was larger than the Mi platform holds. " + _CLAIM,
    ),
    "unmapped_product": Advice(
        "The product reviewed has no counterpart on mi.com yet; the review moves as soon as the product is mapped "
        "(before {cutover}).",
        "The product reviewed had no counterpart on mi.com when the market closed on {cutover}. " + _CLAIM,
    ),
    "invalid_rating": Advice(
        "The review's rating is not 1 to 5 stars; once it is corrected on POCO before {cutover}, the next daily sync "
        "moves it.",
        "The review's rating was not 1 to 5 stars when its market closed on {cutover}. " + _CLAIM,
    ),
    "empty_body": Advice(
        "The review has no text; the person can write it on POCO before {cutover} and the next daily sync moves it.",
        "The review had no text when its market closed on {cutover}; it can be written again on mi.com.",
    ),
    "duplicate": Advice(
        "The same review of the same product was posted earlier; that earlier one is the one that moved.",
        "The same review of the same product was posted earlier; that earlier one is the one that moved.",
    ),
    "invalid_status": Advice(
        "The record's status on POCO is not one the Mi platform knows; an operator reviews it before {cutover}.",
        "The record's status on POCO was not one the Mi platform knows. " + _CLAIM,
    ),
    "invalid_text": Advice(
        "The text holds characters the Mi platform cannot store; once it is edited on POCO before {cutover}, the "
        "next daily sync moves it.",
        "The text held characters the Mi platform cannot store; it can be written again on mi.com.",
    ),
    "invalid_dates": Advice(
        "The initiative ends before it starts on POCO; the brand team corrects it before {cutover}.",
        "The initiative ended before it started on POCO. " + _CLAIM,
    ),
    "invalid_kind": Advice(
        "The initiative is of a kind the Mi platform does not know; the brand team corrects it before {cutover}.",
        "The initiative was of a kind the Mi platform does not know. " + _CLAIM,
    ),
    "orphan": Advice(
        "The initiative this participation belongs to did not move (missing, draft, cancelled or quarantined); it "
        "moves with its initiative.",
        "The initiative this participation belongs to did not move. " + _CLAIM,
    ),
    PENDING: Advice(
        "Not moved yet: the market's next daily sync moves it (the market cuts over on {cutover}).",
        "Not moved although its market closed on {cutover}: an operator must look at it (the report counts it as "
        "drift).",
    ),
    HELD: Advice(
        "It moved, then changed on POCO in a way the Mi platform cannot take; the Mi record stays as it was until "
        "it is valid again on POCO.",
        "It moved, then changed on POCO in a way the Mi platform cannot take; the Mi record stays as it moved. "
        + _CLAIM,
    ),
    DELETED_BEFORE_MOVE: Advice(
        "The review was deleted on POCO before the move, so there is nothing to move.",
        "The review was deleted on POCO before the move, so there is nothing to move.",
    ),
    ZERO_BALANCE: Advice(
        "The POCO account holds 0 points: nothing to credit.",
        "The POCO account held 0 points: nothing to credit.",
    ),
    INITIATIVE_NOT_IN_SCOPE: Advice(
        "The initiative is a draft or was cancelled on POCO: it does not move, nor do its participations.",
        "The initiative was a draft or was cancelled on POCO: it did not move, nor did its participations.",
    ),
}


def advice(situation: str, *, closed: bool, cutover: str, shutdown: str) -> str:
    """The sentence for one situation, in the market's phase, with its dates filled in."""
    line = ADVICE[situation]
    return (line.closed if closed else line.open).format(cutover=cutover, shutdown=shutdown)
