// Package kubernetes_test checks the Kubernetes example: every document
// parses strictly into the subset of the Kubernetes API it uses, the
// Deployment mounts the policy ConfigMap as a directory and probes
// /readyz and /healthz, the Service reaches the container's ports, and the
// ConfigMap holds exactly the shipped policy (regenerate with -update).
package kubernetes_test

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/mcpauthz/mcpauthz/policies"
)

var update = flag.Bool("update", false, "rewrite policy-configmap.yaml from policies/")

type meta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type probe struct {
	HTTPGet struct {
		Path string `json:"path"`
		Port string `json:"port"`
	} `json:"httpGet"`
	PeriodSeconds    int `json:"periodSeconds"`
	FailureThreshold int `json:"failureThreshold"`
}

type container struct {
	Name  string   `json:"name"`
	Image string   `json:"image"`
	Args  []string `json:"args"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	ReadinessProbe *probe `json:"readinessProbe"`
	LivenessProbe  *probe `json:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `json:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		SubPath   string `json:"subPath"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"volumeMounts"`
}

type deployment struct {
	header
	Metadata meta `json:"metadata"`
	Spec     struct {
		Replicas int `json:"replicas"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
				SecurityContext              struct {
					RunAsNonRoot   bool `json:"runAsNonRoot"`
					RunAsUser      int  `json:"runAsUser"`
					SeccompProfile struct {
						Type string `json:"type"`
					} `json:"seccompProfile"`
				} `json:"securityContext"`
				Containers []container `json:"containers"`
				Volumes    []struct {
					Name      string `json:"name"`
					ConfigMap *struct {
						Name string `json:"name"`
					} `json:"configMap"`
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type service struct {
	header
	Metadata meta `json:"metadata"`
	Spec     struct {
		Selector map[string]string `json:"selector"`
		Ports    []struct {
			Name        string `json:"name"`
			Port        int    `json:"port"`
			TargetPort  string `json:"targetPort"`
			AppProtocol string `json:"appProtocol"`
		} `json:"ports"`
	} `json:"spec"`
}

type namespace struct {
	header
	Metadata meta `json:"metadata"`
}

type configMap struct {
	header
	Metadata meta              `json:"metadata"`
	Data     map[string]string `json:"data"`
}

type autoscaler struct {
	header
	Metadata meta `json:"metadata"`
	Spec     struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicas int `json:"minReplicas"`
		MaxReplicas int `json:"maxReplicas"`
		Metrics     []struct {
			Type     string `json:"type"`
			Resource struct {
				Name   string `json:"name"`
				Target struct {
					Type               string `json:"type"`
					AverageUtilization int    `json:"averageUtilization"`
				} `json:"target"`
			} `json:"resource"`
		} `json:"metrics"`
	} `json:"spec"`
}

type disruptionBudget struct {
	header
	Metadata meta `json:"metadata"`
	Spec     struct {
		MinAvailable int `json:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
	} `json:"spec"`
}

type manifest struct {
	namespaces  []namespace
	deployments []deployment
	services    []service
	autoscalers []autoscaler
	budgets     []disruptionBudget
}

func documents(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func parse(b []byte) (*manifest, error) {
	var m manifest
	for i, d := range documents(b) {
		var h header
		if err := yaml.Unmarshal(d, &h); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var err error
		switch h.Kind {
		case "Namespace":
			var v namespace
			err = yaml.UnmarshalStrict(d, &v)
			m.namespaces = append(m.namespaces, v)
		case "Deployment":
			var v deployment
			err = yaml.UnmarshalStrict(d, &v)
			m.deployments = append(m.deployments, v)
		case "Service":
			var v service
			err = yaml.UnmarshalStrict(d, &v)
			m.services = append(m.services, v)
		case "HorizontalPodAutoscaler":
			var v autoscaler
			err = yaml.UnmarshalStrict(d, &v)
			m.autoscalers = append(m.autoscalers, v)
		case "PodDisruptionBudget":
			var v disruptionBudget
			err = yaml.UnmarshalStrict(d, &v)
			m.budgets = append(m.budgets, v)
		default:
			err = fmt.Errorf("unexpected kind %q", h.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, h.Kind, err)
		}
	}
	return &m, nil
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// check asserts what running mcpauthz needs from the manifest.
func check(m *manifest) error {
	if len(m.deployments) != 1 || len(m.services) != 1 {
		return fmt.Errorf("want one Deployment and one Service, got %d and %d", len(m.deployments), len(m.services))
	}
	d, s := m.deployments[0], m.services[0]
	if d.APIVersion != "apps/v1" || s.APIVersion != "v1" {
		return fmt.Errorf("apiVersions %s, %s", d.APIVersion, s.APIVersion)
	}
	tpl := d.Spec.Template
	if !subset(d.Spec.Selector.MatchLabels, tpl.Metadata.Labels) {
		return fmt.Errorf("deployment selector %v does not match its pods %v", d.Spec.Selector.MatchLabels, tpl.Metadata.Labels)
	}
	if !subset(s.Spec.Selector, tpl.Metadata.Labels) {
		return fmt.Errorf("service selector %v does not match the pods %v", s.Spec.Selector, tpl.Metadata.Labels)
	}
	if d.Metadata.Namespace != s.Metadata.Namespace {
		return fmt.Errorf("deployment in %q, service in %q", d.Metadata.Namespace, s.Metadata.Namespace)
	}
	if len(tpl.Spec.Containers) != 1 {
		return fmt.Errorf("want one container, got %d", len(tpl.Spec.Containers))
	}
	c := tpl.Spec.Containers[0]

	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != 9191 || ports["http"] != 8181 {
		return fmt.Errorf("container ports %v, want grpc 9191 and http 8181", ports)
	}
	for _, p := range s.Spec.Ports {
		if _, ok := ports[p.TargetPort]; !ok {
			return fmt.Errorf("service port %s targets %q, which the container does not name", p.Name, p.TargetPort)
		}
		if p.Name == "grpc" && p.AppProtocol != "grpc" {
			return fmt.Errorf("service port grpc has appProtocol %q, want grpc", p.AppProtocol)
		}
	}

	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != "http" {
		return fmt.Errorf("readiness probe must GET /readyz on the http port")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port != "http" {
		return fmt.Errorf("liveness probe must GET /healthz on the http port")
	}

	// The policy ConfigMap, mounted whole as a directory, and that
	// directory passed to mcpauthz.
	var volume string
	for _, v := range tpl.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == "mcpauthz-policy" {
			volume = v.Name
		}
	}
	if volume == "" {
		return fmt.Errorf("no volume from ConfigMap mcpauthz-policy")
	}
	var mountPath string
	for _, vm := range c.VolumeMounts {
		if vm.Name != volume {
			continue
		}
		if vm.SubPath != "" {
			return fmt.Errorf("policy mounted with subPath %q: ConfigMap updates would never arrive", vm.SubPath)
		}
		if !vm.ReadOnly {
			return fmt.Errorf("policy volume must be mounted read-only")
		}
		mountPath = vm.MountPath
	}
	if mountPath == "" {
		return fmt.Errorf("policy volume %q is not mounted", volume)
	}
	if !containsArg(c.Args, "--bundle="+mountPath) {
		return fmt.Errorf("args %v do not load the bundle from %s", c.Args, mountPath)
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || !tpl.Spec.SecurityContext.RunAsNonRoot {
		return fmt.Errorf("container must run as non-root with a read-only root filesystem")
	}
	return nil
}

func containsArg(args []string, want string) bool {
	for _, a := range args {
		if a == want {
			return true
		}
	}
	return false
}

func TestKubernetesExample(t *testing.T) {
	b, err := os.ReadFile("mcpauthz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(m); err != nil {
		t.Fatal(err)
	}
	if len(m.namespaces) != 1 || m.namespaces[0].Metadata.Name != m.deployments[0].Metadata.Namespace {
		t.Fatal("the manifest must create the namespace it deploys into")
	}
}

func TestKubernetesExampleCatchesMistakes(t *testing.T) {
	b, err := os.ReadFile("mcpauthz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct{ old, new string }{
		"misspelt_probe_key":  {"readinessProbe:", "readinesProbe:"},
		"wrong_ready_path":    {"path: /readyz", "path: /ready"},
		"wrong_live_path":     {"path: /healthz", "path: /health"},
		"sub_path_mount":      {"mountPath: /etc/mcpauthz/policy\n", "mountPath: /etc/mcpauthz/policy\n          subPath: authz.rego\n"},
		"writable_mount":      {"readOnly: true\n      volumes", "readOnly: false\n      volumes"},
		"wrong_configmap":     {"name: mcpauthz-policy", "name: mcpauthz-policies"},
		"bundle_path_differs": {"--bundle=/etc/mcpauthz/policy", "--bundle=/policy"},
		"service_misses_pods": {"  selector:\n    app: mcpauthz", "  selector:\n    app: mcp-authz"},
		"bad_target_port":     {"targetPort: grpc", "targetPort: grcp"},
		"grpc_port_moved":     {"containerPort: 9191", "containerPort: 9192"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := string(b)
			if !strings.Contains(s, tc.old) {
				t.Fatalf("mcpauthz.yaml no longer contains %q; update this test", tc.old)
			}
			m, err := parse([]byte(strings.Replace(s, tc.old, tc.new, 1)))
			if err == nil {
				err = check(m)
			}
			if err == nil {
				t.Fatalf("replacing %q with %q went unnoticed", tc.old, tc.new)
			}
			t.Logf("caught: %v", err)
		})
	}
}

// policyConfigMap renders the shipped policy (without its tests) as the
// ConfigMap the Deployment mounts.
func policyConfigMap(t *testing.T) []byte {
	t.Helper()
	cm := configMap{
		header:   header{APIVersion: "v1", Kind: "ConfigMap"},
		Metadata: meta{Name: "mcpauthz-policy", Namespace: "mcpauthz"},
		Data:     map[string]string{},
	}
	err := fs.WalkDir(policies.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		// Only what the bundle loader reads, and no tests: the schema is
		// compiled into the binary, and tests are not served.
		if strings.HasSuffix(p, "_test.rego") || strings.Contains(p, "/") {
			return nil
		}
		b, err := fs.ReadFile(policies.FS(), p)
		if err != nil {
			return err
		}
		cm.Data[p] = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("reading policies: %v", err)
	}
	out, err := yaml.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	head := "# Generated from policies/ by `go test ./examples/kubernetes -update`; do not edit.\n" +
		"# Files: " + strings.Join(keys, ", ") + "\n"
	return append([]byte(head), out...)
}

func TestPolicyConfigMap(t *testing.T) {
	want := policyConfigMap(t)
	if *update {
		if err := os.WriteFile("policy-configmap.yaml", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("policy-configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("policy-configmap.yaml is out of date with policies/; run go test ./examples/kubernetes -update")
	}
	var cm configMap
	if err := yaml.UnmarshalStrict(got, &cm); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{".manifest", "data.json", "authz.rego", "visible.rego"} {
		if _, ok := cm.Data[k]; !ok {
			t.Errorf("ConfigMap lacks %s", k)
		}
	}
}
