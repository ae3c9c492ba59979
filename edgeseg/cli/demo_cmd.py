"""``edgeseg demo``: the main job on the built-in default, end to end on this machine:
synthesize a data set and a conveyor-style inspection video, train briefly, export to ONNX and
verify it against PyTorch, compile it for OpenVINO (bf16 on CPUs with AMX or AVX-512 BF16, else
fp32) and prove the bundle, then stream the video through the runtime into an overlay video,
one JSON line per frame and a latency report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgeseg.cli.values import positive_int
from edgeseg.cpu import native_bf16


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="synthesize data and a video, train briefly, export, compile, verify, stream "
                                    "(the built-in default)")
    p.add_argument("-o", "--out", default="edgeseg-demo", help="folder for everything (default edgeseg-demo)")
    p.add_argument("--count", type=positive_int, default=240, help="synthetic images (default 240)")
    p.add_argument("--image-size", type=positive_int, default=192, help="synthetic image side (default 192)")
    p.add_argument("--input-size", type=positive_int, default=128, help="model input side (default 128)")
    p.add_argument("--epochs", type=positive_int, default=15, help="training epochs (default 15)")
    p.add_argument("--video-parts", type=positive_int, default=12,
                   help="parts passing in the inspection video (default 12)")
    p.add_argument("--arch", default="unet", help="architecture to train (default unet; edgeseg models lists them)")
    p.add_argument("--seed", type=int, default=0, help="seed for the data, the video and training (default 0)")
    p.add_argument("--station", action="store_true",
                   help="stream the video as a station does: write station.yaml and run edgeseg serve on it")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edgeseg.cli.compile_cmd import print_accuracy
    from edgeseg.cli.export_cmd import print_parity
    from edgeseg.data.check import check_dataset
    from edgeseg.data.synth import write_synthetic_dataset
    from edgeseg.data.synth_video import write_inspection_video
    from edgeseg.export.compile import CompileOptions, compile_bundle
    from edgeseg.export.onnx_export import ExportOptions, export_onnx
    from edgeseg.training.config import TrainConfig
    from edgeseg.training.trainer import train

    started = time.perf_counter()
    out = Path(args.out)
    print(f"[1/6] synthesizing {args.count} inspection images and a video of {args.video_parts} parts on a conveyor")
    data = write_synthetic_dataset(out / "data", args.count, args.image_size, seed=args.seed)
    video = write_inspection_video(out / "line.mp4", args.video_parts, seed=args.seed)
    report = check_dataset(data, show_progress=False)
    if not report.ok:
        print(report.render())
        return 1
    print(f"[2/6] training {args.arch} at {args.input_size} px for {args.epochs} epochs")
    cfg = TrainConfig(data=str(data), out=str(out / "run"), arch=args.arch, input_size=args.input_size,
                      epochs=args.epochs, batch_size=8, seed=args.seed, warmup_epochs=0.5)
    result = train(cfg)
    print("[3/6] exporting to ONNX (uint8 frames in, uint8 mask and confidence out)")
    exported = export_onnx(ExportOptions(checkpoint=str(result.best_checkpoint), output=str(out / "model.onnx")))
    print("[4/6] verifying the ONNX graph against PyTorch on the validation images")
    print_parity(exported.parity)
    precision = "bf16" if native_bf16() else "fp32"
    print(f"[5/6] compiling for OpenVINO at {precision} and proving the bundle against the fp32 graph")
    bundle = compile_bundle(CompileOptions(str(exported.path), str(out / f"bundle-openvino-{precision}"),
                                           backend="openvino", precision=precision, data=str(data)))
    print_accuracy(bundle.accuracy, "parity gate")
    print(f"  passed: {bundle.rule}")
    print(f"[6/6] streaming {video.name} through the bundle: regions, verdicts, overlay video, timings")
    stream = _stream_as_station(bundle.path, video, out) if args.station else _stream(bundle.path, video, out)
    print(f"\ndone in {(time.perf_counter() - started) / 60:.1f} min")
    print(f"  data set       {data}")
    print(f"  checkpoint     {result.best_checkpoint}")
    print(f"  training plot  {out / 'run' / 'iou.png'}")
    print(f"  ONNX model     {exported.path}")
    print(f"  bundle         {bundle.path}   (edgeseg info {bundle.path})")
    print(f"  video          {video}")
    print(f"  overlay video  {stream / 'video'}   (failed frames also in {stream / 'overlays'})")
    print(f"  results        {stream / 'results.jsonl'}   (one line per frame)")
    print(f"  latency report {stream / 'timing.json'}")
    return 0


def _stream(bundle: Path, video: Path, out: Path) -> Path:
    """The video through edgeseg run's loop; its results folder."""
    from edgeseg.runtime.session import InspectionSession, RunOptions

    stream = out / "stream"
    with InspectionSession(RunOptions(bundle, str(video), out=stream, video=True, overlays="failed")) as session:
        summary = session.run()
    print(f"  {summary.frames} frames, {summary.frames - summary.failed} passed, {summary.failed} failed, "
          f"{summary.fps:.0f} fps")
    print("  " + session.loop.times.table().replace("\n", "\n  "))
    return stream


def _stream_as_station(bundle: Path, video: Path, out: Path) -> Path:
    """The video as one camera of a station (station.yaml, run as edgeseg serve runs it); its
    camera's results folder."""
    import yaml

    from edgeseg.station.config import read_station
    from edgeseg.station.service import Station

    station_file = out / "station.yaml"
    camera = {"name": "line", "source": str(video.resolve()), "bundle": str(Path(bundle).resolve()),
              "overlays": "failed", "video": True}
    station_file.write_text("# written by edgeseg demo --station; run it again with: edgeseg serve station.yaml\n"
                            + yaml.safe_dump({"station": "demo", "results": "stream", "metrics": None,
                                              "cameras": [camera]}, sort_keys=False))
    station = Station(read_station(station_file), station_file)
    station.run()
    pipeline = station.pipelines[0]
    print(f"  station {station_file}: {pipeline.frames} frames through camera line "
          f"({pipeline.restarts} restart(s))")
    return out / "stream" / "line"
