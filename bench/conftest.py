"""The kernel microbenchmarks' summary: GMAC/s and share of peak per kernel, ISA and shape."""

from __future__ import annotations

import pytest

ROWS = pytest.StashKey[list]()


@pytest.fixture
def kernel_report(request) -> list[dict]:
    """Rows for the summary table (test_kernels_bench.py appends one per benchmark)."""
    return request.config.stash.setdefault(ROWS, [])


def pytest_terminal_summary(terminalreporter, config) -> None:
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    terminalreporter.section("GMAC/s per kernel (peak: bench/peak.py, one core)")
    terminalreporter.write_line(
        f"{'kernel':<8} {'isa':<11} {'dims':<20} {'median ms':>10} {'GMAC/s':>8} "
        f"{'% cpu peak':>10} {'% isa peak':>10}  layer"
    )
    for r in rows:
        pct = [
            f"{p:.1f}" if p is not None else ""
            for p in (r["pct_of_cpu_peak"], r["pct_of_isa_peak"])
        ]
        terminalreporter.write_line(
            f"{r['kernel']:<8} {r['isa']:<11} {'x'.join(map(str, r['dims'])):<20} "
            f"{r['median_ms']:>10.3f} {r['gmac_per_s']:>8.1f} {pct[0]:>10} {pct[1]:>10}  "
            f"{r['layer']}"
        )
