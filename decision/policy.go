package decision

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision/results"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// Rules name the rules the engine queries, all in one Rego package: the
// decision (or allow, when the policy has no decision rule) and visible.
// They are a function of the package alone, so a bundle manager can be
// built with them, and with Rules.Activate, before the engine exists.
type Rules struct {
	decision, allow, visible string
	// result judges the answers to tools/call, resources/read and
	// prompts/get (result.go).
	result string
	// logMask and logDrop are the decision log's mask and drop rules
	// (WithLogRules); "" when decision logs do not ask for them.
	logMask, logDrop string
}

// DefaultPackage is the Rego package of the decision rules when none is
// configured.
const DefaultPackage = "mcp.authz"

// RulesIn returns the rules of Rego package pkg ("" is DefaultPackage).
func RulesIn(pkg string) (Rules, error) {
	if pkg == "" {
		pkg = DefaultPackage
	}
	if _, err := ast.ParseRef("data." + pkg); err != nil {
		return Rules{}, fmt.Errorf("decision: policy package %q is not a valid Rego package path: %w", pkg, err)
	}
	base := "data." + pkg
	return Rules{decision: base + ".decision", allow: base + ".allow", visible: base + ".visible", result: base + ".result"}, nil
}

// Queries returns the queries a bundle snapshot must prepare for these
// rules, for bundles.Options.Queries.
func (r Rules) Queries() []string {
	qs := []string{r.decision, r.allow, r.visible}
	if r.result != "" {
		qs = append(qs, r.result)
	}
	for _, q := range []string{r.logMask, r.logDrop} {
		if q != "" {
			qs = append(qs, q)
		}
	}
	return qs
}

// WithLogRules returns r with the decision log's mask and drop rules, as
// OPA names them: slash-separated paths under data ("system/log/mask");
// "" leaves one out. Each snapshot prepares them (Policy.LogRules).
func (r Rules) WithLogRules(mask, drop string) (Rules, error) {
	for _, q := range []struct {
		path string
		dst  *string
	}{{mask, &r.logMask}, {drop, &r.logDrop}} {
		if q.path == "" {
			*q.dst = ""
			continue
		}
		ref := "data." + strings.ReplaceAll(strings.Trim(q.path, "/"), "/", ".")
		if _, err := ast.ParseRef(ref); err != nil {
			return r, fmt.Errorf("decision: decision log rule %q is not a valid path: %w", q.path, err)
		}
		*q.dst = ref
	}
	return r, nil
}

// Policy is a bundle snapshot made ready for the engine: everything an
// evaluation needs that depends only on the snapshot is built once, by
// Activate, before the snapshot is swapped in, so the Check path looks
// nothing up and builds nothing per policy. It is never modified after
// it is built.
type Policy struct {
	// Snapshot is the compiled bundle this policy was built from.
	Snapshot *bundles.Snapshot
	rules    Rules
	// keys are the API keys of the bundle's data.mcpauthz.api_keys
	// (nil when there are none).
	keys *token.APIKeys
	// params are the x-mcp-header annotations of the tools that bundle
	// data describes (data.mcpauthz.tools[<name>].input_schema).
	params paramHeaders
	// pins are the tools pinned in data.mcpauthz.tools[<name>] (sha256,
	// input_schema), their schemas compiled; nil when none is (pins.go).
	pins toolPins
	// needs is the input the policy can read.
	needs *inputNeeds

	// txn is one read transaction on the snapshot's store, opened once and
	// used by every evaluation: a snapshot's store is never written after
	// it is published, and the in-memory store's reads through a read
	// transaction take no lock, so the Check path takes none either. It is
	// never closed: it holds no resource beyond the store it reads, which
	// goes away with the snapshot.
	txn storage.Transaction
	// isDecision says the query is the decision rule (else allow).
	isDecision bool
	// tmpl is the compiled decision (or allow) query with every
	// per-snapshot setting; each evaluation runs a copy of it, held in
	// its pooled scratch.
	tmpl *topdown.Query
	// evalErr is why the policy cannot evaluate (it defines neither
	// decision nor allow): every request is denied with it, as an
	// evaluation error, while the policy stays loaded.
	evalErr error

	// visible is the prepared visible rule; nil when the policy has none.
	visible *rego.PreparedEvalQuery
	// visibleQ is the visible rule compiled for the engine's evaluator.
	visibleQ visibleQuery
	// partial is the partial evaluation of the decision's allow that
	// decides visibility without a visible rule; partialErr is why it
	// could not be prepared.
	partial    rego.PreparedPartialQuery
	partialErr error
	// headerNames are the upstream headers the policy can set
	// (headernames.go), lowercase.
	headerNames []string
	// anonymousDenied: no request without a credential can be allowed
	// (unread.go), so one is refused before its body is read.
	anonymousDenied bool

	// logMask and logDrop are the decision log's prepared mask and drop
	// rules; nil when the policy defines none.
	logMask, logDrop *rego.PreparedEvalQuery

	// result is the prepared result rule; nil when the policy has none,
	// and then no answer is held to be judged. patterns are the
	// redaction patterns, each compiled once for this snapshot.
	result   *rego.PreparedEvalQuery
	patterns *results.Patterns
}

