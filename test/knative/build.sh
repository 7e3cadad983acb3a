#!/usr/bin/env bash
# Builds what the test cluster's real node needs to run Knative without a
# registry, from the modules go.mod pins, into bin/ (run by make
# knative-images):
#   bin/images/*.tar   one image per command (the operator, its webhook and
#                      every Knative Eventing 1.23 command the operator
#                      deploys), for node-up.sh to load into the node
#   bin/chart/knative-operator
#                      the operator's Helm chart from the operator module,
#                      its release placeholders filled in
#   bin/operator.values.yaml
#                      chart values naming the operator's images built here
#   bin/platform.env   the --set flags that point the platform file
#                      (scenarios/platform/knative-eventing.yaml) at them
set -euo pipefail
cd "$(dirname "$0")"
nodeimage=${NODEIMAGE:-../cluster/bin/nodeimage}
# The registry that names the images built here; nothing is pulled from
# it: the node finds them loaded.
REGISTRY=${KNATIVE_REGISTRY:-runner.local/knative}
export CGO_ENABLED=0
flags=(-trimpath -ldflags "-s -w")
operator=$(go list -m -f '{{.Version}}' knative.dev/operator)
eventing=$(go list -m -f '{{.Version}}' knative.dev/eventing)
# go list -m names a module's directory only once it is in the module
# cache: a fresh machine has to download it first.
go mod download knative.dev/operator
operator_dir=$(go list -m -f '{{.Dir}}' knative.dev/operator)
if [ -z "$operator_dir" ] || [ ! -d "$operator_dir/cmd/operator/kodata" ]; then
  echo "build.sh: knative.dev/operator $operator has no cmd/operator/kodata in the module cache ($operator_dir)" >&2
  exit 1
fi
rm -rf bin/images bin/chart
mkdir -p bin/operator bin/eventing bin/images bin/chart

echo "building the Knative Operator $operator"
go build "${flags[@]}" -o bin/operator/ knative.dev/operator/cmd/operator knative.dev/operator/cmd/webhook
echo "building Knative Eventing $eventing"
# Every command of go.mod's tool lines but the operator's.
mapfile -t tools < <(sed -n '/^tool (/,/^)/p' go.mod | sed '1d;$d' | tr -d '\t ')
eventing_cmds=()
for t in "${tools[@]}"; do
  case $t in knative.dev/operator/*|"") ;; *) eventing_cmds+=("$t") ;; esac
done
go build "${flags[@]}" -o bin/eventing/ "${eventing_cmds[@]}"

# The operator reads the manifests it installs from its kodata, as ko
# packs them.
"$nodeimage" -binary bin/operator/operator -kodata "$operator_dir/cmd/operator/kodata" \
  -name "$REGISTRY/operator:$operator" -out bin/images/operator.tar
"$nodeimage" -binary bin/operator/webhook -name "$REGISTRY/operator-webhook:$operator" -out bin/images/operator-webhook.tar
# Knative's images by the last element of their names (the operator's
# registry default puts each image's name for ${NAME}).
for b in bin/eventing/*; do
  n=$(basename "$b")
  "$nodeimage" -binary "$b" -name "$REGISTRY/eventing/$n:$eventing" -out "bin/images/eventing-$n.tar"
done

# The chart as the operator module holds it, with the placeholders its
# release fills in: the chart's version and the images' tag.
cp -r "$operator_dir/config/charts/knative-operator" bin/chart/
chmod -R u+w bin/chart
sed -i "s/{{ *version *}}/$operator/" bin/chart/knative-operator/Chart.yaml
sed -i "s/{{ *tag *}}/$operator/" bin/chart/knative-operator/values.yaml
cat >bin/operator.values.yaml <<VALUES
knative_operator:
  knative_operator:
    image: $REGISTRY/operator
    tag: $operator
  operator_webhook:
    image: $REGISTRY/operator-webhook
    tag: $operator
VALUES
cat >bin/platform.env <<ENV
--set operatorRepo= --set operatorChart=$PWD/bin/chart/knative-operator --set operatorVersion=$operator --set operatorValues=$PWD/bin/operator.values.yaml --set registry=$REGISTRY/eventing/\${NAME}:$eventing
ENV
echo "Knative images in $PWD/bin/images: $(ls bin/images | wc -l)"
