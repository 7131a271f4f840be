# Shared helpers for perfstack's scripts. Source it; it defines functions only.

# Repository root and the git-ignored runtime folder.
PERFSTACK_ROOT=${PERFSTACK_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
RUN_DIR=${PERFSTACK_RUN_DIR:-$PERFSTACK_ROOT/.run}

log() { echo "perfstack: $*" >&2; }
die() { log "error: $*"; exit 1; }

APT_UPDATED=0
# apt_install PKG... : installs the Debian packages that are not installed yet.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || die "need root to install ${missing[*]} (or install them yourself)"
  if ((APT_UPDATED == 0)); then
    log "apt-get update"
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# pid_alive FILE : the pid recorded in FILE names a running process.
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
