package decision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/confirm"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// This file is the confirmation of a risky call by the caller's own user
// (issue 22): the policy allows a call with decision.confirm: {message};
// a 2026-07-28 client that can show a form is answered with an
// input_required result holding one elicitation/create form and a
// requestState sealed by decision/confirm; any other client gets a
// refusal that says confirmation is needed.

// ConfirmInputKey is the key of mcpauthz's form among a result's
// inputRequests and a retry's inputResponses.
const ConfirmInputKey = "io.mcpauthz/confirm"

// MetaAuthorization is the _meta key of the structured authorization
// denial envelope (draft SEP-2643) on a refusal that says confirmation is
// needed.
const MetaAuthorization = "io.modelcontextprotocol/authorization"

// maxConfirmMessage bounds decision.confirm.message: it is shown to a user.
const maxConfirmMessage = 1024

// confirmMessage reads decision.confirm: an object with a non-empty
// message.
func confirmMessage(v ast.Value) (string, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return "", errors.New("not an object {message}")
	}
	m, ok := termValue(obj.Get(keyMessage)).(ast.String)
	if !ok || m == "" || len(m) > maxConfirmMessage || !utf8.ValidString(string(m)) {
		return "", fmt.Errorf("message must be a string of 1 to %d bytes", maxConfirmMessage)
	}
	return string(m), nil
}

// confirmMethods are the requests MCP 2026-07-28 lets a server answer with
// input_required.
func confirmMethod(m string) bool {
	return m == "tools/call" || m == "resources/read" || m == "prompts/get"
}

// formElicitation reports whether clientCapabilities declare form-mode
// elicitation: elicitation.form, or an empty elicitation object (which
// MCP reads as form).
func formElicitation(caps ast.Object) bool {
	if caps == nil {
		return false
	}
	el, ok := termValue(caps.Get(ast.StringTerm("elicitation"))).(ast.Object)
	if !ok {
		return false
	}
	if el.Len() == 0 {
		return true
	}
	_, ok = termValue(el.Get(ast.StringTerm("form"))).(ast.Object)
	return ok
}

// confirmStep answers a call the policy allowed on condition of a
// confirmation: with an input_required result when the client can show a
// form and a key ring is configured, otherwise with a refusal saying
// confirmation is needed. Either way the call does not reach the server.
func (e *Engine) confirmStep(p *prepared) bool {
	if p.confirm == "" {
		return true
	}
	msgText := p.confirm
	if p.body.Batch || len(p.body.Messages) != 1 || p.body.Messages[0].Kind != mcp.KindRequest {
		p.d.revoke(denial{kind: refuseConfirmRPC, reason: "confirmation needed: " + msgText + " (a batch cannot be confirmed: send the call alone)",
			entry: answer{id: p.replyID(), data: confirmErrorData}})
		return false
	}
	m := &p.body.Messages[0]
	why := e.cannotAskConfirmation(p, m)
	if why == "" {
		sealed, err := e.sealConfirmation(p, m)
		if err == nil {
			p.d.revoke(denial{kind: refuseInputRequired, reason: "confirmation requested: " + msgText,
				entry: answer{id: m.ID, message: msgText, state: sealed}})
			return false
		}
		why = "its state could not be sealed: " + err.Error()
		e.log.Warn("sealing a confirmation state failed; refusing", "decision_id", p.d.ID, "error", err)
	}
	reason := "confirmation needed: " + msgText + " (" + why + ")"
	if m.Method == "tools/call" {
		p.d.revoke(denial{kind: refuseConfirmTool, reason: reason, entry: answer{id: m.ID, data: confirmEnvelope}})
	} else {
		p.d.revoke(denial{kind: refuseConfirmRPC, reason: reason, entry: answer{id: m.ID, data: confirmErrorData}})
	}
	return false
}

// cannotAskConfirmation says why the caller's user cannot be asked ("" when
// it can): the words go into the refusal.
func (e *Engine) cannotAskConfirmation(p *prepared, m *mcp.Message) string {
	switch {
	case e.opts.Confirm == nil || e.opts.ConfirmState == nil:
		return "this server has no confirm.keys configured"
	case !stateless(p.env.protocolVersion):
		return "asking needs MCP 2026-07-28; this request speaks " + p.env.protocolVersion
	case !confirmMethod(m.Method):
		return m.Method + " cannot be answered with input_required"
	case !formElicitation(m.ClientCapabilities):
		return "the client does not declare form elicitation"
	case SessionOwner(p.tok) == "":
		return "the caller is not authenticated, and a confirmation is bound to its caller"
	}
	return ""
}

