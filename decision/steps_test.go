package decision

import (
	"slices"
	"testing"
)

// TestStepOrder pins the order of a request's path: a step moved (the
// token verified before the Origin check, the session bound before the
// revision is known) changes what a request meets first.
func TestStepOrder(t *testing.T) {
	var got []string
	for _, s := range prepareSteps {
		got = append(got, s.name)
	}
	for _, s := range decideSteps {
		got = append(got, s.name)
	}
	want := []string{
		"readable", "policy", "single_headers", "origin", "request_input", "token", "credential_elsewhere", "no_body", "body_limit", "parse", "revision", "method", "session",
		"sender_binding", "session_owner", "confirmation", "evaluate", "confirm", "upstream_credential", "bind_session", "stateless_session", "proof_header", "query_token",
	}
	if !slices.Equal(got, want) {
		t.Errorf("steps = %q\nwant    %q", got, want)
	}
}
