// Package redistest starts a real redis-server for a test: on a free
// loopback port, in the test's temporary directory, stopped when the test
// ends. Tests of the shared state run against it as operators run Redis.
//
// Without redis-server on PATH a test is skipped, unless CI=true or
// MCPAUTHZ_REQUIRE_REDIS=1 makes that a failure: CI must run these tests,
// not skip them (.ci/run installs the distribution's redis-server).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the variable that turns a missing redis-server into a
// failure (as CI=true does).
const RequireEnv = "MCPAUTHZ_REQUIRE_REDIS"

// Path returns the path of redis-server, or skips (or fails) t.
func Path(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		why := fmt.Sprintf("redis-server is not on PATH (apt-get install redis-server): %v", err)
		if os.Getenv(RequireEnv) == "1" || os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return p
}

// TLS turns on TLS: the server listens with TLS only, with this key pair,
// and checks client certificates against CAFile when ClientCerts.
type TLS struct {
	CertFile, KeyFile, CAFile string
	ClientCerts               bool
}

// Config is what Start passes to redis-server beyond the port and
// directory.
type Config struct {
	// TLS, when set, serves TLS instead of plain TCP.
	TLS *TLS
	// Users are ACL rules, one user each ("alice on >secret ~* +@all").
	Users []string
	// Args are further redis-server arguments.
	Args []string
}

// Server is a redis-server a test started.
type Server struct {
	// Addr is its loopback host:port.
	Addr string
	t    testing.TB
	path string
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

// Start starts redis-server with cfg, waits until it accepts connections,
// and stops it when t ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := &Server{t: t, path: Path(t), dir: t.TempDir()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	s.Addr = l.Addr().String()
	_, port, _ := net.SplitHostPort(s.Addr)
	_ = l.Close()
	s.args = []string{"--bind", "127.0.0.1", "--dir", s.dir, "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--protected-mode", "no"}
	if c := cfg.TLS; c != nil {
		auth := "no"
		if c.ClientCerts {
			auth = "yes"
		}
		s.args = append(s.args, "--port", "0", "--tls-port", port, "--tls-cert-file", c.CertFile,
			"--tls-key-file", c.KeyFile, "--tls-ca-cert-file", c.CAFile, "--tls-auth-clients", auth)
	} else {
		s.args = append(s.args, "--port", port)
	}
	for _, u := range cfg.Users {
		// One argument per word: redis-server quotes an argument that
		// has spaces, and an ACL user name may have none.
		s.args = append(append(s.args, "--user"), strings.Fields(u)...)
	}
	s.args = append(s.args, cfg.Args...)
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again on the same port after Stop (or starts
// it the first time), and waits until it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.runs++
	logf := filepath.Join(s.dir, "redis-"+strconv.Itoa(s.runs)+".log")
	args := append(append([]string(nil), s.args...), "--logfile", logf)
	cmd := exec.Command(s.path, args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ready(logf) {
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(logf)
			s.t.Fatalf("redis-server %s ended before it was ready:\n%s", strings.Join(args, " "), log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf)
			s.Stop()
			s.t.Fatalf("redis-server not ready after 20s:\n%s", log)
		}
	}
}

// ready reports whether redis-server's log says it accepts connections.
func ready(logf string) bool {
	f, err := os.Open(logf)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Ready to accept connections") {
			return true
		}
	}
	return false
}

// Stop kills the server (SIGKILL: as a crash, nothing is saved) and waits
// for it to end. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL) // a paused process ends too
	<-s.done
	s.cmd = nil
}

// Pause stops the server without ending it (SIGSTOP): connections stay
// open and nothing is answered, as a Redis stuck or far away. Resume
// continues it.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("pausing redis-server: %v", err)
	}
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("resuming redis-server: %v", err)
	}
}
