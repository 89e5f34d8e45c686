package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/internal/nodetest"
)

// TestNodeAgrees runs testdata/jsonparse.mjs, JavaScript's JSON.parse as the
// TypeScript SDK's servers use it, over the hostile bodies, the golden
// inputs and the fuzz corpora, and requires that Node accepts every body
// mcpauthz accepts and reads the same method and target from each message.
//
// Numbers are compared by their exact decimal value: Node prints the
// double it read in its shortest form, and the number rule requires that
// form to be the value mcpauthz keeps (the literal's) for every body it
// accepts.
//
// It needs node on PATH; without it the test is skipped, unless
// MCPAUTHZ_REQUIRE_NODE=1 (as CI sets it) makes that a failure.
func TestNodeAgrees(t *testing.T) {
	node := nodetest.Node(t)
	bodies := nodeBodies(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join("testdata", "jsonparse.mjs")}, slices.Sorted(maps.Keys(bodies))...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node jsonparse.mjs: %v\n%s", err, stderr.Bytes())
	}
	lines := map[string]nodeLine{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		var l nodeLine
		if err := d.Decode(&l); err != nil {
			t.Fatalf("node printed %q: %v", sc.Bytes(), err)
		}
		lines[l.File] = l
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	var accepted, refused, nodeOnly int
	for _, file := range slices.Sorted(maps.Keys(bodies)) {
		body := bodies[file]
		l, ok := lines[file]
		if !ok {
			t.Fatalf("node printed nothing for %s", file)
		}
		ours, err := mcp.Parse(body)
		if err != nil {
			refused++
			if l.OK {
				nodeOnly++
			}
			continue
		}
		accepted++
		if d := diffNode(t, ours, l); d != "" {
			t.Errorf("%s: %s\nbody: %q", file, d, body)
		}
	}
	t.Logf("%d bodies: mcpauthz accepts %d, refuses %d (JSON.parse accepts %d of those)", len(bodies), accepted, refused, nodeOnly)
}

// nodeLine is what jsonparse.mjs prints for one file.
type nodeLine struct {
	File     string           `json:"file"`
	OK       bool             `json:"ok"`
	Error    string           `json:"error"`
	Batch    bool             `json:"batch"`
	Messages []map[string]any `json:"messages"`
}

// nodeBodies gathers the bodies to give Node, by the path Node reads each
// from: the files of testdata/hostile and testdata/bodies/*.json as they
// are, and the bodies of the fuzz corpora written out to a temporary
// directory. A body already gathered is not gathered again.
func nodeBodies(t *testing.T) map[string][]byte {
	t.Helper()
	bodies := map[string][]byte{}
	seen := map[string]bool{}
	add := func(path string, body []byte) {
		if !seen[string(body)] {
			seen[string(body)] = true
			bodies[path] = body
		}
	}
	plain, err := filepath.Glob(filepath.Join("testdata", "hostile", "*"))
	if err != nil || len(plain) == 0 {
		t.Fatalf("no bodies in testdata/hostile (%v)", err)
	}
	golden, _ := filepath.Glob(filepath.Join("testdata", "bodies", "*.json"))
	for _, path := range append(plain, golden...) {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		add(path, body)
	}
	tmp := t.TempDir()
	for _, target := range []string{"FuzzDifferential", "FuzzParse"} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		for _, path := range files {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := readCorpusFile(data)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if seen[string(body)] {
				continue
			}
			out := filepath.Join(tmp, target+"_"+filepath.Base(path))
			if err := os.WriteFile(out, body, 0o644); err != nil {
				t.Fatal(err)
			}
			add(out, body)
		}
	}
	return bodies
}

// diffNode describes how Node's reading of a body differs from ours, or
// returns "".
func diffNode(t *testing.T, ours mcp.Body, l nodeLine) string {
	t.Helper()
	switch {
	case !l.OK:
		return "JSON.parse refuses a body mcpauthz accepts: " + l.Error
	case l.Batch != ours.Batch || len(l.Messages) != len(ours.Messages):
		return fmt.Sprintf("Node reads %d messages (batch %v), mcpauthz %d (batch %v)", len(l.Messages), l.Batch, len(ours.Messages), ours.Batch)
	}
	for i, m := range ours.Messages {
		theirs := nodeReading(l.Messages[i])
		if wf, _ := l.Messages[i]["wellFormed"].(bool); !wf {
			return fmt.Sprintf("message %d: Node holds a lone surrogate in the method, name, uri or arguments, where mcpauthz holds U+FFFD", i)
		}
		if d := diffReading(ourReading(t, m), theirs, sameValue); d != "" {
			return fmt.Sprintf("message %d: Node reads it differently: %s", i, d)
		}
	}
	return ""
}

// nodeReading is the reading of one message printed by jsonparse.mjs, with
// the target chosen by Node's method, as a server would.
func nodeReading(m map[string]any) reading {
	str := func(key string) string {
		v, ok := m[key]
		if !ok {
			return ""
		}
		if s, ok := v.(string); ok {
			return s
		}
		return fmt.Sprintf("<not a string: %v>", v) // never equal to a string of ours
	}
	r := reading{method: str("method")}
	switch {
	case namesTarget(r.method):
		r.name = str("name")
		if v, ok := m["arguments"]; ok {
			r.arguments = unmarkNonFinite(v)
		}
	case uriTarget(r.method):
		r.uri = str("uri")
	}
	return r
}

// nonFiniteKey is the member jsonparse.mjs writes an infinite number as.
const nonFiniteKey = "\x00nonfinite"

// unmarkNonFinite turns jsonparse.mjs's marks of infinite numbers back into
// numbers (strconv.ParseFloat reads "Infinity").
func unmarkNonFinite(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if s, ok := v[nonFiniteKey].(string); ok && len(v) == 1 {
			return json.Number(s)
		}
		for k, x := range v {
			v[k] = unmarkNonFinite(x)
		}
	case []any:
		for i, x := range v {
			v[i] = unmarkNonFinite(x)
		}
	}
	return v
}
