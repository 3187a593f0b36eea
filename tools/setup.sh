#!/usr/bin/env bash
# Sets up everything on a fresh machine, idempotently (`make setup`): a Python 3.11 venv with ROS 2 from PyPI
# wheels, the interface packages built into it, launch and launch_ros where ../shared/ros-launch has them, this
# package (registered in the venv's ament index), the default model, and the OS packages of the tests (as root).
#   tools/setup.sh [kilted|jazzy]    kilted (the default): .venv; jazzy: .venv-jazzy, for the ROS tests on Jazzy
#   tools/setup.sh runtime [DIR]     DIR (default .venv-runtime): what the nodes need at run time and nothing more,
#                                    as a robot installs it: requirements.txt, the Kilted wheels, the build tools of
#                                    the interface packages, launch; this package installed from a copy of its files,
#                                    not editable; no test requirements, no model export (test_runtime_install.py)
# Each step leaves a stamp in the venv's .stamps holding a hash of its inputs, so a second run with nothing changed
# only checks the hashes.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${1:-kilted}
case "$target" in
  kilted) distro=kilted venv="$repo/.venv" ros_requirements="$repo/requirements-ros.txt" ;;
  jazzy) distro=jazzy venv="$repo/.venv-jazzy" ros_requirements="$repo/requirements-ros-jazzy.txt" ;;
  runtime) distro=kilted venv=$(realpath -m "${2:-$repo/.venv-runtime}")
           ros_requirements="$repo/requirements-ros.txt" ;;
  *) echo "setup: the target is kilted, jazzy or runtime, not '$target'" >&2; exit 1 ;;
esac
stamps="$venv/.stamps"
py="$venv/bin/python"
# launch, launch_ros, launch_testing and launch_pytest wheels and composition_interfaces' sources, for machines
# without a ROS install (its README.md); a user's clone has no such folder beside it and goes without launch.
ros_launch=${HAILO_WHISPER_ROS_LAUNCH:-$repo/../shared/ros-launch}

log() { printf '[setup] %s\n' "$*"; }

