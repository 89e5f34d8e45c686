package decision

import (
	"testing"

	"github.com/mcpauthz/mcpauthz/decision/token"
)

// FuzzSessionOwner: the owner encoding gives back the subject it holds,
// two (issuer, subject) pairs never share an owner, and ownerSubject
// reads any string a session store hands back without panicking.
func FuzzSessionOwner(f *testing.F) {
	for _, s := range [][3]string{
		{"https://a.example.com", "alice", ""},
		{"", "a:b", "0::a:b"},
		{"1:x", "y", "3:1:x:y"},
		{"a:b", "c", "a"},
		{"", "", "01::alice"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, iss, sub, stored string) {
		_, _ = ownerSubject(stored)
		tok := &token.Result{Valid: true, Issuer: iss, Subject: sub}
		owner := SessionOwner(tok)
		if sub == "" {
			if owner != "" {
				t.Fatalf("no subject: owner %q", owner)
			}
			return
		}
		got, ok := ownerSubject(owner)
		if !ok || got != sub {
			t.Fatalf("ownerSubject(%q) = %q, %v; want %q", owner, got, ok, sub)
		}
		// Another issuer with the same subject is another owner.
		other := SessionOwner(&token.Result{Valid: true, Issuer: iss + "x", Subject: sub})
		if other == owner {
			t.Fatalf("issuers %q and %q share owner %q", iss, iss+"x", owner)
		}
	})
}
