"""``crowdlab collection import``, ``train``, ``predict`` (a model or an ONNX file), ``export``."""

from __future__ import annotations

import argparse
import sys
import threading

from app.errors import CrowdlabError


def _owner(session, email: str | None):
    """The requester named by ``--owner``, the only requester, or a new local one."""
    from app.cli_commands.instance import resolve_owner

    return resolve_owner(session, email)


def _fail(exc: CrowdlabError) -> int:
    details = ""
    errors = getattr(exc, "errors", None)
    if errors:
        details = " (" + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")"
    print(f"error: {exc.message}{details}", file=sys.stderr)
    return 2


def _collection_import(args: argparse.Namespace) -> int:
    from app.db.engine import session_scope
    from app.services.ml import collections

    with session_scope() as session:
        try:
            owner = _owner(session, args.owner)
            with open(args.zip, "rb") as handle:
                collection = collections.create_collection_from_zip(
                    session,
                    requester=owner,
                    file=handle,
                    name=args.name,
                    description=args.description,
                    val_fraction=args.val_fraction,
                    seed=args.seed,
                    background=False,
                )
        except OSError as exc:
            print(f"error: cannot read {args.zip}: {exc.strerror}", file=sys.stderr)
            return 2
        except CrowdlabError as exc:
            return _fail(exc)
        counts = collections.class_counts(session, collection_ids=[collection.id])[collection.id]
    total = sum(c["total"] for c in counts.values())
    print(
        f"Created collection {collection.name!r} (id {collection.id}): {total} images, "
        f"{len(counts)} classes"
    )
    for label, c in counts.items():
        print(f"  {label}\ttrain {c['train']}\tval {c['val']}")
    return 0


def _bar(fraction: float, message: str, width: int = 30) -> str:
    filled = int(round(fraction * width))
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {message[:90]:<90}"


def _run_with_progress(job_id: int) -> None:
    """Run the job in a thread here, drawing every progress update it records; Ctrl-C cancels.

    On a terminal the bar is redrawn in place; otherwise each update is its own line.
    """
    from app.db.engine import session_scope
    from app.db.models import Job
    from workers.registry import execute_job

    tty = sys.stderr.isatty()
    shown = ""

    def draw(fraction: float, message: str) -> None:
        nonlocal shown
        line = _bar(fraction, message)
        if line == shown:
            return
        shown = line
        if tty:
            sys.stderr.write(line)
            sys.stderr.flush()
        else:
            print(line.strip(), file=sys.stderr)

    worker = threading.Thread(target=execute_job, args=(job_id, draw), daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(timeout=0.5)
    except KeyboardInterrupt:
        print("\nCancelling…", file=sys.stderr)
        with session_scope() as session:
            job = session.get(Job, job_id)
            job.cancel_requested = True
            session.add(job)
            session.commit()
        worker.join()
    if tty:
        sys.stderr.write("\n")


def _print_metrics(model) -> None:
    metrics = model.metrics
    print(
        f"Model {model.id}: {model.name} ({model.arch}) on {metrics.get('device', '?')}, "
        f"{metrics.get('duration_seconds', 0):.1f} s"
    )
    if model.message:
        print(f"note: {model.message}")
    if not metrics.get("per_class"):
        print("No validation images: no metrics.")
        return

    def pct(value):
        return "-" if value is None else f"{value * 100:.1f}%"

    print(f"validation images: {metrics.get('num_samples')}")
    for key in (
        "accuracy",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "mean_average_precision",
    ):
        print(f"{key}\t{pct(metrics.get(key))}")
    print("class\tprecision\trecall\tf1\tAP\tsupport")
    for row in metrics["per_class"]:
        print(
            f"{row['class']}\t{pct(row['precision'])}\t{pct(row['recall'])}\t{pct(row['f1'])}"
            f"\t{pct(row['average_precision'])}\t{row['support']}"
        )


def _train(args: argparse.Namespace) -> int:
    from app.db.engine import session_scope
    from app.db.models import TrainedModel
    from app.services.ml import collections, train_defaults, trained_models

    settings = {
        "arch": args.arch,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "image_size": args.image_size,
        "augmentation": args.augmentation,
        "pretrained": not args.no_pretrained,
        "device": args.device,
        "seed": args.seed,
    }
    with session_scope() as session:
        try:
            owner = _owner(session, args.owner)
            collection = collections.get_collection_by_name(
                session, requester=owner, name=args.collection
            )
            counts = collections.class_counts(session, collection_ids=[collection.id])
            images = sum(c["train"] for c in counts.get(collection.id, {}).values())
            suggested = train_defaults.suggest_settings(
                images=images, cuda=train_defaults.cuda_available()
            )
            for key in ("arch", "epochs", "image_size"):  # what is not given suits the machine
                if settings[key] is None:
                    settings[key] = suggested[key]
            model = trained_models.start_training(
                session,
                requester=owner,
                collection_id=collection.id,
                settings={k: v for k, v in settings.items() if v is not None},
                dispatch=False,
            )
        except CrowdlabError as exc:
            return _fail(exc)
        model_id, job_id, owner_id = model.id, model.job_id, owner.id
    print(
        f"Training iteration {model.iteration} of {args.collection!r} "
        f"({settings['arch']}, {settings['epochs']} epochs at {settings['image_size']} px, "
        f"model id {model_id})",
        file=sys.stderr,
    )
    _run_with_progress(job_id)
    with session_scope() as session:
        model = session.get(TrainedModel, model_id)
        if model.status != "completed":
            print(f"error: training {model.status}: {model.message}", file=sys.stderr)
            return 1
        _print_metrics(model)
        if args.publish:
            from app.db.models import User

            try:
                _, key = trained_models.publish_model(
                    session,
                    requester=session.get(User, owner_id),
                    model_id=model_id,
                    name=args.publish,
                )
            except CrowdlabError as exc:
                return _fail(exc)
            print(f"Published as {args.publish!r}; prediction key (shown once): {key}")
    return 0


def _predict_onnx(args: argparse.Namespace) -> int:
    """Classify with an exported ONNX file: no server, no database, the same preprocessing."""
    from model.data import BadImageError
    from model.export import ExportError, OnnxPredictor

    try:
        predictor = OnnxPredictor(args.onnx)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        try:
            if predictor.multilabel:
                row = predictor.predict(path, top_k=None)
                print(_tags_line(path, row, predictor.threshold))
                continue
            label, probability = predictor.predict(path, top_k=1)[0]
        except BadImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}\t{label}\t{probability:.4f}")
    return status


