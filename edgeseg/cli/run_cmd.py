"""``edgeseg run BUNDLE --source URI``: stream frames through a bundle into results."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from edgeseg.cli.engine_flags import add_engine_flags, add_load_policy_flags, engine_options
from edgeseg.cli.values import positive_float, positive_int, share

ENGINE_FLAGS = ("threads", "hint", "streams", "cuda_graph")  # what a bundle lets a run override
SOURCES_HELP = ("a video file; a folder of images or a quoted glob ('dir/*.png'); usb:0 or /dev/video0; "
                "rtsp://, http://, udp://, tcp:// streams; gst:PIPELINE or csi://0 (OpenCV with GStreamer); "
                "pylon:// or pylon://SERIAL (Basler, needs the pylon extra)")


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="stream frames through a bundle: masks, regions, verdicts, timings",
                       description="Streams frames from a source through the bundle's engine and judges each frame "
                                   "by the rules. With --out DIR it writes results.jsonl (one line per frame) and "
                                   "timing.json (per-stage p50/p90/p99/max). Ctrl-C or SIGTERM stops cleanly.")
    p.add_argument("bundle", help="bundle folder from edgeseg compile")
    p.add_argument("source", nargs="?", help="where frames come from, as --source (either may be given)")
    p.add_argument("--source", dest="source_flag", metavar="SOURCE", help=SOURCES_HELP)
    p.add_argument("--out", type=Path, help="folder for results.jsonl, timing.json and what the flags below add")
    p.add_argument("--rules", type=Path,
                   help="pass/fail rules (YAML; default: any defect region of 8 px or more fails)")
    p.add_argument("--mode", choices=("resize", "tile"), default="resize",
                   help="resize each frame to the model's input (default), or cut it into overlapping tiles at "
                        "native resolution and stitch the masks")
    p.add_argument("--overlap", type=int, default=32, help="tile overlap in pixels (tile mode, default 32)")
    p.add_argument("--throughput", action="store_true",
                   help="keep several requests in flight (more fps, more latency)")
    p.add_argument("--requests", type=positive_int, help="requests in flight (throughput and tile mode, default 4)")
    p.add_argument("--video", action="store_true",
                   help="write the overlays as video/RUN-0001.mp4, ... in segments (each a whole file once finished)")
    p.add_argument("--video-segment", type=positive_float, default=60.0,
                   help="seconds of video per segment (default 60)")
    p.add_argument("--masks", action="store_true", help="write masks/NNNNNNNN.png (class ids at frame size)")
    p.add_argument("--overlays", choices=("all", "failed"),
                   help="write overlays/NNNNNNNN.jpg for every or failed frame")
    p.add_argument("--window", "--show", action="store_true",
                   help="show the overlay in a window (needs OpenCV with a GUI)")
    p.add_argument("--alpha", type=share, default=0.5, help="overlay opacity of class colours (default 0.5)")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--give-up-after", type=positive_float,
                   help="end the run when a live source stays gone this many seconds (default: keep retrying)")
    p.add_argument("--width", type=positive_int, help="frame width to ask of a camera")
    p.add_argument("--height", type=positive_int, help="frame height to ask of a camera")
    p.add_argument("--fps", type=positive_float, help="frame rate to ask of a camera")
    p.add_argument("--archive-quota-mb", type=positive_float,
                   help="masks, overlays and video together stay under this; the oldest files go first")
    p.add_argument("--rotate-mb", type=positive_float,
                   help="rename results.jsonl to results-<start>.jsonl and begin afresh past this size")
    p.add_argument("--rotate-hours", type=positive_float, help="... or past this age")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when any frame was skipped as unreadable (an offline check of saved photos)")
    p.add_argument("--engine", metavar="URL", dest="remote_engine",
                   help="run inference on a serving engine: kserve://HOST:PORT/MODEL (HTTP) or "
                        "kserve+grpc://HOST:PORT/MODEL, the model exported from this bundle with export-serving")
    add_load_policy_flags(p)
    add_engine_flags(p, ENGINE_FLAGS, for_bundle=True)
    p.set_defaults(run=run, after_parse=lambda args: _one_source(p, args))


def _one_source(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The source, given as the second argument or as --source, once."""
    if args.source and args.source_flag and args.source != args.source_flag:
        parser.error(f"two sources given ({args.source} and --source {args.source_flag}): give one")
    args.source = args.source or args.source_flag
    if not args.source:
        parser.error("give a source: edgeseg run BUNDLE SOURCE (or --source SOURCE)")


def run(args: argparse.Namespace) -> int:
    from edgeseg.engines import Bundle
    from edgeseg.errors import SourceError
    from edgeseg.runtime.session import InspectionSession, RunOptions

    logging.basicConfig(level=logging.WARNING, format="edgeseg: %(message)s")
    backend = Bundle.read(args.bundle).backend
    camera = {k: v for k, v in (("width", args.width), ("height", args.height), ("fps", args.fps)) if v}
    opts = RunOptions(Path(args.bundle), args.source, out=args.out, rules=args.rules, mode=args.mode,
                      overlap=args.overlap, throughput=args.throughput, requests=args.requests, video=args.video,
                      video_segment=args.video_segment, rotate_mb=args.rotate_mb, rotate_hours=args.rotate_hours,
                      archive_quota_mb=args.archive_quota_mb,
                      masks=args.masks, overlays=args.overlays, window=args.window, alpha=args.alpha,
                      max_frames=args.max_frames, give_up_after=args.give_up_after, camera=camera,
                      engine_options={} if args.remote_engine else engine_options(args, backend, ENGINE_FLAGS),
                      remote_engine=args.remote_engine, status=not args.quiet)
    stopping, signals_seen = threading.Event(), []

    def stop(signum, _frame):
        signals_seen.append(signum)
        if len(signals_seen) > 1:  # a second Ctrl-C means now
            raise KeyboardInterrupt
        stopping.set()  # heard while waiting for a camera at start, too

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with InspectionSession(opts, stopping) as session:
            summary = session.run()
    except SourceError:
        if not signals_seen:
            raise
        print(f"stopped ({signal.Signals(signals_seen[0]).name}) while waiting for the source: no frame processed")
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps): "
          f"{summary.frames - summary.failed} passed, {summary.failed} failed; dropped {summary.dropped}, "
          f"bad {summary.bad_frames}, reconnects {summary.reconnects}"
          + (f", {summary.lost_writes} write(s) lost" if summary.lost_writes else "")
          + f"; ended by {summary.ended_by}"
          + (f" ({signal.Signals(signals_seen[0]).name})" if signals_seen else ""))
    print(session.loop.times.table())
    if args.out:
        print(f"results: {args.out / 'results.jsonl'}, timing: {args.out / 'timing.json'}")
    if summary.error is not None:
        print(f"edgeseg: error: {summary.error}", file=sys.stderr)
        return 1
    if args.strict and summary.bad_frames:
        print(f"edgeseg: error: {summary.bad_frames} frame(s) skipped as unreadable (--strict)", file=sys.stderr)
        return 1
    return 0
