// Package istio_test checks the Istio example: both files parse strictly
// into the shapes Istio documents (a misspelt key fails), and they agree
// with each other and with what mcpauthz needs from ext_authz.
package istio_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The subsets of Istio's API these examples use. Decoding is strict, so a
// key that is not declared here (a typo, usually) is an error.
type meta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type istioOperator struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   meta   `json:"metadata"`
	Spec       struct {
		MeshConfig struct {
			ExtensionProviders []struct {
				Name              string `json:"name"`
				EnvoyExtAuthzGrpc *struct {
					Service                   string `json:"service"`
					Port                      uint32 `json:"port"`
					Timeout                   string `json:"timeout"`
					FailOpen                  bool   `json:"failOpen"`
					StatusOnError             string `json:"statusOnError"`
					IncludeRequestBodyInCheck *struct {
						MaxRequestBytes     uint32 `json:"maxRequestBytes"`
						AllowPartialMessage bool   `json:"allowPartialMessage"`
						PackAsBytes         bool   `json:"packAsBytes"`
					} `json:"includeRequestBodyInCheck"`
				} `json:"envoyExtAuthzGrpc"`
			} `json:"extensionProviders"`
		} `json:"meshConfig"`
	} `json:"spec"`
}

type operation struct {
	Paths      []string `json:"paths"`
	NotPaths   []string `json:"notPaths"`
	Methods    []string `json:"methods"`
	NotMethods []string `json:"notMethods"`
}

