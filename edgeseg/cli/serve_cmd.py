"""``edgeseg serve STATION.yaml``: run an inspection station, several cameras, unattended."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from edgeseg.cli.engine_flags import add_load_policy_flags


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="run an inspection station: several cameras, unattended",
                       description="Runs every camera of a station file, each its own pipeline: results in "
                                   "RESULTS/<camera>/ as edgeseg run writes them, a camera down at start waited "
                                   "for, a failed pipeline restarted with backoff. SIGTERM or Ctrl-C stops every "
                                   "camera after its frame at hand. See deploy/station.example.yaml.")
    p.add_argument("station", type=Path, help="the station file (YAML)")
    p.add_argument("--check", action="store_true",
                   help="load every bundle and open every source once, print what each camera would run, "
                        "exit 0 if all is well, else 1")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                   help="default: the station file's log_level")
    p.add_argument("--log-format", choices=("text", "json"), help="default: the station file's log_format")
    add_load_policy_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeseg.station import logs
    from edgeseg.station.config import read_station

    config = read_station(args.station)
    logs.set_up(args.log_level or config.log_level, args.log_format or config.log_format)
    if args.check:
        from edgeseg.station.check import check_station

        ok, lines = check_station(config)
        print("\n".join(lines))
        return 0 if ok else 1
    return _serve(config, args.station)


def _serve(config, args_station_path) -> int:
    from edgeseg.station.service import Station

    station = Station(config, args_station_path)

    def stop(signum, _frame):
        logging.getLogger("edgeseg").warning("%s: stopping every camera", signal.Signals(signum).name)
        station.stop()

    def reload(_signum, _frame):
        station.reload_requested.set()  # acted on by the station's own loop, not in the handler

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
    try:
        station.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for pipeline in station.pipelines:
        state = pipeline.state()
        print(f"camera {pipeline.camera.name}: {pipeline.frames} frames, {state['dropped_frames']} dropped, "
              f"{state['bad_frames']} bad, {state['reconnects']} reconnect(s), {pipeline.restarts} restart(s)"
              + (f"; last error: {pipeline.last_error}" if pipeline.last_error else ""))
    return 0
