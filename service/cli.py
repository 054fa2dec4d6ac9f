"""The `segue` command. Sub-commands import what they need when they run, not before."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DATASET_HELP = (
    "synthetic[:TRACKS] (default synthetic:5000) | hetrec:DIR | plays:FILE | sessions:FILE | "
    "plays-at:FILE (a timestamped plays log, .csv or .csv.gz)"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="segue", description="segue: music radio and related artists"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="train the models on a data set and publish a bundle")
    p.add_argument("--dataset", default="synthetic:5000", help=DATASET_HELP)
    p.add_argument(
        "--out", type=Path, required=True, help="bundles directory (DIR/<version>, DIR/current)"
    )
    _build_options(p)
    p.add_argument("--keep", type=int, default=3, help="published versions to keep (default 3)")
    p.add_argument(
        "--no-current", action="store_true",
        help="write DIR/<version> but leave DIR/current as it is (publish it later with "
        "`segue publish`, e.g. after `segue precompute --bundles DIR/<version>`)",
    )  # fmt: skip
    p.add_argument("--version-file", type=Path, help="also write the new version to this file")
    p.add_argument(
        "--variants", type=Path,
        help='JSON file of radio A/B variants for the manifest: {"control": {"share": 1}, '
        '"B": {"share": 1, "weights": {"tracks": {"popularity": 0}}}}',
    )  # fmt: skip
    p.set_defaults(func=_build)

    p = sub.add_parser(
        "publish", help="make a version built with --no-current the current one (or roll back)"
    )
    p.add_argument("--bundles", type=Path, required=True, help="bundles directory")
    p.add_argument("version", help="a version directory in the bundles directory")
    p.add_argument("--keep", type=int, default=3, help="published versions to keep (default 3)")
    p.set_defaults(func=_publish)

    p = sub.add_parser("verify", help="check a bundle (format, checksums, dims, counts)")
    p.add_argument(
        "path", type=Path, help="a bundle directory or a bundles directory with 'current'"
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=_verify)

    p = sub.add_parser("summary", help="print the summary of a bundle")
    p.add_argument("path", type=Path)
    p.set_defaults(func=_summary)

    p = sub.add_parser(
        "evaluate",
        help="next-track hit rate on a time split, or recall at K on held-out users, per source, "
        "ensemble and plain baselines",
    )
    p.add_argument("--dataset", default="synthetic:5000", help=DATASET_HELP)
    p.add_argument(
        "--split", choices=("auto", "time", "users"), default="auto",
        help="time: train before --test-from (or the last --test-weeks), test the next plays "
        "after it; users: hold out users, their top artists/tracks are the queries; auto (the "
        "default): time when every play has a time, else users",
    )  # fmt: skip
    p.add_argument(
        "--test-from", help="time split: first test day, YYYY-MM-DD (or a full ISO time; UTC)"
    )
    p.add_argument(
        "--test-weeks", type=float, default=8.0,
        help="time split without --test-from: the last N weeks are the test (default 8)",
    )  # fmt: skip
    p.add_argument(
        "--max-pairs", type=int, default=None,
        help="time split: evaluate a random sample of this many test plays (default: all)",
    )  # fmt: skip
    p.add_argument("--k", type=int, default=20, help="user split: recall@K (default 20)")
    p.add_argument(
        "--test-fraction", type=float, default=0.2, help="user split: share of users held out"
    )
    p.add_argument(
        "--json",
        type=Path,
        default=Path("var/evaluation.json"),
        help="where to write the JSON results",
    )
    _build_options(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "serve", help="run the HTTP service: N uvicorn workers (forked by gunicorn) over one bundle"
    )
    p.add_argument("--bundles", type=Path, help="bundles directory with 'current' (SEGUE_BUNDLES)")
    p.add_argument("--workers", type=int, help="worker processes (SEGUE_WORKERS, default 1)")
    p.add_argument("--host", help="address to bind (SEGUE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (SEGUE_PORT, default 8000)")
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "precompute",
        help="write the radio neighbours of every track and the related artists of every artist "
        "to the store (resumable)",
    )
    p.add_argument("--bundles", type=Path, help="bundles directory with 'current' (SEGUE_BUNDLES)")
    p.add_argument("--store", help="store URL (SEGUE_STORE, default sqlite:///var/segue.db)")
    p.add_argument("--processes", type=int, default=0, help="compute processes (default: CPUs)")
    p.add_argument("--chunk-size", type=int, default=500, help="rows per chunk (default 500)")
    p.add_argument(
        "--max-chunks", type=int, default=None, help="stop after this many chunks (a partial run)"
    )
    p.set_defaults(func=_precompute)

    p = sub.add_parser("events", help="the station event log")
    events = p.add_subparsers(dest="events_command", required=True)
    e = events.add_parser(
        "export",
        help="write the feedback events out: as a sessions CSV that `segue build --dataset "
        "sessions:FILE` reads (liked and completed plays, one session per station), or raw",
    )
    e.add_argument("--store", help="store URL (SEGUE_STORE, default sqlite:///var/segue.db)")
    e.add_argument(
        "--bundles", type=Path, help="bundles directory, for artists and names (SEGUE_BUNDLES)"
    )
    e.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    e.add_argument(
        "--format", choices=("sessions", "events"), default="sessions",
        help="sessions: session,timestamp,track,artist,user,track_name,artist_name of thumbs_up "
        "and completed events; events: every event with all its fields",
    )  # fmt: skip
    e.set_defaults(func=_events_export)

    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return result


def _settings(args: argparse.Namespace, command: str, flags: tuple[str, ...]) -> Any:
    """Settings from SEGUE_* with the command's flags on top; None (after a message) if bad."""
    import os

    from pydantic import ValidationError

    from service.settings import Settings, describe_error

    for flag in flags:  # flags win over the environment; workers read the same variables
        value = getattr(args, flag)
        if value is not None:
            os.environ[f"SEGUE_{flag.upper()}"] = str(value)
    try:
        return Settings()
    except ValidationError as e:
        print(f"segue {command}: {describe_error(e)}", file=sys.stderr)
        return None


