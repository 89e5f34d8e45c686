package confirm

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
)

// Members of a request's params a confirmation does not bind: the retry
// adds inputResponses and requestState, and _meta is the client's own
// (progress tokens, client capabilities), not what the server runs.
var unbound = [...]string{"inputResponses", "requestState", "_meta"}

// Digest is the SHA-256 of params (a JSON object, or empty for none)
// without inputResponses, requestState and _meta, in one canonical form
// (members sorted, numbers as written), so that a retry of the same call
// has the digest its state was sealed with and a call with any other
// argument does not.
func Digest(params []byte) ([]byte, error) {
	params = bytes.TrimSpace(params)
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		sum := sha256.Sum256(nil)
		return sum[:], nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("confirm: params are not a JSON object: %w", err)
	}
	if obj == nil {
		return nil, errors.New("confirm: params are not a JSON object")
	}
	for _, k := range unbound {
		delete(obj, k)
	}
	canon, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("confirm: encoding params: %w", err)
	}
	sum := sha256.Sum256(canon)
	return sum[:], nil
}
