#!/usr/bin/env bash
# collector-at.sh REF: print the path of otelcol-siphon built at git ref REF,
# building it first when the cache does not hold it. Binaries are cached by
# commit under $SIPHON_BENCH_BIN_CACHE (default .bench/bin), as
# <commit>/otelcol-siphon, so that benchmarks of several worktrees share one
# baseline build; a lock (flock) per commit makes a second caller wait for
# the first one's build instead of building again. The build is `make
# distro`'s: ocb ($OCB) on that commit's builder-config.yaml, in a detached
# git worktree, with the caller's Go build cache.
set -euo pipefail
ref=${1:?usage: collector-at.sh REF}
: "${OCB:?OCB names the collector builder (make sets it)}"
repo=$(git rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse --verify "$ref^{commit}")
cache=${SIPHON_BENCH_BIN_CACHE:-$repo/.bench/bin}
dir=$cache/$commit
bin=$dir/otelcol-siphon
mkdir -p "$dir"
exec 9>"$dir.lock"
flock 9
if [ ! -x "$bin" ]; then
	src=$(mktemp -d "${TMPDIR:-/tmp}/siphon-bench-src.XXXXXX")
	trap 'git -C "$repo" worktree remove --force "$src" >/dev/null 2>&1 || true; rm -rf "$src"' EXIT
	git -C "$repo" worktree add -f --detach "$src" "$commit" >/dev/null
	echo "building otelcol-siphon at $commit into $bin" >&2
	(cd "$src" && CGO_ENABLED=0 "$OCB" --config builder-config.yaml >&2)
	cp "$src/distro/_build/otelcol-siphon" "$bin.tmp"
	mv "$bin.tmp" "$bin"
fi
echo "$bin"
