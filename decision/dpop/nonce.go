package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultNonceWindow is how long one nonce bucket lasts when
// tokens.dpop.nonce.window is not set: a nonce is accepted for one to two
// windows after it was issued.
const DefaultNonceWindow = 5 * time.Minute

// minNonceSecret is the fewest bytes a nonce key may have: the HMAC is
// only as strong as its key.
const minNonceSecret = 32

// maxNonceBytes bounds a nonce read from a proof: an issued one is the key
// id, a dot and 43 characters.
const maxNonceBytes = 128

// NonceKey is one key nonces are made or checked with (RFC 9449 §8).
type NonceKey struct {
	// ID names the key in the nonces it makes, so that a verifier picks
	// it without trying every key: letters, digits, '-' and '_'.
	ID string
	// Secret is the HMAC key, at least 32 bytes, the same on every
	// replica.
	Secret []byte
}

// Nonces makes and checks server nonces (RFC 9449 §8) without a store: a
// nonce is a key id and the HMAC-SHA256, under that key, of the current
// time bucket. Every replica that shares the keys accepts the nonces of
// the others. The first key issues, every key verifies, so a key is
// rotated by putting the new one first and removing the old one a window
// later. It is safe for concurrent use.
type Nonces struct {
	keys   []NonceKey
	window time.Duration
}

// NewNonces returns Nonces for keys (the first issues) and window (0:
// DefaultNonceWindow).
func NewNonces(keys []NonceKey, window time.Duration) (*Nonces, error) {
	if len(keys) == 0 {
		return nil, errors.New("dpop: nonces need at least one key")
	}
	if window < 0 {
		return nil, errors.New("dpop: the nonce window is negative")
	}
	if window == 0 {
		window = DefaultNonceWindow
	}
	if window < time.Second {
		return nil, fmt.Errorf("dpop: the nonce window %v is shorter than a second", window)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k.ID == "" || strings.Trim(k.ID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return nil, fmt.Errorf("dpop: nonce key id %q: use letters, digits, '-' and '_' only", k.ID)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("dpop: nonce key id %q is given twice", k.ID)
		}
		seen[k.ID] = true
		if len(k.Secret) < minNonceSecret {
			return nil, fmt.Errorf("dpop: nonce key %q has %d bytes; use at least %d random bytes", k.ID, len(k.Secret), minNonceSecret)
		}
	}
	return &Nonces{keys: keys, window: window}, nil
}

// bucket is the number of the window holding t.
func (n *Nonces) bucket(t time.Time) uint64 { return uint64(t.UnixNano() / int64(n.window)) }

// mac is the nonce of key for bucket b.
func mac(k *NonceKey, b uint64) string {
	h := hmac.New(sha256.New, k.Secret)
	var in [8]byte
	binary.BigEndian.PutUint64(in[:], b)
	h.Write([]byte("mcpauthz dpop nonce\x00"))
	h.Write(in[:])
	return k.ID + "." + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Issue returns the nonce to give clients at now, made with the first
// key.
func (n *Nonces) Issue(now time.Time) string { return mac(&n.keys[0], n.bucket(now)) }

// Valid reports whether nonce was issued, with any of the keys, in the
// bucket of now or the one before.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	if len(nonce) > maxNonceBytes {
		return false
	}
	id, _, ok := strings.Cut(nonce, ".")
	if !ok {
		return false
	}
	b := n.bucket(now)
	for i := range n.keys {
		k := &n.keys[i]
		if k.ID != id {
			continue
		}
		// Both buckets are computed so that the time taken says nothing
		// of which one matched.
		cur := hmac.Equal([]byte(mac(k, b)), []byte(nonce))
		prev := hmac.Equal([]byte(mac(k, b-1)), []byte(nonce))
		return cur || prev
	}
	return false
}
