#!/usr/bin/env bash
# Install edgeseg on a device from a wheelhouse (deploy/build-wheelhouse.sh), with no network:
# a venv in /opt/edgeseg/venv, the system user edgeseg, /etc/edgeseg/station.yaml (from the
# example, never overwritten), /var/lib/edgeseg for results and bundles, the systemd unit
# (enabled, not started: edit the station file first) and the camera udev rules. Running it
# again upgrades edgeseg from the wheelhouse and keeps the configuration.
#
#   sudo ./install.sh [--wheelhouse DIR] [--jetson [--compile ONNX --data DIR]] [--start]
#   sudo ./install.sh --uninstall      # removes all of it but /var/lib/edgeseg (results, bundles)
#
# --wheelhouse: the folder of wheels (default: wheels/ beside this script).
# --jetson: a venv that sees JetPack's TensorRT and OpenCV (GStreamer, csi://), and the unit's
#           drop-in that lets the service open the GPU.
# --compile ONNX --data DIR [--precision fp16]: on a Jetson, build the TensorRT bundle here from the
#           exported graph, proven on DIR's frames, into /var/lib/edgeseg/bundles/<graph>-<precision>.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
prefix=/opt/edgeseg config=/etc/edgeseg state=/var/lib/edgeseg
unit_dir=/etc/systemd/system udev_dir=/etc/udev/rules.d
wheelhouse="" jetson=0 start=0 uninstall=0 onnx="" data="" precision=fp16
while [ $# -gt 0 ]; do
  case "$1" in
    --wheelhouse) wheelhouse="$2"; shift 2 ;;
    --jetson) jetson=1; shift ;;
    --start) start=1; shift ;;
    --compile) onnx="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run it as root (sudo)" >&2; exit 1; }
if [ -n "$onnx" ] && { [ "$jetson" -eq 0 ] || [ -z "$data" ]; }; then
  echo "install.sh: --compile builds a TensorRT bundle on a Jetson: give --jetson and --data DIR too" >&2; exit 2
fi
say() { echo "install.sh: $*"; }
systemd_running() { [ -d /run/systemd/system ]; }  # not in a chroot or an image being built

uninstall() {
  if systemd_running; then systemctl disable --now edgeseg.service 2>/dev/null || true; fi
  rm -f "$unit_dir/edgeseg.service" "$unit_dir/multi-user.target.wants/edgeseg.service"
  rm -rf "$unit_dir/edgeseg.service.d"
  rm -f "$udev_dir/72-edgeseg-cameras.rules"
  if [ -f "$config/station.yaml" ] && [ -d "$state" ]; then
    cp -p "$config/station.yaml" "$state/station.yaml.uninstalled"  # the plant's settings, kept with the results
  fi
  rm -rf "$prefix" "$config" "$state/cache"
  if getent passwd edgeseg >/dev/null; then userdel edgeseg; fi
  if getent group edgeseg >/dev/null; then groupdel edgeseg; fi
  if systemd_running; then systemctl daemon-reload; fi
  say "removed; $state (results, bundles) is kept"
}

install_venv() {
  local wheels="${wheelhouse:-$here/wheels}" extras
  [ -d "$wheels" ] || { echo "install.sh: no wheelhouse at $wheels (give --wheelhouse DIR)" >&2; exit 1; }
  extras="$( (grep '^extras=' "$here/wheelhouse.env" 2>/dev/null || echo extras=openvino,station,signing) | cut -d= -f2)"
  if [ ! -x "$prefix/venv/bin/python" ]; then
    local site=()
    [ "$jetson" -eq 1 ] && site=(--system-site-packages)  # JetPack's tensorrt and cv2
    python3 -m venv "${site[@]}" "$prefix/venv"
  fi
  # --no-index: nothing comes from the network; --upgrade: a newer wheelhouse upgrades in place
  "$prefix/venv/bin/pip" install --quiet --no-index --find-links "$wheels" --upgrade "edgeseg[$extras]"
  if [ "$jetson" -eq 1 ]; then
    # PyPI's OpenCV cannot open csi:// cameras; JetPack's (GStreamer) is seen through the system site
    "$prefix/venv/bin/pip" uninstall --quiet -y opencv-python-headless
  fi
  say "edgeseg $("$prefix/venv/bin/edgeseg" --version | cut -d' ' -f2) in $prefix/venv"
}

create_user() {
  if ! getent passwd edgeseg >/dev/null; then
    useradd --system --user-group --home-dir "$state" --no-create-home --shell /usr/sbin/nologin \
      --comment "edgeseg inspection station" edgeseg
  fi
  getent group video >/dev/null || groupadd --system video
  usermod --append --groups video edgeseg
}

install_files() {
  install -d -m 0755 "$config"
  if [ ! -e "$config/station.yaml" ]; then
    install -m 0640 -g edgeseg "$here/station.example.yaml" "$config/station.yaml"
    install -d -m 0755 "$config/sinks"
    install -m 0644 "$here/sinks/"*.py "$config/sinks/"
    say "wrote $config/station.yaml from the example: edit it, then edgeseg serve --check it"
  fi
  install -d -m 0750 -o edgeseg -g edgeseg "$state" "$state/bundles" "$state/results"
  install -d -m 0755 "$unit_dir" "$udev_dir"
  install -m 0644 "$here/systemd/edgeseg.service" "$unit_dir/edgeseg.service"
  if [ "$jetson" -eq 1 ]; then
    install -d -m 0755 "$unit_dir/edgeseg.service.d"
    install -m 0644 "$here/systemd/jetson.conf" "$unit_dir/edgeseg.service.d/jetson.conf"
  fi
  install -m 0644 "$here/udev/72-edgeseg-cameras.rules" "$udev_dir/72-edgeseg-cameras.rules"
}

enable_service() {
  if systemd_running; then
    systemctl daemon-reload
    if udevadm control --reload 2>/dev/null; then
      udevadm trigger --subsystem-match=video4linux --subsystem-match=usb || true
    fi
    systemctl enable edgeseg.service
    if [ "$start" -eq 1 ]; then systemctl restart edgeseg.service; fi
  else  # a chroot or an image being built: enable it for the first boot
    install -d -m 0755 "$unit_dir/multi-user.target.wants"
    ln -sf ../edgeseg.service "$unit_dir/multi-user.target.wants/edgeseg.service"
  fi
  say "edgeseg.service enabled$([ "$start" -eq 1 ] && systemd_running && echo ' and started')"
}

compile_on_device() {
  local name bundle
  name="$(basename "$onnx" .onnx)-$precision"
  bundle="$state/bundles/$name"
  say "building the TensorRT engine for this Jetson into $bundle (minutes; the progress follows)"
  runuser -u edgeseg -- env EDGESEG_CACHE_DIR="$state/cache" "$prefix/venv/bin/edgeseg" compile "$onnx" \
    --backend tensorrt --precision "$precision" --data "$data" -o "$bundle"
  say "name it in $config/station.yaml (bundle: $bundle), then: edgeseg serve --check $config/station.yaml"
}

if [ "$uninstall" -eq 1 ]; then uninstall; exit 0; fi
install_venv
create_user
install_files
enable_service
if [ -n "$onnx" ]; then compile_on_device; fi
