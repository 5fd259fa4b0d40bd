"""Configuration: the versioned ``RetrainingConfig``, its store in the lake, cron expressions and the
environment settings (where state lives).

Imports nothing else of ``core``.
"""