def _precompute(args: argparse.Namespace) -> int:
    from indexes.bundle import BundleError
    from service.precompute import PrecomputeConfig, precompute
    from service.store.base import StoreUnavailable
    from service.store.factory import open_store

    settings = _settings(args, "precompute", ("bundles", "store"))
    if settings is None:
        return 2
    if args.chunk_size < 1 or args.processes < 0:
        print("segue precompute: --chunk-size must be >= 1 and --processes >= 0", file=sys.stderr)
        return 2
    config = PrecomputeConfig(
        processes=args.processes,
        chunk_size=args.chunk_size,
        radio_size=settings.radio_size,
        radio_artist_cap=settings.radio_artist_cap,
        radio_candidates_per_source=settings.radio_candidates_per_source,
        max_chunks=args.max_chunks,
    )
    try:
        store = open_store(settings.store, options=settings.store_options())
    except StoreUnavailable as e:
        print(f"segue precompute: {e}", file=sys.stderr)
        return 1
    try:
        report = precompute(bundles=settings.bundles, store=store, config=config)
    except (BundleError, StoreUnavailable) as e:
        print(
            f"segue precompute: {e} (finished chunks are kept; run it again to resume)",
            file=sys.stderr,
        )
        return 1
    finally:
        store.close()
    print(report.summary())
    return 0


