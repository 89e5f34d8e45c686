// Package confirm seals and opens the requestState mcpauthz issues when a
// policy asks the caller's own user to confirm a call (MCP 2026-07-28
// Multi Round-Trip Requests: an input_required result, then a retry that
// echoes the state).
//
// The state is attacker-controlled input that decides an authorization,
// so it is sealed with AES-256-GCM under a key ring from configuration
// (the first key seals, every key opens, so keys rotate with overlap; the
// key id travels in the clear beside the ciphertext and is authenticated),
// bound to the principal, the method and a digest of the request's
// params, short-lived, and consumed once through the shared state.
package confirm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Reasons an Open or Redeem refuses a state. The engine answers each with
// a denial; none is ever read as an allow.
var (
	// ErrMalformed: not base64url exactly as issued (re-encoded, padded,
	// cut, wrapped) or not a state of this format.
	ErrMalformed = errors.New("confirm: requestState is malformed")
	// ErrUnknownKey: sealed under a key id the ring does not hold (retired,
	// or never ours).
	ErrUnknownKey = errors.New("confirm: requestState was sealed under an unknown key")
	// ErrForged: the AEAD did not authenticate it (tampered, or sealed by
	// someone without the key).
	ErrForged = errors.New("confirm: requestState does not authenticate")
	// ErrExpired: its expiry has passed.
	ErrExpired = errors.New("confirm: requestState has expired")
	// ErrOtherPrincipal: issued to another caller.
	ErrOtherPrincipal = errors.New("confirm: requestState was issued to another caller")
	// ErrOtherRequest: issued for another method or other params (same tool,
	// other arguments).
	ErrOtherRequest = errors.New("confirm: requestState was issued for another request")
	// ErrReplayed: it was redeemed before.
	ErrReplayed = errors.New("confirm: requestState was already used")
	// ErrStore: the shared state could not say whether it was used before;
	// the caller refuses with 503 (fail closed).
	ErrStore = errors.New("confirm: the shared state could not be reached")
)

const (
	version   = 1
	keySize   = 32 // AES-256
	nonceSize = 12 // GCM's standard nonce
	// MaxKeyIDLen bounds a key id: it travels in every state.
	MaxKeyIDLen = 32
	// MaxSealedLen bounds the sealed text Open reads, so a client cannot
	// make the engine decode a large value.
	MaxSealedLen = 8192
	// DefaultTTL is how long a confirmation may take when configuration
	// sets none.
	DefaultTTL = 5 * time.Minute
)

// Key is one key of the ring: an id (carried in each state, so a state
// names the key that opens it) and a 32-byte secret.
type Key struct {
	ID     string
	Secret []byte
}

// State is what a sealed requestState carries.
type State struct {
	// Owner is the principal (issuer and subject) the state was issued to,
	// as decision.SessionOwner encodes it.
	Owner string `json:"o"`
	// Method is the JSON-RPC method it was issued for.
	Method string `json:"m"`
	// Digest is Digest(params) of the request it was issued for.
	Digest []byte `json:"d"`
	// DecisionID is the id of the decision that asked for confirmation.
	DecisionID string `json:"i"`
	// ServerState is the server's own requestState the request carried,
	// restored before forwarding ("" when none).
	ServerState string `json:"s,omitempty"`
	// Expires is when it stops opening, in Unix seconds (set by Seal).
	Expires int64 `json:"e"`
}

// Binding is what a retry must match: its principal, method and params
// digest.
type Binding struct {
	Owner  string
	Method string
	Digest []byte
}

// OnceStore is the part of the shared state (decision/state.Store) a
// Ring needs to consume a state once.
type OnceStore interface {
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Ring seals with its first key and opens with any of them.
type Ring struct {
	ids   []string
	aeads []cipher.AEAD
	ttl   time.Duration
	now   func() time.Time
}

// NewRing returns a ring of keys (the first seals) whose states live ttl
// (DefaultTTL when 0).
func NewRing(keys []Key, ttl time.Duration) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("confirm: no key: give confirm.keys at least one {id, secret_file}")
	}
	if ttl < 0 {
		return nil, fmt.Errorf("confirm: ttl %v is negative", ttl)
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	r := &Ring{ttl: ttl, now: time.Now}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if k.ID == "" || len(k.ID) > MaxKeyIDLen {
			return nil, fmt.Errorf("confirm: key id %q must be 1 to %d bytes", k.ID, MaxKeyIDLen)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("confirm: key id %q is given twice: give each key its own id", k.ID)
		}
		seen[k.ID] = true
		if len(k.Secret) != keySize {
			return nil, fmt.Errorf("confirm: key %q has %d bytes, want %d (e.g. head -c 32 /dev/urandom > FILE)", k.ID, len(k.Secret), keySize)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("confirm: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("confirm: key %q: %w", k.ID, err)
		}
		r.ids = append(r.ids, k.ID)
		r.aeads = append(r.aeads, aead)
	}
	return r, nil
}

