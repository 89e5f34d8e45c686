package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestPProfSwitch: Go's profiles are served under /debug/pprof/ on the
// HTTP port only with listen.pprof: true.
func TestPProfSwitch(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml string
		want int
	}{
		"default_off": {yaml: "listen: {http: 127.0.0.1:0}\n", want: http.StatusNotFound},
		"on":          {yaml: "listen: {pprof: true}\n", want: http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			a := loadedApp(t, "tokens: {dev: true}\n"+tc.yaml)
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
				rec := httptest.NewRecorder()
				a.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != tc.want {
					t.Errorf("GET %s: %d, want %d", path, rec.Code, tc.want)
				}
			}
		})
	}
}
