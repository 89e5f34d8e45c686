package authzen

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// decode reads an AuthZEN request body into v (a pointer to Evaluation or
// EvaluationsRequest) with the one reading every MCP body gets
// (docs/security.md, "One reading of every message"): the body is refused
// when two JSON readers could read it differently, before encoding/json
// fills v. mcp.ReadJSON refuses duplicate member names (exact or equal
// under case folding: encoding/json keeps the last, others the first),
// control characters in names, invalid UTF-8 and lone surrogates (which
// encoding/json turns into U+FFFD), and numbers that are not exactly the
// double encoding/json reads. What is left is encoding/json's
// case-insensitive matching of member names to fields: a name that folds
// to a field of the request without being it (`"ID"` alone for `id`) is
// refused too, so every member fills the field a case-sensitive reader
// would fill, or none.
func decode(body []byte, v any) error {
	val, err := mcp.ReadJSON(body)
	if err != nil {
		return err
	}
	if err := fieldNames(val, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// fieldNames walks val along the Go type t that encoding/json decodes it
// into and refuses a member of a struct-typed object whose name folds to
// one of the struct's JSON field names without being it. Maps keep their
// keys exactly, so what is below them is not walked; mismatched kinds are
// left to encoding/json to refuse.
func fieldNames(val ast.Value, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := val.(ast.Object)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		return obj.Iter(func(k, v *ast.Term) error {
			name, ok := k.Value.(ast.String)
			if !ok {
				return nil
			}
			ft, exact := fields[string(name)]
			if !exact {
				for f := range fields {
					if strings.EqualFold(f, string(name)) {
						return fmt.Errorf("member %s%q is not %q: names are case-sensitive", path, string(name), f)
					}
				}
				return nil
			}
			return fieldNames(v.Value, ft, path+string(name)+".")
		})
	case reflect.Slice, reflect.Array:
		arr, ok := val.(*ast.Array)
		if !ok {
			return nil
		}
		for i := range arr.Len() {
			if err := fieldNames(arr.Elem(i).Value, t.Elem(), path+strconv.Itoa(i)+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields returns the JSON names of the fields of struct type t, with
// their types, embedded structs' fields included as encoding/json
// promotes them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for n, ft := range jsonFields(f.Type) {
				out[n] = ft
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
