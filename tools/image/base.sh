#!/usr/bin/env bash
# Makes a local stand-in for the Dockerfile's public base image when no registry can be reached:
# a Debian minbase of the same release (debootstrap) with Python, imported as an image.
#
#   tools/image/base.sh [IMAGE_NAME]        (default localhost/cvi-autoscaler-base:<release>)
#
# The release is the one the public base names (python:3.12-slim-bookworm -> bookworm); Debian's
# Python of that release stands in for the image's. Needs root and debootstrap (installed with
# apt-get when missing); an existing image of that name is kept (BASE_REBUILD=1 remakes it).
# Environment: ENGINE (podman command, default "podman --storage-driver vfs"), DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/../.."

ENGINE=${ENGINE:-podman --storage-driver vfs}
read -r -a engine <<<"$ENGINE"
public=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile | head -n 1)
release=${DEBIAN_RELEASE:-$(printf '%s\n' "${public%%@*}" | sed -n 's/.*-\([a-z]*\)$/\1/p')}
[ -n "$release" ] || { echo "base: cannot tell the Debian release from '$public'" >&2; exit 1; }
name=${1:-localhost/cvi-autoscaler-base:$release}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${BASE_REBUILD:-0}" != 1 ] && "${engine[@]}" image exists "$name"; then
    echo "base: $name exists (BASE_REBUILD=1 remakes it)"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "base: debootstrap needs root" >&2; exit 1; }
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "base: installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap; } \
        </dev/null >/dev/null
fi

root=$(mktemp -d /var/tmp/cvi-autoscaler-base.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
echo "base: debootstrap --variant=minbase $release from $mirror"
debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    "$release" "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# What a slim image leaves out: package caches, lists, documentation.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
tar --numeric-owner -C "$root" -c . \
    | "${engine[@]}" import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' \
        --message "debootstrap --variant=minbase $release + python3" - "$name" >/dev/null
echo "base: $name made ($("${engine[@]}" image inspect --format '{{.Size}}' "$name") bytes)"
