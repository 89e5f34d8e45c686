package kubernetes_test

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestKustomizeBase renders the kustomize base with kustomize's library
// (what kubectl apply -k runs) and parses every object strictly into the
// Kubernetes API types: a misspelt field fails here.
func TestKustomizeBase(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), ".")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	var deploy appsv1.Deployment
	var svc corev1.Service
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		kind := r.GetKind()
		kinds[kind]++
		var obj any
		switch kind {
		case "Namespace":
			obj = &corev1.Namespace{}
		case "Deployment":
			obj = &deploy
		case "Service":
			obj = &svc
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "HorizontalPodAutoscaler":
			obj = &autoscalingv2.HorizontalPodAutoscaler{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			t.Fatalf("unexpected kind %s", kind)
		}
		if err := yaml.UnmarshalStrict(y, obj); err != nil {
			t.Errorf("%s %s: %v", kind, r.GetName(), err)
		}
		if kind != "Namespace" && r.GetNamespace() != "mcpauthz" {
			t.Errorf("%s %s in namespace %q", kind, r.GetName(), r.GetNamespace())
		}
		if r.GetLabels()["app.kubernetes.io/name"] != "mcpauthz" {
			t.Errorf("%s %s lacks the common labels", kind, r.GetName())
		}
	}
	want := map[string]int{"Namespace": 1, "Deployment": 1, "Service": 1, "ConfigMap": 1, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("rendered %v, want %v", kinds, want)
	}
	c := deploy.Spec.Template.Spec.Containers
	if len(c) != 1 || c[0].Image != "ghcr.io/mcpauthz/mcpauthz:latest" {
		t.Errorf("containers %+v", c)
	}
	// The common labels must not have changed the selectors the Service
	// and the Deployment already agree on.
	if fmt.Sprint(deploy.Spec.Selector.MatchLabels) != fmt.Sprint(map[string]string{"app": "mcpauthz"}) || fmt.Sprint(svc.Spec.Selector) != fmt.Sprint(map[string]string{"app": "mcpauthz"}) {
		t.Errorf("selectors changed: deployment %v, service %v", deploy.Spec.Selector.MatchLabels, svc.Spec.Selector)
	}
}
