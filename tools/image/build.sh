#!/usr/bin/env bash
# Builds the image from the repository's Dockerfile with podman or docker, whichever works here,
# and fills in the OCI labels (version from pyproject.toml, git commit, repository URL, time).
#
#   tools/image/build.sh                    (what `make image` runs)
#
# Environment: IMAGE (tag, default cvi-autoscaler:<version>), REVISION and SOURCE (labels; default
# the clone's HEAD and remote.origin.url), ENGINE (e.g. "docker" or
# "podman --storage-driver vfs"; default: podman if installed, else docker if its daemon answers),
# BASE_IMAGE (default: the Dockerfile's public one), WHEELHOUSE (non-empty: install only from
# build/wheelhouse/, no package index).
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n 1)
IMAGE=${IMAGE:-cvi-autoscaler:$version}
if [ -z "${ENGINE:-}" ]; then
    if command -v podman >/dev/null 2>&1; then
        ENGINE=podman
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        ENGINE=docker
    else
        echo "image: neither podman nor a working docker here (Debian: apt-get install podman)" >&2
        exit 1
    fi
fi
read -r -a engine <<<"$ENGINE"

args=(build --file Dockerfile --tag "$IMAGE"
    --build-arg "VERSION=$version"
    --build-arg "REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
    --build-arg "SOURCE=${SOURCE:-$(git config --get remote.origin.url 2>/dev/null || true)}"
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
[ -z "${BASE_IMAGE:-}" ] || args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[ -z "${WHEELHOUSE:-}" ] || args+=(--build-arg "WHEELHOUSE=$WHEELHOUSE")
if [ "$(basename "${engine[0]}")" = podman ]; then
    # Docker's format keeps HEALTHCHECK (OCI's drops it); chroot isolation needs no runtime
    # cgroups and uses the host's network for the build steps.
    args+=(--format docker --isolation chroot)
fi
echo "image: ${engine[*]} ${args[*]} ."
exec "${engine[@]}" "${args[@]}" .