def _events_export(args: argparse.Namespace) -> int:
    from indexes.bundle import BundleError
    from service.events import export_events
    from service.store.base import StoreUnavailable
    from service.store.factory import open_store

    settings = _settings(args, "events export", ("store", "bundles"))
    if settings is None:
        return 2
    try:
        store = open_store(settings.store, options=settings.store_options())
        try:
            counts = export_events(
                store=store, bundles=settings.bundles, out=args.out, fmt=args.format
            )
        finally:
            store.close()
    except (StoreUnavailable, BundleError) as e:
        print(f"segue events export: {e}", file=sys.stderr)
        return 1
    print(
        f"wrote {counts['rows']} rows to {args.out} ({counts['events']} events read, "
        f"{counts['skipped']} left out: {counts['reasons'] or 'none'})"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    import os
    import shutil
    import tempfile

    settings = _settings(args, "serve", ("bundles", "workers", "host", "port"))
    if settings is None:
        return 2
    if settings.metrics_dir is None:
        metrics_dir = Path(tempfile.mkdtemp(prefix="segue-metrics-"))
    else:
        metrics_dir = settings.metrics_dir
        shutil.rmtree(metrics_dir, ignore_errors=True)  # samples of an earlier run
        metrics_dir.mkdir(parents=True)
    os.environ["SEGUE_METRICS_DIR"] = str(metrics_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if (
        not (settings.bundles / "current").exists()
        and not (settings.bundles / "manifest.json").exists()
    ):
        print(
            f"segue serve: no bundle in {settings.bundles} yet; /readyz answers 503 until one is "
            f"published there (segue build --out {settings.bundles})",
            file=sys.stderr,
        )
    _prepare_store(settings)
    from service.server import run

    run(host=settings.host, port=settings.port, workers=settings.workers)
    return 0


def _prepare_store(settings: Any) -> None:
    """Applies the store's schema once, before the workers start (they would race on it)."""
    from service.store.base import StoreUnavailable
    from service.store.factory import open_store

    try:
        store = open_store(settings.store, options=settings.store_options())
        try:
            store.ping()
        finally:
            store.close()
    except StoreUnavailable as e:
        print(
            f"segue serve: {e}; starting anyway: the bundle endpoints answer, the store-backed "
            "ones answer 503 until the store is reachable",
            file=sys.stderr,
        )


def _build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--dims", type=int, default=32, help="vector dimensions of every model (default 32)"
    )
    p.add_argument("--trees", type=int, default=30, help="Annoy trees per index (default 30)")
    p.add_argument(
        "--search-k",
        type=int,
        default=None,
        help="Annoy search_k for every index (default: per index, the smallest reaching recall@10 0.95)",
    )
    p.add_argument(
        "--max-search-k",
        type=int,
        default=5000,
        help="the most search_k tuning may choose when recall@10 0.95 needs more (default 5000)",
    )
    p.add_argument(
        "--validation-days", type=float, default=28.0,
        help="data with play times: the ensemble weights are fitted on the next plays of the "
        "last N days, on models of the data before them; then everything is refit (default 28)",
    )  # fmt: skip
    p.add_argument(
        "--session-gap-minutes", type=float, default=60.0,
        help="plays-at data: a gap longer than this starts a new session (default 60)",
    )  # fmt: skip


def _config(args: argparse.Namespace) -> Any:
    from indexes.pipeline import BuildConfig

    for name in ("dims", "trees", "search_k", "max_search_k", "validation_days"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise SystemExit(f"segue: --{name.replace('_', '-')} must be at least 1")
    variants: dict[str, Any] = {}
    if getattr(args, "variants", None) is not None:
        try:
            variants = json.loads(args.variants.read_text(encoding="utf-8"))
            from service.experiments import variant_specs

            variant_specs({"variants": variants})
        except (OSError, ValueError) as e:
            raise SystemExit(f"segue: --variants {args.variants}: {e}") from None
    return BuildConfig(
        variants=variants,
        dims=args.dims,
        n_trees=args.trees,
        search_k=args.search_k,
        max_search_k=args.max_search_k,
        validation_days=args.validation_days,
        seed=args.seed,
        keep=getattr(args, "keep", 3),
    )


def _load(spec: str, seed: int, session_gap_minutes: float = 60.0) -> Any:
    from indexes.datasets.registry import load_dataset
    from indexes.progress import log, stage

    try:
        with stage(f"load {spec}"):
            data = load_dataset(spec, seed=seed, session_gap_minutes=session_gap_minutes)
    except ValueError as e:
        print(f"segue: {e}", file=sys.stderr)
        return None
    if data.report.files:
        log("load report:\n" + data.report.summary())
    if data.items.n_tracks == 0 or data.interactions.nnz == 0:
        print(f"segue: {spec}: no usable rows; nothing to build", file=sys.stderr)
        return None
    return data


def _build(args: argparse.Namespace) -> int:
    from indexes.pipeline import build_bundle

    config = _config(args)
    data = _load(args.dataset, args.seed, args.session_gap_minutes)
    if data is None:
        return 2
    result = build_bundle(data, out=args.out, config=config, make_current=not args.no_current)
    if args.version_file is not None:
        args.version_file.write_text(result.version + "\n")
    print(_describe(result.path, result.manifest))
    if args.no_current:
        print(
            f"built {result.version} in {result.timings['total']:.1f}s -> {result.path} "
            f"(not current; `segue publish --bundles {args.out} {result.version}` makes it so)"
        )
    else:
        print(f"built {result.version} in {result.timings['total']:.1f}s -> {args.out / 'current'}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from indexes.bundle import BundleError, set_current, verify

    if args.keep < 1:
        print("segue publish: --keep must be >= 1", file=sys.stderr)
        return 2
    try:
        verify(args.bundles / args.version).close()  # never point `current` at a bad bundle
        path = set_current(root=args.bundles, version=args.version, keep=args.keep)
    except (BundleError, OSError) as e:
        print(f"segue publish: {e}", file=sys.stderr)
        return 1
    print(f"published {args.version}: {args.bundles / 'current'} -> {path.name}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from indexes.bundle import BundleError, verify

    try:
        bundle = verify(args.path)
    except BundleError as e:
        print(f"segue verify: {e}", file=sys.stderr)
        return 1
    with bundle:
        if not args.quiet:
            print(
                f"OK {bundle.path}: bundle {bundle.version}, {len(bundle.manifest['files'])} files, "
                f"{len(bundle.indexes)} indexes, checksums match"
            )
    return 0


def _summary(args: argparse.Namespace) -> int:
    from indexes.bundle import BundleError, read_manifest, resolve_current

    try:
        path = resolve_current(args.path)
        manifest = read_manifest(path)
    except BundleError as e:
        print(f"segue summary: {e}", file=sys.stderr)
        return 1
    print(_describe(path, manifest))
    return 0


def _describe(path: Path, manifest: dict[str, Any]) -> str:
    src = manifest["source"]
    size = sum(int(f["size"]) for f in manifest["files"].values())
    lines = [
        f"bundle {manifest['bundle_version']} at {path} (format {manifest['format_version']}, {size / 1e6:.1f} MB)",
        f"source {src['name']}: {src['tracks']} tracks, {src['artists']} artists, {src['users']} users, "
        f"{src['interactions']} user-track pairs, {src['sequences']} sequences, {src['bad_rows']} bad rows",
    ]
    t = manifest.get("time")
    if t:
        lines.append(
            f"time: plays {t['first_play']} .. {t['last_play']}, as of {t['as_of']} "
            f"(recency half-lives {', '.join(f'{h:g}' for h in t['half_lives_days'])} days)"
        )
    for entity, spec in (manifest.get("signals") or {}).items():
        names = ["cooc", *spec.get("tables", {}), "popularity", *spec.get("popularity", [])]
        lines.append(f"signals {entity}: {', '.join(names)}")
    lines.append("indexes:")
    for ix in manifest["indexes"]:
        lines.append(
            f"  {ix['model']:<10} {ix['entity']:<8} {ix['n_items']:>9} items  {ix['dims']:>4} dims  "
            f"{ix['metric']:<8} {ix['n_trees']:>3} trees  search_k {ix.get('search_k', -1)}"
            + (
                f"  recall@10 {ix['recall_at_10']} (below the {ix['recall_target']} target)"
                if ix.get("recall_target_met") is False
                else ""
            )
        )
    lines.append("ensemble weights:")
    for entity, e in manifest["ensemble"].items():
        w = ", ".join(f"{n}={v:.3g}" for n, v in zip(e["features"], e["weights"], strict=True))
        lines.append(
            f"  {entity:<8} {w} (bias {e.get('bias', 0.0):.3g}, {'fitted' if e.get('fitted') else 'default'})"
        )
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    from indexes.evaluate import EvalConfig, evaluate, format_table
    from indexes.evaluate_time import TimeEvalConfig, evaluate_time, format_time_table
    from indexes.splits import time_splittable

    config = _config(args)
    test_from = None
    if args.test_from is not None:
        test_from = _parse_day(args.test_from)
        if test_from is None:
            print(f"segue: --test-from {args.test_from!r} is not a date", file=sys.stderr)
            return 2
    if args.max_pairs is not None and args.max_pairs < 1:
        print("segue: --max-pairs must be at least 1", file=sys.stderr)
        return 2
    data = _load(args.dataset, args.seed, args.session_gap_minutes)
    if data is None:
        return 2
    split = args.split
    if split == "auto":
        split = "time" if time_splittable(data) else "users"
    try:
        if split == "time":
            results = evaluate_time(
                data,
                build=config,
                config=TimeEvalConfig(
                    test_from=test_from,
                    test_weeks=args.test_weeks,
                    max_pairs=args.max_pairs,
                    seed=args.seed,
                ),
            )
            table = format_time_table(results)
        else:
            results = evaluate(
                data,
                build=config,
                config=EvalConfig(k=args.k, test_fraction=args.test_fraction, by_users=True),
            )
            table = format_table(results)
    except ValueError as e:
        print(f"segue: {e}", file=sys.stderr)
        return 2
    print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


def _parse_day(text: str) -> float | None:
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


if __name__ == "__main__":
    sys.exit(main())
