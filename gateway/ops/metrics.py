"""Prometheus metrics: plain counters on the hot path, read by a collector at scrape.

Counting a request is a few dictionary and list updates (no lock, no
label lookup); `prometheus-client` turns them into its text format only when
`/metrics` is scraped. Every label is from a bounded set: route names,
status codes, error codes, cache and state names. No token, key, image id
or path ever becomes a label.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = ["BUCKETS", "Metrics"]

# Seconds: from a cached redirect (tens of microseconds) to a cold render.
BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class Metrics(Collector):
    """This process's figures; `gauges` are read from their owners at scrape."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency: dict[str, _Histogram] = {}
        self.refusals: Counter[str] = Counter()  # error codes answered
        self.upstream: dict[str, _Histogram] = {}
        self.upstream_errors: Counter[str] = Counter()
        # name -> (help, read); read at scrape, so owners need no hooks here
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.counters: dict[
            str, tuple[str, Callable[[], Mapping[str, float]], str]
        ] = {}
        self.ingests: Mapping[str, int] = {}  # by state, read per scrape

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        histogram = self.latency.get(route)
        if histogram is None:
            histogram = self.latency[route] = _Histogram()
        histogram.observe(seconds)

    def observe_upstream(self, action: str, seconds: float, error: str | None) -> None:
        histogram = self.upstream.get(action)
        if histogram is None:
            histogram = self.upstream[action] = _Histogram()
        histogram.observe(seconds)
        if error is not None:
            self.upstream_errors[error] += 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gateway_requests", "Requests answered", labels=["route", "status"]
        )
        for (route, status), count in sorted(self.requests.items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        yield _histograms(
            "gateway_request_duration_seconds",
            "Time to answer, by route",
            "route",
            self.latency,
        )
        refusals = CounterMetricFamily(
            "gateway_errors",
            "Error answers by their code (token_* are token failures)",
            labels=["code"],
        )
        for code, count in sorted(self.refusals.items()):
            refusals.add_metric([code], count)
        yield refusals
        yield _histograms(
            "gateway_upstream_duration_seconds",
            "Calls to Cloudinary's API",
            "action",
            self.upstream,
        )
        errors = CounterMetricFamily(
            "gateway_upstream_errors",
            "Failed calls to Cloudinary's API",
            labels=["kind"],
        )
        for kind, count in sorted(self.upstream_errors.items()):
            errors.add_metric([kind], count)
        yield errors
        ingests = GaugeMetricFamily(
            "gateway_images_by_ingest_state", "Images by ingest state", labels=["state"]
        )
        for state, count in sorted(self.ingests.items()):
            ingests.add_metric([state], count)
        yield ingests
        for name, (help_text, read) in sorted(self.gauges.items()):
            yield GaugeMetricFamily(name, help_text, value=read())
        for name, (help_text, read_all, label) in sorted(self.counters.items()):
            family = CounterMetricFamily(name, help_text, labels=[label])
            for value, total in sorted(read_all().items()):
                family.add_metric([value], total)
            yield family


def _histograms(
    name: str, help_text: str, label: str, histograms: Mapping[str, _Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_text, labels=[label])
    for value, histogram in sorted(histograms.items()):
        cumulative, buckets = 0, []
        for bound, count in zip(
            [*map(str, BUCKETS), "+Inf"], histogram.counts, strict=True
        ):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric([value], buckets, histogram.total)
    return family
