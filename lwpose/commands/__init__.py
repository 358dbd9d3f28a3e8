"""CLI verbs: one module a verb, each with register(subparsers)."""
