package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mcpauthz/mcpauthz/decision"
)

// grafanaDashboard is the part of a Grafana dashboard JSON the test reads.
type grafanaDashboard struct {
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string            `json:"name"`
			Type       string            `json:"type"`
			Datasource grafanaDatasource `json:"datasource"`
			Query      json.RawMessage   `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource grafanaDatasource        `json:"datasource"`
	GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
	Targets    []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// grafanaDatasource names a data source; every query of the dashboard
// uses the ${datasource} variable, so it works on any Prometheus.
type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func (d grafanaDatasource) check(what string) error {
	if d.Type != "prometheus" || d.UID != "${datasource}" {
		return fmt.Errorf("%s: data source %+v, want the prometheus ${datasource} variable", what, d)
	}
	return nil
}

// registeredMetric is one metric the app's registry serves.
type registeredMetric struct {
	labels []string
	typ    dto.MetricType
	typed  bool // typ is known (the family was gathered)
}

// descFields reads a Desc's name and labels from its String form, the only
// way client_golang shows them.
var descFields = regexp.MustCompile(`fqName: "([^"]+)".*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}`)

// appMetrics lists every metric the app registers, with its labels, and
// the type of those that Gather returns (all but vectors with no child
// yet). The configuration turns on what registers metrics of its own (the
// decision log, the shadow bundle).
func appMetrics(t *testing.T) map[string]*registeredMetric {
	t.Helper()
	dir := t.TempDir()
	a := loadedApp(t, fmt.Sprintf("tokens: {dev: true, dev_key_file: %q}\ndecision_logs: {file: %q}\nshadow: {bundles: [{path: ../../policies}]}\n",
		filepath.Join(dir, "dev-key.pem"), filepath.Join(dir, "decisions.jsonl")))
	defer a.close()
	// One decision, so that the decision counter (a vector) has a child
	// and is gathered with its type.
	if d := a.engine.Decide(context.Background(), &decision.Request{Method: "GET", Path: "/mcp"}); d.Code == "" {
		t.Fatal("the decision has no code")
	}
	out := map[string]*registeredMetric{}
	ch := make(chan *prometheus.Desc)
	go func() { a.registry.Describe(ch); close(ch) }()
	for d := range ch {
		m := descFields.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read descriptor %s", d)
		}
		rm := &registeredMetric{}
		for _, lp := range strings.Split(m[2], ",") {
			if name, _, ok := strings.Cut(lp, "="); ok {
				rm.labels = append(rm.labels, name)
			}
		}
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				rm.labels = append(rm.labels, l)
			}
		}
		out[m[1]] = rm
	}
	fams, err := a.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if rm := out[f.GetName()]; rm != nil {
			rm.typ, rm.typed = f.GetType(), true
		}
	}
	return out
}

var (
	// metricRef is a metric name in PromQL: mcpauthz's own, and the Go and
	// process collectors' it registers beside them.
	metricRef = regexp.MustCompile(`\b((?:mcpauthz|go|process)_[a-zA-Z0-9_]+)\b(\{[^}]*\})?`)
	matcher   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	byClause  = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	// targetLabels are added by Prometheus when it scrapes.
	targetLabels = []string{"job", "instance"}
)

// resolveMetric finds the registered metric a PromQL name refers to, the
// name itself or a histogram's (or summary's) series, and returns its name
// and the labels of the series.
func resolveMetric(reg map[string]*registeredMetric, name string) (string, []string, error) {
	if rm := reg[name]; rm != nil {
		return name, rm.labels, nil
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok || reg[base] == nil {
			continue
		}
		rm := reg[base]
		switch {
		case !rm.typed:
			return "", nil, fmt.Errorf("%s: cannot tell whether %s is a histogram (not gathered)", name, base)
		case rm.typ == dto.MetricType_HISTOGRAM:
		case rm.typ == dto.MetricType_SUMMARY && suffix != "_bucket":
		default:
			return "", nil, fmt.Errorf("%s: %s is a %v, which has no %s series", name, base, rm.typ, suffix)
		}
		labels := rm.labels
		if suffix == "_bucket" {
			labels = append(slices.Clone(labels), "le")
		}
		return base, labels, nil
	}
	return "", nil, fmt.Errorf("%s is not a metric mcpauthz registers", name)
}

