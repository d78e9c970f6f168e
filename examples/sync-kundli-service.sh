#!/usr/bin/env bash
# Refresh the reference service from its own repository: the history bundle (all branches and tags) and the
# checked-out tree of the release tag that relcheck.toml targets. tests/test_reference_service.py checks that
# the two agree.
#
#   examples/sync-kundli-service.sh /path/to/kundli-service-clone [tag]
set -euo pipefail
repo=${1:?usage: $0 REPOSITORY [TAG]}
tag=${2:-v1.1.0}
here=$(cd "$(dirname "$0")" && pwd)
git -C "$repo" bundle create "$here/kundli-service.bundle" --all
rm -rf "$here/kundli-service"
mkdir "$here/kundli-service"
git -C "$repo" archive --format=tar "$tag" | tar -x -C "$here/kundli-service"
echo "synced $tag of $repo into $here"
