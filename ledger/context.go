package ledger

// ContextDocument is the JSON-LD context every node serves at ContextPath. Terms map to
// IRIs under a URN namespace, so no processor ever tries to fetch them.
const ContextDocument = `{
  "@context": {
    "@version": 1.1,
    "@vocab": "urn:flownode:ledger:v1#",
    "fn": "urn:flownode:ledger:v1#",
    "type": "@type",
    "Reading": "fn:Reading",
    "txID": "fn:txID",
    "key": "fn:key",
    "hData": "fn:hData",
    "salt": "fn:salt",
    "thing": "fn:thing",
    "time": {"@id": "fn:timeUnixNano"},
    "block": {"@id": "fn:block", "@context": {"branch": "fn:branch", "no": "fn:blockNo", "hash": "fn:blockHash"}},
    "seq": "fn:seq",
    "data": {"@id": "fn:data", "@type": "@json"},
    "signer": "fn:signerEd25519",
    "signature": "fn:signatureEd25519"
  }
}
`
