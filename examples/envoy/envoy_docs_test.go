package envoy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestDeploymentDocCluster: the ext_authz cluster shown in
// docs/deployment.md (several replicas, health checks, outlier detection)
// is valid Envoy configuration.
func TestDeploymentDocCluster(t *testing.T) {
	b, err := os.ReadFile("../../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	var snippet string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		if strings.HasPrefix(m[1], "clusters:") {
			snippet = m[1]
		}
	}
	if snippet == "" {
		t.Fatal("docs/deployment.md shows no clusters: block")
	}
	var clusters map[string]any
	if err := yaml.Unmarshal([]byte(snippet), &clusters); err != nil {
		t.Fatal(err)
	}
	boot, err := yaml.Marshal(map[string]any{"static_resources": clusters})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := loadBootstrap(boot)
	if err != nil {
		t.Fatal(err)
	}
	cl := bs.GetStaticResources().GetClusters()
	if len(cl) != 1 || len(cl[0].GetHealthChecks()) != 1 || cl[0].GetHealthChecks()[0].GetGrpcHealthCheck() == nil || cl[0].GetOutlierDetection() == nil {
		t.Errorf("the documented cluster lost its gRPC health check or outlier detection: %v", cl)
	}
}
