"""Command line shared by the examples: [SOURCE] MOUNTPOINT [-o OPT,...] [--debug]."""

from __future__ import annotations

import argparse
import logging

import pyfuse3


def parse_args(description: str, with_source: bool = False, default_timeout: float = 0.0,
               no_invalidation: bool = False, with_passthrough: bool = False
               ) -> argparse.Namespace:
    """Command line shared by the examples: [SOURCE] MOUNTPOINT [-o OPT,...] [--debug]."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if with_source:
        parser.add_argument("source", help="the directory to mirror")
        parser.add_argument("--timeout", type=float, default=default_timeout,
                            help="seconds the kernel may cache entries and attributes")
    parser.add_argument("mountpoint", help="where to mount the file system")
    if no_invalidation:
        parser.add_argument("--no-invalidation", action="store_true",
                            help="never invalidate the kernel cache (to see what goes stale)")
    if with_passthrough:
        parser.add_argument("--no-passthrough", action="store_true",
                            help="serve reads and writes here, not by kernel passthrough")
        parser.add_argument("--no-xattrs", action="store_true",
                            help="keep no extended attributes (the kernel then stops asking "
                            "for security.capability before each write)")
    parser.add_argument("-o", dest="options", default="",
                        help="comma-separated mount options, e.g. allow_other")
    parser.add_argument("--debug", action="store_true", help="log every request")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    return args


def mount_options(args: argparse.Namespace, fsname: str) -> set[str]:
    """Default options plus fsname= and whatever -o asked for."""
    options = set(pyfuse3.default_options) | {f"fsname={fsname}"}
    options.update(o for o in args.options.split(",") if o)
    if args.debug:
        options.add("debug")
    return options


def mount(ops: pyfuse3.Operations, args: argparse.Namespace, fsname: str) -> None:
    """pyfuse3.init() as the command line asks; a mountpoint that cannot be used (missing,
    not a directory, already mounted, stale) ends the program with one line, not a traceback."""
    try:
        pyfuse3.init(ops, args.mountpoint, mount_options(args, fsname))
    except (RuntimeError, ValueError) as e:
        raise SystemExit(f"{fsname}: {e}") from None


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM end main(), after which the example unmounts (trio examples)."""
    import signal

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: pyfuse3.terminate())


def serve(ops: pyfuse3.Operations, args: argparse.Namespace, fsname: str) -> None:
    """Mount ops as the command line asks, serve it under trio until a signal, unmount."""
    import trio

    mount(ops, args, fsname)
    install_signal_handlers()
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()
