"""Reviewing tool changes: `funcforge check` in CI (findings, SARIF, JUnit) and `funcforge review`."""
