"""``decongan weights``: fetch the published pretrained weights the seeds need, and list what is cached."""

from __future__ import annotations

import argparse
import sys

from decongan.app.commands import CommandError

HELP = "fetch published pretrained weights (VGG19, Real-ESRGAN) into the cache, checked; list what is present"
DESCRIPTION = """\
decongan weights fetch NAME [NAME ...] downloads each published file, checks its published SHA-256
before reading it (a file that differs is deleted unread), converts it to safetensors and keeps it in
the cache folder ($DECONGAN_CACHE, else $XDG_CACHE_HOME/decongan, else ~/.cache/decongan; sub-folder
weights). Training finds the VGG19 copy there by itself (after --vgg19-weights and $DECONGAN_VGG19);
give a Real-ESRGAN copy to 'decongan train --pretrained PATH' (the path is printed).

--from PATH_OR_URL reads a copy fetched elsewhere (a machine without network: copy the file over)
instead of the published URL; its digest is checked all the same.

decongan weights list shows every known file, whether it is cached, and where its digest comes from.
Examples:
  decongan weights fetch vgg19
  decongan weights fetch realesrgan-x2plus --from ~/Downloads/RealESRGAN_x2plus.pth
  decongan weights list
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from decongan.app.commands import add_overwrite_argument

    sub = parser.add_subparsers(dest="weights_action", metavar="ACTION", required=True)
    fetch = sub.add_parser("fetch", help="download, check and cache published weights")
    fetch.add_argument("names", nargs="+", metavar="NAME",
                       help="vgg19, realesrgan-x2plus or realesrgan-x4plus ('decongan weights list' shows them)")
    fetch.add_argument("--from", dest="source", metavar="PATH_OR_URL",
                       help="read this copy (local file, file:// or http(s):// URL) instead of the published URL; "
                            "one NAME only")
    add_overwrite_argument(fetch)
    sub.add_parser("list", help="show known weights, whether each is cached, and its digest's source")


def run(args: argparse.Namespace) -> int:
    from decongan.engine.learn import weights

    if args.weights_action == "list":
        print(f"cache folder: {weights.cache_dir() / 'weights'}")
        for row in weights.list_weights():
            state = f"present ({row.size_bytes / 1e6:.1f} MB) {row.path}" if row.present else "not fetched"
            print(f"{row.entry.name:20s} {state}")
            print(f"{'':20s} {row.entry.file_name} <- {row.entry.url}")
            print(f"{'':20s} sha256 {row.entry.sha256}: {row.entry.digest_source}")
            print(f"{'':20s} used for: {row.entry.used_for}; licence {row.entry.licence}")
        return 0
    unknown = [name for name in args.names if name not in weights.PUBLISHED_WEIGHTS]
    if unknown:
        raise CommandError(f"unknown weights {', '.join(unknown)}; known: {', '.join(weights.PUBLISHED_WEIGHTS)}")
    if args.source is not None and len(args.names) != 1:
        raise CommandError("--from names one file: give exactly one NAME with it")
    from decongan.engine.progress import Progress

    for name in args.names:
        existing = weights.find_cached_weights(name)
        if existing is not None and not args.overwrite:
            print(f"decongan weights: {name} already cached at {existing} (pass --overwrite to fetch it again)",
                  file=sys.stderr)
            print(existing)
            continue
        events = weights.iter_fetch_weights(name, source=args.source, overwrite=args.overwrite)
        try:
            while True:
                event: Progress = next(events)
                if event.step % 50 == 0 or event.total == 1:
                    print(f"decongan weights: {event.message}", file=sys.stderr)
        except StopIteration as done:
            print(done.value)
    return 0
