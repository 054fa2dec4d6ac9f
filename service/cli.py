"""The `segue` command.

Options take their defaults from what they configure (`Settings`, the pipeline's `BuildConfig`,
the evaluation configs, the plays-at loader), so the help shows the real ones and there is no
second copy of them here; everything else a sub-command needs is imported when it runs.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import ValidationError

from service.settings import Settings, describe_error

if TYPE_CHECKING:
    from indexes.bundle.layout import Manifest
    from indexes.config import BuildConfig
    from indexes.datasets.shape import Dataset
    from indexes.spark.engine import SparkEngine
    from service.store.base import Store

DEFAULT_DATASET = "synthetic:5000"
DATASET_HELP = (
    f"synthetic[:TRACKS] (default {DEFAULT_DATASET}) | hetrec:DIR | plays:FILE | sessions:FILE | "
    "plays-at:FILE (a timestamped plays log, .csv or .csv.gz)"
)
# the BuildConfig field each build option sets (all but --seed must be at least 1)
BUILD_FLAGS = {
    "seed": "--seed",
    "dims": "--dims",
    "n_trees": "--trees",
    "search_k": "--search-k",
    "max_search_k": "--max-search-k",
    "validation_days": "--validation-days",
    "threads": "--threads",
}

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="segue", description="segue: music radio and related artists")
    commands = p.add_subparsers(dest="command", required=True)
    for add in (_add_build, _add_publish, _add_verify, _add_summary, _add_evaluate, _add_serve,
                _add_precompute, _add_events, _add_token):  # fmt: skip
        add(commands)
    return p


# -- the parsers --------------------------------------------------------------------------------


def _add_build(commands: Commands) -> None:
    p = commands.add_parser("build", help="train the models on a data set and publish a bundle")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help=DATASET_HELP)
    p.add_argument(
        "--out", type=Path, required=True, help="bundles directory (DIR/<version>, DIR/current)"
    )
    _build_options(p)
    _keep_option(p)
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


def _add_publish(commands: Commands) -> None:
    p = commands.add_parser(
        "publish", help="make a version built with --no-current the current one (or roll back)"
    )
    p.add_argument("--bundles", type=Path, required=True, help="bundles directory")
    p.add_argument("version", help="a version directory in the bundles directory")
    _keep_option(p)
    p.set_defaults(func=_publish)


def _add_verify(commands: Commands) -> None:
    p = commands.add_parser("verify", help="check a bundle (format, checksums, dims, counts)")
    p.add_argument(
        "path", type=Path, help="a bundle directory or a bundles directory with 'current'"
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=_verify)


def _add_summary(commands: Commands) -> None:
    p = commands.add_parser("summary", help="print the summary of a bundle")
    p.add_argument("path", type=Path)
    p.set_defaults(func=_summary)


def _add_evaluate(commands: Commands) -> None:
    from indexes.evaluate import EvalConfig
    from indexes.evaluate_time import TimeEvalConfig

    users, time = EvalConfig(), TimeEvalConfig()
    p = commands.add_parser(
        "evaluate",
        help="next-track hit rate on a time split, or recall at K on held-out users, per source, "
        "ensemble and plain baselines",
    )
    p.add_argument("--dataset", default=DEFAULT_DATASET, help=DATASET_HELP)
    p.add_argument(
        "--split", choices=("auto", "time", "users"), default="auto",
        help="time: train before --test-from (or the last --test-weeks), test the next plays "
        "after it; users: hold out users, their top artists/tracks are the queries; auto (the "
        "default): time when every play has a time, else users",
    )  # fmt: skip
    p.add_argument(
        "--test-from", help="time split: first test day, YYYY-MM-DD (or a full ISO time; UTC)"
    )
    for flag, kind, default, text in (
        ("--test-weeks", float, time.test_weeks,
         "time split without --test-from: the last N weeks are the test (default %(default)s)"),
        ("--max-pairs", int, time.max_pairs,
         "time split: evaluate a random sample of this many test plays (default: all)"),
        ("--k", int, users.k, "user split: recall@K (default %(default)s)"),
        ("--test-fraction", float, users.test_fraction,
         "user split: share of users held out (default %(default)s)"),
        ("--json", Path, Path("var/evaluation.json"),
         "where to write the JSON results (default %(default)s)"),
    ):  # fmt: skip
        p.add_argument(flag, type=kind, default=default, help=text)
    _build_options(p)
    p.set_defaults(func=_evaluate)


def _add_serve(commands: Commands) -> None:
    p = commands.add_parser(
        "serve", help="run the HTTP service: N uvicorn workers (forked by gunicorn) over one bundle"
    )
    _setting_option(p, "bundles", type=Path, help="bundles directory with 'current'")
    _setting_option(p, "workers", type=int, help="worker processes")
    _setting_option(p, "host", help="address to bind")
    _setting_option(p, "port", type=int, help="port")
    p.set_defaults(func=_serve)


def _add_precompute(commands: Commands) -> None:
    run = Settings.defaults().precompute_config()
    p = commands.add_parser(
        "precompute",
        help="write the radio neighbours of every track and the related artists of every artist "
        "to the store (resumable)",
    )
    _setting_option(p, "bundles", type=Path, help="bundles directory with 'current'")
    _setting_option(p, "store", help="store URL")
    for flag, default, text in (
        ("--processes", run.processes, "compute processes (default %(default)s: one per CPU)"),
        ("--chunk-size", run.chunk_size, "rows per chunk (default %(default)s)"),
        ("--max-chunks", run.max_chunks, "stop after this many chunks (a partial run)"),
    ):
        p.add_argument(flag, type=int, default=default, help=text)
    _engine_options(p, "local: --processes worker processes here; spark: the chunks as Spark "
                    "tasks, each Python worker maps the bundle once and writes its lists")  # fmt: skip
    p.add_argument(
        "--ship-bundle", action="store_true",
        help="--engine spark: send the bundle to the executors with SparkFiles (default: they "
        "read it at the same path, a shared volume)",
    )  # fmt: skip
    p.set_defaults(func=_precompute)


def _add_events(commands: Commands) -> None:
    p = commands.add_parser("events", help="the station event log")
    events = p.add_subparsers(dest="events_command", required=True)
    e = events.add_parser(
        "export",
        help="write the feedback events out: as a sessions CSV that `segue build --dataset "
        "sessions:FILE` reads (liked and completed plays, one session per station), or raw",
    )
    _setting_option(e, "store", help="store URL")
    _setting_option(e, "bundles", type=Path, help="bundles directory, for artists and names")
    e.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    e.add_argument(
        "--format", choices=("sessions", "events"), default="sessions",
        help="sessions: session,timestamp,track,artist,user,track_name,artist_name of thumbs_up "
        "and completed events; events: every event with all its fields",
    )  # fmt: skip
    e.set_defaults(func=_events_export)


def _add_token(commands: Commands) -> None:
    p = commands.add_parser(
        "token",
        help="print a bearer token (JWT) signed with the first key of SEGUE_AUTH_SECRETS (or "
        "_FILE), for SEGUE_AUTH_AUDIENCE and SEGUE_AUTH_ISSUER",
    )
    p.add_argument("--user", required=True, help="the user id (the token's sub)")
    p.add_argument(
        "--scope", nargs="+", default=["catalog:read", "listen"],
        help="scopes: catalog:read, listen, admin (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--ttl", type=int, default=3600, help="seconds the token is valid (default %(default)s)"
    )
    p.set_defaults(func=_token)


def _setting_option(
    p: argparse.ArgumentParser, name: str, *, help: str, type: Callable[[str], Any] = str
) -> None:
    """--NAME for the setting NAME: given, it wins over SEGUE_NAME (see `_settings`)."""
    default = Settings.model_fields[name].default
    p.add_argument(
        f"--{name}",
        type=type,
        default=None,
        help=f"{help} (SEGUE_{name.upper()}, default {default})",
    )


def _keep_option(p: argparse.ArgumentParser) -> None:
    from indexes.config import BuildConfig

    p.add_argument(
        "--keep", type=int, default=BuildConfig().keep,
        help="published versions to keep (default %(default)s)",
    )  # fmt: skip


def _build_options(p: argparse.ArgumentParser) -> None:
    """The options of a build, at BuildConfig's defaults (and the plays-at loader's)."""
    from indexes.config import BuildConfig

    d = BuildConfig()
    recall = f"recall@10 {d.target_recall:g}"

    def option(name: str, kind: type, help: str) -> None:
        flag = BUILD_FLAGS[name]
        metavar = flag.removeprefix("--").replace("-", "_").upper()
        p.add_argument(
            flag, dest=name, metavar=metavar, type=kind, default=getattr(d, name), help=help
        )

    option(
        "seed", int, "random seed of the data (synthetic), models and splits (default %(default)s)"
    )
    option("dims", int, "vector dimensions of every model (default %(default)s)")
    option("n_trees", int, "Annoy trees per index (default %(default)s)")
    option("search_k", int, f"Annoy search_k for every index (default: per index, the smallest "
           f"reaching {recall})")  # fmt: skip
    option("max_search_k", int, f"the most search_k tuning may choose when {recall} needs more "
           "(default %(default)s)")  # fmt: skip
    option("validation_days", float, "data with play times: the ensemble weights are fitted on "
           "the next plays of the last N days, on models of the data before them; then "
           "everything is refit (default %(default)s)")  # fmt: skip
    option("threads", int, "word2vec training threads; with 1 the same data and seed give the "
           "same bundle (default %(default)s)")  # fmt: skip
    p.add_argument(
        "--session-gap-minutes", type=float, default=_plays_at_session_gap(),
        help="plays-at data: a gap longer than this starts a new session (default %(default)s)",
    )  # fmt: skip
    _engine_options(p, "local: implicit, gensim and numpy in this process; spark: ALS, "
                    "word2vec and the signals as Spark jobs (pip install 'segue[spark]')")  # fmt: skip


def _engine_options(p: argparse.ArgumentParser, text: str) -> None:
    """--engine and --spark-master (the Spark settings come from SEGUE_SPARK_*)."""
    p.add_argument(
        "--engine", choices=("local", "spark"), default="local",
        help=f"{text} (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--spark-master", default=None,
        help="--engine spark: the Spark master, e.g. local[2], spark://HOST:7077, "
        f"k8s://https://HOST (default: spark-submit's, else SEGUE_SPARK_MASTER, "
        f"{Settings.model_fields['spark_master'].default})",
    )  # fmt: skip


def _plays_at_session_gap() -> float:
    from indexes.datasets.plays_at import load_plays_at

    gap: float = inspect.signature(load_plays_at).parameters["session_gap_minutes"].default
    return gap


# -- settings and the store ---------------------------------------------------------------------


def _settings(args: argparse.Namespace, command: str, names: tuple[str, ...]) -> Settings | None:
    """Settings from SEGUE_* with the command's options on top (an option given wins); None,
    after a message, if a value is bad."""
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    try:
        return Settings(**given)
    except ValidationError as e:
        print(f"segue {command}: {describe_error(e)}", file=sys.stderr)
        return None


def _signing_key(command: str) -> bytes | Literal[False] | None:
    """SEGUE_BUNDLE_SIGNING_KEY (None: unset); False, after a message, if a setting is bad."""
    try:
        return Settings().signing_key()
    except ValidationError as e:
        print(f"segue {command}: {describe_error(e)}", file=sys.stderr)
        return False


def _open_store(settings: Settings) -> Store:
    from service.store.factory import open_store

    return open_store(settings.store, options=settings.store_options())


def _prepare_store(settings: Settings) -> None:
    """Applies the store's schema once, before the workers start (they would race on it)."""
    from service.store.base import StoreUnavailable

    try:
        store = _open_store(settings)
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


