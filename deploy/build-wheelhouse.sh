#!/usr/bin/env bash
# Collect every wheel a device needs (edgeseg's run side, the station's reporting, bundle
# signatures and one backend) for one target into one folder, with the install script and the
# files it installs. Run it where PyPI can be reached; copy the folder to the device and run
# `sudo ./install.sh` there, with no network (docs/deploy.md).
#
#   deploy/build-wheelhouse.sh [--target x86_64|jetson] [--python 3.10|3.11|3.12]
#                              [--backend openvino|onnxruntime|tensorrt] [--cuda 12.6|13] [-o DIR]
#
# x86_64 (Intel industrial PCs; Debian 12, Ubuntu 22.04/24.04): OpenVINO by default.
# jetson (aarch64, JetPack 6 or 7): TensorRT comes with JetPack; the folder brings cuda-python
# pinned to --cuda, and onnx with ONNX Runtime so that the device compiles its own TensorRT bundle.
set -euo pipefail

target=x86_64 python=3.11 backend="" cuda=12.6 out=wheelhouse
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --backend) backend="$2"; shift 2 ;;
    --cuda) cuda="$2"; shift 2 ;;
    -o|--output) out="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "build-wheelhouse.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done

case "$target" in
  x86_64) arch=x86_64; backend="${backend:-openvino}" ;;
  jetson) arch=aarch64; backend="${backend:-tensorrt}" ;;
  *) echo "build-wheelhouse.sh: --target is x86_64 or jetson, not $target" >&2; exit 2 ;;
esac
case "$python" in
  3.10|3.11|3.12) ;;
  *) echo "build-wheelhouse.sh: --python is 3.10, 3.11 or 3.12, not $python" >&2; exit 2 ;;
esac
case "$backend" in
  openvino|onnxruntime) extras="$backend,station,signing" ;;
  tensorrt) extras="tensorrt,onnxruntime,station,signing" ;;
  *) echo "build-wheelhouse.sh: --backend is openvino, onnxruntime or tensorrt, not $backend" >&2; exit 2 ;;
esac

repo="$(cd "$(dirname "$0")/.." && pwd)"
pip=("${PYTHON:-python3}" -m pip)  # PYTHON=... picks another interpreter to run pip
mkdir -p "$out/wheels"
out="$(cd "$out" && pwd)"

# What the device's glibc runs: manylinux wheels up to glibc 2.35 (Ubuntu 22.04, JetPack 6);
# Debian 12 has 2.36 and Ubuntu 24.04 2.39, so these run there too.
platforms=()
for glibc in 2_17 2_24 2_27 2_28 2_31 2_34 2_35; do
  platforms+=(--platform "manylinux_${glibc}_${arch}")
done
platforms+=(--platform "manylinux2014_${arch}")

requirements=("edgeseg[$extras]")
if [ "$target" = jetson ]; then
  # JetPack's OpenCV (with GStreamer, for csi://) is built against NumPy 1.x
  requirements+=("cuda-python==${cuda}.*" "numpy<2" onnx)
fi

echo "edgeseg wheel from $repo"
"${pip[@]}" wheel --quiet --no-deps --wheel-dir "$out/wheels" "$repo"
echo "wheels for $target, Python $python, $backend: ${requirements[*]}"
"${pip[@]}" download --quiet --dest "$out/wheels" --find-links "$out/wheels" --only-binary=:all: \
  --python-version "$python" --implementation cp "${platforms[@]}" "${requirements[@]}"

# the install script and what it installs, laid out as in deploy/
cp "$repo/deploy/install.sh" "$out/install.sh"
cp "$repo/deploy/station.example.yaml" "$out/station.example.yaml"
mkdir -p "$out/systemd" "$out/udev" "$out/sinks"
cp "$repo/deploy/systemd/"* "$out/systemd/"
cp "$repo/deploy/udev/"*.rules "$out/udev/"
cp "$repo/deploy/sinks/"*.py "$out/sinks/"
{
  echo "target=$target"
  echo "python=$python"
  echo "backend=$backend"
  echo "extras=$extras"
  [ "$target" = jetson ] && echo "cuda=$cuda"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$out/wheelhouse.env"
count=$(find "$out/wheels" -name '*.whl' | wc -l)
echo "wrote $out: $count wheels, $(du -sh "$out" | cut -f1); on the device: sudo $out/install.sh"
