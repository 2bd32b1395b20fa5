"""Command line: ``python -m autoencoders {list,data,train} ...``.

    python -m autoencoders list                       # the named experiments
    python -m autoencoders data                       # which data sources answer
    python -m autoencoders train ae-conv --profile quick
    python -m autoencoders bench [--no-book]          # speed on this machine

Every AUTOENCODERS_* setting is checked first: a bad value is a usage error
(exit 2) that names the variable and the values it takes, as is data that
no source provides. A run that fails (a diverged training, a full disk, a
cache entry this user may not read) prints one line, ``error: ...``, and
exits 1; warnings print one line each.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from contextlib import contextmanager


@contextmanager
def _one_line_warnings():
    """Warnings as ``warning: <message>``, without the source line."""
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: list[str] | None = None) -> int:
    with _one_line_warnings():
        return _main(sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    from . import settings

    if argv[:1] == ["bench"]:
        from . import bench

        try:
            settings.check_all()
        except ValueError as err:
            print(f"python -m autoencoders bench: error: {err}", file=sys.stderr)
            return 2
        return bench.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m autoencoders", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list the named experiments")
    listing.add_argument("--profile", choices=("smoke", "quick", "full"),
                         help="training budget (default: as for train)")
    sub.add_parser("data", help="load every data set and say where it came from")
    train = sub.add_parser("train", help="train (or fetch from the cache) named experiments")
    train.add_argument("names", nargs="*", metavar="NAME")
    train.add_argument("--chapter", action="append", default=[], metavar="CHAPTER",
                       help="also every experiment of this chapter (a file name under book/, "
                            "e.g. ablations); repeatable. The missing ones train side by side "
                            "on a CPU (AUTOENCODERS_WORKERS)")
    train.add_argument("--profile", choices=("smoke", "quick", "full"),
                       help="training budget (default: AUTOENCODERS_PROFILE, else quick on CPU, full on CUDA)")
    train.add_argument("--device", help="e.g. cpu, cuda, cuda:1, mps (default: best available)")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sub.add_parser("bench", help="measure training speed and build times (see bench --help)")
    args = parser.parse_args(argv)
    try:
        settings.check_all()
    except ValueError as err:  # SettingError, DeviceUnavailableError
        parser.error(str(err))

    from .data import DataUnavailableError
    from .train import TrainingDiverged

    try:
        return _run(parser, args)
    except (DataUnavailableError, settings.SettingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (TrainingDiverged, OSError) as err:  # a failed run, a full disk, an unreadable entry
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from . import cache, data, experiments, parallel
    from .train import DeviceUnavailableError, pick_device

    if args.command == "list":
        try:
            configs = [experiments.get_config(n, args.profile)
                       for n in sorted(experiments.EXPERIMENTS)]
        except ValueError as err:  # e.g. AUTOENCODERS_PROFILE=bogus
            parser.error(str(err))
        for name, config in zip(sorted(experiments.EXPERIMENTS), configs):
            print(f"{name:28s} {config.model:10s} {config.dataset:8s} "
                  f"{config.epochs} epochs ({config.profile})")
        return 0
    if args.command == "data":
        status = 0
        for name in data.DATASETS:
            # the first load decodes (or downloads) the files: tens of seconds
            print(f"loading {name} ...", file=sys.stderr, flush=True)
            try:
                print(data.describe(data.load(name, "train"), data.load(name, "test")))
            except data.DataUnavailableError as err:
                print(err, file=sys.stderr)
                status = 2
        return status
    try:
        if not args.names and not args.chapter:
            raise ValueError("name at least one experiment or --chapter "
                             "(python -m autoencoders list shows them)")
        configs = [experiments.get_config(n, args.profile) for n in args.names]
        for chapter in args.chapter:
            configs += parallel.chapter_configs(chapter, args.profile)
        device = pick_device(args.device, where="--device")  # before any data loads
    except (ValueError, DeviceUnavailableError) as err:
        parser.error(str(err))
    trained = set()
    if len(configs) > 1:
        trained = set(parallel.train_missing(configs, device=device))
    for config in configs:
        run = cache.get_or_train(
            config, device=device, progress=False if args.no_progress else None)
        state = "trained" if run.trained or config.name in trained else "from cache"
        if not run.saved:
            state += ", not saved"
        print(f"{config.name} ({config.profile}, {state}): {run.path}")
        print(json.dumps(run.metrics["test"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
