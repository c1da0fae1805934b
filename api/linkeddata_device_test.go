package api

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/piprate/json-gold/ld"

	"github.com/flownode/flownode/ledger"
)

// TestDeviceRecordIsLinkedData: the device-signed record of docs/ledger-format.md
// (format 2) expands, with the context the node serves, to the triples of a version 1
// record plus a fn:device blank node holding the device's key as the IRI
// urn:flownode:ed25519:{key} and its signature.
func TestDeviceRecordIsLinkedData(t *testing.T) {
	const host = "http://node.example:8000"
	doc, err := os.ReadFile("../docs/ledger-format.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^device record = (.*)$`).FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/ledger-format.md has no device record vector")
	}
	rec, err := ledger.ParseRecord(m[1])
	if err != nil || rec.Device == nil {
		t.Fatalf("device record: %v", err)
	}
	var parsed, context any
	json.Unmarshal(m[1], &parsed)
	if err := json.Unmarshal([]byte(ledger.ContextDocument), &context); err != nil {
		t.Fatal(err)
	}
	base := host + "/api/v1/records/" + rec.TxID.String()
	opts := ld.NewJsonLdOptions(base)
	opts.ProcessingMode = ld.JsonLd_1_1
	opts.Format = "application/n-quads"
	opts.DocumentLoader = staticLoader{url: host + ledger.ContextPath, doc: context}
	out, err := ld.NewJsonLdProcessor().ToRDF(parsed, opts)
	if err != nil {
		t.Fatal(err)
	}
	nq := out.(string)
	key, _ := rec.Device.Key.MarshalText()
	sig, _ := rec.Device.Sig.MarshalText()
	want := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^<` + regexp.QuoteMeta(base) + `> <` + fnNamespace + `device> (_:b\d+) \.$`),
		regexp.MustCompile(`(?m)^_:b\d+ <` + fnNamespace + `deviceKey> <` + signerPrefix + string(key) + `> \.$`),
		regexp.MustCompile(`(?m)^_:b\d+ <` + fnNamespace + `deviceSignatureEd25519> "` + string(sig) + `" \.$`),
		regexp.MustCompile(`(?m)^<` + regexp.QuoteMeta(base) + `> <` + provAttrib + `> <` + signerPrefix),
	}
	for _, re := range want {
		if !re.MatchString(nq) {
			t.Errorf("no triple matching %s in:\n%s", re, nq)
		}
	}
	if strings.Count(nq, "\n") != 14+3 {
		t.Errorf("%d triples, want the 14 of a version 1 record and 3 of the device:\n%s", strings.Count(nq, "\n"), nq)
	}
}