# -- the commands -------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args, "serve", ("bundles", "workers", "host", "port"))
    if settings is None:
        return 2
    settings = settings.model_copy(update={"metrics_dir": _metrics_dir(settings.metrics_dir)})
    if (
        not (settings.bundles / "current").exists()
        and not (settings.bundles / "manifest.json").exists()
    ):
        print(
            f"segue serve: no bundle in {settings.bundles} yet; /readyz answers 503 until one is "
            f"published there (segue build --out {settings.bundles})",
            file=sys.stderr,
        )
    if settings.auth == "off":
        print("segue serve: SEGUE_AUTH=off: no authentication, every caller may do anything",
              file=sys.stderr)  # fmt: skip
    else:
        from service.auth import AuthConfigError, load_keys

        try:
            load_keys(settings)
        except AuthConfigError as e:
            print(f"segue serve: {e}", file=sys.stderr)
            return 2
    _prepare_store(settings)
    from service.server import run

    run(settings)  # the workers get these settings as they are (see service/server.py)
    return 0


def _metrics_dir(configured: Path | None) -> Path:
    """The Prometheus multiprocess directory, empty: the one configured or a new one."""
    import shutil
    import tempfile

    if configured is None:
        return Path(tempfile.mkdtemp(prefix="segue-metrics-"))
    shutil.rmtree(configured, ignore_errors=True)  # samples of an earlier run
    configured.mkdir(parents=True)
    return configured


