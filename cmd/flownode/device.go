package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flownode/flownode/ledger"
)

// flownode device: the tools of a device that signs its own readings (and of tests
// that play one). The device's key is an ed25519 seed, kept like a node key (32 bytes
// as hex, mode 0600); its public key goes into the Thing's TD as flownode:deviceKey.

const deviceUsage = "want a subcommand: flownode device keygen --out FILE | sign --key FILE --thing ID [--envelope] JSON | verify --pub HEX [RECORDFILE]"

func cmdDevice(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageErr(deviceUsage)
	}
	switch args[0] {
	case "keygen":
		return cmdDeviceKeygen(args[1:], stdout)
	case "sign":
		return cmdDeviceSign(args[1:], stdout)
	case "verify":
		return cmdDeviceVerify(args[1:], stdout)
	}
	return usageErr("unknown subcommand %q; %s", args[0], deviceUsage)
}

// cmdDeviceKeygen writes a new device key to --out (never over an existing file) and
// prints its public key, the TD's flownode:deviceKey.
func cmdDeviceKeygen(args []string, stdout io.Writer) error {
	fs := newFlags("device keygen")
	out := fs.String("out", "", "file to write the device's private key to (required; must not exist)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	if *out == "" {
		return usageErr("--out is required")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return usageErr("%s exists already: a device key is never overwritten; choose another --out", *out)
	}
	if err != nil {
		return usageErr("%v", err)
	}
	_, err = f.WriteString(hex.EncodeToString(priv.Seed()) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		return usageErr("write %s: %v", *out, err)
	}
	_, err = fmt.Fprintln(stdout, hex.EncodeToString(pub))
	return err
}

// loadDeviceKey reads a device key file written by device keygen.
func loadDeviceKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, usageErr("%s is not a device key: want %d bytes as hex (flownode device keygen writes one)", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// cmdDeviceSign signs one reading and prints what to send: the body of
// POST /api/v1/records, or with --envelope the signed reading a device sends over
// WebSocket or CoAP to /object/{id}/send.
func cmdDeviceSign(args []string, stdout io.Writer) error {
	fs := newFlags("device sign")
	keyFile := fs.String("key", "", "the device's key file (required)")
	thing := fs.String("thing", "", "ID of the Thing the reading belongs to (required)")
	envelope := fs.Bool("envelope", false, `print {"data","device"} for WebSocket and CoAP instead of an HTTP put body`)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 1, "one JSON reading"); err != nil {
		return err
	}
	if *keyFile == "" || *thing == "" {
		return usageErr("--key and --thing are required")
	}
	priv, err := loadDeviceKey(*keyFile)
	if err != nil {
		return err
	}
	data, err := ledger.CanonicalData([]byte(rest[0]))
	if err != nil {
		return usageErr("the reading: %v", err)
	}
	d, err := ledger.SignDevice(priv, *thing, data)
	if err != nil {
		return usageErr("%v", err)
	}
	var body any = struct {
		Thing  string          `json:"thing"`
		Data   json.RawMessage `json:"data"`
		Device *ledger.Device  `json:"device"`
	}{*thing, data, d}
	if *envelope {
		body = struct {
			Data   json.RawMessage `json:"data"`
			Device *ledger.Device  `json:"device"`
		}{data, d}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(raw))
	return err
}

// cmdDeviceVerify checks a record offline (ledger.VerifyDevice): it verifies on its
// own and carries a valid signature by the device key --pub. Exit 1 when it does not.
func cmdDeviceVerify(args []string, stdout io.Writer) error {
	fs := newFlags("device verify")
	pubHex := fs.String("pub", "", "the device's public key, 64 hex (the TD's flownode:deviceKey; required)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usageErr("want one record file (or none: the record on stdin), got %d arguments", len(rest))
	}
	pub, err := hex.DecodeString(*pubHex)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return usageErr("--pub must be a device public key: 64 hex characters")
	}
	var raw []byte
	if len(rest) == 1 {
		raw, err = os.ReadFile(rest[0])
	} else {
		raw, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	}
	if err != nil {
		return usageErr("%v", err)
	}
	r, err := ledger.VerifyDevice([]byte(strings.TrimSpace(string(raw))), ed25519.PublicKey(pub))
	if err != nil {
		return negative("invalid: %v", err)
	}
	_, err = fmt.Fprintf(stdout, "valid: record %s of Thing %s, value signed by device %x, record by node %s\n", r.TxID, r.Thing, []byte(r.Device.Key), r.Block.Branch)
	return err
}
