"""The ``crowdlab`` command."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.settings import get_settings

    settings = get_settings()  # main() made the data directory and migrated
    from app.cli_commands.serve import process_count, run_server, serve_many

    processes = 1 if args.reload else process_count(args.processes or settings.web_processes)
    web = f"{processes} web processes" if processes > 1 else "1 web process"
    data = settings.data_dir.resolve()
    print(f"Crowdlab on http://{args.host}:{args.port}  (data: {data}, {web})")
    if processes > 1:
        return serve_many(args.host, args.port, processes)
    if args.reload:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            reload=True,
            log_level="info",
        )
        return 0
    config = uvicorn.Config(
        "app.main:create_app", factory=True, host=args.host, port=args.port, log_level="info"
    )
    run_server(config)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from huey.consumer import Consumer

    from app.settings import get_settings
    from workers.process import exit_with_parent
    from workers.queue import get_huey, recover_at_start, watch_leases

    exit_with_parent()  # a worker started by ``crowdlab serve`` ends with it
    huey = get_huey()
    if huey.immediate:
        print("CROWDLAB_JOBS_IMMEDIATE is set: there is nothing to consume.", file=sys.stderr)
        return 2
    recover_at_start()
    watch_leases()
    threads = args.threads or get_settings().worker_threads
    # max_delay: after the queue was unreachable (Redis restarting), look again at least every
    # 2 s rather than backing off to Huey's 10 s, so jobs flow again soon after it is back
    Consumer(huey, workers=threads, worker_type="thread", periodic=True, max_delay=2.0).run()
    return 0


def _db(args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade
    from app.settings import get_settings

    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(revision=args.revision)
    print(f"Database upgraded to {args.revision}: {get_settings().resolved_database_url}")
    return 0


def _create_user(args: argparse.Namespace) -> int:
    from app.db.engine import session_scope
    from app.errors import ValidationFailed
    from app.services.accounts.users import create_user
    from app.settings import get_settings

    if args.languages is not None:
        languages = [c for c in args.languages.replace(";", ",").split(",") if c.strip()]
    elif args.role == "labeler":
        languages = get_settings().default_language_list
    else:
        languages = []
    password = args.password or getpass.getpass("Password: ")
    with session_scope() as session:
        try:
            user = create_user(
                session,
                email=args.email,
                password=password,
                role=args.role,
                name=args.name or "",
                languages=languages,
            )
        except ValidationFailed as exc:
            details = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
            print(f"error: {exc.message} {details}", file=sys.stderr)
            return 2
        spoken = f", languages {','.join(user.languages)}" if user.languages else ""
        print(f"Created {user.role} {user.email} (id {user.id}{spoken})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command; extension modules add theirs."""
    parser = argparse.ArgumentParser(prog="crowdlab", description="Crowdlab labeling marketplace")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="apply migrations and run the web server (and jobs)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--reload", action="store_true")
    serve.add_argument(
        "--processes",
        type=int,
        default=None,
        help="web processes on the port (default: CROWDLAB_WEB_PROCESSES, 0 = one per core)",
    )
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run a background job consumer")
    worker.add_argument(
        "--threads", type=int, default=None, help="default: CROWDLAB_WORKER_THREADS"
    )
    worker.set_defaults(func=_worker)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_upgrade = db_sub.add_parser("upgrade", help="apply migrations")
    db_upgrade.add_argument("revision", nargs="?", default="head")
    db_upgrade.set_defaults(func=_db)

    create = sub.add_parser("create-user", help="create an account")
    create.add_argument("--email", required=True)
    create.add_argument("--role", choices=["requester", "labeler", "admin"], required=True)
    create.add_argument("--name", default="")
    create.add_argument("--password", help="prompted when omitted")
    create.add_argument(
        "--languages",
        metavar="EN,FR",
        help="languages the user speaks (pools' Languages filters); labelers default to "
        "CROWDLAB_DEFAULT_LANGUAGES (EN)",
    )
    create.set_defaults(func=_create_user)

    from app import cli_commands

    cli_commands.register_all(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``crowdlab`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "offline", False):  # offline commands (aggregate) need no queue
        import workers.queue  # noqa: F401  (installs the job queue that services submit to)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if _uses_database(args):
        from app.cli_commands.instance import prepare_instance

        prepare_instance()
    return int(args.func(args) or 0)


def _uses_database(args: argparse.Namespace) -> bool:
    """Whether the command reads or writes the database (then the data directory is made
    and the schema migrated first). ``db upgrade`` migrates to its own revision."""
    if getattr(args, "offline", False) or args.command == "db":
        return False
    return not getattr(args, "onnx", None)  # ``predict --onnx`` needs only the file


if __name__ == "__main__":
    sys.exit(main())