def _tags_line(path: str, predictions: list[tuple[str, float]], threshold: float) -> str:
    """A multilabel model's line: the image, then each tag at or above the threshold with its
    probability (``tag:0.9731``, most probable first; ``-`` when none reaches it)."""
    from model.multilabel import tags_above

    tags = tags_above(predictions, threshold)
    return f"{path}\t" + (" ".join(f"{tag}:{p:.4f}" for tag, p in tags) or "-")


def _predict(args: argparse.Namespace) -> int:
    from app.db.engine import session_scope
    from app.services.ml import inference, trained_models

    if args.onnx:
        return _predict_onnx(args)
    status = 0
    with session_scope() as session:  # may create the local owner
        try:
            owner = _owner(session, args.owner)
            model = trained_models.get_published_model(session, requester=owner, name=args.model)
        except CrowdlabError as exc:
            return _fail(exc)
    for path in args.images:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            if inference.is_multilabel(model):
                row = inference.predict_bytes(model, data=data, name=path, top_k=None)
                print(_tags_line(path, row, inference.threshold_of(model)))
                continue
            label, probability = inference.predict_bytes(model, data=data, name=path, top_k=1)[0]
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
            status = 1
            continue
        except CrowdlabError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}\t{label}\t{probability:.4f}")
    return status


def _export(args: argparse.Namespace) -> int:
    from app.db.engine import session_scope
    from app.services.ml import trained_models
    from model.export import ExportError, export_checkpoint, sidecar_path

    with session_scope() as session:  # may create the local owner
        try:
            owner = _owner(session, args.owner)
            model = trained_models.get_published_model(session, requester=owner, name=args.model)
        except CrowdlabError as exc:
            return _fail(exc)
        checkpoint_dir = model.checkpoint_dir
    try:
        written = export_checkpoint(checkpoint_dir, args.format, args.out)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {written} ({written.stat().st_size} bytes) and {sidecar_path(written).name}")
    return 0


def register(sub) -> None:
    """Add the collection, train and predict sub-commands."""
    collection = sub.add_parser("collection", help="image collections")
    collection_sub = collection.add_subparsers(
        dest="collection_command", required=True, metavar="ACTION"
    )
    imp = collection_sub.add_parser("import", help="import a ZIP of class folders")
    imp.add_argument("zip", metavar="DATASET.zip")
    imp.add_argument("--name", required=True)
    imp.add_argument("--description", default="")
    imp.add_argument("--owner", metavar="EMAIL", help="the requester (default: the only one)")
    imp.add_argument("--val-fraction", type=float, default=0.2)
    imp.add_argument("--seed", type=int, default=0)
    imp.set_defaults(func=_collection_import)

    train = sub.add_parser(
        "train",
        help="train a model on a collection (foreground, with a progress bar)",
        description="Train a model. For several GPUs run `torchrun --nproc_per_node=N -m "
        "model.ddp_train` on an exported items file (see model/ddp_train.py).",
    )
    train.add_argument("--collection", required=True, metavar="NAME")
    train.add_argument("--arch", help="default: chosen for this machine and the collection's size")
    train.add_argument("--epochs", type=int)
    train.add_argument("--image-size", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--augmentation", choices=["none", "light", "medium", "heavy"])
    train.add_argument("--no-pretrained", action="store_true", help="train from scratch")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    train.add_argument("--seed", type=int)
    train.add_argument("--publish", metavar="NAME", help="publish the model under this name")
    train.add_argument("--owner", metavar="EMAIL")
    train.set_defaults(func=_train)

    predict = sub.add_parser(
        "predict", help="classify images with a published model or an exported ONNX file"
    )
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="NAME", help="published name (or #<model id>)")
    source.add_argument(
        "--onnx",
        metavar="FILE",
        help="an exported .onnx file (classes from its metadata or FILE.json beside it)",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--owner", metavar="EMAIL")
    predict.set_defaults(func=_predict)

    export = sub.add_parser("export", help="export a published model to ONNX or TorchScript")
    export.add_argument("--model", required=True, metavar="NAME", help="published name")
    export.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    export.add_argument("--out", required=True, metavar="FILE")
    export.add_argument("--owner", metavar="EMAIL")
    export.set_defaults(func=_export)
