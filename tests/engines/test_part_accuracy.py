"""Part-level accuracy: the verdicts the rules give ground truth and engine masks, escapes and
false rejects, the sweep of rule settings and the suggestion taken from it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import yaml

from edgeseg.engines.part_accuracy import pareto, part_images, part_report, suggest, sweep
from edgeseg.runtime.rules import InspectionRules
from edgeseg.training.checkpoint import load_checkpoint

NAMES = ["background", "crack", "blowhole"]


def _square(size: int, corner: int, side: int, class_id: int, shape=None) -> np.ndarray:
    mask = np.zeros(shape or (size, size), np.uint8)
    mask[corner:corner + side, corner:corner + side] = class_id
    return mask


def _images(rules: InspectionRules):
    """Four parts at twice the model's 32 px: a crack found, a crack missed (an escape), a good
    part with a small unsure speck (a false reject at default rules), a good part left alone."""
    truth = [_square(64, 10, 20, 1), _square(64, 10, 20, 1), np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)]
    masks = np.stack([_square(32, 5, 10, 1), np.zeros((32, 32), np.uint8), _square(32, 3, 2, 2),
                      np.zeros((32, 32), np.uint8)])
    confidences = np.full(masks.shape, 0.95, np.float32)
    confidences[2] = 0.55  # the speck is unsure
    return part_images(["found", "missed", "speck", "clean"], truth, masks, confidences, rules, NAMES)


def test_escapes_and_false_rejects_come_from_the_rules_applied_to_truth_and_to_the_engine():
    report = part_report(_images(InspectionRules()), InspectionRules(), NAMES)
    assert (report.parts, report.defective) == (4, 2)
    assert report.escapes == ["missed"] and report.false_rejects == ["speck"]
    assert report.escape_rate == 0.5 and report.false_reject_rate == 0.5
    assert report.per_class["crack"] == {"parts_with_it": 2, "missed": ["missed"], "found_where_absent": 0}
    assert report.per_class["blowhole"]["found_where_absent"] == 1
    # the speck is 2x2 at model size, 16 pixels of the part: a minimum area of 17 passes it
    bigger = part_report(_images(InspectionRules()), InspectionRules(min_region_area=17), NAMES)
    assert bigger.false_rejects == [] and bigger.escapes == ["missed"]
    unsure = part_report(_images(InspectionRules()), InspectionRules(confidence_threshold=0.6), NAMES)
    assert unsure.false_rejects == []


def test_the_sweep_finds_the_settings_no_other_beats_and_suggests_within_the_escape_rate():
    rows = sweep(_images(InspectionRules()), InspectionRules(), NAMES, areas=(1, 17, 1000), thresholds=(None, 0.6))
    assert len(rows) == 6
    by = {(r["min_region_area"], r["confidence_threshold"]): (r["escapes"], r["false_rejects"]) for r in rows}
    assert by[(1, None)] == (1, 1) and by[(17, None)] == (1, 0) and by[(1000, None)] == (2, 0)
    assert by[(1, 0.6)] == (1, 0)
    front = pareto(rows)
    assert [(r["escapes"], r["false_rejects"]) for r in front] == [(1, 0)]
    assert suggest(rows, 0.5)["false_rejects"] == 0
    assert suggest(rows, 0.25) is None  # one escape in two defective parts is 50 %


def test_rules_written_out_read_back_the_same():
    rules = InspectionRules.from_dict({"confidence_threshold": 0.7, "min_region_area": 32,
                                       "rules": [{"class": "crack", "max_regions": 0},
                                                 {"class": "any", "max_total_area": 500}]}, NAMES)
    assert InspectionRules.from_dict(yaml.safe_load(yaml.safe_dump(rules.to_dict())), NAMES) == rules


def test_verify_reports_parts_and_writes_suggested_rules_and_a_plot(bundle_factory, synth_data, trained_run,
                                                                    tmp_path):
    bundle = bundle_factory("onnxruntime", "fp32").path
    suggested, plot = tmp_path / "rules.yaml", tmp_path / "sweep.png"
    run = subprocess.run([sys.executable, "-m", "edgeseg", "verify", str(bundle), "--data", str(synth_data),
                          "--json", "--max-escape-rate", "1", "--suggest-rules", str(suggested), "--plot", str(plot)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    parts = report["parts"]
    assert parts["parts"] == report["accuracy"]["images"] == 8  # the whole val split, none left out
    assert parts["escapes"] == len(parts["escaped"]) and parts["false_rejects"] == len(parts["falsely_rejected"])
    assert report["accuracy"]["engine_frame_size"]["miou"] > 0 and report["accuracy"]["engine"]["miou"] > 0
    # training scored its kept model at each image's own size the same way (the fp32 graph is that model)
    trained = trained_run.frame_size_metrics
    assert abs(report["accuracy"]["reference_frame_size"]["miou"] - trained["miou"]) < 0.005
    assert trained != load_checkpoint(trained_run.best_checkpoint)["meta"]["metrics"]  # not the model-size figure
    assert load_checkpoint(trained_run.best_checkpoint)["meta"]["metrics_frame_size"] == trained
    chosen = report["suggested"]
    written = yaml.safe_load(suggested.read_text())
    assert (written["min_region_area"], written["confidence_threshold"]) == (chosen["min_region_area"],
                                                                            chosen["confidence_threshold"])
    assert plot.read_bytes()[:4] == b"\x89PNG"
    text = subprocess.run([sys.executable, "-m", "edgeseg", "verify", str(bundle), "--data", str(synth_data),
                           "--rules", str(suggested), "--per-class", "--max-escape-rate", "1"],
                          capture_output=True, text=True)
    assert text.returncode == 0, text.stderr
    assert f"parts judged by {suggested}" in text.stdout and "escapes" in text.stdout
    assert f"false rejects {chosen['false_rejects']:>4} of" in text.stdout  # the suggestion, measured again
    assert "per-class limits (a region larger than this many frame pixels fails" in text.stdout


def test_a_limit_per_class_passes_one_class_specks_and_still_catches_the_other():
    """Blowhole specks on good parts and true cracks of the same size: no single minimum area
    separates them, a limit per class does."""
    from edgeseg.engines.part_search import search

    truth = [_square(64, 10, 4, 1), _square(64, 30, 4, 1), np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)]
    masks = np.stack([_square(32, 5, 2, 1), _square(32, 15, 2, 1), _square(32, 3, 2, 2), _square(32, 20, 2, 2)])
    rules = InspectionRules(min_region_area=1)
    images = part_images(["crack-a", "crack-b", "speck-a", "speck-b"], truth, masks, None, rules, NAMES)
    rows = sweep(images, rules, NAMES, areas=(1, 17))
    assert suggest(rows, 0.0)["false_rejects"] == 2  # one area for all: both specks fail the good parts
    found = search(images, rules, NAMES, max_escape_rate=0.0)
    assert found is not None
    per_class, counts = found
    limits = {r.target: r.max_region_area for r in per_class.rules}
    assert limits["crack"] == 0 and limits["blowhole"] >= 16  # the specks are 16 part pixels
    assert (counts["escapes"], counts["false_rejects"]) == (0, 0)
    assert part_report(images, per_class, NAMES).false_rejects == []
    assert InspectionRules.from_dict(per_class.to_dict(), NAMES).rules == per_class.rules  # a rules file holds it
