package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Reading the configuration so that its errors can be acted on: the YAML
// is read into a tree, ${ENV} references in values are expanded, --set
// overrides are applied, and the tree is checked against the Config
// type, every unknown key (with a "did you mean") and every value of the
// wrong type reported at once with its full path. Only a tree that passes
// is decoded into the Config, strictly.

// configError is every problem of one configuration, one per line.
type configError struct {
	source string
	errs   []string
}

func (e *configError) Error() string {
	if len(e.errs) == 1 {
		return fmt.Sprintf("config %s: %s", e.source, e.errs[0])
	}
	return fmt.Sprintf("config %s: %d errors:\n  %s", e.source, len(e.errs), strings.Join(e.errs, "\n  "))
}

// LoadConfigWith reads the YAML file at path (none: the defaults) with
// --set overrides ("key.path=value", the value read as YAML) applied over
// it.
func LoadConfigWith(path string, sets []string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" && len(sets) == 0 {
		return cfg, nil
	}
	source := path
	var b []byte
	if path != "" {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return cfg, fmt.Errorf("reading config: %w", err)
		}
	} else {
		source = "(--set)"
	}
	var tree any
	if len(bytes.TrimSpace(b)) > 0 {
		j, err := yaml.YAMLToJSONStrict(b)
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", source, err)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.UseNumber()
		if err := dec.Decode(&tree); err != nil {
			return cfg, fmt.Errorf("config %s: %w", source, err)
		}
	}
	if tree == nil {
		tree = map[string]any{}
	}
	if _, ok := tree.(map[string]any); !ok {
		return cfg, fmt.Errorf("config %s: the file must be a mapping of keys (listen, bundles, tokens, ...)", source)
	}
	ce := &configError{source: source}
	for _, s := range sets {
		var err error
		if tree, err = applySet(tree, s); err != nil {
			ce.errs = append(ce.errs, fmt.Sprintf("--set %s: %v", s, err))
		}
	}
	c := checker{errs: &ce.errs}
	tree = c.check(reflect.TypeOf(cfg), tree, "")
	if len(ce.errs) > 0 {
		sort.Strings(ce.errs)
		return cfg, ce
	}
	j, err := json.Marshal(tree)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", source, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", source, err)
	}
	cfg.given = map[string]bool{}
	givenKeys(tree, "", cfg.given)
	return cfg, nil
}