// TTL is how long a state issued now stays valid.
func (r *Ring) TTL() time.Duration { return r.ttl }

// Seal returns s sealed under the ring's first key, expiring TTL from now,
// as unpadded base64url.
//
// The sealed bytes are: version, key id length, key id, nonce, then the
// AEAD ciphertext of s's JSON; version and key id are the additional data.
func (r *Ring) Seal(s State) (string, error) {
	s.Expires = r.now().Add(r.ttl).Unix()
	plain, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("confirm: encoding the state: %w", err)
	}
	id := r.ids[0]
	head := make([]byte, 0, 2+len(id)+nonceSize+len(plain)+r.aeads[0].Overhead())
	head = append(head, version, byte(len(id)))
	head = append(head, id...)
	ad := head
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("confirm: reading a nonce: %w", err)
	}
	out := append(head, nonce...)
	out = r.aeads[0].Seal(out, nonce, plain, ad)
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// Open authenticates sealed and checks it against want: the principal,
// the method and the digest, and its expiry. It does not consume it
// (Redeem does).
func (r *Ring) Open(sealed string, want Binding) (State, error) {
	var s State
	if len(sealed) == 0 || len(sealed) > MaxSealedLen {
		return s, ErrMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sealed)
	// The decoder skips CR and LF: only the exact text issued is accepted.
	if err != nil || base64.RawURLEncoding.EncodeToString(raw) != sealed {
		return s, ErrMalformed
	}
	if len(raw) < 2 || raw[0] != version {
		return s, ErrMalformed
	}
	idLen := int(raw[1])
	if idLen == 0 || len(raw) < 2+idLen+nonceSize {
		return s, ErrMalformed
	}
	ad, id := raw[:2+idLen], string(raw[2:2+idLen])
	nonce, ct := raw[2+idLen:2+idLen+nonceSize], raw[2+idLen+nonceSize:]
	var aead cipher.AEAD
	for i := range r.ids {
		if r.ids[i] == id {
			aead = r.aeads[i]
			break
		}
	}
	if aead == nil {
		return s, ErrUnknownKey
	}
	if len(ct) < aead.Overhead() {
		return s, ErrMalformed
	}
	plain, err := aead.Open(nil, nonce, ct, ad)
	if err != nil {
		return s, ErrForged
	}
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil || dec.More() {
		// Authenticated but not ours to read: another version's layout.
		return State{}, ErrMalformed
	}
	switch {
	case r.now().Unix() >= s.Expires:
		return State{}, ErrExpired
	case s.Owner != want.Owner:
		return State{}, ErrOtherPrincipal
	case s.Method != want.Method || !bytes.Equal(s.Digest, want.Digest):
		return State{}, ErrOtherRequest
	}
	return s, nil
}

// Redeem opens sealed and consumes it: of any number of retries carrying
// it, on any replica sharing store, one is let through, the others get
// ErrReplayed. A store error is ErrStore (wrapped), for a 503.
func (r *Ring) Redeem(ctx context.Context, store OnceStore, sealed string, want Binding) (State, error) {
	s, err := r.Open(sealed, want)
	if err != nil {
		return State{}, err
	}
	// The marker lives as long as the state could still open.
	ttl := time.Unix(s.Expires, 0).Sub(r.now()) + time.Second
	if ttl <= time.Second || ttl > r.ttl+time.Second {
		ttl = r.ttl + time.Second
	}
	sum := sha256.Sum256([]byte(sealed))
	first, err := store.Once(ctx, "confirm:"+base64.RawURLEncoding.EncodeToString(sum[:]), ttl)
	if err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	if !first {
		return State{}, ErrReplayed
	}
	return s, nil
}