// sealConfirmation seals the state of m's confirmation.
func (e *Engine) sealConfirmation(p *prepared, m *mcp.Message) (string, error) {
	params, err := rawParams(p.r.Body)
	if err != nil {
		return "", err
	}
	digest, err := confirm.Digest(params.Params)
	if err != nil {
		return "", err
	}
	return e.opts.Confirm.Seal(confirm.State{
		Owner: SessionOwner(p.tok), Method: m.Method, Digest: digest,
		DecisionID: p.d.ID, ServerState: params.RequestState,
	})
}

// retryParams are the members of a request's params a confirmation reads.
type retryParams struct {
	Params       json.RawMessage
	RequestState string
}

// rawParams reads the params of the one message in body, as sent, and its
// requestState. The body was parsed already (decision/mcp refuses
// duplicate members and anything two readers would read differently), so
// encoding/json reads the same message; this is the cold path.
func rawParams(body []byte) (retryParams, error) {
	var msg struct {
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return retryParams{}, fmt.Errorf("reading params: %w", err)
	}
	rp := retryParams{Params: msg.Params}
	if len(bytes.TrimSpace(msg.Params)) == 0 || bytes.Equal(bytes.TrimSpace(msg.Params), []byte("null")) {
		return rp, nil
	}
	var st struct {
		RequestState *string `json:"requestState"`
	}
	if err := json.Unmarshal(msg.Params, &st); err != nil {
		return retryParams{}, fmt.Errorf("reading params.requestState: %w", err)
	}
	if st.RequestState != nil {
		rp.RequestState = *st.RequestState
	}
	return rp, nil
}

// confirmEnvelope is the structured authorization denial (draft SEP-2643)
// of a call that needs a confirmation this client cannot give: nothing in
// this exchange can remedy it.
var confirmEnvelope = []byte(`{"reason":"insufficient_authorization","remediation":"unavailable"}`)

// confirmErrorData is a JSON-RPC error's data holding the envelope, as
// the draft places it on an error.
var confirmErrorData = []byte(`{"authorization":` + string(confirmEnvelope) + `}`)

type elicitForm struct {
	Mode            string          `json:"mode"`
	Message         string          `json:"message"`
	RequestedSchema json.RawMessage `json:"requestedSchema"`
}

type inputRequest struct {
	Method string     `json:"method"`
	Params elicitForm `json:"params"`
}

type inputRequiredResult struct {
	ResultType    string                  `json:"resultType"`
	InputRequests map[string]inputRequest `json:"inputRequests"`
	RequestState  string                  `json:"requestState"`
}

type inputRequiredReply struct {
	JSONRPC string              `json:"jsonrpc"`
	ID      json.RawMessage     `json:"id"`
	Result  inputRequiredResult `json:"result"`
}

// ConfirmField is the boolean of mcpauthz's confirmation form: the retry
// is confirmed when its answer is action accept with this field true.
const ConfirmField = "confirm"

var confirmSchema = json.RawMessage(`{"type":"object","properties":{"` + ConfirmField +
	`":{"type":"boolean","title":"Confirm","description":"Allow this call to run"}},"required":["` + ConfirmField + `"]}`)

// inputRequiredBody renders the input_required answer to request id.
func inputRequiredBody(id []byte, message, state string) []byte {
	b, _ := json.Marshal(inputRequiredReply{JSONRPC: "2.0", ID: rawID(id), Result: inputRequiredResult{
		ResultType: "input_required",
		InputRequests: map[string]inputRequest{ConfirmInputKey: {Method: "elicitation/create",
			Params: elicitForm{Mode: "form", Message: message, RequestedSchema: confirmSchema}}},
		RequestState: state,
	}})
	return b
}

type toolResultMeta struct {
	Content []textContent              `json:"content"`
	IsError bool                       `json:"isError"`
	Meta    map[string]json.RawMessage `json:"_meta"`
}

