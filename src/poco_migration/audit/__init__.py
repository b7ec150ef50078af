"""The independent audit: POCO's source against Xiaomi's target, not trusting the move's code.

``contract`` writes the contract's mapping out again, ``values`` spells every value one
way on both databases, ``ranges`` compares range checksums and bisects, ``findings``
judges a key, ``run`` audits a domain, ``report`` prints and records the result.
"""
