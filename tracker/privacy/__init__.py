"""Privacy by law: tracking policies, retention by data class, a person's export and erasure.

See docs/privacy.md.
"""
