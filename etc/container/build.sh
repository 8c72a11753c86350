#!/bin/sh
# Build the container image (etc/container/Containerfile) from this checkout's
# HEAD: the .deb with dpkg-buildpackage in a temporary copy, then the image
# mxrelay:VERSION with podman or docker (CONTAINER_ENGINE chooses). Downloads
# the base image and the .deb's dependencies. Exit 69 when no engine runs.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
	for e in podman docker; do
		if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then
			engine=$e
			break
		fi
	done
fi
if [ -z "$engine" ]; then
	echo "build.sh: neither \`podman info\` nor \`docker info\` works here: image not built" >&2
	exit 69
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src" "$work/ctx"
git -C "$src" archive HEAD | tar -x -C "$work/src"
(cd "$work/src" && DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b)
version=$(cd "$work/src" && dpkg-parsechangelog -S Version)
cp "$work"/mxrelay_*_amd64.deb "$src/etc/container/Containerfile" "$work/ctx/"
"$engine" build -t "mxrelay:${version%-*}" -f "$work/ctx/Containerfile" "$work/ctx"
echo "build.sh: built mxrelay:${version%-*} with $engine"
