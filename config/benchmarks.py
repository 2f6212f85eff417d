"""What the benchmark commands share: percentiles, and a warning when settings skew their figures."""
from __future__ import annotations

from django.conf import settings


def percentile(samples: list[float], fraction: float) -> float:
    """Return the sample at `fraction` (0 to 1) of the way through the sorted samples (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def settings_warning() -> str | None:
    """Return a line to print before the figures when they would not be production's, else None."""
    if settings.DEBUG:
        # Measured: with DEBUG's query recording, bench_leaderboard's consumer cost per result was 2-13% higher.
        return ("warning: DEBUG is on, so Django records every query (CPU production does not spend); "
                "for production figures run with DJANGO_DEBUG=false DJANGO_SECRET_KEY=<any value>")
    return None
