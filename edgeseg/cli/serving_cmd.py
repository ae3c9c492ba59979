"""``edgeseg export-serving BUNDLE --to triton|ovms|model-api -o REPO`` (edgeseg/export/serving.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeseg.cli.values import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("export-serving", help="write a Triton or OpenVINO Model Server model repository from a bundle",
                       description="Writes REPO/NAME/ as the server loads it: for Triton, config.pbtxt (inputs, "
                                   "outputs, types, dims, batching, instance group) and 1/ with the bundle's model "
                                   "file; for OpenVINO Model Server, 1/model.xml|bin and REPO/config.json. The "
                                   "bundle's manifest goes along as edgeseg-manifest.json.")
    p.add_argument("bundle", help="bundle folder from edgeseg compile")
    p.add_argument("--to", choices=("triton", "ovms", "model-api"), required=True,
                   help="the serving engine, or model-api: the IR OpenVINO Model API's SegmentationModel reads")
    p.add_argument("-o", "--output", required=True, help="the model repository (made or added to)")
    p.add_argument("--name", help="the model's name on the server (default: the bundle folder's name)")
    p.add_argument("--version", type=positive_int, default=1, help="the model version folder (default 1)")
    p.add_argument("--instances", type=positive_int, default=1, help="Triton: model instances (default 1)")
    p.add_argument("--max-batch-size", type=positive_int, default=8,
                   help="Triton: the largest batch for a bundle with a dynamic batch (default 8)")
    p.set_defaults(run=run)


def _print_model_api_load(bundle_path: str, model_dir: Path) -> None:
    """The precision the bundle was proven at goes with it: left alone, OpenVINO runs an fp32 IR in
    bf16 on CPUs with AVX-512 BF16 or AMX, and Model API passes no precision of its own."""
    from edgeseg.engines.bundle import Bundle

    precision = Bundle.read(bundle_path).manifest["engine"]["inference_precision"]
    print(f"  load it: Model.create_model(OpenvinoAdapter(create_core(), '{model_dir / 'model.xml'}', device='CPU',"
          f" plugin_config={{'INFERENCE_PRECISION_HINT': '{precision}'}}))")


def run(args: argparse.Namespace) -> int:
    from edgeseg.export.serving import ServingOptions, export_serving

    model_dir = export_serving(ServingOptions(args.bundle, args.output, args.to, args.name, args.version,
                                              args.instances, args.max_batch_size))
    what = {"triton": "Triton", "ovms": "OpenVINO Model Server", "model-api": "OpenVINO Model API"}[args.to]
    print(f"wrote {model_dir} for {what}")
    if args.to == "model-api":
        _print_model_api_load(args.bundle, model_dir)
    elif args.to == "triton":
        print(f"  serve it: tritonserver --model-repository {model_dir.parent}")
    else:
        print(f"  serve it: ovms --config_path {model_dir.parent / 'config.json'} --rest_port 8000")
    return 0
