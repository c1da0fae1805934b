package ledger

// ContextDocument is the JSON-LD 1.1 context every node serves at ContextPath. It maps a
// record onto W3C SOSA (the reading is a sosa:Observation made by its Thing) and PROV-O
// (attributed to the key that signed it), and links each record to the Thing Description
// the node serves; docs/ledger-format.md ("Linked data") gives the mapping and the
// N-Quads it yields. Records never change for it: their signed bytes name this context by
// its relative IRI, and only this document grows.
//
// A processor expands a record with its URL, http://HOST/api/v1/records/{txID}, as base:
//   - txID is an alias of @id: the hex resolves against that base to the record's URL.
//   - thing is "@type": "@id" under a property-scoped "@base": "/things/", so an id
//     resolves to http://HOST/things/{id}, where every node serves the Thing's TD. A
//     scoped @base (not @vocab) because @vocab expansion would first try the terms here,
//     turning a Thing named "data" into sosa:hasResult. An id that is already an absolute
//     IRI, such as a URN, stays as it is.
//   - signer becomes a URN of the raw ed25519 key (@vocab; 64 hex digits are never a term).
//   - time is unix nanoseconds, not an xsd:dateTime, and a context cannot convert it, so it
//     is not sosa:resultTime (whose range is xsd:dateTime) but fn:timeUnixNano, an
//     xsd:integer.
//   - data is an rdf:JSON literal (@json): the reading, byte for byte.
//   - device (format 2) is a blank node: the device's key, a URN of the raw ed25519 key
//     like signer's, and its signature over the reading.
//
// IRIs are written out in full, with no prefixes besides the old fn, so that a Thing id
// such as "sosa:x" is an IRI of its own and not a compact one. The other terms keep the
// IRIs they always had; nothing here makes a processor fetch anything from the internet.
const ContextDocument = `{
  "@context": {
    "@version": 1.1,
    "@vocab": "urn:flownode:ledger:v1#",
    "fn": "urn:flownode:ledger:v1#",
    "type": "@type",
    "Reading": "http://www.w3.org/ns/sosa/Observation",
    "txID": "@id",
    "thing": {"@id": "http://www.w3.org/ns/sosa/madeBySensor", "@type": "@id", "@context": {"@base": "/things/"}},
    "time": {"@id": "urn:flownode:ledger:v1#timeUnixNano", "@type": "http://www.w3.org/2001/XMLSchema#integer"},
    "data": {"@id": "http://www.w3.org/ns/sosa/hasResult", "@type": "@json"},
    "signer": {"@id": "http://www.w3.org/ns/prov#wasAttributedTo", "@type": "@vocab", "@context": {"@vocab": "urn:flownode:ed25519:"}},
    "key": "urn:flownode:ledger:v1#key",
    "hData": "urn:flownode:ledger:v1#hData",
    "salt": "urn:flownode:ledger:v1#salt",
    "block": {"@id": "urn:flownode:ledger:v1#block", "@context": {
      "branch": "urn:flownode:ledger:v1#branch",
      "no": {"@id": "urn:flownode:ledger:v1#blockNo", "@type": "http://www.w3.org/2001/XMLSchema#integer"},
      "hash": "urn:flownode:ledger:v1#blockHash"}},
    "seq": {"@id": "urn:flownode:ledger:v1#seq", "@type": "http://www.w3.org/2001/XMLSchema#integer"},
    "signature": "urn:flownode:ledger:v1#signatureEd25519",
    "device": {"@id": "urn:flownode:ledger:v1#device", "@context": {
      "key": {"@id": "urn:flownode:ledger:v1#deviceKey", "@type": "@vocab", "@context": {"@vocab": "urn:flownode:ed25519:"}},
      "sig": "urn:flownode:ledger:v1#deviceSignatureEd25519"}}
  }
}
`