type toolReplyMeta struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  toolResultMeta  `json:"result"`
}

// toolErrorMetaBody renders a tool error whose result's _meta holds the
// authorization envelope.
func toolErrorMetaBody(id []byte, reason string, envelope []byte) []byte {
	b, _ := json.Marshal(toolReplyMeta{JSONRPC: "2.0", ID: rawID(id), Result: toolResultMeta{
		Content: []textContent{{Type: "text", Text: reason}}, IsError: true,
		Meta: map[string]json.RawMessage{MetaAuthorization: envelope},
	}})
	return b
}

// confirmAnswer is a retry's inputResponses[ConfirmInputKey]: the
// elicitation's result.
type confirmAnswer struct {
	Action  string         `json:"action"`
	Content map[string]any `json:"content"`
}

// retryAnswer reads a retry's requestState and its answer to mcpauthz's
// form; found is false when the params hold no answer under
// ConfirmInputKey (a retry of the server's own input_required).
func retryAnswer(params []byte) (state string, ans confirmAnswer, found bool, err error) {
	var p struct {
		RequestState   *string                    `json:"requestState"`
		InputResponses map[string]json.RawMessage `json:"inputResponses"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return "", ans, false, fmt.Errorf("reading params: %w", err)
	}
	raw, ok := p.InputResponses[ConfirmInputKey]
	if !ok {
		return "", ans, false, nil
	}
	if p.RequestState == nil {
		return "", ans, true, errors.New("inputResponses answer mcpauthz's confirmation but params.requestState is missing")
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return "", ans, true, fmt.Errorf("inputResponses[%q] is not an elicitation result: %w", ConfirmInputKey, err)
	}
	return *p.RequestState, ans, true, nil
}

// confirmationStep reads a retry that answers mcpauthz's confirmation
// form: it opens its requestState (principal, method, params digest,
// expiry), consumes it once, and gives the policy input.mcp.confirmation:
// {confirmed, at}. A state that does not open or was used before is
// refused, saying so; the store failing is the 503 of state_unavailable.
func (e *Engine) confirmationStep(p *prepared) bool {
	if p.body.Batch || len(p.body.Messages) != 1 || !confirmMethod(p.body.Messages[0].Method) ||
		!bytes.Contains(p.r.Body, []byte(ConfirmInputKey)) {
		return true // cheap test first: no answer to our form can be in the body
	}
	m := &p.body.Messages[0]
	refuse := func(why string) bool {
		reason := "the confirmation was refused: " + why + "; call again without inputResponses to be asked again"
		if m.Method == "tools/call" {
			p.d.refuse(denial{kind: refuseConfirmTool, reason: reason, entry: answer{id: m.ID, data: confirmEnvelope}})
		} else {
			p.d.refuse(denial{kind: refuseConfirmRPC, reason: reason, entry: answer{id: m.ID, data: confirmErrorData}})
		}
		return false
	}
	rp, err := rawParams(p.r.Body)
	if err != nil {
		return refuse(err.Error())
	}
	sealed, ans, found, err := retryAnswer(rp.Params)
	switch {
	case err != nil:
		return refuse(err.Error())
	case !found:
		return true
	case e.opts.Confirm == nil || e.opts.ConfirmState == nil:
		return refuse("this server has no confirm.keys configured")
	}
	digest, err := confirm.Digest(rp.Params)
	if err != nil {
		return refuse(err.Error())
	}
	_, err = e.opts.Confirm.Redeem(p.ctx, e.opts.ConfirmState,
		sealed, confirm.Binding{Owner: SessionOwner(p.tok), Method: m.Method, Digest: digest})
	switch {
	case errors.Is(err, confirm.ErrStore):
		e.refuseState(p, "consuming the confirmation's requestState", err)
		return false
	case err != nil:
		return refuse(err.Error())
	}
	confirmed := ans.Action == "accept" && ans.Content[ConfirmField] == true
	p.env.confirmation = ast.ObjectTerm(
		ast.Item(ast.StringTerm("confirmed"), ast.BooleanTerm(confirmed)),
		ast.Item(ast.StringTerm("at"), ast.StringTerm(time.Now().UTC().Format(time.RFC3339))),
	)
	return true
}
