"""One module per domain's move; ``MOVES`` lists them in the order they must run."""

from __future__ import annotations

from poco_migration.moves import initiatives, participants, points, reviews
from poco_migration.moves.move import Move

# In the order of schemas.DOMAINS: initiatives before their participants.
MOVES: dict[str, Move] = {
    "points": points.MOVE,
    "reviews": reviews.MOVE,
    "initiatives": initiatives.MOVE,
    "participants": participants.MOVE,
}

# Every quarantine reason a move can give, for the commands that take one.
_RULED = {rule.reason for domain in (points, reviews, initiatives, participants) for rule in domain.RULES}
REASONS = tuple(sorted(_RULED | {reviews.DUPLICATE}))
