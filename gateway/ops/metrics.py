"""Prometheus metrics: plain counters on the hot path, read by a collector at scrape.

Counting a request is a few dictionary and list updates (no lock, no
label lookup); `prometheus-client` turns them into its text format only when
`/metrics` is scraped. Every label is from a bounded set: route names,
status codes, error codes, cache and state names. No token, key, image id
or path ever becomes a label.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

__all__ = ["BUCKETS", "SCRAPE_TTL", "Exposition", "Metrics", "alive"]

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

log = logging.getLogger("gateway.metrics")

# Requests counted between two folds into the counters (`Metrics.observe`).
_FOLD_EVERY: Final = 1024
# A scrape's text is served again for this long (seconds).
SCRAPE_TTL: Final = 1.0


class Exposition:
    """The last scrape's text, served again for up to `SCRAPE_TTL`; one scrape
    built at a time.

    Building one reads the catalog's ingest counts (on its one reader thread)
    and every worker's published figures: about 3 ms of the event loop. Anyone
    may ask for `/metrics`; a flood of scrapes now costs one build a second.
    Workers publish their figures once a second, so a scrape was already up to
    a second old.
    """

    def __init__(self) -> None:
        self._text = b""
        self._built = -SCRAPE_TTL
        self._building = asyncio.Lock()

    async def text(self, build: Callable[[], Awaitable[bytes]]) -> bytes:
        async with self._building:
            if time.monotonic() - self._built >= SCRAPE_TTL:
                self._text = await build()
                self._built = time.monotonic()
            return self._text


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
        # With several workers: where each publishes its figures, and this
        # one's slot, the `worker` label of its `process_*` series (`serve`).
        self.peers: Path | None = None
        self.worker: str | None = None
        self._view: dict[str, float] | None = None
        self._pending: list[tuple[str, int, float]] = []
        # Snapshots are numbered as they are taken; the file is written under
        # the lock and never by an older one than it holds (`publish`).
        self._taken = 0
        self._written = 0
        self._writing = threading.Lock()
        self._failing = False

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count a request: appended as it is, folded into the counters in bulk.

        An append is a fifth of a counter update and a histogram bucket search;
        the list never holds more than `_FOLD_EVERY` requests, and every
        reading of the figures (`snapshot`) folds it first.
        """
        pending = self._pending
        pending.append((route, status, seconds))
        if len(pending) >= _FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        pending, self._pending = self._pending, []
        requests, latency = self.requests, self.latency
        for route, status, seconds in pending:
            requests[(route, status)] += 1
            histogram = latency.get(route)
            if histogram is None:
                histogram = latency[route] = _Histogram()
            histogram.observe(seconds)

    def observe_upstream(self, action: str, seconds: float, error: str | None) -> None:
        histogram = self.upstream.get(action)
        if histogram is None:
            histogram = self.upstream[action] = _Histogram()
        histogram.observe(seconds)
        if error is not None:
            self.upstream_errors[error] += 1

    def snapshot(self) -> dict[str, float]:
        """Every figure of this process, flat: `kind\tname\tlabel…` -> value."""
        self._fold()
        out: dict[str, float] = {}
        for (route, status), count in self.requests.items():
            out[f"requests\t{route}\t{status}"] = count
        for family, histograms in (
            ("latency", self.latency),
            ("upstream", self.upstream),
        ):
            for label, histogram in histograms.items():
                for index, count in enumerate(histogram.counts):
                    out[f"{family}\t{label}\t{index}"] = count
                out[f"{family}_sum\t{label}"] = histogram.total
        for code, count in self.refusals.items():
            out[f"refusals\t{code}"] = count
        for kind, count in self.upstream_errors.items():
            out[f"upstream_errors\t{kind}"] = count
        for name, (_, read) in self.gauges.items():
            out[f"gauge\t{name}"] = read()
        for name, (_, read_all, _) in self.counters.items():
            for value, total in read_all().items():
                out[f"counter\t{name}\t{value}"] = total
        if self.worker is not None:
            # Each worker's own, labelled: summed they mean nothing (start
            # times), and one unlabelled series from whichever worker answers
            # a scrape went backwards from scrape to scrape.
            for collected in ProcessCollector(registry=None).collect():
                key = f"process\t{collected.name}\t{self.worker}"
                out[key] = collected.samples[0].value
        return out

    async def published(self) -> dict[str, float]:
        """This process's `snapshot`, and with several workers, written where
        its siblings' scrapes find it before it is returned.

        A scrape reports the snapshot it published: a worker killed at once
        after answering one (SIGKILL, the OOM killer, a crash: no last
        publication) leaves its file at least at what that scrape said. It
        was up to a second behind (the last periodic publication), and every
        later scrape reported the worker's counters lower, for good: a
        counter going backwards, which Prometheus reads as a reset.

        The snapshot is taken on the event loop (the counters are the loop's
        alone); the file is written in a thread.
        """
        snapshot = self.snapshot()
        if self.peers is not None:
            self._taken += 1
            try:
                await asyncio.to_thread(self.publish, snapshot, self._taken)
            except OSError as exc:
                # A full disk, the directory gone: the scrape still answers,
                # and the operator hears of it, once until it works again.
                if not self._failing:
                    log.warning(
                        "cannot publish this worker's metrics in %s (%s): the"
                        " other workers' scrapes count its figures as last published",
                        self.peers,
                        exc.strerror or exc,
                    )
                self._failing = True
            else:
                self._failing = False
        return snapshot

    def publish(self, snapshot: Mapping[str, float], taken: int) -> None:
        """Write this worker's `snapshot`, the `taken`th, unless a later one is
        already written (the periodic publication and a scrape's may cross)."""
        if self.peers is None:
            return
        with self._writing:
            if taken <= self._written:
                return
            self.peers.mkdir(parents=True, exist_ok=True)
            target = self.peers / f"{os.getpid()}.json"
            spool = target.with_suffix(".tmp")
            spool.write_text(json.dumps(snapshot))
            spool.replace(target)
            self._written = taken

    def gather(self, own: Mapping[str, float]) -> None:
        """The figures a scrape reports: this worker's (`own`, its `snapshot`,
        taken on the event loop), plus every sibling's last published ones (a
        second old at most). Counters of workers that have exited still count;
        their gauges no longer do. Reads files: may run in a thread."""
        merged: Counter[str] = Counter(own)
        if self.peers is not None and self.peers.is_dir():
            for published in self.peers.glob("*.json"):
                pid = int(published.stem)
                if pid == os.getpid():
                    continue
                try:
                    figures = json.loads(published.read_text())
                except (OSError, ValueError):
                    continue  # being replaced: the next scrape has it
                running = alive(pid)
                for key, value in figures.items():
                    if running or not key.startswith(_OF_THE_LIVING):
                        merged[key] += value
        self._view = dict(merged)

    def collect(self) -> Iterator[Metric]:
        view = self._view if self._view is not None else self.snapshot()
        self._view = None
        rows = [(key.split("\t"), value) for key, value in sorted(view.items())]

        def of(kind: str) -> list[tuple[list[str], float]]:
            return [(parts[1:], value) for parts, value in rows if parts[0] == kind]

        requests = CounterMetricFamily(
            "gateway_requests", "Requests answered", labels=["route", "status"]
        )
        for (route, status), count in of("requests"):
            requests.add_metric([route, status], count)
        yield requests
        yield _histograms(
            "gateway_request_duration_seconds",
            "Time to answer, by route",
            "route",
            of("latency"),
            of("latency_sum"),
        )
        refusals = CounterMetricFamily(
            "gateway_errors",
            "Error answers by their code (token_* are token failures)",
            labels=["code"],
        )
        for (code,), count in of("refusals"):
            refusals.add_metric([code], count)
        yield refusals
        yield _histograms(
            "gateway_upstream_duration_seconds",
            "Calls to Cloudinary: its API by action; proxied images (proxy) to their first bytes",
            "action",
            of("upstream"),
            of("upstream_sum"),
        )
        errors = CounterMetricFamily(
            "gateway_upstream_errors",
            "Failed calls to Cloudinary (its API, proxied images) by kind",
            labels=["kind"],
        )
        for (kind,), count in of("upstream_errors"):
            errors.add_metric([kind], count)
        yield errors
        ingests = GaugeMetricFamily(
            "gateway_images_by_ingest_state", "Images by ingest state", labels=["state"]
        )
        for state, count in sorted(self.ingests.items()):
            ingests.add_metric([state], count)
        yield ingests
        gauges = {parts[0]: value for parts, value in of("gauge")}
        for name, (help_text, _) in sorted(self.gauges.items()):
            yield GaugeMetricFamily(name, help_text, value=gauges.get(name, 0.0))
        counted = of("counter")
        for name, (help_text, _, label) in sorted(self.counters.items()):
            family = CounterMetricFamily(name, help_text, labels=[label])
            for (counter, value), total in counted:
                if counter == name:
                    family.add_metric([value], total)
            yield family
        by_process: dict[str, list[tuple[str, float]]] = {}
        for (name, worker), figure in of("process"):
            by_process.setdefault(name, []).append((worker, figure))
        for name, figures in sorted(by_process.items()):
            kind, help_text = _PROCESS.get(name, ("gauge", name))
            process = (
                CounterMetricFamily(name, help_text, labels=["worker"])
                if kind == "counter"
                else GaugeMetricFamily(name, help_text, labels=["worker"])
            )
            for worker, figure in sorted(figures, key=lambda w: int(w[0])):
                process.add_metric([worker], figure)
            yield process


# Figures that stop counting when their worker exits (its counters go on).
_OF_THE_LIVING: Final = ("gauge\t", "process\t")
# prometheus-client's process figures: their kind and help.
_PROCESS: Final = {
    family.name: (family.type, family.documentation)
    for family in ProcessCollector(registry=None).collect()
}


def alive(pid: int) -> bool:
    """Whether a process of this pid runs (ours to signal or not)."""
    if not 0 < pid < 2**31:  # no pid (0 and -1 would mean groups to kill)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _histograms(
    name: str,
    help_text: str,
    label: str,
    counts: list[tuple[list[str], float]],
    sums: list[tuple[list[str], float]],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_text, labels=[label])
    bounds = [*map(str, BUCKETS), "+Inf"]
    by_label: dict[str, list[float]] = {}
    for (value, index), count in counts:
        by_label.setdefault(value, [0.0] * len(bounds))[int(index)] = count
    totals = {value: total for (value,), total in sums}
    for value, bucket_counts in sorted(by_label.items()):
        cumulative, buckets = 0.0, []
        for bound, count in zip(bounds, bucket_counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric([value], buckets, totals.get(value, 0.0))
    return family
