package decision

import "github.com/mcpauthz/mcpauthz/internal/redact"

// Redacted replaces the value of every credential in the policy input:
// query parameters and headers that carry one keep their name, so a policy
// can still see that a credential was sent there, but never its value.
// Because the input is erased when it is built, nothing that reads it
// (decision logs, evaluation errors, the eval command) can leak a secret.
// The rules are internal/redact's, shared with the decision log, the
// service log and the bundle status.
const Redacted = redact.Redacted

// redactHeader returns the value a header has in the policy input: Redacted
// for a credential (by its name or its value's shape); a URL (referer,
// x-envoy-original-path) with the credentials of its query erased; else the
// value as sent.
func redactHeader(name, value string) string { return redact.Header(name, value) }

// redactQuery returns the raw query with the value of every credential
// parameter replaced by Redacted, and q itself when it holds none (see
// redact.Query).
func redactQuery(q string) string { return redact.Query(q) }
