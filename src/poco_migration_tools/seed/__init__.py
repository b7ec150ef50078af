"""The synthetic POCO platform: ``catalogue`` (what it looks like, as data) and
``generator`` (how it is written, deterministic and streamed)."""

from poco_migration_tools.seed.generator import seed_source

__all__ = ["seed_source"]
