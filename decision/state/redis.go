package state

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	// go-redis rather than valkey-go: it is Redis's own maintained client,
	// speaks to Redis 7 and Valkey alike, gives standalone and Cluster one
	// interface (UniversalClient), reconnects on its own, and bounds every
	// command by its context (ContextTimeoutEnabled), which is how no call
	// waits past read_timeout. valkey-go's client-side
	// caching and auto-pipelining buy nothing for single-key commands.
	"github.com/redis/go-redis/v9"
)

// Defaults of RedisOptions.
const (
	DefaultKeyPrefix   = "mcpauthz:"
	DefaultReadTimeout = 50 * time.Millisecond
	DefaultDialTimeout = time.Second
)

// keyVersion is in every key: a change of what keys hold changes it, so
// replicas of two versions never read each other's values.
const keyVersion = "v1"

// RedisOptions configure the Redis backend.
type RedisOptions struct {
	// Addresses are host:port of the server, or seeds of a Cluster.
	Addresses []string
	// Cluster uses Redis Cluster even with one address (a configuration
	// endpoint); more than one address always means Cluster.
	Cluster bool
	// Username and Password authenticate (ACL user; Username "" is the
	// default user).
	Username, Password string
	// TLS, when set, connects with TLS.
	TLS *tls.Config
	// DB selects a database (standalone only).
	DB int
	// KeyPrefix starts every key (DefaultKeyPrefix when "").
	KeyPrefix string
	// DialTimeout bounds one connection attempt; an operation still never
	// waits longer than ReadTimeout for one.
	DialTimeout time.Duration
	// ReadTimeout bounds each operation, connecting included
	// (DefaultReadTimeout when 0).
	ReadTimeout time.Duration
	// PoolSize is the number of connections per node (go-redis's default,
	// ten per core, when 0).
	PoolSize int
}

// Redis is the store shared by replicas: one Redis or Valkey, standalone or
// Cluster. Every operation is one atomic command (SET NX PX, GETDEL) or a
// short Lua script on one key, so replicas never both win a race. Keys are
// prefix + "v1:" + kind + ":{" + SHA-256 of the id + "}": the braces make
// the hashed id the Cluster hash tag, and ids from clients never reach
// Redis as they are.
type Redis struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
}

var _ Store = (*Redis)(nil)

// claimScript sets KEYS[1] to ARGV[1] unless it holds a value, renews the
// TTL when it already holds ARGV[1], and returns the value held.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
`)

// casScript sets KEYS[1] to ARGV[2] with TTL ARGV[3] if it holds ARGV[1].
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

// NewRedis returns the Redis store. It does not connect: connections are
// made, and remade after a failure, as operations need them.
func NewRedis(o RedisOptions) (*Redis, error) {
	if len(o.Addresses) == 0 {
		return nil, errors.New("state: redis needs at least one address")
	}
	if o.DB != 0 && (o.Cluster || len(o.Addresses) > 1) {
		return nil, errors.New("state: redis Cluster has only database 0")
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         o.Addresses,
		IsClusterMode: o.Cluster,
		Username:      o.Username,
		Password:      o.Password,
		TLSConfig:     o.TLS,
		DB:            o.DB,
		DialTimeout:   o.DialTimeout,
		ReadTimeout:   o.ReadTimeout,
		WriteTimeout:  o.ReadTimeout,
		PoolTimeout:   o.ReadTimeout,
		PoolSize:      o.PoolSize,
		// Each operation's context carries its deadline (ReadTimeout),
		// connecting and retrying included.
		ContextTimeoutEnabled: true,
		// CLIENT SETINFO on each connection is one more round trip and
		// fails for ACL users not allowed it.
		DisableIdentity: true,
	})
	return &Redis{c: c, prefix: o.KeyPrefix, timeout: o.ReadTimeout}, nil
}

// key turns a Store key ("kind:id") into the Redis key.
func (r *Redis) key(k string) string {
	kind, id, ok := strings.Cut(k, ":")
	if !ok {
		kind, id = "", k
	}
	sum := sha256.Sum256([]byte(id))
	var b strings.Builder
	b.Grow(len(r.prefix) + len(keyVersion) + len(kind) + 5 + 43)
	b.WriteString(r.prefix)
	b.WriteString(keyVersion)
	b.WriteByte(':')
	b.WriteString(kind)
	b.WriteString(":{")
	var enc [43]byte
	base64.RawURLEncoding.Encode(enc[:], sum[:])
	b.Write(enc[:])
	b.WriteByte('}')
	return b.String()
}

// bound gives one operation at most the read timeout.
func (r *Redis) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

// wrap says which operation failed and what to look at.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("state: redis %s: %w (check that Redis is up and reachable)", op, err)
}

// Claim implements Store.
func (r *Redis) Claim(ctx context.Context, key, value string, ttl time.Duration) (string, error) {
	if err := checkTTL(OpClaim, ttl); err != nil {
		return "", err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	v, err := claimScript.Run(ctx, r.c, []string{r.key(key)}, value, ttl.Milliseconds()).Text()
	return v, wrap(OpClaim, err)
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) (string, bool, error) {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	v, err := r.c.Get(ctx, r.key(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, wrap(OpGet, err)
}

// Once implements Store.
func (r *Redis) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkTTL(OpOnce, ttl); err != nil {
		return false, err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	first, err := r.c.SetNX(ctx, r.key(key), "1", ttl).Result()
	return first && err == nil, wrap(OpOnce, err)
}

// Put implements Store.
func (r *Redis) Put(ctx context.Context, key, value string, ttl time.Duration) error {
	if err := checkTTL(OpPut, ttl); err != nil {
		return err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	return wrap(OpPut, r.c.Set(ctx, r.key(key), value, ttl).Err())
}

// Take implements Store.
func (r *Redis) Take(ctx context.Context, key string) (string, bool, error) {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	v, err := r.c.GetDel(ctx, r.key(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, wrap(OpTake, err)
}

// CompareAndSwap implements Store.
func (r *Redis) CompareAndSwap(ctx context.Context, key, old, new string, ttl time.Duration) (bool, error) {
	if err := checkTTL(OpCompareAndSwap, ttl); err != nil {
		return false, err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	n, err := casScript.Run(ctx, r.c, []string{r.key(key)}, old, new, ttl.Milliseconds()).Int()
	return n == 1 && err == nil, wrap(OpCompareAndSwap, err)
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	return wrap(OpDelete, r.c.Del(ctx, r.key(key)).Err())
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	return wrap(OpPing, r.c.Ping(ctx).Err())
}

// Close implements Store.
func (r *Redis) Close() error { return r.c.Close() }