def _precompute(args: argparse.Namespace) -> int:
    from indexes.bundle import BundleError
    from service.precompute import precompute
    from service.store.base import StoreUnavailable

    settings = _settings(args, "precompute", ("bundles", "store"))
    if settings is None:
        return 2
    if args.chunk_size < 1 or args.processes < 0:
        print("segue precompute: --chunk-size must be >= 1 and --processes >= 0", file=sys.stderr)
        return 2
    config = settings.precompute_config(
        processes=args.processes, chunk_size=args.chunk_size, max_chunks=args.max_chunks
    )
    try:
        store = _open_store(settings)
    except StoreUnavailable as e:
        print(f"segue precompute: {e}", file=sys.stderr)
        return 1
    try:
        if args.engine == "spark":
            from indexes.spark.precompute import spark_precompute

            engine = _spark_engine(args, settings)
            try:
                report = spark_precompute(
                    engine.session, bundles=settings.bundles, store=store, settings=settings,
                    config=config, ship_bundle=args.ship_bundle,
                )  # fmt: skip
            finally:
                engine.stop()
        else:
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

    settings = _settings(args, "events export", ("store", "bundles"))
    if settings is None:
        return 2
    try:
        store = _open_store(settings)
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


def _token(args: argparse.Namespace) -> int:
    from service.auth import HS256, SCOPES, AuthConfigError, load_keys, mint

    settings = _settings(args, "token", ())
    if settings is None:
        return 2
    scopes = [s for given in args.scope for s in given.split()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not 1 <= args.ttl <= 366 * 24 * 3600:
        print(f"segue token: scopes are {', '.join(SCOPES)} (not {unknown}); --ttl 1 s to a year",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        keys = [k for k in load_keys(settings) if k.algorithm == HS256]
    except AuthConfigError as e:
        print(f"segue token: {e}", file=sys.stderr)
        return 2
    if not keys:
        print("segue token: no HS256 key to sign with (SEGUE_AUTH_SECRETS or _FILE); the "
              "identity provider of SEGUE_AUTH_JWKS_FILE issues those tokens", file=sys.stderr)  # fmt: skip
        return 2
    print(mint(keys[0], subject=args.user, scopes=scopes, ttl_seconds=args.ttl,
               audience=settings.auth_audience, issuer=settings.auth_issuer))  # fmt: skip
    return 0


def _config(args: argparse.Namespace) -> BuildConfig:
    """The BuildConfig of the build options (and `--variants`, `--keep` where the command has
    them); SystemExit with a message for a bad one."""
    from indexes.config import BuildConfig

    values = {name: getattr(args, name) for name in BUILD_FLAGS}
    for name, value in values.items():
        if name != "seed" and value is not None and value < 1:
            raise SystemExit(f"segue: {BUILD_FLAGS[name]} must be at least 1")
    if getattr(args, "keep", None) is not None:
        values["keep"] = args.keep
    return BuildConfig(variants=_variants(getattr(args, "variants", None)), **values)


def _variants(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        variants: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        from service.experiments import variant_specs

        variant_specs({"variants": variants})
    except (OSError, ValueError) as e:
        raise SystemExit(f"segue: --variants {path}: {e}") from None
    return variants


def _load(spec: str, *, seed: int, session_gap_minutes: float) -> Dataset | None:
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


def _engine(args: argparse.Namespace) -> SparkEngine | None:
    """The engine of --engine (None: the local one)."""
    if args.engine == "local":
        return None
    settings = _settings(args, args.command, ())
    if settings is None:
        raise SystemExit(2)
    return _spark_engine(args, settings)


def _spark_engine(args: argparse.Namespace, settings: Settings) -> SparkEngine:
    from indexes.spark.engine import SparkEngine  # pyspark: only for --engine spark

    return SparkEngine(
        master=args.spark_master, default_master=settings.spark_master,
        conf=settings.spark_conf, word2vec_partitions=settings.spark_word2vec_partitions,
    )  # fmt: skip


def _build(args: argparse.Namespace) -> int:
    from indexes.bundle.layout import Manifest
    from indexes.pipeline import build_bundle

    config = _config(args)
    key = _signing_key("build")
    if key is False:
        return 2
    data = _load(args.dataset, seed=args.seed, session_gap_minutes=args.session_gap_minutes)
    if data is None:
        return 2
    engine = _engine(args)
    try:
        result = build_bundle(
            data, out=args.out, config=config, make_current=not args.no_current,
            signing_key=key, engine=engine,
        )  # fmt: skip
    finally:
        if engine is not None:
            engine.stop()
    if args.version_file is not None:
        args.version_file.write_text(result.version + "\n")
    print(_describe(result.path, Manifest.from_json(result.manifest)))
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
    key = _signing_key("publish")
    if key is False:
        return 2
    try:
        # never point `current` at a bundle the service would refuse
        verify(args.bundles / args.version, signing_key=key).close()
        path = set_current(root=args.bundles, version=args.version, keep=args.keep)
    except (BundleError, OSError) as e:
        print(f"segue publish: {e}", file=sys.stderr)
        return 1
    print(f"published {args.version}: {args.bundles / 'current'} -> {path.name}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from indexes.bundle import BundleError, verify

    key = _signing_key("verify")
    if key is False:
        return 2
    try:
        bundle = verify(args.path, signing_key=key)
    except BundleError as e:
        print(f"segue verify: {e}", file=sys.stderr)
        return 1
    with bundle:
        if not args.quiet:
            print(
                f"OK {bundle.path}: bundle {bundle.version}, {len(bundle.typed_manifest.files)} files, "
                f"{len(bundle.indexes)} indexes, checksums, seal"
                + (" (signed with the configured key)" if key else "")
                + " and every index node match"
            )
    return 0


def _summary(args: argparse.Namespace) -> int:
    from indexes.bundle import BundleError, read_typed_manifest, resolve_current

    try:
        path = resolve_current(args.path)
        manifest = read_typed_manifest(path)
    except BundleError as e:
        print(f"segue summary: {e}", file=sys.stderr)
        return 1
    print(_describe(path, manifest))
    return 0


def _describe(path: Path, manifest: Manifest) -> str:
    src = manifest.source
    size = sum(f.size for f in manifest.files.values())
    lines = [
        f"bundle {manifest.bundle_version} at {path} (format {manifest.format_version}, {size / 1e6:.1f} MB)",
        f"source {src['name']}: {src['tracks']} tracks, {src['artists']} artists, {src['users']} users, "
        f"{src['interactions']} user-track pairs, {src['sequences']} sequences, {src['bad_rows']} bad rows",
    ]
    t = manifest.time
    if t:
        lines.append(
            f"time: plays {t.first_play} .. {t.last_play}, as of {t.as_of} "
            f"(recency half-lives {', '.join(f'{h:g}' for h in t.half_lives_days)} days)"
        )
    for entity, spec in manifest.signals.items():
        names = ["cooc", *spec.tables, "popularity", *spec.popularity]
        lines.append(f"signals {entity}: {', '.join(names)}")
    lines.append("indexes:")
    for ix in manifest.indexes:
        tuning = ix.tuning
        lines.append(
            f"  {ix.model:<10} {ix.entity:<8} {ix.n_items:>9} items  {ix.dims:>4} dims  "
            f"{ix.metric:<8} {ix.n_trees:>3} trees  search_k {tuning.search_k}"
            + (
                f"  recall@10 {tuning.recall_at_10} (below the {tuning.recall_target} target)"
                if tuning.recall_target_met is False
                else ""
            )
        )
    lines.append("ensemble weights:")
    for entity, e in manifest.ensemble.items():
        w = ", ".join(f"{n}={v:.3g}" for n, v in zip(e["features"], e["weights"], strict=True))
        lines.append(
            f"  {entity:<8} {w} (bias {e.get('bias', 0.0):.3g}, {'fitted' if e.get('fitted') else 'default'})"
        )
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    from indexes.splits import time_splittable

    build = _config(args)
    test_from = None if args.test_from is None else _parse_day(args.test_from)
    if args.test_from is not None and test_from is None:
        print(f"segue: --test-from {args.test_from!r} is not a date", file=sys.stderr)
        return 2
    if args.max_pairs is not None and args.max_pairs < 1:
        print("segue: --max-pairs must be at least 1", file=sys.stderr)
        return 2
    data = _load(args.dataset, seed=args.seed, session_gap_minutes=args.session_gap_minutes)
    if data is None:
        return 2
    split = args.split
    if split == "auto":
        split = "time" if time_splittable(data) else "users"
    engine = _engine(args)
    try:
        if split == "time":
            results, table = _evaluate_time(
                data, build=build, args=args, test_from=test_from, engine=engine
            )
        else:
            results, table = _evaluate_users(data, build=build, args=args, engine=engine)
    except ValueError as e:
        print(f"segue: {e}", file=sys.stderr)
        return 2
    finally:
        if engine is not None:
            engine.stop()
    print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


def _evaluate_time(
    data: Dataset,
    *,
    build: BuildConfig,
    args: argparse.Namespace,
    test_from: float | None,
    engine: SparkEngine | None,
) -> tuple[dict[str, Any], str]:
    from indexes.evaluate_time import TimeEvalConfig, evaluate_time, format_time_table

    config = TimeEvalConfig(
        test_from=test_from, test_weeks=args.test_weeks, max_pairs=args.max_pairs, seed=args.seed
    )
    results = evaluate_time(data, build=build, config=config, engine=engine)
    return results, format_time_table(results)


def _evaluate_users(
    data: Dataset, *, build: BuildConfig, args: argparse.Namespace, engine: SparkEngine | None
) -> tuple[dict[str, Any], str]:
    from indexes.evaluate import EvalConfig, evaluate, format_table

    config = EvalConfig(k=args.k, test_fraction=args.test_fraction, by_users=True)
    results = evaluate(data, build=build, config=config, engine=engine)
    return results, format_table(results)


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
