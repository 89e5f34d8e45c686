// Package policies holds mcpauthz's default Rego policy bundle and the JSON
// Schema of the policy input, embedded so the binary runs without files.
//
// The bundle (package mcp.authz, data under mcpauthz, roots in .manifest)
// denies by default, allows the housekeeping methods to any valid token and
// requires scopes for tools/call, resources/* and prompts/get. See
// docs/policies.md for the input and decision contracts.
package policies

import (
	"embed"
	"io/fs"
)

// files is read-only: embed.FS cannot be modified, so this package-level
// value is not mutable state.
//
//go:embed *.rego data.json .manifest schema/input.json
var files embed.FS

// FS returns the default bundle as a file system rooted at the bundle root:
// the .rego files (tests included, for `mcpauthz test`), data.json,
// .manifest and schema/input.json. The schema is not bundle data: OPA's
// bundle reader loads data only from files named data.json or data.yaml.
// Read it with bundle.NewFSLoader.
func FS() fs.FS { return files }

// InputSchemaPath is where the input schema sits inside FS.
const InputSchemaPath = "schema/input.json"

// InputSchema returns the JSON Schema (draft-07) of the policy input, for
// ast.SchemaSet.Put(ast.SchemaRootRef, ...) so that policies reading fields
// the contract does not define fail to compile. Each call returns a new copy.
func InputSchema() []byte { return []byte(inputSchema) }

// inputSchema is a string, hence immutable; InputSchema hands out copies.
//
//go:embed schema/input.json
var inputSchema string

// library is the Rego library mcpauthz adds to every bundle that does
// not define its packages (read-only, as files).
//
//go:embed lib/*.rego
var library embed.FS

// LibraryPackages returns the packages of the library, each with the path
// of its module (for Library); each is added to a bundle that does not
// define it.
func LibraryPackages() map[string]string {
	return map[string]string{"data.mcpauthz.lib.secrets": "lib/secrets.rego"}
}

// Library returns the source of the library module at path (a value of
// LibraryPackages).
func Library(path string) ([]byte, error) { return library.ReadFile(path) }
