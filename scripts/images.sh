#!/usr/bin/env bash
# `make images`: the operator and API container images, with Docker or Podman.
#
#   IMAGE_REGISTRY   repository prefix (default ghcr.io/perfstack, the names the chart and the operator
#                    default to): $IMAGE_REGISTRY/perfstack-operator, $IMAGE_REGISTRY/perfstack-app
#   IMAGE_TAG        tag (default: the workspace version in Cargo.toml)
#   PLATFORMS        e.g. linux/amd64,linux/arm64: multi-platform build with docker buildx (implies PUSH=1)
#   PUSH=1           push after building
#   CONTAINER_ENGINE docker or podman (default: the first one whose engine answers)
#   BUILD_IMAGE, RUNTIME_IMAGE  base images (default: the public rust and distroless images), e.g.
#                    mirrors in a registry of your own
#
# Without a running container engine (CI here has none) it says so and builds nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$PERFSTACK_ROOT"

REGISTRY=${IMAGE_REGISTRY:-ghcr.io/perfstack}
TAG=${IMAGE_TAG:-$(awk -F'"' '/^\[workspace.package\]/ {p=1} p && /^version/ {print $2; exit}' Cargo.toml)}
PUSH=${PUSH:-0}
PLATFORMS=${PLATFORMS:-}

engine=${CONTAINER_ENGINE:-}
if [[ -z $engine ]]; then
  for candidate in docker podman; do
    if command -v "$candidate" >/dev/null && "$candidate" info >/dev/null 2>&1; then engine=$candidate; break; fi
  done
fi
if [[ -z $engine ]]; then
  echo "make images: no container engine here (neither docker nor podman answers), so no image was built."
  echo "CI for this project has none either. On a machine with Docker or Podman:"
  echo "  IMAGE_REGISTRY=registry.example.com/team PUSH=1 make images"
  exit 0
fi

base_args=()
[[ -z ${BUILD_IMAGE:-} ]] || base_args+=(--build-arg "BUILD_IMAGE=$BUILD_IMAGE")
[[ -z ${RUNTIME_IMAGE:-} ]] || base_args+=(--build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")

build() { # build NAME DOCKERFILE
  local image=$REGISTRY/$1:$TAG
  log "building $image with $engine ($2)"
  if [[ -n $PLATFORMS ]]; then
    [[ $engine == docker ]] || die "PLATFORMS needs docker buildx"
    DOCKER_BUILDKIT=1 docker buildx build --platform "$PLATFORMS" --build-arg "VERSION=$TAG" "${base_args[@]}" \
      -f "$2" -t "$image" --push .
  else
    DOCKER_BUILDKIT=1 "$engine" build --build-arg "VERSION=$TAG" "${base_args[@]}" -f "$2" -t "$image" .
    [[ $PUSH == 1 ]] && "$engine" push "$image"
  fi
  echo "$image"
}

build perfstack-operator operator/Dockerfile
build perfstack-app app/Dockerfile
log "done; install with: helm install perfstack-operator charts/perfstack-operator --set image.repository=$REGISTRY/perfstack-operator --set image.tag=$TAG"
