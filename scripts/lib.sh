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

# shared_folder OVERRIDE NAME FILE : prints the folder NAME of ../shared (OVERRIDE when set, else
# ../shared/NAME beside the checkout, else one level further up, where worktrees sit) whose FILE is
# executable; fails when there is none.
shared_folder() {
  local override=$1 name=$2 file=$3 candidate
  for candidate in "$override" "$PERFSTACK_ROOT/../shared/$name" "$PERFSTACK_ROOT/../../shared/$name"; do
    [[ -n $candidate && -x $candidate/$file ]] && { (cd "$candidate" && pwd); return 0; }
  done
  return 1
}

# k8s_lab_dir : prints the k8s-lab folder ($K8S_LAB, else ../shared/k8s-lab, else ../../shared/k8s-lab).
k8s_lab_dir() { shared_folder "${K8S_LAB:-}" k8s-lab up.sh; }

# bench_peers_dir : prints the folder of the side-by-side benchmark's peers ($PERFSTACK_BENCH_PEERS,
# else ../shared/bench-peers, else ../../shared/bench-peers).
bench_peers_dir() { shared_folder "${PERFSTACK_BENCH_PEERS:-}" bench-peers express-seed/run-local.sh; }

# bench_measured PATH... : two lines naming when, at which commit (marked "+local changes" when PATH...
# differ from it) and on what machine a benchmark ran; the second line has no end punctuation.
bench_measured() {
  local commit
  commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- "$@" || echo "+local changes")
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$commit\` on $(nproc) cores"
  printf '(%s), %s memory' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
    "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
}

# replace_generated_block DOC MARKER BLOCK : puts the file BLOCK (which holds its own
# "<!-- MARKER:begin" and "<!-- MARKER:end -->" lines) in place of DOC's block of that MARKER,
# keeping the prose around it.
replace_generated_block() {
  local doc=$1 marker=$2 block=$3
  awk -v block="$block" -v begin="<!-- $marker:begin" -v end="<!-- $marker:end -->" '
    index($0, begin) == 1 { while ((getline line < block) > 0) print line; skip = 1; next }
    index($0, end) == 1 { skip = 0; next }
    !skip { print }' "$doc" >"$block.doc"
  cp "$block.doc" "$doc"
}
