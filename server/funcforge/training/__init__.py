"""Offline training: agents, sandbox, judge, trainer."""