// checkExpr checks one PromQL expression against the registry: every
// metric it names exists (with its histogram suffixes), every label it
// matches on is one of that metric's, and every label it aggregates by is
// one of the metrics' it reads. It returns the mcpauthz_ metrics read.
func checkExpr(reg map[string]*registeredMetric, expr string) ([]string, error) {
	var read []string
	all := slices.Clone(targetLabels)
	for _, m := range metricRef.FindAllStringSubmatch(expr, -1) {
		metric, labels, err := resolveMetric(reg, m[1])
		if err != nil {
			return nil, err
		}
		labels = append(labels, targetLabels...)
		for _, mm := range matcher.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(labels, mm[1]) {
				return nil, fmt.Errorf("%s has no label %q (it has %v)", m[1], mm[1], labels)
			}
		}
		all = append(all, labels...)
		if strings.HasPrefix(metric, "mcpauthz_") {
			read = append(read, metric)
		}
	}
	for _, b := range byClause.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(b[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(all, l) {
				return nil, fmt.Errorf("aggregates by %q, a label none of its metrics has", l)
			}
		}
	}
	return read, nil
}

// checkDashboard reads a dashboard and checks it: a real Grafana
// dashboard (panels with ids, positions, a Prometheus data source and
// queries) whose every query reads only metrics and labels that exist.
func checkDashboard(reg map[string]*registeredMetric, b []byte) (read []string, err error) {
	var d grafanaDashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
		return nil, fmt.Errorf("not a dashboard: title %q uid %q schemaVersion %d, %d panels", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}
	var exprs []string
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			if err := v.Datasource.check("variable " + v.Name); err != nil {
				return nil, err
			}
			var q struct{ Query string }
			if err := json.Unmarshal(v.Query, &q); err != nil || q.Query == "" {
				return nil, fmt.Errorf("variable %s: no query", v.Name)
			}
			exprs = append(exprs, q.Query)
		}
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		switch {
		case p.ID == 0 || ids[p.ID]:
			return nil, fmt.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
		case p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24:
			return nil, fmt.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if err := p.Datasource.check(fmt.Sprintf("panel %q", p.Title)); err != nil {
			return nil, err
		}
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				return nil, fmt.Errorf("panel %q has an empty query", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, e := range exprs {
		r, err := checkExpr(reg, e)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", e, err)
		}
		read = append(read, r...)
	}
	sort.Strings(read)
	return slices.Compact(read), nil
}

// TestGrafanaDashboard: examples/grafana/mcpauthz.json reads only metrics
// (and labels) the app registers, as the app builds its registry.
func TestGrafanaDashboard(t *testing.T) {
	reg := appMetrics(t)
	b, err := os.ReadFile("../../examples/grafana/mcpauthz.json")
	if err != nil {
		t.Fatal(err)
	}
	read, err := checkDashboard(reg, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(read) < 5 {
		t.Fatalf("the dashboard reads only %v", read)
	}
	// Not an error (a new metric may come before its panel), but said.
	for name := range reg {
		if strings.HasPrefix(name, "mcpauthz_") && !slices.Contains(read, name) {
			t.Logf("mcpauthz registers %s; the dashboard has no panel for it", name)
		}
	}
}

// TestGrafanaDashboardCatchesMistakes: each edit of the real dashboard
// must fail the check.
func TestGrafanaDashboardCatchesMistakes(t *testing.T) {
	reg := appMetrics(t)
	b, err := os.ReadFile("../../examples/grafana/mcpauthz.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct{ old, new string }{
		"misspelt_metric":       {"mcpauthz_decisions_total{code!=", "mcpauthz_decision_total{code!="},
		"counter_as_histogram":  {"mcpauthz_decision_duration_seconds_bucket", "mcpauthz_decisions_total_bucket"},
		"unknown_label":         {`mcpauthz_decisions_total{code!=\"allowed\"`, `mcpauthz_decisions_total{outcome!=\"allowed\"`},
		"aggregated_by_nothing": {"sum by (code) (rate(mcpauthz_decisions_total", "sum by (tool) (rate(mcpauthz_decisions_total"},
		"unknown_go_metric":     {"go_goroutines", "go_threadz"},
		"other_datasource":      {`"uid": "${datasource}"`, `"uid": "prod-prometheus"`},
		"not_json":              {`"panels": [`, `"panels": [[`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(string(b), tc.old) {
				t.Fatalf("the dashboard no longer contains %q; update this test", tc.old)
			}
			_, err := checkDashboard(reg, []byte(strings.Replace(string(b), tc.old, tc.new, 1)))
			if err == nil {
				t.Fatalf("replacing %q with %q went unnoticed", tc.old, tc.new)
			}
			t.Logf("caught: %v", err)
		})
	}
}