// givenKeys records the path of every key of a mapping in tree.
func givenKeys(tree any, path string, out map[string]bool) {
	switch x := tree.(type) {
	case map[string]any:
		for k, v := range x {
			out[join(path, k)] = true
			givenKeys(v, join(path, k), out)
		}
	case []any:
		for i, v := range x {
			givenKeys(v, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// Given reports whether the configuration file or --set gave the key at
// path ("resource.uri"), rather than it keeping its default.
func (c *Config) Given(path string) bool { return c.given[path] }

// give marks the key at path as given (a flag set it).
func (c *Config) give(path string) {
	if c.given == nil {
		c.given = map[string]bool{}
	}
	c.given[path] = true
}

// registerSet adds the repeatable --set flag.
func registerSet(fs *pflag.FlagSet, sets *[]string) {
	fs.StringArrayVar(sets, "set", nil, "override one config `key=value` (e.g. --set listen.grpc=:9191 --set bundles[0].path=policies); repeatable")
}

// scalarText is a value given as text whose type the Config decides: a
// --set value, or a value that was a ${ENV} reference. It becomes a
// string, number, boolean or duration as its key wants.
type scalarText string

var (
	durationT    = reflect.TypeOf(Duration(0))
	unmarshalerT = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	envRef       = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)
)

// checker walks a decoded YAML tree beside a Go type.
type checker struct {
	errs *[]string
}

func (c checker) bad(path, format string, args ...any) {
	*c.errs = append(*c.errs, path+": "+fmt.Sprintf(format, args...))
}

// expand replaces ${NAME} and ${NAME:-default} in s from the environment;
// a name that is not set (and has no default) is an error.
func (c checker) expand(path, s string) (string, bool) {
	if !strings.Contains(s, "${") {
		return s, false
	}
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := os.LookupEnv(m[1]); ok {
			return v
		}
		if m[2] != "" {
			return m[3]
		}
		c.bad(path, "environment variable %s is not set (write ${%s:-default} for a default)", m[1], m[1])
		return ""
	}), true
}

// check returns v, with ${ENV} expanded and text values typed, after
// reporting every unknown key and wrong type under path.
func (c checker) check(t reflect.Type, v any, path string) any {
	if v == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := v.(string); ok {
		if x, expanded := c.expand(path, s); expanded {
			v = scalarText(x)
		}
	}
	if s, ok := v.(scalarText); ok {
		return c.text(t, string(s), path)
	}
	switch {
	case t == durationT:
		switch x := v.(type) {
		case string:
			var d Duration
			if err := d.UnmarshalJSON([]byte(strconv.Quote(x))); err != nil {
				c.bad(path, "%v", err)
			}
		case json.Number:
		default:
			c.bad(path, "is %s; want a duration such as \"30s\"", describe(v))
		}
		return v
	case reflect.PointerTo(t).Implements(unmarshalerT), t.Kind() == reflect.Interface:
		return v // decoded by its own type
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.bad(path, "is %s; want a string (quote it)", describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			c.bad(path, "is %s; want true or false", describe(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			c.bad(path, "is %s; want an integer", describe(v))
			break
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		switch {
		case err != nil:
			c.bad(path, "%s is not an integer", n)
		case t.Kind() >= reflect.Uint && i < 0:
			c.bad(path, "%s is negative; want 0 or more", n)
		case t.Kind() >= reflect.Uint && t.Bits() < 64 && uint64(i) > math.MaxUint64>>(64-t.Bits()):
			c.bad(path, "%s is too large", n)
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			c.bad(path, "is %s; want a number", describe(v))
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			c.bad(path, "is %s; want a list", describe(v))
			break
		}
		for i := range arr {
			arr[i] = c.check(t.Elem(), arr[i], fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.bad(path, "is %s; want a mapping", describe(v))
			break
		}
		for k, e := range m {
			m[k] = c.check(t.Elem(), e, join(path, k))
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.bad(path, "is %s; want a mapping", describe(v))
			break
		}
		fields := jsonFields(t)
		for k, e := range m {
			f, ok := fields[k]
			if !ok {
				c.bad(join(path, k), "unknown key%s", suggestKey(t, path, k))
				continue
			}
			m[k] = c.check(f.Type, e, join(path, k))
		}
	}
	return v
}

// text turns a value given as text into the type its key wants.
func (c checker) text(t reflect.Type, s, path string) any {
	switch {
	case t == durationT, t.Kind() == reflect.String:
		if t == durationT {
			return c.check(t, s, path)
		}
		return s
	case reflect.PointerTo(t).Implements(unmarshalerT):
		return s
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			c.bad(path, "%q is not true or false", s)
		}
		return b
	}
	// Numbers, lists and mappings: read the text as YAML.
	var v any
	j, err := yaml.YAMLToJSON([]byte(s))
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.UseNumber()
		err = dec.Decode(&v)
	}
	if err != nil {
		c.bad(path, "%q is not valid YAML: %v", s, err)
		return nil
	}
	return c.check(t, v, path)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names the YAML type of a value, for type errors.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case json.Number:
		return "the number " + string(x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%v", v)
}

// jsonFields maps the JSON names of a struct's fields (embedded structs
// flattened) to the fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && tag == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, sub := range jsonFields(ft) {
					out[k] = sub
				}
				continue
			}
		}
		if tag == "" {
			tag = f.Name
		}
		out[tag] = f
	}
	return out
}

