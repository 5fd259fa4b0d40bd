"""Monitoring: input drift, triggers, live scoring, the adaptive schedule, alerts, the weekly report and
the platform's health.

May import ``data``, ``training`` and ``configuration``.
"""
