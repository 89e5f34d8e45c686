// Package keycloak_test checks that the Keycloak realm and the mcpauthz
// configuration of this example agree: the issuer is the realm's URL, the
// audience the realm's scopes put in tokens is the one mcpauthz requires,
// and every scope mcpauthz advertises is a scope the realm grants.
package keycloak_test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

type realm struct {
	Realm        string `json:"realm"`
	Enabled      bool   `json:"enabled"`
	ClientScopes []struct {
		Name            string `json:"name"`
		Protocol        string `json:"protocol"`
		ProtocolMappers []struct {
			ProtocolMapper string            `json:"protocolMapper"`
			Config         map[string]string `json:"config"`
		} `json:"protocolMappers"`
	} `json:"clientScopes"`
	Clients []struct {
		ClientID             string            `json:"clientId"`
		PublicClient         bool              `json:"publicClient"`
		Attributes           map[string]string `json:"attributes"`
		OptionalClientScopes []string          `json:"optionalClientScopes"`
		DefaultClientScopes  []string          `json:"defaultClientScopes"`
	} `json:"clients"`
	Users []struct {
		Username    string `json:"username"`
		Credentials []struct {
			Type string `json:"type"`
		} `json:"credentials"`
	} `json:"users"`
}

type config struct {
	Resource struct {
		URI                  string   `json:"uri"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	} `json:"resource"`
	Tokens struct {
		Issuers []struct {
			Issuer    string `json:"issuer"`
			Discovery bool   `json:"discovery"`
			Audience  string `json:"audience"`
		} `json:"issuers"`
	} `json:"tokens"`
}

func TestRealmMatchesConfig(t *testing.T) {
	b, err := os.ReadFile("realm.json")
	if err != nil {
		t.Fatal(err)
	}
	var r realm
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("realm.json: %v", err)
	}
	cb, err := os.ReadFile("../config/keycloak.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c config
	if err := yaml.Unmarshal(cb, &c); err != nil {
		t.Fatal(err)
	}
	if !r.Enabled || len(c.Tokens.Issuers) != 1 {
		t.Fatalf("realm enabled=%v, %d issuers configured", r.Enabled, len(c.Tokens.Issuers))
	}
	is := c.Tokens.Issuers[0]
	if want := "http://localhost:8180/realms/" + r.Realm; is.Issuer != want || !is.Discovery {
		t.Errorf("issuer %q (discovery %v), want %q from discovery", is.Issuer, is.Discovery, want)
	}
	if !slices.Contains(c.Resource.AuthorizationServers, is.Issuer) {
		t.Errorf("resource.authorization_servers %v lacks the issuer", c.Resource.AuthorizationServers)
	}
	if is.Audience != c.Resource.URI {
		t.Errorf("audience %q is not resource.uri %q", is.Audience, c.Resource.URI)
	}
	scopes := map[string]bool{}
	for _, s := range r.ClientScopes {
		scopes[s.Name] = true
		aud := false
		for _, m := range s.ProtocolMappers {
			if m.ProtocolMapper == "oidc-audience-mapper" && m.Config["included.custom.audience"] == is.Audience && m.Config["access.token.claim"] == "true" {
				aud = true
			}
		}
		if !aud || s.Protocol != "openid-connect" {
			t.Errorf("client scope %s does not put %s in the access token's aud", s.Name, is.Audience)
		}
	}
	for _, s := range c.Resource.ScopesSupported {
		if !scopes[s] {
			t.Errorf("scopes_supported %s is no client scope of the realm", s)
		}
	}
	if len(r.Clients) == 0 {
		t.Fatal("no client")
	}
	for _, cl := range r.Clients {
		if cl.PublicClient && cl.Attributes["pkce.code.challenge.method"] != "S256" {
			t.Errorf("public client %s without PKCE S256", cl.ClientID)
		}
		for _, s := range append(cl.OptionalClientScopes, cl.DefaultClientScopes...) {
			if !scopes[s] {
				t.Errorf("client %s names scope %s the realm does not define", cl.ClientID, s)
			}
		}
	}
	if len(r.Users) == 0 || len(r.Users[0].Credentials) == 0 {
		t.Error("no user with a password to try it with")
	}
}