// LogRules returns the decision log's prepared mask and drop rules (see
// Rules.WithLogRules), each nil when the policy does not define it. They
// are evaluated by the decision log's writer, off the decision path.
func (p *Policy) LogRules() (mask, drop *rego.PreparedEvalQuery) {
	return p.logMask, p.logDrop
}

// apiKeysPath is where bundle data holds API key hashes.
var apiKeysPath = storage.MustParsePath("/mcpauthz/api_keys")

// Activate builds the engine's state for snapshot s: the compiled decision
// query and its read transaction, the input the policy reads, the API keys
// of its data, the tool pins and the visibility queries. It is the
// activation to give bundles.NewManager. Malformed API keys, x-mcp-header
// annotations or tool pins fail it, and so fail the load; a
// policy with no decision or allow rule loads, and every request it sees
// is denied with an evaluation error.
func (r Rules) Activate(s *bundles.Snapshot) (*Policy, error) {
	ctx := context.Background()
	p := &Policy{Snapshot: s, rules: r, needs: policyInputNeeds(s.Compiler)}
	keys, err := readAPIKeys(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	p.keys = keys
	tools, err := readToolsDoc(ctx, s.Store)
	if err != nil {
		return nil, err
	}
	if p.params, err = readParamHeaders(tools); err != nil {
		return nil, err
	}
	if p.pins, err = readToolPins(tools); err != nil {
		return nil, err
	}
	if err := p.compileQuery(ctx); err != nil {
		p.evalErr = err
	}
	p.visible, _ = s.Query(r.visible)
	if p.visible != nil {
		p.visibleQ.tmpl, p.visibleQ.err = compileVisible(p)
	}
	if err := p.prepareResult(ctx); err != nil {
		return nil, err
	}
	if r.logMask != "" {
		p.logMask, _ = s.Query(r.logMask)
	}
	if r.logDrop != "" {
		p.logDrop, _ = s.Query(r.logDrop)
	}
	p.preparePartial(ctx)
	p.anonymousDenied = p.deniesAnonymous(ctx, anonymousEvalTimeout)
	if ref, err := ast.ParseRef(r.decision); err == nil && len(ref) > 1 {
		p.headerNames = headerNames(ctx, s.Compiler, s.Store, ref[:len(ref)-1])
	}
	return p, nil
}

// anonymousEvalTimeout bounds the partial evaluation that tells whether a
// policy can allow a request without a credential (deniesAnonymous).
const anonymousEvalTimeout = 5 * time.Second

// readAPIKeys indexes the API key hashes of a snapshot's data, so a
// request never reads the store for them.
func readAPIKeys(ctx context.Context, store storage.Store) (*token.APIKeys, error) {
	doc, err := storage.ReadOne(ctx, store, apiKeysPath)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading data.mcpauthz.api_keys: %w", err)
	}
	keys, err := token.ParseAPIKeys(doc)
	if err != nil {
		return nil, fmt.Errorf("data.mcpauthz.api_keys: %w", err)
	}
	return keys, nil
}

// compileQuery compiles the decision query (or allow, when the policy has
// no decision rule) and opens the read transaction evaluations share.
//
// The engine drives OPA's evaluator (topdown) directly rather than through
// rego.PreparedEvalQuery: that saves a goroutine and a context per call
// (rego's cancellation), the conversion of the result to Go values, and
// OPA's per-call metrics, and reads the result as an ast.Value.
func (p *Policy) compileQuery(ctx context.Context) error {
	s, r := p.Snapshot, p.rules
	q := r.decision
	if _, ok := s.Query(q); ok {
		p.isDecision = true
	} else if _, ok := s.Query(r.allow); ok {
		q = r.allow
	} else {
		return fmt.Errorf("policy defines neither %s nor %s", r.decision, r.allow)
	}
	ref, err := ast.ParseRef(q)
	if err != nil {
		return fmt.Errorf("parsing query %s: %w", q, err)
	}
	body, err := s.Compiler.QueryCompiler().Compile(ast.NewBody(ast.Equality.Expr(ast.NewTerm(resultVar), ast.NewTerm(ref))))
	if err != nil {
		return fmt.Errorf("compiling query %s: %w", q, err)
	}
	txn, err := s.Store.NewTransaction(ctx)
	if err != nil {
		return fmt.Errorf("opening a read transaction: %w", err)
	}
	p.txn = txn
	p.tmpl = topdown.NewQuery(body).
		WithCompiler(s.Compiler).
		WithStore(s.Store).
		WithTransaction(txn).
		WithStrictBuiltinErrors(true).
		WithMetrics(noMetrics)
	return nil
}

// preparePartial prepares the partial evaluation of the decision's allow
// (or of allow) that ItemFilter uses for items the visible rule does not
// decide. A failure is kept: those items are hidden with its error.
func (p *Policy) preparePartial(ctx context.Context) {
	s, r := p.Snapshot, p.rules
	q := r.allow + " == true"
	if _, ok := s.Query(r.decision); ok {
		q = r.decision + ".allow == true"
	}
	p.partial, p.partialErr = rego.New(
		rego.Query(q),
		rego.Compiler(s.Compiler),
		rego.Store(s.Store),
		rego.StoreReadAST(true),
		rego.StrictBuiltinErrors(true),
	).PrepareForPartial(ctx)
	if p.partialErr != nil {
		p.partialErr = fmt.Errorf("preparing partial evaluation of %s: %w", q, p.partialErr)
	}
}