type authorizationPolicy struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   meta   `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Action   string `json:"action"`
		Provider *struct {
			Name string `json:"name"`
		} `json:"provider"`
		Rules []struct {
			To []struct {
				Operation operation `json:"operation"`
			} `json:"to"`
		} `json:"rules"`
	} `json:"spec"`
}

// documents splits a multi-document YAML stream.
func documents(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func loadMesh(b []byte) (*istioOperator, error) {
	var op istioOperator
	if err := yaml.UnmarshalStrict(b, &op); err != nil {
		return nil, fmt.Errorf("parsing mesh config: %w", err)
	}
	return &op, nil
}

func loadPolicies(b []byte) ([]authorizationPolicy, error) {
	var out []authorizationPolicy
	for i, d := range documents(b) {
		var p authorizationPolicy
		if err := yaml.UnmarshalStrict(d, &p); err != nil {
			return nil, fmt.Errorf("parsing document %d: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// check asserts what mcpauthz needs from the pair.
func check(op *istioOperator, pols []authorizationPolicy) error {
	if op.APIVersion != "install.istio.io/v1alpha1" || op.Kind != "IstioOperator" {
		return fmt.Errorf("mesh config is %s %s, want install.istio.io/v1alpha1 IstioOperator", op.APIVersion, op.Kind)
	}
	providers := map[string]bool{}
	for _, p := range op.Spec.MeshConfig.ExtensionProviders {
		g := p.EnvoyExtAuthzGrpc
		if g == nil {
			return fmt.Errorf("provider %q is not envoyExtAuthzGrpc", p.Name)
		}
		providers[p.Name] = true
		switch {
		case g.Service == "" || g.Port != 9191:
			return fmt.Errorf("provider %q: service %q port %d, want mcpauthz's gRPC port 9191", p.Name, g.Service, g.Port)
		case g.FailOpen:
			return fmt.Errorf("provider %q: failOpen must be false", p.Name)
		case g.StatusOnError != "503":
			return fmt.Errorf("provider %q: statusOnError %q, want \"503\"", p.Name, g.StatusOnError)
		case g.IncludeRequestBodyInCheck == nil:
			return fmt.Errorf("provider %q: includeRequestBodyInCheck missing", p.Name)
		case !g.IncludeRequestBodyInCheck.PackAsBytes:
			return fmt.Errorf("provider %q: packAsBytes must be true", p.Name)
		case g.IncludeRequestBodyInCheck.AllowPartialMessage:
			return fmt.Errorf("provider %q: allowPartialMessage must be false", p.Name)
		case g.IncludeRequestBodyInCheck.MaxRequestBytes != 1<<20:
			return fmt.Errorf("provider %q: maxRequestBytes %d, want 1048576", p.Name, g.IncludeRequestBodyInCheck.MaxRequestBytes)
		}
	}
	var custom int
	for _, p := range pols {
		if p.APIVersion != "security.istio.io/v1" || p.Kind != "AuthorizationPolicy" {
			return fmt.Errorf("%s is %s %s", p.Metadata.Name, p.APIVersion, p.Kind)
		}
		if len(p.Spec.Selector.MatchLabels) == 0 {
			return fmt.Errorf("%s: no selector: it would apply to the whole namespace", p.Metadata.Name)
		}
		if !slices.Contains([]string{"ALLOW", "DENY", "AUDIT", "CUSTOM"}, p.Spec.Action) {
			return fmt.Errorf("%s: unknown action %q", p.Metadata.Name, p.Spec.Action)
		}
		if p.Spec.Action != "CUSTOM" {
			continue
		}
		custom++
		if p.Spec.Provider == nil || !providers[p.Spec.Provider.Name] {
			return fmt.Errorf("%s: provider is not one of the mesh's extensionProviders", p.Metadata.Name)
		}
		var mcp bool
		for _, r := range p.Spec.Rules {
			for _, to := range r.To {
				if slices.Contains(to.Operation.Paths, "/mcp") {
					mcp = true
					for _, m := range []string{"POST", "GET", "DELETE"} {
						if len(to.Operation.Methods) > 0 && !slices.Contains(to.Operation.Methods, m) {
							return fmt.Errorf("%s: method %s of /mcp is not checked", p.Metadata.Name, m)
						}
					}
				}
				for _, path := range to.Operation.Paths {
					if strings.HasPrefix(path, "/.well-known/oauth-protected-resource") {
						return fmt.Errorf("%s: the metadata path must stay reachable without a token", p.Metadata.Name)
					}
				}
			}
		}
		if !mcp {
			return fmt.Errorf("%s: /mcp is not sent to mcpauthz", p.Metadata.Name)
		}
	}
	if custom == 0 {
		return errors.New("no CUSTOM AuthorizationPolicy")
	}
	return nil
}

func readFiles(t *testing.T) (mesh, pols string) {
	t.Helper()
	m, err := os.ReadFile("mesh-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.ReadFile("authorization-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(m), string(p)
}

func load(mesh, pols string) error {
	op, err := loadMesh([]byte(mesh))
	if err != nil {
		return err
	}
	ps, err := loadPolicies([]byte(pols))
	if err != nil {
		return err
	}
	return check(op, ps)
}

func TestIstioExample(t *testing.T) {
	mesh, pols := readFiles(t)
	if err := load(mesh, pols); err != nil {
		t.Fatal(err)
	}
}

func TestIstioExampleCatchesMistakes(t *testing.T) {
	mesh, pols := readFiles(t)
	tests := map[string]struct {
		file     string // "mesh" or "policy"
		old, new string
	}{
		"misspelt_body_key":     {"mesh", "packAsBytes: true", "packAsByte: true"},
		"body_as_string":        {"mesh", "packAsBytes: true", "packAsBytes: false"},
		"fail_open":             {"mesh", "failOpen: false", "failOpen: true"},
		"partial_body":          {"mesh", "allowPartialMessage: false", "allowPartialMessage: true"},
		"provider_name_differs": {"policy", "name: mcpauthz\n", "name: mcp-authz\n"},
		"misspelt_action_key":   {"policy", "action: CUSTOM", "acton: CUSTOM"},
		"mcp_path_not_checked":  {"policy", `paths: ["/mcp"]` + "\n        methods", `paths: ["/other"]` + "\n        methods"},
		"get_not_checked":       {"policy", `methods: ["POST", "GET", "DELETE"]`, `methods: ["POST", "DELETE"]`},
		"misspelt_operation":    {"policy", "    - operation:\n        # Exactly", "    - operations:\n        # Exactly"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, p := mesh, pols
			target := &m
			if tc.file == "policy" {
				target = &p
			}
			if !strings.Contains(*target, tc.old) {
				t.Fatalf("%s file no longer contains %q; update this test", tc.file, tc.old)
			}
			*target = strings.Replace(*target, tc.old, tc.new, 1)
			err := load(m, p)
			if err == nil {
				t.Fatalf("replacing %q with %q went unnoticed", tc.old, tc.new)
			}
			t.Logf("caught: %v", err)
		})
	}
}
