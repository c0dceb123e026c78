#!/bin/sh
# The configurations shipped with the project load: the example and the
# one inside the Kubernetes ConfigMap.
echo "1..2"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
sidecar="$top_builddir/nats-sidecar"

check() { # name, file
	if "$sidecar" --check-config -c "$2" >"$tmp/out" 2>&1; then
		echo "ok - $1"
	else
		echo "not ok - $1"
		sed 's/^/# /' "$tmp/out"
	fi
}

check "examples/sidecar.yaml loads" "$top_srcdir/examples/sidecar.yaml"
# The ConfigMap holds the file as a block scalar indented by four spaces.
sed -n '/sidecar.yaml: |/,$p' "$top_srcdir/k8s/configmap.yaml" |
	tail -n +2 | sed 's/^    //' >"$tmp/k8s.yaml"
check "the k8s ConfigMap's sidecar.yaml loads" "$tmp/k8s.yaml"
