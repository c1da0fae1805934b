package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/flownode/flownode/network"
)

// Device and client credentials from the operator's side: the authority
// signs tokens (token create), keeps a note of each one it signed (not the
// token itself) in its directory, and revokes them (token revoke), handing
// the revocation to a member that spreads it round the ring.

// tokensDir is where token create keeps its notes, in the authority directory.
const tokensDir = "tokens"

// tokenNote is what the authority remembers of a token it signed: enough to
// list and revoke it, not enough to use it.
type tokenNote struct {
	ID      string    `json:"id"`
	Thing   string    `json:"thing"`
	Scope   string    `json:"scope"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires,omitzero"`
	Note    string    `json:"note,omitempty"`
}

var tokenIDArg = regexp.MustCompile(`^[0-9a-f]{16}$`)

func cmdToken(args []string, stdout io.Writer) error {
	usage := "want a subcommand: flownode token create|list|revoke --network DIR ..."
	if len(args) == 0 {
		return usageErr("%s", usage)
	}
	switch args[0] {
	case "create":
		return cmdTokenCreate(args[1:], stdout)
	case "list":
		return cmdTokenList(args[1:], stdout)
	case "revoke":
		return cmdTokenRevoke(args[1:], stdout)
	}
	return usageErr("unknown subcommand %q; %s", args[0], usage)
}

func cmdTokenCreate(args []string, stdout io.Writer) error {
	fs := newFlags("token create")
	authDir := authorityDirFlags(fs)
	thing := fs.String("thing", "", `the Things the token covers: an id, or a pattern where * matches any run of characters ("*": every Thing) (required)`)
	scope := fs.String("scope", "", "read, write (and read) or admin (and write, verify) (required)")
	expires := fs.Duration("expires", 0, "how long the token is valid (e.g. 8760h); 0: until revoked")
	note := fs.String("note", "", "a note kept with the authority's record of the token (who holds it)")
	quiet := fs.Bool("quiet", false, "print only the bearer token")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	if *thing == "" || *scope == "" {
		return usageErr("--thing and --scope are required")
	}
	if *expires < 0 {
		return usageErr("--expires %v: want a positive duration, or 0 for no expiry", *expires)
	}
	a, err := loadAuthority(*authDir())
	if err != nil {
		return err
	}
	tok, bearer, err := a.IssueToken(*thing, *scope, *expires)
	if err != nil {
		return usageErr("%v", err)
	}
	n := tokenNote{ID: tok.ID, Thing: tok.Thing, Scope: tok.Scope, Issued: tok.Issued.UTC(), Expires: tok.Expires.UTC(), Note: *note}
	if tok.Expires.IsZero() {
		n.Expires = time.Time{}
	}
	if err := writeJSONFile(filepath.Join(*authDir(), tokensDir, tok.ID+".json"), n); err != nil {
		return err
	}
	if *quiet {
		_, err = fmt.Fprintln(stdout, bearer)
		return err
	}
	until := "until revoked"
	if !tok.Expires.IsZero() {
		until = "until " + tok.Expires.UTC().Format(time.RFC3339)
	}
	id := tok.PSKIdentity()
	fmt.Fprintf(stdout, "token %s: %s on Things %q, %s\n", tok.ID, tok.Scope, tok.Thing, until)
	fmt.Fprintf(stdout, "bearer (HTTP header Authorization: Bearer TOKEN, or ?token=TOKEN):\n  %s\n", bearer)
	_, err = fmt.Fprintf(stdout, "CoAP over DTLS (coaps://, the node's --coaps port, 5684 by default): PSK identity and key\n  %s\n  %s\n", id, network.PSKKey(a.DeviceSecret(), id))
	return err
}

