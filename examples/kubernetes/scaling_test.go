package kubernetes_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestScalingObjects: the HorizontalPodAutoscaler scales the Deployment on
// CPU (which the container requests), and the PodDisruptionBudget keeps at
// least one of its pods.
func TestScalingObjects(t *testing.T) {
	b, err := os.ReadFile("mcpauthz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	d := m.deployments[0]
	if len(m.autoscalers) != 1 || len(m.budgets) != 1 {
		t.Fatalf("want one HorizontalPodAutoscaler and one PodDisruptionBudget, got %d and %d", len(m.autoscalers), len(m.budgets))
	}
	h := m.autoscalers[0]
	ref := h.Spec.ScaleTargetRef
	switch {
	case h.APIVersion != "autoscaling/v2":
		t.Errorf("HPA apiVersion %s", h.APIVersion)
	case ref.Kind != "Deployment" || ref.Name != d.Metadata.Name || h.Metadata.Namespace != d.Metadata.Namespace:
		t.Errorf("HPA targets %+v in %s", ref, h.Metadata.Namespace)
	case h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < h.Spec.MinReplicas:
		t.Errorf("HPA replicas %d..%d: keep at least two", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	case len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource.Name != "cpu" || h.Spec.Metrics[0].Resource.Target.Type != "Utilization":
		t.Errorf("HPA metrics %+v, want CPU utilization", h.Spec.Metrics)
	}
	if d.Spec.Template.Spec.Containers[0].Resources.Requests["cpu"] == "" {
		t.Error("CPU utilization needs a CPU request on the container")
	}
	p := m.budgets[0]
	if p.APIVersion != "policy/v1" || p.Spec.MinAvailable < 1 || !subset(p.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
		t.Errorf("PodDisruptionBudget %+v does not keep a pod of the Deployment", p)
	}
}

// TestImageIsWhatMakeBuilds: the Deployment runs the image `make image`
// builds from the Dockerfile, and the Dockerfile builds a static binary
// onto a distroless base, run as a non-root user.
func TestImageIsWhatMakeBuilds(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	im := regexp.MustCompile(`(?m)^IMAGE \?= (\S+)$`).FindSubmatch(mk)
	if im == nil {
		t.Fatal("Makefile has no IMAGE ?= line")
	}
	b, err := os.ReadFile("mcpauthz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	image := m.deployments[0].Spec.Template.Spec.Containers[0].Image
	if repo, _, _ := strings.Cut(image, ":"); repo != string(im[1]) {
		t.Errorf("the Deployment runs %s, make image builds %s", image, im[1])
	}

	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	var user, entrypoint string
	var staticBuild bool
	for _, line := range strings.Split(string(df), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = strings.Join(f[1:], " ")
		case "RUN":
			if strings.Contains(line, "CGO_ENABLED=0") && strings.Contains(line, "go build") {
				staticBuild = true
			}
		}
	}
	if len(froms) < 2 {
		t.Errorf("want a multi-stage build, got FROM %v", froms)
	} else if final := froms[len(froms)-1]; !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage FROM %s, want distroless/static or scratch", final)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q, want a non-root user", user)
	}
	if !staticBuild {
		t.Error("no CGO_ENABLED=0 go build: the binary would need a libc the base image lacks")
	}
	if !strings.Contains(entrypoint, "mcpauthz") {
		t.Errorf("ENTRYPOINT %s", entrypoint)
	}
	// The user the Deployment runs as is the image's.
	if uid := strconv.Itoa(m.deployments[0].Spec.Template.Spec.SecurityContext.RunAsUser); user != uid && !strings.HasPrefix(user, uid+":") {
		t.Errorf("Deployment runAsUser %s, image USER %s", uid, user)
	}
}
