# Sourced by tools/setup.sh and tools/arm64.sh (which define log): the OS packages a group of tests needs.
# ensure_os_packages WHAT PACKAGE...: installs the Debian packages where this runs as root with apt-get (CI's fresh
# Debian machine) and names them otherwise; WHAT ("the microphone tests") is what skips without them. Without them
# only those tests skip (saying why), so a failed install does not end the caller.
ensure_os_packages() {
  local what=$1 missing=() package
  shift
  if ! command -v dpkg-query > /dev/null; then
    log "no dpkg: $what need $* or their like"
    return 0
  fi
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2> /dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get > /dev/null; then
    log "$what skip without: sudo apt-get install --no-install-recommends ${missing[*]}"
    return 0
  fi
  log "installing OS packages: ${missing[*]}"
  local install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
  # The package lists of a fresh machine may be missing or stale: updated only when an install fails without it.
  DEBIAN_FRONTEND=noninteractive "${install[@]}" > /dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${install[@]}" > /dev/null; } \
    || log "apt-get could not install ${missing[*]}: $what skip"
}
