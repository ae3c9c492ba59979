"""``edgeseg verify BUNDLE --data DIR``: the bundle measured here, on a labelled split, as the
station would use it: per-class IoU at each image's own size (model size beside it), agreement
with the fp32 graph, and the parts it would pass and fail under the rules: escapes, false
rejects and the operating points a sweep of the rules offers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgeseg.cli.engine_flags import add_load_policy_flags
from edgeseg.cli.values import positive_int, share


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="measure a bundle on a labelled data set, here on this machine",
                       description="Loads the bundle as the runtime does (checksums and fingerprint checked), "
                                   "runs it on the data set's split and prints per-class IoU at each image's own "
                                   "size and at the model's, pixel agreement with the fp32 reference graph, and "
                                   "part-level accuracy under the rules: escapes (defective parts passed) and false "
                                   "rejects (good parts failed), with a sweep of min_region_area and "
                                   "confidence_threshold. Exit 1 below the bundle's parity gate.")
    p.add_argument("bundle")
    p.add_argument("--data", required=True, help="labelled data set folder")
    p.add_argument("--split", default="val", help="split to use (default val)")
    p.add_argument("--limit", type=positive_int, help="frames at most, spread over the split (default: all)")
    p.add_argument("--rules", type=Path, help="rules file that judges parts (default: the default rules)")
    p.add_argument("--max-escape-rate", type=share, default=0.05,
                   help="escape rate the suggested rules keep within (default 0.05)")
    p.add_argument("--suggest-rules", type=Path, metavar="FILE",
                   help="write the rules file of the sweep's setting with the fewest false rejects within "
                        "--max-escape-rate (with --per-class: the per-class rules)")
    p.add_argument("--per-class", action="store_true",
                   help="also search a limit per defect class (a region of the class larger than it fails), "
                        "from the sweep's best setting, for fewer false rejects within --max-escape-rate")
    p.add_argument("--plot", type=Path, metavar="PNG", help="plot escapes against false rejects over the sweep")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON (for CI)")
    add_load_policy_flags(p)
    p.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    report, passed = measure_bundle(args)
    choice = report["suggested"]
    if args.plot:
        from edgeseg.engines.part_plot import plot_sweep

        plot_sweep(report["sweep"], report["parts"], choice, args.plot, args.max_escape_rate)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report, args.max_escape_rate)
    if args.suggest_rules:  # last: a sweep with no setting to suggest is an error after the report
        _write_suggestion(args, report, choice)
    return 0 if passed else 1


def measure_bundle(args: argparse.Namespace) -> tuple[dict, bool]:
    """(the report as a dict, passed the bundle's gate)."""
    from edgeseg.data.frames import load_frames
    from edgeseg.engines import open_engine
    from edgeseg.engines.accuracy import ReferenceEngine, gate, measure, run_frames, run_frames_with_confidence
    from edgeseg.engines.bundle import Bundle
    from edgeseg.engines.part_accuracy import part_images, part_report, suggest, sweep
    from edgeseg.errors import DatasetError
    from edgeseg.runtime.rules import InspectionRules

    bundle = Bundle.read(args.bundle)
    spec, manifest = bundle.manifest["input"], bundle.manifest
    names = [c["name"] for c in manifest["classes"]]
    rules = InspectionRules.from_yaml(args.rules, names) if args.rules else InspectionRules()
    frames = load_frames(args.data, spec["channels"], spec["height"], spec["width"], args.limit, split=args.split,
                         require_split=True, bit_depth=spec.get("bit_depth", 16))
    if frames.truth is None or frames.native_truth is None:
        raise DatasetError("verify needs ground truth masks", args.data, "give a data set folder with masks/")
    with open_engine(bundle) as engine:
        masks, confidences = run_frames_with_confidence(engine, frames.frames, True, "engine")
    with ReferenceEngine(bundle.file(manifest["source"]["reference"]), frames.frames.shape[1:]) as reference:
        reference_masks = run_frames(reference, frames.frames, True, "fp32 reference")
    accuracy = measure(masks, reference_masks, frames, names)
    passed, rule = gate(accuracy, manifest["precision"])
    images = part_images(frames.names, frames.native_truth, masks, confidences, rules, names)
    report = {"bundle": str(bundle.path), "backend": manifest["backend"], "precision": manifest["precision"],
              "accuracy": accuracy.to_dict(), "gate": {"passed": passed, "rule": rule,
                                                       "reference_runtime": reference.runtime},
              "rules": {"file": str(args.rules) if args.rules else None, **rules.to_dict()},
              "parts": part_report(images, rules, names).to_dict(), "sweep": sweep(images, rules, names)}
    report["suggested"] = suggest(report["sweep"], args.max_escape_rate)
    if args.per_class:
        report["per_class"] = _per_class(images, rules, names, report["suggested"], args.max_escape_rate)
    return report, passed


def _per_class(images, rules, names: list[str], choice: dict | None, max_escape_rate: float) -> dict | None:
    """The per-class search from the sweep's suggested setting (None: none fits)."""
    from dataclasses import replace

    from edgeseg.engines.part_search import search

    if choice is None:
        return None
    base = replace(rules, min_region_area=choice["min_region_area"],
                   confidence_threshold=choice["confidence_threshold"])
    found = search(images, base, names, max_escape_rate)
    return None if found is None else {"rules": found[0].to_dict(), **found[1]}


def _write_suggestion(args: argparse.Namespace, report: dict, choice: dict | None) -> None:
    import yaml

    from edgeseg.errors import ConfigError

    if choice is None:
        raise ConfigError(f"no setting of the sweep keeps escapes within {100 * args.max_escape_rate:g} %",
                          fix="raise --max-escape-rate, or improve the model")
    rules = {**report["rules"], "confidence_threshold": choice["confidence_threshold"],
             "min_region_area": choice["min_region_area"]}
    rules.pop("file")
    if report.get("per_class"):  # per-class limits found within the rate: fewer false rejects still
        choice, rules = report["per_class"], report["per_class"]["rules"]
    heading = (f"# suggested by edgeseg verify on {report['accuracy']['source']}: {choice['escapes']} escapes "
               f"({100 * choice['escape_rate']:.1f} %), {choice['false_rejects']} false rejects "
               f"({100 * choice['false_reject_rate']:.1f} %) of {report['parts']['parts']} parts\n")
    args.suggest_rules.write_text(heading + yaml.safe_dump(rules, sort_keys=False))


def print_report(report: dict, max_escape_rate: float) -> None:
    accuracy = report["accuracy"]
    print(f"{report['backend']} {report['precision']} bundle {report['bundle']}")
    print(f"  on {accuracy['images']} frames of {accuracy['source']}; "
          f"{100 * accuracy['pixel_agreement']:.3f} % pixel agreement with the fp32 graph")
    _print_iou(accuracy)
    gate = report["gate"]
    print(f"  {'passed' if gate['passed'] else 'FAILED'}: {gate['rule']} (reference run with "
          f"{gate['reference_runtime']})")
    _print_parts(report["parts"], report["rules"])
    _print_sweep(report["sweep"], report["suggested"], max_escape_rate)
    if "per_class" in report:
        _print_per_class(report["per_class"], max_escape_rate)


def _print_per_class(found: dict | None, max_escape_rate: float) -> None:
    if found is None:
        print(f"per-class limits: none keeps escapes within {100 * max_escape_rate:g} %")
        return
    limits = ", ".join(f"{r['class']} {r['max_region_area']}" for r in found["rules"]["rules"])
    print(f"per-class limits (a region larger than this many frame pixels fails; 0: any): {limits}")
    print(f"  {found['escapes']} escapes ({100 * found['escape_rate']:.1f} %), {found['false_rejects']} false "
          f"rejects ({100 * found['false_reject_rate']:.1f} %) (--suggest-rules FILE writes them)")


def _print_iou(accuracy: dict) -> None:
    show = lambda v: "—" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"  {'IoU':<16}{'at frame size':^20}   {'at model size':^20}")
    print(f"  {'':<16}{'engine':>10}{'fp32':>10}   {'engine':>10}{'fp32':>10}")
    tables = [accuracy[k] for k in ("engine_frame_size", "reference_frame_size", "engine", "reference")]
    rows = [(name, [t["per_class_iou"][name] for t in tables]) for name in tables[0]["per_class_iou"]]
    rows += [(label, [t[key] for t in tables]) for key, label in (("miou", "mIoU"), ("defect_miou", "defect mIoU"))]
    for label, values in rows:
        shown = [show(v) for v in values]
        print(f"  {label:<16}{shown[0]:>10}{shown[1]:>10}   {shown[2]:>10}{shown[3]:>10}")