# A step runs when the hash of its inputs differs from its stamp. Usage: step NAME INPUT... ; then run; then stamp NAME.
# An input that does not exist (a glob matching nothing, msg/*.msg of a package without messages) hashes as empty:
# with pipefail, cat's failure would end the script right after a step's work.
inputs_hash() { { cat "$@" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }
needs() { local name=$1; shift; [ "$(cat "$stamps/$name" 2>/dev/null)" != "$(inputs_hash "$@")" ]; }
stamp() { local name=$1; shift; inputs_hash "$@" > "$stamps/$name"; }

# OS packages of the tests: PulseAudio and paplay (the microphone tests' audio server), PortAudio (the microphone
# node's sounddevice; a robot needs it too) and the ALSA plugins that take PortAudio's default device to PulseAudio.
# Not for the runtime venv, which holds a robot's install and is made by the tests.
# nftables and iproute2: the two-host test's network namespaces, veth link, random UDP loss and rate limit.
source "$repo/tools/os_packages.sh"
if [ "$target" != runtime ]; then
  ensure_os_packages "the microphone tests" pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins
  ensure_os_packages "the two-host tests" nftables iproute2
fi

python311=$(command -v python3.11 || true)
[ -n "$python311" ] || { echo "setup: python3.11 is required (the ROS 2 wheels are built for CPython 3.11)" >&2; exit 1; }

if [ ! -x "$py" ]; then
  log "creating $venv"
  "$python311" -m venv "$venv"
fi
mkdir -p "$stamps"

requirements=("$repo/requirements.txt" "$ros_requirements" "$repo/requirements-build.txt")
[ "$target" = runtime ] || requirements+=("$repo/requirements-test.txt")
if needs requirements "${requirements[@]}"; then
  log "installing Python dependencies and ROS 2 ${distro^} wheels"
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

# An interface package (package.xml, CMakeLists.txt, msg/ or srv/) built and installed straight into the venv: its
# Python package lands in site-packages and its libraries in the venv's lib/, which the ROS wheels' bootstrapper puts
# on LD_LIBRARY_PATH, so no environment needs sourcing.
build_interface_package() {
  local name=$1 source=$2 build_dir="$repo/build/$target/$1"
  rm -rf "$build_dir" && mkdir -p "$build_dir"
  PATH="$venv/bin:$PATH" AMENT_PREFIX_PATH="$venv" cmake -S "$source" -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_PREFIX_PATH="$venv" \
    -DPython3_EXECUTABLE="$py" -DPYTHON_EXECUTABLE="$py" -DBUILD_TESTING=OFF > "$build_dir.log" 2>&1 \
    || { cat "$build_dir.log" >&2; exit 1; }
  { cmake --build "$build_dir" -j "$(nproc)" && cmake --install "$build_dir"; } >> "$build_dir.log" 2>&1 \
    || { tail -50 "$build_dir.log" >&2; exit 1; }
}

# The packages of interfaces/, each a step of its own, stamped with its own files.
build_interfaces() {
  local name=$1 import_check=$2 source="$repo/interfaces/$1"
  local inputs=("$source"/{package.xml,CMakeLists.txt} "$source"/msg/*.msg "$source"/action/*.action)
  needs "$name" "${inputs[@]}" || return 0
  log "building $name into the venv"
  build_interface_package "$name" "$source"
  "$py" -c "$import_check"
  stamp "$name" "${inputs[@]}"
}
# In dependency order (each depends only on std_msgs, from the wheels).
build_interfaces audio_common_msgs 'from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo'
build_interfaces hailo_whisper_msgs 'from hailo_whisper_msgs.msg import Speech, Transcript, Word'

# launch from ../shared/ros-launch unless a system ROS (a sourced /opt/ros) provides it already.
launch_inputs=("$ros_launch"/wheels/*.whl "$repo/requirements-launch.txt" "$ros_launch"/composition_interfaces/{package.xml,CMakeLists.txt} "$ros_launch"/composition_interfaces/srv/*.srv)
if [ ! -d "$ros_launch/wheels" ]; then
  log "no launch wheels: $ros_launch is absent (without a system ROS the launch tests skip)"
elif needs ros_launch "${launch_inputs[@]}"; then
  system_launch=$("$py" -c 'import launch_ros; print(launch_ros.__file__)' 2>/dev/null || true)
  if [ -n "$system_launch" ] && [ "${system_launch#"$venv"/}" = "$system_launch" ]; then
    log "launch_ros from the system ROS: $system_launch"
  else
    log "installing launch, launch_ros, launch_testing, launch_pytest from $ros_launch"
    "$py" -m pip install --quiet --disable-pip-version-check -r "$repo/requirements-launch.txt"
    # --no-deps: the wheels name their ROS dependencies by ROS package name, which the ros-* wheels provide.
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps "$ros_launch"/wheels/*.whl
    log "building composition_interfaces (launch_ros imports it) into the venv"
    build_interface_package composition_interfaces "$ros_launch/composition_interfaces"
    "$py" -c 'import launch_pytest; from launch_ros.actions import Node; from composition_interfaces.srv import LoadNode'
    stamp ros_launch "${launch_inputs[@]}"
  fi
fi

# runtime: a wheel built from a copy of the package's files (package_files, below) and installed as pip installs any
# package, so that what the package ships (package_data: the VAD model, the speech samples; data_files: launch/,
# config/) is what it finds. The copy keeps setuptools' build/ out of the checkout and no file deleted from it in the
# wheel. The stamp holds the names of the files too, so that a renamed file counts as a change.
install_package_copy() {
  local copy
  copy=$(mktemp -d)
  (cd "$repo" && cp --parents "${package_files[@]}" "$copy")
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation "$copy" \
    || { rm -rf "$copy"; exit 1; }
  rm -rf "$copy"
}
if [ "$target" = runtime ]; then
  # The files this package is built from: what setup.py reads and installs.
  mapfile -t package_files < <(cd "$repo" && find setup.py setup.cfg package.xml requirements.txt resource launch \
    config hailo_whisper_ros -type f -not -name '*.pyc' | sort)
  if needs package <(printf '%s\n' "${package_files[@]}") "${package_files[@]/#/$repo/}"; then
    log "installing hailo_whisper_ros from a copy of its files (not editable) into the venv"
    install_package_copy
    stamp package <(printf '%s\n' "${package_files[@]}") "${package_files[@]/#/$repo/}"
  fi
elif needs package "$repo/setup.py" "$repo/setup.cfg" "$repo/package.xml"; then
  log "installing hailo_whisper_ros (editable) and its executables into the venv"
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$repo"
  stamp package "$repo/setup.py" "$repo/setup.cfg" "$repo/package.xml"
fi

# The venv as an ament prefix holding this package the way a colcon install does (share/ and lib/<package>/), so that
# FindPackageShare and launch_ros's Node(package=...) find it with AMENT_PREFIX_PATH=.venv. pip puts the console
# scripts in bin/, not lib/<package>/, and its editable install leaves setup.py's data_files out: share/ then points
# at the checkout (the runtime venv's non-editable install has its own).
index_inputs=("$repo/setup.py" "$repo/package.xml" "${BASH_SOURCE[0]}")
if needs ament_index "${index_inputs[@]}"; then
  log "registering hailo_whisper_ros in the venv's ament index"
  mkdir -p "$venv/share/ament_index/resource_index/packages" "$venv/share/hailo_whisper_ros" "$venv/lib/hailo_whisper_ros"
  if [ "$target" != runtime ]; then
    cp "$repo/resource/hailo_whisper_ros" "$venv/share/ament_index/resource_index/packages/"
    for item in package.xml launch config; do ln -sfn "$repo/$item" "$venv/share/hailo_whisper_ros/$item"; done
  fi
  for executable in $("$py" -c 'from importlib.metadata import entry_points
print(*(e.name for e in entry_points(group="console_scripts") if e.value.startswith("hailo_whisper_ros.")))'); do
    ln -sfn "$venv/bin/$executable" "$venv/lib/hailo_whisper_ros/$executable"
  done
  stamp ament_index "${index_inputs[@]}"
fi

# The exporter skips its work when the directory already holds an export of the same weights. The runtime venv's
# nodes read the export of `make setup` (HAILO_WHISPER_MODEL_DIR) or make their own on first use.
[ -n "${SKIP_EXPORT:-}" ] || [ "$target" = runtime ] \
  || "$py" -m hailo_whisper_ros export tiny.en --out "$repo/models/tiny.en"
log "ready: $venv"
