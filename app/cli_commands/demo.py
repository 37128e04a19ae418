"""``crowdlab demo [--labelers N] [--no-train]``: fill an empty instance with demo data."""

from __future__ import annotations

import argparse
import logging
import sys

from app.errors import CrowdlabError


def _labeler_count(text: str) -> int:
    value = int(text)
    if not 5 <= value <= 9:
        raise argparse.ArgumentTypeError("between 5 and 9 (three careful ones must remain)")
    return value


def describe(result, *, base_url: str) -> list[str]:
    """What the demo did and how to log in, as lines of text."""
    lines = [
        f"Demo ready in {result.seconds:.0f} s. Log in at {base_url}/login",
        f"  requester  {result.requester_email}  password: {result.password}",
    ]
    for person in result.labelers:
        state = f"; banned: {person.banned}" if person.banned else ""
        lines.append(
            f"  labeler    {person.email}  password: {result.password}  "
            f"({person.kind}, {person.suites} suites{state})"
        )
    tasks = result.tasks
    lines += [
        f"Project {result.project_id} 'Handwritten digits', pool {result.pool_id}: "
        f"{tasks.get('general', 0)} general + {tasks.get('control', 0)} control tasks, "
        f"{result.suites} suites, {result.answers} answers, ${result.spent_cents / 100:.2f} paid",
    ]
    if result.run_id:
        accuracy = "" if result.accuracy is None else f", {result.accuracy:.1%} correct"
        lines.append(
            f"Dawid-Skene run {result.run_id}: {result.tsv_rows} labels{accuracy} -> "
            f"{result.tsv_path}"
        )
    if result.collection_id:
        lines.append(f"Collection {result.collection_id} from the aggregation")
    if result.published_name:
        accuracy = (
            "" if result.model_accuracy is None else f" (val. accuracy {result.model_accuracy:.1%})"
        )
        lines += [
            f"Model {result.model_id} published as {result.published_name!r}{accuracy}; "
            f"prediction key: {result.prediction_key}",
            f"  crowdlab predict --model {result.published_name} IMAGE.png",
        ]
    if result.loop_pool_id:
        accuracy = "" if result.loop_accuracy is None else f", {result.loop_accuracy:.1%} correct"
        lines.append(
            f"Pool {result.loop_pool_id} (dynamic overlap + the model): {result.loop_tasks} "
            f"tasks, {result.loop_answers} answers bought instead of {result.loop_fixed_answers} "
            f"at fixed overlap{accuracy}, ${result.loop_saved_cents / 100:.2f} saved"
        )
    return lines


def _run(args: argparse.Namespace) -> int:
    from app.cli_commands.aggregate import ProgressBar
    from app.db.engine import session_scope
    from app.services.demo.scenario import run_demo
    from app.settings import get_settings

    if not args.verbose:  # log lines would tear the progress bar apart
        logging.getLogger().setLevel(logging.WARNING)
    settings = get_settings()  # main() made the data directory and migrated
    bar = ProgressBar(sys.stderr, enabled=not args.quiet)
    with session_scope() as session:
        try:
            result = run_demo(
                session,
                labelers=args.labelers,
                train=not args.no_train,
                password=args.password,
                progress=bar,
            )
        except CrowdlabError as exc:
            bar.close()
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            bar.close()
            print("Interrupted; the database holds what was done so far.", file=sys.stderr)
            return 130
    bar.close()
    print("\n".join(describe(result, base_url=settings.base_url)))
    return 0


def register(subparsers) -> None:
    """Add ``crowdlab demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="fill an empty instance with demo data (accounts, pool, answers, model)",
        description=__doc__
        + "\n\nCreates a requester and simulated labelers (careful, random, sloppy and one "
        "too fast, who gets banned), a 'Handwritten digits' pool with control tasks and the "
        "quality preset, a Dawid-Skene aggregation with its TSV, a collection, and a small "
        "trained, published model. Takes about a minute on a laptop CPU.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--labelers", type=_labeler_count, default=6, metavar="N", help="5 to 9 (default 6)"
    )
    parser.add_argument(
        "--no-train", action="store_true", help="stop after the collection (no model)"
    )
    parser.add_argument(
        "--password", default="crowdlab-demo", help="password of every demo account"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)