func cmdTokenList(args []string, stdout io.Writer) error {
	fs := newFlags("token list")
	dir := authorityDirFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	authDir := dir()
	if _, err := loadAuthority(*authDir); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(*authDir, tokensDir, "*.json"))
	if err != nil {
		return err
	}
	var notes []tokenNote
	for _, f := range files {
		var n tokenNote
		b, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(b, &n)
		}
		if err != nil {
			return usageErr("%s: %v", f, err)
		}
		notes = append(notes, n)
	}
	sort.Slice(notes, func(i, j int) bool { return notes[i].Issued.Before(notes[j].Issued) })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tTHINGS\tISSUED\tEXPIRES\tSTATE\tNOTE")
	now := time.Now()
	for _, n := range notes {
		exp, state := "never", "valid"
		if !n.Expires.IsZero() {
			exp = n.Expires.Format(time.RFC3339)
			if !now.Before(n.Expires) {
				state = "expired"
			}
		}
		if r, err := readRevocation(tokenRevocationPath(*authDir, n.ID)); err == nil {
			state = "revoked " + r.At().UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Scope, n.Thing, n.Issued.Format(time.RFC3339), exp, state, n.Note)
	}
	return tw.Flush()
}

func tokenRevocationPath(authDir, id string) string {
	return filepath.Join(authDir, revocationsDir, "token-"+id+".json")
}

func readRevocation(path string) (*network.Revocation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r network.Revocation
	return &r, json.Unmarshal(b, &r)
}

func cmdTokenRevoke(args []string, stdout io.Writer) error {
	fs := newFlags("token revoke")
	dir := authorityDirFlags(fs)
	nodeURL := fs.String("node", "", "URL of a running member to hand the revocation to (it spreads it round the ring); none: only write the file")
	reason := fs.String("reason", "", "why the token is revoked (up to 256 bytes, kept in the revocation)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 1, "one TOKENID"); err != nil {
		return err
	}
	id := rest[0]
	if !tokenIDArg.MatchString(id) {
		return usageErr("TOKENID %q: want the token's 16-hex ID (flownode token list shows them)", id)
	}
	authDir := dir()
	a, err := loadAuthority(*authDir)
	if err != nil {
		return err
	}
	var c *apiClient
	if *nodeURL != "" {
		if c, err = newClient(*nodeURL, 30*time.Second); err != nil {
			return err
		}
	}
	path := tokenRevocationPath(*authDir, id)
	r, err := readRevocation(path)
	fresh := false
	switch {
	case err == nil:
		if err := a.Description.CheckRevocation(r); err != nil || r.Token != id {
			return usageErr("%s is damaged; move it away to sign a new revocation", path)
		}
	case errors.Is(err, os.ErrNotExist):
		if r, err = a.RevokeToken(id, *reason); err != nil {
			return usageErr("%v", err)
		}
		if err := writeJSONFile(path, r); err != nil {
			return err
		}
		fresh = true
	default:
		return usageErr("%s: %v", path, err)
	}
	if fresh {
		fmt.Fprintf(stdout, "revoked token %s at %s; wrote %s\n", id, r.At().UTC().Format(time.RFC3339), path)
	} else {
		fmt.Fprintf(stdout, "token %s was already revoked at %s (%s)\n", id, r.At().UTC().Format(time.RFC3339), path)
	}
	if c == nil {
		_, err = fmt.Fprintf(stdout, "hand it to any member: flownode token revoke --network %s --node URL %s\n", *authDir, id)
		return err
	}
	return postRevocation(c, r, stdout)
}

// authorityDirFlags adds --network (an authority directory) and --data (a
// node's data directory that holds the authority key: the dev node's
// one-node network) to a token subcommand; the function it returns gives
// whichever was set.
func authorityDirFlags(fs *flag.FlagSet) func() *string {
	network := fs.String("network", "", "the network's authority directory (this or --data is required)")
	data := fs.String("data", "", "or: a node's data directory that holds the network's authority key (a dev node's one-node network)")
	return func() *string {
		if *network == "" {
			return data
		}
		return network
	}
}

// writeJSONFile writes v, indented, to path (its directory made 0700).
func writeJSONFile(path string, v any) error {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return usageErr("%v", err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		return usageErr("%v", err)
	}
	return nil
}
