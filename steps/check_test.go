package steps

import "testing"

// TestRenderedObjectMatchesAsKubeWaitNamesIt: kube.wait names a kind as
// the kind, kind.group, or the resource's plural (with its group).
func TestRenderedObjectMatchesAsKubeWaitNamesIt(t *testing.T) {
	for _, tt := range []struct {
		o    renderedObject
		ref  string
		want bool
	}{
		{renderedObject{Kind: "Deployment", Group: "apps"}, "deployment", true},
		{renderedObject{Kind: "Deployment", Group: "apps"}, "Deployment.apps", true},
		{renderedObject{Kind: "Deployment", Group: "apps"}, "deployments.apps", true},
		{renderedObject{Kind: "Deployment", Group: "apps"}, "deployments.batch", false},
		{renderedObject{Kind: "NetworkPolicy", Group: "networking.k8s.io"}, "networkpolicies", true},
		{renderedObject{Kind: "Ingress", Group: "networking.k8s.io"}, "ingresses", true},
		{renderedObject{Kind: "Gateway"}, "gateways", true},
		{renderedObject{Kind: "InMemoryChannel", Group: "messaging.knative.dev"}, "inmemorychannel", true},
		{renderedObject{Kind: "Service"}, "statefulset", false},
	} {
		if got := tt.o.matches(tt.ref); got != tt.want {
			t.Errorf("%s matches %q = %v", tt.o.Kind, tt.ref, got)
		}
	}
}