// suggestKey returns "; did you mean X?" for an unknown key: a key of the
// same mapping spelt nearly alike, else the same key where it belongs
// elsewhere in the configuration.
func suggestKey(t reflect.Type, path, key string) string {
	best, bestDist := "", 3
	for name := range jsonFields(t) {
		d := editDistance(strings.ToLower(key), name)
		if d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	if best != "" && bestDist <= max(1, len(key)/3) || best != "" && strings.EqualFold(best, key) {
		return "; did you mean " + join(path, best) + "?"
	}
	var elsewhere []string
	walkKeys(reflect.TypeOf(Config{}), "", 0, func(p, name string) {
		if name == key && p != join(path, key) {
			elsewhere = append(elsewhere, p)
		}
	})
	sort.Strings(elsewhere)
	if len(elsewhere) > 0 && len(elsewhere) <= 3 {
		return "; did you mean " + strings.Join(elsewhere, " or ") + "?"
	}
	return ""
}

// walkKeys calls fn with the path and name of every key of the
// configuration type t ("[]" stands for any list index).
func walkKeys(t reflect.Type, path string, depth int, fn func(path, name string)) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			path += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationT || depth > 6 {
		return
	}
	for name, f := range jsonFields(t) {
		p := join(path, name)
		fn(p, name)
		walkKeys(f.Type, p, depth+1, fn)
	}
}

// editDistance is the optimal string alignment distance between a and b
// (Levenshtein with adjacent transpositions: "grcp" is one from "grpc").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// applySet sets one "key.path=value" (key.path may index lists:
// bundles[0].path or bundles.0.path) in tree. The value is text; the
// key's type decides how it is read.
func applySet(tree any, set string) (any, error) {
	key, value, ok := strings.Cut(set, "=")
	if !ok || key == "" {
		return tree, errors.New("want key.path=value")
	}
	var segs []string
	for _, part := range strings.Split(key, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			segs = append(segs, name)
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			if !ok {
				return tree, fmt.Errorf("unclosed [ in %q", key)
			}
			segs = append(segs, "["+idx)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return setPath(tree, segs, scalarText(value))
}

func setPath(node any, segs []string, v any) (any, error) {
	if len(segs) == 0 {
		return v, nil
	}
	seg := segs[0]
	idx, err := strconv.Atoi(strings.TrimPrefix(seg, "["))
	if strings.HasPrefix(seg, "[") || err == nil {
		if err != nil || idx < 0 {
			return node, fmt.Errorf("%q is not a list index", strings.TrimPrefix(seg, "["))
		}
		arr, _ := node.([]any)
		if node != nil && arr == nil {
			return node, fmt.Errorf("cannot index %s", describe(node))
		}
		if idx > len(arr) {
			return node, fmt.Errorf("index %d is past the end of the list (length %d)", idx, len(arr))
		}
		if idx == len(arr) {
			arr = append(arr, nil)
		}
		sub, err := setPath(arr[idx], segs[1:], v)
		arr[idx] = sub
		return arr, err
	}
	m, _ := node.(map[string]any)
	if node != nil && m == nil {
		return node, fmt.Errorf("cannot set %s inside %s", seg, describe(node))
	}
	if m == nil {
		m = map[string]any{}
	}
	sub, err := setPath(m[seg], segs[1:], v)
	m[seg] = sub
	return m, err
}

// checkListenAddr checks a listen address: host:port, the host empty, an
// IP address or a host name, the port a number from 0 to 65535.
func checkListenAddr(key, addr string, bad func(key, format string, args ...any)) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		bad(key, "%q is not host:port (e.g. \"127.0.0.1:9191\" or \":9191\")", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad(key, "port %q of %q is not a number from 0 to 65535", port, addr)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostName(host) {
		bad(key, "host %q of %q is neither an IP address nor a host name", host, addr)
	}
}

func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
