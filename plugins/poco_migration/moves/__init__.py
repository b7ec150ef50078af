"""One module per domain's move; ``MOVES`` lists them in the order they must run."""

from __future__ import annotations

from poco_migration.moves import initiatives, participants, points, reviews
from poco_migration.moves.engine import Move

# Initiatives before their participants; points and reviews depend on nothing.
MOVES: dict[str, Move] = {
    "points": points.MOVE,
    "reviews": reviews.MOVE,
    "initiatives": initiatives.MOVE,
    "participants": participants.MOVE,
}
DOMAINS = tuple(MOVES)
