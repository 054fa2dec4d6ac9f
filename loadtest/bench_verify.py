"""Benchmark: what verifying a bundle before the workers map it costs.

    python loadtest/bench_verify.py BUNDLE_DIR [--repeat 3]

Times, on an existing bundle (a version directory or a root with `current`), each part of the
verification a host runs once per new version (`indexes.bundle.verified.verify_once`), and what
every worker does after it:
- `open`: `open_bundle` without checksums or tree checks (each worker, after the verdict);
- `sha256`: the sha256 of every file the manifest lists (SEGUE_VERIFY_CHECKSUMS), MB/s;
- `trees`: `check_annoy_tree` on every Annoy index, MB/s of index files;
- `verify_once_cold`: the whole verification with a fresh marker directory (the first worker);
- `verify_once_warm`: the same with the marker written (every other worker).
Each figure is the median of `--repeat` runs, after one untimed pass that pages the files in
(a bundle just published is in the page cache: the pipeline wrote it, or the init container's
`segue verify` read it). Figures go to stdout as `key=value` lines. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from indexes.bundle import open_bundle, read_typed_manifest, resolve_current, sha256_file
from indexes.bundle.verified import verify_once
from indexes.bundle.verify import check_annoy_tree


def timed(run: Callable[[], object], *, repeat: int) -> float:
    run()  # pages the files in
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    directory = resolve_current(args.bundle)
    manifest = read_typed_manifest(directory)
    total = sum(f.size for f in manifest.files.values())
    ann = sum(manifest.files[e.files.index].size for e in manifest.indexes)
    print(f"bundle={directory} tracks={manifest.entities['tracks']} files={len(manifest.files)} "
          f"mb={total / 1e6:.1f} ann_mb={ann / 1e6:.1f}")  # fmt: skip

    def sha() -> None:
        for name in manifest.files:
            sha256_file(directory / name)

    def trees() -> None:
        for entry in manifest.indexes:
            check_annoy_tree(directory / entry.files.index, entry)

    def plain_open() -> None:
        open_bundle(directory, verify_checksums=False).close()

    markers = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    runs = [0]

    def cold() -> None:
        runs[0] += 1
        verdict = verify_once(directory, checksums=True, signing_key=None,
                              marker_dir=markers / str(runs[0]))  # fmt: skip
        assert verdict.here and verdict.error is None, verdict

    def warm() -> None:
        verdict = verify_once(directory, checksums=True, signing_key=None, marker_dir=markers)
        assert verdict.error is None, verdict

    t_open = timed(plain_open, repeat=args.repeat)
    t_sha = timed(sha, repeat=args.repeat)
    t_trees = timed(trees, repeat=args.repeat)
    t_cold = timed(cold, repeat=args.repeat)
    t_warm = timed(warm, repeat=args.repeat)
    print(f"check=open seconds={t_open:.3f}")
    print(f"check=sha256 seconds={t_sha:.3f} mb_per_s={total / 1e6 / t_sha:.0f}")
    print(f"check=trees seconds={t_trees:.3f} mb_per_s={ann / 1e6 / t_trees:.0f}")
    print(f"check=verify_once_cold seconds={t_cold:.3f}")
    print(f"check=verify_once_warm seconds={t_warm:.4f}")


if __name__ == "__main__":
    main()
