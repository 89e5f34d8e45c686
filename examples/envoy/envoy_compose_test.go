package envoy_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeFile is the subset of docker-compose.yaml the checks read.
type composeFile struct {
	Name     string `json:"name"`
	Services map[string]struct {
		Build       any               `json:"build"`
		Image       string            `json:"image"`
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		Volumes     []string          `json:"volumes"`
		Expose      []string          `json:"expose"`
		Ports       []string          `json:"ports"`
		DependsOn   []string          `json:"depends_on"`
	} `json:"services"`
}

// TestComposeExample: docker-compose.yaml's Envoy configuration passes the
// same checks as envoy.yaml, its clusters reach services and ports the
// Compose file defines, and every file the services mount exists.
func TestComposeExample(t *testing.T) {
	y, err := os.ReadFile("envoy-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadBootstrap(y)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMCPSetup(b); err != nil {
		t.Fatal(err)
	}

	cy, err := os.ReadFile("../../docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.UnmarshalStrict(cy, &c); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	for _, name := range []string{"envoy", "mcpauthz", "mcp-server"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yaml has no %s service", name)
		}
	}
	for _, cl := range b.GetStaticResources().GetClusters() {
		for _, e := range cl.GetLoadAssignment().GetEndpoints() {
			for _, lb := range e.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				svc, ok := c.Services[sa.GetAddress()]
				if !ok {
					t.Errorf("cluster %s reaches %s, which is no Compose service", cl.GetName(), sa.GetAddress())
					continue
				}
				port := strconv.Itoa(int(sa.GetPortValue()))
				exposed := false
				for _, p := range svc.Expose {
					exposed = exposed || p == port
				}
				if !exposed {
					t.Errorf("cluster %s reaches %s:%s, which the service does not expose (%v)", cl.GetName(), sa.GetAddress(), port, svc.Expose)
				}
				if cl.GetType().String() != "STRICT_DNS" {
					t.Errorf("cluster %s is %s: a service name needs STRICT_DNS", cl.GetName(), cl.GetType())
				}
			}
		}
	}
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat("../../" + src); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			}
		}
	}
	envoy := c.Services["envoy"]
	if !contains(envoy.Volumes, "./examples/envoy/envoy-compose.yaml:/etc/envoy/envoy.yaml:ro") || !contains(envoy.Command, "/etc/envoy/envoy.yaml") {
		t.Errorf("envoy does not run envoy-compose.yaml: %v %v", envoy.Volumes, envoy.Command)
	}
	if !contains(envoy.Ports, "8080:8080") {
		t.Errorf("envoy publishes %v, want 8080:8080 (the listener)", envoy.Ports)
	}
	m := c.Services["mcpauthz"]
	if m.Build == nil || !contains(m.Command, "--config") {
		t.Errorf("mcpauthz is not built here or runs no config: %+v", m)
	}
	if s := strings.Join(c.Services["mcp-server"].Command, " "); !strings.Contains(s, "@modelcontextprotocol/server-everything") || !strings.Contains(s, "streamableHttp") {
		t.Errorf("mcp-server runs %q", s)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
