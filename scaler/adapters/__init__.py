"""Adapters: the only code that talks to the outside world (Azure, Pexip) or imitates it (sim)."""
