package token

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestMintDevRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg", "mcpauthz")
	keyPath := filepath.Join(dir, "dev-key.pem")
	raw, err := MintDev(DevOptions{
		KeyPath:  keyPath,
		Subject:  "bob",
		Audience: jwtTestAudience,
		Scopes:   []string{"tools:call", "files:read"},
		Extra:    map[string]any{"team": "blue"},
	})
	if err != nil {
		t.Fatalf("MintDev: %v", err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("key directory mode %04o, want 0700", di.Mode().Perm())
		}
	}

	log := &jwtTestLog{}
	v := jwtTestVerifier(t, Options{Dev: true, DevKeyPath: keyPath, Logger: log.logger()})
	if !log.has("DEVELOPMENT MODE") {
		t.Errorf("no loud warning about development mode:\n%s", log)
	}
	r := v.Verify(context.Background(), raw, nil)
	if !r.Valid {
		t.Fatalf("dev token not valid: %s", r.Error)
	}
	if r.Subject != "bob" || r.ClientID != DevClientID || strings.Join(r.Scopes, " ") != "tools:call files:read" {
		t.Errorf("got subject %q client %q scopes %q", r.Subject, r.ClientID, r.Scopes)
	}
	if r.Claims["iss"] != DevIssuer || r.Claims["team"] != "blue" || r.Claims["jti"] == nil {
		t.Errorf("claims %v lack iss, team or jti", r.Claims)
	}
	if ttl := r.Expiry.Sub(time.Now()); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("token lives %s, want about an hour", ttl)
	}

	// The key is reused, not regenerated.
	raw2, err := MintDev(DevOptions{KeyPath: keyPath, Audience: jwtTestAudience})
	if err != nil {
		t.Fatal(err)
	}
	if jwtTestKID(t, raw) != jwtTestKID(t, raw2) {
		t.Error("second mint used another key")
	}
	if r := v.Verify(context.Background(), raw2, nil); !r.Valid || r.Subject != "dev-user" {
		t.Errorf("second token: valid=%v error=%q subject=%q", r.Valid, r.Error, r.Subject)
	}
}

func jwtTestKID(t *testing.T, raw string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

func TestDevTokenTrust(t *testing.T) {
	k := jwtTestKeys()
	keyPath := filepath.Join(t.TempDir(), "dev-key.pem")
	ctx := context.Background()
	mint := func(t *testing.T, aud string) string {
		raw, err := MintDev(DevOptions{KeyPath: keyPath, Subject: "bob", Audience: aud})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	jwks := func(t *testing.T) string { return jwtTestWriteFile(t, "jwks.json", jwtTestJWKS(t, k.rsa)) }

	t.Run("not_trusted_without_dev", func(t *testing.T) {
		v := jwtTestVerifier(t, Options{Issuer: jwtTestIssuer, JWKSFile: jwks(t)})
		if r := v.Verify(ctx, mint(t, jwtTestAudience), nil); r.Error != ErrUnknownKey {
			t.Errorf("error %q, want unknown_key", r.Error)
		}
	})
	t.Run("trusted_beside_configured_keys", func(t *testing.T) {
		v := jwtTestVerifier(t, Options{Issuer: jwtTestIssuer, JWKSFile: jwks(t), Dev: true, DevKeyPath: keyPath})
		if r := v.Verify(ctx, mint(t, jwtTestAudience), nil); !r.Valid {
			t.Errorf("dev token: %s", r.Error)
		}
		issued := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(time.Now(), nil))
		if r := v.Verify(ctx, issued, nil); !r.Valid {
			t.Errorf("token of the configured issuer: %s", r.Error)
		}
	})
	t.Run("typ_is_at_jwt", func(t *testing.T) {
		v := jwtTestVerifier(t, Options{Dev: true, DevKeyPath: keyPath, RequiredTyp: "application/at+jwt"})
		if r := v.Verify(ctx, mint(t, jwtTestAudience), nil); !r.Valid {
			t.Errorf("dev token with typ at+jwt required: %s", r.Error)
		}
	})
	t.Run("audience_still_checked", func(t *testing.T) {
		v := jwtTestVerifier(t, Options{Dev: true, DevKeyPath: keyPath})
		if r := v.Verify(ctx, mint(t, "https://other.example.com/mcp"), nil); r.Error != ErrWrongAudience {
			t.Errorf("error %q, want wrong_audience", r.Error)
		}
	})
	t.Run("dev_key_only_for_dev_issuer", func(t *testing.T) {
		v := jwtTestVerifier(t, Options{Dev: true, DevKeyPath: keyPath})
		dk, err := loadOrCreateDevKey(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		forged := jwtTestSign(t, jwtTestKey{kid: dk.kid, priv: dk.priv}, "RS256", jwtTestClaims(time.Now(), nil))
		if r := v.Verify(ctx, forged, nil); r.Error != ErrWrongIssuer {
			t.Errorf("dev-signed token claiming issuer %s: error %q, want wrong_issuer", jwtTestIssuer, r.Error)
		}
	})
}

func TestMintDevErrors(t *testing.T) {
	tests := map[string]DevOptions{
		"no_audience":          {},
		"ttl_too_long":         {Audience: jwtTestAudience, TTL: 48 * time.Hour},
		"ttl_negative":         {Audience: jwtTestAudience, TTL: -time.Minute},
		"extra_replaces_iss":   {Audience: jwtTestAudience, Extra: map[string]any{"iss": "https://idp.example.com"}},
		"extra_replaces_exp":   {Audience: jwtTestAudience, Extra: map[string]any{"exp": 1}},
		"extra_shadows_sub":    {Audience: jwtTestAudience, Extra: map[string]any{"Sub": "root"}},
		"extra_differ_in_case": {Audience: jwtTestAudience, Extra: map[string]any{"team": "a", "TEAM": "b"}},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			o.KeyPath = filepath.Join(t.TempDir(), "dev-key.pem")
			if _, err := MintDev(o); err == nil {
				t.Error("MintDev succeeded, want an error")
			}
		})
	}
}

func TestDevKeyRefusesLooseMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	keyPath := filepath.Join(t.TempDir(), "dev-key.pem")
	if _, err := MintDev(DevOptions{KeyPath: keyPath, Audience: jwtTestAudience}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := MintDev(DevOptions{KeyPath: keyPath, Audience: jwtTestAudience}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("error %v, want one asking for chmod 600", err)
	}
}

func TestDevKeyPath(t *testing.T) {
	t.Run("env_override", func(t *testing.T) {
		want := filepath.Join(t.TempDir(), "k.pem")
		t.Setenv(DevKeyEnv, want)
		if got, err := DevKeyPath(); err != nil || got != want {
			t.Errorf("got %q, %v; want %q", got, err, want)
		}
	})
	t.Run("user_config_dir", func(t *testing.T) {
		t.Setenv(DevKeyEnv, "")
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
		t.Setenv("HOME", t.TempDir())
		dir, err := os.UserConfigDir()
		if err != nil {
			t.Skip(err)
		}
		if got, err := DevKeyPath(); err != nil || got != filepath.Join(dir, "mcpauthz", "dev-key.pem") {
			t.Errorf("got %q, %v", got, err)
		}
	})
}
