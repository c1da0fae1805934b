package wot

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Every TD the registry stores is checked, with our forms added, against the
// W3C TD 1.1 JSON Schema (the one the tests hold every served TD to): the
// node refuses what the W3C tooling would, with the schema's reason. The
// schema is compiled once, on first use (~1.4 MB of binary for the validator).

//go:embed testdata/td-json-schema-validation.json
var tdSchemaJSON []byte

const tdSchemaURL = "https://www.w3.org/2022/wot/td-schema-validation.json"

var tdSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(tdSchemaJSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(tdSchemaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(tdSchemaURL)
})

// validateTD checks a TD as served (forms added) against the TD schema, and
// what the schema cannot say: every security name it uses is defined. The
// error wraps ErrBadInput and says where and why.
func validateTD(td map[string]any) error {
	sch, err := tdSchema()
	if err != nil {
		return fmt.Errorf("the TD schema does not compile: %w", err)
	}
	// The validator takes values as its own decoder makes them.
	raw, err := marshalNoEscape(td)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%w: not a valid Thing Description: %s", ErrBadInput, schemaReason(ve))
		}
		return fmt.Errorf("%w: not a valid Thing Description: %v", ErrBadInput, err)
	}
	return checkSecurityNames(td)
}

// checkSecurityNames refuses a "security" naming a scheme that
// securityDefinitions does not define.
func checkSecurityNames(td map[string]any) error {
	defs, _ := td["securityDefinitions"].(map[string]any)
	var names []any
	switch s := td["security"].(type) {
	case string:
		names = []any{s}
	case []any:
		names = s
	}
	for _, n := range names {
		if name, _ := n.(string); defs[name] == nil {
			return fmt.Errorf("%w: not a valid Thing Description: security %q is not defined in securityDefinitions", ErrBadInput, n)
		}
	}
	return nil
}

var englishPrinter = message.NewPrinter(language.English)

// schemaReason makes one line of a validation error: its deepest failures
// (the most precise, as an anyOf fails in each of its branches), at most three.
func schemaReason(ve *jsonschema.ValidationError) string {
	var leaves []*jsonschema.ValidationError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.SliceStable(leaves, func(i, j int) bool { return len(leaves[i].InstanceLocation) > len(leaves[j].InstanceLocation) })
	var parts []string
	seen := map[string]bool{}
	for _, l := range leaves {
		s := fmt.Sprintf("at %q: %s", "/"+strings.Join(l.InstanceLocation, "/"), l.ErrorKind.LocalizedString(englishPrinter))
		if !seen[s] && len(parts) < 3 {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}
