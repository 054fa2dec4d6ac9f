"""The nightly pipeline as one Spark application (spark-submit, or the Spark operator's
ScheduledSparkApplication in deploy/overlays/spark): build a bundle with the Spark engine, not
yet current; precompute its lists into the store on Spark; publish it. One SparkSession (the
one spark-submit configured) serves both steps.

    spark-submit --master k8s://https://HOST indexes/spark/main.py \\
        --dataset plays-at:/data/plays.csv.gz --bundles /bundles
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from service.cli import main as segue

    p = argparse.ArgumentParser(prog="segue-spark-pipeline", description=__doc__)
    p.add_argument("--dataset", required=True, help="the data set, as `segue build --dataset`")
    p.add_argument("--bundles", required=True, help="the bundles directory (a shared volume)")
    args, build_options = p.parse_known_args(argv)
    version_file = f"{args.bundles}/.pipeline-version"
    code = segue(
        ["build", "--engine", "spark", "--dataset", args.dataset, "--out", args.bundles,
         "--no-current", "--version-file", version_file, *build_options]
    )  # fmt: skip
    if code != 0:
        return code
    with open(version_file, encoding="utf-8") as f:
        version = f.read().strip()
    code = segue(["precompute", "--engine", "spark", "--bundles", f"{args.bundles}/{version}"])
    if code != 0:
        return code
    return segue(["publish", "--bundles", args.bundles, version])


if __name__ == "__main__":
    sys.exit(main())
