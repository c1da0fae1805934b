package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/piprate/json-gold/ld"

	"github.com/flownode/flownode/ledger"
)

// IRIs the records' context maps onto (ledger.ContextDocument).
const (
	rdfType      = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
	rdfJSON      = "http://www.w3.org/1999/02/22-rdf-syntax-ns#JSON"
	xsdInteger   = "http://www.w3.org/2001/XMLSchema#integer"
	sosa         = "http://www.w3.org/ns/sosa/"
	provAttrib   = "http://www.w3.org/ns/prov#wasAttributedTo"
	fnNamespace  = "urn:flownode:ledger:v1#"
	signerPrefix = "urn:flownode:ed25519:"
)

// TestAPIRecordsAreLinkedData holds the records' JSON-LD to what docs/ledger-format.md
// ("Linked data") promises, with a real JSON-LD 1.1 processor (json-gold): a record
// fetched from a node, expanded with its own URL as base and its context loaded from that
// same node, is a sosa:Observation made by the Thing whose TD the node serves at
// /things/{id}, attributed to the key that signed it, with the reading as an rdf:JSON
// literal; and the record's bytes, signature and all, are what they always were.
func TestAPIRecordsAreLinkedData(t *testing.T) {
	tn := openTestNode(t, false, nil)
	cases := []struct{ thing, iri string }{
		{"sensor-1", tn.srv.URL + "/things/sensor-1"},
		// A Thing id that is an absolute IRI is the Thing's IRI as it is.
		{"urn:dev:ops:32473-WoTLamp-1234", "urn:dev:ops:32473-WoTLamp-1234"},
		// An id that is also a term of the context is still only a Thing id.
		{"data", tn.srv.URL + "/things/data"},
	}
	for _, c := range cases {
		t.Run(c.thing, func(t *testing.T) {
			const data = `{"n":3,"temperature":21.5,"unit":"C"}`
			rc := tn.putOne(t, `{"thing":"`+c.thing+`","data":`+data+`}`)
			url := tn.srv.URL + "/api/v1/records/" + rc.TxID.String()
			a := tn.get(t, "/api/v1/records/"+rc.TxID.String())
			if a.code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", url, a.code, a.body)
			}
			rec, err := ledger.ParseRecord(a.body)
			if err != nil {
				t.Fatal(err)
			}
			if err := rec.CheckSelf(a.body); err != nil {
				t.Fatalf("the record served no longer verifies on its own: %v", err)
			}
			if rec.Context != ledger.ContextPath || rec.Type != ledger.RecordType || string(rec.Data) != data {
				t.Fatalf("record %s: @context %q, type %q, data %s", a.body, rec.Context, rec.Type, rec.Data)
			}

			got := toNQuads(t, tn, url, a.body)
			want := wantQuads(url, c.iri, rec)
			if !slices.Equal(got, want) {
				t.Errorf("N-Quads of %s:\n%s\nwant:\n%s", a.body, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// toNQuads runs the record through json-gold's ToRDF with the record's URL as base and
// returns its N-Quads lines, sorted. The context is loaded from the node under test over
// HTTP; any other URL the processor asks for fails the test, so the mapping needs
// nothing from the internet.
func toNQuads(t *testing.T, tn *testNode, base string, record []byte) []string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(record, &doc); err != nil {
		t.Fatal(err)
	}
	opts := ld.NewJsonLdOptions(base)
	opts.ProcessingMode = ld.JsonLd_1_1
	opts.Format = "application/n-quads"
	opts.DocumentLoader = nodeOnlyLoader{t: t, url: tn.srv.URL + ledger.ContextPath, next: ld.NewDefaultDocumentLoader(tn.srv.Client())}
	out, err := ld.NewJsonLdProcessor().ToRDF(doc, opts)
	if err != nil {
		t.Fatalf("json-gold ToRDF: %v", err)
	}
	nq, ok := out.(string)
	if !ok {
		t.Fatalf("json-gold ToRDF answered %T, want N-Quads text", out)
	}
	lines := strings.Split(strings.TrimSpace(nq), "\n")
	slices.Sort(lines)
	return lines
}

// nodeOnlyLoader lets the JSON-LD processor load the node's context and nothing else.
type nodeOnlyLoader struct {
	t    *testing.T
	url  string
	next ld.DocumentLoader
}

func (l nodeOnlyLoader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	if u != l.url {
		l.t.Errorf("the JSON-LD processor asked for %s; only the node's own context %s may be loaded", u, l.url)
		return nil, fmt.Errorf("refusing to load %s", u)
	}
	return l.next.LoadDocument(u)
}

// wantQuads is every triple a record must yield, sorted like toNQuads' lines.
func wantQuads(recordURL, thingIRI string, r *ledger.Record) []string {
	s := "<" + recordURL + "> "
	lit := func(v string) string { return `"` + nquadEscape(v) + `"` }
	typed := func(v, datatype string) string { return lit(v) + "^^<" + datatype + ">" }
	b := "_:b0 "
	q := []string{
		s + "<" + rdfType + "> <" + sosa + "Observation> .",
		s + "<" + sosa + "madeBySensor> <" + thingIRI + "> .",
		s + "<" + provAttrib + "> <" + signerPrefix + hex.EncodeToString(r.Signer) + "> .",
		s + "<" + sosa + "hasResult> " + typed(string(r.Data), rdfJSON) + " .",
		s + "<" + fnNamespace + "timeUnixNano> " + typed(fmt.Sprint(r.Time), xsdInteger) + " .",
		s + "<" + fnNamespace + "key> " + lit(r.Key.String()) + " .",
		s + "<" + fnNamespace + "hData> " + lit(r.HData.String()) + " .",
		s + "<" + fnNamespace + "salt> " + lit(hex.EncodeToString(r.Salt)) + " .",
		s + "<" + fnNamespace + "seq> " + typed(fmt.Sprint(r.Seq), xsdInteger) + " .",
		s + "<" + fnNamespace + "signatureEd25519> " + lit(hex.EncodeToString(r.Signature)) + " .",
		s + "<" + fnNamespace + "block> _:b0 .",
		b + "<" + fnNamespace + "branch> " + lit(r.Block.Branch.String()) + " .",
		b + "<" + fnNamespace + "blockNo> " + typed(fmt.Sprint(r.Block.No), xsdInteger) + " .",
		b + "<" + fnNamespace + "blockHash> " + lit(r.Block.Hash.String()) + " .",
	}
	slices.Sort(q)
	return q
}

// nquadEscape escapes a literal's text as N-Quads writes it (ASCII test data only).
func nquadEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`).Replace(s)
}

// TestLedgerFormatLinkedDataExample holds the N-Quads example of docs/ledger-format.md
// ("Linked data") to what json-gold makes of the document's own test-vector record, with
// the context as the node serves it (ledger.ContextDocument), so the two cannot drift.
func TestLedgerFormatLinkedDataExample(t *testing.T) {
	const host = "http://node.example:8000"
	doc, err := os.ReadFile("../docs/ledger-format.md")
	if err != nil {
		t.Fatal(err)
	}
	var record, example []string
	inExample := false
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case strings.HasPrefix(line, "record = "):
			record = append(record, strings.TrimPrefix(line, "record = "))
		case line == "```nquads":
			inExample = true
		case inExample && line == "```":
			inExample = false
		case inExample:
			example = append(example, line)
		}
	}
	if len(record) != 1 || len(example) == 0 {
		t.Fatalf("docs/ledger-format.md: %d test-vector records and %d N-Quads lines; want one record and its example", len(record), len(example))
	}
	rec, err := ledger.ParseRecord([]byte(record[0]))
	if err != nil {
		t.Fatal(err)
	}
	base := host + "/api/v1/records/" + rec.TxID.String()
	for i := range example {
		example[i] = strings.ReplaceAll(example[i], "<R>", "<"+base+">")
	}

	var parsed any
	if err := json.Unmarshal([]byte(record[0]), &parsed); err != nil {
		t.Fatal(err)
	}
	var context any
	if err := json.Unmarshal([]byte(ledger.ContextDocument), &context); err != nil {
		t.Fatalf("ledger.ContextDocument is not JSON: %v", err)
	}
	opts := ld.NewJsonLdOptions(base)
	opts.ProcessingMode = ld.JsonLd_1_1
	opts.Format = "application/n-quads"
	opts.DocumentLoader = staticLoader{url: host + ledger.ContextPath, doc: context}
	out, err := ld.NewJsonLdProcessor().ToRDF(parsed, opts)
	if err != nil {
		t.Fatalf("json-gold ToRDF: %v", err)
	}
	got := strings.Split(strings.TrimSpace(out.(string)), "\n")
	slices.Sort(got)
	if !slices.Equal(got, example) {
		t.Errorf("json-gold makes of the test-vector record:\n%s\ndocs/ledger-format.md says (sorted, <R> replaced):\n%s", strings.Join(got, "\n"), strings.Join(example, "\n"))
	}
	if want := wantQuads(base, host+"/things/"+rec.Thing, rec); !slices.Equal(example, want) {
		t.Errorf("docs/ledger-format.md's example is not the mapping TestAPIRecordsAreLinkedData checks:\n%s", strings.Join(want, "\n"))
	}
}

// staticLoader answers one URL with one JSON document, without any network.
type staticLoader struct {
	url string
	doc any
}

func (l staticLoader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	if u != l.url {
		return nil, fmt.Errorf("refusing to load %s", u)
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: l.doc}, nil
}
