"""``crowdlab aggregate RESULTS.tsv --method ds -o aggregated.tsv``: offline aggregation.

Reads a Toloka-style raw results TSV (``INPUT:*``, ``OUTPUT:*``, ``ASSIGNMENT:worker_id``,
optional ``GOLDEN:*`` and ``ASSIGNMENT:status``), aggregates with one method and writes
``INPUT:*  OUTPUT:<field>  CONFIDENCE:<field>``. Needs no database and no server.
Exit codes: 0 done, 2 bad input (the message names the row and column), 1 anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import TextIO

METHOD_HELP = (
    "auto (default: chooses among the methods on the control tasks and calibrates the "
    "confidence), ds (Dawid-Skene), bds (Bayesian DS), mv, one_coin_ds, glad, wawa"
)


class ProgressBar:
    """A one-line text progress bar on a stream (redrawn at most ten times a second)."""

    def __init__(self, stream: TextIO, width: int = 30, enabled: bool = True) -> None:
        self.stream, self.width, self.enabled = stream, width, enabled
        self._last = 0.0
        self._drawn = False

    def __call__(self, fraction: float, message: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < 0.1:
            return
        self._last = now
        fraction = max(0.0, min(1.0, fraction))
        filled = round(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {fraction * 100:5.1f}% {message}"[:110]
        self.stream.write("\r" + line.ljust(110))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _run(args: argparse.Namespace) -> int:
    from aggregation import TsvError, get_method
    from aggregation.cli import aggregate_file

    err = sys.stderr
    source = args.results
    try:
        method = get_method(args.method)
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return 2
    if not os.path.isfile(source):
        print(f"error: {source}: no such file", file=err)
        return 2
    if os.path.abspath(args.output) == os.path.abspath(source):
        print("error: the output would overwrite the input; choose another -o", file=err)
        return 2
    params = {}
    if args.n_iter:
        if "n_iter" not in {f.name for f in dataclasses.fields(method)}:
            print(f"error: --n-iter does not apply to {args.method}", file=err)
            return 2
        params["n_iter"] = args.n_iter
    bar = ProgressBar(err, enabled=not args.quiet)
    partial = f"{args.output}.partial"
    try:
        summary = aggregate_file(
            source,
            partial,
            method=args.method,
            on_progress=lambda f, m: bar(f, m.replace(partial, args.output)),
            output_field=args.field,
            **params,
        )
        os.replace(partial, args.output)
    except TsvError as exc:
        bar.close()
        print(f"error: {source}: {exc}", file=err)
        return 2
    except ValueError as exc:
        bar.close()
        print(f"error: {source}: {exc}", file=err)
        return 2
    except OSError as exc:
        bar.close()
        print(f"error: {exc}", file=err)
        return 2
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    bar.close()
    if not args.quiet:
        confidence = summary.get("mean_confidence")
        mean = "—" if confidence is None else f"{confidence:.3f}"
        used = summary["method_used"]
        method = used if used == summary["method"] else f"{summary['method']} → {used}"
        if summary["calibrated"]:
            ece = summary["heldout_ece"]
            calibration = f"confidence calibrated on control tasks (cross-fitted ECE {ece:.3f})"
        else:
            calibration = (
                "confidence UNCALIBRATED (no or too few GOLDEN control tasks; "
                "it is the model's own posterior)"
            )
        print(
            f"method {method}; {summary['tasks']} tasks, {summary['answers']} answers, "
            f"{summary['workers']} workers, {summary['known']} known; mean confidence {mean}; "
            f"{calibration}; {summary['seconds']:.2f} s → {args.output}",
            file=err,
        )
    return 0


def register(subparsers) -> None:
    """Add ``crowdlab aggregate``."""
    parser = subparsers.add_parser(
        "aggregate",
        help="aggregate a Toloka-style results TSV offline (no database)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", metavar="RESULTS.tsv", help="raw assignment results TSV")
    parser.add_argument("--method", "-m", default="auto", help=METHOD_HELP)
    parser.add_argument(
        "-o", "--output", default="aggregated.tsv", help="output TSV (default aggregated.tsv)"
    )
    parser.add_argument("--field", default="result", help="OUTPUT field to aggregate")
    parser.add_argument("--n-iter", type=_positive_int, help="EM iteration cap")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=_run, offline=True)
