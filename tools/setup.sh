#!/usr/bin/env bash
# Sets up everything on a fresh machine, idempotently (`make setup`): a Python 3.11 venv with ROS 2 Kilted from
# PyPI wheels, the interface packages of interfaces/ built into it, this package, and the default model.
# Each step leaves a stamp in .venv/.stamps holding a hash of its inputs, so a second run with nothing changed
# only checks the hashes.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
stamps="$venv/.stamps"
py="$venv/bin/python"

log() { printf '[setup] %s\n' "$*"; }

# A step runs when the hash of its inputs differs from its stamp. Usage: step NAME INPUT... ; then run; then stamp NAME.
inputs_hash() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }
needs() { local name=$1; shift; [ "$(cat "$stamps/$name" 2>/dev/null)" != "$(inputs_hash "$@")" ]; }
stamp() { local name=$1; shift; inputs_hash "$@" > "$stamps/$name"; }

python311=$(command -v python3.11 || true)
[ -n "$python311" ] || { echo "setup: python3.11 is required (ROS 2 Kilted wheels are built for CPython 3.11)" >&2; exit 1; }

if [ ! -x "$py" ]; then
  log "creating $venv"
  "$python311" -m venv "$venv"
fi
mkdir -p "$stamps"

requirements=("$repo/requirements.txt" "$repo/requirements-ros.txt" "$repo/requirements-test.txt")
if needs requirements "${requirements[@]}"; then
  log "installing Python dependencies and ROS 2 Kilted wheels"
  "$py" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$py" -m pip install --quiet --disable-pip-version-check "${requirements[@]/#/-r}"
  stamp requirements "${requirements[@]}"
fi

# The wheels' CMake exports name the include dirs of the machine that built them (/opt/python/cp311-cp311/...).
py_include=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
numpy_include=$("$py" -c 'import numpy; print(numpy.get_include())')
mapfile -t stale_exports < <(grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$venv/share" || true)
if [ "${#stale_exports[@]}" -gt 0 ]; then
  log "rewriting the include paths of ${#stale_exports[@]} CMake exports"
  sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$numpy_include#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$py_include#g" \
    "${stale_exports[@]}"
fi

# The interface packages of interfaces/ install into the venv itself: their Python packages land in site-packages
# and their libraries in .venv/lib, which the ROS wheels' bootstrapper puts on LD_LIBRARY_PATH, so no environment
# needs sourcing. Each is a step of its own, stamped with its own files.
build_interfaces() {
  local name=$1 import_check=$2 source="$repo/interfaces/$1"
  local inputs=("$source"/{package.xml,CMakeLists.txt} "$source"/msg/*.msg)
  needs "$name" "${inputs[@]}" || return 0
  log "building $name into the venv"
  local build_dir="$repo/build/$name"
  rm -rf "$build_dir" && mkdir -p "$build_dir"
  PATH="$venv/bin:$PATH" AMENT_PREFIX_PATH="$venv" cmake -S "$source" -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_PREFIX_PATH="$venv" \
    -DPython3_EXECUTABLE="$py" -DPYTHON_EXECUTABLE="$py" -DBUILD_TESTING=OFF > "$build_dir.log" 2>&1 \
    || { cat "$build_dir.log" >&2; exit 1; }
  { cmake --build "$build_dir" -j "$(nproc)" && cmake --install "$build_dir"; } >> "$build_dir.log" 2>&1 \
    || { tail -50 "$build_dir.log" >&2; exit 1; }
  "$py" -c "$import_check"
  stamp "$name" "${inputs[@]}"
}
# In dependency order (each depends only on std_msgs, from the wheels).
build_interfaces audio_common_msgs 'from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo'
build_interfaces hailo_whisper_msgs 'from hailo_whisper_msgs.msg import Speech, Transcript'

if needs package "$repo/setup.py" "$repo/setup.cfg" "$repo/package.xml"; then
  log "installing hailo_whisper_ros (editable) and its executables into the venv"
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$repo"
  stamp package "$repo/setup.py" "$repo/setup.cfg" "$repo/package.xml"
fi

# The exporter skips its work when the directory already holds an export of the same weights.
[ -n "${SKIP_EXPORT:-}" ] || "$py" -m hailo_whisper_ros export tiny.en --out "$repo/models/tiny.en"
log "ready: $venv"