def _print_parts(parts: dict, rules: dict) -> None:
    source = rules["file"] or "the default rules"
    print(f"parts judged by {source} (min_region_area {rules['min_region_area']}, confidence_threshold "
          f"{rules['confidence_threshold']}): {parts['parts']} parts, {parts['defective']} defective, "
          f"{parts['good']} good by their ground truth")
    for key, rate, names, of in (("escapes", "escape_rate", "escaped", "defective"),
                                 ("false_rejects", "false_reject_rate", "falsely_rejected", "good")):
        listed = ", ".join(parts[names][:8]) + (" …" if len(parts[names]) > 8 else "")
        print(f"  {key.replace('_', ' '):<14}{parts[key]:>4} of {parts[of]} ({100 * parts[rate]:.1f} %)"
              + (f": {listed}" if listed else ""))
    for name, entry in parts["per_class"].items():
        print(f"  {name:<14}on {entry['parts_with_it']} parts, missed on {len(entry['missed'])}, "
              f"found on {entry['found_where_absent']} parts without it")


def _print_sweep(rows: list[dict], choice: dict | None, max_escape_rate: float) -> None:
    from edgeseg.engines.part_accuracy import pareto

    print("operating points of the sweep that no other beats (min_region_area in frame pixels):")
    print(f"  {'min area':>9}{'threshold':>11}{'escapes':>14}{'false rejects':>18}")
    for row in pareto(rows):
        threshold = "none" if row["confidence_threshold"] is None else f"{row['confidence_threshold']:g}"
        print(f"  {row['min_region_area']:>9}{threshold:>11}{row['escapes']:>6} ({100 * row['escape_rate']:5.1f} %)"
              f"{row['false_rejects']:>8} ({100 * row['false_reject_rate']:5.1f} %)")
    if choice is None:
        print(f"  no setting keeps escapes within {100 * max_escape_rate:g} %")
        return
    print(f"  fewest false rejects within {100 * max_escape_rate:g} % escapes: min_region_area "
          f"{choice['min_region_area']}, confidence_threshold {choice['confidence_threshold']} "
          "(--suggest-rules FILE writes it)")
