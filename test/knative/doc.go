// Package knative pins the upstream Knative Operator and Knative Eventing
// whose commands the test cluster's real node runs: Knative publishes its
// images to a registry this machine cannot reach, so `make knative-images`
// builds them here from these modules' sources (knative.dev/operator
// v0.50.1, knative.dev/eventing v0.50.0, Knative 1.23) and loads them into
// the node. Nothing of them is copied into this repository: go.mod's tool
// lines name the commands, and the operator's Helm chart and manifests are
// read from the module cache at build time.
package knative
