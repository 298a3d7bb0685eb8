"""Shared test settings. Machines here are noisy: no hypothesis deadlines."""

from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=60)
settings.load_profile("default")

MERMAID_SKIP = "Mermaid's parser is unavailable"  # in the skip reason of tests/test_lineage_exports.py


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest hook
    """Say loudly when the Mermaid export was not checked by Mermaid's parser (no node/npm, or npm failed)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if MERMAID_SKIP in str(r.longrepr)]
    if skipped:
        reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else str(skipped[0].longrepr)
        terminalreporter.write_sep("!", "MERMAID EXPORT NOT CHECKED", red=True, bold=True)
        terminalreporter.write_line(f"{len(skipped)} test(s) skipped: {reason}", red=True, bold=True)
