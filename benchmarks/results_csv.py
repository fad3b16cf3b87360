"""The side-by-side benchmarks' measurements as CSV rows, for benchmarks/figures.py to draw.

One row per (case, contender, metric): ``source`` (the script), ``case`` (what was run),
``contender``, ``metric`` (``epoch``, ``predict 10k``, ``predict 1``, ``fit``, ...), ``value``
(the median of the rounds), ``unit`` (``s``, ``ms``, ``us``), ``rounds``, ``threads`` and
``cpu``. Appending to an existing file keeps its rows, so one file can hold several scripts'
runs.
"""
import csv
import os
import platform

COLUMNS = ("source", "case", "contender", "metric", "value", "unit", "rounds", "threads", "cpu")


def cpu_name():
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def append_rows(path, rows):
    """Append ``rows`` (dicts with the keys of ``COLUMNS``) to the CSV file ``path``."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({key: row[key] for key in COLUMNS})


def read_rows(path):
    """The rows of a CSV file written by :func:`append_rows`, ``value`` as a float."""
    with open(path, newline="", encoding="utf-8") as f:
        return [dict(row, value=float(row["value"])) for row in csv.DictReader(f)]
