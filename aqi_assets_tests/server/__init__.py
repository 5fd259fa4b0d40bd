"""Tests of the token-protected webserver."""
