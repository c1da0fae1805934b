package api

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAPIImportsOnlyNodeAndLedger holds the layering of docs/architecture.md: the
// HTTP API talks to the node facade and uses ledger types; it never reaches into
// chord, rpc or store (nor any other package of this module). Every non-test Go
// file in the directory is parsed, whatever its build constraints.
func TestAPIImportsOnlyNodeAndLedger(t *testing.T) {
	const module = "github.com/flownode/flownode/"
	// access decides who may call which route: a policy over the request,
	// not a way into the node.
	allowed := map[string]bool{module + "node": true, module + "ledger": true, module + "access": true}
	forbidden := []string{"chord", "rpc", "store"}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatalf("%s: import %s: %v", name, imp.Path.Value, err)
			}
			if !strings.HasPrefix(path, module) || allowed[path] {
				continue
			}
			rel := strings.TrimPrefix(path, module)
			for _, f := range forbidden {
				if rel == f || strings.HasPrefix(rel, f+"/") {
					t.Errorf("%s imports %s: package api must go through the node facade, never %s", fset.Position(imp.Pos()), path, f)
					rel = ""
				}
			}
			if rel != "" {
				t.Errorf("%s imports %s: package api may import only %snode, %sledger and %saccess from this module", fset.Position(imp.Pos()), path, module, module, module)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no non-test Go files found: is the test running in the api directory?")
	}
}
